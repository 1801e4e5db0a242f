//! The outbox in the operators' read-only views, through the real server on
//! both backends with real HTTP receivers on 127.0.0.1: `history` (text and
//! JSON) shows each event's messages with every endpoint's delivery state.

use freedompay_receiver::config::Settings;
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
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
        let webhooks = doc["webhooks"].as_array().expect(&doc.to_string());
        assert_eq!(webhooks.len(), 2, "{doc}");
        let events = doc["events"].as_array().unwrap();
        for (message, id, kind, event_kind, orders_attempts) in [
            (&webhooks[0], &succeeded, "payment.succeeded", "result", 2),
            (&webhooks[1], &refunded, "payment.refunded", "refund", 1),
        ] {
            assert_eq!(message["id"], id.as_str(), "{doc}");
            assert_eq!(message["type"], kind, "{doc}");
            let event = events.iter().find(|e| e["id"] == message["event_id"]).expect(&doc.to_string());
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
}
