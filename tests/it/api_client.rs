//! The Merchant API client against a fake FreedomPay: signed requests with the
//! called script's name, verified responses, typed errors, pacing.

use std::time::Duration;

use freedompay_receiver::api::{ApiClient, ApiError};
use freedompay_receiver::protocol::{Amount, VerifyOptions, verify};

use crate::support::fake_freedompay::{Behaviour, FakeFreedomPay};

const KEY: &str = "api-test-key";

fn client(fake: &FakeFreedomPay, pacing: Duration) -> ApiClient {
    ApiClient::new(
        &fake.base_url,
        "545774",
        KEY.into(),
        Duration::from_secs(5),
        pacing,
    )
    .expect("an HTTP client")
}

#[tokio::test]
async fn status_is_read_from_a_verified_response() {
    let fake = FakeFreedomPay::start(KEY).await;
    fake.add_payment("555", "O-555", "7000", "success");
    let api = client(&fake, Duration::ZERO);
    api.refund("555", Some("400".parse().unwrap()))
        .await
        .unwrap();
    let report = api.payment_status(Some("555"), None).await.unwrap();
    assert_eq!(report.payment_status, "success");
    assert_eq!(report.payment_id.as_deref(), Some("555"));
    assert_eq!(report.amount, Some("7000".parse::<Amount>().unwrap()));
    assert_eq!(report.refund_amount, Some("400".parse::<Amount>().unwrap()));
    assert_eq!(report.captured, Some(true));
    assert_eq!(report.order_id.as_deref(), Some("O-555"));
    let calls = fake.calls();
    let (script, request, _) = &calls[1];
    assert_eq!(script, "get_status3.php");
    assert_eq!(request.get("pg_merchant_id"), Some("545774"));
    assert!(
        verify(
            "get_status3.php",
            request,
            &[KEY],
            VerifyOptions {
                allow_variants: false
            }
        )
        .is_ok()
    );
}

#[tokio::test]
async fn refunds_capture_cancel_and_payout_status_are_signed_for_their_scripts() {
    let fake = FakeFreedomPay::start(KEY).await;
    fake.add_payment("555", "O-555", "7000", "success");
    fake.add_payment("556", "O-556", "7000", "success");
    let api = client(&fake, Duration::ZERO);
    api.refund("555", Some("400.50".parse().unwrap()))
        .await
        .unwrap();
    api.refund("556", None).await.unwrap();
    api.capture("557", None).await.unwrap();
    api.cancel("558").await.unwrap();
    let payout = api.payout_status("PO-1").await.unwrap();
    assert_eq!(payout.get("pg_payment_status"), Some("process"));
    let calls = fake.calls();
    assert_eq!(calls[0].1.get("pg_refund_amount"), Some("400.5"));
    assert_eq!(
        calls[1].1.get("pg_refund_amount"),
        None,
        "a full refund sends no amount"
    );
    let scripts: Vec<&str> = calls.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(
        scripts,
        [
            "revoke.php",
            "revoke.php",
            "do_capture.php",
            "cancel.php",
            "payout_status2"
        ]
    );
}

#[tokio::test]
async fn a_response_with_a_bad_signature_is_never_believed() {
    let fake = FakeFreedomPay::start(KEY).await;
    fake.set(Behaviour::ForgedSignature);
    let error = client(&fake, Duration::ZERO)
        .payment_status(Some("555"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::Signature { .. }), "{error}");
}

#[tokio::test]
async fn http_and_api_errors_are_typed() {
    let fake = FakeFreedomPay::start(KEY).await;
    let api = client(&fake, Duration::ZERO);
    let refused = api.refund("unknown", None).await.unwrap_err();
    assert!(
        matches!(&refused, ApiError::Api { code, description, .. } if code == "340" && description == "Payment not found"),
        "{refused}"
    );
    fake.set(Behaviour::ServerError);
    let error = api.payment_status(Some("1"), None).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Http { status: 500, .. }),
        "{error}"
    );
    let wrong_key = ApiClient::new(
        &fake.base_url,
        "545774",
        "wrong".into(),
        Duration::from_secs(5),
        Duration::ZERO,
    )
    .expect("an HTTP client");
    fake.set(Behaviour::Normal);
    // FreedomPay refuses the request; its answer is signed with the real key,
    // which the client does not have, so it is not believed either.
    assert!(wrong_key.payment_status(Some("1"), None).await.is_err());
}

#[tokio::test]
async fn calls_keep_the_advised_distance() {
    use freedompay_receiver::api::pacing_delay;
    use std::time::Instant;
    // The rule itself, on fixed instants (no timing of real requests).
    let pacing = Duration::from_millis(300);
    let t0 = Instant::now();
    assert_eq!(pacing_delay(None, t0, pacing), Duration::ZERO);
    assert_eq!(pacing_delay(Some(t0), t0, pacing), pacing);
    assert_eq!(
        pacing_delay(Some(t0), t0 + Duration::from_millis(100), pacing),
        Duration::from_millis(200)
    );
    assert_eq!(pacing_delay(Some(t0), t0 + pacing, pacing), Duration::ZERO);
    assert_eq!(
        pacing_delay(Some(t0), t0 + Duration::from_secs(5), pacing),
        Duration::ZERO
    );
    // And a paced client still makes both calls.
    let fake = FakeFreedomPay::start(KEY).await;
    let api = client(&fake, Duration::from_millis(50));
    api.cancel("1").await.unwrap();
    api.cancel("2").await.unwrap();
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn payouts_go_to_cards_or_tokens_and_their_status_is_read() {
    use freedompay_receiver::api::{PayoutDestination, PayoutRequest};
    let fake = FakeFreedomPay::start(KEY).await;
    let api = client(&fake, Duration::ZERO);
    fake.script_payout("PO-7", &["success"]);
    let request = PayoutRequest {
        order_id: "PO-7",
        amount: "150.50".parse().unwrap(),
        currency: Some("KZT"),
        description: "Cashback",
        post_link: "https://shop.example.kz/freedompay/payout",
        user_id: Some("42"),
        destination: PayoutDestination::Token("c92741d9-ddd7-4bad-abd0-5594a79eea1a"),
    };
    let answer = api.payout(&request).await.unwrap();
    assert_eq!(answer.get("pg_status"), Some("ok"));
    let calls = fake.calls();
    let (script, sent, _) = &calls[0];
    assert_eq!(script, "reg2reg");
    assert_eq!(
        sent.get("pg_card_token_to"),
        Some("c92741d9-ddd7-4bad-abd0-5594a79eea1a")
    );
    assert_eq!(sent.get("pg_user_id"), Some("42"));
    assert_eq!(sent.get("pg_amount"), Some("150.5"));
    assert!(sent.get("pg_order_time_limit").is_some());
    let status = api.payout_status_v1("PO-7").await.unwrap();
    assert_eq!(status.get("pg_status"), Some("success"));
    assert_eq!(fake.calls()[1].0, "payout_status");
}

#[tokio::test]
async fn a_call_that_outlives_its_timeout_is_a_network_error() {
    let fake = FakeFreedomPay::start(KEY).await;
    fake.set(Behaviour::Slow);
    let api = ApiClient::new(
        &fake.base_url,
        "545774",
        KEY.into(),
        Duration::from_millis(300),
        Duration::ZERO,
    )
    .expect("an HTTP client");
    let error = api.payment_status(Some("1"), None).await.unwrap_err();
    assert!(matches!(error, ApiError::Network { .. }), "{error}");
}
