//! `webhook_attempts`: one row per HTTP attempt of a delivery that did not
//! deliver it (when, how it ended, the answer's status and first KiB),
//! written by the dispatcher with the delivery's new state, read by
//! operators (`webhooks show`). The attempt that delivers is kept on the
//! delivery itself (`delivered_at`, `last_status`, `last_latency_ms`,
//! `last_excerpt`), and copied here when the delivery is replayed.

use super::{Column, plain};

/// Every column the dispatcher writes (`id` and `attempted_at` are the
/// database's).
pub const COLUMNS: &[Column] = &[
    plain("message_id"),
    plain("endpoint"),
    plain("outcome"),
    plain("status"),
    plain("latency_ms"),
    plain("excerpt"),
    plain("error"),
];
