//! Every signature vector of `tests/vectors/signatures.json`, produced by an
//! independent implementation, decoded through the real request decoders.

use freedompay_receiver::protocol::decode::parse_xml;
use freedompay_receiver::protocol::encode::to_multipart;
use freedompay_receiver::protocol::signature::{ordered_values, signing_string};
use freedompay_receiver::protocol::{
    Message, RawRequest, SignatureError, Variant, VerifyOptions, decode_request, sign, verify,
};
use serde_json::Value as Json;

fn vectors() -> Vec<Json> {
    let text = include_str!("../vectors/signatures.json");
    let doc: Json = serde_json::from_str(text).expect("vector file is JSON");
    doc["vectors"].as_array().expect("vectors array").clone()
}

fn str_of<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {}", v["id"]))
}

fn params(v: &Json) -> Vec<(String, String)> {
    v["params"]
        .as_array()
        .expect("params")
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Decodes the vector the way the receiver would see it on the wire.
fn decode(v: &Json) -> Message {
    match str_of(v, "kind") {
        "xml_response" => parse_xml(str_of(v, "xml")).expect("response XML"),
        _ => if let Some(query) = v["raw_query"].as_str() {
            decode_request(RawRequest {
                is_get: true,
                content_type: None,
                query: Some(query),
                body: b"",
            })
        } else {
            let body = match v["raw_body_urlencoded"].as_str() {
                Some(body) => body.to_owned(),
                None => serde_urlencoded::to_string(params(v)).unwrap(),
            };
            decode_request(RawRequest {
                is_get: false,
                content_type: Some("application/x-www-form-urlencoded"),
                query: None,
                body: body.as_bytes(),
            })
        }
        .unwrap_or_else(|e| panic!("{}: {e}", v["id"])),
    }
}

fn with_sig(message: &Message, sig: &str) -> Message {
    let pairs = message
        .to_pairs()
        .into_iter()
        .filter(|(n, _)| n != "pg_sig")
        .chain([("pg_sig".to_owned(), sig.to_owned())]);
    Message::from_pairs(pairs).unwrap()
}

#[test]
fn every_vector_has_its_expected_signature_and_signing_string() {
    let all = vectors();
    assert_eq!(all.len(), 33);
    for v in &all {
        let message = decode(v);
        let script = str_of(v, "script_name");
        let key = str_of(v, "secret_key");
        assert_eq!(
            sign(script, &message, key),
            str_of(v, "expected_sig"),
            "{}",
            v["id"]
        );
        let values = ordered_values(&message, Variant::Canonical);
        assert_eq!(
            signing_string(script, &values, key),
            str_of(v, "signing_string"),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn every_vector_verifies_as_expected() {
    for v in &vectors() {
        let message = decode(v);
        let result = verify(
            str_of(v, "script_name"),
            &message,
            &[str_of(v, "secret_key")],
            VerifyOptions::default(),
        );
        if v["expected_valid"].as_bool().unwrap() {
            let verified = result.unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
            assert_eq!(verified.variant, Variant::Canonical, "{}", v["id"]);
        } else {
            assert_eq!(result, Err(SignatureError::Mismatch), "{}", v["id"]);
        }
    }
}

#[test]
fn alternative_signatures_pass_only_through_the_variant_fallback() {
    let mut seen = 0;
    for v in &vectors() {
        for (field, variant) in [
            ("alt_sig_simple_sort", Variant::RawSort),
            ("alt_sig_drop_empty", Variant::DropEmpty),
        ] {
            let Some(alt) = v[field].as_str() else {
                continue;
            };
            seen += 1;
            let message = with_sig(&decode(v), alt);
            let script = str_of(v, "script_name");
            let key = str_of(v, "secret_key");
            let tolerant = verify(script, &message, &[key], VerifyOptions::default());
            if variant == Variant::DropEmpty {
                // V08's drop-empty signature leaves out empty `pg_` fields,
                // which an attacker could equally have added to a message
                // signed without them: refused (protocol::signature docs).
                assert_eq!(tolerant, Err(SignatureError::Mismatch), "{}", v["id"]);
            } else {
                assert_eq!(tolerant.map(|ok| ok.variant), Ok(variant), "{}", v["id"]);
            }
            let strict = verify(
                script,
                &message,
                &[key],
                VerifyOptions {
                    allow_variants: false,
                },
            );
            assert_eq!(strict, Err(SignatureError::Mismatch), "{}", v["id"]);
        }
    }
    assert_eq!(
        seen, 4,
        "V08, V10, V11 and V13 carry alternative signatures"
    );
}

#[test]
fn form_vectors_verify_identically_as_multipart_and_get() {
    for v in vectors().iter().filter(|v| v["kind"] == "form") {
        let expected = decode(v);
        let (content_type, body) = to_multipart(&expected, "vector-boundary-7MA4YWxk");
        let multipart = decode_request(RawRequest {
            is_get: false,
            content_type: Some(&content_type),
            query: None,
            body: &body,
        })
        .unwrap();
        assert_eq!(multipart, expected, "{}", v["id"]);
        let query = serde_urlencoded::to_string(params(v)).unwrap();
        let get = decode_request(RawRequest {
            is_get: true,
            content_type: None,
            query: Some(&query),
            body: b"",
        })
        .unwrap();
        assert_eq!(get, expected, "{}", v["id"]);
    }
}

#[test]
fn key_rotation_reports_which_key_matched() {
    let v = &vectors()[2];
    let message = decode(v);
    let keys = ["new-key-not-yet-live", str_of(v, "secret_key")];
    let verified = verify(
        str_of(v, "script_name"),
        &message,
        &keys,
        VerifyOptions::default(),
    );
    assert_eq!(verified.unwrap().key_index, 1);
}

#[test]
fn jws_vectors_reproduce_their_detached_signatures() {
    use freedompay_receiver::api::jws::{Algorithm, detached_signature};
    let doc: Json = serde_json::from_str(include_str!("../vectors/signatures.json")).unwrap();
    let vectors = doc["jws_vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let algorithm = match str_of(v, "alg") {
            "HS512" => Algorithm::Hs512,
            "HS256" => Algorithm::Hs256,
            other => panic!("unexpected algorithm {other}"),
        };
        let signature = detached_signature(
            str_of(v, "header_json"),
            str_of(v, "payload_json").as_bytes(),
            str_of(v, "key"),
            algorithm,
        );
        assert_eq!(signature, str_of(v, "x_jws_signature"), "{}", v["id"]);
    }
}

#[test]
fn jws_vectors_verify_and_tampering_does_not() {
    use freedompay_receiver::api::jws::{JwsError, verify_detached};
    let doc: Json = serde_json::from_str(include_str!("../vectors/signatures.json")).unwrap();
    for v in doc["jws_vectors"].as_array().unwrap() {
        let (token, body, key) = (
            str_of(v, "x_jws_signature"),
            str_of(v, "payload_json").as_bytes(),
            str_of(v, "key"),
        );
        assert_eq!(verify_detached(token, body, key), Ok(()), "{}", v["id"]);
        let mut tampered = body.to_vec();
        tampered[2] ^= 1;
        assert_eq!(
            verify_detached(token, &tampered, key),
            Err(JwsError::Mismatch)
        );
        assert_eq!(
            verify_detached(token, body, "other-key"),
            Err(JwsError::Mismatch)
        );
    }
    // An algorithm named by the sender never switches the check off.
    use base64::Engine as _;
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    assert_eq!(
        verify_detached(&format!("{none}..x"), b"{}", "k"),
        Err(JwsError::Algorithm("none".into()))
    );
    assert_eq!(
        verify_detached("abc.def.ghi", b"{}", "k"),
        Err(JwsError::Shape)
    );
}

#[test]
fn the_v5_refund_header_is_the_assumed_vector_j02() {
    use freedompay_receiver::api::jws::{Algorithm, header_json};
    let doc: Json = serde_json::from_str(include_str!("../vectors/signatures.json")).unwrap();
    let j02 = &doc["jws_vectors"][1];
    assert_eq!(
        header_json("/v5/g2g/edit", "545774", Algorithm::Hs512),
        str_of(j02, "header_json")
    );
}

#[test]
fn json_bodies_sign_their_exact_values() {
    use freedompay_receiver::protocol::json::json_to_message;
    use freedompay_receiver::protocol::sign;
    let message = json_to_message(
        r#"{"pg_status":"success","pg_error_code":0,"pg_amount":100.50,"ok":true,"none":null,"n":{"b":"2","a":[1,"x"]}}"#,
    )
    .unwrap();
    assert_eq!(message.get("pg_error_code"), Some("0"));
    assert_eq!(
        message.get("pg_amount"),
        Some("100.50"),
        "never through a float"
    );
    assert_eq!(
        (message.get("ok"), message.get("none")),
        (Some("1"), Some(""))
    );
    let pairs = message.to_pairs();
    assert!(
        pairs.contains(&("n[a][1]".to_owned(), "x".to_owned())),
        "{pairs:?}"
    );
    // The same fields as a form sign the same.
    let form = freedompay_receiver::protocol::Message::from_pairs(pairs.clone()).unwrap();
    assert_eq!(sign("refund", &message, "k"), sign("refund", &form, "k"));
    assert!(json_to_message("[1,").is_err());
    assert!(json_to_message(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).is_err());
}
