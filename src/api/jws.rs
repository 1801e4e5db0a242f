//! The detached JWS of FreedomPay's v5 APIs (protocol reference §4.4): an
//! HMAC over `base64url(header) + "." + base64url(body)` with the merchant's
//! secret key, sent in `X-JWS-Signature` as `header..signature` (the payload
//! cut out). The signature covers the exact body bytes sent, so the body is
//! signed as serialised and never re-serialised.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

/// The HMAC algorithms FreedomPay's examples use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Hs256,
    Hs512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs512 => "HS512",
        }
    }
}

/// The `X-JWS-Signature` value for `header_json` (sent as given) and `body`.
pub fn detached_signature(
    header_json: &str,
    body: &[u8],
    key: &str,
    algorithm: Algorithm,
) -> String {
    let header = URL_SAFE_NO_PAD.encode(header_json.as_bytes());
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let mac = match algorithm {
        Algorithm::Hs256 => hmac_bytes::<Hmac<Sha256>>(key, &signing_input),
        Algorithm::Hs512 => hmac_bytes::<Hmac<Sha512>>(key, &signing_input),
    };
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(mac))
}

fn hmac_bytes<M: Mac + KeyInit>(key: &str, input: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <M as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}
