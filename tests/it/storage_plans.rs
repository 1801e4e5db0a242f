//! No plan of the write path depends on table statistics: on a freshly
//! migrated, empty, never analysed PostgreSQL database (the youngest a table
//! can be), every lookup of the write path and of the store's row reads uses
//! its table's primary key, and no statement scans a table. A young or stale
//! table is where a statistics-driven plan goes wrong; this is where it
//! would show.

use freedompay_receiver::config::DatabaseSettings;
use freedompay_receiver::store::{POSTGRES_STATEMENTS, SQLITE_STATEMENTS, Store, Writes};
use secrecy::SecretString;
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

/// A freshly migrated database, nothing in it, never analysed.
async fn migrated(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&DatabaseSettings {
        url: SecretString::from(db.url.clone()),
        ..DatabaseSettings::default()
    })
    .unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    db
}

/// The generic plan of a read (`$1` merchant, `$2` JSON), as a connection
/// caching it would run it.
async fn generic_plan_of(
    connection: &mut sqlx::PgConnection,
    sql: &str,
    json: &str,
) -> Vec<(String, String, String)> {
    // A name of its own for each statement (sqlx's own are left alone).
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "lookup_{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE {name}(text, text) AS {sql}"
    )))
    .execute(&mut *connection)
    .await
    .unwrap();
    plan_of(connection, &format!("EXECUTE {name}('M', '{json}')"), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_uses_its_primary_key_on_an_empty_database() {
    if server_url().is_none() {
        return;
    }
    let db = migrated(Backend::Postgres).await;
    let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
    // Many ids, so that a plan choosing by row counts would rather scan.
    let ids =
        serde_json::to_string(&(0..50).map(|i| format!("P-{i}")).collect::<Vec<_>>()).unwrap();
    let keys = serde_json::to_string(
        &(0..50)
            .map(|i| serde_json::json!({"kind": "result", "subject_id": format!("P-{i}"), "discriminator": "ok"}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let sql = &POSTGRES_STATEMENTS;
    // The custom plan (what the row reads get) and the generic plan (what
    // the group writers' connections may cache) alike.
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut connection)
            .await
            .unwrap();
        for (statement, params, table, index) in [
            (sql.payments, [ids.as_str()], "payments", "payments_pkey"),
            (sql.orders, [ids.as_str()], "orders", "orders_pkey"),
            (sql.payouts, [ids.as_str()], "payouts", "payouts_pkey"),
            (
                sql.decisions,
                [keys.as_str()],
                "callback_decisions",
                "callback_decisions_pkey",
            ),
        ] {
            let plan = if mode == "force_custom_plan" {
                plan_of(&mut connection, statement, &["M", params[0]]).await
            } else {
                generic_plan_of(&mut connection, statement, params[0]).await
            };
            assert!(
                plan.iter()
                    .any(|(node, relation, used)| node.starts_with("Index")
                        && relation == table
                        && used == index),
                "{table} is not looked up by {index}: {plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|(node, _, _)| node == "Seq Scan" || node.starts_with("Bitmap")),
                "a scan in the lookup of {table} ({mode}): {plan:?}"
            );
        }
    }
    // The writes are inserts arbitrated by a key: nothing to scan either.
    let Writes::Together(writes) = sql.writes else {
        panic!("PostgreSQL writes a group in one statement");
    };
    for statement in [writes] {
        let plan = plan_of(&mut connection, statement, &["[]"; 7]).await;
        assert!(
            !plan.iter().any(|(node, _, _)| node == "Seq Scan"),
            "a scan in {statement}: {plan:?}"
        );
    }
}

/// The same on SQLite, whose planner without `sqlite_stat1` (a fresh
/// database) once scanned all orders for every group: every read of the
/// write path looks its rows up by key, and so do the writes that change
/// rows which may exist (orders, redirect repeats).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_looks_every_row_up_by_key_on_a_fresh_database() {
    let db = migrated(Backend::Sqlite).await;
    let mut connection = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let sql = &SQLITE_STATEMENTS;
    let Writes::PerTable(writes) = &sql.writes else {
        panic!("SQLite writes a group table by table");
    };
    for statement in [
        sql.decisions,
        sql.payments,
        sql.orders,
        sql.payouts,
        writes.upsert_payments,
        writes.update_orders,
        writes.upsert_payouts,
        writes.add_repeats,
    ] {
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(explain))
            .bind("M")
            .bind("[]")
            .fetch_all(&mut connection)
            .await
            .unwrap();
        for (_, _, _, detail) in &rows {
            let scans_a_table = detail.starts_with("SCAN ")
                && !detail.contains("VIRTUAL TABLE")
                && !detail.contains("CONSTANT ROW");
            assert!(!scans_a_table, "{statement}: {detail}");
        }
    }
}
