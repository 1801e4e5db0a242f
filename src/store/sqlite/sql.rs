//! The SQLite statements of the write path and of the store's row reads.
//! Rows come in as JSON arrays of named objects, unpacked with `json_each`
//! and `->>` by key name. Every lookup is `json_each(…) CROSS JOIN table`,
//! which in SQLite fixes the wanted keys as the outer loop, so each row is
//! found by its primary key whatever the planner knows of the table (a
//! fresh database has no `sqlite_stat1`: left to choose, the planner scanned
//! the whole `orders` table for every group). Every write is an insert, an
//! upsert arbitrated by a key where a row may exist. A group's transaction
//! begins `IMMEDIATE`, taking SQLite's one write lock up front, which is
//! what serialises writers here: no other locks.

use crate::store::callbacks::path::{PerTable, Statements, Writes};

/// The `strftime` of a timestamp as every SQLite row stores it.
macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
}

/// Rows of one merchant by id (`?2`, a JSON array), each by its primary key.
macro_rules! by_id {
    ($columns:literal, $table:literal, $id:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM json_each(?2) AS wanted CROSS JOIN ",
            $table,
            " AS found ON found.merchant_id = ?1 AND found.",
            $id,
            " = wanted.value"
        )
    };
}

/// `value ->> 'name'` for each column written (the JSON object's field of
/// that name), then the time of now for the row's last column.
macro_rules! fields {
    ($($name:literal),+) => {
        concat!("SELECT ", $("value ->> '", $name, "', ",)+ now!(), " FROM json_each(?1)")
    };
}

pub const STATEMENTS: Statements = Statements {
    begin: "BEGIN IMMEDIATE",
    lock: None,
    decisions: "SELECT d.kind, d.subject_id, d.discriminator, d.answer_status, \
         d.answer_description, d.fingerprint, e.fields AS first_fields \
         FROM json_each(?2) AS wanted CROSS JOIN callback_decisions d \
         ON d.merchant_id = ?1 AND d.kind = wanted.value ->> 'kind' \
         AND d.subject_id = wanted.value ->> 'subject_id' \
         AND d.discriminator = wanted.value ->> 'discriminator' \
         LEFT JOIN events e ON e.id = d.event_id",
    payments: by_id!(
        "merchant_id, payment_id, order_id, amount, currency, status, captured, \
         testing_mode, card_mask, failure_code, failure_description, needs_refund, refunded_amount",
        "payments",
        "payment_id"
    ),
    orders: by_id!(
        "order_id, amount, currency, status, expires_at, paid_payment_id",
        "orders",
        "order_id"
    ),
    payouts: by_id!(
        "merchant_id, order_id, payment_id, status, amount, card_mask",
        "payouts",
        "order_id"
    ),
    writes: Writes::PerTable(PerTable {
        insert_events: "INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, \
         answer_status, answer_description, duplicate, signature_variant, key_label, conflict, flag) \
         SELECT value ->> 'merchant_id', value ->> 'kind', value ->> 'order_id', \
         value ->> 'payment_id', value ->> 'fields', value ->> 'answer_status', \
         value ->> 'answer_description', value ->> 'duplicate', value ->> 'signature_variant', \
         value ->> 'key_label', value ->> 'conflict', value ->> 'flag' \
         FROM json_each(?1) ORDER BY key RETURNING id",
        upsert_payments: concat!(
            "INSERT INTO payments (merchant_id, payment_id, order_id, amount, currency, status, \
         captured, testing_mode, card_mask, failure_code, failure_description, needs_refund, \
         refunded_amount, updated_at) ",
            fields!(
                "merchant_id",
                "payment_id",
                "order_id",
                "amount",
                "currency",
                "status",
                "captured",
                "testing_mode",
                "card_mask",
                "failure_code",
                "failure_description",
                "needs_refund",
                "refunded_amount"
            ),
            " WHERE true ON CONFLICT (merchant_id, payment_id) DO UPDATE SET order_id = excluded.order_id, \
         amount = excluded.amount, currency = excluded.currency, status = excluded.status, \
         captured = excluded.captured, testing_mode = excluded.testing_mode, \
         card_mask = excluded.card_mask, failure_code = excluded.failure_code, \
         failure_description = excluded.failure_description, needs_refund = excluded.needs_refund, \
         refunded_amount = excluded.refunded_amount, updated_at = ",
            now!()
        ),
        // The order is there (read under the write lock): the insert only names
        // the key, and only its status moves.
        update_orders: concat!(
            "INSERT INTO orders (merchant_id, order_id, amount, currency, status, paid_payment_id, \
         updated_at) ",
            fields!(
                "merchant_id",
                "order_id",
                "amount",
                "currency",
                "status",
                "paid_payment_id"
            ),
            " WHERE true ON CONFLICT (merchant_id, order_id) DO UPDATE SET status = excluded.status, \
         paid_payment_id = excluded.paid_payment_id, updated_at = excluded.updated_at"
        ),
        upsert_payouts: concat!(
            "INSERT INTO payouts (merchant_id, order_id, payment_id, status, amount, card_mask, updated_at) ",
            fields!(
                "merchant_id",
                "order_id",
                "payment_id",
                "status",
                "amount",
                "card_mask"
            ),
            " WHERE true ON CONFLICT (merchant_id, order_id) DO UPDATE SET \
         payment_id = excluded.payment_id, status = excluded.status, amount = excluded.amount, \
         card_mask = excluded.card_mask, updated_at = ",
            now!()
        ),
        insert_decisions: concat!(
            "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, \
         fingerprint, answer_status, answer_description, event_id, repeats, created_at) ",
            fields!(
                "merchant_id",
                "kind",
                "subject_id",
                "discriminator",
                "fingerprint",
                "answer_status",
                "answer_description",
                "event_id",
                "repeats"
            )
        ),
        add_repeats: concat!(
            "INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, repeats, \
         created_at) ",
            fields!(
                "merchant_id",
                "kind",
                "subject_id",
                "discriminator",
                "repeats"
            ),
            " WHERE true ON CONFLICT (merchant_id, kind, subject_id, discriminator) \
         DO UPDATE SET repeats = callback_decisions.repeats + excluded.repeats"
        ),
        // A finished query of the same subject is opened again: this is a new
        // question about it. An open one is only brought forward, never put off.
        open_confirms: "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, next_attempt_at) \
         SELECT value ->> 'merchant_id', value ->> 'task', value ->> 'subject_id', 'confirm', \
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (value ->> 'due_in_secs') || ' seconds') \
         FROM json_each(?1) WHERE true \
         ON CONFLICT (merchant_id, task, subject_id, task_key) DO UPDATE SET state = 'open', \
         attempts = CASE WHEN outbound_tasks.state <> 'open' THEN 0 ELSE outbound_tasks.attempts END, \
         last_error = CASE WHEN outbound_tasks.state <> 'open' THEN NULL ELSE outbound_tasks.last_error END, \
         next_attempt_at = CASE WHEN outbound_tasks.state <> 'open' THEN excluded.next_attempt_at \
           ELSE min(outbound_tasks.next_attempt_at, excluded.next_attempt_at) END, \
         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    }),
};

/// An order as internal services insert it (tests, benchmarks, demos).
pub(crate) const INSERT_ORDER: &str = "INSERT INTO orders (merchant_id, order_id, amount, currency, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
