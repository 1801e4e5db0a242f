//! `domain::state::decide`, called directly: a callback and the rows it is
//! decided against go in, the plan comes out. No database, no server, a fixed
//! `now`. Each table row names the case; the expectations follow what
//! `src/domain/state.rs` does branch by branch.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use freedompay_receiver::domain::state::{OrderUpdate, decide, repeat_confirmation};
use freedompay_receiver::domain::{
    Callback, CallbackKind, CaptureNotice, Confirm, ConfirmSubject, CurrentState, Detail, Order,
    OrderStatus, Origin, Payment, PaymentNotice, PaymentStatus, Payout, PayoutNotice, PayoutStatus,
    Plan, RefundNotice, ResultNotice, ResultOutcome, Rules,
};
use freedompay_receiver::protocol::{Amount, Status};

const MERCHANT: &str = "100100";
const ORDER: &str = "O-1";
const PAYMENT: &str = "P-1";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

/// Every rule on, KZT only, `pg_payment_date` read at +05:00.
fn strict() -> Rules {
    Rules {
        require_known_order: true,
        amount_must_match: true,
        currency_must_match: true,
        allowed_currencies: vec!["KZT".into()],
        min_amount: None,
        max_amount: None,
        reject_expired: true,
        reject_already_paid: true,
        reject_testing_mode: false,
        payment_date_offset: FixedOffset::east_opt(5 * 3600).unwrap(),
    }
}

/// Every optional rule off (the order's own status still applies).
fn lenient() -> Rules {
    Rules {
        require_known_order: false,
        amount_must_match: false,
        currency_must_match: false,
        allowed_currencies: Vec::new(),
        reject_expired: false,
        reject_already_paid: false,
        ..strict()
    }
}

fn order(status: OrderStatus) -> Order {
    Order {
        order_id: ORDER.into(),
        amount: amount("7000"),
        currency: "KZT".into(),
        status,
        expires_at: None,
        paid_payment_id: None,
    }
}

fn paid_order(by: &str) -> Order {
    Order {
        paid_payment_id: Some(by.into()),
        ..order(OrderStatus::Paid)
    }
}

fn payment(status: PaymentStatus) -> Payment {
    Payment {
        payment_id: PAYMENT.into(),
        order_id: ORDER.into(),
        amount: amount("7000"),
        currency: "KZT".into(),
        status,
        captured: None,
        testing_mode: false,
        card_mask: None,
        failure_code: None,
        failure_description: None,
        needs_refund: false,
        refunded_amount: Amount::default(),
    }
}

fn state(order: Option<Order>, payment: Option<Payment>) -> CurrentState {
    CurrentState {
        order,
        payment,
        payout: None,
        order_defect: None,
        row_defect: None,
    }
}

fn notice(amount_text: &str, currency: &str) -> PaymentNotice {
    PaymentNotice {
        order_id: ORDER.into(),
        payment_id: PAYMENT.into(),
        amount: amount(amount_text),
        currency: currency.into(),
        testing_mode: false,
    }
}

fn callback(kind: CallbackKind, detail: Detail) -> Callback {
    Callback {
        kind,
        origin: Origin::Delivery,
        merchant_id: MERCHANT.into(),
        order_id: Some(ORDER.into()),
        payment_id: Some(PAYMENT.into()),
        detail,
    }
}

fn check(amount_text: &str, currency: &str) -> Callback {
    callback(
        CallbackKind::Check,
        Detail::Check(notice(amount_text, currency)),
    )
}

fn result_notice(amount_text: &str, can_reject: bool) -> ResultNotice {
    ResultNotice {
        payment: notice(amount_text, "KZT"),
        outcome: ResultOutcome::Succeeded,
        can_reject,
        captured: None,
        card_mask: None,
        payment_date: None,
    }
}

fn result(amount_text: &str, can_reject: bool) -> Callback {
    callback(
        CallbackKind::Result,
        Detail::Result(result_notice(amount_text, can_reject)),
    )
}

fn failed_result(code: Option<&str>, description: Option<&str>) -> Callback {
    callback(
        CallbackKind::Result,
        Detail::Result(ResultNotice {
            outcome: ResultOutcome::Failed {
                code: code.map(str::to_owned),
                description: description.map(str::to_owned),
            },
            ..result_notice("7000", true)
        }),
    )
}

fn refund(amount_text: Option<&str>, cumulative: bool) -> Callback {
    callback(
        CallbackKind::Refund,
        Detail::Refund(RefundNotice {
            payment_id: PAYMENT.into(),
            order_id: Some(ORDER.into()),
            amount: amount_text.map(amount),
            refund_id: Some("R-1".into()),
            cumulative,
        }),
    )
}

fn capture() -> Callback {
    callback(
        CallbackKind::Capture,
        Detail::Capture(CaptureNotice {
            payment_id: PAYMENT.into(),
            order_id: Some(ORDER.into()),
            amount: Some(amount("7000")),
        }),
    )
}

fn payout(status: PayoutStatus, origin: Origin) -> Callback {
    Callback {
        origin,
        ..callback(
            CallbackKind::Payout,
            Detail::Payout(PayoutNotice {
                order_id: "PO-1".into(),
                payment_id: None,
                status,
                amount: None,
                card_mask: None,
            }),
        )
    }
}

fn stored_payout(status: PayoutStatus) -> Payout {
    Payout {
        order_id: "PO-1".into(),
        payment_id: Some("PP-9".into()),
        status,
        amount: Some(amount("500")),
        card_mask: Some("4405-XXXX-XXXX-1111".into()),
    }
}

/// The plan that only answers: no row, no flag, no query.
fn answer(status: Status, description: &str) -> Plan {
    Plan {
        status,
        description: description.into(),
        payment: None,
        order: None,
        payout: None,
        flag: None,
        confirm: None,
        retry_later: false,
    }
}

fn order_update(status: OrderStatus, paid_by: &str) -> Option<OrderUpdate> {
    Some(OrderUpdate {
        order_id: ORDER.into(),
        status,
        paid_payment_id: Some(paid_by.into()),
    })
}

fn confirm_payment(due_in_secs: u64) -> Option<Confirm> {
    Some(Confirm {
        subject: ConfirmSubject::Payment(PAYMENT.into()),
        due_in_secs,
    })
}

/// Runs each case and compares the whole plan, naming the failing case.
fn table(cases: Vec<(&str, Callback, CurrentState, Rules, Plan)>) {
    for (name, callback, state, rules, want) in cases {
        let got = decide(&callback, &state, &rules, now());
        assert_eq!(got, want, "case: {name}");
    }
}

#[test]
fn check_answers_by_rule_and_records_a_pending_payment() {
    let expired = Order {
        expires_at: Some(now() - Duration::seconds(1)),
        ..order(OrderStatus::Pending)
    };
    let expires_now = Order {
        expires_at: Some(now()),
        ..order(OrderStatus::Pending)
    };
    let expires_later = Order {
        expires_at: Some(now() + Duration::seconds(1)),
        ..order(OrderStatus::Pending)
    };
    let can_be_paid = format!("Order {ORDER} can be paid");
    let with_pending = Plan {
        payment: Some(payment(PaymentStatus::Pending)),
        ..answer(Status::Ok, &can_be_paid)
    };
    table(vec![
        (
            "known pending order, matching",
            check("7000.00", "KZT"),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            with_pending.clone(),
        ),
        (
            "a payment already stored is not created again",
            check("7000", "KZT"),
            state(
                Some(order(OrderStatus::Pending)),
                Some(payment(PaymentStatus::Pending)),
            ),
            strict(),
            answer(Status::Ok, &can_be_paid),
        ),
        (
            "unknown order, require_known_order",
            check("7000", "KZT"),
            state(None, None),
            strict(),
            answer(Status::Rejected, "Order O-1 is not known"),
        ),
        (
            "unknown order, rules lenient",
            check("7000", "KZT"),
            state(None, None),
            lenient(),
            with_pending.clone(),
        ),
        (
            "amount mismatch",
            check("6000", "KZT"),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            answer(
                Status::Rejected,
                "Amount 6000 does not match the amount 7000 of order O-1",
            ),
        ),
        (
            "currency outside allowed_currencies",
            check("7000", "usd"),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            answer(Status::Rejected, "Currency USD is not accepted"),
        ),
        (
            "currency mismatch with the order",
            check("7000", "USD"),
            state(Some(order(OrderStatus::Pending)), None),
            Rules {
                allowed_currencies: Vec::new(),
                ..strict()
            },
            answer(
                Status::Rejected,
                "Currency USD does not match the currency KZT of order O-1",
            ),
        ),
        (
            "already paid by another payment",
            check("7000", "KZT"),
            state(Some(paid_order("P-0")), None),
            strict(),
            answer(Status::Rejected, "Order O-1 is already paid"),
        ),
        (
            "expired a second ago",
            check("7000", "KZT"),
            state(Some(expired), None),
            strict(),
            answer(Status::Rejected, "Order O-1 has expired"),
        ),
        (
            "expires exactly now",
            check("7000", "KZT"),
            state(Some(expires_now), None),
            strict(),
            answer(Status::Rejected, "Order O-1 has expired"),
        ),
        (
            "expires a second from now",
            check("7000", "KZT"),
            state(Some(expires_later), None),
            strict(),
            with_pending,
        ),
        (
            "cancelled order, even with every rule off",
            check("7000", "KZT"),
            state(Some(order(OrderStatus::Cancelled)), None),
            lenient(),
            answer(Status::Rejected, "Order O-1 is cancelled"),
        ),
    ]);
}

#[test]
fn an_unreadable_order_row_refuses_and_flags_bad_order_row() {
    let defect = "amount \"abc\": not a number".to_owned();
    let damaged = CurrentState {
        order_defect: Some(defect.clone()),
        ..state(None, None)
    };
    let refused = "Order O-1 cannot be paid: its record is damaged";
    let flag = Some(format!("bad_order_row: {defect}"));
    table(vec![
        (
            "check",
            check("7000", "KZT"),
            damaged.clone(),
            lenient(),
            Plan {
                flag: flag.clone(),
                ..answer(Status::Rejected, refused)
            },
        ),
        (
            "result, pg_can_reject=1: rejected, and the rejection confirmed later",
            result("7000", true),
            damaged.clone(),
            lenient(),
            Plan {
                payment: Some(payment(PaymentStatus::Rejected)),
                confirm: confirm_payment(300),
                flag: flag.clone(),
                ..answer(Status::Rejected, refused)
            },
        ),
        (
            "result, pg_can_reject=0: accepted, needs refund",
            result("7000", false),
            damaged.clone(),
            lenient(),
            Plan {
                payment: Some(Payment {
                    needs_refund: true,
                    ..payment(PaymentStatus::Succeeded)
                }),
                flag: flag.clone(),
                ..answer(Status::Ok, "Payment accepted")
            },
        ),
        (
            "a payout is not about the order, but its event is still flagged",
            payout(PayoutStatus::Success, Origin::Delivery),
            damaged.clone(),
            lenient(),
            Plan {
                payout: Some(Payout {
                    payment_id: None,
                    amount: None,
                    card_mask: None,
                    ..stored_payout(PayoutStatus::Success)
                }),
                flag: flag.clone(),
                ..answer(Status::Ok, "Payout notification recorded")
            },
        ),
        (
            "a flag of the decision's own is kept (early notice)",
            refund(None, false),
            damaged,
            lenient(),
            Plan {
                flag: Some("early_notice".into()),
                retry_later: true,
                ..answer(Status::Error, "Payment P-1 is not known yet; please retry")
            },
        ),
    ]);
}

#[test]
fn result_success_by_pg_can_reject_and_by_stored_payment() {
    let accepted = Plan {
        payment: Some(payment(PaymentStatus::Succeeded)),
        order: order_update(OrderStatus::Paid, PAYMENT),
        ..answer(Status::Ok, "Payment accepted")
    };
    let mismatch = "Amount 6000 does not match the amount 7000 of order O-1";
    let needs_refund = |amount_text: &str| Plan {
        payment: Some(Payment {
            needs_refund: true,
            amount: amount(amount_text),
            ..payment(PaymentStatus::Succeeded)
        }),
        ..answer(Status::Ok, "Payment accepted")
    };
    table(vec![
        (
            "first result, order pending: paid",
            result("7000", true),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            accepted.clone(),
        ),
        (
            "after a check: the pending payment succeeds",
            result("7000", true),
            state(
                Some(order(OrderStatus::Pending)),
                Some(payment(PaymentStatus::Pending)),
            ),
            strict(),
            accepted.clone(),
        ),
        (
            "no order row, rules lenient: payment only",
            result("7000", true),
            state(None, None),
            lenient(),
            Plan {
                order: None,
                ..accepted.clone()
            },
        ),
        (
            "amount mismatch, pg_can_reject=1: rejected, confirmed in 300 s",
            result("6000", true),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            Plan {
                payment: Some(Payment {
                    amount: amount("6000"),
                    ..payment(PaymentStatus::Rejected)
                }),
                confirm: confirm_payment(300),
                ..answer(Status::Rejected, mismatch)
            },
        ),
        (
            "amount mismatch, pg_can_reject=0: accepted, needs refund, order untouched",
            result("6000", false),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            needs_refund("6000"),
        ),
        (
            "order already paid by another payment, pg_can_reject=1",
            result("7000", true),
            state(Some(paid_order("P-0")), None),
            strict(),
            Plan {
                payment: Some(payment(PaymentStatus::Rejected)),
                confirm: confirm_payment(300),
                ..answer(Status::Rejected, "Order O-1 is already paid")
            },
        ),
        (
            "order already paid by another payment, pg_can_reject=0",
            result("7000", false),
            state(Some(paid_order("P-0")), None),
            strict(),
            needs_refund("7000"),
        ),
        (
            "order already paid by this payment (a repeat): paid again",
            result("7000", true),
            state(Some(paid_order(PAYMENT)), None),
            strict(),
            accepted.clone(),
        ),
        (
            "payment already succeeded",
            result("7000", true),
            state(
                Some(paid_order(PAYMENT)),
                Some(payment(PaymentStatus::Succeeded)),
            ),
            strict(),
            answer(Status::Ok, "Payment already recorded"),
        ),
        (
            "payment already refunded",
            result("7000", false),
            state(None, Some(payment(PaymentStatus::Refunded))),
            strict(),
            answer(Status::Ok, "Payment already recorded"),
        ),
        (
            "we rejected it, FreedomPay still may reject (pg_can_reject=1)",
            result("7000", true),
            state(
                Some(order(OrderStatus::Pending)),
                Some(payment(PaymentStatus::Rejected)),
            ),
            strict(),
            answer(Status::Rejected, "Payment P-1 was rejected"),
        ),
        (
            "we rejected it, FreedomPay completed it (pg_can_reject=0)",
            result("7000", false),
            state(
                Some(order(OrderStatus::Pending)),
                Some(payment(PaymentStatus::Rejected)),
            ),
            strict(),
            needs_refund("7000"),
        ),
        (
            "an earlier failure is overtaken by success",
            result("7000", true),
            state(
                Some(order(OrderStatus::Pending)),
                Some(payment(PaymentStatus::Failed)),
            ),
            strict(),
            accepted,
        ),
    ]);
}

#[test]
fn result_expiry_is_judged_when_the_payer_paid() {
    // Expired one hour before `now`; `pg_payment_date` is local time at +05:00.
    let expires_at = now() - Duration::hours(1);
    let expiring = Order {
        expires_at: Some(expires_at),
        ..order(OrderStatus::Pending)
    };
    let local = |h: u32, m: u32| {
        NaiveDate::from_ymd_opt(2026, 12, 4)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    };
    let paid_at = |date| {
        callback(
            CallbackKind::Result,
            Detail::Result(ResultNotice {
                payment_date: Some(date),
                ..result_notice("7000", true)
            }),
        )
    };
    let accepted = Plan {
        payment: Some(payment(PaymentStatus::Succeeded)),
        order: order_update(OrderStatus::Paid, PAYMENT),
        ..answer(Status::Ok, "Payment accepted")
    };
    let rejected = Plan {
        payment: Some(payment(PaymentStatus::Rejected)),
        confirm: confirm_payment(300),
        ..answer(Status::Rejected, "Order O-1 has expired")
    };
    table(vec![
        (
            "no payment date: judged at now, after expiry",
            result("7000", true),
            state(Some(expiring.clone()), None),
            strict(),
            rejected.clone(),
        ),
        (
            "paid 10:59 UTC (15:59 at +05:00), before the 11:00 expiry",
            paid_at(local(15, 59)),
            state(Some(expiring.clone()), None),
            strict(),
            accepted.clone(),
        ),
        (
            "paid 11:00 UTC (16:00 at +05:00), at the expiry",
            paid_at(local(16, 0)),
            state(Some(expiring.clone()), None),
            strict(),
            rejected.clone(),
        ),
        (
            "the same wall time read at UTC would have been before expiry",
            paid_at(local(10, 59)),
            state(Some(expiring.clone()), None),
            Rules {
                payment_date_offset: FixedOffset::east_opt(0).unwrap(),
                ..strict()
            },
            accepted.clone(),
        ),
        (
            "approved by a check: expiry is not judged again",
            result("7000", true),
            state(
                Some(expiring.clone()),
                Some(payment(PaymentStatus::Pending)),
            ),
            strict(),
            accepted,
        ),
        (
            "status expired without expires_at: refused whatever the rules",
            result("7000", true),
            state(Some(order(OrderStatus::Expired)), None),
            lenient(),
            rejected,
        ),
    ]);
}

#[test]
fn result_updates_the_payment_forward_only() {
    let stored = Payment {
        captured: Some(true),
        card_mask: Some("4405-XXXX-XXXX-1111".into()),
        testing_mode: true,
        ..payment(PaymentStatus::Pending)
    };
    let later = callback(
        CallbackKind::Result,
        Detail::Result(ResultNotice {
            captured: Some(false),
            card_mask: None,
            ..result_notice("7000", true)
        }),
    );
    let plan = decide(
        &later,
        &state(None, Some(stored.clone())),
        &lenient(),
        now(),
    );
    let written = plan.payment.expect("payment written");
    assert_eq!(written.captured, Some(true), "captured never goes back");
    assert_eq!(
        written.card_mask, stored.card_mask,
        "absent mask keeps the old"
    );
    assert!(!written.testing_mode, "testing mode is the notice's");
    assert_eq!(written.status, PaymentStatus::Succeeded);

    let first = callback(
        CallbackKind::Result,
        Detail::Result(ResultNotice {
            captured: Some(false),
            card_mask: Some("5169-XXXX-XXXX-2222".into()),
            ..result_notice("7000", true)
        }),
    );
    let written = decide(&first, &state(None, None), &lenient(), now())
        .payment
        .expect("payment written");
    assert_eq!(written.captured, Some(false));
    assert_eq!(written.card_mask.as_deref(), Some("5169-XXXX-XXXX-2222"));
}

#[test]
fn result_failure_and_unknown_outcomes() {
    table(vec![
        (
            "failure of a new payment",
            failed_result(Some("1"), Some("Card declined")),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            Plan {
                payment: Some(Payment {
                    failure_code: Some("1".into()),
                    failure_description: Some("Card declined".into()),
                    ..payment(PaymentStatus::Failed)
                }),
                ..answer(Status::Ok, "Failure recorded")
            },
        ),
        (
            "failure after a check",
            failed_result(None, None),
            state(None, Some(payment(PaymentStatus::Pending))),
            strict(),
            Plan {
                payment: Some(payment(PaymentStatus::Failed)),
                ..answer(Status::Ok, "Failure recorded")
            },
        ),
        (
            "late failure never un-pays",
            failed_result(Some("1"), None),
            state(
                Some(paid_order(PAYMENT)),
                Some(payment(PaymentStatus::Succeeded)),
            ),
            strict(),
            answer(
                Status::Ok,
                "Failure recorded; the payment had already succeeded",
            ),
        ),
        (
            "failure of a rejected payment changes nothing",
            failed_result(Some("1"), None),
            state(None, Some(payment(PaymentStatus::Rejected))),
            strict(),
            answer(
                Status::Ok,
                "Failure recorded; the payment had already succeeded",
            ),
        ),
        (
            "pg_result=2: recorded, no state change",
            callback(
                CallbackKind::Result,
                Detail::Result(ResultNotice {
                    outcome: ResultOutcome::Other("2".into()),
                    ..result_notice("7000", true)
                }),
            ),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            answer(Status::Ok, "Result recorded"),
        ),
    ]);
}

#[test]
fn refunds_partial_full_over_and_early() {
    let paid = || {
        state(
            Some(paid_order(PAYMENT)),
            Some(payment(PaymentStatus::Succeeded)),
        )
    };
    let with_refunded = |text: &str, needs_refund: bool| {
        state(
            Some(paid_order(PAYMENT)),
            Some(Payment {
                refunded_amount: amount(text),
                needs_refund,
                ..payment(PaymentStatus::Succeeded)
            }),
        )
    };
    let refunded = |status: PaymentStatus, total: &str, order: OrderStatus| Plan {
        payment: Some(Payment {
            refunded_amount: amount(total),
            ..payment(status)
        }),
        order: order_update(order, PAYMENT),
        ..answer(Status::Ok, "Refund recorded")
    };
    let partial = refunded(
        PaymentStatus::Succeeded,
        "2000",
        OrderStatus::PartiallyRefunded,
    );
    let full = refunded(PaymentStatus::Refunded, "7000", OrderStatus::Refunded);
    table(vec![
        (
            "partial",
            refund(Some("2000"), false),
            paid(),
            strict(),
            partial.clone(),
        ),
        (
            "full: no amount",
            refund(None, false),
            paid(),
            strict(),
            full.clone(),
        ),
        (
            "full: amount zero",
            refund(Some("0"), false),
            paid(),
            strict(),
            full.clone(),
        ),
        (
            "second partial completes the amount",
            refund(Some("5000"), false),
            with_refunded("2000", false),
            strict(),
            full.clone(),
        ),
        (
            "a full refund settles a pending auto-refund",
            refund(None, false),
            with_refunded("0", true),
            strict(),
            full.clone(),
        ),
        (
            "a partial refund leaves the auto-refund pending",
            refund(Some("2000"), false),
            with_refunded("0", true),
            strict(),
            Plan {
                payment: Some(Payment {
                    refunded_amount: amount("2000"),
                    needs_refund: true,
                    ..payment(PaymentStatus::Succeeded)
                }),
                ..partial.clone()
            },
        ),
        (
            "over-refund: kept as reported, flagged",
            refund(Some("3000"), false),
            with_refunded("5000", false),
            strict(),
            Plan {
                flag: Some("over_refund: 8000 refunded of 7000".into()),
                ..refunded(PaymentStatus::Refunded, "8000", OrderStatus::Refunded)
            },
        ),
        (
            "payment already fully refunded",
            refund(Some("100"), false),
            state(
                Some(paid_order(PAYMENT)),
                Some(payment(PaymentStatus::Refunded)),
            ),
            strict(),
            answer(
                Status::Ok,
                "Refund recorded; the payment was already fully refunded",
            ),
        ),
        (
            "refund before the payment is known: 503 until it is",
            refund(Some("2000"), false),
            state(Some(paid_order(PAYMENT)), None),
            strict(),
            Plan {
                flag: Some("early_notice".into()),
                retry_later: true,
                ..answer(Status::Error, "Payment P-1 is not known yet; please retry")
            },
        ),
        (
            "order paid by another payment stays paid",
            refund(Some("2000"), false),
            state(
                Some(paid_order("P-0")),
                Some(payment(PaymentStatus::Succeeded)),
            ),
            strict(),
            Plan {
                order: None,
                ..partial.clone()
            },
        ),
        (
            "no order row: the payment alone",
            refund(None, false),
            state(None, Some(payment(PaymentStatus::Succeeded))),
            strict(),
            Plan {
                order: None,
                ..full.clone()
            },
        ),
        (
            "cumulative total moves forward",
            refund(Some("3000"), true),
            with_refunded("2000", false),
            strict(),
            refunded(
                PaymentStatus::Succeeded,
                "3000",
                OrderStatus::PartiallyRefunded,
            ),
        ),
        (
            "cumulative total equal to the stored one: nothing",
            refund(Some("2000"), true),
            with_refunded("2000", false),
            strict(),
            answer(Status::Ok, "Refund already recorded"),
        ),
        (
            "cumulative total below the stored one: never back",
            refund(Some("1000"), true),
            with_refunded("2000", false),
            strict(),
            answer(Status::Ok, "Refund already recorded"),
        ),
        (
            "cumulative without an amount: nothing",
            refund(None, true),
            with_refunded("2000", false),
            strict(),
            answer(Status::Ok, "Refund already recorded"),
        ),
        (
            "cumulative over the amount: flagged",
            refund(Some("7000.01"), true),
            paid(),
            strict(),
            Plan {
                flag: Some("over_refund: 7000.01 refunded of 7000".into()),
                ..refunded(PaymentStatus::Refunded, "7000.01", OrderStatus::Refunded)
            },
        ),
    ]);
}

#[test]
fn capture_marks_captured_and_questions_a_rejected_payment() {
    table(vec![
        (
            "capture of a succeeded payment",
            capture(),
            state(None, Some(payment(PaymentStatus::Succeeded))),
            strict(),
            Plan {
                payment: Some(Payment {
                    captured: Some(true),
                    ..payment(PaymentStatus::Succeeded)
                }),
                ..answer(Status::Ok, "Capture recorded")
            },
        ),
        (
            "capture of a rejected payment: flagged, asked now",
            capture(),
            state(None, Some(payment(PaymentStatus::Rejected))),
            strict(),
            Plan {
                payment: Some(Payment {
                    captured: Some(true),
                    ..payment(PaymentStatus::Rejected)
                }),
                flag: Some("capture_of_rejected: the payment was rejected".into()),
                confirm: confirm_payment(0),
                ..answer(Status::Ok, "Capture recorded")
            },
        ),
        (
            "capture before the payment is known",
            capture(),
            state(Some(order(OrderStatus::Pending)), None),
            strict(),
            Plan {
                flag: Some("early_notice".into()),
                retry_later: true,
                ..answer(Status::Error, "Payment P-1 is not known yet; please retry")
            },
        ),
    ]);
}

#[test]
fn payouts_move_forward_and_contradictions_ask_freedompay() {
    let with_payout = |status| CurrentState {
        payout: Some(stored_payout(status)),
        ..state(None, None)
    };
    let recorded = |payout: Payout| Plan {
        payout: Some(payout),
        ..answer(Status::Ok, "Payout notification recorded")
    };
    table(vec![
        (
            "new payout, nothing stored",
            payout(PayoutStatus::Process, Origin::Delivery),
            state(None, None),
            strict(),
            recorded(Payout {
                order_id: "PO-1".into(),
                payment_id: None,
                status: PayoutStatus::Process,
                amount: None,
                card_mask: None,
            }),
        ),
        (
            "final after process: absent fields keep the stored ones",
            payout(PayoutStatus::Success, Origin::Delivery),
            with_payout(PayoutStatus::Process),
            strict(),
            recorded(stored_payout(PayoutStatus::Success)),
        ),
        (
            "the same final status again",
            payout(PayoutStatus::Success, Origin::Delivery),
            with_payout(PayoutStatus::Success),
            strict(),
            recorded(stored_payout(PayoutStatus::Success)),
        ),
        (
            "a delivery contradicting a final status: kept, flagged, asked",
            payout(PayoutStatus::Error, Origin::Delivery),
            with_payout(PayoutStatus::Success),
            strict(),
            Plan {
                flag: Some("payout_contradiction: success stored, error received".into()),
                confirm: Some(Confirm {
                    subject: ConfirmSubject::Payout("PO-1".into()),
                    due_in_secs: 0,
                }),
                ..answer(Status::Ok, "Payout notification recorded")
            },
        ),
        (
            "process after a final status is a contradiction too",
            payout(PayoutStatus::Process, Origin::Delivery),
            with_payout(PayoutStatus::Error),
            strict(),
            Plan {
                flag: Some("payout_contradiction: error stored, process received".into()),
                confirm: Some(Confirm {
                    subject: ConfirmSubject::Payout("PO-1".into()),
                    due_in_secs: 0,
                }),
                ..answer(Status::Ok, "Payout notification recorded")
            },
        ),
        (
            "a signed status answer overrides a final status",
            payout(PayoutStatus::Error, Origin::Reconcile),
            with_payout(PayoutStatus::Success),
            strict(),
            recorded(stored_payout(PayoutStatus::Error)),
        ),
    ]);
}

#[test]
fn redirects_and_unparsed_callbacks_only_answer() {
    table(vec![
        (
            "redirect",
            callback(CallbackKind::Success, Detail::Redirect),
            state(None, None),
            strict(),
            answer(Status::Ok, ""),
        ),
        (
            "unparsed",
            callback(CallbackKind::Result, Detail::Unparsed),
            state(None, None),
            strict(),
            answer(Status::Error, "Malformed request"),
        ),
    ]);
}

#[test]
fn repeats_ask_for_confirmation_only_where_a_callback_cannot_settle() {
    let without_refund_id = callback(
        CallbackKind::Refund,
        Detail::Refund(RefundNotice {
            payment_id: PAYMENT.into(),
            order_id: None,
            amount: None,
            refund_id: None,
            cumulative: false,
        }),
    );
    let asks_payment = Some(Confirm {
        subject: ConfirmSubject::Payment(PAYMENT.into()),
        due_in_secs: 0,
    });
    let asks_payout = Some(Confirm {
        subject: ConfirmSubject::Payout("PO-1".into()),
        due_in_secs: 0,
    });
    let reconciled = Callback {
        origin: Origin::Reconcile,
        ..without_refund_id.clone()
    };
    let cases = [
        (
            "refund without refund id",
            &without_refund_id,
            false,
            asks_payment.clone(),
        ),
        ("refund with refund id", &refund(None, false), false, None),
        (
            "refund with refund id, conflict",
            &refund(None, false),
            true,
            asks_payment,
        ),
        (
            "payout, conflict",
            &payout(PayoutStatus::Success, Origin::Delivery),
            true,
            asks_payout,
        ),
        (
            "payout, no conflict",
            &payout(PayoutStatus::Success, Origin::Delivery),
            false,
            None,
        ),
        ("result, conflict", &result("7000", true), true, None),
        ("a reconciled fact never asks", &reconciled, true, None),
    ];
    for (name, callback, conflict, want) in cases {
        assert_eq!(
            repeat_confirmation(callback, conflict),
            want,
            "case: {name}"
        );
    }
}
