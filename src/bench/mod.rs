//! The benchmark load generator behind `freedompay-receiver bench`: it
//! registers N orders, fires N signed result callbacks (form-encoded, the
//! fields of protocol reference §2.2, about 600 bytes) at concurrency C at a
//! running service, and reports throughput and latency. Then it checks the
//! run was correct: every answer verified, every order paid, exactly N result
//! events. `scripts/bench` drives it and compares with the machine's ceiling
//! ([`ceiling`]).

pub mod ceiling;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::api::client::{HttpClientError, build_http_client};
use crate::protocol::encode::to_urlencoded;
use crate::protocol::{Amount, Status, VerifyOptions, parse_answer, verify};
use crate::simulate::Simulator;
use crate::simulate::fields::PaymentFacts;
use crate::store::{NewOrder, Store, StoreError};

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where result callbacks go (the full endpoint URL).
    pub result_url: String,
    pub merchant_id: String,
    pub key: String,
    pub callbacks: usize,
    pub concurrency: usize,
    /// Distinguishes this run's orders from earlier runs in the same database.
    pub run_id: String,
}

/// The measured run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub callbacks: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Transport errors and non-200 answers.
    pub errors: usize,
    /// Answers that were not a verified `ok`.
    pub not_ok: usize,
    pub orders_paid: i64,
    pub result_events: i64,
    /// Every answer verified `ok`, every order paid, exactly N result events.
    pub correct: bool,
}

const AMOUNT: &str = "2500.5";

fn order_id(run: &str, i: usize) -> String {
    format!("BENCH-{run}-{i:07}")
}

/// Registers the run's orders in the service's database, in large transactions.
pub async fn register_orders(store: &Store, plan: &Plan) -> Result<(), StoreError> {
    let amount: Amount = AMOUNT
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("benchmark amount {AMOUNT}: {e}")))?;
    let ids: Vec<String> = (0..plan.callbacks)
        .map(|i| order_id(&plan.run_id, i))
        .collect();
    let orders: Vec<NewOrder<'_>> = ids
        .iter()
        .map(|id| NewOrder {
            order_id: id,
            amount,
            currency: "KZT",
            expires_at: None,
        })
        .collect();
    for chunk in orders.chunks(2_000) {
        store.insert_orders(&plan.merchant_id, chunk).await?;
    }
    Ok(())
}

/// Signs every callback up front, so the timed phase spends nothing on it.
/// Payment ids are fresh per run: a repeated id would (rightly) be answered
/// as a duplicate and apply nothing.
fn signed_bodies(plan: &Plan) -> Vec<String> {
    use rand::RngExt;
    let script = crate::protocol::script_name(&plan.result_url).to_owned();
    let run_number: u32 = rand::rng().random_range(100_000..1_000_000);
    (0..plan.callbacks)
        .map(|i| {
            let order = order_id(&plan.run_id, i);
            let payment = format!("{run_number}{i:07}");
            let facts = PaymentFacts {
                merchant_id: None,
                order_id: &order,
                payment_id: &payment,
                amount: AMOUNT,
                currency: "KZT",
            };
            to_urlencoded(&Simulator::sign(
                &script,
                &plan.key,
                &facts.result_success(),
            ))
        })
        .collect()
}

/// Why a run could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Http(#[from] HttpClientError),
}

/// Fires the callbacks and measures; then checks correctness in `store`.
pub async fn run(store: &Store, plan: &Plan) -> Result<Report, BenchError> {
    let bodies = signed_bodies(plan);
    let client = build_http_client(
        reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency)
            .timeout(Duration::from_secs(60)),
    )?;
    let url = Arc::new(plan.result_url.clone());
    let started = Instant::now();
    let outcomes: Vec<(Duration, Option<String>)> = futures_util::stream::iter(bodies)
        .map(|body| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let sent = Instant::now();
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                let text = match response {
                    Ok(r) if r.status() == 200 => r.text().await.ok(),
                    _ => None,
                };
                (sent.elapsed(), text)
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();

    let script = crate::protocol::script_name(&plan.result_url);
    let strict = VerifyOptions {
        allow_variants: false,
    };
    let errors = outcomes.iter().filter(|(_, body)| body.is_none()).count();
    let not_ok = outcomes
        .iter()
        .filter(|(_, body)| {
            !body
                .as_deref()
                .and_then(|b| parse_answer(b).ok())
                .is_some_and(|a| {
                    a.status == Some(Status::Ok)
                        && verify(script, &a.message, &[plan.key.as_str()], strict).is_ok()
                })
        })
        .count();
    let mut latencies: Vec<f64> = outcomes
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied().unwrap_or(0.0)
    };
    let prefix = format!("BENCH-{}-", plan.run_id);
    let (orders_paid, result_events) = store.bench_counts(&plan.merchant_id, &prefix).await?;
    let n = plan.callbacks;
    Ok(Report {
        callbacks: n,
        concurrency: plan.concurrency,
        seconds,
        rps: n as f64 / seconds,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        errors,
        not_ok,
        orders_paid,
        result_events,
        correct: not_ok == 0 && orders_paid == n as i64 && result_events == n as i64,
    })
}
