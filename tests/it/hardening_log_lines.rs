//! Log lines with values from outside: a signed order id cannot start a log
//! line of its own or reach the terminal as a control, and a long one is not
//! repeated in full (the `pretty` format, of the real binary).

use freedompay_receiver::protocol::Status;
use freedompay_receiver::untrusted::{LOG_VALUE_CHARS, Untrusted};

use crate::on_both_backends;
use crate::support::process::ServerProcess;
use crate::support::{FreedomPay, KEY, TestDb, freedompay};

const FORGED: &str = "2026-01-01T00:00:00Z  INFO forged: all good";

on_both_backends! {
    async fn ids_from_outside_are_logged_escaped_and_cut(backend) {
        let db = TestDb::new(backend).await;
        let server = ServerProcess::start_on(&db.url, KEY, "[log]\nformat = \"pretty\"\nlevel = \"info\"\n").await;
        let addr = server.base_url.trim_start_matches("http://").parse().expect("an address");
        let fp = FreedomPay::new(addr);
        // Unknown orders: the rules refuse them, and with pg_can_reject=0 the
        // payment is taken anyway, which is logged as a warning with the id.
        let forged = format!("F-1\r\n{FORGED}\u{1b}[2K\u{1b}]52;c;aGk=\u{7}");
        fp.send("result", &freedompay::result(&forged, "9911", "10").set("pg_can_reject", "0"))
            .await
            .assert_answer("result", Status::Ok);
        let long = "L".repeat(10_000);
        fp.send("result", &freedompay::result(&long, "9912", "10").set("pg_can_reject", "0"))
            .await
            .assert_answer("result", Status::Ok);

        let log = server.log();
        assert!(log.contains("payment taken although the order rules refuse it"), "{log}");
        for line in log.lines() {
            assert!(!line.trim_start().starts_with(FORGED), "a forged line: {line:?}");
        }
        for raw in ['\u{1b}', '\u{7}', '\r'] {
            assert!(!log.contains(raw), "{raw:?} in the log: {log:?}");
        }
        assert!(log.contains("F-1\\u{d}\\u{a}2026-01-01T00:00:00Z"), "{log}");
        assert!(!log.contains(&long), "the long id in full: {} bytes of log", log.len());
        assert!(log.contains("…(10000 bytes)"), "{log}");
        assert!(log.len() < 20_000, "{} bytes of log for two callbacks", log.len());
    }
}

#[test]
fn a_log_value_is_escaped_and_cut() {
    assert_eq!(Untrusted("a\r\nb").to_string(), "a\\u{d}\\u{a}b");
    let exact = "x".repeat(LOG_VALUE_CHARS);
    assert_eq!(Untrusted(&exact).to_string(), exact);
    let long = "é".repeat(5000);
    let shown = Untrusted(&long).to_string();
    assert_eq!(
        shown,
        format!("{}…(10000 bytes)", "é".repeat(LOG_VALUE_CHARS))
    );
    assert_eq!(format!("{:?}", Untrusted("\u{1b}")), "\\u{1b}");
}
