//! `history`: the real binary prints what the database holds about one order,
//! as text and as JSON, on both backends.

use std::process::Output;

use freedompay_receiver::domain::task::{NewTask, TaskKind};
use freedompay_receiver::protocol::Status;

use crate::on_both_backends;
use crate::support::reconcile::Rig;
use crate::support::{Backend, MERCHANT, freedompay};

/// Runs the binary with the rig's settings for its first merchant.
pub async fn cli(toml: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env_remove("FPR_CONFIG")
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An order paid (check, result, a repeated result) and then 300 of its
/// 1000 refunded through the `refund` command.
pub async fn paid_then_partly_refunded(rig: &Rig, order: &str, payment: &str) {
    rig.app.order(order, "1000", "KZT").await;
    let fp = &rig.app.fp;
    fp.send("check", &freedompay::check(order, payment, "1000"))
        .await
        .assert_answer("check", Status::Ok);
    let result = freedompay::result(order, payment, "1000");
    fp.send("result", &result)
        .await
        .assert_answer("result", Status::Ok);
    fp.send("result", &result)
        .await
        .assert_answer("result", Status::Ok);
    rig.fake.add_payment(payment, order, "1000", "success");
    let out = cli(
        &rig.toml,
        &[
            "refund",
            "--merchant-id",
            MERCHANT,
            "--payment-id",
            payment,
            "--amount",
            "300",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

on_both_backends! {
    async fn history_shows_a_paid_then_partly_refunded_order(backend) {
        let rig = Rig::start(backend, "").await;
        paid_then_partly_refunded(&rig, "O-H1", "9501").await;

        let out = cli(&rig.toml, &["history", "--merchant-id", MERCHANT, "--order-id", "O-H1"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        assert!(printed.contains("order O-H1, merchant 545774"), "{printed}");
        assert!(printed.contains("1000 KZT, status partially_refunded"), "{printed}");
        let mask = rig.app.store.payment(MERCHANT, "9501").await.unwrap().unwrap().card_mask.unwrap();
        assert!(printed.contains(&format!("9501  succeeded  1000 KZT  card {mask}  captured yes  needs_refund no")), "{printed}");
        assert!(printed.contains("refunded 300"), "{printed}");
        // Check, result, its repeat, in order; the repeat marked.
        let check = printed.find("#1 check  payment 9501  -> ok \"Order O-H1 can be paid\"  signed canonical/current").expect(&printed);
        let result = printed.find("#2 result  payment 9501  -> ok \"Payment accepted\"  signed").expect(&printed);
        let repeat = printed.find("#3 result  payment 9501  -> ok \"Payment accepted\"  DUPLICATE").expect(&printed);
        let refund = printed.find("#4 reconcile  payment 9501  -> ok \"Refund recorded\"").expect(&printed);
        assert!(check < result && result < repeat && repeat < refund, "{printed}");
        assert!(printed.contains(&format!("pg_card_pan={mask}")), "{printed}");
        assert!(printed.contains("pg_refund_amount=300"), "{printed}");
        assert!(printed.contains(" refund 9501 ["), "{printed}");
        assert!(printed.contains("amount 300"), "{printed}");
        assert!(printed.contains("order O-H1 is partially_refunded (1000 KZT)"), "{printed}");
        assert!(printed.contains("payment 9501 succeeded, 300 of 1000 KZT refunded"), "{printed}");
        assert!(printed.contains("nothing is waiting"), "{printed}");

        // The same by payment id, as JSON.
        let out = cli(&rig.toml, &["history", "--merchant-id", MERCHANT, "--payment-id", "9501", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(doc["order_id"], "O-H1");
        assert_eq!(doc["order"]["status"], "partially_refunded");
        assert_eq!(doc["order"]["amount"], "1000");
        assert_eq!(doc["payments"][0]["refunded_amount"], "300");
        assert_eq!(doc["payments"][0]["needs_refund"], false);
        let events = doc["events"].as_array().unwrap();
        let kinds: Vec<(&str, bool)> = events
            .iter()
            .map(|e| (e["kind"].as_str().unwrap(), e["duplicate"].as_bool().unwrap()))
            .collect();
        assert_eq!(kinds[..3], [("check", false), ("result", false), ("result", true)], "{doc}");
        // The stored fields come out as JSON, not as a string of JSON.
        assert!(events[0]["fields"].is_array(), "{doc}");
        let task = &doc["tasks"][0];
        assert_eq!((task["task"].as_str(), task["state"].as_str(), task["amount"].as_str()),
            (Some("refund"), Some("done"), Some("300")), "{doc}");
        assert!(doc["summary"].as_array().unwrap().iter().any(|l| l == "nothing is waiting"), "{doc}");
        rig.app.store.close().await;
    }

    async fn history_says_what_is_waiting_and_when(backend) {
        let rig = Rig::start(backend, "").await;
        rig.app.order("O-H2", "500", "KZT").await;
        rig.app.fp.send("check", &freedompay::check("O-H2", "9502", "500")).await.assert_answer("check", Status::Ok);
        rig.app.store.schedule_task(&NewTask {
            merchant_id: MERCHANT,
            kind: TaskKind::PaymentStatus,
            subject_id: "9502",
            task_key: "",
            stage: None,
            method: None,
            request_id: None,
            amount: None,
            confirm_total: None,
            due_in_secs: 3600,
        }).await.unwrap();
        let out = cli(&rig.toml, &["history", "--merchant-id", MERCHANT, "--payment-id", "9502"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout);
        assert!(printed.contains("order O-H2 is pending (500 KZT); waiting for payment"), "{printed}");
        assert!(printed.contains("waiting: status query for payment 9502, attempt 0 done, next at "), "{printed}");
        assert!(!printed.contains("nothing is waiting"), "{printed}");
        rig.app.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_of_something_unknown_is_an_error() {
    let rig = Rig::start(Backend::Sqlite, "").await;
    let out = cli(
        &rig.toml,
        &[
            "history",
            "--merchant-id",
            MERCHANT,
            "--order-id",
            "NO-SUCH",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing is stored about order NO-SUCH of merchant 545774"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    // Neither subject, or both: an argument error.
    let out = cli(&rig.toml, &["history", "--merchant-id", MERCHANT]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = cli(
        &rig.toml,
        &[
            "history",
            "--order-id",
            "A",
            "--payment-id",
            "B",
            "--merchant-id",
            MERCHANT,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    rig.app.store.close().await;
}
