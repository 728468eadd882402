//! Intent detection: a linear classifier over word and character n-grams, trained at start
//! from a labeled CSV (`text,intent`).
//!
//! Why this model: customer messages are short and misspelt; character n-grams (2 to 5
//! letters, inside word boundaries) make "refund", "refunded" and "refnd" share most of their
//! features, and word unigrams and bigrams keep "card arrived" apart from "card declined". The
//! features are hashed into a fixed table (no vocabulary to store or look up), weighted by
//! sublinear tf-idf and L2-normalised; the weights are learned by an averaged multiclass
//! perceptron with a margin (an update whenever the right intent does not win by at least 1),
//! which trains in one pass per epoch over sparse vectors and classifies with one sparse dot
//! product per intent. Deterministic: a fixed seed orders the epochs.

use std::collections::HashMap;

/// Hash buckets for features (2^17): few collisions for the tens of thousands of n-grams a
/// few thousand short messages have, and a table that stays in cache.
const BUCKETS: usize = 1 << 17;
/// Passes over the training set.
const EPOCHS: usize = 12;

/// A trained intent classifier.
#[derive(Debug, Clone)]
pub struct IntentModel {
    intents: Vec<String>,
    /// Inverse document frequency per bucket.
    idf: Vec<f32>,
    /// Weights, bucket-major: `weights[bucket * intents + intent]`, so one feature's weights
    /// for every intent are one contiguous read.
    weights: Vec<f32>,
}

/// One labeled example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The message.
    pub text: String,
    /// Its intent.
    pub intent: String,
}

/// Why examples could not be read or a model trained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntentError {
    /// A CSV line is not `text,intent`.
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Nothing to learn from.
    #[error("no examples to train on (need at least two intents)")]
    Empty,
}

/// Reads `text,intent` CSV (RFC 4180: quoted fields may hold commas, quotes and line breaks).
/// A header line is skipped when its second column is `intent`, `category` or `label`.
pub fn read_csv(data: &str) -> Result<Vec<Example>, IntentError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(data.as_bytes());
    let mut examples = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = |r: &csv::StringRecord| r.position().map_or(i + 1, |p| p.line() as usize);
        let record = record.map_err(|e| IntentError::Csv {
            line: e.position().map_or(i + 1, |p| p.line() as usize),
            message: e.to_string(),
        })?;
        if record.len() != 2 {
            return Err(IntentError::Csv {
                line: line(&record),
                message: format!("expected 2 fields (text,intent), found {}", record.len()),
            });
        }
        let (text, intent) = (record[0].trim(), record[1].trim());
        if i == 0 && matches!(intent, "intent" | "category" | "label") {
            continue;
        }
        examples.push(Example {
            text: text.to_owned(),
            intent: intent.to_owned(),
        });
    }
    Ok(examples)
}

/// FNV-1a over the feature's bytes, with a kind tag so a word and a same-spelt n-gram differ.
fn bucket(kind: u8, parts: &[&[u8]]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash = (hash ^ 0x20).wrapping_mul(0x0100_0000_01b3);
        }
        for &b in *part {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (hash as usize) & (BUCKETS - 1)
}

/// Term counts of a message's features, by bucket.
fn features(text: &str) -> Vec<(usize, f32)> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    // Buckets are small integers: the Fx hash is a multiply, where the default SipHash costs
    // more than the n-gram hashing itself.
    let mut counts: rustc_hash::FxHashMap<usize, f32> = rustc_hash::FxHashMap::default();
    counts.reserve(words.len() * 16);
    let mut padded: Vec<u8> = Vec::with_capacity(32);
    for (i, word) in words.iter().enumerate() {
        *counts.entry(bucket(1, &[word.as_bytes()])).or_default() += 1.0;
        if let Some(next) = words.get(i + 1) {
            *counts
                .entry(bucket(2, &[word.as_bytes(), next.as_bytes()]))
                .or_default() += 1.0;
        }
        padded.clear();
        padded.push(b' ');
        padded.extend_from_slice(word.as_bytes());
        padded.push(b' ');
        for n in 2..=5 {
            for gram in padded.windows(n) {
                *counts.entry(bucket(3, &[gram])).or_default() += 1.0;
            }
        }
    }
    counts.into_iter().collect()
}

/// Sublinear tf-idf, L2-normalised.
fn weigh(counts: Vec<(usize, f32)>, idf: &[f32]) -> Vec<(usize, f32)> {
    let mut vector: Vec<(usize, f32)> = counts
        .into_iter()
        .map(|(b, tf)| (b, (1.0 + tf.ln()) * idf[b]))
        .collect();
    let norm = vector.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in &mut vector {
            *v /= norm;
        }
    }
    vector
}

impl IntentModel {
    /// Trains on labeled examples.
    pub fn train(examples: &[Example]) -> Result<IntentModel, IntentError> {
        let mut intents: Vec<String> = examples.iter().map(|e| e.intent.clone()).collect();
        intents.sort();
        intents.dedup();
        if intents.len() < 2 {
            return Err(IntentError::Empty);
        }
        let index: HashMap<&str, usize> = intents
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let raw: Vec<Vec<(usize, f32)>> = examples.iter().map(|e| features(&e.text)).collect();
        let mut df = vec![0u32; BUCKETS];
        for doc in &raw {
            for &(b, _) in doc {
                df[b] += 1;
            }
        }
        let n = raw.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let docs: Vec<(Vec<(usize, f32)>, usize)> = raw
            .into_iter()
            .zip(examples)
            .map(|(counts, e)| (weigh(counts, &idf), index[e.intent.as_str()]))
            .collect();

        let k = intents.len();
        // Averaged perceptron: `weights` are the current ones, `totals` the sum of every update
        // scaled by the step it happened at; the average is `weights - totals / steps`.
        let mut weights = vec![0f32; BUCKETS * k];
        let mut totals = vec![0f32; BUCKETS * k];
        let mut order: Vec<usize> = (0..docs.len()).collect();
        let mut seed: u64 = 0x5eed_1234_abcd_0001;
        let mut step = 1f32;
        let mut scores = vec![0f32; k];
        for _ in 0..EPOCHS {
            for i in (1..order.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                order.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            for &d in &order {
                let (x, y) = &docs[d];
                scores.iter_mut().for_each(|s| *s = 0.0);
                for &(b, v) in x {
                    let row = &weights[b * k..b * k + k];
                    for (s, w) in scores.iter_mut().zip(row) {
                        *s += w * v;
                    }
                }
                let rival = (0..k)
                    .filter(|&c| c != *y)
                    .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
                    .expect("at least two intents");
                if scores[*y] - scores[rival] < 1.0 {
                    for &(b, v) in x {
                        weights[b * k + y] += v;
                        weights[b * k + rival] -= v;
                        totals[b * k + y] += step * v;
                        totals[b * k + rival] -= step * v;
                    }
                }
                step += 1.0;
            }
        }
        for (w, t) in weights.iter_mut().zip(&totals) {
            *w -= t / step;
        }
        Ok(IntentModel {
            intents,
            idf,
            weights,
        })
    }

    /// The most likely intent and a confidence in (0, 1] (a softmax over the scores).
    pub fn classify(&self, text: &str) -> (&str, f32) {
        let k = self.intents.len();
        let mut scores = vec![0f32; k];
        for (b, v) in weigh(features(text), &self.idf) {
            let row = &self.weights[b * k..b * k + k];
            for (s, w) in scores.iter_mut().zip(row) {
                *s += w * v;
            }
        }
        let (best, top) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, s)| (i, *s))
            .expect("a model has at least two intents");
        // The scores are margins of a few units: a temperature of 1/4 makes them read like
        // probabilities without changing the order.
        let total: f32 = scores.iter().map(|s| ((s - top) * 4.0).exp()).sum();
        (&self.intents[best], 1.0 / total)
    }

    /// The intents the model knows, sorted.
    pub fn intents(&self) -> &[String] {
        &self.intents
    }
}

/// Accuracy and macro-F1 of a model on labeled examples, and the most confused pairs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    /// Share classified right.
    pub accuracy: f64,
    /// Unweighted mean of the per-intent F1 scores.
    pub macro_f1: f64,
    /// Examples evaluated.
    pub examples: usize,
    /// (true intent, predicted intent, count), most frequent first, at most ten.
    pub confused: Vec<(String, String, usize)>,
}

/// Evaluates `model` on `examples`.
pub fn evaluate(model: &IntentModel, examples: &[Example]) -> Evaluation {
    let mut right = 0usize;
    let mut tp: HashMap<&str, usize> = HashMap::new();
    let mut fp: HashMap<&str, usize> = HashMap::new();
    let mut fn_: HashMap<&str, usize> = HashMap::new();
    let mut pairs: HashMap<(String, String), usize> = HashMap::new();
    for e in examples {
        let (predicted, _) = model.classify(&e.text);
        if predicted == e.intent {
            right += 1;
            *tp.entry(e.intent.as_str()).or_default() += 1;
        } else {
            *fn_.entry(e.intent.as_str()).or_default() += 1;
            *fp.entry(predicted).or_default() += 1;
            *pairs
                .entry((e.intent.clone(), predicted.to_owned()))
                .or_default() += 1;
        }
    }
    let mut labels: Vec<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let f1s: Vec<f64> = labels
        .iter()
        .map(|l| {
            let tp = *tp.get(l).unwrap_or(&0) as f64;
            let fp = *fp.get(l).unwrap_or(&0) as f64;
            let fn_ = *fn_.get(l).unwrap_or(&0) as f64;
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fn_)
            }
        })
        .collect();
    let mut confused: Vec<(String, String, usize)> =
        pairs.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    confused.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    confused.truncate(10);
    Evaluation {
        accuracy: right as f64 / examples.len().max(1) as f64,
        macro_f1: f1s.iter().sum::<f64>() / f1s.len().max(1) as f64,
        examples: examples.len(),
        confused,
    }
}

/// Splits examples into (train, validation): every `1/fraction`-th example of each intent goes
/// to validation, so every intent is in both and the split is reproducible.
pub fn holdout(examples: &[Example], fraction: f64) -> (Vec<Example>, Vec<Example>) {
    let every = (1.0 / fraction.clamp(0.01, 0.5)).round() as usize;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for e in examples {
        let n = seen.entry(e.intent.as_str()).or_default();
        *n += 1;
        if n.is_multiple_of(every) {
            validation.push(e.clone());
        } else {
            train.push(e.clone());
        }
    }
    (train, validation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(rows: &[(&str, &str)]) -> Vec<Example> {
        rows.iter()
            .map(|(t, i)| Example {
                text: t.to_string(),
                intent: i.to_string(),
            })
            .collect()
    }

    #[test]
    fn csv_with_a_header_and_quoted_commas_is_read() {
        let data = "text,intent\n\"Refund, please\",billing\nmy card broke,cards\n\"He said \"\"hi\"\"\",greeting\n";
        let read = read_csv(data).expect("reads");
        assert_eq!(
            read,
            examples(&[
                ("Refund, please", "billing"),
                ("my card broke", "cards"),
                ("He said \"hi\"", "greeting")
            ])
        );
        assert!(matches!(
            read_csv("a,b\nc,d,e\n"),
            Err(IntentError::Csv { .. })
        ));
        let multi = read_csv("\"line one\nline two\",x\r\ny,z\r\n").expect("reads");
        assert_eq!(multi, examples(&[("line one\nline two", "x"), ("y", "z")]));
    }

    #[test]
    fn a_small_model_learns_its_intents_and_generalises_to_misspellings() {
        let data = examples(&[
            ("I want my money back", "refund"),
            ("please refund the order", "refund"),
            ("refund my last payment", "refund"),
            ("can I get a refund", "refund"),
            ("my package has not arrived", "delivery"),
            ("where is my parcel", "delivery"),
            ("the delivery is late", "delivery"),
            ("tracking shows nothing for my order", "delivery"),
            ("I cannot log in", "login"),
            ("password reset does not work", "login"),
            ("my account is locked", "login"),
            ("login fails with an error", "login"),
        ]);
        let model = IntentModel::train(&data).expect("trains");
        assert_eq!(model.classify("refnd please").0, "refund");
        assert_eq!(model.classify("where is my package").0, "delivery");
        assert_eq!(model.classify("can't log in to my account").0, "login");
        let (_, confidence) = model.classify("refund my money");
        assert!(confidence > 0.0 && confidence <= 1.0);
        assert_eq!(
            evaluate(&model, &data).accuracy,
            1.0,
            "it fits its training set"
        );
        assert!(
            IntentModel::train(&data[..4]).is_err(),
            "one intent is nothing to learn"
        );
    }

    #[test]
    fn the_holdout_keeps_every_intent_on_both_sides() {
        let data: Vec<Example> = (0..20)
            .map(|i| Example {
                text: format!("m{i}"),
                intent: if i % 2 == 0 { "a" } else { "b" }.into(),
            })
            .collect();
        let (train, validation) = holdout(&data, 0.2);
        assert_eq!((train.len(), validation.len()), (16, 4));
        assert!(
            validation.iter().any(|e| e.intent == "a")
                && validation.iter().any(|e| e.intent == "b")
        );
    }
}
