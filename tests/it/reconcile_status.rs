//! Reconciliation: payments, orders and payouts whose callbacks never came are
//! asked about with signed status queries, and a final, verified answer is
//! applied through the callbacks' own decisions as an event of kind
//! `reconcile`.

use freedompay_receiver::domain::task::{TaskKind, TaskState};
use freedompay_receiver::domain::{OrderStatus, PaymentStatus, PayoutStatus};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::MERCHANT;
use crate::support::fake_freedompay::Behaviour;
use crate::support::freedompay;
use crate::support::reconcile::Rig;

on_both_backends! {
    async fn a_payment_whose_result_never_came_becomes_paid(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O-1", "7000", "KZT").await;
        app.fp.send("check", &freedompay::check("O-1", "501", "7000")).await.assert_answer("check", Status::Ok);
        // FreedomPay took the money; the result callback is lost.
        rig.fake.add_payment("501", "O-1", "7000", "success");

        let round = rig.round().await;
        assert_eq!((round.created, round.handled), (1, 1));
        let payment = app.store.payment(MERCHANT, "501").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        let order = app.store.order(MERCHANT, "O-1").await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(order.paid_payment_id.as_deref(), Some("501"));
        assert_eq!(app.store.count_events_named(Some("reconcile")).await.unwrap().first, 1);
        let task = &app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "501").await.unwrap()[0];
        assert_eq!(task.state, TaskState::Done);

        // The result arrives after all: answered ok, nothing applied twice.
        app.fp.send("result", &freedompay::result("O-1", "501", "7000")).await.assert_answer("result", Status::Ok);
        assert_eq!(app.store.payment(MERCHANT, "501").await.unwrap().unwrap(), payment);
        // Nothing left to do.
        assert_eq!(rig.round().await.handled, 0);
        assert_eq!(rig.fake.calls_to("get_status3.php"), 1);
        app.store.close().await;
    }

    async fn a_payment_still_in_progress_is_asked_again_later(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O-2", "100", "KZT").await;
        app.fp.send("check", &freedompay::check("O-2", "502", "100")).await.assert_answer("check", Status::Ok);
        rig.fake.add_payment("502", "O-2", "100", "pending");
        rig.round().await;
        let task = &app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "502").await.unwrap()[0];
        assert_eq!((task.state, task.attempts), (TaskState::Open, 1));
        assert!(task.last_error.as_deref().unwrap().contains("pending"), "{task:?}");

        rig.fake.set_payment_status("502", "failed");
        rig.round().await;
        let payment = app.store.payment(MERCHANT, "502").await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Failed);
        assert_eq!(app.store.order(MERCHANT, "O-2").await.unwrap().unwrap().status, OrderStatus::Pending);
        app.store.close().await;
    }

    async fn a_status_answer_with_a_bad_signature_is_never_believed(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O-3", "100", "KZT").await;
        app.fp.send("check", &freedompay::check("O-3", "503", "100")).await.assert_answer("check", Status::Ok);
        rig.fake.add_payment("503", "O-3", "100", "success");
        rig.fake.set(Behaviour::ForgedSignature);
        rig.round().await;
        assert_eq!(app.store.payment(MERCHANT, "503").await.unwrap().unwrap().status, PaymentStatus::Pending);
        assert_eq!(app.store.count_events_named(Some("reconcile")).await.unwrap().first, 0);
        let task = &app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "503").await.unwrap()[0];
        assert!(task.last_error.as_deref().unwrap().contains("signature"), "{task:?}");
        // Attempts are bounded: the task is given up, still nothing believed.
        for _ in 0..4 {
            rig.round().await;
        }
        let task = &app.store.tasks_for(MERCHANT, TaskKind::PaymentStatus, "503").await.unwrap()[0];
        assert_eq!(task.state, TaskState::Failed);
        assert_eq!(rig.fake.calls_to("get_status3.php"), 4);
        assert_eq!(app.store.payment(MERCHANT, "503").await.unwrap().unwrap().status, PaymentStatus::Pending);
        app.store.close().await;
    }

    async fn a_redirect_without_a_result_is_reconciled_by_order(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        app.order("O-4", "2500", "KZT").await;
        // The payer comes back; neither check nor result ever arrive.
        let redirect = freedompay::check("O-4", "504", "2500");
        app.fp.send("success", &redirect).await;
        // The redirect scheduled a status query of the order.
        assert_eq!(app.store.tasks_for(MERCHANT, TaskKind::OrderStatus, "O-4").await.unwrap().len(), 1);
        rig.fake.add_payment("504", "O-4", "2500", "success");
        rig.round().await;
        assert_eq!(app.store.order(MERCHANT, "O-4").await.unwrap().unwrap().status, OrderStatus::Paid);
        assert_eq!(app.store.payment(MERCHANT, "504").await.unwrap().unwrap().status, PaymentStatus::Succeeded);
        let calls = rig.fake.calls();
        assert_eq!(calls[0].1.get("pg_order_id"), Some("O-4"));
        assert_eq!(calls[0].1.get("pg_payment_id"), None);
        app.store.close().await;
    }

    async fn a_payout_in_process_settles_through_status_queries(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        assert!(app.store.record_payout_request(MERCHANT, "PO-1", "5000".parse().unwrap()).await.unwrap());
        rig.fake.script_payout("PO-1", &["process", "success"]);
        rig.round().await;
        assert_eq!(app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap().status, PayoutStatus::Process);
        rig.round().await;
        let payout = app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap();
        assert_eq!(payout.status, PayoutStatus::Success);
        assert_eq!(payout.payment_id.as_deref(), Some("9900001"));
        assert_eq!(rig.fake.calls_to("payout_status2"), 2);
        // A late notify contradicting nothing is recorded; the status stays.
        app.fp.send("payout", &freedompay::payout("PO-1", "9900001", "ok")).await;
        assert_eq!(app.store.payout(MERCHANT, "PO-1").await.unwrap().unwrap().status, PayoutStatus::Success);
        app.store.close().await;
    }

    async fn two_instances_never_work_the_same_task(backend) {
        let rig = Rig::start(backend, "").await;
        let app = &rig.app;
        for i in 0..12 {
            let (order, payment) = (format!("O-M{i}"), format!("{}", 600 + i));
            app.order(&order, "100", "KZT").await;
            app.fp.send("check", &freedompay::check(&order, &payment, "100")).await.assert_answer("check", Status::Ok);
            rig.fake.add_payment(&payment, &order, "100", "success");
        }
        let other = rig.second_instance();
        let (a, b) = tokio::join!(rig.reconciler.round(), other.round());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.handled + b.handled, 12, "{a:?} {b:?}");
        // Each payment was asked about exactly once.
        let mut asked: Vec<String> = rig.fake.calls().iter()
            .filter_map(|(_, m, _)| m.get("pg_payment_id").map(str::to_owned)).collect();
        asked.sort();
        asked.dedup();
        assert_eq!((asked.len(), rig.fake.calls_to("get_status3.php")), (12, 12));
        assert_eq!(app.store.count_events_named(Some("reconcile")).await.unwrap().first, 12);
        app.store.close().await;
    }
}
