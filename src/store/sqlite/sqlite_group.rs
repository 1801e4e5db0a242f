//! A group of callbacks on SQLite in a handful of statements: each statement
//! covers the whole group (its rows passed as one JSON array and unpacked
//! with `json_each`), and the group is decided in memory in between
//! (`group_decide`). With sqlx every statement is a round trip to the
//! connection's worker thread, and those hand-offs, not SQLite, were most of
//! the writer's time with nine statements per callback (BENCHMARKS.md).
//!
//! Only the group's writer runs at the time (SQLite has one writer, and the
//! group's transaction holds the write lock from its start), so what the
//! reads return cannot change before the writes.
//!
//! Also SQLite's group writer ([`start_writer`]): one task takes every
//! callback waiting in the group-commit queue as a group and runs it in one
//! transaction, committed once (one fsync for the group). It first runs the
//! group without savepoints: the groupable callbacks through [`run_batch`],
//! the others (and all of them when the batch declines) through the
//! per-callback steps (`process_steps`). If one callback's steps fail, the
//! group runs again with a savepoint per callback, so that only that callback
//! is rolled back. Each caller gets its answer only after the shared commit;
//! if the commit fails, every callback of the group gets the error.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::{SqliteConnection, SqlitePool};
use tracing::Instrument;

use super::tx::SqliteTx;
use crate::domain::{IdempotencyKey, Order, Payment};
use crate::protocol::Status;
use crate::store::callbacks::group_commit::{Job, Writer, fail_all};
use crate::store::callbacks::group_decide::{Key, decide_group, final_rows, groupable, processed};
use crate::store::callbacks::{CallbackTx, process_steps};
use crate::store::rows::{self, DecisionRow, OrderRow, PaymentRow};
use crate::store::{Processed, StoreError};

/// Decides and writes `jobs` inside the open transaction of `connection`.
/// The results are in job order; nothing is committed here. `None` when the
/// group is not for the group path (`decide_group`): nothing was written, and
/// the callbacks take the per-callback steps.
pub(crate) async fn run_batch(
    connection: &mut SqliteConnection,
    jobs: &[(&Job, &IdempotencyKey)],
) -> Result<Option<Vec<Processed>>, StoreError> {
    let callbacks = || jobs.iter().map(|(job, _)| &job.delivery.callback);
    let stored = stored_answers(connection, jobs).await?;
    let payment_keys: Vec<Key> = callbacks()
        .filter_map(|c| Some((c.merchant_id.clone(), c.payment_id.clone()?)))
        .collect();
    let mut payments = read_rows::<PaymentRow, Payment>(
        connection,
        "SELECT payment_id, order_id, amount, currency, status, captured, testing_mode, card_mask, \
         failure_code, failure_description, needs_refund, refunded_amount FROM payments \
         WHERE merchant_id = ?1 AND payment_id IN (SELECT value FROM json_each(?2))",
        &payment_keys,
        rows::payment,
        |p| &p.payment_id,
    )
    .await?;
    // The orders the callbacks name, or their payments'.
    let order_keys: Vec<Key> = callbacks()
        .filter_map(|c| {
            let order_id = c.order_id.clone().or_else(|| {
                let key = (c.merchant_id.clone(), c.payment_id.clone()?);
                payments.get(&key).map(|p| p.order_id.clone())
            })?;
            Some((c.merchant_id.clone(), order_id))
        })
        .collect();
    let mut orders = read_rows::<OrderRow, Order>(
        connection,
        "SELECT order_id, amount, currency, status, expires_at, paid_payment_id FROM orders \
         WHERE merchant_id = ?1 AND order_id IN (SELECT value FROM json_each(?2))",
        &order_keys,
        rows::order,
        |o| &o.order_id,
    )
    .await?;

    let Some(decided) = decide_group(jobs, &stored, &mut payments, &mut orders) else {
        return Ok(None);
    };

    let delivery = |index: usize| &jobs[index].0.delivery;
    let events: Vec<Value> = decided
        .events
        .iter()
        .map(|e| {
            let d = delivery(e.job);
            let c = &d.callback;
            json!([
                c.merchant_id,
                c.event_kind(),
                c.order_id,
                c.payment_id,
                d.fields_json,
                e.answer.as_ref().map(|(s, _)| s.as_str()),
                e.answer.as_ref().map(|(_, text)| text),
                e.duplicate,
                d.signature_variant,
                d.key_label,
            ])
        })
        .collect();
    let mut ids: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, answer_status, \
         answer_description, duplicate, signature_variant, key_label) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
         value ->> 6, value ->> 7, value ->> 8, value ->> 9 FROM json_each(?1) ORDER BY key \
         RETURNING id",
    )
    .bind(Value::Array(events).to_string())
    .fetch_all(&mut *connection)
    .await?;
    // Ids grow in insertion order (one writer, AUTOINCREMENT); RETURNING
    // gives no order, so sort them back into it.
    ids.sort_unstable();
    let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
    if ids.len() != decided.events.len() {
        return Err(StoreError::Corrupt(
            "a group's events were not all written".into(),
        ));
    }

    let written_payments: Vec<Value> = final_rows(&decided.touched_payments, &payments)
        .into_iter()
        .map(|((merchant, _), p)| {
            json!([
                merchant,
                p.payment_id,
                p.order_id,
                p.amount.canonical(),
                p.currency,
                p.status.as_str(),
                p.captured,
                p.testing_mode,
                p.card_mask,
                p.failure_code,
                p.failure_description,
                p.needs_refund,
                p.refunded_amount.canonical(),
            ])
        })
        .collect();
    if !written_payments.is_empty() {
        sqlx::query(
            "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, \
             captured, testing_mode, card_mask, failure_code, failure_description, needs_refund, \
             refunded_amount) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
             value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, \
             value ->> 12 FROM json_each(?1) WHERE true \
             ON CONFLICT (merchant_id, payment_id) DO UPDATE SET order_id = excluded.order_id, \
             amount = excluded.amount, currency = excluded.currency, status = excluded.status, \
             captured = excluded.captured, testing_mode = excluded.testing_mode, \
             card_mask = excluded.card_mask, failure_code = excluded.failure_code, \
             failure_description = excluded.failure_description, \
             needs_refund = excluded.needs_refund, refunded_amount = excluded.refunded_amount, \
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(Value::Array(written_payments).to_string())
        .execute(&mut *connection)
        .await?;
    }

    let written_orders: Vec<Value> = final_rows(&decided.touched_orders, &orders)
        .into_iter()
        .map(|((merchant, id), o)| json!([merchant, id, o.status.as_str(), o.paid_payment_id]))
        .collect();
    if !written_orders.is_empty() {
        sqlx::query(
            "UPDATE orders SET status = k.value ->> 2, paid_payment_id = k.value ->> 3, \
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM json_each(?1) AS k \
             WHERE orders.merchant_id = k.value ->> 0 AND orders.order_id = k.value ->> 1",
        )
        .bind(Value::Array(written_orders).to_string())
        .execute(&mut *connection)
        .await?;
    }

    let event_of_job: HashMap<usize, i64> = decided
        .events
        .iter()
        .zip(&ids)
        .map(|(e, id)| (e.job, *id))
        .collect();
    let decisions: Vec<Value> = decided
        .settles
        .iter()
        .map(|(job, key, status, description)| {
            json!([
                key.merchant_id,
                key.kind,
                key.subject_id,
                key.discriminator,
                status.as_str(),
                description,
                event_of_job.get(job),
                jobs[*job].0.delivery.fingerprint,
            ])
        })
        .collect();
    if !decisions.is_empty() {
        sqlx::query(
            "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, \
             answer_status, answer_description, event_id, fingerprint) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
             value ->> 6, value ->> 7 FROM json_each(?1)",
        )
        .bind(Value::Array(decisions).to_string())
        .execute(&mut *connection)
        .await?;
    }

    Ok(Some(processed(decided.events, ids)))
}

/// The stored answers of the group's keys decided before (repeats).
async fn stored_answers(
    connection: &mut SqliteConnection,
    jobs: &[(&Job, &IdempotencyKey)],
) -> Result<HashMap<IdempotencyKey, (Status, String)>, StoreError> {
    let keys: Vec<Value> = jobs
        .iter()
        .map(|(_, k)| json!([k.merchant_id, k.kind, k.subject_id, k.discriminator]))
        .collect();
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "SELECT d.merchant_id, d.kind, d.subject_id, d.discriminator, d.answer_status, \
             d.answer_description FROM json_each(?1) AS k JOIN callback_decisions d \
             ON d.merchant_id = k.value ->> 0 AND d.kind = k.value ->> 1 \
             AND d.subject_id = k.value ->> 2 AND d.discriminator = k.value ->> 3",
    )
    .bind(Value::Array(keys).to_string())
    .fetch_all(&mut *connection)
    .await?;
    let mut stored = HashMap::new();
    for (merchant, kind, subject, discriminator, status, description) in rows {
        if let Some((_, key)) = jobs.iter().find(|(_, k)| {
            k.merchant_id == merchant
                && k.kind == kind
                && k.subject_id == subject
                && k.discriminator == discriminator
        }) {
            stored.insert((*key).clone(), rows::stored_answer((status, description))?);
        }
    }
    Ok(stored)
}

/// Reads the rows of `keys` with `sql` (`?1` a merchant, `?2` its ids as a
/// JSON array), one statement per merchant (a group nearly always has one).
async fn read_rows<R, T>(
    connection: &mut SqliteConnection,
    sql: &'static str,
    keys: &[Key],
    convert: fn(R) -> Result<T, StoreError>,
    id_of: fn(&T) -> &str,
) -> Result<HashMap<Key, T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let mut merchants: Vec<&str> = keys.iter().map(|(m, _)| m.as_str()).collect();
    merchants.sort_unstable();
    merchants.dedup();
    let mut found = HashMap::new();
    for merchant in merchants {
        let ids: Vec<&str> = keys
            .iter()
            .filter(|(m, _)| m == merchant)
            .map(|(_, id)| id.as_str())
            .collect();
        let rows: Vec<R> = sqlx::query_as(sql)
            .bind(merchant)
            .bind(json!(ids).to_string())
            .fetch_all(&mut *connection)
            .await?;
        for row in rows {
            let value = convert(row)?;
            found.insert((merchant.to_owned(), id_of(&value).to_owned()), value);
        }
    }
    Ok(found)
}

/// Starts the SQLite writer task on `pool` (which should hold one connection).
pub(crate) fn start_writer(pool: SqlitePool) -> Writer {
    let closing = pool.clone();
    Writer::start(
        move |group| {
            let pool = pool.clone();
            async move { run_group(&pool, group).await }
        },
        async move { closing.close().await },
        1,
    )
}

async fn run_group(pool: &SqlitePool, group: Vec<Job>) {
    // First the whole group in one transaction without savepoints: two
    // statements fewer per callback. If one callback's steps fail, nothing of
    // that attempt is kept, and the group runs again with a savepoint per
    // callback, so that only the failing callback fails.
    match run_without_savepoints(pool, &group).await {
        Ok(results) => {
            for (job, result) in group.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(error) if group.len() == 1 || error.is_unavailable() => {
            fail_all(group.into_iter().map(|j| j.reply), &error);
        }
        Err(_) => run_with_savepoints(pool, group).await,
    }
}

async fn run_without_savepoints(
    pool: &SqlitePool,
    group: &[Job],
) -> Result<Vec<Processed>, StoreError> {
    let mut tx = SqliteTx::begin(pool).await?;
    // The groupable callbacks are decided together in a few group-wide
    // statements; the others one by one after them, in the same transaction.
    let keyed = groupable(group);
    let mut results: Vec<Option<Processed>> = group.iter().map(|_| None).collect();
    if keyed.len() > 1 {
        let pairs: Vec<(&Job, &IdempotencyKey)> =
            keyed.iter().map(|(i, k)| (&group[*i], k)).collect();
        // `None`: a repeat or a decision the group path does not take; all
        // of the group then takes the per-callback steps below.
        if let Some(batched) = run_batch(tx.connection(), &pairs).await? {
            for ((index, _), processed) in keyed.iter().zip(batched) {
                results[*index] = Some(processed);
            }
        }
    }
    for (index, job) in group.iter().enumerate() {
        if results[index].is_none() {
            let steps = process_steps(&mut tx, &job.delivery, &job.decide);
            results[index] = Some(steps.instrument(job.span.clone()).await?);
        }
    }
    tx.commit().await?;
    Ok(results.into_iter().flatten().collect())
}

async fn run_with_savepoints(pool: &SqlitePool, group: Vec<Job>) {
    let mut tx = match SqliteTx::begin(pool).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(group.into_iter().map(|j| j.reply), &e),
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let steps = async {
            tx.savepoint().await?;
            let result = process_steps(&mut tx, &job.delivery, &job.decide).await;
            match &result {
                Ok(_) => tx.release().await?,
                Err(_) => tx.rollback_to_savepoint().await?,
            }
            Ok::<_, StoreError>(result)
        }
        .instrument(job.span)
        .await;
        match steps {
            Ok(result) => outcomes.push((job.reply, result)),
            Err(e) => {
                // The transaction itself is unusable: nothing of the group commits.
                let replies = outcomes
                    .into_iter()
                    .map(|(reply, _)| reply)
                    .chain(std::iter::once(job.reply));
                return fail_all(replies, &e);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, result) in outcomes {
                let _ = reply.send(result);
            }
        }
        Err(e) => fail_all(outcomes.into_iter().map(|(reply, _)| reply), &e),
    }
}
