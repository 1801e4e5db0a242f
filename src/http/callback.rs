//! The callback endpoints (check, result, refund, capture, payout): read the
//! body within its limit, decode, authenticate, parse, decide and record in one
//! transaction, then answer with signed XML, only after the commit.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use tracing::{debug, warn};

use super::network::Charge;
use super::{AppState, reply};
use crate::auth::Authenticated;
use crate::domain::callback::fingerprint;
use crate::domain::pan::masked_fields_json;
use crate::domain::{Callback, CallbackKind, FieldError};
use crate::protocol::{Answer, Message, RawRequest, Status, decode_request};
use crate::store::Delivery;
use crate::telemetry::metrics::{DATABASE_ERRORS, DUPLICATES, FLAGGED_EVENTS, SIGNATURE_FAILURES};
use crate::telemetry::request::{Facts, Stored};
use crate::untrusted::Untrusted;

/// A request that has been read, decoded and authenticated.
pub(super) struct Verified<'a> {
    pub message: Message,
    pub auth: Authenticated<'a>,
}

impl Verified<'_> {
    /// The typed callback of the authenticated merchant.
    pub fn parse(&self, kind: CallbackKind) -> Result<Callback, FieldError> {
        Callback::parse(kind, &self.auth.merchant.id, &self.message)
    }

    /// The delivery as it goes into `events`, card numbers masked.
    pub fn delivery(&self, callback: Callback) -> Delivery {
        Delivery {
            callback,
            fields_json: masked_fields_json(&self.message),
            signature_variant: self.auth.variant.as_str(),
            key_label: self.auth.key_label.as_str(),
            fingerprint: Some(fingerprint(&self.message, self.auth.variant)),
            flag: None,
        }
    }
}

/// The steps every endpoint shares: source allowed, body within the limit,
/// decoding, authentication. On failure, the response to send (nothing is
/// written).
///
/// The budget of failed signatures is consulted only once a signature has
/// failed: a request that verifies is processed whatever its source sent
/// before, so forgeries from a shared address (a proxy, a NAT) cannot lock
/// FreedomPay out.
pub(super) async fn read_and_verify(
    state: &AppState,
    kind: CallbackKind,
    request: Request,
) -> Result<Verified<'_>, Response> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = state.network.client_ip(peer, &parts.headers);
    if !state.network.is_allowed(client) {
        warn!(endpoint = kind.as_str(), client = ?client, "callback from a source outside server.allowed_sources");
        return Err(reply::unsigned_error(
            StatusCode::FORBIDDEN,
            "Source not allowed",
        ));
    }
    let bytes = read_body(body, &parts.headers, state.max_body_bytes).await?;
    let raw = RawRequest {
        is_get: parts.method == Method::GET,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        query: parts.uri.query(),
        body: &bytes,
    };
    let message = decode_request(raw).map_err(|e| {
        warn!(endpoint = kind.as_str(), error = %Untrusted(&e.to_string()), "malformed callback");
        reply::unsigned_error(StatusCode::BAD_REQUEST, &format!("Malformed request: {e}"))
    })?;
    let auth = state
        .merchants
        .authenticate(kind, &message, state.script(kind), state.verify_options)
        .map_err(|e| {
            metrics::counter!(SIGNATURE_FAILURES, "endpoint" => kind.as_str(), "reason" => e.reason())
                .increment(1);
            match state.network.charge_failure(client) {
                Charge::Within => {
                    warn!(
                        endpoint = kind.as_str(),
                        reason = e.reason(),
                        error = %Untrusted(&e.to_string()),
                        "callback not authenticated"
                    );
                    reply::unsigned_error(
                        StatusCode::FORBIDDEN,
                        "Invalid signature or unknown merchant",
                    )
                }
                // Over budget: no log line per forgery (the metric counts them).
                Charge::Throttled { retry_after_secs } => {
                    debug!(endpoint = kind.as_str(), client = ?client, "failed signature from a source over its budget");
                    reply::throttled(retry_after_secs)
                }
            }
        })?;
    Ok(Verified { message, auth })
}

/// The body, within `limit` bytes. Refused before a byte of it is read (so a
/// client waiting on `Expect: 100-continue` gets no `100 Continue`): a
/// `Content-Length` over the limit (413) and any `Content-Encoding` but
/// `identity` (415; FreedomPay sends plain bodies, and decoding compressed
/// ones would multiply what the limit bounds).
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Response> {
    let encoded = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|value| match value.to_str() {
            Ok(codings) => codings
                .split(',')
                .map(str::trim)
                .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity")),
            // Not even text: no coding this service knows.
            Err(_) => true,
        });
    if encoded {
        return Err(reply::unsigned_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Encoded request bodies (Content-Encoding) are not supported",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(reply::unsigned_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large",
        ));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            reply::unsigned_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
        } else {
            reply::unsigned_error(StatusCode::BAD_REQUEST, "Request body could not be read")
        }
    })
}

pub async fn handle(
    State(app): State<Arc<AppState>>,
    kind: CallbackKind,
    request: Request,
) -> Response {
    // What this request learns, for its log line (`telemetry::request`).
    let facts = request
        .extensions()
        .get::<Facts>()
        .cloned()
        .unwrap_or_default();
    let verified = match read_and_verify(&app, kind, request).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let script = app.script(kind);
    let auth = &verified.auth;
    facts.merchant(&auth.merchant.id);
    let callback = match verified.parse(kind) {
        Ok(c) => c,
        Err(e) => {
            warn!(endpoint = kind.as_str(), merchant = %auth.merchant.id, error = %Untrusted(&e.to_string()), "callback rejected as malformed");
            // Authenticated: FreedomPay (or someone with the key) sent it, so
            // it goes into the log of every authenticated delivery, flagged.
            let mut delivery = verified.delivery(Callback::unparsed(
                kind,
                &auth.merchant.id,
                &verified.message,
            ));
            delivery.flag = Some(format!("unparseable: {e}"));
            metrics::counter!(FLAGGED_EVENTS, "endpoint" => kind.as_str(), "flag" => "unparseable")
                .increment(1);
            if let Err(store_error) = app.store.record_event(&delivery).await {
                // Not in the log yet: 503, so that FreedomPay delivers it
                // again and it is recorded once the database is back.
                metrics::counter!(DATABASE_ERRORS, "endpoint" => kind.as_str()).increment(1);
                warn!(endpoint = kind.as_str(), error = %store_error, "malformed callback not recorded; answering 503 so FreedomPay retries");
                let answer = Answer::new(Status::Error, "Temporarily unavailable, please retry");
                return reply::signed(StatusCode::SERVICE_UNAVAILABLE, &answer, script, auth);
            }
            let answer = Answer::new(Status::Error, format!("Malformed request: {e}"));
            return reply::signed(StatusCode::BAD_REQUEST, &answer, script, auth);
        }
    };
    facts.ids(callback.order_id.as_deref(), callback.payment_id.as_deref());
    let delivery = verified.delivery(callback);
    let decided = app
        .store
        .process(delivery, app.rules.clone(), Utc::now())
        .await;
    match decided {
        Ok(processed) => {
            if processed.duplicate {
                metrics::counter!(DUPLICATES, "endpoint" => kind.as_str()).increment(1);
            }
            if let Some(flag) = &processed.flag {
                // The label is the flag's kind, not its text (bounded labels).
                let label = flag.split(':').next().unwrap_or_default().to_owned();
                metrics::counter!(FLAGGED_EVENTS, "endpoint" => kind.as_str(), "flag" => label)
                    .increment(1);
            }
            facts.stored(Stored {
                duplicate: processed.duplicate,
                conflict: processed.conflict,
                flag: processed.flag.clone(),
                event_id: processed.event_id,
                variant: auth.variant.as_str(),
            });
            let answer = Answer::new(processed.status, processed.description);
            // Recorded, but nothing decided (a notice before its payment):
            // FreedomPay delivers it again later.
            let code = if processed.retry_later {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            reply::signed(code, &answer, script, auth)
        }
        Err(e) => {
            metrics::counter!(DATABASE_ERRORS, "endpoint" => kind.as_str()).increment(1);
            warn!(endpoint = kind.as_str(), error = %e, "callback not recorded; answering 503 so FreedomPay retries");
            let answer = Answer::new(Status::Error, "Temporarily unavailable, please retry");
            reply::signed(StatusCode::SERVICE_UNAVAILABLE, &answer, script, auth)
        }
    }
}
