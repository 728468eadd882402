//! Classification: deciding a contact's queue, skills, priority and SLA policy from what it
//! says and who sent it. Pure: no IO, no clock (the hour and weekday come in with the intake).
//!
//! - `intent.rs`: intent detection, a linear model over word and character n-grams trained
//!   from a labeled CSV.
//! - `signals.rs`: language (whatlang) and a lexicon sentiment and urgency score.
//! - `rules.rs`: ordered CEL rules with routing actions.
//!
//! A [`Classifier`] runs the three in order, once per contact: signals and intent first (rules
//! read them), then the rules. The [`Decision`] carries an [`Explanation`] (signals, the rules
//! that matched, the ones that failed) that the contact record keeps.
//!
//! What the intake said explicitly wins over a rule for single values: a webhook that names a
//! queue or a priority, or a chat menu option that picks a queue, is a deliberate choice by an
//! integration the center configured, so rules add tags, attributes and priority boosts on top
//! but do not move it; a rule that names a queue of its own then applies none of its routing
//! (queue, skills, SLA, preferred agent), which belongs to that queue. Rules without a queue
//! (a language rule adding a skill) apply in full. Rules decide the queue for everything else (free-text chat, mail to a
//! mailbox whose queue is only a default, webhooks that leave the queue out); a rule condition
//! can read the requested queue as `queue` ("" when none).
//!
//! Signals read the head of the text: sentiment the subject and the first
//! [`SIGNAL_TEXT_LIMIT`] bytes of the body, intent the first [`INTENT_TEXT_LIMIT`] bytes of
//! that, language the first [`LANGUAGE_TEXT_LIMIT`]. The intent and tone of a customer
//! message are in its opening lines, a 1 MB pasted log must not cost milliseconds, and the
//! per-byte costs differ (measured in docs/performance.md: language detection is the most
//! expensive by far). Rules' `keyword` and `regex` see the whole text.

pub mod intent;
mod quick;
pub mod rules;
pub mod signals;

use std::collections::BTreeMap;

use intent::IntentModel;
use rules::{Facts, Outcome, RuleSet};
use signals::{Language, Sentiment};

/// Bytes of the body that sentiment reads (with the subject).
pub const SIGNAL_TEXT_LIMIT: usize = 1_000;
/// Bytes of the text (subject and body) the intent model reads: customers state what they
/// want first, and the model was trained on messages of a sentence or two.
pub const INTENT_TEXT_LIMIT: usize = 500;
/// Bytes of the text (subject and body) that language detection reads: two or three
/// sentences tell a language apart, and detection costs a few tenths of a microsecond a byte.
pub const LANGUAGE_TEXT_LIMIT: usize = 200;

/// A contact as classification sees it.
#[derive(Clone, Debug, Default)]
pub struct Intake<'a> {
    /// Channel name ("email", "chat", "sms", ...).
    pub channel: &'a str,
    /// Subject line ("" when none).
    pub subject: &'a str,
    /// Message body.
    pub body: &'a str,
    /// Customer fields as the intake received them.
    pub customer: Option<&'a serde_json::Value>,
    /// Intake attributes.
    pub attributes: Option<&'a serde_json::Value>,
    /// Queue the intake named explicitly.
    pub queue: Option<&'a str>,
    /// Where the contact goes when neither the intake nor a rule names a queue (the
    /// mailbox's queue, or `routing.default_queue`).
    pub fallback_queue: &'a str,
    /// Priority the intake gave explicitly.
    pub priority: Option<i32>,
    /// Skills the intake asked for.
    pub skills: BTreeMap<String, u8>,
    /// Preferred agent the intake named.
    pub preferred_agent: Option<&'a str>,
    /// Hour of the day, 0-23, in the center's time zone.
    pub hour: u8,
    /// Day of the week: "mon" ... "sun".
    pub weekday: &'a str,
}

impl Intake<'_> {
    /// Sets `hour` and `weekday` from a time in the center's time zone.
    pub fn at(&mut self, time: &jiff::Zoned) {
        use jiff::civil::Weekday::*;
        self.hour = u8::try_from(time.hour()).unwrap_or(0);
        self.weekday = match time.weekday() {
            Monday => "mon",
            Tuesday => "tue",
            Wednesday => "wed",
            Thursday => "thu",
            Friday => "fri",
            Saturday => "sat",
            Sunday => "sun",
        };
    }
}

/// The intent the model saw, with its confidence.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DetectedIntent {
    /// The intent's label from the training file.
    pub name: String,
    /// Confidence, 0 to 1.
    pub confidence: f64,
}

/// Signals derived from the text, once per contact.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Signals {
    /// Language, when whatlang can tell.
    pub language: Option<Language>,
    /// Intent, when a model is configured.
    pub intent: Option<DetectedIntent>,
    /// Sentiment and urgency.
    pub sentiment: Sentiment,
}

/// Why the contact was routed the way it was.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Explanation {
    /// What decided the queue: "intake", "rule" or "default".
    pub queue_from: &'static str,
    /// Signals the rules could read.
    pub signals: Signals,
    /// What the rules did.
    pub rules: Outcome,
}

/// Where a contact goes and how urgently.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Decision {
    /// Target queue.
    pub queue: String,
    /// Required skills: the intake's merged with the rules' (the higher level wins).
    pub skills: BTreeMap<String, u8>,
    /// Priority before the queue's own is added.
    pub priority: i32,
    /// SLA policy replacing the queue's, if a rule set one.
    pub sla: Option<String>,
    /// Preferred agent.
    pub preferred_agent: Option<String>,
    /// Tags from the rules.
    pub tags: Vec<String>,
    /// Attributes set by the rules.
    pub attributes: BTreeMap<String, String>,
    /// The reasons.
    pub explanation: Explanation,
}

/// Rules plus the optional intent model: everything classification needs, built once per
/// configuration load.
#[derive(Debug)]
pub struct Classifier {
    rules: RuleSet,
    intents: Option<IntentModel>,
    languages: whatlang::Detector,
}

impl Classifier {
    /// A classifier from compiled rules and an optional trained intent model.
    pub fn new(rules: RuleSet, intents: Option<IntentModel>) -> Self {
        Classifier {
            rules,
            intents,
            languages: whatlang::Detector::new(),
        }
    }

    /// Limits language detection to these languages (ISO 639-3 codes whatlang knows; unknown
    /// ones are ignored, and an empty list means every language).
    pub fn with_languages(mut self, codes: &[String]) -> Self {
        let known: Vec<whatlang::Lang> = codes
            .iter()
            .filter_map(|c| whatlang::Lang::from_code(c.as_str()))
            .collect();
        if !known.is_empty() {
            self.languages = whatlang::Detector::with_allowlist(known);
        }
        self
    }

    /// A classifier with no rules and no model: every contact keeps its intake routing.
    pub fn empty() -> Self {
        Classifier::new(RuleSet::compile(&[]).expect("no rules compile"), None)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The intent model, if one is configured.
    pub fn intent_model(&self) -> Option<&IntentModel> {
        self.intents.as_ref()
    }

    /// Signals of a text (subject and body).
    pub fn signals(&self, subject: &str, body: &str) -> Signals {
        let head = truncate(body, SIGNAL_TEXT_LIMIT);
        let text = if subject.is_empty() {
            head.to_owned()
        } else {
            format!("{subject}\n{head}")
        };
        Signals {
            language: signals::language_with(&self.languages, truncate(&text, LANGUAGE_TEXT_LIMIT)),
            // No words, no intent: an empty chat or an attachment-only mail must not get the
            // model's arbitrary pick for a zero vector.
            intent: self
                .intents
                .as_ref()
                .filter(|_| text.chars().any(char::is_alphanumeric))
                .map(|model| {
                    let (name, confidence) = model.classify(truncate(&text, INTENT_TEXT_LIMIT));
                    DetectedIntent {
                        name: name.to_owned(),
                        confidence: f64::from(confidence),
                    }
                }),
            sentiment: signals::sentiment(&text),
        }
    }

    /// Classifies one contact.
    pub fn classify(&self, intake: &Intake<'_>) -> Decision {
        let signals = self.signals(intake.subject, intake.body);
        let facts = Facts {
            channel: intake.channel,
            subject: intake.subject,
            body: intake.body,
            customer: intake.customer,
            attributes: intake.attributes,
            queue: intake.queue.unwrap_or(""),
            language: signals.language.map(|l| l.code).unwrap_or(""),
            intent: signals.intent.as_ref().map_or("", |i| i.name.as_str()),
            intent_confidence: signals.intent.as_ref().map_or(0.0, |i| i.confidence),
            sentiment: signals.sentiment.score,
            urgency: signals.sentiment.urgency,
            hour: intake.hour,
            weekday: intake.weekday,
        };
        let outcome = self.rules.evaluate(&facts);
        let (queue, queue_from) = match (intake.queue, &outcome.queue) {
            (Some(q), _) => (q.to_owned(), "intake"),
            (None, Some(q)) => (q.clone(), "rule"),
            (None, None) => (intake.fallback_queue.to_owned(), "default"),
        };
        let mut skills = intake.skills.clone();
        for (skill, &level) in &outcome.skills {
            let entry = skills.entry(skill.clone()).or_insert(level);
            *entry = (*entry).max(level);
        }
        let priority = intake
            .priority
            .or(outcome.priority)
            .unwrap_or(0)
            .saturating_add(outcome.raise_priority);
        Decision {
            queue,
            skills,
            priority,
            sla: outcome.sla.clone(),
            preferred_agent: intake
                .preferred_agent
                .map(str::to_owned)
                .or_else(|| outcome.preferred_agent.clone()),
            tags: outcome.tags.clone(),
            attributes: outcome.attributes.clone(),
            explanation: Explanation {
                queue_from,
                signals,
                rules: outcome,
            },
        }
    }
}

impl Decision {
    /// The routing an intake gets with no classification at all: its own queue (or the
    /// fallback), skills and priority. What a contact falls back to if classification itself
    /// fails.
    pub fn unclassified(intake: &Intake<'_>) -> Decision {
        let queue_from = if intake.queue.is_some() {
            "intake"
        } else {
            "default"
        };
        Decision {
            queue: intake.queue.unwrap_or(intake.fallback_queue).to_owned(),
            skills: intake.skills.clone(),
            priority: intake.priority.unwrap_or(0),
            sla: None,
            preferred_agent: intake.preferred_agent.map(str::to_owned),
            tags: Vec::new(),
            attributes: BTreeMap::new(),
            explanation: Explanation {
                queue_from,
                signals: Signals {
                    language: None,
                    intent: None,
                    sentiment: Sentiment {
                        score: 0.0,
                        urgency: 0.0,
                        words: Vec::new(),
                    },
                },
                rules: Outcome::default(),
            },
        }
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
