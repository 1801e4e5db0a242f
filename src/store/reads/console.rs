//! The console's queries (all merchants): the overview of the last 24
//! hours, search by id or card mask, and the event list. Rows are the
//! tables' own; only the counts are shaped here.

use serde::Serialize;

use super::on_read_backend;
use crate::store::tables::events::{self, EventRow};
use crate::store::tables::orders::{self, OrderRow};
use crate::store::tables::outbound_tasks::{self, TaskRow};
use crate::store::tables::payments::{self, PaymentRow};
use crate::store::tables::{Dialect, Stored, made};
use crate::store::{Store, StoreError};

/// Deliveries of the last 24 hours, counted by hour, kind, answer and repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HourlyCount {
    /// The hour in UTC, as `YYYY-MM-DDTHH`.
    pub hour: String,
    pub kind: String,
    pub answer_status: Option<String>,
    pub duplicate: bool,
    pub count: i64,
}

/// What the console's overview shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub hourly: Vec<HourlyCount>,
    /// Events of the last 24 hours recorded as conflicting repeats, and flagged.
    pub marked: MarkedCounts,
    pub needing_refund: Vec<Stored<PaymentRow>>,
    /// Tasks that failed, or are open and overdue.
    pub tasks_needing_attention: Vec<TaskRow>,
    /// The event log's size and oldest event (`store::retention`).
    pub log: crate::store::retention::LogSize,
}

/// Events of the last 24 hours that carry a mark for an operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MarkedCounts {
    pub conflicts: i64,
    pub flagged: i64,
}

/// Which events the console's event list shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events received in the last this many hours.
    pub since_hours: i64,
    pub kind: Option<String>,
    /// `Some(None)`: only events without an answer.
    pub answer: Option<Option<String>>,
    pub duplicate: Option<bool>,
    /// Only conflicting repeats.
    pub conflict: bool,
    /// Only flagged events.
    pub flagged: bool,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SearchResults {
    pub orders: Vec<Stored<OrderRow>>,
    pub payments: Vec<Stored<PaymentRow>>,
}

/// Lists are cut at this many rows.
pub const LIST_LIMIT: i64 = 100;

/// The event list is cut at this many rows.
pub const EVENT_LIST_LIMIT: i64 = 200;

/// The console's queries.
#[derive(Clone, Copy, Debug)]
enum Query {
    Hourly,
    Marked,
    /// `$1` hours; `$2` kind or NULL; `$3` whether to filter by answer, `$4`
    /// the answer (NULL: none); `$5` duplicate or NULL; `$6` conflicts only;
    /// `$7` flagged only; `$8` the limit.
    Events,
    NeedingRefund,
    TasksNeedingAttention,
    SearchOrders,
    SearchPayments,
}

/// The console's reads of the event log, named, for the plan tests: the
/// last day by hour, its marked events, and the filtered list (`$1` hours,
/// `$2` kind, `$3`/`$4` answer, `$5` duplicate, `$6` conflicts only, `$7`
/// flagged only, `$8` limit).
pub fn event_log_reads(d: Dialect) -> Vec<(&'static str, String)> {
    vec![
        ("console hourly", sql(d, Query::Hourly)),
        ("console marked", sql(d, Query::Marked)),
        ("console events", sql(d, Query::Events)),
    ]
}

fn sql(d: Dialect, query: Query) -> String {
    let pg = d == Dialect::Postgres;
    // Events of the last 24 hours.
    let last_day = if pg {
        "received_at > now() - interval '24 hours'"
    } else {
        "received_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-24 hours')"
    };
    match query {
        Query::Hourly => {
            let hour = if pg {
                "to_char(date_trunc('hour', received_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24')"
            } else {
                "substr(received_at, 1, 13)"
            };
            format!(
                "SELECT {hour} AS hour, kind, answer_status, duplicate, count(*) AS count \
                 FROM events WHERE {last_day} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"
            )
        }
        // `count` of a CASE without ELSE counts the rows where it holds: a
        // count (bigint) on both backends, where PostgreSQL's `sum` of
        // integers is numeric.
        Query::Marked => format!(
            "SELECT count(CASE WHEN conflict THEN 1 END) AS conflicts, \
             count(CASE WHEN flag IS NOT NULL THEN 1 END) AS flagged \
             FROM events WHERE {last_day}"
        ),
        Query::Events => {
            let filter = if pg {
                "e.received_at > now() - make_interval(hours => $1::int) \
                 AND ($2::text IS NULL OR e.kind = $2) \
                 AND (NOT $3::boolean OR e.answer_status IS NOT DISTINCT FROM $4::text) \
                 AND ($5::boolean IS NULL OR e.duplicate = $5) \
                 AND (NOT $6::boolean OR e.conflict) AND (NOT $7::boolean OR e.flag IS NOT NULL) \
                 ORDER BY e.received_at DESC, e.id DESC LIMIT $8"
            } else {
                "e.received_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' hours') \
                 AND (?2 IS NULL OR e.kind = ?2) \
                 AND (NOT ?3 OR e.answer_status IS ?4) \
                 AND (?5 IS NULL OR e.duplicate = ?5) \
                 AND (NOT ?6 OR e.conflict) AND (NOT ?7 OR e.flag IS NOT NULL) \
                 ORDER BY e.received_at DESC, e.id DESC LIMIT ?8"
            };
            events::where_(d, filter)
        }
        Query::NeedingRefund => payments::stored_where(
            d,
            &format!(
                "p.needs_refund ORDER BY p.updated_at DESC LIMIT {}",
                d.param(1)
            ),
        ),
        // A task is overdue when it is ten minutes past its due time: the
        // reconciler would have taken it by then.
        Query::TasksNeedingAttention => outbound_tasks::where_(
            d,
            &format!(
                "t.state = 'failed' OR (t.state = 'open' AND t.next_attempt_at < {}) \
                 ORDER BY t.id DESC LIMIT {}",
                if pg {
                    "now() - interval '10 minutes'"
                } else {
                    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')"
                },
                d.param(1)
            ),
        ),
        Query::SearchOrders => orders::stored_where(
            d,
            &format!(
                "o.order_id = {} ORDER BY o.merchant_id LIMIT {}",
                d.param(1),
                d.param(2)
            ),
        ),
        Query::SearchPayments => payments::stored_where(
            d,
            &format!(
                "p.payment_id = {} OR p.order_id = {} OR p.card_mask LIKE {} ESCAPE '\\' \
                 ORDER BY p.updated_at DESC LIMIT {}",
                d.param(1),
                d.param(2),
                d.param(3),
                d.param(4)
            ),
        ),
    }
}

impl Store {
    /// The last 24 hours of deliveries by hour, the payments needing a
    /// refund, and the tasks that failed or are overdue (all merchants).
    pub async fn overview(&self) -> Result<Overview, StoreError> {
        let hourly: Vec<HourlyCount> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::Hourly)))
                .fetch_all(pool)
                .await?
        });
        let marked: MarkedCounts = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::Marked)))
                .fetch_one(pool)
                .await?
        });
        let needing_refund: Vec<Stored<PaymentRow>> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::NeedingRefund)))
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        let tasks_needing_attention: Vec<TaskRow> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::TasksNeedingAttention)))
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        let log = self.log_size().await?;
        Ok(Overview {
            hourly,
            marked,
            needing_refund: needing_refund.into_iter().map(Stored::shown).collect(),
            tasks_needing_attention,
            log,
        })
    }

    /// Orders and payments whose order id or payment id is `query`, and
    /// payments whose card mask ends in it (all merchants).
    pub async fn search(&self, query: &str) -> Result<SearchResults, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(SearchResults::default());
        }
        // The query is a literal suffix: LIKE's wildcards in it match themselves.
        let suffix = format!(
            "%{}",
            query
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let orders: Vec<Stored<OrderRow>> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::SearchOrders)))
                .bind(query)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        let payments: Vec<Stored<PaymentRow>> = on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::SearchPayments)))
                .bind(query)
                .bind(query)
                .bind(&suffix)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        Ok(SearchResults {
            orders: orders.into_iter().map(Stored::shown).collect(),
            payments: payments.into_iter().map(Stored::shown).collect(),
        })
    }

    /// The events `filter` selects (all merchants), newest first, at most
    /// [`EVENT_LIST_LIMIT`]. Every filter value is a bound parameter.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        let answer = filter.answer.as_ref();
        Ok(on_read_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Query::Events)))
                .bind(filter.since_hours)
                .bind(filter.kind.as_deref())
                .bind(answer.is_some())
                .bind(answer.and_then(|a| a.as_deref()))
                .bind(filter.duplicate)
                .bind(filter.conflict)
                .bind(filter.flagged)
                .bind(EVENT_LIST_LIMIT)
                .fetch_all(pool)
                .await?
        }))
    }
}
