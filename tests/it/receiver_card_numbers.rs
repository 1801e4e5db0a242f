//! Card numbers sent in free text are masked in everything the receiver keeps
//! or shows: `events.fields`, the stored failure description, the redirect
//! page, the logs and `/metrics`.

use freedompay_receiver::domain::CallbackKind;
use freedompay_receiver::protocol::Status;
use freedompay_receiver::simulate::fields::PaymentFacts;
use freedompay_receiver::simulate::{Encoding, Simulator};

use crate::on_both_backends;
use crate::support::process::ServerProcess;
use crate::support::{Backend, KEY, MERCHANT, TestApp, freedompay};

/// Card numbers as they appear in the requests, and what must never be stored.
const VISA: &str = "4111111111111111";
const MASTERCARD: &str = "5500005555555559";
const AMEX_SPACED: &str = "3782 822463 10005";

/// Every stored `events.fields`, oldest first, as JSON text.
pub async fn stored_fields(app: &TestApp, backend: Backend) -> Vec<String> {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
            sqlx::query_scalar("SELECT fields FROM events ORDER BY id")
                .fetch_all(&mut db)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
            sqlx::query_scalar("SELECT fields::text FROM events ORDER BY id")
                .fetch_all(&mut db)
                .await
                .unwrap()
        }
    }
}

fn assert_no_card_number(what: &str, text: &str) {
    let joined: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
    for pan in [VISA, MASTERCARD, "378282246310005"] {
        assert!(!joined.contains(pan), "{pan} in {what}:\n{text}");
    }
}

on_both_backends! {
    async fn card_numbers_in_any_field_are_masked_in_the_event_log(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("CN-1", "10", "KZT").await;
        let fields = freedompay::result("CN-1", "501", "10")
            .set("card_number", VISA)
            .set("pg_description", &format!("Paid with card {AMEX_SPACED}, thanks"))
            .set("pg_card[pan]", MASTERCARD)
            .set(&format!("note_{VISA}"), "name carries one");
        app.fp.send("result", &fields).await.assert_answer("result", Status::Ok);

        app.order("CN-2", "10", "KZT").await;
        let failed = PaymentFacts {
            merchant_id: None,
            order_id: "CN-2",
            payment_id: "502",
            amount: "10",
            currency: "KZT",
        }
        .result_failure()
        .set("pg_failure_description", &format!("Card {VISA} declined"));
        app.fp.send("result", &failed).await.assert_answer("result", Status::Ok);

        let stored = stored_fields(&app, backend).await;
        assert_eq!(stored.len(), 2);
        for fields in &stored {
            assert_no_card_number("events.fields", fields);
        }
        assert!(stored[0].contains("411111XXXXXX1111"), "{}", stored[0]);
        assert!(stored[0].contains("550000XXXXXX5559"), "{}", stored[0]);
        assert!(stored[0].contains("Paid with card 3782 82XXXX X0005, thanks"), "{}", stored[0]);
        // The field names stay readable, the values are masked.
        assert!(stored[0].contains("\"card_number\""), "{}", stored[0]);
        assert!(stored[0].contains("\"pg_card\""), "{}", stored[0]);

        let payment = app.store.payment(MERCHANT, "502").await.unwrap().unwrap();
        let description = payment.failure_description.unwrap();
        assert_eq!(description, "Card 411111XXXXXX1111 declined");

        let metrics = app.fp.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert_no_card_number("/metrics", &metrics);
        app.stop().await;
    }

    async fn the_redirect_page_masks_a_card_number_in_the_order_id(backend) {
        let app = TestApp::spawn(backend).await;
        let fields = freedompay::Fields::default()
            .set("pg_order_id", VISA)
            .set("pg_payment_id", "77");
        let page = app.fp.send_as("success", freedompay::Encoding::Get, KEY, &fields).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("411111XXXXXX1111"), "{}", page.body);
        assert_no_card_number("the redirect page", &page.body);
        assert_eq!(app.store.count_events(Some(CallbackKind::Success)).await.unwrap().first, 1);
        for fields in stored_fields(&app, backend).await {
            assert_no_card_number("events.fields", &fields);
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_reaches_the_logs_or_metrics_of_a_running_server() {
    let key = "known-secret-key-Pan4";
    let server = ServerProcess::start(key, "[rules]\nrequire_known_order = false\n").await;
    let simulator = Simulator::new().expect("an HTTP client");
    let facts = PaymentFacts {
        merchant_id: None,
        // The order id is on every log line of the request.
        order_id: VISA,
        payment_id: "778",
        amount: "10",
        currency: "KZT",
    };
    let fields = facts
        .result_success()
        .set("pg_description", &format!("card {AMEX_SPACED}"))
        .set("pg_card[pan]", MASTERCARD);
    let exchange = simulator
        .send(
            &server.url("/freedompay/result"),
            Encoding::Form,
            key,
            &fields,
        )
        .await
        .unwrap();
    assert_eq!(exchange.http_status, 200);
    // A request refused as malformed echoes the bad value into the log.
    let bad_amount = facts
        .result_success()
        .set("pg_amount", MASTERCARD)
        .set("pg_order_id", "LOG-2");
    simulator
        .send(
            &server.url("/freedompay/result"),
            Encoding::Form,
            key,
            &bad_amount,
        )
        .await
        .unwrap();
    let metrics = simulator
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_card_number("/metrics", &metrics);
    server.terminate();
    let mut server = server;
    server.child.wait().await.unwrap();

    let log = server.log();
    assert_no_card_number("the log", &log);
    assert!(
        log.contains("411111XXXXXX1111"),
        "the masked order id is logged:\n{log}"
    );
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}
