//! The optimistic group path on PostgreSQL: two round trips per group, no
//! explicit transaction and no lock held between them.
//!
//! 1. `freedompay_read_group` reads every row a merchant's group is about
//!    (payments, orders, stored decisions), each with its version (`xmin`).
//! 2. The group is decided in memory, exactly as on the locked path. A
//!    group with a repeat, or a decision that flags, schedules or defers, is
//!    not written here: it goes to the locked paths, and from there callback
//!    by callback (`group_decide`).
//! 3. `freedompay_write_group` writes everything (events with NOTIFY,
//!    payments, order statuses, decisions) in one statement that commits on
//!    its own. It first takes the same per-subject advisory locks as the
//!    locked paths (sorted), so it never interleaves with them, and checks
//!    that nothing the group decided on has changed since the read: an update
//!    must find the version it read, an insert must find no row, a row read
//!    but not written must be as read, and every decision must be new. If a
//!    check fails, `freedompay_conflict()` raises and the whole statement,
//!    NOTIFYs included, is rolled back; the caller then decides the group
//!    again on the locked path.
//!
//! The statement returns only after its commit, so an answer still leaves only
//! after the callback is durable. The two functions
//! (`migrations/postgres/…_group_functions.sql`) run single-row primary-key
//! statements with generic plans: nothing is planned per group, which was
//! half of PostgreSQL's CPU per callback with set-based statements planned
//! for each execution (BENCHMARKS.md).

use std::collections::HashMap;

use sqlx::postgres::{PgConnection, PgPool};

use super::pg_columns::{bind_events, bind_payments, lock_names};
use crate::domain::{IdempotencyKey, Order, Payment};
use crate::protocol::Status;
use crate::store::callbacks::group_commit::Job;
use crate::store::callbacks::group_decide::{
    Decided, Key, Settle, decide_group, final_rows, processed,
};
use crate::store::rows::{self, OrderRow, PaymentRow};
use crate::store::{Processed, StoreError};

/// SQLSTATEs that mean "decide again under locks": our conflict guard
/// (serialization_failure), a deadlock, a unique violation.
const RETRY_STATES: [&str; 3] = ["40001", "40P01", "23505"];

/// The version (`xmin`) of each row read; a row read as absent has none.
type Versions = HashMap<Key, String>;

/// Decides and writes the group, one merchant's callbacks at a time. The
/// result is aligned with `jobs`: `None` for a callback that must be decided
/// again on the locked path because something changed under its sub-group
/// (nothing of that sub-group was written).
pub(crate) async fn run(
    pool: &PgPool,
    jobs: &[(Job, IdempotencyKey)],
) -> Result<Vec<Option<Processed>>, StoreError> {
    let mut results: Vec<Option<Processed>> = jobs.iter().map(|_| None).collect();
    let mut merchants: Vec<&str> = jobs.iter().map(|(_, k)| k.merchant_id.as_str()).collect();
    merchants.sort_unstable();
    merchants.dedup();
    // One connection for every statement of the group.
    let mut connection = pool.acquire().await?;
    for merchant in merchants {
        let (indices, sub_group): (Vec<usize>, Vec<&(Job, IdempotencyKey)>) = jobs
            .iter()
            .enumerate()
            .filter(|(_, (_, k))| k.merchant_id == merchant)
            .unzip();
        if let Some(processed) = run_merchant(&mut connection, merchant, &sub_group).await? {
            for (index, processed) in indices.into_iter().zip(processed) {
                results[index] = Some(processed);
            }
        }
    }
    Ok(results)
}

/// One merchant's callbacks: read, decide, guarded write. `Ok(None)` on a
/// conflict.
async fn run_merchant(
    connection: &mut PgConnection,
    merchant: &str,
    jobs: &[&(Job, IdempotencyKey)],
) -> Result<Option<Vec<Processed>>, StoreError> {
    let mut snapshot = read(connection, merchant, jobs).await?;
    let mut payments = std::mem::take(&mut snapshot.payments);
    let mut orders = std::mem::take(&mut snapshot.orders);
    let pairs: Vec<(&Job, &IdempotencyKey)> = jobs
        .iter()
        .copied()
        .map(|pair| (&pair.0, &pair.1))
        .collect();
    // Not for the group path (a repeat, or a decision that flags, schedules
    // or defers): nothing written, decided again on the locked paths.
    let Some(decided) = decide_group(&pairs, &snapshot.decisions, &mut payments, &mut orders)
    else {
        return Ok(None);
    };
    let written = write(
        connection, merchant, jobs, &decided, &payments, &orders, &snapshot,
    )
    .await;
    let ids = match written {
        Ok(ids) => ids,
        Err(sqlx::Error::Database(e))
            if e.code().is_some_and(|c| RETRY_STATES.contains(&c.as_ref())) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some(processed(decided.events, ids)))
}

/// The rows of a group, as read before deciding.
struct Snapshot {
    payments: HashMap<Key, Payment>,
    orders: HashMap<Key, Order>,
    decisions: HashMap<IdempotencyKey, (Status, String)>,
    payment_versions: Versions,
    order_versions: Versions,
    /// Every payment and order the group reads (present or not), for the guard.
    payment_keys: Vec<Key>,
    order_keys: Vec<Key>,
}

type VersionedPayment = (String, PaymentRow);
type VersionedOrder = (String, OrderRow);
type StoredDecision = (String, String, String, Option<String>, Option<String>);

/// One round trip: one merchant's payments, orders (named by a callback or by
/// one of those payments) and stored decisions, as JSON so that three row
/// shapes fit one answer. Rows of other keys cannot come back: each is looked
/// up by its whole key.
async fn read(
    connection: &mut PgConnection,
    merchant: &str,
    jobs: &[&(Job, IdempotencyKey)],
) -> Result<Snapshot, StoreError> {
    let callbacks = || jobs.iter().map(|(job, _)| &job.delivery.callback);
    let keys = || jobs.iter().map(|(_, k)| k);
    let (payments, orders, decisions): (String, String, String) = sqlx::query_as(
        "SELECT payments, orders, decisions FROM freedompay_read_group($1, $2, $3, $4, $5, $6)",
    )
    .bind(merchant)
    .bind(
        callbacks()
            .filter_map(|c| c.payment_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        callbacks()
            .filter_map(|c| c.order_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(keys().map(|k| k.kind).collect::<Vec<_>>())
    .bind(keys().map(|k| k.subject_id.as_str()).collect::<Vec<_>>())
    .bind(keys().map(|k| k.discriminator.as_str()).collect::<Vec<_>>())
    .fetch_one(&mut *connection)
    .await?;
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("group snapshot: {e}"));
    let key = |id: &str| (merchant.to_owned(), id.to_owned());

    let mut snapshot = Snapshot {
        payments: HashMap::new(),
        orders: HashMap::new(),
        decisions: HashMap::new(),
        payment_versions: HashMap::new(),
        order_versions: HashMap::new(),
        payment_keys: callbacks()
            .filter_map(|c| c.payment_id.as_deref().map(key))
            .collect(),
        order_keys: Vec::new(),
    };
    for (version, row) in
        serde_json::from_str::<Vec<VersionedPayment>>(&payments).map_err(corrupt)?
    {
        let payment = rows::payment(row)?;
        let k = key(&payment.payment_id);
        snapshot.payment_versions.insert(k.clone(), version);
        snapshot.payments.insert(k, payment);
    }
    // The orders the locked path would read: named by the callback, or the
    // order of its payment.
    for callback in callbacks() {
        let order_id = callback.order_id.clone().or_else(|| {
            let payment = snapshot
                .payments
                .get(&key(callback.payment_id.as_deref()?))?;
            Some(payment.order_id.clone())
        });
        if let Some(order_id) = order_id {
            snapshot.order_keys.push(key(&order_id));
        }
    }
    for (version, row) in serde_json::from_str::<Vec<VersionedOrder>>(&orders).map_err(corrupt)? {
        let order = rows::order(row)?;
        let k = key(&order.order_id);
        if snapshot.order_keys.contains(&k) {
            snapshot.order_versions.insert(k.clone(), version);
            snapshot.orders.insert(k, order);
        }
    }
    for keys_of in [&mut snapshot.payment_keys, &mut snapshot.order_keys] {
        keys_of.sort();
        keys_of.dedup();
    }
    for (kind, subject, discriminator, status, description) in
        serde_json::from_str::<Vec<StoredDecision>>(&decisions).map_err(corrupt)?
    {
        if let Some(k) = keys()
            .find(|k| k.kind == kind && k.subject_id == subject && k.discriminator == discriminator)
        {
            snapshot
                .decisions
                .insert(k.clone(), rows::stored_answer((status, description))?);
        }
    }
    Ok(snapshot)
}

/// One round trip, committed on its own: the guarded writes of one
/// merchant's callbacks. Returns the event ids in job order.
async fn write(
    connection: &mut PgConnection,
    merchant: &str,
    jobs: &[&(Job, IdempotencyKey)],
    decided: &Decided<'_>,
    payments: &HashMap<Key, Payment>,
    orders: &HashMap<Key, Order>,
    snapshot: &Snapshot,
) -> Result<Vec<i64>, sqlx::Error> {
    let events = &decided.events;

    let subjects = lock_names(jobs.iter().map(|(_, k)| k));

    let written_payments = final_rows(&decided.touched_payments, payments);
    let version_of_payment = |k: &Key| snapshot.payment_versions.get(k).cloned();
    let written_orders = final_rows(&decided.touched_orders, orders);
    // Rows decided on but not written must not have changed either (a row
    // read as absent must still be absent).
    let mut guards: Vec<(&str, &str, Option<&String>)> = Vec::new();
    for k in &snapshot.payment_keys {
        if !written_payments.iter().any(|(w, _)| *w == k) {
            guards.push(("payment", &k.1, snapshot.payment_versions.get(k)));
        }
    }
    for k in &snapshot.order_keys {
        if !written_orders.iter().any(|(w, _)| *w == k) {
            guards.push(("order", &k.1, snapshot.order_versions.get(k)));
        }
    }

    let settles: &[Settle<'_>] = &decided.settles;
    // Arrays in PL/pgSQL count from 1.
    let event_ordinal: HashMap<usize, i32> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.job, i as i32 + 1))
        .collect();
    // Every settled decision has its event in this group; a missing one is a
    // defect, and the group is decided again on the locked path.
    let settle_events = settles
        .iter()
        .map(|s| {
            event_ordinal
                .get(&s.0)
                .copied()
                .ok_or_else(|| sqlx::Error::Protocol("a decision without its event".to_owned()))
        })
        .collect::<Result<Vec<i32>, sqlx::Error>>()?;

    let query = sqlx::query_as(
        "SELECT freedompay_write_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, \
         $34, $35, $36, $37, $38)",
    )
    .bind(merchant)
    .bind(subjects);
    let query = bind_events(query, events, |job| &jobs[job].0.delivery);
    // payments, with the version each was read at (none: it was absent)
    let query = bind_payments(query, &written_payments)
        .bind(
            written_payments
                .iter()
                .map(|(k, _)| version_of_payment(k))
                .collect::<Vec<_>>(),
        )
        // orders (each was read, so each has a version)
        .bind(
            written_orders
                .iter()
                .map(|(k, _)| k.1.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            written_orders
                .iter()
                .map(|(_, o)| o.status.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            written_orders
                .iter()
                .map(|(_, o)| o.paid_payment_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            written_orders
                .iter()
                .map(|(k, _)| snapshot.order_versions.get(*k).cloned())
                .collect::<Vec<_>>(),
        )
        // rows decided on but not written
        .bind(guards.iter().map(|g| g.0).collect::<Vec<_>>())
        .bind(guards.iter().map(|g| g.1).collect::<Vec<_>>())
        .bind(guards.iter().map(|g| g.2.cloned()).collect::<Vec<_>>())
        // decisions, with the ordinal of their event
        .bind(
            settles
                .iter()
                .map(|s| s.1.kind.to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            settles
                .iter()
                .map(|s| s.1.subject_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            settles
                .iter()
                .map(|s| s.1.discriminator.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            settles
                .iter()
                .map(|s| s.2.as_str().to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(settles.iter().map(|s| s.3.clone()).collect::<Vec<_>>())
        .bind(settle_events)
        .bind(
            settles
                .iter()
                .map(|s| jobs[s.0].0.delivery.fingerprint.clone())
                .collect::<Vec<_>>(),
        );
    let (ids,): (Vec<i64>,) = query.fetch_one(&mut *connection).await?;
    Ok(ids)
}
