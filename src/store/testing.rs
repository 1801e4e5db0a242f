//! Reads for the benchmark's correctness check and for the tests (counting
//! events, an event's marks, a redirect's repeats, the paid orders of a
//! benchmark run). Public methods of [`Store`], kept in this file apart from
//! the rest: the service itself never calls them.

use super::{EventCounts, EventMarks, Store, StoreError};
use crate::domain::{CallbackKind, IdempotencyKey};

impl Store {
    /// Events of a kind (all kinds when `None`), split by the duplicate flag.
    pub async fn count_events(
        &self,
        kind: Option<CallbackKind>,
    ) -> Result<EventCounts, StoreError> {
        self.count_events_named(kind.map(CallbackKind::as_str))
            .await
    }

    /// Events of a kind by its `events.kind` name (e.g. `reconcile`).
    pub async fn count_events_named(&self, kind: Option<&str>) -> Result<EventCounts, StoreError> {
        let (first, duplicate): (i64, i64) = with_dialect!(
            self,
            "SELECT count(*) FILTER (WHERE NOT duplicate), count(*) FILTER (WHERE duplicate) \
             FROM events WHERE $1::text IS NULL OR kind = $1",
            "SELECT count(*) FILTER (WHERE NOT duplicate), count(*) FILTER (WHERE duplicate) \
             FROM events WHERE ?1 IS NULL OR kind = ?1",
            |pool, sql| sqlx::query_as(sql).bind(kind).fetch_one(pool).await?
        );
        Ok(EventCounts { first, duplicate })
    }

    /// For the benchmark's correctness check: orders with `prefix` that are
    /// paid, and first-delivery result events for them.
    pub async fn bench_counts(
        &self,
        merchant_id: &str,
        prefix: &str,
    ) -> Result<(i64, i64), StoreError> {
        let pattern = format!("{prefix}%");
        let paid = self
            .count(
                "SELECT count(*) FROM orders WHERE merchant_id = $1 AND order_id LIKE $2 AND status = 'paid'",
                merchant_id,
                &pattern,
            )
            .await?;
        let events = self
            .count(
                "SELECT count(*) FROM events WHERE merchant_id = $1 AND kind = 'result' \
                 AND order_id LIKE $2 AND NOT duplicate",
                merchant_id,
                &pattern,
            )
            .await?;
        Ok((paid, events))
    }

    /// A `count(*)` query with two text parameters, written `$1`, `$2` (which
    /// SQLite reads as named parameters, numbered in order of appearance).
    async fn count(&self, sql: &'static str, first: &str, second: &str) -> Result<i64, StoreError> {
        let count: i64 = with_dialect!(self, sql, sql, |pool, sql| {
            sqlx::query_scalar(sql)
                .bind(first)
                .bind(second)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// The events of `kind` (all when `None`) with their marks, oldest first
    /// (operators, tests).
    pub async fn event_marks(&self, kind: Option<&str>) -> Result<Vec<EventMarks>, StoreError> {
        use super::tables::{Dialect, events, made};
        Ok(with_dialect!(
            self,
            Dialect::Postgres,
            Dialect::Sqlite,
            |pool, d| {
                let kind_is = match d {
                    Dialect::Postgres => "$1::text IS NULL OR e.kind = $1 ORDER BY e.id",
                    Dialect::Sqlite => "?1 IS NULL OR e.kind = ?1 ORDER BY e.id",
                };
                sqlx::query_as(made(events::where_(d, kind_is)))
                    .bind(kind)
                    .fetch_all(pool)
                    .await?
            }
        ))
    }

    /// How often the redirect `key` was repeated after its first delivery.
    pub async fn redirect_repeats(&self, key: &IdempotencyKey) -> Result<i64, StoreError> {
        let repeats: i64 = with_dialect!(
            self,
            "SELECT coalesce(sum(repeats), 0)::bigint FROM callback_decisions WHERE merchant_id = $1 \
             AND kind = $2 AND subject_id = $3 AND discriminator = $4",
            "SELECT coalesce(sum(repeats), 0) FROM callback_decisions WHERE merchant_id = ?1 \
             AND kind = ?2 AND subject_id = ?3 AND discriminator = ?4",
            |pool, sql| sqlx::query_scalar(sql)
                .bind(&key.merchant_id)
                .bind(key.kind)
                .bind(&key.subject_id)
                .bind(&key.discriminator)
                .fetch_one(pool)
                .await?
        );
        Ok(repeats)
    }
}
