//! The webhook messages in creation order, for `webhooks listen`: the ids
//! of the messages from a given id on (a page at a time), and one message's
//! type and body. Messages are never changed once written, so a message read
//! here is the message every delivery of it sends.
//!
//! Unlike the rest of `reads`, these read the primary (`database.url`), not
//! `database.read_url`: `listen` follows commits as they happen, and a
//! replica's lag would hold them back (or, past `listen`'s look-back, lose
//! them from its view).
//!
//! Creation order is the order of the ids: a message id is `msg_` and a
//! UUIDv7 in lowercase hex (`webhooks::new_message_id`), whose first twelve
//! digits are the Unix milliseconds it was made at, so ids sort by the time
//! they were made and the primary key's index serves the range. That is the
//! time a message was decided in its transaction, not its commit: see
//! `cli::listen` for how the follower allows for the difference.

use crate::store::tables::{Dialect, made};
use crate::store::{Store, StoreError};

/// One message as `listen` forwards it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageForwarded {
    /// The `webhook-id`.
    pub id: String,
    #[sqlx(rename = "type")]
    pub message_type: String,
    /// The JSON body, byte for byte what a delivery sends.
    pub body: String,
}

impl Store {
    /// The ids of the committed messages whose id sorts after `after`, in
    /// creation order, at most `limit` of them.
    pub async fn message_ids_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(with_dialect!(
            self,
            Dialect::Postgres,
            Dialect::Sqlite,
            |pool, d| {
                sqlx::query_scalar(made(format!(
                    "SELECT id FROM webhook_messages WHERE id > {} ORDER BY id LIMIT {}",
                    d.param(1),
                    d.param(2)
                )))
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }
        ))
    }

    /// The message `id`, if it exists.
    pub async fn message_forwarded(
        &self,
        id: &str,
    ) -> Result<Option<MessageForwarded>, StoreError> {
        Ok(with_dialect!(
            self,
            Dialect::Postgres,
            Dialect::Sqlite,
            |pool, d| {
                sqlx::query_as(made(format!(
                    "SELECT id, type, body FROM webhook_messages WHERE id = {}",
                    d.param(1)
                )))
                .bind(id)
                .fetch_optional(pool)
                .await?
            }
        ))
    }
}
