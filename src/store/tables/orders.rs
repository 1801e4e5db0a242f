//! `orders`: the merchant's orders, inserted by the merchant's internal
//! services (and by `add-order`); the write path reads them (locked, by id)
//! and moves only their status and paid payment. An internal service may
//! write a row this service cannot read: every column but the key is read
//! leniently, so that one damaged order is answered by rule and flagged
//! instead of failing its group.

use serde::Serialize;

use super::{
    Column, Dialect, Insert, Lenient, OnConflict, ShownAmounts, amount, canonical, money, plain,
    status,
};
use crate::domain::{Order, OrderStatus};
use crate::store::StoreError;
use crate::untrusted::Untrusted;

/// Every column the service reads, in one place.
pub const COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("order_id"),
    money("amount"),
    plain("currency"),
    plain("status"),
    plain("expires_at"),
    plain("paid_payment_id"),
];

/// An `orders` row as read (money as text), each value lenient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrderRow {
    pub merchant_id: String,
    pub order_id: String,
    pub amount: Lenient<String>,
    pub currency: Lenient<String>,
    pub status: Lenient<String>,
    pub expires_at: Option<Lenient<chrono::DateTime<chrono::Utc>>>,
    pub paid_payment_id: Option<Lenient<String>>,
}

/// The columns of `orders` a callback writes: the key, what an insert
/// needs (the row is always there: it was read and locked), and the two it
/// changes.
#[derive(Debug, Serialize)]
pub struct OrderStatusRow<'a> {
    pub merchant_id: &'a str,
    pub order_id: &'a str,
    pub amount: String,
    pub currency: &'a str,
    pub status: &'static str,
    pub paid_payment_id: Option<&'a str>,
}

/// [`OrderStatusRow`]'s columns.
pub const STATUS_COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("order_id"),
    money("amount"),
    plain("currency"),
    plain("status"),
    plain("paid_payment_id"),
];

/// A callback's write: only the status and the paid payment move.
pub const UPDATE_STATUS: Insert = Insert {
    table: "orders",
    columns: STATUS_COLUMNS,
    key: &["merchant_id", "order_id"],
    on_conflict: OnConflict::Update(&["status", "paid_payment_id"]),
    touch: true,
};

/// The write path's lookup: rows of merchant `$1` by the order ids of the
/// JSON array `$2`, locked.
pub fn lock_by_id(d: Dialect) -> String {
    d.lock_by_id("orders", COLUMNS, "order_id")
}

/// Rows with their times where `filter` (in terms of `o.`) holds.
pub fn stored_where(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT {}, o.created_at, o.updated_at FROM orders AS o WHERE {filter}",
        d.select("o", COLUMNS)
    )
}

/// An order as internal services insert it (tests, benchmarks, demos).
pub fn insert_one(d: Dialect) -> String {
    let amount = match d {
        Dialect::Postgres => "$3::numeric",
        Dialect::Sqlite => "?3",
    };
    let p = |n| d.param(n);
    format!(
        "INSERT INTO orders (merchant_id, order_id, amount, currency, expires_at) \
         VALUES ({}, {}, {amount}, {}, {})",
        p(1),
        p(2),
        p(4),
        p(5)
    )
}

impl OrderRow {
    pub fn into_order(self) -> Result<Order, StoreError> {
        Ok(Order {
            order_id: self.order_id,
            amount: amount(&self.amount.value("amount")?)?,
            currency: self.currency.value("currency")?,
            status: status(&self.status.value("status")?, OrderStatus::parse)?,
            expires_at: self
                .expires_at
                .map(|at| at.value("expires_at"))
                .transpose()?,
            paid_payment_id: self
                .paid_payment_id
                .map(|id| id.value("paid_payment_id"))
                .transpose()?,
        })
    }
}

impl ShownAmounts for OrderRow {
    fn canonical_amounts(&mut self) -> Vec<&'static str> {
        let mut damaged = Vec::new();
        match &mut self.amount.0 {
            Ok(text) => canonical(text, "amount", &mut damaged),
            Err(_) => damaged.push("amount"),
        }
        damaged
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
