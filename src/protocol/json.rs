//! `pg_sig` over JSON bodies (the SuperApp refund and the newer JSON status
//! API, protocol reference §4.5). How FreedomPay signs JSON is not documented
//! [U]; we apply the form rule to the body's fields: strings as they are,
//! numbers in the exact decimal text they were written with (never through a
//! float), booleans as PHP casts them (`1` / empty), `null` as empty, and
//! objects and arrays as nested fields, flattened like bracketed form names.

use serde_json::value::RawValue;

use super::limits::{MAX_DEPTH, MAX_FIELDS};
use super::{Field, Message, Value};

/// Why a JSON body is not a message.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("not a JSON object: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
}

/// Reads a JSON object into a message, each value as its exact text.
pub fn json_to_message(text: &str) -> Result<Message, JsonError> {
    let mut count = 0;
    let fields = object_fields(text, 1, &mut count)?;
    Ok(Message::from_fields(fields))
}

fn object_fields(text: &str, depth: usize, count: &mut usize) -> Result<Vec<Field>, JsonError> {
    let entries: Vec<(String, Box<RawValue>)> = if text.trim_start().starts_with('[') {
        let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect()
    } else {
        // Names sorted (the signature sorts them anyway); values as raw text.
        let map: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(text)?;
        map.into_iter().collect()
    };
    let mut fields = Vec::with_capacity(entries.len());
    for (name, raw) in entries {
        *count += 1;
        if *count > MAX_FIELDS {
            return Err(JsonError::TooManyFields);
        }
        let text = raw.get().trim();
        let value = match text.as_bytes().first() {
            Some(b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                Value::Nested(object_fields(text, depth + 1, count)?)
            }
            Some(b'"') => Value::Text(serde_json::from_str::<String>(text)?),
            _ => Value::Text(match text {
                "true" => "1".to_owned(),
                "false" | "null" => String::new(),
                number => number.to_owned(),
            }),
        };
        fields.push(Field { name, value });
    }
    Ok(fields)
}
