//! Metrics, request ids, structured logs without secrets, and graceful
//! shutdown, observed from outside the process where it matters.

use std::time::Duration;

use freedompay_receiver::protocol::Status;
use freedompay_receiver::simulate::fields::PaymentFacts;
use freedompay_receiver::simulate::{Encoding, Simulator};

use crate::on_both_backends;
use crate::support::TestApp;
use crate::support::freedompay;
use crate::support::process::ServerProcess;

on_both_backends! {
    async fn metrics_are_served_in_prometheus_text(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("M", "10", "KZT").await;
        app.fp.send("result", &freedompay::result("M", "1", "10")).await.assert_answer("result", Status::Ok);
        app.fp.send("result", &freedompay::result("M", "1", "10")).await.assert_answer("result", Status::Ok);
        app.fp.send_as("check", freedompay::Encoding::Form, "forged", &freedompay::check("M", "2", "10")).await;
        app.fp.send("result", &freedompay::result("M", "3", "9").set("pg_can_reject", "0")).await;
        let response = app.fp.http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        for expected in [
            "freedompay_requests_total{endpoint=\"result\",answer=\"ok\",status=\"200\"}",
            "freedompay_signature_failures_total{endpoint=\"check\",reason=\"mismatch\"}",
            "freedompay_duplicates_total{endpoint=\"result\"}",
            "freedompay_request_duration_seconds_bucket{endpoint=\"result\",le=\"0.005\"}",
            "freedompay_requests_in_flight",
            "freedompay_payments_needing_refund",
            "freedompay_reconcile_tasks_failed ",
            "freedompay_build_info{version=\"",
            "freedompay_db_pool_connections ",
            "freedompay_db_pool_idle_connections ",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        app.stop().await;
    }

    async fn request_ids_are_taken_or_generated_and_returned(backend) {
        let app = TestApp::spawn(backend).await;
        let given = app.fp.http.get(app.url("/healthz")).header("x-request-id", "req-42").send().await.unwrap();
        assert_eq!(given.headers()["x-request-id"], "req-42");
        let generated = app.fp.http.get(app.url("/healthz")).send().await.unwrap();
        assert!(generated.headers()["x-request-id"].len() >= 16);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_lines_with_the_request_and_no_secret_or_card_number() {
    let key = "known-secret-key-Zq81xv";
    let server = ServerProcess::start(key, "[rules]\nrequire_known_order = false\n").await;
    let simulator = Simulator::new().expect("an HTTP client");
    let facts = PaymentFacts {
        merchant_id: None,
        order_id: "LOG-1",
        payment_id: "777",
        amount: "10",
        currency: "KZT",
    };
    let fields = facts
        .result_success()
        .set("pg_card_pan", "5483185500000293");
    let message = Simulator::sign("result", key, &fields);
    let request = simulator
        .http
        .post(server.url("/freedompay/result"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-request-id", "req-log-test-1")
        .body(freedompay_receiver::protocol::encode::to_urlencoded(
            &message,
        ));
    assert_eq!(request.send().await.unwrap().status(), 200);
    simulator
        .send(
            &server.url("/freedompay/check"),
            Encoding::Form,
            "wrong-key",
            &facts.check(),
        )
        .await
        .unwrap();
    server.terminate();
    let mut server = server;
    server.child.wait().await.unwrap();

    let log = server.log();
    assert!(!log.contains(key), "the key leaked into the log:\n{log}");
    assert!(
        !log.contains("5483185500000293"),
        "a card number leaked into the log:\n{log}"
    );
    let finished: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON"))
        .filter(|l| l["fields"]["message"] == "request finished")
        .collect();
    let result = finished
        .iter()
        .find(|l| l["span"]["request_id"] == "req-log-test-1")
        .expect("the result's line");
    // The span names the request; the line's own fields say the rest, each
    // once, with what the store did.
    let span = &result["span"];
    assert_eq!(span["endpoint"], "result");
    assert_eq!(span["method"], "POST");
    let fields = &result["fields"];
    assert_eq!(fields["merchant"], "545774");
    assert_eq!(fields["order_id"], "LOG-1");
    assert_eq!(fields["payment_id"], "777");
    assert_eq!(fields["answer"], "ok");
    assert_eq!(fields["status"], 200);
    assert!(fields["latency_ms"].as_f64().is_some());
    assert_eq!(fields["duplicate"], false);
    assert!(
        fields["event_id"].as_i64().is_some_and(|id| id > 0),
        "{fields}"
    );
    assert_eq!(fields["variant"], "canonical");
    assert!(
        result.get("spans").is_none(),
        "span fields repeated: {result}"
    );
    for (name, _) in fields.as_object().into_iter().flatten() {
        assert!(
            span.get(name).is_none(),
            "{name} both in the span and the line: {result}"
        );
    }
    let lines = log.lines().filter(|l| l.contains("req-log-test-1")).count();
    assert_eq!(lines, 1, "the request's lines:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_in_flight_request_finish_then_exits_0() {
    let key = "shutdown-test-key";
    let mut server = ServerProcess::start(key, "[rules]\nrequire_known_order = false\n").await;
    let facts = PaymentFacts {
        merchant_id: None,
        order_id: "S-1",
        payment_id: "1",
        amount: "10",
        currency: "KZT",
    };
    let body = freedompay_receiver::protocol::encode::to_urlencoded(&Simulator::sign(
        "check",
        key,
        &facts.check(),
    ));
    let (first, rest) = body.split_at(body.len() / 2);
    let (first, rest) = (first.to_owned(), rest.to_owned());
    // The body arrives in two parts, a second apart: the request is in flight
    // when SIGTERM comes.
    let stream = futures_util::stream::unfold(0, move |step| {
        let (first, rest) = (first.clone(), rest.clone());
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(first.into_bytes()), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                    Some((Ok(rest.into_bytes()), 2))
                }
                _ => None,
            }
        }
    });
    let client = reqwest::Client::new();
    let request = client
        .post(server.url("/freedompay/check"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", body.len())
        .body(reqwest::Body::wrap_stream(stream));
    let in_flight = tokio::spawn(request.send());
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.terminate();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let answer =
        freedompay_receiver::protocol::parse_answer(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer.status, Some(Status::Ok));
    let exit = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(server.log().contains("shutting down"));
}
