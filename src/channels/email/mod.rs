//! Email: inbound over SMTP/LMTP and raw MIME, threading into open contacts, and outbound mail.
//!
//! # An MTA's discipline
//!
//! A message is acknowledged (SMTP 250, HTTP 202) only once the journal has committed it, raw
//! bytes included: parsing may misread a message, but it can never lose one. If the journal
//! cannot commit, the sender hears "try later" (451, 503) and keeps the message.
//!
//! # Where a message goes ([`EmailChannel::deliver`])
//!
//! 1. A Message-ID we already hold: a duplicate, acknowledged and otherwise ignored.
//! 2. In-Reply-To / References naming a message of a contact, or `[#<id>]` in the subject:
//!    the message joins that contact. Open: it is added to the conversation and the assigned
//!    agent gets a `message` frame. Closed less than `reopen_window` ago: the contact reopens,
//!    offered first to its last agent (the router's preferred-agent rule).
//! 3. Otherwise a new email contact in the queue of the first recipient that is one of our
//!    mailboxes, acknowledged to the customer when its queue asks for it and the message is
//!    not automatic (see [`parse::Automation`]).
//!
//! # Layout
//!
//! - `parse.rs`: mail-parser to [`parse::InboundEmail`]; pure.
//! - `smtp.rs`: the SMTP/LMTP server state machine; pure.
//! - `listener.rs`: the tokio listeners that drive it (timeouts, STARTTLS).
//! - `outbound.rs`: acknowledgements and agent replies, the durable outbox and its sender.

pub mod listener;
pub mod outbound;
pub mod parse;
pub mod smtp;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use dashmap::DashMap;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::config::EmailConfig;
use crate::daemon::{Command, Shared, unix_ms};
use crate::gateway::ServerMessage;
use crate::journal::{ContactRecord, JournalError, MessageRecord, Record, UnixMillis};
use crate::metrics as m;
use crate::model::ContactId;
use parse::{InboundEmail, ParseError};

/// The email channel's shared state: configuration, the threading index, sender rate limits,
/// and the outbox sender's wake-up.
pub struct EmailChannel {
    /// The `[email]` configuration.
    pub config: EmailConfig,
    /// Outgoing relay URL (config, or `SWITCHBOARD_SMTP_RELAY`).
    pub relay: Option<String>,
    /// Message-ID to contact, for every message in or out of contacts open or closed within
    /// the reopen window: threading and duplicate detection.
    threads: DashMap<String, u64>,
    /// Per sender address: start of its current window and messages counted in it.
    senders: Mutex<HashMap<String, (UnixMillis, u32)>>,
    /// Wakes the outbox sender when mail is queued.
    pub outbox_ready: Notify,
}

/// What became of a delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// A new contact was created.
    NewContact(u64),
    /// It joined an open contact.
    Joined(u64),
    /// It reopened a recently closed contact.
    Reopened(u64),
    /// A message we already had (same Message-ID); nothing was done.
    Duplicate(u64),
}

impl Delivered {
    /// The contact concerned.
    pub fn contact(&self) -> u64 {
        match *self {
            Delivered::NewContact(id)
            | Delivered::Joined(id)
            | Delivered::Reopened(id)
            | Delivered::Duplicate(id) => id,
        }
    }

    /// Lower-case name for answers and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivered::NewContact(_) => "new_contact",
            Delivered::Joined(_) => "joined",
            Delivered::Reopened(_) => "reopened",
            Delivered::Duplicate(_) => "duplicate",
        }
    }
}

/// Why a message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Nothing to parse.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// No recipient is one of our mailboxes.
    #[error("no recipient is a mailbox of this center ({0})")]
    UnknownMailbox(String),
    /// The sender went over its rate limit.
    #[error("sender {0} sent too many messages; try later")]
    RateLimited(String),
    /// The journal could not commit: the sender must keep the message and retry.
    #[error("journal cannot commit: {0}")]
    Journal(#[from] JournalError),
    /// Too many contacts are open.
    #[error("over capacity: {0} contacts open; try later")]
    OverCapacity(usize),
}

/// How a message arrived: the SMTP envelope, or what an inbound-parse webhook gave.
#[derive(Clone, Debug, Default)]
pub struct Arrival {
    /// `MAIL FROM` (`Some("")` for the null sender); `None` over HTTP.
    pub mail_from: Option<String>,
    /// `RCPT TO` addresses; empty over HTTP, where To and Cc are used.
    pub recipients: Vec<String>,
}

impl EmailChannel {
    /// The channel with its threading index as read from the journal.
    pub fn new(config: EmailConfig, relay: Option<String>, threads: Vec<(String, u64)>) -> Self {
        EmailChannel {
            config,
            relay,
            threads: threads.into_iter().collect(),
            senders: Mutex::new(HashMap::new()),
            outbox_ready: Notify::new(),
        }
    }

    /// Counts one message from `sender` against its rate limit; false when over it.
    pub fn admit_sender(&self, sender: &str, now: UnixMillis) -> bool {
        let limit = self.config.sender_rate_limit;
        if limit.messages == 0 || sender.is_empty() {
            return true;
        }
        let window = crate::config::duration::millis(limit.per);
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if senders.len() > 100_000 {
            // Forget finished windows so a spray of forged senders cannot grow the map forever.
            senders.retain(|_, (start, _)| now.saturating_sub(*start) < window);
        }
        let (start, count) = senders
            .entry(sender.to_ascii_lowercase())
            .or_insert((now, 0));
        if now.saturating_sub(*start) >= window {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= limit.messages
    }

    /// The contact a Message-ID belongs to, if we know it.
    pub fn thread_of(&self, message_id: &str) -> Option<u64> {
        self.threads.get(message_id).map(|c| *c)
    }

    /// Files a Message-ID under its contact, for threading.
    pub fn remember(&self, message_id: &str, contact: u64) {
        self.threads.insert(message_id.to_owned(), contact);
    }

    /// Takes one inbound message: duplicate, join, reopen or new contact (see the module docs).
    /// Returns once everything is committed to the journal.
    pub async fn deliver(
        &self,
        shared: &Shared,
        raw: Vec<u8>,
        arrival: Arrival,
    ) -> Result<Delivered, EmailError> {
        let email = parse::parse(&raw, arrival.mail_from.as_deref())?;
        let now = unix_ms();
        if let Some(id) = email
            .message_id
            .as_deref()
            .and_then(|id| self.thread_of(id))
        {
            metrics::counter!(m::EMAIL_RECEIVED, "outcome" => "duplicate").increment(1);
            return Ok(Delivered::Duplicate(id));
        }
        let sender = arrival
            .mail_from
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| email.from.as_ref().map(|f| f.address.clone()))
            .unwrap_or_default();
        // Over SMTP the listener counted the sender at MAIL FROM already.
        if arrival.mail_from.is_none() && !self.admit_sender(&sender, now) {
            metrics::counter!(m::EMAIL_RECEIVED, "outcome" => "rate_limited").increment(1);
            return Err(EmailError::RateLimited(sender));
        }
        let raw = match self.thread(&email) {
            Some((contact, by_token)) => {
                self.join(shared, contact, by_token, &email, raw, now)
                    .await?
            }
            None => Err(raw),
        };
        let delivered = match raw {
            Ok(delivered) => delivered,
            Err(raw) => self.new_contact(shared, &email, raw, &arrival, now).await?,
        };
        metrics::counter!(m::EMAIL_RECEIVED, "outcome" => delivered.as_str()).increment(1);
        Ok(delivered)
    }

    /// The contact this message continues, by its ancestors' Message-IDs, or else by the
    /// subject token (then `true`: the token is only a number, so it is trusted only from the
    /// contact's own customer, see [`from_customer`]).
    fn thread(&self, email: &InboundEmail) -> Option<(u64, bool)> {
        email
            .ancestors()
            .find_map(|id| self.thread_of(id))
            .map(|contact| (contact, false))
            .or_else(|| {
                email
                    .subject
                    .as_deref()
                    .and_then(parse::contact_token)
                    .map(|contact| (contact, true))
            })
    }

    /// Adds the message to an open contact, or reopens a recently closed one. `Err(raw)` (the
    /// message handed back) when the contact is unknown or closed too long ago: the message
    /// starts a new contact.
    async fn join(
        &self,
        shared: &Shared,
        contact: u64,
        by_token: bool,
        email: &InboundEmail,
        raw: Vec<u8>,
        now: UnixMillis,
    ) -> Result<Result<Delivered, Vec<u8>>, EmailError> {
        let open = shared.contacts.get(&contact).map(|r| r.clone());
        if let Some(record) = open {
            // Only an email contact takes mail, and a bare token only from its customer.
            if record.channel != "email" || (by_token && !from_customer(&record, email)) {
                return Ok(Err(raw));
            }
            super::append_to_body(shared, contact, &email.text);
            let message = inbound_record(contact, email, raw, now);
            shared
                .journal
                .append(vec![Record::Message(message)])
                .await?;
            self.remember_inbound(email, contact);
            let frame = message_frame(contact, email, now);
            let _ = shared
                .router
                .send(Command::Deliver {
                    contact: ContactId(contact),
                    message: frame,
                })
                .await;
            return Ok(Ok(Delivered::Joined(contact)));
        }
        let journal = shared.journal.clone();
        let stored = tokio::task::spawn_blocking(move || journal.lookup(contact))
            .await
            .map_err(|e| JournalError::Read(e.to_string()))??;
        let window = crate::config::duration::millis(self.config.reopen_window);
        let Some(stored) = stored else {
            return Ok(Err(raw));
        };
        let recent = stored
            .closed_at
            .is_some_and(|closed| now.saturating_sub(closed) <= window);
        if stored.contact.channel != "email"
            || !recent
            || (by_token && !from_customer(&stored.contact, email))
        {
            return Ok(Err(raw));
        }
        if shared.contacts.len() >= shared.max_open_contacts {
            return Err(EmailError::OverCapacity(shared.max_open_contacts));
        }
        let mut record = stored.contact;
        record.arrived_at = now;
        record.preferred_agent = stored.agent.filter(|a| shared.agents.contains_key(a));
        refresh_payload(&mut record.payload, email);
        shared
            .journal
            .append(vec![
                Record::Reopened {
                    contact: record.clone(),
                },
                Record::Message(inbound_record(contact, email, raw, now)),
            ])
            .await?;
        self.remember_inbound(email, contact);
        let _ = super::route(shared, record).await;
        Ok(Ok(Delivered::Reopened(contact)))
    }

    async fn new_contact(
        &self,
        shared: &Shared,
        email: &InboundEmail,
        raw: Vec<u8>,
        arrival: &Arrival,
        now: UnixMillis,
    ) -> Result<Delivered, EmailError> {
        let recipients: Vec<&str> = if arrival.recipients.is_empty() {
            email
                .to
                .iter()
                .chain(&email.cc)
                .map(|m| m.address.as_str())
                .collect()
        } else {
            arrival.recipients.iter().map(String::as_str).collect()
        };
        let Some((mailbox, queue)) = recipients
            .iter()
            .find_map(|r| self.config.queue_for(r).map(|q| (*r, q.to_owned())))
        else {
            return Err(EmailError::UnknownMailbox(recipients.join(", ")));
        };
        if shared.contacts.len() >= shared.max_open_contacts {
            return Err(EmailError::OverCapacity(shared.max_open_contacts));
        }
        let id = shared
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut payload = json!({
            "customer": email.reply_address().map(|m| json!({"email": m.address, "name": m.name})),
            "subject": email.subject,
            "body": email.text,
            "attributes": {"mailbox": mailbox},
            "email": {},
        });
        refresh_payload(&mut payload, email);
        // The mailbox's queue is where the mail goes unless a rule decides otherwise: one
        // support@ address serves many intents.
        let setup = shared.setup();
        let decision = super::classify(
            &setup,
            crate::classify::Intake {
                channel: "email",
                subject: email.subject.as_deref().unwrap_or(""),
                body: &email.text,
                customer: payload.get("customer"),
                attributes: payload.get("attributes"),
                fallback_queue: &queue,
                ..crate::classify::Intake::default()
            },
            id,
        );
        let mut record = ContactRecord {
            id,
            channel: "email".into(),
            queue: String::new(),
            skills: Default::default(),
            priority: 0,
            arrived_at: now,
            preferred_agent: None,
            payload,
            sla: None,
            classification: None,
        };
        super::apply_decision(shared, decision, &mut record);
        let queue = record.queue.clone();
        let mut records = vec![
            Record::Accepted {
                contact: record.clone(),
                idempotency_key: None,
                response: json!({"id": id.to_string(), "status": "queued", "queue": queue}),
            },
            Record::Message(inbound_record(id, email, raw, now)),
        ];
        let acknowledgement = outbound::acknowledgement(self, shared, &record, email, now);
        if let Some(ack) = &acknowledgement {
            records.extend(ack.records());
        }
        shared.journal.append(records).await?;
        self.remember_inbound(email, id);
        metrics::counter!(m::CONTACTS_RECEIVED, "channel" => "email", "queue" => queue)
            .increment(1);
        if let Some(ack) = acknowledgement {
            self.remember(&ack.mail.message_id, id);
            outbound::queued(&ack.mail);
            self.outbox_ready.notify_one();
        }
        let _ = super::route(shared, record).await;
        Ok(Delivered::NewContact(id))
    }

    fn remember_inbound(&self, email: &InboundEmail, contact: u64) {
        if let Some(id) = &email.message_id {
            self.remember(id, contact);
        }
    }
}

/// True when the message comes from the contact's customer (its From or Reply-To is the address
/// the contact was opened with).
fn from_customer(record: &ContactRecord, email: &InboundEmail) -> bool {
    let known: Vec<&str> = [
        record.payload.pointer("/customer/email"),
        record.payload.pointer("/email/reply_to"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .collect();
    email
        .from
        .iter()
        .chain(&email.reply_to)
        .any(|m| known.iter().any(|k| k.eq_ignore_ascii_case(&m.address)))
}

/// The contact's payload after a message: subject and body of the latest message, and the
/// email details replies need (the message to answer, the thread's references).
fn refresh_payload(payload: &mut Value, email: &InboundEmail) {
    let Some(object) = payload.as_object_mut() else {
        return;
    };
    if let Some(subject) = &email.subject {
        object.insert("subject".into(), json!(subject));
    }
    object.insert("body".into(), json!(email.text));
    let mut references: Vec<String> = email.references.clone();
    if let Some(id) = &email.message_id {
        references.push(id.clone());
    }
    object.insert(
        "email".into(),
        json!({
            "message_id": email.message_id,
            "references": references,
            "reply_to": email.reply_address().map(|m| m.address.clone()),
            "attachments": email.attachments,
            "no_auto_reply": email.automation.no_auto_reply(),
        }),
    );
}

fn inbound_record(
    contact: u64,
    email: &InboundEmail,
    raw: Vec<u8>,
    at: UnixMillis,
) -> MessageRecord {
    MessageRecord {
        contact,
        direction: "inbound".into(),
        message_id: email.message_id.clone(),
        raw,
        parsed: serde_json::to_value(email).unwrap_or(Value::Null),
        at,
    }
}

/// The `message` frame an agent gets for a customer's message on a contact it holds.
fn message_frame(contact: u64, email: &InboundEmail, at: UnixMillis) -> ServerMessage {
    ServerMessage::Message {
        contact_id: contact.to_string(),
        channel: "email".into(),
        from: email.from.as_ref().map(|f| f.address.clone()),
        subject: email.subject.clone(),
        text: email.text.clone(),
        at,
    }
}
