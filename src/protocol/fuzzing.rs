//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), kept in the library
//! so that the committed corpus also runs through them in the ordinary test
//! suite and the targets cannot rot. Each panics only on a real bug.

use super::decode::{RawRequest, decode_request};
use super::{Amount, Message, VerifyOptions, sign, verify};

/// Any bytes as any request encoding: never a panic.
pub fn decode_any(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = match selector % 6 {
        0 => Some("application/x-www-form-urlencoded"),
        1 => Some("multipart/form-data; boundary=fuzzboundary"),
        2 => Some("application/xml"),
        3 => None,
        4 => Some("text/xml; charset=utf-8"),
        _ => Some("multipart/form-data"),
    };
    let query = std::str::from_utf8(body).ok();
    let _ = decode_request(RawRequest {
        is_get: selector % 6 == 3 && selector & 0x80 != 0,
        content_type,
        query,
        body,
    });
}

/// Any form body: verification never panics, a forged `pg_sig` never
/// verifies, and the message signed properly always does.
pub fn signature(data: &[u8]) {
    const KEY: &str = "fuzz-key";
    let Ok(message) = decode_request(RawRequest {
        is_get: false,
        content_type: Some("application/x-www-form-urlencoded"),
        query: None,
        body: data,
    }) else {
        return;
    };
    let _ = verify("result", &message, &[KEY], VerifyOptions::default());
    let unsigned = Message::from_pairs(
        message
            .to_pairs()
            .into_iter()
            .filter(|(n, _)| n != "pg_sig"),
    );
    let Ok(mut signed) = unsigned else { return };
    let sig = sign("result", &signed, KEY);
    signed.push("pg_sig", sig);
    // Re-parsing through pairs can restructure bracketed names; verify the
    // structure that was signed.
    assert!(
        verify(
            "result",
            &signed,
            &[KEY],
            VerifyOptions {
                allow_variants: false
            }
        )
        .is_ok()
    );
    assert!(verify("result", &signed, &["other-key"], VerifyOptions::default()).is_err());
}

/// Any text as an amount: never a panic, and an accepted amount survives a
/// round trip through its canonical text.
pub fn amount(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(amount) = text.parse::<Amount>() {
        let again: Amount = amount.canonical().parse().expect("canonical text parses");
        assert_eq!(again, amount);
    }
}
