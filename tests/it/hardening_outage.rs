//! A database outage under load: PostgreSQL is stopped while callbacks keep
//! coming, then started again. While it is down every answer is 503 (never
//! `ok`), readiness fails, the same process answers `ok` again once it is
//! back, and every acknowledged callback is in the database. And a signed
//! but unparseable callback that cannot be recorded gets 503, not 400.
//! And the first callback after the server ended every connection is `ok`.
//! PostgreSQL only: the embedded SQLite file cannot be "down".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use freedompay_receiver::config::Settings;
use freedompay_receiver::domain::OrderStatus;
use freedompay_receiver::protocol::Status;
use tokio::sync::Mutex;

use crate::support::freedompay;
use crate::support::pg::{Cluster, server_url};
use crate::support::{MERCHANT, TestApp, base_toml};

/// One delivery: when it was sent and answered (since the start), and how.
#[derive(Clone, Copy, Debug)]
struct Sample {
    index: usize,
    sent: Duration,
    answered: Duration,
    status: u16,
    ok: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_under_load_answers_503_then_recovers_without_restart() {
    if server_url().is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let toml = base_toml(&cluster.url).replace(
        "max_connections = 8",
        "max_connections = 4\nacquire_timeout_secs = 1",
    );
    let app = Arc::new(TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await);
    const ORDERS: usize = 400;
    for i in 0..ORDERS {
        app.order(&format!("L-{i}"), "100", "KZT").await;
    }

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (app, next, running, samples) =
                (app.clone(), next.clone(), running.clone(), samples.clone());
            tokio::spawn(async move {
                while running.load(Ordering::SeqCst) {
                    let index = next.fetch_add(1, Ordering::SeqCst) % ORDERS;
                    let fields = freedompay::result(
                        &format!("L-{index}"),
                        &format!("{}", 10_000 + index),
                        "100",
                    );
                    let sent = start.elapsed();
                    let reply = app.fp.send("result", &fields).await;
                    let ok = reply.status == 200 && reply.pg_status() == Some(Status::Ok);
                    samples.lock().await.push(Sample {
                        index,
                        sent,
                        answered: start.elapsed(),
                        status: reply.status,
                        ok,
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::task::block_in_place(|| cluster.stop());
    let down_from = start.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let down_until = start.elapsed();
    tokio::task::block_in_place(|| cluster.start_again());

    // Load goes on until the same process answers ok again (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let recovered = samples
            .lock()
            .await
            .iter()
            .any(|s| s.sent > down_until && s.ok);
        if recovered || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let samples = samples.lock().await.clone();
    // Answers given while the database was down (from the moment the stop
    // returned until the restart began).
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.answered >= down_from && s.answered <= down_until)
        .collect();
    assert!(
        !during.is_empty(),
        "no answer was given while the database was down"
    );
    assert!(
        during.iter().all(|s| s.status == 503 && !s.ok),
        "while down, every answer must be 503: {during:?}"
    );
    assert!(
        samples.iter().any(|s| s.sent > down_until && s.ok),
        "the process did not recover"
    );
    for sample in samples.iter().filter(|s| s.ok) {
        let order = app
            .store
            .order(MERCHANT, &format!("L-{}", sample.index))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            order.status,
            OrderStatus::Paid,
            "acknowledged callback {} was lost",
            sample.index
        );
    }
    let acknowledged = samples.iter().filter(|s| s.ok).count();
    eprintln!(
        "outage run: {} deliveries, {acknowledged} acknowledged, {} answered 503 while down, lost 0",
        samples.len(),
        during.len()
    );
    drop(samples);
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}

/// A signed callback that fails parsing is recorded (flagged) before its
/// 400; while the database cannot record it, the answer is 503 instead, so
/// that FreedomPay delivers it again and it reaches the log once the
/// database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_callback_that_cannot_be_recorded_gets_503() {
    if server_url().is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let toml = base_toml(&cluster.url).replace(
        "max_connections = 8",
        "max_connections = 4\nacquire_timeout_secs = 1",
    );
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
    app.order("U-1", "7000", "KZT").await;
    let bad = freedompay::result("U-1", "1", "7000.001");

    tokio::task::block_in_place(|| cluster.stop());
    let reply = app.fp.send("result", &bad).await;
    assert_eq!(reply.status, 503, "{reply:?}");

    tokio::task::block_in_place(|| cluster.start_again());
    // The pool reconnects by itself; FreedomPay's next delivery is recorded.
    let mut status = 0;
    for _ in 0..50 {
        status = app.fp.send("result", &bad).await.status;
        if status == 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 400);
    let events = app.store.event_marks(Some("result")).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]
            .flag
            .as_deref()
            .is_some_and(|f| f.starts_with("unparseable: ")),
        "{events:?}"
    );
    app.stop().await;
}

/// After the server ended every connection (`pg_terminate_backend`, as an
/// administrator or a restart does: "terminating connection due to
/// administrator command"), the very next callback is `ok`: the writer's
/// stale connection is replaced and the group tried once more on a new one,
/// not answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_callback_after_connections_were_ended_is_ok() {
    if server_url().is_none() {
        return;
    }
    let app = TestApp::spawn(crate::support::Backend::Postgres).await;
    for i in 0..4 {
        app.order(&format!("K-{i}"), "100", "KZT").await;
    }
    // Both writer connections in use, so both are stale afterwards.
    let fields: Vec<_> = (0..2)
        .map(|i| freedompay::result(&format!("K-{i}"), &format!("{}", 600 + i), "100"))
        .collect();
    let first =
        futures_util::future::join_all(fields.iter().map(|f| app.fp.send("result", f))).await;
    for reply in &first {
        reply.assert_answer("result", Status::Ok);
    }
    let admin = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(ended > 0, "no connection was ended");
    admin.close().await;
    for i in 2..4 {
        let reply = app
            .fp
            .send(
                "result",
                &freedompay::result(&format!("K-{i}"), &format!("{}", 600 + i), "100"),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.assert_answer("result", Status::Ok);
    }
    app.stop().await;
}
