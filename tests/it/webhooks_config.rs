//! `[[webhooks]]` and `[webhook_delivery]`: what parses, what `check-config`
//! refuses (one line naming the key, exit code 2), secrets never printed,
//! and the endpoints the settings compile into.

use std::process::{Command, Output};
use std::time::Duration;

use freedompay_receiver::config::Settings;
use freedompay_receiver::webhooks::MessageType;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const MERCHANTS: &str = r#"
[[merchants]]
id = "545774"
secret_key = "very-secret-merchant-key"

[[merchants]]
id = "545775"
secret_key = "another-merchant-key-1"
"#;

fn valid() -> String {
    format!(
        r#"{MERCHANTS}
[[webhooks]]
name = "orders"
url = "https://hooks:url-password-9@orders.example/freedompay"
secret = "{SECRET}"
previous_secret = "{OLD_SECRET}"
types = ["payment.succeeded", "payment.refunded"]
merchants = ["545774"]
timeout_secs = 5

[[webhooks]]
name = "ledger"
url = "http://127.0.0.1:3000/hook"
secret = "{OLD_SECRET}"
"#
    )
}

fn run(config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("FPR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// check-config's error lines, asserting exit code 2.
#[track_caller]
fn problems(config: &str) -> Vec<String> {
    let out = run(config, &["check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr.lines().map(str::to_owned).collect()
}

#[test]
fn webhooks_config_valid_endpoints_print_with_secrets_redacted() {
    let out = run(&valid(), &["check-config"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[[webhooks]]"), "{text}");
    assert!(text.contains("name = \"ledger\""), "{text}");
    assert!(text.contains("secret = \"[redacted]\""), "{text}");
    assert!(text.contains("previous_secret = \"[redacted]\""), "{text}");
    assert!(text.contains("[webhook_delivery]"), "{text}");
    for secret in [
        "C2FVsBQIhrscChlQIMV",
        "MfKQ9r8GKYqrTwjUPD8",
        "url-password-9",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
        assert!(!stderr.contains(secret), "{secret} leaked: {stderr}");
    }
}

#[test]
fn webhooks_config_compiles_into_endpoints() {
    let settings = Settings::from_toml(&valid()).unwrap();
    let endpoints = settings.webhook_endpoints().unwrap();
    assert_eq!(endpoints.len(), 2);
    let orders = &endpoints[0];
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.secrets.len(), 2);
    assert_eq!(orders.timeout, Duration::from_secs(5));
    assert!(orders.wants(MessageType::PaymentSucceeded, "545774"));
    assert!(orders.wants(MessageType::PaymentRefunded, "545774"));
    assert!(!orders.wants(MessageType::PaymentFailed, "545774"));
    assert!(!orders.wants(MessageType::PaymentSucceeded, "545775"));
    assert!(!format!("{orders:?}").contains("url-password-9"));
    let ledger = &endpoints[1];
    assert_eq!(ledger.secrets.len(), 1);
    assert_eq!(ledger.timeout, Duration::from_secs(10));
    for t in MessageType::ALL {
        assert!(ledger.wants(t, "545774") && ledger.wants(t, "545775"));
    }
    // No [[webhooks]]: none, and that is valid.
    let none = Settings::from_toml(MERCHANTS).unwrap();
    assert!(none.webhook_endpoints().unwrap().is_empty());
}

#[test]
fn webhooks_config_secrets_from_files_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("current");
    let previous = dir.path().join("previous");
    std::fs::write(&current, format!("{SECRET}\n")).unwrap();
    std::fs::write(&previous, format!("{OLD_SECRET}\n")).unwrap();
    let config = format!(
        "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\nurl = \"https://orders.example/hook\"\nsecret_file = {:?}\nprevious_secret_file = {:?}\n",
        current.display().to_string(),
        previous.display().to_string()
    );
    let settings = Settings::from_toml(&config).unwrap();
    assert_eq!(settings.webhook_endpoints().unwrap()[0].secrets.len(), 2);

    // Through the environment: the secret, and a list of types.
    let config = format!(
        "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\nurl = \"https://orders.example/hook\"\n"
    );
    let out = run(&config, &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("error: webhooks[0].secret: missing (or set secret_file)")
    );
    let out = run(
        &config,
        &["check-config"],
        &[
            ("FPR__WEBHOOKS__0__SECRET", SECRET),
            (
                "FPR__WEBHOOKS__0__TYPES",
                "payment.succeeded, payout.failed",
            ),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("types = [\n    \"payment.succeeded\",\n    \"payout.failed\",\n]"),
        "{text}"
    );
    assert!(!text.contains("C2FVsBQIhrscChlQIMV"), "{text}");
}

#[test]
fn webhooks_config_the_example_parses_with_its_webhook_uncommented() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
            .unwrap();
    let settings = Settings::from_toml(&example).unwrap();
    assert!(settings.webhooks.is_empty());
    assert_eq!(
        settings.webhook_delivery.retry_delays_secs,
        [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
    );
    // The commented [[webhooks]] block, uncommented with one secret of each
    // pair (the others are alternatives) and a real secret file.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let mut uncommented = String::new();
    let mut inside = false;
    for line in example.lines() {
        if line == "# [[webhooks]]" {
            inside = true;
        } else if !line.starts_with("# ") {
            inside = false;
        }
        if !inside {
            uncommented.push_str(line);
        } else if let Some(rest) = line.strip_prefix("# ") {
            let key = rest.split_whitespace().next().unwrap_or("");
            match key {
                "secret" | "previous_secret" | "previous_secret_file" => continue,
                "secret_file" => uncommented
                    .push_str(&format!("secret_file = {:?}", secret.display().to_string())),
                _ => uncommented.push_str(rest),
            }
        }
        uncommented.push('\n');
    }
    assert!(uncommented.contains("\n[[webhooks]]\n"), "{uncommented}");
    let settings = Settings::from_toml(&uncommented).unwrap();
    let endpoints = settings.webhook_endpoints().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].timeout, Duration::from_secs(10));
}

#[test]
fn webhooks_config_each_mistake_is_refused_by_check_config() {
    let webhook = |body: &str| {
        format!("{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\nsecret = \"{SECRET}\"\n{body}\n")
    };
    let url = "url = \"https://orders.example/hook\"";
    let cases: Vec<(String, &str)> = vec![
        (
            webhook("url = \"orders.example/hook\""),
            "error: webhooks[0].url: not a URL: relative URL without a base",
        ),
        (
            webhook("url = \"ftp://orders.example/hook\""),
            "error: webhooks[0].url: must be an http:// or https:// URL with a host",
        ),
        (
            format!(
                "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\n{url}\nsecret = \"C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n"
            ),
            "error: webhooks[0].secret: must start with whsec_ (a secret like whsec_ followed by base64)",
        ),
        (
            format!(
                "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\n{url}\nsecret = \"whsec_%%%\"\n"
            ),
            "error: webhooks[0].secret: the part after whsec_ is not standard base64",
        ),
        (
            format!(
                "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\n{url}\nsecret = \"whsec_MDEyMzQ1Njc4OWFiY2RlZg==\"\n"
            ),
            "error: webhooks[0].secret: decodes to 16 bytes; a secret must have 24 to 64 bytes",
        ),
        (
            format!(
                "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\n{url}\nsecret = \"whsec_{}\"\n",
                "QUFB".repeat(22)
            ),
            "error: webhooks[0].secret: decodes to 66 bytes; a secret must have 24 to 64 bytes",
        ),
        (
            format!("{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\n{url}\n"),
            "error: webhooks[0].secret: missing (or set secret_file)",
        ),
        (
            webhook(&format!("{url}\nsecret_file = \"/nonexistent\"")),
            "error: webhooks[0].secret: set secret or secret_file, not both",
        ),
        (
            webhook(&format!("{url}\nprevious_secret = \"whsec_c2hvcnQ=\"")),
            "error: webhooks[0].previous_secret: decodes to 5 bytes; a secret must have 24 to 64 bytes",
        ),
        (
            webhook(&format!(
                "{url}\ntypes = [\"payment.succeeded\", \"payment.paid\"]"
            )),
            "error: webhooks[0].types: \"payment.paid\" is not a message type; known: payment.succeeded, payment.failed, payment.rejected, payment.refunded, payment.captured, payout.succeeded, payout.failed, event.flagged",
        ),
        (
            webhook(&format!("{url}\ntypes = []")),
            "error: webhooks[0].types: is empty, so nothing would be sent; leave it out for every type",
        ),
        (
            webhook(&format!("{url}\nmerchants = [\"999\"]")),
            "error: webhooks[0].merchants[0]: \"999\" is not a configured merchant ([[merchants]] id)",
        ),
        (
            webhook(&format!("{url}\ntimeout_secs = 0")),
            "error: webhooks[0].timeout_secs: must be 1 to 60",
        ),
        (
            webhook(&format!("{url}\ntimeout_secs = 61")),
            "error: webhooks[0].timeout_secs: must be 1 to 60",
        ),
        (
            format!(
                "{}\n[webhook_delivery]\nlease_secs = 10\n",
                webhook(&format!("{url}\ntimeout_secs = 10"))
            ),
            "error: webhooks[0].timeout_secs: 10 is not below webhook_delivery.lease_secs (10): a delivery would outlive its lease",
        ),
        (
            format!(
                "{MERCHANTS}\n[[webhooks]]\nname = \"orders service\"\n{url}\nsecret = \"{SECRET}\"\n"
            ),
            "error: webhooks[0].name: \"orders service\" is not an endpoint name: letters, digits, '.', '_' and '-' only, 1 to 64",
        ),
        (
            format!(
                "{}\n[[webhooks]]\nname = \"orders\"\nurl = \"https://ledger.example/hook\"\nsecret = \"{OLD_SECRET}\"\n",
                webhook(url)
            ),
            "error: webhooks[1].name: \"orders\" is already webhooks[0]'s name; each endpoint needs its own",
        ),
        (
            format!("{MERCHANTS}\n[webhook_delivery]\nretry_delays_secs = [5, 0]\n"),
            "error: webhook_delivery.retry_delays_secs[1]: 0 must be 1 to 604800 (a week)",
        ),
        (
            format!("{MERCHANTS}\n[webhook_delivery]\njitter_percent = 60\n"),
            "error: webhook_delivery.jitter_percent: must be 0 to 50",
        ),
        (
            format!("{MERCHANTS}\n[webhook_delivery]\npoll_interval_ms = 0\n"),
            "error: webhook_delivery.poll_interval_ms: must be at least 1",
        ),
    ];
    for (config, expected) in cases {
        let lines = problems(&config);
        assert_eq!(lines, [expected], "{config}");
        assert!(!lines.concat().contains("C2FVsBQIhrscChlQIMV"));
    }
}

#[test]
fn webhooks_config_every_problem_of_an_entry_is_reported_at_once() {
    let config = format!(
        "{MERCHANTS}\n[[webhooks]]\nname = \"orders\"\nurl = \"ftp://orders.example/hook\"\nsecret = \"nope\"\ntypes = [\"payment.paid\"]\ntimeout_secs = 0\n"
    );
    let lines = problems(&config);
    let keys: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start_matches("error: ").split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "webhooks[0].url",
            "webhooks[0].secret",
            "webhooks[0].types",
            "webhooks[0].timeout_secs"
        ],
        "{lines:?}"
    );
}
