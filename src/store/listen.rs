//! Hearing other instances' commits: on PostgreSQL every committed event is
//! announced on `freedompay_events` (`NOTIFY`, sent at commit by the write
//! path), so a process that `LISTEN`s there learns at once that another
//! instance sharing the database committed something (the webhook
//! dispatcher then looks for deliveries to send). SQLite has one process,
//! whose commits are heard in-process (`Store::deliveries_written`).
//!
//! The listening connection comes from the store's pool (so it reaches the
//! writable host of a multi-host URL, and holds one of the pool's
//! connections while it listens). Hearing is an optimisation over polling:
//! when the connection fails, [`Commits::heard`] returns after `retry` and
//! listens again on its next call, while the caller's polling carries on.

use std::future::pending;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tracing::debug;

use super::{NOTIFY_CHANNEL, Store};

/// Commits of other processes, as heard on PostgreSQL.
#[derive(Debug)]
pub struct Commits {
    /// `None` on SQLite.
    pool: Option<PgPool>,
    listener: Option<PgListener>,
    retry: Duration,
}

impl Store {
    /// Commits heard from now on (on SQLite: never, [`Commits::heard`]
    /// waits for ever).
    pub fn commits(&self, retry: Duration) -> Commits {
        Commits {
            pool: match self {
                Store::Postgres(s) => Some(s.pool().clone()),
                Store::Sqlite(_) => None,
            },
            listener: None,
            retry,
        }
    }
}

impl Commits {
    /// Returns once a commit was announced (several heard at once count as
    /// one), at once when listening has just started (what was committed
    /// before it was not heard), or after `retry` when the listening
    /// connection failed.
    pub async fn heard(&mut self) {
        let Some(pool) = &self.pool else {
            return pending().await;
        };
        if self.listener.is_none() {
            match listen(pool).await {
                // Listening starts now: a commit made between the caller's
                // last look and this moment was not heard, so this counts
                // as hearing one (the caller looks again).
                Ok(listener) => {
                    self.listener = Some(listener);
                    return;
                }
                Err(e) => {
                    debug!(error = %e, "cannot listen for other instances' commits; polling only");
                    return tokio::time::sleep(self.retry).await;
                }
            }
        }
        let Some(listener) = self.listener.as_mut() else {
            return;
        };
        // `try_recv` is cancel-safe: the caller's `select!` may drop this
        // wait without losing what the listener buffered.
        match listener.try_recv().await {
            // Anything else already heard is covered by the same wake-up.
            Ok(Some(_)) => while listener.next_buffered().is_some() {},
            // The connection was lost and made again: commits made meanwhile
            // were not heard, so this counts as hearing one.
            Ok(None) => {}
            Err(e) => {
                self.listener = None;
                debug!(error = %e, "listening for other instances' commits failed; polling only");
                tokio::time::sleep(self.retry).await;
            }
        }
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}
