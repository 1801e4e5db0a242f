//! FreedomPay for the tests: the library's simulator (realistic fields, signing,
//! every encoding) aimed at a test server, with assertion helpers.

use std::net::SocketAddr;

use freedompay_receiver::protocol::{Message, ParsedAnswer, Status, VerifyOptions, verify};
use freedompay_receiver::simulate::client::send_and_read;
use freedompay_receiver::simulate::fields::PaymentFacts;
pub use freedompay_receiver::simulate::{Encoding, Fields};
use freedompay_receiver::simulate::{Exchange, Simulator};

use super::{KEY, MERCHANT};

pub const ALL_ENCODINGS: [Encoding; 5] = Encoding::ALL;

fn facts<'a>(order: &'a str, payment: &'a str, amount: &'a str) -> PaymentFacts<'a> {
    PaymentFacts {
        merchant_id: None,
        order_id: order,
        payment_id: payment,
        amount,
        currency: "KZT",
    }
}

/// A check request, with one merchant field that FreedomPay echoes back.
pub fn check(order: &str, payment: &str, amount: &str) -> Fields {
    facts(order, payment, amount)
        .check()
        .set("customer_ref", "C-77")
}

/// A successful result notification.
pub fn result(order: &str, payment: &str, amount: &str) -> Fields {
    facts(order, payment, amount)
        .result_success()
        .set("customer_ref", "C-77")
}

pub fn refund(order: &str, payment: &str, amount: &str) -> Fields {
    facts(order, payment, amount).refund()
}

pub fn capture(order: &str, payment: &str, amount: &str) -> Fields {
    facts(order, payment, amount).capture()
}

/// A payout notification of 5000 for the merchant.
pub fn payout(order: &str, payment: &str, status: &str) -> Fields {
    PaymentFacts {
        merchant_id: Some(MERCHANT),
        ..facts(order, payment, "5000")
    }
    .payout(status)
}

/// The answer to one request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
    pub answer: Option<ParsedAnswer>,
}

impl From<Exchange> for Reply {
    fn from(e: Exchange) -> Self {
        Reply {
            status: e.http_status,
            body: e.body,
            headers: e.headers,
            answer: e.answer,
        }
    }
}

impl Reply {
    pub fn pg_status(&self) -> Option<Status> {
        self.answer.as_ref().and_then(|a| a.status)
    }

    pub fn description(&self) -> String {
        self.answer
            .as_ref()
            .and_then(|a| a.description.clone())
            .unwrap_or_default()
    }

    pub fn signature_ok(&self, script: &str, key: &str) -> bool {
        let strict = VerifyOptions {
            allow_variants: false,
        };
        self.answer
            .as_ref()
            .is_some_and(|a| verify(script, &a.message, &[key], strict).is_ok())
    }

    /// 200, the given status, and a valid signature with the default key.
    #[track_caller]
    pub fn assert_answer(&self, script: &str, expected: Status) {
        assert_eq!(self.status, 200, "HTTP status; body: {}", self.body);
        assert_eq!(
            self.pg_status(),
            Some(expected),
            "pg_status; body: {}",
            self.body
        );
        assert!(
            self.signature_ok(script, KEY),
            "answer signature; body: {}",
            self.body
        );
    }
}

#[derive(Clone, Debug)]
pub struct FreedomPay {
    pub http: reqwest::Client,
    simulator: Simulator,
    addr: SocketAddr,
}

impl FreedomPay {
    pub fn new(addr: SocketAddr) -> Self {
        let simulator = Simulator::new().expect("an HTTP client");
        FreedomPay {
            http: simulator.http.clone(),
            simulator,
            addr,
        }
    }

    /// Adds a fresh salt and the signature.
    pub fn sign(script: &str, key: &str, fields: &Fields) -> Message {
        Simulator::sign(script, key, fields)
    }

    /// Signs with the default key for `/freedompay/{kind}` and posts a form.
    pub async fn send(&self, kind: &str, fields: &Fields) -> Reply {
        self.send_as(kind, Encoding::Form, KEY, fields).await
    }

    pub async fn send_as(
        &self,
        kind: &str,
        encoding: Encoding,
        key: &str,
        fields: &Fields,
    ) -> Reply {
        let url = format!("http://{}/freedompay/{kind}", self.addr);
        self.simulator
            .send(&url, encoding, key, fields)
            .await
            .expect("request sent")
            .into()
    }

    /// Sends an already-signed message to `path`.
    pub async fn deliver(&self, path: &str, encoding: Encoding, message: &Message) -> Reply {
        let url = format!("http://{}{path}", self.addr);
        self.simulator
            .deliver(&url, encoding, message.clone(), "", "")
            .await
            .expect("request sent")
            .into()
    }

    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Reply {
        let a = send_and_read(request).await.expect("request sent");
        Reply {
            status: a.http_status,
            body: a.body,
            headers: a.headers,
            answer: a.answer,
        }
    }
}
