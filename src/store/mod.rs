//! Durable storage: one interface ([`Store`]) over two sqlx backends,
//! PostgreSQL for production and SQLite as the embedded default. This is the
//! only module with SQL.
//!
//! Every callback ([`Store::process`]), redirect ([`Store::record_redirect`])
//! and unparsed delivery ([`Store::record_event`]) queues for its backend's
//! group-commit writer (`callbacks::queue`), whose tasks take every job
//! waiting as a group and run it through the one write path
//! (`callbacks::path`): one transaction that takes the group's locks, reads
//! every row its callbacks are about, decides each callback in arrival order
//! against those rows (`callbacks::steps`, pure), writes what changed (one
//! statement on PostgreSQL, one a table on SQLite), and commits. A
//! callback's answer leaves only after that commit. A repeated delivery finds its key stored and gets the stored
//! answer (a duplicate) or, with different content, is a conflict; checks
//! claim no key and are decided against the state of their moment.
//! Concurrent callbacks about one subject are serialised by the database
//! (PostgreSQL: per-subject advisory locks and row locks; SQLite: its one
//! write lock), never by process memory, so several instances may share one
//! database.
//!
//! Which callback goes where:
//!
//! | callback | PostgreSQL | SQLite |
//! |---|---|---|
//! | every callback, redirect and unparsed delivery | its group's transaction: two group writers, so two groups in flight on two connections | its group's transaction on the one writer connection, `BEGIN IMMEDIATE` |
//! | a group whose transaction fails (a statement error, a deadlock, a key claimed meanwhile by another instance) | the fallback: each job again as a group of one, so only the failing one fails | the same |
//! | database unavailable, full, or read-only | every job of the group gets the error at once (non-`ok`, FreedomPay retries); the worker opens a new connection for the next group, and `/readyz` fails until a write commits | the same |
//!
//! Why: a group costs the same handful of statements whatever its size, so
//! the commit and the round trips are shared by every callback waiting
//! (BENCHMARKS.md), and every decision, first or repeated, plain or flagged,
//! has one implementation. The statements look rows up by primary key one
//! key at a time and write with `INSERT … ON CONFLICT`, and PostgreSQL's
//! sessions leave the planner no scan to prefer (`postgres::WRITER_SETTINGS`),
//! so no plan depends on table statistics, and the writers plan each
//! statement once per connection.
//!
//! Layout: one file per table in `tables/` (its row struct, its column list
//! written once, its statements for both dialects, built by `tables`'
//! few statement makers); the backend-neutral write path in `callbacks/`
//! (the subject rule, the pure steps, the queue, the path whose workers own
//! their connections, and `statements`, the path's SQL per backend made
//! from the tables'); the write path's health in `health` (readiness and
//! the failure metric); each backend's connection set-up in `postgres/`
//! and `sqlite/`; `outbound` stores the reconciler's tasks; `reads/` holds
//! the read-only queries of the `history` command and the console (over the
//! tables' rows; what is shown lives in `operator` and `console`);
//! `testing` holds reads used by the benchmark and the tests. The webhook
//! outbox (`tables/webhook_messages.rs`, `tables/webhook_deliveries.rs`) is
//! written by the write path's steps for the endpoints set with
//! [`Store::announce_to`]. Dependencies point one way: backends, then
//! `callbacks`, `outbound` and `reads`, then `tables`, this module's types,
//! the domain and `webhooks` (which messages a change makes).

/// Runs `$body` with the pool and the statement table (`$postgres` or
/// `$sqlite`) of the backend in use: the body is the same code for both
/// backends, only the SQL differs. Defined before the modules that use it.
/// As [`with_dialect`], with the pool for what only reads
/// (`database.read_url` when set, else the one pool).
macro_rules! with_read_dialect {
    ($store:expr, $postgres:expr, $sqlite:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $store {
            Store::Postgres(s) => {
                let ($pool, $sql) = (s.read_pool(), $postgres);
                $body
            }
            Store::Sqlite(s) => {
                let ($pool, $sql) = (s.read_pool(), $sqlite);
                $body
            }
        }
    };
}

macro_rules! with_dialect {
    ($store:expr, $postgres:expr, $sqlite:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match $store {
            Store::Postgres(s) => {
                let ($pool, $sql) = (s.pool(), $postgres);
                $body
            }
            Store::Sqlite(s) => {
                let ($pool, $sql) = (s.pool(), $sqlite);
                $body
            }
        }
    };
}

pub mod callbacks;
pub mod health;
pub mod listen;
pub mod outbound;
pub mod outbox;
mod postgres;
pub mod reads;
pub mod retention;
mod sqlite;
pub mod tables;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;
use crate::domain::rules::Rules;
use crate::domain::{Callback, Order, Payment, Payout};
use crate::protocol::{Amount, Status};
use health::{WriteFailure, WriteHealth};

pub use callbacks::statements::{LockAndDraw, PerTable, Statements, Writes};
/// The statements of the write path, per backend (their plans are tested).
pub use callbacks::statements::{POSTGRES as POSTGRES_STATEMENTS, SQLITE as SQLITE_STATEMENTS};
pub use postgres::NOTIFY_CHANNEL;
pub use postgres::partitions::Upgrade as EventLogUpgrade;
/// The event log's months and partitions (PostgreSQL partitions by month).
pub use postgres::partitions::{
    MONTHS_AHEAD, Partition, month_name, month_start, next_month, parse_name,
};
/// The session settings of PostgreSQL's connections (their plans are tested).
pub use postgres::{
    POOL_SETTINGS as POSTGRES_POOL_SETTINGS, WRITER_SETTINGS as POSTGRES_WRITER_SETTINGS,
};
pub use reads::console::{
    EVENT_LIST_LIMIT, EventFilter, HourlyCount, LIST_LIMIT, MarkedCounts, Overview, SearchResults,
};
pub use reads::history::{History, HistoryKey};
pub use reads::webhooks::{
    DEAD_LIST_LIMIT, DeadDelivery, EventDelivery, EventMessage, PendingCount, SettledCount,
    WebhookOverview,
};

/// What `migrate` makes of PostgreSQL's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLog {
    /// Partitioned by month (the default; `postgres::partitions`).
    Partitioned,
    /// Left a plain table: only for measuring what partitioning costs.
    Plain,
}

/// The PostgreSQL backend.
pub type PgStore = Backend<sqlx::Postgres>;
/// The SQLite backend.
pub type SqliteStore = Backend<sqlx::Sqlite>;

/// A backend: its connection pool (reads, migrations, order inserts) and
/// its group-commit writer (every callback).
#[derive(Debug)]
pub struct Backend<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    writer: callbacks::queue::Writer,
    health: std::sync::Arc<WriteHealth>,
    /// PostgreSQL's servers and the one in use (`postgres::hosts`).
    hosts: Option<std::sync::Arc<postgres::hosts::Hosts>>,
    /// The pool of `database.read_url`, for what only reads.
    reads: Option<sqlx::Pool<DB>>,
}

// By hand: a derive would ask `DB: Clone`, which no database type is.
impl<DB: sqlx::Database> Clone for Backend<DB> {
    fn clone(&self) -> Self {
        Backend {
            pool: self.pool.clone(),
            writer: self.writer.clone(),
            health: self.health.clone(),
            hosts: self.hosts.clone(),
            reads: self.reads.clone(),
        }
    }
}

impl<DB: sqlx::Database> Backend<DB> {
    pub(crate) fn new(
        pool: sqlx::Pool<DB>,
        writer: callbacks::queue::Writer,
        health: std::sync::Arc<WriteHealth>,
    ) -> Self {
        Backend {
            pool,
            writer,
            health,
            hosts: None,
            reads: None,
        }
    }

    /// The pool for what only reads (the console, `history`): the read
    /// pool when `database.read_url` is set, else the one pool.
    pub(crate) fn read_pool(&self) -> &sqlx::Pool<DB> {
        self.reads.as_ref().unwrap_or(&self.pool)
    }

    pub(crate) fn with_hosts(mut self, hosts: std::sync::Arc<postgres::hosts::Hosts>) -> Self {
        self.hosts = Some(hosts);
        self
    }

    pub(crate) fn pool(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &callbacks::queue::Writer {
        &self.writer
    }
}

use callbacks::steps::Work;
use tables::Dialect;
use tables::orders::OrderRow;
use tables::payments::PaymentRow;
use tables::payouts::PayoutRow;

/// A storage failure. Every one of them means "not committed": the caller
/// answers 503 so that FreedomPay retries.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unusable data in the database: {0}")]
    Corrupt(String),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("the transaction of this callback's group failed: {0}")]
    GroupFailed(String),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("archive: {0}")]
    Archive(String),
}

impl StoreError {
    /// A stored value could not be read as its type (a row written by hand
    /// or by another program), as opposed to the database not answering.
    pub fn is_damaged_data(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt(_)
                | StoreError::Database(
                    sqlx::Error::ColumnDecode { .. }
                        | sqlx::Error::Decode(_)
                        | sqlx::Error::TypeNotFound { .. }
                )
        )
    }

    /// Why a write failed, by the cause readiness and the metrics report.
    pub fn write_failure(&self) -> WriteFailure {
        WriteFailure::of(self)
    }
}

/// One authenticated delivery, as it goes into `events`.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub callback: Callback,
    /// All received fields in arrival order, as JSON text (card numbers masked).
    pub fields_json: String,
    /// Which signature variant matched (`canonical`, `raw_sort`, `drop_empty`).
    pub signature_variant: &'static str,
    /// Which key matched (`current`, `previous`, `payout`).
    pub key_label: &'static str,
    /// SHA-256 of the signed content without salt and signature
    /// ([`crate::domain::callback::fingerprint`]); `None` for reconciled
    /// facts, which match any earlier content of their key.
    pub fingerprint: Option<String>,
    /// Why an operator must look at this delivery whatever is decided (e.g.
    /// it could not be parsed): `events.flag`.
    pub flag: Option<String>,
}

/// The outcome of [`Store::process`], available only after commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    pub status: Status,
    pub description: String,
    /// True when this delivery repeated an earlier key.
    pub duplicate: bool,
    /// True when it repeated a key with different signed content.
    pub conflict: bool,
    /// The flag recorded on its event, if any.
    pub flag: Option<String>,
    /// Nothing was decided yet: answer 503 so that FreedomPay delivers again.
    pub retry_later: bool,
    pub event_id: i64,
}

impl Processed {
    pub(crate) fn new(status: Status, description: String, event_id: i64) -> Processed {
        Processed {
            status,
            description,
            duplicate: false,
            conflict: false,
            flag: None,
            retry_later: false,
            event_id,
        }
    }
}

/// A redirect back, recorded once per payment (or order) and outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectRecord {
    /// The first: its event.
    First(i64),
    /// A repeat: counted on the first's decision row, no event.
    Repeat,
}

/// Why the service is not ready: the cause of the failure that stops writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the database cannot take writes ({})", .0.label())]
pub struct NotReady(pub WriteFailure);

/// An order as internal services insert it.
#[derive(Clone, Debug)]
pub struct NewOrder<'a> {
    pub order_id: &'a str,
    pub amount: Amount,
    pub currency: &'a str,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The storage interface. An enum rather than a trait object: two backends,
/// known at compile time, and async methods without boxing.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

mod testing;

impl Store {
    /// Opens a connection pool for `settings.url` and starts the backend's
    /// group-commit writer, so it must be called inside a Tokio runtime. No
    /// connection is made yet: the pool connects on first use, and reconnects
    /// by itself after an outage.
    pub fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let url = settings.url.expose_secret();
        let acquire_timeout = Duration::from_secs(settings.acquire_timeout_secs.max(1));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut backend = postgres::connect(url, settings.max_connections, acquire_timeout)?;
            if let Some(read_url) = &settings.read_url {
                backend.reads = Some(postgres::connect_reads(
                    read_url.expose_secret(),
                    settings.max_connections,
                    acquire_timeout,
                )?);
            }
            Ok(Store::Postgres(backend))
        } else if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(sqlite::connect(
                url,
                settings.max_connections,
                acquire_timeout,
            )?))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Applies the backend's migrations (`migrations/postgres` or
    /// `migrations/sqlite`); on PostgreSQL, the event log is then
    /// partitioned by month (upgrading a plain one without copying it,
    /// `postgres::partitions`) with its months ahead made.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_with(EventLog::Partitioned).await.map(drop)
    }

    /// [`Store::migrate`], saying what the upgrade of the event log did (on
    /// PostgreSQL, the first time); `EventLog::Plain` leaves a plain
    /// `events` table as it is (the benchmark's comparison).
    pub async fn migrate_with(&self, log: EventLog) -> Result<Option<EventLogUpgrade>, StoreError> {
        match self {
            Store::Postgres(s) => {
                postgres::MIGRATOR.run(s.pool()).await?;
                match log {
                    EventLog::Partitioned => postgres::partitions::partition_events(s.pool()).await,
                    EventLog::Plain => Ok(None),
                }
            }
            Store::Sqlite(s) => {
                sqlite::MIGRATOR.run(s.pool()).await?;
                Ok(None)
            }
        }
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_dialect!(self, (), (), |pool, _sql| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Readiness: the database answers, and the write path can commit
    /// (`health`). While the write path's latest transaction failed for a
    /// cause that stops every write, a probe write is committed here (one
    /// row of `readiness_probe` with 256 KiB of random padding, about what a
    /// group of callbacks writes, so that a few free pages do not pass for
    /// a disk with room; one statement in a transaction of its own): its
    /// success ends the failing state, so a service taken out of rotation
    /// comes back without waiting for traffic.
    pub async fn ready(&self) -> Result<(), NotReady> {
        if self.ping().await.is_err() {
            // The pool retries only the server it was given: with several
            // servers, look for the one that takes writes now, so that the
            // next probe finds it without waiting for a callback.
            if let Store::Postgres(Backend {
                hosts: Some(hosts), ..
            }) = self
            {
                hosts.find().await;
            }
            return Err(NotReady(WriteFailure::Unavailable));
        }
        if self.write_health().failing().is_none() {
            return Ok(());
        }
        const POSTGRES: &str = "INSERT INTO readiness_probe (id, probed_at, padding) \
             SELECT 1, now(), decode(string_agg(md5(random()::text), ''), 'hex') \
             FROM generate_series(1, 16384) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, padding = excluded.padding";
        const SQLITE: &str = "INSERT INTO readiness_probe (id, probed_at, padding) \
             VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), randomblob(262144)) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, padding = excluded.padding";
        let probe: Result<(), StoreError> = with_dialect!(self, POSTGRES, SQLITE, |pool, sql| {
            sqlx::query(sql)
                .execute(pool)
                .await
                .map(drop)
                .map_err(StoreError::from)
        });
        match probe {
            Ok(()) => {
                self.write_health().committed();
                Ok(())
            }
            Err(error) => {
                let failure = self.write_health().failed(&error);
                tracing::warn!(%error, cause = failure.label(), "readiness probe write failed");
                Err(NotReady(self.write_health().failing().unwrap_or(failure)))
            }
        }
    }

    fn write_health(&self) -> &WriteHealth {
        match self {
            Store::Postgres(s) => &s.health,
            Store::Sqlite(s) => &s.health,
        }
    }

    pub async fn close(&self) {
        with_dialect!(self, (), (), |pool, _sql| pool.close().await);
        match self {
            Store::Postgres(Backend {
                reads: Some(reads), ..
            }) => reads.close().await,
            Store::Sqlite(Backend {
                reads: Some(reads), ..
            }) => reads.close().await,
            _ => {}
        }
    }

    /// Records one callback and decides it by `rules` as of `now`
    /// (`domain::state::decide`), in its group's transaction, against the
    /// current state read under lock inside it. The result is returned only
    /// after the commit.
    pub async fn process(
        &self,
        delivery: Delivery,
        rules: Arc<Rules>,
        now: DateTime<Utc>,
    ) -> Result<Processed, StoreError> {
        self.queue(delivery, Work::Decide { rules, now }).await
    }

    /// Records a delivery that decides nothing (one that could not be parsed).
    pub async fn record_event(&self, delivery: &Delivery) -> Result<i64, StoreError> {
        let processed = self.queue(delivery.clone(), Work::Record).await?;
        Ok(processed.event_id)
    }

    /// Records a redirect back once per payment (or order) and outcome; a
    /// repeat only increments `callback_decisions.repeats`.
    pub async fn record_redirect(&self, delivery: &Delivery) -> Result<RedirectRecord, StoreError> {
        let processed = self.queue(delivery.clone(), Work::Redirect).await?;
        Ok(if processed.duplicate {
            RedirectRecord::Repeat
        } else {
            RedirectRecord::First(processed.event_id)
        })
    }

    /// Writes an outbox message for every change the write path commits,
    /// with a delivery to each of `endpoints` that wants it (`[[webhooks]]`;
    /// set once, when the service starts). False when already set.
    pub fn announce_to(&self, endpoints: Arc<[crate::webhooks::Endpoint]>) -> bool {
        match self {
            Store::Postgres(s) => s.writer().announce_to(endpoints),
            Store::Sqlite(s) => s.writer().announce_to(endpoints),
        }
    }

    /// The names of the webhook endpoints this process writes the outbox
    /// for (none when it has no `[[webhooks]]`).
    pub fn announced_endpoints(&self) -> Vec<String> {
        match self {
            Store::Postgres(s) => s.writer().announced(),
            Store::Sqlite(s) => s.writer().announced(),
        }
    }

    /// Waits until a commit of this process has written webhook deliveries
    /// (a signal kept until the next wait: one waiter, the dispatcher).
    pub async fn deliveries_written(&self) {
        match self {
            Store::Postgres(s) => s.writer().deliveries_written().await,
            Store::Sqlite(s) => s.writer().deliveries_written().await,
        }
    }

    /// Queues a job for the backend's group-commit writer.
    async fn queue(&self, delivery: Delivery, work: Work) -> Result<Processed, StoreError> {
        match self {
            Store::Postgres(s) => s.writer().process(delivery, work).await,
            Store::Sqlite(s) => s.writer().process(delivery, work).await,
        }
    }

    /// Inserts an order, as an internal service would (tests, benchmarks, demos).
    pub async fn insert_order(
        &self,
        merchant_id: &str,
        order: &NewOrder<'_>,
    ) -> Result<(), StoreError> {
        self.insert_orders(merchant_id, std::slice::from_ref(order))
            .await
    }

    /// Inserts orders in one transaction.
    pub async fn insert_orders(
        &self,
        merchant_id: &str,
        orders: &[NewOrder<'_>],
    ) -> Result<(), StoreError> {
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let sql = tables::orders::insert_one(d);
            let mut tx = pool.begin().await?;
            for order in orders {
                sqlx::query(tables::made(sql.clone()))
                    .bind(merchant_id)
                    .bind(order.order_id)
                    .bind(order.amount.canonical())
                    .bind(order.currency)
                    .bind(order.expires_at)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(tx.commit().await?)
        })
    }

    pub async fn order(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = self.row(|s| &s.orders, merchant_id, order_id).await?;
        row.map(OrderRow::into_order).transpose()
    }

    pub async fn payment(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        let row: Option<PaymentRow> = self.row(|s| &s.payments, merchant_id, payment_id).await?;
        row.map(PaymentRow::into_payment).transpose()
    }

    pub async fn payout(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Payout>, StoreError> {
        let row: Option<PayoutRow> = self.row(|s| &s.payouts, merchant_id, order_id).await?;
        row.map(PayoutRow::into_payout).transpose()
    }

    /// One row of `merchant_id` by `id`, read with the write path's read
    /// statement that `pick` names (it takes the ids as a JSON array).
    async fn row<R>(
        &self,
        pick: fn(&'static Statements) -> &'static str,
        merchant_id: &str,
        id: &str,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        let ids = serde_json::json!([id]).to_string();
        Ok(with_dialect!(
            self,
            &*callbacks::statements::POSTGRES,
            &*callbacks::statements::SQLITE,
            |pool, sql| sqlx::query_as(pick(sql))
                .bind(merchant_id)
                .bind(ids)
                .fetch_optional(pool)
                .await?
        ))
    }
}

impl Store {
    /// Payments flagged `needs_refund` (the metric of the same name).
    pub async fn count_needing_refund(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT count(*) FROM payments WHERE needs_refund";
        let count: i64 = match self {
            Store::Postgres(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await?,
            Store::Sqlite(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await?,
        };
        Ok(count)
    }

    /// Reconciler tasks given up (state `failed`): read at scrape time, so
    /// the gauge survives restarts and falls when an operator settles them.
    pub async fn count_failed_tasks(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT count(*) FROM outbound_tasks WHERE state = 'failed'";
        let count: i64 = match self {
            Store::Postgres(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await?,
            Store::Sqlite(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await?,
        };
        Ok(count)
    }

    /// Why an acknowledged callback could be lost in a failover: `None`
    /// when the primary has a synchronous standby streaming from it now
    /// (every commit, so every `ok`, is then on two servers), or on SQLite.
    pub async fn replication_warning(&self) -> Result<Option<String>, StoreError> {
        let Store::Postgres(s) = self else {
            return Ok(None);
        };
        let (names, synchronous): (String, i64) = sqlx::query_as(
            "SELECT current_setting('synchronous_standby_names'), \
             (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum'))",
        )
        .fetch_one(s.pool())
        .await?;
        Ok(if names.trim().is_empty() {
            Some(
                "the primary has no synchronous standby (synchronous_standby_names is empty): \
                 after a failover, callbacks answered ok shortly before it may be missing \
                 (RELIABILITY.md, \"Failover\")"
                    .to_owned(),
            )
        } else if synchronous == 0 {
            Some(format!(
                "synchronous_standby_names is '{names}' but no synchronous standby is connected \
                 (pg_stat_replication): commits wait for one, or were made asynchronous"
            ))
        } else {
            None
        })
    }

    /// The connection pool's open and idle connections.
    pub fn pool_usage(&self) -> PoolUsage {
        let (size, idle) = match self {
            Store::Postgres(s) => (s.pool().size(), s.pool().num_idle()),
            Store::Sqlite(s) => (s.pool().size(), s.pool().num_idle()),
        };
        PoolUsage { size, idle }
    }
}

/// Connections of the pool, open (in use or idle) and idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u32,
    pub idle: usize,
}

/// One event's marks, as the console lists it: what an operator filters on.
pub type EventMarks = tables::events::EventRow;

/// How many events there are, first deliveries and duplicates apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub first: i64,
    pub duplicate: i64,
}
