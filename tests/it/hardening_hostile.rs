//! Hostile input: none of it panics, none of it is stored, and none of it
//! holds up other requests.

use std::time::Duration;

use freedompay_receiver::protocol::{Message, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{KEY, TestApp};

async fn assert_nothing_stored(app: &TestApp) {
    let counts = app.store.count_events(None).await.unwrap();
    assert_eq!(
        (counts.first, counts.duplicate),
        (0, 0),
        "nothing may be stored"
    );
}

async fn post(app: &TestApp, content_type: &str, body: Vec<u8>) -> u16 {
    let request = app
        .fp
        .http
        .post(app.url("/freedompay/result"))
        .header("content-type", content_type)
        .body(body);
    app.fp.raw(request).await.status
}

fn with_pairs(
    message: &Message,
    change: impl Fn(Vec<(String, String)>) -> Vec<(String, String)>,
) -> Message {
    Message::from_pairs(change(message.to_pairs())).unwrap()
}

on_both_backends! {
    async fn hostile_xml_is_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><request><pg_order_id>&lol2;</pg_order_id></request>"#;
        let deep = format!("<request>{}x{}</request>", "<a>".repeat(50), "</a>".repeat(50));
        let external = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request><a>&x;</a></request>"#;
        for body in [laughs.to_owned(), deep, external.to_owned()] {
            assert_eq!(post(&app, "application/xml", body.into_bytes()).await, 400);
        }
        assert_nothing_stored(&app).await;
        app.stop().await;
    }

    async fn too_many_fields_huge_values_and_nul_bytes_are_refused(backend) {
        let app = TestApp::spawn(backend).await;
        let form = "application/x-www-form-urlencoded";
        let ten_thousand = vec!["f="; 10_000].join("&");
        assert_eq!(post(&app, form, ten_thousand.into_bytes()).await, 400);
        assert_eq!(post(&app, form, b"pg_order_id=1%00&pg_sig=x".to_vec()).await, 400);
        assert_eq!(post(&app, form, b"pg_order_id=1\0&pg_sig=x".to_vec()).await, 400);
        assert_eq!(post(&app, "application/xml", b"<request><a>1\0</a></request>".to_vec()).await, 400);
        // Signed NUL: still refused before anything is stored.
        let signed = FreedomPay::sign("result", KEY, &freedompay::result("O", "1", "10"));
        let body = freedompay_receiver::protocol::encode::to_urlencoded(&signed).replace("pg_order_id=O", "pg_order_id=O%00");
        assert_eq!(post(&app, form, body.into_bytes()).await, 400);
        // Last, on a connection of its own: the server answers 413 as soon as the limit is passed and closes the
        // connection; a client still uploading may see the reset instead.
        let megabyte = format!("pg_order_id={}", "7".repeat(1 << 20));
        let request = reqwest::Client::new().post(app.url("/freedompay/result")).header("content-type", form).body(megabyte);
        match request.send().await {
            Ok(response) => assert_eq!(response.status(), 413),
            Err(e) => assert!(e.is_request(), "{e}"),
        }
        assert_nothing_stored(&app).await;
        app.stop().await;
    }

    async fn malformed_signatures_are_403(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "10", "KZT").await;
        let signed = FreedomPay::sign("result", KEY, &freedompay::result("O", "1", "10"));
        let sig = signed.get("pg_sig").unwrap().to_owned();
        let cases = [
            with_pairs(&signed, |mut p| { p.push(("pg_sig".into(), sig.clone())); p }),
            with_pairs(&signed, |p| p.into_iter().map(|(n, v)| if n == "pg_sig" { (n, v[..31].to_owned()) } else { (n, v) }).collect()),
            with_pairs(&signed, |p| p.into_iter().map(|(n, v)| if n == "pg_sig" { (n, format!("{v}0")) } else { (n, v) }).collect()),
            with_pairs(&signed, |p| p.into_iter().map(|(n, v)| if n == "pg_sig" { (n, "Z".repeat(32)) } else { (n, v) }).collect()),
            with_pairs(&signed, |p| p.into_iter().map(|(n, v)| if n == "pg_sig" { (n, "0".repeat(32).to_uppercase()) } else { (n, v) }).collect()),
        ];
        for message in &cases {
            let reply = app.fp.deliver("/freedompay/result", Encoding::Form, message).await;
            assert_eq!(reply.status, 403, "{:?}", message.get("pg_sig"));
        }
        assert_nothing_stored(&app).await;
        // The right signature in upper-case hex is the same signature (protocol
        // reference §1.1: accepting it does no harm).
        let upper = with_pairs(&signed, |p| p.into_iter().map(|(n, v)| if n == "pg_sig" { (n, v.to_uppercase()) } else { (n, v) }).collect());
        let reply = app.fp.deliver("/freedompay/result", Encoding::Form, &upper).await;
        assert_eq!(reply.pg_status(), Some(Status::Ok));
        app.stop().await;
    }

    async fn paths_with_dot_dot_reach_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        let message = FreedomPay::sign("result", KEY, &freedompay::result("O", "1", "10"));
        let body = freedompay_receiver::protocol::encode::to_urlencoded(&message);
        // Raw HTTP: a client library would resolve the dot segments itself.
        for path in ["/freedompay/../freedompay/result", "/freedompay/result/..", "/freedompay/%2e%2e/result", "/../freedompay/result"] {
            let mut stream = TcpStream::connect(app.addr).await.unwrap();
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        }
        assert_nothing_stored(&app).await;
        app.stop().await;
    }
}

/// A client that trickles its headers, or its body, a byte at a time is cut
/// off by the header and request deadlines, while others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_hold_up_others() {
    let app = TestApp::spawn_with(crate::support::Backend::Sqlite, |t| {
        *t = t.replace(
            "[server]\n",
            "[server]\nheader_read_timeout_secs = 1\nrequest_timeout_secs = 2\n",
        );
    })
    .await;
    app.order("O", "10", "KZT").await;

    let slow_headers = tokio::spawn({
        let addr = app.addr;
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            for byte in b"POST /freedompay/check HTTP/1.1\r\nHost: x\r\n" {
                if stream.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            false
        }
    });
    let slow_body = tokio::spawn({
        let addr = app.addr;
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = "POST /freedompay/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
            stream.write_all(head.as_bytes()).await.unwrap();
            for _ in 0..8 {
                if stream.write_all(b"a").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
                .await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    });
    // Meanwhile a real callback is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.fp
        .send("check", &freedompay::check("O", "1", "10"))
        .await
        .assert_answer("check", Status::Ok);

    assert!(
        slow_headers.await.unwrap(),
        "the slow-header connection is closed by the server"
    );
    let answer = slow_body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.store.count_events(None).await.unwrap().first, 1);
    app.stop().await;
}
