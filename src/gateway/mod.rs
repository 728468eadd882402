//! The agent websocket protocol: JSON text frames with a `"type"`, documented in
//! docs/protocol.md. This module owns the message shapes and the per-connection session loop;
//! the router task owns what the messages mean.

pub mod session;

use serde::{Deserialize, Serialize};

/// Agent -> server.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentMessage {
    /// Change state: `available`, `away` (with a reason) or `offline`.
    SetState {
        /// available, away or offline.
        state: String,
        /// Why away (break, lunch, training...).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Accept an offer.
    Accept {
        /// The offer (equal to the contact id).
        #[serde(alias = "contact_id")]
        offer_id: String,
    },
    /// Decline an offer.
    Reject {
        /// The offer (equal to the contact id).
        #[serde(alias = "contact_id")]
        offer_id: String,
    },
    /// Finish a contact; wrap-up starts.
    Complete {
        /// The contact.
        contact_id: String,
        /// Outcome code chosen by the agent (resolved, callback, escalated...), journaled with
        /// the completion; see [`check_disposition`] for what is refused.
        #[serde(default)]
        disposition: Option<String>,
    },
    /// The agent sent its first reply (chat, email): stops the first-response SLA clock.
    Responded {
        /// The contact.
        contact_id: String,
    },
    /// End wrap-up (of one contact, or of all).
    Ready {
        /// The contact whose wrap-up ends; all when absent.
        #[serde(default)]
        contact_id: Option<String>,
    },
    /// Answer the customer of an assigned contact (email: sent from the queue's mailbox,
    /// threaded, with `[#id]` in the subject). Counts as the first response for the SLA.
    Reply {
        /// The contact.
        contact_id: String,
        /// The answer, plain text.
        text: String,
    },
    /// The agent is typing in a chat (the customer sees an indicator).
    Typing {
        /// The contact.
        contact_id: String,
    },
    /// Hand a contact to another queue or agent.
    Transfer {
        /// The contact.
        contact_id: String,
        /// Target queue name.
        #[serde(default)]
        queue: Option<String>,
        /// Target agent id.
        #[serde(default)]
        agent: Option<String>,
    },
}

/// The longest disposition an agent may send, in characters. Wrap-up codes are short labels
/// (`resolved`, `follow_up`); the bound keeps a buggy or hostile client from storing essays in
/// the journal of every contact it completes.
pub const MAX_DISPOSITION_CHARS: usize = 64;

/// Why the disposition of a `complete` frame was refused; the agent gets an
/// `invalid_disposition` error frame with this message, and the contact stays assigned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispositionError {
    /// Empty or only whitespace: a report cannot count it under any code.
    #[error("the disposition is empty; leave the field out to complete without one")]
    Empty,
    /// Longer than [`MAX_DISPOSITION_CHARS`].
    #[error("the disposition is {chars} characters long; at most {MAX_DISPOSITION_CHARS} are kept")]
    TooLong {
        /// Its length in characters.
        chars: usize,
    },
    /// Holds a control character (a newline, an escape...), which would garble reports.
    #[error("the disposition holds a control character; use printable text")]
    NotPrintable,
}

/// Checks a disposition before it is journaled: printable text of 1 to
/// [`MAX_DISPOSITION_CHARS`] characters. The set of codes is the agent desktop's business, so
/// any such text is accepted as sent.
pub fn check_disposition(code: &str) -> Result<(), DispositionError> {
    let chars = code.chars().count();
    if code.trim().is_empty() {
        Err(DispositionError::Empty)
    } else if chars > MAX_DISPOSITION_CHARS {
        Err(DispositionError::TooLong { chars })
    } else if code.chars().any(char::is_control) {
        Err(DispositionError::NotPrintable)
    } else {
        Ok(())
    }
}

/// A contact as shown to an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactSummary {
    /// Contact id.
    pub id: String,
    /// Channel name.
    pub channel: String,
    /// Queue name.
    pub queue: String,
    /// Effective priority.
    pub priority: i32,
    /// Subject line, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The first 200 characters of the body (offers) or all of it (assigned).
    pub body: String,
    /// Customer details as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<serde_json::Value>,
    /// The contact's SLA deadlines, so a client can count them down (the agent desktop does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaDeadlines>,
}

/// A contact's SLA deadlines as an agent sees them, in Unix milliseconds like the HTTP API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaDeadlines {
    /// When the first response is due.
    pub first_response_due: u64,
    /// True once the first response was given (that deadline no longer runs).
    pub responded: bool,
    /// When the contact should be resolved; absent when the policy has no resolution target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_due: Option<u64>,
}

/// Server -> agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame after connecting.
    Hello {
        /// Agent id.
        agent: String,
        /// Display name.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Current state.
        state: String,
        /// Skills and levels.
        skills: std::collections::BTreeMap<String, u8>,
        /// Contacts already assigned (after a reconnect).
        assigned: Vec<ContactSummary>,
    },
    /// A contact is offered until it expires.
    Offer {
        /// Answer `accept`/`reject` with this id.
        offer_id: String,
        /// The contact, with a body preview.
        contact: ContactSummary,
        /// Time left to answer.
        expires_in_ms: u64,
    },
    /// An offer is gone.
    OfferRevoked {
        /// The offer.
        offer_id: String,
        /// expired, contact_left, agent_unavailable, transferred.
        reason: String,
    },
    /// The contact is the agent's now.
    Assigned {
        /// The contact in full.
        contact: ContactSummary,
    },
    /// The agent's state after any change, including the router putting it away.
    State {
        /// offline, available, away, busy, wrap_up.
        state: String,
        /// Away reason.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An SLA deadline of one of the agent's contacts is near.
    SlaWarning {
        /// The contact.
        contact_id: String,
        /// first_response or resolution.
        kind: String,
        /// Milliseconds until the deadline.
        due_in_ms: i64,
    },
    /// Something the agent sent was refused; the socket stays open.
    Error {
        /// Machine-readable code.
        code: String,
        /// What went wrong, for a human.
        message: String,
    },
    /// A contact this agent held was taken away by someone else (cancelled or abandoned, or
    /// transferred by a supervisor or another agent) or requeued because the agent was gone.
    ContactEnded {
        /// The contact.
        contact_id: String,
        /// cancelled, abandoned, transferred or requeued.
        reason: String,
    },
    /// The customer wrote again on a contact this agent holds.
    Message {
        /// The contact.
        contact_id: String,
        /// The channel it came through.
        channel: String,
        /// The sender's address, if known.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Subject, for email.
        #[serde(skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The message text.
        text: String,
        /// When it arrived (Unix ms).
        at: u64,
    },
    /// The customer is typing in a chat this agent holds.
    Typing {
        /// The contact.
        contact_id: String,
    },
    /// A `reply` was accepted: durable and on its way (email: in the outbox).
    ReplyQueued {
        /// The contact.
        contact_id: String,
        /// The outgoing message's id.
        message_id: String,
    },
    /// The daemon is shutting down; reconnect later.
    Shutdown,
}

impl ServerMessage {
    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_printable_short_labels() {
        let at_limit = "x".repeat(MAX_DISPOSITION_CHARS);
        let over = "x".repeat(MAX_DISPOSITION_CHARS + 1);
        // Characters, not bytes: 64 accented letters are 128 bytes and still fit.
        let accented = "é".repeat(MAX_DISPOSITION_CHARS);
        let cases: &[(&str, Result<(), DispositionError>)] = &[
            ("resolved", Ok(())),
            ("no answer", Ok(())),
            ("résolu", Ok(())),
            (&at_limit, Ok(())),
            (&accented, Ok(())),
            (
                &over,
                Err(DispositionError::TooLong {
                    chars: MAX_DISPOSITION_CHARS + 1,
                }),
            ),
            ("", Err(DispositionError::Empty)),
            ("   ", Err(DispositionError::Empty)),
            ("resolved\nDROP", Err(DispositionError::NotPrintable)),
            ("\u{1b}[31mred", Err(DispositionError::NotPrintable)),
        ];
        for (code, expected) in cases {
            assert_eq!(&check_disposition(code), expected, "{code:?}");
        }
    }
}
