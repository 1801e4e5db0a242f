//! The reconciler's pure parts, called directly: what a verified status
//! answer stands for (`reconcile::facts`: `payment_facts`, `refunded_total`,
//! `shows_reverted`, `refund_fact`, `payout_fact`) and the retry backoff
//! (`Reconciler::backoff`). No database is opened: the backoff's reconciler
//! is built over a store whose pool connects lazily and is never used.

use freedompay_receiver::api::PaymentStatusReport;
use freedompay_receiver::config::Settings;
use freedompay_receiver::domain::{
    Callback, CallbackKind, Detail, Origin, PaymentNotice, PayoutNotice, PayoutStatus,
    RefundNotice, ResultNotice, ResultOutcome,
};
use freedompay_receiver::protocol::{Amount, Message};
use freedompay_receiver::reconcile::{
    PaymentFacts, Reconciler, payment_facts, payout_fact, refund_fact, refunded_total,
    shows_reverted,
};
use freedompay_receiver::store::Store;

const MERCHANT: &str = "100100";
const ORDER: &str = "O-1";
const PAYMENT: &str = "P-1";

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

fn message(pairs: &[(&str, &str)]) -> Message {
    Message::from_pairs(pairs.iter().copied()).unwrap()
}

/// A complete status answer with `pg_payment_status` = `status`.
fn report(status: &str) -> PaymentStatusReport {
    PaymentStatusReport {
        payment_id: Some(PAYMENT.into()),
        order_id: Some(ORDER.into()),
        payment_status: status.into(),
        amount: Some(amount("7000")),
        currency: Some("KZT".into()),
        captured: None,
        refund_amount: None,
        response: message(&[("pg_status", "ok"), ("pg_payment_status", status)]),
    }
}

fn reconciled(kind: CallbackKind, payment_id: Option<&str>, detail: Detail) -> Callback {
    Callback {
        kind,
        origin: Origin::Reconcile,
        merchant_id: MERCHANT.into(),
        order_id: Some(ORDER.into()),
        payment_id: payment_id.map(str::to_owned),
        detail,
    }
}

fn result_fact(outcome: ResultOutcome) -> Callback {
    reconciled(
        CallbackKind::Result,
        Some(PAYMENT),
        Detail::Result(ResultNotice {
            payment: PaymentNotice {
                order_id: ORDER.into(),
                payment_id: PAYMENT.into(),
                amount: amount("7000"),
                currency: "KZT".into(),
                testing_mode: false,
            },
            outcome,
            can_reject: false,
            captured: None,
            card_mask: None,
            payment_date: None,
        }),
    )
}

fn refunded(total: &str) -> Callback {
    reconciled(
        CallbackKind::Refund,
        Some(PAYMENT),
        Detail::Refund(RefundNotice {
            payment_id: PAYMENT.into(),
            order_id: Some(ORDER.into()),
            amount: Some(amount(total)),
            refund_id: None,
            cumulative: true,
        }),
    )
}

fn facts(report: &PaymentStatusReport) -> PaymentFacts {
    payment_facts(MERCHANT, ORDER, None, report)
}

#[test]
fn final_payment_statuses_stand_for_a_reconciled_result() {
    for status in ["success", "ok"] {
        assert_eq!(
            facts(&report(status)),
            PaymentFacts::Final(vec![result_fact(ResultOutcome::Succeeded)]),
            "status {status}"
        );
    }
    // Reverted payments succeeded first: a result, then the full refund.
    for status in ["refunded", "revoked"] {
        assert_eq!(
            facts(&report(status)),
            PaymentFacts::Final(vec![
                result_fact(ResultOutcome::Succeeded),
                refunded("7000"),
            ]),
            "status {status}"
        );
    }
    let default_failure = ResultOutcome::Failed {
        code: None,
        description: Some("failed according to the status API".into()),
    };
    for status in ["failed", "failure", "error", "canceled"] {
        assert_eq!(
            facts(&report(status)),
            PaymentFacts::Final(vec![result_fact(default_failure.clone())]),
            "status {status}"
        );
    }
}

#[test]
fn other_payment_statuses_are_not_final() {
    // The vocabulary is matched exactly: `cancelled` and `SUCCESS` are not in it.
    for status in [
        "pending",
        "new",
        "incomplete",
        "partial",
        "",
        "cancelled",
        "SUCCESS",
    ] {
        assert_eq!(
            facts(&report(status)),
            PaymentFacts::NotFinal(status.into()),
            "status {status:?}"
        );
    }
}

#[test]
fn a_result_fact_carries_what_the_answer_says() {
    let answer = PaymentStatusReport {
        captured: Some(true),
        response: message(&[
            ("pg_payment_status", "failed"),
            ("pg_failure_code", "1003"),
            ("pg_failure_description", "Insufficient funds"),
            ("pg_testing_mode", "1"),
        ]),
        ..report("failed")
    };
    let PaymentFacts::Final(found) = facts(&answer) else {
        panic!("final expected");
    };
    let [fact] = found.as_slice() else {
        panic!("one fact expected: {found:?}");
    };
    let Detail::Result(notice) = &fact.detail else {
        panic!("a result expected: {fact:?}");
    };
    assert_eq!(fact.origin, Origin::Reconcile);
    assert!(!notice.can_reject, "the money is taken: never rejectable");
    assert_eq!(notice.captured, Some(true));
    assert!(notice.payment.testing_mode);
    assert_eq!(
        notice.outcome,
        ResultOutcome::Failed {
            code: Some("1003".into()),
            description: Some("Insufficient funds".into()),
        }
    );
    // `pg_testing_mode` other than "1" is not testing.
    let answer = PaymentStatusReport {
        response: message(&[("pg_testing_mode", "true")]),
        ..report("success")
    };
    let PaymentFacts::Final(found) = facts(&answer) else {
        panic!("final expected");
    };
    let Detail::Result(notice) = &found[0].detail else {
        panic!("a result expected");
    };
    assert!(!notice.payment.testing_mode);
}

#[test]
fn missing_ids_come_from_the_fallback_or_leave_the_payment_unsettled() {
    let bare = PaymentStatusReport {
        payment_id: None,
        amount: None,
        currency: None,
        ..report("success")
    };
    assert_eq!(
        facts(&bare),
        PaymentFacts::NotFinal("success, but without payment id, amount or currency".into())
    );
    for missing in ["payment_id", "amount", "currency"] {
        let mut partial = report("success");
        match missing {
            "payment_id" => partial.payment_id = None,
            "amount" => partial.amount = None,
            _ => partial.currency = None,
        }
        assert!(
            matches!(facts(&partial), PaymentFacts::NotFinal(_)),
            "without {missing}"
        );
    }
    // The stored payment fills the gaps...
    assert_eq!(
        payment_facts(
            MERCHANT,
            ORDER,
            Some((PAYMENT, amount("7000"), "KZT")),
            &bare
        ),
        PaymentFacts::Final(vec![result_fact(ResultOutcome::Succeeded)])
    );
    // ...but never overrides what the answer says.
    let PaymentFacts::Final(found) = payment_facts(
        MERCHANT,
        ORDER,
        Some(("P-stored", amount("1"), "USD")),
        &report("success"),
    ) else {
        panic!("final expected");
    };
    assert_eq!(found, vec![result_fact(ResultOutcome::Succeeded)]);
}

#[test]
fn a_refunded_total_adds_a_cumulative_refund_only_to_success() {
    let with_refund = |status: &str, total: &str| PaymentStatusReport {
        refund_amount: Some(amount(total)),
        ..report(status)
    };
    assert_eq!(
        facts(&with_refund("success", "2000")),
        PaymentFacts::Final(vec![
            result_fact(ResultOutcome::Succeeded),
            refunded("2000"),
        ])
    );
    assert_eq!(
        facts(&with_refund("success", "0")),
        PaymentFacts::Final(vec![result_fact(ResultOutcome::Succeeded)]),
        "a zero total is no refund"
    );
    let PaymentFacts::Final(found) = facts(&with_refund("failed", "2000")) else {
        panic!("final expected");
    };
    assert_eq!(found.len(), 1, "no refund of a failed payment: {found:?}");
}

#[test]
fn refunded_total_by_status() {
    let total = |status: &str, amount_text: Option<&str>, refund: Option<&str>| {
        refunded_total(&PaymentStatusReport {
            amount: amount_text.map(amount),
            refund_amount: refund.map(amount),
            ..report(status)
        })
    };
    let cases = [
        ("success", Some("7000"), None, None),
        ("success", Some("7000"), Some("0"), None),
        ("success", Some("7000"), Some("2000"), Some("2000")),
        ("partial", Some("7000"), Some("2000"), Some("2000")),
        ("refunded", Some("7000"), None, Some("7000")),
        ("refunded", Some("7000"), Some("2000"), Some("7000")),
        ("revoked", Some("7000"), Some("0"), Some("7000")),
        // More refunded than paid: the larger of the two.
        ("refunded", Some("7000"), Some("8000"), Some("8000")),
        ("refunded", None, None, None),
        ("refunded", None, Some("2000"), Some("2000")),
    ];
    for (status, paid, refund, want) in cases {
        assert_eq!(
            total(status, paid, refund),
            want.map(amount),
            "{status}, amount {paid:?}, refund {refund:?}"
        );
    }
}

#[test]
fn shows_reverted_by_status_and_total() {
    let with = |status: &str, refund: Option<&str>| PaymentStatusReport {
        refund_amount: refund.map(amount),
        ..report(status)
    };
    let cases = [
        ("revoked", None, "7000", true),
        ("refunded", None, "7000", true),
        ("success", None, "7000", false),
        ("success", Some("7000"), "7000", true),
        ("success", Some("7000.01"), "7000", true),
        ("success", Some("6999.99"), "7000", false),
        ("success", Some("0"), "0", false),
        ("failed", Some("7000"), "7000", true),
    ];
    for (status, refund, paid, want) in cases {
        assert_eq!(
            shows_reverted(&with(status, refund), amount(paid)),
            want,
            "{status}, refund {refund:?}, paid {paid}"
        );
    }
}

#[test]
fn refund_fact_is_a_cumulative_reconciled_refund() {
    assert_eq!(
        refund_fact(MERCHANT, ORDER, PAYMENT, amount("2500.5")),
        refunded("2500.5")
    );
}

#[test]
fn payout_fact_reads_final_statuses_only() {
    let payout = |status, payment_id: Option<&str>, amount_text: Option<&str>| {
        reconciled(
            CallbackKind::Payout,
            payment_id,
            Detail::Payout(PayoutNotice {
                order_id: ORDER.into(),
                payment_id: payment_id.map(str::to_owned),
                status,
                amount: amount_text.map(amount),
                card_mask: None,
            }),
        )
    };
    let fact = |pairs: &[(&str, &str)]| payout_fact(MERCHANT, ORDER, &message(pairs));
    let success = Some(payout(PayoutStatus::Success, None, None));
    let error = Some(payout(PayoutStatus::Error, None, None));
    assert_eq!(fact(&[("pg_payment_status", "success")]), success);
    assert_eq!(fact(&[("pg_payment_status", "ok")]), success);
    assert_eq!(
        fact(&[("pg_status", "ok")]),
        success,
        "pg_status as fallback"
    );
    assert_eq!(fact(&[("pg_payment_status", "error")]), error);
    assert_eq!(fact(&[("pg_payment_status", "failed")]), error);
    assert_eq!(fact(&[("pg_payment_status", "process")]), None);
    assert_eq!(fact(&[("pg_payment_status", "pending")]), None);
    assert_eq!(fact(&[("pg_payment_status", "unknown")]), None);
    assert_eq!(fact(&[]), None);
    assert_eq!(
        fact(&[("pg_status", "ok"), ("pg_payment_status", "process")]),
        None,
        "pg_payment_status comes first"
    );
    assert_eq!(
        fact(&[
            ("pg_payment_status", "success"),
            ("pg_payment_id", "PP-9"),
            ("pg_payment_amount", "500.5"),
            ("pg_amount", "999"),
        ]),
        Some(payout(PayoutStatus::Success, Some("PP-9"), Some("500.5")))
    );
    assert_eq!(
        fact(&[
            ("pg_payment_status", "success"),
            ("pg_payment_id", ""),
            ("pg_payment_amount", "abc"),
            ("pg_amount", "999"),
        ]),
        Some(payout(PayoutStatus::Success, None, Some("999"))),
        "empty id dropped, unreadable amount skipped for the next"
    );
}

/// A reconciler whose store is never used (its pool connects lazily).
fn reconciler(retry_base_secs: u64) -> Reconciler {
    let mut settings = Settings::default();
    settings.database.url = "postgres://unused@127.0.0.1:9/never".into();
    settings.reconcile.retry_base_secs = retry_base_secs;
    let store = Store::connect(&settings.database).expect("lazy store");
    Reconciler::new(&settings, store).expect("reconciler")
}

#[tokio::test]
async fn backoff_doubles_from_the_base_up_to_an_hour() {
    let r = reconciler(60);
    let schedule: Vec<u64> = (1..=8).map(|attempt| r.backoff(attempt)).collect();
    assert_eq!(schedule, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    // Nothing random: the same attempt waits the same time.
    assert_eq!(r.backoff(5), r.backoff(5));
    // Before any attempt, or a nonsensical count: the base.
    assert_eq!(r.backoff(0), 60);
    assert_eq!(r.backoff(-5), 60);
    assert_eq!(r.backoff(i32::MIN), 60);
    // Far beyond the cap: no overflow.
    assert_eq!(r.backoff(i32::MAX), 3600);
}

#[tokio::test]
async fn backoff_caps_the_doublings_and_the_wait() {
    let one = reconciler(1);
    assert_eq!(one.backoff(12), 2048);
    assert_eq!(one.backoff(13), 3600, "4096 is capped at an hour");
    let tiny = reconciler(0);
    assert_eq!(tiny.backoff(30), 0, "a zero base stays zero");
    let big = reconciler(5000);
    assert_eq!(
        big.backoff(1),
        3600,
        "even the first wait is at most an hour"
    );
    let huge = reconciler(u64::MAX);
    assert_eq!(huge.backoff(3), 3600, "the product saturates, then caps");
}
