//! The write path, the same on both backends. [`start_writer`] starts a
//! backend's workers; each owns one connection and runs the groups it takes
//! from the queue ([`Worker::run_group`]), each in one transaction:
//!
//! 1. begin (SQLite: `BEGIN IMMEDIATE`, the one write lock);
//! 2. take the group's per-subject locks (PostgreSQL: advisory locks,
//!    sorted) and draw one event id for each job, in one statement
//!    ([`lock_and_draw`]), so each answer knows its event's id before
//!    anything is written;
//! 3. read ([`read`]) every row its callbacks are about
//!    (`subject::Wanted`): stored decisions, payments and orders (row
//!    locked), payouts; decide every job in arrival order against that view
//!    (`steps`);
//! 4. write what changed ([`write`]): events, payments, orders,
//!    payouts, decisions, redirect repeats, status queries and the outbox
//!    (webhook messages and their deliveries, when endpoints are set), whatever the
//!    group's size in one statement on PostgreSQL ([`Writes::Together`],
//!    which also announces each event on `freedompay_events`) and one
//!    statement a table on SQLite, rows passed as JSON arrays of named
//!    objects;
//! 5. commit, then answer.
//!
//! After a failure at any step the worker closes its connection and makes a
//! new one for the next transaction, and tells [`WriteHealth`] (readiness)
//! why it failed. When the group's transaction fails for a reason that does
//! not stop every write (a damaged row, a deadlock), its jobs run again one
//! by one, each as a group of one, so that one bad row fails only its own
//! callback; when it fails for one that does (a full disk, a read-only or
//! unreachable server), every job gets the error at once.
//!
//! [`Statements`] (made in `statements` from the tables' files) is all that
//! differs between the backends, with how a connection runs one statement ([`GroupConn`], a few lines per backend in
//! `postgres/` and `sqlite/`); the rest of the path is written once, here,
//! as ordinary functions.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use std::time::Duration;

use super::queue::{self, Job, Jobs, Outbox, Writer, fail_all};
use super::statements::{LockAndDraw, Statements, Writes};
use super::steps::{Changes, Decision, Snapshot, View};
use super::subject::Wanted;
use crate::store::health::{WriteFailure, WriteHealth};
use crate::store::tables::IdRow;
use crate::store::tables::callback_decisions::DecisionRow;
use crate::store::tables::orders::{self, OrderRow};
use crate::store::tables::payments::PaymentRow;
use crate::store::tables::payouts::PayoutRow;
use crate::store::{Processed, StoreError};
use crate::telemetry::metrics::GROUP_CALLBACKS;

/// A row the write path reads: decodable from both backends' rows.
pub(crate) trait Row:
    for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + Send
    + Unpin
{
}

impl<R> Row for R where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin
{
}

/// A backend's connection as the write path uses it: its statements, and
/// running one of them with text parameters (every parameter of the write
/// path is text: a merchant id, or a JSON array). The writer owns these
/// connections (not pooled ones), so that what happens to one after a
/// failure is decided here. Everything else of the write path is written
/// once, below, for both backends.
pub(crate) trait GroupConn: sqlx::Connection + Send + 'static {
    /// The backend's SQL.
    fn statements() -> &'static Statements;

    /// Runs `sql` and returns its rows.
    fn fetch<R: Row>(
        &mut self,
        sql: &'static str,
        params: &[String],
    ) -> impl Future<Output = Result<Vec<R>, sqlx::Error>> + Send;

    /// Runs `sql` for its effect.
    fn run(
        &mut self,
        sql: &'static str,
        params: &[String],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// How long closing a connection after a failure may take before it is
/// simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Makes a writer connection: the backend decides how (which host, what
/// it checks before the connection may write).
pub(crate) type Connect<C> =
    Arc<dyn Fn() -> BoxFuture<'static, Result<C, StoreError>> + Send + Sync>;

/// Starts a backend's writer: `workers` tasks take groups from one queue,
/// each on a connection of its own made by `connect` (when first needed,
/// and again after any failed transaction, within `connect_timeout`), and
/// report to `health`. Each closes its connection once every handle of the
/// writer is gone.
pub(crate) fn start_writer<C: GroupConn>(
    connect: Connect<C>,
    workers: usize,
    connect_timeout: Duration,
    health: Arc<WriteHealth>,
) -> Writer {
    let outbox = Arc::new(Outbox::default());
    let (writer, jobs) = queue::channel(outbox.clone());
    for _ in 0..workers.max(1) {
        let worker = Worker::<C> {
            connect: connect.clone(),
            connection: None,
            connect_timeout,
            health: health.clone(),
            outbox: outbox.clone(),
        };
        tokio::spawn(worker.run(jobs.clone()));
    }
    writer
}

/// One worker of the writer: its connection (none until first needed, and
/// none again after a failed transaction) and where it reports.
struct Worker<C: GroupConn> {
    connect: Connect<C>,
    connection: Option<C>,
    connect_timeout: Duration,
    health: Arc<WriteHealth>,
    /// The webhook endpoints its groups write outbox rows for, and the
    /// dispatcher's signal.
    outbox: Arc<Outbox>,
}

/// A failed transaction, and whether it failed at its commit (when the
/// outcome on the server is unknown).
struct Failed {
    error: StoreError,
    at_commit: bool,
}

impl Failed {
    fn before_commit(error: StoreError) -> Failed {
        Failed {
            error,
            at_commit: false,
        }
    }
}

impl<C: GroupConn> Worker<C> {
    async fn run(mut self, jobs: Jobs) {
        while let Some(group) = jobs.next_group().await {
            self.run_group(group).await;
        }
        if let Some(connection) = self.connection.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
        }
    }

    /// Runs a group of jobs: all in one transaction, or, when that fails for
    /// a reason that is not one that stops every write, one by one.
    async fn run_group(&mut self, group: Vec<Job>) {
        let error = match self.attempt(&group).await {
            Ok(results) => {
                count_path("group", results.len());
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
                return;
            }
            Err(error) => error,
        };
        if group.len() == 1 {
            if let Some(job) = group.into_iter().next() {
                let _ = job.reply.send(Err(error));
            }
            return;
        }
        if WriteFailure::of(&error).stops_writes() {
            // Nothing to retry one by one: every callback gets the error at
            // once (503, FreedomPay retries).
            return fail_all(group.into_iter().map(|job| job.reply), &error);
        }
        tracing::warn!(%error, callbacks = group.len(), "group transaction failed; retrying its callbacks one by one");
        count_path("one_by_one", group.len());
        let mut jobs = group.into_iter();
        while let Some(job) = jobs.next() {
            let result = self
                .attempt(std::slice::from_ref(&job))
                .await
                .and_then(|results| {
                    results
                        .into_iter()
                        .next()
                        .ok_or_else(|| StoreError::Corrupt("a job without its result".into()))
                });
            let stopped = matches!(&result, Err(error) if WriteFailure::of(error).stops_writes());
            let error = result
                .as_ref()
                .err()
                .map(|e| StoreError::GroupFailed(e.to_string()));
            let _ = job.reply.send(result);
            if let (true, Some(error)) = (stopped, error) {
                // The database stopped taking writes: the rest would only
                // wait to fail.
                return fail_all(jobs.map(|job| job.reply), &error);
            }
        }
    }

    /// One transaction for `jobs`. A connection that had served before and
    /// turns out lost before the commit (the server restarted, or ended it
    /// as an administrator's command) is stale, not a sign of an outage:
    /// the transaction runs once more on a new connection before its
    /// callbacks get an error. Nothing was committed, so nothing repeats.
    async fn attempt(&mut self, jobs: &[Job]) -> Result<Vec<Processed>, StoreError> {
        let reused = self.connection.is_some();
        match self.transaction(jobs).await {
            Err(failed)
                if reused
                    && !failed.at_commit
                    && WriteFailure::of(&failed.error) == WriteFailure::Unavailable =>
            {
                tracing::info!(error = %failed.error, "the writer's connection was lost; trying once more on a new one");
                self.transaction(jobs).await.map_err(|failed| failed.error)
            }
            result => result.map_err(|failed| failed.error),
        }
    }

    /// Runs the transaction and reports its outcome. After a failure at any
    /// step the connection is closed (the server rolls back what it still
    /// holds) and the next transaction gets a new one: a connection whose
    /// transaction failed is in a state no one can vouch for (SQLite rolls
    /// back by itself on a full disk, after which sqlx's bookkeeping of the
    /// transaction no longer matches it), and one failed group must never
    /// poison the next.
    async fn transaction(&mut self, jobs: &[Job]) -> Result<Vec<Processed>, Failed> {
        let result = self.steps(jobs).await;
        match &result {
            Ok(_) => self.health.committed(),
            Err(failed) => {
                self.health.failed(&failed.error);
                if let Some(connection) = self.connection.take() {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
                }
            }
        }
        result
    }

    /// Begin, read, decide, write, commit. The results are in job order and
    /// exist only after the commit.
    async fn steps(&mut self, jobs: &[Job]) -> Result<Vec<Processed>, Failed> {
        let endpoints = self.outbox.endpoints.get().cloned();
        let connection = self.connect().await.map_err(Failed::before_commit)?;
        // Begun and committed with plain statements: the worker replaces the
        // connection after any failure, so no rollback bookkeeping is needed.
        connection
            .run(C::statements().begin, &[])
            .await
            .map_err(|e| Failed::before_commit(e.into()))?;
        let wanted = Wanted::of(jobs.iter().map(|job| &job.delivery.callback));
        let event_ids = lock_and_draw(connection, &wanted, jobs.len())
            .await
            .map_err(Failed::before_commit)?;
        let snapshot = read(connection, &wanted)
            .await
            .map_err(Failed::before_commit)?;
        let mut view = View::new(snapshot, event_ids);
        if let Some(endpoints) = endpoints {
            view = view.announcing_to(endpoints);
        }
        let outcomes = jobs
            .iter()
            .map(|job| job.span.in_scope(|| view.process(&job.delivery, &job.work)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failed::before_commit)?;
        let changes = view.changes();
        let deliveries = !changes.deliveries.is_empty();
        write(connection, &changes)
            .await
            .map_err(Failed::before_commit)?;
        connection
            .run("COMMIT", &[])
            .await
            .map_err(|error| Failed {
                error: error.into(),
                at_commit: true,
            })?;
        if deliveries {
            self.outbox.written.notify_one();
        }
        Ok(outcomes)
    }

    /// The worker's connection, made now if it has none.
    async fn connect(&mut self) -> Result<&mut C, StoreError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => tokio::time::timeout(self.connect_timeout, (self.connect)())
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??,
        };
        Ok(self.connection.insert(connection))
    }
}

/// Counts callbacks by how they were committed: with their group, or one by
/// one after their group failed.
fn count_path(path: &'static str, callbacks: usize) {
    if callbacks > 0 {
        metrics::counter!(GROUP_CALLBACKS, "path" => path).increment(callbacks as u64);
    }
}

/// The text of a JSON array of `rows` (a statement's one parameter).
pub(crate) fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("rows as JSON: {e}")))
}

/// Reads every row the group's callbacks are about (under its locks).
async fn read<C: GroupConn>(connection: &mut C, wanted: &Wanted) -> Result<Snapshot, StoreError> {
    let sql = C::statements();
    let mut snapshot = Snapshot::default();
    for (merchant, of) in &wanted.merchants {
        let key = |id: &str| (merchant.clone(), id.to_owned());
        // Rows of `merchant` by the ids (or keys) of a JSON array.
        let by = |ids: String| [merchant.clone(), ids];
        if !of.keys.is_empty() {
            let keys: Vec<serde_json::Value> = of
                .keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kind": k.kind,
                        "subject_id": k.subject_id,
                        "discriminator": k.discriminator,
                    })
                })
                .collect();
            let rows: Vec<DecisionRow> = connection
                .fetch(sql.decisions, &by(json_rows(&keys)?))
                .await?;
            for row in rows {
                let Some(k) = of.keys.iter().find(|k| row.is_for(k)) else {
                    continue;
                };
                let decision = Decision {
                    answer: row.answer()?,
                    fingerprint: row.fingerprint,
                    first_fields: row.first_fields,
                };
                snapshot.decisions.insert(k.clone(), decision);
            }
        }
        let mut order_ids = of.orders.clone();
        let payments = readable::<C, PaymentRow>(connection, &sql.payments, merchant, &of.payments);
        for (id, row) in payments.await? {
            match row.and_then(PaymentRow::into_payment) {
                Ok(payment) => {
                    order_ids.push(payment.order_id.clone());
                    snapshot.payments.insert(key(&payment.payment_id), payment);
                }
                Err(why) => {
                    snapshot.damaged_payments.insert(key(&id), why.to_string());
                }
            }
        }
        // Sorted, so that row locks are always taken in one order.
        order_ids.sort();
        order_ids.dedup();
        if !order_ids.is_empty() {
            let rows: Vec<OrderRow> = connection
                .fetch(&sql.orders, &by(json_rows(&order_ids)?))
                .await?;
            for row in rows {
                let order_id = row.order_id.clone();
                let order = match row.into_order() {
                    Ok(order) => Ok(order),
                    Err(e) => Err(orders::order_defect(merchant, &order_id, e)?),
                };
                snapshot.orders.insert(key(&order_id), order);
            }
        }
        let payouts = readable::<C, PayoutRow>(connection, &sql.payouts, merchant, &of.payouts);
        for (id, row) in payouts.await? {
            match row.and_then(PayoutRow::into_payout) {
                Ok(payout) => {
                    snapshot.payouts.insert(key(&payout.order_id), payout);
                }
                Err(why) => {
                    snapshot.damaged_payouts.insert(key(&id), why.to_string());
                }
            }
        }
    }
    Ok(snapshot)
}

/// The rows `sql` reads for `merchant`'s `ids`, each with its id. A row
/// that cannot be decoded (a value of another type in a column, written by
/// hand) makes the query of all ids fail as a whole; then each id is read
/// alone, so that the damaged row is `Err` for its id only and the group's
/// other rows are read as usual.
async fn readable<C: GroupConn, R: Row + Keyed>(
    connection: &mut C,
    sql: &'static str,
    merchant: &str,
    ids: &[String],
) -> Result<Vec<(String, Result<R, StoreError>)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let all = [merchant.to_owned(), json_rows(ids)?];
    match connection.fetch::<R>(sql, &all).await {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|row| (row.id().to_owned(), Ok(row)))
            .collect()),
        Err(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)) => {
            let mut rows = Vec::new();
            for id in ids {
                let one = [merchant.to_owned(), json_rows(std::slice::from_ref(id))?];
                match connection.fetch::<R>(sql, &one).await {
                    Ok(found) => rows.extend(found.into_iter().map(|row| (id.clone(), Ok(row)))),
                    Err(error @ (sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))) => {
                        rows.push((id.clone(), Err(error.into())));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            Ok(rows)
        }
        Err(error) => Err(error.into()),
    }
}

/// A row read by its id.
pub(crate) trait Keyed {
    /// The id the row was looked up by.
    fn id(&self) -> &str;
}

impl Keyed for PaymentRow {
    fn id(&self) -> &str {
        &self.payment_id
    }
}

impl Keyed for PayoutRow {
    fn id(&self) -> &str {
        &self.order_id
    }
}

/// Takes the group's locks (PostgreSQL) and draws `count` new event ids,
/// one for each callback (one that records no event leaves a gap, as a
/// rolled-back transaction does), in one statement.
async fn lock_and_draw<C: GroupConn>(
    connection: &mut C,
    wanted: &Wanted,
    count: usize,
) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<IdRow> = match &C::statements().lock_and_draw {
        LockAndDraw::Locks(sql) => {
            connection
                .fetch(sql, &[json_rows(&wanted.locks)?, count.to_string()])
                .await?
        }
        LockAndDraw::Draw(sql) => connection.fetch(sql, &[count.to_string()]).await?,
    };
    if rows.len() != count {
        return Err(StoreError::Corrupt(format!(
            "{} event ids drawn for {count} callbacks",
            rows.len()
        )));
    }
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Writes the group's changes: rows passed as JSON arrays of named objects.
async fn write<C: GroupConn>(connection: &mut C, changes: &Changes<'_>) -> Result<(), StoreError> {
    match &C::statements().writes {
        Writes::Together(sql) => {
            let params = [
                json_rows(changes.events)?,
                json_rows(&changes.payments)?,
                json_rows(&changes.orders)?,
                json_rows(&changes.payouts)?,
                json_rows(&changes.decisions)?,
                json_rows(&changes.repeats)?,
                json_rows(&changes.confirms)?,
                json_rows(changes.messages)?,
                json_rows(changes.deliveries)?,
            ];
            connection.run(sql, &params).await?;
        }
        Writes::PerTable(sql) => {
            let writes = [
                (
                    &sql.insert_events,
                    json_rows(changes.events)?,
                    changes.events.is_empty(),
                ),
                (
                    &sql.upsert_payments,
                    json_rows(&changes.payments)?,
                    changes.payments.is_empty(),
                ),
                (
                    &sql.update_orders,
                    json_rows(&changes.orders)?,
                    changes.orders.is_empty(),
                ),
                (
                    &sql.upsert_payouts,
                    json_rows(&changes.payouts)?,
                    changes.payouts.is_empty(),
                ),
                (
                    &sql.insert_decisions,
                    json_rows(&changes.decisions)?,
                    changes.decisions.is_empty(),
                ),
                (
                    &sql.add_repeats,
                    json_rows(&changes.repeats)?,
                    changes.repeats.is_empty(),
                ),
                (
                    &sql.open_confirms,
                    json_rows(&changes.confirms)?,
                    changes.confirms.is_empty(),
                ),
                (
                    &sql.insert_messages,
                    json_rows(changes.messages)?,
                    changes.messages.is_empty(),
                ),
                (
                    &sql.insert_deliveries,
                    json_rows(changes.deliveries)?,
                    changes.deliveries.is_empty(),
                ),
            ];
            for (sql, rows, empty) in writes {
                if !empty {
                    connection.run(sql, &[rows]).await?;
                }
            }
        }
    }
    Ok(())
}
