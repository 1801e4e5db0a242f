//! Every check the configuration must pass before `serve` binds, each problem
//! one line naming its key. `check-config` prints them all; `serve` refuses
//! to start on any.

use std::collections::HashMap;
use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, MAX_WEBHOOK_TIMEOUT_SECS, MetricsPlace, Settings};
// Up a layer, on purpose: the refund methods a setting may name are the
// FreedomPay API client's own list; a copy here would drift from it.
use crate::api::RefundMethod;
use crate::domain::CallbackKind;
use crate::protocol::{Amount, script_name};

/// Paths the service itself serves; no callback endpoint may take them.
const RESERVED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The key of the example configuration (`config/example.toml`): accepted
/// only while the service listens on loopback, so that the quick start works
/// and a deployment that forgot its own key does not start.
pub const DEMO_KEY: &str = "demo-secret-key-change-me";

/// Keys shorter than this are warned about: FreedomPay's keys are longer.
pub const SHORT_KEY: usize = 16;

/// Longest merchant id accepted.
const MAX_MERCHANT_ID: usize = 64;

pub fn problems(settings: &Settings) -> Vec<ConfigError> {
    let mut found = Vec::new();
    server(settings, &mut found);
    database(settings, &mut found);
    merchants(settings, &mut found);
    endpoints(settings, &mut found);
    rules(settings, &mut found);
    urls(settings, &mut found);
    reconcile(settings, &mut found);
    webhooks(settings, &mut found);
    webhook_delivery(settings, &mut found);
    retention(settings, &mut found);
    if !matches!(settings.log.format.as_str(), "pretty" | "json") {
        found.push(ConfigError::new(
            "log.format",
            "must be \"pretty\" or \"json\"",
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(&settings.log.level).is_err() {
        found.push(ConfigError::new(
            "log.level",
            format!("{:?} is not a log filter", settings.log.level),
        ));
    }
    found
}

fn server(settings: &Settings, found: &mut Vec<ConfigError>) {
    if settings.server.listen.parse::<SocketAddr>().is_err() {
        found.push(ConfigError::new(
            "server.listen",
            format!(
                "{:?} is not an address like 127.0.0.1:8080",
                settings.server.listen
            ),
        ));
    }
    match (
        settings.metrics.place(),
        settings.server.listen.parse::<SocketAddr>(),
    ) {
        (Err(problem), _) => found.push(problem),
        (Ok(MetricsPlace::Address(metrics)), Ok(server)) if same_socket(metrics, server) => {
            found.push(ConfigError::new(
                "metrics.listen",
                format!(
                    "{metrics} clashes with server.listen {server}; choose another port, or \"server\" to serve /metrics with the callbacks"
                ),
            ));
        }
        _ => {}
    }
    if settings.server.max_body_bytes == 0 {
        found.push(ConfigError::new(
            "server.max_body_bytes",
            "must be more than 0",
        ));
    }
}

/// Whether two listeners would take the same port: the same address, or the
/// same port with either on the unspecified address (0.0.0.0 or ::). Port 0
/// (any free port) never clashes.
fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn database(settings: &Settings, found: &mut Vec<ConfigError>) {
    let url = secrecy::ExposeSecret::expose_secret(&settings.database.url);
    let scheme_ok = ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| url.starts_with(p));
    if !scheme_ok {
        found.push(ConfigError::new(
            "database.url",
            "must start with sqlite:// or postgres://",
        ));
    } else if !url.starts_with("sqlite:")
        && let Err(e) = super::database_url::parse_url(url)
    {
        // One host or several (`h1:5432,h2:5432`), as the store parses it.
        found.push(ConfigError::new("database.url", e.to_string()));
    }
    if let Some(read_url) = &settings.database.read_url {
        let read_url = secrecy::ExposeSecret::expose_secret(read_url);
        let problem = if !url.starts_with("postgres") || !read_url.starts_with("postgres") {
            Some("only with PostgreSQL (database.url and read_url both postgres://)".to_owned())
        } else {
            match super::database_url::parse_url(read_url) {
                Ok(parsed) if parsed.servers.len() == 1 => None,
                Ok(_) => Some("one host only".to_owned()),
                Err(e) => Some(e.to_string()),
            }
        };
        if let Some(problem) = problem {
            found.push(ConfigError::new("database.read_url", problem));
        }
    }
    if settings.database.max_connections == 0 {
        found.push(ConfigError::new(
            "database.max_connections",
            "must be at least 1",
        ));
    }
}

fn merchants(settings: &Settings, found: &mut Vec<ConfigError>) {
    if settings.merchants.is_empty() {
        found.push(ConfigError::new(
            "merchants",
            "at least one [[merchants]] entry is required",
        ));
    }
    let mut seen = HashMap::new();
    // Every key of every merchant, to refuse one key shared by two merchants:
    // a callback without pg_merchant_id would be filed under the first.
    let mut keys: Vec<(usize, &'static str, SecretString)> = Vec::new();
    let loopback = settings
        .server
        .listen
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    for (i, merchant) in settings.merchants.iter().enumerate() {
        if merchant.id.trim().is_empty() {
            found.push(ConfigError::new(
                format!("merchants[{i}].id"),
                "must not be empty",
            ));
        } else if !valid_merchant_id(&merchant.id) {
            found.push(ConfigError::new(
                format!("merchants[{i}].id"),
                format!(
                    "{:?} is not a merchant id: letters, digits, '.', '_' and '-' only, at most {MAX_MERCHANT_ID}",
                    merchant.id
                ),
            ));
        } else if let Some(first) = seen.insert(merchant.id.as_str(), i) {
            found.push(ConfigError::new(
                format!("merchants[{i}].id"),
                format!("{:?} is already merchants[{first}]", merchant.id),
            ));
        }
        match merchant.payment_key() {
            Ok(key) => keys.push((i, "secret_key", key)),
            Err(e) => found.push(ConfigError::new(
                format!("merchants[{i}].{}", e.key),
                e.message,
            )),
        }
        for (name, key) in merchant.optional_keys() {
            let Some(key) = key else { continue };
            if key.expose_secret().trim().is_empty() {
                found.push(ConfigError::new(
                    format!("merchants[{i}].{name}"),
                    "must not be empty or only whitespace (leave it out instead)",
                ));
            } else {
                keys.push((i, name, key.clone()));
            }
        }
        if RefundMethod::parse(&merchant.refund_method).is_none() {
            found.push(ConfigError::new(
                format!("merchants[{i}].refund_method"),
                "must be revoke, superapp, v5 or card_api",
            ));
        }
    }
    for (n, (i, name, key)) in keys.iter().enumerate() {
        if !loopback && key.expose_secret() == DEMO_KEY {
            found.push(ConfigError::new(
                format!("merchants[{i}].{name}"),
                format!(
                    "is the example's demo key, refused when server.listen ({}) is not loopback; set the merchant's own key (e.g. FPR__MERCHANTS__{i}__SECRET_KEY)",
                    settings.server.listen
                ),
            ));
        }
        if let Some((first, first_name, _)) = keys[..n]
            .iter()
            .find(|(j, _, other)| j != i && other.expose_secret() == key.expose_secret())
        {
            found.push(ConfigError::new(
                format!("merchants[{i}].{name}"),
                format!(
                    "is the same key as merchants[{first}].{first_name}; each merchant signs with its own keys"
                ),
            ));
        }
    }
}

/// Merchant ids are FreedomPay's `pg_merchant_id` (digits in practice):
/// ASCII letters, digits, `.`, `_` and `-`, so that an id is never confused
/// in logs, metrics labels or the database by spaces or control characters.
fn valid_merchant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MERCHANT_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn endpoints(settings: &Settings, found: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut scripts: HashMap<&str, &str> = HashMap::new();
    for kind in CallbackKind::ALL {
        let key = format!("endpoints.{}", kind.as_str());
        let path = settings.endpoints.path(kind);
        let overridden = settings.endpoints.script_names.get(kind);
        if let Some(name) = overridden
            && name.trim().is_empty()
        {
            found.push(ConfigError::new(
                format!("endpoints.script_names.{}", kind.as_str()),
                "must not be empty (leave it out to use the last segment of the path)",
            ));
            continue;
        }
        if !path.starts_with('/') {
            found.push(ConfigError::new(key, format!("{path:?} must start with /")));
            continue;
        }
        if RESERVED_PATHS.contains(&path) {
            found.push(ConfigError::new(
                key,
                format!("{path} is reserved for the service itself"),
            ));
        } else if let Some(other) = seen.insert(path, kind.as_str()) {
            found.push(ConfigError::new(
                key,
                format!("{path} is also endpoints.{other}"),
            ));
        } else if script_name(path).is_empty() && overridden.is_none() {
            found.push(ConfigError::new(
                key,
                format!(
                    "{path} ends with /, so its script name would be empty; drop the trailing /"
                ),
            ));
        } else {
            // The script name is signed: two endpoints sharing one would
            // accept each other's callbacks (a check replayed as a result).
            let script = overridden.unwrap_or_else(|| script_name(path));
            if let Some(other) = scripts.insert(script, kind.as_str()) {
                found.push(ConfigError::new(
                    key,
                    format!(
                        "its script name {script:?} is also endpoints.{other}'s, so a callback signed for one would verify on the other"
                    ),
                ));
            }
        }
    }
}

fn rules(settings: &Settings, found: &mut Vec<ConfigError>) {
    let mut parse = |key: &str, value: &Option<String>| {
        value
            .as_deref()
            .and_then(|text| match text.parse::<Amount>() {
                Ok(amount) => Some(amount),
                Err(e) => {
                    found.push(ConfigError::new(key, e.to_string()));
                    None
                }
            })
    };
    let min = parse("rules.min_amount", &settings.rules.min_amount);
    let max = parse("rules.max_amount", &settings.rules.max_amount);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        found.push(ConfigError::new(
            "rules.max_amount",
            format!("{max} is below rules.min_amount {min}"),
        ));
    }
    for (i, currency) in settings.rules.allowed_currencies.iter().enumerate() {
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            found.push(ConfigError::new(
                format!("rules.allowed_currencies[{i}]"),
                format!("{currency:?} is not a 3-letter currency code"),
            ));
        }
    }
}

fn urls(settings: &Settings, found: &mut Vec<ConfigError>) {
    let mut check = |key: &str, value: Option<&str>| {
        if let Some(text) = value
            && let Err(e) = url::Url::parse(text)
        {
            found.push(ConfigError::new(key, format!("{text:?} is not a URL: {e}")));
        }
    };
    check(
        "redirect.success_url",
        settings.redirect.success_url.as_deref(),
    );
    check(
        "redirect.failure_url",
        settings.redirect.failure_url.as_deref(),
    );
    check("api.base_url", Some(&settings.api.base_url));
    check(
        "api.payout_post_link",
        settings.api.payout_post_link.as_deref(),
    );
}

fn reconcile(settings: &Settings, found: &mut Vec<ConfigError>) {
    let reconcile = &settings.reconcile;
    for (key, value) in [
        ("reconcile.interval_secs", reconcile.interval_secs),
        ("reconcile.lease_secs", reconcile.lease_secs),
        ("reconcile.batch", u64::from(reconcile.batch)),
        ("reconcile.max_attempts", u64::from(reconcile.max_attempts)),
        (
            "reconcile.refund_max_attempts",
            u64::from(reconcile.refund_max_attempts),
        ),
    ] {
        if value == 0 {
            found.push(ConfigError::new(key, "must be at least 1"));
        }
    }
    if settings.api.timeout_secs == 0 {
        found.push(ConfigError::new("api.timeout_secs", "must be at least 1"));
    }
}

fn webhooks(settings: &Settings, found: &mut Vec<ConfigError>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, webhook) in settings.webhooks.iter().enumerate() {
        let key = |name: &str| format!("webhooks[{i}].{name}");
        // The name is an outbox column, a metrics label and a command-line
        // argument: the merchant ids' alphabet keeps it plain in all three.
        if !valid_merchant_id(&webhook.name) {
            found.push(ConfigError::new(
                key("name"),
                format!(
                    "{:?} is not an endpoint name: letters, digits, '.', '_' and '-' only, 1 to {MAX_MERCHANT_ID}",
                    webhook.name
                ),
            ));
        } else if let Some(first) = names.insert(webhook.name.as_str(), i) {
            found.push(ConfigError::new(
                key("name"),
                format!(
                    "{:?} is already webhooks[{first}]'s name; each endpoint needs its own",
                    webhook.name
                ),
            ));
        }
        for problem in webhook.problems() {
            found.push(ConfigError::new(key(&problem.key), problem.message));
        }
        for (n, merchant) in webhook.merchants.iter().flatten().enumerate() {
            if !settings.merchants.iter().any(|m| &m.id == merchant) {
                found.push(ConfigError::new(
                    format!("webhooks[{i}].merchants[{n}]"),
                    format!("{merchant:?} is not a configured merchant ([[merchants]] id)"),
                ));
            }
        }
        // A delivery still under way when its lease ends could be taken and
        // sent a second time by another instance.
        if (1..=MAX_WEBHOOK_TIMEOUT_SECS).contains(&webhook.timeout_secs)
            && webhook.timeout_secs >= settings.webhook_delivery.lease_secs
        {
            found.push(ConfigError::new(
                key("timeout_secs"),
                format!(
                    "{} is not below webhook_delivery.lease_secs ({}): a delivery would outlive its lease",
                    webhook.timeout_secs, settings.webhook_delivery.lease_secs
                ),
            ));
        }
    }
}

/// Longest retry delay accepted: a week.
const MAX_RETRY_DELAY_SECS: u64 = 7 * 86_400;

fn webhook_delivery(settings: &Settings, found: &mut Vec<ConfigError>) {
    let delivery = &settings.webhook_delivery;
    for (n, delay) in delivery.retry_delays_secs.iter().enumerate() {
        if !(1..=MAX_RETRY_DELAY_SECS).contains(delay) {
            found.push(ConfigError::new(
                format!("webhook_delivery.retry_delays_secs[{n}]"),
                format!("{delay} must be 1 to {MAX_RETRY_DELAY_SECS} (a week)"),
            ));
        }
    }
    if delivery.jitter_percent > 50 {
        found.push(ConfigError::new(
            "webhook_delivery.jitter_percent",
            "must be 0 to 50",
        ));
    }
    for (key, value) in [
        (
            "webhook_delivery.max_retry_after_secs",
            delivery.max_retry_after_secs,
        ),
        (
            "webhook_delivery.poll_interval_ms",
            delivery.poll_interval_ms,
        ),
        ("webhook_delivery.lease_secs", delivery.lease_secs),
    ] {
        if value == 0 {
            found.push(ConfigError::new(key, "must be at least 1"));
        }
    }
}

fn retention(settings: &Settings, found: &mut Vec<ConfigError>) {
    let retention = &settings.retention;
    for (key, days) in [
        ("retention.keep_days", retention.keep_days),
        ("retention.personal_data_days", retention.personal_data_days),
    ] {
        if days == Some(0) {
            found.push(ConfigError::new(key, "must be at least 1 (or unset: kept)"));
        }
    }
    if retention.keep_days.is_some() && retention.archive_dir.is_none() {
        found.push(ConfigError::new(
            "retention.archive_dir",
            "is required with retention.keep_days: months are archived before they are deleted",
        ));
    }
    if !(1..=10_000).contains(&retention.batch) {
        found.push(ConfigError::new("retention.batch", "must be 1 to 10000"));
    }
    for (n, field) in retention.personal_fields.iter().enumerate() {
        if field.is_empty() || field.len() > 64 {
            found.push(ConfigError::new(
                format!("retention.personal_fields[{n}]"),
                "must be a field name of 1 to 64 characters",
            ));
        }
    }
}

/// Things that work but should not be so: printed by `check-config`, logged by
/// `serve`.
pub fn warnings(settings: &Settings) -> Vec<String> {
    let mut found = Vec::new();
    for (i, merchant) in settings.merchants.iter().enumerate() {
        let payment_key = merchant.payment_key().ok();
        let keys = [("secret_key", payment_key.as_ref())]
            .into_iter()
            .chain(merchant.optional_keys());
        for (name, key) in keys {
            if let Some(key) = key
                && !key.expose_secret().trim().is_empty()
                && key.expose_secret().chars().count() < SHORT_KEY
            {
                found.push(format!(
                    "merchants[{i}].{name}: shorter than {SHORT_KEY} characters; FreedomPay's keys are longer, check that it is complete"
                ));
            }
        }
        if let Some(path) = &merchant.secret_key_file
            && readable_by_others(path)
        {
            found.push(format!(
                "merchants[{i}].secret_key_file: {} is readable by group or others; chmod 600 it",
                path.display()
            ));
        }
    }
    for (i, webhook) in settings.webhooks.iter().enumerate() {
        for (key, path) in [
            ("secret_file", &webhook.secret_file),
            ("previous_secret_file", &webhook.previous_secret_file),
        ] {
            if let Some(path) = path
                && readable_by_others(path)
            {
                found.push(format!(
                    "webhooks[{i}].{key}: {} is readable by group or others; chmod 600 it",
                    path.display()
                ));
            }
        }
        if let Ok(url) = url::Url::parse(&webhook.url)
            && url.scheme() == "http"
            && !is_loopback_host(&url)
        {
            found.push(format!(
                "webhooks[{i}].url: plain http to a host that is not loopback: payment messages travel unencrypted"
            ));
        }
    }
    if !settings.rules.reject_testing_mode {
        found.push(
            "rules.reject_testing_mode is false: test payments (pg_testing_mode=1) pay orders"
                .to_owned(),
        );
    }
    found
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(unix)]
fn readable_by_others(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &std::path::Path) -> bool {
    false
}
