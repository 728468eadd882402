//! The database's shape: pragmas, tables, and the schema version that lets a later release
//! migrate a file written by this one.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::JournalOptions;
use super::error::describe;

/// The schema this build writes, kept in `PRAGMA user_version`. Bump it with a migration step in
/// [`migrate`]; never edit a released step.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// `PRAGMA application_id` of a Switchboard journal ("SWBD"): `file(1)` and we can tell it from
/// another program's SQLite file.
const APPLICATION_ID: i64 = 0x5357_4244;

/// Version 1: contacts with their latest state, the append-only history of events, idempotency
/// keys, and agents.
///
/// `contacts.id` is `AUTOINCREMENT` although ids are given by the daemon: SQLite then keeps the
/// largest id ever inserted in `sqlite_sequence`, so `next_contact_id` never goes back even if
/// old closed contacts are pruned one day.
const SCHEMA_V1: &str = "
CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record     TEXT    NOT NULL,  -- the ContactRecord, as JSON
    status     TEXT    NOT NULL,  -- last status, or the outcome once closed
    agent      TEXT,              -- agent of the last status
    arrived_at INTEGER NOT NULL,  -- Unix ms
    updated_at INTEGER NOT NULL,  -- Unix ms
    closed_at  INTEGER,           -- Unix ms, NULL while open
    outcome    TEXT               -- completed, abandoned, cancelled; NULL while open
);
CREATE INDEX contacts_open ON contacts (arrived_at, id) WHERE closed_at IS NULL;

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    contact INTEGER NOT NULL,
    kind    TEXT    NOT NULL,     -- accepted, status, closed
    status  TEXT    NOT NULL,     -- queued, offered, ... or the outcome
    agent   TEXT,
    at      INTEGER NOT NULL      -- Unix ms
);
CREATE INDEX events_contact ON events (contact);

CREATE TABLE idempotency (
    key        TEXT    PRIMARY KEY,
    contact    INTEGER NOT NULL,
    response   TEXT    NOT NULL,  -- JSON answered to the sender
    created_at INTEGER NOT NULL   -- Unix ms
) WITHOUT ROWID;

CREATE TABLE agents (
    id         TEXT    PRIMARY KEY,
    name       TEXT,
    token_hash TEXT    NOT NULL,
    profile    TEXT    NOT NULL,  -- JSON
    updated_at INTEGER NOT NULL   -- Unix ms
) WITHOUT ROWID;
";

/// Version 2: the email channel. Messages of a contact's conversation, kept raw (nothing is
/// lost to parsing) and findable by Message-ID for threading; and the outbox of outgoing mail,
/// durable until the relay takes it or it is given up.
const SCHEMA_V2: &str = "
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY,
    contact    INTEGER NOT NULL,
    direction  TEXT    NOT NULL,  -- inbound, outbound
    message_id TEXT,              -- without angle brackets
    raw        BLOB    NOT NULL,
    parsed     TEXT    NOT NULL,  -- JSON
    at         INTEGER NOT NULL   -- Unix ms
);
CREATE INDEX messages_contact ON messages (contact);
CREATE INDEX messages_message_id ON messages (message_id);

CREATE TABLE outbox (
    message_id      TEXT    PRIMARY KEY,
    contact         INTEGER NOT NULL,
    kind            TEXT    NOT NULL,  -- acknowledgement, reply
    mail_from       TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,  -- JSON array
    raw             BLOB    NOT NULL,
    status          TEXT    NOT NULL,  -- pending, sent, failed
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,  -- Unix ms
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
";

/// Version 3: the disposition (wrap-up code) an agent gave when completing a contact, kept with
/// the closure so reports can count outcomes by it. Contacts closed before it have none: the
/// agent's code was accepted and dropped then, and nothing can bring it back.
const SCHEMA_V3: &str = "
ALTER TABLE contacts ADD COLUMN disposition TEXT;  -- NULL unless completed with one

-- One row the writer rewrites to find out whether the disk takes writes again after a failed
-- batch, when no request comes to try (see Writer::run).
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL  -- Unix ms
);
";

/// Opens the writer's connection: WAL, the requested durability, the schema migrated to
/// [`SCHEMA_VERSION`].
pub(crate) fn open_writer(path: &Path, options: &JournalOptions) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| describe(&e))?;
    // SQLite silently falls back to read-only when it cannot open the file for writing; every
    // append would then fail, so refuse to start instead.
    if conn.is_readonly("main").map_err(|e| describe(&e))? {
        return Err("the database file is read-only; check its permissions and the mount".into());
    }
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| describe(&e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| format!("cannot set WAL mode: {}", describe(&e)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "the file system refused WAL mode (got {mode:?}); use a local disk for the data directory"
        ));
    }
    let synchronous = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(|e| describe(&e))?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection for lookups beside the writer.
pub(crate) fn open_reader(path: &Path, options: &JournalOptions) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open the read connection: {}", describe(&e)))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| describe(&e))?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`], one step per version, each in its own transaction.
fn migrate(conn: &Connection) -> Result<(), String> {
    let application_id: i64 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| describe(&e))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(format!(
            "the file belongs to another application (application_id {application_id:#x})"
        ));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| describe(&e))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the file has schema version {version}, written by a newer Switchboard; \
             this build reads up to version {SCHEMA_VERSION}"
        ));
    }
    if version < 1 {
        step(conn, 1, SCHEMA_V1)?;
    }
    if version < 2 {
        step(conn, 2, SCHEMA_V2)?;
    }
    if version < 3 {
        step(conn, 3, SCHEMA_V3)?;
    }
    Ok(())
}

/// Builds the schema exactly as a release writing version 2 left it (the released steps, no
/// later ones), so tests can check that such a file opens and migrates.
#[cfg(test)]
pub(crate) fn create_as_version_2(conn: &Connection) -> Result<(), String> {
    step(conn, 1, SCHEMA_V1)?;
    step(conn, 2, SCHEMA_V2)
}

/// Runs one migration step and records its version, atomically.
fn step(conn: &Connection, version: i64, sql: &str) -> Result<(), String> {
    let batch = format!(
        "BEGIN IMMEDIATE;
         {sql}
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {version};
         COMMIT;"
    );
    conn.execute_batch(&batch).map_err(|e| {
        // Leave no half-open transaction behind; the step is retried on the next start.
        let _ = conn.execute_batch("ROLLBACK");
        format!("cannot create schema version {version}: {}", describe(&e))
    })
}
