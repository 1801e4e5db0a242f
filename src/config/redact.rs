//! Serialising settings for display (`check-config`) without their secrets.

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;

pub(super) const REDACTED: &str = "[redacted]";
/// Shown for a key that is set but empty (or only whitespace), which the
/// checks refuse: "[redacted]" would hide the mistake.
pub(super) const EMPTY: &str = "(empty)";

/// A secret key: shown only as present, empty or absent.
pub(super) fn secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(key) if key.expose_secret().trim().is_empty() => s.serialize_str(EMPTY),
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

/// A database URL with its password replaced.
pub(super) fn database_url<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(value.expose_secret()))
}

pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(REDACTED));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => REDACTED.to_owned(),
    }
}
