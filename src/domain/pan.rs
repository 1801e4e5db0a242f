//! Card numbers. FreedomPay sends masked PANs (`5483-18XX-XXXX-0293`), but the
//! receiver never relies on that. Two rules keep a full PAN out of the
//! database, the logs and the pages it renders:
//!
//! - a card-number field (by name, [`is_card_field`]) is re-masked whatever it
//!   holds ([`mask_pan`]);
//! - every other value, and every field name, is searched for card numbers in
//!   free text ([`mask_card_numbers`]): a run of 13 to 19 digits, with any
//!   spaces and dashes between them, that passes the Luhn check.
//!
//! `events.fields` ([`masked_fields_json`]) applies both; the log writer
//! (`telemetry`) and the redirect page apply the second to everything they
//! write.

use std::borrow::Cow;

use crate::protocol::Message;

/// The shortest and longest card numbers (ISO/IEC 7812).
const MIN_PAN_DIGITS: usize = 13;
const MAX_PAN_DIGITS: usize = 19;

/// Whether a field name carries a card number (`pg_card_pan`, `pg_card_hash`,
/// `card_number`, or `pan` inside a group such as `pg_card[pan]`).
pub fn is_card_field(name: &str) -> bool {
    name.contains("card_pan")
        || name.contains("card_hash")
        || name.contains("card_number")
        || name.ends_with("_pan")
        || name == "pan"
}

/// Keeps the first 6 and last 4 digits, replaces every other digit with `X`,
/// and leaves separators and existing `X`s as they are. Values with 10 or
/// fewer digits are already masked (or not a PAN) and are returned unchanged.
pub fn mask_pan(value: &str) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits <= 10 {
        return value.to_owned();
    }
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= 6 || seen > digits - 4 {
                c
            } else {
                'X'
            }
        })
        .collect()
}

/// Masks every card number in free text.
///
/// The text is cut into runs: ASCII digits joined by any number of spaces and
/// dashes. A run in which some 13 to 19 consecutive digits pass the Luhn check
/// (a PAN, possibly glued to other digits) keeps its first 6 and last 4
/// digits; every other digit of the run becomes `X`, separators stay. What
/// remains of a masked run is two groups of at most 6 and 4 digits, so the
/// result holds no Luhn-valid 13–19 digit run at all. Text without one comes
/// back borrowed.
pub fn mask_card_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        // The run ends at the last digit before a character that is neither
        // a digit nor a separator. Most runs (ids, times, amounts) are too
        // short to hold a card number: they are counted, not collected, so
        // that a log line costs no allocation per number (the log writer
        // runs this on every line).
        let mut count = 0;
        let mut at = start;
        while at < bytes.len() {
            match bytes[at] {
                b'0'..=b'9' => count += 1,
                b' ' | b'-' => {}
                _ => break,
            }
            at += 1;
        }
        if count < MIN_PAN_DIGITS {
            start = at;
            continue;
        }
        let digits: Vec<usize> = (start..at).filter(|&p| bytes[p].is_ascii_digit()).collect();
        if holds_card_number(bytes, &digits) {
            let out = masked.get_or_insert_with(|| bytes.to_vec());
            for &position in &digits[6..digits.len() - 4] {
                out[position] = b'X';
            }
        }
        start = at;
    }
    match masked {
        // Only ASCII digits were replaced by ASCII `X`: still UTF-8.
        Some(out) => String::from_utf8(out).map_or(Cow::Borrowed(text), Cow::Owned),
        None => Cow::Borrowed(text),
    }
}

/// Whether some 13–19 consecutive digits of the run pass the Luhn check.
fn holds_card_number(bytes: &[u8], digits: &[usize]) -> bool {
    if digits.len() < MIN_PAN_DIGITS {
        return false;
    }
    let values: Vec<u8> = digits.iter().map(|&p| bytes[p] - b'0').collect();
    (MIN_PAN_DIGITS..=MAX_PAN_DIGITS).any(|length| {
        values
            .windows(length)
            .any(|window| luhn_valid(window.iter().copied()))
    })
}

/// The Luhn (mod 10) check over digits given most significant first.
pub fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The message as `events.fields` JSON: card-number fields masked by name,
/// and card numbers in every other value and in every name masked as text.
pub fn masked_fields_json(message: &Message) -> String {
    message
        .to_json_with(
            |name| mask_card_numbers(name).into_owned(),
            |name, value| {
                if is_card_field(name) {
                    mask_card_numbers(&mask_pan(value)).into_owned()
                } else {
                    mask_card_numbers(value).into_owned()
                }
            },
        )
        .to_string()
}
