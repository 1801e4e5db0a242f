//! A PostgreSQL `database.url` (or `database.read_url`) with one server or
//! several, the way libpq takes them
//! (`postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write`),
//! taken apart into one set of sqlx options per server. The settings'
//! syntax, so `check-config` checks it here; the store chooses among the
//! servers (`store::postgres::hosts`).
//!
//! Hand-written, and kept small, because sqlx has no multi-host URLs (its
//! issue for them is open): each host becomes a single-host URL that sqlx
//! parses as usual (user, password, database, `sslmode` and the rest keep
//! sqlx's meaning), and only the host list and `target_session_attrs` are
//! read here.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

/// What a server must be to be kept (`target_session_attrs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The first server that takes writes (`read-write`, the default here:
    /// the service writes every callback, where libpq's default is `any`).
    ReadWrite,
    /// The first server that answers (`any`). The write path still refuses
    /// it when it takes no writes, but does not look for another.
    Any,
}

/// A `database.url` (or `database.read_url`) taken apart: one set of
/// options per server, in the URL's order, and what a server must be.
#[derive(Clone, Debug)]
pub struct ParsedUrl {
    pub servers: Vec<PgConnectOptions>,
    pub target: Target,
}

/// Parses a `postgres://` URL with one host or several (`h1:p1,h2:p2`).
pub fn parse_url(url: &str) -> Result<ParsedUrl, sqlx::Error> {
    let bad = |why: &str| sqlx::Error::Configuration(format!("database URL: {why}").into());
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected postgres://"))?;
    // The authority ends at the path or the query; the user's part ends at
    // its last '@' (an '@' in a password is percent-encoded).
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut target = Target::ReadWrite;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("target_session_attrs", value)) => {
                target = match value {
                    "read-write" => Target::ReadWrite,
                    "any" => Target::Any,
                    other => {
                        return Err(bad(&format!(
                            "target_session_attrs={other} is not supported (read-write or any)"
                        )));
                    }
                }
            }
            _ => kept.push(pair),
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let servers = hosts
        .split(',')
        .map(|host| {
            if host.is_empty() && hosts.contains(',') {
                return Err(bad("an empty host in the host list"));
            }
            let options =
                PgConnectOptions::from_str(&format!("{scheme}://{userinfo}{host}{path}{query}"))?;
            // An IPv6 address keeps its URL brackets in sqlx's host, which
            // then cannot be connected to.
            let bare = options
                .get_host()
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .map(str::to_owned);
            Ok(match bare {
                Some(address) => options.host(&address),
                None => options,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedUrl { servers, target })
}
