//! The writer thread: the only code that writes the database.
//!
//! It blocks for one request, takes whatever else is queued (up to `max_batch` requests), and
//! writes them in one transaction: one commit, one fsync, however many requests. Each request
//! runs under a savepoint so that one refused request does not sink the others. A failed batch
//! is answered with the error and forgotten; the thread goes on to the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;
use std::time::Instant;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::error::describe;
use super::{JournalError, Record, Request};
use crate::metrics::{JOURNAL_COMMIT_SECONDS, JOURNAL_ERRORS};

const UPSERT_CONTACT: &str = "
    INSERT INTO contacts (id, record, status, agent, arrived_at, updated_at, closed_at, outcome)
    VALUES (?1, ?2, 'queued', NULL, ?3, ?3, NULL, NULL)
    ON CONFLICT (id) DO UPDATE SET
        record = excluded.record, status = excluded.status, agent = NULL,
        arrived_at = excluded.arrived_at, updated_at = excluded.updated_at,
        closed_at = NULL, outcome = NULL, disposition = NULL";
const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, contact, response, created_at) VALUES (?1, ?2, ?3, ?4)";
const INSERT_EVENT: &str =
    "INSERT INTO events (contact, kind, status, agent, at) VALUES (?1, ?2, ?3, ?4, ?5)";
// A closed contact stays closed: a late status report from the router does not reopen it.
const UPDATE_STATUS: &str = "
    UPDATE contacts SET status = ?2, agent = ?3, updated_at = ?4
    WHERE id = ?1 AND closed_at IS NULL";
const UPDATE_CLOSED: &str = "
    UPDATE contacts SET status = ?2, outcome = ?2, closed_at = ?3, updated_at = ?3,
                        disposition = ?4
    WHERE id = ?1 AND closed_at IS NULL";
const UPSERT_AGENT: &str = "
    INSERT INTO agents (id, name, token_hash, profile, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (id) DO UPDATE SET
        name = excluded.name, token_hash = excluded.token_hash,
        profile = excluded.profile, updated_at = excluded.updated_at";

const INSERT_MESSAGE: &str = "
    INSERT INTO messages (contact, direction, message_id, raw, parsed, at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_OUTGOING: &str = "
    INSERT INTO outbox (message_id, contact, kind, mail_from, recipients, raw, status, attempts,
                        next_attempt_at, last_error, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)";
const UPDATE_DELIVERY: &str = "
    UPDATE outbox SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5,
                      updated_at = ?6
    WHERE message_id = ?1";

/// How often an unhealthy journal tries a write of its own when no request comes.
const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(1);

/// Who waits for a request's outcome.
type Ack = Option<oneshot::Sender<Result<(), JournalError>>>;

/// The writer thread's state.
pub(crate) struct Writer {
    conn: Connection,
    requests: Receiver<Request>,
    max_batch: usize,
    batches_committed: Arc<AtomicU64>,
    /// False while the last batch failed to store something for a reason other than a
    /// conflicting record: what `/readyz` reports.
    healthy: Arc<AtomicBool>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        requests: Receiver<Request>,
        max_batch: usize,
        batches_committed: Arc<AtomicU64>,
        healthy: Arc<AtomicBool>,
    ) -> Self {
        Writer {
            conn,
            requests,
            max_batch,
            batches_committed,
            healthy,
        }
    }

    /// Writes batches until every sender is gone and the queue is empty. Returns the outcome of
    /// the last batch, so that `close` reports a failed final flush.
    pub(crate) fn run(self) -> Result<(), JournalError> {
        let mut last = Ok(());
        let mut batch: Vec<(Vec<Record>, Ack)> = Vec::with_capacity(self.max_batch);
        // `recv` keeps returning queued requests after the senders are dropped; it fails only
        // once the queue is empty too, so closing loses nothing that was accepted. While the
        // journal is unhealthy, a second without requests is spent trying a write of our own:
        // /readyz says not ready meanwhile, so a load balancer stops sending intake and no
        // request may come to find out that the disk has room again.
        loop {
            let first = if self.healthy.load(Ordering::Relaxed) {
                match self.requests.recv() {
                    Ok(first) => first,
                    Err(_) => break,
                }
            } else {
                match self.requests.recv_timeout(HEALTH_PROBE_EVERY) {
                    Ok(first) => first,
                    Err(RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Append { records, ack } => batch.push((records, ack)),
                    #[cfg(test)]
                    Request::Exec { sql, ack } => {
                        // Between batches, in queue order: write what came before it first.
                        if !batch.is_empty() {
                            last = self.write_batch(&mut batch);
                        }
                        let result = self
                            .conn
                            .execute_batch(&sql)
                            .map_err(|e| JournalError::Write(describe(&e)));
                        let _ = ack.send(result);
                    }
                }
                if batch.len() < self.max_batch {
                    next = self.requests.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                last = self.write_batch(&mut batch);
            }
        }
        last
    }

    /// Rewrites the heartbeat row in a transaction of its own: healthy again if it commits.
    fn probe(&self) {
        let written = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            self.conn.execute(
                "INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?1)",
                params![crate::daemon::unix_ms() as i64],
            )?;
            self.conn.execute_batch("COMMIT")
        });
        match written {
            Ok(()) => {
                tracing::info!("journal writes again; ready");
                self.healthy.store(true, Ordering::Relaxed);
            }
            Err(_) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
            }
        }
    }

    /// Writes one batch in one transaction, answers every waiter, and empties `batch`.
    fn write_batch(&self, batch: &mut Vec<(Vec<Record>, Ack)>) -> Result<(), JournalError> {
        let started = Instant::now();
        let outcome = self.transaction(batch);
        let (results, batch_result) = match outcome {
            Ok(results) => {
                self.batches_committed.fetch_add(1, Ordering::Relaxed);
                ::metrics::histogram!(JOURNAL_COMMIT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                (results, Ok(()))
            }
            Err(error) => (vec![Err(error.clone()); batch.len()], Err(error)),
        };
        // Healthy once something was stored; a batch of conflicts alone commits nothing, so it
        // says nothing about the disk and leaves the flag as it was.
        if batch_result.is_err()
            || results
                .iter()
                .any(|r| matches!(r, Err(JournalError::Write(_))))
        {
            self.healthy.store(false, Ordering::Relaxed);
        } else if results.iter().any(Result::is_ok) {
            self.healthy.store(true, Ordering::Relaxed);
        }
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            ::metrics::counter!(JOURNAL_ERRORS).increment(1);
        }
        for ((records, ack), result) in batch.drain(..).zip(results) {
            match ack {
                // The waiter may have gone (request cancelled); the outcome is then moot.
                Some(ack) => {
                    let _ = ack.send(result);
                }
                None => {
                    if let Err(error) = result {
                        tracing::error!(
                            records = records.len(),
                            %error,
                            "journal: records from the router were not stored"
                        );
                    }
                }
            }
        }
        if failed > 0 {
            tracing::warn!(failed, "journal: requests in a batch were not stored");
        }
        batch_result
    }

    /// Runs the transaction: `Ok` holds each request's own outcome (a request refused under its
    /// savepoint fails alone); `Err` means nothing of the batch was committed.
    fn transaction(
        &self,
        batch: &[(Vec<Record>, Ack)],
    ) -> Result<Vec<Result<(), JournalError>>, JournalError> {
        let conn = &self.conn;
        let fail = |e: rusqlite::Error| {
            // Whatever failed, leave no transaction open for the next batch.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            JournalError::Write(describe(&e))
        };
        // IMMEDIATE takes the write lock up front, so a lock held by another process shows up
        // here (after busy_timeout) rather than halfway through the batch.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
        let mut results = Vec::with_capacity(batch.len());
        for (records, _) in batch {
            conn.execute_batch("SAVEPOINT request").map_err(fail)?;
            match write_records(conn, records) {
                Ok(()) => {
                    conn.execute_batch("RELEASE request").map_err(fail)?;
                    results.push(Ok(()));
                }
                Err(e) => {
                    // Disk full, I/O errors and the like may make SQLite roll back the whole
                    // transaction by itself: then the batch is lost, not just this request.
                    if conn.is_autocommit() {
                        return Err(JournalError::Write(describe(&e)));
                    }
                    conn.execute_batch("ROLLBACK TO request; RELEASE request")
                        .map_err(fail)?;
                    let refused = if e.sqlite_error_code()
                        == Some(rusqlite::ErrorCode::ConstraintViolation)
                    {
                        JournalError::Conflict(describe(&e))
                    } else {
                        JournalError::Write(describe(&e))
                    };
                    results.push(Err(refused));
                }
            }
        }
        conn.execute_batch("COMMIT").map_err(fail)?;
        Ok(results)
    }
}

/// Writes one request's records, in order.
fn write_records(conn: &Connection, records: &[Record]) -> rusqlite::Result<()> {
    for record in records {
        match record {
            Record::Accepted {
                contact,
                idempotency_key,
                response,
            } => {
                let (id, arrived_at) = store_contact(conn, contact, "accepted", None)?;
                if let Some(key) = idempotency_key {
                    conn.prepare_cached(INSERT_IDEMPOTENCY)?.execute(params![
                        key,
                        id,
                        response.to_string(),
                        arrived_at
                    ])?;
                }
            }
            Record::Status {
                contact,
                status,
                agent,
                at,
            } => {
                let (id, at) = (int(*contact)?, int(*at)?);
                conn.prepare_cached(UPDATE_STATUS)?
                    .execute(params![id, status, agent, at])?;
                conn.prepare_cached(INSERT_EVENT)?
                    .execute(params![id, "status", status, agent, at])?;
            }
            Record::Closed {
                contact,
                outcome,
                at,
                disposition,
            } => {
                let (id, at) = (int(*contact)?, int(*at)?);
                conn.prepare_cached(UPDATE_CLOSED)?.execute(params![
                    id,
                    outcome,
                    at,
                    disposition
                ])?;
                conn.prepare_cached(INSERT_EVENT)?.execute(params![
                    id,
                    "closed",
                    outcome,
                    None::<&str>,
                    at
                ])?;
            }
            Record::Reopened { contact } => {
                store_contact(
                    conn,
                    contact,
                    "reopened",
                    contact.preferred_agent.as_deref(),
                )?;
            }
            Record::Message(m) => {
                conn.prepare_cached(INSERT_MESSAGE)?.execute(params![
                    int(m.contact)?,
                    m.direction,
                    m.message_id,
                    m.raw,
                    m.parsed.to_string(),
                    int(m.at)?
                ])?;
            }
            Record::Outgoing(mail) => {
                let recipients = serde_json::to_string(&mail.recipients)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                conn.prepare_cached(INSERT_OUTGOING)?.execute(params![
                    mail.message_id,
                    int(mail.contact)?,
                    mail.kind,
                    mail.mail_from,
                    recipients,
                    mail.raw,
                    mail.status,
                    mail.attempts,
                    int(mail.next_attempt_at)?,
                    mail.last_error,
                    int(mail.created_at)?
                ])?;
            }
            Record::Delivery {
                contact,
                message_id,
                status,
                attempts,
                next_attempt_at,
                last_error,
                at,
            } => {
                conn.prepare_cached(UPDATE_DELIVERY)?.execute(params![
                    message_id,
                    status,
                    attempts,
                    int(*next_attempt_at)?,
                    last_error,
                    int(*at)?
                ])?;
                conn.prepare_cached(INSERT_EVENT)?.execute(params![
                    int(*contact)?,
                    "delivery",
                    status,
                    None::<&str>,
                    int(*at)?
                ])?;
            }
            Record::Agent(agent) => {
                conn.prepare_cached(UPSERT_AGENT)?.execute(params![
                    agent.id,
                    agent.name,
                    agent.token_hash,
                    agent.profile.to_string(),
                    int(agent.updated_at)?
                ])?;
            }
        }
    }
    Ok(())
}

/// Stores a contact as queued (new, or open again) with its `kind` event; returns its id and
/// arrival as stored.
fn store_contact(
    conn: &Connection,
    contact: &super::ContactRecord,
    kind: &str,
    agent: Option<&str>,
) -> rusqlite::Result<(i64, i64)> {
    let id = int(contact.id)?;
    let arrived_at = int(contact.arrived_at)?;
    let json = serde_json::to_string(contact)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(UPSERT_CONTACT)?
        .execute(params![id, json, arrived_at])?;
    conn.prepare_cached(INSERT_EVENT)?
        .execute(params![id, kind, "queued", agent, arrived_at])?;
    Ok((id, arrived_at))
}

/// SQLite integers are signed; `append` already refused larger values, this keeps it honest.
fn int(value: u64) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
