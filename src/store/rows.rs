//! Rows as both backends return them, and their conversion to domain types.
//! PostgreSQL reads money as `amount::text`, so that one row shape and one
//! conversion serve both backends, and a stored amount is parsed by the same
//! strict rule as an incoming one.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Order, OrderStatus, Payment, PaymentStatus, Payout, PayoutStatus};
use crate::protocol::{Amount, Status};

pub(crate) type OrderRow = (
    String,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
);

pub(crate) type PaymentRow = (
    String,
    String,
    String,
    String,
    String,
    Option<bool>,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    String,
);

/// A stored decision with its key: merchant, kind, subject, discriminator,
/// answer status and description.
pub(crate) type DecisionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

pub(crate) type PayoutRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Reads a stored amount; anything unparsable is corrupt data, not a zero.
/// PostgreSQL may render `NUMERIC` with trailing zeros beyond two decimals
/// (`7000.000`), so those are trimmed first.
pub(crate) fn amount(text: &str) -> Result<Amount, StoreError> {
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

pub(crate) fn order(row: OrderRow) -> Result<Order, StoreError> {
    Ok(Order {
        order_id: row.0,
        amount: amount(&row.1)?,
        currency: row.2,
        status: status(&row.3, OrderStatus::parse)?,
        expires_at: row.4,
        paid_payment_id: row.5,
    })
}

pub(crate) fn payment(row: PaymentRow) -> Result<Payment, StoreError> {
    Ok(Payment {
        payment_id: row.0,
        order_id: row.1,
        amount: amount(&row.2)?,
        currency: row.3,
        status: status(&row.4, PaymentStatus::parse)?,
        captured: row.5,
        testing_mode: row.6,
        card_mask: row.7,
        failure_code: row.8,
        failure_description: row.9,
        needs_refund: row.10,
        refunded_amount: amount(&row.11)?,
    })
}

pub(crate) fn payout(row: PayoutRow) -> Result<Payout, StoreError> {
    Ok(Payout {
        order_id: row.0,
        payment_id: row.1,
        status: status(&row.2, PayoutStatus::parse)?,
        amount: row.3.as_deref().map(amount).transpose()?,
        card_mask: row.4,
    })
}

/// A stored decision: its answer. A claimed key always has one once committed.
pub(crate) fn stored_answer(
    (answer_status, description): (Option<String>, Option<String>),
) -> Result<(Status, String), StoreError> {
    let answer_status = status(answer_status.as_deref().unwrap_or(""), Status::parse)?;
    Ok((answer_status, description.unwrap_or_default()))
}

/// Reads the row keyed by (merchant, id) with `sql` and converts it: the one
/// shape of every single-row read, on either backend, in or out of a transaction.
pub(crate) async fn fetch_keyed<'e, DB, E, R, T>(
    executor: E,
    sql: &'static str,
    merchant_id: &str,
    id: &str,
    convert: fn(R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    R: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let row: Option<R> = sqlx::query_as(sql)
        .bind(merchant_id.to_owned())
        .bind(id.to_owned())
        .fetch_optional(executor)
        .await?;
    row.map(convert).transpose()
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
pub(crate) fn order_defect(
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
            merchant_id,
            order_id,
            reason,
            "the order row cannot be read; its callbacks are answered by rule and flagged until it is fixed"
        );
    }
    Ok(reason)
}
