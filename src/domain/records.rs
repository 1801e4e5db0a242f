//! What the store keeps of each subject, as the domain sees it: orders,
//! payments and payouts, with their statuses and the text each status is
//! stored as. Below everything else in the domain: a callback names a payout
//! status, the rules look at an order, the state machine moves all three.

use chrono::{DateTime, Utc};

use crate::protocol::Amount;

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
    pub(crate) fn is_settled(self) -> bool {
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
