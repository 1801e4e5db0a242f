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

use chrono::{DateTime, Utc};

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
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settled {
    pub message_id: String,
    pub endpoint: String,
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

/// The dispatcher's statements on `d` by name (`claim`: `$1` owner, `$2`
/// lease seconds, `$3` limit, `$4` endpoints as a JSON array; `settle`: on
/// PostgreSQL a batch, `$1` as JSON and `$2` the owner; `backlog`): public
/// for the plan tests.
pub fn statements(d: Dialect) -> [(&'static str, String); 3] {
    let settle = match d {
        Dialect::Postgres => settle_batch(),
        Dialect::Sqlite => settle(d),
    };
    [
        ("claim", claim(d)),
        ("settle", settle),
        ("backlog", backlog(d)),
    ]
}

fn claim(d: Dialect) -> String {
    let now = d.now();
    let p = |n| d.param(n);
    // `lookup`: PostgreSQL turns a plain `NOT EXISTS` into an anti-join,
    // which with a backlog hashes every pending delivery on each claim; an
    // `OFFSET` keeps it a subplan, one lookup on the queue's index per
    // candidate (`tests/it/storage_plans.rs` checks). SQLite runs a
    // correlated subquery per row anyway.
    let (lease_until, endpoints, skip_locked, lookup) = match d {
        Dialect::Postgres => (
            "now() + make_interval(secs => $2::bigint)".to_owned(),
            "SELECT jsonb_array_elements_text($4::jsonb)",
            " FOR UPDATE SKIP LOCKED",
            " OFFSET 0",
        ),
        Dialect::Sqlite => (
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?2 || ' seconds')".to_owned(),
            "SELECT value FROM json_each(?4)",
            "",
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
             AND e.state = 'pending' AND (e.event_id, e.position) < (c.event_id, c.position){lookup}) \
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
         last_latency_ms = {latency}, last_excerpt = {excerpt}, \
         delivered_at = CASE WHEN {state} = 'delivered' THEN {now} ELSE delivered_at END, \
         lease_owner = NULL, lease_until = NULL, updated_at = {now} \
         WHERE message_id = {message} AND endpoint = {endpoint} AND lease_owner = {owner}",
        message = p(1),
        endpoint = p(2),
        state = p(3),
        status = p(5),
        error = p(6),
        owner = p(7),
        latency = p(8),
        excerpt = p(9),
    )
}

/// PostgreSQL: a batch of [`Settled`] (`$1`, a JSON array) settled and
/// its attempts recorded in one statement; `$2` the owner; it returns how
/// many were settled. Only the deliveries still leased to the owner are
/// settled, and only their attempts recorded; an attempt that delivered
/// is recorded on its delivery alone (`tables::webhook_attempts`). The
/// rows are found by their ids as an array (`= ANY`, an index condition),
/// so that whatever join the planner picks with the batch, it never walks
/// the whole table.
fn settle_batch() -> String {
    let names = webhook_attempts::COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>();
    let from_batch = names.iter().map(|n| format!("s.{n}")).collect::<Vec<_>>();
    format!(
        "WITH s AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS s(message_id text, endpoint text, \
           state text, retry_in_ms bigint, outcome text, status integer, latency_ms integer, \
           excerpt text, error text)), \
         settled AS (UPDATE webhook_deliveries AS d SET state = s.state, attempts = d.attempts + 1, \
           next_attempt_at = now() + make_interval(secs => s.retry_in_ms::double precision / 1000), \
           last_status = s.status, last_error = s.error, \
           last_latency_ms = s.latency_ms, last_excerpt = s.excerpt, \
           delivered_at = CASE WHEN s.state = 'delivered' THEN now() ELSE d.delivered_at END, \
           lease_owner = NULL, lease_until = NULL, updated_at = now() \
           FROM s WHERE d.message_id = ANY(ARRAY(SELECT message_id FROM s)) \
           AND d.message_id = s.message_id AND d.endpoint = s.endpoint \
           AND d.lease_owner = $2::text RETURNING d.message_id, d.endpoint), \
         recorded AS (INSERT INTO webhook_attempts ({}) SELECT {} FROM s \
           JOIN settled ON settled.message_id = s.message_id AND settled.endpoint = s.endpoint \
           WHERE s.outcome <> 'delivered') \
         SELECT count(*) FROM settled",
        names.join(", "),
        from_batch.join(", ")
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
    ///
    /// On PostgreSQL the claim commits with `synchronous_commit = off`, as
    /// settling does: other instances see it at once (visibility does not
    /// wait for the disk), and a claim forgotten by a database crash only
    /// makes its deliveries claimable again, to be sent once more, which
    /// at-least-once delivery allows. A synchronous claim would add a disk
    /// flush to every round, which the callbacks' commits queue behind.
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
            let mut tx = pool.begin().await?;
            if d == Dialect::Postgres {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            let claimed = sqlx::query_as(made(claim(d)))
                .bind(owner)
                .bind(lease)
                .bind(i64::from(limit))
                .bind(&endpoints)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(claimed)
        })
    }

    /// Records attempts and their deliveries' new states, all in one
    /// transaction (the dispatcher settles what finished meanwhile
    /// together: one commit, not one per message); how many were settled.
    /// A delivery whose lease `owner` lost meanwhile (another instance took
    /// it) is skipped: nothing of it is written.
    ///
    /// On PostgreSQL the transaction commits with `synchronous_commit =
    /// off`: it does not wait for its WAL to reach the disk (or a
    /// synchronous standby). A crash may then forget the last fraction of a
    /// second of settlements; those deliveries are pending again under an
    /// expired lease and are sent once more, which at-least-once delivery
    /// allows, while the commit no longer costs a disk flush per message.
    pub async fn settle_deliveries(
        &self,
        owner: &str,
        settled: &[Settled],
    ) -> Result<usize, StoreError> {
        if settled.is_empty() {
            return Ok(0);
        }
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let mut tx = pool.begin().await?;
            if d == Dialect::Postgres {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            if d == Dialect::Postgres {
                let batch = serde_json::to_string(settled)
                    .map_err(|e| StoreError::Corrupt(format!("settled deliveries: {e}")))?;
                let count: i64 = sqlx::query_scalar(made(settle_batch()))
                    .bind(batch)
                    .bind(owner)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(usize::try_from(count).unwrap_or(0));
            }
            // SQLite runs in the process: a statement per row costs no
            // round trip.
            let (settle, record) = (settle(d), record_attempt(d));
            let mut count = 0;
            for one in settled {
                let updated = sqlx::query(made(settle.clone()))
                    .bind(&one.message_id)
                    .bind(&one.endpoint)
                    .bind(one.state)
                    .bind(one.retry_in_ms)
                    .bind(one.status)
                    .bind(one.error.as_deref())
                    .bind(owner)
                    .bind(one.latency_ms)
                    .bind(one.excerpt.as_deref())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    continue;
                }
                count += 1;
                if one.outcome == "delivered" {
                    continue;
                }
                sqlx::query(made(record.clone()))
                    .bind(&one.message_id)
                    .bind(&one.endpoint)
                    .bind(one.outcome)
                    .bind(one.status)
                    .bind(one.latency_ms)
                    .bind(one.excerpt.as_deref())
                    .bind(one.error.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(count)
        })
    }
}

/// One endpoint's backlog: its pending deliveries and how long the oldest
/// has waited (since it was written, or replayed), by the database's clock.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Backlog {
    pub endpoint: String,
    pub pending: i64,
    pub oldest_secs: f64,
}

fn backlog(d: Dialect) -> String {
    let waited = "min(COALESCE(replayed_at, created_at))";
    let age = match d {
        Dialect::Postgres => format!("EXTRACT(EPOCH FROM now() - {waited})::float8"),
        Dialect::Sqlite => format!("(julianday('now') - julianday({waited})) * 86400.0"),
    };
    // Reads only pending rows, through the partial index of the queue.
    format!(
        "SELECT endpoint, count(*) AS pending, {age} AS oldest_secs FROM webhook_deliveries \
         WHERE state = 'pending' GROUP BY endpoint"
    )
}

impl Store {
    /// Every endpoint's backlog (endpoints with nothing pending are absent),
    /// for the gauges `/metrics` reads at scrape time.
    pub async fn webhook_backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            Ok(sqlx::query_as(made(backlog(d))).fetch_all(pool).await?)
        })
    }
}

/// A delivery as operators list it, with its message's type and merchant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryListed {
    pub message_id: String,
    pub endpoint: String,
    pub message_type: String,
    pub merchant_id: String,
    pub ordering_key: String,
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub replayed_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One attempt as `webhooks show` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct AttemptListed {
    pub endpoint: String,
    pub attempted_at: DateTime<Utc>,
    pub outcome: String,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

/// A message with its body, its deliveries and every attempt.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MessageShown {
    pub id: String,
    pub body: String,
    pub deliveries: Vec<DeliveryListed>,
    pub attempts: Vec<AttemptListed>,
}

/// Which deliveries `webhooks list` and `webhooks replay` mean.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter<'a> {
    pub message_id: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub state: Option<&'a str>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
}

/// Deliveries listed at most.
pub const LIST_LIMIT: i64 = 500;

/// `filter` as SQL over `d.` (parameters `$1` to `$4`).
fn filtered(d: Dialect) -> String {
    let text = |n| match d {
        Dialect::Postgres => format!("${n}::text"),
        Dialect::Sqlite => format!("?{n}"),
    };
    let since = match d {
        Dialect::Postgres => "$4::timestamptz".to_owned(),
        Dialect::Sqlite => "?4".to_owned(),
    };
    format!(
        "({m} IS NULL OR d.message_id = {m}) AND ({e} IS NULL OR d.endpoint = {e}) \
         AND ({s} IS NULL OR d.state = {s}) AND ({since} IS NULL OR d.created_at >= {since})",
        m = text(1),
        e = text(2),
        s = text(3),
    )
}

fn list(d: Dialect) -> String {
    format!(
        "SELECT d.message_id, d.endpoint, m.type AS message_type, m.merchant_id, d.ordering_key, \
         d.state, d.attempts, d.last_status, d.last_error, d.next_attempt_at, d.replayed_by, \
         d.created_at FROM webhook_deliveries AS d JOIN webhook_messages AS m ON m.id = d.message_id \
         WHERE {} ORDER BY d.created_at DESC, d.event_id DESC, d.position DESC LIMIT {LIST_LIMIT}",
        filtered(d)
    )
}

/// A message's attempts (`$1` its id), oldest first: those recorded in
/// `webhook_attempts`, and the attempt that delivered, kept on its delivery
/// (`last_latency_ms` is set only by a settlement that did not record it
/// there too).
fn attempts(d: Dialect) -> String {
    let id = d.param(1);
    format!(
        "SELECT endpoint, attempted_at, outcome, status, latency_ms, excerpt, error FROM ( \
           SELECT endpoint, attempted_at, outcome, status, latency_ms, excerpt, error, id AS n \
             FROM webhook_attempts WHERE message_id = {id} \
           UNION ALL \
           SELECT endpoint, delivered_at, 'delivered', last_status, last_latency_ms, last_excerpt, \
             NULL, NULL FROM webhook_deliveries \
             WHERE message_id = {id} AND state = 'delivered' AND last_latency_ms IS NOT NULL \
         ) AS a ORDER BY attempted_at, n"
    )
}

/// Before a replay: the delivering attempts of the deliveries `filter`
/// names (`$1` to `$4`) copied into `webhook_attempts`, since the replay
/// makes their deliveries pending again.
fn keep_delivering_attempts(d: Dialect) -> String {
    let (names, values): (Vec<&str>, Vec<String>) = webhook_attempts::COLUMNS
        .iter()
        .map(|c| {
            let value = match c.name {
                "outcome" => "'delivered'".to_owned(),
                "status" => "d.last_status".to_owned(),
                "latency_ms" => "d.last_latency_ms".to_owned(),
                "excerpt" => "d.last_excerpt".to_owned(),
                "error" => "NULL".to_owned(),
                same => format!("d.{same}"),
            };
            (c.name, value)
        })
        .unzip();
    format!(
        "INSERT INTO webhook_attempts ({}, attempted_at) SELECT {}, d.delivered_at \
         FROM webhook_deliveries AS d \
         WHERE {} AND d.state = 'delivered' AND d.last_latency_ms IS NOT NULL",
        names.join(", "),
        values.join(", "),
        filtered(d)
    )
}

fn replay(d: Dialect) -> String {
    let now = d.now();
    format!(
        "UPDATE webhook_deliveries AS d SET state = 'pending', attempts = 0, next_attempt_at = {now}, \
         lease_owner = NULL, lease_until = NULL, last_latency_ms = NULL, last_excerpt = NULL, \
         replayed_by = {who}, replayed_at = {now}, updated_at = {now} WHERE {}",
        filtered(d),
        who = d.param(5),
    )
}

impl Store {
    /// The deliveries `filter` names, newest first, at most [`LIST_LIMIT`].
    pub async fn webhook_deliveries(
        &self,
        filter: &DeliveryFilter<'_>,
    ) -> Result<Vec<DeliveryListed>, StoreError> {
        let since = filter.since.map(sqlite_time);
        with_read_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            Ok(sqlx::query_as(made(list(d)))
                .bind(filter.message_id)
                .bind(filter.endpoint)
                .bind(filter.state)
                .bind(since.as_deref())
                .fetch_all(pool)
                .await?)
        })
    }

    /// A message with its deliveries and attempts; `None` when unknown.
    pub async fn webhook_message(&self, id: &str) -> Result<Option<MessageShown>, StoreError> {
        let deliveries = self
            .webhook_deliveries(&DeliveryFilter {
                message_id: Some(id),
                ..DeliveryFilter::default()
            })
            .await?;
        let (body, attempts) =
            with_read_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
                let body: Option<String> = sqlx::query_scalar(made(format!(
                    "SELECT body FROM webhook_messages WHERE id = {}",
                    d.param(1)
                )))
                .bind(id)
                .fetch_optional(pool)
                .await?;
                let attempts: Vec<AttemptListed> = sqlx::query_as(made(attempts(d)))
                    .bind(id)
                    .fetch_all(pool)
                    .await?;
                (body, attempts)
            });
        Ok(body.map(|body| MessageShown {
            id: id.to_owned(),
            body,
            deliveries,
            attempts,
        }))
    }

    /// Sends the deliveries `filter` names again, from now, with a fresh
    /// schedule (their past attempts stay recorded, the delivering one
    /// copied into `webhook_attempts` first) and the same
    /// `webhook-id` and body; `who` is recorded. How many were re-queued.
    pub async fn replay_webhooks(
        &self,
        filter: &DeliveryFilter<'_>,
        who: &str,
    ) -> Result<u64, StoreError> {
        let since = filter.since.map(sqlite_time);
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let mut tx = pool.begin().await?;
            sqlx::query(made(keep_delivering_attempts(d)))
                .bind(filter.message_id)
                .bind(filter.endpoint)
                .bind(filter.state)
                .bind(since.as_deref())
                .execute(&mut *tx)
                .await?;
            let replayed = sqlx::query(made(replay(d)))
                .bind(filter.message_id)
                .bind(filter.endpoint)
                .bind(filter.state)
                .bind(since.as_deref())
                .bind(who)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(replayed)
        })
    }
}

/// A time as SQLite's rows store it (and as PostgreSQL parses it).
fn sqlite_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
