//! SQLite backend, the embedded default: WAL journal, `synchronous=FULL` (a
//! commit is on disk before the answer leaves), money as canonical decimal
//! text, and `BEGIN IMMEDIATE` so that callback transactions take the single
//! write lock up front and run one after another. The store ([`SqliteStore`])
//! reads on a pool of its own and writes callbacks through one writer
//! connection, whose groups `sqlite_group` runs; `tx` is the SQL of one
//! callback's steps.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod sqlite_group;
mod tx;

use crate::domain::{Order, Payment, Payout};
use crate::store::callbacks::group_commit::Writer;
use crate::store::rows;
use crate::store::{Decide, Delivery, EventCounts, NewOrder, Processed, StoreError};
pub(crate) use tx::SqliteTx;
use tx::{SELECT_ORDER, SELECT_PAYMENT, SELECT_PAYOUT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for the write lock before the callback gets a 503.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Reads, migrations, and writes outside the callback path.
    pool: SqlitePool,
    /// The single writer of callbacks (group commit).
    writer: Writer,
}

impl SqliteStore {
    pub(crate) fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options.clone());
        // The writer's connection is not pinged before every group: each
        // statement is a round trip to the connection's worker thread, and an
        // embedded file has no server to lose.
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options);
        Ok(SqliteStore {
            pool,
            writer: sqlite_group::start_writer(writer_pool),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<SqliteTx, StoreError> {
        SqliteTx::begin(&self.pool).await
    }

    /// One callback, through the group-commit writer.
    pub(crate) async fn process(
        &self,
        delivery: Delivery,
        decide: Decide,
    ) -> Result<Processed, StoreError> {
        self.writer.process(delivery, decide).await
    }

    /// Inserts orders in one transaction.
    pub(crate) async fn insert_orders(
        &self,
        merchant_id: &str,
        orders: &[NewOrder<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for order in orders {
            sqlx::query(
                "INSERT INTO orders (merchant_id, order_id, amount, currency, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(merchant_id)
            .bind(order.order_id)
            .bind(order.amount.canonical())
            .bind(order.currency)
            .bind(order.expires_at)
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    pub(crate) async fn order(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Order>, StoreError> {
        rows::fetch_keyed(&self.pool, SELECT_ORDER, merchant_id, order_id, rows::order).await
    }

    pub(crate) async fn payment(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        rows::fetch_keyed(
            &self.pool,
            SELECT_PAYMENT,
            merchant_id,
            payment_id,
            rows::payment,
        )
        .await
    }

    pub(crate) async fn payout(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<Payout>, StoreError> {
        rows::fetch_keyed(
            &self.pool,
            SELECT_PAYOUT,
            merchant_id,
            order_id,
            rows::payout,
        )
        .await
    }

    pub(crate) async fn count_events(&self, kind: Option<&str>) -> Result<EventCounts, StoreError> {
        let (first, duplicate): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE NOT duplicate), count(*) FILTER (WHERE duplicate) \
             FROM events WHERE ?1 IS NULL OR kind = ?1",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await?;
        Ok(EventCounts { first, duplicate })
    }
}
