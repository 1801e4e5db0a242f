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
    let signature = signature_over(&header, body, key, algorithm);
    format!("{header}..{signature}")
}

/// The base64url HMAC over `header_b64 + "." + base64url(body)`.
fn signature_over(header_b64: &str, body: &[u8], key: &str, algorithm: Algorithm) -> String {
    let signing_input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(body));
    let mac = match algorithm {
        Algorithm::Hs256 => hmac_bytes::<Hmac<Sha256>>(key, &signing_input),
        Algorithm::Hs512 => hmac_bytes::<Hmac<Sha512>>(key, &signing_input),
    };
    URL_SAFE_NO_PAD.encode(mac)
}

fn hmac_bytes<M: Mac + KeyInit>(key: &str, input: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this does not fail; were it to, an
    // empty MAC fails closed (it verifies nothing and FreedomPay refuses it).
    match <M as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The protected header FreedomPay's v5 examples use, in their field order:
/// the called path, the merchant id (a JSON number when it is one), the
/// method, the reserved `params` and the algorithm. Which fields `/v5/g2g`
/// really expects is an open question (protocol reference §4.4, §6).
pub fn header_json(path: &str, merchant_id: &str, algorithm: Algorithm) -> String {
    let merchant = if !merchant_id.is_empty() && merchant_id.bytes().all(|b| b.is_ascii_digit()) {
        merchant_id.to_owned()
    } else {
        serde_json::Value::from(merchant_id).to_string()
    };
    format!(
        r#"{{"path":{},"merchant_id":{merchant},"method":"POST","params":"","alg":"{}"}}"#,
        serde_json::Value::from(path),
        algorithm.name()
    )
}

/// Why a detached JWS does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a detached JWS (header..signature)")]
    Shape,
    #[error("the JWS header is not base64url JSON")]
    Header,
    #[error("the JWS algorithm {0:?} is not accepted (HS256 or HS512 only)")]
    Algorithm(String),
    #[error("the JWS signature does not match")]
    Mismatch,
}

/// Checks a detached JWS over `body` with `key`. Only the HMAC algorithms are
/// accepted: `none` or an asymmetric algorithm named by the sender could
/// otherwise turn the check off.
pub fn verify_detached(token: &str, body: &[u8], key: &str) -> Result<(), JwsError> {
    let (header_b64, signature) = token.split_once("..").ok_or(JwsError::Shape)?;
    if header_b64.is_empty() || signature.is_empty() || signature.contains('.') {
        return Err(JwsError::Shape);
    }
    let header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| JwsError::Header)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| JwsError::Header)?;
    let algorithm = match header.get("alg").and_then(|a| a.as_str()) {
        Some("HS256") => Algorithm::Hs256,
        Some("HS512") => Algorithm::Hs512,
        other => return Err(JwsError::Algorithm(other.unwrap_or("").to_owned())),
    };
    let expected = signature_over(header_b64, body, key, algorithm);
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        signature.as_bytes(),
    )) {
        Ok(())
    } else {
        Err(JwsError::Mismatch)
    }
}
