//! The binary as a container runs it: without a CA store, with `/metrics` on
//! its own loopback listener, and checked by the `healthcheck` subcommand.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use freedompay_receiver::protocol::Status;
use freedompay_receiver::simulate::fields::PaymentFacts;
use freedompay_receiver::simulate::{Encoding, Simulator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KEY: &str = "deploy-test-merchant-key";

/// `serve` as a child process, with the addresses it printed.
struct Served {
    child: Child,
    base_url: String,
    metrics_url: Option<String>,
    log_path: PathBuf,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `serve` on SQLite with `extra` TOML and `env` set.
    async fn start(extra: &str, env: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}\"\n\
                 [log]\nformat = \"json\"\n{extra}\n\
                 [[merchants]]\nid = \"545774\"\nsecret_key = \"{KEY}\"\n",
                dir.path().join("receiver.db").display()
            ),
        )
        .unwrap();
        let log_path = dir.path().join("server.log");
        let mut child = binary(&config)
            .arg("serve")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("serve prints where it listens")
            .unwrap()
            .unwrap_or_default();
        let base_url = first.rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "{first:?}; log: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        // The second line says where /metrics is: "metrics on URL" or "metrics off".
        let second = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("serve prints where /metrics is")
            .unwrap()
            .unwrap_or_default();
        let metrics_url = second.strip_prefix("metrics on ").map(str::to_owned);
        assert!(
            metrics_url.is_some() || second == "metrics off",
            "{second:?}"
        );
        Served {
            child,
            base_url,
            metrics_url,
            log_path,
            config,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    async fn stop(&mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().await.unwrap();
        assert_eq!(exit.code(), Some(0), "log: {}", self.log());
    }
}

/// The binary with `--config` and no inherited FPR settings.
fn binary(config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"));
    command.arg("--config").arg(config);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("FPR") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Waits (bounded) until `url` answers 200.
async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..100 {
        if let Ok(response) = http.get(url).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_certificates_callbacks_are_served_and_the_reconciler_is_off() {
    // An empty certificate store: rustls-native-certs (behind reqwest's
    // platform verifier) reads only these two when they are set.
    let mut served = Served::start(
        "[rules]\nrequire_known_order = false\n[metrics]\nlisten = \"server\"\n",
        &[
            ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
            ("SSL_CERT_DIR", "/nonexistent"),
        ],
    )
    .await;
    let simulator = Simulator::new().expect("an HTTP client");
    wait_ready(&simulator.http, &served.url("/readyz")).await;
    let facts = PaymentFacts {
        merchant_id: None,
        order_id: "CA-1",
        payment_id: "101",
        amount: "10",
        currency: "KZT",
    };
    let exchange = simulator
        .send(
            &served.url("/freedompay/result"),
            Encoding::Form,
            KEY,
            &facts.result_success(),
        )
        .await
        .unwrap();
    assert_eq!(exchange.http_status, 200, "{}", exchange.body);
    assert_eq!(exchange.pg_status(), Some(Status::Ok), "{}", exchange.body);
    let metrics = simulator
        .http
        .get(served.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("freedompay_reconciler_running 0"),
        "{metrics}"
    );
    let log = served.log();
    let disabled: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reconciler disabled"))
        })
        .collect();
    assert_eq!(disabled.len(), 1, "{log}");
    assert_eq!(disabled[0]["level"], "ERROR");
    let error = disabled[0]["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cannot set up the HTTP client:")
            && error.contains("No CA certificates were loaded from the system"),
        "{error}"
    );
    assert!(!log.contains("panicked"), "{log}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ca_certificates_the_reconciler_runs() {
    let mut served = Served::start("[metrics]\nlisten = \"server\"\n", &[]).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &served.url("/readyz")).await;
    let metrics = http
        .get(served.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("freedompay_reconciler_running 1"),
        "{metrics}"
    );
    assert!(!served.log().contains("reconciler disabled"));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_on_their_own_listener_and_not_on_the_callback_port() {
    let mut served = Served::start("", &[("FPR__METRICS__LISTEN", "127.0.0.1:0")]).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &served.url("/readyz")).await;
    let on_callbacks = http.get(served.url("/metrics")).send().await.unwrap();
    assert_eq!(on_callbacks.status(), 404);
    let metrics_url = served
        .metrics_url
        .clone()
        .expect("serve prints the metrics address");
    assert!(
        metrics_url.starts_with("http://127.0.0.1:"),
        "{metrics_url}"
    );
    assert_ne!(format!("{metrics_url}"), served.url("/metrics"));
    let response = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for expected in [
        "freedompay_build_info{version=\"",
        "freedompay_db_pool_connections ",
        "freedompay_reconcile_tasks_failed 0",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    served.stop().await;
}

#[test]
fn metrics_default_to_a_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[[merchants]]\nid = \"1\"\nsecret_key = \"{KEY}\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env_remove("FPR__METRICS__LISTEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[metrics]\nlisten = \"127.0.0.1:9090\""),
        "{text}"
    );
}

/// Runs `healthcheck` against `listen` and returns its exit code and stderr.
async fn healthcheck(config: &std::path::Path, listen: &str) -> (Option<i32>, String) {
    let out = binary(config)
        .arg("healthcheck")
        .env("FPR__SERVER__LISTEN", listen)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_ready_and_1_otherwise() {
    let mut served = Served::start("", &[("FPR__METRICS__LISTEN", "off")]).await;
    let http = reqwest::Client::new();
    wait_ready(&http, &served.url("/readyz")).await;
    let address = served.base_url.trim_start_matches("http://").to_owned();
    let port = address.rsplit(':').next().unwrap().to_owned();
    let (code, err) = healthcheck(&served.config, &address).await;
    assert_eq!(code, Some(0), "{err}");
    // An unspecified address is checked on loopback.
    let (code, err) = healthcheck(&served.config, &format!("0.0.0.0:{port}")).await;
    assert_eq!(code, Some(0), "{err}");
    served.stop().await;
    let config = served.config.clone();
    let dir = served._dir.path().to_owned();
    // Nothing listens any more.
    let (code, err) = healthcheck(&config, &address).await;
    assert_eq!(code, Some(1));
    assert!(err.starts_with("unhealthy: http://"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A listener that is not the receiver: /readyz answers 404.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_address = other.local_addr().unwrap().to_string();
    let app = axum::Router::new();
    let server = tokio::spawn(async move { axum::serve(other, app).await });
    let (code, err) = healthcheck(&config, &other_address).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("answered 404"), "{err}");
    server.abort();
    // A configuration it cannot read is exit 1 too (Docker reserves 2).
    let (code, _) = healthcheck(&dir.join("missing.toml"), &address).await;
    assert_eq!(code, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_that_call_out_exit_1_without_ca_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[[merchants]]\nid = \"1\"\nsecret_key = \"{KEY}\"\n",
            dir.path().join("r.db").display()
        ),
    )
    .unwrap();
    for args in [
        &["status", "--payment-id", "1"][..],
        &["simulate", "--url", "http://127.0.0.1:9", "check"][..],
    ] {
        let out = binary(&config)
            .args(args)
            .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
            .env("SSL_CERT_DIR", "/nonexistent")
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: cannot set up the HTTP client:")
                && err.contains("No CA certificates were loaded from the system"),
            "{args:?}: {err}"
        );
    }
}
