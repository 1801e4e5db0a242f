//! Network policy: source allow-list, trusted proxies, and the budget of
//! failed signatures per source.

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{KEY, TestApp};

async fn check_from(app: &TestApp, forwarded_for: Option<&str>, key: &str, payment: &str) -> u16 {
    let message = FreedomPay::sign("check", key, &freedompay::check("O", payment, "10"));
    let mut request = app
        .fp
        .http
        .post(app.url("/freedompay/check"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(freedompay_receiver::protocol::encode::to_urlencoded(
            &message,
        ));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    app.fp.raw(request).await.status
}

on_both_backends! {
    async fn sources_outside_the_allow_list_get_403_and_change_nothing(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace("[server]\n", "[server]\nallowed_sources = [\"10.0.0.0/8\", \"192.0.2.0/24\"]\n");
        }).await;
        app.order("O", "10", "KZT").await;
        let reply = app.fp.send("check", &freedompay::check("O", "1", "10")).await;
        assert_eq!(reply.status, 403);
        assert_eq!(reply.description(), "Source not allowed");
        // X-Forwarded-For from an untrusted peer is not believed.
        assert_eq!(check_from(&app, Some("10.1.2.3"), KEY, "2").await, 403);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 0);
        app.stop().await;

        let open = TestApp::spawn_with(backend, |t| {
            *t = t.replace("[server]\n", "[server]\nallowed_sources = [\"127.0.0.0/8\"]\n");
        }).await;
        open.order("O", "10", "KZT").await;
        open.fp.send("check", &freedompay::check("O", "1", "10")).await.assert_answer("check", Status::Ok);
        open.stop().await;
    }

    async fn forwarded_for_is_believed_only_from_trusted_proxies(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace(
                "[server]\n",
                "[server]\nallowed_sources = [\"203.0.113.0/24\"]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
            );
        }).await;
        app.order("O", "10", "KZT").await;
        assert_eq!(check_from(&app, Some("203.0.113.7"), KEY, "1").await, 200);
        assert_eq!(check_from(&app, Some("203.0.113.9, 127.0.0.1"), KEY, "2").await, 200);
        assert_eq!(check_from(&app, Some("198.51.100.1"), KEY, "3").await, 403);
        // A client-supplied address in front of the real one does not help.
        assert_eq!(check_from(&app, Some("203.0.113.7, 198.51.100.1"), KEY, "4").await, 403);
        assert_eq!(check_from(&app, None, KEY, "5").await, 403);
        app.stop().await;
    }

    async fn repeated_invalid_signatures_from_one_source_get_429(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace(
                "[server]\n",
                "[server]\ninvalid_signature_per_minute = 5\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
            );
        }).await;
        app.order("O", "10", "KZT").await;
        for payment in 1..=5 {
            assert_eq!(check_from(&app, Some("198.51.100.1"), "forged", &payment.to_string()).await, 403);
        }
        assert_eq!(check_from(&app, Some("198.51.100.1"), "forged", "6").await, 429);
        // Throttled before any work, valid or not.
        assert_eq!(check_from(&app, Some("198.51.100.1"), KEY, "7").await, 429);
        // Other sources are not affected.
        assert_eq!(check_from(&app, Some("198.51.100.2"), KEY, "8").await, 200);
        let reply = app.fp.send_as("check", Encoding::Form, KEY, &freedompay::check("O", "9", "10")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 2);
        app.stop().await;
    }
}
