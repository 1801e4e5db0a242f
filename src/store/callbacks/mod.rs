//! The backend-neutral core of recording and deciding callbacks: the steps of
//! one callback inside an open transaction ([`process_steps`]), written once
//! over [`CallbackTx`], whose SQL each backend supplies; the group-commit
//! queue and writer tasks ([`group_commit`]); and the pure decision of a group
//! of callbacks ([`group_decide`]) that the backends' group paths share.
//! Depends on the store's public types and on the domain, never on a backend.

pub(crate) mod group_commit;
pub(crate) mod group_decide;

use std::future::Future;

use super::{Decide, Delivery, Processed, RedirectRecord, StoreError, rows};
use crate::domain::callback::differing_fields;
use crate::domain::state::repeat_confirmation;
use crate::domain::{Callback, CallbackKind, Confirm, CurrentState, Detail, IdempotencyKey, Plan};
use crate::protocol::Status;

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

pub(crate) async fn record_in<T: CallbackTx>(
    mut tx: T,
    delivery: &Delivery,
) -> Result<i64, StoreError> {
    let mark = Mark {
        flag: delivery.flag.as_deref(),
        ..Mark::default()
    };
    let event_id = tx.insert_event(delivery, None, mark).await?;
    tx.commit().await?;
    Ok(event_id)
}

pub(crate) async fn redirect_in<T: CallbackTx>(
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
