//! Running the receiver: connect the store, migrate, serve until told to stop,
//! then let in-flight requests finish (bounded) and close the pool.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::{ConfigError, Settings};
use crate::http::{AppState, metrics_router, router};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves on `listener` until `shutdown` completes. Tests pass a listener
/// bound to port 0; `serve` passes the configured address.
pub async fn run<F>(settings: Settings, listener: TcpListener, shutdown: F) -> Result<(), RunError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let store = Store::connect(&settings.database)?;
    if settings.database.migrate_on_start {
        store.migrate().await?;
    }
    let state = Arc::new(AppState::new(&settings, store.clone())?);
    crate::telemetry::metrics::handle();
    let separate_metrics = match &settings.metrics.listen {
        Some(address) => {
            let listener = TcpListener::bind(address).await?;
            info!(address = %listener.local_addr()?, "metrics listening");
            let metrics = metrics_router(state.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, metrics).await },
            ))
        }
        None => None,
    };
    let timeout = Duration::from_secs(settings.server.request_timeout_secs.max(1));
    let app = router(state, timeout, separate_metrics.is_none());
    let grace = Duration::from_secs(settings.server.shutdown_timeout_secs);

    // The shutdown signal stops accepting connections; in-flight requests then
    // get `grace` to finish before the server stops waiting for them.
    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            info!("shutting down: no new connections, finishing in-flight requests");
            stopping.notify_one();
        }
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => warn!(?grace, "in-flight requests did not finish in time"),
    }
    if let Some(task) = separate_metrics {
        task.abort();
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
