//! XML messages: `<request>` (callbacks in) and `<response>` (answers out).
//!
//! The children of the root are the fields; nested elements become nested
//! fields, repeated tags keep document order, and text is entity-decoded but
//! not trimmed (protocol reference §1.4). A document type declaration is
//! refused outright, which rules out entity expansion ("billion laughs") and
//! external entities; only the five predefined entities and character
//! references are resolved.

use quick_xml::Reader;
use quick_xml::events::{BytesRef, Event};

use crate::protocol::limits::{MAX_DEPTH, MAX_FIELDS};
use crate::protocol::message::{Field, Value};
use crate::protocol::{DecodeError, Message};

/// An element being read: its name, its text so far and its finished children.
struct Open {
    name: String,
    text: String,
    children: Vec<Field>,
}

/// Parses an XML document whose root is `<request>` or `<response>`.
pub fn parse_xml(text: &str) -> Result<Message, DecodeError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root_fields: Option<Vec<Field>> = None;
    let mut field_count = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| DecodeError::BadXml(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(DecodeError::XmlDtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) if root_fields.is_some() => {
                return Err(DecodeError::BadXml("content after the root element".into()));
            }
            Event::Start(start) => {
                let name = start.name().as_ref().to_owned();
                open_element(&mut stack, name, &mut field_count)?;
            }
            Event::Empty(start) => {
                let name = start.name().as_ref().to_owned();
                open_element(&mut stack, name, &mut field_count)?;
                close_element(&mut stack, &mut root_fields)?;
            }
            Event::End(_) => close_element(&mut stack, &mut root_fields)?,
            Event::Text(t) => append_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => append_text(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => append_text(&mut stack, &resolve_reference(&r)?)?,
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(DecodeError::BadXml("unexpected end of document".into()));
    }
    root_fields
        .map(Message::from_fields)
        .ok_or_else(|| DecodeError::BadXml("no root element".into()))
}

fn open_element(stack: &mut Vec<Open>, name: String, count: &mut usize) -> Result<(), DecodeError> {
    if stack.is_empty() {
        if name != "request" && name != "response" {
            return Err(DecodeError::XmlRoot(name));
        }
    } else {
        // The root is depth 0; its children are fields at depth 1.
        if stack.len() > MAX_DEPTH {
            return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
        }
        *count += 1;
        if *count > MAX_FIELDS {
            return Err(DecodeError::TooManyFields { limit: MAX_FIELDS });
        }
    }
    stack.push(Open {
        name,
        text: String::new(),
        children: Vec::new(),
    });
    Ok(())
}

fn close_element(
    stack: &mut Vec<Open>,
    root_fields: &mut Option<Vec<Field>>,
) -> Result<(), DecodeError> {
    let open = stack
        .pop()
        .ok_or_else(|| DecodeError::BadXml("unbalanced end tag".into()))?;
    // An element with child elements is a group; whitespace between the
    // children is layout, not a value. The root is always a group.
    let is_root = stack.is_empty();
    let is_group = is_root || !open.children.is_empty();
    if is_group && !open.text.trim().is_empty() {
        return Err(DecodeError::BadXml(format!(
            "element <{}> mixes text and child elements",
            open.name
        )));
    }
    let Some(parent) = stack.last_mut() else {
        *root_fields = Some(open.children);
        return Ok(());
    };
    let value = if is_group {
        Value::Nested(open.children)
    } else {
        Value::Text(open.text)
    };
    parent.children.push(Field {
        name: open.name,
        value,
    });
    Ok(())
}

fn append_text(stack: &mut [Open], text: &str) -> Result<(), DecodeError> {
    if text.contains('\0') {
        return Err(DecodeError::NulCharacter);
    }
    match stack.last_mut() {
        Some(open) => open.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(DecodeError::BadXml("text outside the root element".into())),
    }
    Ok(())
}

fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, DecodeError> {
    if let Some(ch) = reference
        .resolve_char_ref()
        .map_err(|e| DecodeError::BadXml(e.to_string()))?
    {
        return Ok(ch.to_string());
    }
    let text = match &**reference {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => return Err(DecodeError::BadXml(format!("undefined entity &{other};"))),
    };
    Ok(text.to_owned())
}
