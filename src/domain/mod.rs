//! Decisions, free of I/O: what a verified callback means ([`callback`]), whether
//! the merchant's order rules allow it ([`rules`]), and how it moves orders,
//! payments and payouts forward ([`state`]).

pub mod callback;
pub mod pan;
pub mod rules;
pub mod state;

pub use callback::{
    Callback, CallbackKind, CaptureNotice, Detail, FieldError, IdempotencyKey, Origin,
    PaymentNotice, PayoutNotice, RefundNotice, ResultNotice, ResultOutcome,
};
pub use rules::{RuleFailure, Rules};
pub use state::{
    Confirm, ConfirmSubject, CurrentState, Order, OrderStatus, Payment, PaymentStatus, Payout,
    PayoutStatus, Plan,
};
