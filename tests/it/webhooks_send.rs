//! One delivery attempt against a real HTTP receiver on 127.0.0.1: what each
//! kind of answer (or its absence) becomes, with the headers checked by the
//! `standardwebhooks` crate.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use freedompay_receiver::webhooks::{Endpoint, Outcome, Sender, SigningSecret};
use tokio::sync::Mutex;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type":"payment.succeeded","timestamp":"2026-12-01T10:00:00.000Z","data":{"amount":"7000.00"}}"#;

#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    ok_hits: Arc<AtomicUsize>,
}

async fn receiver() -> (String, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/ok",
            post(move |headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    record.ok_hits.fetch_add(1, Ordering::SeqCst);
                    record.requests.lock().await.push((headers, body));
                    (StatusCode::NO_CONTENT, "")
                }
            }),
        )
        .route(
            "/fail",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom: database down") }),
        )
        .route("/gone", post(|| async { (StatusCode::GONE, "gone") }))
        .route(
            "/redirect",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/ok")],
                    "moved",
                )
            }),
        )
        .route(
            "/busy",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "120")],
                    "busy",
                )
            }),
        )
        .route(
            "/busy-until",
            post(|| async {
                let date = httpdate::fmt_http_date(
                    std::time::SystemTime::now() + Duration::from_secs(3600),
                );
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, date)],
                    "slow down",
                )
            }),
        )
        .route(
            "/huge",
            post(|| async { (StatusCode::OK, "x".repeat(10 * 1024 * 1024)) }),
        )
        .route(
            "/endless",
            post(|| async {
                let chunk = Bytes::from(vec![b'y'; 8192]);
                let stream = futures_util::stream::repeat_with(move || {
                    Ok::<Bytes, Infallible>(chunk.clone())
                });
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from_stream(stream))
                    .unwrap()
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/drip",
            post(|| async {
                // Headers at once, then a byte a second, for ever.
                let stream = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok::<Bytes, Infallible>(Bytes::from_static(b".")), ()))
                });
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from_stream(stream))
                    .unwrap()
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), seen)
}

fn endpoint(url: &str, timeout: Duration) -> Endpoint {
    Endpoint {
        name: "orders".into(),
        url: url.parse().unwrap(),
        secrets: vec![
            SigningSecret::parse(SECRET).unwrap(),
            SigningSecret::parse(OLD_SECRET).unwrap(),
        ],
        types: None,
        merchants: None,
        timeout,
    }
}

fn failed_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed { reason } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn webhooks_send_a_2xx_is_delivered_with_verifiable_headers() {
    let (base, seen) = receiver().await;
    let sender = Sender::new().unwrap();
    let timestamp = chrono::Utc::now().timestamp();
    let attempt = sender
        .send(
            &endpoint(&format!("{base}/ok"), Duration::from_secs(5)),
            "msg_one",
            timestamp,
            BODY,
        )
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered);
    assert_eq!(attempt.status, Some(204));
    assert!(attempt.latency < Duration::from_secs(5));
    let requests = seen.requests.lock().await;
    let (headers, body) = &requests[0];
    assert_eq!(body.as_ref(), BODY.as_bytes());
    assert_eq!(headers["webhook-id"], "msg_one");
    assert_eq!(headers["webhook-timestamp"], timestamp.to_string().as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("freedompay-receiver/"),
        "{headers:?}"
    );
    // Both secrets of the rotation verify what was received.
    for secret in [SECRET, OLD_SECRET] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, headers)
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
}

#[tokio::test]
async fn webhooks_send_500_fails_with_its_status_and_excerpt() {
    let (base, _) = receiver().await;
    let attempt = Sender::new()
        .unwrap()
        .send(
            &endpoint(&format!("{base}/fail"), Duration::from_secs(5)),
            "msg_two",
            1,
            BODY,
        )
        .await;
    assert_eq!(failed_reason(&attempt.outcome), "HTTP 500");
    assert_eq!(attempt.status, Some(500));
    assert_eq!(attempt.excerpt, "boom: database down");
    assert_eq!(attempt.retry_after, None);
}

#[tokio::test]
async fn webhooks_send_410_is_gone() {
    let (base, _) = receiver().await;
    let attempt = Sender::new()
        .unwrap()
        .send(
            &endpoint(&format!("{base}/gone"), Duration::from_secs(5)),
            "msg_three",
            1,
            BODY,
        )
        .await;
    assert_eq!(attempt.outcome, Outcome::Gone);
    assert_eq!(attempt.status, Some(410));
}

#[tokio::test]
async fn webhooks_send_a_redirect_fails_and_is_not_followed() {
    let (base, seen) = receiver().await;
    let attempt = Sender::new()
        .unwrap()
        .send(
            &endpoint(&format!("{base}/redirect"), Duration::from_secs(5)),
            "msg_four",
            1,
            BODY,
        )
        .await;
    let reason = failed_reason(&attempt.outcome);
    assert!(reason.contains("redirect"), "{reason}");
    assert!(reason.contains("not followed"), "{reason}");
    assert!(reason.contains("/ok"), "{reason}");
    assert_eq!(attempt.status, Some(307));
    assert_eq!(
        seen.ok_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn webhooks_send_reads_a_huge_answer_only_so_far() {
    let (base, _) = receiver().await;
    let sender = Sender::new().unwrap();
    let attempt = sender
        .send(
            &endpoint(&format!("{base}/huge"), Duration::from_secs(10)),
            "msg_five",
            1,
            BODY,
        )
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered);
    assert_eq!(attempt.excerpt.len(), 1024);
    // An answer that never ends: read up to the bound, not to the timeout.
    let started = Instant::now();
    let attempt = sender
        .send(
            &endpoint(&format!("{base}/endless"), Duration::from_secs(10)),
            "msg_six",
            1,
            BODY,
        )
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.excerpt, "y".repeat(1024));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn webhooks_send_a_refused_connection_fails() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let attempt = Sender::new()
        .unwrap()
        .send(
            &endpoint(
                &format!("http://127.0.0.1:{port}/hook"),
                Duration::from_secs(5),
            ),
            "msg_seven",
            1,
            BODY,
        )
        .await;
    let reason = failed_reason(&attempt.outcome);
    assert!(!reason.is_empty());
    assert_eq!(attempt.status, None);
    assert!(started.elapsed() < Duration::from_secs(5));
}

// A name under `.invalid` never resolves (RFC 6761): the attempt fails,
// says why, and takes no longer than the endpoint's timeout, whether the
// resolver answers at once or not at all. Seen failing with the reason
// left empty for errors without a status.
#[tokio::test]
async fn webhooks_send_a_host_that_does_not_resolve_fails_within_the_timeout() {
    let started = Instant::now();
    let attempt = Sender::new()
        .unwrap()
        .send(
            &endpoint("http://no-such-host.invalid/hook", Duration::from_secs(2)),
            "msg_unresolved",
            1,
            BODY,
        )
        .await;
    let reason = failed_reason(&attempt.outcome);
    assert!(!reason.is_empty(), "{attempt:?}");
    assert_eq!(attempt.status, None);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn webhooks_send_no_answer_in_time_fails_within_the_timeout() {
    let (base, _) = receiver().await;
    let sender = Sender::new().unwrap();
    for path in ["/slow", "/drip"] {
        let started = Instant::now();
        let attempt = sender
            .send(
                &endpoint(&format!("{base}{path}"), Duration::from_secs(2)),
                "msg_eight",
                1,
                BODY,
            )
            .await;
        let elapsed = started.elapsed();
        let reason = failed_reason(&attempt.outcome);
        assert!(reason.contains("timeout"), "{path}: {reason}");
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3),
            "{path}: {elapsed:?}"
        );
        assert!(attempt.latency >= Duration::from_secs(2), "{path}");
    }
}

#[tokio::test]
async fn webhooks_send_reads_retry_after() {
    let (base, _) = receiver().await;
    let sender = Sender::new().unwrap();
    let attempt = sender
        .send(
            &endpoint(&format!("{base}/busy"), Duration::from_secs(5)),
            "msg_nine",
            1,
            BODY,
        )
        .await;
    assert_eq!(failed_reason(&attempt.outcome), "HTTP 503");
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(120)));
    let attempt = sender
        .send(
            &endpoint(&format!("{base}/busy-until"), Duration::from_secs(5)),
            "msg_ten",
            1,
            BODY,
        )
        .await;
    assert_eq!(attempt.status, Some(429));
    let wait = attempt.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
}
