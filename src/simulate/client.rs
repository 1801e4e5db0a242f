//! Signing and sending one callback, and reading its answer.

use std::fmt;

use serde::Serialize;

use super::Fields;
use crate::api::client::{HttpClientError, build_http_client};
use crate::protocol::answer::fresh_salt;
use crate::protocol::encode::{to_multipart, to_urlencoded, to_xml};
use crate::protocol::{Message, ParsedAnswer, Status, VerifyOptions, parse_answer, sign, verify};

/// How a callback travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// POST application/x-www-form-urlencoded.
    Form,
    /// POST multipart/form-data.
    Multipart,
    /// GET with a query string.
    Get,
    /// POST of a raw XML body.
    Xml,
    /// POST of a form with one `pg_xml` field.
    PgXml,
}

impl Encoding {
    pub const ALL: [Encoding; 5] = [
        Encoding::Form,
        Encoding::Multipart,
        Encoding::Get,
        Encoding::Xml,
        Encoding::PgXml,
    ];
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Form => "form",
            Encoding::Multipart => "multipart",
            Encoding::Get => "get",
            Encoding::Xml => "xml",
            Encoding::PgXml => "pg-xml",
        })
    }
}

/// Whether an answer's signature verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureCheck {
    Ok,
    Bad,
    /// No `pg_sig` (unsigned answers, e.g. 403) or no XML at all.
    Absent,
}

/// One request and its answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub url: String,
    pub encoding: Encoding,
    pub sent: Message,
    pub http_status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub answer: Option<ParsedAnswer>,
    pub signature: SignatureCheck,
}

impl Exchange {
    pub fn pg_status(&self) -> Option<Status> {
        self.answer.as_ref().and_then(|a| a.status)
    }

    pub fn description(&self) -> String {
        self.answer
            .as_ref()
            .and_then(|a| a.description.clone())
            .unwrap_or_default()
    }
}

/// What came back for a request, before any signature check.
#[derive(Debug)]
pub struct Answered {
    pub http_status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub answer: Option<ParsedAnswer>,
}

/// Sends any request and reads the answer (XML parsed when it is XML).
pub async fn send_and_read(request: reqwest::RequestBuilder) -> Result<Answered, reqwest::Error> {
    let response = request.send().await?;
    let http_status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await?;
    let answer = parse_answer(&body).ok();
    Ok(Answered {
        http_status,
        headers,
        body,
        answer,
    })
}

/// Sends signed callbacks over HTTP, as FreedomPay does.
#[derive(Clone, Debug)]
pub struct Simulator {
    pub http: reqwest::Client,
}

impl Simulator {
    /// A simulator that does not follow redirects (the redirect endpoints'
    /// answers are checked as they are) and gives up on a request after 30 s.
    pub fn new() -> Result<Self, HttpClientError> {
        let http = build_http_client(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30)),
        )?;
        Ok(Simulator { http })
    }

    /// Adds a fresh salt (unless one is given) and the signature.
    pub fn sign(script: &str, key: &str, fields: &Fields) -> Message {
        let mut message = Message::from_pairs(fields.0.clone()).unwrap_or_default();
        if message.get("pg_salt").is_none() {
            message.push("pg_salt", fresh_salt());
        }
        let sig = sign(script, &message, key);
        message.push("pg_sig", sig);
        message
    }

    /// Signs `fields` for `url` (its last path segment is the script name),
    /// sends them, and checks the answer's signature with the same key.
    pub async fn send(
        &self,
        url: &str,
        encoding: Encoding,
        key: &str,
        fields: &Fields,
    ) -> Result<Exchange, reqwest::Error> {
        let script = crate::protocol::script_name(url);
        let message = Self::sign(script, key, fields);
        self.deliver(url, encoding, message, script, key).await
    }

    /// Sends an already-signed message; the answer is checked with `script` and `key`.
    pub async fn deliver(
        &self,
        url: &str,
        encoding: Encoding,
        message: Message,
        script: &str,
        key: &str,
    ) -> Result<Exchange, reqwest::Error> {
        let request = match encoding {
            Encoding::Form => self
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(to_urlencoded(&message)),
            Encoding::Multipart => {
                let (content_type, body) =
                    to_multipart(&message, &format!("----FreedomPay{}", fresh_salt()));
                self.http
                    .post(url)
                    .header("content-type", content_type)
                    .body(body)
            }
            Encoding::Get => {
                let separator = if url.contains('?') { '&' } else { '?' };
                self.http
                    .get(format!("{url}{separator}{}", to_urlencoded(&message)))
            }
            Encoding::Xml => self
                .http
                .post(url)
                .header("content-type", "application/xml; charset=utf-8")
                .body(to_xml("request", &message)),
            Encoding::PgXml => {
                let mut form = Message::new();
                form.push("pg_xml", to_xml("request", &message));
                self.http
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(to_urlencoded(&form))
            }
        };
        let Answered {
            http_status,
            headers,
            body,
            answer,
        } = send_and_read(request).await?;
        let signature = match &answer {
            Some(a) if a.message.get("pg_sig").is_some() => {
                let strict = VerifyOptions {
                    allow_variants: false,
                };
                if verify(script, &a.message, &[key], strict).is_ok() {
                    SignatureCheck::Ok
                } else {
                    SignatureCheck::Bad
                }
            }
            _ => SignatureCheck::Absent,
        };
        Ok(Exchange {
            url: url.to_owned(),
            encoding,
            sent: message,
            http_status,
            headers,
            body,
            answer,
            signature,
        })
    }
}
