//! The console's credentials: one token, read from `console.token_file`,
//! accepted as a bearer token or as the password of HTTP basic
//! authentication (any user name, so that a browser's own prompt works).
//! Both sides are hashed before a constant-time comparison, so that neither
//! the token's bytes nor its length show in response times.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ConfigError;

/// Tokens shorter than this are refused at start: the console shows payment data.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token's digest; the token itself is not kept.
#[derive(Clone)]
pub struct Credentials {
    digest: [u8; 32],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

impl Credentials {
    /// Reads the first line of `path` as the token.
    pub fn from_file(path: &Path) -> Result<Credentials, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "console.token_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let token = text.lines().next().unwrap_or_default().trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(ConfigError::new(
                "console.token_file",
                format!(
                    "the token in {} must be at least {MIN_TOKEN_LEN} characters",
                    path.display()
                ),
            ));
        }
        Ok(Credentials {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value carries the token.
    pub fn accepts(&self, authorization: &str) -> bool {
        let given = if let Some(token) = authorization.strip_prefix("Bearer ") {
            token.trim().as_bytes().to_vec()
        } else if let Some(encoded) = authorization.strip_prefix("Basic ") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
            else {
                return false;
            };
            match decoded.iter().position(|&b| b == b':') {
                Some(colon) => decoded[colon + 1..].to_vec(),
                None => return false,
            }
        } else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(&given).into();
        digest.ct_eq(&self.digest).into()
    }
}
