//! The SQLite durable-write ceiling: the reference transaction (insert a
//! ~600-byte event, update its order) in a tight loop, one writer, with the
//! service's pragmas (WAL, `synchronous=FULL`). What the service is measured
//! against on SQLite.

use std::str::FromStr;
use std::time::Instant;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

/// Transactions per second of `n` reference transactions on a fresh file `path`.
pub async fn sqlite_tps(path: &str, n: usize) -> Result<f64, sqlx::Error> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS ceiling_orders (order_id TEXT PRIMARY KEY, status TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS ceiling_events (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT, fields TEXT)",
    )
    .execute(&mut conn)
    .await?;
    let mut tx = conn.begin().await?;
    for i in 0..n {
        sqlx::query("INSERT OR IGNORE INTO ceiling_orders VALUES (?1, 'pending')")
            .bind(format!("C-{i}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let fields = "x".repeat(600);
    let started = Instant::now();
    for i in 0..n {
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO ceiling_events (order_id, fields) VALUES (?1, ?2)")
            .bind(format!("C-{i}"))
            .bind(&fields)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE ceiling_orders SET status = 'paid' WHERE order_id = ?1")
            .bind(format!("C-{i}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
