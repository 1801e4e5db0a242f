//! The outbox in the operators' read-only views, through the real server on
//! both backends with real HTTP receivers on 127.0.0.1: `history` (text and
//! JSON) shows each event's messages with every endpoint's delivery state,
//! and the console's Webhooks page counts an endpoint's delivered, dead and
//! pending deliveries, gives the oldest pending one's age and lists the
//! dead ones (the payment timeline shows them under their event too).

use std::time::{Duration, Instant};

use freedompay_receiver::config::Settings;
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::operator_console::Console;
use crate::operator_history::cli;
use crate::support::{MERCHANT, TestApp, TestDb, base_toml, freedompay};
use crate::webhooks_delivery::{SECRET, receiver, settled};

/// `[[webhooks]]` entries named and addressed as `endpoints`, tried twice
/// one second apart, then dead.
fn endpoints(endpoints: &[(&str, &str)]) -> String {
    let mut toml = String::new();
    for (name, url) in endpoints {
        toml.push_str(&format!(
            "\n[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout_secs = 5\n"
        ));
    }
    toml.push_str(
        "\n[webhook_delivery]\nretry_delays_secs = [1]\njitter_percent = 0\npoll_interval_ms = 100\n",
    );
    toml
}

/// A receiver that answers every request 503 with `Retry-After: 3600`: its
/// URL.
async fn busy_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "3600")],
                "",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The position of `needle` in `haystack` at or after `from`.
fn find_after(haystack: &str, from: usize, needle: &str) -> usize {
    from + haystack[from..]
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} after {from}:\n{haystack}"))
}

on_both_backends! {
    // A payment's success and its refund, each to two endpoints: `orders`
    // answers 500 once then 204 (the success is delivered on its second
    // attempt, the refund on its first), `audit` always 500 (both dead
    // after two attempts). `history` prints each message under its event
    // with both deliveries, and says what is dead; `--json` has the same.
    async fn history_shows_each_message_and_its_deliveries_under_its_event(backend) {
        let db = TestDb::new(backend).await;
        let (orders, orders_seen) = receiver(1).await;
        let (audit, _) = receiver(usize::MAX).await;
        let toml = base_toml(&db.url) + &endpoints(&[("orders", &orders), ("audit", &audit)]);
        let app = TestApp::spawn_settings(Settings::from_toml(&toml).unwrap(), None).await;
        app.order("W-1", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("W-1", "9051", "100")).await.assert_answer("result", Status::Ok);
        app.fp.send("refund", &freedompay::refund("W-1", "9051", "30")).await.assert_answer("refund", Status::Ok);
        settled(&app, backend, 4).await;
        let (succeeded, refunded) = {
            let seen = orders_seen.lock().await;
            (seen[0].0.clone(), seen[2].0.clone())
        };

        let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--order-id", "W-1"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        let result = find_after(&printed, 0, " result  payment 9051  -> ok");
        let message = find_after(&printed, result, &format!("\n      webhook {succeeded}  payment.succeeded\n"));
        // Deliveries by endpoint name.
        let dead = find_after(&printed, message, "\n        -> audit  dead  attempts 2  last HTTP 500  -\n");
        let delivered = find_after(&printed, dead, "\n        -> orders  delivered  attempts 2  last HTTP 204  delivered ");
        let refund = find_after(&printed, delivered, " refund  payment 9051  -> ok");
        let message = find_after(&printed, refund, &format!("\n      webhook {refunded}  payment.refunded\n"));
        let dead = find_after(&printed, message, "\n        -> audit  dead  attempts 2  last HTTP 500  -\n");
        let delivered = find_after(&printed, dead, "\n        -> orders  delivered  attempts 1  last HTTP 204  delivered ");
        let tasks = find_after(&printed, delivered, "\noutbound tasks\n");
        // The closing statement names the dead deliveries and how to replay.
        find_after(&printed, tasks, &format!(
            "dead: webhook {succeeded} payment.succeeded to audit, after 2 attempts (last HTTP 500); `webhooks replay {succeeded}` sends it again"
        ));
        assert!(!printed.contains("nothing is waiting"), "{printed}");

        let out = cli(&toml, &["history", "--merchant-id", MERCHANT, "--payment-id", "9051", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        let webhooks = doc["webhooks"].as_array().unwrap_or_else(|| panic!("{doc}"));
        assert_eq!(webhooks.len(), 2, "{doc}");
        let events = doc["events"].as_array().unwrap();
        for (message, id, kind, event_kind, orders_attempts) in [
            (&webhooks[0], &succeeded, "payment.succeeded", "result", 2),
            (&webhooks[1], &refunded, "payment.refunded", "refund", 1),
        ] {
            assert_eq!(message["id"], id.as_str(), "{doc}");
            assert_eq!(message["type"], kind, "{doc}");
            let event = events.iter().find(|e| e["id"] == message["event_id"]).unwrap_or_else(|| panic!("{doc}"));
            assert_eq!(event["kind"], event_kind, "{doc}");
            let deliveries: Vec<(&str, &str, i64)> = message["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["endpoint"].as_str().unwrap(), d["state"].as_str().unwrap(), d["attempts"].as_i64().unwrap()))
                .collect();
            assert_eq!(deliveries, [("audit", "dead", 2), ("orders", "delivered", orders_attempts)], "{doc}");
            assert_eq!(message["deliveries"][0]["last_status"], 500, "{doc}");
            assert!(message["deliveries"][1]["delivered_at"].is_string(), "{doc}");
        }
        app.stop().await;
    }

    // Three endpoints: `orders` answers 204, `audit` 500 (its delivery dead
    // after two attempts), `busy` 503 with `Retry-After: 3600` (its delivery
    // pending for an hour). The Webhooks page
    // counts each, gives the pending one's age and lists the dead delivery
    // with its message, type, subject (linked), attempts and last error.
    async fn webhooks_page_counts_each_endpoint_and_lists_the_dead(backend) {
        let (orders, _) = receiver(0).await;
        let (audit, _) = receiver(usize::MAX).await;
        let busy = busy_receiver().await;
        let extra = endpoints(&[("orders", &orders), ("audit", &audit), ("busy", &busy)]);
        let console = Console::start_with(backend, &extra).await;
        let app = &console.app;
        app.order("W-2", "100", "KZT").await;
        app.fp.send("result", &freedompay::result("W-2", "9052", "100")).await.assert_answer("result", Status::Ok);

        // Until `orders` is delivered and `audit` dead (`busy` stays pending).
        let deadline = Instant::now() + Duration::from_secs(20);
        let page = loop {
            let page = console.page("/webhooks").await;
            if page.contains("<td class=\"num dead bad\">1</td>") && page.contains("<td class=\"num delivered\">1</td>") {
                break page;
            }
            assert!(Instant::now() < deadline, "not settled: {page}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let row = |endpoint: &str| -> String {
            let start = page.find(&format!("<tr class=\"endpoint\"><td>{endpoint}</td>")).unwrap_or_else(|| panic!("no {endpoint}: {page}"));
            let end = start + page[start..].find("</tr>").unwrap();
            page[start..end].to_owned()
        };
        assert!(row("orders").ends_with(
            "<td class=\"num delivered\">1</td><td class=\"num dead\">0</td><td class=\"num pending\">0</td><td class=\"oldest\">-</td>"
        ), "{page}");
        assert!(row("audit").ends_with(
            "<td class=\"num delivered\">0</td><td class=\"num dead bad\">1</td><td class=\"num pending\">0</td><td class=\"oldest\">-</td>"
        ), "{page}");
        let busy_row = row("busy");
        assert!(busy_row.contains(
            "<td class=\"num delivered\">0</td><td class=\"num dead\">0</td><td class=\"num pending\">1</td><td class=\"oldest\">"
        ), "{page}");
        assert!(busy_row.ends_with(" s</td>"), "an age in seconds: {page}");

        let id: String = {
            let mut db = app.store.webhook_deliveries(&freedompay_receiver::store::outbox::DeliveryFilter {
                state: Some("dead"),
                ..Default::default()
            }).await.unwrap();
            assert_eq!(db.len(), 1, "{db:?}");
            db.remove(0).message_id
        };
        let dead = page.find("<tr class=\"dead\">").unwrap_or_else(|| panic!("no dead row: {page}"));
        let dead_row = &page[dead..dead + page[dead..].find("</tr>").unwrap()];
        for cell in [
            format!("<td><code>{id}</code></td><td>payment.succeeded</td><td>audit</td><td>{MERCHANT}</td>"),
            "<td>payment <a href=\"/payment/545774/9052\">9052</a></td>".to_owned(),
            "<td class=\"num\">2</td><td class=\"bad\">HTTP 500</td>".to_owned(),
        ] {
            assert!(dead_row.contains(&cell), "{cell}: {dead_row}");
        }
        assert_eq!(page.matches("<tr class=\"dead\">").count(), 1, "{page}");
        // Read-only, and it says where replaying is.
        assert!(page.contains("webhooks replay ID"), "{page}");
        assert!(!page.contains("<form method=\"post\""), "{page}");
        assert!(console.page("/").await.contains("<a href=\"/webhooks\">Webhooks</a>"));

        // The payment's timeline shows the message under its event.
        let timeline = console.page("/payment/545774/9052").await;
        assert!(timeline.contains(&format!("<code>{id}</code> payment.succeeded")), "{timeline}");
        assert!(timeline.contains("audit: <span class=\"bad\">dead</span>, attempts 2, last HTTP 500"), "{timeline}");
        assert!(timeline.contains("orders: <span>delivered</span>, attempts 1, last HTTP 204, delivered "), "{timeline}");
        assert!(timeline.contains("busy: <span>pending</span>, attempts 1, last HTTP 503"), "{timeline}");
        console.app.stop().await;
    }
}

on_both_backends! {
    // An endpoint removed from `[[webhooks]]` keeps its deliveries, shown
    // and marked as no longer sent. Seen failing with the mark left out.
    async fn webhooks_page_marks_an_endpoint_no_longer_configured(backend) {
        let (orders, _) = receiver(0).await;
        let console = Console::start_with(backend, &endpoints(&[("orders", &orders)])).await;
        // A delivery written while `retired` was configured.
        let statements = [
            "INSERT INTO webhook_messages (id, merchant_id, type, event_id, ordering_key, position, body) \
             VALUES ('msg_retired', '545774', 'payment.succeeded', 1, 'payment:545774:1', 0, '{}')",
            "INSERT INTO webhook_deliveries (message_id, endpoint, ordering_key, event_id, position) \
             VALUES ('msg_retired', 'retired', 'payment:545774:1', 1, 0)",
        ];
        match backend {
            crate::support::Backend::Postgres => {
                let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&console.app.db_url).await.unwrap();
                for sql in statements {
                    sqlx::query(sql).execute(&mut db).await.unwrap();
                }
            }
            crate::support::Backend::Sqlite => {
                let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&console.app.db_url).await.unwrap();
                for sql in statements {
                    sqlx::query(sql).execute(&mut db).await.unwrap();
                }
            }
        }
        let page = console.page("/webhooks").await;
        let start = page.find("<tr class=\"endpoint\"><td>retired").unwrap_or_else(|| panic!("no retired row: {page}"));
        let row = &page[start..start + page[start..].find("</tr>").unwrap()];
        assert!(row.contains("(not configured: its deliveries are kept, never sent)"), "{row}");
        assert!(row.contains("<td class=\"num pending\">1</td>"), "{row}");
        let start = page.find("<tr class=\"endpoint\"><td>orders").unwrap_or_else(|| panic!("no orders row: {page}"));
        let row = &page[start..start + page[start..].find("</tr>").unwrap()];
        assert!(!row.contains("not configured"), "{row}");
    }
}
