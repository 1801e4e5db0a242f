//! The outbox, through the real server on both backends: a committed change
//! writes its messages (`webhook_messages`) and one delivery per endpoint
//! that wants each (`webhook_deliveries`), in the callback's transaction; a
//! repeated callback writes none; an endpoint's `types` filter holds; the
//! body carries money as decimal strings and names its event.

use freedompay_receiver::protocol::Status;
use sqlx::Connection;

use crate::on_both_backends;
use crate::support::{Backend, MERCHANT, TestApp, freedompay};

/// Two endpoints: one for every type, one for refunds only.
fn endpoints(toml: &mut String) {
    toml.push_str(
        r#"
[[webhooks]]
name = "everything"
url = "http://127.0.0.1:9/all"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[webhooks]]
name = "refunds"
url = "http://127.0.0.1:9/refunds"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
types = ["payment.refunded"]
"#,
    );
}

#[derive(Debug, sqlx::FromRow)]
struct Message {
    id: String,
    message_type: String,
    event_id: i64,
    ordering_key: String,
    body: String,
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Delivery {
    message_id: String,
    endpoint: String,
    state: String,
}

/// The outbox as stored, in commit order.
async fn outbox(app: &TestApp, backend: Backend) -> (Vec<Message>, Vec<Delivery>) {
    let messages = "SELECT id, type AS message_type, event_id, ordering_key, body \
                    FROM webhook_messages ORDER BY event_id, position";
    let deliveries = "SELECT message_id, endpoint, state FROM webhook_deliveries ORDER BY event_id, position, endpoint";
    match backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
            (
                sqlx::query_as(messages).fetch_all(&mut db).await.unwrap(),
                sqlx::query_as(deliveries).fetch_all(&mut db).await.unwrap(),
            )
        }
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
            (
                sqlx::query_as(messages).fetch_all(&mut db).await.unwrap(),
                sqlx::query_as(deliveries).fetch_all(&mut db).await.unwrap(),
            )
        }
    }
}

on_both_backends! {
    async fn a_committed_change_writes_its_messages_and_their_deliveries(backend) {
        let app = TestApp::spawn_with(backend, endpoints).await;
        app.order("W-1", "100", "KZT").await;
        app.fp.send("check", &freedompay::check("W-1", "7001", "100")).await.assert_answer("check", Status::Ok);
        let (messages, _) = outbox(&app, backend).await;
        assert!(messages.is_empty(), "a check is not news: {messages:?}");

        app.fp.send("result", &freedompay::result("W-1", "7001", "100")).await.assert_answer("result", Status::Ok);
        // The identical repeat FreedomPay sends when it missed the answer.
        app.fp.send("result", &freedompay::result("W-1", "7001", "100")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("W-1", "7001", "40")).await.assert_answer("refund", Status::Ok);

        let (messages, deliveries) = outbox(&app, backend).await;
        let types: Vec<&str> = messages.iter().map(|m| m.message_type.as_str()).collect();
        assert_eq!(types, ["payment.succeeded", "payment.refunded"], "{messages:?}");
        let (succeeded, refunded) = (&messages[0], &messages[1]);
        assert!(succeeded.id.starts_with("msg_") && succeeded.id != refunded.id);
        assert_eq!(succeeded.ordering_key, format!("payment:{MERCHANT}:7001"));
        assert_eq!(refunded.ordering_key, succeeded.ordering_key);
        assert!(succeeded.event_id < refunded.event_id, "commit order");

        let body: serde_json::Value = serde_json::from_str(&refunded.body).unwrap();
        assert_eq!(body["type"], "payment.refunded");
        assert_eq!(body["data"]["amount"], "100.00", "{body}");
        assert_eq!(body["data"]["refund_amount"], "40.00", "{body}");
        assert_eq!(body["data"]["event_id"], refunded.event_id, "{body}");
        let body: serde_json::Value = serde_json::from_str(&succeeded.body).unwrap();
        assert_eq!(body["data"]["payment_id"], "7001", "{body}");
        assert_eq!(body["data"]["needs_refund"], false, "{body}");

        let pending = |message: &Message, endpoint: &str| Delivery {
            message_id: message.id.clone(),
            endpoint: endpoint.to_owned(),
            state: "pending".to_owned(),
        };
        assert_eq!(
            deliveries,
            [
                pending(succeeded, "everything"),
                pending(refunded, "everything"),
                pending(refunded, "refunds"),
            ]
        );
        app.stop().await;
    }

    async fn without_endpoints_nothing_is_written(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("W-2", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("W-2", "7002", "100")).await.assert_answer("result", Status::Ok);
        let (messages, deliveries) = outbox(&app, backend).await;
        assert!(messages.is_empty() && deliveries.is_empty());
        app.stop().await;
    }
}
