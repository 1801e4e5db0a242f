//! PostgreSQL backend: the store ([`PgStore`]: pool, migrations, order
//! inserts) and its statements (`sql`), which the shared write path runs
//! (`callbacks::path`) with a few group writers at once, each group under
//! its subjects' advisory locks and its rows' locks. `NUMERIC` money, and
//! `NOTIFY freedompay_events` for each committed event.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub mod sql;

use crate::store::callbacks::path::{group_store, run_group};
use crate::store::callbacks::queue::Writer;
use crate::store::{Backend, StoreError};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Groups in flight at once. Two cores keep about this many busy; more only
/// make the groups smaller.
const GROUP_WORKERS: usize = 2;

/// The channel every committed event is announced on, with its id as payload.
pub const NOTIFY_CHANNEL: &str = "freedompay_events";

/// Opens the pool and starts the group writer (inside a Tokio runtime).
pub(crate) fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Backend<sqlx::Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?
        .application_name("freedompay-receiver")
        // Plan each execution for its real arguments: a cached generic
        // plan of a query with a range or a list (the reconciler's, the
        // history's) may scan whole tables.
        .options([("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options);
    let workers = GROUP_WORKERS.min(max_connections.max(1) as usize);
    let group_pool = pool.clone();
    let writer = Writer::start(
        move |group| {
            let pool = group_pool.clone();
            async move { run_group(&pool, group).await }
        },
        async {},
        workers,
    );
    Ok(Backend::new(pool, writer))
}

group_store!(PgPool, sqlx::Postgres, sql::STATEMENTS);
