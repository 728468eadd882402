//! What can go wrong with the journal, each with what the caller (or the operator) can do.

use std::path::PathBuf;

/// A journal operation that did not happen. Every variant means "not stored" (or "not read"):
/// the caller must not acknowledge what it tried to write.
#[derive(Clone, Debug, thiserror::Error)]
pub enum JournalError {
    /// The database could not be opened, created, migrated or replayed. The daemon cannot start
    /// without it; the message says which step failed.
    #[error("cannot open journal {}: {message}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed, from SQLite or the file system.
        message: String,
    },
    /// The batch holding the records was not committed (disk full, read-only file, I/O error,
    /// database locked by another process). Nothing of it is stored; try again later.
    #[error("journal write failed, nothing stored, try again later: {0}")]
    Write(String),
    /// The request's records conflict with what is stored (an idempotency key or a contact id
    /// already there). Nothing of this request is stored; the journal itself is fine.
    #[error("journal refused the records, nothing stored: {0}")]
    Conflict(String),
    /// The writer's queue is full: the disk is not keeping up. Try again later.
    #[error("journal queue is full (the disk is not keeping up); try again later")]
    Busy,
    /// The journal was closed (the daemon is shutting down) or its writer thread died.
    #[error("journal is closed (shutting down, or its writer stopped); nothing stored")]
    Closed,
    /// A read (lookup) failed.
    #[error("journal read failed: {0}")]
    Read(String),
    /// The records were refused before being queued (unknown status or outcome, number out of
    /// range): a bug in the caller, not a state of the disk.
    #[error("journal refused the records: {0}")]
    Invalid(String),
}

/// Describes a SQLite failure in words an operator can act on.
pub(crate) fn describe(error: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    let hint = match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk (or the database's size limit) is full; free space",
        Some(ErrorCode::ReadOnly) => {
            "the database file or its directory is read-only; check permissions and the mount"
        }
        Some(ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "cannot access the database file; check the data directory's permissions"
        }
        Some(ErrorCode::SystemIoFailure) => "the disk reported an I/O error; check the device",
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "another process holds the database lock; is a second daemon using this data directory?"
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            "the database file is damaged or not a Switchboard journal"
        }
        Some(ErrorCode::ConstraintViolation) => "a record conflicts with one already stored",
        _ => return error.to_string(),
    };
    format!("{error} ({hint})")
}
