//! Durable storage: one interface ([`Store`]) over two sqlx backends,
//! PostgreSQL for production and SQLite as the embedded default. This is the
//! only module with SQL.
//!
//! Every callback is handled in one transaction ([`Store::process`]): claim
//! the idempotency key (with the delivery's content fingerprint), read the
//! current state, decide, write the state changes, the event and the
//! decision, commit. The answer leaves only after the commit. A repeated
//! delivery finds the key already claimed: with the same content it gets the
//! stored answer, recorded as a duplicate event; with different content it is
//! a conflict (see [`process_steps`]). Checks claim no key: each is decided
//! against the state of its moment. Concurrent duplicates are
//! serialised by the database (a unique key, plus on PostgreSQL a
//! transaction-scoped advisory lock per payment), never by process memory, so
//! several instances may share one database.

mod group_commit;
mod group_decide;
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
use crate::domain::callback::differing_fields;
use crate::domain::state::repeat_confirmation;
use crate::domain::{
    Callback, CallbackKind, Confirm, CurrentState, Detail, IdempotencyKey, Order, Payment, Payout,
    Plan,
};
use crate::protocol::{Amount, Status};

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
    /// SHA-256 of the signed content without salt and signature
    /// ([`crate::domain::callback::fingerprint`]); `None` for reconciled
    /// facts, which match any earlier content of their key.
    pub fingerprint: Option<String>,
    /// Why an operator must look at this delivery whatever is decided (e.g.
    /// it could not be parsed): `events.flag`.
    pub flag: Option<String>,
}

/// The decision of a callback, given the state read inside its transaction.
pub type Decide = Box<dyn Fn(&Callback, &CurrentState) -> Plan + Send + Sync>;

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

    /// Records a delivery that decides nothing (one that could not be parsed).
    pub async fn record_event(&self, delivery: &Delivery) -> Result<i64, StoreError> {
        match self {
            Store::Postgres(s) => record_in(s.begin().await?, delivery).await,
            Store::Sqlite(s) => record_in(s.begin().await?, delivery).await,
        }
    }

    /// Records a redirect back once per payment (or order) and outcome; a
    /// repeat only increments `callback_decisions.repeats`.
    pub async fn record_redirect(&self, delivery: &Delivery) -> Result<RedirectRecord, StoreError> {
        match self {
            Store::Postgres(s) => redirect_in(s.begin().await?, delivery).await,
            Store::Sqlite(s) => redirect_in(s.begin().await?, delivery).await,
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

    /// The events of `kind` (all when `None`) with their marks, oldest first
    /// (operators, tests).
    pub async fn event_marks(&self, kind: Option<&str>) -> Result<Vec<EventMarks>, StoreError> {
        Ok(match self {
            Store::Postgres(s) => sqlx::query_as(
                "SELECT id, kind, payment_id, answer_status, duplicate, conflict, flag FROM events \
                     WHERE $1::text IS NULL OR kind = $1 ORDER BY id",
            )
            .bind(kind)
            .fetch_all(s.pool())
            .await?,
            Store::Sqlite(s) => sqlx::query_as(
                "SELECT id, kind, payment_id, answer_status, duplicate, conflict, flag FROM events \
                     WHERE ?1 IS NULL OR kind = ?1 ORDER BY id",
            )
            .bind(kind)
            .fetch_all(s.pool())
            .await?,
        })
    }

    /// How often the redirect `key` was repeated after its first delivery.
    pub async fn redirect_repeats(&self, key: &IdempotencyKey) -> Result<i64, StoreError> {
        let (repeats,): (i64,) = match self {
            Store::Postgres(s) => {
                sqlx::query_as(
                    "SELECT coalesce(sum(repeats), 0)::bigint FROM callback_decisions WHERE merchant_id = $1 \
                     AND kind = $2 AND subject_id = $3 AND discriminator = $4",
                )
                .bind(&key.merchant_id)
                .bind(key.kind)
                .bind(&key.subject_id)
                .bind(&key.discriminator)
                .fetch_one(s.pool())
                .await?
            }
            Store::Sqlite(s) => {
                sqlx::query_as(
                    "SELECT coalesce(sum(repeats), 0) FROM callback_decisions WHERE merchant_id = ?1 \
                     AND kind = ?2 AND subject_id = ?3 AND discriminator = ?4",
                )
                .bind(&key.merchant_id)
                .bind(key.kind)
                .bind(&key.subject_id)
                .bind(&key.discriminator)
                .fetch_one(s.pool())
                .await?
            }
        };
        Ok(repeats)
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

    /// Reconciler tasks given up (state `failed`): read at scrape time, so
    /// the gauge survives restarts and falls when an operator settles them.
    pub async fn count_failed_tasks(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT count(*) FROM outbound_tasks WHERE state = 'failed'";
        let (count,): (i64,) = match self {
            Store::Postgres(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
            Store::Sqlite(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
        };
        Ok(count)
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

/// One event's marks: what an operator filters on.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventMarks {
    pub id: i64,
    pub kind: String,
    pub payment_id: Option<String>,
    pub answer_status: Option<String>,
    pub duplicate: bool,
    pub conflict: bool,
    pub flag: Option<String>,
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

/// What claiming a key found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The claim is ours: decide.
    New,
    /// Decided before.
    Stored(StoredDecision),
}

/// A decision stored under a key, with what its first delivery said.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredDecision {
    pub answer_status: Option<String>,
    pub answer_description: Option<String>,
    pub fingerprint: Option<String>,
    /// The first delivery's `events.fields`, as JSON text.
    pub first_fields: Option<String>,
}

/// How an event is marked besides its answer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mark<'a> {
    pub duplicate: bool,
    pub conflict: bool,
    pub flag: Option<&'a str>,
}

/// The steps of one callback transaction; each backend supplies the SQL.
pub(crate) trait CallbackTx: Send + Sized {
    /// Claims `key`, storing `fingerprint` with a new claim. On PostgreSQL
    /// it first takes the subject's advisory lock ([`CallbackTx::lock`]).
    fn claim(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: Option<&str>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Gives back a claim made in this transaction (nothing was decided).
    fn unclaim(
        &mut self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Serialises every transaction about `subject` of `merchant_id` until
    /// commit (PostgreSQL: the claim's advisory lock; SQLite: its one writer
    /// does already).
    fn lock(
        &mut self,
        merchant_id: &str,
        subject: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates the status query `confirm` unless one is open already.
    fn schedule(
        &mut self,
        merchant_id: &str,
        confirm: &Confirm,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims the redirect `key` (true), or counts a repeat of it on its
    /// decision row (false), in one statement without the subject's lock.
    fn claim_redirect(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

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
        mark: Mark<'_>,
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
///
/// - A check claims nothing: under its payment's lock it is decided against
///   the state of now, on every delivery, and recorded with the answer sent.
/// - A new key: decided, recorded, its answer stored under the key.
/// - A repeat with the same content (or a claim without a fingerprint): the
///   stored answer, recorded as a duplicate.
/// - A repeat with different content, a **conflict**: recorded with
///   `conflict = true`, the differing fields named in a warning. A result is
///   decided again against the current state (decisions only move forward,
///   so nothing decided moves back, and a rejection FreedomPay completed
///   anyway is taken as paid); every other kind gets the stored answer.
/// - A repeat of a rejected result with `pg_can_reject=0` (the fingerprint
///   leaves that field out): decided again like a conflict, but not marked
///   nor counted as one.
/// - A repeated refund without a refund id, and any refund or payout
///   conflict, schedules a status query whose signed answer settles it.
pub(crate) async fn process_steps<T: CallbackTx>(
    tx: &mut T,
    delivery: &Delivery,
    decide: &Decide,
) -> Result<Processed, StoreError> {
    let callback = &delivery.callback;
    if let Detail::Check(notice) = &callback.detail {
        tx.lock(&callback.merchant_id, &notice.payment_id).await?;
        return decide_and_record(tx, delivery, decide, None, Mark::default()).await;
    }
    let Some(key) = callback.idempotency_key() else {
        let mark = Mark {
            flag: delivery.flag.as_deref(),
            ..Mark::default()
        };
        let event_id = tx.insert_event(delivery, None, mark).await?;
        return Ok(Processed {
            flag: delivery.flag.clone(),
            ..Processed::new(Status::Ok, String::new(), event_id)
        });
    };
    let stored = match tx.claim(&key, delivery.fingerprint.as_deref()).await? {
        Claim::New => {
            return decide_and_record(tx, delivery, decide, Some(&key), Mark::default()).await;
        }
        Claim::Stored(stored) => stored,
    };
    let conflict = matches!(
        (&stored.fingerprint, &delivery.fingerprint),
        (Some(first), Some(now)) if first != now
    );
    if conflict {
        let parse = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
        let fields = differing_fields(
            &parse(stored.first_fields.as_deref().unwrap_or("null")),
            &parse(&delivery.fields_json),
        );
        tracing::warn!(
            endpoint = callback.event_kind(),
            subject = %key.subject_id,
            differing_fields = %fields.join(","),
            "a repeated delivery says something else than the first one (conflict)"
        );
        metrics::counter!(
            crate::telemetry::metrics::CONFLICTING_REPEATS,
            "endpoint" => callback.event_kind()
        )
        .increment(1);
    }
    let mark = Mark {
        duplicate: true,
        conflict,
        flag: delivery.flag.as_deref(),
    };
    let (status, description) =
        rows::stored_answer((stored.answer_status, stored.answer_description))?;
    // A result we rejected, retried with `pg_can_reject=0` (routine for
    // FreedomPay, outside the fingerprint): decided again, not a conflict.
    let flipped = matches!(&callback.detail, Detail::Result(result) if !result.can_reject)
        && status == Status::Rejected;
    if (conflict || flipped) && matches!(callback.detail, Detail::Result(_)) {
        return decide_and_record(tx, delivery, decide, None, mark).await;
    }
    let event_id = tx
        .insert_event(delivery, Some((status, &description)), mark)
        .await?;
    if let Some(confirm) = repeat_confirmation(callback, conflict) {
        tx.schedule(&callback.merchant_id, &confirm).await?;
    }
    Ok(Processed {
        duplicate: true,
        conflict,
        ..Processed::new(status, description, event_id)
    })
}

/// Reads the state, decides, writes the plan and the event, and stores the
/// answer under `key` when there is one to store.
async fn decide_and_record<T: CallbackTx>(
    tx: &mut T,
    delivery: &Delivery,
    decide: &Decide,
    key: Option<&IdempotencyKey>,
    mark: Mark<'_>,
) -> Result<Processed, StoreError> {
    let callback = &delivery.callback;
    let state = tx.load(&callback.merchant_id, Lookup::of(callback)).await?;
    let plan = decide(callback, &state);
    let flag = delivery.flag.clone().or_else(|| plan.flag.clone());
    let mark = Mark {
        flag: flag.as_deref(),
        ..mark
    };
    if plan.retry_later {
        // Nothing decided: the key stays free for the next delivery.
        if let Some(key) = key {
            tx.unclaim(key).await?;
        }
    } else {
        tx.apply(&callback.merchant_id, &plan).await?;
    }
    let event_id = tx
        .insert_event(delivery, Some((plan.status, &plan.description)), mark)
        .await?;
    if let Some(key) = key
        && !plan.retry_later
    {
        tx.settle(key, plan.status, &plan.description, event_id)
            .await?;
    }
    if let Some(confirm) = &plan.confirm {
        tx.schedule(&callback.merchant_id, confirm).await?;
    }
    Ok(Processed {
        duplicate: mark.duplicate,
        conflict: mark.conflict,
        flag,
        retry_later: plan.retry_later,
        ..Processed::new(plan.status, plan.description, event_id)
    })
}

async fn record_in<T: CallbackTx>(mut tx: T, delivery: &Delivery) -> Result<i64, StoreError> {
    let mark = Mark {
        flag: delivery.flag.as_deref(),
        ..Mark::default()
    };
    let event_id = tx.insert_event(delivery, None, mark).await?;
    tx.commit().await?;
    Ok(event_id)
}

async fn redirect_in<T: CallbackTx>(
    mut tx: T,
    delivery: &Delivery,
) -> Result<RedirectRecord, StoreError> {
    let record = match delivery.callback.redirect_key() {
        Some(key) => {
            if tx
                .claim_redirect(&key, delivery.fingerprint.as_deref())
                .await?
            {
                let event_id = tx.insert_event(delivery, None, Mark::default()).await?;
                tx.settle(&key, Status::Ok, "", event_id).await?;
                RedirectRecord::First(event_id)
            } else {
                RedirectRecord::Repeat
            }
        }
        // Neither payment nor order named: nothing to count it under.
        None => RedirectRecord::First(tx.insert_event(delivery, None, Mark::default()).await?),
    };
    tx.commit().await?;
    Ok(record)
}
