//! `webhook-signature` as Standard Webhooks defines it, checked by two
//! verifiers that share no code with the service: the `standardwebhooks`
//! crate and a few lines of Python's `hmac`.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use freedompay_receiver::webhooks::{SecretError, SigningSecret, sign};
use reqwest::header::{HeaderMap, HeaderValue};
use standardwebhooks::Webhook;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type":"payment.succeeded","timestamp":"2026-12-01T10:00:00.000Z","data":{"amount":"7000.00"}}"#;

fn secret(text: &str) -> SigningSecret {
    SigningSecret::parse(text).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&timestamp.to_string()).unwrap(),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    headers
}

#[test]
fn webhooks_signature_matches_the_specifications_vector() {
    // The Standard Webhooks reference libraries' own test vector.
    let signature = sign(
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1_649_367_553,
        br#"{"email":"test@example.com","username":"test_user"}"#,
        &[secret(SECRET)],
    );
    assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

#[test]
fn webhooks_signature_verifies_with_the_standardwebhooks_crate() {
    let id = "msg_0193a1b2c3d4e5f60718293a4b5c6d7e";
    let timestamp = now();
    let signature = sign(id, timestamp, BODY.as_bytes(), &[secret(SECRET)]);
    let verifier = Webhook::new(SECRET).unwrap();
    verifier
        .verify(BODY.as_bytes(), &headers(id, timestamp, &signature))
        .unwrap();
    // What was signed is exactly id, timestamp and body: a change to any fails.
    let tampered = BODY.replace("7000.00", "7.00");
    assert!(
        verifier
            .verify(tampered.as_bytes(), &headers(id, timestamp, &signature))
            .is_err()
    );
    assert!(
        verifier
            .verify(
                BODY.as_bytes(),
                &headers("msg_other", timestamp, &signature)
            )
            .is_err()
    );
    assert!(
        verifier
            .verify(BODY.as_bytes(), &headers(id, timestamp - 1, &signature))
            .is_err()
    );
    let stranger = Webhook::new(OLD_SECRET).unwrap();
    assert!(
        stranger
            .verify(BODY.as_bytes(), &headers(id, timestamp, &signature))
            .is_err()
    );
}

#[test]
fn webhooks_signature_during_a_rotation_verifies_with_either_secret() {
    let id = "msg_rotation";
    let timestamp = now();
    let signature = sign(
        id,
        timestamp,
        BODY.as_bytes(),
        &[secret(SECRET), secret(OLD_SECRET)],
    );
    let parts: Vec<&str> = signature.split(' ').collect();
    assert_eq!(parts.len(), 2, "{signature}");
    assert!(parts.iter().all(|p| p.starts_with("v1,")), "{signature}");
    assert_eq!(
        parts[0],
        sign(id, timestamp, BODY.as_bytes(), &[secret(SECRET)])
    );
    for verifier_secret in [SECRET, OLD_SECRET] {
        Webhook::new(verifier_secret)
            .unwrap()
            .verify(BODY.as_bytes(), &headers(id, timestamp, &signature))
            .unwrap_or_else(|e| panic!("{verifier_secret}: {e}"));
    }
    let third = "whsec_".to_owned() + &base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    assert!(
        Webhook::new(&third)
            .unwrap()
            .verify(BODY.as_bytes(), &headers(id, timestamp, &signature))
            .is_err()
    );
}

/// A verifier written from the specification in Python, sharing nothing with
/// the service: prints `ok` when one of the signatures matches.
const PYTHON_VERIFIER: &str = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp, header = sys.argv[1:5]
body = sys.stdin.buffer.read()
key = base64.b64decode(secret.split("_", 1)[1])
expected = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256).digest()).decode()
ok = any(hmac.compare_digest(part.split(",", 1)[1], expected) for part in header.split(" ") if part.startswith("v1,"))
print("ok" if ok else "bad")
"#;

fn python_verifies(secret: &str, id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let mut child = Command::new("python3")
        .args([
            "-c",
            PYTHON_VERIFIER,
            secret,
            id,
            &timestamp.to_string(),
            header,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    match String::from_utf8_lossy(&out.stdout).trim() {
        "ok" => true,
        "bad" => false,
        other => panic!("python said {other:?}"),
    }
}

#[test]
fn webhooks_signature_verifies_with_an_independent_python_verifier() {
    let id = "msg_python";
    let timestamp = 1_764_583_200;
    // Non-ASCII text in the body: the signature covers its UTF-8 bytes.
    let body = r#"{"type":"event.flagged","data":{"flag":"Оплата «тест» ✓"}}"#;
    let single = sign(id, timestamp, body.as_bytes(), &[secret(SECRET)]);
    assert!(python_verifies(SECRET, id, timestamp, body, &single));
    let rotated = sign(
        id,
        timestamp,
        body.as_bytes(),
        &[secret(SECRET), secret(OLD_SECRET)],
    );
    assert!(python_verifies(SECRET, id, timestamp, body, &rotated));
    assert!(python_verifies(OLD_SECRET, id, timestamp, body, &rotated));
    assert!(!python_verifies(OLD_SECRET, id, timestamp, body, &single));
    assert!(!python_verifies(SECRET, id, timestamp + 1, body, &single));
}

#[test]
fn webhooks_signature_secrets_are_whsec_base64_of_24_to_64_bytes() {
    let encode = |n: usize| {
        "whsec_".to_owned() + &base64::engine::general_purpose::STANDARD.encode(vec![1u8; n])
    };
    assert!(SigningSecret::parse(&encode(24)).is_ok());
    assert!(SigningSecret::parse(&encode(64)).is_ok());
    // A file's trailing newline is not part of the secret.
    assert!(SigningSecret::parse(&format!("{}\n", encode(32))).is_ok());
    assert_eq!(
        SigningSecret::parse(&encode(23)).unwrap_err(),
        SecretError::Length(23)
    );
    assert_eq!(
        SigningSecret::parse(&encode(65)).unwrap_err(),
        SecretError::Length(65)
    );
    assert_eq!(
        SigningSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err(),
        SecretError::MissingPrefix
    );
    assert_eq!(
        SigningSecret::parse("whsec_not base64!").unwrap_err(),
        SecretError::NotBase64
    );
    // Never shown, not even in debug output.
    let shown = format!("{:?}", secret(SECRET));
    assert!(!shown.contains("C2FV"), "{shown}");
}
