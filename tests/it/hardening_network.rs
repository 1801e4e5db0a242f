//! Network policy: source allow-list, trusted proxies, and the budget of
//! failed signatures per source (never charged to, nor blocking, a request
//! whose signature verifies).

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay, Reply};
use crate::support::process::ServerProcess;
use crate::support::{KEY, TestApp};

/// A check for order `O` signed with `key`, posted with `X-Forwarded-For`
/// when given.
async fn check_via(app: &TestApp, forwarded_for: Option<&str>, key: &str, payment: &str) -> Reply {
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
    app.fp.raw(request).await
}

async fn check_from(app: &TestApp, forwarded_for: Option<&str>, key: &str, payment: &str) -> u16 {
    check_via(app, forwarded_for, key, payment).await.status
}

/// The `Retry-After` of a 429, in seconds.
#[track_caller]
fn retry_after(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 429, "body: {}", reply.body);
    reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a 429 carries Retry-After in seconds")
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
        // A proxy that appends `ip:port`: the port is stripped, and the
        // client-written entry to its left is not taken instead.
        assert_eq!(check_from(&app, Some("203.0.113.7, 198.51.100.1:5678"), KEY, "6").await, 403);
        assert_eq!(check_from(&app, Some("198.51.100.1, 203.0.113.7:5678"), KEY, "7").await, 200);
        // An entry that cannot be read ends the walk at the trusted proxy
        // (127.0.0.1, not allowed), never at what the client wrote.
        assert_eq!(check_from(&app, Some("203.0.113.7, unknown"), KEY, "8").await, 403);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 3);
        app.stop().await;
    }

    async fn failed_signatures_over_budget_get_429_but_signed_requests_are_never_throttled(backend) {
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
        let throttled = check_via(&app, Some("198.51.100.1"), "forged", "6").await;
        // 5 a minute: one more failure is allowed within 12 s.
        assert!((1..=12).contains(&retry_after(&throttled)), "{:?}", throttled.headers);
        // A correctly signed request from the same source is processed.
        let genuine = check_via(&app, Some("198.51.100.1"), KEY, "7").await;
        genuine.assert_answer("check", Status::Ok);
        // ... and does not refill the forger's budget.
        assert_eq!(check_from(&app, Some("198.51.100.1"), "forged", "8").await, 429);
        // Other sources are not affected.
        assert_eq!(check_from(&app, Some("198.51.100.2"), "forged", "9").await, 403);
        assert_eq!(check_from(&app, Some("198.51.100.2"), KEY, "10").await, 200);
        let reply = app.fp.send_as("check", Encoding::Form, KEY, &freedompay::check("O", "11", "10")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 3);
        app.stop().await;
    }

    async fn behind_an_untrusted_proxy_forgeries_cannot_lock_out_genuine_callbacks(backend) {
        // No trusted_proxies: every request is charged to the proxy's address
        // (here the loopback peer), forgers and FreedomPay alike.
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace("[server]\n", "[server]\ninvalid_signature_per_minute = 3\n");
        }).await;
        app.order("O", "10", "KZT").await;
        for payment in 1..=3 {
            assert_eq!(check_from(&app, Some("198.51.100.1"), "forged", &payment.to_string()).await, 403);
        }
        for payment in 4..=10 {
            let forged = check_via(&app, Some(&format!("198.51.100.{payment}")), "forged", &payment.to_string()).await;
            retry_after(&forged);
        }
        let reply = app.fp.send("check", &freedompay::check("O", "11", "10")).await;
        reply.assert_answer("check", Status::Ok);
        let result = app.fp.send("result", &freedompay::result("O", "11", "10")).await;
        result.assert_answer("result", Status::Ok);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 2);
        app.stop().await;
    }

    async fn forged_sources_are_tracked_within_the_cap_and_ipv6_by_network(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace(
                "[server]\n",
                "[server]\ninvalid_signature_per_minute = 2\nbudget_max_sources = 3\n\
                 trusted_proxies = [\"127.0.0.1/32\"]\n",
            );
        }).await;
        app.order("O", "10", "KZT").await;
        let sources: Vec<String> = (1..=40).map(|i| format!("198.51.100.{i}")).collect();
        for source in &sources {
            assert_eq!(check_from(&app, Some(source), "forged", "1").await, 403);
            assert_eq!(check_from(&app, Some(source), "forged", "2").await, 403);
            retry_after(&check_via(&app, Some(source), "forged", "3").await);
        }
        // Only the 3 most recent sources are remembered: the first one was
        // forgotten (a fresh budget), the last one is still throttled.
        assert_eq!(check_from(&app, Some(&sources[0]), "forged", "4").await, 403);
        assert_eq!(check_from(&app, Some(&sources[39]), "forged", "5").await, 429);
        // Genuine callbacks from any of them are answered.
        for (i, source) in sources.iter().enumerate().step_by(13) {
            check_via(&app, Some(source), KEY, &format!("ok-{i}")).await.assert_answer("check", Status::Ok);
        }
        // IPv6: one budget per /64, whatever the interface identifier.
        assert_eq!(check_from(&app, Some("2001:db8:1:2::1"), "forged", "6").await, 403);
        assert_eq!(check_from(&app, Some("[2001:db8:1:2:aaaa::2]:443"), "forged", "7").await, 403);
        retry_after(&check_via(&app, Some("2001:db8:1:2:ffff:ffff:ffff:ffff"), "forged", "8").await);
        assert_eq!(check_from(&app, Some("2001:db8:1:3::1"), "forged", "9").await, 403);
        check_via(&app, Some("2001:db8:1:2::1"), KEY, "ok-v6").await.assert_answer("check", Status::Ok);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 5);
        app.stop().await;
    }
}

/// `X-Forwarded-For` with no trusted proxy configured is ignored, and the log
/// says so: once at start, and at most once a minute when the header arrives.
#[tokio::test]
async fn forwarded_for_without_trusted_proxies_is_warned_about() {
    let server = ServerProcess::start(KEY, "").await;
    let http = reqwest::Client::new();
    for i in 0..3 {
        let status = http
            .get(server.url("/healthz"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .expect("answered")
            .status();
        assert_eq!(status, 200);
        let message = FreedomPay::sign("check", "forged", &freedompay::check("O", "1", "10"));
        let status = http
            .post(server.url("/freedompay/check"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .body(freedompay_receiver::protocol::encode::to_urlencoded(
                &message,
            ))
            .send()
            .await
            .expect("answered")
            .status();
        assert_eq!(status, 403);
    }
    let log = server.log();
    assert_eq!(
        log.matches("server.trusted_proxies is empty: X-Forwarded-For is ignored")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("X-Forwarded-For received but server.trusted_proxies is empty")
            .count(),
        1,
        "{log}"
    );
    server.terminate();
}
