//! The write path's health: why a write transaction failed
//! ([`WriteFailure`], counted by cause in `freedompay_write_failures_total`)
//! and whether the latest one could commit ([`WriteHealth`], what `/readyz`
//! reports besides a round trip to the database).
//!
//! A `SELECT 1` answers on a database that cannot take a single write (a
//! full disk, a server that came back read-only), so readiness also asks
//! the write path: it is not ready from the moment a transaction fails for
//! a cause that stops every write, until one commits again — a group of
//! callbacks, or the probe write `/readyz` makes while it is failing (so a
//! service taken out of rotation comes back without traffic).

use std::sync::Mutex;

use super::StoreError;
use crate::telemetry::metrics::WRITE_FAILURES;

/// Why a write transaction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// No space left for the database or its journal (SQLite `SQLITE_FULL`,
    /// PostgreSQL `53100`).
    DiskFull,
    /// The server takes no writes (PostgreSQL `25006`: a standby, or
    /// `default_transaction_read_only`; SQLite `SQLITE_READONLY`).
    ReadOnly,
    /// The database cannot be reached or used: no connection, a connection
    /// lost or ended by the server, an I/O error, a damaged file.
    Unavailable,
    /// Another writer held what this one needed (lock timeout, deadlock,
    /// serialization failure): the next attempt may pass.
    Contention,
    /// A row the transaction read could not be used.
    Data,
    /// Anything else (a statement error).
    Other,
}

impl WriteFailure {
    pub fn of(error: &StoreError) -> WriteFailure {
        match error {
            StoreError::Database(error) => Self::of_sqlx(error),
            StoreError::Corrupt(_) => WriteFailure::Data,
            StoreError::WriterGone => WriteFailure::Unavailable,
            StoreError::Migrate(_)
            | StoreError::UnsupportedUrl
            | StoreError::GroupFailed(_)
            | StoreError::Archive(_) => WriteFailure::Other,
        }
    }

    fn of_sqlx(error: &sqlx::Error) -> WriteFailure {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => WriteFailure::Unavailable,
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => WriteFailure::Data,
            sqlx::Error::Database(db) => match db.code() {
                Some(code) => Self::of_code(&code),
                None => WriteFailure::Other,
            },
            _ => WriteFailure::Other,
        }
    }

    /// PostgreSQL's codes are five-character SQLSTATEs; SQLite's are
    /// numbers of at most four digits (extended codes keep the primary code
    /// in their low byte).
    pub fn of_code(code: &str) -> WriteFailure {
        if code.len() < 5
            && let Ok(extended) = code.parse::<i32>()
        {
            return match extended & 0xff {
                13 => WriteFailure::DiskFull,
                8 => WriteFailure::ReadOnly,
                5 | 6 => WriteFailure::Contention,
                10 | 11 | 14 | 26 => WriteFailure::Unavailable,
                _ => WriteFailure::Other,
            };
        }
        match code {
            "53100" => WriteFailure::DiskFull,
            "25006" => WriteFailure::ReadOnly,
            "40001" | "40P01" | "55P03" => WriteFailure::Contention,
            "57P01" | "57P02" | "57P03" => WriteFailure::Unavailable,
            _ if code.starts_with("08") || code.starts_with("53") => WriteFailure::Unavailable,
            _ => WriteFailure::Other,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            WriteFailure::DiskFull => "disk_full",
            WriteFailure::ReadOnly => "read_only",
            WriteFailure::Unavailable => "unavailable",
            WriteFailure::Contention => "contention",
            WriteFailure::Data => "data",
            WriteFailure::Other => "other",
        }
    }

    /// Every write would fail alike until the cause goes away: the service
    /// is not ready, and a failed group is not retried one by one.
    pub fn stops_writes(self) -> bool {
        matches!(
            self,
            WriteFailure::DiskFull | WriteFailure::ReadOnly | WriteFailure::Unavailable
        )
    }

    /// Counts one failed write transaction.
    pub(crate) fn count(self) {
        metrics::counter!(WRITE_FAILURES, "cause" => self.label()).increment(1);
    }
}

/// Whether the write path's latest transaction (a group, or the readiness
/// probe) committed: `None`, or the cause that stops every write.
#[derive(Debug, Default)]
pub struct WriteHealth(Mutex<Option<WriteFailure>>);

impl WriteHealth {
    /// The cause that stops writes, while the latest transaction failed for one.
    pub fn failing(&self) -> Option<WriteFailure> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A transaction committed.
    pub(crate) fn committed(&self) {
        self.set(None);
    }

    /// A transaction failed: counted, and remembered when it stops writes.
    /// A failure of one callback's data or of contention says nothing of
    /// the next transaction and leaves the state as it was.
    pub(crate) fn failed(&self, error: &StoreError) -> WriteFailure {
        let failure = WriteFailure::of(error);
        failure.count();
        if failure.stops_writes() {
            self.set(Some(failure));
        }
        failure
    }

    fn set(&self, state: Option<WriteFailure>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = state;
    }
}
