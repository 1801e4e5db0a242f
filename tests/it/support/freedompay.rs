//! A client that plays FreedomPay: builds realistic callbacks, signs them with
//! the endpoint's script name, sends them in any encoding, and checks the
//! signature of the answer.

use std::net::SocketAddr;

use freedompay_receiver::protocol::encode::{to_multipart, to_urlencoded, to_xml};
use freedompay_receiver::protocol::{
    Message, ParsedAnswer, Status, VerifyOptions, parse_answer, sign, verify,
};

use super::{KEY, MERCHANT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Form,
    Multipart,
    Get,
    /// A raw XML body (`Content-Type: application/xml`).
    Xml,
    /// A form with one `pg_xml` field.
    PgXml,
}

pub const ALL_ENCODINGS: [Encoding; 5] = [
    Encoding::Form,
    Encoding::Multipart,
    Encoding::Get,
    Encoding::Xml,
    Encoding::PgXml,
];

/// Callback fields in arrival order.
#[derive(Clone, Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Sets a field, replacing an existing one of that name.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self
    }

    fn of(pairs: &[(&str, &str)]) -> Self {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

/// A check request as in protocol reference §2.1.
pub fn check(order: &str, payment: &str, amount: &str) -> Fields {
    Fields::of(&[
        ("pg_order_id", order),
        ("pg_payment_id", payment),
        ("pg_amount", amount),
        ("pg_currency", "KZT"),
        ("pg_ps_amount", amount),
        ("pg_ps_currency", "KZT"),
        ("pg_ps_full_amount", amount),
        ("customer_ref", "C-77"),
    ])
}

/// A successful result notification as in protocol reference §2.2.
pub fn result(order: &str, payment: &str, amount: &str) -> Fields {
    Fields::of(&[
        ("pg_order_id", order),
        ("pg_payment_id", payment),
        ("pg_amount", amount),
        ("pg_currency", "KZT"),
        ("pg_net_amount", amount),
        ("pg_ps_amount", amount),
        ("pg_ps_full_amount", amount),
        ("pg_ps_currency", "KZT"),
        ("pg_description", "Заказ в интернет-магазине"),
        ("pg_result", "1"),
        ("pg_payment_date", "2026-11-25 12:00:00"),
        ("pg_can_reject", "1"),
        ("pg_user_phone", "77001234567"),
        ("pg_user_contact_email", "payer@example.kz"),
        ("pg_testing_mode", "0"),
        ("pg_captured", "1"),
        ("pg_card_pan", "5483-18XX-XXXX-0293"),
        ("pg_card_exp", "03/29"),
        ("pg_card_owner", "IVAN IVANOV"),
        ("pg_card_brand", "MC"),
        ("pg_payment_method", "bankcard"),
        ("customer_ref", "C-77"),
    ])
}

/// A refund notification (fields modelled on result; the docs are silent).
pub fn refund(order: &str, payment: &str, amount: &str) -> Fields {
    Fields::of(&[
        ("pg_order_id", order),
        ("pg_payment_id", payment),
        ("pg_refund_amount", amount),
        ("pg_currency", "KZT"),
        ("pg_refund_date", "2026-11-25 13:00:00"),
    ])
}

pub fn capture(order: &str, payment: &str, amount: &str) -> Fields {
    Fields::of(&[
        ("pg_order_id", order),
        ("pg_payment_id", payment),
        ("pg_clearing_amount", amount),
        ("pg_currency", "KZT"),
    ])
}

/// A payout notification as in protocol reference §2.3.
pub fn payout(order: &str, payment: &str, status: &str) -> Fields {
    Fields::of(&[
        ("pg_payment_id", payment),
        ("pg_order_id", order),
        ("pg_card_hash", "4405-64XX-XXXX-1448"),
        ("pg_status", status),
        ("pg_balance", "1000000"),
        ("pg_payment_amount", "5000"),
        ("pg_to_pay", "5100"),
        ("pg_merchant_id", MERCHANT),
        ("pg_payment_date", "2026-11-25 14:00:00"),
    ])
}

/// The answer to one request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
    pub answer: Option<ParsedAnswer>,
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
        self.answer.as_ref().is_some_and(|a| {
            verify(
                script,
                &a.message,
                &[key],
                VerifyOptions {
                    allow_variants: false,
                },
            )
            .is_ok()
        })
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
    addr: SocketAddr,
}

impl FreedomPay {
    pub fn new(addr: SocketAddr) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        FreedomPay { http, addr }
    }

    /// Adds a fresh salt and the signature.
    pub fn sign(script: &str, key: &str, fields: &Fields) -> Message {
        let mut message = Message::from_pairs(fields.0.clone()).expect("valid fields");
        if message.get("pg_salt").is_none() {
            message.push(
                "pg_salt",
                freedompay_receiver::protocol::answer::fresh_salt(),
            );
        }
        let sig = sign(script, &message, key);
        message.push("pg_sig", sig);
        message
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
        let message = Self::sign(kind, key, fields);
        self.deliver(&format!("/freedompay/{kind}"), encoding, &message)
            .await
    }

    /// Sends an already-signed message to `path`.
    pub async fn deliver(&self, path: &str, encoding: Encoding, message: &Message) -> Reply {
        let url = format!("http://{}{path}", self.addr);
        let request = match encoding {
            Encoding::Form => self
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(to_urlencoded(message)),
            Encoding::Multipart => {
                let (content_type, body) =
                    to_multipart(message, "----FreedomPayBoundary7MA4YWxkTrZu0gW");
                self.http
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body)
            }
            Encoding::Get => self.http.get(format!("{url}?{}", to_urlencoded(message))),
            Encoding::Xml => self
                .http
                .post(&url)
                .header("content-type", "application/xml; charset=utf-8")
                .body(to_xml("request", message)),
            Encoding::PgXml => {
                let mut form = Message::new();
                form.push("pg_xml", to_xml("request", message));
                self.http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(to_urlencoded(&form))
            }
        };
        self.finish(request).await
    }

    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Reply {
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let answer = parse_answer(&body).ok();
        Reply {
            status,
            body,
            headers,
            answer,
        }
    }
}
