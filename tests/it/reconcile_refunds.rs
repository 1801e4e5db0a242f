//! Automatic refunds: a payment the rules refused but FreedomPay could not
//! reject (`needs_refund`) is refunded through the merchant's method exactly
//! once, and counts as refunded only when a signed status shows it.

use freedompay_receiver::domain::task::{RefundStage, TaskKind, TaskState};
use freedompay_receiver::domain::{OrderStatus, PaymentStatus};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::fake_freedompay::Behaviour;
use crate::support::reconcile::Rig;
use crate::support::{Backend, MERCHANT, freedompay};

/// A rig for `method` with one payment of 999 for an order of 1000, taken
/// with `pg_can_reject=0`: flagged `needs_refund`.
async fn needing_refund(backend: Backend, method: &str) -> Rig {
    let rig = Rig::start(
        backend,
        &format!("auto_refund = true\nrefund_method = \"{method}\""),
    )
    .await;
    rig.app.order("O-R", "1000", "KZT").await;
    let result = freedompay::result("O-R", "701", "999").set("pg_can_reject", "0");
    rig.app
        .fp
        .send("result", &result)
        .await
        .assert_answer("result", Status::Ok);
    assert!(stored_payment(&rig).await.needs_refund);
    rig.fake.add_payment("701", "O-R", "999", "success");
    rig
}

async fn stored_payment(rig: &Rig) -> freedompay_receiver::domain::Payment {
    rig.app
        .store
        .payment(MERCHANT, "701")
        .await
        .unwrap()
        .unwrap()
}

async fn refund_task(rig: &Rig) -> freedompay_receiver::domain::task::Task {
    let tasks = rig
        .app
        .store
        .tasks_for(MERCHANT, TaskKind::Refund, "701")
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks.into_iter().next().unwrap()
}

async fn refunded_exactly_once(backend: Backend, method: &str) {
    let rig = needing_refund(backend, method).await;
    rig.round().await;
    let refunds = rig.fake.refunds_of("701");
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        (refunds[0].api, refunds[0].amount),
        (method, "999".parse().unwrap())
    );
    let payment = stored_payment(&rig).await;
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert!(!payment.needs_refund);
    assert_eq!(payment.refunded_amount, "999".parse().unwrap());
    // The order was never paid by this payment, so it is left as it was.
    assert_eq!(
        rig.app
            .store
            .order(MERCHANT, "O-R")
            .await
            .unwrap()
            .unwrap()
            .status,
        OrderStatus::Pending
    );
    let task = refund_task(&rig).await;
    assert_eq!(task.state, TaskState::Done, "{task:?}");
    let request_id = task.request_id.clone().expect("the request id is stored");
    if let Some(sent) = &refunds[0].request_id {
        assert_eq!(sent, &request_id);
    }
    // More rounds, and FreedomPay's own refund notify: nothing more happens.
    rig.round().await;
    rig.round().await;
    let notify = freedompay::refund("O-R", "701", "999");
    rig.app
        .fp
        .send("refund", &notify)
        .await
        .assert_answer("refund", Status::Ok);
    assert_eq!(rig.fake.refunds_of("701").len(), 1);
    assert_eq!(
        stored_payment(&rig).await.refunded_amount,
        "999".parse().unwrap()
    );
    assert_eq!(refund_task(&rig).await.state, TaskState::Done);
    rig.app.store.close().await;
}

on_both_backends! {
    async fn revoke_refunds_exactly_once(backend) {
        refunded_exactly_once(backend, "revoke").await;
    }

    async fn superapp_refunds_exactly_once(backend) {
        refunded_exactly_once(backend, "superapp").await;
    }

    async fn v5_refunds_exactly_once(backend) {
        refunded_exactly_once(backend, "v5").await;
    }

    async fn card_api_refunds_exactly_once(backend) {
        refunded_exactly_once(backend, "card_api").await;
    }

    async fn a_refund_counts_only_once_a_status_shows_it(backend) {
        let rig = needing_refund(backend, "revoke").await;
        rig.fake.show_refunds_after(2);
        rig.round().await;
        let task = refund_task(&rig).await;
        assert_eq!((task.state, task.stage), (TaskState::Open, Some(RefundStage::Requested)));
        let payment = stored_payment(&rig).await;
        assert_eq!((payment.status, payment.needs_refund), (PaymentStatus::Succeeded, true));
        // The second status query shows it.
        rig.round().await;
        assert_eq!(refund_task(&rig).await.state, TaskState::Done);
        assert_eq!(stored_payment(&rig).await.status, PaymentStatus::Refunded);
        assert_eq!(rig.fake.refunds_of("701").len(), 1);
        assert_eq!(rig.fake.calls_to("get_status3.php"), 2);
        rig.app.store.close().await;
    }

    async fn a_refund_answer_with_a_bad_signature_is_not_believed_and_not_repeated(backend) {
        let rig = needing_refund(backend, "revoke").await;
        // FreedomPay refunds, but its answer does not verify.
        rig.fake.set(Behaviour::ForgedSignature);
        rig.round().await;
        let task = refund_task(&rig).await;
        assert_eq!((task.state, task.stage), (TaskState::Open, Some(RefundStage::Sending)));
        assert!(task.last_error.as_deref().unwrap().contains("signature"), "{task:?}");
        assert!(stored_payment(&rig).await.needs_refund);
        // Next round: revoke has no request id, so the signed status is asked
        // first; it shows the refund, which is not sent again.
        rig.fake.set(Behaviour::Normal);
        rig.round().await;
        assert_eq!(refund_task(&rig).await.state, TaskState::Done);
        assert_eq!(rig.fake.calls_to("revoke.php"), 1);
        assert_eq!(rig.fake.refunds_of("701").len(), 1);
        assert_eq!(stored_payment(&rig).await.status, PaymentStatus::Refunded);
        rig.app.store.close().await;
    }

    async fn a_lost_v5_answer_is_retried_with_the_same_request_id(backend) {
        let rig = needing_refund(backend, "v5").await;
        // The refund is carried out, the answer never comes (client timeout).
        rig.fake.set(Behaviour::HangAfterRefund);
        rig.round().await;
        assert_eq!(refund_task(&rig).await.stage, Some(RefundStage::Sending));
        rig.fake.set(Behaviour::Normal);
        rig.round().await;
        assert_eq!(refund_task(&rig).await.state, TaskState::Done);
        let sent: Vec<String> = rig.fake.calls().iter()
            .filter(|(path, _, _)| path == "v5/g2g/edit")
            .map(|(_, m, _)| m.get("x-request-id").unwrap().to_owned())
            .collect();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], sent[1], "the retry reuses the request id");
        assert_eq!(rig.fake.refunds_of("701").len(), 1);
        rig.app.store.close().await;
    }

    async fn refund_retries_are_bounded(backend) {
        let rig = needing_refund(backend, "revoke").await;
        rig.fake.set(Behaviour::ServerError);
        for _ in 0..3 {
            rig.round().await;
        }
        let task = refund_task(&rig).await;
        assert_eq!(task.state, TaskState::Failed, "{task:?}");
        assert!(task.last_error.as_deref().unwrap().contains("gave up after 3 attempts"), "{task:?}");
        assert!(rig.fake.refunds_of("701").is_empty());
        // A failed task stays failed: no more calls.
        let calls = rig.fake.calls().len();
        rig.fake.set(Behaviour::Normal);
        rig.round().await;
        assert_eq!(rig.fake.calls().len(), calls);
        rig.app.store.close().await;
    }

    async fn a_refused_refund_is_given_up_at_once(backend) {
        let rig = needing_refund(backend, "revoke").await;
        // FreedomPay does not know the payment: a signed refusal.
        rig.fake.state.payments.lock().unwrap().clear();
        rig.round().await;
        let task = refund_task(&rig).await;
        assert_eq!(task.state, TaskState::Failed);
        assert!(task.last_error.as_deref().unwrap().contains("340 Payment not found"), "{task:?}");
        assert!(stored_payment(&rig).await.needs_refund);
        rig.app.store.close().await;
    }

    async fn automatic_refunds_are_off_by_default(backend) {
        let rig = Rig::start(backend, "").await;
        rig.app.order("O-R", "1000", "KZT").await;
        let result = freedompay::result("O-R", "701", "999").set("pg_can_reject", "0");
        rig.app.fp.send("result", &result).await.assert_answer("result", Status::Ok);
        rig.round().await;
        assert!(rig.app.store.tasks_for(MERCHANT, TaskKind::Refund, "701").await.unwrap().is_empty());
        assert!(rig.fake.calls().is_empty());
        rig.app.store.close().await;
    }
}
