//! `[email]`: the email channel's listeners, mailboxes, limits and outgoing mail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[email]`. Every key has a default, so a config without the section runs the channel on
/// 127.0.0.1:2525 with no mailboxes (every recipient refused) until mailboxes are added.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP listener; `SWITCHBOARD_SMTP_ADDR` overrides. Empty string: no SMTP listener.
    #[serde(default = "defaults::smtp_addr")]
    pub smtp_addr: String,
    /// LMTP listener for an MTA's `lmtp:` transport; `SWITCHBOARD_LMTP_ADDR` overrides.
    #[serde(default)]
    pub lmtp_addr: Option<String>,
    /// Our name in the SMTP greeting and in the Message-IDs we write.
    #[serde(default = "defaults::hostname")]
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised with SIZE).
    #[serde(default = "defaults::max_message_size")]
    pub max_message_size: usize,
    /// A client silent this long between commands is disconnected (421).
    #[serde(
        default = "defaults::idle_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub idle_timeout: Duration,
    /// A message body must arrive within this time after DATA (slow-client protection).
    #[serde(
        default = "defaults::data_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub data_timeout: Duration,
    /// A reply to a contact closed less than this long ago reopens it, offered first to its
    /// last agent; older ones start a new contact.
    #[serde(
        default = "defaults::reopen_window",
        deserialize_with = "duration::deserialize"
    )]
    pub reopen_window: Duration,
    /// Most messages one sender address may send in `per`; beyond it SMTP answers 450 and
    /// `POST /v1/email/inbound` 429, so a mail loop cannot flood the queues.
    #[serde(default)]
    pub sender_rate_limit: RateLimitConfig,
    /// Outgoing relay as lettre's URL (`smtp://host:25`, `smtps://user:pass@host`,
    /// `smtp://host:587?tls=required`); `SWITCHBOARD_SMTP_RELAY` overrides. None: outgoing
    /// mail stays in the outbox, reported, until a relay is configured.
    #[serde(default)]
    pub relay: Option<String>,
    /// First wait before retrying mail the relay did not take; it doubles per attempt up to an
    /// hour.
    #[serde(
        default = "defaults::retry_base",
        deserialize_with = "duration::deserialize"
    )]
    pub retry_base: Duration,
    /// Attempts before outgoing mail the relay keeps refusing for now is given up (recorded on
    /// the contact as failed).
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// PEM certificate chain for STARTTLS; with `tls_key`, STARTTLS is offered.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Recipient address (case-insensitive) to queue name. Mail to any other address is
    /// refused at RCPT with 550.
    #[serde(default)]
    pub mailboxes: BTreeMap<String, String>,
    /// The acknowledgement sent to a customer when a new email contact is queued.
    #[serde(default)]
    pub acknowledgement: AcknowledgementConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_addr: defaults::smtp_addr(),
            lmtp_addr: None,
            hostname: defaults::hostname(),
            max_message_size: defaults::max_message_size(),
            idle_timeout: defaults::idle_timeout(),
            data_timeout: defaults::data_timeout(),
            reopen_window: defaults::reopen_window(),
            sender_rate_limit: RateLimitConfig::default(),
            relay: None,
            retry_base: defaults::retry_base(),
            max_attempts: defaults::max_attempts(),
            tls_cert: None,
            tls_key: None,
            mailboxes: BTreeMap::new(),
            acknowledgement: AcknowledgementConfig::default(),
        }
    }
}

impl EmailConfig {
    /// The queue mail to `address` goes to, if it is one of our mailboxes.
    pub fn queue_for(&self, address: &str) -> Option<&str> {
        self.mailboxes
            .iter()
            .find(|(mailbox, _)| mailbox.eq_ignore_ascii_case(address.trim()))
            .map(|(_, queue)| queue.as_str())
    }

    /// The address mail from `queue` is sent from: its first mailbox.
    pub fn address_of(&self, queue: &str) -> Option<&str> {
        self.mailboxes
            .iter()
            .find(|(_, q)| q.as_str() == queue)
            .map(|(mailbox, _)| mailbox.as_str())
    }
}

/// `sender_rate_limit`: a fixed budget of messages per sender per window.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Messages allowed per window; 0 turns the limit off.
    pub messages: u32,
    /// The window.
    #[serde(deserialize_with = "duration::deserialize")]
    pub per: Duration,
}

impl Default for RateLimitConfig {
    /// 30 messages in 10 minutes: far above a person, far below a loop.
    fn default() -> Self {
        RateLimitConfig {
            messages: 30,
            per: Duration::from_secs(600),
        }
    }
}

/// `[email.acknowledgement]`: the automatic answer to a new email contact.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementConfig {
    /// Queues whose new email contacts are acknowledged.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Subject; `{id}` is the contact id, `{subject}` the customer's subject. Replies to it
    /// carry `[#id]`, which threads them to the contact.
    #[serde(default = "defaults::ack_subject")]
    pub subject: String,
    /// Body; `{id}`, `{subject}` and `{response_time}` (the first-response time of the
    /// queue's SLA policy, e.g. "4h") are filled in.
    #[serde(default = "defaults::ack_body")]
    pub body: String,
}

impl Default for AcknowledgementConfig {
    fn default() -> Self {
        AcknowledgementConfig {
            queues: Vec::new(),
            subject: defaults::ack_subject(),
            body: defaults::ack_body(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub fn smtp_addr() -> String {
        "127.0.0.1:2525".into()
    }
    pub fn hostname() -> String {
        "localhost".into()
    }
    pub fn max_message_size() -> usize {
        25 * 1024 * 1024
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(300)
    }
    pub fn data_timeout() -> Duration {
        Duration::from_secs(600)
    }
    pub fn reopen_window() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }
    pub fn retry_base() -> Duration {
        Duration::from_secs(10)
    }
    pub fn max_attempts() -> u32 {
        15
    }
    pub fn ack_subject() -> String {
        "Re: {subject} [#{id}]".into()
    }
    pub fn ack_body() -> String {
        "Thank you for your message. Its reference is #{id}; we will answer within \
         {response_time}.\n\nPlease keep [#{id}] in the subject when you write about it again.\n"
            .into()
    }
}
