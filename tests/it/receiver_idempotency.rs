//! Repeated deliveries: the same answer, no second transition, sequential and
//! concurrent, on both backends.

use freedompay_receiver::domain::{CallbackKind, OrderStatus, PaymentStatus};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay;
use crate::support::{KEY, MERCHANT, TestApp};

on_both_backends! {
    async fn a_repeated_result_gets_the_same_answer_freshly_signed(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let first = app.fp.send("result", &freedompay::result("O", "1", "1000")).await;
        first.assert_answer("result", Status::Ok);
        let second = app.fp.send("result", &freedompay::result("O", "1", "1000")).await;
        second.assert_answer("result", Status::Ok);
        assert_eq!(first.description(), second.description());
        assert_ne!(first.body, second.body, "fresh salt and signature");
        let counts = app.store.count_events(Some(CallbackKind::Result)).await.unwrap();
        assert_eq!((counts.first, counts.duplicate), (1, 1));
        app.stop().await;
    }

    async fn a_repeated_rejection_is_replayed_even_after_the_state_changed(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let wrong = freedompay::result("O", "1", "5").set("pg_can_reject", "1");
        let first = app.fp.send("result", &wrong).await;
        first.assert_answer("result", Status::Rejected);
        // The order is paid by another payment meanwhile; the retry of the
        // first one must still get the first answer, not a new decision.
        app.fp.send("result", &freedompay::result("O", "2", "1000")).await.assert_answer("result", Status::Ok);
        // (A re-delivery with pg_can_reject=0 is another content: see
        // receiver_state_machine.)
        let retry = app.fp.send("result", &wrong).await;
        retry.assert_answer("result", Status::Rejected);
        assert_eq!(retry.description(), first.description());
        assert_eq!(app.store.payment(MERCHANT, "1").await.unwrap().unwrap().status, PaymentStatus::Rejected);
        app.stop().await;
    }

    async fn concurrent_duplicates_apply_once(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let fields = freedompay::result("O", "1", "1000");
        let sends = (0..8).map(|_| app.fp.send("result", &fields));
        let replies = futures_util::future::join_all(sends).await;
        for reply in &replies {
            reply.assert_answer("result", Status::Ok);
            assert_eq!(reply.description(), "Payment accepted");
        }
        let counts = app.store.count_events(Some(CallbackKind::Result)).await.unwrap();
        assert_eq!((counts.first, counts.duplicate), (1, 7));
        app.stop().await;
    }

    async fn concurrent_payments_for_one_order_pay_it_once(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let fields: Vec<_> = (1..=6).map(|p| freedompay::result("O", &p.to_string(), "1000")).collect();
        let replies = futures_util::future::join_all(fields.iter().map(|f| app.fp.send("result", f))).await;
        let accepted = replies.iter().filter(|r| r.pg_status() == Some(Status::Ok)).count();
        let rejected = replies.iter().filter(|r| r.description() == "Order O is already paid").count();
        assert_eq!((accepted, rejected), (1, 5));
        app.stop().await;
    }

    async fn fifty_concurrent_results_for_fifty_orders_all_pay(backend) {
        let app = TestApp::spawn(backend).await;
        for i in 0..50 {
            app.order(&format!("B-{i}"), "2500.50", "KZT").await;
        }
        let fields: Vec<_> = (0..50)
            .map(|i| freedompay::result(&format!("B-{i}"), &format!("{}", 70_000 + i), "2500.5"))
            .collect();
        let replies = futures_util::future::join_all(fields.iter().map(|f| app.fp.send("result", f))).await;
        for reply in &replies {
            reply.assert_answer("result", Status::Ok);
        }
        for i in 0..50 {
            let order = app.store.order(MERCHANT, &format!("B-{i}")).await.unwrap().unwrap();
            assert_eq!(order.status, OrderStatus::Paid);
        }
        assert_eq!(app.store.count_events(Some(CallbackKind::Result)).await.unwrap().first, 50);
        if backend == crate::support::Backend::Postgres {
            // The burst was committed in groups larger than one: events
            // committed together share their transaction's xmin. (Had every
            // group failed, its callbacks would have been retried one by one,
            // just as well, unseen. SQLite marks no row with its transaction.)
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            let grouped: i64 = sqlx::query_scalar("SELECT count(*) - count(DISTINCT xmin::text) FROM events")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert!(grouped > 0, "no two of the 50 results were committed together");
        }
        app.stop().await;
    }

    async fn check_and_result_of_one_payment_arriving_together_both_apply(backend) {
        // Concurrent deliveries land in the same groups: a check and the
        // result of one payment (and a repeat of the result) decided together
        // must see each other's changes.
        let app = TestApp::spawn(backend).await;
        for i in 0..20 {
            app.order(&format!("T-{i}"), "100", "KZT").await;
        }
        let mut fields = Vec::new();
        for i in 0..20 {
            let (order, payment) = (format!("T-{i}"), format!("{}", 80_000 + i));
            fields.push(("check", freedompay::check(&order, &payment, "100")));
            fields.push(("result", freedompay::result(&order, &payment, "100")));
            fields.push(("result", freedompay::result(&order, &payment, "100")));
        }
        let replies = futures_util::future::join_all(fields.iter().map(|(kind, f)| app.fp.send(kind, f))).await;
        for ((kind, _), reply) in fields.iter().zip(&replies) {
            reply.assert_answer(kind, Status::Ok);
        }
        for i in 0..20 {
            let order = app.store.order(MERCHANT, &format!("T-{i}")).await.unwrap().unwrap();
            assert_eq!(order.status, OrderStatus::Paid);
            let payment = app.store.payment(MERCHANT, &format!("{}", 80_000 + i)).await.unwrap().unwrap();
            assert_eq!(payment.status, PaymentStatus::Succeeded);
        }
        let results = app.store.count_events(Some(CallbackKind::Result)).await.unwrap();
        assert_eq!((results.first, results.duplicate), (20, 20));
        assert_eq!(app.store.count_events(Some(CallbackKind::Check)).await.unwrap().first, 20);
        app.stop().await;
    }

    async fn a_repeated_check_is_decided_again_and_recorded(backend) {
        // Checks change nothing durable: every delivery is judged against the
        // state of its moment (an unchanged state gives the same answer).
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let first = app.fp.send("check", &freedompay::check("O", "1", "1000")).await;
        first.assert_answer("check", Status::Ok);
        let again = app.fp.send_as("check", freedompay::Encoding::Multipart, KEY, &freedompay::check("O", "1", "1000")).await;
        again.assert_answer("check", Status::Ok);
        let counts = app.store.count_events(Some(CallbackKind::Check)).await.unwrap();
        assert_eq!((counts.first, counts.duplicate), (2, 0));
        app.stop().await;
    }
}
