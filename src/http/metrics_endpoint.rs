//! `GET /metrics`: the Prometheus text exposition. The count of payments
//! needing a refund is read from the database at scrape time.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::telemetry::metrics::{NEEDING_REFUND, render};

const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if let Ok(Ok(count)) =
        tokio::time::timeout(COUNT_TIMEOUT, state.store.count_needing_refund()).await
    {
        metrics::gauge!(NEEDING_REFUND).set(count as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}
