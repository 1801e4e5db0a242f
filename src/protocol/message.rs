//! The decoded callback: an ordered tree of named fields.
//!
//! Every encoding FreedomPay uses (query string, urlencoded form, multipart form,
//! XML) decodes into a [`Message`]. Flat messages, which is nearly all of them,
//! are a list of text fields in arrival order. Nested data exists in two forms:
//! PHP-style bracketed form names (`pg_receipt_positions[0][name]`) and nested
//! XML elements. Both become [`Value::Nested`], because the signature rule
//! (protocol reference §1.1 step 4) flattens them the same way.

use super::DecodeError;
use super::limits::{MAX_DEPTH, MAX_FIELDS};

/// One named field, with a text value or nested fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Value,
}

/// A field's value: text (a leaf) or an ordered list of child fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Nested(Vec<Field>),
}

/// A whole callback or answer, fields in arrival order, duplicates kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    fields: Vec<Field>,
}

impl Field {
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Field {
            name: name.into(),
            value: Value::Text(value.into()),
        }
    }
}

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a message from already-structured fields (XML decoding, tests).
    pub fn from_fields(fields: Vec<Field>) -> Self {
        Message { fields }
    }

    /// Builds a message from flat (name, value) pairs as a form carries them.
    ///
    /// Bracketed names are parsed the way PHP parses them on FreedomPay's side
    /// (protocol reference §1.3): `a[x][y]` nests under `a` then `x`, siblings
    /// merge in first-seen order, and `a[]` appends the next integer index.
    /// Names that are not well-formed bracket paths are kept verbatim.
    pub fn from_pairs<I, N, V>(pairs: I) -> Result<Self, DecodeError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut message = Message::new();
        let mut count = 0usize;
        for (name, value) in pairs {
            count += 1;
            if count > MAX_FIELDS {
                return Err(DecodeError::TooManyFields { limit: MAX_FIELDS });
            }
            let name = name.into();
            let value = value.into();
            // No protocol value contains NUL, and databases refuse it in text:
            // accepting it would turn a bad request into an endless retry loop.
            if name.contains('\0') || value.contains('\0') {
                return Err(DecodeError::NulCharacter);
            }
            match split_brackets(&name) {
                Some((base, path)) => {
                    if path.len() + 1 > MAX_DEPTH {
                        return Err(DecodeError::TooDeep { limit: MAX_DEPTH });
                    }
                    insert_path(&mut message.fields, base, &path, value);
                }
                None => message.fields.push(Field::text(name, value)),
            }
        }
        Ok(message)
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push(Field::text(name, value));
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Top-level text fields named `name`, in arrival order.
    pub fn texts<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .filter_map(|f| match &f.value {
                Value::Text(t) => Some(t.as_str()),
                Value::Nested(_) => None,
            })
    }

    /// The first top-level text field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.texts(name).next()
    }

    /// The only top-level text field named `name`; an error when it repeats, so
    /// that business logic never has to guess which of two values was meant.
    pub fn get_unique(&self, name: &str) -> Result<Option<&str>, DuplicateField> {
        let mut values = self.texts(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(DuplicateField(name.to_owned()));
        }
        Ok(first)
    }

    /// Flat (name, value) pairs with nested fields written in bracket notation.
    ///
    /// This is the form a human or a form encoder expects; for flat messages it
    /// is exactly what arrived.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        fn walk(fields: &[Field], prefix: Option<&str>, out: &mut Vec<(String, String)>) {
            for field in fields {
                let name = match prefix {
                    Some(p) => format!("{p}[{}]", field.name),
                    None => field.name.clone(),
                };
                match &field.value {
                    Value::Text(t) => out.push((name, t.clone())),
                    Value::Nested(children) => walk(children, Some(&name), out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.fields, None, &mut out);
        out
    }

    /// The message as JSON: an array of `[name, value]` pairs in arrival order,
    /// where a nested value is itself such an array. Used for the `events` log.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_with(str::to_owned, |_, value| value.to_owned())
    }

    /// As [`Message::to_json`], each name passed through `name(name)` and each
    /// text value through `value(name, text)` (e.g. to mask card numbers) on
    /// the way, without copying the message.
    pub fn to_json_with(
        &self,
        name: impl Fn(&str) -> String + Copy,
        value: impl Fn(&str, &str) -> String + Copy,
    ) -> serde_json::Value {
        fn walk(
            fields: &[Field],
            name: impl Fn(&str) -> String + Copy,
            value: impl Fn(&str, &str) -> String + Copy,
        ) -> serde_json::Value {
            serde_json::Value::Array(
                fields
                    .iter()
                    .map(|f| {
                        let json = match &f.value {
                            Value::Text(t) => serde_json::Value::String(value(&f.name, t)),
                            Value::Nested(children) => walk(children, name, value),
                        };
                        serde_json::Value::Array(vec![name(&f.name).into(), json])
                    })
                    .collect(),
            )
        }
        walk(&self.fields, name, value)
    }
}

/// A protocol field that must appear once appeared more than once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field {0} appears more than once")]
pub struct DuplicateField(pub String);

/// Splits `a[x][y]` into (`a`, [`x`, `y`]); `None` for a plain name or one
/// whose brackets are not a clean sequence of `[segment]` groups.
fn split_brackets(name: &str) -> Option<(&str, Vec<&str>)> {
    let open = name.find('[')?;
    let (base, mut rest) = name.split_at(open);
    if base.is_empty() {
        return None;
    }
    let mut path = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let segment = &inner[..close];
        if segment.contains('[') {
            return None;
        }
        path.push(segment);
        rest = &inner[close + 1..];
    }
    Some((base, path))
}

fn insert_path(fields: &mut Vec<Field>, name: &str, path: &[&str], value: String) {
    let Some((next, deeper)) = path.split_first() else {
        fields.push(Field::text(name, value));
        return;
    };
    let children = nested_child(fields, name);
    let key = if next.is_empty() {
        next_index(children).to_string()
    } else {
        (*next).to_owned()
    };
    insert_path(children, &key, deeper, value);
}

/// The last nested child called `name`, created at the end when absent.
fn nested_child<'a>(fields: &'a mut Vec<Field>, name: &str) -> &'a mut Vec<Field> {
    let position = fields
        .iter()
        .rposition(|f| f.name == name && matches!(f.value, Value::Nested(_)));
    let index = match position {
        Some(i) => i,
        None => {
            fields.push(Field {
                name: name.to_owned(),
                value: Value::Nested(Vec::new()),
            });
            fields.len() - 1
        }
    };
    match &mut fields[index].value {
        Value::Nested(children) => children,
        Value::Text(_) => unreachable!("position selects nested fields only"),
    }
}

/// PHP's rule for `a[]`: one past the largest integer key, or 0.
fn next_index(fields: &[Field]) -> u64 {
    fields
        .iter()
        .filter_map(|f| f.name.parse::<u64>().ok())
        .max()
        .map_or(0, |max| max.saturating_add(1))
}
