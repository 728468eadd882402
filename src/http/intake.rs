//! `POST /v1/contacts`: webhook intake. A contact is acknowledged (202) only once the journal has
//! committed it; a retry with the same `Idempotency-Key` gets the first answer and creates
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{ApiError, ApiResult};
use crate::classify::Intake;
use crate::daemon::{Setup, Shared, unix_ms};
use crate::journal::{ContactRecord, Record};
use crate::metrics as m;
use crate::model::Channel;

/// Largest intake body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// How far a signature's timestamp may be from our clock.
const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The JSON a webhook posts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    channel: String,
    body: String,
    #[serde(default)]
    customer: Option<Value>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    skills: BTreeMap<String, u8>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    preferred_agent: Option<String>,
}

/// Checks `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", m);
    let header = header.ok_or_else(|| unauthorized("missing X-Switchboard-Signature"))?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(unauthorized(
            "signature header must be t=<unix seconds>,v1=<hex>",
        ));
    };
    if (now_secs - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(unauthorized(
            "signature timestamp is more than 5 minutes off",
        ));
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1)
        .map_err(|_| unauthorized("signature does not match the body"))
}

/// Refuses a body whose `Content-Type` is not `expected` (415), naming the route.
pub(super) fn require_content_type(
    headers: &HeaderMap,
    expected: &str,
    route: &str,
) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with(expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{route} takes Content-Type: {expected}"),
        ))
    }
}

/// When a webhook secret is set, the body must carry a valid `X-Switchboard-Signature`.
pub(super) fn check_signature(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(secret) = &shared.webhook_secret else {
        return Ok(());
    };
    let signature = headers
        .get("x-switchboard-signature")
        .and_then(|v| v.to_str().ok());
    verify_signature(secret, signature, body, (unix_ms() / 1000) as i64)
}

pub(super) async fn post_contact(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let body = body.map_err(super::body_error)?;
    require_content_type(&headers, "application/json", "POST /v1/contacts")?;
    if body.len() > MAX_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body over {MAX_BODY} bytes"),
        ));
    }
    check_signature(&shared, &headers, &body)?;
    let parsed: ContactBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
    let unprocessable = |code, m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, m);
    let channel: Channel = parsed
        .channel
        .parse()
        .map_err(|e: crate::model::UnknownChannel| {
            unprocessable("unknown_channel", e.to_string())
        })?;
    let setup = shared.setup();
    if let Some(queue) = &parsed.queue
        && !setup.takes_queue(queue)
    {
        return Err(unprocessable(
            "unknown_queue",
            format!("unknown queue {queue:?}"),
        ));
    }
    for (skill, &level) in &parsed.skills {
        if !setup.knows_skill(skill) {
            return Err(unprocessable(
                "unknown_skill",
                format!("unknown skill {skill:?}"),
            ));
        }
        if !crate::model::SKILL_LEVELS.contains(&level) {
            return Err(unprocessable(
                "invalid_level",
                format!("skills.{skill}: level {level} out of range 1-10"),
            ));
        }
    }

    if let Some(agent) = &parsed.preferred_agent
        && !shared.agents.contains_key(agent)
    {
        return Err(unprocessable(
            "unknown_agent",
            format!("unknown preferred_agent {agent:?}"),
        ));
    }
    if let Some(url) = &parsed.callback_url
        && let Err(e) = crate::notify::check_url(url)
    {
        return Err(unprocessable("invalid_callback_url", e.to_string()));
    }

    if shared.contacts.len() >= shared.max_open_contacts {
        return Err(ApiError::unavailable(format!(
            "over capacity: {} contacts open (SWITCHBOARD_MAX_OPEN_CONTACTS); try later",
            shared.max_open_contacts
        )));
    }

    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &key {
        match shared.idempotency.entry(key.clone()) {
            dashmap::Entry::Occupied(seen) => {
                return match seen.get() {
                    Some(answer) => {
                        Ok((StatusCode::ACCEPTED, axum::Json(answer.clone())).into_response())
                    }
                    None => Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "in_progress",
                        "a request with this Idempotency-Key is still being processed",
                    )),
                };
            }
            dashmap::Entry::Vacant(slot) => {
                slot.insert(None);
            }
        }
    }
    // The commit and the hand-off to the router run in their own task: hyper drops this
    // handler when the client hangs up, and a contact the journal has committed (or is about
    // to) must still be routed and its key must still get its answer, or the contact would sit
    // unrouted until a restart and every retry would collide with the journaled key.
    let answer = tokio::spawn(accept_once(shared.clone(), setup, parsed, channel, key))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("intake failed: {e}"),
            )
        })??;
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

/// Accepts the contact and records the answer under its idempotency key; on failure the key is
/// released so that a retry is not stuck answering 409.
async fn accept_once(
    shared: Arc<Shared>,
    setup: Arc<Setup>,
    parsed: ContactBody,
    channel: Channel,
    key: Option<String>,
) -> Result<Value, ApiError> {
    let mut pending = PendingKey {
        shared: &shared,
        key: key.clone(),
    };
    let answer = accept(&shared, &setup, parsed, channel, key).await?;
    if let Some(key) = pending.key.take() {
        shared.idempotency.insert(key, Some(answer.clone()));
    }
    Ok(answer)
}

/// An idempotency key claimed by a request in flight.
struct PendingKey<'a> {
    shared: &'a Shared,
    key: Option<String>,
}

impl Drop for PendingKey<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared
                .idempotency
                .remove_if(&key, |_, answer| answer.is_none());
        }
    }
}

/// Classifies and journals the contact, then hands it to the router. Returns the 202 body.
async fn accept(
    shared: &Shared,
    setup: &Setup,
    parsed: ContactBody,
    channel: Channel,
    key: Option<String>,
) -> Result<Value, ApiError> {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let decision = crate::channels::classify(
        setup,
        Intake {
            channel: channel.as_str(),
            subject: parsed.subject.as_deref().unwrap_or(""),
            body: &parsed.body,
            customer: parsed.customer.as_ref(),
            attributes: parsed.attributes.as_ref(),
            queue: parsed.queue.as_deref(),
            fallback_queue: &setup.config.routing.default_queue,
            priority: parsed.priority,
            skills: parsed.skills.clone(),
            preferred_agent: parsed.preferred_agent.as_deref(),
            ..Intake::default()
        },
        id,
    );
    let mut record = ContactRecord {
        id,
        channel: channel.as_str().to_owned(),
        queue: String::new(),
        skills: Default::default(),
        priority: 0,
        arrived_at: unix_ms(),
        preferred_agent: None,
        payload: json!({
            "customer": parsed.customer,
            "subject": parsed.subject,
            "body": parsed.body,
            "attributes": parsed.attributes,
            "callback_url": parsed.callback_url,
        }),
        sla: None,
        classification: None,
    };
    crate::channels::apply_decision(shared, decision, &mut record);
    // An explicitly named preferred agent was checked above; keep it even if it went away
    // since (the router holds the contact for it only for the queue's timeout).
    if parsed.preferred_agent.is_some() {
        record.preferred_agent = parsed.preferred_agent;
    }
    let queue = record.queue.clone();
    let priority = record.priority;
    let answer =
        json!({"id": id.to_string(), "status": "queued", "queue": queue, "priority": priority});
    let accepted = Record::Accepted {
        contact: record.clone(),
        idempotency_key: key,
        response: answer.clone(),
    };
    shared
        .journal
        .append(vec![accepted])
        .await
        .map_err(|e| ApiError::unavailable(format!("journal cannot commit: {e}")))?;
    metrics::counter!(m::CONTACTS_RECEIVED, "channel" => channel.as_str(), "queue" => queue)
        .increment(1);

    // Durable from here on: the answer is 202 whatever happens next, and the key keeps it. A
    // contact the running plan cannot route (logged by `route`) is routed on the next start,
    // where a queue the configuration lost drains with default rules; refusing it now would
    // leave a committed contact behind an idempotency key every retry collides with.
    let _ = crate::channels::route(shared, record).await;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_signature_over_timestamp_and_body_is_accepted() {
        let header = sign("s3cret", 1_000, b"{}");
        assert!(verify_signature("s3cret", Some(&header), b"{}", 1_010).is_ok());
    }

    #[test]
    fn a_wrong_stale_or_missing_signature_is_refused() {
        let header = sign("s3cret", 1_000, b"{}");
        assert!(verify_signature("other", Some(&header), b"{}", 1_000).is_err());
        assert!(verify_signature("s3cret", Some(&header), b"{\"x\":1}", 1_000).is_err());
        assert!(verify_signature("s3cret", Some(&header), b"{}", 1_000 + 301).is_err());
        assert!(verify_signature("s3cret", None, b"{}", 1_000).is_err());
        assert!(verify_signature("s3cret", Some("garbage"), b"{}", 1_000).is_err());
    }
}
