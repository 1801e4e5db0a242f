//! `events`: the log of every authenticated delivery (what was received,
//! card numbers masked, and the answer sent), inserted by the write path
//! and never changed by it; read by `history` and the console. Internal
//! services read it too, and hear of each new row on `freedompay_events`
//! (PostgreSQL's NOTIFY, sent at commit).

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Column, Dialect, Insert, OnConflict, json, plain};

/// Every column the service writes, in one place (`received_at` is the
/// database's); an event's id is drawn before its group decides
/// ([`NEXT_ID`], [`SQLITE_NEXT_IDS`]), so that every row written about it
/// can name it.
pub const COLUMNS: &[Column] = &[
    plain("id"),
    plain("merchant_id"),
    plain("kind"),
    plain("order_id"),
    plain("payment_id"),
    json("fields"),
    plain("answer_status"),
    plain("answer_description"),
    plain("duplicate"),
    plain("signature_variant"),
    plain("key_label"),
    plain("conflict"),
    plain("flag"),
];

/// A new `events` row, as the write path makes it.
#[derive(Debug, Serialize)]
pub struct NewEvent {
    pub id: i64,
    pub merchant_id: String,
    pub kind: &'static str,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    /// Written as JSON, not as a string holding JSON.
    pub fields: Box<RawValue>,
    pub answer_status: Option<&'static str>,
    pub answer_description: Option<String>,
    pub duplicate: bool,
    pub signature_variant: &'static str,
    pub key_label: &'static str,
    pub conflict: bool,
    pub flag: Option<String>,
}

/// An `events` row as read: [`NewEvent`]'s columns and the time it was
/// received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub merchant_id: String,
    pub kind: String,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    /// The received fields as JSON text: an array of `[name, value]`
    /// pairs in arrival order.
    #[serde(serialize_with = "json_text")]
    pub fields: String,
    pub answer_status: Option<String>,
    pub answer_description: Option<String>,
    pub duplicate: bool,
    pub signature_variant: Option<String>,
    pub key_label: Option<String>,
    /// A repeat of an already-claimed key whose signed content differs.
    pub conflict: bool,
    /// Why an operator must look at this event, if anything.
    pub flag: Option<String>,
}

/// Writes stored JSON text as JSON (or as a string if it does not parse).
fn json_text<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => value.serialize(serializer),
        Err(_) => serializer.serialize_str(text),
    }
}

/// The write path's insert; a key claimed twice fails it.
pub const INSERT: Insert = Insert {
    table: "events",
    columns: COLUMNS,
    key: &["id"],
    on_conflict: OnConflict::Fail,
    touch: false,
};

/// A new event id on PostgreSQL: the table's sequence (the write path
/// draws them after the group's locks, `callbacks::statements`).
pub const NEXT_ID: &str = "nextval('events_id_seq')";

/// `?1` new event ids (`id`) on SQLite, in increasing order: the group
/// holds the one write lock, so the ids after the largest ever given
/// (`AUTOINCREMENT` keeps it in `sqlite_sequence`) are free until its
/// commit. (The count is bound as text, as every write-path parameter is:
/// hence the cast.)
pub const SQLITE_NEXT_IDS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
     WHERE i < CAST(?1 AS INTEGER)), \
     last(id) AS (SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), \
     coalesce((SELECT max(id) FROM events), 0))) \
     SELECT last.id + n.i AS id FROM last CROSS JOIN n ORDER BY 1";

/// Rows of merchant `$1` where `filter` (in terms of `e.`, parameters from
/// `$2`) holds.
pub fn where_(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT e.received_at, {} FROM events AS e WHERE {filter}",
        d.select("e", COLUMNS)
    )
}
