//! Tolerance at the edges of HTTP: raw XML whatever its content type says,
//! `Expect: 100-continue` with a body over the limit, and encoded bodies.

use std::time::Duration;

use freedompay_receiver::protocol::encode::{to_urlencoded, to_xml};
use freedompay_receiver::protocol::{RawRequest, Status, decode_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::on_both_backends;
use crate::support::freedompay::{self, FreedomPay};
use crate::support::{KEY, TestApp};

/// Reads from `stream` until the end of the first response head (or EOF).
async fn response_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buffer))
            .await
            .expect("the server answers")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn a_body_starting_with_a_tag_is_xml_whatever_its_content_type() {
    let message = FreedomPay::sign("check", KEY, &freedompay::check("O", "1", "10"));
    let xml = to_xml("request", &message);
    let padded = format!("\u{feff} \r\n\t{xml}");
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        Some("text/plain"),
        Some("application/xml"),
        Some("application/json"),
        None,
    ] {
        for body in [xml.as_str(), padded.as_str()] {
            let decoded = decode_request(RawRequest {
                is_get: false,
                content_type,
                query: None,
                body: body.as_bytes(),
            });
            assert_eq!(decoded.as_ref(), Ok(&message), "{content_type:?}");
        }
    }
}

on_both_backends! {
    async fn raw_xml_sent_as_a_form_is_processed(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            // A failure would spend the source's budget: with a budget of one,
            // a second misread would be 429.
            *t = t.replace("[server]\n", "[server]\ninvalid_signature_per_minute = 1\n");
        }).await;
        app.order("O", "10", "KZT").await;
        for payment in ["1", "2"] {
            let message = FreedomPay::sign("check", KEY, &freedompay::check("O", payment, "10"));
            let reply = app
                .fp
                .raw(
                    app.fp
                        .http
                        .post(app.url("/freedompay/check"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("\n  {}", to_xml("request", &message))),
                )
                .await;
            reply.assert_answer("check", Status::Ok);
        }
        assert_eq!(app.store.count_events(None).await.unwrap().first, 2);
        app.stop().await;
    }

    async fn expect_continue_over_the_limit_gets_413_without_100_continue(backend) {
        let app = TestApp::spawn(backend).await;
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(
                b"POST /freedompay/result HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 65537\r\nExpect: 100-continue\r\n\r\n",
            )
            .await
            .unwrap();
        let head = response_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        assert!(!head.contains("100 Continue"), "{head}");

        // Within the limit, the body is asked for and processed.
        app.order("O", "10", "KZT").await;
        let body = to_urlencoded(&FreedomPay::sign("check", KEY, &freedompay::check("O", "1", "10")));
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST /freedompay/check HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let interim = response_head(&mut stream).await;
        assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
        stream.write_all(body.as_bytes()).await.unwrap();
        let answer = response_head(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(app.store.count_events(None).await.unwrap().first, 1);
        app.stop().await;
    }

    async fn encoded_bodies_get_415_and_change_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "10", "KZT").await;
        let signed = to_urlencoded(&FreedomPay::sign("result", KEY, &freedompay::result("O", "1", "10")));
        let gzip_magic = [0x1f_u8, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];
        for (encoding, body) in [
            ("gzip", gzip_magic.to_vec()),
            ("deflate", signed.clone().into_bytes()),
            ("br", signed.clone().into_bytes()),
            ("identity, gzip", signed.clone().into_bytes()),
            ("x-custom", signed.clone().into_bytes()),
        ] {
            let reply = app
                .fp
                .raw(
                    app.fp
                        .http
                        .post(app.url("/freedompay/result"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("content-encoding", encoding)
                        .body(body),
                )
                .await;
            assert_eq!(reply.status, 415, "{encoding}: {}", reply.body);
        }
        assert_eq!(app.store.count_events(None).await.unwrap().first, 0);
        // `identity` is no encoding at all.
        let reply = app
            .fp
            .raw(
                app.fp
                    .http
                    .post(app.url("/freedompay/result"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("content-encoding", "identity")
                    .body(signed),
            )
            .await;
        reply.assert_answer("result", Status::Ok);
        app.stop().await;
    }
}
