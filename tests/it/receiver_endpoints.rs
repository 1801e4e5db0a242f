//! Every callback endpoint, in every encoding, on both backends.

use freedompay_receiver::domain::{CallbackKind, OrderStatus, PaymentStatus, PayoutStatus};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay::{self, ALL_ENCODINGS};
use crate::support::{KEY, MERCHANT, PAYOUT_KEY, TestApp};

on_both_backends! {
    async fn check_and_result_in_every_encoding(backend) {
        let app = TestApp::spawn(backend).await;
        for (i, encoding) in ALL_ENCODINGS.into_iter().enumerate() {
            let order = format!("ORD-{i}");
            let payment = format!("{}", 1_000 + i);
            app.order(&order, "15000", "KZT").await;
            let check = app.fp.send_as("check", encoding, KEY, &freedompay::check(&order, &payment, "15000")).await;
            check.assert_answer("check", Status::Ok);
            let result = app.fp.send_as("result", encoding, KEY, &freedompay::result(&order, &payment, "15000.00")).await;
            result.assert_answer("result", Status::Ok);
            let stored = app.store.order(MERCHANT, &order).await.unwrap().unwrap();
            assert_eq!(stored.status, OrderStatus::Paid, "{encoding:?}");
            let payment_row = app.store.payment(MERCHANT, &payment).await.unwrap().unwrap();
            assert_eq!(payment_row.status, PaymentStatus::Succeeded, "{encoding:?}");
            assert_eq!(payment_row.card_mask.as_deref(), Some("5483-18XX-XXXX-0293"));
            assert_eq!(payment_row.captured, Some(true));
        }
        let counts = app.store.count_events(Some(CallbackKind::Result)).await.unwrap();
        assert_eq!(counts.first, ALL_ENCODINGS.len() as i64);
        app.stop().await;
    }

    async fn answers_are_xml_signed_with_the_endpoint_script(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("A-1", "100", "KZT").await;
        let reply = app.fp.send("check", &freedompay::check("A-1", "77", "100")).await;
        assert_eq!(reply.headers["content-type"], "application/xml; charset=utf-8");
        assert!(reply.body.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><response><pg_status>ok</pg_status>"));
        assert!(reply.signature_ok("check", KEY));
        assert!(!reply.signature_ok("result", KEY));
        let salt = reply.answer.as_ref().unwrap().message.get("pg_salt").unwrap().to_owned();
        assert!(salt.len() >= 16);
        app.stop().await;
    }

    async fn refund_and_capture_update_the_payment_and_order(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("R-1", "1000", "KZT").await;
        app.fp.send("result", &freedompay::result("R-1", "501", "1000").set("pg_captured", "0")).await
            .assert_answer("result", Status::Ok);
        app.fp.send("capture", &freedompay::capture("R-1", "501", "1000")).await.assert_answer("capture", Status::Ok);
        assert_eq!(app.store.payment(MERCHANT, "501").await.unwrap().unwrap().captured, Some(true));

        app.fp.send("refund", &freedompay::refund("R-1", "501", "400")).await.assert_answer("refund", Status::Ok);
        let order = app.store.order(MERCHANT, "R-1").await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::PartiallyRefunded);
        let payment = app.store.payment(MERCHANT, "501").await.unwrap().unwrap();
        assert_eq!(payment.refunded_amount.canonical(), "400");
        assert_eq!(payment.status, PaymentStatus::Succeeded);

        app.fp.send("refund", &freedompay::refund("R-1", "501", "600.00")).await.assert_answer("refund", Status::Ok);
        assert_eq!(app.store.order(MERCHANT, "R-1").await.unwrap().unwrap().status, OrderStatus::Refunded);
        let payment = app.store.payment(MERCHANT, "501").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunded);
        assert_eq!(payment.refunded_amount.canonical(), "1000");
        app.stop().await;
    }

    async fn refund_and_capture_accept_every_encoding(backend) {
        let app = TestApp::spawn(backend).await;
        for (i, encoding) in ALL_ENCODINGS.into_iter().enumerate() {
            let payment = format!("{}", 600 + i);
            // The payment first: a refund or capture before it is answered 503.
            app.order(&format!("X-{i}"), "1", "KZT").await;
            app.fp.send("result", &freedompay::result(&format!("X-{i}"), &payment, "1")).await
                .assert_answer("result", Status::Ok);
            app.fp.send_as("refund", encoding, KEY, &freedompay::refund("X", &payment, "1")).await
                .assert_answer("refund", Status::Ok);
            app.fp.send_as("capture", encoding, KEY, &freedompay::capture("X", &payment, "1")).await
                .assert_answer("capture", Status::Ok);
        }
        app.stop().await;
    }

    async fn payout_notifications_upsert_by_status_with_the_payout_key(backend) {
        let app = TestApp::spawn(backend).await;
        for (i, encoding) in ALL_ENCODINGS.into_iter().enumerate() {
            let order = format!("PO-{i}");
            let reply = app.fp.send_as("payout", encoding, PAYOUT_KEY, &freedompay::payout(&order, "9001", "ok")).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.pg_status(), Some(Status::Ok));
            assert!(reply.signature_ok("payout", PAYOUT_KEY), "answered with the payout key");
            let stored = app.store.payout(MERCHANT, &order).await.unwrap().unwrap();
            assert_eq!(stored.status, PayoutStatus::Success);
            assert_eq!(stored.amount.map(|a| a.canonical()).as_deref(), Some("5000"));
        }
        // A final status is never overwritten by a contradicting one.
        let reply = app.fp.send_as("payout", freedompay::Encoding::Form, PAYOUT_KEY, &freedompay::payout("PO-0", "9001", "error")).await;
        assert_eq!(reply.pg_status(), Some(Status::Ok));
        assert_eq!(app.store.payout(MERCHANT, "PO-0").await.unwrap().unwrap().status, PayoutStatus::Success);
        app.stop().await;
    }

    async fn redirects_render_a_page_or_redirect_and_never_change_state(backend) {
        let app = TestApp::spawn_with(backend, |toml| {
            toml.push_str("\n[redirect]\nsuccess_url = \"https://shop.example.kz/thanks?x=1\"\n");
        }).await;
        app.order("RD-1", "100", "KZT").await;
        let fields = freedompay::Fields::default().set("pg_order_id", "RD-1").set("pg_payment_id", "42");
        for encoding in [freedompay::Encoding::Get, freedompay::Encoding::Form] {
            let success = app.fp.send_as("success", encoding, KEY, &fields).await;
            assert_eq!(success.status, 303);
            assert_eq!(
                success.headers["location"],
                "https://shop.example.kz/thanks?x=1&order_id=RD-1&payment_id=42"
            );
            let failure = app.fp.send_as("failure", encoding, KEY, &fields.clone().set("pg_error_code", "101")).await;
            assert_eq!(failure.status, 200);
            assert!(failure.body.contains("did not go through"));
        }
        let forged = app.fp.send_as("success", freedompay::Encoding::Get, "wrong-key", &fields).await;
        assert_eq!(forged.status, 403);
        assert_eq!(app.store.order(MERCHANT, "RD-1").await.unwrap().unwrap().status, OrderStatus::Pending);
        assert!(app.store.payment(MERCHANT, "42").await.unwrap().is_none());
        // Recorded once per payment and outcome; the repeat is only counted.
        assert_eq!(app.store.count_events(Some(CallbackKind::Success)).await.unwrap().first, 1);
        app.stop().await;
    }
}

on_both_backends! {
    async fn health_and_readiness(backend) {
        let app = TestApp::spawn(backend).await;
        let health = app.fp.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        app.stop().await;
    }
}
