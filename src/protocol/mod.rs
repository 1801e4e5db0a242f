//! The FreedomPay callback protocol, pure: no I/O, no HTTP framework types.
//!
//! - [`decode`]: every request encoding into one [`Message`];
//! - [`signature`]: `pg_sig` signing and verification;
//! - [`answer`]: the signed XML `<response>`;
//! - [`amount`]: money as exact decimals;
//! - [`json`]: `pg_sig` over JSON bodies.
//!
//! The protocol itself is described in the README and, with sources, in the
//! project's protocol reference.

pub mod amount;
pub mod answer;
pub mod decode;
pub mod encode;
#[doc(hidden)]
pub mod fuzzing;
pub mod json;
pub mod limits;
pub mod message;
pub mod signature;

pub use amount::{Amount, AmountError};
pub use answer::{Answer, ParsedAnswer, Status, parse_answer};
pub use decode::{DecodeError, RawRequest, decode_request};
pub use message::{DuplicateField, Field, Message, Value};
pub use signature::{SignatureError, Variant, Verified, VerifyOptions, script_name, sign, verify};
