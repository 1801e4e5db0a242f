//! Playing FreedomPay: realistic callbacks ([`fields`]), signed and sent in any
//! encoding with their answers checked ([`client`]), and the end-to-end
//! scenario check → result → duplicate result → refund ([`scenario`]). Used by
//! the `simulate` command, and by the test suite as its FreedomPay.

pub mod client;
pub mod fields;
pub mod scenario;

pub use client::{Encoding, Exchange, SignatureCheck, Simulator};
pub use fields::Fields;
