//! `payments`: one row per payment FreedomPay reported, written only by the
//! write path (an upsert of the whole row), read by it (locked, by id), by
//! `history` and by the console.

use serde::Serialize;

use super::{
    Column, Dialect, Insert, OnConflict, ShownAmounts, amount, canonical, money, plain, status,
};
use crate::domain::{Payment, PaymentStatus};
use crate::store::StoreError;

/// Every column the service reads and writes, in one place: each statement
/// below is made from this list.
pub const COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("payment_id"),
    plain("order_id"),
    money("amount"),
    plain("currency"),
    plain("status"),
    plain("captured"),
    plain("testing_mode"),
    plain("card_mask"),
    plain("failure_code"),
    plain("failure_description"),
    plain("needs_refund"),
    money("refunded_amount"),
];

/// A `payments` row (money as text).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, Serialize)]
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

/// The whole row, every column but the key updated on conflict.
pub const UPSERT: Insert = Insert {
    table: "payments",
    columns: COLUMNS,
    key: &["merchant_id", "payment_id"],
    on_conflict: OnConflict::UpdateAll,
    touch: true,
};

/// The write path's lookup: rows of merchant `$1` by the payment ids of
/// the JSON array `$2`, locked.
pub fn lock_by_id(d: Dialect) -> String {
    d.lock_by_id("payments", COLUMNS, "payment_id")
}

/// Rows with their times, of merchant `$1`, where `filter` (in terms of
/// `p.`, parameters from `$2`) holds.
pub fn stored_where(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT {}, p.created_at, p.updated_at FROM payments AS p WHERE {filter}",
        d.select("p", COLUMNS)
    )
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

impl ShownAmounts for PaymentRow {
    fn canonical_amounts(&mut self) -> Vec<&'static str> {
        let mut damaged = Vec::new();
        canonical(&mut self.amount, "amount", &mut damaged);
        canonical(&mut self.refunded_amount, "refunded_amount", &mut damaged);
        damaged
    }
}
