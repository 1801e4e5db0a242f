//! PostgreSQL backend: the store ([`PgStore`]: pool, migrations, order
//! inserts) and its statements (`sql`), which the shared write path runs
//! (`callbacks::path`) with a few group writers at once, each group under
//! its subjects' advisory locks and its rows' locks. `NUMERIC` money, and
//! `NOTIFY freedompay_events` for each committed event.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

pub mod hosts;
pub mod partitions;

use hosts::Hosts;

use crate::store::callbacks::path::{GroupConn, Row, start_writer};
use crate::store::callbacks::statements::{self, Statements};
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
///
/// And each statement is planned once per connection, its generic plan
/// kept (`plan_cache_mode = force_generic_plan`): the same index lookups
/// whatever the arguments, so planning them again for every group is only
/// cost. Left to choose, PostgreSQL planned the locks' statement for every
/// group (its custom plan, which sees the count of ids to draw, always
/// looks cheaper: 113 µs a group), and on some connections, after the
/// tables' statistics changed, the decisions' read too (383 µs a group);
/// measured with `pg_stat_statements.track_planning` (BENCHMARKS.md).
pub const WRITER_SETTINGS: &[(&str, &str)] = &[
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("plan_cache_mode", "force_generic_plan"),
];

/// Session settings of the pool's connections: the writers' scans off (the
/// row reads run the write path's lookups; the history and console queries
/// are keyed or bounded lists on indexed columns, or text searches that
/// only a scan can answer), and custom plans for every execution: a cached
/// generic plan of a query with a range or a list (the reconciler's, the
/// history's) may not suit its real arguments.
pub const POOL_SETTINGS: &[(&str, &str)] = &[
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("plan_cache_mode", "force_custom_plan"),
];

/// The channel every committed event is announced on, with its id as payload.
pub const NOTIFY_CHANNEL: &str = "freedompay_events";

/// Opens the pool and starts the group writer (inside a Tokio runtime).
/// `url` may name several servers ([`hosts`]): the pool and the writers
/// use the one that takes writes, and move on together after a failover.
pub(crate) fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Backend<sqlx::Postgres>, StoreError> {
    let hosts = Arc::new(Hosts::new(hosts::parse_url(url)?, APPLICATION, true));
    let checked = Arc::downgrade(&hosts);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        // The pool writes too (orders, the reconciler's tasks, migrations,
        // the readiness probe): its connections must reach the primary.
        .after_connect(move |connection, _| {
            let checked = checked.clone();
            Box::pin(async move { hosts::check_pooled(&checked, connection).await })
        })
        .connect_lazy_with(
            hosts
                .current()
                .clone()
                .options(POOL_SETTINGS.iter().copied()),
        );
    hosts.follow_with(pool.clone(), POOL_SETTINGS);
    let workers = GROUP_WORKERS.min(max_connections.max(1) as usize);
    // The group writers' own connections (`callbacks::path`), one each.
    // Their statements are the write path's, whose only plans (with
    // `WRITER_SETTINGS`) are primary-key lookups and key-arbitrated inserts
    // (`sql`), so PostgreSQL may cache generic plans for them and skip
    // planning on every execution. No ping before each group (a round trip every group): a
    // connection broken by a database restart fails its group, and the
    // worker replaces it, through the same choice of server as the pool's.
    let health = Arc::new(WriteHealth::default());
    let writers = hosts.clone();
    let writer = start_writer(
        Arc::new(move || {
            let hosts = writers.clone();
            Box::pin(async move { Ok(hosts.connect(WRITER_SETTINGS).await?) })
        }),
        workers,
        acquire_timeout,
        health.clone(),
    );
    Ok(Backend::new(pool, writer, health).with_hosts(hosts))
}

/// The pool of `database.read_url` (one server, which may be a standby:
/// nothing written goes there, so no server is refused for taking no
/// writes): the console, `history` and the reconciler's searches for due
/// work (`Store::discover_tasks`) read there.
pub(crate) fn connect_reads(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<sqlx::PgPool, StoreError> {
    let hosts = Hosts::new(hosts::parse_url(url)?, APPLICATION, false);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(
            hosts
                .current()
                .clone()
                .options(POOL_SETTINGS.iter().copied()),
        ))
}

/// The `application_name` of every connection.
const APPLICATION: &str = "freedompay-receiver";

/// `host:port` of a connection's server, as logs and errors name it.
fn server_name(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// Refuses a new connection unless its server takes writes, as libpq's
/// `target_session_attrs=read-write` does: `transaction_read_only` is on in
/// a standby (in recovery) and under `default_transaction_read_only`.
///
/// Why when the connection is made: after a failover the old primary may
/// come back as a standby, or a proxy may point at the wrong server for a
/// while. A connection there answers `SELECT 1` like any other, so the pool
/// would keep it, and every write on it would fail; refused here, it never
/// reaches the write path, and the writer's next attempt connects again
/// (to the next host, or through a proxy that was fixed meanwhile). The
/// error carries SQLSTATE 25006, so it is classified [`ReadOnly`] like a
/// write refused by such a server: a 503 for the callback, counted in
/// `freedompay_write_failures_total{cause="read_only"}`, and `/readyz`
/// fails until a write commits again.
///
/// [`ReadOnly`]: crate::store::health::WriteFailure::ReadOnly
async fn require_writable(
    connection: &mut PgConnection,
    server: &str,
    refusals: &Refusals,
) -> Result<(), sqlx::Error> {
    let (read_only, in_recovery): (bool, bool) = sqlx::query_as(
        "SELECT current_setting('transaction_read_only') = 'on', pg_is_in_recovery()",
    )
    .fetch_one(&mut *connection)
    .await?;
    if !read_only {
        refusals.accepted(server);
        return Ok(());
    }
    let refused = ReadOnlyServer {
        message: format!(
            "connection to {server} refused: the server takes no writes ({})",
            if in_recovery {
                "it is a standby in recovery"
            } else {
                "default_transaction_read_only is on"
            }
        ),
    };
    refusals.refused(server, &refused);
    Err(sqlx::Error::Database(Box::new(refused)))
}

/// The servers that refused a connection, so that a refusal is logged once
/// when it starts (not for every connection attempt under load) and once
/// when it ends.
#[derive(Debug, Default)]
struct Refusals(Mutex<HashSet<String>>);

impl Refusals {
    fn refused(&self, server: &str, error: &ReadOnlyServer) {
        if self.servers().insert(server.to_owned()) {
            tracing::warn!(
                server,
                cause = "read_only",
                "{}; callbacks are answered 503 until a writable server is reached",
                error.message
            );
        }
    }

    fn accepted(&self, server: &str) {
        if self.servers().remove(server) {
            tracing::info!(server, "the server takes writes again");
        }
    }

    fn servers(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection refused because its server takes no writes. A database
/// error of SQLSTATE 25006 (what such a server answers to a write), so that
/// every caller classifies it as it would that answer.
#[derive(Debug)]
pub(crate) struct ReadOnlyServer {
    message: String,
}

impl std::fmt::Display for ReadOnlyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReadOnlyServer {}

impl DatabaseError for ReadOnlyServer {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("25006"))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// The write path's way of running a statement on PostgreSQL
/// (`callbacks::path`): text parameters, named rows.
impl GroupConn for PgConnection {
    fn statements() -> &'static Statements {
        &statements::POSTGRES
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
