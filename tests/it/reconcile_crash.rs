//! An automatic refund survives a crash between the call and the commit: the
//! server (a real process) is killed with SIGKILL while FreedomPay has carried
//! the refund out but not yet answered, then restarted on the same database.
//! The refund must end confirmed, and FreedomPay must have refunded once.

use std::time::Duration;

use freedompay_receiver::config::DatabaseSettings;
use freedompay_receiver::domain::PaymentStatus;
use freedompay_receiver::domain::task::{RefundStage, TaskKind};
use freedompay_receiver::protocol::Status;
use freedompay_receiver::store::Store;

use crate::on_both_backends;
use crate::support::fake_freedompay::{Behaviour, FakeFreedomPay};
use crate::support::process::ServerProcess;
use crate::support::{Backend, FreedomPay, KEY, MERCHANT, TestDb, freedompay};

/// The receiver's settings after its merchant's key: automatic refunds by
/// `method`, reconciliation every second, a short lease, and an API timeout
/// longer than the test so that the call is still in flight at the kill.
fn extra(method: &str, api: &str) -> String {
    format!(
        "auto_refund = true\nrefund_method = \"{method}\"\n\
         [api]\nbase_url = \"{api}\"\ntimeout_secs = 60\npacing_ms = 0\n\
         [reconcile]\nafter_secs = 0\ninterval_secs = 1\nlease_secs = 2\nretry_base_secs = 0\n"
    )
}

async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn crash_between_call_and_commit(backend: Backend, method: &str) {
    let db = TestDb::new(backend).await;
    let fake = FakeFreedomPay::start(KEY).await;
    let store = Store::connect(&DatabaseSettings {
        url: db.url.clone().into(),
        ..DatabaseSettings::default()
    })
    .unwrap();
    store.migrate().await.unwrap();
    let config = extra(method, &fake.base_url);
    let mut server = ServerProcess::start_on(&db.url, KEY, &config).await;
    let addr = server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let fp = FreedomPay::new(addr);
    store
        .insert_order(
            MERCHANT,
            &freedompay_receiver::store::NewOrder {
                order_id: "O-K",
                amount: "1000".parse().unwrap(),
                currency: "KZT",
                expires_at: None,
            },
        )
        .await
        .unwrap();
    fake.add_payment("801", "O-K", "999", "success");
    fake.set(Behaviour::HangAfterRefund);
    let result = freedompay::result("O-K", "801", "999").set("pg_can_reject", "0");
    fp.send("result", &result)
        .await
        .assert_answer("result", Status::Ok);

    // FreedomPay has refunded; the answer is still to come when the server dies.
    wait_for("the refund call", || async {
        fake.refunds_of("801").len() == 1
    })
    .await;
    server.kill().await;
    let task = &store
        .tasks_for(MERCHANT, TaskKind::Refund, "801")
        .await
        .unwrap()[0];
    assert_eq!(task.stage, Some(RefundStage::Sending), "{task:?}");

    fake.set(Behaviour::Normal);
    let server = ServerProcess::start_on(&db.url, KEY, &config).await;
    wait_for("the refund to be confirmed", || async {
        store
            .payment(MERCHANT, "801")
            .await
            .unwrap()
            .unwrap()
            .status
            == PaymentStatus::Refunded
    })
    .await;
    assert_eq!(
        fake.refunds_of("801").len(),
        1,
        "refunded once: {:?}",
        fake.refunds_of("801")
    );
    let payment = store.payment(MERCHANT, "801").await.unwrap().unwrap();
    assert!(!payment.needs_refund);
    server.terminate();
    store.close().await;
}

on_both_backends! {
    async fn revoke_is_not_repeated_after_a_crash(backend) {
        crash_between_call_and_commit(backend, "revoke").await;
    }

    async fn v5_is_not_repeated_after_a_crash(backend) {
        crash_between_call_and_commit(backend, "v5").await;
    }
}
