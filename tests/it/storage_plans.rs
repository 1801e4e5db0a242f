//! No plan of the write path depends on table statistics: on PostgreSQL
//! tables never analysed, analysed empty, analysed small and grown a
//! thousandfold, and big and analysed, every lookup of the write path and of
//! the store's row reads uses its table's primary key and no statement scans
//! a table, in custom and generic plans, on connections set up as the group
//! writers' and as the pool's. A young or stale table is where a
//! statistics-driven plan goes wrong; this is where it would show. On
//! SQLite, every read looks its rows up by key on a fresh database. The
//! operators' reads of the webhook outbox (`history`'s messages, the
//! console's Webhooks page) stay on their indexes on both backends, on an
//! empty and on a big database.

use freedompay_receiver::store::{
    LockAndDraw, POSTGRES_POOL_SETTINGS, POSTGRES_STATEMENTS, POSTGRES_WRITER_SETTINGS,
    SQLITE_STATEMENTS, Writes,
};
use serde_json::Value;
use sqlx::Connection;

use crate::support::pg::server_url;
use crate::support::{Backend, TestDb};

/// Every (node type, relation, index) of a JSON plan.
fn nodes(plan: &Value, out: &mut Vec<(String, String, String)>) {
    let text = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    if plan.get("Node Type").is_some() {
        out.push((text("Node Type"), text("Relation Name"), text("Index Name")));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nodes(child, out);
    }
}

async fn plan_of(
    connection: &mut sqlx::PgConnection,
    sql: &str,
    params: &[&str],
) -> Vec<(String, String, String)> {
    let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
    let mut query = sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(explain));
    for param in params {
        query = query.bind(param.to_string());
    }
    let plan: Value = query.fetch_one(&mut *connection).await.unwrap();
    let mut out = Vec::new();
    nodes(&plan[0]["Plan"], &mut out);
    out
}

/// The states of statistics a table can be in when a callback's statement
/// is planned: each is where a statistics-driven plan would pick a scan.
#[derive(Clone, Copy, Debug)]
enum Stats {
    /// Freshly migrated, never analysed.
    NeverAnalysed,
    /// Analysed while empty (a `VACUUM ANALYZE` of a new database).
    AnalysedEmpty,
    /// Analysed at 100 rows, then grown a thousandfold (autovacuum's first
    /// analyse, before it runs again).
    AnalysedSmallThenGrown,
    /// Big and analysed.
    BigAnalysed,
}

/// Inserts `rows` rows into every table the callback path reads, numbered
/// from `from`.
async fn fill(connection: &mut sqlx::PgConnection, from: i64, rows: i64) {
    let to = from + rows - 1;
    for sql in [
        "INSERT INTO orders (merchant_id, order_id, amount, currency) \
         SELECT 'M', 'O-' || i, 100, 'KZT' FROM generate_series($1::bigint, $2::bigint) i",
        "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status) \
         SELECT 'M', 'P-' || i, 'O-' || i, 100, 'KZT', 'succeeded' \
         FROM generate_series($1::bigint, $2::bigint) i",
        "INSERT INTO payouts (merchant_id, order_id, status) \
         SELECT 'M', 'O-' || i, 'success' FROM generate_series($1::bigint, $2::bigint) i",
        "INSERT INTO events (id, merchant_id, kind, order_id, payment_id, fields) \
         SELECT i, 'M', 'result', 'O-' || i, 'P-' || i, '[]' \
         FROM generate_series($1::bigint, $2::bigint) i",
        "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, \
         answer_status, event_id) SELECT 'M', 'result', 'P-' || i, 'ok', 'ok', i \
         FROM generate_series($1::bigint, $2::bigint) i",
    ] {
        sqlx::query(sql)
            .bind(from)
            .bind(to)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
}

async fn analyse(connection: &mut sqlx::PgConnection) {
    sqlx::query("ANALYZE").execute(connection).await.unwrap();
}

/// A freshly migrated database whose tables are in the state `stats`, but
/// for the growth of [`Stats::AnalysedSmallThenGrown`] ([`grow`]), which
/// comes after plans were cached (autovacuum off for these tables, so that
/// the state stays as made).
async fn in_state(stats: Stats) -> TestDb {
    let db = TestDb::migrated(Backend::Postgres).await;
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    // The event log's months are its tables (a partitioned table itself
    // has no autovacuum).
    let months: Vec<String> = sqlx::query_scalar(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(!months.is_empty(), "events is partitioned");
    let tables = ["orders", "payments", "payouts", "callback_decisions"]
        .into_iter()
        .map(str::to_owned)
        .chain(months);
    for table in tables {
        let sql = format!("ALTER TABLE {table} SET (autovacuum_enabled = false)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
    }
    match stats {
        Stats::NeverAnalysed => {}
        Stats::AnalysedEmpty => analyse(&mut connection).await,
        Stats::AnalysedSmallThenGrown => {
            fill(&mut connection, 1, 100).await;
            analyse(&mut connection).await;
        }
        Stats::BigAnalysed => {
            fill(&mut connection, 1, 100_000).await;
            analyse(&mut connection).await;
        }
    }
    connection.close().await.unwrap();
    db
}

/// The growth that follows the plans cached in `stats`, if any.
async fn grow(db: &TestDb, stats: Stats) {
    if let Stats::AnalysedSmallThenGrown = stats {
        let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
        fill(&mut connection, 101, 100_000).await;
        connection.close().await.unwrap();
    }
}

/// Prepares `sql` as `name` (text parameters) and runs `EXPLAIN EXECUTE`
/// once with `params`, so that a connection forcing generic plans caches
/// one now, as a writer connection caches its statements' plans.
async fn prepare(connection: &mut sqlx::PgConnection, name: &str, sql: &str, params: &[&str]) {
    let types = vec!["text"; params.len()].join(", ");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE {name}({types}) AS {sql}"
    )))
    .execute(&mut *connection)
    .await
    .unwrap();
    generic_plan(connection, name, params).await;
}

/// The plan `EXECUTE name(params)` runs (the cached generic plan under
/// `force_generic_plan`).
async fn generic_plan(
    connection: &mut sqlx::PgConnection,
    name: &str,
    params: &[&str],
) -> Vec<(String, String, String)> {
    let quoted: Vec<String> = params
        .iter()
        .map(|p| format!("'{}'", p.replace('\'', "''")))
        .collect();
    plan_of(
        connection,
        &format!("EXECUTE {name}({})", quoted.join(", ")),
        &[],
    )
    .await
}

/// A group's changes as the write statement takes them: realistic rows for
/// every table, so that each part of the statement is planned with work.
fn write_params() -> Vec<String> {
    let events: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"id": i + 1, "merchant_id": "M", "kind": "result", "order_id": format!("O-{i}"),
            "payment_id": format!("P-{i}"), "fields": [], "answer_status": "ok", "duplicate": false,
            "conflict": false})
        })
        .collect();
    let payments: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"merchant_id": "M", "payment_id": format!("P-{i}"),
            "order_id": format!("O-{i}"), "amount": "100", "currency": "KZT", "status": "succeeded",
            "testing_mode": false, "needs_refund": false, "refunded_amount": "0"})
        })
        .collect();
    let orders: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"merchant_id": "M", "order_id": format!("O-{i}"), "amount": "100",
            "currency": "KZT", "status": "paid", "paid_payment_id": format!("P-{i}")})
        })
        .collect();
    let payouts: Vec<_> = (0..50)
        .map(|i| serde_json::json!({"merchant_id": "M", "order_id": format!("O-{i}"), "status": "success"}))
        .collect();
    let decisions: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"merchant_id": "M", "kind": "result", "subject_id": format!("P-{i}"),
            "discriminator": "ok", "answer_status": "ok", "event_id": i + 1, "repeats": 0})
        })
        .collect();
    let repeats: Vec<_> = (0..50)
        .map(|i| serde_json::json!({"merchant_id": "M", "kind": "redirect", "subject_id": format!("P-{i}"),
            "discriminator": "ok", "repeats": 1}))
        .collect();
    let confirms: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"merchant_id": "M", "task": "status", "subject_id": format!("P-{i}"),
            "due_in_secs": 60})
        })
        .collect();
    let messages: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"id": format!("msg_{i}"), "merchant_id": "M", "type": "payment.succeeded",
            "event_id": i + 1, "ordering_key": format!("payment:M:P-{i}"), "position": 0,
            "body": "{\"type\": \"payment.succeeded\"}"})
        })
        .collect();
    let deliveries: Vec<_> = (0..50)
        .map(|i| {
            serde_json::json!({"message_id": format!("msg_{i}"), "endpoint": "orders",
            "ordering_key": format!("payment:M:P-{i}"), "event_id": i + 1, "position": 0})
        })
        .collect();
    [
        events, payments, orders, payouts, decisions, repeats, confirms, messages, deliveries,
    ]
    .iter()
    .map(|rows| serde_json::to_string(rows).unwrap())
    .collect()
}

/// A connection to `url` set up as the service sets up its own: the
/// session `settings` (`POSTGRES_WRITER_SETTINGS` or `POSTGRES_POOL_SETTINGS`).
async fn connect_with_settings(url: &str, settings: &[(&str, &str)]) -> sqlx::PgConnection {
    let options: sqlx::postgres::PgConnectOptions = std::str::FromStr::from_str(url).unwrap();
    let options = options.options(settings.iter().copied());
    sqlx::PgConnection::connect_with(&options).await.unwrap()
}

async fn set(connection: &mut sqlx::PgConnection, setting: &str, value: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("SET {setting} = {value}")))
        .execute(connection)
        .await
        .unwrap();
}

/// Every lookup and the write of the callback path, in every state of
/// statistics, custom and generic plans, on a connection set up as the
/// group writers' and as the pool's: each lookup by its table's primary
/// key, nothing scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_uses_its_primary_key_whatever_the_statistics() {
    if server_url().is_none() {
        return;
    }
    // Many ids (some that exist, in the filled states), so that a plan
    // choosing by row counts would rather scan.
    let ids =
        serde_json::to_string(&(0..50).map(|i| format!("P-{i}")).collect::<Vec<_>>()).unwrap();
    let order_ids =
        serde_json::to_string(&(0..50).map(|i| format!("O-{i}")).collect::<Vec<_>>()).unwrap();
    let keys = serde_json::to_string(
        &(0..50)
            .map(|i| serde_json::json!({"kind": "result", "subject_id": format!("P-{i}"), "discriminator": "ok"}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let writes = write_params();
    let writes: Vec<&str> = writes.iter().map(String::as_str).collect();
    let sql = &POSTGRES_STATEMENTS;
    let Writes::Together(write) = &sql.writes else {
        panic!("PostgreSQL writes a group in one statement");
    };
    let statements = [
        (
            sql.payments.as_str(),
            ["M", ids.as_str()].to_vec(),
            "payments",
            "payments_pkey",
        ),
        (
            sql.orders.as_str(),
            ["M", order_ids.as_str()].to_vec(),
            "orders",
            "orders_pkey",
        ),
        (
            sql.payouts.as_str(),
            ["M", order_ids.as_str()].to_vec(),
            "payouts",
            "payouts_pkey",
        ),
        (
            sql.decisions,
            ["M", keys.as_str()].to_vec(),
            "callback_decisions",
            "callback_decisions_pkey",
        ),
        (write.as_str(), writes.clone(), "", ""),
    ];
    let mut failures = Vec::new();
    for stats in [
        Stats::NeverAnalysed,
        Stats::AnalysedEmpty,
        Stats::AnalysedSmallThenGrown,
        Stats::BigAnalysed,
    ] {
        let db = in_state(stats).await;
        let mut sessions = Vec::new();
        for (session, settings) in [
            ("writer", POSTGRES_WRITER_SETTINGS),
            ("pool", POSTGRES_POOL_SETTINGS),
        ] {
            let mut connection = connect_with_settings(&db.url, settings).await;
            set(&mut connection, "plan_cache_mode", "force_generic_plan").await;
            for (i, (statement, params, _, _)) in statements.iter().enumerate() {
                prepare(&mut connection, &format!("s{i}"), statement, params).await;
            }
            sessions.push((session, connection));
        }
        grow(&db, stats).await;
        for (session, connection) in &mut sessions {
            // The custom plan (what a connection forcing custom plans gets)
            // and the generic plan cached before any growth (what a
            // connection caching plans runs).
            for mode in ["force_custom_plan", "force_generic_plan"] {
                set(connection, "plan_cache_mode", mode).await;
                for (i, (statement, params, table, index)) in statements.iter().enumerate() {
                    let plan = if mode == "force_custom_plan" {
                        plan_of(connection, statement, params).await
                    } else {
                        generic_plan(connection, &format!("s{i}"), params).await
                    };
                    let by_key = table.is_empty()
                        || plan.iter().any(|(node, relation, used)| {
                            node.starts_with("Index") && relation == table && used == index
                        });
                    let scans: Vec<_> = plan
                        .iter()
                        .filter(|(node, _, _)| node == "Seq Scan" || node.starts_with("Bitmap"))
                        .collect();
                    if !by_key || !scans.is_empty() {
                        let what = if table.is_empty() { "the write" } else { table };
                        failures.push(format!(
                            "{stats:?}, {session}, {mode}: {what}: by key {by_key}, scans {scans:?}, plan {plan:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "plans that scan:\n{}",
        failures.join("\n")
    );
}

/// The group writers plan each statement they read with once per
/// connection and keep the plan, whatever the group's size: planned again
/// for every group, they cost PostgreSQL 113 µs (the locks' statement) to
/// 383 µs (the decisions' read) a group (BENCHMARKS.md). Run as a writer
/// runs them (prepared, text parameters) on a connection set up as the
/// writers', for groups of 1 to 12 callbacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_plan_each_statement_once() {
    if server_url().is_none() {
        return;
    }
    const GROUPS: usize = 12;
    let db = TestDb::migrated(Backend::Postgres).await;
    let mut connection = connect_with_settings(&db.url, POSTGRES_WRITER_SETTINGS).await;
    let sql = &POSTGRES_STATEMENTS;
    let LockAndDraw::Locks(locks) = &sql.lock_and_draw else {
        panic!("PostgreSQL takes a group's locks in a statement");
    };
    let json = |items: Vec<Value>| serde_json::to_string(&items).unwrap();
    for size in 1..=GROUPS {
        let ids = json((0..size).map(|i| format!("P-{i}").into()).collect());
        let order_ids = json((0..size).map(|i| format!("O-{i}").into()).collect());
        let keys = json(
            (0..size)
                .map(|i| serde_json::json!({"kind": "result", "subject_id": format!("P-{i}"), "discriminator": "ok"}))
                .collect(),
        );
        let names = json((0..size).map(|i| format!("M/P-{i}").into()).collect());
        for (statement, params) in [
            (locks.as_str(), [names, size.to_string()]),
            (sql.decisions, ["M".to_owned(), keys]),
            (sql.payments.as_str(), ["M".to_owned(), ids]),
            (sql.orders.as_str(), ["M".to_owned(), order_ids.clone()]),
            (sql.payouts.as_str(), ["M".to_owned(), order_ids]),
        ] {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
            for param in params {
                query = query.bind(param);
            }
            query.fetch_all(&mut connection).await.unwrap();
        }
    }
    // Not prepared by name itself: only the five are listed.
    let plans: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            .persistent(false)
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(plans.len(), 5, "one prepared statement each: {plans:?}");
    for (statement, generic, custom) in &plans {
        assert!(
            *custom == 0 && *generic == GROUPS as i64,
            "planned for each of {custom} of {GROUPS} groups, not once: {statement}"
        );
    }
}

/// The same on SQLite, whose planner without `sqlite_stat1` (a fresh
/// database) once scanned all orders for every group: every read of the
/// write path looks its rows up by key, and so do the writes that change
/// rows which may exist (orders, redirect repeats), on a fresh database and
/// on one analysed with rows in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_looks_every_row_up_by_key_on_a_fresh_and_an_analysed_database() {
    let db = TestDb::migrated(Backend::Sqlite).await;
    let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let sql = &SQLITE_STATEMENTS;
    let Writes::PerTable(writes) = &sql.writes else {
        panic!("SQLite writes a group table by table");
    };
    let ids =
        serde_json::to_string(&(0..50).map(|i| format!("P-{i}")).collect::<Vec<_>>()).unwrap();
    let order_ids =
        serde_json::to_string(&(0..50).map(|i| format!("O-{i}")).collect::<Vec<_>>()).unwrap();
    let keys = serde_json::to_string(
        &(0..50)
            .map(|i| serde_json::json!({"kind": "result", "subject_id": format!("P-{i}"), "discriminator": "ok"}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let rows = write_params();
    let statements: [(&str, Vec<&str>); 8] = [
        (sql.decisions, vec!["M", &keys]),
        (sql.payments.as_str(), vec!["M", &ids]),
        (sql.orders.as_str(), vec!["M", &order_ids]),
        (sql.payouts.as_str(), vec!["M", &order_ids]),
        (writes.upsert_payments.as_str(), vec![&rows[1]]),
        (writes.update_orders.as_str(), vec![&rows[2]]),
        (writes.upsert_payouts.as_str(), vec![&rows[3]]),
        (writes.add_repeats.as_str(), vec![&rows[5]]),
    ];
    // Fresh (no sqlite_stat1), then with 1,000 rows a table, analysed.
    for analysed in [false, true] {
        if analysed {
            for fill in [
                "CREATE TEMP TABLE thousand AS WITH RECURSIVE n(value) AS \
                 (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 1000) SELECT value FROM n",
                "INSERT INTO orders (merchant_id, order_id, amount, currency) \
                 SELECT 'M', 'O-' || value, '100', 'KZT' FROM thousand",
                "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status) \
                 SELECT 'M', 'P-' || value, 'O-' || value, '100', 'KZT', 'succeeded' \
                 FROM thousand",
                "INSERT INTO payouts (merchant_id, order_id, status) \
                 SELECT 'M', 'O-' || value, 'success' FROM thousand",
                "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, \
                 answer_status) SELECT 'M', 'result', 'P-' || value, 'ok', 'ok' \
                 FROM thousand",
                "ANALYZE",
            ] {
                sqlx::query(fill).execute(&mut connection).await.unwrap();
            }
        }
        for (statement, params) in &statements {
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            for param in params {
                query = query.bind(param.to_string());
            }
            let rows = query.fetch_all(&mut connection).await.unwrap();
            for (_, _, _, detail) in &rows {
                let scans_a_table = detail.starts_with("SCAN ")
                    && !detail.contains("VIRTUAL TABLE")
                    && !detail.contains("CONSTANT ROW");
                assert!(!scans_a_table, "analysed {analysed}: {statement}: {detail}");
            }
        }
    }
}

/// The indexes of `plan` walked without an index condition.
fn unconditioned_index_walks(plan: &Value, out: &mut Vec<String>) {
    let text = |k: &str| plan.get(k).and_then(Value::as_str).unwrap_or("");
    if text("Node Type").starts_with("Index") && plan.get("Index Cond").is_none() {
        out.push(text("Index Name").to_owned());
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        unconditioned_index_walks(child, out);
    }
}

/// The webhook dispatcher's statements (claiming the heads of the queues,
/// settling a delivery, the backlog read at scrape time) on PostgreSQL,
/// never analysed and big and analysed, on a connection set up as the
/// pool's: no table scanned, only indexes (the backlog reads the partial
/// index of pending deliveries). Seen failing with the queue's index
/// dropped, and with the claim's head-of-queue test as a plain `NOT EXISTS`
/// (an anti-join walking every pending delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_statements_read_indexes_only() {
    if server_url().is_none() {
        return;
    }
    let statements = freedompay_receiver::store::outbox::statements(
        freedompay_receiver::store::tables::Dialect::Postgres,
    );
    let mut failures = Vec::new();
    for big in [false, true] {
        let db = TestDb::migrated(Backend::Postgres).await;
        let mut connection = connect_with_settings(&db.url, POSTGRES_POOL_SETTINGS).await;
        if big {
            for sql in [
                "INSERT INTO webhook_messages (id, merchant_id, type, event_id, ordering_key, position, body) \
                 SELECT 'msg_' || i, 'M', 'payment.succeeded', i, 'payment:M:P-' || (i % 1000), 0, '{}' \
                 FROM generate_series(1, 100000) i",
                "INSERT INTO webhook_deliveries (message_id, endpoint, ordering_key, event_id, position, state) \
                 SELECT 'msg_' || i, 'orders', 'payment:M:P-' || (i % 1000), i, 0, \
                 CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'delivered' END \
                 FROM generate_series(1, 100000) i",
                "ANALYZE",
            ] {
                sqlx::query(sql).execute(&mut connection).await.unwrap();
            }
        }
        for (name, sql) in &statements {
            let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
            let mut query = sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(explain));
            query = match *name {
                "claim" => query
                    .bind("owner")
                    .bind(60_i64)
                    .bind(64_i64)
                    .bind(r#"["orders", "billing"]"#),
                "settle" => query
                    .bind(
                        serde_json::json!([{"message_id": "msg_1", "endpoint": "orders",
                            "state": "delivered", "retry_in_ms": 0, "outcome": "delivered",
                            "status": 204, "latency_ms": 3, "excerpt": null, "error": null}])
                        .to_string(),
                    )
                    .bind("owner"),
                _ => query,
            };
            let plan: Value = query.fetch_one(&mut connection).await.unwrap();
            let mut found = Vec::new();
            nodes(&plan[0]["Plan"], &mut found);
            // With scans disabled, a missing index shows as a walk of
            // another index without a condition rather than as a scan. The
            // backlog walks the partial index of pending deliveries (that
            // is its point); the claim's test that no earlier message of
            // the subject is pending must be a lookup.
            let mut walks = Vec::new();
            unconditioned_index_walks(&plan[0]["Plan"], &mut walks);
            let allowed = usize::from(*name == "backlog");
            let walks = if walks.len() > allowed {
                walks
            } else {
                Vec::new()
            };
            let scans: Vec<_> = found
                .iter()
                .filter(|(node, _, _)| node == "Seq Scan" || node.starts_with("Bitmap"))
                .collect();
            if !scans.is_empty() || !walks.is_empty() {
                failures.push(format!(
                    "big {big}: {name}: scans {scans:?}, whole indexes walked {walks:?}, plan {found:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "outbox plans that scan:\n{}",
        failures.join("\n")
    );
}

/// The same on SQLite, fresh: every row looked up by key, or read from the
/// partial index of pending deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_the_outbox_through_indexes_only() {
    let db = TestDb::migrated(Backend::Sqlite).await;
    let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let statements = freedompay_receiver::store::outbox::statements(
        freedompay_receiver::store::tables::Dialect::Sqlite,
    );
    #[derive(sqlx::FromRow)]
    struct Step {
        detail: String,
    }
    for (name, sql) in &statements {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, Step>(sqlx::AssertSqlSafe(explain));
        query = match *name {
            "claim" => query
                .bind("owner")
                .bind(60_i64)
                .bind(64_i64)
                .bind(r#"["orders"]"#),
            "settle" => query
                .bind("msg_1")
                .bind("orders")
                .bind("delivered")
                .bind(0_i64)
                .bind(204_i32)
                .bind(None::<String>)
                .bind("owner"),
            _ => query,
        };
        for step in query.fetch_all(&mut connection).await.unwrap() {
            let pending_index = step.detail.contains("INDEX webhook_deliveries_queue")
                || step.detail.contains("INDEX webhook_deliveries_due");
            let scans_a_table = step.detail.starts_with("SCAN ")
                && !pending_index
                && !step.detail.contains("VIRTUAL TABLE")
                && !step.detail.contains("CONSTANT ROW")
                && !step.detail.contains("json_each");
            assert!(!scans_a_table, "{name}: {sql}: {}", step.detail);
        }
    }
}

/// The outbox's rows for the operators' reads: `rows` messages, one
/// delivery each, spread over the last 30 days; all delivered but the last
/// few hundred (pending and dead ones, as after an endpoint's outage).
async fn fill_outbox(connection: &mut sqlx::PgConnection, rows: i64) {
    for sql in [
        "INSERT INTO webhook_messages (id, merchant_id, type, event_id, ordering_key, position, body, created_at) \
         SELECT 'msg_' || i, 'M', 'payment.succeeded', i, 'payment:M:P-' || i, 0, '{}', \
         now() - make_interval(secs => (($1::bigint - i) * 2592000 / $1::bigint)::double precision) \
         FROM generate_series(1, $1::bigint) i",
        "INSERT INTO webhook_deliveries (message_id, endpoint, ordering_key, event_id, position, \
         state, attempts, next_attempt_at, delivered_at, created_at) \
         SELECT m.id, CASE WHEN m.event_id % 2 = 0 THEN 'orders' ELSE 'audit' END, m.ordering_key, \
         m.event_id, 0, CASE WHEN m.event_id > $1::bigint - 200 THEN 'pending' \
           WHEN m.event_id > $1::bigint - 400 THEN 'dead' ELSE 'delivered' END, 1, m.created_at, \
         CASE WHEN m.event_id <= $1::bigint - 400 THEN m.created_at END, m.created_at \
         FROM webhook_messages AS m",
    ] {
        sqlx::query(sql)
            .bind(rows)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
}

/// The operators' reads of the outbox (`store::reads::webhooks`: the
/// messages of a history's events, the console's Webhooks page) find their
/// rows through indexes on PostgreSQL, on an empty table never analysed and
/// on a big analysed one, in custom and generic plans: none scans a table
/// (a bitmap heap scan, driven by an index, finds the messages of an event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_outbox_reads_stay_on_indexes() {
    use freedompay_receiver::store::reads::webhooks::statements;
    use freedompay_receiver::store::tables::Dialect;
    if server_url().is_none() {
        return;
    }
    let events = serde_json::to_string(&(1..=50).collect::<Vec<i64>>()).unwrap();
    let mut failures = Vec::new();
    for big in [false, true] {
        let db = TestDb::migrated(Backend::Postgres).await;
        let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for table in ["webhook_messages", "webhook_deliveries"] {
            let sql = format!("ALTER TABLE {table} SET (autovacuum_enabled = false)");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut connection)
                .await
                .unwrap();
        }
        if big {
            fill_outbox(&mut connection, 100_000).await;
            sqlx::query("VACUUM ANALYZE")
                .execute(&mut connection)
                .await
                .unwrap();
        }
        for (i, (name, sql)) in statements(Dialect::Postgres).iter().enumerate() {
            // The parameter each takes, if any, as a literal of its type.
            let param = if sql.contains("$1::jsonb") {
                Some(format!("'{events}'::text"))
            } else if sql.contains("$1") {
                Some("100::bigint".to_owned())
            } else {
                None
            };
            let (types, args) = match &param {
                Some(p) if p.ends_with("::text") => ("(text)", format!("({p})")),
                Some(p) => ("(bigint)", format!("({p})")),
                None => ("", String::new()),
            };
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE w{i}{types} AS {sql}")))
                .execute(&mut connection)
                .await
                .unwrap();
            for mode in ["force_custom_plan", "force_generic_plan"] {
                set(&mut connection, "plan_cache_mode", mode).await;
                let plan = plan_of(&mut connection, &format!("EXECUTE w{i}{args}"), &[]).await;
                // A bitmap heap scan is driven by its bitmap index scan: the
                // rows of one event by its index, not a table's scan.
                let scans: Vec<_> = plan
                    .iter()
                    .filter(|(node, _, _)| node == "Seq Scan")
                    .collect();
                // The index each is written for (the pending ones are in
                // both partial indexes of pending deliveries).
                let indexes: &[&str] = match *name {
                    "messages of events" => &["webhook_messages_by_event"],
                    "pending" => &["webhook_deliveries_queue", "webhook_deliveries_due"],
                    _ => &["webhook_deliveries_settled"],
                };
                let on_index = plan.iter().any(|(node, _, used)| {
                    node.contains("Index") && indexes.contains(&used.as_str())
                });
                if !scans.is_empty() || !on_index {
                    failures.push(format!(
                        "big {big}, {mode}: {name}: scans {scans:?}, plan {plan:?}"
                    ));
                }
            }
        }
        connection.close().await.unwrap();
    }
    assert!(
        failures.is_empty(),
        "plans that scan:\n{}",
        failures.join("\n")
    );
}

/// The same on SQLite, fresh and analysed with rows in it: each read of
/// the outbox for operators searches an index (a `SCAN` only of a partial
/// index, which holds just the rows asked for), never scans a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_operators_outbox_reads_stay_on_indexes() {
    use freedompay_receiver::store::reads::webhooks::statements;
    use freedompay_receiver::store::tables::Dialect;
    let db = TestDb::migrated(Backend::Sqlite).await;
    let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let events = serde_json::to_string(&(1..=50).collect::<Vec<i64>>()).unwrap();
    for analysed in [false, true] {
        if analysed {
            for fill in [
                "CREATE TEMP TABLE thousand AS WITH RECURSIVE n(value) AS \
                 (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 1000) SELECT value FROM n",
                "INSERT INTO webhook_messages (id, merchant_id, type, event_id, ordering_key, position, body) \
                 SELECT 'msg_' || value, 'M', 'payment.succeeded', value, 'payment:M:P-' || value, 0, '{}' \
                 FROM thousand",
                "INSERT INTO webhook_deliveries (message_id, endpoint, ordering_key, event_id, position, state) \
                 SELECT 'msg_' || value, CASE WHEN value % 2 = 0 THEN 'orders' ELSE 'audit' END, \
                 'payment:M:P-' || value, value, 0, \
                 CASE WHEN value > 980 THEN 'pending' WHEN value > 960 THEN 'dead' ELSE 'delivered' END \
                 FROM thousand",
                "ANALYZE",
            ] {
                sqlx::query(fill).execute(&mut connection).await.unwrap();
            }
        }
        for (name, statement) in statements(Dialect::Sqlite) {
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query =
                sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            if statement.contains("json_each(?1)") {
                query = query.bind(events.clone());
            } else if statement.contains("?1") {
                query = query.bind(100_i64);
            }
            let rows = query.fetch_all(&mut connection).await.unwrap();
            let details: Vec<&str> = rows.iter().map(|(_, _, _, d)| d.as_str()).collect();
            for detail in &details {
                let scans_a_table = detail.starts_with("SCAN ")
                    && !detail.contains("VIRTUAL TABLE")
                    && !detail.contains("CONSTANT ROW")
                    && !detail.contains(" USING INDEX webhook_deliveries_queue")
                    && !detail.contains(" USING INDEX webhook_deliveries_due")
                    && !detail.contains(" USING INDEX webhook_deliveries_settled")
                    && !detail.contains(" USING COVERING INDEX webhook_deliveries_settled");
                assert!(!scans_a_table, "analysed {analysed}: {name}: {details:?}");
            }
            let indexes: &[&str] = match name {
                "messages of events" => &["webhook_messages_by_event"],
                "pending" => &["webhook_deliveries_queue", "webhook_deliveries_due"],
                _ => &["webhook_deliveries_settled"],
            };
            assert!(
                details
                    .iter()
                    .any(|d| indexes.iter().any(|i| d.contains(&format!("INDEX {i}")))),
                "analysed {analysed}: {name}: {details:?}"
            );
        }
    }
}
