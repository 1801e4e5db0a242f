//! A fake FreedomPay Merchant API on a loopback port: it verifies each
//! request's signature with the called script's name, answers with signed XML,
//! records what it was asked, and can be told to misbehave.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use freedompay_receiver::protocol::encode::to_xml;
use freedompay_receiver::protocol::{
    Message, RawRequest, VerifyOptions, decode_request, sign, verify,
};

/// How the fake answers the next calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// A well-formed answer whose signature is made with another key.
    ForgedSignature,
    ServerError,
}

#[derive(Debug)]
pub struct Fake {
    key: String,
    pub behaviour: Mutex<Behaviour>,
    /// (script, request fields, arrival time) of every call.
    pub calls: Mutex<Vec<(String, Message, Instant)>>,
}

pub struct FakeFreedomPay {
    pub base_url: String,
    pub state: Arc<Fake>,
}

impl FakeFreedomPay {
    pub async fn start(key: &str) -> FakeFreedomPay {
        let state = Arc::new(Fake {
            key: key.to_owned(),
            behaviour: Mutex::new(Behaviour::Normal),
            calls: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/{script}", post(handle))
            .route("/g2g/{script}", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeFreedomPay { base_url, state }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn calls(&self) -> Vec<(String, Message, Instant)> {
        self.state.calls.lock().unwrap().clone()
    }
}

fn signed(script: &str, key: &str, pairs: &[(&str, &str)]) -> Response {
    let mut message = Message::from_pairs(pairs.iter().map(|(n, v)| (*n, *v))).unwrap();
    message.push("pg_salt", "fakesalt123456789");
    let sig = sign(script, &message, key);
    message.push("pg_sig", sig);
    (
        [("content-type", "application/xml")],
        to_xml("response", &message),
    )
        .into_response()
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    Path(script): Path<String>,
    body: Bytes,
) -> Response {
    let request = decode_request(RawRequest {
        is_get: false,
        content_type: Some("application/x-www-form-urlencoded"),
        query: None,
        body: &body,
    })
    .unwrap();
    fake.calls
        .lock()
        .unwrap()
        .push((script.clone(), request.clone(), Instant::now()));
    let behaviour = *fake.behaviour.lock().unwrap();
    if behaviour == Behaviour::ServerError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let key = if behaviour == Behaviour::ForgedSignature {
        "not-the-key"
    } else {
        fake.key.as_str()
    };
    if verify(
        &script,
        &request,
        &[fake.key.as_str()],
        VerifyOptions::default(),
    )
    .is_err()
    {
        return signed(
            &script,
            key,
            &[
                ("pg_status", "error"),
                ("pg_error_code", "9998"),
                ("pg_error_description", "Invalid signature"),
            ],
        );
    }
    let payment = request.get("pg_payment_id").unwrap_or("").to_owned();
    match script.as_str() {
        "get_status3.php" => signed(
            &script,
            key,
            &[
                ("pg_status", "ok"),
                ("pg_payment_id", &payment),
                ("pg_payment_status", "success"),
                ("pg_amount", "7000"),
                ("pg_currency", "KZT"),
                ("pg_captured", "1"),
                ("pg_refund_amount", "-400"),
            ],
        ),
        "revoke.php" if payment == "unknown" => signed(
            &script,
            key,
            &[
                ("pg_status", "error"),
                ("pg_error_code", "340"),
                ("pg_error_description", "Payment not found"),
            ],
        ),
        "revoke.php" | "cancel.php" | "do_capture.php" => {
            signed(&script, key, &[("pg_status", "ok")])
        }
        "payout_status2" => signed(
            &script,
            key,
            &[
                ("pg_status", "ok"),
                ("pg_payment_status", "process"),
                ("pg_order_id", request.get("pg_order_id").unwrap_or("")),
            ],
        ),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
