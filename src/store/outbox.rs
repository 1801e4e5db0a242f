//! The outbox's deliveries as the dispatcher works them (`crate::deliver`):
//! claimed with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so that
//! instances sharing a database take different deliveries without waiting
//! on each other), then settled with the attempt that was made. A delivery
//! is claimed only at the head of its endpoint's queue for its subject (no
//! earlier message of the same payment or payout is still pending for that
//! endpoint), so one subject's messages reach an endpoint in commit order,
//! while different subjects never wait for each other.
//!
//! Times come from the database's clock on both backends, as the
//! reconciler's do. Every later write names the claimer, so an instance
//! whose lease ran out cannot overwrite what another did since.

use super::tables::{Dialect, made, webhook_attempts};
use super::{Store, StoreError};

/// A claimed delivery: what to send, and to which endpoint.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub message_id: String,
    pub endpoint: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The message's JSON body, the same bytes on every attempt.
    pub body: String,
}

/// What became of a claimed delivery after one attempt.
#[derive(Clone, Debug)]
pub struct Settled<'a> {
    pub message_id: &'a str,
    pub endpoint: &'a str,
    /// `delivered`, `dead`, or `pending` (tried again after `retry_in_ms`).
    pub state: &'static str,
    pub retry_in_ms: i64,
    /// The attempt: `delivered`, `gone` or `failed`.
    pub outcome: &'static str,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

fn claim(d: Dialect) -> String {
    let now = d.now();
    let p = |n| d.param(n);
    let (lease_until, endpoints, skip_locked) = match d {
        Dialect::Postgres => (
            "now() + make_interval(secs => $2::bigint)".to_owned(),
            "SELECT jsonb_array_elements_text($4::jsonb)",
            " FOR UPDATE SKIP LOCKED",
        ),
        Dialect::Sqlite => (
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?2 || ' seconds')".to_owned(),
            "SELECT value FROM json_each(?4)",
            "",
        ),
    };
    format!(
        "UPDATE webhook_deliveries SET lease_owner = {owner}, lease_until = {lease_until}, \
         updated_at = {now} \
         WHERE (message_id, endpoint) IN (SELECT c.message_id, c.endpoint FROM webhook_deliveries AS c \
           WHERE c.state = 'pending' AND c.next_attempt_at <= {now} \
           AND (c.lease_until IS NULL OR c.lease_until < {now}) \
           AND c.endpoint IN ({endpoints}) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS e \
             WHERE e.endpoint = c.endpoint AND e.ordering_key = c.ordering_key \
             AND e.state = 'pending' AND (e.event_id, e.position) < (c.event_id, c.position)) \
           ORDER BY c.next_attempt_at LIMIT {limit}{skip_locked}) \
         RETURNING message_id, endpoint, attempts, \
           (SELECT m.body FROM webhook_messages AS m WHERE m.id = webhook_deliveries.message_id) AS body",
        owner = p(1),
        limit = p(3),
    )
}

fn settle(d: Dialect) -> String {
    let now = d.now();
    let p = |n| d.param(n);
    let next = match d {
        Dialect::Postgres => {
            "now() + make_interval(secs => $4::double precision / 1000)".to_owned()
        }
        Dialect::Sqlite => {
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (?4 / 1000.0) || ' seconds')".to_owned()
        }
    };
    format!(
        "UPDATE webhook_deliveries SET state = {state}, attempts = attempts + 1, \
         next_attempt_at = {next}, last_status = {status}, last_error = {error}, \
         delivered_at = CASE WHEN {state} = 'delivered' THEN {now} ELSE delivered_at END, \
         lease_owner = NULL, lease_until = NULL, updated_at = {now} \
         WHERE message_id = {message} AND endpoint = {endpoint} AND lease_owner = {owner}",
        message = p(1),
        endpoint = p(2),
        state = p(3),
        status = p(5),
        error = p(6),
        owner = p(7),
    )
}

fn record_attempt(d: Dialect) -> String {
    let names = webhook_attempts::COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>();
    let params = (1..=names.len()).map(|n| d.param(n)).collect::<Vec<_>>();
    format!(
        "INSERT INTO webhook_attempts ({}) VALUES ({})",
        names.join(", "),
        params.join(", ")
    )
}

impl Store {
    /// Claims up to `limit` due deliveries to `endpoints` for `owner`, for
    /// `lease_secs`: each the head of its endpoint's queue for its subject.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        lease_secs: u64,
        limit: u32,
        endpoints: &[&str],
    ) -> Result<Vec<Claimed>, StoreError> {
        let lease = i64::try_from(lease_secs).unwrap_or(i64::MAX);
        let endpoints = serde_json::to_string(endpoints)
            .map_err(|e| StoreError::Corrupt(format!("endpoint names: {e}")))?;
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            Ok(sqlx::query_as(made(claim(d)))
                .bind(owner)
                .bind(lease)
                .bind(i64::from(limit))
                .bind(&endpoints)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Records one attempt and the delivery's new state, in one
    /// transaction; false when `owner`'s lease was lost meanwhile (another
    /// instance took the delivery: nothing is written).
    pub async fn settle_delivery(
        &self,
        owner: &str,
        settled: &Settled<'_>,
    ) -> Result<bool, StoreError> {
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(made(settle(d)))
                .bind(settled.message_id)
                .bind(settled.endpoint)
                .bind(settled.state)
                .bind(settled.retry_in_ms)
                .bind(settled.status)
                .bind(settled.error.as_deref())
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            sqlx::query(made(record_attempt(d)))
                .bind(settled.message_id)
                .bind(settled.endpoint)
                .bind(settled.outcome)
                .bind(settled.status)
                .bind(settled.latency_ms)
                .bind(settled.excerpt.as_deref())
                .bind(settled.error.as_deref())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
