//! `pg_sig`: FreedomPay's MD5 request signature (protocol reference §1).
//!
//! `pg_sig = md5(script_name ; v1 ; … ; vn ; secret_key)` in lower-case hex,
//! where the values are every field except `pg_sig`, ordered by the PHP
//! reference flattening: each field's name gets its 1-based sibling position as
//! a 3-digit suffix (`pg_amount003`), nested fields append their own name and
//! position to their parent's, and the flat names are sorted bytewise.
//!
//! Implementations disagree on a few edge cases (§1.2), so verification can
//! fall back to two [`Variant`]s after the canonical rule fails. Every variant
//! still needs the secret key, so the fallback cannot forge a signature; what
//! it must not do either is let unsigned fields ride along on a genuine one.
//!
//! # What a verified message may carry unsigned
//!
//! Only the top-level `pg_sig` itself. Two rules close the other ways in:
//!
//! - **`pg_sig` is refused below the top level** ([`SignatureError::Nested`]).
//!   The flattening leaves `pg_sig` out at every depth, so a group holding only
//!   `pg_sig` (`<pg_testing_mode><pg_sig>1</pg_sig></pg_testing_mode>`, or the
//!   form name `pg_testing_mode[pg_sig]=1`) contributes nothing to the signing
//!   string and could be added to any genuine message.
//! - **[`Variant::DropEmpty`] matches only when every value it leaves out
//!   belongs to a merchant field.** Empty values are unsigned under that
//!   variant, so any message signed with no empty values also verifies with
//!   extra empty fields added. A leaf counts as a protocol field when its own
//!   name or the name of any group holding it starts with `pg_`
//!   (`pg_user_phone=`, `pg_receipt_positions[0][name]=`, `order[pg_x]=`);
//!   with such an empty leaf present, only the canonical and raw-sort rules,
//!   which sign empty values as empty segments, can verify the message.
//!   Merchant fields are the merchant's own echo and are never read by the
//!   receiver, so the one integration known to drop empty values keeps
//!   working for them. The variant is not tried at all when the message has no
//!   empty value, since it would then sign exactly what the canonical rule signs.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::Message;
use super::message::{Field, Value};

/// The field that carries the signature; it is never itself signed.
pub const SIG_FIELD: &str = "pg_sig";

/// How the signed values were ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The PHP reference rule: position-suffixed names, bytewise sort.
    Canonical,
    /// Sorting on the raw field names at each level (many third-party
    /// integrations); differs for `x1`/`x10`, `item`/`item-2`, arrays of 10+.
    RawSort,
    /// The canonical rule with empty values left out (one integration does
    /// this). Accepted only when every empty value is a merchant field's (see
    /// the module documentation).
    DropEmpty,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Canonical, Variant::RawSort, Variant::DropEmpty];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Canonical => "canonical",
            Variant::RawSort => "raw_sort",
            Variant::DropEmpty => "drop_empty",
        }
    }
}

/// Which key and which variant produced the received signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Index into the candidate keys given to [`verify`].
    pub key_index: usize,
    pub variant: Variant,
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("pg_sig is missing")]
    Missing,
    #[error("pg_sig appears more than once")]
    Duplicate,
    #[error("pg_sig is not 32 hexadecimal characters")]
    Malformed,
    #[error("pg_sig appears inside a nested field")]
    Nested,
    #[error("pg_sig does not match")]
    Mismatch,
}

impl SignatureError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Duplicate => "duplicate",
            SignatureError::Malformed => "malformed",
            SignatureError::Nested => "nested_sig",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// Options for [`verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Also accept the [`Variant::RawSort`] and [`Variant::DropEmpty`] orderings.
    pub allow_variants: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            allow_variants: true,
        }
    }
}

/// The script name of a URL or path: the part after the last `/`, without query
/// or fragment, used raw. A path ending in `/` gives the empty string.
pub fn script_name(url_or_path: &str) -> &str {
    let end = url_or_path.find(['?', '#']).unwrap_or(url_or_path.len());
    let path = &url_or_path[..end];
    match path.rfind('/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// The signed values of `message`, in the order `variant` puts them.
pub fn ordered_values(message: &Message, variant: Variant) -> Vec<&str> {
    match variant {
        Variant::Canonical | Variant::DropEmpty => {
            let mut flat = Vec::new();
            flatten_with_positions(message.fields(), &mut String::new(), &mut flat);
            // Stable: equal flat names cannot occur, but order is defined anyway.
            flat.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            flat.into_iter()
                .map(|(_, v)| v)
                .filter(|v| variant != Variant::DropEmpty || !v.is_empty())
                .collect()
        }
        Variant::RawSort => {
            let mut values = Vec::new();
            collect_raw_sorted(message.fields(), &mut values);
            values
        }
    }
}

fn flatten_with_positions<'a>(
    fields: &'a [Field],
    prefix: &mut String,
    out: &mut Vec<(String, &'a str)>,
) {
    let signed = fields.iter().filter(|f| f.name != SIG_FIELD);
    for (index, field) in signed.enumerate() {
        let restore = prefix.len();
        prefix.push_str(&field.name);
        // Writing to a String cannot fail.
        let _ = write!(prefix, "{:03}", index + 1);
        match &field.value {
            Value::Text(text) => out.push((prefix.clone(), text)),
            Value::Nested(children) => flatten_with_positions(children, prefix, out),
        }
        prefix.truncate(restore);
    }
}

fn collect_raw_sorted<'a>(fields: &'a [Field], out: &mut Vec<&'a str>) {
    let mut signed: Vec<&Field> = fields.iter().filter(|f| f.name != SIG_FIELD).collect();
    signed.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for field in signed {
        match &field.value {
            Value::Text(text) => out.push(text),
            Value::Nested(children) => collect_raw_sorted(children, out),
        }
    }
}

/// The string that is hashed: `script;v1;…;vn;secret`.
pub fn signing_string(script: &str, values: &[&str], secret: &str) -> String {
    let mut s = String::from(script);
    for value in values {
        s.push(';');
        s.push_str(value);
    }
    s.push(';');
    s.push_str(secret);
    s
}

/// The signing string with the secret replaced, safe to print or log.
pub fn masked_signing_string(script: &str, values: &[&str]) -> String {
    signing_string(script, values, "<secret>")
}

fn digest(script: &str, values: &[&str], secret: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(script.as_bytes());
    for value in values {
        md5.update(b";");
        md5.update(value.as_bytes());
    }
    md5.update(b";");
    md5.update(secret.as_bytes());
    md5.finalize().into()
}

/// The canonical `pg_sig` of `message` (any `pg_sig` in it is ignored).
pub fn sign(script: &str, message: &Message, secret: &str) -> String {
    let values = ordered_values(message, Variant::Canonical);
    hex::encode(digest(script, &values, secret))
}

/// Checks the message's `pg_sig` against every candidate key, canonical rule
/// first, then (if allowed) the variants that apply to it (see the module
/// documentation). Comparison is constant-time.
pub fn verify(
    script: &str,
    message: &Message,
    keys: &[&str],
    options: VerifyOptions,
) -> Result<Verified, SignatureError> {
    let received = received_signature(message)?;
    let variants: &[Variant] = if options.allow_variants {
        &Variant::ALL
    } else {
        &Variant::ALL[..1]
    };
    for &variant in variants {
        if variant == Variant::DropEmpty && !drop_empty_applies(message.fields()) {
            continue;
        }
        let values = ordered_values(message, variant);
        for (key_index, key) in keys.iter().enumerate() {
            let expected = digest(script, &values, key);
            if bool::from(expected.ct_eq(&received)) {
                return Ok(Verified { key_index, variant });
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Whether [`Variant::DropEmpty`] may verify `fields`: at least one value is
/// empty (otherwise it equals the canonical rule), and no empty value is a
/// protocol field's.
fn drop_empty_applies(fields: &[Field]) -> bool {
    #[derive(Default)]
    struct Empties {
        any: bool,
        protocol: bool,
    }
    fn walk(fields: &[Field], in_protocol_group: bool, found: &mut Empties) {
        for field in fields.iter().filter(|f| f.name != SIG_FIELD) {
            let protocol = in_protocol_group || field.name.starts_with("pg_");
            match &field.value {
                Value::Text(text) if text.is_empty() => {
                    found.any = true;
                    found.protocol |= protocol;
                }
                Value::Text(_) => {}
                Value::Nested(children) => walk(children, protocol, found),
            }
        }
    }
    let mut found = Empties::default();
    walk(fields, false, &mut found);
    found.any && !found.protocol
}

/// Whether a field named `pg_sig` sits inside a nested group at any depth.
fn has_nested_signature(fields: &[Field]) -> bool {
    fields.iter().any(|field| match &field.value {
        Value::Nested(children) => {
            children.iter().any(|c| c.name == SIG_FIELD) || has_nested_signature(children)
        }
        Value::Text(_) => false,
    })
}

/// The received `pg_sig` as 16 bytes. Hex digits of either case are accepted.
/// A `pg_sig` below the top level is refused first: it is never signed.
fn received_signature(message: &Message) -> Result<[u8; 16], SignatureError> {
    if has_nested_signature(message.fields()) {
        return Err(SignatureError::Nested);
    }
    let mut sigs = message.texts(SIG_FIELD);
    let sig = sigs.next().ok_or(SignatureError::Missing)?;
    if sigs.next().is_some() {
        return Err(SignatureError::Duplicate);
    }
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(sig, &mut bytes).map_err(|_| SignatureError::Malformed)?;
    Ok(bytes)
}
