//! Webhook delivery on PostgreSQL with more than one process, and through
//! an outage, to a real HTTP receiver on 127.0.0.1:
//! - a `deliver` process that polls once a minute sends a message another
//!   instance committed at once (it hears the commit: `LISTEN`);
//! - two `deliver` processes share the outbox: every message is delivered,
//!   none twice, never by both at the same time (leases);
//! - PostgreSQL stops while messages wait for a retry: nothing is lost, and
//!   delivery resumes when it is back, without a restart.
//!
//! PostgreSQL only: SQLite has one process, and its file cannot be "down".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use freedompay_receiver::config::Settings;
use freedompay_receiver::protocol::Status;
use sqlx::Connection;
use standardwebhooks::Webhook;
use tokio::process::Child;
use tokio::sync::Mutex;

use crate::support::pg::{Cluster, server_url};
use crate::support::{Backend, TestApp, TestDb, base_toml, freedompay};
use crate::webhooks_delivery::{SECRET, endpoint};

/// What the receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Each request's `webhook-id`, in arrival order.
    ids: Vec<String>,
    /// The ids being answered right now.
    in_flight: HashSet<String>,
    /// Ids that arrived while the same id was being answered.
    concurrent: Vec<String>,
    /// Requests answered 500 so far.
    failed: usize,
}

/// A receiver that checks every signature, answers 500 to the first
/// `failures` requests and 204 after `delay` to the rest; its URL.
async fn receiver(failures: usize, delay: Duration) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                Webhook::new(SECRET)
                    .unwrap()
                    .verify(&body, &headers)
                    .expect("a valid Standard Webhooks signature");
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                {
                    let mut seen = record.lock().await;
                    seen.ids.push(id.clone());
                    if seen.failed < failures {
                        seen.failed += 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    if !seen.in_flight.insert(id.clone()) {
                        seen.concurrent.push(id.clone());
                    }
                }
                tokio::time::sleep(delay).await;
                record.lock().await.in_flight.remove(&id);
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Settings with one endpoint at `url` (`webhooks_delivery::endpoint`,
/// retries a second apart); `serve` only writes the outbox unless
/// `in_serve`.
fn settings_toml(database_url: &str, url: &str, in_serve: bool, poll_ms: u64) -> String {
    let mut toml = base_toml(database_url);
    endpoint(url, &format!("[{}]", ["1"; 20].join(", ")))(&mut toml);
    // `endpoint`'s `[webhook_delivery]` table is the last: these keys join it.
    toml.replace(
        "poll_interval_ms = 100",
        &format!("poll_interval_ms = {poll_ms}"),
    ) + &format!("lease_secs = 30\nin_serve = {in_serve}\n")
}

/// `freedompay-receiver deliver` as a process of its own.
fn deliver(dir: &tempfile::TempDir, toml: &str, name: &str) -> Child {
    let config = dir.path().join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&config)
        .arg("deliver")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The outbox's deliveries by state.
async fn states(db_url: &str) -> HashMap<String, i64> {
    #[derive(sqlx::FromRow)]
    struct ByState {
        state: String,
        count: i64,
    }
    let mut db = sqlx::PgConnection::connect(db_url).await.unwrap();
    let rows: Vec<ByState> =
        sqlx::query_as("SELECT state, count(*) AS count FROM webhook_deliveries GROUP BY state")
            .fetch_all(&mut db)
            .await
            .unwrap();
    rows.into_iter().map(|r| (r.state, r.count)).collect()
}

/// Waits until `count` deliveries are delivered, at most `within`.
async fn delivered(db_url: &str, count: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let states = states(db_url).await;
        if states.get("delivered") == Some(&count) && states.len() == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered in {within:?}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pays order `order` (payment `payment`): one `payment.succeeded` message.
async fn pay(app: &TestApp, order: &str, payment: &str) {
    app.order(order, "100", "KZT").await;
    app.fp
        .send("result", &freedompay::result(order, payment, "100"))
        .await
        .assert_answer("result", Status::Ok);
}

// Seen failing (10 s deadline) with `commits.heard()` left out of the
// dispatcher's wait: the message then waited for the minute's poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliver_process_hears_another_instances_commit_at_once() {
    if server_url().is_none() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (url, seen) = receiver(0, Duration::ZERO).await;
    let toml = settings_toml(&db.url, &url, false, 60_000);
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let _deliver = deliver(&dir, &toml, "deliver");
    // The first message may be found by the process's first round; once it
    // is delivered the process waits, listening.
    pay(&app, "N-1", "7001").await;
    delivered(&db.url, 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    pay(&app, "N-2", "7002").await;
    delivered(&db.url, 2, Duration::from_secs(10)).await;
    println!(
        "second message delivered {:?} after its commit (poll: 60 s)",
        started.elapsed()
    );
    assert_eq!(seen.lock().await.ids.len(), 2);
}

// Seen failing (messages received twice) with the claim ignoring leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliver_processes_deliver_every_message_once() {
    if server_url().is_none() {
        return;
    }
    const PAYMENTS: usize = 60;
    let db = TestDb::new(Backend::Postgres).await;
    let (url, seen) = receiver(0, Duration::from_millis(30)).await;
    let toml = settings_toml(&db.url, &url, false, 50);
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let _first = deliver(&dir, &toml, "first");
    let _second = deliver(&dir, &toml, "second");
    for i in 0..PAYMENTS {
        pay(&app, &format!("T-{i}"), &format!("{}", 8000 + i)).await;
    }
    delivered(&db.url, PAYMENTS as i64, Duration::from_secs(60)).await;
    let seen = seen.lock().await;
    let unique: HashSet<&String> = seen.ids.iter().collect();
    println!(
        "{PAYMENTS} messages, {} requests received, {} concurrent repeats",
        seen.ids.len(),
        seen.concurrent.len()
    );
    assert_eq!(unique.len(), PAYMENTS);
    assert!(
        seen.concurrent.is_empty(),
        "sent by both at once: {:?}",
        seen.concurrent
    );
    assert_eq!(seen.ids.len(), PAYMENTS, "a message was sent twice");
}

// Seen failing (not delivered after the restart of PostgreSQL) with the
// dispatcher returning at its first failed round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_postgresql_delays_webhooks_and_loses_none() {
    if server_url().is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    // Every message fails its first attempts, so they wait for retries
    // when PostgreSQL stops.
    const PAYMENTS: usize = 10;
    let (url, seen) = receiver(3 * PAYMENTS, Duration::ZERO).await;
    // Short leases: a delivery claimed just before the stop, whose
    // attempt cannot be recorded, is taken again soon after.
    let toml = settings_toml(&cluster.url, &url, true, 100)
        .replace(
            "max_connections = 8",
            "max_connections = 4\nacquire_timeout_secs = 1",
        )
        .replace("timeout_secs = 5", "timeout_secs = 1")
        .replace("lease_secs = 30", "lease_secs = 2");
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
    for i in 0..PAYMENTS {
        pay(&app, &format!("U-{i}"), &format!("{}", 9100 + i)).await;
    }
    // Some attempts failed: the messages wait for their retries.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().await.failed < PAYMENTS {
        assert!(Instant::now() < deadline, "no failed attempts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| cluster.stop());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.start_again());
    // One more payment after the outage, then everything is delivered.
    pay(&app, "U-after", "9199").await;
    delivered(&cluster.url, PAYMENTS as i64 + 1, Duration::from_secs(30)).await;
    let seen = seen.lock().await;
    let unique: HashSet<&String> = seen.ids.iter().collect();
    assert_eq!(unique.len(), PAYMENTS + 1);
    drop(app);
}
