//! `payouts`: one row per payout, inserted in `process` when the service
//! asks FreedomPay for it (`payout`), then written by the write path (an
//! upsert of the whole row) as its notifications arrive; read by it (locked,
//! by order id), by `history` and by the console.

use serde::Serialize;

use super::{
    Column, Dialect, Insert, OnConflict, ShownAmounts, amount, canonical_opt, money, plain, status,
};
use crate::domain::{Payout, PayoutStatus};
use crate::store::StoreError;

/// Every column the service reads and writes, in one place.
pub const COLUMNS: &[Column] = &[
    plain("merchant_id"),
    plain("order_id"),
    plain("payment_id"),
    plain("status"),
    money("amount"),
    plain("card_mask"),
];

/// A `payouts` row (money as text).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct PayoutRow {
    pub merchant_id: String,
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: String,
    pub amount: Option<String>,
    pub card_mask: Option<String>,
}

/// The whole row, every column but the key updated on conflict.
pub const UPSERT: Insert = Insert {
    table: "payouts",
    columns: COLUMNS,
    key: &["merchant_id", "order_id"],
    on_conflict: OnConflict::UpdateAll,
    touch: true,
};

/// The write path's lookup: rows of merchant `$1` by the order ids of the
/// JSON array `$2`, locked.
pub fn lock_by_id(d: Dialect) -> String {
    d.lock_by_id("payouts", COLUMNS, "order_id")
}

/// Rows with their times where `filter` (in terms of `p.`) holds.
pub fn stored_where(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT {}, p.created_at, p.updated_at FROM payouts AS p WHERE {filter}",
        d.select("p", COLUMNS)
    )
}

/// A payout about to be requested (`$1` merchant, `$2` order id, `$3` the
/// amount), unless the order id is taken.
pub fn insert_requested(d: Dialect) -> String {
    let amount = match d {
        Dialect::Postgres => "$3::text::numeric",
        Dialect::Sqlite => "?3",
    };
    format!(
        "INSERT INTO payouts (merchant_id, order_id, status, amount) \
         VALUES ({}, {}, 'process', {amount}) ON CONFLICT DO NOTHING",
        d.param(1),
        d.param(2)
    )
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

impl ShownAmounts for PayoutRow {
    fn canonical_amounts(&mut self) -> Vec<&'static str> {
        let mut damaged = Vec::new();
        canonical_opt(&mut self.amount, "amount", &mut damaged);
        damaged
    }
}
