//! Malformed requests: 400 (or 413 for size) with an XML error; nothing written,
//! except that an authenticated one is recorded as a flagged event.

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{KEY, MERCHANT, TestApp};

async fn assert_nothing_written(app: &TestApp) {
    let counts = app.store.count_events(None).await.unwrap();
    assert_eq!((counts.first, counts.duplicate), (0, 0));
}

on_both_backends! {
    async fn bad_encodings_are_400(backend) {
        let app = TestApp::spawn(backend).await;
        let url = app.url("/freedompay/result");
        let form = "application/x-www-form-urlencoded";
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (form, b"pg_order_id=%zz".to_vec()),
            (form, b"pg_order_id=\xff\xfe".to_vec()),
            ("application/xml", b"<!DOCTYPE r [<!ENTITY a \"b\">]><request><a>&a;</a></request>".to_vec()),
            ("application/xml", b"<request><a>1</b></request>".to_vec()),
            ("multipart/form-data; boundary=X", b"garbage".to_vec()),
            ("application/json", b"{}".to_vec()),
        ];
        for (content_type, body) in cases {
            let reply = app.fp.raw(app.fp.http.post(&url).header("content-type", content_type).body(body)).await;
            assert_eq!(reply.status, 400, "{content_type}: {}", reply.body);
            assert_eq!(reply.pg_status(), Some(Status::Error));
            assert!(reply.description().starts_with("Malformed request"), "{}", reply.body);
        }
        assert_nothing_written(&app).await;
        app.stop().await;
    }

    async fn missing_or_invalid_fields_are_400_signed(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        for (kind, fields) in [
            ("result", freedompay::result("O", "1", "1000").without("pg_payment_id")),
            ("result", freedompay::result("O", "1", "1000").without("pg_result")),
            ("result", freedompay::result("O", "1", "1e3")),
            ("result", freedompay::result("O", "1", "-5")),
            ("result", freedompay::result("O", "1", "1000").set("pg_can_reject", "yes")),
            ("check", freedompay::check("O", "1", "7,000")),
            ("check", freedompay::check("O", "1", "1000").without("pg_order_id")),
        ] {
            let reply = app.fp.send(kind, &fields).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert_eq!(reply.pg_status(), Some(Status::Error));
            assert!(reply.signature_ok(kind, KEY), "known merchant: the error is signed");
        }
        // Authenticated, so each is in the log, flagged; nothing else changes.
        let events = app.store.event_marks(None).await.unwrap();
        assert_eq!(events.len(), 7);
        assert!(events.iter().all(|e| e.flag.as_deref().is_some_and(|f| f.starts_with("unparseable: "))), "{events:?}");
        assert!(app.store.payment(MERCHANT, "1").await.unwrap().is_none());
        assert_eq!(app.store.order(MERCHANT, "O").await.unwrap().unwrap().status, freedompay_receiver::domain::OrderStatus::Pending);
        app.stop().await;
    }

    async fn bodies_over_the_limit_are_413(backend) {
        let app = TestApp::spawn_with(backend, |t| {
            *t = t.replace("shutdown_timeout_secs = 5", "shutdown_timeout_secs = 5\nmax_body_bytes = 2048");
        }).await;
        let big = freedompay::result("O", "1", "1000").set("filler", &"x".repeat(4096));
        let reply = app.fp.send("result", &big).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!(reply.pg_status(), Some(Status::Error));
        // Chunked, without a Content-Length.
        let message = FreedomPay::sign("result", KEY, &big);
        let body = freedompay_receiver::protocol::encode::to_urlencoded(&message).into_bytes();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(512).map(|c| Ok(c.to_vec())).collect();
        let stream = futures_util::stream::iter(chunks);
        let reply = app.fp.raw(
            app.fp.http.post(app.url("/freedompay/result"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(reqwest::Body::wrap_stream(stream)),
        ).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_nothing_written(&app).await;
        // Under the limit still works.
        let small = app.fp.send_as("check", Encoding::Form, KEY, &freedompay::check("O", "2", "1")).await;
        assert_eq!(small.status, 200);
        app.stop().await;
    }
}
