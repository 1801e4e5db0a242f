//! PostgreSQL's event log partitioned by month (`store::postgres::partitions`):
//! a database made by the previous release, with events in it, upgrades
//! with `migrate` while callbacks go on, keeping every row in place; the
//! reads of the log stay on indexes on the partitioned table.

use std::time::{Duration, Instant};

use freedompay_receiver::config::{DatabaseSettings, Settings};
use freedompay_receiver::protocol::Status;
use freedompay_receiver::store::{EventLog, HistoryKey, Store};
use secrecy::SecretString;
use sqlx::Connection;

use crate::support::pg::server_url;
use crate::support::{Backend, MERCHANT, TestApp, TestDb, base_toml, freedompay};

async fn count(connection: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(connection)
        .await
        .unwrap()
}

/// A database of the previous release (every migration, `events` a plain
/// table) with 50,000 old events and a few real payments, upgraded by
/// `migrate` while a client sends callbacks: every row is still there (the
/// old table is the partition of the past), the callbacks never waited a
/// second, and the service goes on working on the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_log_full_of_events_upgrades_in_place_while_callbacks_go_on() {
    if server_url().is_none() {
        return;
    }
    let db = TestDb::empty_postgres().await;
    let database = DatabaseSettings {
        url: SecretString::from(db.url.clone()),
        ..DatabaseSettings::default()
    };
    let store = Store::connect(&database).unwrap();
    assert!(store.migrate_with(EventLog::Plain).await.unwrap().is_none());
    store.close().await;
    let mut raw = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, received_at) \
         SELECT '545774', 'result', 'OLD-' || g, 'old-' || g, '[[\"pg_amount\",\"10\"]]', \
         now() - make_interval(mins => g) FROM generate_series(1, 50000) g",
    )
    .execute(&mut raw)
    .await
    .unwrap();

    let toml = format!(
        "{}\n",
        base_toml(&db.url).replace("[database]\n", "[database]\nmigrate_on_start = false\n")
    );
    let settings = Settings::from_toml(&toml).unwrap();
    let app = TestApp::spawn_settings(settings, None).await;
    for n in 1..=20 {
        app.order(&format!("U-{n}"), "10", "KZT").await;
    }
    app.fp
        .send("result", &freedompay::result("U-1", "u1", "10"))
        .await
        .assert_answer("result", Status::Ok);
    let before = count(&mut raw, "SELECT count(*) FROM events").await;
    assert_eq!(before, 50_001);

    // Callbacks from before the upgrade starts until after it ended.
    let upgraded = std::sync::atomic::AtomicBool::new(false);
    let sending = async {
        let mut ok = 0;
        let mut sent = 0;
        let mut longest = Duration::ZERO;
        let mut after = 0;
        while after < 10 {
            if upgraded.load(std::sync::atomic::Ordering::SeqCst) {
                after += 1;
            }
            sent += 1;
            let n = 2 + sent % 19;
            {
                let started = Instant::now();
                let reply = app
                    .fp
                    .send(
                        "result",
                        &freedompay::result(&format!("U-{n}"), &format!("u{n}"), "10"),
                    )
                    .await;
                longest = longest.max(started.elapsed());
                if reply.pg_status() == Some(Status::Ok) {
                    ok += 1;
                }
            }
        }
        (ok, sent, longest)
    };
    let upgrading = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let store = Store::connect(&database).unwrap();
        let upgrade = store.migrate_with(EventLog::Partitioned).await.unwrap();
        store.close().await;
        upgraded.store(true, std::sync::atomic::Ordering::SeqCst);
        upgrade
    };
    let ((ok, sent, longest), upgrade) = tokio::join!(sending, upgrading);
    let upgrade = upgrade.expect("the plain log was upgraded");
    assert_eq!(
        ok, sent,
        "every callback during the upgrade was answered ok"
    );
    assert!(
        longest < Duration::from_secs(1),
        "longest callback {longest:?}"
    );
    assert!(upgrade.rows >= before, "{upgrade:?}");
    let old = upgrade
        .old_partition
        .clone()
        .expect("the old table is kept");
    assert!(old.starts_with("events_before_"), "{old}");

    let partitioned = count(
        &mut raw,
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'events'::regclass",
    )
    .await;
    assert_eq!(partitioned, 1);
    assert_eq!(
        count(&mut raw, "SELECT count(*) FROM events").await,
        before + ok
    );
    assert_eq!(
        count(&mut raw, &format!("SELECT count(*) FROM {old}")).await,
        count(&mut raw, "SELECT count(*) FROM events").await,
        "every row, old and new, is in the partition of the past (its bound is a month ahead)"
    );
    let months = count(
        &mut raw,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass",
    )
    .await;
    assert!(months >= 4, "the old table and the months ahead: {months}");
    assert_eq!(
        count(
            &mut raw,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'callback_decisions_event_id_fkey'"
        )
        .await,
        0
    );

    // A second migrate finds it done; the service reads and writes as
    // before: old rows through `history`, a repeat answered from its stored
    // decision (which names an event in the old table), new callbacks.
    let store = Store::connect(&database).unwrap();
    assert!(store.migrate().await.is_ok());
    assert!(
        store
            .migrate_with(EventLog::Partitioned)
            .await
            .unwrap()
            .is_none()
    );
    let old_history = store
        .history(MERCHANT, HistoryKey::Payment("old-7"))
        .await
        .unwrap()
        .expect("an old event is found");
    assert_eq!(old_history.events.len(), 1);
    store.close().await;
    app.fp
        .send("result", &freedompay::result("U-1", "u1", "10"))
        .await
        .assert_answer("result", Status::Ok);
    app.order("U-NEW", "10", "KZT").await;
    app.fp
        .send("result", &freedompay::result("U-NEW", "unew", "10"))
        .await
        .assert_answer("result", Status::Ok);
    app.stop().await;
}

/// Whether a node of `plan` walks an index of a table that holds rows
/// (one of `filled`) without a condition on it (with scans disabled, what a
/// missing index looks like). An empty month's partition may be walked:
/// there is nothing in it.
fn walks_a_whole_index(plan: &serde_json::Value, filled: &[String]) -> bool {
    let node = plan["Node Type"].as_str().unwrap_or("");
    let relation = plan["Relation Name"].as_str().unwrap_or("");
    (node.starts_with("Index")
        && plan.get("Index Cond").is_none()
        && filled.iter().any(|f| f == relation))
        || plan["Plans"]
            .as_array()
            .is_some_and(|children| children.iter().any(|c| walks_a_whole_index(c, filled)))
}

/// On the partitioned log of a new database (never analysed, then with a
/// month of rows and analysed), with the pool's session settings, every
/// read `history` and the console make of `events` goes through an index of
/// each partition it reads, with a condition on it: no sequential scan, no
/// walk of a whole index. (The console's last-day reads walk the primary
/// key `(id, received_at)` of the months that hold the last day, by the
/// time: partition pruning bounds them to those months.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_the_partitioned_log_stay_on_indexes() {
    use freedompay_receiver::store::POSTGRES_POOL_SETTINGS;
    use freedompay_receiver::store::reads::{console, history};
    use freedompay_receiver::store::tables::Dialect;
    if server_url().is_none() {
        return;
    }
    let db = TestDb::migrated(Backend::Postgres).await;
    let mut raw = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for (name, value) in POSTGRES_POOL_SETTINGS {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET {name} = '{value}'")))
            .execute(&mut raw)
            .await
            .unwrap();
    }
    let reads: Vec<(&str, String, &str)> = history::event_log_reads(Dialect::Postgres)
        .into_iter()
        .map(|(name, sql)| (name, sql, "('545774', 'O-1')"))
        .chain(
            console::event_log_reads(Dialect::Postgres)
                .into_iter()
                .map(|(name, sql)| {
                    let args = if name == "console events" {
                        "(24, 'result', true, 'ok', false, false, false, 50)"
                    } else {
                        ""
                    };
                    (name, sql, args)
                }),
        )
        .collect();
    let mut failures = Vec::new();
    for filled in [false, true] {
        let mut holding_rows = Vec::new();
        if filled {
            sqlx::query(
                "INSERT INTO events (merchant_id, kind, order_id, payment_id, fields) \
                 SELECT '545774', 'result', 'O-' || g, 'P-' || g, '[]' FROM generate_series(1, 20000) g",
            )
            .execute(&mut raw)
            .await
            .unwrap();
            sqlx::query("ANALYZE events")
                .execute(&mut raw)
                .await
                .unwrap();
            holding_rows =
                sqlx::query_scalar("SELECT tableoid::regclass::text FROM events GROUP BY 1")
                    .fetch_all(&mut raw)
                    .await
                    .unwrap();
        }
        for (n, (name, sql, args)) in reads.iter().enumerate() {
            let prepared = format!("read_{n}_{filled}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {prepared} AS {sql}")))
                .execute(&mut raw)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (FORMAT JSON) EXECUTE {prepared}{args}"
            )))
            .fetch_one(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = plan.to_string();
            if text.contains("\"Seq Scan\"")
                || text.contains("Bitmap")
                || walks_a_whole_index(&plan[0]["Plan"], &holding_rows)
            {
                failures.push(format!("{name} (rows: {filled}): {text}"));
            }
            assert!(
                text.contains("events_"),
                "{name} reads the partitions: {text}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "reads that scan:\n{}",
        failures.join("\n")
    );
}
