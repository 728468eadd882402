//! The durable journal: every accepted contact, state change, closure and agent, in one SQLite
//! file (`<data dir>/switchboard.db`, WAL mode), written by one thread with group commit.
//!
//! # Accepted means durable
//!
//! The intake calls [`Journal::append`] and answers 202 only once the batch holding the contact
//! is committed and fsync'd. If the journal cannot write (disk full, read-only file, I/O error,
//! database locked by another process) the caller gets a [`JournalError`] and answers "try
//! later" (HTTP 503, SMTP 451); nothing is dropped silently. The writer thread survives the
//! failure and tries the next batch afresh, so the service recovers by itself once the cause
//! is removed.
//!
//! # Why group commit
//!
//! One fsync costs about 1.4 ms on the machine behind docs/performance.md (a whole one-contact
//! commit took 3.8 to 4.6 ms on the CI virtual machine). One fsync per contact would cap intake
//! near 700 contacts a second there, however many cores the daemon has. The writer instead
//! blocks for the first request, takes every request already queued behind it (up to
//! [`JournalOptions::max_batch`]), writes them all in one transaction and pays one fsync for the
//! lot; then it acks every waiter. Under load the batches grow on their own, so throughput
//! scales with the queue while a lone request still commits after a single fsync: in the
//! tests, 2000 concurrent appends commit in 2 to 5 batches.
//!
//! Each request inside a batch runs under its own savepoint: a request SQLite refuses (say, an
//! idempotency key already stored) fails alone, and the rest of the batch commits. A failure
//! that undoes the whole transaction (disk full, I/O error) fails every request in the batch.
//!
//! # Layout
//!
//! - `schema.rs`: pragmas, tables, and the schema version (`PRAGMA user_version`).
//! - `writer.rs`: the writer thread and the batch transaction.
//! - `read.rs`: the replay on open and [`Journal::lookup`].
//! - `error.rs`: [`JournalError`].
//!
//! Reads go through their own read-only connection, which WAL lets run beside the writer.

mod error;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use error::JournalError;

/// Unix milliseconds (wall clock) as stored.
pub type UnixMillis = u64;

/// The name of the database file inside the data directory.
pub const DB_FILE: &str = "switchboard.db";

/// Statuses a live contact can have in a [`Record::Status`].
pub const STATUSES: &[&str] = &["queued", "offered", "assigned", "wrap_up"];

/// Outcomes a contact can leave with in a [`Record::Closed`].
pub const OUTCOMES: &[&str] = &["completed", "abandoned", "cancelled"];

/// A contact as the intake accepted it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// The contact's id, unique for the life of the data directory.
    pub id: u64,
    /// The channel it came through: "sms", "chat", "email", ...
    pub channel: String,
    /// The queue it was classified into.
    pub queue: String,
    /// Skills it needs, by name, with the minimum level.
    pub skills: BTreeMap<String, u8>,
    /// Its priority (higher is served first).
    pub priority: i32,
    /// When it arrived; replayed as is, so SLA clocks keep running across restarts.
    pub arrived_at: UnixMillis,
    /// The agent the sender asked for, if any.
    pub preferred_agent: Option<String>,
    /// Everything else the intake received (customer, subject, body, attributes, callback_url),
    /// kept verbatim.
    pub payload: serde_json::Value,
    /// The SLA policy classification gave it instead of its queue's, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<String>,
    /// Why it was routed this way: signals, matched rules, failures (the classifier's
    /// [`Explanation`](crate::classify::Explanation), with tags and attributes), kept so
    /// `GET /v1/contacts/{id}` can show it. Kept as the JSON text, not a `Value` tree: every
    /// object of a `Value` costs a B-tree node of some 600 bytes, and a contact's explanation
    /// has half a dozen of them, which tripled the memory of each waiting contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<JsonText>,
}

/// A JSON value kept as its text: compact in memory, embedded as is when served.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(pub Box<serde_json::value::RawValue>);

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// An agent as stored: created or updated through the admin API.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentRecord {
    /// The agent's login name.
    pub id: String,
    /// The display name, if one was given.
    pub name: Option<String>,
    /// The hash of the agent's token (the caller hashes; the journal never sees a token).
    pub token_hash: String,
    /// Skills, capacity and whatever else the profile holds, as JSON.
    pub profile: serde_json::Value,
    /// When this version of the agent was written.
    pub updated_at: UnixMillis,
}

/// One thing the journal keeps.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A new contact, with the idempotency key it came with and the JSON answered to the sender
    /// (kept so a retry gets the same answer).
    Accepted {
        /// The contact.
        contact: ContactRecord,
        /// The sender's idempotency key, if it gave one.
        idempotency_key: Option<String>,
        /// The body answered to the sender.
        response: serde_json::Value,
    },
    /// A state change: status is one of [`STATUSES`]; agent when relevant.
    Status {
        /// The contact's id.
        contact: u64,
        /// The new status.
        status: String,
        /// The agent offered or assigned, if any.
        agent: Option<String>,
        /// When it changed.
        at: UnixMillis,
    },
    /// The contact left for good: outcome is one of [`OUTCOMES`].
    Closed {
        /// The contact's id.
        contact: u64,
        /// How it ended.
        outcome: String,
        /// When it ended.
        at: UnixMillis,
        /// The wrap-up code the agent chose when completing it (resolved, callback...), if any;
        /// kept for reporting. Only a `completed` outcome has one.
        disposition: Option<String>,
    },
    /// An agent created or updated (tokens are stored hashed by the caller).
    Agent(AgentRecord),
    /// A closed contact is open again (a customer replied within the reopen window); the
    /// record replaces the stored one, so a replay routes it with its new arrival and
    /// preferred agent.
    Reopened {
        /// The contact as it is routed again.
        contact: ContactRecord,
    },
    /// A message of a contact's conversation (an email in or out), kept raw.
    Message(MessageRecord),
    /// Outgoing mail to send, durable until sent or given up.
    Outgoing(OutgoingMail),
    /// What became of an outgoing mail's latest attempt.
    Delivery {
        /// The contact the mail belongs to (the attempt is also an event of the contact).
        contact: u64,
        /// The mail's Message-ID.
        message_id: String,
        /// pending (will retry), sent, failed (given up).
        status: String,
        /// Attempts made so far.
        attempts: u32,
        /// When to try next while pending.
        next_attempt_at: UnixMillis,
        /// The relay's answer or the connection error, for the outbox report.
        last_error: Option<String>,
        /// When this was recorded.
        at: UnixMillis,
    },
}

/// Statuses of outgoing mail in a [`Record::Delivery`].
pub const DELIVERY_STATUSES: &[&str] = &["pending", "sent", "failed"];

/// One message of a contact's conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The contact it belongs to.
    pub contact: u64,
    /// inbound or outbound.
    pub direction: String,
    /// Its Message-ID, without angle brackets, when it has one.
    pub message_id: Option<String>,
    /// The message as received or sent: nothing is lost to parsing.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// What the parser made of it (or, outbound, what was sent), as JSON.
    pub parsed: serde_json::Value,
    /// When it was received or queued.
    pub at: UnixMillis,
}

/// Outgoing mail waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMail {
    /// Its Message-ID, without angle brackets; the outbox key.
    pub message_id: String,
    /// The contact it belongs to.
    pub contact: u64,
    /// acknowledgement or reply.
    pub kind: String,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// The formatted message.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// pending, sent or failed.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// When to try next while pending.
    pub next_attempt_at: UnixMillis,
    /// The latest failure, if any.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: UnixMillis,
}

/// A contact that had not left when the journal was last written: the router takes it back.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenContact {
    /// The contact as accepted.
    pub contact: ContactRecord,
    /// Its last status (one of [`STATUSES`]).
    pub status: String,
    /// The agent of its last status, if any.
    pub agent: Option<String>,
}

/// What the journal held when it was opened: everything the daemon needs to resume.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replay {
    /// Contacts not closed, in arrival order (`arrived_at`, then `id`).
    pub open: Vec<OpenContact>,
    /// Every stored agent, by id.
    pub agents: Vec<AgentRecord>,
    /// Idempotency keys: key, contact id, response answered.
    pub idempotency: Vec<(String, u64, serde_json::Value)>,
    /// 1 + the largest contact id ever stored (1 on a fresh file).
    pub next_contact_id: u64,
}

/// The latest stored view of one contact, open or closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredContact {
    /// The contact as accepted.
    pub contact: ContactRecord,
    /// Its last status, or its outcome once closed.
    pub status: String,
    /// The agent of its last status (kept after closure: who handled it).
    pub agent: Option<String>,
    /// When it arrived.
    pub arrived_at: UnixMillis,
    /// When it last changed.
    pub updated_at: UnixMillis,
    /// When it left, if it has.
    pub closed_at: Option<UnixMillis>,
    /// How it left, if it has (one of [`OUTCOMES`]).
    pub outcome: Option<String>,
    /// The agent's wrap-up code, if it completed with one.
    #[serde(default)]
    pub disposition: Option<String>,
}

/// How the journal trades latency, memory and safety.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// Requests that may wait for the writer; beyond it appends fail with
    /// [`JournalError::Busy`] at once rather than pile up.
    pub queue_capacity: usize,
    /// The most requests written in one transaction.
    pub max_batch: usize,
    /// Fsync on every commit (`synchronous=FULL`). Off (`NORMAL`), a power loss may lose the
    /// last commits; only for tests and benchmarks.
    pub synchronous_full: bool,
    /// How long a write waits for a lock another process holds before it fails.
    pub busy_timeout: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            queue_capacity: 65536,
            max_batch: 4096,
            synchronous_full: true,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// One request to the writer thread.
enum Request {
    /// Records to write, and who waits for the commit (nobody for `append_nowait`).
    Append {
        records: Vec<Record>,
        ack: Option<oneshot::Sender<Result<(), JournalError>>>,
    },
    /// Runs SQL on the writer's connection, for tests that need to break or mend it.
    #[cfg(test)]
    Exec {
        sql: String,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
}

/// The handle to the journal: cheap to clone, shared by every task that writes or reads.
///
/// Dropping the last clone flushes the queue and joins the writer, like [`Journal::close`].
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

/// What every clone of a [`Journal`] shares.
struct Shared {
    /// The only sender to the writer; `None` once closed. Dropping it is what tells the writer
    /// to finish: it drains what is queued, then sees the channel disconnected.
    sender: RwLock<Option<SyncSender<Request>>>,
    writer: Mutex<Option<JoinHandle<Result<(), JournalError>>>>,
    /// Read-only connection for lookups.
    reader: Mutex<rusqlite::Connection>,
    batches_committed: Arc<AtomicU64>,
    /// Set by the writer after each batch: false while the last one failed to store.
    healthy: Arc<AtomicBool>,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating if needed) `dir/switchboard.db`, creates the directory and the schema,
    /// sets WAL, reads the replay, and starts the writer thread.
    pub fn open(dir: &Path, options: JournalOptions) -> Result<(Journal, Replay), JournalError> {
        let path = dir.join(DB_FILE);
        let open_error = |message: String| JournalError::Open {
            path: path.clone(),
            message,
        };
        if options.queue_capacity == 0 || options.max_batch == 0 {
            return Err(open_error(
                "queue_capacity and max_batch must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| open_error(format!("cannot create directory: {e}")))?;

        let conn = schema::open_writer(&path, &options).map_err(open_error)?;
        let replay = read::replay(&conn).map_err(open_error)?;
        let reader = schema::open_reader(&path, &options).map_err(open_error)?;

        let (sender, receiver) = mpsc::sync_channel(options.queue_capacity);
        let batches_committed = Arc::new(AtomicU64::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = writer::Writer::new(
            conn,
            receiver,
            options.max_batch,
            Arc::clone(&batches_committed),
            Arc::clone(&healthy),
        );
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;

        let journal = Journal {
            shared: Arc::new(Shared {
                sender: RwLock::new(Some(sender)),
                writer: Mutex::new(Some(handle)),
                reader: Mutex::new(reader),
                batches_committed,
                healthy,
                path,
            }),
        };
        Ok((journal, replay))
    }

    /// Appends records in one request and waits until the batch holding them is committed
    /// (fsync'd). `Err(Busy)` at once if the queue is full.
    ///
    /// If the future is dropped after the request was queued, the records are still written:
    /// the caller just does not learn the outcome (a retry with the same idempotency key does).
    pub async fn append(&self, records: Vec<Record>) -> Result<(), JournalError> {
        validate(&records)?;
        let (ack, done) = oneshot::channel();
        self.send(Request::Append {
            records,
            ack: Some(ack),
        })?;
        // A dropped ack means the writer died before answering (it only drops acks on panic).
        done.await.unwrap_or(Err(JournalError::Closed))
    }

    /// Appends without waiting (state transitions the router reports); failures are logged and
    /// counted, never block the caller. Returns `Err(Busy/Closed)` only if it could not even be
    /// queued, or `Err(Invalid)` for records the journal would refuse.
    pub fn append_nowait(&self, records: Vec<Record>) -> Result<(), JournalError> {
        validate(&records)?;
        self.send(Request::Append { records, ack: None })
    }

    /// Latest stored view of one contact (for `GET /v1/contacts/{id}` after it left the
    /// router). Reads on the calling thread through the read-only connection: callers in async
    /// code use `spawn_blocking`.
    pub fn lookup(&self, id: u64) -> Result<Option<StoredContact>, JournalError> {
        read::lookup(&self.reader(), id).map_err(JournalError::Read)
    }

    /// Message-IDs of the messages of contacts open or closed since `since`, with their
    /// contact: what threading needs at start. Blocking, like [`Journal::lookup`].
    pub fn thread_index(&self, since: UnixMillis) -> Result<Vec<(String, u64)>, JournalError> {
        read::thread_index(&self.reader(), since).map_err(JournalError::Read)
    }

    /// Messages of one contact in order, raw bytes included. Blocking.
    pub fn messages(&self, contact: u64) -> Result<Vec<MessageRecord>, JournalError> {
        read::messages(&self.reader(), contact).map_err(JournalError::Read)
    }

    /// The outbox: every outgoing mail not yet sent or given up when `pending_only`, else all
    /// of it (newest first, at most `limit`). Blocking.
    pub fn outbox(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<OutgoingMail>, JournalError> {
        read::outbox(&self.reader(), pending_only, limit).map_err(JournalError::Read)
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.shared
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops accepting (for every clone), commits everything queued, joins the writer thread.
    ///
    /// Returns the outcome of the last batch the writer wrote, so a failure while flushing is
    /// not lost; `Err(Closed)` if the journal was already closed or the writer had died.
    pub fn close(self) -> Result<(), JournalError> {
        self.shared.close()
    }

    /// True while the journal can store: its writer runs and its last batch did not fail (a
    /// record refused as a conflict does not count). `/readyz` answers 503 otherwise, so a load
    /// balancer sends intake elsewhere while the disk is full or failing; the next batch that
    /// stores makes it true again.
    pub fn is_healthy(&self) -> bool {
        let writer_runs = self
            .shared
            .writer
            .lock()
            .ok()
            .is_some_and(|w| w.as_ref().is_some_and(|h| !h.is_finished()));
        writer_runs && self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Batches committed since open: with `requests` acked, `requests / batches` is the mean
    /// batch size, which shows whether group commit is doing its job.
    pub fn batches_committed(&self) -> u64 {
        self.shared.batches_committed.load(Ordering::Relaxed)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Queues a request, without ever blocking.
    fn send(&self, request: Request) -> Result<(), JournalError> {
        // The read lock is held only across `try_send`, which does not block; it keeps `close`
        // from dropping the sender between the check and the send.
        let sender = self
            .shared
            .sender
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            return Err(JournalError::Closed);
        };
        sender.try_send(request).map_err(|e| match e {
            TrySendError::Full(_) => JournalError::Busy,
            TrySendError::Disconnected(_) => JournalError::Closed,
        })
    }

    /// Runs SQL on the writer's connection, between batches.
    #[cfg(test)]
    async fn exec_on_writer(&self, sql: &str) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.send(Request::Exec {
            sql: sql.to_owned(),
            ack,
        })?;
        done.await.unwrap_or(Err(JournalError::Closed))
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.shared.path)
            .field("batches_committed", &self.batches_committed())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn close(&self) -> Result<(), JournalError> {
        // Dropping the only sender disconnects the channel; the writer drains the queue first.
        drop(
            self.sender
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle {
            Some(handle) => handle.join().unwrap_or(Err(JournalError::Closed)),
            None => Err(JournalError::Closed),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let open = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if open && let Err(e) = self.close() {
            tracing::error!(path = %self.path.display(), error = %e, "journal: flush on drop failed");
        }
    }
}

/// Refuses, before they are queued, records that would store something replay cannot use.
fn validate(records: &[Record]) -> Result<(), JournalError> {
    const MAX: u64 = i64::MAX as u64; // SQLite integers are signed 64-bit.
    let too_big = |what: &str, value: u64| {
        (value > MAX).then(|| JournalError::Invalid(format!("{what} {value} is above {MAX}")))
    };
    for record in records {
        let problem = match record {
            Record::Accepted { contact, .. } | Record::Reopened { contact } => {
                too_big("contact id", contact.id)
                    .or_else(|| too_big("arrived_at", contact.arrived_at))
            }
            Record::Message(m) => too_big("contact id", m.contact).or_else(|| too_big("at", m.at)),
            Record::Outgoing(mail) => too_big("contact id", mail.contact)
                .or_else(|| too_big("next_attempt_at", mail.next_attempt_at))
                .or_else(|| too_big("created_at", mail.created_at)),
            Record::Delivery {
                status,
                next_attempt_at,
                at,
                ..
            } => {
                if DELIVERY_STATUSES.contains(&status.as_str()) {
                    too_big("next_attempt_at", *next_attempt_at).or_else(|| too_big("at", *at))
                } else {
                    Some(JournalError::Invalid(format!(
                        "delivery status {status:?} is not one of {DELIVERY_STATUSES:?}"
                    )))
                }
            }
            Record::Status {
                contact,
                status,
                at,
                ..
            } => {
                if STATUSES.contains(&status.as_str()) {
                    too_big("contact id", *contact).or_else(|| too_big("timestamp", *at))
                } else {
                    Some(JournalError::Invalid(format!(
                        "contact {contact}: status {status:?} is not one of {STATUSES:?}"
                    )))
                }
            }
            Record::Closed {
                contact,
                outcome,
                at,
                ..
            } => {
                if OUTCOMES.contains(&outcome.as_str()) {
                    too_big("contact id", *contact).or_else(|| too_big("timestamp", *at))
                } else {
                    Some(JournalError::Invalid(format!(
                        "contact {contact}: outcome {outcome:?} is not one of {OUTCOMES:?}"
                    )))
                }
            }
            Record::Agent(agent) => too_big("agent updated_at", agent.updated_at),
        };
        if let Some(problem) = problem {
            return Err(problem);
        }
    }
    Ok(())
}
