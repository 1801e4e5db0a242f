//! The merchant's order rules (`[rules]`): whether a payment for an order may
//! go ahead. A failed rule names itself and explains itself in words a payer
//! can read, because FreedomPay shows `pg_description` to the payer.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

use crate::protocol::Amount;

use super::callback::PaymentNotice;
use super::records::{Order, OrderStatus};

/// The compiled `[rules]` section (compiled from the settings by
/// `Rules::from_settings`, in `config::rules`: the domain does not know the
/// configuration's shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub require_known_order: bool,
    pub amount_must_match: bool,
    pub currency_must_match: bool,
    pub allowed_currencies: Vec<String>,
    pub min_amount: Option<Amount>,
    pub max_amount: Option<Amount>,
    pub reject_expired: bool,
    pub reject_already_paid: bool,
    pub reject_testing_mode: bool,
    /// The zone `pg_payment_date` is read in (`rules.payment_date_utc_offset`).
    pub payment_date_offset: FixedOffset,
}

/// The rule that said no, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// The config key of the rule (or `order_status`, which always applies).
    pub rule: &'static str,
    pub description: String,
}

impl Rules {
    /// `pg_payment_date` as an instant, read at `rules.payment_date_utc_offset`
    /// (FreedomPay does not state the zone). `None` when that local time does
    /// not exist once.
    pub fn payment_date_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        local
            .and_local_timezone(self.payment_date_offset)
            .single()
            .map(|at| at.with_timezone(&Utc))
    }

    /// Checks every rule in a fixed order and returns the first that fails.
    /// Expiry is judged at `paid_at` (when the payer paid, which may be well
    /// before the callback arrives: FreedomPay retries for hours); `None`
    /// leaves it unjudged (a check approved this payment before).
    pub fn check(
        &self,
        notice: &PaymentNotice,
        order: Option<&Order>,
        paid_at: Option<DateTime<Utc>>,
    ) -> Result<(), RuleFailure> {
        let fail = |rule, description: String| Err(RuleFailure { rule, description });
        let id = &notice.order_id;
        if self.reject_testing_mode && notice.testing_mode {
            return fail(
                "reject_testing_mode",
                "Test payments are not accepted".into(),
            );
        }
        let currency = notice.currency.to_ascii_uppercase();
        if !self.allowed_currencies.is_empty() && !self.allowed_currencies.contains(&currency) {
            return fail(
                "allowed_currencies",
                format!("Currency {currency} is not accepted"),
            );
        }
        if let Some(min) = self.min_amount
            && notice.amount < min
        {
            return fail(
                "min_amount",
                format!("Amount {} is below the minimum of {min}", notice.amount),
            );
        }
        if let Some(max) = self.max_amount
            && notice.amount > max
        {
            return fail(
                "max_amount",
                format!("Amount {} is above the maximum of {max}", notice.amount),
            );
        }
        let Some(order) = order else {
            if self.require_known_order {
                return fail("require_known_order", format!("Order {id} is not known"));
            }
            return Ok(());
        };
        match order.status {
            OrderStatus::Paid
                if self.reject_already_paid
                    && order.paid_payment_id.as_deref() != Some(notice.payment_id.as_str()) =>
            {
                return fail("reject_already_paid", format!("Order {id} is already paid"));
            }
            OrderStatus::Cancelled => {
                return fail("order_status", format!("Order {id} is cancelled"));
            }
            // `expired` set by an internal service once `expires_at` passed
            // says no more than `expires_at` itself: a payment made before it
            // (or approved by a check, `paid_at` unset) goes ahead. Without
            // `expires_at` there is no time to judge by, so it is refused.
            OrderStatus::Expired
                if order
                    .expires_at
                    .is_none_or(|expires_at| paid_at.is_some_and(|paid| paid >= expires_at)) =>
            {
                return fail("order_status", format!("Order {id} has expired"));
            }
            OrderStatus::Refunded | OrderStatus::PartiallyRefunded => {
                return fail("order_status", format!("Order {id} has been refunded"));
            }
            _ => {}
        }
        if self.reject_expired
            && let Some(expires_at) = order.expires_at
            && let Some(paid_at) = paid_at
            && expires_at <= paid_at
        {
            return fail("reject_expired", format!("Order {id} has expired"));
        }
        if self.amount_must_match && notice.amount != order.amount {
            return fail(
                "amount_must_match",
                format!(
                    "Amount {} does not match the amount {} of order {id}",
                    notice.amount, order.amount
                ),
            );
        }
        if self.currency_must_match && !currency.eq_ignore_ascii_case(&order.currency) {
            return fail(
                "currency_must_match",
                format!(
                    "Currency {currency} does not match the currency {} of order {id}",
                    order.currency
                ),
            );
        }
        Ok(())
    }
}
