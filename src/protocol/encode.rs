//! Encoding a [`Message`] the way FreedomPay sends it: urlencoded form (also
//! the GET query string), multipart form, or XML. Used for signed answers, the
//! outgoing side of the CLI, and tests that play FreedomPay.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::Message;
use super::message::{Field, Value};

/// `a=1&b=2`, bracket notation for nested fields, `+` for spaces.
pub fn to_urlencoded(message: &Message) -> String {
    let pairs = message.to_pairs();
    // A sequence of (text, text) pairs is the one shape serde_urlencoded
    // always accepts; its error is for other shapes (maps of maps, numbers
    // as keys), which `to_pairs` never makes.
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// A `multipart/form-data` body; returns (content type, body).
pub fn to_multipart(message: &Message, boundary: &str) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, value) in message.to_pairs() {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let name = name.replace('"', "%22");
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An XML document with root `root` (`request` or `response`), nested fields
/// as nested elements, text escaped.
pub fn to_xml(root: &str, message: &Message) -> String {
    fn write_fields(xml: &mut String, fields: &[Field]) {
        for field in fields {
            let _ = write!(xml, "<{}>", field.name);
            match &field.value {
                Value::Text(text) => xml.push_str(&escape(text.as_str())),
                Value::Nested(children) => write_fields(xml, children),
            }
            let _ = write!(xml, "</{}>", field.name);
        }
    }
    let mut xml = String::with_capacity(256);
    xml.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    let _ = write!(xml, "<{root}>");
    write_fields(&mut xml, message.fields());
    let _ = write!(xml, "</{root}>");
    xml
}
