//! Running the receiver: connect the store, migrate, accept connections until
//! told to stop, then let in-flight requests finish (bounded) and close the pool.
//!
//! The accept loop is our own rather than `axum::serve`, for three bounds that
//! a public endpoint needs: a deadline on reading request headers (slow-header
//! clients), a cap on open connections, and each connection's peer address
//! for the network policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::config::{ConfigError, ServerSettings, Settings};
use crate::http::{AppState, metrics_router, router};
use crate::reconcile::Reconciler;
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
    let console = crate::console::start(&settings.console, store.clone()).await?;
    let timeout = Duration::from_secs(settings.server.request_timeout_secs.max(1));
    let app = router(state, timeout, separate_metrics.is_none());
    let (stop_reconciler, stopping) = tokio::sync::watch::channel(false);
    let reconciler = if settings.reconcile.enabled {
        let reconciler = Reconciler::new(&settings, store.clone())?;
        let mut stopping = stopping;
        Some(tokio::spawn(reconciler.run(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })))
    } else {
        None
    };

    serve_connections(listener, app, &settings.server, shutdown).await;

    if let Some(task) = separate_metrics {
        task.abort();
    }
    if let Some(task) = console {
        task.abort();
    }
    if let Some(task) = reconciler {
        // The round in progress may finish; a refund cut off mid-call is
        // safe (its task says a request may have left).
        let _ = stop_reconciler.send(true);
        let grace = Duration::from_secs(settings.server.shutdown_timeout_secs);
        let abort = task.abort_handle();
        if tokio::time::timeout(grace, task).await.is_err() {
            abort.abort();
        }
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

async fn serve_connections<F>(
    listener: TcpListener,
    app: Router,
    server: &ServerSettings,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(server.header_read_timeout_secs.max(1)));
    let connections = Arc::new(Semaphore::new(server.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Backpressure: at the cap, stop accepting until a connection closes.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            },
        );
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!("shutting down: no new connections, finishing in-flight requests");
    let grace = Duration::from_secs(server.shutdown_timeout_secs);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => warn!(?grace, "in-flight requests did not finish in time"),
    }
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
