//! Read-only queries for operators, over the tables' own rows
//! (`store::tables`): the history of one order ([`history`]) as the
//! `history` command and the console's timeline show it, the console's
//! overview, search and event list ([`console`]), the webhook outbox's
//! messages of a history's events and the console's Webhooks page
//! ([`webhooks`]), and the webhook messages in creation order that
//! `webhooks listen` follows ([`messages`]). Nothing here writes, and
//! everything here except [`messages`] (which says why) reads through
//! `database.read_url` when it is set.
//!
//! How the rows are shown (summaries, the key fields of an event) is the
//! operator's side (`crate::operator`), not the store's.

pub mod console;
pub mod history;
pub mod messages;
pub mod webhooks;

/// Runs `$body` with the read pool and the [`Dialect`](super::tables::Dialect)
/// of the backend in use.
macro_rules! on_read_backend {
    ($store:expr, |$pool:ident, $d:ident| $body:expr) => {
        with_read_dialect!(
            $store,
            $crate::store::tables::Dialect::Postgres,
            $crate::store::tables::Dialect::Sqlite,
            |$pool, $d| $body
        )
    };
}
pub(crate) use on_read_backend;
