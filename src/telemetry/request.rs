//! One span per request: a request id (the caller's `X-Request-Id`, or a fresh
//! one), the endpoint, and, recorded by the handlers, the merchant, order id,
//! payment id, answer and what the store did (duplicate, conflict, flag,
//! event id, signature variant); at the end the status and latency, the
//! request's one log line at `info` (`request finished`, which carries every
//! field of the span once), and the request metrics. The request id is
//! returned in `X-Request-Id`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, field, info, info_span};

use super::metrics::{DURATION, IN_FLIGHT, REQUESTS};
use crate::protocol::Status;

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
        merchant = field::Empty,
        order_id = field::Empty,
        payment_id = field::Empty,
        answer = field::Empty,
        duplicate = field::Empty,
        conflict = field::Empty,
        flag = field::Empty,
        event_id = field::Empty,
        variant = field::Empty,
        status = field::Empty,
        latency_ms = field::Empty,
    );
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
    span.record("status", status);
    // Rounded to microseconds: a long fraction could look like a card number
    // to the log mask (`telemetry::mask`).
    span.record(
        "latency_ms",
        (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
    );
    if answer != "none" {
        span.record("answer", answer);
    }
    span.in_scope(|| info!("request finished"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
