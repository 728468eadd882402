//! Reading the journal back: the replay on open, and lookups of single contacts.
//!
//! A stored row that cannot be decoded is an error, never skipped: skipping it would drop a
//! contact silently, which is what the journal exists to prevent.

use rusqlite::{Connection, OptionalExtension, Row};

use super::error::describe;
use super::{
    AgentRecord, ContactRecord, MessageRecord, OpenContact, OutgoingMail, Replay, StoredContact,
};

/// Reads everything the daemon needs to resume. Runs once, on the writer's connection, before
/// the writer thread starts.
pub(crate) fn replay(conn: &Connection) -> Result<Replay, String> {
    let sql_error = |e: rusqlite::Error| format!("cannot read the journal: {}", describe(&e));

    let mut open = Vec::new();
    let mut statement = conn
        .prepare(
            "SELECT id, record, status, agent FROM contacts
             WHERE closed_at IS NULL ORDER BY arrived_at, id",
        )
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id: i64 = row.get(0).map_err(sql_error)?;
        open.push(OpenContact {
            contact: contact_record(id, row, 1)?,
            status: row.get(2).map_err(sql_error)?,
            agent: row.get(3).map_err(sql_error)?,
        });
    }

    let mut agents = Vec::new();
    let mut statement = conn
        .prepare("SELECT id, name, token_hash, profile, updated_at FROM agents ORDER BY id")
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id: String = row.get(0).map_err(sql_error)?;
        let profile: String = row.get(3).map_err(sql_error)?;
        agents.push(AgentRecord {
            profile: serde_json::from_str(&profile)
                .map_err(|e| format!("agent {id}: stored profile is not JSON: {e}"))?,
            name: row.get(1).map_err(sql_error)?,
            token_hash: row.get(2).map_err(sql_error)?,
            updated_at: unsigned(row.get(4).map_err(sql_error)?, "agent updated_at")?,
            id,
        });
    }

    let mut idempotency = Vec::new();
    let mut statement = conn
        .prepare("SELECT key, contact, response FROM idempotency ORDER BY created_at, key")
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let key: String = row.get(0).map_err(sql_error)?;
        let contact = unsigned(row.get(1).map_err(sql_error)?, "contact id")?;
        let response: String = row.get(2).map_err(sql_error)?;
        let response = serde_json::from_str(&response)
            .map_err(|e| format!("idempotency key {key:?}: stored response is not JSON: {e}"))?;
        idempotency.push((key, contact, response));
    }

    // sqlite_sequence holds the largest id ever inserted, even if rows were deleted since.
    let largest: i64 = conn
        .query_row(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'contacts'), 0),
                        coalesce((SELECT max(id) FROM contacts), 0))",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    let next_contact_id = unsigned(largest, "contact id")? + 1;

    Ok(Replay {
        open,
        agents,
        idempotency,
        next_contact_id,
    })
}

/// The latest stored view of contact `id`, if it was ever stored.
pub(crate) fn lookup(conn: &Connection, id: u64) -> Result<Option<StoredContact>, String> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None); // Never stored: `append` refuses ids that large.
    };
    let sql_error = |e: rusqlite::Error| describe(&e);
    let mut statement = conn
        .prepare_cached(
            "SELECT record, status, agent, arrived_at, updated_at, closed_at, outcome, disposition
             FROM contacts WHERE id = ?1",
        )
        .map_err(sql_error)?;
    let found = statement
        .query_row([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
            ))
        })
        .optional()
        .map_err(sql_error)?;
    let Some((record, status, agent, arrived_at, updated_at, closed_at, outcome, disposition)) =
        found
    else {
        return Ok(None);
    };
    Ok(Some(StoredContact {
        contact: decode_contact(id, &record)?,
        status,
        agent,
        arrived_at: unsigned(arrived_at, "arrived_at")?,
        updated_at: unsigned(updated_at, "updated_at")?,
        closed_at: closed_at.map(|at| unsigned(at, "closed_at")).transpose()?,
        outcome,
        disposition,
    }))
}

/// Decodes the contact JSON in column `column` of `row`.
fn contact_record(id: i64, row: &Row<'_>, column: usize) -> Result<ContactRecord, String> {
    let json: String = row.get(column).map_err(|e| describe(&e))?;
    decode_contact(id, &json)
}

fn decode_contact(id: i64, json: &str) -> Result<ContactRecord, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("contact {id}: stored record is unreadable: {e}"))
}

/// A stored non-negative integer (a time or an id) back to `u64`.
fn unsigned(value: i64, what: &str) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("stored {what} {value} is negative"))
}

/// Message-IDs of messages whose contact is open or closed at or after `since`.
pub(crate) fn thread_index(conn: &Connection, since: u64) -> Result<Vec<(String, u64)>, String> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let sql_error = |e: rusqlite::Error| describe(&e);
    let mut statement = conn
        .prepare_cached(
            "SELECT m.message_id, m.contact FROM messages m JOIN contacts c ON c.id = m.contact
             WHERE m.message_id IS NOT NULL AND (c.closed_at IS NULL OR c.closed_at >= ?1)
             ORDER BY m.seq",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map([since], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(sql_error)?;
    let mut index = Vec::new();
    for row in rows {
        let (id, contact) = row.map_err(sql_error)?;
        index.push((id, unsigned(contact, "contact id")?));
    }
    Ok(index)
}

/// One contact's messages in the order they were recorded.
pub(crate) fn messages(conn: &Connection, contact: u64) -> Result<Vec<MessageRecord>, String> {
    let Ok(id) = i64::try_from(contact) else {
        return Ok(Vec::new());
    };
    let sql_error = |e: rusqlite::Error| describe(&e);
    let mut statement = conn
        .prepare_cached(
            "SELECT direction, message_id, raw, parsed, at FROM messages
             WHERE contact = ?1 ORDER BY seq",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(sql_error)?;
    let mut messages = Vec::new();
    for row in rows {
        let (direction, message_id, raw, parsed, at) = row.map_err(sql_error)?;
        messages.push(MessageRecord {
            contact,
            direction,
            message_id,
            raw,
            parsed: serde_json::from_str(&parsed)
                .map_err(|e| format!("contact {contact}: stored message is unreadable: {e}"))?,
            at: unsigned(at, "message time")?,
        });
    }
    Ok(messages)
}

/// Outgoing mail: pending only (oldest due first), or all (newest first); at most `limit`.
pub(crate) fn outbox(
    conn: &Connection,
    pending_only: bool,
    limit: usize,
) -> Result<Vec<OutgoingMail>, String> {
    let sql_error = |e: rusqlite::Error| describe(&e);
    let sql = if pending_only {
        "SELECT message_id, contact, kind, mail_from, recipients, raw, status, attempts,
                next_attempt_at, last_error, created_at
         FROM outbox WHERE status = 'pending' ORDER BY next_attempt_at LIMIT ?1"
    } else {
        "SELECT message_id, contact, kind, mail_from, recipients, raw, status, attempts,
                next_attempt_at, last_error, created_at
         FROM outbox ORDER BY created_at DESC LIMIT ?1"
    };
    let mut statement = conn.prepare_cached(sql).map_err(sql_error)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement
        .query_map([limit], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Vec<u8>>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, u32>(7)?,
                row.get::<_, i64>(8)?,
                row.get::<_, Option<String>>(9)?,
                row.get::<_, i64>(10)?,
            ))
        })
        .map_err(sql_error)?;
    let mut mails = Vec::new();
    for row in rows {
        let (id, contact, kind, mail_from, recipients, raw, status, attempts, next, error, created) =
            row.map_err(sql_error)?;
        mails.push(OutgoingMail {
            recipients: serde_json::from_str(&recipients)
                .map_err(|e| format!("outgoing mail {id}: stored recipients unreadable: {e}"))?,
            message_id: id,
            contact: unsigned(contact, "contact id")?,
            kind,
            mail_from,
            raw,
            status,
            attempts,
            next_attempt_at: unsigned(next, "next_attempt_at")?,
            last_error: error,
            created_at: unsigned(created, "created_at")?,
        });
    }
    Ok(mails)
}
