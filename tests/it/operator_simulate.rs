//! `simulate`, run as the real binary against a test server.

use std::process::Output;

use crate::support::{KEY, TestApp};

async fn simulate(args: Vec<String>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("simulate")
        .args(args)
        .env_remove("FPR_CONFIG")
        .output()
        .await
        .expect("binary runs")
}

fn args(app: &TestApp, rest: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--url".to_owned(),
        app.url(""),
        "--secret".to_owned(),
        KEY.to_owned(),
    ];
    all.extend(rest.iter().map(|s| (*s).to_owned()));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_passes_against_a_correct_receiver() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite).await;
    app.order("SIM-1", "7000", "KZT").await;
    let out = simulate(args(
        &app,
        &["scenario", "--order-id", "SIM-1", "--amount", "7000"],
    ))
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("scenario passed: 4/4 steps as expected"),
        "{text}"
    );
    assert!(text.contains("signature OK"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_fails_when_an_answer_is_not_the_expected_one() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite).await;
    // No such order: the check is rejected.
    let out = simulate(args(&app, &["scenario", "--order-id", "NOPE", "--json"])).await;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["steps"][0]["pg_status"], "rejected");
    assert_eq!(report["steps"][0]["result"]["passed"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_callbacks_in_every_encoding_report_status_and_signature() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite).await;
    app.order("SIM-2", "100", "KZT").await;
    for encoding in ["form", "multipart", "get", "xml", "pg-xml"] {
        let out = simulate(args(
            &app,
            &[
                "check",
                "--order-id",
                "SIM-2",
                "--encoding",
                encoding,
                "--json",
            ],
        ))
        .await;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["http_status"], 200, "{encoding}");
        assert_eq!(report["pg_status"], "ok", "{encoding}");
        assert_eq!(report["signature"], "ok", "{encoding}");
    }
    // One payment: a refund or capture before its payment is answered 503.
    for command in [
        vec!["result", "--failure", "--payment-id", "9001"],
        vec!["refund", "--payment-id", "9001"],
        vec!["capture", "--payment-id", "9001"],
        vec!["redirect"],
    ] {
        let out = simulate(args(&app, &command)).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let forged = tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .args([
            "simulate",
            "--url",
            &app.url(""),
            "--secret",
            "wrong",
            "check",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(forged.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&forged.stdout).contains("HTTP 403"));
    app.stop().await;
}
