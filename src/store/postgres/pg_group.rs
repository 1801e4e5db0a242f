//! Group commit on PostgreSQL: the callbacks waiting for the writer are decided
//! together in one transaction whose statements each cover the whole group
//! (arrays through `unnest`), so a group of any size costs about a dozen round
//! trips and one commit instead of nine round trips per callback. Throughput
//! was bound by CPU spent on round trips, not by fsync (BENCHMARKS.md).
//!
//! Semantics are those of the per-callback path (`process_steps`):
//! - the same advisory locks (merchant/subject, taken in sorted order so two
//!   groups or instances cannot deadlock) and the same idempotency claims;
//! - the same pure decision, fed from an in-memory view of the rows that
//!   earlier callbacks of the group have already changed, so two payments for
//!   one order in one group are decided one after the other;
//! - answers only after the commit.
//!
//! Payouts, checks, a callback whose idempotency key repeats within the group
//! or was claimed before, a decision that flags, schedules or defers, and a
//! group of one (left after the optimistic path, which runs first: see
//! `pg_optimistic`) take the per-callback path. If any statement of the group fails,
//! the whole group is retried callback by callback, so that one bad row cannot
//! fail the callbacks that happen to share its group.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use super::pg_columns::{bind_events, bind_payments, lock_names};
use super::pg_optimistic;
use super::tx::PgTx;
use crate::domain::{IdempotencyKey, Order, Payment};
use crate::protocol::Status;
use crate::store::callbacks::group_commit::{Job, fail_all};
use crate::store::callbacks::group_decide::{
    Decided, Key, NewEvent, Settle, decide_group, final_rows, groupable, processed,
};
use crate::store::callbacks::{CallbackTx, process_steps};
use crate::store::rows::{self, OrderRow, PaymentRow};
use crate::store::{Processed, StoreError};
use crate::telemetry::metrics::GROUP_CALLBACKS;

/// The connections of the group writers: the optimistic path's (generic
/// plans) and the locked paths' (custom plans).
#[derive(Clone, Debug)]
pub(crate) struct Pools {
    pub locked: PgPool,
    pub optimistic: PgPool,
}

/// Runs a group: the optimistic path, then (for what it cannot take) the
/// batched transaction under locks, then callbacks one by one.
pub(crate) async fn run_group(pools: &Pools, group: Vec<Job>) {
    let pool = &pools.locked;
    let groupable = groupable(&group);
    let mut batched = Vec::with_capacity(groupable.len());
    let mut single = Vec::new();
    let mut keys = groupable.into_iter().peekable();
    for (index, job) in group.into_iter().enumerate() {
        match keys.next_if(|(i, _)| *i == index) {
            Some((_, key)) => batched.push((job, key)),
            None => single.push(job),
        }
    }
    // First the optimistic path: two round trips, no locks held between
    // them. When something changed under it, nothing was written and the
    // group is decided again under locks below.
    if !batched.is_empty() {
        let results_len = batched.len();
        match pg_optimistic::run(&pools.optimistic, &batched).await {
            Ok(results) => {
                let mut conflicted = Vec::new();
                for ((job, key), result) in batched.drain(..).zip(results) {
                    match result {
                        Some(processed) => {
                            let _ = job.reply.send(Ok(processed));
                        }
                        None => conflicted.push((job, key)),
                    }
                }
                count_path("optimistic", results_len - conflicted.len());
                batched = conflicted;
            }
            Err(error) if error.is_unavailable() => {
                return fail_group(batched, single, &error);
            }
            Err(error) => {
                tracing::warn!(%error, callbacks = batched.len(), "optimistic group failed; deciding it under locks");
            }
        }
    }
    // A group of one is cheaper on the plain path (fewer, simpler statements).
    if batched.len() == 1 {
        single.extend(batched.drain(..).map(|(job, _)| job));
    }
    if !batched.is_empty() {
        // Without a connection there is nothing to retry one by one: the
        // whole group gets the error at once (503, FreedomPay retries).
        let tx = match pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                return fail_group(batched, single, &StoreError::Database(e));
            }
        };
        match run_batch(tx, &batched).await {
            // Not for the group path (a repeat, or a decision that flags,
            // schedules or defers): nothing was kept, all go one by one.
            Ok(None) => {
                single.splice(0..0, batched.into_iter().map(|(job, _)| job));
            }
            Ok(Some(results)) => {
                count_path("locked_group", results.len());
                for ((job, _), result) in batched.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(error) if error.is_unavailable() => {
                return fail_group(batched, single, &error);
            }
            Err(error) => {
                tracing::warn!(%error, callbacks = batched.len(), "group transaction failed; retrying its callbacks one by one");
                single.splice(0..0, batched.into_iter().map(|(job, _)| job));
            }
        }
    }
    count_path("single", single.len());
    let mut jobs = single.into_iter();
    while let Some(job) = jobs.next() {
        let result = run_single(pool, &job).await;
        if let Err(error) = &result
            && error.is_unavailable()
        {
            // The database went away: the rest would only wait to fail.
            let error = StoreError::GroupFailed(error.to_string());
            let _ = job.reply.send(result);
            return fail_all(jobs.map(|j| j.reply), &error);
        }
        let _ = job.reply.send(result);
    }
}

/// The database is gone: every callback of the group gets the error at once
/// (503, FreedomPay retries), none waits to fail on its own.
fn fail_group(batched: Vec<(Job, IdempotencyKey)>, single: Vec<Job>, error: &StoreError) {
    let replies = batched
        .into_iter()
        .map(|(job, _)| job.reply)
        .chain(single.into_iter().map(|j| j.reply));
    fail_all(replies, error);
}

/// Counts callbacks by the path that decided them (an operator sees how often
/// groups fall back from the optimistic path).
fn count_path(path: &'static str, callbacks: usize) {
    if callbacks > 0 {
        metrics::counter!(GROUP_CALLBACKS, "path" => path).increment(callbacks as u64);
    }
}

/// The per-callback path: one transaction for one callback.
async fn run_single(pool: &PgPool, job: &Job) -> Result<Processed, StoreError> {
    let mut tx = PgTx::begin(pool).await?;
    let processed = process_steps(&mut tx, &job.delivery, &job.decide).await?;
    tx.commit().await?;
    Ok(processed)
}

/// `None` when the group is not for the group path (`decide_group`): the
/// transaction is rolled back, claims included.
async fn run_batch(
    mut tx: Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
) -> Result<Option<Vec<Processed>>, StoreError> {
    let claimed = claim(&mut tx, jobs).await?;
    let stored = stored_answers(&mut tx, jobs, &claimed).await?;

    if let Some((_, key)) = jobs
        .iter()
        .find(|(_, k)| !claimed.contains(k) && !stored.contains_key(k))
    {
        return Err(StoreError::Corrupt(format!(
            "the claimed decision {key:?} has no stored answer"
        )));
    }
    let mut payments = load_payments(&mut tx, jobs, &claimed).await?;
    let mut orders = load_orders(&mut tx, jobs, &claimed, &payments).await?;

    let Some(Decided {
        events,
        touched_payments,
        touched_orders,
        settles,
    }) = decide_group(
        &jobs.iter().map(|(job, key)| (job, key)).collect::<Vec<_>>(),
        &stored,
        &mut payments,
        &mut orders,
    )
    else {
        return Ok(None);
    };

    let ids = event_ids(&mut tx, events.len()).await?;
    let event_of_job: HashMap<usize, i64> = events
        .iter()
        .zip(&ids)
        .map(|(e, id)| (e.job, *id))
        .collect();
    write_all(
        &mut tx,
        jobs,
        &events,
        &ids,
        &final_rows(&touched_payments, &payments),
        &final_rows(&touched_orders, &orders),
        &settles,
        &event_of_job,
    )
    .await?;
    tx.commit().await?;

    Ok(Some(processed(events, ids)))
}

fn key_columns(jobs: &[(Job, IdempotencyKey)]) -> [Vec<String>; 4] {
    let mut columns: [Vec<String>; 4] = Default::default();
    for (_, key) in jobs {
        columns[0].push(key.merchant_id.clone());
        columns[1].push(key.kind.to_owned());
        columns[2].push(key.subject_id.clone());
        columns[3].push(key.discriminator.clone());
    }
    columns
}

fn key_of(
    jobs: &[(Job, IdempotencyKey)],
    row: &(String, String, String, String),
) -> Option<IdempotencyKey> {
    jobs.iter()
        .map(|(_, k)| k)
        .find(|k| {
            k.merchant_id == row.0
                && k.kind == row.1
                && k.subject_id == row.2
                && k.discriminator == row.3
        })
        .cloned()
}

/// Takes the same advisory locks as the per-callback claim, in sorted order
/// (so that two groups, or two instances, cannot deadlock), then claims every
/// key: one statement. Every inserted row needs the one row of `locked`, so
/// all locks are held before the first claim is written.
async fn claim(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
) -> Result<HashSet<IdempotencyKey>, StoreError> {
    let subjects = lock_names(jobs.iter().map(|(_, k)| k));
    let [merchants, kinds, ids, discriminators] = key_columns(jobs);
    let fingerprints: Vec<Option<String>> = jobs
        .iter()
        .map(|(job, _)| job.delivery.fingerprint.clone())
        .collect();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "WITH locked AS MATERIALIZED (SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) \
           FROM (SELECT unnest($5::text[]) AS name ORDER BY 1) AS subjects) \
         INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, fingerprint) \
         SELECT u.m, u.k, u.s, u.d, u.f FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
           $6::text[]) AS u(m, k, s, d, f) \
         CROSS JOIN locked \
         ON CONFLICT DO NOTHING RETURNING merchant_id, kind, subject_id, discriminator",
    )
    .bind(merchants)
    .bind(kinds)
    .bind(ids)
    .bind(discriminators)
    .bind(subjects)
    .bind(fingerprints)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().filter_map(|row| key_of(jobs, row)).collect())
}

async fn stored_answers(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
    claimed: &HashSet<IdempotencyKey>,
) -> Result<HashMap<IdempotencyKey, (Status, String)>, StoreError> {
    let unclaimed: Vec<&IdempotencyKey> = jobs
        .iter()
        .map(|(_, k)| k)
        .filter(|k| !claimed.contains(*k))
        .collect();
    if unclaimed.is_empty() {
        return Ok(HashMap::new());
    }
    let column =
        |f: fn(&IdempotencyKey) -> String| unclaimed.iter().map(|k| f(k)).collect::<Vec<_>>();
    let rows: Vec<rows::DecisionRow> = sqlx::query_as(
        "SELECT d.merchant_id, d.kind, d.subject_id, d.discriminator, d.answer_status, d.answer_description \
         FROM callback_decisions d \
         JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(m, kd, s, di) \
         ON d.merchant_id = k.m AND d.kind = k.kd AND d.subject_id = k.s AND d.discriminator = k.di",
    )
    .bind(column(|k| k.merchant_id.clone()))
    .bind(column(|k| k.kind.to_owned()))
    .bind(column(|k| k.subject_id.clone()))
    .bind(column(|k| k.discriminator.clone()))
    .fetch_all(&mut **tx)
    .await?;
    let mut answers = HashMap::new();
    for row in rows {
        let key = key_of(jobs, &(row.0, row.1, row.2, row.3));
        if let Some(key) = key {
            answers.insert(key, rows::stored_answer((row.4, row.5))?);
        }
    }
    Ok(answers)
}

/// Reads the rows keyed by (merchant, id) with `sql` (`$1` the merchant, `$2`
/// the ids), one query per merchant: `= ANY` keeps the primary-key index in
/// use whatever the number of ids.
async fn load_keyed<R, T>(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    mut wanted: Vec<Key>,
    convert: fn(R) -> Result<T, StoreError>,
    id_of: fn(&T) -> &str,
) -> Result<HashMap<Key, T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    wanted.sort();
    wanted.dedup();
    let mut found = HashMap::new();
    for merchant in wanted
        .iter()
        .map(|(m, _)| m.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let ids: Vec<&str> = wanted
            .iter()
            .filter(|(m, _)| *m == merchant)
            .map(|(_, id)| id.as_str())
            .collect();
        let rows: Vec<R> = sqlx::query_as(sql)
            .bind(&merchant)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let value = convert(row)?;
            found.insert((merchant.clone(), id_of(&value).to_owned()), value);
        }
    }
    Ok(found)
}

async fn load_payments(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
    claimed: &HashSet<IdempotencyKey>,
) -> Result<HashMap<Key, Payment>, StoreError> {
    let wanted: Vec<Key> = jobs
        .iter()
        .filter(|(_, k)| claimed.contains(k))
        .filter_map(|(job, _)| {
            let c = &job.delivery.callback;
            c.payment_id.clone().map(|id| (c.merchant_id.clone(), id))
        })
        .collect();
    load_keyed::<PaymentRow, _>(
        tx,
        "SELECT payment_id, order_id, amount::text, currency, status, captured, testing_mode, \
         card_mask, failure_code, failure_description, needs_refund, refunded_amount::text \
         FROM payments WHERE merchant_id = $1 AND payment_id = ANY($2::text[]) ORDER BY payment_id FOR UPDATE",
        wanted,
        rows::payment,
        |p| &p.payment_id,
    )
    .await
}

async fn load_orders(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
    claimed: &HashSet<IdempotencyKey>,
    payments: &HashMap<Key, Payment>,
) -> Result<HashMap<Key, Order>, StoreError> {
    let wanted: Vec<Key> = jobs
        .iter()
        .filter(|(_, k)| claimed.contains(k))
        .filter_map(|(job, _)| {
            let c = &job.delivery.callback;
            let from_payment = || {
                c.payment_id
                    .as_ref()
                    .and_then(|id| payments.get(&(c.merchant_id.clone(), id.clone())))
                    .map(|p| p.order_id.clone())
            };
            c.order_id
                .clone()
                .or_else(from_payment)
                .map(|id| (c.merchant_id.clone(), id))
        })
        .collect();
    load_keyed::<OrderRow, _>(
        tx,
        "SELECT order_id, amount::text, currency, status, expires_at, paid_payment_id \
         FROM orders WHERE merchant_id = $1 AND order_id = ANY($2::text[]) ORDER BY order_id FOR UPDATE",
        wanted,
        rows::order,
        |o| &o.order_id,
    )
    .await
}

async fn event_ids(
    tx: &mut Transaction<'static, Postgres>,
    count: usize,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<(i64,)> =
        sqlx::query_as("SELECT nextval('events_id_seq') FROM generate_series(1, $1)")
            .bind(count as i64)
            .fetch_all(&mut **tx)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Every write of the group in one statement, one round trip: the events
/// (announced with NOTIFY), the final payment rows, the new order statuses,
/// and the answers under the claimed keys. Empty arrays write nothing.
#[allow(clippy::too_many_arguments)]
async fn write_all(
    tx: &mut Transaction<'static, Postgres>,
    jobs: &[(Job, IdempotencyKey)],
    events: &[NewEvent],
    ids: &[i64],
    payments: &[(&Key, &Payment)],
    orders: &[(&Key, &Order)],
    settles: &[Settle<'_>],
    event_of_job: &HashMap<usize, i64>,
) -> Result<(), StoreError> {
    let delivery = |e: &NewEvent| &jobs[e.job].0.delivery;
    let event_text =
        |f: &dyn Fn(&NewEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let settle_text = |f: &dyn Fn(&Settle<'_>) -> String| settles.iter().map(f).collect::<Vec<_>>();
    // Every settled decision has its event in this group; a missing one is a
    // defect, and the group goes to the per-callback path rather than storing
    // a decision that points at no event.
    let event_ids = settles
        .iter()
        .map(|s| {
            event_of_job
                .get(&s.0)
                .copied()
                .ok_or_else(|| StoreError::GroupFailed("a decision without its event".to_owned()))
        })
        .collect::<Result<Vec<i64>, StoreError>>()?;
    let query = sqlx::query(
        "WITH new_events AS (INSERT INTO events (id, merchant_id, kind, order_id, payment_id, fields, \
           answer_status, answer_description, duplicate, signature_variant, key_label) \
           SELECT id, m, k, o, p, f::jsonb, st, de, du, sv, kl FROM unnest($1::bigint[], $2::text[], \
           $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::text[], \
           $11::text[]) AS u(id, m, k, o, p, f, st, de, du, sv, kl) RETURNING id), \
         new_payments AS (INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, \
           captured, testing_mode, card_mask, failure_code, failure_description, needs_refund, refunded_amount) \
           SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::numeric[], $16::text[], \
           $17::text[], $18::bool[], $19::bool[], $20::text[], $21::text[], $22::text[], $23::bool[], \
           $24::numeric[]) \
           ON CONFLICT (merchant_id, payment_id) DO UPDATE SET order_id = EXCLUDED.order_id, \
           amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status, \
           captured = EXCLUDED.captured, testing_mode = EXCLUDED.testing_mode, \
           card_mask = EXCLUDED.card_mask, failure_code = EXCLUDED.failure_code, \
           failure_description = EXCLUDED.failure_description, needs_refund = EXCLUDED.needs_refund, \
           refunded_amount = EXCLUDED.refunded_amount, updated_at = now() RETURNING 1), \
         new_statuses AS (UPDATE orders o SET status = u.status, paid_payment_id = u.paid, updated_at = now() \
           FROM unnest($25::text[], $26::text[], $27::text[], $28::text[]) AS u(m, id, status, paid) \
           WHERE o.merchant_id = u.m AND o.order_id = u.id RETURNING 1), \
         answers AS (UPDATE callback_decisions d SET answer_status = u.st, answer_description = u.de, \
           event_id = u.ev \
           FROM unnest($29::text[], $30::text[], $31::text[], $32::text[], $33::text[], $34::text[], \
           $35::bigint[]) AS u(m, k, s, di, st, de, ev) \
           WHERE d.merchant_id = u.m AND d.kind = u.k AND d.subject_id = u.s AND d.discriminator = u.di \
           RETURNING 1) \
         SELECT (SELECT count(pg_notify('freedompay_events', id::text)) FROM new_events), \
           (SELECT count(*) FROM new_payments), (SELECT count(*) FROM new_statuses), \
           (SELECT count(*) FROM answers)",
    )
    .bind(ids)
    .bind(event_text(&|e| Some(delivery(e).callback.merchant_id.clone())));
    let query = bind_events(query, events, |job| &jobs[job].0.delivery).bind(
        payments
            .iter()
            .map(|(k, _)| k.0.clone())
            .collect::<Vec<_>>(),
    );
    bind_payments(query, payments)
        // orders
        .bind(orders.iter().map(|(k, _)| k.0.clone()).collect::<Vec<_>>())
        .bind(orders.iter().map(|(k, _)| k.1.clone()).collect::<Vec<_>>())
        .bind(
            orders
                .iter()
                .map(|(_, o)| o.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            orders
                .iter()
                .map(|(_, o)| o.paid_payment_id.clone())
                .collect::<Vec<_>>(),
        )
        // answers
        .bind(settle_text(&|s| s.1.merchant_id.clone()))
        .bind(settle_text(&|s| s.1.kind.to_owned()))
        .bind(settle_text(&|s| s.1.subject_id.clone()))
        .bind(settle_text(&|s| s.1.discriminator.clone()))
        .bind(settle_text(&|s| s.2.as_str().to_owned()))
        .bind(settle_text(&|s| s.3.clone()))
        .bind(event_ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
