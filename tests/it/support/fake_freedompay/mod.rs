//! A fake FreedomPay on a loopback port: the Merchant API (signed form in,
//! signed XML out) here, the JSON and JWS refund APIs in [`json`]. It keeps
//! payments, refunds and payouts as FreedomPay would, verifies every request's
//! signature, signs its answers, records every call, and can be told to
//! misbehave: forged signatures, HTTP 500, answers slower than any timeout,
//! a refund executed whose answer never comes, a refund that shows in the
//! status only after some queries, payouts in `process` before they settle.

mod json;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use freedompay_receiver::protocol::encode::to_xml;
use freedompay_receiver::protocol::{
    Amount, Message, RawRequest, VerifyOptions, decode_request, sign, verify,
};

/// How the fake answers the next calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    /// A well-formed answer whose signature is made with another key (the
    /// request is still carried out).
    ForgedSignature,
    ServerError,
    /// Answers after 30 s, longer than any client timeout in the tests.
    Slow,
    /// Carries a refund out and never answers (the caller dies or times out
    /// between the call and the commit).
    HangAfterRefund,
    /// v5 answers without `X-JWS-Signature`.
    Unsigned,
}

/// A payment as FreedomPay knows it.
#[derive(Clone, Debug)]
pub struct FakePayment {
    pub order_id: String,
    pub amount: Amount,
    pub currency: String,
    /// `pg_payment_status`: `success`, `pending`, `failed`…
    pub status: String,
    /// Refunded total as the status shows it.
    pub refunded: Amount,
    /// Refunded total not shown yet, and the status queries until it is.
    hidden_refund: Option<(Amount, usize)>,
}

/// A refund the fake carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutedRefund {
    pub api: &'static str,
    pub payment_id: String,
    pub amount: Amount,
    pub request_id: Option<String>,
}

/// One request: the API path, its fields, when it came.
pub type Call = (String, Message, Instant);

#[derive(Debug)]
pub struct Fake {
    key: String,
    pub behaviour: Mutex<Behaviour>,
    pub calls: Mutex<Vec<Call>>,
    pub payments: Mutex<HashMap<String, FakePayment>>,
    pub refunds: Mutex<Vec<ExecutedRefund>>,
    /// Status queries a new refund stays invisible for.
    pub refund_visible_after: Mutex<usize>,
    /// Payout order id -> the statuses its next status queries answer.
    pub payouts: Mutex<HashMap<String, VecDeque<&'static str>>>,
    /// v5 / Card API answers by request id, replayed to repeats.
    answers_by_request: Mutex<HashMap<String, (String, Option<String>)>>,
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
            payments: Mutex::new(HashMap::new()),
            refunds: Mutex::new(Vec::new()),
            refund_visible_after: Mutex::new(0),
            payouts: Mutex::new(HashMap::new()),
            answers_by_request: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/{script}", post(handle_form))
            .route("/g2g/{script}", post(handle_form))
            .route("/implement/superapp/refund", post(json::superapp_refund))
            .route("/v5/g2g/edit", post(json::v5_edit))
            .route(
                "/v5/card-api/transaction/refund",
                post(json::card_api_refund),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeFreedomPay { base_url, state }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Calls of one API path (`get_status3.php`, `v5/g2g/edit`…).
    pub fn calls_to(&self, path: &str) -> usize {
        self.calls().iter().filter(|(p, _, _)| p == path).count()
    }

    /// FreedomPay knows this payment (paid, unless `status` says otherwise).
    pub fn add_payment(&self, payment_id: &str, order_id: &str, amount: &str, status: &str) {
        self.state.payments.lock().unwrap().insert(
            payment_id.to_owned(),
            FakePayment {
                order_id: order_id.to_owned(),
                amount: amount.parse().unwrap(),
                currency: "KZT".into(),
                status: status.to_owned(),
                refunded: Amount::default(),
                hidden_refund: None,
            },
        );
    }

    pub fn set_payment_status(&self, payment_id: &str, status: &str) {
        if let Some(p) = self.state.payments.lock().unwrap().get_mut(payment_id) {
            p.status = status.to_owned();
        }
    }

    /// Refunds carried out for `payment_id`.
    pub fn refunds_of(&self, payment_id: &str) -> Vec<ExecutedRefund> {
        let refunds = self.state.refunds.lock().unwrap();
        refunds
            .iter()
            .filter(|r| r.payment_id == payment_id)
            .cloned()
            .collect()
    }

    /// New refunds show in the status only after `queries` status queries.
    pub fn show_refunds_after(&self, queries: usize) {
        *self.state.refund_visible_after.lock().unwrap() = queries;
    }

    /// The payout's next status queries answer these, the last one for good.
    pub fn script_payout(&self, order_id: &str, statuses: &[&'static str]) {
        self.state
            .payouts
            .lock()
            .unwrap()
            .insert(order_id.to_owned(), statuses.iter().copied().collect());
    }
}

impl Fake {
    fn behaviour(&self) -> Behaviour {
        *self.behaviour.lock().unwrap()
    }

    fn record(&self, path: &str, request: &Message) {
        self.calls
            .lock()
            .unwrap()
            .push((path.to_owned(), request.clone(), Instant::now()));
    }

    /// The key answers are signed with: the real one, or another when forging.
    fn answer_key(&self) -> &str {
        if self.behaviour() == Behaviour::ForgedSignature {
            "not-the-key"
        } else {
            &self.key
        }
    }

    /// Carries out a refund of `amount` (all that is left when `None`);
    /// `Err` with FreedomPay's error when it cannot.
    fn refund(
        &self,
        api: &'static str,
        payment_id: &str,
        amount: Option<Amount>,
        request_id: Option<&str>,
    ) -> Result<Amount, (&'static str, &'static str)> {
        let mut payments = self.payments.lock().unwrap();
        let payment = payments
            .get_mut(payment_id)
            .ok_or(("340", "Payment not found"))?;
        let shown = payment.hidden_refund.map_or(payment.refunded, |(t, _)| t);
        let left = payment.amount.checked_sub(shown).unwrap_or_default();
        let amount = amount.filter(|a| !a.is_zero()).unwrap_or(left);
        if amount > left || amount.is_zero() {
            return Err(("351", "Refund amount exceeds the payment"));
        }
        let total = shown.checked_add(amount).unwrap();
        let delay = *self.refund_visible_after.lock().unwrap();
        if delay == 0 {
            payment.refunded = total;
        } else {
            payment.hidden_refund = Some((total, delay));
        }
        self.refunds.lock().unwrap().push(ExecutedRefund {
            api,
            payment_id: payment_id.to_owned(),
            amount,
            request_id: request_id.map(str::to_owned),
        });
        Ok(amount)
    }

    /// The payment's status answer; a hidden refund comes closer to showing.
    fn status_of(
        &self,
        payment_id: Option<&str>,
        order_id: Option<&str>,
    ) -> Option<Vec<(String, String)>> {
        let mut payments = self.payments.lock().unwrap();
        let (id, payment) = payments.iter_mut().find(|(id, p)| {
            payment_id.is_some_and(|wanted| wanted == id.as_str())
                || (payment_id.is_none() && order_id == Some(p.order_id.as_str()))
        })?;
        if let Some((total, left)) = payment.hidden_refund {
            if left <= 1 {
                payment.refunded = total;
                payment.hidden_refund = None;
            } else {
                payment.hidden_refund = Some((total, left - 1));
            }
        }
        let mut fields = vec![
            ("pg_status", "ok".to_owned()),
            ("pg_payment_id", id.clone()),
            ("pg_order_id", payment.order_id.clone()),
            ("pg_payment_status", payment.status.clone()),
            ("pg_amount", payment.amount.canonical()),
            ("pg_currency", payment.currency.clone()),
            ("pg_captured", "1".to_owned()),
        ];
        if !payment.refunded.is_zero() {
            fields.push((
                "pg_refund_amount",
                format!("-{}", payment.refunded.canonical()),
            ));
        }
        Some(fields.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
    }

    fn payout_status(&self, order_id: &str) -> &'static str {
        let mut payouts = self.payouts.lock().unwrap();
        match payouts.get_mut(order_id) {
            Some(statuses) if statuses.len() > 1 => statuses.pop_front().unwrap(),
            Some(statuses) => statuses.front().copied().unwrap_or("process"),
            None => "process",
        }
    }
}

/// Sleeps past every client timeout when told to be slow.
async fn maybe_slow(fake: &Fake) {
    if fake.behaviour() == Behaviour::Slow {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

fn signed_xml(script: &str, key: &str, fields: &[(String, String)]) -> Response {
    let mut message =
        Message::from_pairs(fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
    message.push("pg_salt", "fakesalt123456789");
    let sig = sign(script, &message, key);
    message.push("pg_sig", sig);
    (
        [("content-type", "application/xml")],
        to_xml("response", &message),
    )
        .into_response()
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn error_fields(code: &str, description: &str) -> Vec<(String, String)> {
    pairs(&[
        ("pg_status", "error"),
        ("pg_error_code", code),
        ("pg_error_description", description),
    ])
}

async fn handle_form(
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
    fake.record(&script, &request);
    let behaviour = fake.behaviour();
    if behaviour == Behaviour::ServerError {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    maybe_slow(&fake).await;
    let key = fake.answer_key().to_owned();
    if verify(
        &script,
        &request,
        &[fake.key.as_str()],
        VerifyOptions::default(),
    )
    .is_err()
    {
        return signed_xml(&script, &key, &error_fields("9998", "Invalid signature"));
    }
    let field = |name| request.get(name).filter(|v| !v.is_empty());
    let payment = field("pg_payment_id").unwrap_or("").to_owned();
    let order = field("pg_order_id").unwrap_or("").to_owned();
    let fields = match script.as_str() {
        "get_status3.php" => fake
            .status_of(field("pg_payment_id"), field("pg_order_id"))
            .unwrap_or_else(|| error_fields("340", "Payment not found")),
        "revoke.php" => {
            let amount = field("pg_refund_amount").map(|a| a.parse().unwrap());
            match fake.refund("revoke", &payment, amount, None) {
                Ok(_) if behaviour == Behaviour::HangAfterRefund => {
                    return std::future::pending().await;
                }
                Ok(_) => pairs(&[("pg_status", "ok")]),
                Err((code, description)) => error_fields(code, description),
            }
        }
        "cancel.php" | "do_capture.php" => pairs(&[("pg_status", "ok")]),
        "payout_status" => {
            let status = fake.payout_status(&order);
            pairs(&[("pg_status", status), ("pg_order_id", &order)])
        }
        "payout_status2" => {
            let status = fake.payout_status(&order);
            pairs(&[
                ("pg_status", "ok"),
                ("pg_payment_status", status),
                ("pg_order_id", &order),
                ("pg_payment_id", "9900001"),
            ])
        }
        "balance_status" => pairs(&[
            ("pg_status", "ok"),
            ("pg_balance", "125000.50"),
            ("pg_currency", field("pg_currency").unwrap_or("KZT")),
        ]),
        "p2p2nonreg" | "reg2reg" => {
            let status = fake.payout_status(&order);
            let status = if status == "success" { "ok" } else { status };
            pairs(&[
                ("pg_status", status),
                ("pg_order_id", &order),
                ("pg_payment_id", "9900001"),
                ("pg_payment_amount", field("pg_amount").unwrap_or("")),
            ])
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    signed_xml(&script, &key, &fields)
}
