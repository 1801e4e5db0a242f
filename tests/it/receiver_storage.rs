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

/// SQLite's group commit: callbacks that arrive together share a transaction;
/// one whose order row is unusable (an amount that is not a number) fails the
/// group's batch, which is then decided callback by callback: that one is
/// answered by rule (rejected, its event flagged), the others commit as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_order_row_does_not_take_its_commit_group_down() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite).await;
    for i in 0..12 {
        app.order(&format!("G-{i}"), "10", "KZT").await;
    }
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.db_url)
        .await
        .unwrap();
    sqlx::query("UPDATE orders SET amount = 'not a number' WHERE order_id = 'G-5'")
        .execute(&mut raw)
        .await
        .unwrap();
    let fields: Vec<_> = (0..12)
        .map(|i| freedompay::result(&format!("G-{i}"), &format!("{}", 300 + i), "10"))
        .collect();
    let replies =
        futures_util::future::join_all(fields.iter().map(|f| app.fp.send("result", f))).await;
    for (i, reply) in replies.iter().enumerate() {
        if i == 5 {
            reply.assert_answer("result", Status::Rejected);
            let payment = app.store.payment(MERCHANT, "305").await.unwrap().unwrap();
            assert_eq!(
                payment.status,
                freedompay_receiver::domain::PaymentStatus::Rejected
            );
        } else {
            reply.assert_answer("result", Status::Ok);
        }
    }
    let results = app
        .store
        .count_events(Some(freedompay_receiver::domain::CallbackKind::Result))
        .await
        .unwrap();
    assert_eq!(results.first, 12);
    app.stop().await;
}
