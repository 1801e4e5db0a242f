//! The PostgreSQL statements of the write path and of the store's row reads.
//!
//! Every row is looked up by its whole primary key, one key at a time
//! (`CROSS JOIN LATERAL (… LIMIT 1)` over the wanted keys), so the only plan
//! a lookup can have is an index scan of the primary key: nothing depends on
//! table statistics, on a young table or an old one
//! (`tests/it/storage_plans.rs` checks custom and generic plans on an empty
//! database). A group's writes are one statement of inserts, each
//! arbitrated by a primary or unique key, which have no plan to choose.
//! Rows come in as JSON arrays of named objects, read by
//! `jsonb_populate_recordset` with the table's own row type.

use crate::store::callbacks::path::{Statements, Writes};

/// The payments columns as read (money as text).
macro_rules! payment_columns {
    () => {
        "merchant_id, payment_id, order_id, amount::text AS amount, currency, status, captured, \
         testing_mode, card_mask, failure_code, failure_description, needs_refund, \
         refunded_amount::text AS refunded_amount"
    };
}

/// The payments columns as written.
macro_rules! payment_fields {
    () => {
        "merchant_id, payment_id, order_id, amount, currency, status, captured, testing_mode, \
         card_mask, failure_code, failure_description, needs_refund, refunded_amount"
    };
}

macro_rules! order_columns {
    () => {
        "order_id, amount::text AS amount, currency, status, expires_at, paid_payment_id"
    };
}

macro_rules! payout_columns {
    () => {
        "merchant_id, order_id, payment_id, status, amount::text AS amount, card_mask"
    };
}

macro_rules! event_fields {
    () => {
        "merchant_id, kind, order_id, payment_id, fields, answer_status, answer_description, \
         duplicate, signature_variant, key_label, conflict, flag"
    };
}

/// Rows of one merchant by id (`$2`, a JSON array), each by its primary key,
/// locked until commit inside a transaction.
macro_rules! by_id {
    ($columns:expr, $table:literal, $id:literal) => {
        concat!(
            "SELECT found.* FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
             CROSS JOIN LATERAL (SELECT ",
            $columns,
            " FROM ",
            $table,
            " WHERE merchant_id = $1 AND ",
            $id,
            " = wanted.id LIMIT 1 FOR UPDATE) AS found"
        )
    };
}

pub const STATEMENTS: Statements = Statements {
    begin: "BEGIN",
    // The same lock a subject's callbacks have always taken, in sorted order
    // (the array is sorted), so that no two groups or instances deadlock.
    lock: Some(
        "SELECT count(pg_advisory_xact_lock(hashtextextended(name, 0))) \
         FROM (SELECT jsonb_array_elements_text($1::jsonb) AS name ORDER BY 1) AS subjects",
    ),
    decisions: "SELECT found.* FROM jsonb_to_recordset($2::jsonb) \
         AS wanted(kind text, subject_id text, discriminator text) \
         CROSS JOIN LATERAL (SELECT d.kind, d.subject_id, d.discriminator, d.answer_status, \
         d.answer_description, d.fingerprint, e.fields::text AS first_fields \
         FROM callback_decisions d LEFT JOIN events e ON e.id = d.event_id \
         WHERE d.merchant_id = $1 AND d.kind = wanted.kind AND d.subject_id = wanted.subject_id \
         AND d.discriminator = wanted.discriminator LIMIT 1) AS found",
    payments: by_id!(payment_columns!(), "payments", "payment_id"),
    orders: by_id!(order_columns!(), "orders", "order_id"),
    payouts: by_id!(payout_columns!(), "payouts", "order_id"),
    // Every write of the group in one statement. Event ids are drawn from
    // the sequence in event order and mapped to the decisions by index;
    // each event is announced on `freedompay_events` with its id (delivered
    // to listeners at commit). A key claimed meanwhile by another instance
    // fails the statement (unique violation), and the group is retried one
    // by one, finding it stored. Every insert is arbitrated by a key, so no
    // part of it has a plan to choose.
    writes: Writes::Together(concat!(
        "WITH event AS MATERIALIZED (SELECT nextval('events_id_seq') AS new_id, r.* \
         FROM jsonb_populate_recordset(NULL::events, $1::jsonb) WITH ORDINALITY AS r), \
         inserted AS (INSERT INTO events (id, ",
        event_fields!(),
        ") SELECT new_id, ",
        event_fields!(),
        " FROM event), \
         paid AS (INSERT INTO payments (",
        payment_fields!(),
        ") SELECT ",
        payment_fields!(),
        " FROM jsonb_populate_recordset(NULL::payments, $2::jsonb) \
         ON CONFLICT (merchant_id, payment_id) DO UPDATE SET order_id = EXCLUDED.order_id, \
         amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status, \
         captured = EXCLUDED.captured, testing_mode = EXCLUDED.testing_mode, \
         card_mask = EXCLUDED.card_mask, failure_code = EXCLUDED.failure_code, \
         failure_description = EXCLUDED.failure_description, needs_refund = EXCLUDED.needs_refund, \
         refunded_amount = EXCLUDED.refunded_amount, updated_at = now()), \
         ordered AS (INSERT INTO orders (merchant_id, order_id, amount, currency, status, paid_payment_id) \
         SELECT merchant_id, order_id, amount, currency, status, paid_payment_id \
         FROM jsonb_populate_recordset(NULL::orders, $3::jsonb) \
         ON CONFLICT (merchant_id, order_id) DO UPDATE SET status = EXCLUDED.status, \
         paid_payment_id = EXCLUDED.paid_payment_id, updated_at = now()), \
         paid_out AS (INSERT INTO payouts (merchant_id, order_id, payment_id, status, amount, card_mask) \
         SELECT merchant_id, order_id, payment_id, status, amount, card_mask \
         FROM jsonb_populate_recordset(NULL::payouts, $4::jsonb) \
         ON CONFLICT (merchant_id, order_id) DO UPDATE SET payment_id = EXCLUDED.payment_id, \
         status = EXCLUDED.status, amount = EXCLUDED.amount, card_mask = EXCLUDED.card_mask, \
         updated_at = now()), \
         decided AS (INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, \
         fingerprint, answer_status, answer_description, event_id, repeats) \
         SELECT d.merchant_id, d.kind, d.subject_id, d.discriminator, d.fingerprint, \
         d.answer_status, d.answer_description, event.new_id, d.repeats \
         FROM jsonb_to_recordset($5::jsonb) AS d(merchant_id text, kind text, subject_id text, \
         discriminator text, fingerprint text, answer_status text, answer_description text, \
         event bigint, repeats integer) JOIN event ON event.ordinality = d.event + 1), \
         repeated AS (INSERT INTO callback_decisions (merchant_id, kind, subject_id, discriminator, repeats) \
         SELECT merchant_id, kind, subject_id, discriminator, repeats \
         FROM jsonb_populate_recordset(NULL::callback_decisions, $6::jsonb) \
         ON CONFLICT (merchant_id, kind, subject_id, discriminator) \
         DO UPDATE SET repeats = callback_decisions.repeats + EXCLUDED.repeats), \
         asked AS (INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, next_attempt_at) \
         SELECT merchant_id, task, subject_id, 'confirm', now() + make_interval(secs => due_in_secs) \
         FROM jsonb_to_recordset($7::jsonb) AS r(merchant_id text, task text, subject_id text, due_in_secs bigint) \
         ON CONFLICT (merchant_id, task, subject_id, task_key) DO UPDATE SET state = 'open', \
         attempts = CASE WHEN outbound_tasks.state <> 'open' THEN 0 ELSE outbound_tasks.attempts END, \
         last_error = CASE WHEN outbound_tasks.state <> 'open' THEN NULL ELSE outbound_tasks.last_error END, \
         next_attempt_at = CASE WHEN outbound_tasks.state <> 'open' THEN EXCLUDED.next_attempt_at \
           ELSE LEAST(outbound_tasks.next_attempt_at, EXCLUDED.next_attempt_at) END, \
         updated_at = now()) \
         SELECT new_id AS id, pg_notify('freedompay_events', new_id::text)::text AS announced \
         FROM event ORDER BY ordinality"
    )),
};

/// An order as internal services insert it (tests, benchmarks, demos).
pub(crate) const INSERT_ORDER: &str = "INSERT INTO orders (merchant_id, order_id, amount, currency, expires_at) \
     VALUES ($1, $2, $3::numeric, $4, $5)";
