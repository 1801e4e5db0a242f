//! One endpoint that accepts connections and never answers does not hold
//! the others: on both backends, through the real server, a healthy
//! endpoint receives messages committed while the silent one's attempt
//! waits for its timeout, long before that timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::{TestApp, freedompay};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver that answers `status` after `delay` (and checks nothing);
/// its URL and its request count.
pub async fn counting_receiver(status: StatusCode, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/hook",
        post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                status
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, requests)
}

on_both_backends! {
    // Seen failing (the later messages waited for the silent endpoint's
    // 8 s timeout) with the dispatcher sending a claimed batch and waiting
    // for all of it before claiming again.
    async fn a_silent_endpoint_does_not_hold_the_others(backend) {
        let (healthy, received) = counting_receiver(StatusCode::NO_CONTENT, Duration::ZERO).await;
        let (silent, _) = counting_receiver(StatusCode::NO_CONTENT, Duration::from_secs(3600)).await;
        let app = TestApp::spawn_with(backend, |toml| {
            toml.push_str(&format!(
                "\n[[webhooks]]\nname = \"healthy\"\nurl = \"{healthy}\"\nsecret = \"{SECRET}\"\n\
                 timeout_secs = 8\n\
                 [[webhooks]]\nname = \"silent\"\nurl = \"{silent}\"\nsecret = \"{SECRET}\"\n\
                 timeout_secs = 8\n\
                 [webhook_delivery]\npoll_interval_ms = 100\nlease_secs = 30\n"
            ));
        })
        .await;
        for i in 0..4 {
            app.order(&format!("S-{i}"), "100", "KZT").await;
        }
        app.fp.send("result", &freedompay::result("S-0", "4000", "100")).await.assert_answer("result", Status::Ok);
        // The silent endpoint now holds its first attempt.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        for i in 1..4 {
            let (order, payment) = (format!("S-{i}"), format!("{}", 4000 + i));
            app.fp.send("result", &freedompay::result(&order, &payment, "100")).await.assert_answer("result", Status::Ok);
        }
        while received.load(Ordering::SeqCst) < 4 {
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "the healthy endpoint got {} of 4 in {:?}",
                received.load(Ordering::SeqCst),
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("the healthy endpoint had all 4 messages {:?} after the last commit", started.elapsed());
    }
}
