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

/// An optional database URL with its password replaced.
pub(super) fn optional_database_url<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => s.serialize_str(&redact_url(url.expose_secret())),
        None => s.serialize_none(),
    }
}

/// A URL (a webhook endpoint's) with its password replaced.
pub(super) fn url<S: Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(value))
}

pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(REDACTED));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => redact_multi_host(url).unwrap_or_else(|| REDACTED.to_owned()),
    }
}

/// A PostgreSQL URL with several hosts (`u:p@h1:5432,h2:5432/db`), which
/// `url` cannot parse: the password between the user's `:` and the last
/// `@` of the authority is replaced. `None` when its shape is unclear.
fn redact_multi_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !authority.contains(',') {
        return None;
    }
    let redacted = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    Some(format!("{scheme}://{redacted}{tail}"))
}
