//! The decisions of a group of callbacks, shared by the group paths of both
//! backends: every callback decided in arrival order against an in-memory
//! view of the rows, which each decision updates for the next, so that two
//! callbacks about one order or payment in one group see each other's
//! changes. Pure: the callers read the rows before and write the result after.
//!
//! A group takes only fresh first deliveries with plain outcomes: when one
//! callback of it repeats a stored key, or its plan flags, schedules or
//! defers, the group is not decided here at all and every callback of it
//! takes the per-callback steps (`process_steps`), which alone handle
//! repeats, conflicts, flags and status queries. So there is one
//! implementation of those, whatever the path.

use std::collections::{HashMap, HashSet};

use super::group_commit::Job;
use crate::domain::{CallbackKind, CurrentState, IdempotencyKey, Order, Payment, Plan};
use crate::protocol::Status;
use crate::store::Processed;

/// (merchant, id): the key of a payment or an order.
pub(crate) type Key = (String, String);

/// A pending event row; its id is assigned when it is written.
pub(crate) struct NewEvent {
    pub job: usize,
    pub answer: Option<(Status, String)>,
    pub duplicate: bool,
}

/// A decided callback: its index in the group, its key and its answer.
pub(crate) type Settle<'a> = (usize, &'a IdempotencyKey, Status, String);

/// The callbacks of a group that a group path decides together, by index and
/// with their keys: those with an idempotency key, each key once (a repeat
/// within the group must see its first decision, so it goes after), payouts
/// excepted (group decisions cover payments and orders). The others take the
/// per-callback steps.
pub(crate) fn groupable(jobs: &[Job]) -> Vec<(usize, IdempotencyKey)> {
    let mut seen = HashSet::new();
    jobs.iter()
        .enumerate()
        .filter(|(_, job)| job.delivery.callback.kind != CallbackKind::Payout)
        .filter_map(|(index, job)| Some((index, job.delivery.callback.idempotency_key()?)))
        .filter(|(_, key)| seen.insert(key.clone()))
        .collect()
}

/// What a group decided: its events in job order, the rows it changed, and
/// the answers to store under the keys it claimed.
pub(crate) struct Decided<'a> {
    pub events: Vec<NewEvent>,
    pub touched_payments: Vec<Key>,
    pub touched_orders: Vec<Key>,
    pub settles: Vec<Settle<'a>>,
}

/// Decides every callback of the group in arrival order against the group's
/// view of the rows (`payments`, `orders`), which each decision updates for
/// the next. `None` (and the views are then to be dropped) when a callback's
/// key has an answer in `stored` (a repeat) or its plan needs the
/// per-callback steps ([`Plan::needs_single_path`]).
pub(crate) fn decide_group<'a>(
    jobs: &[(&'a Job, &'a IdempotencyKey)],
    stored: &HashMap<IdempotencyKey, (Status, String)>,
    payments: &mut HashMap<Key, Payment>,
    orders: &mut HashMap<Key, Order>,
) -> Option<Decided<'a>> {
    // Decide in arrival order against the group's view of the rows.
    let mut events = Vec::with_capacity(jobs.len());
    let mut touched_payments = Vec::new();
    let mut touched_orders = Vec::new();
    let mut settles = Vec::new();
    for (index, (job, key)) in jobs.iter().copied().enumerate() {
        let callback = &job.delivery.callback;
        let merchant = &callback.merchant_id;
        if stored.contains_key(key) {
            return None;
        }
        let payment_key = callback
            .payment_id
            .as_ref()
            .map(|id| (merchant.clone(), id.clone()));
        let payment = payment_key.as_ref().and_then(|k| payments.get(k)).cloned();
        let order_key = callback
            .order_id
            .clone()
            .or_else(|| payment.as_ref().map(|p| p.order_id.clone()))
            .map(|id| (merchant.clone(), id));
        let order = order_key.as_ref().and_then(|k| orders.get(k)).cloned();
        let state = CurrentState {
            order,
            payment,
            payout: None,
            order_defect: None,
        };
        let plan: Plan = (job.decide)(callback, &state);
        if plan.needs_single_path() {
            return None;
        }
        if let Some(payment) = plan.payment {
            let k = (merchant.clone(), payment.payment_id.clone());
            touched_payments.push(k.clone());
            payments.insert(k, payment);
        }
        if let Some(update) = plan.order {
            let k = (merchant.clone(), update.order_id.clone());
            if let Some(order) = orders.get_mut(&k) {
                order.status = update.status;
                order.paid_payment_id = update.paid_payment_id;
                touched_orders.push(k);
            }
        }
        settles.push((index, key, plan.status, plan.description.clone()));
        events.push(NewEvent {
            job: index,
            answer: Some((plan.status, plan.description)),
            duplicate: false,
        });
    }
    Some(Decided {
        events,
        touched_payments,
        touched_orders,
        settles,
    })
}

/// The group's final row for each key it touched, in key order.
pub(crate) fn final_rows<'a, T>(
    touched: &'a [Key],
    rows: &'a HashMap<Key, T>,
) -> Vec<(&'a Key, &'a T)> {
    let mut keys: Vec<&Key> = touched.iter().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| rows.get(k).map(|row| (k, row)))
        .collect()
}

/// The callers' results: each event's answer and id, in job order.
pub(crate) fn processed(events: Vec<NewEvent>, ids: Vec<i64>) -> Vec<Processed> {
    events
        .into_iter()
        .zip(ids)
        .map(|(event, id)| {
            let (status, description) = event.answer.unwrap_or((Status::Ok, String::new()));
            Processed {
                duplicate: event.duplicate,
                ..Processed::new(status, description, id)
            }
        })
        .collect()
}
