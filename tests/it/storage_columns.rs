//! The write path's column lists against the tables as the migrations make
//! them, on both backends: the edits a new column needs that would fail
//! silently otherwise. A column added to `payments` or `payouts` but left
//! out of its upsert (or out of the upsert's `DO UPDATE SET`, where it would
//! keep its first value forever), a column that a statement names but the
//! table lacks, the two dialects writing different columns of one table,
//! and a row struct whose fields are not its statement's column list all
//! fail here, each naming the table and the column.

use std::collections::BTreeSet;

use freedompay_receiver::store::{POSTGRES_STATEMENTS, SQLITE_STATEMENTS};
use sqlx::Connection;

use crate::support::pg::server_url;
use crate::support::{Backend, TestDb};

/// Columns the database fills itself (defaults, the event id's sequence).
const MANAGED: [&str; 4] = ["id", "received_at", "created_at", "updated_at"];

/// One `INSERT INTO table (columns)` of a statement, with the columns its
/// `DO UPDATE SET` takes from the proposed row (`col = excluded.col`) and
/// every column it sets at all.
#[derive(Debug)]
struct Insert {
    table: String,
    columns: Vec<String>,
    /// The JSON fields a SQLite insert takes its values from
    /// (`value ->> 'name'`), in order.
    fields: Vec<String>,
    set_from_excluded: BTreeSet<String>,
    set: BTreeSet<String>,
}

/// The inserts of `sql`, in order.
fn inserts(sql: &str) -> Vec<Insert> {
    let starts: Vec<usize> = sql
        .match_indices("INSERT INTO ")
        .map(|(at, _)| at)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(sql.len());
            let part = &sql[start + "INSERT INTO ".len()..end];
            let open = part.find('(').expect("a column list");
            let close = part.find(')').expect("a column list");
            let table = part[..open].trim().to_owned();
            let columns = part[open + 1..close]
                .split(',')
                .map(|c| c.trim().to_owned())
                .collect();
            let select_end = part.find("FROM json_each").unwrap_or(part.len());
            let fields = part[close..select_end]
                .split("value ->> '")
                .skip(1)
                .filter_map(|rest| rest.split('\'').next())
                .map(str::to_owned)
                .collect();
            let (mut set_from_excluded, mut set) = (BTreeSet::new(), BTreeSet::new());
            let upper = part.to_ascii_uppercase();
            if let Some(at) = upper.find("DO UPDATE SET ") {
                let clause = &part[at + "DO UPDATE SET ".len()..];
                for (eq, _) in clause.match_indices(" = ") {
                    let column = clause[..eq]
                        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("");
                    // Only assignments: `col = …` right after the clause's
                    // start, a comma or a new line, not comparisons inside
                    // a CASE.
                    let before = clause[..eq - column.len()].trim_end();
                    if !(before.is_empty() || before.ends_with(',')) {
                        continue;
                    }
                    set.insert(column.to_owned());
                    let value = clause[eq + 3..].to_ascii_lowercase();
                    if value.starts_with(&format!("excluded.{column}")) {
                        set_from_excluded.insert(column.to_owned());
                    }
                }
            }
            Insert {
                table,
                columns,
                fields,
                set_from_excluded,
                set,
            }
        })
        .collect()
}

/// Every statement of a backend's write path, one string each.
fn write_statements(backend: Backend) -> Vec<&'static str> {
    match backend {
        Backend::Postgres => POSTGRES_STATEMENTS.write_statements(),
        Backend::Sqlite => SQLITE_STATEMENTS.write_statements(),
    }
}

/// The columns of `table` in a freshly migrated database of `backend`.
async fn table_columns(backend: Backend, url: &str, table: &str) -> BTreeSet<String> {
    let names: Vec<String> = match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                .bind(table)
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
    };
    assert!(!names.is_empty(), "no table {table}");
    names.into_iter().collect()
}

/// What is wrong with `backend`'s column lists, one line each.
async fn problems(backend: Backend) -> Vec<String> {
    let db = TestDb::migrated(backend).await;
    let mut problems = Vec::new();
    for sql in write_statements(backend) {
        for insert in inserts(sql) {
            let table = table_columns(backend, &db.url, &insert.table).await;
            let name = &insert.table;
            for column in &insert.columns {
                if !table.contains(column) {
                    problems.push(format!("{backend:?}: {name} has no column {column}"));
                }
            }
            for column in insert.set.iter() {
                if !table.contains(column) {
                    problems.push(format!("{backend:?}: {name} has no column {column} (SET)"));
                }
            }
            // SQLite pairs each column with its JSON field by position: the
            // two lists must name the same columns in the same order (where
            // every column but the time stamps comes from a field; the
            // status queries compute two).
            let from_fields = insert
                .columns
                .iter()
                .filter(|c| !MANAGED.contains(&c.as_str()))
                .count();
            if !insert.fields.is_empty() && insert.fields.len() == from_fields {
                let paired: Vec<&String> =
                    insert.columns.iter().take(insert.fields.len()).collect();
                let fields: Vec<&String> = insert.fields.iter().collect();
                if paired != fields {
                    problems.push(format!(
                        "{backend:?}: {name} pairs columns {paired:?} with fields {fields:?}"
                    ));
                }
            }
            // Whole rows: every column is written, or filled by the database.
            let whole_row = match name.as_str() {
                "payments" | "payouts" | "events" | "webhook_messages" => true,
                "callback_decisions" => insert.columns.iter().any(|c| c == "event_id"),
                _ => false,
            };
            if whole_row {
                for column in &table {
                    if !insert.columns.contains(column) && !MANAGED.contains(&column.as_str()) {
                        problems.push(format!(
                            "{backend:?}: {name}.{column} is neither written nor filled by the database"
                        ));
                    }
                }
            }
            // Full upserts: every written column but the key is updated.
            if matches!(name.as_str(), "payments" | "payouts") {
                let key = ["merchant_id", "payment_id", "order_id"];
                let key: &[&str] = if name == "payments" {
                    &key[..2]
                } else {
                    &[key[0], key[2]]
                };
                for column in &insert.columns {
                    if !key.contains(&column.as_str())
                        && column != "updated_at"
                        && !insert.set_from_excluded.contains(column)
                    {
                        problems.push(format!(
                            "{backend:?}: the upsert of {name} leaves {column} out of DO UPDATE SET"
                        ));
                    }
                }
                if !insert.set.contains("updated_at") {
                    problems.push(format!(
                        "{backend:?}: the upsert of {name} keeps updated_at"
                    ));
                }
            }
        }
    }
    problems
}

/// The columns each dialect's write path writes, by table and statement
/// order, without the ones only one dialect names (the event id on
/// PostgreSQL, the time stamps on SQLite).
fn written(backend: Backend) -> Vec<(String, BTreeSet<String>)> {
    write_statements(backend)
        .into_iter()
        .flat_map(inserts)
        .map(|insert| {
            let columns = insert
                .columns
                .into_iter()
                .filter(|c| !MANAGED.contains(&c.as_str()))
                .collect();
            (insert.table, columns)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_paths_column_lists_match_the_migrated_tables() {
    let mut all = problems(Backend::Sqlite).await;
    if server_url().is_some() {
        all.extend(problems(Backend::Postgres).await);
        // Both dialects write the same columns of each table.
        let (postgres, sqlite) = (written(Backend::Postgres), written(Backend::Sqlite));
        let mut postgres = postgres.clone();
        postgres.sort();
        let mut sqlite = sqlite.clone();
        sqlite.sort();
        if postgres != sqlite {
            all.push(format!(
                "the dialects write different columns:\npostgres {postgres:?}\nsqlite   {sqlite:?}"
            ));
        }
        // And the migrations make the same columns on both.
        let (pg, lite) = (
            TestDb::migrated(Backend::Postgres).await,
            TestDb::migrated(Backend::Sqlite).await,
        );
        for table in [
            "orders",
            "payments",
            "payouts",
            "events",
            "callback_decisions",
            "webhook_messages",
            "webhook_deliveries",
            "webhook_attempts",
            "maintenance_runs",
        ] {
            let (a, b) = (
                table_columns(Backend::Postgres, &pg.url, table).await,
                table_columns(Backend::Sqlite, &lite.url, table).await,
            );
            if a != b {
                all.push(format!("{table} differs: postgres {a:?}, sqlite {b:?}"));
            }
        }
        // The job table is read and written whole by its one column list.
        let listed: BTreeSet<String> = freedompay_receiver::store::tables::names(
            freedompay_receiver::store::tables::maintenance_runs::COLUMNS,
        )
        .into_iter()
        .map(str::to_owned)
        .collect();
        let made = table_columns(Backend::Postgres, &pg.url, "maintenance_runs").await;
        if listed != made {
            all.push(format!(
                "maintenance_runs: listed {listed:?}, made {made:?}"
            ));
        }
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}

/// The parser this test relies on, on a statement of each kind.
#[test]
fn inserts_and_their_set_lists_are_read() {
    let found = inserts(
        "WITH a AS (INSERT INTO payments (merchant_id, payment_id, amount) SELECT 1 \
         ON CONFLICT (merchant_id, payment_id) DO UPDATE SET amount = EXCLUDED.amount, \
         updated_at = now()), b AS (INSERT INTO outbound_tasks (merchant_id, task) SELECT 1 \
         ON CONFLICT (merchant_id, task) DO UPDATE SET state = 'open', \
         attempts = CASE WHEN outbound_tasks.state <> 'open' THEN 0 ELSE outbound_tasks.attempts END)",
    );
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].table, "payments");
    assert_eq!(found[0].columns, ["merchant_id", "payment_id", "amount"]);
    assert!(found[0].fields.is_empty());
    let sqlite = inserts(
        "INSERT INTO payouts (merchant_id, order_id, updated_at) SELECT value ->> 'merchant_id', \
         value ->> 'order_id', now FROM json_each(?1)",
    );
    assert_eq!(sqlite[0].fields, ["merchant_id", "order_id"]);
    assert_eq!(
        found[0].set_from_excluded,
        BTreeSet::from(["amount".to_owned()])
    );
    assert!(found[0].set.contains("updated_at"));
    assert_eq!(
        found[1].set,
        BTreeSet::from(["attempts".to_owned(), "state".to_owned()])
    );
}

/// The keys a written row serializes to.
fn keys<T: serde::Serialize>(row: &T) -> Vec<String> {
    match serde_json::to_value(row).unwrap() {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("a row is an object, not {other}"),
    }
}

/// Every row the write path passes as JSON names exactly its insert's
/// columns: a column listed but missing from the row would be written NULL
/// on every insert and update, silently; a field outside the list would
/// never be written.
#[test]
fn every_written_row_names_exactly_its_statements_columns() {
    use freedompay_receiver::store::tables::{
        self, Insert, callback_decisions::DecisionWrite, events::NewEvent, orders::OrderStatusRow,
        payments::PaymentRow, payouts::PayoutRow, webhook_deliveries::NewDelivery,
        webhook_messages::NewMessage,
    };
    let payment = PaymentRow {
        merchant_id: "m".into(),
        payment_id: "p".into(),
        order_id: "o".into(),
        amount: "1".into(),
        currency: "KZT".into(),
        status: "succeeded".into(),
        captured: None,
        testing_mode: false,
        card_mask: None,
        failure_code: None,
        failure_description: None,
        needs_refund: false,
        refunded_amount: "0".into(),
    };
    let payout = PayoutRow {
        merchant_id: "m".into(),
        order_id: "o".into(),
        payment_id: None,
        status: "ok".into(),
        amount: None,
        card_mask: None,
    };
    let event = NewEvent {
        id: 1,
        merchant_id: "m".into(),
        kind: "result",
        order_id: None,
        payment_id: None,
        fields: serde_json::value::RawValue::from_string("[]".into()).unwrap(),
        answer_status: None,
        answer_description: None,
        duplicate: false,
        signature_variant: "exact",
        key_label: "current",
        conflict: false,
        flag: None,
    };
    let decision = DecisionWrite {
        merchant_id: "m",
        kind: "result",
        subject_id: "p",
        discriminator: "",
        fingerprint: None,
        answer_status: None,
        answer_description: None,
        event_id: None,
        repeats: 0,
    };
    let order = OrderStatusRow {
        merchant_id: "m",
        order_id: "o",
        amount: "1".into(),
        currency: "KZT",
        status: "paid",
        paid_payment_id: None,
    };
    let message = NewMessage {
        id: "msg_1".into(),
        merchant_id: "m".into(),
        message_type: "payment.succeeded",
        event_id: 1,
        ordering_key: "payment:m:p".into(),
        position: 0,
        body: "{}".into(),
    };
    let delivery = NewDelivery {
        message_id: "msg_1".into(),
        endpoint: "orders".into(),
        ordering_key: "payment:m:p".into(),
        event_id: 1,
        position: 0,
    };
    let cases: [(&Insert, Vec<String>); 7] = [
        (&tables::payments::UPSERT, keys(&payment)),
        (&tables::payouts::UPSERT, keys(&payout)),
        (&tables::events::INSERT, keys(&event)),
        (&tables::callback_decisions::INSERT, keys(&decision)),
        (&tables::orders::UPDATE_STATUS, keys(&order)),
        (&tables::webhook_messages::INSERT, keys(&message)),
        (&tables::webhook_deliveries::INSERT, keys(&delivery)),
    ];
    for (insert, keys) in cases {
        let mut columns: Vec<String> = tables::names(insert.columns)
            .into_iter()
            .map(str::to_owned)
            .collect();
        columns.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys, columns,
            "{}: the row's fields and the column list",
            insert.table
        );
    }
}
