//! The steps of each callback, pure: a group's rows as read ([`Snapshot`])
//! become a [`View`], each callback of the group is decided against the view
//! in arrival order ([`View::process`]), and every decision updates the view
//! for the next, so that two callbacks about one payment or order in one
//! group see each other. What the group changed comes out as [`Changes`],
//! which the caller writes and commits before any answer leaves.
//!
//! This is the only implementation of claims, repeats, conflicts, flags and
//! status queries; the database is read before and written after, nothing
//! here waits on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::subject::Subject;
use crate::domain::callback::differing_fields;
use crate::domain::rules::Rules;
use crate::domain::state::{self, repeat_confirmation};
use crate::domain::task::confirm_task;
use crate::domain::{
    Callback, Confirm, CurrentState, Detail, IdempotencyKey, Order, Payment, Payout, Plan,
};
use crate::protocol::Status;
use crate::store::tables::callback_decisions::DecisionWrite;
use crate::store::tables::events::NewEvent;
use crate::store::tables::orders::OrderStatusRow;
use crate::store::tables::outbound_tasks::ConfirmRow;
use crate::store::tables::payments::PaymentRow;
use crate::store::tables::payouts::PayoutRow;
use crate::store::tables::webhook_deliveries::NewDelivery;
use crate::store::tables::webhook_messages::NewMessage;
use crate::store::{Delivery, Processed, StoreError};
use crate::untrusted::Untrusted;
use crate::webhooks::Endpoint;
use crate::webhooks::message::{Change, Flag, messages, new_message_id};

/// What a callback is decided by: the order rules and the moment of its
/// arrival.
struct By<'a> {
    rules: &'a Rules,
    now: DateTime<Utc>,
}

/// (merchant, id): the key of a payment, an order or a payout.
pub type Key = (String, String);

/// What a queued callback asks of the store.
pub enum Work {
    /// Decide it by `rules` as of `now` (`domain::state::decide`), and
    /// record it.
    Decide {
        rules: Arc<Rules>,
        now: DateTime<Utc>,
    },
    /// Record it without deciding (a delivery that could not be parsed).
    Record,
    /// Record a redirect back once per key; count its repeats.
    Redirect,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Work::Decide { .. } => "Decide",
            Work::Record => "Record",
            Work::Redirect => "Redirect",
        })
    }
}

/// A stored decision, or one made by this group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `None` only for a claim not yet settled (in the middle of its step).
    pub answer: Option<(Status, String)>,
    pub fingerprint: Option<String>,
    /// The first delivery's `events.fields`, as JSON text.
    pub first_fields: Option<String>,
}

/// The rows a group reads, converted.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub decisions: HashMap<IdempotencyKey, Decision>,
    pub payments: HashMap<Key, Payment>,
    /// An order row that cannot be read holds why (see `tables::orders::order_defect`).
    pub orders: HashMap<Key, Result<Order, String>>,
    pub payouts: HashMap<Key, Payout>,
    /// Payment and payout rows that cannot be read, by (merchant, payment
    /// id) and (merchant, payout order id): why.
    pub damaged_payments: HashMap<Key, String>,
    pub damaged_payouts: HashMap<Key, String>,
}

/// A group's rows as its callbacks see them, and what they changed.
#[derive(Debug)]
pub struct View {
    rows: Snapshot,
    /// Keys first claimed by this group, in claim order.
    claimed: Vec<IdempotencyKey>,
    /// Redirect repeats counted by this group, by key.
    repeats: HashMap<IdempotencyKey, i32>,
    /// The ids drawn for the group's events, not yet used.
    event_ids: std::vec::IntoIter<i64>,
    events: Vec<NewEvent>,
    /// For each claimed key, the id of its event.
    event_of: HashMap<IdempotencyKey, i64>,
    payments: BTreeMap<Key, ()>,
    orders: BTreeMap<Key, ()>,
    payouts: BTreeMap<Key, ()>,
    confirms: BTreeMap<(String, &'static str, String), u64>,
    /// The endpoints told of changes (`[[webhooks]]`); none: no outbox rows.
    endpoints: Arc<[Endpoint]>,
    messages: Vec<NewMessage>,
    deliveries: Vec<NewDelivery>,
}

/// Everything a group writes: events first (the rows written about them name
/// their ids), then the rows.
#[derive(Debug)]
pub struct Changes<'v> {
    pub events: &'v [NewEvent],
    pub payments: Vec<PaymentRow>,
    pub orders: Vec<OrderStatusRow<'v>>,
    pub payouts: Vec<PayoutRow>,
    /// New decisions, each naming its event.
    pub decisions: Vec<DecisionWrite<'v>>,
    /// More repeats of stored redirects (`answer_status` is `None`).
    pub repeats: Vec<DecisionWrite<'v>>,
    pub confirms: Vec<ConfirmRow>,
    /// The outbox: messages about what changed, and their deliveries.
    pub messages: &'v [NewMessage],
    pub deliveries: &'v [NewDelivery],
}

/// The event id of an answer that recorded no event (a counted redirect
/// repeat).
pub const NO_EVENT: i64 = 0;

/// How an event is marked besides its answer.
#[derive(Clone, Copy, Debug, Default)]
struct Mark<'a> {
    duplicate: bool,
    conflict: bool,
    flag: Option<&'a str>,
}

impl View {
    /// The view of `rows`, whose callbacks' events take their ids from
    /// `event_ids` (one for each callback, drawn before deciding).
    pub fn new(rows: Snapshot, event_ids: Vec<i64>) -> View {
        View {
            rows,
            event_ids: event_ids.into_iter(),
            claimed: Vec::new(),
            repeats: HashMap::new(),
            events: Vec::new(),
            event_of: HashMap::new(),
            payments: BTreeMap::new(),
            orders: BTreeMap::new(),
            payouts: BTreeMap::new(),
            confirms: BTreeMap::new(),
            endpoints: Arc::from([]),
            messages: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    /// The view that also writes the outbox: a message for each change its
    /// callbacks make (`webhooks::messages`), delivered to each of
    /// `endpoints` that wants it.
    pub fn announcing_to(mut self, endpoints: Arc<[Endpoint]>) -> View {
        self.endpoints = endpoints;
        self
    }

    /// Decides (or records) one callback against the view and updates it.
    pub fn process(&mut self, delivery: &Delivery, work: &Work) -> Result<Processed, StoreError> {
        // The rows before, only when an outbox is written (a clone each).
        let before = (!self.endpoints.is_empty()).then(|| self.subject_rows(&delivery.callback));
        let processed = match work {
            Work::Decide { rules, now } => self.decide(delivery, &By { rules, now: *now })?,
            Work::Record => {
                let mark = Mark {
                    flag: delivery.flag.as_deref(),
                    ..Mark::default()
                };
                let event = self.record(delivery, None, mark)?;
                Processed::new(Status::Ok, String::new(), event)
            }
            Work::Redirect => self.redirect(delivery)?,
        };
        if let Some(before) = before
            && processed.event_id != NO_EVENT
        {
            let at = match work {
                Work::Decide { now, .. } => *now,
                _ => Utc::now(),
            };
            self.announce(&delivery.callback, before, &processed, at);
        }
        Ok(processed)
    }

    /// The stored payment and payout a callback is about, as they are now.
    fn subject_rows(&self, callback: &Callback) -> (Option<Payment>, Option<Payout>) {
        let subject = Subject::of(callback);
        let key = |id: &Option<String>| {
            id.as_ref()
                .map(|id| (callback.merchant_id.clone(), id.clone()))
        };
        (
            key(&subject.payment_id).and_then(|k| self.rows.payments.get(&k).cloned()),
            key(&subject.payout_order_id).and_then(|k| self.rows.payouts.get(&k).cloned()),
        )
    }

    /// Writes the outbox rows of what one callback changed: its messages
    /// (in the order `webhooks::messages` gives), each with a delivery to
    /// every endpoint that wants it; a message nobody wants is not written.
    fn announce(
        &mut self,
        callback: &Callback,
        (payment_before, payout_before): (Option<Payment>, Option<Payout>),
        processed: &Processed,
        at: DateTime<Utc>,
    ) {
        let (payment, payout) = self.subject_rows(callback);
        let flag = (processed.flag.is_some() || processed.conflict).then(|| Flag {
            event_kind: callback.event_kind().to_owned(),
            flag: processed.flag.clone(),
            conflict: processed.conflict,
            order_id: callback.order_id.clone(),
            payment_id: callback.payment_id.clone(),
        });
        let change = Change {
            merchant_id: &callback.merchant_id,
            event_id: processed.event_id,
            at,
            payment: payment
                .as_ref()
                .map(|after| (payment_before.as_ref(), after)),
            payout: payout.as_ref().map(|after| (payout_before.as_ref(), after)),
            flag,
        };
        for (position, message) in messages(&change).into_iter().enumerate() {
            let wanting: Vec<&Endpoint> = self
                .endpoints
                .iter()
                .filter(|e| e.wants(message.message_type(), &callback.merchant_id))
                .collect();
            if wanting.is_empty() {
                continue;
            }
            let id = new_message_id();
            let ordering_key = message.ordering_key();
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            for endpoint in wanting {
                self.deliveries.push(NewDelivery {
                    message_id: id.clone(),
                    endpoint: endpoint.name.clone(),
                    ordering_key: ordering_key.clone(),
                    event_id: processed.event_id,
                    position,
                });
            }
            self.messages.push(NewMessage {
                id,
                merchant_id: callback.merchant_id.clone(),
                message_type: message.message_type().as_str(),
                event_id: processed.event_id,
                ordering_key,
                position,
                body: message.body(),
            });
        }
    }

    /// The steps of one callback:
    ///
    /// - A check claims nothing: it is decided against the state of now, on
    ///   every delivery, and recorded with the answer sent.
    /// - A new key: decided, recorded, its answer stored under the key.
    /// - A repeat with the same content (or a claim without a fingerprint):
    ///   the stored answer, recorded as a duplicate.
    /// - A repeat with different content, a **conflict**: recorded with
    ///   `conflict = true`, the differing fields named in a warning. A result
    ///   is decided again against the current state (decisions only move
    ///   forward, so nothing decided moves back, and a rejection FreedomPay
    ///   completed anyway is taken as paid); every other kind gets the
    ///   stored answer.
    /// - A repeat of a rejected result with `pg_can_reject=0` (the
    ///   fingerprint leaves that field out): decided again like a conflict,
    ///   but not marked nor counted as one.
    /// - A repeated refund without a refund id, and any refund or payout
    ///   conflict, schedules a status query whose signed answer settles it.
    fn decide(&mut self, delivery: &Delivery, decide: &By<'_>) -> Result<Processed, StoreError> {
        let callback = &delivery.callback;
        if let Detail::Check(_) = &callback.detail {
            return self.decide_and_record(delivery, decide, None, Mark::default());
        }
        let Some(key) = callback.idempotency_key() else {
            let mark = Mark {
                flag: delivery.flag.as_deref(),
                ..Mark::default()
            };
            let event = self.record(delivery, None, mark)?;
            return Ok(Processed {
                flag: delivery.flag.clone(),
                ..Processed::new(Status::Ok, String::new(), event)
            });
        };
        let Some(stored) = self.rows.decisions.get(&key).cloned() else {
            self.rows.decisions.insert(
                key.clone(),
                Decision {
                    answer: None,
                    fingerprint: delivery.fingerprint.clone(),
                    first_fields: Some(delivery.fields_json.clone()),
                },
            );
            self.claimed.push(key.clone());
            return self.decide_and_record(delivery, decide, Some(&key), Mark::default());
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
                subject = %Untrusted(&key.subject_id),
                differing_fields = %Untrusted(&fields.join(",")),
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
        // A claim is settled in the transaction that makes it, so a stored
        // key without an answer is damaged data, not a decision.
        let (status, description) = stored
            .answer
            .clone()
            .ok_or_else(|| StoreError::Corrupt(format!("the decision of {key:?} has no answer")))?;
        // A result we rejected, retried with `pg_can_reject=0` (routine for
        // FreedomPay, outside the fingerprint): decided again, not a conflict.
        let flipped = matches!(&callback.detail, Detail::Result(result) if !result.can_reject)
            && status == Status::Rejected;
        if (conflict || flipped) && matches!(callback.detail, Detail::Result(_)) {
            return self.decide_and_record(delivery, decide, None, mark);
        }
        let event = self.record(delivery, Some((status, &description)), mark)?;
        if let Some(confirm) = repeat_confirmation(callback, conflict) {
            self.schedule(&callback.merchant_id, &confirm);
        }
        Ok(Processed {
            duplicate: true,
            conflict,
            ..Processed::new(status, description, event)
        })
    }

    /// Reads the state, decides, applies the plan, records the event, and
    /// settles the answer under `key` (a claim of this step) when there is
    /// one to store.
    fn decide_and_record(
        &mut self,
        delivery: &Delivery,
        decide: &By<'_>,
        key: Option<&IdempotencyKey>,
        mark: Mark<'_>,
    ) -> Result<Processed, StoreError> {
        let callback = &delivery.callback;
        let plan = state::decide(callback, &self.state_of(callback), decide.rules, decide.now);
        let flag = delivery.flag.clone().or_else(|| plan.flag.clone());
        let mark = Mark {
            flag: flag.as_deref(),
            ..mark
        };
        if plan.retry_later {
            // Nothing decided: the key stays free for the next delivery.
            if let Some(key) = key {
                self.rows.decisions.remove(key);
                self.claimed.retain(|k| k != key);
            }
        } else {
            self.apply(&callback.merchant_id, &plan);
        }
        let event = self.record(delivery, Some((plan.status, &plan.description)), mark)?;
        if let Some(key) = key
            && !plan.retry_later
        {
            if let Some(decision) = self.rows.decisions.get_mut(key) {
                decision.answer = Some((plan.status, plan.description.clone()));
            }
            self.event_of.insert(key.clone(), event);
        }
        if let Some(confirm) = &plan.confirm {
            self.schedule(&callback.merchant_id, confirm);
        }
        Ok(Processed {
            duplicate: mark.duplicate,
            conflict: mark.conflict,
            flag,
            retry_later: plan.retry_later,
            ..Processed::new(plan.status, plan.description, event)
        })
    }

    /// A redirect back: recorded the first time per key, counted after.
    fn redirect(&mut self, delivery: &Delivery) -> Result<Processed, StoreError> {
        let first = |view: &mut View| -> Result<Processed, StoreError> {
            let event = view.record(delivery, None, Mark::default())?;
            Ok(Processed::new(Status::Ok, String::new(), event))
        };
        // Neither payment nor order named: nothing to count it under.
        let Some(key) = delivery.callback.redirect_key() else {
            return first(self);
        };
        if self.rows.decisions.contains_key(&key) {
            *self.repeats.entry(key).or_default() += 1;
            // Counted, not recorded: no event of its own.
            return Ok(Processed {
                duplicate: true,
                ..Processed::new(Status::Ok, String::new(), NO_EVENT)
            });
        }
        let outcome = first(self)?;
        self.rows.decisions.insert(
            key.clone(),
            Decision {
                answer: Some((Status::Ok, String::new())),
                fingerprint: delivery.fingerprint.clone(),
                first_fields: Some(delivery.fields_json.clone()),
            },
        );
        self.claimed.push(key.clone());
        self.event_of.insert(key, outcome.event_id);
        Ok(outcome)
    }

    /// The rows the callback is about, as the group sees them now.
    fn state_of(&self, callback: &Callback) -> CurrentState {
        let subject = Subject::of(callback);
        let key = |id: &str| (callback.merchant_id.clone(), id.to_owned());
        let payment = subject
            .payment_id
            .as_deref()
            .and_then(|id| self.rows.payments.get(&key(id)))
            .cloned();
        let order_id = subject
            .order_id
            .or_else(|| payment.as_ref().map(|p| p.order_id.clone()));
        let (order, order_defect) = match order_id.and_then(|id| self.rows.orders.get(&key(&id))) {
            Some(Ok(order)) => (Some(order.clone()), None),
            Some(Err(why)) => (None, Some(why.clone())),
            None => (None, None),
        };
        let row_defect = subject
            .payment_id
            .as_deref()
            .and_then(|id| self.rows.damaged_payments.get(&key(id)))
            .map(|why| format!("payment: {why}"))
            .or_else(|| {
                let id = subject.payout_order_id.as_deref()?;
                let why = self.rows.damaged_payouts.get(&key(id))?;
                Some(format!("payout: {why}"))
            });
        CurrentState {
            order,
            payment,
            payout: subject
                .payout_order_id
                .and_then(|id| self.rows.payouts.get(&key(&id)))
                .cloned(),
            order_defect,
            row_defect,
        }
    }

    fn apply(&mut self, merchant_id: &str, plan: &Plan) {
        let key = |id: &str| (merchant_id.to_owned(), id.to_owned());
        if let Some(payment) = &plan.payment {
            let k = key(&payment.payment_id);
            self.rows.payments.insert(k.clone(), payment.clone());
            self.payments.insert(k, ());
        }
        if let Some(update) = &plan.order {
            let k = key(&update.order_id);
            if let Some(Ok(order)) = self.rows.orders.get_mut(&k) {
                order.status = update.status;
                order.paid_payment_id = update.paid_payment_id.clone();
                self.orders.insert(k, ());
            }
        }
        if let Some(payout) = &plan.payout {
            let k = key(&payout.order_id);
            self.rows.payouts.insert(k.clone(), payout.clone());
            self.payouts.insert(k, ());
        }
    }

    /// Appends the delivery's event; returns its id.
    fn record(
        &mut self,
        delivery: &Delivery,
        answer: Option<(Status, &str)>,
        mark: Mark<'_>,
    ) -> Result<i64, StoreError> {
        let callback = &delivery.callback;
        let fields = RawValue::from_string(delivery.fields_json.clone())
            .map_err(|e| StoreError::Corrupt(format!("the fields of a delivery: {e}")))?;
        let id = self
            .event_ids
            .next()
            .ok_or_else(|| StoreError::Corrupt("more events than ids drawn for them".into()))?;
        self.events.push(NewEvent {
            id,
            merchant_id: callback.merchant_id.clone(),
            kind: callback.event_kind(),
            order_id: callback.order_id.clone(),
            payment_id: callback.payment_id.clone(),
            fields,
            answer_status: answer.map(|(s, _)| s.as_str()),
            answer_description: answer.map(|(_, d)| d.to_owned()),
            duplicate: mark.duplicate,
            signature_variant: delivery.signature_variant,
            key_label: delivery.key_label,
            conflict: mark.conflict,
            // A flag may quote a field's value (an unparseable one): card
            // numbers masked.
            flag: mark
                .flag
                .map(|flag| crate::domain::pan::mask_card_numbers(flag).into_owned()),
        });
        Ok(id)
    }

    /// A status query, unless one is asked for already (the earliest wins).
    fn schedule(&mut self, merchant_id: &str, confirm: &Confirm) {
        let (task, subject) = confirm_task(confirm);
        let due = self
            .confirms
            .entry((merchant_id.to_owned(), task.as_str(), subject.to_owned()))
            .or_insert(confirm.due_in_secs);
        *due = (*due).min(confirm.due_in_secs);
    }

    /// What the group changed, final rows only, each once.
    pub fn changes(&self) -> Changes<'_> {
        let decisions = self
            .claimed
            .iter()
            .filter_map(|key| {
                let decision = self.rows.decisions.get(key)?;
                let (status, description) = decision.answer.as_ref()?;
                Some(DecisionWrite {
                    answer_status: Some(status.as_str()),
                    answer_description: Some(description),
                    fingerprint: decision.fingerprint.as_deref(),
                    event_id: Some(*self.event_of.get(key)?),
                    repeats: self.repeats.get(key).copied().unwrap_or(0),
                    ..DecisionWrite::key(key)
                })
            })
            .collect();
        let repeats = self
            .repeats
            .iter()
            .filter(|(key, _)| !self.claimed.contains(key))
            .map(|(key, repeats)| DecisionWrite {
                repeats: *repeats,
                ..DecisionWrite::key(key)
            })
            .collect();
        Changes {
            events: &self.events,
            payments: self
                .payments
                .keys()
                .filter_map(|k| Some(PaymentRow::of(&k.0, self.rows.payments.get(k)?)))
                .collect(),
            orders: self
                .orders
                .keys()
                .filter_map(|k| match self.rows.orders.get(k)? {
                    Ok(order) => Some(OrderStatusRow::of(&k.0, order)),
                    Err(_) => None,
                })
                .collect(),
            payouts: self
                .payouts
                .keys()
                .filter_map(|k| Some(PayoutRow::of(&k.0, self.rows.payouts.get(k)?)))
                .collect(),
            decisions,
            repeats,
            confirms: self
                .confirms
                .iter()
                .map(|((merchant_id, task, subject_id), due)| ConfirmRow {
                    merchant_id: merchant_id.clone(),
                    task,
                    subject_id: subject_id.clone(),
                    due_in_secs: i64::try_from(*due).unwrap_or(i64::MAX),
                })
                .collect(),
            messages: &self.messages,
            deliveries: &self.deliveries,
        }
    }
}

impl<'a> DecisionWrite<'a> {
    /// A write of `key` with nothing else set.
    fn key(key: &'a IdempotencyKey) -> Self {
        DecisionWrite {
            merchant_id: &key.merchant_id,
            kind: key.kind,
            subject_id: &key.subject_id,
            discriminator: &key.discriminator,
            fingerprint: None,
            answer_status: None,
            answer_description: None,
            event_id: None,
            repeats: 0,
        }
    }
}
