//! Signals derived once per contact for rules to read: the language of the message (whatlang),
//! and a sentiment and urgency score from a small lexicon with negation handling.
//!
//! # The sentiment scorer
//!
//! Lexicon-based, in the manner of VADER, because it is predictable and explainable: a rule
//! author can see which words moved the score. Each word of the lexicon carries a valence
//! (-3 very negative ... +3 very positive). A booster before it ("very", "really",
//! "extremely", ...) scales the next valence word by 1.5; a negation ("not", "never", "don't",
//! "no", ...) within the three words before it flips and halves it, so "not happy" is mildly
//! negative and "not bad" mildly positive. The sum `s` is squashed into (-1, 1) as
//! `s / sqrt(s^2 + 15)`. Urgency counts urgency words ("urgent", "asap", "immediately", ...),
//! exclamation marks and shouted (all-capitals) words, squashed into [0, 1) the same way. The
//! lexicon is English with the commonest Spanish and German words; other languages score 0.

/// The language of a text, when whatlang can tell.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Language {
    /// ISO 639-3 code: "eng", "spa", "deu", ...
    pub code: &'static str,
    /// whatlang's confidence, 0 to 1.
    pub confidence: f64,
    /// True when whatlang considers the guess reliable (long enough text, clear winner).
    pub reliable: bool,
}

/// Detects the language of a text among all the languages whatlang knows.
pub fn language(text: &str) -> Option<Language> {
    language_with(&whatlang::Detector::new(), text)
}

/// Detects the language of a text with a detector (which may be limited to the languages a
/// center serves: fewer candidates, fewer confusions between close languages, and a faster
/// detection).
pub fn language_with(detector: &whatlang::Detector, text: &str) -> Option<Language> {
    detector.detect(text).map(|info| Language {
        code: info.lang().code(),
        confidence: info.confidence(),
        reliable: info.is_reliable(),
    })
}

/// Sentiment and urgency of a text, with the words that moved them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sentiment {
    /// -1 (angry) to +1 (pleased); 0 is neutral or unknown.
    pub score: f64,
    /// 0 (calm) to 1 (urgent).
    pub urgency: f64,
    /// Lexicon words found, as they were scored ("not happy" appears as "not happy").
    pub words: Vec<String>,
}

const LEXICON: &[(&str, f64)] = &[
    // negative
    ("angry", -3.0),
    ("furious", -3.0),
    ("terrible", -3.0),
    ("horrible", -3.0),
    ("awful", -3.0),
    ("worst", -3.0),
    ("unacceptable", -3.0),
    ("scam", -3.0),
    ("disgusting", -3.0),
    ("ridiculous", -2.5),
    ("useless", -2.5),
    ("hate", -2.5),
    ("fraud", -2.5),
    ("outraged", -3.0),
    ("disappointed", -2.0),
    ("annoyed", -2.0),
    ("frustrated", -2.0),
    ("upset", -2.0),
    ("bad", -1.5),
    ("poor", -1.5),
    ("broken", -1.5),
    ("wrong", -1.0),
    ("problem", -1.0),
    ("complaint", -1.5),
    ("cancel", -1.0),
    ("refund", -0.5),
    ("late", -1.0),
    ("never", 0.0),
    ("slow", -1.0),
    ("failed", -1.5),
    ("fails", -1.5),
    ("error", -1.0),
    ("lost", -1.5),
    ("malo", -1.5),
    ("terrible", -3.0),
    ("horrible", -3.0),
    ("enfadado", -2.5),
    ("fatal", -2.5),
    ("schlecht", -1.5),
    ("ärgerlich", -2.0),
    ("unverschämt", -3.0),
    ("katastrophe", -3.0),
    // positive
    ("thanks", 1.5),
    ("thank", 1.5),
    ("great", 2.5),
    ("excellent", 3.0),
    ("perfect", 3.0),
    ("love", 3.0),
    ("happy", 2.0),
    ("good", 1.5),
    ("helpful", 2.0),
    ("amazing", 3.0),
    ("awesome", 3.0),
    ("pleased", 2.0),
    ("satisfied", 2.0),
    ("fine", 1.0),
    ("appreciate", 2.0),
    ("gracias", 1.5),
    ("excelente", 3.0),
    ("bueno", 1.5),
    ("danke", 1.5),
    ("super", 2.0),
    ("gut", 1.5),
];
const BOOSTERS: &[&str] = &[
    "very",
    "really",
    "extremely",
    "so",
    "totally",
    "absolutely",
    "completely",
    "incredibly",
    "muy",
    "sehr",
];
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt",
    "wasn't", "wasnt", "won't", "wont", "can't", "cant", "cannot", "nothing", "nobody", "nicht",
    "kein", "keine", "nunca",
];
const URGENT: &[&str] = &[
    "urgent",
    "urgently",
    "asap",
    "immediately",
    "emergency",
    "now",
    "today",
    "critical",
    "urgente",
    "dringend",
    "sofort",
];

/// The lexicon as a map, built once.
fn lexicon() -> &'static rustc_hash::FxHashMap<&'static str, f64> {
    static MAP: std::sync::OnceLock<rustc_hash::FxHashMap<&'static str, f64>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| LEXICON.iter().copied().collect())
}

/// Scores a text.
pub fn sentiment(text: &str) -> Sentiment {
    // Lowered once; tokens are cut from the original and the lowered text in step, so a
    // token's casing (for shouting) and its lexicon form are both at hand without an
    // allocation per token.
    let lowered = text.to_lowercase();
    let split = |t: &str| -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in t.char_indices() {
            let inside = c.is_alphanumeric() || c == '\'';
            match (inside, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    spans.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            spans.push((s, t.len()));
        }
        spans
    };
    let originals: Vec<&str> = split(text).into_iter().map(|(a, b)| &text[a..b]).collect();
    let lowers: Vec<&str> = split(&lowered)
        .into_iter()
        .map(|(a, b)| &lowered[a..b])
        .collect();
    // Lowering can change lengths (rare letters); then shouting is read from the lowered
    // tokens' originals only where the counts agree.
    let same_tokens = originals.len() == lowers.len();
    let lexicon = lexicon();
    let mut sum = 0.0;
    let mut urgent = 0.0;
    let mut words = Vec::new();
    for (i, &lower) in lowers.iter().enumerate() {
        if URGENT.contains(&lower) {
            urgent += 1.0;
        }
        if same_tokens {
            let token = originals[i];
            if token.chars().count() >= 3 && token.chars().all(|c| c.is_uppercase()) {
                urgent += 0.5;
            }
        }
        let Some(&valence) = lexicon.get(lower) else {
            continue;
        };
        let mut value = valence;
        let before = &lowers[i.saturating_sub(3)..i];
        if before.last().is_some_and(|t| BOOSTERS.contains(t)) {
            value *= 1.5;
        }
        match before.iter().rev().find(|t| NEGATIONS.contains(t)) {
            Some(negation) => {
                value *= -0.5;
                words.push(format!("{negation} {lower}"));
            }
            None => words.push(lower.to_owned()),
        }
        sum += value;
    }
    urgent += text.matches('!').count().min(6) as f64 * 0.5;
    Sentiment {
        score: sum / (sum * sum + 15.0).sqrt(),
        urgency: urgent / (urgent * urgent + 4.0).sqrt(),
        words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_of_a_message_is_detected() {
        let english = language("My card was charged twice and I would like a refund please")
            .expect("detected");
        assert_eq!(english.code, "eng");
        let spanish = language("Hola, quiero cancelar mi suscripción porque no funciona nada")
            .expect("detected");
        assert_eq!(spanish.code, "spa");
        let german = language("Meine Karte funktioniert nicht mehr, bitte helfen Sie mir")
            .expect("detected");
        assert_eq!(german.code, "deu");
    }

    /// What a score must satisfy.
    type Expected = fn(f64) -> bool;

    #[test]
    fn sentiment_reads_anger_praise_and_negation() {
        let table: &[(&str, Expected, &str)] = &[
            (
                "This is the worst service, absolutely terrible",
                |s| s < -0.7,
                "angry",
            ),
            ("Thanks, that was really helpful!", |s| s > 0.5, "pleased"),
            (
                "I am not happy with this",
                |s| s < 0.0 && s > -0.5,
                "negated praise",
            ),
            ("not bad at all", |s| s > 0.0, "negated complaint"),
            ("My order number is 1234", |s| s == 0.0, "neutral"),
        ];
        for (text, expected, what) in table {
            let scored = sentiment(text);
            assert!(expected(scored.score), "{what}: {text:?} scored {scored:?}");
        }
        assert_eq!(sentiment("I am not happy").words, ["not happy"]);
    }

    #[test]
    fn urgency_rises_with_urgent_words_shouting_and_exclamations() {
        let calm = sentiment("Could you look at my invoice when you have time");
        let urgent = sentiment("URGENT!!! I need this fixed immediately");
        assert_eq!(calm.urgency, 0.0);
        assert!(urgent.urgency > 0.8, "{urgent:?}");
    }
}
