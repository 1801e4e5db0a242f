//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
//! database answers within a short timeout and the write path can commit,
//! `Store::ready`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".into()),
        Ok(Err(not_ready)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{not_ready}\n")),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database cannot take writes (unavailable)\n".into(),
        ),
    }
}
