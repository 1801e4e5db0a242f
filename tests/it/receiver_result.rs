//! Result semantics: pg_can_reject, failures, forward-only transitions, card masks.

use freedompay_receiver::domain::{OrderStatus, PaymentStatus};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay;
use crate::support::{MERCHANT, TestApp};

on_both_backends! {
    async fn rules_failing_with_can_reject_1_rejects_the_payment(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let reply = app.fp.send("result", &freedompay::result("O", "1", "999").set("pg_can_reject", "1")).await;
        reply.assert_answer("result", Status::Rejected);
        assert_eq!(reply.description(), "Amount 999 does not match the amount 1000 of order O");
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Rejected);
        assert!(!payment.needs_refund);
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Pending);
        app.stop().await;
    }

    async fn rules_failing_with_can_reject_0_accepts_and_flags_a_refund(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let reply = app.fp.send("result", &freedompay::result("O", "1", "999").set("pg_can_reject", "0")).await;
        reply.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert!(payment.needs_refund);
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Pending);
        app.stop().await;
    }

    async fn a_failed_result_records_the_code_and_keeps_the_order_payable(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let failed = freedompay::result("O", "1", "1000")
            .set("pg_result", "0")
            .set("pg_failure_code", "101")
            .set("pg_failure_description", "Время жизни платежа превышено");
        app.fp.send("result", &failed).await.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Failed);
        assert_eq!(payment.failure_code.as_deref(), Some("101"));
        assert_eq!(payment.failure_description.as_deref(), Some("Время жизни платежа превышено"));
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Pending);
        // Still payable: a new payment succeeds.
        app.fp.send("check", &freedompay::check("O", "2", "1000")).await.assert_answer("check", Status::Ok);
        app.fp.send("result", &freedompay::result("O", "2", "1000")).await.assert_answer("result", Status::Ok);
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Paid);
        app.stop().await;
    }

    async fn a_late_failure_never_unpays(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        app.fp.send("result", &freedompay::result("O", "1", "1000")).await.assert_answer("result", Status::Ok);
        app.fp.send("result", &freedompay::result("O", "1", "1000").set("pg_result", "0")).await
            .assert_answer("result", Status::Ok);
        assert_eq!(app.store.payment(MERCHANT, "1").await.unwrap().unwrap().status, PaymentStatus::Succeeded);
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, OrderStatus::Paid);
        app.stop().await;
    }

    async fn testing_flag_capture_and_card_mask_are_recorded_never_a_full_pan(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "10", "KZT").await;
        let fields = freedompay::result("O", "1", "10")
            .set("pg_testing_mode", "1")
            .set("pg_captured", "0")
            .set("pg_card_pan", "5483185500000293");
        app.fp.send("result", &fields).await.assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert!(payment.testing_mode);
        assert_eq!(payment.captured, Some(false));
        assert_eq!(payment.card_mask.as_deref(), Some("548318XXXXXX0293"));
        app.stop().await;
    }
}
