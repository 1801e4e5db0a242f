//! Building responses: XML answers (signed when the merchant is known) and the
//! small HTML pages of the redirect endpoints.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;

use crate::auth::Authenticated;
use crate::protocol::{Answer, Status};
use crate::telemetry::request::Answered;

const XML: &str = "application/xml; charset=utf-8";

fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A signed `<response>`, with the key that verified the request.
pub fn signed(
    status: StatusCode,
    answer: &Answer,
    script: &str,
    auth: &Authenticated<'_>,
) -> Response {
    let xml = answer.to_signed_xml(script, auth.signing_key());
    answered(with_type(status, XML, xml), answer.status)
}

/// An unsigned `<response>` with `pg_status` `error`: the sender is unknown.
pub fn unsigned_error(status: StatusCode, description: &str) -> Response {
    let xml = Answer::new(Status::Error, description).to_unsigned_xml();
    answered(with_type(status, XML, xml), Status::Error)
}

/// 405 to a method the callback endpoints do not take.
pub fn method_not_allowed() -> Response {
    let mut response = unsigned_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed: use GET or POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// 429 to a failed signature from a source over its budget, with the seconds
/// until it has budget again.
pub fn throttled(retry_after_secs: u64) -> Response {
    let mut response = unsigned_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many invalid signatures from this source",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// Tags the response with its answer, for the request log line and metrics.
fn answered(mut response: Response, status: Status) -> Response {
    response.extensions_mut().insert(Answered(status));
    response
}

/// A minimal HTML page for the payer's browser.
pub fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    );
    with_type(status, "text/html; charset=utf-8", body)
}
