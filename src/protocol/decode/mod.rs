//! Every request encoding FreedomPay uses, decoded into one [`Message`].
//!
//! Callbacks arrive as a GET query string, a POST urlencoded or multipart form,
//! a form with a single `pg_xml` field holding `<request>…</request>`, or a raw
//! XML body (protocol reference §2 and §1.4). The result is the same message
//! whatever the encoding. Decoding is strict: invalid UTF-8, malformed
//! percent-encoding, DTDs and entity declarations are errors, never guesses.

mod form;
mod multipart;
mod xml;

pub use form::parse_urlencoded;
pub use xml::parse_xml;

use super::Message;

/// The name of the form field that carries an XML message.
pub const XML_FIELD: &str = "pg_xml";

/// What went wrong while decoding a request. None of these is ever a panic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed percent-encoding")]
    BadPercentEncoding,
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("a NUL character is not allowed in a field")]
    NulCharacter,
    #[error("malformed multipart body: {0}")]
    BadMultipart(String),
    #[error("malformed XML: {0}")]
    BadXml(String),
    #[error("XML with a DTD or entity declaration is refused")]
    XmlDtd,
    #[error("XML root must be <request> or <response>, found <{0}>")]
    XmlRoot(String),
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("more than {limit} fields")]
    TooManyFields { limit: usize },
    #[error("unsupported content type {0}")]
    UnsupportedContentType(String),
}

/// The parts of an HTTP request that decoding needs; no HTTP types, so the
/// protocol layer stays pure.
#[derive(Clone, Copy, Debug)]
pub struct RawRequest<'a> {
    /// True for GET: the fields are in the query string.
    pub is_get: bool,
    pub content_type: Option<&'a str>,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

/// Decodes a callback into its message.
///
/// For GET the query string is the message. For POST only the body is: a query
/// string on a POST callback URL belongs to the merchant's URL, and FreedomPay
/// does not sign it (vector V27). A POST body whose first non-blank character
/// (after a byte-order mark) is `<` is raw XML whatever its content type.
pub fn decode_request(request: RawRequest<'_>) -> Result<Message, DecodeError> {
    if request.is_get {
        return unwrap_xml_field(parse_urlencoded(request.query.unwrap_or("").as_bytes())?);
    }
    // A body that starts with `<` is XML whatever its content type says:
    // neither a form nor a multipart body can start so, and some senders
    // label raw XML as a form.
    if looks_like_xml(request.body) {
        return parse_xml_bytes(request.body);
    }
    let media_type = request.content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match media_type.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            unwrap_xml_field(parse_urlencoded(request.body)?)
        }
        Some("multipart/form-data") => {
            let content_type = request.content_type.unwrap_or_default();
            unwrap_xml_field(multipart::parse_multipart(content_type, request.body)?)
        }
        Some("application/xml" | "text/xml") => parse_xml_bytes(request.body),
        // No usable content type: a body that is not XML is read as a
        // urlencoded form (what most HTTP clients send).
        None | Some("") | Some("text/plain") | Some("application/octet-stream") => {
            unwrap_xml_field(parse_urlencoded(request.body)?)
        }
        Some(other) => Err(DecodeError::UnsupportedContentType(other.to_owned())),
    }
}

/// A form whose `pg_xml` field holds the real message becomes that message.
/// Any other fields beside `pg_xml` are not signed by FreedomPay, so they are
/// dropped rather than trusted.
fn unwrap_xml_field(form: Message) -> Result<Message, DecodeError> {
    match form.get(XML_FIELD) {
        Some(xml) => parse_xml(xml),
        None => Ok(form),
    }
}

fn parse_xml_bytes(body: &[u8]) -> Result<Message, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    parse_xml(text)
}

fn looks_like_xml(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}
