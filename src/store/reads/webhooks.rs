//! The webhook outbox as operators read it, outside `webhooks list|show`:
//! the messages of a history's events with each one's deliveries (one
//! query for all the events of a history, [`Store::webhooks_of_events`]),
//! and the console's Webhooks page ([`Store::webhook_overview`]): per
//! endpoint, the deliveries settled (delivered, dead) in the last 24 hours,
//! those pending now and the oldest of them, and the dead deliveries,
//! newest first.
//!
//! Every statement finds its rows through an index (their plans are tested,
//! `tests/it/storage_plans.rs`, from [`statements`]): the messages of an
//! event by `webhook_messages_by_event`, a message's deliveries by the
//! primary key, the pending ones by the partial `webhook_deliveries_queue`,
//! and the settled ones by `webhook_deliveries_settled`, which holds only
//! settled rows and so costs the write path (which inserts pending ones)
//! nothing. A settled delivery's `next_attempt_at` is when it was settled:
//! the dispatcher settles a delivered or dead delivery with no further
//! delay, and nothing moves it until a replay makes it pending again.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::on_read_backend;
use crate::store::tables::{Dialect, made};
use crate::store::{Store, StoreError};

/// A message of one of a history's events, with its deliveries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventMessage {
    /// The `webhook-id`.
    pub id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    /// The event it reports.
    pub event_id: i64,
    /// One per endpoint that wants it, by endpoint name.
    pub deliveries: Vec<EventDelivery>,
}

/// One delivery of an [`EventMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventDelivery {
    pub endpoint: String,
    /// pending, delivered or dead.
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: DateTime<Utc>,
}

/// A row of the messages-of-events query: a message, and one of its
/// deliveries (all `None` for a message no endpoint wanted).
#[derive(Debug, sqlx::FromRow)]
struct MessageDeliveryRow {
    message_id: String,
    message_type: String,
    event_id: i64,
    endpoint: Option<String>,
    state: Option<String>,
    attempts: Option<i32>,
    last_status: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
}

/// Deliveries of one endpoint settled in the last 24 hours, by state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SettledCount {
    pub endpoint: String,
    /// delivered or dead.
    pub state: String,
    pub count: i64,
}

/// An endpoint's pending deliveries now, and the age of the oldest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PendingCount {
    pub endpoint: String,
    pub count: i64,
    /// Since the oldest pending delivery's message was committed (or it was
    /// replayed), by the database's clock.
    pub oldest_secs: i64,
}

/// A dead delivery, as the Webhooks page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeadDelivery {
    pub message_id: String,
    pub endpoint: String,
    pub message_type: String,
    pub merchant_id: String,
    /// The subject: `payment:<merchant>:<payment id>`,
    /// `payout:<merchant>:<order id>` or `event:<id>`.
    pub ordering_key: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// When its last attempt failed (or the endpoint answered 410).
    pub died_at: DateTime<Utc>,
}

/// What the console's Webhooks page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookOverview {
    pub settled: Vec<SettledCount>,
    pub pending: Vec<PendingCount>,
    /// Newest first, at most [`DEAD_LIST_LIMIT`].
    pub dead: Vec<DeadDelivery>,
}

/// The dead list is cut at this many rows.
pub const DEAD_LIST_LIMIT: i64 = 100;

/// The statements of this module.
#[derive(Clone, Copy, Debug)]
enum Query {
    /// `$1`: the event ids, a JSON array.
    MessagesOfEvents,
    SettledLastDay,
    Pending,
    /// `$1`: the limit.
    Dead,
}

const QUERIES: [(&str, Query); 4] = [
    ("messages of events", Query::MessagesOfEvents),
    ("settled in the last 24 hours", Query::SettledLastDay),
    ("pending", Query::Pending),
    ("dead", Query::Dead),
];

fn sql(d: Dialect, query: Query) -> String {
    let pg = d == Dialect::Postgres;
    match query {
        // PostgreSQL: lateral lookups by key for each wanted event and
        // message, so that the plan is the indexes' whatever the tables'
        // statistics say (`OFFSET 0` keeps each a subquery run per outer
        // row: a plain lateral subquery is flattened into a join, which a
        // never-analysed table gets as a hash join over two scans). SQLite: `json_each(…) CROSS JOIN` puts the wanted
        // events in the outer loop, as `Dialect::lock_by_id` does.
        Query::MessagesOfEvents if pg => "SELECT m.id AS message_id, m.type AS message_type, \
             m.event_id, d.endpoint, d.state, d.attempts, d.last_status, d.last_error, \
             d.delivered_at, d.next_attempt_at \
             FROM jsonb_array_elements_text($1::jsonb) AS wanted(id) \
             CROSS JOIN LATERAL (SELECT * FROM webhook_messages AS m \
               WHERE m.event_id = wanted.id::bigint OFFSET 0) AS m \
             LEFT JOIN LATERAL (SELECT * FROM webhook_deliveries AS d \
               WHERE d.message_id = m.id OFFSET 0) AS d ON true \
             ORDER BY m.event_id, m.position, m.id, d.endpoint"
            .to_owned(),
        Query::MessagesOfEvents => "SELECT m.id AS message_id, m.type AS message_type, \
             m.event_id, d.endpoint, d.state, d.attempts, d.last_status, d.last_error, \
             d.delivered_at, d.next_attempt_at \
             FROM json_each(?1) AS wanted CROSS JOIN webhook_messages AS m \
               ON m.event_id = wanted.value \
             LEFT JOIN webhook_deliveries AS d ON d.message_id = m.id \
             ORDER BY m.event_id, m.position, m.id, d.endpoint"
            .to_owned(),
        // `state <> 'pending'` is the settled index's own condition, written
        // out so that SQLite (which proves a partial index's condition only
        // from the same term) uses it; the states named make one range of
        // the index per state.
        Query::SettledLastDay => format!(
            "SELECT endpoint, state, count(*) AS count FROM webhook_deliveries \
             WHERE state <> 'pending' AND state IN ('delivered', 'dead') \
             AND next_attempt_at > {} \
             GROUP BY endpoint, state ORDER BY endpoint, state",
            if pg {
                "now() - interval '24 hours'"
            } else {
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-24 hours')"
            }
        ),
        // A replayed delivery is as old as its replay.
        Query::Pending => format!(
            "SELECT endpoint, count(*) AS count, {} AS oldest_secs FROM webhook_deliveries \
             WHERE state = 'pending' GROUP BY endpoint ORDER BY endpoint",
            if pg {
                "CAST(floor(extract(epoch FROM now() - min(coalesce(replayed_at, created_at)))) \
                 AS bigint)"
            } else {
                "CAST((julianday('now') - julianday(min(coalesce(replayed_at, created_at)))) \
                 * 86400 AS INTEGER)"
            }
        ),
        Query::Dead => format!(
            "SELECT d.message_id, d.endpoint, m.type AS message_type, m.merchant_id, \
             d.ordering_key, d.attempts, d.last_status, d.last_error, \
             d.next_attempt_at AS died_at \
             FROM webhook_deliveries AS d JOIN webhook_messages AS m ON m.id = d.message_id \
             WHERE d.state <> 'pending' AND d.state = 'dead' \
             ORDER BY d.next_attempt_at DESC LIMIT {}",
            d.param(1)
        ),
    }
}

/// Every statement of this module on `d`, named, for the plan tests.
pub fn statements(d: Dialect) -> Vec<(&'static str, String)> {
    QUERIES
        .iter()
        .map(|(name, query)| (*name, sql(d, *query)))
        .collect()
}

impl Store {
    /// The messages of the events `event_ids`, each with its deliveries, in
    /// commit order: one query, whatever the number of events.
    pub async fn webhooks_of_events(
        &self,
        event_ids: &[i64],
    ) -> Result<Vec<EventMessage>, StoreError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = serde_json::to_string(event_ids)
            .map_err(|e| StoreError::Corrupt(format!("event ids: {e}")))?;
        let rows: Vec<MessageDeliveryRow> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::MessagesOfEvents)))
                .bind(&wanted)
                .fetch_all(pool)
                .await?
        });
        let mut messages: Vec<EventMessage> = Vec::new();
        for row in rows {
            // Rows come by message, so a message's deliveries are adjacent.
            if messages.last().is_none_or(|last| last.id != row.message_id) {
                messages.push(EventMessage {
                    id: row.message_id,
                    message_type: row.message_type,
                    event_id: row.event_id,
                    deliveries: Vec::new(),
                });
            }
            let Some(message) = messages.last_mut() else {
                continue;
            };
            if let (Some(endpoint), Some(state), Some(attempts), Some(next_attempt_at)) =
                (row.endpoint, row.state, row.attempts, row.next_attempt_at)
            {
                message.deliveries.push(EventDelivery {
                    endpoint,
                    state,
                    attempts,
                    last_status: row.last_status,
                    last_error: row.last_error,
                    delivered_at: row.delivered_at,
                    next_attempt_at,
                });
            }
        }
        Ok(messages)
    }

    /// What the console's Webhooks page shows (all merchants).
    pub async fn webhook_overview(&self) -> Result<WebhookOverview, StoreError> {
        let settled: Vec<SettledCount> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::SettledLastDay)))
                .fetch_all(pool)
                .await?
        });
        let pending: Vec<PendingCount> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::Pending)))
                .fetch_all(pool)
                .await?
        });
        let dead: Vec<DeadDelivery> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::Dead)))
                .bind(DEAD_LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        Ok(WebhookOverview {
            settled,
            pending,
            dead,
        })
    }
}
