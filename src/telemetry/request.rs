//! One span per request, with its request id (the caller's `X-Request-Id`, or
//! a fresh one), method and endpoint, so that every line logged inside the
//! request names it; the handlers note what they learn in the request's
//! [`Facts`] (the merchant, order and payment ids, what the store did); at
//! the end the request's one line at `info` (`request finished`, with the
//! facts, answer, status and latency as its own fields) and the request
//! metrics. The request id is returned in `X-Request-Id`.
//!
//! Why facts rather than fields recorded on the span: the JSON formatter
//! re-serialises a span's fields on every `record`, and a request records
//! about ten; one event with its fields costs one formatting.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, field, info, info_span};

use super::metrics::{DURATION, IN_FLIGHT, REQUESTS};
use crate::protocol::Status;
use crate::untrusted::Untrusted;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the service the requests go to calls each path, for logs and
/// metrics (the HTTP layer's state implements it; telemetry knows no more
/// of HTTP than this).
pub trait EndpointNames {
    /// The endpoint label of a request path.
    fn endpoint_name(&self, path: &str) -> &'static str;
}

/// What a handler decided, for the request log line and metrics.
#[derive(Clone, Copy, Debug)]
pub struct Answered(pub Status);

/// What the handlers learn about a request, for its log line: shared with
/// them through the request's extensions, filled in as they go.
#[derive(Clone, Debug, Default)]
pub struct Facts(Arc<Mutex<Known>>);

#[derive(Debug, Default)]
struct Known {
    merchant: Option<String>,
    order_id: Option<String>,
    payment_id: Option<String>,
    stored: Option<Stored>,
}

/// What the store did with a callback.
#[derive(Clone, Debug)]
pub struct Stored {
    pub duplicate: bool,
    pub conflict: bool,
    pub flag: Option<String>,
    pub event_id: i64,
    pub variant: &'static str,
}

impl Facts {
    fn with(&self, change: impl FnOnce(&mut Known)) {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// The authenticated merchant.
    pub fn merchant(&self, merchant: &str) {
        self.with(|known| known.merchant = Some(merchant.to_owned()));
    }

    /// The ids the callback is about.
    pub fn ids(&self, order_id: Option<&str>, payment_id: Option<&str>) {
        self.with(|known| {
            known.order_id = order_id.map(str::to_owned);
            known.payment_id = payment_id.map(str::to_owned);
        });
    }

    /// What the store did.
    pub fn stored(&self, stored: Stored) {
        self.with(|known| known.stored = Some(stored));
    }
}

pub async fn observe<S: EndpointNames>(
    State(state): State<Arc<S>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(crate::protocol::answer::fresh_salt, str::to_owned);
    let endpoint = state.endpoint_name(request.uri().path());
    let span = info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        endpoint,
    );
    let facts = Facts::default();
    let mut request = request;
    request.extensions_mut().insert(facts.clone());
    metrics::gauge!(IN_FLIGHT).increment(1.0);
    let mut response = next.run(request).instrument(span.clone()).await;
    metrics::gauge!(IN_FLIGHT).decrement(1.0);

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let answer = response
        .extensions()
        .get::<Answered>()
        .map_or("none", |a| a.0.as_str());
    metrics::counter!(REQUESTS, "endpoint" => endpoint, "answer" => answer, "status" => status.to_string())
        .increment(1);
    metrics::histogram!(DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
    // Rounded to microseconds: a long fraction could look like a card number
    // to the log mask (`telemetry::mask`).
    let latency_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let known = facts
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let stored = known.stored.as_ref();
    info!(
        parent: &span,
        merchant = untrusted(&known.merchant),
        order_id = untrusted(&known.order_id),
        payment_id = untrusted(&known.payment_id),
        answer = (answer != "none").then_some(answer),
        duplicate = stored.map(|s| s.duplicate),
        conflict = stored.map(|s| s.conflict),
        flag = stored.and_then(|s| s.flag.as_deref()).map(|f| field::display(Untrusted(f))),
        event_id = stored.map(|s| s.event_id),
        variant = stored.map(|s| s.variant),
        status,
        latency_ms,
        "request finished"
    );
    drop(known);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A value from outside as an optional log field, escaped and cut.
fn untrusted(value: &Option<String>) -> Option<field::DisplayValue<Untrusted<'_>>> {
    value.as_deref().map(|v| field::display(Untrusted(v)))
}
