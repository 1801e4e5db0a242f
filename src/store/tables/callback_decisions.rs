//! `callback_decisions`: one row per idempotency key a callback claimed,
//! with the answer given and the fingerprint of what was signed, so that a
//! repeat gets the stored answer and a different repeat is seen as one.
//! Written and read only by the write path.

use serde::Serialize;

use super::{Column, Dialect, Insert, OnConflict, plain, status};
use crate::domain::IdempotencyKey;
use crate::protocol::Status;
use crate::store::StoreError;

/// Every column the write path writes, in one place.
pub const COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("kind"),
    plain("subject_id"),
    plain("discriminator"),
    plain("fingerprint"),
    plain("answer_status"),
    plain("answer_description"),
    plain("event_id"),
    plain("repeats"),
];

/// The key's columns and its count of repeats (a stored redirect repeated).
pub const REPEAT_COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("kind"),
    plain("subject_id"),
    plain("discriminator"),
    plain("repeats"),
];

const KEY: &[&str] = &["merchant_id", "kind", "subject_id", "discriminator"];

/// A new decision; a key claimed meanwhile elsewhere fails it.
pub const INSERT: Insert = Insert {
    table: "callback_decisions",
    columns: COLUMNS,
    key: KEY,
    on_conflict: OnConflict::Fail,
    touch: false,
};

/// More repeats of a stored key.
pub const ADD_REPEATS: Insert = Insert {
    table: "callback_decisions",
    columns: REPEAT_COLUMNS,
    key: KEY,
    on_conflict: OnConflict::Set("repeats = callback_decisions.repeats + excluded.repeats"),
    touch: false,
};

/// A stored decision as a group reads it: its key, its answer, and what its
/// first delivery said (its fingerprint and its event's fields).
#[derive(Debug, sqlx::FromRow)]
pub struct DecisionRow {
    pub kind: String,
    pub subject_id: String,
    pub discriminator: String,
    pub answer_status: Option<String>,
    pub answer_description: Option<String>,
    pub fingerprint: Option<String>,
    /// The first delivery's `events.fields`, as JSON text.
    pub first_fields: Option<String>,
}

/// A new `callback_decisions` row, or (with `answer_status` `None` and the
/// key already stored) only more repeats of a stored redirect.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct DecisionWrite<'a> {
    pub merchant_id: &'a str,
    pub kind: &'a str,
    pub subject_id: &'a str,
    pub discriminator: &'a str,
    pub fingerprint: Option<&'a str>,
    pub answer_status: Option<&'static str>,
    pub answer_description: Option<&'a str>,
    pub event_id: Option<i64>,
    pub repeats: i32,
}

/// The write path's lookup: the decisions of merchant `$1` by the keys of
/// the JSON array `$2` (objects with `kind`, `subject_id`,
/// `discriminator`), each by its primary key, with their first event's
/// fields.
pub fn by_key(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => {
            "SELECT found.* FROM jsonb_to_recordset($2::jsonb) \
             AS wanted(kind text, subject_id text, discriminator text) \
             CROSS JOIN LATERAL (SELECT d.kind, d.subject_id, d.discriminator, d.answer_status, \
             d.answer_description, d.fingerprint, e.fields::text AS first_fields \
             FROM callback_decisions d LEFT JOIN events e ON e.id = d.event_id \
             WHERE d.merchant_id = $1 AND d.kind = wanted.kind AND d.subject_id = wanted.subject_id \
             AND d.discriminator = wanted.discriminator LIMIT 1) AS found"
        }
        Dialect::Sqlite => {
            "SELECT d.kind, d.subject_id, d.discriminator, d.answer_status, \
             d.answer_description, d.fingerprint, e.fields AS first_fields \
             FROM json_each(?2) AS wanted CROSS JOIN callback_decisions d \
             ON d.merchant_id = ?1 AND d.kind = wanted.value ->> 'kind' \
             AND d.subject_id = wanted.value ->> 'subject_id' \
             AND d.discriminator = wanted.value ->> 'discriminator' \
             LEFT JOIN events e ON e.id = d.event_id"
        }
    }
}

impl DecisionRow {
    /// Whether this row is stored under `key` (whose merchant was the query's).
    pub fn is_for(&self, key: &IdempotencyKey) -> bool {
        self.kind == key.kind
            && self.subject_id == key.subject_id
            && self.discriminator == key.discriminator
    }

    /// Its answer; `None` when it has none (damaged: a claim is settled in
    /// the transaction that makes it).
    pub fn answer(&self) -> Result<Option<(Status, String)>, StoreError> {
        let Some(answer_status) = &self.answer_status else {
            return Ok(None);
        };
        let description = self
            .answer_description
            .as_deref()
            .map_or_else(String::new, str::to_owned);
        Ok(Some((status(answer_status, Status::parse)?, description)))
    }
}
