//! Methods: the callback paths take GET and POST only. Every other method,
//! HEAD included, gets 405 with `Allow: GET, POST` and changes nothing, even
//! with a validly signed message.

use freedompay_receiver::domain::OrderStatus;
use freedompay_receiver::protocol::Status;
use freedompay_receiver::protocol::encode::to_urlencoded;
use reqwest::Method;

use crate::on_both_backends;
use crate::support::freedompay::{self, FreedomPay};
use crate::support::{KEY, MERCHANT, TestApp};

const REFUSED: [&str; 5] = ["HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"];

on_both_backends! {
    async fn methods_other_than_get_and_post_get_405_and_change_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "10", "KZT").await;
        for (i, name) in REFUSED.iter().enumerate() {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            let signed = to_urlencoded(&FreedomPay::sign(
                "result",
                KEY,
                &freedompay::result("O", &format!("P{i}"), "10"),
            ));
            // The signed message both as the body and as the query string.
            let reply = app
                .fp
                .raw(
                    app.fp
                        .http
                        .request(method, app.url(&format!("/freedompay/result?{signed}")))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(signed),
                )
                .await;
            assert_eq!(reply.status, 405, "{name}: {}", reply.body);
            assert_eq!(
                reply.headers.get("allow").and_then(|v| v.to_str().ok()),
                Some("GET, POST"),
                "{name}"
            );
        }
        // The redirect paths too.
        let reply = app
            .fp
            .raw(app.fp.http.request(Method::HEAD, app.url("/freedompay/success")))
            .await;
        assert_eq!(reply.status, 405);
        assert_eq!(app.store.count_events(None).await.unwrap().first, 0);
        let order = app.store.order(MERCHANT, "O").await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        // GET and POST are processed as before.
        app.fp
            .send("result", &freedompay::result("O", "P9", "10"))
            .await
            .assert_answer("result", Status::Ok);
        let order = app.store.order(MERCHANT, "O").await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Paid);
        app.stop().await;
    }
}
