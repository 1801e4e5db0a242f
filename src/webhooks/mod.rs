//! Telling the merchant's own services: Standard Webhooks messages for every
//! payment, payout and flagged event, signed, sent to the endpoints of
//! `[[webhooks]]` and retried on a schedule.
//!
//! The pieces, one concept each: [`message`] (the types, the JSON bodies and
//! which messages a change makes), [`signature`] (`whsec_` secrets and the
//! `webhook-signature` header), [`endpoint`] (who wants what), [`schedule`]
//! (when a failed delivery is tried again) and [`send`] (one attempt over
//! HTTP). They sit below `config`, which compiles `[[webhooks]]` and
//! `[webhook_delivery]` into them, and use only `protocol`, `domain` and
//! `untrusted`.

pub mod endpoint;
pub mod message;
pub mod schedule;
pub mod send;
pub mod signature;

pub use endpoint::Endpoint;
pub use message::{
    Change, Flag, MessageInput, MessageType, What, messages, money_text, new_message_id,
};
pub use schedule::{JitterDraw, Next, RandomJitter, Schedule, parse_retry_after};
pub use send::{Attempt, Outcome, Sender, SenderError};
pub use signature::{SecretError, SigningSecret, sign};
