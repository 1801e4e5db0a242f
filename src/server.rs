//! Running the receiver: connect the store, migrate, accept connections until
//! told to stop, then let in-flight requests finish (bounded) and close the pool.
//!
//! The accept loop is our own rather than `axum::serve`, for three bounds that
//! a public endpoint needs: a deadline on reading request headers, counted
//! from accept and again from each response on a kept-alive connection (so
//! silent and slow-header clients are cut off), a cap on open connections,
//! and each connection's peer address for the network policy.
//!
//! Connections speak HTTP/1.1 only. FreedomPay sends its callbacks over
//! HTTP/1.1, and an HTTP/2 server would bring its own idle and stream limits
//! to keep bounded; an HTTP/2 (h2c) preface is refused and the connection
//! closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{debug, error, info, warn};

use crate::config::{ConfigError, MetricsPlace, ServerSettings, Settings};
use crate::deliver::Dispatcher;
use crate::http::{AppState, metrics_router, router};
use crate::reconcile::Reconciler;
use crate::retention::Retention;
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::RECONCILER_RUNNING;

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
/// bound to port 0; `serve` passes the configured address. `/metrics` goes
/// where `metrics.listen` says (bound here when it is an address).
pub async fn run<F>(settings: Settings, listener: TcpListener, shutdown: F) -> Result<(), RunError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let metrics = bind_metrics(&settings).await?;
    run_with(settings, listener, metrics, shutdown).await
}

/// Binds the metrics listener when `metrics.listen` is an address; the error
/// names the key.
pub async fn bind_metrics(settings: &Settings) -> Result<Option<TcpListener>, ConfigError> {
    match settings.metrics.place()? {
        MetricsPlace::Address(address) => TcpListener::bind(address).await.map(Some).map_err(|e| {
            ConfigError::new("metrics.listen", format!("cannot listen on {address}: {e}"))
        }),
        MetricsPlace::Server | MetricsPlace::Off => Ok(None),
    }
}

/// As [`run`], with the metrics listener already bound (`serve` binds both
/// itself, to report each address).
pub async fn run_with<F>(
    settings: Settings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: F,
) -> Result<(), RunError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let store = Store::connect(&settings.database)?;
    if settings.database.migrate_on_start {
        store.migrate().await?;
    }
    // The outbox: every committed change gets its messages for these.
    let endpoints = settings.webhook_endpoints()?;
    if !endpoints.is_empty() {
        store.announce_to(endpoints.clone().into());
    }
    let state = Arc::new(AppState::new(&settings, store.clone())?);
    crate::telemetry::metrics::handle();
    let separate_metrics = match metrics_listener {
        Some(listener) => {
            info!(address = %listener.local_addr()?, "metrics listening");
            let metrics = metrics_router(state.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, metrics).await },
            ))
        }
        None => None,
    };
    let console = crate::console::start(
        &settings.console,
        store.clone(),
        endpoints.iter().map(|e| e.name.clone()).collect(),
    )
    .await?;
    let timeout = Duration::from_secs(settings.server.request_timeout_secs.max(1));
    let with_metrics = settings.metrics.place()? == MetricsPlace::Server;
    let app = router(state, timeout, with_metrics);
    let (stop_reconciler, stopping) = tokio::sync::watch::channel(false);
    let reconciler = if settings.reconcile.enabled {
        start_reconciler(&settings, &store, stopping.clone())
    } else {
        None
    };
    let dispatcher = if endpoints.is_empty() || !settings.webhook_delivery.in_serve {
        None
    } else {
        start_dispatcher(&settings, &store, endpoints, stopping.clone())
    };
    // Always: on PostgreSQL it makes the event log's months ahead, whether
    // retention is on or not.
    let retention = Some(tokio::spawn(
        Retention::new(store.clone(), settings.retention.clone()).run_daily(stopping),
    ));

    serve_connections(listener, app, &settings.server, shutdown).await;

    if let Some(task) = separate_metrics {
        task.abort();
    }
    if let Some(task) = console {
        task.abort();
    }
    // The rounds in progress may finish; a refund cut off mid-call is safe
    // (its task says a request may have left), and so is a webhook cut off
    // mid-send (its lease runs out and it is sent again: at least once).
    let _ = stop_reconciler.send(true);
    for task in [reconciler, dispatcher, retention].into_iter().flatten() {
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

/// Starts the webhook dispatcher. When it cannot be set up (no CA
/// certificates for HTTPS), the error is logged and the outbox keeps every
/// message until a restart that can send them.
fn start_dispatcher(
    settings: &Settings,
    store: &Store,
    endpoints: Vec<crate::webhooks::Endpoint>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    match Dispatcher::new(store.clone(), endpoints, &settings.webhook_delivery) {
        Ok(dispatcher) => Some(tokio::spawn(dispatcher.run(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }))),
        Err(e) => {
            error!(
                error = %e,
                "webhook dispatcher disabled: messages are kept in the outbox but not sent"
            );
            None
        }
    }
}

/// Starts the reconciler. When it cannot be set up (no CA certificates for
/// HTTPS to FreedomPay, say), the error is logged, the gauge
/// `freedompay_reconciler_running` stays 0, and the receiver goes on serving
/// callbacks: they need no outbound call, and refusing them would lose
/// payments.
fn start_reconciler(
    settings: &Settings,
    store: &Store,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    match Reconciler::new(settings, store.clone()) {
        Ok(reconciler) => {
            metrics::gauge!(RECONCILER_RUNNING).set(1.0);
            Some(tokio::spawn(async move {
                reconciler
                    .run(async move {
                        let _ = stopping.wait_for(|stop| *stop).await;
                    })
                    .await;
                metrics::gauge!(RECONCILER_RUNNING).set(0.0);
            }))
        }
        Err(e) => {
            metrics::gauge!(RECONCILER_RUNNING).set(0.0);
            error!(
                error = %e,
                "reconciler disabled: callbacks are still served, but missed results are not queried and automatic refunds are not sent"
            );
            None
        }
    }
}

async fn serve_connections<F>(
    listener: TcpListener,
    app: Router,
    server: &ServerSettings,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    // HTTP/1.1 only (see the module docs). hyper's own HTTP/1 connection
    // starts its header deadline when first polled, right after accept; the
    // version-sniffing `auto` builder would first wait, without a deadline,
    // for the bytes that tell HTTP/1 from HTTP/2, which let a silent
    // connection hold its slot for ever.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(server.header_read_timeout_secs.max(1)));
    let connections = Arc::new(Semaphore::new(server.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Backpressure: at the cap, stop accepting until a connection closes.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; were it, stop accepting.
                Err(_) => break,
            },
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
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
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

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives
/// while the first connections are being accepted must stop the service
/// gracefully, not kill it with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let terminate = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                () = terminate => {}
                () = interrupt => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
