//! Decisions, free of I/O: what the store keeps of orders, payments and
//! payouts ([`records`]), what a verified callback means ([`callback`]), whether
//! the merchant's order rules allow it ([`rules`]), how it moves orders,
//! payments and payouts forward ([`state`]), and what the reconciler is
//! asked to do about it ([`task`]).

pub mod callback;
pub mod pan;
pub mod records;
pub mod rules;
pub mod state;
pub mod task;

pub use callback::{
    Callback, CallbackKind, CaptureNotice, Detail, FieldError, IdempotencyKey, Origin,
    PaymentNotice, PayoutNotice, RefundNotice, ResultNotice, ResultOutcome,
};
pub use records::{Order, OrderStatus, Payment, PaymentStatus, Payout, PayoutStatus};
pub use rules::{RuleFailure, Rules};
pub use state::{Confirm, ConfirmSubject, CurrentState, Plan};
