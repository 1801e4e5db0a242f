//! Typed settings: defaults compiled in, then the TOML file, then environment
//! variables `FPR__SECTION__KEY` (e.g. `FPR__DATABASE__URL`). Every key is
//! documented in the README and in `config/example.toml`.
//!
//! Environment values are read by [`env`] as text: a list key takes
//! comma-separated items, and numbers keep their spelling (`100.50` stays
//! `100.50`) because serde converts the text to the field's type.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::webhooks::schedule::{
    DEFAULT_JITTER_PERCENT, DEFAULT_MAX_RETRY_AFTER_SECS, DEFAULT_RETRY_DELAYS_SECS,
};
use crate::webhooks::{Endpoint, MessageType, Schedule, SigningSecret};

pub mod database_url;
mod env;
mod redact;
mod rules;
pub mod validate;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub merchants: Vec<MerchantSettings>,
    #[serde(default)]
    pub endpoints: EndpointSettings,
    #[serde(default)]
    pub rules: RulesSettings,
    #[serde(default)]
    pub signature: SignatureSettings,
    #[serde(default)]
    pub redirect: RedirectSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub api: ApiSettings,
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    #[serde(default)]
    pub console: ConsoleSettings,
    /// The merchant's own services told of every payment (README, "Telling
    /// your services").
    #[serde(default)]
    pub webhooks: Vec<WebhookSettings>,
    #[serde(default)]
    pub webhook_delivery: WebhookDeliverySettings,
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// How long the event log keeps what it received (README, "Keeping and
/// deleting data"). Off by default: nothing is deleted or changed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Events older than this are archived to `archive_dir` and deleted, a
    /// calendar month at a time (a month goes once all of it is older), with
    /// the stored decisions and finished status queries of that age. Unset:
    /// kept for ever.
    pub keep_days: Option<u32>,
    /// Where months are archived before they are deleted (required with
    /// `keep_days`): gzip-compressed JSON lines and a SHA-256 manifest.
    pub archive_dir: Option<PathBuf>,
    /// The payer's personal fields of events older than this are replaced
    /// by a marker (amounts, ids and card masks stay). Unset: kept.
    pub personal_data_days: Option<u32>,
    /// Field names treated as personal besides the built-in ones
    /// (`retention::personal::FIELDS`).
    pub personal_fields: Vec<String>,
    /// Whether `serve` runs retention once a day (one instance at a time);
    /// `freedompay-receiver retention run` runs it on demand either way.
    pub in_serve: bool,
    /// Rows per transaction at most: read for the archive (a page each),
    /// and deleted or rewritten where rows go one by one (SQLite;
    /// PostgreSQL's upgraded old table, kept rows). On SQLite fewer while a
    /// batch holds the write lock longer than 15 ms (`retention::pace`), so
    /// that a callback never waits long for it.
    pub batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            keep_days: None,
            archive_dir: None,
            personal_data_days: None,
            personal_fields: Vec::new(),
            in_serve: true,
            batch: 500,
        }
    }
}

impl RetentionSettings {
    /// Whether retention has anything to do.
    pub fn enabled(&self) -> bool {
        self.keep_days.is_some() || self.personal_data_days.is_some()
    }
}

/// Outbound calls to FreedomPay (status, refunds, payouts).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// `https://api.freedompay.kz`, the test host, or any URL (tests).
    pub base_url: String,
    /// Deadline of one call, connecting included.
    pub timeout_secs: u64,
    /// Least time between two calls of one merchant: FreedomPay advises 1.5
    /// to 2 s between payment API requests.
    pub pacing_ms: u64,
    /// The public URL of the payout endpoint, sent as `pg_post_link` with
    /// payouts made by the `payout` command.
    pub payout_post_link: Option<String>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            base_url: "https://api.freedompay.kz".into(),
            timeout_secs: 15,
            pacing_ms: 1500,
            payout_post_link: None,
        }
    }
}

/// The background task that asks FreedomPay about callbacks that never came,
/// and sends and confirms automatic refunds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    pub enabled: bool,
    /// A payment without a result (or a payout without a final status) this
    /// long is queried; the default is past FreedomPay's retry window.
    pub after_secs: u64,
    /// How often the reconciler looks for work.
    pub interval_secs: u64,
    /// How long a claimed task is this instance's; after it another instance
    /// (or this one, restarted) may take it over.
    pub lease_secs: u64,
    /// Status queries per task before it is given up (state `failed`).
    pub max_attempts: u32,
    /// Sends of one refund before it is given up (state `failed`).
    pub refund_max_attempts: u32,
    /// The first retry delay; it doubles with every attempt, up to an hour.
    pub retry_base_secs: u64,
    /// Tasks claimed per round.
    pub batch: u32,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            enabled: true,
            after_secs: 9000,
            interval_secs: 60,
            lease_secs: 300,
            max_attempts: 30,
            refund_max_attempts: 5,
            retry_base_secs: 60,
            batch: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    /// Larger request bodies are answered 413 and nothing is stored.
    pub max_body_bytes: usize,
    /// Whole-request deadline, reading the body included.
    pub request_timeout_secs: u64,
    /// How long in-flight requests may run on after SIGTERM / Ctrl-C.
    pub shutdown_timeout_secs: u64,
    /// Deadline for a client to send its request headers (slow-header clients).
    pub header_read_timeout_secs: u64,
    /// Open connections at most; beyond it, new connections wait to be accepted.
    pub max_connections: usize,
    /// Networks (CIDR) allowed to call the callback endpoints; empty = any.
    pub allowed_sources: Vec<ipnet::IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed signatures per source and minute before it gets 429 (0 = no limit).
    pub invalid_signature_per_minute: u32,
    /// IPv6 sources share one failure budget per network of this prefix.
    pub ipv6_budget_prefix: u8,
    /// Sources the failure budget tracks at most; the least recently seen go first.
    pub budget_max_sources: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 65_536,
            request_timeout_secs: 15,
            shutdown_timeout_secs: 20,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            allowed_sources: Vec::new(),
            trusted_proxies: Vec::new(),
            invalid_signature_per_minute: 60,
            ipv6_budget_prefix: 64,
            budget_max_sources: 100_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (the embedded default) or `postgres://user:pass@host/db`.
    #[serde(serialize_with = "redact::database_url")]
    pub url: SecretString,
    /// Optional (PostgreSQL): a server for what only reads (the console and
    /// `history`), e.g. a standby, so that an operator's heavy query never
    /// competes with callbacks. Unset: the one pool of `url`.
    #[serde(serialize_with = "redact::optional_database_url")]
    pub read_url: Option<SecretString>,
    pub max_connections: u32,
    /// Apply migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// How long a request waits for a database connection before answering 503.
    pub acquire_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: SecretString::from("sqlite://freedompay-receiver.db"),
            read_url: None,
            max_connections: 16,
            migrate_on_start: true,
            acquire_timeout_secs: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantSettings {
    /// `pg_merchant_id`, as a string.
    pub id: String,
    #[serde(serialize_with = "redact::secret")]
    pub secret_key: Option<SecretString>,
    /// Alternative to `secret_key`: a file holding the key (trailing newline ignored).
    pub secret_key_file: Option<PathBuf>,
    /// Signs payout notifications; falls back to `secret_key`.
    #[serde(serialize_with = "redact::secret")]
    pub payout_secret_key: Option<SecretString>,
    /// Still accepted during key rotation.
    #[serde(serialize_with = "redact::secret")]
    pub previous_secret_key: Option<SecretString>,
    #[serde(default)]
    pub auto_refund: bool,
    #[serde(default = "default_refund_method")]
    pub refund_method: String,
}

fn default_refund_method() -> String {
    "revoke".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointSettings {
    pub check: String,
    pub result: String,
    pub refund: String,
    pub capture: String,
    pub payout: String,
    pub success: String,
    pub failure: String,
    /// Script names for signing when a proxy rewrites the public path.
    pub script_names: ScriptNameOverrides,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        EndpointSettings {
            check: "/freedompay/check".into(),
            result: "/freedompay/result".into(),
            refund: "/freedompay/refund".into(),
            capture: "/freedompay/capture".into(),
            payout: "/freedompay/payout".into(),
            success: "/freedompay/success".into(),
            failure: "/freedompay/failure".into(),
            script_names: ScriptNameOverrides::default(),
        }
    }
}

impl EndpointSettings {
    /// The configured path of `kind`'s endpoint.
    pub fn path(&self, kind: crate::domain::CallbackKind) -> &str {
        use crate::domain::CallbackKind as K;
        match kind {
            K::Check => &self.check,
            K::Result => &self.result,
            K::Refund => &self.refund,
            K::Capture => &self.capture,
            K::Payout => &self.payout,
            K::Success => &self.success,
            K::Failure => &self.failure,
        }
    }
}

impl ScriptNameOverrides {
    /// The override for `kind`, if set.
    pub fn get(&self, kind: crate::domain::CallbackKind) -> Option<&str> {
        use crate::domain::CallbackKind as K;
        match kind {
            K::Check => self.check.as_deref(),
            K::Result => self.result.as_deref(),
            K::Refund => self.refund.as_deref(),
            K::Capture => self.capture.as_deref(),
            K::Payout => self.payout.as_deref(),
            K::Success => self.success.as_deref(),
            K::Failure => self.failure.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptNameOverrides {
    pub check: Option<String>,
    pub result: Option<String>,
    pub refund: Option<String>,
    pub capture: Option<String>,
    pub payout: Option<String>,
    pub success: Option<String>,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSettings {
    pub require_known_order: bool,
    pub amount_must_match: bool,
    pub currency_must_match: bool,
    pub allowed_currencies: Vec<String>,
    pub min_amount: Option<String>,
    pub max_amount: Option<String>,
    pub reject_expired: bool,
    pub reject_already_paid: bool,
    pub reject_testing_mode: bool,
    /// The UTC offset `pg_payment_date` is read at (`+05:00`, Almaty, by
    /// default; FreedomPay does not state it).
    pub payment_date_utc_offset: String,
}

impl Default for RulesSettings {
    fn default() -> Self {
        RulesSettings {
            require_known_order: true,
            amount_must_match: true,
            currency_must_match: true,
            allowed_currencies: Vec::new(),
            min_amount: Some("0.01".into()),
            max_amount: None,
            reject_expired: true,
            reject_already_paid: true,
            reject_testing_mode: false,
            payment_date_utc_offset: "+05:00".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignatureSettings {
    /// Accept the raw-sort and drop-empty signature variants when the
    /// canonical rule fails (protocol reference §1.2).
    pub allow_variants: bool,
}

impl Default for SignatureSettings {
    fn default() -> Self {
        SignatureSettings {
            allow_variants: true,
        }
    }
}

/// Where the payer's browser goes after a success or failure redirect. Unset:
/// a small HTML page is shown instead.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedirectSettings {
    pub success_url: Option<String>,
    pub failure_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` (human) or `json` (one object per line).
    pub format: String,
    /// A tracing filter, e.g. `info` or `freedompay_receiver=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

/// A parse error, attributed to the key the `config` crate records in it.
fn parse_error(error: config::ConfigError) -> ConfigError {
    let key = match &error {
        config::ConfigError::Type { key: Some(key), .. }
        | config::ConfigError::At { key: Some(key), .. }
        | config::ConfigError::NotFound(key) => key.clone(),
        _ => "config".to_owned(),
    };
    ConfigError::new(key, error.to_string())
}

/// Where `GET /metrics` is served.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// An address of its own (the default, `127.0.0.1:9090`: loopback, off
    /// the public port); `"server"`: on `server.listen` with the callbacks;
    /// `"off"`: not served.
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: DEFAULT_METRICS_LISTEN.into(),
        }
    }
}

/// Where `/metrics` is served unless configured otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9090";

/// Where `/metrics` is served, as [`MetricsSettings::listen`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsPlace {
    /// On a listener of its own.
    Address(std::net::SocketAddr),
    /// On the callback listener.
    Server,
    /// Nowhere.
    Off,
}

impl MetricsSettings {
    /// The parsed `listen`; an error names the key.
    pub fn place(&self) -> Result<MetricsPlace, ConfigError> {
        match self.listen.trim() {
            "server" => Ok(MetricsPlace::Server),
            "off" => Ok(MetricsPlace::Off),
            address => address.parse().map(MetricsPlace::Address).map_err(|_| {
                ConfigError::new(
                    "metrics.listen",
                    format!(
                        "{:?} is not an address like 127.0.0.1:9090, \"server\" or \"off\"",
                        self.listen
                    ),
                )
            }),
        }
    }
}

/// The read-only operator console (`src/console`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// A loopback address to serve the console on; unset: no console.
    pub listen: Option<String>,
    /// A file whose first line is the console's token (bearer token, or the
    /// password of HTTP basic authentication with any user name).
    pub token_file: Option<std::path::PathBuf>,
}

/// One endpoint of the merchant's services (`[[webhooks]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// How operators, metrics and the outbox name it: letters, digits, '.',
    /// '_' and '-'.
    pub name: String,
    /// `http://` or `https://`; redirects from it are not followed.
    #[serde(serialize_with = "redact::url")]
    pub url: String,
    /// `whsec_` and base64 of 24 to 64 bytes.
    #[serde(default, serialize_with = "redact::secret")]
    pub secret: Option<SecretString>,
    /// Alternative to `secret`: a file holding it (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// During a rotation: the old secret, which signs too until the
    /// endpoint has moved to the new one.
    #[serde(default, serialize_with = "redact::secret")]
    pub previous_secret: Option<SecretString>,
    #[serde(default)]
    pub previous_secret_file: Option<PathBuf>,
    /// Message types sent (`payment.succeeded`, …); unset: all.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Merchant ids whose messages are sent; unset: all.
    #[serde(default)]
    pub merchants: Option<Vec<String>>,
    /// Deadline of one delivery, connecting and reading the answer included.
    #[serde(default = "default_webhook_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_webhook_timeout_secs() -> u64 {
    10
}

/// Most seconds one delivery may take.
pub const MAX_WEBHOOK_TIMEOUT_SECS: u64 = 60;

impl WebhookSettings {
    /// The signing secrets, current first: `secret` or `secret_file`, then
    /// `previous_secret` or `previous_secret_file` if set. An error names the
    /// key (without the entry's index) and never quotes the secret.
    pub fn secrets(&self) -> Result<Vec<SigningSecret>, ConfigError> {
        let current = read_signing_secret(
            ("secret", self.secret.as_ref()),
            ("secret_file", self.secret_file.as_deref()),
        )?
        .ok_or_else(|| ConfigError::new("secret", "missing (or set secret_file)"))?;
        let previous = read_signing_secret(
            ("previous_secret", self.previous_secret.as_ref()),
            ("previous_secret_file", self.previous_secret_file.as_deref()),
        )?;
        Ok(std::iter::once(current).chain(previous).collect())
    }

    /// The endpoint these settings describe; the first problem names its
    /// key (without the entry's index). [`WebhookSettings::problems`] has
    /// them all.
    pub fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        Ok(Endpoint {
            name: self.name.clone(),
            url: self.parsed_url()?,
            secrets: self.secrets()?,
            types: self.message_types()?,
            merchants: self.merchant_ids()?,
            timeout: self.timeout()?,
        })
    }

    /// Every problem of this entry, each naming its key (without the index).
    pub fn problems(&self) -> Vec<ConfigError> {
        [
            self.parsed_url().err(),
            self.secrets().err(),
            self.message_types().err(),
            self.merchant_ids().err(),
            self.timeout().err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn parsed_url(&self) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::new("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::new(
                "url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        Ok(url)
    }

    fn message_types(&self) -> Result<Option<BTreeSet<MessageType>>, ConfigError> {
        let Some(names) = &self.types else {
            return Ok(None);
        };
        if names.is_empty() {
            return Err(ConfigError::new(
                "types",
                "is empty, so nothing would be sent; leave it out for every type",
            ));
        }
        names
            .iter()
            .map(|name| {
                MessageType::parse(name).ok_or_else(|| {
                    ConfigError::new(
                        "types",
                        format!(
                            "{name:?} is not a message type; known: {}",
                            MessageType::ALL.map(MessageType::as_str).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn merchant_ids(&self) -> Result<Option<BTreeSet<String>>, ConfigError> {
        match &self.merchants {
            Some(ids) if ids.is_empty() => Err(ConfigError::new(
                "merchants",
                "is empty, so nothing would be sent; leave it out for every merchant",
            )),
            other => Ok(other.as_ref().map(|ids| ids.iter().cloned().collect())),
        }
    }

    fn timeout(&self) -> Result<Duration, ConfigError> {
        if !(1..=MAX_WEBHOOK_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(ConfigError::new(
                "timeout_secs",
                format!("must be 1 to {MAX_WEBHOOK_TIMEOUT_SECS}"),
            ));
        }
        Ok(Duration::from_secs(self.timeout_secs))
    }
}

/// A signing secret given inline or in a file (not both), or `None` when
/// neither is set.
fn read_signing_secret(
    (inline_key, inline): (&str, Option<&SecretString>),
    (file_key, file): (&str, Option<&Path>),
) -> Result<Option<SigningSecret>, ConfigError> {
    let (key, text) = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                inline_key,
                format!("set {inline_key} or {file_key}, not both"),
            ));
        }
        (Some(secret), None) => (inline_key, secret.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(file_key, format!("cannot read {}: {e}", path.display()))
            })?;
            (file_key, SecretString::from(text))
        }
        (None, None) => return Ok(None),
    };
    SigningSecret::parse(text.expose_secret())
        .map(Some)
        .map_err(|e| ConfigError::new(key, e.to_string()))
}

/// How deliveries to the `[[webhooks]]` endpoints are retried and claimed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookDeliverySettings {
    /// The wait after the 1st, 2nd, … failed attempt; after the last the
    /// delivery is dead (kept and replayable).
    pub retry_delays_secs: Vec<u64>,
    /// Each wait is moved by up to ± this percentage, at random.
    pub jitter_percent: u32,
    /// An endpoint's `Retry-After` is honoured up to this long.
    pub max_retry_after_secs: u64,
    /// How often the dispatcher looks for due deliveries when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery is this instance's before another may take it.
    pub lease_secs: u64,
    /// Whether `serve` sends deliveries itself; false: it only writes the
    /// outbox, and `freedompay-receiver deliver` processes send.
    pub in_serve: bool,
}

impl Default for WebhookDeliverySettings {
    fn default() -> Self {
        WebhookDeliverySettings {
            retry_delays_secs: DEFAULT_RETRY_DELAYS_SECS.to_vec(),
            jitter_percent: DEFAULT_JITTER_PERCENT,
            max_retry_after_secs: DEFAULT_MAX_RETRY_AFTER_SECS,
            poll_interval_ms: 1000,
            lease_secs: 60,
            in_serve: true,
        }
    }
}

impl WebhookDeliverySettings {
    /// The retry schedule these settings describe (random jitter).
    pub fn schedule(&self) -> Schedule {
        Schedule::new(
            self.retry_delays_secs
                .iter()
                .map(|secs| Duration::from_secs(*secs))
                .collect(),
            self.jitter_percent,
            Duration::from_secs(self.max_retry_after_secs),
        )
    }
}

/// A configuration problem, phrased as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then `path` (if any), then `FPR__…` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::finish(Self::sources(path)?)
    }

    /// Defaults (compiled in), the file, then the environment.
    fn sources(
        path: Option<&Path>,
    ) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} does not exist", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        env::apply(builder, std::env::vars_os())
    }

    /// Parses settings from TOML text alone (no environment layer).
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Self::finish(
            config::Config::builder()
                .add_source(config::File::from_str(text, config::FileFormat::Toml)),
        )
    }

    fn finish(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Settings, ConfigError> {
        let settings = Self::parse(builder)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads like [`Settings::load`] without the checks of [`validate`], so
    /// that `check-config` can report every problem at once.
    pub fn load_unchecked(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::parse(Self::sources(path)?)
    }

    fn parse(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Settings, ConfigError> {
        let raw = builder.build().map_err(parse_error)?;
        raw.try_deserialize().map_err(parse_error)
    }

    /// Checks what serde cannot (see [`validate`]); the first problem, if any.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match validate::problems(self).into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// The effective configuration as TOML, every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

impl Settings {
    /// The `[[webhooks]]` endpoints; an error names the entry and its key.
    pub fn webhook_endpoints(&self) -> Result<Vec<Endpoint>, ConfigError> {
        self.webhooks
            .iter()
            .enumerate()
            .map(|(i, webhook)| {
                webhook
                    .endpoint()
                    .map_err(|e| ConfigError::new(format!("webhooks[{i}].{}", e.key), e.message))
            })
            .collect()
    }

    /// The merchant a command acts for: the one named, or the only one.
    pub fn merchant(&self, id: Option<&str>) -> Result<&MerchantSettings, ConfigError> {
        match id {
            Some(id) => self.merchants.iter().find(|m| m.id == id).ok_or_else(|| {
                ConfigError::new("--merchant-id", format!("no merchant {id:?} in the config"))
            }),
            None => match self.merchants.as_slice() {
                [only] => Ok(only),
                _ => Err(ConfigError::new(
                    "--merchant-id",
                    "several merchants are configured, name one",
                )),
            },
        }
    }
}

impl MerchantSettings {
    /// The payment key, from `secret_key` or `secret_key_file`.
    pub fn payment_key(&self) -> Result<SecretString, ConfigError> {
        match (&self.secret_key, &self.secret_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "secret_key",
                "set secret_key or secret_key_file, not both",
            )),
            (Some(key), None) if key.expose_secret().trim().is_empty() => Err(ConfigError::new(
                "secret_key",
                "must not be empty or only whitespace",
            )),
            (Some(key), None) => Ok(key.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "secret_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let key = text.trim_end_matches(['\r', '\n']);
                if key.trim().is_empty() {
                    return Err(ConfigError::new(
                        "secret_key_file",
                        format!("{} is empty or only whitespace", path.display()),
                    ));
                }
                Ok(SecretString::from(key))
            }
            (None, None) => Err(ConfigError::new(
                "secret_key",
                "missing (or set secret_key_file)",
            )),
        }
    }

    /// The optional keys, by name: each is refused when empty, and no two
    /// merchants may share any key.
    pub fn optional_keys(&self) -> [(&'static str, Option<&SecretString>); 2] {
        [
            ("payout_secret_key", self.payout_secret_key.as_ref()),
            ("previous_secret_key", self.previous_secret_key.as_ref()),
        ]
    }
}
