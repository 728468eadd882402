//! Outgoing mail: acknowledgements to new email contacts and agents' replies, composed with
//! lettre, kept in the journal's outbox until the relay takes them.
//!
//! Mail is durable before anyone is told it was sent: composing it journals an `Outgoing`
//! record (and the outbound message of the conversation) in the same commit as whatever caused
//! it. The sender task then works through the outbox: a relay's permanent refusal (5xx) fails
//! the mail at once, anything else is retried with exponential backoff (`email.retry_base`,
//! 10 s by default, doubling to an hour, `email.max_attempts` attempts), and every attempt is
//! recorded on the contact. With no
//! relay configured nothing is sent: mail waits in the outbox (`GET /v1/email/outbox`, the
//! `switchboard_email_outbox_pending` gauge) rather than being dropped.

use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{info, warn};

use super::EmailChannel;
use super::parse::InboundEmail;
use crate::daemon::{Shared, unix_ms};
use crate::journal::{ContactRecord, MessageRecord, OutgoingMail, Record, UnixMillis};
use crate::metrics as m;

/// How long one SMTP conversation with the relay may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why mail could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The contact has no address to answer.
    #[error("contact {0} has no customer address to reply to")]
    NoRecipient(u64),
    /// The contact's queue has no mailbox to send from.
    #[error("queue {0} has no mailbox in [email.mailboxes] to send from")]
    NoSender(String),
    /// An address lettre refuses.
    #[error("invalid address {0:?}: {1}")]
    Address(String, String),
    /// lettre could not build the message.
    #[error("cannot compose the message: {0}")]
    Compose(String),
}

/// Composed mail and the conversation entry that goes with it, ready to journal.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The outbox entry.
    pub mail: OutgoingMail,
    message: MessageRecord,
}

impl Prepared {
    /// The journal records that make it durable.
    pub fn records(&self) -> [Record; 2] {
        [
            Record::Outgoing(self.mail.clone()),
            Record::Message(self.message.clone()),
        ]
    }
}

/// The acknowledgement of a new email contact, if its queue sends one and the message may be
/// answered automatically (RFC 3834: never to automatic mail, lists or bounces).
pub fn acknowledgement(
    channel: &EmailChannel,
    shared: &Shared,
    record: &ContactRecord,
    email: &InboundEmail,
    now: UnixMillis,
) -> Option<Prepared> {
    let ack = &channel.config.acknowledgement;
    if !ack.queues.contains(&record.queue) || email.automation.no_auto_reply() {
        return None;
    }
    let plan = &shared.setup().plan;
    let policy = match record
        .sla
        .as_deref()
        .and_then(|name| plan.sla_policy_id(name))
    {
        Some(id) => plan.sla_policies.get(usize::from(id.0)),
        None => plan.queue_id(&record.queue).map(|q| &plan.queue(q).sla),
    };
    let response_time = policy
        .map(|policy| policy.first_response)
        .map(|ms| crate::config::duration::display(Duration::from_millis(ms)))
        .unwrap_or_default();
    let subject = email.subject.as_deref().unwrap_or("your message");
    let fill = |template: &str| {
        template
            .replace("{id}", &record.id.to_string())
            .replace("{subject}", subject)
            .replace("{response_time}", &response_time)
    };
    let subject = with_token(&fill(&ack.subject), record.id);
    match compose(
        channel,
        record,
        "acknowledgement",
        &subject,
        &fill(&ack.body),
        now,
    ) {
        Ok(prepared) => Some(prepared),
        Err(e) => {
            warn!(
                contact = record.id,
                queue = %record.queue,
                channel = %record.channel,
                error = %e,
                "no acknowledgement sent"
            );
            None
        }
    }
}

/// An agent's reply on an email contact, threaded to the customer's latest message.
pub fn reply(
    channel: &EmailChannel,
    record: &ContactRecord,
    text: &str,
    now: UnixMillis,
) -> Result<Prepared, OutboundError> {
    let subject = record
        .payload
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or("your message");
    let subject = if subject
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("re:"))
    {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    };
    compose(
        channel,
        record,
        "reply",
        &with_token(&subject, record.id),
        text,
        now,
    )
}

/// Adds the contact token `[#id]` to a subject that does not carry it.
fn with_token(subject: &str, id: u64) -> String {
    if super::parse::contact_token(subject) == Some(id) {
        subject.to_owned()
    } else {
        format!("{subject} [#{id}]")
    }
}

/// Builds a message from the queue's mailbox to the customer, threaded with In-Reply-To and
/// References to the contact's latest inbound message.
fn compose(
    channel: &EmailChannel,
    record: &ContactRecord,
    kind: &str,
    subject: &str,
    body: &str,
    now: UnixMillis,
) -> Result<Prepared, OutboundError> {
    let email = record.payload.get("email");
    let to = email
        .and_then(|e| e.get("reply_to"))
        .and_then(Value::as_str)
        .or_else(|| {
            record
                .payload
                .pointer("/customer/email")
                .and_then(Value::as_str)
        })
        .ok_or(OutboundError::NoRecipient(record.id))?;
    let from = record
        .payload
        .pointer("/attributes/mailbox")
        .and_then(Value::as_str)
        .filter(|mailbox| channel.config.queue_for(mailbox).is_some())
        .or_else(|| channel.config.address_of(&record.queue))
        .ok_or_else(|| OutboundError::NoSender(record.queue.clone()))?;
    let parse = |address: &str| {
        address
            .parse::<Mailbox>()
            .map_err(|e| OutboundError::Address(address.to_owned(), e.to_string()))
    };
    let (from_box, to_box) = (parse(from)?, parse(to)?);
    let message_id = format!(
        "{}.{kind}.{}@{}",
        record.id,
        hex::encode(random_bytes()),
        channel.config.hostname
    );
    let mut builder = Message::builder()
        .from(from_box.clone())
        .to(to_box.clone())
        .subject(subject)
        .message_id(Some(format!("<{message_id}>")))
        .header(ContentType::TEXT_PLAIN);
    if kind == "acknowledgement" {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".into(),
        ));
    }
    let parent = email
        .and_then(|e| e.get("message_id"))
        .and_then(Value::as_str);
    if let Some(parent) = parent {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references: Vec<String> = email
        .and_then(|e| e.get("references"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(|id| format!("<{id}>"))
                .collect()
        })
        .unwrap_or_default();
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    let message = builder
        .body(body.to_owned())
        .map_err(|e| OutboundError::Compose(e.to_string()))?;
    let raw = message.formatted();
    let mail = OutgoingMail {
        message_id: message_id.clone(),
        contact: record.id,
        kind: kind.into(),
        mail_from: from_box.email.to_string(),
        recipients: vec![to_box.email.to_string()],
        raw: raw.clone(),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
    };
    let message = MessageRecord {
        contact: record.id,
        direction: "outbound".into(),
        message_id: Some(message_id),
        raw,
        parsed: json!({
            "kind": kind,
            "from": mail.mail_from,
            "to": mail.recipients,
            "subject": subject,
            "text": body,
        }),
        at: now,
    };
    Ok(Prepared { mail, message })
}

fn random_bytes() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    // Uniqueness only (the contact id and time are in the id too); never fails on Linux.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

/// Meters mail that was just made durable.
pub fn queued(mail: &OutgoingMail) {
    metrics::counter!(m::EMAIL_SENT, "kind" => mail.kind.clone(), "outcome" => "queued")
        .increment(1);
}

/// The wait before attempt `attempts + 1` after a transient failure: `base` doubling per
/// attempt, at most an hour.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(Duration::from_secs(3600))
}

/// The outbox sender: sends due mail through the relay, records every attempt, sleeps until
/// the next is due or new mail is queued. Runs until `stop`.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let channel = &shared.email;
    let transport =
        channel.relay.as_deref().and_then(
            |url| match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
                Ok(builder) => Some(builder.timeout(Some(RELAY_TIMEOUT)).build()),
                Err(e) => {
                    warn!(error = %e, "invalid SMTP relay URL; outgoing mail stays in the outbox");
                    None
                }
            },
        );
    if transport.is_none() {
        info!(
            "no SMTP relay configured: outgoing mail is kept in the outbox (GET /v1/email/outbox)"
        );
    }
    loop {
        let journal = shared.journal.clone();
        let pending = tokio::task::spawn_blocking(move || journal.outbox(true, 1000))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        metrics::gauge!(m::EMAIL_OUTBOX).set(pending.len() as f64);
        let now = unix_ms();
        let mut next_due = None;
        let mut attempted = false;
        for mail in pending {
            if *stop.borrow() {
                return;
            }
            let Some(transport) = &transport else { break };
            if mail.next_attempt_at > now {
                next_due = Some(
                    next_due.map_or(mail.next_attempt_at, |d: u64| d.min(mail.next_attempt_at)),
                );
                continue;
            }
            if !attempt(&shared, transport, mail).await {
                // The journal cannot record attempts: sending more now would repeat them.
                tokio::time::sleep(Duration::from_secs(5)).await;
                break;
            }
            attempted = true;
        }
        if attempted {
            // Read the outbox again: the attempts just made set new due times.
            continue;
        }
        let wait = next_due.map_or(Duration::from_secs(30), |at| {
            Duration::from_millis(at.saturating_sub(unix_ms())).min(Duration::from_secs(30))
        });
        tokio::select! {
            _ = channel.outbox_ready.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One delivery attempt, recorded in the journal whatever happens; false if the record could
/// not be written.
async fn attempt(
    shared: &Shared,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    mail: OutgoingMail,
) -> bool {
    let config = &shared.email.config;
    let attempts = mail.attempts + 1;
    let envelope = envelope(&mail);
    let result = match envelope {
        Ok(envelope) => transport
            .send_raw(&envelope, &mail.raw)
            .await
            .map(|_| ())
            .map_err(|e| (e.is_permanent(), e.to_string())),
        Err(e) => Err((true, e)),
    };
    let now = unix_ms();
    let (status, next, error) = match result {
        Ok(()) => ("sent", now, None),
        Err((permanent, e)) if permanent || attempts >= config.max_attempts => {
            ("failed", now, Some(e))
        }
        Err((_, e)) => (
            "pending",
            now + crate::config::duration::millis(backoff(config.retry_base, attempts)),
            Some(e),
        ),
    };
    let outcome = match status {
        "pending" => "retried",
        other => other,
    };
    metrics::counter!(m::EMAIL_SENT, "kind" => mail.kind.clone(), "outcome" => outcome)
        .increment(1);
    if let Some(e) = &error {
        let queue = queue_of(shared, mail.contact).await;
        warn!(contact = mail.contact, %queue, channel = "email", message_id = %mail.message_id, attempts, status, error = %e, "outgoing mail not delivered");
    }
    let record = Record::Delivery {
        contact: mail.contact,
        message_id: mail.message_id,
        status: status.into(),
        attempts,
        next_attempt_at: next,
        last_error: error,
        at: now,
    };
    match shared.journal.append(vec![record]).await {
        Ok(()) => true,
        Err(e) => {
            // The mail stays pending in the journal: it is tried again (at worst sent twice).
            let queue = queue_of(shared, mail.contact).await;
            warn!(contact = mail.contact, %queue, channel = "email", error = %e, "cannot record a delivery attempt");
            false
        }
    }
}

/// The queue of a mail's contact, for its log lines. A reply goes out after its contact
/// closed, when only the journal knows the queue: read it there (this runs only on failures,
/// which are rare and retried minutes apart).
async fn queue_of(shared: &Shared, contact: u64) -> String {
    if let Some(record) = shared.contacts.get(&contact) {
        return record.queue.clone();
    }
    let journal = shared.journal.clone();
    tokio::task::spawn_blocking(move || journal.lookup(contact))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .map(|stored| stored.contact.queue)
        .unwrap_or_default()
}

fn envelope(mail: &OutgoingMail) -> Result<Envelope, String> {
    let from = mail
        .mail_from
        .parse()
        .map_err(|e| format!("sender {:?}: {e}", mail.mail_from))?;
    let to = mail
        .recipients
        .iter()
        .map(|r| r.parse().map_err(|e| format!("recipient {r:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_to_an_hour() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 10), Duration::from_secs(3600));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }

    #[test]
    fn the_token_is_added_once() {
        assert_eq!(with_token("Re: Refund", 7), "Re: Refund [#7]");
        assert_eq!(with_token("Re: Refund [#7]", 7), "Re: Refund [#7]");
        assert_eq!(with_token("Re: [#8]", 7), "Re: [#8] [#7]");
    }
}
