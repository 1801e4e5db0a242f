//! The HTTP face of the receiver: the callback endpoints at their configured
//! paths (GET and POST only; 405 with `Allow: GET, POST` to anything else),
//! health checks, body limits and timeouts.

mod callback;
mod health;
mod metrics_endpoint;
pub mod network;
mod redirect;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::routing::{any, get};
use tower_http::timeout::TimeoutLayer;

use crate::auth::Merchants;
use crate::config::{ConfigError, Settings};
use crate::domain::{CallbackKind, Rules};
use crate::protocol::{VerifyOptions, script_name};
use crate::store::Store;
use crate::telemetry::request::{EndpointNames, observe};

/// Everything a request handler needs, shared by all requests.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub merchants: Merchants,
    pub rules: Arc<Rules>,
    pub verify_options: VerifyOptions,
    pub max_body_bytes: usize,
    pub success_url: Option<String>,
    pub failure_url: Option<String>,
    pub network: network::NetworkPolicy,
    /// When set, a redirect back schedules a status query of its order this
    /// many seconds later (reconciliation of a result that never comes).
    pub reconcile_redirects_after: Option<u64>,
    endpoints: Vec<Endpoint>,
}

/// One callback endpoint: its path and the script name its signatures use.
#[derive(Clone, Debug)]
struct Endpoint {
    kind: CallbackKind,
    path: String,
    script: String,
}

impl AppState {
    pub fn new(settings: &Settings, store: Store) -> Result<AppState, ConfigError> {
        // Paths were validated with the settings (`config::validate`).
        let endpoints = CallbackKind::ALL
            .into_iter()
            .map(|kind| {
                let path = settings.endpoints.path(kind);
                let script = settings
                    .endpoints
                    .script_names
                    .get(kind)
                    .unwrap_or_else(|| script_name(path));
                Endpoint {
                    kind,
                    path: path.to_owned(),
                    script: script.to_owned(),
                }
            })
            .collect();
        Ok(AppState {
            store,
            merchants: Merchants::from_settings(&settings.merchants)?,
            rules: Arc::new(Rules::from_settings(&settings.rules)?),
            verify_options: VerifyOptions {
                allow_variants: settings.signature.allow_variants,
            },
            max_body_bytes: settings.server.max_body_bytes,
            success_url: settings.redirect.success_url.clone(),
            failure_url: settings.redirect.failure_url.clone(),
            reconcile_redirects_after: settings
                .reconcile
                .enabled
                .then_some(settings.reconcile.after_secs),
            network: network::NetworkPolicy::new(&settings.server),
            endpoints,
        })
    }

    /// The script name signatures on `kind`'s endpoint use.
    pub fn script(&self, kind: CallbackKind) -> &str {
        self.endpoints
            .iter()
            .find(|e| e.kind == kind)
            .map_or("", |e| e.script.as_str())
    }
}

/// The router: each callback kind at its configured path, health checks, and
/// `/metrics` unless it is served on an address of its own.
pub fn router(state: Arc<AppState>, request_timeout: Duration, with_metrics: bool) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if with_metrics {
        router = router.route("/metrics", get(metrics_endpoint::metrics));
    }
    for endpoint in &state.endpoints {
        let kind = endpoint.kind;
        let handler = move |s, r: Request| async move {
            // GET and POST only: FreedomPay sends those, and any other method
            // (HEAD included) changes nothing.
            if r.method() != Method::GET && r.method() != Method::POST {
                return reply::method_not_allowed();
            }
            if kind.is_redirect() {
                redirect::handle(s, kind, r).await
            } else {
                callback::handle(s, kind, r).await
            }
        };
        router = router.route(&endpoint.path, any(handler));
    }
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// `/metrics` alone, for `metrics.listen`.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_endpoint::metrics))
        .with_state(state)
}

/// The endpoint label of a request path, for logs and metrics.
impl EndpointNames for AppState {
    fn endpoint_name(&self, path: &str) -> &'static str {
        if let Some(endpoint) = self.endpoints.iter().find(|e| e.path == path) {
            return endpoint.kind.as_str();
        }
        match path {
            "/healthz" => "healthz",
            "/readyz" => "readyz",
            "/metrics" => "metrics",
            _ => "unknown",
        }
    }
}
