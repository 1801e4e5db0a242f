//! The `sign` and `verify` subcommands, run as the real binary.

use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .args(args)
        .env_remove("FPR_CONFIG")
        .output()
        .expect("binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const V01_PAIRS: [&str; 6] = [
    "pg_salt=9imM909TH820jwk387",
    "pg_t_param=value3",
    "pg_a_param=value1",
    "pg_z_param[pg_q_subparam]=subvalue2",
    "pg_z_param[pg_m_subparam]=subvalue1",
    "pg_b_param=value2",
];

#[test]
fn sign_reproduces_the_published_vector_v01() {
    let mut args = vec!["sign", "--script", "script.php", "--secret", "mypasskey"];
    args.extend(V01_PAIRS);
    let out = cli(&args);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "a8a4d5a9188f24038a14a4d65c387bf7\n");
}

#[test]
fn sign_debug_prints_the_signing_string_with_the_key_masked() {
    let mut args = vec![
        "sign",
        "--debug",
        "--script",
        "script.php",
        "--secret",
        "mypasskey",
    ];
    args.extend(V01_PAIRS);
    let text = stdout(&cli(&args));
    assert!(text.contains(
        "script.php;value1;value2;9imM909TH820jwk387;value3;subvalue1;subvalue2;<secret>"
    ));
    assert!(!text.contains("mypasskey"));
}

const V30: [&str; 8] = [
    "pg_order_id=ORD-100045",
    "pg_payment_id=1539715642",
    "pg_amount=15000",
    "pg_currency=KZT",
    "pg_result=1",
    "pg_can_reject=1",
    "pg_salt=WrOnGkEy",
    "pg_sig=0925447663fe10109eb085039179c085",
];

#[test]
fn verify_accepts_a_valid_message_and_names_key_and_variant() {
    let mut args = vec![
        "verify",
        "--script",
        "result.php",
        "--secret",
        "old",
        "--secret",
        "j8Xe2vQmN4pT7wKz",
    ];
    args.extend(V30);
    let out = cli(&args);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "valid: key #2 of 2, variant canonical\n");
}

#[test]
fn verify_rejects_a_tampered_amount_with_exit_code_1() {
    let mut tampered = V30;
    tampered[2] = "pg_amount=1500";
    let mut args = vec![
        "verify",
        "--script",
        "result.php",
        "--secret",
        "j8Xe2vQmN4pT7wKz",
    ];
    args.extend(tampered);
    let out = cli(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "invalid: pg_sig does not match\n");
}

#[test]
fn verify_reads_an_xml_answer() {
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><response><pg_status>ok</pg_status>\
<pg_description>Платеж разрешен</pg_description><pg_salt>rsp16salt</pg_salt>\
<pg_sig>ff0ef596bdf201880506ada2bad1fc8c</pg_sig></response>";
    let out = cli(&[
        "verify",
        "--script",
        "check.php",
        "--secret",
        "j8Xe2vQmN4pT7wKz",
        "--xml",
        xml,
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn bad_arguments_exit_with_code_2() {
    let out = cli(&["sign", "--script", "x", "--secret", "k", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
}
