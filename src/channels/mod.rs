//! Channel adapters: outside input becomes contacts for the intake, and replies go back out the
//! way they came.
//!
//! - [`email`]: SMTP/LMTP listeners and `POST /v1/email/inbound`, parsing, threading, and
//!   outgoing mail (acknowledgements, agent replies) through lettre.
//! - [`chat`]: the customer chat websocket, with its menu, live position and survey.

pub mod chat;
pub mod email;

use std::sync::Arc;
use std::time::Instant;

use crate::classify::{Decision, Intake};
use crate::daemon::{Command, Setup, Shared};
use crate::journal::ContactRecord;
use crate::metrics as m;

/// Classifies a new contact with the running rules. Never fails and never drops the contact:
/// a rule that errors on this contact is logged with its name and metered, and counts as not
/// matching; a panic inside classification (a bug in a dependency on odd input) is caught and
/// the contact keeps its intake routing.
pub(crate) fn classify(setup: &Setup, mut intake: Intake<'_>, contact: u64) -> Decision {
    intake.at(&jiff::Timestamp::now().to_zoned(setup.time_zone.clone()));
    let started = Instant::now();
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup.classifier.classify(&intake)
    }));
    metrics::histogram!(m::CLASSIFY_SECONDS).record(started.elapsed().as_secs_f64());
    let decision = match decided {
        Ok(decision) => decision,
        Err(_) => {
            tracing::error!(
                contact,
                queue = intake.queue.unwrap_or(intake.fallback_queue),
                channel = intake.channel,
                "classification panicked; the contact keeps its intake routing"
            );
            metrics::counter!(m::CLASSIFICATION_ERRORS, "rule" => "(classifier)").increment(1);
            Decision::unclassified(&intake)
        }
    };
    for failure in &decision.explanation.rules.failed {
        tracing::warn!(
            contact,
            queue = %decision.queue,
            channel = intake.channel,
            rule = %failure.rule,
            error = %failure.error,
            "classification rule failed on this contact; treated as not matching"
        );
        metrics::counter!(m::CLASSIFICATION_ERRORS, "rule" => failure.rule.clone()).increment(1);
    }
    for rule in &decision.explanation.rules.matched {
        metrics::counter!(m::RULE_MATCHES, "rule" => rule.clone()).increment(1);
    }
    decision
}

/// Writes a decision into a contact record: routing fields, tags and rule-set attributes in
/// the payload (agents see them in the offer), and the explanation for `GET /v1/contacts/{id}`.
/// A preferred agent a rule names who does not exist (agents come and go through the admin
/// API) is left out rather than holding the contact for nobody.
pub(crate) fn apply_decision(shared: &Shared, decision: Decision, record: &mut ContactRecord) {
    record.queue = decision.queue;
    record.skills = decision.skills;
    record.priority = decision.priority;
    record.sla = decision.sla;
    record.preferred_agent = decision
        .preferred_agent
        .filter(|agent| shared.agents.contains_key(agent));
    if let Some(payload) = record.payload.as_object_mut() {
        if !decision.attributes.is_empty() {
            let attributes = payload
                .entry("attributes")
                .or_insert_with(|| serde_json::json!({}));
            if attributes.is_null() {
                *attributes = serde_json::json!({});
            }
            // Attributes sent as something else than an object (a list, a string) are kept
            // as sent; the rules' attributes are then only in the explanation.
            if let Some(map) = attributes.as_object_mut() {
                for (key, value) in &decision.attributes {
                    map.insert(key.clone(), serde_json::Value::String(value.clone()));
                }
            }
        }
        if !decision.tags.is_empty() {
            payload.insert("tags".into(), serde_json::json!(decision.tags));
        }
    }
    record.classification = serde_json::value::to_raw_value(&decision.explanation)
        .ok()
        .map(crate::journal::JsonText);
}

/// Adds a later customer message to the open contact's body, so an agent offered it later
/// sees everything the customer wrote, not only the first message.
pub(crate) fn append_to_body(shared: &Shared, contact: u64, text: &str) {
    let Some(mut entry) = shared.contacts.get_mut(&contact) else {
        return;
    };
    let mut record = (**entry).clone();
    if let Some(body) = record.payload.get_mut("body") {
        let joined = match body.as_str() {
            Some(before) if !before.is_empty() => format!("{before}\n\n{text}"),
            _ => text.to_owned(),
        };
        *body = serde_json::Value::String(joined);
    }
    *entry = Arc::new(record);
}

/// Hands a journaled contact to the router: every intake (webhook, email, chat) ends here.
/// `Err` when the record names something the routing plan does not know.
pub(crate) async fn route(shared: &Shared, record: ContactRecord) -> Result<(), String> {
    let id = record.id;
    let (queue, channel) = (record.queue.clone(), record.channel.clone());
    let contact =
        crate::http::new_contact_from_record(&shared.setup().plan, &record).inspect_err(|e| {
            tracing::warn!(
                contact = id,
                queue = %record.queue,
                channel = %record.channel,
                error = %e,
                "journaled contact cannot be routed"
            );
        })?;
    shared.contacts.insert(id, Arc::new(record));
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Durable already: if the router is gone (shutting down) the contact is replayed on start.
    if shared
        .router
        .send(Command::Queue { contact, reply: tx })
        .await
        .is_ok()
        && let Ok(Err(e)) = rx.await
    {
        tracing::warn!(contact = id, %queue, %channel, error = %e, "router refused a journaled contact");
    }
    Ok(())
}
