//! Customer chat over the websocket `/v1/chat/ws`.
//!
//! A customer connects, says `start` (name, email, the first message), goes through the
//! pre-chat menu when one is configured, and becomes a chat contact: durable in the journal
//! before `welcome` is sent. While waiting it hears `queued` (position and estimated wait, from
//! the router's position updates, at most once a second); once an agent accepts,
//! `agent_joined`; then messages and typing go both ways through the agent's websocket.
//!
//! The conversation outlives the connection: a customer who reconnects with
//! `?resume=<token>` within `chat.resume_grace` keeps the place in line (or the agent) and gets
//! what was said meanwhile; after the grace the chat is abandoned. Every message is journaled
//! (the transcript), and so is the post-chat rating.
//!
//! - `mod.rs`: the frames and [`ChatRoom`], the registry of open conversations that the router
//!   task and agent sessions write to.
//! - `session.rs`: one customer connection.

pub mod session;

use std::collections::VecDeque;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::metrics as m;

/// Frames kept for a disconnected customer until it resumes; older ones are dropped (they are
/// in the transcript).
const MISSED_LIMIT: usize = 200;

/// Customer -> server.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomerMessage {
    /// Opens the chat.
    Start {
        /// Display name.
        #[serde(default)]
        name: Option<String>,
        /// Email address.
        #[serde(default)]
        email: Option<String>,
        /// The customer's id in the center's systems.
        #[serde(default)]
        customer_id: Option<String>,
        /// Anything else the page knows.
        #[serde(default)]
        attributes: Option<serde_json::Value>,
        /// The first message.
        #[serde(default)]
        text: Option<String>,
    },
    /// Picks a menu option.
    Choose {
        /// The option's id.
        option: String,
    },
    /// A message to the agent.
    Message {
        /// The text.
        text: String,
    },
    /// The customer is typing.
    Typing,
    /// The customer ends the chat.
    Close,
    /// The post-chat rating.
    Rate {
        /// 1 (bad) to 5 (good).
        score: u8,
        /// Free text.
        #[serde(default)]
        comment: Option<String>,
    },
}

/// A menu option as the customer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MenuChoice {
    /// What to send in `choose`.
    pub id: String,
    /// What to show.
    pub label: String,
}

/// Server -> customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatFrame {
    /// The chat is a durable contact now.
    Welcome {
        /// The contact id.
        contact_id: String,
        /// Reconnect with `/v1/chat/ws?resume=<token>` to keep the place.
        resume_token: String,
    },
    /// Pick one.
    Menu {
        /// The question.
        prompt: String,
        /// The choices.
        options: Vec<MenuChoice>,
    },
    /// Where the customer stands.
    Queued {
        /// 1 = next to be answered.
        position: usize,
        /// Estimated wait in seconds, when the recent service rate gives one.
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_wait_seconds: Option<u64>,
    },
    /// The queue is outside its business hours: the customer may leave a message (`message`).
    AfterHours {
        /// The queue chosen.
        queue: String,
        /// What to tell the customer.
        message: String,
    },
    /// The message was left: it is a contact now, answered when the queue opens.
    MessageLeft {
        /// The contact.
        contact_id: String,
    },
    /// An agent took the chat.
    AgentJoined {
        /// The agent's display name.
        name: String,
    },
    /// A message from the agent.
    Message {
        /// Who wrote it.
        from: String,
        /// The text.
        text: String,
        /// When (Unix ms).
        at: u64,
    },
    /// The agent is typing.
    Typing,
    /// The chat is over.
    Closed {
        /// customer_closed, agent_closed, abandoned, cancelled.
        reason: String,
    },
    /// Please rate the chat with `rate` (1-5).
    Survey {
        /// The question.
        prompt: String,
    },
    /// The rating was stored.
    Rated,
    /// Something the customer sent was refused.
    Error {
        /// Machine-readable code.
        code: String,
        /// For a human.
        message: String,
    },
}

impl ChatFrame {
    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ChatFrame::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One open conversation.
#[derive(Debug)]
struct Conversation {
    /// The customer's live connection, if any.
    customer: Option<(u64, mpsc::Sender<ChatFrame>)>,
    /// Frames that arrived while the customer was away.
    missed: VecDeque<ChatFrame>,
    /// The queue, for the rating metric.
    queue: String,
    /// Its resume token, to forget it with the conversation.
    token: String,
    /// The connection whose drop started the current grace, if the customer is away.
    dropped: Option<u64>,
    /// The customer rated the chat (once is enough).
    rated: bool,
    /// Set once the chat ended: only the survey remains.
    closed: bool,
}

/// The open conversations, shared by customer sessions, agent sessions and the router task.
#[derive(Debug, Default)]
pub struct ChatRoom {
    conversations: DashMap<u64, Conversation>,
    /// Resume token to contact.
    tokens: DashMap<String, u64>,
    /// Chats open per remote address.
    per_address: DashMap<std::net::IpAddr, usize>,
    /// Post-chat ratings per queue since start, for the wallboard (the journal keeps each one).
    ratings: DashMap<String, RatingTally>,
}

/// One customer websocket counted in the chat connections gauge for as long as it lives,
/// whatever its stage (menu, waiting, talking, being refused): each holds a socket, which is
/// what proxies and file limits must fit. A guard, so that every way a connection ends (close,
/// error, refusal, panic) counts it out.
#[derive(Debug)]
#[must_use = "the connection is counted only while the guard lives"]
pub struct CountedConnection(());

impl CountedConnection {
    /// Counts one more open customer connection. The gauge goes up and down atomically in the
    /// recorder, so connections opening and closing at once cannot leave it stale.
    pub fn open() -> CountedConnection {
        metrics::gauge!(m::CHAT_CONNECTIONS).increment(1.0);
        CountedConnection(())
    }
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        metrics::gauge!(m::CHAT_CONNECTIONS).decrement(1.0);
    }
}

/// Post-chat ratings of one queue since the daemon started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RatingTally {
    /// How many ratings.
    pub count: u64,
    /// The sum of their scores (1-5 each), for the average.
    pub score_sum: u64,
}

impl ChatRoom {
    /// Registers a new conversation with its customer connection.
    pub fn open(
        &self,
        contact: u64,
        token: &str,
        queue: &str,
        connection: u64,
        outbox: mpsc::Sender<ChatFrame>,
    ) {
        self.tokens.insert(token.to_owned(), contact);
        self.conversations.insert(
            contact,
            Conversation {
                customer: Some((connection, outbox)),
                missed: VecDeque::new(),
                queue: queue.to_owned(),
                token: token.to_owned(),
                dropped: None,
                rated: false,
                closed: false,
            },
        );
    }

    /// True when the contact is a chat of this room.
    pub fn contains(&self, contact: u64) -> bool {
        self.conversations.contains_key(&contact)
    }

    /// The queue of a conversation.
    pub fn queue(&self, contact: u64) -> Option<String> {
        self.conversations.get(&contact).map(|c| c.queue.clone())
    }

    /// Sends a frame to the customer, or keeps it for when the customer resumes.
    pub fn tell(&self, contact: u64, frame: ChatFrame) {
        let Some(mut conversation) = self.conversations.get_mut(&contact) else {
            return;
        };
        if let Some((_, outbox)) = &conversation.customer
            && outbox.try_send(frame.clone()).is_ok()
        {
            return;
        }
        // Disconnected, or not reading: keep it for the resume (a queued update is only worth
        // its latest value; a typing indicator nothing once it is late).
        if matches!(frame, ChatFrame::Typing) {
            return;
        }
        if matches!(frame, ChatFrame::Queued { .. }) {
            conversation
                .missed
                .retain(|f| !matches!(f, ChatFrame::Queued { .. }));
        }
        conversation.missed.push_back(frame);
        while conversation.missed.len() > MISSED_LIMIT {
            conversation.missed.pop_front();
        }
    }

    /// Ends a conversation from the routing side: the customer hears why, then gets the survey.
    pub fn end(&self, contact: u64, reason: &str) {
        let open = self
            .conversations
            .get_mut(&contact)
            .map(|mut c| !std::mem::replace(&mut c.closed, true))
            .unwrap_or(false);
        if open {
            self.tell(
                contact,
                ChatFrame::Closed {
                    reason: reason.into(),
                },
            );
            self.tell(contact, survey());
        }
    }

    /// Claims the conversation's one rating; false if it was rated already.
    pub fn take_rating(&self, contact: u64) -> bool {
        self.conversations
            .get_mut(&contact)
            .is_some_and(|mut c| !std::mem::replace(&mut c.rated, true))
    }

    /// True once the chat is over (only a rating may follow).
    pub fn is_closed(&self, contact: u64) -> bool {
        self.conversations.get(&contact).is_some_and(|c| c.closed)
    }

    /// Attaches a resuming connection; returns the contact and what it missed.
    pub fn resume(
        &self,
        token: &str,
        connection: u64,
        outbox: mpsc::Sender<ChatFrame>,
    ) -> Option<(u64, Vec<ChatFrame>)> {
        let contact = *self.tokens.get(token)?;
        let mut conversation = self.conversations.get_mut(&contact)?;
        conversation.customer = Some((connection, outbox));
        conversation.dropped = None;
        Some((contact, conversation.missed.drain(..).collect()))
    }

    /// Detaches a connection; true if it was the conversation's current one.
    pub fn detach(&self, contact: u64, connection: u64) -> bool {
        let Some(mut conversation) = self.conversations.get_mut(&contact) else {
            return false;
        };
        if conversation
            .customer
            .as_ref()
            .is_some_and(|(c, _)| *c == connection)
        {
            conversation.customer = None;
            conversation.dropped = Some(connection);
            true
        } else {
            false
        }
    }

    /// True while the customer is away since `connection` dropped: no resume since (a later
    /// drop starts its own grace).
    pub fn away_since(&self, contact: u64, connection: u64) -> bool {
        self.conversations
            .get(&contact)
            .is_some_and(|c| c.customer.is_none() && c.dropped == Some(connection))
    }

    /// Forgets a conversation for good.
    pub fn forget(&self, contact: u64) {
        if let Some((_, conversation)) = self.conversations.remove(&contact) {
            self.tokens.remove(&conversation.token);
        }
    }

    /// Counts a chat against its remote address; false when the address is at `limit`.
    pub fn admit_address(&self, address: std::net::IpAddr, limit: usize) -> bool {
        let mut count = self.per_address.entry(address).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Releases a chat of a remote address.
    pub fn release_address(&self, address: std::net::IpAddr) {
        if let Some(mut count) = self.per_address.get_mut(&address) {
            *count = count.saturating_sub(1);
        }
        self.per_address.remove_if(&address, |_, count| *count == 0);
    }

    /// Counts a stored rating of a chat of `queue`.
    pub fn count_rating(&self, queue: &str, score: u8) {
        let mut tally = self.ratings.entry(queue.to_owned()).or_default();
        tally.count += 1;
        tally.score_sum += u64::from(score);
    }

    /// Ratings counted per queue since start.
    pub fn ratings(&self) -> Vec<(String, RatingTally)> {
        self.ratings
            .iter()
            .map(|entry| (entry.key().clone(), *entry.value()))
            .collect()
    }

    /// Open conversations.
    pub fn len(&self) -> usize {
        self.conversations.len()
    }

    /// True when no chat is open.
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }
}

/// The post-chat survey.
pub fn survey() -> ChatFrame {
    ChatFrame::Survey {
        prompt: "How did we do? Rate this chat from 1 (bad) to 5 (good).".into(),
    }
}
