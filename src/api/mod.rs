//! Talking back to FreedomPay: the Merchant API client ([`client`]) for the
//! signed form-in, XML-out endpoints (protocol reference §4.1 to §4.3). Every
//! request is signed with the called script's name, and every response is
//! verified before anything in it is believed.
//!
//! Status: the client and its typed calls; the reconciler, automatic refunds,
//! the JSON and JWS APIs and their commands are still to come.

pub mod client;
pub mod jws;

pub use client::{ApiClient, ApiError, PaymentStatusReport};
