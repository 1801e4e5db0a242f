//! Orders, payments and payouts, and how callbacks move them. Transitions only
//! move forward: a late failure never un-pays an order, and a final payout
//! status is never overwritten by another.

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::protocol::{Amount, Status};

use super::Callback;
use super::callback::{
    CaptureNotice, Detail, PaymentNotice, PayoutNotice, RefundNotice, ResultNotice, ResultOutcome,
};
use super::rules::Rules;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(
    /// `orders.status`.
    OrderStatus {
        Pending = "pending",
        Paid = "paid",
        Failed = "failed",
        Refunded = "refunded",
        PartiallyRefunded = "partially_refunded",
        Expired = "expired",
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// `payments.status`.
    PaymentStatus {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
        Rejected = "rejected",
        Refunded = "refunded",
    }
);

text_enum!(
    /// `payouts.status`: `process` until the bank settles, then final.
    PayoutStatus {
        Process = "process",
        Success = "success",
        Error = "error",
    }
);

impl PayoutStatus {
    /// The payout notify's `pg_status` (`ok`/`error`), or a status-API word.
    pub fn from_notification(text: &str) -> Option<Self> {
        match text {
            "ok" | "success" => Some(PayoutStatus::Success),
            "error" | "failed" => Some(PayoutStatus::Error),
            "process" | "pending" => Some(PayoutStatus::Process),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        self != PayoutStatus::Process
    }
}

impl PaymentStatus {
    /// Whether FreedomPay has taken (or returned) the money for this payment.
    fn is_settled(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::Refunded | PaymentStatus::Rejected
        )
    }
}

/// An order as internal services wrote it (and as callbacks moved it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub amount: Amount,
    pub currency: String,
    pub status: OrderStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub paid_payment_id: Option<String>,
}

/// One FreedomPay payment (`pg_payment_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub payment_id: String,
    pub order_id: String,
    pub amount: Amount,
    pub currency: String,
    pub status: PaymentStatus,
    pub captured: Option<bool>,
    pub testing_mode: bool,
    pub card_mask: Option<String>,
    pub failure_code: Option<String>,
    pub failure_description: Option<String>,
    pub needs_refund: bool,
    pub refunded_amount: Amount,
}

/// One payout, by the merchant's payout order id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: PayoutStatus,
    pub amount: Option<Amount>,
    pub card_mask: Option<String>,
}

/// What the database holds about a callback's subject, read inside its transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentState {
    pub order: Option<Order>,
    pub payment: Option<Payment>,
    pub payout: Option<Payout>,
}

/// A new order status, written only when the order exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderUpdate {
    pub order_id: String,
    pub status: OrderStatus,
    pub paid_payment_id: Option<String>,
}

/// The decision for one callback: the answer and the rows to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub status: Status,
    pub description: String,
    pub payment: Option<Payment>,
    pub order: Option<OrderUpdate>,
    pub payout: Option<Payout>,
}

impl Plan {
    fn answer(status: Status, description: impl Into<String>) -> Plan {
        Plan {
            status,
            description: description.into(),
            payment: None,
            order: None,
            payout: None,
        }
    }
}

/// Decides a callback against the current state. Pure: the caller writes the plan.
pub fn decide(
    callback: &Callback,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    match &callback.detail {
        Detail::Check(notice) => decide_check(notice, state, rules, now),
        Detail::Result(notice) => decide_result(notice, state, rules, now),
        Detail::Refund(notice) => decide_refund(notice, state),
        Detail::Capture(notice) => decide_capture(notice, state),
        Detail::Payout(notice) => decide_payout(notice, state),
        Detail::Redirect => Plan::answer(Status::Ok, ""),
    }
}

fn new_payment(notice: &PaymentNotice, status: PaymentStatus) -> Payment {
    Payment {
        payment_id: notice.payment_id.clone(),
        order_id: notice.order_id.clone(),
        amount: notice.amount,
        currency: notice.currency.clone(),
        status,
        captured: None,
        testing_mode: notice.testing_mode,
        card_mask: None,
        failure_code: None,
        failure_description: None,
        needs_refund: false,
        refunded_amount: Amount::default(),
    }
}

fn decide_check(
    notice: &PaymentNotice,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    match rules.check(notice, state.order.as_ref(), now) {
        Ok(()) => Plan {
            // A payment seen at check is recorded as pending, so that a result
            // that never comes can be found and reconciled.
            payment: state
                .payment
                .is_none()
                .then(|| new_payment(notice, PaymentStatus::Pending)),
            ..Plan::answer(Status::Ok, format!("Order {} can be paid", notice.order_id))
        },
        Err(failure) => Plan::answer(Status::Rejected, failure.description),
    }
}

fn decide_result(
    notice: &ResultNotice,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    let base = |status| {
        let mut payment = state
            .payment
            .clone()
            .unwrap_or_else(|| new_payment(&notice.payment, status));
        payment.amount = notice.payment.amount;
        payment.currency = notice.payment.currency.clone();
        payment.testing_mode = notice.payment.testing_mode;
        payment.captured = notice.captured.or(payment.captured);
        payment.card_mask = notice.card_mask.clone().or(payment.card_mask);
        payment
    };
    let order_id = &notice.payment.order_id;
    match &notice.outcome {
        ResultOutcome::Succeeded => {
            if let Some(existing) = &state.payment
                && existing.status.is_settled()
            {
                return Plan::answer(Status::Ok, "Payment already recorded");
            }
            match rules.check(&notice.payment, state.order.as_ref(), now) {
                Ok(()) => Plan {
                    payment: Some(Payment {
                        status: PaymentStatus::Succeeded,
                        ..base(PaymentStatus::Succeeded)
                    }),
                    order: state.order.as_ref().map(|_| OrderUpdate {
                        order_id: order_id.clone(),
                        status: OrderStatus::Paid,
                        paid_payment_id: Some(notice.payment.payment_id.clone()),
                    }),
                    ..Plan::answer(Status::Ok, "Payment accepted")
                },
                Err(failure) if notice.can_reject => Plan {
                    payment: Some(Payment {
                        status: PaymentStatus::Rejected,
                        ..base(PaymentStatus::Rejected)
                    }),
                    ..Plan::answer(Status::Rejected, failure.description)
                },
                Err(failure) => {
                    // FreedomPay took the money and will not take "rejected" for
                    // an answer: accept it, and flag the payment for a refund.
                    warn!(
                        order_id = %order_id,
                        payment_id = %notice.payment.payment_id,
                        rule = failure.rule,
                        reason = %failure.description,
                        "payment taken although the order rules refuse it (pg_can_reject=0): needs refund"
                    );
                    Plan {
                        payment: Some(Payment {
                            status: PaymentStatus::Succeeded,
                            needs_refund: true,
                            ..base(PaymentStatus::Succeeded)
                        }),
                        ..Plan::answer(Status::Ok, "Payment accepted")
                    }
                }
            }
        }
        ResultOutcome::Failed { code, description } => {
            if state
                .payment
                .as_ref()
                .is_some_and(|p| p.status.is_settled())
            {
                // Forward only: a late failure never un-pays.
                return Plan::answer(
                    Status::Ok,
                    "Failure recorded; the payment had already succeeded",
                );
            }
            Plan {
                payment: Some(Payment {
                    status: PaymentStatus::Failed,
                    failure_code: code.clone(),
                    failure_description: description.clone(),
                    ..base(PaymentStatus::Failed)
                }),
                ..Plan::answer(Status::Ok, "Failure recorded")
            }
        }
        ResultOutcome::Other(code) => {
            warn!(payment_id = %notice.payment.payment_id, pg_result = %code, "result with an unknown pg_result recorded without a state change");
            Plan::answer(Status::Ok, "Result recorded")
        }
    }
}

fn decide_refund(notice: &RefundNotice, state: &CurrentState) -> Plan {
    let Some(payment) = &state.payment else {
        warn!(payment_id = %notice.payment_id, "refund for an unknown payment recorded without a state change");
        return Plan::answer(Status::Ok, "Refund recorded");
    };
    if payment.status == PaymentStatus::Refunded {
        return Plan::answer(
            Status::Ok,
            "Refund recorded; the payment was already fully refunded",
        );
    }
    let total = if notice.cumulative {
        // The status API reports the refunded total: it moves the stored
        // total forward, never back, and repeats of it change nothing.
        match notice.amount {
            Some(total) if total > payment.refunded_amount => total,
            _ => return Plan::answer(Status::Ok, "Refund already recorded"),
        }
    } else {
        let refund = notice
            .amount
            .filter(|a| !a.is_zero())
            .unwrap_or(payment.amount);
        payment
            .refunded_amount
            .checked_add(refund)
            .unwrap_or(payment.amount)
    };
    let full = total >= payment.amount;
    let order_status = if full {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    // Only the payment that paid the order moves the order: refunding a
    // second payment for an already paid order leaves that order paid.
    let order = state
        .order
        .as_ref()
        .filter(|order| order.paid_payment_id.as_deref() == Some(payment.payment_id.as_str()));
    Plan {
        payment: Some(Payment {
            status: if full {
                PaymentStatus::Refunded
            } else {
                payment.status
            },
            refunded_amount: total,
            // A refund that covers the payment settles a pending auto-refund.
            needs_refund: payment.needs_refund && !full,
            ..payment.clone()
        }),
        order: order.map(|order| OrderUpdate {
            order_id: order.order_id.clone(),
            status: order_status,
            paid_payment_id: order.paid_payment_id.clone(),
        }),
        ..Plan::answer(Status::Ok, "Refund recorded")
    }
}

fn decide_capture(notice: &CaptureNotice, state: &CurrentState) -> Plan {
    let Some(payment) = &state.payment else {
        warn!(payment_id = %notice.payment_id, "capture for an unknown payment recorded without a state change");
        return Plan::answer(Status::Ok, "Capture recorded");
    };
    Plan {
        payment: Some(Payment {
            captured: Some(true),
            ..payment.clone()
        }),
        ..Plan::answer(Status::Ok, "Capture recorded")
    }
}

fn decide_payout(notice: &PayoutNotice, state: &CurrentState) -> Plan {
    if let Some(existing) = &state.payout
        && existing.status.is_final()
        && existing.status != notice.status
    {
        warn!(
            order_id = %notice.order_id,
            stored = existing.status.as_str(),
            received = notice.status.as_str(),
            "payout notification contradicts a final status; kept the first"
        );
        return Plan::answer(Status::Ok, "Payout notification recorded");
    }
    let previous = state.payout.as_ref();
    Plan {
        payout: Some(Payout {
            order_id: notice.order_id.clone(),
            payment_id: notice
                .payment_id
                .clone()
                .or_else(|| previous.and_then(|p| p.payment_id.clone())),
            status: notice.status,
            amount: notice.amount.or_else(|| previous.and_then(|p| p.amount)),
            card_mask: notice
                .card_mask
                .clone()
                .or_else(|| previous.and_then(|p| p.card_mask.clone())),
        }),
        ..Plan::answer(Status::Ok, "Payout notification recorded")
    }
}
