//! `webhook_deliveries`: one row per outbox message and endpoint that wants
//! it, written by the write path with its message; the dispatcher claims,
//! sends and settles them (pending → delivered, or dead after the last
//! failed attempt), one subject's in commit order per endpoint. A delivery
//! keeps its last attempt (`last_status`, `last_error`, `last_latency_ms`,
//! `last_excerpt`): the attempt that delivered it is recorded only here.

use serde::Serialize;

use super::{Column, Insert, OnConflict, plain};

/// The columns the write path writes (the state and the times start at
/// their defaults: pending, due now).
pub const COLUMNS: &[Column] = &[
    plain("message_id"),
    plain("endpoint"),
    plain("ordering_key"),
    plain("event_id"),
    plain("position"),
];

/// A new delivery, as the write path makes it.
#[derive(Debug, Serialize)]
pub struct NewDelivery {
    pub message_id: String,
    pub endpoint: String,
    /// The message's subject and place, copied so that the dispatcher finds
    /// the head of each endpoint's queue per subject on one index.
    pub ordering_key: String,
    pub event_id: i64,
    pub position: i32,
}

/// The write path's insert.
pub const INSERT: Insert = Insert {
    table: "webhook_deliveries",
    columns: COLUMNS,
    key: &["message_id", "endpoint"],
    on_conflict: OnConflict::Fail,
    touch: false,
};
