//! `GET /metrics`: the Prometheus text exposition. Readiness (a database
//! query, as `/readyz`), figures that live in the database (payments needing
//! a refund, reconciler tasks given up, each webhook endpoint's backlog), the
//! connection pool and the process are read at scrape time.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::telemetry::metrics::{
    DB_POOL_CONNECTIONS, DB_POOL_IDLE, NEEDING_REFUND, READY, RECONCILE_TASKS_FAILED,
    WEBHOOK_OLDEST_PENDING, WEBHOOK_PENDING, render,
};

/// Each database count gets this long; one that does not answer keeps its
/// last value rather than delaying the scrape.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let (ready, needing_refund, failed_tasks, backlog) = tokio::join!(
        tokio::time::timeout(COUNT_TIMEOUT, state.store.ready()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.count_needing_refund()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.count_failed_tasks()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.webhook_backlog()),
    );
    metrics::gauge!(READY).set(if matches!(ready, Ok(Ok(()))) {
        1.0
    } else {
        0.0
    });
    if let Ok(Ok(count)) = needing_refund {
        metrics::gauge!(NEEDING_REFUND).set(count as f64);
    }
    if let Ok(Ok(count)) = failed_tasks {
        metrics::gauge!(RECONCILE_TASKS_FAILED).set(count as f64);
    }
    if let Ok(Ok(backlog)) = backlog {
        // Configured endpoints only (a removed endpoint's deliveries stay
        // pending, listed by `webhooks list`, and would alert for ever);
        // one with nothing pending reads 0.
        for endpoint in state.store.announced_endpoints() {
            let (pending, oldest) = backlog
                .iter()
                .find(|b| b.endpoint == endpoint)
                .map_or((0.0, 0.0), |b| (b.pending as f64, b.oldest_secs.max(0.0)));
            metrics::gauge!(WEBHOOK_PENDING, "endpoint" => endpoint.clone()).set(pending);
            metrics::gauge!(WEBHOOK_OLDEST_PENDING, "endpoint" => endpoint).set(oldest);
        }
    }
    let pool = state.store.pool_usage();
    metrics::gauge!(DB_POOL_CONNECTIONS).set(f64::from(pool.size));
    metrics::gauge!(DB_POOL_IDLE).set(pool.idle as f64);
    crate::telemetry::process::record();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}
