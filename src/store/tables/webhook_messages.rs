//! `webhook_messages`: the outbox of messages for the merchant's own
//! services, written by the write path in the transaction of the change each
//! reports (`webhooks::message` decides which messages a change makes), read
//! by the dispatcher and by operators. Never changed once written.

use serde::Serialize;

use super::{Column, Insert, OnConflict, plain};

/// Every column the write path writes, in one place (`created_at` is the
/// database's).
pub const COLUMNS: &[Column] = &[
    plain("id"),
    plain("merchant_id"),
    plain("type"),
    plain("event_id"),
    plain("ordering_key"),
    plain("position"),
    // JSON text kept as it is (not JSON on PostgreSQL, whose JSONB would
    // reorder the keys): what is sent, byte for byte.
    plain("body"),
];

/// A new message, as the write path makes it.
#[derive(Debug, Serialize)]
pub struct NewMessage {
    /// The `webhook-id`: `msg_` and a UUIDv7.
    pub id: String,
    pub merchant_id: String,
    #[serde(rename = "type")]
    pub message_type: &'static str,
    /// The event that made the change.
    pub event_id: i64,
    /// Its subject: the messages of one subject go to an endpoint in commit
    /// order, (`event_id`, `position`).
    pub ordering_key: String,
    /// Its place among the messages of its event.
    pub position: i32,
    /// The JSON body, as text: the bytes every delivery sends.
    pub body: String,
}

/// The write path's insert; an id is new by construction, so a clash fails.
pub const INSERT: Insert = Insert {
    table: "webhook_messages",
    columns: COLUMNS,
    key: &["id"],
    on_conflict: OnConflict::Fail,
    touch: false,
};
