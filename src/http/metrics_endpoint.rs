//! `GET /metrics`: the Prometheus text exposition. Readiness (a database
//! query, as `/readyz`), figures that live in the database (payments needing
//! a refund, reconciler tasks given up, each webhook endpoint's backlog, the
//! event log's size, oldest event and partitions, retention's last run), the
//! connection pool and the process are read at scrape time.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::store::tables::maintenance_runs::RETENTION;
use crate::telemetry::metrics::{
    DB_POOL_CONNECTIONS, DB_POOL_IDLE, EVENT_LOG_BYTES, EVENT_PARTITIONS, EVENT_PARTITIONS_AHEAD,
    EVENTS_OLDEST_SECONDS, NEEDING_REFUND, READY, RECONCILE_TASKS_FAILED, RETENTION_LAST_SUCCESS,
    WEBHOOK_OLDEST_PENDING, WEBHOOK_PENDING, render,
};

/// Each database count gets this long; one that does not answer keeps its
/// last value rather than delaying the scrape.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let (ready, needing_refund, failed_tasks, backlog, log, retention) = tokio::join!(
        tokio::time::timeout(COUNT_TIMEOUT, state.store.ready()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.count_needing_refund()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.count_failed_tasks()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.webhook_backlog()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.log_size()),
        tokio::time::timeout(COUNT_TIMEOUT, state.store.maintenance_run(RETENTION)),
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
    if let Ok(Ok(log)) = log {
        let age = log.oldest.map_or(0.0, |oldest| {
            (chrono::Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics::gauge!(EVENTS_OLDEST_SECONDS).set(age);
        metrics::gauge!(EVENT_LOG_BYTES).set(log.bytes as f64);
        if state.store.backend_name() == "postgres" {
            metrics::gauge!(EVENT_PARTITIONS).set(log.partitions as f64);
            metrics::gauge!(EVENT_PARTITIONS_AHEAD).set(log.months_ahead as f64);
        }
    }
    if let Ok(Ok(run)) = retention {
        let finished = run
            .and_then(|r| r.finished_at)
            .map_or(0.0, |t| t.timestamp() as f64);
        metrics::gauge!(RETENTION_LAST_SUCCESS).set(finished);
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
