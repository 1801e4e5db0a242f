//! Read-only queries for operators: the history of one order (its payments,
//! payout, every event and every outbound task about it), as the `history`
//! command and the console's timeline show it, and the console's overview,
//! search and events list. Nothing here writes.
//!
//! Rows are named [`sqlx::FromRow`] structs read by column name, so a new
//! column is one field and one name in the column list. Money is read as
//! text on both backends and passed through the same strict parser as
//! everywhere in the store, then kept as canonical text for display. A
//! stored amount that does not parse (an internal service wrote `'abc'`,
//! a BLOB, PostgreSQL's `NaN` or `Infinity`) is kept as the stored text and
//! its column named in the record's `damaged` list, so that the operator
//! sees the row the `bad_order_row` flag sends them to; on SQLite a BLOB is
//! read as its SQL literal (`X'373030'`), which no driver type check refuses.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};

/// An order as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrderRecord {
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub paid_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// A payment as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub captured: Option<bool>,
    pub testing_mode: bool,
    pub card_mask: Option<String>,
    pub failure_code: Option<String>,
    pub failure_description: Option<String>,
    pub needs_refund: bool,
    pub refunded_amount: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// A payout as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PayoutRecord {
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: String,
    pub amount: Option<String>,
    pub card_mask: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// One authenticated delivery (`events`): what was received, as stored
/// (card numbers masked), and the answer sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub kind: String,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    /// The received fields as a JSON object, in arrival order.
    #[serde(serialize_with = "json_text")]
    pub fields: String,
    pub answer_status: Option<String>,
    pub answer_description: Option<String>,
    pub duplicate: bool,
    /// A repeat of an already-claimed key whose signed content differs.
    pub conflict: bool,
    /// Why an operator must look at this event (`events.flag`), if anything.
    pub flag: Option<String>,
    pub signature_variant: Option<String>,
    pub key_label: Option<String>,
}

/// One outbound task (status query or refund) about the order or a payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TaskRecord {
    pub id: i64,
    pub task: String,
    pub subject_id: String,
    pub task_key: String,
    pub state: String,
    pub stage: Option<String>,
    pub method: Option<String>,
    pub request_id: Option<String>,
    pub amount: Option<String>,
    pub confirm_total: Option<String>,
    pub refund_id: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// Everything stored about one order (or one payment whose order is not known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    pub merchant_id: String,
    /// The order id the history is about, when known.
    pub order_id: Option<String>,
    pub order: Option<OrderRecord>,
    pub payments: Vec<PaymentRecord>,
    pub payout: Option<PayoutRecord>,
    /// In the order they were recorded.
    pub events: Vec<EventRecord>,
    /// Oldest first.
    pub tasks: Vec<TaskRecord>,
}

/// What a history is looked up by.
#[derive(Clone, Copy, Debug)]
pub enum HistoryKey<'a> {
    Order(&'a str),
    Payment(&'a str),
}

/// Writes stored JSON text as JSON (or as a string if it does not parse).
fn json_text<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(serializer),
        Err(_) => serializer.serialize_str(text),
    }
}

/// The SQL of one backend where the two differ (PostgreSQL reads `NUMERIC`
/// and `JSONB` as text).
struct Dialect {
    order: &'static str,
    payments_of_order: &'static str,
    payment: &'static str,
    payout: &'static str,
    events_of_order: &'static str,
    events_of_payment: &'static str,
    tasks_of_subject: &'static str,
}

/// SQLite's text of a stored amount column, a BLOB as its SQL literal.
macro_rules! sqlite_amount {
    ($column:literal) => {
        concat!(
            "CASE typeof(",
            $column,
            ") WHEN 'blob' THEN 'X''' || hex(",
            $column,
            ") || '''' ELSE CAST(",
            $column,
            " AS TEXT) END"
        )
    };
}

macro_rules! order_sql {
    ($amount:expr) => {
        concat!(
            "SELECT order_id, ",
            $amount,
            " AS amount, currency, status, expires_at, paid_payment_id, created_at, updated_at \
             FROM orders WHERE merchant_id = $1 AND order_id = $2"
        )
    };
}

macro_rules! payment_columns {
    ($amount:expr, $refunded:expr) => {
        concat!(
            "SELECT payment_id, order_id, ",
            $amount,
            " AS amount, currency, status, captured, testing_mode, card_mask, failure_code, \
             failure_description, needs_refund, ",
            $refunded,
            " AS refunded_amount, created_at, updated_at FROM payments WHERE merchant_id = $1"
        )
    };
}

macro_rules! event_columns {
    ($fields:literal) => {
        concat!(
            "SELECT id, received_at, kind, order_id, payment_id, ",
            $fields,
            " AS fields, answer_status, answer_description, duplicate, conflict, flag, \
             signature_variant, key_label FROM events WHERE merchant_id = $1"
        )
    };
}

macro_rules! task_columns {
    ($amount:expr, $confirm:expr) => {
        concat!(
            "SELECT id, task, subject_id, task_key, state, stage, method, request_id, ",
            $amount,
            " AS amount, ",
            $confirm,
            " AS confirm_total, refund_id, attempts, next_attempt_at, last_error, outcome, \
             created_at, updated_at FROM outbound_tasks WHERE merchant_id = $1"
        )
    };
}

const POSTGRES: Dialect = Dialect {
    order: order_sql!("amount::text"),
    payments_of_order: concat!(
        payment_columns!("amount::text", "refunded_amount::text"),
        " AND order_id = $2 ORDER BY created_at, payment_id"
    ),
    payment: concat!(
        payment_columns!("amount::text", "refunded_amount::text"),
        " AND payment_id = $2"
    ),
    payout: "SELECT order_id, payment_id, status, amount::text AS amount, card_mask, created_at, \
             updated_at FROM payouts WHERE merchant_id = $1 AND order_id = $2",
    events_of_order: concat!(
        event_columns!("fields::text"),
        " AND order_id = $2 ORDER BY id"
    ),
    events_of_payment: concat!(
        event_columns!("fields::text"),
        " AND payment_id = $2 ORDER BY id"
    ),
    tasks_of_subject: concat!(
        task_columns!("amount::text", "confirm_total::text"),
        " AND subject_id = $2 ORDER BY id"
    ),
};

const SQLITE: Dialect = Dialect {
    order: order_sql!(sqlite_amount!("amount")),
    payments_of_order: concat!(
        payment_columns!(sqlite_amount!("amount"), sqlite_amount!("refunded_amount")),
        " AND order_id = $2 ORDER BY created_at, payment_id"
    ),
    payment: concat!(
        payment_columns!(sqlite_amount!("amount"), sqlite_amount!("refunded_amount")),
        " AND payment_id = $2"
    ),
    payout: concat!(
        "SELECT order_id, payment_id, status, ",
        sqlite_amount!("amount"),
        " AS amount, card_mask, created_at, updated_at \
         FROM payouts WHERE merchant_id = $1 AND order_id = $2"
    ),
    events_of_order: concat!(event_columns!("fields"), " AND order_id = $2 ORDER BY id"),
    events_of_payment: concat!(event_columns!("fields"), " AND payment_id = $2 ORDER BY id"),
    tasks_of_subject: concat!(
        task_columns!(sqlite_amount!("amount"), sqlite_amount!("confirm_total")),
        " AND subject_id = $2 ORDER BY id"
    ),
};

/// Runs `$body` with the pool and the history SQL of the backend in use.
macro_rules! on_backend {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        with_read_dialect!($store, &POSTGRES, &SQLITE, |$pool, $sql| $body)
    };
}

/// Every row of the dialect's query `$field`, keyed by (merchant, id).
macro_rules! keyed_rows {
    ($store:expr, $field:ident, $merchant:expr, $id:expr) => {
        on_backend!($store, |pool, sql| {
            sqlx::query_as(sql.$field)
                .bind($merchant)
                .bind($id)
                .fetch_all(pool)
                .await?
        })
    };
}

/// Makes a stored amount canonical text (PostgreSQL may add trailing
/// zeros); one that does not parse stays as stored and `column` goes into
/// `damaged`.
fn canonical(text: &mut String, column: &'static str, damaged: &mut Vec<&'static str>) {
    match super::schema::amount(text) {
        Ok(amount) => *text = amount.to_string(),
        Err(_) => damaged.push(column),
    }
}

fn canonical_opt(text: &mut Option<String>, column: &'static str, damaged: &mut Vec<&'static str>) {
    if let Some(text) = text {
        canonical(text, column, damaged);
    }
}

impl Store {
    /// The history of an order, or of a payment's order (only of the payment
    /// when its order is not known). `None` when nothing at all is stored.
    pub async fn history(
        &self,
        merchant_id: &str,
        key: HistoryKey<'_>,
    ) -> Result<Option<History>, StoreError> {
        let mut payments: Vec<PaymentRecord> = Vec::new();
        let order_id = match key {
            HistoryKey::Order(id) => Some(id.to_owned()),
            HistoryKey::Payment(id) => {
                let found: Vec<PaymentRecord> = keyed_rows!(self, payment, merchant_id, id);
                match found.into_iter().next() {
                    Some(payment) => {
                        let order_id = payment.order_id.clone();
                        payments.push(payment);
                        Some(order_id)
                    }
                    None => {
                        let events: Vec<EventRecord> =
                            keyed_rows!(self, events_of_payment, merchant_id, id);
                        events.into_iter().find_map(|e| e.order_id)
                    }
                }
            }
        };

        let mut order = None;
        let mut payout = None;
        let mut events: Vec<EventRecord> = Vec::new();
        let mut tasks: Vec<TaskRecord> = Vec::new();
        if let Some(order_id) = order_id.as_deref() {
            let found: Vec<OrderRecord> = keyed_rows!(self, order, merchant_id, order_id);
            order = found.into_iter().next();
            let of_order: Vec<PaymentRecord> =
                keyed_rows!(self, payments_of_order, merchant_id, order_id);
            for payment in of_order {
                if !payments.iter().any(|p| p.payment_id == payment.payment_id) {
                    payments.push(payment);
                }
            }
            let found: Vec<PayoutRecord> = keyed_rows!(self, payout, merchant_id, order_id);
            payout = found.into_iter().next();
            events = keyed_rows!(self, events_of_order, merchant_id, order_id);
            let about_order: Vec<TaskRecord> =
                keyed_rows!(self, tasks_of_subject, merchant_id, order_id);
            tasks.extend(
                about_order
                    .into_iter()
                    .filter(|t| t.task == "order_status" || t.task == "payout_status"),
            );
        }
        let mut payment_ids: Vec<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
        if let HistoryKey::Payment(id) = key
            && !payment_ids.contains(&id)
        {
            payment_ids.push(id);
        }
        for payment_id in payment_ids {
            let of_payment: Vec<EventRecord> =
                keyed_rows!(self, events_of_payment, merchant_id, payment_id);
            events.extend(of_payment);
            let about_payment: Vec<TaskRecord> =
                keyed_rows!(self, tasks_of_subject, merchant_id, payment_id);
            tasks.extend(
                about_payment
                    .into_iter()
                    .filter(|t| t.task == "payment_status" || t.task == "refund"),
            );
        }
        events.sort_by_key(|e| e.id);
        events.dedup_by_key(|e| e.id);
        tasks.sort_by_key(|t| t.id);
        tasks.dedup_by_key(|t| t.id);

        if order.is_none() && payments.is_empty() && payout.is_none() && events.is_empty() {
            return Ok(None);
        }
        Ok(Some(History {
            merchant_id: merchant_id.to_owned(),
            order_id,
            order: order.map(normalise_order),
            payments: payments.into_iter().map(normalise_payment).collect(),
            payout: payout.map(normalise_payout),
            events,
            tasks: tasks.into_iter().map(normalise_task).collect(),
        }))
    }
}

fn normalise_order(mut o: OrderRecord) -> OrderRecord {
    canonical(&mut o.amount, "amount", &mut o.damaged);
    o
}

fn normalise_payment(mut p: PaymentRecord) -> PaymentRecord {
    canonical(&mut p.amount, "amount", &mut p.damaged);
    canonical(&mut p.refunded_amount, "refunded_amount", &mut p.damaged);
    p
}

fn normalise_payout(mut p: PayoutRecord) -> PayoutRecord {
    canonical_opt(&mut p.amount, "amount", &mut p.damaged);
    p
}

fn normalise_task(mut t: TaskRecord) -> TaskRecord {
    canonical_opt(&mut t.amount, "amount", &mut t.damaged);
    canonical_opt(&mut t.confirm_total, "confirm_total", &mut t.damaged);
    t
}

/// ` (amount damaged)` naming a record's damaged columns, or nothing.
fn damage_note(damaged: &[&str]) -> String {
    if damaged.is_empty() {
        String::new()
    } else {
        format!(" ({} damaged)", damaged.join(", "))
    }
}

macro_rules! damage_notes {
    ($($record:ty),*) => {$(
        impl $record {
            /// ` (amount damaged)` naming the damaged columns, or nothing.
            pub fn damage_note(&self) -> String {
                damage_note(&self.damaged)
            }
        }
    )*};
}

damage_notes!(
    OrderRecord,
    PaymentRecord,
    PayoutRecord,
    TaskRecord,
    ListedOrder,
    ListedPayment
);

impl StoreError {
    /// A stored value could not be read as its type (a row written by hand
    /// or by another program), as opposed to the database not answering.
    pub fn is_damaged_data(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt(_)
                | StoreError::Database(
                    sqlx::Error::ColumnDecode { .. }
                        | sqlx::Error::Decode(_)
                        | sqlx::Error::TypeNotFound { .. }
                )
        )
    }
}

impl History {
    /// What the state is, and what is waiting and when: one sentence a line.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.order {
            Some(order) => {
                let damage = if order.damaged.is_empty() {
                    String::new()
                } else {
                    format!(", {} damaged", order.damaged.join(", "))
                };
                let mut line = format!(
                    "order {} is {} ({} {}{damage})",
                    order.order_id, order.status, order.amount, order.currency
                );
                if order.status == "pending" {
                    match order.expires_at {
                        Some(at) => line.push_str(&format!(
                            "; waiting for payment until {}",
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        )),
                        None => line.push_str("; waiting for payment"),
                    }
                }
                lines.push(line);
            }
            None => match &self.order_id {
                Some(id) => lines.push(format!("order {id} is not in the orders table")),
                None => lines.push("the order of this payment is not known".to_owned()),
            },
        }
        for p in &self.payments {
            let mut line = format!("payment {} {}", p.payment_id, p.status);
            if p.refunded_amount != "0" {
                line.push_str(&format!(
                    ", {} of {} {} refunded",
                    p.refunded_amount, p.amount, p.currency
                ));
            }
            if p.needs_refund {
                line.push_str(", needs a refund");
            }
            if !p.damaged.is_empty() {
                line.push_str(&format!(", {} damaged", p.damaged.join(", ")));
            }
            lines.push(line);
        }
        if let Some(payout) = &self.payout {
            lines.push(format!("payout {} is {}", payout.order_id, payout.status));
        }
        let mut waiting = false;
        for t in &self.tasks {
            let what = match t.task.as_str() {
                "refund" => format!(
                    "refund of {} for payment {}",
                    t.amount.as_deref().unwrap_or("the rest"),
                    t.subject_id
                ),
                "payment_status" => format!("status query for payment {}", t.subject_id),
                "order_status" => format!("status query for order {}", t.subject_id),
                "payout_status" => format!("status query for payout {}", t.subject_id),
                other => format!("{other} task for {}", t.subject_id),
            };
            match t.state.as_str() {
                "open" => {
                    waiting = true;
                    let stage = match t.stage.as_deref() {
                        Some("requested") => " (accepted by FreedomPay, to confirm)",
                        Some("sending") => " (a request may have left, outcome unknown)",
                        Some("new") => " (not sent yet)",
                        _ => "",
                    };
                    lines.push(format!(
                        "waiting: {what}{stage}, attempt {} done, next at {}",
                        t.attempts,
                        t.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")
                    ));
                }
                "failed" => {
                    waiting = true;
                    lines.push(format!(
                        "failed: {what}, after {} attempts: {} (an operator must look)",
                        t.attempts,
                        t.last_error.as_deref().unwrap_or("no error recorded")
                    ));
                }
                _ => {}
            }
        }
        if !waiting && self.payments.iter().any(|p| p.needs_refund) {
            waiting = true;
            lines
                .push("waiting: a payment needs a refund and no refund task exists yet".to_owned());
        }
        if !waiting {
            lines.push("nothing is waiting".to_owned());
        }
        lines
    }
}

/// The fields a timeline shows for each event; the rest are shown on demand.
pub const KEY_FIELDS: &[&str] = &[
    "pg_amount",
    "pg_currency",
    "pg_result",
    "pg_status",
    "pg_can_reject",
    "pg_captured",
    "pg_clearing_amount",
    "pg_refund_amount",
    "pg_refund_payment_id",
    "pg_card_pan",
    "pg_failure_code",
    "pg_failure_description",
    "pg_testing_mode",
];

impl EventRecord {
    /// The received fields as `(name, value)` in arrival order; a nested
    /// value's fields are named `parent[child]`. Stored fields that are not
    /// the expected array of pairs yield nothing.
    pub fn pairs(&self) -> Vec<(String, String)> {
        fn walk(value: &serde_json::Value, prefix: Option<&str>, out: &mut Vec<(String, String)>) {
            let Some(items) = value.as_array() else {
                return;
            };
            for item in items {
                let Some([name, value]) = item.as_array().map(Vec::as_slice) else {
                    continue;
                };
                let name = name.as_str().unwrap_or_default();
                let name = match prefix {
                    Some(p) => format!("{p}[{name}]"),
                    None => name.to_owned(),
                };
                match value {
                    serde_json::Value::String(text) => out.push((name, text.clone())),
                    nested @ serde_json::Value::Array(_) => walk(nested, Some(&name), out),
                    other => out.push((name, other.to_string())),
                }
            }
        }
        let mut out = Vec::new();
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&self.fields) {
            walk(&value, None, &mut out);
        }
        out
    }

    /// The fields of [`KEY_FIELDS`] present in this event, in arrival order.
    pub fn key_fields(&self) -> Vec<(String, String)> {
        self.pairs()
            .into_iter()
            .filter(|(name, _)| KEY_FIELDS.contains(&name.as_str()))
            .collect()
    }
}

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

/// A payment in a list (search results, payments needing a refund).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListedPayment {
    pub merchant_id: String,
    pub payment_id: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub card_mask: Option<String>,
    pub needs_refund: bool,
    pub refunded_amount: String,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// An order in search results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListedOrder {
    pub merchant_id: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub updated_at: DateTime<Utc>,
    /// The columns whose stored value is not what the schema promises,
    /// shown as stored (e.g. `["amount"]`); absent from JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

/// An outbound task that needs an operator's eye: failed, or open and overdue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListedTask {
    pub id: i64,
    pub merchant_id: String,
    pub task: String,
    pub subject_id: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What the console's overview shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub hourly: Vec<HourlyCount>,
    /// Events of the last 24 hours recorded as conflicting repeats, and flagged.
    pub marked: MarkedCounts,
    pub needing_refund: Vec<ListedPayment>,
    pub tasks_needing_attention: Vec<ListedTask>,
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

/// An event in the console's event list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListedEvent {
    pub id: i64,
    pub merchant_id: String,
    pub received_at: DateTime<Utc>,
    pub kind: String,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub answer_status: Option<String>,
    pub duplicate: bool,
    pub conflict: bool,
    pub flag: Option<String>,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SearchResults {
    pub orders: Vec<ListedOrder>,
    pub payments: Vec<ListedPayment>,
}

/// Lists are cut at this many rows.
pub const LIST_LIMIT: i64 = 100;

/// The event list is cut at this many rows.
pub const EVENT_LIST_LIMIT: i64 = 200;

/// The console's queries where the backends differ.
struct ConsoleDialect {
    hourly: &'static str,
    marked: &'static str,
    events: &'static str,
    needing_refund: &'static str,
    tasks_needing_attention: &'static str,
    search_orders: &'static str,
    search_payments: &'static str,
}

// A task is overdue when it is ten minutes past its due time: the reconciler
// would have taken it by then.
const CONSOLE_POSTGRES: ConsoleDialect = ConsoleDialect {
    hourly: "SELECT to_char(date_trunc('hour', received_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24') \
             AS hour, kind, answer_status, duplicate, count(*) AS count FROM events \
             WHERE received_at > now() - interval '24 hours' \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2",
    marked: "SELECT count(*) FILTER (WHERE conflict) AS conflicts, \
             count(*) FILTER (WHERE flag IS NOT NULL) AS flagged FROM events \
             WHERE received_at > now() - interval '24 hours'",
    // $1 hours; $2 kind or NULL; $3 whether to filter by answer, $4 the
    // answer (NULL: none); $5 duplicate or NULL; $6 conflicts only; $7 flagged only.
    events: "SELECT id, merchant_id, received_at, kind, order_id, payment_id, answer_status, \
             duplicate, conflict, flag FROM events \
             WHERE received_at > now() - make_interval(hours => $1::int) \
             AND ($2::text IS NULL OR kind = $2) \
             AND (NOT $3::boolean OR answer_status IS NOT DISTINCT FROM $4::text) \
             AND ($5::boolean IS NULL OR duplicate = $5) \
             AND (NOT $6::boolean OR conflict) AND (NOT $7::boolean OR flag IS NOT NULL) \
             ORDER BY received_at DESC, id DESC LIMIT $8",
    needing_refund: "SELECT merchant_id, payment_id, order_id, amount::text AS amount, currency, \
             status, card_mask, needs_refund, refunded_amount::text AS refunded_amount, updated_at \
             FROM payments WHERE needs_refund ORDER BY updated_at DESC LIMIT $1",
    tasks_needing_attention: "SELECT id, merchant_id, task, subject_id, state, attempts, \
             next_attempt_at, last_error FROM outbound_tasks \
             WHERE state = 'failed' OR (state = 'open' AND next_attempt_at < now() - interval '10 minutes') \
             ORDER BY id DESC LIMIT $1",
    search_orders: "SELECT merchant_id, order_id, amount::text AS amount, currency, status, updated_at \
             FROM orders WHERE order_id = $1 ORDER BY merchant_id LIMIT $2",
    search_payments: "SELECT merchant_id, payment_id, order_id, amount::text AS amount, currency, \
             status, card_mask, needs_refund, refunded_amount::text AS refunded_amount, updated_at \
             FROM payments WHERE payment_id = $1 OR order_id = $2 OR card_mask LIKE $3 ESCAPE '\\' \
             ORDER BY updated_at DESC LIMIT $4",
};

const CONSOLE_SQLITE: ConsoleDialect = ConsoleDialect {
    hourly: "SELECT substr(received_at, 1, 13) AS hour, kind, answer_status, duplicate, \
             count(*) AS count FROM events \
             WHERE received_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-24 hours') \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2",
    marked: "SELECT coalesce(sum(CASE WHEN conflict THEN 1 ELSE 0 END), 0) AS conflicts, \
             coalesce(sum(CASE WHEN flag IS NOT NULL THEN 1 ELSE 0 END), 0) AS flagged FROM events \
             WHERE received_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-24 hours')",
    events: "SELECT id, merchant_id, received_at, kind, order_id, payment_id, answer_status, \
             duplicate, conflict, flag FROM events \
             WHERE received_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $1 || ' hours') \
             AND ($2 IS NULL OR kind = $2) \
             AND (NOT $3 OR answer_status IS $4) \
             AND ($5 IS NULL OR duplicate = $5) \
             AND (NOT $6 OR conflict) AND (NOT $7 OR flag IS NOT NULL) \
             ORDER BY received_at DESC, id DESC LIMIT $8",
    needing_refund: concat!(
        "SELECT merchant_id, payment_id, order_id, ",
        sqlite_amount!("amount"),
        " AS amount, currency, status, card_mask, needs_refund, ",
        sqlite_amount!("refunded_amount"),
        " AS refunded_amount, updated_at \
         FROM payments WHERE needs_refund ORDER BY updated_at DESC LIMIT $1"
    ),
    tasks_needing_attention: "SELECT id, merchant_id, task, subject_id, state, attempts, \
             next_attempt_at, last_error FROM outbound_tasks \
             WHERE state = 'failed' OR (state = 'open' \
               AND next_attempt_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')) \
             ORDER BY id DESC LIMIT $1",
    search_orders: concat!(
        "SELECT merchant_id, order_id, ",
        sqlite_amount!("amount"),
        " AS amount, currency, status, updated_at \
         FROM orders WHERE order_id = $1 ORDER BY merchant_id LIMIT $2"
    ),
    search_payments: concat!(
        "SELECT merchant_id, payment_id, order_id, ",
        sqlite_amount!("amount"),
        " AS amount, currency, status, card_mask, needs_refund, ",
        sqlite_amount!("refunded_amount"),
        " AS refunded_amount, updated_at \
         FROM payments WHERE payment_id = $1 OR order_id = $2 OR card_mask LIKE $3 ESCAPE '\\' \
         ORDER BY updated_at DESC LIMIT $4"
    ),
};

fn normalise_listed_payment(mut p: ListedPayment) -> ListedPayment {
    canonical(&mut p.amount, "amount", &mut p.damaged);
    canonical(&mut p.refunded_amount, "refunded_amount", &mut p.damaged);
    p
}

/// Runs `$body` with the pool and the console SQL of the backend in use.
macro_rules! on_console_backend {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        with_read_dialect!($store, &CONSOLE_POSTGRES, &CONSOLE_SQLITE, |$pool, $sql| {
            $body
        })
    };
}

impl Store {
    /// The last 24 hours of deliveries by hour, the payments needing a
    /// refund, and the tasks that failed or are overdue (all merchants).
    pub async fn overview(&self) -> Result<Overview, StoreError> {
        let hourly: Vec<HourlyCount> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.hourly).fetch_all(pool).await?
        });
        let marked: MarkedCounts = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.marked).fetch_one(pool).await?
        });
        let needing_refund: Vec<ListedPayment> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.needing_refund)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        let tasks_needing_attention: Vec<ListedTask> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.tasks_needing_attention)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        Ok(Overview {
            hourly,
            marked,
            needing_refund: needing_refund
                .into_iter()
                .map(normalise_listed_payment)
                .collect(),
            tasks_needing_attention,
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
        let orders: Vec<ListedOrder> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.search_orders)
                .bind(query)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        let payments: Vec<ListedPayment> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.search_payments)
                .bind(query)
                .bind(query)
                .bind(&suffix)
                .bind(LIST_LIMIT)
                .fetch_all(pool)
                .await?
        });
        Ok(SearchResults {
            orders: orders
                .into_iter()
                .map(|mut o| {
                    canonical(&mut o.amount, "amount", &mut o.damaged);
                    o
                })
                .collect(),
            payments: payments.into_iter().map(normalise_listed_payment).collect(),
        })
    }

    /// The events `filter` selects (all merchants), newest first, at most
    /// [`EVENT_LIST_LIMIT`]. Every filter value is a bound parameter.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<ListedEvent>, StoreError> {
        let answer = filter.answer.as_ref();
        let rows: Vec<ListedEvent> = on_console_backend!(self, |pool, sql| {
            sqlx::query_as(sql.events)
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
        });
        Ok(rows)
    }
}
