//! Named rows: the shape of each table as the store reads and writes it, one
//! struct per table with fields named like the columns, and their conversion
//! to and from domain values. Rows are read with `sqlx::FromRow` (by column
//! name) and written as JSON arrays of objects (by key name), so no statement
//! depends on the order of its columns.
//!
//! Money is text in these rows: PostgreSQL reads `amount::text`, SQLite
//! stores canonical decimal text, and a stored amount is parsed by the same
//! strict rule as an incoming one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::StoreError;
use crate::domain::{
    IdempotencyKey, Order, OrderStatus, Payment, PaymentStatus, Payout, PayoutStatus,
};
use crate::protocol::{Amount, Status};
use crate::untrusted::Untrusted;

/// A value that may fail to decode without failing its whole query: an
/// order row written malformed by an internal service must not take the
/// callbacks of other orders down with it. Any stored type is accepted by
/// the query; a value whose own type is not `T`'s (SQLite keeps a BLOB in
/// a TEXT column as a BLOB) or that does not decode is `Err(why)`.
#[derive(Debug)]
pub struct Lenient<T>(pub Result<T, String>);

impl<DB: sqlx::Database, T: sqlx::Type<DB>> sqlx::Type<DB> for Lenient<T> {
    fn type_info() -> DB::TypeInfo {
        T::type_info()
    }

    /// Every column type: the check is made per value, in `decode`.
    fn compatible(_: &DB::TypeInfo) -> bool {
        true
    }
}

impl<'r, DB: sqlx::Database, T: sqlx::Type<DB> + sqlx::Decode<'r, DB>> sqlx::Decode<'r, DB>
    for Lenient<T>
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::{TypeInfo, ValueRef};
        let stored = value.type_info();
        if !value.is_null() && !T::compatible(&stored) {
            return Ok(Lenient(Err(format!("stored as {}", stored.name()))));
        }
        Ok(Lenient(T::decode(value).map_err(|e| e.to_string())))
    }
}

impl Lenient<String> {
    /// The text, or why there is none, as damaged data.
    fn text(self, column: &str) -> Result<String, StoreError> {
        self.0
            .map_err(|why| StoreError::Corrupt(format!("{column}: {why}")))
    }
}

/// `orders`, as read. Written only through [`OrderStatusRow`].
#[derive(Debug, sqlx::FromRow)]
pub struct OrderRow {
    pub order_id: String,
    pub amount: Lenient<String>,
    pub currency: Lenient<String>,
    pub status: Lenient<String>,
    pub expires_at: Option<Lenient<DateTime<Utc>>>,
    pub paid_payment_id: Option<Lenient<String>>,
}

/// The columns of `orders` a callback changes, with the ones an insert
/// needs (the row is always there: it was read and locked).
#[derive(Debug, Serialize)]
pub struct OrderStatusRow<'a> {
    pub merchant_id: &'a str,
    pub order_id: &'a str,
    pub amount: String,
    pub currency: &'a str,
    pub status: &'static str,
    pub paid_payment_id: Option<&'a str>,
}

/// `payments`, as read and written.
#[derive(Debug, sqlx::FromRow, Serialize)]
pub struct PaymentRow {
    pub merchant_id: String,
    pub payment_id: String,
    pub order_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub captured: Option<bool>,
    pub testing_mode: bool,
    pub card_mask: Option<String>,
    pub failure_code: Option<String>,
    pub failure_description: Option<String>,
    pub needs_refund: bool,
    pub refunded_amount: String,
}

/// `payouts`, as read and written.
#[derive(Debug, sqlx::FromRow, Serialize)]
pub struct PayoutRow {
    pub merchant_id: String,
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: String,
    pub amount: Option<String>,
    pub card_mask: Option<String>,
}

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
    /// The index of its event among the group's (PostgreSQL maps it to the
    /// event's id inside the write).
    pub event: usize,
    /// Its event's id, where known before the write (SQLite).
    pub event_id: Option<i64>,
    pub repeats: i32,
}

/// A new `events` row.
#[derive(Debug, Serialize)]
pub struct EventRow {
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

/// A status query to open (or bring forward): `outbound_tasks` with task
/// key `confirm`.
#[derive(Debug, Serialize)]
pub struct ConfirmRow {
    pub merchant_id: String,
    pub task: &'static str,
    pub subject_id: String,
    pub due_in_secs: i64,
}

/// The returned id of an inserted row.
#[derive(Debug, sqlx::FromRow)]
pub struct IdRow {
    pub id: i64,
}

/// Reads a stored amount; anything unparsable is corrupt data, not a zero.
/// PostgreSQL may render `NUMERIC` with trailing zeros beyond two decimals
/// (`7000.000`), so those are trimmed first.
pub fn amount(text: &str) -> Result<Amount, StoreError> {
    let trimmed = match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => text.to_owned(),
    };
    trimmed
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("amount {text:?}: {e}")))
}

/// Reads a stored status word with the given parser.
fn status<T>(text: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown status {text:?}")))
}

impl OrderRow {
    pub fn into_order(self) -> Result<Order, StoreError> {
        let expires_at = match self.expires_at {
            Some(Lenient(Err(why))) => {
                return Err(StoreError::Corrupt(format!("expires_at: {why}")));
            }
            Some(Lenient(Ok(at))) => Some(at),
            None => None,
        };
        Ok(Order {
            order_id: self.order_id,
            amount: amount(&self.amount.text("amount")?)?,
            currency: self.currency.text("currency")?,
            status: status(&self.status.text("status")?, OrderStatus::parse)?,
            expires_at,
            paid_payment_id: self
                .paid_payment_id
                .map(|id| id.text("paid_payment_id"))
                .transpose()?,
        })
    }
}

impl<'a> OrderStatusRow<'a> {
    pub fn of(merchant_id: &'a str, order: &'a Order) -> Self {
        OrderStatusRow {
            merchant_id,
            order_id: &order.order_id,
            amount: order.amount.canonical(),
            currency: &order.currency,
            status: order.status.as_str(),
            paid_payment_id: order.paid_payment_id.as_deref(),
        }
    }
}

impl PaymentRow {
    pub fn into_payment(self) -> Result<Payment, StoreError> {
        Ok(Payment {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: amount(&self.amount)?,
            currency: self.currency,
            status: status(&self.status, PaymentStatus::parse)?,
            captured: self.captured,
            testing_mode: self.testing_mode,
            card_mask: self.card_mask,
            failure_code: self.failure_code,
            failure_description: self.failure_description,
            needs_refund: self.needs_refund,
            refunded_amount: amount(&self.refunded_amount)?,
        })
    }

    pub fn of(merchant_id: &str, p: &Payment) -> Self {
        PaymentRow {
            merchant_id: merchant_id.to_owned(),
            payment_id: p.payment_id.clone(),
            order_id: p.order_id.clone(),
            amount: p.amount.canonical(),
            currency: p.currency.clone(),
            status: p.status.as_str().to_owned(),
            captured: p.captured,
            testing_mode: p.testing_mode,
            card_mask: p.card_mask.clone(),
            failure_code: p.failure_code.clone(),
            failure_description: p.failure_description.clone(),
            needs_refund: p.needs_refund,
            refunded_amount: p.refunded_amount.canonical(),
        }
    }
}

impl PayoutRow {
    pub fn into_payout(self) -> Result<Payout, StoreError> {
        Ok(Payout {
            order_id: self.order_id,
            payment_id: self.payment_id,
            status: status(&self.status, PayoutStatus::parse)?,
            amount: self.amount.as_deref().map(amount).transpose()?,
            card_mask: self.card_mask,
        })
    }

    pub fn of(merchant_id: &str, p: &Payout) -> Self {
        PayoutRow {
            merchant_id: merchant_id.to_owned(),
            order_id: p.order_id.clone(),
            payment_id: p.payment_id.clone(),
            status: p.status.as_str().to_owned(),
            amount: p.amount.map(|a| a.canonical()),
            card_mask: p.card_mask.clone(),
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

/// Whether `error` means a row is there but holds something unusable (as
/// opposed to the database failing).
fn is_bad_row(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Corrupt(_)
            | StoreError::Database(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_))
    )
}

/// An order row that cannot be read: `Ok(why)` (logged once per order and
/// process), so that its callbacks are answered by rule instead of failing
/// until FreedomPay gives up. Any other error stays an error.
pub fn order_defect(
    merchant_id: &str,
    order_id: &str,
    error: StoreError,
) -> Result<String, StoreError> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static LOGGED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    if !is_bad_row(&error) {
        return Err(error);
    }
    let reason = error.to_string();
    let first = LOGGED
        .get_or_init(Default::default)
        .lock()
        .map(|mut seen| seen.insert((merchant_id.to_owned(), order_id.to_owned())))
        .unwrap_or(true);
    if first {
        tracing::error!(
            merchant_id = %Untrusted(merchant_id),
            order_id = %Untrusted(order_id),
            reason = %Untrusted(&reason),
            "the order row cannot be read; its callbacks are answered by rule and flagged until it is fixed"
        );
    }
    Ok(reason)
}
