//! Delivery through the real server on both backends, to a real HTTP
//! receiver on 127.0.0.1: each committed change's messages arrive signed
//! (checked by the `standardwebhooks` crate), one payment's in commit order
//! even when the first needs a retry, with the same `webhook-id` and body
//! on every attempt; a delivery that never succeeds is dead after its last
//! attempt, every attempt recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use freedompay_receiver::protocol::Status;
use sqlx::Connection;
use standardwebhooks::Webhook;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

use freedompay_receiver::config::Settings;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, TestDb, base_toml, freedompay};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver was sent: `webhook-id`, the body, and the status it
/// answered.
pub type Seen = Arc<Mutex<Vec<(String, String, u16)>>>;

/// A receiver on `listener` that answers 500 to the first `failures`
/// requests, then 204 (`failures` = `usize::MAX`: always 500), and checks
/// every signature.
fn serve_receiver(listener: tokio::net::TcpListener, failures: usize) -> Seen {
    serve_receiver_signed(listener, failures, SECRET.to_owned())
}

/// As [`serve_receiver`], checking the signatures with `secret`.
fn serve_receiver_signed(
    listener: tokio::net::TcpListener,
    failures: usize,
    secret: String,
) -> Seen {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (record, secret) = (record.clone(), secret.clone());
            async move {
                Webhook::new(&secret)
                    .unwrap()
                    .verify(&body, &headers)
                    .expect("a valid Standard Webhooks signature");
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let mut seen = record.lock().await;
                let status = if seen.len() < failures { 500 } else { 204 };
                seen.push((id, String::from_utf8(body.to_vec()).unwrap(), status));
                (StatusCode::from_u16(status).unwrap(), "")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    seen
}

/// [`serve_receiver`] on a new port: its URL, and what it was sent.
pub async fn receiver(failures: usize) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    (url, serve_receiver(listener, failures))
}

pub fn endpoint(url: &str, retry_delays: &str) -> impl FnOnce(&mut String) {
    let config = format!(
        r#"
[[webhooks]]
name = "orders"
url = "{url}"
secret = "{SECRET}"
timeout_secs = 5

[webhook_delivery]
retry_delays_secs = {retry_delays}
jitter_percent = 0
poll_interval_ms = 100
"#
    );
    move |toml: &mut String| toml.push_str(&config)
}

/// The deliveries' states and attempts, in commit order.
async fn deliveries(app: &TestApp, backend: Backend) -> Vec<(String, i32)> {
    deliveries_at(&app.db_url, backend).await
}

async fn deliveries_at(db_url: &str, backend: Backend) -> Vec<(String, i32)> {
    let sql = "SELECT state, attempts FROM webhook_deliveries ORDER BY event_id, position";
    match backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(db_url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut db).await.unwrap()
        }
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(db_url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut db).await.unwrap()
        }
    }
}

/// Waits until the deliveries are settled (none pending), at most 20 s.
pub async fn settled(app: &TestApp, backend: Backend, count: usize) -> Vec<(String, i32)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = deliveries(app, backend).await;
        if found.len() == count && found.iter().all(|(state, _)| state != "pending") {
            return found;
        }
        assert!(Instant::now() < deadline, "not settled: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends! {
    async fn messages_arrive_signed_in_commit_order_and_a_failed_one_is_retried(backend) {
        let (url, seen) = receiver(1).await;
        let app = TestApp::spawn_with(backend, endpoint(&url, "[1, 1]")).await;
        app.order("D-1", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("D-1", "9001", "100")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("D-1", "9001", "30")).await.assert_answer("refund", Status::Ok);
        let states = settled(&app, backend, 2).await;
        assert_eq!(states, [("delivered".to_owned(), 2), ("delivered".to_owned(), 1)]);
        let seen = seen.lock().await.clone();
        let types: Vec<String> = seen
            .iter()
            .map(|(_, body, _)| serde_json::from_str::<serde_json::Value>(body).unwrap()["type"].as_str().unwrap().to_owned())
            .collect();
        // The refund waited for the retried success: never before it.
        assert_eq!(types, ["payment.succeeded", "payment.succeeded", "payment.refunded"], "{seen:?}");
        assert_eq!(seen[0].0, seen[1].0, "the same webhook-id on the retry");
        assert_eq!(seen[0].1, seen[1].1, "the same body on the retry");
        assert_ne!(seen[1].0, seen[2].0);
        app.stop().await;
    }

    async fn a_delivery_that_never_succeeds_is_dead_after_its_last_attempt(backend) {
        let (url, seen) = receiver(usize::MAX).await;
        let app = TestApp::spawn_with(backend, endpoint(&url, "[1]")).await;
        app.order("D-2", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("D-2", "9002", "100")).await.assert_answer("result", Status::Ok);
        let states = settled(&app, backend, 1).await;
        assert_eq!(states, [("dead".to_owned(), 2)]);
        assert_eq!(seen.lock().await.len(), 2);
        let attempts = {
            let sql = "SELECT count(*) FROM webhook_attempts WHERE outcome = 'failed' AND status = 500";
            match backend {
                Backend::Postgres => {
                    let mut db = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
                    sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut db).await.unwrap()
                }
                Backend::Sqlite => {
                    let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
                    sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut db).await.unwrap()
                }
            }
        };
        assert_eq!(attempts, 2, "every attempt recorded");
        app.stop().await;
    }
}

// `deliver` as a process of its own sends what `serve` could not: the
// endpoint does not answer while `serve` runs (its port is bound but
// never accepted, so every attempt times out), then `serve` stops, the
// endpoint comes up, and `freedompay-receiver deliver` delivers the
// pending message. Seen failing with the subcommand returning at once.
on_both_backends! {
    async fn deliver_alone_sends_what_serve_left_pending(backend) {
        let db = TestDb::new(backend).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let mut toml = base_toml(&db.url);
        endpoint(&url, "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]")(&mut toml);
        let toml = toml.replace("timeout_secs = 5", "timeout_secs = 1");
        let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
        app.order("D-3", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("D-3", "9003", "100")).await.assert_answer("result", Status::Ok);
        // At least one attempt timed out.
        let deadline = Instant::now() + Duration::from_secs(10);
        while deliveries(&app, backend).await.first().is_none_or(|(_, attempts)| *attempts == 0) {
            assert!(Instant::now() < deadline, "no attempt made");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app.stop().await;

        let seen = serve_receiver(listener, 0);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, &toml).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
            .arg("--config")
            .arg(&config)
            .arg("deliver")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The receiver now also reads the requests of serve's timed-out
        // attempts, left in its listen queue: only the outbox says whether
        // `deliver` delivered.
        let deadline = Instant::now() + Duration::from_secs(20);
        while deliveries_at(&db.url, backend).await.first().map(|(state, _)| state.as_str()) != Some("delivered") {
            assert!(Instant::now() < deadline, "deliver sent nothing");
            assert!(child.try_wait().unwrap().is_none(), "deliver exited");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
        let seen = seen.lock().await.clone();
        assert!(seen[0].1.contains("payment.succeeded"), "{seen:?}");
    }
}

/// Runs the binary's `webhooks …` with `config`; its stdout.
fn cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(config)
        .arg("webhooks")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "webhooks {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

on_both_backends! {
    // Operators: `webhooks list --state dead` finds a dead delivery, `show`
    // prints every attempt with its status and answer, and `replay` sends it
    // again with the same webhook-id, recording who asked (the endpoint
    // answers 500 twice, then 204: the replay is delivered); a delivered
    // one replayed keeps its delivering attempt listed.
    async fn operators_list_show_and_replay_a_dead_delivery(backend) {
        let db = TestDb::new(backend).await;
        let (url, seen) = receiver(2).await;
        let mut toml = base_toml(&db.url);
        endpoint(&url, "[1]")(&mut toml);
        let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
        app.order("D-4", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("D-4", "9004", "100")).await.assert_answer("result", Status::Ok);
        settled(&app, backend, 1).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, &toml).unwrap();

        let listed = cli(&config, &["list", "--state", "dead"]);
        let id = seen.lock().await[0].0.clone();
        assert!(listed.contains(&id) && listed.contains("payment.succeeded") && listed.contains("HTTP 500"), "{listed}");
        assert!(cli(&config, &["list", "--state", "delivered"]).is_empty());
        let shown = cli(&config, &["show", &id]);
        assert_eq!(shown.matches("attempt ").count(), 2, "{shown}");
        assert!(shown.contains("failed  HTTP 500"), "{shown}");

        let replayed = cli(&config, &["replay", &id, "--by", "tester"]);
        assert!(replayed.starts_with("1 deliveries"), "{replayed}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().await.len() < 3 {
            assert!(Instant::now() < deadline, "the replay was not sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen.lock().await[2].0, id, "the same webhook-id");
        let states = settled(&app, backend, 1).await;
        assert_eq!(states, [("delivered".to_owned(), 1)]);
        let listed = cli(&config, &["list"]);
        assert!(listed.contains("replayed by tester"), "{listed}");
        let shown = cli(&config, &["show", &id]);
        assert!(shown.contains("delivered  HTTP 204"), "{shown}");
        assert_eq!(shown.matches("attempt ").count(), 3, "{shown}");
        eprintln!("webhooks show {id}:\n{shown}");

        // Replayed once more after it was delivered: the attempt that
        // delivered it (kept on the delivery) stays listed beside the new one.
        cli(&config, &["replay", &id, "--by", "tester"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().await.len() < 4 {
            assert!(Instant::now() < deadline, "the second replay was not sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(settled(&app, backend, 1).await, [("delivered".to_owned(), 1)]);
        let shown = cli(&config, &["show", &id]);
        assert_eq!(shown.matches("attempt ").count(), 4, "{shown}");
        assert_eq!(shown.matches("delivered  HTTP 204").count(), 2, "{shown}");
        app.stop().await;
    }
}

on_both_backends! {
    // `webhooks listen` as a process beside the running service: it prints
    // its session's secret, then forwards only what is committed after it
    // started (not L-1's payment.refunded) and of the types asked for (not L-2's
    // payment.succeeded), signed so that `standardwebhooks` verifies it with
    // the printed secret, and prints a line for it; a message committed
    // late (made before one already forwarded) is forwarded too; the
    // outbox's deliveries stay the configured endpoint's alone. Seen failing
    // with the printed secret not the one signing, with --types ignored,
    // with the messages there at the start not marked seen, and with no
    // look-back.
    async fn listen_forwards_new_messages_signed_with_the_printed_secret(backend) {
        let db = TestDb::new(backend).await;
        let (url, configured) = receiver(0).await;
        let mut toml = base_toml(&db.url);
        endpoint(&url, "[1]")(&mut toml);
        let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
        app.order("L-1", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("L-1", "9101", "100")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("L-1", "9101", "10")).await.assert_answer("refund", Status::Ok);
        settled(&app, backend, 2).await;

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, &toml).unwrap();
        let forward = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let forward_url = format!("http://{}/hook", forward.local_addr().unwrap());
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
            .arg("--config")
            .arg(&config)
            .args(["webhooks", "listen", "--forward-to", &forward_url, "--types", "payment.refunded"])
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = next_line(&mut lines, "secret line").await;
        let secret = first.rsplit(' ').next().unwrap().to_owned();
        assert!(first.starts_with("webhook signing secret") && secret.starts_with("whsec_"), "{first}");
        let ready = next_line(&mut lines, "ready line").await;
        assert!(ready.starts_with("forwarding new messages to") && ready.contains(&forward_url), "{ready}");
        let forwarded = serve_receiver_signed(forward, 0, secret);

        app.order("L-2", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("L-2", "9102", "100")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("L-2", "9102", "30")).await.assert_answer("refund", Status::Ok);
        let line = next_line(&mut lines, "line for the refund").await;
        let seen = forwarded.lock().await.clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (id, body, _) = &seen[0];
        assert!(body.contains("\"payment.refunded\"") && body.contains("L-2"), "{body}");
        assert!(line.contains("  payment.refunded  ") && line.contains(id.as_str()) && line.contains("-> HTTP 204"), "{line}");
        assert!(line.ends_with(" ms"), "{line}");

        // A message made 2 s ago whose transaction commits only now, after
        // a later-made one was forwarded: within the look-back, forwarded.
        let made = chrono::Utc::now().timestamp_millis() - 2_000;
        let late = format!("msg_{made:012x}7000800000000000000a");
        assert!(late < *id, "made before the refund's message");
        let sql = "INSERT INTO webhook_messages (id, merchant_id, type, event_id, ordering_key, position, body) \
                   VALUES ($1, '545774', 'payment.refunded', 99, 'event:99', 0, '{\"type\":\"payment.refunded\"}')";
        match backend {
            Backend::Postgres => {
                let mut db = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query(sql).bind(&late).execute(&mut db).await.unwrap();
            }
            Backend::Sqlite => {
                let mut db = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::query(sql).bind(&late).execute(&mut db).await.unwrap();
            }
        }
        let line = next_line(&mut lines, "line for the late message").await;
        assert!(line.contains(&late) && line.contains("-> HTTP 204"), "{line}");
        assert_eq!(forwarded.lock().await[1].0, late);

        // The outbox is the configured endpoint's: its four deliveries, the
        // refund's with the webhook-id listen forwarded.
        let states = settled(&app, backend, 4).await;
        assert!(states.iter().all(|(state, _)| state == "delivered"), "{states:?}");
        assert!(configured.lock().await.iter().any(|(sent, _, _)| sent == id));
        let _ = child.kill().await;
        app.stop().await;
    }
}

/// The next line `webhooks listen` prints, within 20 s (`what`: the line
/// awaited, for the failure's message).
async fn next_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    what: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("listen printed no {what} in time"))
        .unwrap()
        .expect("listen still running")
}
