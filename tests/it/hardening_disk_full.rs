//! A full disk under load, on both backends, with real file systems: the
//! database (SQLite's file, or a throwaway PostgreSQL cluster's data
//! directory and so its WAL) lives on a small tmpfs that the test mounts,
//! fills with signed result callbacks from 16 concurrent senders, and then
//! grows. While full every answer is 503 (never `ok` without a commit, never
//! 500) and `/readyz` says so; once the space is back, FreedomPay's
//! re-deliveries are `ok` again within seconds, without a restart; nothing
//! acknowledged is lost or applied twice, and the database is intact.
//!
//! Mounting needs root, which CI has; elsewhere the tests say so and stop.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use freedompay_receiver::config::Settings;
use freedompay_receiver::domain::OrderStatus;
use freedompay_receiver::protocol::{Amount, Status};
use freedompay_receiver::store::NewOrder;
use freedompay_receiver::store::health::WriteFailure;
use tokio::sync::Mutex;

use crate::support::freedompay;
use crate::support::pg::{Cluster, server_url};
use crate::support::{MERCHANT, TestApp, base_toml};

const SENDERS: usize = 16;
const MIB: u64 = 1024 * 1024;

/// A tmpfs of the test's own, unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes`; `None` (the test stops) when not root
    /// outside CI.
    fn mount(bytes: u64) -> Option<SmallFs> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0"));
        if !root && std::env::var_os("CI").is_none() {
            eprintln!("disk-full test needs root to mount a tmpfs: not run");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0777"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(SmallFs { dir })
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    fn resize(&self, bytes: u64) {
        let out = Command::new("mount")
            .args(["-o"])
            .arg(format!("remount,size={bytes}"))
            .arg(self.dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "remount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Bytes in use.
    fn used(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=used"])
            .arg(self.dir.path())
            .output()
            .expect("df runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .expect("df prints the bytes used")
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

fn order_id(index: usize) -> String {
    format!("F-{index}")
}

/// Sends the result callback of every order in `orders` once, from
/// [`SENDERS`] concurrent senders; returns each one's (order, HTTP status,
/// answered `ok`) and the time the first `ok` arrived.
async fn deliver(
    app: &Arc<TestApp>,
    orders: &[usize],
    started: Instant,
) -> (Vec<(usize, u16, bool)>, Option<Duration>) {
    let orders = Arc::new(orders.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let first_ok = Arc::new(Mutex::new(None::<Duration>));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (app, orders, next, answers, first_ok) = (
                app.clone(),
                orders.clone(),
                next.clone(),
                answers.clone(),
                first_ok.clone(),
            );
            tokio::spawn(async move {
                while let Some(&index) = orders.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let fields =
                        freedompay::result(&order_id(index), &format!("{}", 70_000 + index), "100");
                    let reply = app.fp.send("result", &fields).await;
                    let ok = reply.status == 200 && reply.pg_status() == Some(Status::Ok);
                    if ok {
                        first_ok.lock().await.get_or_insert(started.elapsed());
                    }
                    answers.lock().await.push((index, reply.status, ok));
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    let answers = answers.lock().await.clone();
    let first = *first_ok.lock().await;
    (answers, first)
}

/// What a disk-full run saw.
struct Run {
    acknowledged_before: usize,
    unavailable_while_full: usize,
    recovered_after: Duration,
}

/// Fills the disk with callbacks, checks the answers and readiness while
/// full, calls `make_room` (which grows the file system, restarts the
/// database when it stopped, and returns when it accepts connections), then
/// re-delivers until every callback is `ok`; checks nothing acknowledged
/// was lost.
async fn fill_and_recover(
    app: Arc<TestApp>,
    orders: usize,
    make_room: impl FnOnce() + Send + 'static,
) -> Run {
    let all: Vec<usize> = (0..orders).collect();
    let (answers, _) = deliver(&app, &all, Instant::now()).await;
    let odd: Vec<_> = answers
        .iter()
        .filter(|(_, status, ok)| !ok && *status != 503)
        .collect();
    assert!(
        odd.is_empty(),
        "while the disk filled every answer must be ok or 503: {odd:?}"
    );
    let acknowledged: BTreeSet<usize> = answers
        .iter()
        .filter(|(_, _, ok)| *ok)
        .map(|(index, _, _)| *index)
        .collect();
    let unavailable = answers.len() - acknowledged.len();
    assert!(
        unavailable > 0,
        "the disk never filled ({} acknowledged)",
        acknowledged.len()
    );
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the disk filled"
    );

    // Full: readiness says so (the database may still answer a SELECT).
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz while the disk is full");
    let metrics = app.fp.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("freedompay_write_failures_total{cause=\"disk_full\"}")
            || metrics.contains("freedompay_write_failures_total{cause=\"unavailable\"}"),
        "write failures counted by cause"
    );

    tokio::task::spawn_blocking(make_room)
        .await
        .expect("room made");
    let room_at = Instant::now();
    let mut pending: Vec<usize> = (0..orders).filter(|i| !acknowledged.contains(i)).collect();
    let mut recovered_after = None;
    while !pending.is_empty() && room_at.elapsed() < Duration::from_secs(30) {
        let (answers, first_ok) = deliver(&app, &pending, room_at).await;
        let odd: Vec<_> = answers
            .iter()
            .filter(|(_, status, ok)| !ok && *status != 503)
            .collect();
        assert!(odd.is_empty(), "after the space came back: {odd:?}");
        recovered_after = recovered_after.or(first_ok);
        let ok: BTreeSet<usize> = answers
            .iter()
            .filter(|(_, _, ok)| *ok)
            .map(|(index, _, _)| *index)
            .collect();
        pending.retain(|index| !ok.contains(index));
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let recovered_after = recovered_after.expect("no callback was ok again without a restart");
    assert!(
        pending.is_empty(),
        "{} callbacks still not ok 30 s after the space came back",
        pending.len()
    );
    let ready = app.fp.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "/readyz after the space came back");

    // Nothing acknowledged was lost; everything is paid exactly once.
    for index in 0..orders {
        let order = app
            .store
            .order(MERCHANT, &order_id(index))
            .await
            .unwrap()
            .expect("order");
        assert_eq!(order.status, OrderStatus::Paid, "order {index}");
        let payment = app
            .store
            .payment(MERCHANT, &format!("{}", 70_000 + index))
            .await
            .unwrap()
            .expect("payment");
        assert_eq!(payment.order_id, order_id(index));
    }
    let firsts = app
        .store
        .event_marks(Some("result"))
        .await
        .unwrap()
        .into_iter()
        .filter(|event| !event.duplicate)
        .count();
    assert_eq!(firsts, orders, "each result applied exactly once");
    Run {
        acknowledged_before: acknowledged.len(),
        unavailable_while_full: unavailable,
        recovered_after,
    }
}

async fn insert_orders(app: &TestApp, orders: usize) {
    let amount: Amount = "100".parse().unwrap();
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
    app.store.insert_orders(MERCHANT, &rows).await.unwrap();
}

fn settings(url: &str) -> Settings {
    let toml = base_toml(url).replace(
        "max_connections = 8",
        "max_connections = 4\nacquire_timeout_secs = 1",
    );
    Settings::from_toml(&toml).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_disk_answers_503_then_recovers_without_restart() {
    let Some(fs) = SmallFs::mount(2 * MIB) else {
        return;
    };
    let path = format!("{}/receiver.db", fs.path());
    let url = format!("sqlite://{path}");
    let app = Arc::new(TestApp::spawn_settings(settings(&url), None).await);
    const ORDERS: usize = 1500;
    insert_orders(&app, ORDERS).await;
    let fs = Arc::new(fs);
    let grow = fs.clone();
    let run = fill_and_recover(app.clone(), ORDERS, move || grow.resize(64 * MIB)).await;

    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (integrity,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "disk full (sqlite, 2 MiB tmpfs, {SENDERS} senders): {} acknowledged before, \
         {} answered 503 while full, ok again {:.2} s after the space came back, lost 0, \
         applied twice 0, integrity_check ok",
        run.acknowledged_before,
        run.unavailable_while_full,
        run.recovered_after.as_secs_f64()
    );
    assert!(
        run.recovered_after < Duration::from_secs(10),
        "recovery took {:?}",
        run.recovered_after
    );
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_full_disk_answers_503_then_recovers_without_restart() {
    if server_url().is_none() {
        return;
    }
    let Some(fs) = SmallFs::mount(256 * MIB) else {
        return;
    };
    // 1 MB WAL segments, so that WAL runs out of room in a few megabytes.
    let parent = fs.path().to_owned();
    let cluster = Arc::new(
        tokio::task::spawn_blocking(move || Cluster::start_in(&parent, "--wal-segsize=1"))
            .await
            .unwrap(),
    );
    let app = Arc::new(TestApp::spawn_settings(settings(&cluster.url), None).await);
    const ORDERS: usize = 4000;
    insert_orders(&app, ORDERS).await;
    // Leave a few megabytes free.
    fs.resize(fs.used() + 3 * MIB);
    let (fs, grown) = (Arc::new(fs), cluster.clone());
    let grow = fs.clone();
    let run = fill_and_recover(app.clone(), ORDERS, move || {
        grow.resize(512 * MIB);
        // PostgreSQL stops when it cannot write its WAL (PANIC), and its
        // crash recovery may not get through while the disk is full: it
        // is started again, as systemd would.
        if !grown.running() {
            grown.start_again();
        }
    })
    .await;
    let panicked = cluster.log().contains("PANIC");
    eprintln!("PostgreSQL stopped for want of space (PANIC in its log): {panicked}");
    eprintln!(
        "disk full (postgres, WAL on a tmpfs with 3 MiB free, {SENDERS} senders): {} acknowledged \
         before, {} answered 503 while full, ok again {:.2} s after PostgreSQL accepted \
         connections, lost 0, applied twice 0",
        run.acknowledged_before,
        run.unavailable_while_full,
        run.recovered_after.as_secs_f64()
    );
    assert!(
        run.recovered_after < Duration::from_secs(10),
        "recovery took {:?}",
        run.recovered_after
    );
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
    drop(cluster);
}

/// The causes counted and reported by readiness, from both backends' codes.
#[test]
fn write_failures_by_cause() {
    let cases = [
        ("13", WriteFailure::DiskFull),
        // SQLITE_IOERR_WRITE keeps SQLITE_IOERR in its low byte.
        ("778", WriteFailure::Unavailable),
        ("8", WriteFailure::ReadOnly),
        ("5", WriteFailure::Contention),
        ("2067", WriteFailure::Other),
        ("53100", WriteFailure::DiskFull),
        ("25006", WriteFailure::ReadOnly),
        ("57P01", WriteFailure::Unavailable),
        ("08006", WriteFailure::Unavailable),
        ("40P01", WriteFailure::Contention),
        ("23505", WriteFailure::Other),
    ];
    for (code, failure) in cases {
        assert_eq!(WriteFailure::of_code(code), failure, "{code}");
    }
    assert!(WriteFailure::DiskFull.stops_writes());
    assert!(!WriteFailure::Data.stops_writes());
}
