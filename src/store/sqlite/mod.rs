//! SQLite backend, the embedded default: WAL journal, `synchronous=FULL` (a
//! commit is on disk before the answer leaves), money as canonical decimal
//! text. The store ([`SqliteStore`]) reads on a pool of its own and writes
//! callbacks through one writer connection, on which the shared write path
//! (`callbacks::path`) runs one group at a time with its statements (`sql`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub mod sql;

use crate::store::callbacks::path::{group_store, start_writer};
use crate::store::{Backend, StoreError};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for the write lock before the callback gets a 503.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the pool and starts the group writer (inside a Tokio runtime).
pub(crate) fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Backend<sqlx::Sqlite>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options.clone());
    // The writer's connection is not pinged before every group: each
    // statement is a round trip to the connection's worker thread, and an
    // embedded file has no server to lose.
    let writer_pool = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options);
    let writer = start_writer(writer_pool, 1);
    Ok(Backend::new(pool, writer))
}

group_store!(SqlitePool, sqlx::Sqlite, sql::STATEMENTS);
