//! Storage behaviour: exact money, NOTIFY on PostgreSQL, and recovery from a
//! database outage without a restart.

use std::time::{Duration, Instant};

use freedompay_receiver::config::Settings;
use freedompay_receiver::domain::{CallbackKind, OrderStatus};
use freedompay_receiver::protocol::Status;
use freedompay_receiver::store::NOTIFY_CHANNEL;
use sqlx::postgres::PgListener;

use crate::on_both_backends;
use crate::support::freedompay;
use crate::support::pg::{Cluster, server_url};
use crate::support::{MERCHANT, TestApp, base_toml};

on_both_backends! {
    async fn money_is_stored_exactly(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("BIG", "123456789012345.67", "KZT").await;
        app.fp.send("result", &freedompay::result("BIG", "1", "123456789012345.67")).await
            .assert_answer("result", Status::Ok);
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.amount.canonical(), "123456789012345.67");
        for part in ["0.1", "0.2"] {
            app.fp.send("refund", &freedompay::refund("BIG", "1", part)).await.assert_answer("refund", Status::Ok);
        }
        let payment = app.store.payment(MERCHANT, "1").await.unwrap().unwrap();
        assert_eq!(payment.refunded_amount.canonical(), "0.3");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_is_announced_with_notify() {
    if server_url().is_none() {
        return;
    }
    let app = TestApp::spawn(crate::support::Backend::Postgres).await;
    let mut listener = PgListener::connect(&app.db_url).await.unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();
    app.order("N", "10", "KZT").await;
    app.fp
        .send("check", &freedompay::check("N", "1", "10"))
        .await
        .assert_answer("check", Status::Ok);
    let note = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.channel(), NOTIFY_CHANNEL);
    assert!(note.payload().parse::<i64>().unwrap() > 0);
    app.stop().await;
}

/// The database goes away and comes back: no `ok` while it is down (503, so
/// FreedomPay retries), readiness fails, and the same process recovers.
/// PostgreSQL only: the embedded SQLite file cannot be "down".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_then_recovers_without_restart() {
    if server_url().is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let toml = base_toml(&cluster.url).replace(
        "max_connections = 8",
        "max_connections = 4\nacquire_timeout_secs = 1",
    );
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
    app.order("OUT", "500", "KZT").await;
    app.fp
        .send("check", &freedompay::check("OUT", "1", "500"))
        .await
        .assert_answer("check", Status::Ok);

    tokio::task::block_in_place(|| cluster.stop());
    for _ in 0..3 {
        let reply = app
            .fp
            .send("result", &freedompay::result("OUT", "1", "500"))
            .await;
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.pg_status(), Some(Status::Error));
    }
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    tokio::task::block_in_place(|| cluster.start_again());
    // A retry loop like FreedomPay's, bounded so the test ends either way.
    let deadline = Instant::now() + Duration::from_secs(60);
    let reply = loop {
        let reply = app
            .fp
            .send("result", &freedompay::result("OUT", "1", "500"))
            .await;
        if reply.status == 200 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    reply.assert_answer("result", Status::Ok);
    assert_eq!(
        app.store
            .order(MERCHANT, "OUT")
            .await
            .unwrap()
            .unwrap()
            .status,
        OrderStatus::Paid
    );
    let results = app
        .store
        .count_events(Some(CallbackKind::Result))
        .await
        .unwrap();
    assert_eq!(
        (results.first, results.duplicate),
        (1, 0),
        "503 answers wrote nothing"
    );
    app.stop().await;
}
