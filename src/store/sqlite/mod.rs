//! SQLite backend, the embedded default: WAL journal, `synchronous=FULL` (a
//! commit is on disk before the answer leaves), money as canonical decimal
//! text. The store ([`SqliteStore`]) reads on a pool of its own and writes
//! callbacks through one writer connection, on which the shared write path
//! (`callbacks::path`) runs one group at a time with its statements (`sql`).

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::store::callbacks::path::{GroupConn, Row, start_writer};
use crate::store::callbacks::statements::{self, Statements};
use crate::store::health::WriteHealth;
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
        // A connection whose transaction could not be rolled back (SQLite
        // rolls back by itself on a full disk, and sqlx's rollback of it then
        // fails) comes back still counted "in a transaction" and would refuse
        // every later one: it is closed instead of reused. The ping first
        // lets a rollback queued by a dropped transaction run.
        .after_release(|connection, _| {
            Box::pin(async move {
                connection.ping().await?;
                Ok(!connection.is_in_transaction())
            })
        })
        .connect_lazy_with(options.clone());
    // The writer's one connection, its own (`callbacks::path`): not pinged
    // before every group (each statement is a round trip to the
    // connection's worker thread, and an embedded file has no server to
    // lose), replaced after any failed transaction.
    let health = Arc::new(WriteHealth::default());
    let writer = start_writer(
        Arc::new(move || {
            let options = options.clone();
            Box::pin(async move { Ok(SqliteConnection::connect_with(&options).await?) })
        }),
        1,
        acquire_timeout,
        health.clone(),
    );
    Ok(Backend::new(pool, writer, health))
}

/// The write path's way of running a statement on SQLite
/// (`callbacks::path`): text parameters, named rows.
impl GroupConn for SqliteConnection {
    fn statements() -> &'static Statements {
        &statements::SQLITE
    }

    async fn fetch<R: Row>(
        &mut self,
        sql: &'static str,
        params: &[String],
    ) -> Result<Vec<R>, sqlx::Error> {
        let mut query = sqlx::query_as(sql);
        for param in params {
            query = query.bind(param.as_str());
        }
        query.fetch_all(self).await
    }

    async fn run(&mut self, sql: &'static str, params: &[String]) -> Result<(), sqlx::Error> {
        let mut query = sqlx::query(sql);
        for param in params {
            query = query.bind(param.as_str());
        }
        query.execute(self).await.map(drop)
    }
}
