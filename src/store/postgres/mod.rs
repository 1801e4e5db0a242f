//! PostgreSQL backend: the store ([`PgStore`]: pool, migrations, order
//! inserts) and its statements (`sql`), which the shared write path runs
//! (`callbacks::path`) with a few group writers at once, each group under
//! its subjects' advisory locks and its rows' locks. `NUMERIC` money, and
//! `NOTIFY freedompay_events` for each committed event.

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

pub mod sql;

use crate::store::callbacks::path::{GroupConn, Row, Statements, start_writer};
use crate::store::health::WriteHealth;
use crate::store::{Backend, StoreError};

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Groups in flight at once. Two cores keep about this many busy; more only
/// make the groups smaller.
const GROUP_WORKERS: usize = 2;

/// Session settings of the group writers' connections: no plan may scan a
/// table or build a bitmap when an index can serve.
///
/// Why: a plan chosen by table statistics goes wrong on young tables. A
/// table analysed while empty (a `VACUUM ANALYZE` of a new database), or at
/// its first 50 rows by autovacuum, looks so small that a sequential scan
/// beats its primary key, and a connection that caches the generic plan of
/// a lookup then scans the whole table for every group until the next
/// `ANALYZE`, as the table grows (0.28× the PHP receiver, measured). Every
/// statement of the callback path looks rows up by key or inserts arbitrated
/// by a key (`sql`), so the index is always the right plan, whatever the
/// statistics say; with scans disabled the planner takes it in every state
/// of statistics (`tests/it/storage_plans.rs` checks four, custom and
/// generic plans). Scans stay possible where nothing else can answer.
pub const WRITER_SETTINGS: &[(&str, &str)] =
    &[("enable_seqscan", "off"), ("enable_bitmapscan", "off")];

/// Session settings of the pool's connections: the writers' (the row reads
/// run the write path's lookups; the history and console queries are keyed
/// or bounded lists on indexed columns, or text searches that only a scan
/// can answer), and custom plans for every execution: a cached generic plan
/// of a query with a range or a list (the reconciler's, the history's) may
/// not suit its real arguments.
pub const POOL_SETTINGS: &[(&str, &str)] = &[
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("plan_cache_mode", "force_custom_plan"),
];

/// The channel every committed event is announced on, with its id as payload.
pub const NOTIFY_CHANNEL: &str = "freedompay_events";

/// Opens the pool and starts the group writer (inside a Tokio runtime).
pub(crate) fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Backend<sqlx::Postgres>, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("freedompay-receiver");
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options.clone().options(POOL_SETTINGS.iter().copied()));
    let workers = GROUP_WORKERS.min(max_connections.max(1) as usize);
    // The group writers' own connections (`callbacks::path`), one each.
    // Their statements are the write path's, whose only plans (with
    // `WRITER_SETTINGS`) are primary-key lookups and key-arbitrated inserts
    // (`sql`), so PostgreSQL may cache generic plans for them and skip
    // planning on every execution. No ping before each group (a round trip every group): a
    // connection broken by a database restart fails its group, and the
    // worker replaces it.
    let health = Arc::new(WriteHealth::default());
    let options = options.options(WRITER_SETTINGS.iter().copied());
    let writer = start_writer(
        Arc::new(move || {
            let options = options.clone();
            Box::pin(async move { Ok(PgConnection::connect_with(&options).await?) })
        }),
        workers,
        acquire_timeout,
        health.clone(),
    );
    Ok(Backend::new(pool, writer, health))
}

/// The write path's way of running a statement on PostgreSQL
/// (`callbacks::path`): text parameters, named rows.
impl GroupConn for PgConnection {
    const STATEMENTS: &'static Statements = &sql::STATEMENTS;

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
