//! Signed XML answers: escaping, salt, signature with the endpoint's script.

use freedompay_receiver::protocol::answer::{SALT_LEN, fresh_salt};
use freedompay_receiver::protocol::{Answer, Status, VerifyOptions, parse_answer, verify};

#[test]
fn published_answer_vector_v16_is_reproduced() {
    let xml = Answer::new(Status::Ok, "Платеж разрешен").to_signed_xml_with_salt(
        "check.php",
        "j8Xe2vQmN4pT7wKz",
        "rsp16salt",
    );
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><response><pg_status>ok</pg_status>\
<pg_description>Платеж разрешен</pg_description><pg_salt>rsp16salt</pg_salt>\
<pg_sig>ff0ef596bdf201880506ada2bad1fc8c</pg_sig></response>"
    );
}

#[test]
fn answers_are_escaped_salted_and_verify_with_the_script_name() {
    let mut answer = Answer::new(Status::Rejected, "Order <7> & \"co\" is already paid");
    answer
        .extra
        .push(("pg_error_description".into(), "a'b".into()));
    let xml = answer.to_signed_xml("result", "k3y");
    assert!(xml.contains("Order &lt;7&gt; &amp; &quot;co&quot; is already paid"));
    let parsed = parse_answer(&xml).unwrap();
    assert_eq!(parsed.status, Some(Status::Rejected));
    assert_eq!(
        parsed.description.as_deref(),
        Some("Order <7> & \"co\" is already paid")
    );
    assert!(
        verify(
            "result",
            &parsed.message,
            &["k3y"],
            VerifyOptions::default()
        )
        .is_ok()
    );
    assert!(verify("check", &parsed.message, &["k3y"], VerifyOptions::default()).is_err());
    let salt = parsed.message.get("pg_salt").unwrap();
    assert_eq!(salt.len(), SALT_LEN);
    assert!(salt.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn every_answer_gets_a_fresh_salt_and_signature() {
    let answer = Answer::new(Status::Ok, "");
    assert_ne!(
        answer.to_signed_xml("check", "k"),
        answer.to_signed_xml("check", "k")
    );
    assert!(fresh_salt().len() >= 16);
    assert_ne!(fresh_salt(), fresh_salt());
}

#[test]
fn unsigned_answers_have_no_salt_or_signature() {
    let xml = Answer::new(Status::Error, "Invalid signature").to_unsigned_xml();
    let parsed = parse_answer(&xml).unwrap();
    assert_eq!(parsed.status, Some(Status::Error));
    assert_eq!(parsed.message.get("pg_sig"), None);
    assert_eq!(parsed.message.get("pg_salt"), None);
}
