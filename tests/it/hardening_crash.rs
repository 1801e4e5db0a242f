//! Crash safety: result callbacks under load, the server killed with SIGKILL
//! in the middle, restarted, and every callback that did not get `ok`
//! re-delivered, as FreedomPay's retries would. Every `ok` must be in the
//! database, nothing may be applied twice, and the end state must equal that
//! of a run without the crash.
//!
//! CI runs 300 callbacks per backend; the full run is
//! `FPR_CRASH_CALLBACKS=2000 ./scripts/test hardening_crash` (see RELIABILITY.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use freedompay_receiver::config::DatabaseSettings;
use freedompay_receiver::domain::{CallbackKind, OrderStatus, PaymentStatus};
use freedompay_receiver::protocol::{Amount, Status};
use freedompay_receiver::simulate::fields::PaymentFacts;
use freedompay_receiver::simulate::{Encoding, SignatureCheck, Simulator};
use freedompay_receiver::store::{NewOrder, Store};
use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::on_both_backends;
use crate::support::process::ServerProcess;
use crate::support::{MERCHANT, TestDb};

const KEY: &str = "crash-test-key";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn order_id(i: usize) -> String {
    format!("C-{i:05}")
}

fn payment_id(i: usize) -> String {
    format!("{}", 500_000 + i)
}

/// Sends the result of callback `i`; true when answered a verified `ok`.
async fn deliver(simulator: &Simulator, base: &str, i: usize) -> bool {
    let (order, payment) = (order_id(i), payment_id(i));
    let facts = PaymentFacts {
        merchant_id: None,
        order_id: &order,
        payment_id: &payment,
        amount: "2500.50",
        currency: "KZT",
    };
    let url = format!("{base}/freedompay/result");
    match simulator
        .send(&url, Encoding::Form, KEY, &facts.result_success())
        .await
    {
        Ok(e) => {
            e.http_status == 200
                && e.pg_status() == Some(Status::Ok)
                && e.signature == SignatureCheck::Ok
        }
        Err(_) => false,
    }
}

/// Returns the indices of the callbacks that were acknowledged.
async fn first_run(
    simulator: &Simulator,
    server: &mut ServerProcess,
    n: usize,
    concurrency: usize,
) -> Vec<usize> {
    let answered = Arc::new(AtomicUsize::new(0));
    let halfway = Arc::new(Notify::new());
    let base = server.base_url.clone();
    let sends = futures_util::stream::iter(0..n)
        .map(|i| {
            let (answered, halfway, base) = (answered.clone(), halfway.clone(), base.clone());
            async move {
                let ok = deliver(simulator, &base, i).await;
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == n / 2 {
                    halfway.notify_one();
                }
                (i, ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>();
    let (outcomes, ()) = tokio::join!(sends, async {
        halfway.notified().await;
        server.kill().await;
    });
    outcomes
        .into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(i, _)| i)
        .collect()
}

async fn crash_and_recover(db: &TestDb) {
    let n = env_number("FPR_CRASH_CALLBACKS", 300);
    let concurrency = env_number("FPR_CRASH_CONCURRENCY", 32);
    let store = Store::connect(&DatabaseSettings {
        url: db.url.clone().into(),
        ..DatabaseSettings::default()
    })
    .unwrap();
    store.migrate().await.unwrap();
    let amount: Amount = "2500.5".parse().unwrap();
    for i in 0..n {
        let order = order_id(i);
        let new = NewOrder {
            order_id: &order,
            amount,
            currency: "KZT",
            expires_at: None,
        };
        store.insert_order(MERCHANT, &new).await.unwrap();
    }

    let simulator = Simulator::new().expect("an HTTP client");
    let mut server = ServerProcess::start_on(&db.url, KEY, "").await;
    let acknowledged = first_run(&simulator, &mut server, n, concurrency).await;
    assert!(
        acknowledged.len() < n,
        "the kill landed after the run; nothing was tested"
    );

    // Every acknowledged callback is durable, before any retry.
    for &i in &acknowledged {
        let order = store.order(MERCHANT, &order_id(i)).await.unwrap().unwrap();
        assert_eq!(
            order.status,
            OrderStatus::Paid,
            "acknowledged callback {i} was lost"
        );
    }

    // Restart and re-deliver what was not acknowledged, until it is.
    let server = ServerProcess::start_on(&db.url, KEY, "").await;
    let missing: Vec<usize> = (0..n).filter(|i| !acknowledged.contains(i)).collect();
    for i in &missing {
        let mut delivered = false;
        for _ in 0..20 {
            if deliver(&simulator, &server.base_url, *i).await {
                delivered = true;
                break;
            }
        }
        assert!(
            delivered,
            "callback {i} was never acknowledged after the restart"
        );
    }

    // The state a run without the crash would leave: every order paid once,
    // every payment succeeded, exactly one applied result per payment.
    for i in 0..n {
        let order = store.order(MERCHANT, &order_id(i)).await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(
            order.paid_payment_id.as_deref(),
            Some(payment_id(i).as_str())
        );
        let payment = store
            .payment(MERCHANT, &payment_id(i))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert!(!payment.needs_refund);
    }
    let results = store
        .count_events(Some(CallbackKind::Result))
        .await
        .unwrap();
    assert_eq!(results.first, n as i64, "one applied result per callback");
    eprintln!(
        "crash run: {n} callbacks, concurrency {concurrency}: {} acknowledged before SIGKILL, {} re-delivered, \
         {} duplicate deliveries recorded, lost 0",
        acknowledged.len(),
        missing.len(),
        results.duplicate
    );
    store.close().await;
}

on_both_backends! {
    async fn sigkill_mid_run_loses_no_acknowledged_callback(backend) {
        let db = TestDb::new(backend).await;
        crash_and_recover(&db).await;
    }
}
