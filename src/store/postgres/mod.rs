//! PostgreSQL backend: the store ([`PgStore`]: pools, migrations, reads,
//! order inserts) and the start of its group-commit writer, whose groups
//! `pg_group` runs (first `pg_optimistic`, then under locks, then callback by
//! callback through `tx`). `NUMERIC` money, row locks and per-subject advisory
//! locks inside each callback transaction, and `NOTIFY freedompay_events`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

mod pg_columns;
mod pg_group;
mod pg_optimistic;
mod tx;

use crate::domain::{Order, Payment, Payout};
use crate::store::callbacks::group_commit::Writer;
use crate::store::rows;
use crate::store::{Decide, Delivery, EventCounts, NewOrder, Processed, StoreError};
pub(crate) use tx::PgTx;
use tx::{SELECT_ORDER, SELECT_PAYMENT, SELECT_PAYOUT};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Groups in flight at once. Two cores keep about this many busy; more only
/// make the groups smaller.
const GROUP_WORKERS: usize = 2;

/// The channel every committed event is announced on, with its id as payload.
pub const NOTIFY_CHANNEL: &str = "freedompay_events";

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The group-commit writer of callbacks.
    writer: Writer,
}

impl PgStore {
    pub(crate) fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?
            .application_name("freedompay-receiver")
            // The group statements take arrays whose length varies; a generic
            // plan assumes 100 elements and may scan whole tables, so plan
            // each execution for its real arguments.
            .options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options.clone());
        let workers = GROUP_WORKERS.min(max_connections.max(1) as usize);
        let optimistic_pool = PgPoolOptions::new()
            .max_connections(workers as u32)
            // No ping before each acquire (a round trip every group): a
            // connection broken by a database restart fails its group, which
            // is then decided on the locked path, whose pool does ping.
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options);
        // The group writers' own connections, for the optimistic path.
        let group_pools = pg_group::Pools {
            locked: pool.clone(),
            optimistic: optimistic_pool.clone(),
        };
        let writer = Writer::start(
            move |group| {
                let pools = group_pools.clone();
                async move { pg_group::run_group(&pools, group).await }
            },
            async move { optimistic_pool.close().await },
            workers,
        );
        Ok(PgStore { pool, writer })
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        Ok(MIGRATOR.run(&self.pool).await?)
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<PgTx, StoreError> {
        PgTx::begin(&self.pool).await
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
                "INSERT INTO orders (merchant_id, order_id, amount, currency, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(merchant_id)
            .bind(order.order_id)
            .bind(order.amount.as_decimal())
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
             FROM events WHERE $1::text IS NULL OR kind = $1",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await?;
        Ok(EventCounts { first, duplicate })
    }
}
