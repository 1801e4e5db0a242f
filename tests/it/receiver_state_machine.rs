//! The callback state machine under retries, reordering and contradictions:
//! checks decided afresh, conflicting repeats, `pg_can_reject` flipping,
//! notices before their payment, forward-only columns, late results, and
//! what is flagged for an operator. Each on both backends.

use chrono::{Duration, Utc};
use freedompay_receiver::domain::task::{CONFIRM_KEY, TaskKind};
use freedompay_receiver::domain::{CallbackKind, OrderStatus, PaymentStatus};
use freedompay_receiver::protocol::{Amount, Status};
use freedompay_receiver::store::{EventMarks, NewOrder};

use crate::on_both_backends;
use freedompay_receiver::protocol::Message;

use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{Backend, KEY, MERCHANT, TestApp};

async fn marks(app: &TestApp, kind: &str) -> Vec<EventMarks> {
    app.store.event_marks(Some(kind)).await.unwrap()
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

/// Writes an order row as a careless internal service might (bypassing the
/// store's own insert, which only takes valid amounts).
async fn damage_order(app: &TestApp, backend: Backend, order_id: &str) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
            sqlx::query("UPDATE orders SET amount = '7000.001' WHERE order_id = ?1")
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            sqlx::query("UPDATE orders SET amount = 7000.001 WHERE order_id = $1")
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// Sets an order's status as an internal service would.
async fn set_order_status(app: &TestApp, backend: Backend, order_id: &str, status: &str) {
    let sql = match backend {
        Backend::Sqlite => "UPDATE orders SET status = ?1 WHERE order_id = ?2",
        Backend::Postgres => "UPDATE orders SET status = $1 WHERE order_id = $2",
    };
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
            sqlx::query(sql)
                .bind(status)
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            sqlx::query(sql)
                .bind(status)
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

on_both_backends! {
    async fn a_check_is_decided_against_the_state_of_now(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "100", "KZT").await;
        app.fp.send("check", &freedompay::check("O", "A", "100")).await.assert_answer("check", Status::Ok);
        // The same check with another amount is judged, not replayed.
        let cheaper = app.fp.send("check", &freedompay::check("O", "A", "99.99")).await;
        cheaper.assert_answer("check", Status::Rejected);
        // Another payment pays the order; the first payment's check is refused now.
        app.fp.send("result", &freedompay::result("O", "B", "100")).await.assert_answer("result", Status::Ok);
        let again = app.fp.send("check", &freedompay::check("O", "A", "100")).await;
        again.assert_answer("check", Status::Rejected);
        assert_eq!(again.description(), "Order O is already paid");
        // Each check is recorded with the answer actually sent.
        let checks = marks(&app, "check").await;
        let answers: Vec<_> = checks.iter().map(|e| e.answer_status.as_deref()).collect();
        assert_eq!(answers, [Some("ok"), Some("rejected"), Some("rejected")]);
        assert!(checks.iter().all(|e| !e.duplicate));
        app.stop().await;
    }

    async fn a_repeat_with_different_content_is_a_conflict(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let first = freedompay::result("O", "1", "1000");
        app.fp.send("result", &first).await.assert_answer("result", Status::Ok);
        // The same content again: a duplicate.
        app.fp.send("result", &first).await.assert_answer("result", Status::Ok);
        // Another amount under the same key: a conflict; nothing moves back.
        let other = app.fp.send("result", &first.clone().set("pg_amount", "999")).await;
        other.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.amount), (PaymentStatus::Succeeded, amount("1000")));
        let results = marks(&app, "result").await;
        let flags: Vec<_> = results.iter().map(|e| (e.duplicate, e.conflict)).collect();
        assert_eq!(flags, [(false, false), (true, false), (true, true)]);

        // A refund with its id: the repeat with another amount keeps the first
        // answer and total, is marked, and asks FreedomPay for the total.
        let refund = freedompay::refund("O", "1", "100").set("pg_refund_payment_id", "R-1");
        app.fp.send("refund", &refund).await.assert_answer("refund", Status::Ok);
        app.fp.send("refund", &refund.clone().set("pg_refund_amount", "200")).await.assert_answer("refund", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.refunded_amount, amount("100"));
        let refunds = marks(&app, "refund").await;
        assert!(!refunds[0].conflict && refunds[1].conflict, "{refunds:?}");
        let tasks = app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "1").await.unwrap();
        assert!(tasks.iter().any(|t| t.task_key == CONFIRM_KEY), "{tasks:?}");

        // A payout with the same status and another amount.
        let payout = freedompay::payout("PO-1", "77", "ok");
        app.fp.send("payout", &payout).await.assert_answer("payout", Status::Ok);
        app.fp.send("payout", &payout.clone().set("pg_payment_amount", "1")).await.assert_answer("payout", Status::Ok);
        assert_eq!(app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap().amount, Some(amount("5000")));
        assert!(marks(&app, "payout").await[1].conflict);

        let metrics = freedompay_receiver::telemetry::metrics::render();
        assert!(metrics.contains("freedompay_conflicting_repeats_total{endpoint=\"result\"}"), "{metrics}");
        app.stop().await;
    }

    async fn routine_retries_are_repeats_not_conflicts(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        // A rejected result retried with pg_can_reject=0 (FreedomPay's
        // routine retry): decided again, not a conflict.
        let wrong = freedompay::result("O", "1", "5").set("pg_can_reject", "1");
        app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
        app.fp.send("result", &wrong.clone().set("pg_can_reject", "0")).await.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.needs_refund), (PaymentStatus::Succeeded, true));

        // A repeat carrying an empty merchant field that its signature left
        // out (the drop-empty variant): the same signed content.
        let first = freedompay::result("O", "2", "1000");
        app.fp.send("result", &first).await.assert_answer("result", Status::Ok);
        let signed = FreedomPay::sign("result", KEY, &first);
        let mut pairs = signed.to_pairs();
        pairs.push(("note".to_owned(), String::new()));
        let with_empty = Message::from_pairs(pairs).unwrap();
        let reply = app.fp.deliver("/freedompay/result", Encoding::Form, &with_empty).await;
        reply.assert_answer("result", Status::Ok);

        let results = marks(&app, "result").await;
        let flags: Vec<_> = results.iter().map(|e| (e.duplicate, e.conflict)).collect();
        assert_eq!(flags, [(false, false), (true, false), (false, false), (true, false)]);
        app.stop().await;
    }

    async fn a_capture_of_a_rejected_payment_is_flagged_and_confirmed_now(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let wrong = freedompay::result("O", "1", "5").set("pg_can_reject", "1");
        app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
        // The rejection's confirmation is not due yet.
        assert!(app.store.claim_tasks("early", 60, 10).await.unwrap().is_empty());
        app.fp.send("capture", &freedompay::capture("O", "1", "5")).await.assert_answer("capture", Status::Ok);
        let captures = marks(&app, "capture").await;
        assert_eq!(captures[0].flag.as_deref(), Some("capture_of_rejected: the payment was rejected"));
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.captured), (PaymentStatus::Rejected, Some(true)));
        // The confirmation is due now.
        let due = app.store.claim_tasks("now", 60, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!((due[0].kind, due[0].subject_id.as_str(), due[0].task_key.as_str()), (TaskKind::PaymentStatus, "1", CONFIRM_KEY));
        app.stop().await;
    }

    async fn a_flag_quoting_a_card_number_is_stored_masked(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let pan = "4111111111111111";
        let reply = app.fp.send("result", &freedompay::result("O", "1", "1000").set("pg_can_reject", pan)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let flag = marks(&app, "result").await[0].flag.clone().unwrap();
        assert!(flag.starts_with("unparseable: "), "{flag}");
        assert!(!flag.contains(pan), "{flag}");
        assert!(flag.contains("411111XXXXXX1111"), "{flag}");
        app.stop().await;
    }

    async fn a_rejected_payment_redelivered_with_can_reject_0_is_taken_and_flagged_for_refund(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let wrong = freedompay::result("O", "1", "5").set("pg_can_reject", "1");
        app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
        // Rejection is confirmed later by a status query.
        let tasks = app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "1").await.unwrap();
        assert_eq!(tasks.len(), 1);
        // The answer was lost; FreedomPay completes the payment and says so.
        let completed = app.fp.send("result", &wrong.clone().set("pg_can_reject", "0")).await;
        completed.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert!(payment.needs_refund);
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Pending);
        // Repeats of either stay where they are.
        app.fp.send("result", &wrong.clone().set("pg_can_reject", "0")).await.assert_answer("result", Status::Ok);
        app.fp.send("result", &wrong).await.assert_answer("result", Status::Rejected);
        assert_eq!(app.store.payment(MERCHANT, "1").await.unwrap().unwrap(), payment);
        app.stop().await;
    }

    async fn a_refund_or_capture_before_its_payment_is_answered_503_and_applied_later(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "7000", "KZT").await;
        let refund = freedompay::refund("O", "1", "7000");
        let early = app.fp.send("refund", &refund).await;
        assert_eq!(early.status, 503);
        let capture = app.fp.send("capture", &freedompay::capture("O", "1", "7000")).await;
        assert_eq!(capture.status, 503);
        let early_marks = marks(&app, "refund").await;
        assert_eq!(early_marks.len(), 1, "recorded");
        assert_eq!(early_marks[0].flag.as_deref(), Some("early_notice"));
        app.fp
            .send("result", &freedompay::result("O", "1", "7000").set("pg_can_reject", "0").set("pg_captured", "0"))
            .await
            .assert_answer("result", Status::Ok);
        // FreedomPay delivers the refund and the capture again.
        app.fp.send("refund", &refund).await.assert_answer("refund", Status::Ok);
        app.fp.send("capture", &freedompay::capture("O", "1", "7000")).await.assert_answer("capture", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.refunded_amount), (PaymentStatus::Refunded, amount("7000")));
        assert_eq!(payment.captured, Some(true));
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Refunded);
        assert!(!marks(&app, "refund").await[1].duplicate);
        app.stop().await;
    }

    async fn captured_never_moves_back(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "100", "KZT").await;
        app.fp.send("check", &freedompay::check("O", "1", "100")).await.assert_answer("check", Status::Ok);
        app.fp.send("capture", &freedompay::capture("O", "1", "100")).await.assert_answer("capture", Status::Ok);
        assert_eq!(app.store.payment(MERCHANT, "1").await.unwrap().unwrap().captured, Some(true));
        let late = freedompay::result("O", "1", "100").set("pg_captured", "0");
        app.fp.send("result", &late).await.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.captured), (PaymentStatus::Succeeded, Some(true)));
        app.stop().await;
    }

    async fn a_late_result_is_judged_at_its_payment_date(backend) {
        let app = TestApp::spawn(backend).await;
        let expired = Utc::now() - Duration::hours(1);
        for id in ["LATE", "AFTER"] {
            app.store
                .insert_order(MERCHANT, &NewOrder {
                    order_id: id,
                    amount: amount("100"),
                    currency: "KZT",
                    expires_at: Some(expired),
                })
                .await
                .unwrap();
        }
        // pg_payment_date is Almaty time (UTC+5).
        let almaty = |at: chrono::DateTime<Utc>| (at + Duration::hours(5)).format("%Y-%m-%d %H:%M:%S").to_string();
        // Paid two hours ago, before the order expired; delivered now.
        let late = freedompay::result("LATE", "1", "100").set("pg_payment_date", &almaty(Utc::now() - Duration::hours(2)));
        app.fp.send("result", &late).await.assert_answer("result", Status::Ok);
        assert_eq!(app.store.order(MERCHANT, "LATE").await.unwrap().unwrap().status, OrderStatus::Paid);
        assert!(!app.store.payment(MERCHANT, "1").await.unwrap().unwrap().needs_refund);
        // Paid after the order expired: refused.
        let after = freedompay::result("AFTER", "2", "100").set("pg_payment_date", &almaty(Utc::now() - Duration::minutes(10)));
        let reply = app.fp.send("result", &after).await;
        reply.assert_answer("result", Status::Rejected);
        assert_eq!(reply.description(), "Order AFTER has expired");
        app.stop().await;
    }

    async fn an_order_marked_expired_is_judged_like_its_expires_at(backend) {
        let app = TestApp::spawn(backend).await;
        let expired = Utc::now() - Duration::hours(1);
        for (id, expires_at) in [("LATE", Some(expired)), ("AFTER", Some(expired)), ("NOTIME", None)] {
            app.store
                .insert_order(MERCHANT, &NewOrder { order_id: id, amount: amount("100"), currency: "KZT", expires_at })
                .await
                .unwrap();
            // An internal service marks it expired.
            set_order_status(&app, backend, id, "expired").await;
        }
        let almaty = |at: chrono::DateTime<Utc>| (at + Duration::hours(5)).format("%Y-%m-%d %H:%M:%S").to_string();
        let paid = almaty(Utc::now() - Duration::hours(2));
        // Paid before expires_at: taken.
        let late = freedompay::result("LATE", "1", "100").set("pg_payment_date", &paid);
        app.fp.send("result", &late).await.assert_answer("result", Status::Ok);
        assert_eq!(app.store.order(MERCHANT, "LATE").await.unwrap().unwrap().status, OrderStatus::Paid);
        // Paid after it: refused.
        let after = freedompay::result("AFTER", "2", "100").set("pg_payment_date", &almaty(Utc::now() - Duration::minutes(10)));
        let reply = app.fp.send("result", &after).await;
        reply.assert_answer("result", Status::Rejected);
        assert_eq!(reply.description(), "Order AFTER has expired");
        // No expires_at to judge by: refused, whatever the payment date.
        let reply = app.fp.send("result", &freedompay::result("NOTIME", "3", "100").set("pg_payment_date", &paid)).await;
        reply.assert_answer("result", Status::Rejected);
        assert_eq!(reply.description(), "Order NOTIME has expired");
        app.stop().await;
    }

    async fn the_zone_of_the_payment_date_is_a_setting(backend) {
        let app = TestApp::spawn_with(backend, |t| t.push_str("\n[rules]\npayment_date_utc_offset = \"+00:00\"\n")).await;
        let expired = Utc::now() - Duration::hours(1);
        app.store
            .insert_order(MERCHANT, &NewOrder { order_id: "Z", amount: amount("100"), currency: "KZT", expires_at: Some(expired) })
            .await
            .unwrap();
        // Half an hour ago in UTC: after expiry. Read at the default +05:00 it
        // would be five and a half hours ago, before it.
        let written = (Utc::now() - Duration::minutes(30)).format("%Y-%m-%d %H:%M:%S").to_string();
        let reply = app.fp.send("result", &freedompay::result("Z", "1", "100").set("pg_payment_date", &written)).await;
        reply.assert_answer("result", Status::Rejected);
        assert_eq!(reply.description(), "Order Z has expired");
        app.stop().await;
    }

    async fn authenticated_callbacks_that_fail_parsing_are_recorded_and_flagged(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "7000", "KZT").await;
        let mut repeated_field = freedompay::result("O", "1", "7000");
        repeated_field.0.push(("pg_amount".into(), "1".into()));
        for bad in [
            freedompay::result("O", "1", "7000.001"),
            freedompay::result("O", "1", "7000").set("pg_can_reject", "2"),
            repeated_field,
        ] {
            let reply = app.fp.send("result", &bad).await;
            assert_eq!(reply.status, 400);
        }
        let results = marks(&app, "result").await;
        assert_eq!(results.len(), 3);
        for event in &results {
            assert!(event.flag.as_deref().unwrap().starts_with("unparseable: "), "{event:?}");
            assert_eq!(event.payment_id.as_deref(), Some("1"));
        }
        assert!(app.store.payment(MERCHANT, "1").await.unwrap().is_none());
        let metrics = freedompay_receiver::telemetry::metrics::render();
        assert!(metrics.contains("freedompay_flagged_events_total{endpoint=\"result\",flag=\"unparseable\"}"), "{metrics}");
        app.stop().await;
    }

    async fn a_refund_larger_than_the_payment_is_recorded_and_flagged(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "7000", "KZT").await;
        app.fp.send("result", &freedompay::result("O", "1", "7000")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("O", "1", "9000")).await.assert_answer("refund", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.refunded_amount), (PaymentStatus::Refunded, amount("9000")));
        let refunds = marks(&app, "refund").await;
        assert_eq!(refunds[0].flag.as_deref(), Some("over_refund: 9000 refunded of 7000"));
        app.stop().await;
    }

    async fn a_malformed_order_row_is_answered_by_rule_and_flagged(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("BAD", "7000", "KZT").await;
        damage_order(&app, backend, "BAD").await;
        let check = app.fp.send("check", &freedompay::check("BAD", "1", "7000")).await;
        check.assert_answer("check", Status::Rejected);
        assert_eq!(check.description(), "Order BAD cannot be paid: its record is damaged");
        let rejected = app.fp.send("result", &freedompay::result("BAD", "1", "7000")).await;
        rejected.assert_answer("result", Status::Rejected);
        let taken = app.fp.send("result", &freedompay::result("BAD", "2", "7000").set("pg_can_reject", "0")).await;
        taken.assert_answer("result", Status::Ok);
        assert!(app.store.payment(MERCHANT, "2").await.unwrap().unwrap().needs_refund);
        for kind in ["check", "result"] {
            for event in marks(&app, kind).await {
                assert!(event.flag.as_deref().unwrap().starts_with("bad_order_row: "), "{event:?}");
            }
        }
        app.stop().await;
    }

    async fn a_burst_mixing_fresh_results_with_notices_out_of_order_keeps_every_case(backend) {
        // Sent together, these share groups on the one write path, whose
        // steps must keep the early refund, the over-refund and the
        // conflicting repeat apart, each with its own outcome. Several
        // rounds, so that they share a group.
        let app = TestApp::spawn(backend).await;
        for round in 0..4 {
            let order = |name: &str| format!("B{round}-{name}");
            app.order(&order("A"), "1000", "KZT").await;
            app.order(&order("L"), "10", "KZT").await;
            let paid = freedompay::result(&order("A"), &order("PA"), "1000");
            app.fp.send("result", &paid).await.assert_answer("result", Status::Ok);
            let mut burst = Vec::new();
            for i in 0..7 {
                app.order(&order(&i.to_string()), "10", "KZT").await;
                burst.push(("result", freedompay::result(&order(&i.to_string()), &order(&format!("P{i}")), "10")));
            }
            let early = freedompay::refund(&order("L"), &order("PL"), "10");
            burst.push(("refund", early.clone()));
            burst.push(("refund", freedompay::refund(&order("A"), &order("PA"), "1000").set("pg_refund_amount", "2000")));
            burst.push(("result", paid.clone().set("pg_amount", "999")));
            let replies = futures_util::future::join_all(burst.iter().map(|(kind, fields)| app.fp.send(kind, fields))).await;

            for (i, reply) in replies.iter().enumerate() {
                if i == 7 {
                    assert_eq!(reply.status, 503, "early refund: {}", reply.body);
                } else {
                    reply.assert_answer(burst[i].0, Status::Ok);
                }
            }
            // Every `ok` is committed.
            for i in 0..7 {
                let payment = app.store.payment(MERCHANT, &order(&format!("P{i}"))).await.unwrap().unwrap();
                assert_eq!(payment.status, PaymentStatus::Succeeded);
                let stored = app.store.order(MERCHANT, &order(&i.to_string())).await.unwrap().unwrap();
                assert_eq!(stored.status, OrderStatus::Paid);
            }
            let pa = app.store.payment(MERCHANT, &order("PA")).await.unwrap().unwrap();
            assert_eq!(pa.refunded_amount, amount("2000"));
            let about_pa = |events: Vec<EventMarks>| -> Vec<EventMarks> {
                events.into_iter().filter(|e| e.payment_id.as_deref() == Some(order("PA").as_str())).collect()
            };
            let refunds = about_pa(marks(&app, "refund").await);
            assert!(refunds.iter().any(|e| e.flag.as_deref().is_some_and(|f| f.starts_with("over_refund: "))), "{refunds:?}");
            let results = about_pa(marks(&app, "result").await);
            let flags: Vec<_> = results.iter().map(|e| (e.duplicate, e.conflict)).collect();
            assert_eq!(flags, [(false, false), (true, true)]);
            // The early refund was left with FreedomPay: once its payment is
            // known, its next delivery is applied.
            app.fp.send("result", &freedompay::result(&order("L"), &order("PL"), "10")).await.assert_answer("result", Status::Ok);
            app.fp.send("refund", &early).await.assert_answer("refund", Status::Ok);
            let pl = app.store.payment(MERCHANT, &order("PL")).await.unwrap().unwrap();
            assert_eq!((pl.status, pl.refunded_amount), (PaymentStatus::Refunded, amount("10")));
        }
        app.stop().await;
    }

    async fn a_redirect_repeat_does_not_wait_for_its_payments_lock(backend) {
        let app = TestApp::spawn(backend).await;
        let fields = freedompay::Fields::default().set("pg_order_id", "RD").set("pg_payment_id", "43");
        let redirect = || app.fp.send_as("success", freedompay::Encoding::Get, crate::support::KEY, &fields);
        assert_eq!(redirect().await.status, 200);
        // A long callback transaction about the payment holds its lock (on
        // PostgreSQL; SQLite has none): a replayed redirect does not queue
        // behind it. Before, it waited for the lock; the bound only keeps a
        // failing run from hanging.
        let holder = match backend {
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
                let mut conn = pool.acquire().await.unwrap().detach();
                sqlx::query("SELECT pg_advisory_lock(hashtextextended($1 || '/' || $2, 0))")
                    .bind(MERCHANT)
                    .bind("43")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                pool.close().await;
                Some(conn)
            }
            Backend::Sqlite => None,
        };
        for _ in 0..3 {
            let reply = tokio::time::timeout(std::time::Duration::from_secs(30), redirect())
                .await
                .expect("the repeat is not held by the payment's lock");
            assert_eq!(reply.status, 200);
        }
        drop(holder);
        let key = freedompay_receiver::domain::IdempotencyKey {
            merchant_id: MERCHANT.into(),
            kind: "success",
            subject_id: "43".into(),
            discriminator: String::new(),
        };
        assert_eq!(app.store.redirect_repeats(&key).await.unwrap(), 3);
        assert_eq!(app.store.count_events(Some(CallbackKind::Success)).await.unwrap().first, 1);
        app.stop().await;
    }

    async fn a_redirect_is_recorded_once_per_payment_and_outcome(backend) {
        let app = TestApp::spawn(backend).await;
        let fields = freedompay::Fields::default().set("pg_order_id", "RD").set("pg_payment_id", "42");
        for _ in 0..5 {
            let reply = app.fp.send_as("success", freedompay::Encoding::Get, crate::support::KEY, &fields).await;
            assert_eq!(reply.status, 200);
        }
        app.fp.send_as("failure", freedompay::Encoding::Get, crate::support::KEY, &fields).await;
        assert_eq!(app.store.count_events(Some(CallbackKind::Success)).await.unwrap().first, 1);
        assert_eq!(app.store.count_events(Some(CallbackKind::Failure)).await.unwrap().first, 1);
        let key = freedompay_receiver::domain::IdempotencyKey {
            merchant_id: MERCHANT.into(),
            kind: "success",
            subject_id: "42".into(),
            discriminator: String::new(),
        };
        assert_eq!(app.store.redirect_repeats(&key).await.unwrap(), 4);
        app.stop().await;
    }
}
