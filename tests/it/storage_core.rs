//! The store's pure core, tested directly: the subject rule (which rows and
//! keys a callback is about, and the lock it decides under) and the steps of
//! a group decided against an in-memory view of its rows. No database, no
//! timing: each test builds the rows a group would read and checks the
//! answers and exactly what the group would write.

use chrono::{TimeZone, Utc};
use freedompay_receiver::config::RulesSettings;
use freedompay_receiver::domain::{
    Callback, CallbackKind, Order, OrderStatus, Payment, PaymentStatus, Rules,
};
use freedompay_receiver::protocol::{Amount, Message, Status};
use freedompay_receiver::store::Delivery;
use freedompay_receiver::store::Processed;
use freedompay_receiver::store::callbacks::steps::{Decision, NO_EVENT, Snapshot, View, Work};
use freedompay_receiver::store::callbacks::subject::{Subject, Wanted};

use crate::support::MERCHANT;
use crate::support::freedompay::{self, Fields};

fn callback(kind: CallbackKind, fields: &Fields) -> Callback {
    let message = Message::from_pairs(fields.0.clone()).unwrap();
    Callback::parse(kind, MERCHANT, &message).unwrap()
}

/// A delivery whose fingerprint is `fingerprint` (the store compares them,
/// it does not compute them).
fn delivery(kind: CallbackKind, fields: &Fields, fingerprint: &str) -> Delivery {
    let object: serde_json::Map<_, _> = fields
        .0
        .iter()
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    Delivery {
        callback: callback(kind, fields),
        fields_json: serde_json::Value::Object(object).to_string(),
        signature_variant: "canonical",
        key_label: "current",
        fingerprint: Some(fingerprint.to_owned()),
        flag: None,
    }
}

fn rules_decide() -> Work {
    let rules = Rules::from_settings(&RulesSettings::default()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
    Work::Decide {
        rules: std::sync::Arc::new(rules),
        now,
    }
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

fn key(id: &str) -> (String, String) {
    (MERCHANT.to_owned(), id.to_owned())
}

fn order(id: &str, amount_text: &str) -> Order {
    Order {
        order_id: id.to_owned(),
        amount: amount(amount_text),
        currency: "KZT".to_owned(),
        status: OrderStatus::Pending,
        expires_at: None,
        paid_payment_id: None,
    }
}

/// A view holding the given orders, as a group's read would return them.
/// The id drawn for a group's first event in these tests.
const FIRST_EVENT_ID: i64 = 101;

/// Ids for a group's events, as the write path draws them before deciding.
fn event_ids() -> Vec<i64> {
    (FIRST_EVENT_ID..FIRST_EVENT_ID + 16).collect()
}

fn view_with_orders(orders: &[Order]) -> View {
    let mut snapshot = Snapshot::default();
    for o in orders {
        snapshot.orders.insert(key(&o.order_id), Ok(o.clone()));
    }
    View::new(snapshot, event_ids())
}

fn process(view: &mut View, kind: CallbackKind, fields: &Fields, fingerprint: &str) -> Processed {
    view.process(&delivery(kind, fields, fingerprint), &rules_decide())
        .unwrap()
}

#[test]
fn the_subject_of_each_kind_of_callback() {
    let result = Subject::of(&callback(
        CallbackKind::Result,
        &freedompay::result("O-1", "P-1", "100"),
    ));
    assert_eq!(result.payment_id.as_deref(), Some("P-1"));
    assert_eq!(result.order_id.as_deref(), Some("O-1"));
    assert_eq!(result.payout_order_id, None);
    assert_eq!(
        result.lock.as_deref(),
        Some(format!("{MERCHANT}/P-1").as_str())
    );
    let key = result.key.unwrap();
    assert_eq!((key.kind, key.subject_id.as_str()), ("result", "P-1"));

    // A check is decided afresh: no key, but the payment's lock.
    let check = Subject::of(&callback(
        CallbackKind::Check,
        &freedompay::check("O-1", "P-1", "100"),
    ));
    assert_eq!(check.key, None);
    assert_eq!(
        check.lock.as_deref(),
        Some(format!("{MERCHANT}/P-1").as_str())
    );

    // A refund names its payment; its order is the payment's.
    let refund = Subject::of(&callback(
        CallbackKind::Refund,
        &freedompay::refund("O-1", "P-1", "100"),
    ));
    assert_eq!(refund.payment_id.as_deref(), Some("P-1"));
    assert_eq!(
        refund.lock.as_deref(),
        Some(format!("{MERCHANT}/P-1").as_str())
    );

    // A payout is about its payout order, not a payment.
    let payout = Subject::of(&callback(
        CallbackKind::Payout,
        &freedompay::payout("PO-1", "P-9", "ok"),
    ));
    assert_eq!(payout.payment_id, None);
    assert_eq!(payout.payout_order_id.as_deref(), Some("PO-1"));
    assert_eq!(payout.key.unwrap().subject_id, "PO-1");

    // A redirect is counted under its key but waits for no lock.
    let facts = freedompay_receiver::simulate::fields::PaymentFacts {
        merchant_id: None,
        order_id: "O-1",
        payment_id: "P-1",
        amount: "100",
        currency: "KZT",
    };
    let redirect = Subject::of(&callback(CallbackKind::Success, &facts.redirect(false)));
    assert!(redirect.key.is_some());
    assert_eq!(redirect.lock, None);
}

#[test]
fn a_group_reads_each_row_and_takes_each_lock_once_in_sorted_order() {
    let callbacks = [
        callback(
            CallbackKind::Result,
            &freedompay::result("O-2", "P-2", "100"),
        ),
        callback(CallbackKind::Check, &freedompay::check("O-1", "P-1", "100")),
        callback(
            CallbackKind::Result,
            &freedompay::result("O-1", "P-1", "100"),
        ),
        callback(
            CallbackKind::Result,
            &freedompay::result("O-1", "P-1", "100"),
        ),
    ];
    let wanted = Wanted::of(callbacks.iter());
    assert_eq!(
        wanted.locks,
        vec![format!("{MERCHANT}/P-1"), format!("{MERCHANT}/P-2")]
    );
    let of = &wanted.merchants[MERCHANT];
    assert_eq!(of.payments, vec!["P-1", "P-2"]);
    assert_eq!(of.orders, vec!["O-1", "O-2"]);
    // The two results of P-1 share one key; the check has none.
    assert_eq!(of.keys.len(), 2);
}

#[test]
fn a_first_result_pays_its_order_and_writes_each_row_once() {
    let mut view = view_with_orders(&[order("O-1", "100")]);
    let outcome = process(
        &mut view,
        CallbackKind::Result,
        &freedompay::result("O-1", "P-1", "100"),
        "f1",
    );
    assert_eq!(outcome.status, Status::Ok);
    assert!(!outcome.duplicate);
    assert_eq!(outcome.event_id, FIRST_EVENT_ID);
    let changes = view.changes();
    assert_eq!(changes.events.len(), 1);
    assert_eq!(changes.payments.len(), 1);
    assert_eq!(changes.payments[0].status, "succeeded");
    assert_eq!(changes.payments[0].amount, "100");
    assert_eq!(changes.orders.len(), 1);
    assert_eq!(changes.orders[0].status, "paid");
    assert_eq!(changes.orders[0].paid_payment_id, Some("P-1"));
    assert_eq!(changes.decisions.len(), 1);
    let decision = &changes.decisions[0];
    assert_eq!(
        (decision.answer_status, decision.fingerprint),
        (Some("ok"), Some("f1"))
    );
    assert_eq!(decision.event_id, Some(FIRST_EVENT_ID));
}

#[test]
fn a_repeat_within_the_group_gets_the_first_answer_and_claims_nothing() {
    let mut view = view_with_orders(&[order("O-1", "100")]);
    let fields = freedompay::result("O-1", "P-1", "100");
    let first = process(&mut view, CallbackKind::Result, &fields, "f1");
    let repeat = process(&mut view, CallbackKind::Result, &fields, "f1");
    assert_eq!(repeat.status, first.status);
    assert!(repeat.duplicate);
    assert!(!repeat.conflict);
    let changes = view.changes();
    assert_eq!(changes.events.len(), 2);
    assert!(changes.events[1].duplicate);
    assert_eq!(changes.decisions.len(), 1, "one decision for the key");
}

#[test]
fn a_check_sees_what_an_earlier_callback_of_its_group_decided() {
    // The order is paid by P-1 first; a check of another payment of the
    // same order, later in the same group, must see it paid.
    let mut view = view_with_orders(&[order("O-1", "100")]);
    process(
        &mut view,
        CallbackKind::Result,
        &freedompay::result("O-1", "P-1", "100"),
        "f1",
    );
    let check = process(
        &mut view,
        CallbackKind::Check,
        &freedompay::check("O-1", "P-2", "100"),
        "c1",
    );
    assert_eq!(check.status, Status::Rejected);
    // A check claims no key.
    assert_eq!(view.changes().decisions.len(), 1);
}

#[test]
fn a_stored_key_with_other_content_is_a_conflict() {
    let fields = freedompay::result("O-1", "P-1", "100");
    let stored_key = callback(CallbackKind::Result, &fields)
        .idempotency_key()
        .unwrap();
    let mut snapshot = Snapshot::default();
    snapshot.orders.insert(key("O-1"), Ok(order("O-1", "100")));
    snapshot.decisions.insert(
        stored_key,
        Decision {
            answer: Some((Status::Ok, String::new())),
            fingerprint: Some("first".into()),
            first_fields: Some("{}".into()),
        },
    );
    let mut view = View::new(snapshot, event_ids());
    let same = process(&mut view, CallbackKind::Result, &fields, "first");
    assert!(same.duplicate && !same.conflict);
    let other = process(&mut view, CallbackKind::Result, &fields, "second");
    assert!(other.duplicate && other.conflict);
    let changes = view.changes();
    assert!(changes.events[1].conflict);
    assert!(changes.decisions.is_empty(), "the stored decision stays");
}

#[test]
fn a_refund_before_its_payment_is_deferred_and_leaves_its_key_free() {
    let mut view = view_with_orders(&[order("O-1", "100")]);
    let fields = freedompay::refund("O-1", "P-1", "100");
    let early = process(&mut view, CallbackKind::Refund, &fields, "r1");
    assert!(early.retry_later);
    assert_eq!(early.flag.as_deref(), Some("early_notice"));
    // The result arrives next in the same group; the refund, delivered
    // again, is now applied under its still free key.
    process(
        &mut view,
        CallbackKind::Result,
        &freedompay::result("O-1", "P-1", "100"),
        "f1",
    );
    let again = process(&mut view, CallbackKind::Refund, &fields, "r1");
    assert!(!again.retry_later && !again.duplicate);
    let changes = view.changes();
    assert_eq!(changes.events.len(), 3);
    assert_eq!(changes.decisions.len(), 2, "the result's and the refund's");
    assert_eq!(changes.payments.len(), 1, "the payment's final row, once");
    assert_eq!(changes.payments[0].refunded_amount, "100");
}

#[test]
fn redirects_are_recorded_once_and_their_repeats_counted() {
    let facts = freedompay_receiver::simulate::fields::PaymentFacts {
        merchant_id: None,
        order_id: "O-1",
        payment_id: "P-1",
        amount: "100",
        currency: "KZT",
    };
    let fields = facts.redirect(false);
    let mut view = View::new(Snapshot::default(), event_ids());
    let redirect = |view: &mut View| {
        view.process(
            &delivery(CallbackKind::Success, &fields, "s"),
            &Work::Redirect,
        )
        .unwrap()
    };
    let first = redirect(&mut view);
    let second = redirect(&mut view);
    let third = redirect(&mut view);
    assert_eq!(first.event_id, FIRST_EVENT_ID);
    assert!(!first.duplicate);
    assert!(second.duplicate && second.event_id == NO_EVENT);
    assert!(third.duplicate);
    let changes = view.changes();
    assert_eq!(changes.events.len(), 1);
    assert_eq!(changes.decisions.len(), 1);
    assert_eq!(changes.decisions[0].repeats, 2);
    assert!(changes.repeats.is_empty());

    // Stored before: only the count grows.
    let mut snapshot = Snapshot::default();
    let stored_key = callback(CallbackKind::Success, &fields)
        .redirect_key()
        .unwrap();
    snapshot.decisions.insert(
        stored_key,
        Decision {
            answer: Some((Status::Ok, String::new())),
            fingerprint: None,
            first_fields: None,
        },
    );
    let mut view = View::new(snapshot, event_ids());
    redirect(&mut view);
    let changes = view.changes();
    assert!(changes.events.is_empty() && changes.decisions.is_empty());
    assert_eq!(changes.repeats.len(), 1);
    assert_eq!(changes.repeats[0].repeats, 1);
}

#[test]
fn an_unreadable_order_row_is_answered_by_rule_and_flagged() {
    let mut snapshot = Snapshot::default();
    snapshot
        .orders
        .insert(key("O-1"), Err("amount \"7e3\": not a decimal".into()));
    let mut view = View::new(snapshot, event_ids());
    let outcome = process(
        &mut view,
        CallbackKind::Result,
        &freedompay::result("O-1", "P-1", "100"),
        "f1",
    );
    let flag = "bad_order_row: amount \"7e3\": not a decimal";
    assert_eq!(outcome.flag.as_deref(), Some(flag));
    assert_eq!(outcome.status, Status::Rejected);
    let changes = view.changes();
    assert!(changes.orders.is_empty(), "the damaged row is not written");
    assert_eq!(changes.events[0].flag.as_deref(), Some(flag));
}

#[test]
fn payments_already_known_are_read_from_the_view() {
    let mut snapshot = Snapshot::default();
    snapshot.orders.insert(key("O-1"), Ok(order("O-1", "100")));
    snapshot.payments.insert(
        key("P-1"),
        Payment {
            payment_id: "P-1".into(),
            order_id: "O-1".into(),
            amount: amount("100"),
            currency: "KZT".into(),
            status: PaymentStatus::Succeeded,
            captured: None,
            testing_mode: false,
            card_mask: None,
            failure_code: None,
            failure_description: None,
            needs_refund: false,
            refunded_amount: amount("0"),
        },
    );
    let mut view = View::new(snapshot, event_ids());
    // A refund without an order id finds its order through the payment.
    let outcome = process(
        &mut view,
        CallbackKind::Refund,
        &freedompay::refund("O-1", "P-1", "40").without("pg_order_id"),
        "r1",
    );
    assert_eq!(outcome.status, Status::Ok);
    assert!(!outcome.retry_later);
    let changes = view.changes();
    assert_eq!(changes.payments[0].refunded_amount, "40");
}
