//! Authentication: forged, unsigned, unknown merchant, wrong script name (403,
//! nothing written), key rotation and merchant resolution.

use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::freedompay::{self, Encoding, FreedomPay};
use crate::support::{KEY, MERCHANT, PREVIOUS_KEY, TestApp};

async fn assert_nothing_written(app: &TestApp) {
    let counts = app.store.count_events(None).await.unwrap();
    assert_eq!(
        (counts.first, counts.duplicate),
        (0, 0),
        "no event may be written"
    );
    assert!(app.store.payment(MERCHANT, "1").await.unwrap().is_none());
}

#[track_caller]
fn assert_forbidden(reply: &freedompay::Reply) {
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.pg_status(), Some(Status::Error));
    assert!(
        reply
            .answer
            .as_ref()
            .unwrap()
            .message
            .get("pg_sig")
            .is_none(),
        "403 answers are unsigned"
    );
}

on_both_backends! {
    async fn forged_unsigned_and_tampered_requests_are_403_and_change_nothing(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let fields = freedompay::result("O", "1", "1000");
        assert_forbidden(&app.fp.send_as("result", Encoding::Form, "not-the-key", &fields).await);

        let unsigned = freedompay_receiver::protocol::Message::from_pairs(fields.0.clone()).unwrap();
        assert_forbidden(&app.fp.deliver("/freedompay/result", Encoding::Form, &unsigned).await);

        let mut tampered = FreedomPay::sign("result", KEY, &fields);
        let pairs: Vec<_> = tampered.to_pairs().into_iter()
            .map(|(n, v)| if n == "pg_amount" { (n, "1".to_owned()) } else { (n, v) })
            .collect();
        tampered = freedompay_receiver::protocol::Message::from_pairs(pairs).unwrap();
        assert_forbidden(&app.fp.deliver("/freedompay/result", Encoding::Form, &tampered).await);
        assert_nothing_written(&app).await;
        app.stop().await;
    }

    async fn a_signature_for_another_script_name_is_403(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        // Signed for the check endpoint, delivered to result.
        let message = FreedomPay::sign("check", KEY, &freedompay::result("O", "1", "1000"));
        assert_forbidden(&app.fp.deliver("/freedompay/result", Encoding::Form, &message).await);
        assert_nothing_written(&app).await;
        app.stop().await;
    }

    async fn an_unknown_merchant_is_403(backend) {
        let app = TestApp::spawn(backend).await;
        let fields = freedompay::result("O", "1", "1000").set("pg_merchant_id", "999999");
        assert_forbidden(&app.fp.send("result", &fields).await);
        assert_nothing_written(&app).await;
        app.stop().await;
    }

    async fn the_merchant_id_selects_the_merchant_and_its_keys(backend) {
        let app = TestApp::spawn_with(backend, |t| t.push_str("\n[rules]\nrequire_known_order = false\n")).await;
        // Second merchant, identified by pg_merchant_id.
        let fields = freedompay::check("O", "1", "10").set("pg_merchant_id", "100200");
        let reply = app.fp.send_as("check", Encoding::Form, "second-merchant-key", &fields).await;
        assert_eq!(reply.pg_status(), Some(Status::Ok));
        assert!(reply.signature_ok("check", "second-merchant-key"));
        // The same merchant id with the first merchant's key is a forgery.
        assert_forbidden(&app.fp.send_as("check", Encoding::Form, KEY, &fields).await);
        // Without pg_merchant_id the merchant whose key verifies is the sender.
        let anonymous = freedompay::check("O", "2", "10");
        let reply = app.fp.send_as("check", Encoding::Form, "second-merchant-key", &anonymous).await;
        assert!(reply.signature_ok("check", "second-merchant-key"));
        app.stop().await;
    }

    async fn key_rotation_accepts_the_previous_key_and_answers_with_it(backend) {
        let app = TestApp::spawn(backend).await;
        app.order("O", "1000", "KZT").await;
        let reply = app.fp.send_as("check", Encoding::Form, PREVIOUS_KEY, &freedompay::check("O", "1", "1000")).await;
        assert_eq!(reply.pg_status(), Some(Status::Ok));
        assert!(reply.signature_ok("check", PREVIOUS_KEY));
        let reply = app.fp.send_as("check", Encoding::Form, KEY, &freedompay::check("O", "2", "1000")).await;
        assert!(reply.signature_ok("check", KEY));
        app.stop().await;
    }

    async fn script_names_follow_the_configured_paths_and_overrides(backend) {
        let app = TestApp::spawn_with(backend, |t| t.push_str(
            "\n[endpoints]\ncheck = \"/fp/check.php\"\nresult = \"/internal/res\"\n\
             [endpoints.script_names]\nresult = \"result.php\"\n\
             [rules]\nrequire_known_order = false\n",
        )).await;
        let check = FreedomPay::sign("check.php", KEY, &freedompay::check("O", "1", "10"));
        let reply = app.fp.deliver("/fp/check.php", Encoding::Form, &check).await;
        assert!(reply.signature_ok("check.php", KEY), "{}", reply.body);
        let result = FreedomPay::sign("result.php", KEY, &freedompay::result("O", "1", "10"));
        let reply = app.fp.deliver("/internal/res", Encoding::Form, &result).await;
        assert!(reply.signature_ok("result.php", KEY), "{}", reply.body);
        let wrong = FreedomPay::sign("res", KEY, &freedompay::result("O", "2", "10"));
        assert_forbidden(&app.fp.deliver("/internal/res", Encoding::Form, &wrong).await);
        app.stop().await;
    }
}
