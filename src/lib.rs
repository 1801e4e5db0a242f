//! freedompay-receiver: a merchant-side webhook receiver for the FreedomPay
//! payment gateway (formerly PayBox.money).
//!
//! The crate is layered the way one callback flows through it:
//! [`protocol`] (pure FreedomPay protocol) → [`cli`] (operator commands).

pub mod cli;
pub mod protocol;
