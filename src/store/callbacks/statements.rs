//! The write path's SQL, made once per backend from the tables' own column
//! lists and statements (`store::tables`): which reads a group makes, and
//! how its writes are put together, PostgreSQL's in one statement, SQLite's
//! one a table.

use std::sync::LazyLock;

use crate::store::tables::{
    Dialect, callback_decisions, events, orders, outbound_tasks, payments, payouts,
    webhook_deliveries, webhook_messages,
};

/// The SQL of one backend. Parameters: `$1` (`?1`) the merchant and `$2`
/// (`?2`) a JSON array of ids or keys for reads; `$1` a JSON array of named
/// row objects (`store::tables`) for writes.
#[derive(Debug)]
pub struct Statements {
    pub begin: &'static str,
    /// Takes the group's locks and draws its event ids, in one statement.
    pub lock_and_draw: LockAndDraw,
    pub decisions: &'static str,
    pub payments: String,
    pub orders: String,
    pub payouts: String,
    pub writes: Writes,
}

/// How a group takes its locks and draws one event id for each callback
/// (in increasing order, after the locks: so the ids of one subject's
/// events follow their commit order).
#[derive(Debug)]
pub enum LockAndDraw {
    /// PostgreSQL: takes the advisory locks named by `$1` (a JSON array,
    /// sorted, so that no two groups or instances deadlock) and draws `$2`
    /// ids from the events' sequence.
    Locks(String),
    /// SQLite: `BEGIN IMMEDIATE` took the one write lock; draws `?1` ids.
    Draw(&'static str),
}

/// How a backend writes a group's changes.
#[derive(Debug)]
pub enum Writes {
    /// One statement for all of them (PostgreSQL, data-modifying `WITH`):
    /// `$1` to `$9` the events, payments, orders, payouts, decisions,
    /// redirect repeats, status queries, outbox messages and deliveries; each event is announced on
    /// `freedompay_events` with its id (delivered to listeners at commit).
    Together(String),
    /// One statement a table, events first (SQLite, which has no
    /// data-modifying `WITH`; its statements cost no network round trip).
    PerTable(PerTable),
}

/// The per-table writes, each of the rows of one JSON array (`?1`).
#[derive(Debug)]
pub struct PerTable {
    pub insert_events: String,
    pub upsert_payments: String,
    pub update_orders: String,
    pub upsert_payouts: String,
    pub insert_decisions: String,
    pub add_repeats: String,
    pub open_confirms: String,
    pub insert_messages: String,
    pub insert_deliveries: String,
}

/// PostgreSQL's write path.
pub static POSTGRES: LazyLock<Statements> = LazyLock::new(|| Statements::of(Dialect::Postgres));

/// SQLite's write path.
pub static SQLITE: LazyLock<Statements> = LazyLock::new(|| Statements::of(Dialect::Sqlite));

impl Statements {
    fn of(d: Dialect) -> Statements {
        let writes = match d {
            // Every insert is arbitrated by a key, so no part of it has a
            // plan to choose. A key claimed meanwhile by another instance
            // fails the statement (unique violation), and the group is
            // retried one by one, finding it stored.
            Dialect::Postgres => Writes::Together(format!(
                "WITH inserted AS ({} RETURNING id), paid AS ({}), ordered AS ({}), paid_out AS ({}), \
                 decided AS ({}), repeated AS ({}), asked AS ({}), told AS ({}), sending AS ({}) \
                 SELECT count(pg_notify('freedompay_events', id::text)) AS announced FROM inserted",
                d.insert(&events::INSERT, 1),
                d.insert(&payments::UPSERT, 2),
                d.insert(&orders::UPDATE_STATUS, 3),
                d.insert(&payouts::UPSERT, 4),
                d.insert(&callback_decisions::INSERT, 5),
                d.insert(&callback_decisions::ADD_REPEATS, 6),
                outbound_tasks::open_confirms(d, 7),
                d.insert(&webhook_messages::INSERT, 8),
                d.insert(&webhook_deliveries::INSERT, 9),
            )),
            Dialect::Sqlite => Writes::PerTable(PerTable {
                insert_events: d.insert(&events::INSERT, 1),
                upsert_payments: d.insert(&payments::UPSERT, 1),
                update_orders: d.insert(&orders::UPDATE_STATUS, 1),
                upsert_payouts: d.insert(&payouts::UPSERT, 1),
                insert_decisions: d.insert(&callback_decisions::INSERT, 1),
                add_repeats: d.insert(&callback_decisions::ADD_REPEATS, 1),
                open_confirms: outbound_tasks::open_confirms(d, 1),
                insert_messages: d.insert(&webhook_messages::INSERT, 1),
                insert_deliveries: d.insert(&webhook_deliveries::INSERT, 1),
            }),
        };
        Statements {
            begin: match d {
                Dialect::Postgres => "BEGIN",
                // The one write lock, taken up front: what serialises
                // writers on SQLite, no other locks.
                Dialect::Sqlite => "BEGIN IMMEDIATE",
            },
            lock_and_draw: match d {
                // The same lock a subject's callbacks have always taken.
                // The ids are drawn in the locks' row's join, so after them.
                Dialect::Postgres => LockAndDraw::Locks(format!(
                    "WITH locked AS (SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) AS locks \
                     FROM (SELECT jsonb_array_elements_text($1::jsonb) AS name ORDER BY 1) AS subjects) \
                     SELECT {} AS id FROM locked CROSS JOIN generate_series(1, $2::int) \
                     WHERE locked.locks >= 0 ORDER BY 1",
                    events::NEXT_ID
                )),
                Dialect::Sqlite => LockAndDraw::Draw(events::SQLITE_NEXT_IDS),
            },
            decisions: callback_decisions::by_key(d),
            payments: payments::lock_by_id(d),
            orders: orders::lock_by_id(d),
            payouts: payouts::lock_by_id(d),
            writes,
        }
    }

    /// Every statement that writes, one string each (their column lists
    /// are tested against the migrated tables).
    pub fn write_statements(&self) -> Vec<&str> {
        match &self.writes {
            Writes::Together(sql) => vec![sql],
            Writes::PerTable(w) => vec![
                &w.insert_events,
                &w.upsert_payments,
                &w.update_orders,
                &w.upsert_payouts,
                &w.insert_decisions,
                &w.add_repeats,
                &w.open_confirms,
                &w.insert_messages,
                &w.insert_deliveries,
            ],
        }
    }
}
