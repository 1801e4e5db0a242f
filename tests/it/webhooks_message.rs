//! Message bodies (every type; money as strings; card masks only) and the
//! table of which messages a change of a payment or payout makes.

use chrono::{DateTime, TimeZone, Utc};
use freedompay_receiver::domain::{Payment, PaymentStatus, Payout, PayoutStatus};
use freedompay_receiver::webhooks::{
    Change, Flag, MessageInput, MessageType, What, messages, new_message_id,
};
use serde_json::{Value, json};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

fn payment(status: PaymentStatus) -> Payment {
    Payment {
        payment_id: "987654".into(),
        order_id: "order-1".into(),
        amount: "7000.5".parse().unwrap(),
        currency: "KZT".into(),
        status,
        captured: None,
        testing_mode: false,
        card_mask: Some("4405-63XX-XXXX-1234".into()),
        failure_code: None,
        failure_description: None,
        needs_refund: false,
        refunded_amount: Default::default(),
    }
}

fn payout(status: PayoutStatus) -> Payout {
    Payout {
        order_id: "payout-1".into(),
        payment_id: Some("555".into()),
        status,
        amount: Some("1500".parse().unwrap()),
        card_mask: Some("5483-18XX-XXXX-0293".into()),
    }
}

fn change<'a>(
    payment: Option<(Option<&'a Payment>, &'a Payment)>,
    payout: Option<(Option<&'a Payout>, &'a Payout)>,
) -> Change<'a> {
    Change {
        merchant_id: "545774",
        event_id: 42,
        at: at(),
        payment,
        payout,
        flag: None,
    }
}

fn types(found: &[MessageInput]) -> Vec<&'static str> {
    found.iter().map(|m| m.message_type().as_str()).collect()
}

fn body(message: &MessageInput) -> Value {
    serde_json::from_str(&message.body()).unwrap()
}

#[test]
fn webhooks_message_types_have_their_names() {
    let names: Vec<&str> = MessageType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "payment.succeeded",
            "payment.failed",
            "payment.rejected",
            "payment.refunded",
            "payment.captured",
            "payout.succeeded",
            "payout.failed",
            "event.flagged"
        ]
    );
    for t in MessageType::ALL {
        assert_eq!(MessageType::parse(t.as_str()), Some(t));
    }
    assert_eq!(MessageType::parse("payment.paid"), None);
    assert_eq!(MessageType::parse("PAYMENT.SUCCEEDED"), None);
}

#[test]
fn webhooks_message_succeeded_body_has_money_as_strings_and_needs_refund() {
    let mut after = payment(PaymentStatus::Succeeded);
    after.needs_refund = true;
    after.captured = Some(true);
    let found = messages(&change(Some((None, &after)), None));
    assert_eq!(types(&found), ["payment.succeeded"]);
    let text = found[0].body();
    // Keys in a fixed order, type first.
    assert!(
        text.starts_with(r#"{"type":"payment.succeeded","timestamp":"2026-12-01T10:00:00.000Z","data":{"merchant_id":"545774","order_id":"order-1","payment_id":"987654","amount":"7000.50","currency":"KZT""#),
        "{text}"
    );
    assert_eq!(
        body(&found[0]),
        json!({
            "type": "payment.succeeded",
            "timestamp": "2026-12-01T10:00:00.000Z",
            "data": {
                "merchant_id": "545774",
                "order_id": "order-1",
                "payment_id": "987654",
                "amount": "7000.50",
                "currency": "KZT",
                "status": "succeeded",
                "event_id": 42,
                "testing_mode": false,
                "card_mask": "4405-63XX-XXXX-1234",
                "needs_refund": true,
                "captured": true
            }
        })
    );
}

/// Every number in a body, anywhere: only `event_id` may be one.
fn numbers(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Number(_) => found.push(path.to_owned()),
        Value::Object(fields) => {
            for (key, value) in fields {
                numbers(value, key, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| numbers(v, path, found)),
        _ => {}
    }
}

#[test]
fn webhooks_message_every_type_has_its_body_without_floats_or_card_numbers() {
    let mut failed = payment(PaymentStatus::Failed);
    failed.failure_code = Some("1000".into());
    failed.failure_description = Some("Insufficient funds".into());
    // A full card number where a mask belongs is masked before it is sent.
    failed.card_mask = Some("4405639704015096".into());
    let mut refunded = payment(PaymentStatus::Succeeded);
    refunded.refunded_amount = "1000.25".parse().unwrap();
    let succeeded = payment(PaymentStatus::Succeeded);
    let mut captured = succeeded.clone();
    captured.captured = Some(true);
    let pending = payment(PaymentStatus::Pending);
    let rejected = payment(PaymentStatus::Rejected);
    let success = payout(PayoutStatus::Success);
    let error = payout(PayoutStatus::Error);
    let process = payout(PayoutStatus::Process);
    let mut flagged = change(Some((Some(&succeeded), &succeeded)), None);
    flagged.flag = Some(Flag {
        event_kind: "refund".into(),
        flag: Some("over_refund: 8000 refunded of 7000.5".into()),
        conflict: false,
        order_id: None,
        payment_id: None,
    });
    let cases = [
        (
            messages(&change(Some((None, &failed)), None)),
            json!({"failure_code": "1000", "failure_description": "Insufficient funds", "status": "failed", "card_mask": "440563XXXXXX5096"}),
        ),
        (
            messages(&change(Some((Some(&pending), &rejected)), None)),
            json!({"status": "rejected", "amount": "7000.50"}),
        ),
        (
            messages(&change(Some((Some(&succeeded), &refunded)), None)),
            json!({"refund_amount": "1000.25", "refunded_total": "1000.25", "amount": "7000.50"}),
        ),
        (
            messages(&change(Some((Some(&succeeded), &captured)), None)),
            json!({"status": "succeeded"}),
        ),
        (
            messages(&change(None, Some((Some(&process), &success)))),
            json!({"order_id": "payout-1", "payment_id": "555", "amount": "1500.00", "currency": null, "status": "success", "card_mask": "5483-18XX-XXXX-0293"}),
        ),
        (
            messages(&change(None, Some((Some(&process), &error)))),
            json!({"status": "error"}),
        ),
        (
            messages(&flagged),
            json!({"event_kind": "refund", "flag": "over_refund: 8000 refunded of 7000.5", "conflict": false, "payment_id": "987654"}),
        ),
    ];
    let mut seen = vec!["payment.succeeded"];
    for (found, expected) in cases {
        assert_eq!(found.len(), 1, "{found:?}");
        let value = body(&found[0]);
        seen.push(found[0].message_type().as_str());
        assert_eq!(value["type"], found[0].message_type().as_str());
        let data = &value["data"];
        for key in [
            "merchant_id",
            "order_id",
            "payment_id",
            "amount",
            "currency",
            "status",
            "event_id",
        ] {
            assert!(data.get(key).is_some(), "{key} missing in {value}");
        }
        for (key, want) in expected.as_object().unwrap() {
            assert_eq!(&data[key], want, "{key} in {value}");
        }
        let mut found_numbers = Vec::new();
        numbers(&value, "", &mut found_numbers);
        assert_eq!(found_numbers, ["event_id"], "{value}");
        assert!(!found[0].body().contains("4405639704015096"));
    }
    seen.sort_unstable();
    let mut all: Vec<&str> = MessageType::ALL.iter().map(|t| t.as_str()).collect();
    all.sort_unstable();
    assert_eq!(seen, all, "every type has a body checked");
}

#[test]
fn webhooks_message_payment_changes_make_these_messages() {
    let p = payment;
    let with = |status, f: &dyn Fn(&mut Payment)| {
        let mut payment = p(status);
        f(&mut payment);
        payment
    };
    let refunded = |amount: &str| {
        let amount = amount.parse().unwrap();
        move |p: &mut Payment| p.refunded_amount = amount
    };
    use PaymentStatus::*;
    let cases: Vec<(&str, Option<Payment>, Payment, Vec<&str>)> = vec![
        ("check: pending", None, p(Pending), vec![]),
        (
            "result without check",
            None,
            p(Succeeded),
            vec!["payment.succeeded"],
        ),
        (
            "result after check",
            Some(p(Pending)),
            p(Succeeded),
            vec!["payment.succeeded"],
        ),
        (
            "one-stage, captured at once: told by succeeded",
            Some(p(Pending)),
            with(Succeeded, &|p| p.captured = Some(true)),
            vec!["payment.succeeded"],
        ),
        ("repeated result", Some(p(Succeeded)), p(Succeeded), vec![]),
        (
            "rejected, then completed by FreedomPay",
            Some(p(Rejected)),
            with(Succeeded, &|p| p.needs_refund = true),
            vec!["payment.succeeded"],
        ),
        (
            "failure",
            Some(p(Pending)),
            p(Failed),
            vec!["payment.failed"],
        ),
        ("repeated failure", Some(p(Failed)), p(Failed), vec![]),
        (
            "success after a failure",
            Some(p(Failed)),
            p(Succeeded),
            vec!["payment.succeeded"],
        ),
        (
            "rejection",
            Some(p(Pending)),
            p(Rejected),
            vec!["payment.rejected"],
        ),
        (
            "rejection without check",
            None,
            p(Rejected),
            vec!["payment.rejected"],
        ),
        (
            "capture",
            Some(p(Succeeded)),
            with(Succeeded, &|p| p.captured = Some(true)),
            vec!["payment.captured"],
        ),
        (
            "repeated capture",
            Some(with(Succeeded, &|p| p.captured = Some(true))),
            with(Succeeded, &|p| p.captured = Some(true)),
            vec![],
        ),
        (
            "partial refund",
            Some(p(Succeeded)),
            with(Succeeded, &refunded("1000")),
            vec!["payment.refunded"],
        ),
        (
            "rest refunded",
            Some(with(Succeeded, &refunded("1000"))),
            with(Refunded, &refunded("7000.5")),
            vec!["payment.refunded"],
        ),
        (
            "refund status answer repeated",
            Some(with(Refunded, &refunded("7000.5"))),
            with(Refunded, &refunded("7000.5")),
            vec![],
        ),
        (
            "first seen refunded",
            None,
            with(Refunded, &refunded("7000.5")),
            vec!["payment.succeeded", "payment.refunded"],
        ),
    ];
    for (name, before, after, expected) in cases {
        let found = messages(&change(Some((before.as_ref(), &after)), None));
        assert_eq!(types(&found), expected, "{name}");
        for message in &found {
            assert_eq!(message.event_id, 42, "{name}");
            assert_eq!(message.merchant_id, "545774", "{name}");
            assert_eq!(message.payment_id.as_deref(), Some("987654"), "{name}");
        }
    }
    // The refund's own amount and the total so far.
    let before = with(Succeeded, &refunded("1000"));
    let after = with(Refunded, &refunded("7000.5"));
    let found = messages(&change(Some((Some(&before), &after)), None));
    let data = body(&found[0])["data"].clone();
    assert_eq!(data["refund_amount"], "6000.50");
    assert_eq!(data["refunded_total"], "7000.50");
    assert_eq!(data["status"], "refunded");
    // Needs refund travels with the success.
    let found = messages(&change(
        Some((
            Some(&p(Rejected)),
            &with(Succeeded, &|p| p.needs_refund = true),
        )),
        None,
    ));
    assert_eq!(
        found[0].what,
        What::PaymentSucceeded {
            needs_refund: true,
            captured: None
        }
    );
}

#[test]
fn webhooks_message_payout_changes_and_flags_make_these_messages() {
    use PayoutStatus::*;
    let cases: Vec<(Option<PayoutStatus>, PayoutStatus, Vec<&str>)> = vec![
        (None, Process, vec![]),
        (None, Success, vec!["payout.succeeded"]),
        (Some(Process), Success, vec!["payout.succeeded"]),
        (Some(Process), Error, vec!["payout.failed"]),
        (Some(Success), Success, vec![]),
        (Some(Error), Error, vec![]),
        // A contradiction settled by FreedomPay's signed status answer.
        (Some(Success), Error, vec!["payout.failed"]),
    ];
    for (before, after, expected) in cases {
        let before = before.map(payout);
        let after = payout(after);
        let found = messages(&change(None, Some((before.as_ref(), &after))));
        assert_eq!(types(&found), expected, "{before:?} -> {after:?}");
    }

    // A flag comes after the change's own messages; a conflict is a flag too.
    let before = payment(PaymentStatus::Pending);
    let after = payment(PaymentStatus::Succeeded);
    let mut flagged = change(Some((Some(&before), &after)), None);
    flagged.flag = Some(Flag {
        event_kind: "result".into(),
        flag: None,
        conflict: true,
        order_id: None,
        payment_id: None,
    });
    assert_eq!(
        types(&messages(&flagged)),
        ["payment.succeeded", "event.flagged"]
    );
    // Neither flagged nor a conflict: no message.
    flagged.flag = Some(Flag {
        event_kind: "result".into(),
        flag: None,
        conflict: false,
        order_id: None,
        payment_id: None,
    });
    assert_eq!(types(&messages(&flagged)), ["payment.succeeded"]);
    // A flag without a stored subject (an unreadable callback) names what the
    // callback named.
    let mut bare = change(None, None);
    bare.flag = Some(Flag {
        event_kind: "result".into(),
        flag: Some("unparseable: pg_amount".into()),
        conflict: false,
        order_id: Some("order-9".into()),
        payment_id: None,
    });
    let found = messages(&bare);
    assert_eq!(types(&found), ["event.flagged"]);
    let data = body(&found[0])["data"].clone();
    assert_eq!(data["order_id"], "order-9");
    assert_eq!(data["payment_id"], Value::Null);
    assert_eq!(data["amount"], Value::Null);
    assert_eq!(found[0].ordering_key(), "event:42");
}

#[test]
fn webhooks_message_ordering_keys_name_the_payment_or_payout() {
    let after = payment(PaymentStatus::Succeeded);
    let found = messages(&change(Some((None, &after)), None));
    assert_eq!(found[0].ordering_key(), "payment:545774:987654");
    let after = payout(PayoutStatus::Success);
    let found = messages(&change(None, Some((None, &after))));
    assert_eq!(found[0].ordering_key(), "payout:545774:payout-1");
}

#[test]
fn webhooks_message_ids_are_msg_and_a_uuid_v7() {
    let ids: Vec<String> = (0..100).map(|_| new_message_id()).collect();
    for id in &ids {
        let uuid = id.strip_prefix("msg_").unwrap();
        let parsed = uuid::Uuid::parse_str(uuid).unwrap();
        assert_eq!(parsed.get_version_num(), 7, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}
