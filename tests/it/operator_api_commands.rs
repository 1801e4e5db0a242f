//! The operator commands that talk to FreedomPay (`status`, `balance`,
//! `refund`, `payout`), run as the real binary against a fake FreedomPay.

use std::process::{Output, Stdio};

use freedompay_receiver::domain::{PaymentStatus, PayoutStatus};
use freedompay_receiver::protocol::Status;
use tokio::io::AsyncWriteExt;

use crate::on_both_backends;
use crate::support::fake_freedompay::Behaviour;
use crate::support::reconcile::Rig;
use crate::support::{Backend, MERCHANT, freedompay};

/// Runs the binary with the rig's settings for its first merchant; `input`
/// goes to its stdin.
async fn cli(rig: &Rig, args: &[&str], input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &rig.toml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .args(["--merchant-id", MERCHANT])
        .env_remove("FPR_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_balance_print_verified_answers() {
    let rig = Rig::start(Backend::Sqlite, "").await;
    rig.fake.add_payment("901", "O-9", "7000", "success");
    let out = cli(&rig, &["status", "--payment-id", "901"], "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("pg_payment_status: success\n"),
        "{printed}"
    );
    assert!(!printed.contains("pg_sig"), "{printed}");

    let out = cli(&rig, &["balance", "--currency", "KZT"], "").await;
    assert!(text(&out.stdout).contains("pg_balance: 125000.50\n"));

    rig.fake.set(Behaviour::ForgedSignature);
    let out = cli(&rig, &["status", "--order-id", "O-9"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

on_both_backends! {
    async fn refund_command_refunds_part_of_a_payment_once(backend) {
        let rig = Rig::start(backend, "").await;
        rig.app.order("O-C", "1000", "KZT").await;
        rig.app.fp.send("result", &freedompay::result("O-C", "950", "1000")).await.assert_answer("result", Status::Ok);
        rig.fake.add_payment("950", "O-C", "1000", "success");
        let out = cli(&rig, &["refund", "--payment-id", "950", "--amount", "300"], "").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("refunded"), "{}", text(&out.stdout));
        let refunds = rig.fake.refunds_of("950");
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].amount, "300".parse().unwrap());
        let payment = rig.app.store.payment(MERCHANT, "950").await.unwrap().unwrap();
        assert_eq!((payment.status, payment.refunded_amount), (PaymentStatus::Succeeded, "300".parse().unwrap()));
        // More than is left is refused before anything is sent.
        let out = cli(&rig, &["refund", "--payment-id", "950", "--amount", "800"], "").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stdout).contains("700 of the payment is left"), "{}", text(&out.stdout));
        assert_eq!(rig.fake.refunds_of("950").len(), 1);
        rig.app.store.close().await;
    }

    async fn payout_command_asks_before_paying_out(backend) {
        let rig = Rig::start(backend, "").await;
        let args = ["payout", "--card", "4405645000006150", "--amount", "5000", "--order-id", "PO-9",
            "--post-link", "https://shop.example.kz/freedompay/payout"];
        let out = cli(&rig, &args, "no\n").await;
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stdout).contains("to card 440564XXXXXX6150"), "{}", text(&out.stdout));
        assert!(rig.fake.calls().is_empty());
        assert!(rig.app.store.payout(MERCHANT, "PO-9").await.unwrap().is_none());

        rig.fake.script_payout("PO-9", &["success"]);
        let mut confirmed = args.to_vec();
        confirmed.push("--yes");
        let out = cli(&rig, &confirmed, "").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let calls = rig.fake.calls();
        assert_eq!(calls[0].0, "p2p2nonreg");
        assert_eq!(calls[0].1.get("pg_payment_to"), Some("4405645000006150"));
        assert_eq!(rig.app.store.payout(MERCHANT, "PO-9").await.unwrap().unwrap().status, PayoutStatus::Success);
        // The order id cannot be paid out twice.
        let out = cli(&rig, &confirmed, "").await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(rig.fake.calls().len(), 1);
        rig.app.store.close().await;
    }
}
