//! Property tests of the protocol core (proptest; case counts set per block).

use freedompay_receiver::protocol::encode::{to_multipart, to_urlencoded, to_xml};
use freedompay_receiver::protocol::{
    Message, RawRequest, VerifyOptions, decode_request, sign, verify,
};
use proptest::prelude::*;

const STRICT: VerifyOptions = VerifyOptions {
    allow_variants: false,
};

/// Any text, with the characters that break naive encoders over-represented.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(";".to_owned()),
            Just("&".to_owned()),
            Just("=".to_owned()),
            Just("+".to_owned()),
            Just("%".to_owned()),
            Just("\n".to_owned()),
            Just("Тест Қазақ".to_owned()),
            any::<char>().prop_map(String::from),
            "[a-z0-9 ]{1,4}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

/// Flat fields with arbitrary names (never `pg_sig`) and values.
fn any_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            tricky_text().prop_filter("not the signature field", |n| n != "pg_sig"),
            tricky_text(),
        ),
        1..12,
    )
}

fn signed(script: &str, key: &str, pairs: &[(String, String)]) -> Option<Message> {
    let mut message = Message::from_pairs(pairs.to_vec()).ok()?;
    let sig = sign(script, &message, key);
    message.push("pg_sig", sig);
    Some(message)
}

fn resign_with(message: &Message, sig_from: &Message) -> Message {
    let mut out = Message::from_pairs(
        message
            .to_pairs()
            .into_iter()
            .filter(|(n, _)| n != "pg_sig"),
    )
    .unwrap();
    out.push("pg_sig", sig_from.get("pg_sig").unwrap());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sign_then_verify_round_trips(
        pairs in any_pairs(),
        script in "[a-z_.]{0,12}",
        key in "[ -~]{1,32}",
    ) {
        let Some(message) = signed(&script, &key, &pairs) else { return Ok(()) };
        let verified = verify(&script, &message, &[key.as_str()], STRICT);
        prop_assert!(verified.is_ok());
    }

    #[test]
    fn changing_adding_or_removing_one_field_breaks_the_signature(
        pairs in any_pairs(),
        key in "[a-zA-Z0-9]{8,32}",
        pick in any::<prop::sample::Index>(),
        new_value in "[a-z0-9]{1,8}",
        extra_name in "[a-z_]{1,8}",
    ) {
        let Some(original) = signed("result", &key, &pairs) else { return Ok(()) };
        let index = pick.index(pairs.len());

        let mut changed = pairs.clone();
        if changed[index].1 == new_value {
            changed[index].1.push('x');
        } else {
            changed[index].1 = new_value.clone();
        }
        let mut added = pairs.clone();
        added.insert(index, (extra_name, new_value.clone()));
        let mut removed = pairs.clone();
        removed.remove(index);

        for (label, tampered) in [("changed", changed), ("added", added), ("removed", removed)] {
            let Ok(tampered) = Message::from_pairs(tampered) else { continue };
            let forged = resign_with(&tampered, &original);
            prop_assert!(verify("result", &forged, &[key.as_str()], STRICT).is_err(), "{}", label);
            // With the variant fallback on, only an empty value can go unnoticed
            // (the drop-empty variant ignores empty fields by definition).
            if label != "removed" || !pairs[index].1.is_empty() {
                let tolerant = verify("result", &forged, &[key.as_str()], VerifyOptions::default());
                prop_assert!(tolerant.is_err(), "{} (variants)", label);
            }
        }
    }

    #[test]
    fn every_encoding_decodes_to_the_same_message(
        pairs in prop::collection::vec(
            ("[a-z_][a-z0-9_]{0,10}", "[^\u{0}-\u{8}\u{b}-\u{1f}\u{7f}\u{fffe}\u{ffff}]{0,20}"),
            1..12,
        ),
    ) {
        let message = Message::from_pairs(pairs).unwrap();
        let form = to_urlencoded(&message);
        let (multipart_type, multipart_body) = to_multipart(&message, "prop-boundary-3f9e1c");
        let xml = to_xml("request", &message);
        let decoded = [
            decode_request(RawRequest { is_get: true, content_type: None, query: Some(&form), body: b"" }),
            decode_request(RawRequest {
                is_get: false,
                content_type: Some("application/x-www-form-urlencoded"),
                query: None,
                body: form.as_bytes(),
            }),
            decode_request(RawRequest {
                is_get: false,
                content_type: Some(&multipart_type),
                query: None,
                body: &multipart_body,
            }),
            decode_request(RawRequest {
                is_get: false,
                content_type: Some("application/xml"),
                query: None,
                body: xml.as_bytes(),
            }),
        ];
        for (encoding, result) in ["get", "form", "multipart", "xml"].iter().zip(decoded) {
            prop_assert_eq!(result.as_ref(), Ok(&message), "{}", encoding);
        }
    }
}
