//! Talking back to FreedomPay. [`client`] is the Merchant API client for the
//! signed form-in, XML-out endpoints (protocol reference §4.1 to §4.3);
//! [`refund`] sends refunds through each refund API (§4.2, §4.4 to §4.6);
//! [`jws`] is the detached JWS of the v5 APIs. Every request is signed with
//! the called script's name (or the JWS), and every signed response is
//! verified before anything in it is believed.

pub mod client;
pub mod jws;
pub mod refund;

pub use client::{
    ApiClient, ApiError, PaymentStatusReport, PayoutDestination, PayoutRequest, pacing_delay,
};
pub use refund::{RefundAccepted, RefundMethod, RefundRequest};
