//! `application/x-www-form-urlencoded` bodies and query strings.
//!
//! Hand-written rather than `form_urlencoded`, because that crate silently
//! replaces invalid UTF-8 and passes malformed `%` sequences through; a payment
//! receiver must refuse such input instead of signing a guess.

use crate::protocol::{DecodeError, Message};

/// Parses `a=1&b=2` into a message, keeping order and duplicates.
pub fn parse_urlencoded(input: &[u8]) -> Result<Message, DecodeError> {
    let pairs = input
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(eq) => (&part[..eq], &part[eq + 1..]),
                None => (part, &b""[..]),
            };
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Message::from_pairs(pairs)
}

/// Strict form decoding: `+` is a space, `%XX` a byte, and the bytes must be UTF-8.
fn percent_decode(input: &[u8]) -> Result<String, DecodeError> {
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = input.get(i + 1).and_then(|b| hex_value(*b));
                let lo = input.get(i + 2).and_then(|b| hex_value(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => bytes.push(hi << 4 | lo),
                    _ => return Err(DecodeError::BadPercentEncoding),
                }
                i += 2;
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
