//! The fake's JSON refund APIs: the SuperApp refund (`pg_sig` over JSON), and
//! the v5 `g2g/edit` and Card API refunds (detached JWS, idempotent by request
//! id: a repeated id gets the first answer and refunds nothing more).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use freedompay_receiver::api::jws::{self, Algorithm};
use freedompay_receiver::protocol::json::json_to_message;
use freedompay_receiver::protocol::{Amount, Message, VerifyOptions, sign, verify};

use super::{Behaviour, Fake, maybe_slow};

const MERCHANT: &str = "545774";

pub(super) async fn superapp_refund(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let request = json_to_message(std::str::from_utf8(&body).unwrap()).unwrap();
    fake.record("implement/superapp/refund", &request);
    if fake.behaviour() == Behaviour::ServerError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    maybe_slow(&fake).await;
    let strict = VerifyOptions {
        allow_variants: false,
    };
    let order = request.get("pg_order_id").unwrap_or("").to_owned();
    let (code, description, refund_id) =
        if verify("refund", &request, &[fake.key.as_str()], strict).is_err() {
            ("9998", "Invalid signature", String::new())
        } else {
            let payment_id = fake
                .payments
                .lock()
                .unwrap()
                .iter()
                .find(|(_, p)| p.order_id == order)
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            let amount = request.get("pg_refund_amount").map(|a| a.parse().unwrap());
            match fake.refund("superapp", &payment_id, amount, None) {
                Ok(_) if fake.behaviour() == Behaviour::HangAfterRefund => {
                    return std::future::pending().await;
                }
                Ok(_) => ("0", "", format!("R-{payment_id}")),
                Err((code, description)) => (code, description, String::new()),
            }
        };
    let status = if code == "0" { "success" } else { "error" };
    let mut answer = Message::new();
    for (name, value) in [
        ("pg_merchant_id", MERCHANT),
        ("pg_payment_id", refund_id.as_str()),
        ("pg_order_id", order.as_str()),
        ("pg_status", status),
        ("pg_error_code", code),
        ("pg_error_description", description),
        ("refund_timestamp", "2026-11-25T12:00:00Z"),
        ("pg_salt", "fakesalt123456789"),
    ] {
        answer.push(name, value);
    }
    let sig = sign("refund", &answer, fake.answer_key());
    // pg_error_code is a JSON number, as in FreedomPay's example.
    let body = serde_json::json!({
        "pg_merchant_id": MERCHANT,
        "pg_payment_id": refund_id,
        "pg_order_id": order,
        "pg_status": status,
        "pg_error_code": code.parse::<u32>().unwrap(),
        "pg_error_description": description,
        "refund_timestamp": "2026-11-25T12:00:00Z",
        "pg_salt": "fakesalt123456789",
        "pg_sig": sig,
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

pub(super) async fn v5_edit(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let payment_id = json["id"].as_str().unwrap_or("").to_owned();
    let amount: Amount = json["amount"].to_string().parse().unwrap();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if header("x-action") != "gateway.payment.refund" {
        return StatusCode::BAD_REQUEST.into_response();
    }
    jws_refund(&fake, "v5/g2g/edit", &headers, &body, &payment_id, amount, |refund_id| {
        serde_json::json!({
            "id": payment_id,
            "amount": amount.as_decimal(),
            "refund_payment": {"id": refund_id, "status": "process", "amount": format!("-{amount}")},
        })
    })
    .await
}

pub(super) async fn card_api_refund(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let payment_id = json["transaction_id"].as_str().unwrap_or("").to_owned();
    let amount: Amount = json["amount"].to_string().parse().unwrap();
    if json["request_id"].as_str() != headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    jws_refund(
        &fake,
        "v5/card-api/transaction/refund",
        &headers,
        &body,
        &payment_id,
        amount,
        |_| serde_json::json!({"status": "ok", "request_status": "process", "dt": "2026-11-25T12:00:00+05:00"}),
    )
    .await
}

/// The shared v5 steps: verify the JWS, replay a known request id, refund,
/// answer signed (or unsigned when told to).
async fn jws_refund(
    fake: &Fake,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    payment_id: &str,
    amount: Amount,
    answer: impl FnOnce(String) -> serde_json::Value,
) -> Response {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut fields = json_to_message(std::str::from_utf8(body).unwrap()).unwrap();
    fields.push("x-request-id", request_id.clone());
    fake.record(path, &fields);
    if fake.behaviour() == Behaviour::ServerError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    maybe_slow(fake).await;
    let token = headers
        .get("x-jws-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if jws::verify_detached(token, body, &fake.key).is_err() {
        return reply(
            fake,
            path,
            serde_json::json!({"status": "error", "code": 401, "message": "Invalid signature"})
                .to_string(),
            "error",
        );
    }
    let known = fake
        .answers_by_request
        .lock()
        .unwrap()
        .get(&request_id)
        .cloned();
    if let Some((text, status)) = known {
        return reply(fake, path, text, status.as_deref().unwrap_or("success"));
    }
    let (text, status) = match fake.refund(
        if path.starts_with("v5/g2g") {
            "v5"
        } else {
            "card_api"
        },
        payment_id,
        Some(amount),
        Some(&request_id),
    ) {
        Ok(_) => (answer(format!("R-{payment_id}")).to_string(), "success"),
        Err((code, message)) => (
            serde_json::json!({"status": "error", "code": code, "message": message}).to_string(),
            "error",
        ),
    };
    fake.answers_by_request
        .lock()
        .unwrap()
        .insert(request_id, (text.clone(), Some(status.to_owned())));
    if fake.behaviour() == Behaviour::HangAfterRefund && status == "success" {
        return std::future::pending().await;
    }
    reply(fake, path, text, status)
}

fn reply(fake: &Fake, path: &str, text: String, request_status: &str) -> Response {
    let mut response = (
        [
            ("content-type", "application/json".to_owned()),
            ("x-request-status", request_status.to_owned()),
        ],
        text.clone(),
    )
        .into_response();
    if fake.behaviour() != Behaviour::Unsigned {
        let header = jws::header_json(&format!("/{path}"), MERCHANT, Algorithm::Hs512);
        let signature = jws::detached_signature(
            &header,
            text.as_bytes(),
            fake.answer_key(),
            Algorithm::Hs512,
        );
        response
            .headers_mut()
            .insert("x-jws-signature", signature.parse().unwrap());
    }
    response
}
