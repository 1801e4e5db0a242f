//! SQLite's checkpoints, run by a task of their own: no connection of the
//! store checkpoints in a commit (`wal_autocheckpoint = 0` on each), so no
//! callback's commit waits for one, and a retention batch's time is its
//! hold of the write lock alone (`retention::pace`).
//!
//! With SQLite's default, the connection whose commit takes the WAL past
//! 1,000 pages copies the WAL into the database file and syncs it before its
//! `COMMIT` returns: every few hundred callbacks one group's answers waited
//! for that, and while a long reader (a retention run's archive, a backup)
//! kept the WAL from being reset, every commit tried again. Here a
//! connection of its own runs `PRAGMA wal_checkpoint(PASSIVE)` every
//! [`EVERY`]: a passive checkpoint takes no lock a writer needs, so it runs
//! beside the callbacks, and the next writer after a complete one starts
//! the WAL over. Every process that opens the store runs one (`serve`,
//! `retention run`, operators' commands; the last connection to close
//! checkpoints too).

use std::sync::Weak;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use crate::store::health::WriteHealth;

/// How often the WAL is checkpointed. At SQLite's default threshold (1,000
/// pages, 4 MB) a busy writer would checkpoint about as often; a passive
/// checkpoint with nothing new to copy costs a read of the WAL index.
const EVERY: Duration = Duration::from_millis(500);

/// Starts the checkpoint task (inside a Tokio runtime). It ends once the
/// store is gone: `health` is the writer's, held by the store.
pub(crate) fn start(options: SqliteConnectOptions, health: Weak<WriteHealth>) {
    tokio::spawn(async move {
        let mut connection: Option<SqliteConnection> = None;
        let mut failing = false;
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if health.strong_count() == 0 {
                break;
            }
            match checkpoint(&options, &mut connection).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("SQLite checkpoints work again");
                }
                Ok(()) => {}
                // A full disk or a damaged file: the writer reports it (its
                // commits fail, and /readyz with them). Here it is said once
                // per failing spell, the connection is replaced, and the
                // next tick tries again.
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "SQLite checkpoint failed; trying again every 500 ms (the WAL grows meanwhile)");
                    }
                    failing = true;
                    connection = None;
                }
            }
        }
        if let Some(connection) = connection {
            let _ = connection.close().await;
        }
    });
}

/// One passive checkpoint on `connection` (opened first if there is none).
async fn checkpoint(
    options: &SqliteConnectOptions,
    connection: &mut Option<SqliteConnection>,
) -> Result<(), sqlx::Error> {
    let connection = match connection {
        Some(connection) => connection,
        None => connection.insert(SqliteConnection::connect_with(options).await?),
    };
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(connection)
        .await?;
    // (busy, frames in the WAL, frames copied): a checkpoint another
    // connection held is "busy", not an error; the next tick tries again.
    let (frames, copied): (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
    tracing::trace!(frames, copied, "SQLite checkpoint");
    Ok(())
}
