//! One delivery attempt over HTTP: a signed POST of a message's body to an
//! endpoint, judged by the answer's status alone.
//!
//! A 2xx within the endpoint's timeout acknowledges; `410 Gone` says the
//! endpoint is gone for good; anything else (another status, a redirect, no
//! answer in time, a refused connection, an unreadable answer) is a failure
//! to retry. Redirects are not followed: a signed payment message goes only
//! to the URL the operator configured, never where an answer points. An
//! endpoint's answer is read up to [`MAX_ANSWER_BYTES`] and its first
//! [`EXCERPT_BYTES`] kept, so that a huge or endless answer costs bounded
//! time and memory.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};

use super::endpoint::Endpoint;
use super::schedule::parse_retry_after;
use super::signature::sign;
use crate::untrusted::Untrusted;

/// Most bytes of an answer read: enough for any acknowledgement, so that the
/// connection can usually be kept for the next delivery; past it the
/// connection is dropped.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Bytes of an answer kept with the attempt (shown by `webhooks show`).
pub const EXCERPT_BYTES: usize = 1024;

/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!(
    "freedompay-receiver/",
    env!("CARGO_PKG_VERSION"),
    " (webhooks)"
);

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer within the timeout: acknowledged.
    Delivered,
    /// `410 Gone`: the endpoint asks never to be sent anything again.
    Gone,
    /// Anything else; `reason` says what, in one line.
    Failed { reason: String },
}

/// One attempt, as it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The answer's HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// From sending the request to the end of reading the answer (or giving up).
    pub latency: Duration,
    /// The first [`EXCERPT_BYTES`] of the answer's body, as lossy UTF-8
    /// (escape it before printing: it is the endpoint's text).
    pub excerpt: String,
    /// The answer's `Retry-After`, as a wait from the moment it came.
    pub retry_after: Option<Duration>,
}

/// The HTTP client could not be set up (usually no CA certificates for TLS).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the webhook HTTP client: {reason}")]
pub struct SenderError {
    pub reason: String,
}

/// Sends deliveries; one per process, shared by every endpoint (its
/// connection pool is per host).
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    pub fn new() -> Result<Sender, SenderError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| SenderError {
                reason: with_causes(&e),
            })?;
        Ok(Sender { client })
    }

    /// Delivers `body` to `endpoint` as message `message_id`, signed at
    /// `timestamp` (Unix seconds: the attempt's own time, as receivers reject
    /// old timestamps). Never fails: every way it can go wrong is an
    /// [`Outcome::Failed`] attempt. Done within the endpoint's timeout
    /// (connecting, sending and reading the answer together).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> Attempt {
        let started = Instant::now();
        let exchange = self.exchange(endpoint, message_id, timestamp, body);
        let mut attempt = match tokio::time::timeout(endpoint.timeout, exchange).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt {
                outcome: Outcome::Failed {
                    reason: format!(
                        "no complete answer within the timeout ({} ms)",
                        endpoint.timeout.as_millis()
                    ),
                },
                status: None,
                latency: Duration::ZERO,
                excerpt: String::new(),
                retry_after: None,
            },
        };
        attempt.latency = started.elapsed();
        attempt
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> Attempt {
        let signature = sign(message_id, timestamp, body.as_bytes(), &endpoint.secrets);
        let request = self
            .client
            .post(endpoint.url.clone())
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        let failed = |reason: String| Attempt {
            outcome: Outcome::Failed { reason },
            status: None,
            latency: Duration::ZERO,
            excerpt: String::new(),
            retry_after: None,
        };
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(with_causes(&e)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let (read, read_error) = read_bounded(&mut response).await;
        let outcome = if status.is_redirection() {
            Outcome::Failed {
                reason: format!(
                    "HTTP {} redirect{} not followed: an endpoint must answer at its configured URL",
                    status.as_u16(),
                    location
                        .as_deref()
                        .map_or_else(String::new, |l| format!(" to {}", Untrusted(l)))
                ),
            }
        } else if status == reqwest::StatusCode::GONE {
            Outcome::Gone
        } else if status.is_success() {
            // The status is the acknowledgement: an answer cut off while
            // its body was read does not undo it.
            Outcome::Delivered
        } else {
            Outcome::Failed {
                reason: match read_error {
                    Some(e) => format!("HTTP {} (reading the answer: {e})", status.as_u16()),
                    None => format!("HTTP {}", status.as_u16()),
                },
            }
        };
        Attempt {
            outcome,
            status: Some(status.as_u16()),
            latency: Duration::ZERO,
            excerpt: excerpt(&read),
            retry_after,
        }
    }
}

/// Reads the answer's body up to [`MAX_ANSWER_BYTES`] (the rest is never
/// read: dropping the response closes the connection), with the error that
/// stopped the reading, if any.
async fn read_bounded(response: &mut reqwest::Response) -> (Vec<u8>, Option<String>) {
    let mut read = Vec::new();
    while read.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - read.len();
                read.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => return (read, Some(with_causes(&e))),
        }
    }
    (read, None)
}

/// The first [`EXCERPT_BYTES`] of `read` as text; a character cut in two at
/// the end is dropped rather than shown as a replacement character.
fn excerpt(read: &[u8]) -> String {
    let head = &read[..read.len().min(EXCERPT_BYTES)];
    match std::str::from_utf8(head) {
        Ok(text) => text.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(head).into_owned(),
    }
}

/// `error` and each of its causes, on one line (reqwest's own message is
/// often only "error sending request"). The same as `api::with_causes`,
/// which this layer, below `config`, does not import.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
