//! PostgreSQL failover: connections are made only to a server that takes
//! writes (what libpq's `target_session_attrs=read-write` does), a callback
//! that finds none is answered 503 and counted, and the service follows a
//! new primary by itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use freedompay_receiver::config::database_url::{
    Target as PostgresTarget, parse_url as parse_postgres_url,
};
use freedompay_receiver::config::{DatabaseSettings, Settings};
use freedompay_receiver::protocol::Status;
use freedompay_receiver::store::{NewOrder, Store};
use secrecy::SecretString;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::Mutex;

use crate::support::freedompay::{self, FreedomPay};
use crate::support::haproxy::Proxy;
use crate::support::pg::{Cluster, PgDatabase, server_url};
use crate::support::process::ServerProcess;
use crate::support::{KEY, MERCHANT, TestApp, base_toml};

/// Runs `sql` on the server's `postgres` database.
async fn admin(server: &str, sql: &str) {
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A database that turns read-only under a running service (its sessions
/// ended, as a failover ends them): the service's new connections are
/// refused when made, so a callback is answered 503 with the cause in the
/// one warning line, nothing is marked, and it is `ok` again once the
/// database takes writes. Seen failing with the check removed from the
/// writers' connect function (the 503's error is then PostgreSQL's own
/// `cannot execute INSERT in a read-only transaction`, found mid-transaction)
/// or from the pool's `after_connect` (a read on the pool then succeeds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_a_read_only_server_are_refused_when_made() {
    let Some(server) = server_url() else {
        return;
    };
    let db = PgDatabase::create(&server).await;
    let name = db
        .url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    let process = ServerProcess::start_on(&db.url, KEY, "").await;
    let addr = process
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let fp = FreedomPay::new(addr);
    // Ready once the service has migrated the database.
    for _ in 0..200 {
        let ready = fp.http.get(process.url("/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let settings = Settings::from_toml(&base_toml(&db.url)).expect("settings");
    let store = Store::connect(&settings.database).expect("store");
    store
        .insert_order(
            MERCHANT,
            &freedompay_receiver::store::NewOrder {
                order_id: "RO-1",
                amount: "100".parse().expect("amount"),
                currency: "KZT",
                expires_at: None,
            },
        )
        .await
        .expect("order");
    store.close().await;

    admin(
        &server,
        &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
    )
    .await;
    admin(
        &server,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
    .await;

    let callback = freedompay::result("RO-1", "7001", "100");
    for _ in 0..3 {
        let reply = fp.send("result", &callback).await;
        assert_eq!(reply.status, 503, "{reply:?}");
    }
    let ready = fp.http.get(process.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz on a read-only server");
    // The pool refuses such a connection too, even for a read.
    let store = Store::connect(&settings.database).expect("store");
    let read = store.count_needing_refund().await;
    assert!(read.is_err(), "the pool handed out a read-only connection");
    store.close().await;

    let log = process.log();
    let refusal = "refused: the server takes no writes (default_transaction_read_only is on)";
    let warnings = log
        .lines()
        .filter(|line| line.contains(refusal) && line.contains("answered 503 until"))
        .count();
    assert_eq!(warnings, 1, "one warning naming the cause:\n{log}");
    assert!(
        log.lines()
            .any(|line| line.contains("callback not recorded") && line.contains(refusal)),
        "the writer refused the connection before any write:\n{log}"
    );

    admin(
        &server,
        &format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
    )
    .await;
    let mut status = None;
    for _ in 0..50 {
        let reply = fp.send("result", &callback).await;
        if reply.status == 200 {
            status = reply.pg_status();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        Some(Status::Ok),
        "ok again once the server takes writes"
    );
    assert!(process.log().contains("the server takes writes again"));
    drop(process);
}

/// (host, port, database, user) of each server of `url`.
fn servers(url: &str) -> Vec<(String, u16, String, String)> {
    parse_postgres_url(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .servers
        .iter()
        .map(|s| {
            (
                s.get_host().to_owned(),
                s.get_port(),
                s.get_database().unwrap_or_default().to_owned(),
                s.get_username().to_owned(),
            )
        })
        .collect()
}

/// The host list of `database.url`, as libpq reads it: each host with its
/// port (5432 when it has none), the user, database and other parameters
/// shared by all; `target_session_attrs` read here (and not passed on).
/// Seen failing with the split on ',' removed (one server, or a parse error).
#[test]
fn several_hosts_in_the_url_are_parsed_like_libpq() {
    let s = |host: &str, port| (host.to_owned(), port, "pay".to_owned(), "u".to_owned());
    assert_eq!(
        servers(
            "postgres://u:p%40ss@h1:5433,h2,10.0.0.3:6000/pay?sslmode=disable&target_session_attrs=read-write"
        ),
        vec![s("h1", 5433), s("h2", 5432), s("10.0.0.3", 6000)]
    );
    assert_eq!(servers("postgresql://u@h1/pay"), vec![s("h1", 5432)]);
    assert_eq!(
        servers("postgres://u@[::1]:5434,h2:5435/pay"),
        vec![s("::1", 5434), s("h2", 5435)]
    );
    let target = |url: &str| parse_postgres_url(url).map(|p| p.target);
    assert_eq!(
        target("postgres://u@h1,h2/pay").unwrap(),
        PostgresTarget::ReadWrite
    );
    assert_eq!(
        target("postgres://u@h1,h2/pay?target_session_attrs=any").unwrap(),
        PostgresTarget::Any
    );
    assert!(target("postgres://u@h1,h2/pay?target_session_attrs=standby").is_err());
    assert!(target("postgres://u@h1,,h2/pay").is_err());
    assert!(target("postgres://u@h1:port,h2/pay").is_err());
}

/// `check-config` takes a URL with several hosts, and prints it without
/// its password. Seen failing with the multi-host redaction removed (the
/// whole URL is then shown as `[redacted]`).
#[test]
fn check_config_accepts_several_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"postgres://receiver:db-password-123@10.0.0.1:5432,10.0.0.2:5433/pay?target_session_attrs=read-write\"\n\
             [[merchants]]\nid = \"{MERCHANT}\"\nsecret_key = \"very-secret-merchant-key\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env_remove("FPR_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("postgres://receiver:[redacted]@10.0.0.1:5432,10.0.0.2:5433/pay?target_session_attrs=read-write"),
        "{text}"
    );
    assert!(!text.contains("db-password-123"), "{text}");
}

/// `check-config --connect` warns when the primary has no synchronous
/// standby (the suite's server has none). Seen failing with the warning
/// not printed.
#[test]
fn check_config_connect_warns_without_a_synchronous_standby() {
    let Some(server) = server_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{server}/postgres\"\n\
             [[merchants]]\nid = \"{MERCHANT}\"\nsecret_key = \"very-secret-merchant-key\"\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&path)
        .args(["check-config", "--connect"])
        .env_remove("FPR_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: database.url: the primary has no synchronous standby"),
        "{err}"
    );
}

/// A primary and its streaming standby on loopback ports; `synchronous`:
/// every commit waits for the standby (`synchronous_standby_names = '*'`,
/// `synchronous_commit = on`).
fn replicated_pair(synchronous: bool) -> (Cluster, Cluster) {
    let primary = Cluster::start();
    let standby = primary.standby();
    if synchronous {
        primary.configure("synchronous_standby_names = '*'");
        primary.configure("synchronous_commit = on");
        primary.pg_ctl(&["reload"]);
    }
    (primary, standby)
}

/// Waits until the primary reports its standby streaming (synchronously
/// when `synchronous`).
async fn wait_streaming(primary: &Cluster, synchronous: bool) {
    let want = if synchronous { "sync" } else { "async" };
    for _ in 0..200 {
        if let Ok(mut c) = PgConnection::connect(&primary.url).await {
            let states: Vec<(String,)> =
                sqlx::query_as("SELECT sync_state FROM pg_stat_replication")
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_default();
            if states.iter().any(|(s,)| s == want) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the standby is not streaming ({want})");
}

/// One answer: which order and callback, when answered, how.
#[derive(Clone, Copy, Debug)]
struct Answer {
    index: usize,
    refund: bool,
    answered: Duration,
    status: u16,
    ok: bool,
}

/// What a failover run saw.
#[derive(Debug, Default)]
struct Figures {
    sent: usize,
    acknowledged_before: usize,
    acknowledged_during: usize,
    acknowledged_after: usize,
    unavailable: usize,
    lost: usize,
    applied_twice: usize,
    promotion_to_ok: f64,
}

const SENDERS: usize = 32;

fn order_id(index: usize) -> String {
    format!("FO-{index}")
}

fn payment_id(index: usize) -> String {
    format!("{}", 90_000 + index)
}

/// Runs `orders` orders' result then refund callbacks from [`SENDERS`]
/// concurrent senders that retry each callback until it is `ok` (as
/// FreedomPay does, a little faster), while `fail_over` runs: it gets the
/// run's start and returns when (since the start) the primary was stopped
/// and the standby promoted. Then checks every acknowledged callback on the
/// new primary (`new_primary`, a URL).
async fn failover_under_load(
    app: Arc<TestApp>,
    orders: usize,
    new_primary: String,
    fail_over: impl FnOnce(Instant) -> (Duration, Duration) + Send + 'static,
) -> Figures {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (app, next, answers, running) =
                (app.clone(), next.clone(), answers.clone(), running.clone());
            tokio::spawn(async move {
                while running.load(Ordering::SeqCst) {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= orders {
                        return;
                    }
                    for refund in [false, true] {
                        let (kind, fields) = if refund {
                            (
                                "refund",
                                freedompay::refund(&order_id(index), &payment_id(index), "100"),
                            )
                        } else {
                            (
                                "result",
                                freedompay::result(&order_id(index), &payment_id(index), "100"),
                            )
                        };
                        let deadline = Instant::now() + Duration::from_secs(60);
                        loop {
                            let reply = app.fp.send(kind, &fields).await;
                            let ok = reply.status == 200 && reply.pg_status() == Some(Status::Ok);
                            answers.lock().await.push(Answer {
                                index,
                                refund,
                                answered: start.elapsed(),
                                status: reply.status,
                                ok,
                            });
                            if ok || Instant::now() > deadline {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    // Spread the orders over the run.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (stopped, promoted) = tokio::task::spawn_blocking(move || fail_over(start))
        .await
        .expect("failover");
    // The load goes on until callbacks have been ok for a while after the
    // promotion (bounded).
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let settled = answers
            .lock()
            .await
            .iter()
            .any(|a| a.ok && a.answered > promoted + Duration::from_secs(2));
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("sender");
    }
    let answers = answers.lock().await.clone();
    let odd: Vec<_> = answers
        .iter()
        .filter(|a| !a.ok && a.status != 503)
        .collect();
    assert!(odd.is_empty(), "answers other than ok or 503: {odd:?}");
    let first_ok_after = answers
        .iter()
        .filter(|a| a.ok && a.answered > promoted)
        .map(|a| a.answered)
        .min()
        .expect("no ok after the promotion");
    let mut figures = Figures {
        sent: answers.len(),
        unavailable: answers.iter().filter(|a| a.status == 503).count(),
        promotion_to_ok: (first_ok_after - promoted).as_secs_f64(),
        ..Figures::default()
    };
    for a in answers.iter().filter(|a| a.ok) {
        if a.answered < stopped {
            figures.acknowledged_before += 1;
        } else if a.answered < first_ok_after {
            figures.acknowledged_during += 1;
        } else {
            figures.acknowledged_after += 1;
        }
    }

    // Every acknowledged callback on the new primary, applied once.
    let mut db = PgConnection::connect(&new_primary)
        .await
        .expect("new primary");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT o.order_id, o.status::text, p.refunded_amount::text FROM orders o \
         LEFT JOIN payments p ON p.merchant_id = o.merchant_id AND p.order_id = o.order_id \
         WHERE o.merchant_id = $1",
    )
    .bind(MERCHANT)
    .fetch_all(&mut db)
    .await
    .expect("orders");
    let state: HashMap<String, (String, Option<String>)> = rows
        .into_iter()
        .map(|(order, status, refunded)| (order, (status, refunded)))
        .collect();
    for a in answers.iter().filter(|a| a.ok) {
        let (_, refunded) = state.get(&order_id(a.index)).cloned().unwrap_or_default();
        // The result made the payment row; the refund its refunded amount.
        let present = match refunded.as_deref() {
            None => false,
            Some(amount) => !a.refund || amount.parse::<f64>().unwrap_or(0.0) > 0.0,
        };
        if !present {
            figures.lost += 1;
        }
    }
    figures.applied_twice = state
        .values()
        .filter(|(_, refunded)| {
            refunded
                .as_deref()
                .unwrap_or("0")
                .parse::<f64>()
                .unwrap_or(0.0)
                > 100.0
        })
        .count();
    let (firsts,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT kind, subject_id, discriminator, count(*) AS n \
         FROM callback_decisions GROUP BY 1, 2, 3 HAVING count(*) > 1) twice",
    )
    .fetch_one(&mut db)
    .await
    .unwrap_or((0,));
    figures.applied_twice += firsts as usize;
    figures
}

fn print(setup: &str, f: &Figures) {
    eprintln!(
        "failover ({setup}, {SENDERS} senders): sent {}, acknowledged before {} / during {} / after {}, \
         503s {}, lost {}, applied twice {}, first ok {:.2} s after the promotion",
        f.sent,
        f.acknowledged_before,
        f.acknowledged_during,
        f.acknowledged_after,
        f.unavailable,
        f.lost,
        f.applied_twice,
        f.promotion_to_ok
    );
}

async fn spawn_on(url: &str, orders: usize) -> Arc<TestApp> {
    let toml = base_toml(url).replace(
        "max_connections = 8",
        "max_connections = 8\nacquire_timeout_secs = 1",
    );
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).expect("settings"), None).await;
    let amount = "100".parse().expect("amount");
    let ids: Vec<String> = (0..orders).map(order_id).collect();
    let rows: Vec<NewOrder> = ids
        .iter()
        .map(|id| NewOrder {
            order_id: id,
            amount,
            currency: "KZT",
            expires_at: None,
        })
        .collect();
    app.store
        .insert_orders(MERCHANT, &rows)
        .await
        .expect("orders");
    Arc::new(app)
}

/// Test C: both servers in `database.url`, no proxy: the primary is
/// stopped (`-m immediate`), the standby promoted, and the service moves to
/// it by itself. Seen failing with the host list reduced to its server in
/// use (one server tried per connection, and `Hosts::failed` not moving
/// on): the service keeps trying the dead primary and never answers ok
/// again. (Either half alone still fails over.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_in_the_url_fail_over_without_a_proxy() {
    if server_url().is_none() {
        return;
    }
    let (primary, standby) = tokio::task::spawn_blocking(|| replicated_pair(true))
        .await
        .expect("pair");
    wait_streaming(&primary, true).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    const ORDERS: usize = 6000;
    let app = spawn_on(&url, ORDERS).await;
    let new_primary = standby.url.clone();
    let pair = Arc::new((primary, standby));
    let rig = pair.clone();
    let figures = failover_under_load(app.clone(), ORDERS, new_primary, move |start| {
        rig.0.pg_ctl(&["stop", "-m", "immediate"]);
        let stopped = start.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        rig.1.pg_ctl(&["promote", "-w"]);
        (stopped, start.elapsed())
    })
    .await;
    print("sync, two hosts in the URL, no proxy", &figures);
    assert_eq!(figures.lost, 0, "{figures:?}");
    assert_eq!(figures.applied_twice, 0, "{figures:?}");
    assert!(figures.promotion_to_ok < 10.0, "{figures:?}");
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    drop(pair);
}

/// Test D: the same failover with asynchronous replication
/// (`synchronous_standby_names` empty). Acknowledged callbacks the new
/// primary lacks are counted and reported, not asserted: that figure is
/// what RELIABILITY.md tells merchants asynchronous replication risks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_replication_failover_is_measured() {
    if server_url().is_none() {
        return;
    }
    let (primary, standby) = tokio::task::spawn_blocking(|| replicated_pair(false))
        .await
        .expect("pair");
    wait_streaming(&primary, false).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
        primary.port(),
        standby.port()
    );
    const ORDERS: usize = 6000;
    let app = spawn_on(&url, ORDERS).await;
    let new_primary = standby.url.clone();
    let pair = Arc::new((primary, standby));
    let rig = pair.clone();
    let figures = failover_under_load(app.clone(), ORDERS, new_primary, move |start| {
        rig.0.pg_ctl(&["stop", "-m", "immediate"]);
        let stopped = start.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        rig.1.pg_ctl(&["promote", "-w"]);
        (stopped, start.elapsed())
    })
    .await;
    print("async, two hosts in the URL, no proxy", &figures);
    assert!(figures.acknowledged_before > 0, "{figures:?}");
    drop(pair);
}

/// `database.read_url` on the standby: the console's and history's reads
/// and the reconciler's searches are served there (its `pg_stat_activity` shows the service), while
/// callbacks go to the primary. Seen failing with `read_pool` returning the
/// one pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_url_serves_history_from_the_standby() {
    if server_url().is_none() {
        return;
    }
    let (primary, standby) = tokio::task::spawn_blocking(|| replicated_pair(true))
        .await
        .expect("pair");
    wait_streaming(&primary, true).await;
    let toml = base_toml(&primary.url).replace(
        "max_connections = 8",
        &format!("max_connections = 8\nread_url = \"{}\"", standby.url),
    );
    let app = TestApp::spawn_settings(Settings::from_toml(&toml).expect("settings"), None).await;
    app.order("RU-1", "100", "KZT").await;
    app.fp
        .send("result", &freedompay::result("RU-1", "8001", "100"))
        .await
        .assert_answer("result", Status::Ok);
    let mut found = false;
    for _ in 0..50 {
        // The console's overview, read through read_url.
        if app.store.overview().await.is_ok() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "the console read through read_url");
    // The reconciler's search for due work runs on the hot standby too (a
    // read-only server): the payment is not due, so nothing is created.
    assert_eq!(
        app.store
            .discover_tasks(3600, &[])
            .await
            .expect("discover on the standby"),
        0
    );
    let mut db = PgConnection::connect(&standby.url).await.expect("standby");
    let (readers,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'freedompay-receiver'",
    )
    .fetch_one(&mut db)
    .await
    .expect("pg_stat_activity");
    assert!(readers > 0, "no connection of the service on the standby");
    app.stop().await;
    drop((primary, standby));
}

/// The reconciler's searches for due work run on `database.read_url`, and
/// each candidate is checked again on the primary before its task is
/// created. Two databases of one server stand for the primary and a
/// lagging standby, so that they can differ: a payment pending on both gets
/// its status query; one the standby still shows pending but the primary
/// has settled gets none (the lag); one pending only on the primary is not
/// found (the search ran on the standby); likewise for refunds. Seen
/// failing with the search on the one pool (the primary-only payment got a
/// task) and with the primary's check removed (the settled one got one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_work_is_searched_on_read_url_and_checked_on_the_primary() {
    let Some(server) = server_url() else {
        return;
    };
    let (primary, lagging) = (
        PgDatabase::create(&server).await,
        PgDatabase::create(&server).await,
    );
    for db in [&primary, &lagging] {
        let store = Store::connect(&DatabaseSettings {
            url: SecretString::from(db.url.clone()),
            ..DatabaseSettings::default()
        })
        .expect("store");
        store.migrate().await.expect("migrate");
        store.close().await;
    }
    // (payment, status, needs_refund) on each.
    let rows = |db: &str| match db {
        "primary" => vec![
            ("on-both", "pending", false),
            ("settled-since", "succeeded", false),
            ("primary-only", "pending", false),
            ("refund-both", "succeeded", true),
            ("refunded-since", "refunded", false),
            ("refund-primary-only", "succeeded", true),
        ],
        _ => vec![
            ("on-both", "pending", false),
            ("settled-since", "pending", false),
            ("refund-both", "succeeded", true),
            ("refunded-since", "succeeded", true),
        ],
    };
    for (name, db) in [("primary", &primary), ("lagging", &lagging)] {
        let mut c = PgConnection::connect(&db.url).await.expect("connect");
        for (payment, status, needs_refund) in rows(name) {
            sqlx::query(
                "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, \
                 needs_refund, created_at) VALUES ($1, $2, $2, 100, 'KZT', $3, $4, now() - interval '1 hour')",
            )
            .bind(MERCHANT)
            .bind(payment)
            .bind(status)
            .bind(needs_refund)
            .execute(&mut c)
            .await
            .expect("payment");
        }
    }
    let store = Store::connect(&DatabaseSettings {
        url: SecretString::from(primary.url.clone()),
        read_url: Some(SecretString::from(lagging.url.clone())),
        ..DatabaseSettings::default()
    })
    .expect("store");
    let created = store
        .discover_tasks(60, &[(MERCHANT, "revoke")])
        .await
        .expect("discover");
    let mut c = PgConnection::connect(&primary.url).await.expect("connect");
    let mut tasks: Vec<(String, String)> =
        sqlx::query_as("SELECT task, subject_id FROM outbound_tasks ORDER BY 1, 2")
            .fetch_all(&mut c)
            .await
            .expect("tasks");
    tasks.sort();
    assert_eq!(
        tasks,
        [
            ("payment_status".to_owned(), "on-both".to_owned()),
            ("refund".to_owned(), "refund-both".to_owned()),
        ],
        "tasks created on the primary"
    );
    assert_eq!(created, 2);
    store.close().await;
}

/// Test A: the service connected only to HAProxy; under 32 senders the
/// primary is stopped (`-m immediate`), the standby promoted, and the proxy
/// moved to it. Every acknowledged callback is on the new primary, applied
/// once, answers during the switch are 503 only, callbacks are ok again
/// soon after the proxy moved, and `/readyz` is 503 during the switch and
/// ready again after it. Seen failing with the proxy never moved (no ok
/// after the promotion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_failover_behind_haproxy_loses_nothing() {
    if server_url().is_none() {
        return;
    }
    let (primary, standby) = tokio::task::spawn_blocking(|| replicated_pair(true))
        .await
        .expect("pair");
    wait_streaming(&primary, true).await;
    let proxy = Proxy::start(primary.port(), standby.port());
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    const ORDERS: usize = 6000;
    let app = spawn_on(&url, ORDERS).await;
    let new_primary = standby.url.clone();
    let rig = Arc::new((primary, standby, proxy));
    let switch = rig.clone();
    // `/readyz` asked every 50 ms through the run: when it was asked, and
    // what it said (a request that fails to complete counts as 0).
    let readiness = Arc::new(Mutex::new(Vec::<(Instant, Duration, u16)>::new()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (app, readiness, watching) = (app.clone(), readiness.clone(), watching.clone());
        tokio::spawn(async move {
            while watching.load(Ordering::SeqCst) {
                let asked = Instant::now();
                let status = match app.fp.http.get(app.url("/readyz")).send().await {
                    Ok(ready) => ready.status().as_u16(),
                    Err(_) => 0,
                };
                readiness
                    .lock()
                    .await
                    .push((asked, asked.elapsed(), status));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let switched = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    let noted = switched.clone();
    let figures = failover_under_load(app.clone(), ORDERS, new_primary, move |start| {
        switch.0.pg_ctl(&["stop", "-m", "immediate"]);
        let stopped = start.elapsed();
        let stopped_at = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        switch.1.pg_ctl(&["promote", "-w"]);
        switch.2.point_at("pg2");
        if let Ok(mut noted) = noted.lock() {
            *noted = Some((stopped_at, Instant::now()));
        }
        (stopped, start.elapsed())
    })
    .await;
    watching.store(false, Ordering::SeqCst);
    watcher.await.expect("readiness watcher");
    print("sync, behind HAProxy", &figures);
    assert_eq!(figures.lost, 0, "{figures:?}");
    assert_eq!(figures.applied_twice, 0, "{figures:?}");
    assert!(figures.promotion_to_ok <= 5.0, "{figures:?}");
    // `/readyz` tracks the switch: not ready between the primary's stop and
    // the proxy's move (writes cannot commit), ready before the stop.
    let (stopped_at, moved_at) = switched.lock().unwrap().expect("the switch happened");
    let readiness = readiness.lock().await.clone();
    let before: Vec<u16> = readiness
        .iter()
        .filter(|(at, took, _)| *at + *took < stopped_at)
        .map(|(_, _, s)| *s)
        .collect();
    // Asked while the switch was under way (sent before the proxy moved,
    // answered after the stop): a check that waits for an unreachable
    // database answers when its timeout ends.
    let during: Vec<(Duration, u16)> = readiness
        .iter()
        .filter(|(at, took, _)| *at < moved_at && *at + *took > stopped_at)
        .map(|(_, took, s)| (*took, *s))
        .collect();
    eprintln!(
        "failover (sync, behind HAProxy): /readyz before the stop 200 × {} of {}; \
         during the switch ({:.2} s), as (time taken, status): {during:?}",
        before.iter().filter(|s| **s == 200).count(),
        before.len(),
        (moved_at - stopped_at).as_secs_f64()
    );
    assert!(before.contains(&200), "/readyz before the stop: {before:?}");
    assert!(
        during.iter().any(|(_, s)| *s == 503),
        "/readyz during the switch: {during:?}"
    );
    let mut ready = 0;
    for _ in 0..50 {
        ready = app
            .fp
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200, "/readyz after the failover");
    drop(rig);
}

/// Test B: after a failover the old primary comes back read-only
/// (`default_transaction_read_only = on`) and the proxy points at it by
/// mistake for a few seconds: callbacks are answered 503 (never ok), the
/// refusal is counted as `read_only`, nothing is marked on the old primary,
/// and callbacks are ok again once the proxy is fixed. Seen failing with
/// SQLSTATE 25006 classified `Other` in `WriteFailure::of_code` (no
/// `read_only` in the metric). The connect-time refusal itself is seen
/// failing in `connections_to_a_read_only_server_are_refused_when_made`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_primary_back_read_only_behind_the_proxy_gets_503() {
    if server_url().is_none() {
        return;
    }
    let (primary, standby) = tokio::task::spawn_blocking(|| replicated_pair(true))
        .await
        .expect("pair");
    wait_streaming(&primary, true).await;
    let proxy = Proxy::start(primary.port(), standby.port());
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let app = spawn_on(&url, 40).await;
    let send = |index: usize| {
        let app = app.clone();
        async move {
            app.fp
                .send(
                    "result",
                    &freedompay::result(&order_id(index), &payment_id(index), "100"),
                )
                .await
        }
    };
    assert_eq!(send(0).await.pg_status(), Some(Status::Ok));
    tokio::task::block_in_place(|| {
        primary.pg_ctl(&["stop", "-m", "immediate"]);
        standby.pg_ctl(&["promote", "-w"]);
        proxy.point_at("pg2");
        primary.configure("default_transaction_read_only = on");
        primary.configure("synchronous_standby_names = ''");
        primary.pg_ctl(&["start", "-w", "-t", "60"]);
        // The mistake: the proxy sends new connections to the old primary.
        proxy.point_at("pg1");
    });
    let mistaken = Instant::now();
    let mut answers = Vec::new();
    let mut index = 1;
    while mistaken.elapsed() < Duration::from_secs(3) {
        answers.push(send(index).await.status);
        index += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        answers.iter().all(|&status| status == 503),
        "while the proxy pointed at the read-only old primary: {answers:?}"
    );
    let metrics = app.fp.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("freedompay_write_failures_total{cause=\"read_only\"}"),
        "read-only refusals counted"
    );
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz while read-only");
    let mut old = PgConnection::connect(&primary.url)
        .await
        .expect("old primary");
    let (marked,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM payments WHERE order_id <> 'FO-0'")
            .fetch_one(&mut old)
            .await
            .expect("orders");
    assert_eq!(marked, 0, "nothing marked on the old primary");

    tokio::task::block_in_place(|| proxy.point_at("pg2"));
    let fixed = Instant::now();
    let mut ok_after = None;
    while fixed.elapsed() < Duration::from_secs(10) {
        if send(index).await.pg_status() == Some(Status::Ok) {
            ok_after = Some(fixed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok_after = ok_after.expect("ok again once the proxy was fixed");
    eprintln!(
        "old primary back read-only behind the proxy: {} answered 503 in 3 s, \
         ok again {:.2} s after the proxy was fixed",
        answers.len(),
        ok_after.as_secs_f64()
    );
    drop((primary, standby, proxy));
}
