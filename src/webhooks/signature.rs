//! Standard Webhooks signatures: the `webhook-signature` header of a delivery
//! is `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
//! endpoint's `whsec_` secret, and several such values separated by spaces
//! while a secret is being rotated (the receiver accepts any one of them).
//!
//! The format is the one the Standard Webhooks libraries and Svix verify, so a
//! merchant's service can use any of them instead of code of its own.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// The prefix every signing secret is written with.
pub const SECRET_PREFIX: &str = "whsec_";

/// Fewest key bytes accepted: 24 bytes (192 bits) is the shortest secret the
/// Standard Webhooks specification allows.
pub const MIN_SECRET_BYTES: usize = 24;

/// Most key bytes accepted: the specification's upper bound (HMAC-SHA256
/// gains nothing from a key longer than its 64-byte block).
pub const MAX_SECRET_BYTES: usize = 64;

/// The only signature version there is.
const VERSION: &str = "v1";

/// Why a text is not a signing secret. The secret itself is never part of
/// the message (it ends up in `check-config`'s output and logs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with {SECRET_PREFIX} (a secret like whsec_ followed by base64)")]
    MissingPrefix,
    #[error("the part after {SECRET_PREFIX} is not standard base64")]
    NotBase64,
    #[error(
        "decodes to {0} bytes; a secret must have {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
    )]
    Length(usize),
}

/// One endpoint's signing key, decoded from `whsec_<base64>` and kept in
/// memory that is zeroed when dropped.
#[derive(Clone)]
pub struct SigningSecret {
    key: SecretSlice<u8>,
}

impl SigningSecret {
    /// Reads `whsec_<base64>`; surrounding whitespace (a file's trailing
    /// newline) is ignored.
    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(SigningSecret {
            key: SecretSlice::from(key),
        })
    }

    /// A new random secret of 32 bytes (the length the Standard Webhooks
    /// libraries generate), as `whsec_<base64>`: the text to give the
    /// receiver, which [`SigningSecret::parse`] reads back.
    pub fn generate() -> String {
        use rand::RngExt;
        let key: [u8; 32] = rand::rng().random();
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }

    /// `v1,<base64 HMAC-SHA256>` of `content` with this key.
    fn sign(&self, content: &[u8]) -> String {
        // HMAC takes keys of any length, so this cannot fail; were it to, the
        // signature is left empty, which verifies nothing (fails closed).
        let mac = match Hmac::<Sha256>::new_from_slice(self.key.expose_secret()) {
            Ok(mut mac) => {
                mac.update(content);
                STANDARD.encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        };
        format!("{VERSION},{mac}")
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

/// The `webhook-signature` value of one delivery: one `v1,<mac>` per secret,
/// in the order given (the current secret first, then the previous one during
/// a rotation), separated by single spaces.
///
/// The signed content is `<msg_id>.<timestamp>.<body>` exactly as sent: the
/// body is signed as bytes, never re-serialised.
pub fn sign(msg_id: &str, timestamp: i64, body: &[u8], secrets: &[SigningSecret]) -> String {
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    secrets
        .iter()
        .map(|secret| secret.sign(&content))
        .collect::<Vec<_>>()
        .join(" ")
}
