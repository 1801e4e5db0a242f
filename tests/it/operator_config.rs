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

/// Runs `check-config` with `env` set (every other FPR__ variable removed).
fn check_with_env(config: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"));
    command.arg("--config").arg(&path).arg("check-config");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FPR") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn empty_and_blank_keys_are_refused_wherever_they_come_from() {
    // In the file.
    let config = VALID.replace(
        "payout_secret_key = \"very-secret-payout-key\"",
        "payout_secret_key = \"\"\nprevious_secret_key = \"   \"",
    );
    assert_eq!(
        problems(&config),
        [
            "error: merchants[0].payout_secret_key: must not be empty or only whitespace (leave it out instead)",
            "error: merchants[0].previous_secret_key: must not be empty or only whitespace (leave it out instead)",
        ]
    );
    let lines = problems(&VALID.replace("very-secret-merchant-key", " \t "));
    assert_eq!(
        lines,
        ["error: merchants[0].secret_key: must not be empty or only whitespace"]
    );
    // From an empty environment variable.
    for name in [
        "FPR__MERCHANTS__0__PREVIOUS_SECRET_KEY",
        "FPR__MERCHANTS__0__PAYOUT_SECRET_KEY",
        "FPR__MERCHANTS__0__SECRET_KEY",
    ] {
        let out = check_with_env(VALID, &[(name, "")]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let key = name.rsplit("__").next().unwrap().to_ascii_lowercase();
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!("error: merchants[0].{key}: must not be empty")),
            "{lines:?}"
        );
    }
}

#[test]
fn serve_refuses_an_empty_key_before_it_binds() {
    let out = run(
        &format!("{VALID}\n[server]\nlisten = \"127.0.0.1:0\"\n")
            .replace("very-secret-payout-key", ""),
        &["serve"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: merchants[0].payout_secret_key: must not be empty or only whitespace (leave it out instead)"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_of_whitespace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("fp_key");
    std::fs::write(&key_file, "  \n").unwrap();
    let config = format!(
        "[[merchants]]\nid = \"1\"\nsecret_key_file = \"{}\"\n",
        key_file.display()
    );
    let lines = problems(&config);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("error: merchants[0].secret_key_file:")
            && lines[0].ends_with("is empty or only whitespace"),
        "{lines:?}"
    );
}

#[test]
fn short_keys_are_warned_about_and_redaction_tells_empty_from_set() {
    let out = run(
        "[[merchants]]\nid = \"1\"\nsecret_key = \"short-key\"\n",
        &["check-config"],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: merchants[0].secret_key: shorter than 16 characters"),
        "{err}"
    );
    assert!(!err.contains("short-key"), "{err}");
    let out = run(VALID, &["check-config"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("shorter than"));
}

#[test]
fn two_merchants_may_not_share_a_key() {
    let second = "\n[[merchants]]\nid = \"100200\"\nsecret_key = \"second-merchant-key\"\n";
    assert_eq!(
        run(&format!("{VALID}{second}"), &["check-config"])
            .status
            .code(),
        Some(0)
    );
    let same_secret = format!(
        "{VALID}{}",
        second.replace("second-merchant-key", "very-secret-merchant-key")
    );
    assert_eq!(
        problems(&same_secret),
        [
            "error: merchants[1].secret_key: is the same key as merchants[0].secret_key; each merchant signs with its own keys"
        ]
    );
    // Any of their keys: the second merchant's rotation key is the first's payout key.
    let crossed = format!("{VALID}{second}previous_secret_key = \"very-secret-payout-key\"\n");
    assert_eq!(
        problems(&crossed),
        [
            "error: merchants[1].previous_secret_key: is the same key as merchants[0].payout_secret_key; each merchant signs with its own keys"
        ]
    );
    // From the environment too.
    let out = check_with_env(
        &format!("{VALID}{second}"),
        &[("FPR__MERCHANTS__1__SECRET_KEY", "very-secret-merchant-key")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_lines(&out)[0].starts_with("error: merchants[1].secret_key: is the same key"));
}

#[test]
fn metrics_may_not_take_the_callback_port() {
    for (server, metrics) in [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("0.0.0.0:8080", "127.0.0.1:8080"),
        ("10.1.2.3:8080", "0.0.0.0:8080"),
        ("[::1]:8080", "[::]:8080"),
    ] {
        let config = format!(
            "{VALID}\n[server]\nlisten = \"{server}\"\n[metrics]\nlisten = \"{metrics}\"\n"
        );
        let lines = problems(&config);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!(
                "error: metrics.listen: {metrics} clashes with server.listen {server}"
            )),
            "{lines:?}"
        );
    }
    for (server, metrics) in [
        ("127.0.0.1:8080", "127.0.0.1:9090"),
        ("127.0.0.1:8080", "127.0.0.2:8080"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("0.0.0.0:8080", "server"),
        ("0.0.0.0:8080", "off"),
    ] {
        let config = format!(
            "{VALID}\n[server]\nlisten = \"{server}\"\n[metrics]\nlisten = \"{metrics}\"\n"
        );
        let out = run(&config, &["check-config"]);
        assert_eq!(out.status.code(), Some(0), "{server} {metrics}: {out:?}");
    }
    let lines = problems(&format!("{VALID}\n[metrics]\nlisten = \"public\"\n"));
    assert!(lines[0].starts_with("error: metrics.listen: \"public\" is not an address"));
}

#[test]
fn script_names_must_be_distinct_and_not_empty() {
    let config = format!("{VALID}\n[endpoints]\ncheck = \"/a/pay\"\nresult = \"/b/pay\"\n");
    assert_eq!(
        problems(&config),
        [
            "error: endpoints.result: its script name \"pay\" is also endpoints.check's, so a callback signed for one would verify on the other"
        ]
    );
    let config = format!("{VALID}\n[endpoints.script_names]\nrefund = \"result\"\n");
    assert_eq!(
        problems(&config),
        [
            "error: endpoints.refund: its script name \"result\" is also endpoints.result's, so a callback signed for one would verify on the other"
        ]
    );
    let config = format!("{VALID}\n[endpoints.script_names]\ncheck = \"\"\npayout = \"  \"\n");
    assert_eq!(
        problems(&config),
        [
            "error: endpoints.script_names.check: must not be empty (leave it out to use the last segment of the path)",
            "error: endpoints.script_names.payout: must not be empty (leave it out to use the last segment of the path)",
        ]
    );
}

#[test]
fn merchant_ids_are_letters_digits_dots_dashes_and_underscores() {
    for id in ["545 774", "", "a/b", "ид", "x\ty", &"9".repeat(65)] {
        let lines = problems(&VALID.replace("\"545774\"", &format!("{id:?}")));
        assert_eq!(lines.len(), 1, "{id:?}: {lines:?}");
        assert!(lines[0].starts_with("error: merchants[0].id:"), "{lines:?}");
    }
    for id in ["545774", "shop-1", "shop_2.kz", &"9".repeat(64)] {
        let out = run(&VALID.replace("545774", id), &["check-config"]);
        assert_eq!(out.status.code(), Some(0), "{id}: {out:?}");
    }
}

#[test]
fn the_demo_key_is_refused_off_loopback() {
    let demo = "[[merchants]]\nid = \"545774\"\nsecret_key = \"demo-secret-key-change-me\"\n";
    // The quick start: loopback is fine.
    for listen in ["127.0.0.1:8080", "[::1]:8080"] {
        let out = check_with_env(demo, &[("FPR__SERVER__LISTEN", listen)]);
        assert_eq!(out.status.code(), Some(0), "{listen}: {out:?}");
    }
    for listen in ["0.0.0.0:8080", "192.0.2.10:8080", "[::]:8080"] {
        let out = check_with_env(demo, &[("FPR__SERVER__LISTEN", listen)]);
        assert_eq!(out.status.code(), Some(2), "{listen}");
        assert_eq!(
            stderr_lines(&out),
            [format!(
                "error: merchants[0].secret_key: is the example's demo key, refused when server.listen ({listen}) is not loopback; set the merchant's own key (e.g. FPR__MERCHANTS__0__SECRET_KEY)"
            )]
        );
    }
    // The shipped example with the container's listen address.
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
            .unwrap();
    let out = check_with_env(&example, &[("FPR__SERVER__LISTEN", "0.0.0.0:8080")]);
    assert_eq!(out.status.code(), Some(2));
    let out = check_with_env(
        &example,
        &[
            ("FPR__SERVER__LISTEN", "0.0.0.0:8080"),
            (
                "FPR__MERCHANTS__0__SECRET_KEY",
                "the-merchants-own-key-0001",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn list_keys_take_comma_separated_values_from_the_environment() {
    let out = check_with_env(
        VALID,
        &[
            ("FPR__SERVER__TRUSTED_PROXIES", "10.0.0.0/8"),
            (
                "FPR__SERVER__ALLOWED_SOURCES",
                "192.0.2.0/24, 2001:db8::/32",
            ),
            ("FPR__RULES__ALLOWED_CURRENCIES", "KZT,USD"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "trusted_proxies = [\"10.0.0.0/8\"]",
        "allowed_sources = [\n    \"192.0.2.0/24\",\n    \"2001:db8::/32\",\n]",
        "allowed_currencies = [\n    \"KZT\",\n    \"USD\",\n]",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    // An empty value is an empty list, overriding the file's.
    let out = check_with_env(
        &format!("{VALID}\n[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"),
        &[("FPR__SERVER__TRUSTED_PROXIES", "")],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trusted_proxies = []"));
    // A bad item is named by its key.
    let out = check_with_env(
        VALID,
        &[("FPR__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,nonsense")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_lines(&out)[0].starts_with("error: server.trusted_proxies"),
        "{out:?}"
    );
    let out = check_with_env(VALID, &[("FPR__RULES__ALLOWED_CURRENCIES", "KZT,US")]);
    assert_eq!(
        stderr_lines(&out),
        ["error: rules.allowed_currencies[1]: \"US\" is not a 3-letter currency code"]
    );
}

#[test]
fn numbers_from_the_environment_keep_their_text() {
    let out = check_with_env(
        VALID,
        &[
            ("FPR__RULES__MIN_AMOUNT", "100.50"),
            ("FPR__RULES__MAX_AMOUNT", "5000000.00"),
            ("FPR__SERVER__MAX_BODY_BYTES", "131072"),
            ("FPR__RULES__REJECT_TESTING_MODE", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "min_amount = \"100.50\"",
        "max_amount = \"5000000.00\"",
        "max_body_bytes = 131072",
        "reject_testing_mode = true",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    let out = check_with_env(VALID, &[("FPR__RULES__MIN_AMOUNT", "1e3")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_lines(&out)[0]
            .starts_with("error: rules.min_amount: amount \"1e3\" is not a decimal"),
        "{out:?}"
    );
    // A wrong type is reported with the key from the error's structure.
    let out = check_with_env(VALID, &[("FPR__SERVER__MAX_BODY_BYTES", "lots")]);
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("error: server.max_body_bytes: "),
        "{lines:?}"
    );
}

#[test]
fn a_huge_merchant_index_from_the_environment_is_refused_not_a_crash() {
    let out = check_with_env(VALID, &[("FPR__MERCHANTS__4000000000__SECRET_KEY", "x")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert!(
        lines[0].starts_with("error: FPR__MERCHANTS__4000000000__SECRET_KEY: the merchant index"),
        "{lines:?}"
    );
}

#[test]
fn an_empty_key_is_shown_as_empty_not_as_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        VALID.replace("very-secret-payout-key", "") + "previous_secret_key = \"  \"\n",
    )
    .unwrap();
    let settings = freedompay_receiver::config::Settings::load_unchecked(Some(&path)).unwrap();
    let text = settings.to_redacted_toml();
    assert!(text.contains("secret_key = \"[redacted]\""), "{text}");
    assert!(text.contains("payout_secret_key = \"(empty)\""), "{text}");
    assert!(text.contains("previous_secret_key = \"(empty)\""), "{text}");
}
