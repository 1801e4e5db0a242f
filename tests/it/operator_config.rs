//! `check-config` (and `serve`'s refusal of a bad configuration), run as the
//! real binary: each kind of mistake is one line naming its key, exit code 2.

use std::process::{Command, Output};

const VALID: &str = r#"
[database]
url = "postgres://receiver:db-password-123@127.0.0.1:1/freedompay"

[[merchants]]
id = "545774"
secret_key = "very-secret-merchant-key"
payout_secret_key = "very-secret-payout-key"
"#;

fn run(config: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("FPR_CONFIG")
        .output()
        .unwrap()
}

/// Runs check-config and returns its error lines, asserting exit code 2.
#[track_caller]
fn problems(config: &str) -> Vec<String> {
    let out = run(config, &["check-config"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_valid_config_prints_with_every_secret_redacted() {
    let out = run(VALID, &["check-config"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("secret_key = \"[redacted]\""), "{text}");
    assert!(
        text.contains("postgres://receiver:%5Bredacted%5D@127.0.0.1:1/freedompay"),
        "{text}"
    );
    for secret in [
        "very-secret-merchant-key",
        "very-secret-payout-key",
        "db-password-123",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn a_missing_key_is_named() {
    let lines = problems("[[merchants]]\nid = \"545774\"\n");
    assert_eq!(
        lines,
        ["error: merchants[0].secret_key: missing (or set secret_key_file)"]
    );
    let lines = problems("[server]\nlisten = \"127.0.0.1:8080\"\n");
    assert_eq!(
        lines,
        ["error: merchants: at least one [[merchants]] entry is required"]
    );
}

#[test]
fn endpoint_paths_must_be_unique_and_absolute() {
    let config = format!(
        "{VALID}\n[endpoints]\ncheck = \"freedompay/check\"\nrefund = \"/freedompay/result\"\n"
    );
    assert_eq!(
        problems(&config),
        [
            "error: endpoints.check: \"freedompay/check\" must start with /",
            "error: endpoints.refund: /freedompay/result is also endpoints.result",
        ]
    );
}

#[test]
fn urls_must_parse() {
    let config = format!("{VALID}\n[redirect]\nsuccess_url = \"shop.example.kz/thanks\"\n");
    let lines = problems(&config);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]
            .starts_with("error: redirect.success_url: \"shop.example.kz/thanks\" is not a URL"),
        "{lines:?}"
    );
}

#[test]
fn outbound_api_and_reconciler_settings_are_checked() {
    let config = VALID.replace(
        "payout_secret_key",
        "refund_method = \"paypal\"\npayout_secret_key",
    ) + "\n[api]\nbase_url = \"api.freedompay.kz\"\ntimeout_secs = 0\n\
         [reconcile]\ninterval_secs = 0\nrefund_max_attempts = 0\n";
    let lines = problems(&config);
    for expected in [
        "error: merchants[0].refund_method: must be revoke, superapp, v5 or card_api",
        "error: api.base_url: \"api.freedompay.kz\" is not a URL",
        "error: reconcile.interval_secs: must be at least 1",
        "error: reconcile.refund_max_attempts: must be at least 1",
        "error: api.timeout_secs: must be at least 1",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "{expected} not in {lines:?}"
        );
    }
}

#[test]
fn amounts_must_be_decimals() {
    let config = format!("{VALID}\n[rules]\nmin_amount = \"1e3\"\nmax_amount = \"5,000\"\n");
    let lines = problems(&config);
    assert!(
        lines[0].starts_with("error: rules.min_amount: amount \"1e3\" is not a decimal"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("error: rules.max_amount: amount \"5,000\""),
        "{lines:?}"
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_named() {
    let lines = problems(&format!("{VALID}\n[server]\nmax_body_bytes = \"lots\"\n"));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("server.max_body_bytes"), "{lines:?}");
    let lines = problems(&format!("{VALID}\n[server]\nlisten_address = \"x\"\n"));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("listen_address"), "{lines:?}");
}

#[test]
fn addresses_and_database_urls_are_checked() {
    let config = VALID.replace("postgres://receiver", "mysql://receiver")
        + "\n[server]\nlisten = \"localhost\"\n";
    let lines = problems(&config);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("error: server.listen:"));
    assert!(lines[1].starts_with("error: database.url: must start with sqlite:// or postgres://"));
    assert!(!lines.join("\n").contains("db-password-123"));
}

#[test]
fn connect_reports_an_unreachable_database_without_its_password() {
    let out = run(VALID, &["check-config", "--connect"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: database.url: cannot connect"),
        "{err}"
    );
    assert!(!err.contains("db-password-123"), "{err}");
}

#[test]
fn serve_refuses_a_bad_config_before_it_binds() {
    let out = run(
        "[[merchants]]\nid = \"1\"\nsecret_key = \"k\"\n[endpoints]\ncheck = \"/healthz\"\n",
        &["serve"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: endpoints.check: /healthz is reserved for the service itself"
    );
}

#[cfg(unix)]
#[test]
fn keys_come_from_files_and_a_key_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("fp_key");
    std::fs::write(&key_file, "key-from-a-file\n").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "[[merchants]]\nid = \"1\"\nsecret_key_file = \"{}\"\n",
        key_file.display()
    );
    let out = run(&config, &["check-config"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret_key_file") && err.contains("readable by group or others"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("key-from-a-file"));

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&config, &["check-config"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("secret_key_file"));
}

#[test]
fn keys_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[[merchants]]\nid = \"1\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env("FPR__MERCHANTS__0__SECRET_KEY", "key-from-the-environment")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("secret_key = \"[redacted]\"") && !text.contains("key-from-the-environment")
    );
}
