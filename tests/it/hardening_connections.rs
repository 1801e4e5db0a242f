//! Connections: a socket that sends nothing is closed after
//! `server.header_read_timeout_secs` counted from accept, so silent sockets
//! cannot hold every connection slot; HTTP/1.1 only (an HTTP/2 preface is
//! refused). These touch no storage, so they run on SQLite only.

use std::time::Duration;

use freedompay_receiver::protocol::Status;
use freedompay_receiver::protocol::encode::to_urlencoded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::freedompay::{self, FreedomPay, Reply};
use crate::support::{Backend, KEY, TestApp};

const HEADER_READ_TIMEOUT_SECS: u64 = 2;

/// A signed check for order `O` on a connection of its own (a pooled
/// connection opened earlier would hold a slot and prove nothing).
async fn fresh_check(app: &TestApp, payment: &str) -> Reply {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let message = FreedomPay::sign("check", KEY, &freedompay::check("O", payment, "10"));
    app.fp
        .raw(
            http.post(app.url("/freedompay/check"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(to_urlencoded(&message)),
        )
        .await
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0_u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection");
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_hold_every_slot() {
    // More silent sockets than the default `max_connections` (1,024).
    const SILENT: usize = 1_100;
    let app = TestApp::spawn_with(Backend::Sqlite, |t| {
        *t = t.replace(
            "[server]\n",
            &format!("[server]\nheader_read_timeout_secs = {HEADER_READ_TIMEOUT_SECS}\n"),
        );
    })
    .await;
    app.order("O", "10", "KZT").await;
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(app.addr).await.expect("connected"));
    }
    // Every slot is held by a socket that sends nothing; the callback waits
    // for the header deadline to free them, no longer.
    let bound = Duration::from_secs(HEADER_READ_TIMEOUT_SECS + 2);
    let reply = tokio::time::timeout(bound, fresh_check(&app, "1"))
        .await
        .expect("answered within header_read_timeout_secs + 2 s");
    reply.assert_answer("check", Status::Ok);
    // The silent sockets were closed by the server, without an answer.
    for stream in silent.iter_mut().step_by(100) {
        let sent = read_until_closed(stream, bound * 2).await;
        assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    }
    drop(silent);
    // A kept-alive connection that goes quiet after a response is closed the
    // same way.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let sent = read_until_closed(&mut stream, bound * 2).await;
    assert!(
        sent.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&sent)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_refused_and_http1_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.order("O", "10", "KZT").await;
    // An h2c prior-knowledge preface and an empty SETTINGS frame.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let sent = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    // No HTTP/2 frame (an HTTP/2 server starts with its SETTINGS frame).
    assert!(
        sent.is_empty() || sent.starts_with(b"HTTP/1.1 "),
        "{sent:?}"
    );
    // An HTTP/2 client gets nowhere.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(h2.get(app.url("/healthz")).send().await.is_err());
    // HTTP/1.1 works.
    fresh_check(&app, "1")
        .await
        .assert_answer("check", Status::Ok);
    app.stop().await;
}
