//! `Rules::check` and `Rules::payment_date_utc`, called directly: each rule's
//! failure (its name and the words the payer reads), each boundary, the pass
//! case, and the fixed order in which rules are tried. No database, no server.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use freedompay_receiver::domain::{Order, OrderStatus, PaymentNotice, RuleFailure, Rules};
use freedompay_receiver::protocol::Amount;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

/// Every rule on, KZT only, between 100 and 10000.
fn all_on() -> Rules {
    Rules {
        require_known_order: true,
        amount_must_match: true,
        currency_must_match: true,
        allowed_currencies: vec!["KZT".into()],
        min_amount: Some(amount("100")),
        max_amount: Some(amount("10000")),
        reject_expired: true,
        reject_already_paid: true,
        reject_testing_mode: true,
        payment_date_offset: FixedOffset::east_opt(5 * 3600).unwrap(),
    }
}

fn all_off() -> Rules {
    Rules {
        require_known_order: false,
        amount_must_match: false,
        currency_must_match: false,
        allowed_currencies: Vec::new(),
        min_amount: None,
        max_amount: None,
        reject_expired: false,
        reject_already_paid: false,
        reject_testing_mode: false,
        ..all_on()
    }
}

fn notice(amount_text: &str, currency: &str) -> PaymentNotice {
    PaymentNotice {
        order_id: "O-1".into(),
        payment_id: "P-1".into(),
        amount: amount(amount_text),
        currency: currency.into(),
        testing_mode: false,
    }
}

fn order(status: OrderStatus) -> Order {
    Order {
        order_id: "O-1".into(),
        amount: amount("7000"),
        currency: "KZT".into(),
        status,
        expires_at: None,
        paid_payment_id: None,
    }
}

fn pending() -> Order {
    order(OrderStatus::Pending)
}

fn fail(rule: &'static str, description: &str) -> Result<(), RuleFailure> {
    Err(RuleFailure {
        rule,
        description: description.into(),
    })
}

type Case<'a> = (
    &'a str,
    Rules,
    PaymentNotice,
    Option<Order>,
    Option<DateTime<Utc>>,
    Result<(), RuleFailure>,
);

fn table(cases: Vec<Case<'_>>) {
    for (name, rules, notice, order, paid_at, want) in cases {
        assert_eq!(
            rules.check(&notice, order.as_ref(), paid_at),
            want,
            "case: {name}"
        );
    }
}

#[test]
fn a_payment_every_rule_allows_passes() {
    table(vec![
        (
            "all rules on, matching order",
            all_on(),
            notice("7000", "KZT"),
            Some(pending()),
            Some(now()),
            Ok(()),
        ),
        (
            "amounts compare by value, currencies ignore case",
            all_on(),
            notice("7000.00", "kzt"),
            Some(Order {
                currency: "kzt".into(),
                ..pending()
            }),
            Some(now()),
            Ok(()),
        ),
        (
            "all rules off, no order",
            all_off(),
            notice("1", "USD"),
            None,
            Some(now()),
            Ok(()),
        ),
        (
            "all rules off, order differs in everything",
            all_off(),
            PaymentNotice {
                testing_mode: true,
                ..notice("1", "USD")
            },
            Some(Order {
                expires_at: Some(now() - Duration::days(1)),
                ..pending()
            }),
            Some(now()),
            Ok(()),
        ),
        (
            "a failed order may be paid again",
            all_on(),
            notice("7000", "KZT"),
            Some(order(OrderStatus::Failed)),
            Some(now()),
            Ok(()),
        ),
    ]);
}

#[test]
fn each_rule_fails_with_its_name_and_words() {
    table(vec![
        (
            "reject_testing_mode",
            all_on(),
            PaymentNotice {
                testing_mode: true,
                ..notice("7000", "KZT")
            },
            Some(pending()),
            Some(now()),
            fail("reject_testing_mode", "Test payments are not accepted"),
        ),
        (
            "allowed_currencies (upper-cased in the words)",
            all_on(),
            notice("7000", "usd"),
            Some(pending()),
            Some(now()),
            fail("allowed_currencies", "Currency USD is not accepted"),
        ),
        (
            "min_amount",
            all_on(),
            notice("99.99", "KZT"),
            Some(pending()),
            Some(now()),
            fail("min_amount", "Amount 99.99 is below the minimum of 100"),
        ),
        (
            "max_amount",
            all_on(),
            notice("10000.01", "KZT"),
            Some(pending()),
            Some(now()),
            fail(
                "max_amount",
                "Amount 10000.01 is above the maximum of 10000",
            ),
        ),
        (
            "require_known_order",
            all_on(),
            notice("7000", "KZT"),
            None,
            Some(now()),
            fail("require_known_order", "Order O-1 is not known"),
        ),
        (
            "reject_already_paid",
            all_on(),
            notice("7000", "KZT"),
            Some(Order {
                paid_payment_id: Some("P-0".into()),
                ..order(OrderStatus::Paid)
            }),
            Some(now()),
            fail("reject_already_paid", "Order O-1 is already paid"),
        ),
        (
            "reject_expired",
            all_on(),
            notice("7000", "KZT"),
            Some(Order {
                expires_at: Some(now() - Duration::seconds(1)),
                ..pending()
            }),
            Some(now()),
            fail("reject_expired", "Order O-1 has expired"),
        ),
        (
            "amount_must_match",
            all_on(),
            notice("6999.99", "KZT"),
            Some(pending()),
            Some(now()),
            fail(
                "amount_must_match",
                "Amount 6999.99 does not match the amount 7000 of order O-1",
            ),
        ),
        (
            "currency_must_match",
            Rules {
                allowed_currencies: Vec::new(),
                ..all_on()
            },
            notice("7000", "usd"),
            Some(pending()),
            Some(now()),
            fail(
                "currency_must_match",
                "Currency USD does not match the currency KZT of order O-1",
            ),
        ),
    ]);
}

#[test]
fn boundaries_are_inclusive_where_the_code_says() {
    let expiring = |seconds_from_now| Order {
        expires_at: Some(now() + Duration::seconds(seconds_from_now)),
        ..pending()
    };
    table(vec![
        (
            "amount equal to min_amount",
            Rules {
                amount_must_match: false,
                ..all_on()
            },
            notice("100", "KZT"),
            Some(pending()),
            Some(now()),
            Ok(()),
        ),
        (
            "amount equal to max_amount",
            Rules {
                amount_must_match: false,
                ..all_on()
            },
            notice("10000", "KZT"),
            Some(pending()),
            Some(now()),
            Ok(()),
        ),
        (
            "expires exactly when paid",
            all_on(),
            notice("7000", "KZT"),
            Some(expiring(0)),
            Some(now()),
            fail("reject_expired", "Order O-1 has expired"),
        ),
        (
            "expires a second after it was paid",
            all_on(),
            notice("7000", "KZT"),
            Some(expiring(1)),
            Some(now()),
            Ok(()),
        ),
        (
            "no paid_at (approved by a check): expiry not judged",
            all_on(),
            notice("7000", "KZT"),
            Some(expiring(-3600)),
            None,
            Ok(()),
        ),
        (
            "reject_expired off",
            Rules {
                reject_expired: false,
                ..all_on()
            },
            notice("7000", "KZT"),
            Some(expiring(-3600)),
            Some(now()),
            Ok(()),
        ),
        (
            "paid by this very payment (a repeat)",
            all_on(),
            notice("7000", "KZT"),
            Some(Order {
                paid_payment_id: Some("P-1".into()),
                ..order(OrderStatus::Paid)
            }),
            Some(now()),
            Ok(()),
        ),
        (
            "paid by another payment, reject_already_paid off",
            Rules {
                reject_already_paid: false,
                ..all_on()
            },
            notice("7000", "KZT"),
            Some(Order {
                paid_payment_id: Some("P-0".into()),
                ..order(OrderStatus::Paid)
            }),
            Some(now()),
            Ok(()),
        ),
    ]);
}

#[test]
fn the_order_status_refuses_whatever_the_rules() {
    let expired_at = |at: Option<DateTime<Utc>>| Order {
        expires_at: at,
        ..order(OrderStatus::Expired)
    };
    let hour_ago = Some(now() - Duration::hours(1));
    table(vec![
        (
            "cancelled",
            all_off(),
            notice("7000", "KZT"),
            Some(order(OrderStatus::Cancelled)),
            Some(now()),
            fail("order_status", "Order O-1 is cancelled"),
        ),
        (
            "refunded",
            all_off(),
            notice("7000", "KZT"),
            Some(order(OrderStatus::Refunded)),
            Some(now()),
            fail("order_status", "Order O-1 has been refunded"),
        ),
        (
            "partially refunded",
            all_off(),
            notice("7000", "KZT"),
            Some(order(OrderStatus::PartiallyRefunded)),
            Some(now()),
            fail("order_status", "Order O-1 has been refunded"),
        ),
        (
            "expired without expires_at, even unjudged",
            all_off(),
            notice("7000", "KZT"),
            Some(expired_at(None)),
            None,
            fail("order_status", "Order O-1 has expired"),
        ),
        (
            "expired, paid after expires_at",
            all_off(),
            notice("7000", "KZT"),
            Some(expired_at(hour_ago)),
            Some(now()),
            fail("order_status", "Order O-1 has expired"),
        ),
        (
            "expired, paid exactly at expires_at",
            all_off(),
            notice("7000", "KZT"),
            Some(expired_at(Some(now()))),
            Some(now()),
            fail("order_status", "Order O-1 has expired"),
        ),
        (
            "expired status, but paid before expires_at",
            all_off(),
            notice("7000", "KZT"),
            Some(expired_at(Some(now() + Duration::seconds(1)))),
            Some(now()),
            Ok(()),
        ),
        (
            "expired status, approved by a check (no paid_at)",
            all_off(),
            notice("7000", "KZT"),
            Some(expired_at(hour_ago)),
            None,
            Ok(()),
        ),
    ]);
}

#[test]
fn rules_are_tried_in_a_fixed_order() {
    // A payment that breaks every rule at once: removing the first failing
    // rule each time reveals the next, in the documented order.
    let order = Order {
        expires_at: Some(now() - Duration::hours(1)),
        paid_payment_id: Some("P-0".into()),
        ..order(OrderStatus::Paid)
    };
    let bad = PaymentNotice {
        testing_mode: true,
        ..notice("50", "usd")
    };
    let mut rules = Rules {
        max_amount: Some(amount("10")),
        ..all_on()
    };
    let mut seen = Vec::new();
    while let Err(failure) = rules.check(&bad, Some(&order), Some(now())) {
        seen.push(failure.rule);
        match failure.rule {
            "reject_testing_mode" => rules.reject_testing_mode = false,
            "allowed_currencies" => rules.allowed_currencies.clear(),
            "min_amount" => rules.min_amount = None,
            "max_amount" => rules.max_amount = None,
            "reject_already_paid" => rules.reject_already_paid = false,
            "reject_expired" => rules.reject_expired = false,
            "amount_must_match" => rules.amount_must_match = false,
            "currency_must_match" => rules.currency_must_match = false,
            other => panic!("unexpected rule {other}"),
        }
        assert!(seen.len() <= 8, "no end: {seen:?}");
    }
    assert_eq!(
        seen,
        [
            "reject_testing_mode",
            "allowed_currencies",
            "min_amount",
            "max_amount",
            "reject_already_paid",
            "reject_expired",
            "amount_must_match",
            "currency_must_match",
        ]
    );
    // The order is only looked at once the amount rules pass.
    assert_eq!(
        Rules {
            min_amount: None,
            max_amount: Some(amount("10")),
            ..all_on()
        }
        .check(&notice("50", "KZT"), None, Some(now()))
        .unwrap_err()
        .rule,
        "max_amount"
    );
}

#[test]
fn payment_date_is_read_at_the_configured_offset() {
    let local = NaiveDate::from_ymd_opt(2026, 12, 4)
        .unwrap()
        .and_hms_opt(17, 0, 0)
        .unwrap();
    assert_eq!(all_on().payment_date_utc(local), Some(now()));
    let utc = Rules {
        payment_date_offset: FixedOffset::east_opt(0).unwrap(),
        ..all_on()
    };
    assert_eq!(
        utc.payment_date_utc(local),
        Some(now() + Duration::hours(5))
    );
    let west = Rules {
        payment_date_offset: FixedOffset::west_opt(3 * 3600).unwrap(),
        ..all_on()
    };
    assert_eq!(
        west.payment_date_utc(local),
        Some(now() + Duration::hours(8))
    );
}
