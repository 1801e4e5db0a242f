//! An endpoint that answers `410 Gone`, on both backends through the real
//! server and a real HTTP receiver: the delivery is dead after that one
//! attempt, the endpoint is sent nothing more (its next message waits,
//! pending), and `/metrics` says so: the endpoint disabled, one pending,
//! the oldest pending's age.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use freedompay_receiver::protocol::Status;
use sqlx::Connection;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, freedompay};
use crate::webhooks_isolation::counting_receiver;

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Delivery {
    state: String,
    attempts: i32,
}

async fn deliveries(app: &TestApp, backend: Backend) -> Vec<Delivery> {
    let sql = "SELECT state, attempts FROM webhook_deliveries ORDER BY event_id, position";
    match backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut db).await.unwrap()
        }
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut db).await.unwrap()
        }
    }
}

/// The value of the metric line that starts with `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

on_both_backends! {
    // Seen failing (the second message sent too) with the dispatcher not
    // disabling the endpoint.
    async fn an_endpoint_that_answers_410_is_disabled_and_its_backlog_shown(backend) {
        let (url, requests) = counting_receiver(StatusCode::GONE, Duration::ZERO).await;
        // Metrics are the test process's: a name no other test uses.
        let name = format!("gone-{backend:?}").to_lowercase();
        let app = TestApp::spawn_with(backend, |toml| {
            toml.push_str(&format!(
                "\n[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\n\
                 secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\ntimeout_secs = 2\n\
                 [webhook_delivery]\npoll_interval_ms = 100\n"
            ));
        })
        .await;
        app.order("G-1", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("G-1", "6001", "100")).await.assert_answer("result", Status::Ok);
        let deadline = Instant::now() + Duration::from_secs(10);
        while deliveries(&app, backend).await.first().is_none_or(|d| d.state != "dead") {
            assert!(Instant::now() < deadline, "not dead: {:?}", deliveries(&app, backend).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.order("G-2", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("G-2", "6002", "100")).await.assert_answer("result", Status::Ok);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            deliveries(&app, backend).await,
            vec![
                Delivery { state: "dead".into(), attempts: 1 },
                Delivery { state: "pending".into(), attempts: 0 },
            ]
        );
        assert_eq!(requests.load(Ordering::SeqCst), 1);

        let text = app.fp.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let series = |metric_name: &str| format!("{metric_name}{{endpoint=\"{name}\"}}");
        assert_eq!(metric(&text, &series("freedompay_webhook_endpoint_disabled")), Some(1.0), "{text}");
        assert_eq!(metric(&text, &series("freedompay_webhook_pending")), Some(1.0), "{text}");
        let oldest = metric(&text, &series("freedompay_webhook_oldest_pending_seconds")).unwrap();
        assert!((1.0..60.0).contains(&oldest), "oldest pending: {oldest}");
        assert_eq!(
            metric(&text, &format!("freedompay_webhook_deliveries_total{{endpoint=\"{name}\",outcome=\"dead\"}}")),
            Some(1.0),
            "{text}"
        );
    }
}
