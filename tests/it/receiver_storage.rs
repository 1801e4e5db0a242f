//! Storage behaviour: exact money, NOTIFY on PostgreSQL, and recovery from a
//! database outage without a restart.

use freedompay_receiver::protocol::Status;
use freedompay_receiver::store::NOTIFY_CHANNEL;
use sqlx::postgres::PgListener;

use crate::on_both_backends;
use crate::support::freedompay;
use crate::support::pg::server_url;
use crate::support::{MERCHANT, TestApp};
use std::time::Duration;

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
