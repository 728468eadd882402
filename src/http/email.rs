//! Email over HTTP: `POST /v1/email/inbound` for providers' inbound-parse webhooks (a raw RFC
//! 5322 message), and the admin views of the outbox and of a contact's messages and transcript
//! (chat and email alike).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, require_admin};
use crate::channels::email::{Arrival, EmailError};
use crate::daemon::Shared;

/// `POST /v1/email/inbound`: 202 once the message is durable, with what became of it.
pub(super) async fn post_inbound(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let body = body.map_err(super::body_error)?;
    super::intake::require_content_type(&headers, "message/rfc822", "POST /v1/email/inbound")?;
    if body.len() > shared.email.config.max_message_size {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "message over {} bytes (email.max_message_size)",
                shared.email.config.max_message_size
            ),
        ));
    }
    super::intake::check_signature(&shared, &headers, &body)?;
    // Delivered in its own task, as `POST /v1/contacts` commits: a sender hanging up must not
    // cut a message between its commit and its hand-off to the router.
    let delivering = shared.clone();
    let delivered = tokio::spawn(async move {
        delivering
            .email
            .deliver(&delivering, body.to_vec(), Arrival::default())
            .await
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("delivery failed: {e}"),
        )
    })?
    .map_err(|e| match e {
        EmailError::Parse(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_message", e.to_string())
        }
        EmailError::UnknownMailbox(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_mailbox",
            e.to_string(),
        ),
        EmailError::RateLimited(_) => {
            let mut error =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string());
            error.retry_after = Some(60);
            error
        }
        EmailError::Journal(_) | EmailError::OverCapacity(_) => {
            ApiError::unavailable(e.to_string())
        }
    })?;
    let body = json!({
        "id": delivered.contact().to_string(),
        "status": delivered.as_str(),
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Query of `GET /v1/email/outbox`.
#[derive(Debug, Deserialize)]
pub(super) struct OutboxQuery {
    /// Only mail not yet sent or given up.
    #[serde(default)]
    pending: bool,
    /// At most this many, newest first.
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// `GET /v1/email/outbox` (admin): outgoing mail and what became of it.
pub(super) async fn get_outbox(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<OutboxQuery>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let journal = shared.journal.clone();
    let limit = query.limit.min(10_000);
    let mails = tokio::task::spawn_blocking(move || journal.outbox(query.pending, limit))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let relay = shared.email.relay.is_some();
    Ok(axum::Json(json!({ "relay_configured": relay, "mail": mails })).into_response())
}

/// `GET /v1/contacts/{id}/messages` (admin): a contact's messages in order, parsed, with the
/// raw message's size (the raw bytes stay in the journal).
pub(super) async fn get_messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let Ok(id) = id.parse::<u64>() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no contact {id:?}"),
        ));
    };
    let journal = shared.journal.clone();
    let messages = tokio::task::spawn_blocking(move || journal.messages(id))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let messages: Vec<_> = messages
        .into_iter()
        .map(|m| {
            json!({
                "direction": m.direction,
                "message_id": m.message_id,
                "at": m.at,
                "size": m.raw.len(),
                "parsed": m.parsed,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "contact_id": id.to_string(), "messages": messages })).into_response())
}

/// `GET /v1/contacts/{id}/transcript` (admin): the conversation as people read it, in order:
/// who said what and when, for chat and email alike, and the customer's rating if any.
pub(super) async fn get_transcript(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    require_admin(&shared, &headers)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no contact {id:?}"),
        )
    };
    let contact: u64 = id.parse().map_err(|_| not_found())?;
    let journal = shared.journal.clone();
    let (stored, messages) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::journal::JournalError>((
            journal.lookup(contact)?,
            journal.messages(contact)?,
        ))
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let stored = stored.ok_or_else(not_found)?;
    let mut rating = serde_json::Value::Null;
    let mut lines = Vec::new();
    for m in messages {
        match m.direction.as_str() {
            "rating" => rating = m.parsed,
            direction => {
                let from = m.parsed.get("from").cloned().unwrap_or_else(|| {
                    json!(if direction == "inbound" {
                        "customer"
                    } else {
                        "agent"
                    })
                });
                let from = match from {
                    serde_json::Value::Object(mailbox) => mailbox
                        .get("address")
                        .cloned()
                        .unwrap_or(serde_json::Value::Null),
                    other => other,
                };
                lines.push(json!({
                    "direction": direction,
                    "from": from,
                    "text": m.parsed.get("text").cloned().unwrap_or_default(),
                    "at": m.at,
                }));
            }
        }
    }
    Ok(axum::Json(json!({
        "contact_id": contact.to_string(),
        "channel": stored.contact.channel,
        "queue": stored.contact.queue,
        "status": stored.status,
        "messages": lines,
        "rating": rating,
    }))
    .into_response())
}
