//! Unsigned additions riding on a genuinely signed message: a nested group
//! holding `pg_sig`, and empty protocol fields that only the drop-empty
//! variant would leave out. Both must fail verification.

use freedompay_receiver::protocol::decode::parse_xml;
use freedompay_receiver::protocol::signature::{Variant, ordered_values, signing_string};
use freedompay_receiver::protocol::{Message, SignatureError, VerifyOptions, sign, verify};
use md5::{Digest, Md5};

const SCRIPT: &str = "result.php";
const KEY: &str = "j8Xe2vQmN4pT7wKz";

/// A result as FreedomPay signs it (canonical rule, no empty value).
fn genuine_pairs() -> Vec<(String, String)> {
    let pairs = [
        ("pg_order_id", "ORD-1"),
        ("pg_payment_id", "900001"),
        ("pg_amount", "100"),
        ("pg_currency", "KZT"),
        ("pg_result", "1"),
        ("customer_ref", "C-77"),
        ("pg_salt", "AdDiTiOnS"),
    ];
    let unsigned = Message::from_pairs(pairs).unwrap();
    let sig = sign(SCRIPT, &unsigned, KEY);
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .chain([("pg_sig".to_owned(), sig)])
        .collect()
}

fn with_extra(extra: &[(&str, &str)]) -> Message {
    let mut pairs = genuine_pairs();
    pairs.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    Message::from_pairs(pairs).unwrap()
}

fn check(message: &Message) -> Result<Variant, SignatureError> {
    verify(SCRIPT, message, &[KEY], VerifyOptions::default()).map(|v| v.variant)
}

/// The drop-empty signature of `message`, as the integration that drops
/// empty values computes it.
fn drop_empty_sig(message: &Message) -> String {
    let values = ordered_values(message, Variant::DropEmpty);
    hex::encode(Md5::digest(signing_string(SCRIPT, &values, KEY).as_bytes()))
}

#[test]
fn the_genuine_message_verifies_canonically() {
    assert_eq!(check(&with_extra(&[])), Ok(Variant::Canonical));
}

#[test]
fn a_group_holding_only_pg_sig_is_refused_in_a_form() {
    for name in [
        "pg_testing_mode[pg_sig]",
        "pg_extra[0][pg_sig]",
        "order[pg_sig]",
    ] {
        let message = with_extra(&[(name, "1")]);
        assert_eq!(check(&message), Err(SignatureError::Nested), "{name}");
        // Also without the fallback variants, and whatever the nested value is.
        let strict = verify(
            SCRIPT,
            &message,
            &[KEY],
            VerifyOptions {
                allow_variants: false,
            },
        );
        assert_eq!(strict, Err(SignatureError::Nested), "{name}");
    }
}

#[test]
fn a_nested_pg_sig_is_refused_in_xml() {
    let genuine = with_extra(&[]);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><request>");
    for (name, value) in genuine.to_pairs() {
        xml.push_str(&format!("<{name}>{value}</{name}>"));
    }
    let clean = format!("{xml}</request>");
    assert_eq!(
        check(&parse_xml(&clean).unwrap()),
        Ok(Variant::Canonical),
        "{clean}"
    );
    let forged = format!("{xml}<pg_testing_mode><pg_sig>1</pg_sig></pg_testing_mode></request>");
    assert_eq!(
        check(&parse_xml(&forged).unwrap()),
        Err(SignatureError::Nested)
    );
    let deeper = format!("{xml}<a><b><pg_sig>1</pg_sig><c>x</c></b></a></request>");
    assert_eq!(
        check(&parse_xml(&deeper).unwrap()),
        Err(SignatureError::Nested)
    );
}

#[test]
fn an_added_empty_protocol_field_does_not_verify_through_drop_empty() {
    for extra in [
        [("pg_testing_mode", "")],
        [("pg_can_reject", "")],
        [("pg_receipt_positions[0][name]", "")],
        [("order[pg_note]", "")],
        [("pg_group[note]", "")],
    ] {
        let message = with_extra(&extra);
        assert_eq!(check(&message), Err(SignatureError::Mismatch), "{extra:?}");
    }
}

#[test]
fn drop_empty_still_verifies_when_only_merchant_fields_are_empty() {
    // Signed by an integration that drops empty values, with an empty
    // merchant field: the documented case the variant exists for.
    let mut pairs: Vec<(String, String)> = genuine_pairs()
        .into_iter()
        .filter(|(n, _)| n != "pg_sig")
        .collect();
    pairs.push(("delivery_note".to_owned(), String::new()));
    let unsigned = Message::from_pairs(pairs.clone()).unwrap();
    pairs.push(("pg_sig".to_owned(), drop_empty_sig(&unsigned)));
    let message = Message::from_pairs(pairs).unwrap();
    assert_eq!(check(&message), Ok(Variant::DropEmpty));
}

#[test]
fn drop_empty_refuses_a_message_whose_dropped_values_include_a_protocol_field() {
    // Signed with empty values dropped, one of them `pg_user_phone`: the
    // signature cannot tell this apart from an attacker's addition.
    let mut pairs: Vec<(String, String)> = genuine_pairs()
        .into_iter()
        .filter(|(n, _)| n != "pg_sig")
        .collect();
    pairs.push(("delivery_note".to_owned(), String::new()));
    pairs.push(("pg_user_phone".to_owned(), String::new()));
    let unsigned = Message::from_pairs(pairs.clone()).unwrap();
    pairs.push(("pg_sig".to_owned(), drop_empty_sig(&unsigned)));
    let message = Message::from_pairs(pairs).unwrap();
    assert_eq!(check(&message), Err(SignatureError::Mismatch));
}

#[test]
fn empty_protocol_fields_that_were_signed_still_verify_canonically() {
    // FreedomPay signs empty values as empty segments: nothing changes there.
    let pairs = [
        ("pg_order_id", "ORD-2"),
        ("pg_user_phone", ""),
        ("pg_result", "1"),
        ("pg_salt", "EmPtY"),
    ];
    let unsigned = Message::from_pairs(pairs).unwrap();
    let sig = sign(SCRIPT, &unsigned, KEY);
    let mut message = unsigned.clone();
    message.push("pg_sig", sig);
    assert_eq!(check(&message), Ok(Variant::Canonical));
}
