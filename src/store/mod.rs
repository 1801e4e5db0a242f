//! Durable storage: one interface ([`Store`]) over two sqlx backends,
//! PostgreSQL for production and SQLite as the embedded default. This is the
//! only module with SQL.
//!
//! Every callback is handled in one transaction ([`Store::process`]): claim
//! the idempotency key, read the current state, decide, write the state
//! changes, the event and the decision, commit. The answer leaves only after
//! the commit. A repeated delivery finds the key already claimed and gets the
//! stored answer, recorded as a duplicate event. Concurrent duplicates are
//! serialised by the database (a unique key, plus on PostgreSQL a
//! transaction-scoped advisory lock per payment), never by process memory, so
//! several instances may share one database.

mod group_commit;
mod group_decide;
mod history;
pub mod outbound;
mod pg_columns;
mod pg_group;
mod pg_optimistic;
mod postgres;
mod rows;
mod sqlite;
mod sqlite_group;

use std::future::Future;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;
use crate::domain::{
    Callback, CallbackKind, CurrentState, IdempotencyKey, Order, Payment, Payout, Plan,
};
use crate::protocol::{Amount, Status};

pub use history::{
    EventRecord, History, HistoryKey, HourlyCount, KEY_FIELDS, LIST_LIMIT, ListedOrder,
    ListedPayment, ListedTask, OrderRecord, Overview, PaymentRecord, PayoutRecord, SearchResults,
    TaskRecord,
};
pub use postgres::{NOTIFY_CHANNEL, PgStore};
pub use sqlite::SqliteStore;

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
}

impl StoreError {
    /// The database cannot be reached (as opposed to a statement failing).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ) | StoreError::WriterGone
        )
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
}

/// The decision of a callback, given the state read inside its transaction.
pub type Decide = Box<dyn Fn(&Callback, &CurrentState) -> Plan + Send + Sync>;

/// The outcome of [`Store::process`], available only after commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    pub status: Status,
    pub description: String,
    /// True when this delivery repeated an earlier one and changed nothing.
    pub duplicate: bool,
    pub event_id: i64,
}

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

/// Dispatches one call to the backend in use.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            Store::Postgres(s) => s.$method($($arg),*).await,
            Store::Sqlite(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens a connection pool for `settings.url` and starts the backend's
    /// group-commit writer, so it must be called inside a Tokio runtime. No
    /// connection is made yet: the pool connects on first use, and reconnects
    /// by itself after an outage.
    pub fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let url = settings.url.expose_secret();
        let acquire_timeout = Duration::from_secs(settings.acquire_timeout_secs.max(1));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(
                url,
                settings.max_connections,
                acquire_timeout,
            )?))
        } else if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(
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

    /// Applies the backend's migrations (`migrations/postgres` or `migrations/sqlite`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        dispatch!(self.migrate())
    }

    /// A round trip to the database (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    pub async fn close(&self) {
        dispatch!(self.close())
    }

    /// Records one callback and decides it, in one transaction. `decide` sees
    /// the current state, read under lock inside the transaction. The result
    /// is returned only after the commit.
    pub async fn process(
        &self,
        delivery: Delivery,
        decide: Decide,
    ) -> Result<Processed, StoreError> {
        match self {
            // Callbacks queue for the backend's group-commit writer, which
            // decides every callback waiting in one transaction.
            Store::Postgres(s) => s.process(delivery, decide).await,
            Store::Sqlite(s) => s.process(delivery, decide).await,
        }
    }

    /// Records a delivery that decides nothing (a redirect back).
    pub async fn record_event(&self, delivery: &Delivery) -> Result<i64, StoreError> {
        match self {
            Store::Postgres(s) => record_in(s.begin().await?, delivery).await,
            Store::Sqlite(s) => record_in(s.begin().await?, delivery).await,
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
        dispatch!(self.insert_orders(merchant_id, orders))
    }

    pub async fn order(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        dispatch!(self.order(merchant_id, order_id))
    }

    pub async fn payment(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        dispatch!(self.payment(merchant_id, payment_id))
    }

    pub async fn payout(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Payout>, StoreError> {
        dispatch!(self.payout(merchant_id, order_id))
    }

    /// Events of a kind (all kinds when `None`), split by the duplicate flag.
    pub async fn count_events(
        &self,
        kind: Option<CallbackKind>,
    ) -> Result<EventCounts, StoreError> {
        self.count_events_named(kind.map(CallbackKind::as_str))
            .await
    }

    /// Events of a kind by its `events.kind` name (e.g. `reconcile`).
    pub async fn count_events_named(&self, kind: Option<&str>) -> Result<EventCounts, StoreError> {
        dispatch!(self.count_events(kind))
    }
}

impl Store {
    /// For the benchmark's correctness check: orders with `prefix` that are
    /// paid, and first-delivery result events for them.
    pub async fn bench_counts(
        &self,
        merchant_id: &str,
        prefix: &str,
    ) -> Result<(i64, i64), StoreError> {
        let pattern = format!("{prefix}%");
        let paid = self
            .count(
                "SELECT count(*) FROM orders WHERE merchant_id = $1 AND order_id LIKE $2 AND status = 'paid'",
                merchant_id,
                &pattern,
            )
            .await?;
        let events = self
            .count(
                "SELECT count(*) FROM events WHERE merchant_id = $1 AND kind = 'result' \
                 AND order_id LIKE $2 AND NOT duplicate",
                merchant_id,
                &pattern,
            )
            .await?;
        Ok((paid, events))
    }

    /// A `count(*)` query with two text parameters, written `$1`, `$2` (which
    /// SQLite reads as named parameters, numbered in order of appearance).
    async fn count(&self, sql: &'static str, first: &str, second: &str) -> Result<i64, StoreError> {
        let (count,): (i64,) = match self {
            Store::Postgres(s) => {
                sqlx::query_as(sql)
                    .bind(first)
                    .bind(second)
                    .fetch_one(s.pool())
                    .await?
            }
            Store::Sqlite(s) => {
                sqlx::query_as(sql)
                    .bind(first)
                    .bind(second)
                    .fetch_one(s.pool())
                    .await?
            }
        };
        Ok(count)
    }

    /// Payments flagged `needs_refund` (the metric of the same name).
    pub async fn count_needing_refund(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT count(*) FROM payments WHERE needs_refund";
        let (count,): (i64,) = match self {
            Store::Postgres(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
            Store::Sqlite(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
        };
        Ok(count)
    }
}

/// How many events there are, first deliveries and duplicates apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub first: i64,
    pub duplicate: i64,
}

/// What a callback's transaction reads: its subject's rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lookup<'a> {
    pub order_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub payout_order_id: Option<&'a str>,
}

impl<'a> Lookup<'a> {
    /// The rows `callback` is about: its payment and order, or its payout.
    pub(crate) fn of(callback: &'a Callback) -> Self {
        let payout = callback.kind == CallbackKind::Payout;
        Lookup {
            order_id: callback.order_id.as_deref(),
            payment_id: callback.payment_id.as_deref().filter(|_| !payout),
            payout_order_id: callback.order_id.as_deref().filter(|_| payout),
        }
    }
}

/// The steps of one callback transaction; each backend supplies the SQL.
pub(crate) trait CallbackTx: Send + Sized {
    /// Claims `key`. `None`: the claim is ours, decide. `Some`: it was decided
    /// before, here is the stored answer.
    fn claim(
        &mut self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<(Status, String)>, StoreError>> + Send;

    /// Reads (and on PostgreSQL locks) the rows the callback is about. An
    /// order not named by the callback is found through its payment.
    fn load(
        &mut self,
        merchant_id: &str,
        lookup: Lookup<'_>,
    ) -> impl Future<Output = Result<CurrentState, StoreError>> + Send;

    fn apply(
        &mut self,
        merchant_id: &str,
        plan: &Plan,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends the event (and on PostgreSQL announces it with NOTIFY).
    fn insert_event(
        &mut self,
        delivery: &Delivery,
        answer: Option<(Status, &str)>,
        duplicate: bool,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stores the answer under the claimed key.
    fn settle(
        &mut self,
        key: &IdempotencyKey,
        status: Status,
        description: &str,
        event_id: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The steps of one callback inside an open transaction; the caller commits.
pub(crate) async fn process_steps<T: CallbackTx>(
    tx: &mut T,
    delivery: &Delivery,
    decide: &Decide,
) -> Result<Processed, StoreError> {
    let callback = &delivery.callback;
    let Some(key) = callback.idempotency_key() else {
        let event_id = tx.insert_event(delivery, None, false).await?;
        return Ok(Processed {
            status: Status::Ok,
            description: String::new(),
            duplicate: false,
            event_id,
        });
    };
    if let Some((status, description)) = tx.claim(&key).await? {
        let event_id = tx
            .insert_event(delivery, Some((status, &description)), true)
            .await?;
        return Ok(Processed {
            status,
            description,
            duplicate: true,
            event_id,
        });
    }
    let state = tx.load(&callback.merchant_id, Lookup::of(callback)).await?;
    let plan = decide(callback, &state);
    tx.apply(&callback.merchant_id, &plan).await?;
    let event_id = tx
        .insert_event(delivery, Some((plan.status, &plan.description)), false)
        .await?;
    tx.settle(&key, plan.status, &plan.description, event_id)
        .await?;
    Ok(Processed {
        status: plan.status,
        description: plan.description,
        duplicate: false,
        event_id,
    })
}

async fn record_in<T: CallbackTx>(mut tx: T, delivery: &Delivery) -> Result<i64, StoreError> {
    let event_id = tx.insert_event(delivery, None, false).await?;
    tx.commit().await?;
    Ok(event_id)
}
