//! The read-only operator console: server-rendered HTML pages (no
//! JavaScript) on a listener of its own, never the callback port.
//!
//! - `/`: the last 24 hours of deliveries (by kind and answer, repeats,
//!   conflicts, flagged events, a chart per hour), payments needing a
//!   refund, failed or overdue tasks, and, since the process started, the
//!   signature failures and database failures it counted in its metrics
//!   ([`process_counts`]); each stored number links to the event list;
//! - `/events?since=24h&kind=&answer=&duplicate=&conflict=&flagged=`: the
//!   events behind a number, newest first, at most
//!   [`EVENT_LIST_LIMIT`](crate::store::EVENT_LIST_LIMIT);
//! - `/search?q=`: orders and payments by order id, payment id or card mask
//!   suffix; a `q` longer than [`SEARCH_MAX_CHARS`] is refused (400);
//! - `/order/{merchant}/{order_id}` and `/payment/{merchant}/{payment_id}`
//!   (or `/order/{merchant}?id=` and `/payment/{merchant}?id=`, how the
//!   pages link ids a browser cannot put in a path, `.` and `..`): the
//!   timeline of one order, as `history` prints it, with each event's
//!   received fields (masked as stored) behind a disclosure, and each
//!   event's webhook messages with their deliveries' states;
//! - `/webhooks`: per endpoint, the deliveries delivered and dead in the
//!   last 24 hours, those pending now and the oldest one's age, and the
//!   dead deliveries, newest first, at most
//!   [`DEAD_LIST_LIMIT`](crate::store::DEAD_LIST_LIMIT). Replaying stays on
//!   the command line (`webhooks replay`), and the page says so.
//!
//! Every request needs the token of `console.token_file` ([`auth`]); every
//! response says `Cache-Control: no-store`. Only GET (and HEAD) is routed,
//! and no page writes anything.

pub mod auth;
mod pages;
pub mod process_counts;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ConfigError, ConsoleSettings};
use crate::store::{EventFilter, HistoryKey, Store};
use crate::untrusted::Untrusted;
use auth::Credentials;
use process_counts::ProcessCounts;

struct Console {
    store: Store,
    credentials: Credentials,
    /// The configured `[[webhooks]]` endpoints' names, in config order.
    endpoints: Vec<String>,
}

/// Starts the console when `console.listen` is set: checks the settings,
/// binds, and serves in a task of its own. The address must be loopback
/// (reach it from elsewhere through an SSH tunnel or a proxy that adds TLS).
/// `endpoints`: the configured webhook endpoints' names, for the Webhooks
/// page to show each (and to mark those the outbox names but no longer
/// configured).
pub async fn start(
    settings: &ConsoleSettings,
    store: Store,
    endpoints: Vec<String>,
) -> Result<Option<JoinHandle<()>>, ConfigError> {
    let Some(listen) = settings.listen.as_deref() else {
        return Ok(None);
    };
    let address: SocketAddr = listen.parse().map_err(|e| {
        ConfigError::new(
            "console.listen",
            format!("{listen:?} is not an address: {e}"),
        )
    })?;
    if !address.ip().is_loopback() {
        return Err(ConfigError::new(
            "console.listen",
            format!("{listen:?} is not a loopback address (the console is for this host only)"),
        ));
    }
    let Some(token_file) = settings.token_file.as_deref() else {
        return Err(ConfigError::new(
            "console.token_file",
            "required when console.listen is set",
        ));
    };
    let credentials = Credentials::from_file(token_file)?;
    let listener = TcpListener::bind(address).await.map_err(|e| {
        ConfigError::new("console.listen", format!("cannot listen on {listen}: {e}"))
    })?;
    if let Ok(local) = listener.local_addr() {
        info!(address = %local, "console listening");
    }
    let app = router(store, credentials, endpoints);
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "console stopped");
        }
    })))
}

/// The console's routes behind authentication.
pub fn router(store: Store, credentials: Credentials, endpoints: Vec<String>) -> Router {
    let console = Arc::new(Console {
        store,
        credentials,
        endpoints,
    });
    Router::new()
        .route("/", get(overview))
        .route("/webhooks", get(webhooks))
        .route("/search", get(search))
        .route("/events", get(events))
        .route("/order/{merchant}/{order_id}", get(order_timeline))
        .route("/payment/{merchant}/{payment_id}", get(payment_timeline))
        .route("/order/{merchant}", get(order_timeline_by_query))
        .route("/payment/{merchant}", get(payment_timeline_by_query))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            authenticate,
        ))
        .layer(middleware::from_fn(headers))
        .with_state(console)
}

/// Lets a request through only with the token.
async fn authenticate(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    let accepted = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| console.credentials.accepts(v));
    if accepted {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"freedompay-receiver console\", charset=\"UTF-8\"",
            )],
            "authentication required\n",
        )
            .into_response()
    }
}

/// On every answer: never cached, never framed, no scripts, no referrer.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A storage failure as a page: 503 (try again) when the database did not
/// answer; 500 naming the failure when a stored value cannot be read, which
/// trying again will not change.
fn unavailable(error: &crate::store::StoreError) -> Response {
    if error.is_damaged_data() {
        warn!(error = %Untrusted(&error.to_string()), "console query read damaged data");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(pages::error_page(&format!("A stored row cannot be read: {error}")).into_string()),
        )
            .into_response();
    }
    warn!(error = %error, "console query failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(pages::error_page("The database did not answer; try again.").into_string()),
    )
        .into_response()
}

async fn overview(State(console): State<Arc<Console>>) -> Response {
    match console.store.overview().await {
        Ok(overview) => {
            Html(pages::overview(&overview, &ProcessCounts::read()).into_string()).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

async fn webhooks(State(console): State<Arc<Console>>) -> Response {
    match console.store.webhook_overview().await {
        Ok(overview) => {
            Html(pages::webhooks(&overview, &console.endpoints).into_string()).into_response()
        }
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, serde::Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// The longest search text, in characters: longer than any id or card
/// mask, and short enough that no backend finds the pattern too complex
/// (SQLite refuses a LIKE pattern of about 50,000 bytes).
pub const SEARCH_MAX_CHARS: usize = 256;

async fn search(State(console): State<Arc<Console>>, Query(query): Query<SearchQuery>) -> Response {
    if query.q.chars().count() > SEARCH_MAX_CHARS {
        let message = format!(
            "The search text is longer than {SEARCH_MAX_CHARS} characters; \
             search by an order id, a payment id or the end of a card number."
        );
        return (
            StatusCode::BAD_REQUEST,
            Html(pages::error_page(&message).into_string()),
        )
            .into_response();
    }
    match console.store.search(&query.q).await {
        Ok(results) => Html(pages::search(&query.q, &results).into_string()).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// The event list's query string; absent and empty values do not filter.
#[derive(Debug, Default, serde::Deserialize)]
struct EventsQuery {
    since: Option<String>,
    kind: Option<String>,
    /// An answer status, or `none` for events without an answer.
    answer: Option<String>,
    duplicate: Option<String>,
    conflict: Option<String>,
    flagged: Option<String>,
}

/// The longest window the event list accepts, in hours (30 days).
const MAX_SINCE_HOURS: i64 = 720;

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, String> {
        fn given(value: &Option<String>) -> Option<&str> {
            value.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        fn flag(name: &str, value: &Option<String>) -> Result<Option<bool>, String> {
            match given(value) {
                None => Ok(None),
                Some("1") => Ok(Some(true)),
                Some("0") => Ok(Some(false)),
                Some(other) => Err(format!("{name} must be 1 or 0, not {other:?}")),
            }
        }
        let since_hours = match given(&self.since) {
            None => 24,
            Some(since) => since
                .strip_suffix('h')
                .and_then(|hours| hours.parse::<i64>().ok())
                .filter(|hours| (1..=MAX_SINCE_HOURS).contains(hours))
                .ok_or_else(|| {
                    format!("since must be a number of hours from 1h to {MAX_SINCE_HOURS}h, not {since:?}")
                })?,
        };
        Ok(EventFilter {
            since_hours,
            kind: given(&self.kind).map(str::to_owned),
            answer: given(&self.answer).map(|a| (a != "none").then(|| a.to_owned())),
            duplicate: flag("duplicate", &self.duplicate)?,
            conflict: flag("conflict", &self.conflict)? == Some(true),
            flagged: flag("flagged", &self.flagged)? == Some(true),
        })
    }
}

async fn events(State(console): State<Arc<Console>>, Query(query): Query<EventsQuery>) -> Response {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(pages::error_page(&message).into_string()),
            )
                .into_response();
        }
    };
    match console.store.events(&filter).await {
        Ok(rows) => Html(pages::events(&filter, &rows).into_string()).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn order_timeline(
    State(console): State<Arc<Console>>,
    Path((merchant, order_id)): Path<(String, String)>,
) -> Response {
    timeline(&console, &merchant, HistoryKey::Order(&order_id)).await
}

async fn payment_timeline(
    State(console): State<Arc<Console>>,
    Path((merchant, payment_id)): Path<(String, String)>,
) -> Response {
    timeline(&console, &merchant, HistoryKey::Payment(&payment_id)).await
}

/// The id of a timeline given in the query string.
#[derive(Debug, serde::Deserialize)]
struct IdQuery {
    id: String,
}

async fn order_timeline_by_query(
    State(console): State<Arc<Console>>,
    Path(merchant): Path<String>,
    Query(query): Query<IdQuery>,
) -> Response {
    timeline(&console, &merchant, HistoryKey::Order(&query.id)).await
}

async fn payment_timeline_by_query(
    State(console): State<Arc<Console>>,
    Path(merchant): Path<String>,
    Query(query): Query<IdQuery>,
) -> Response {
    timeline(&console, &merchant, HistoryKey::Payment(&query.id)).await
}

async fn timeline(console: &Console, merchant: &str, key: HistoryKey<'_>) -> Response {
    match console.store.history(merchant, key).await {
        Ok(Some(history)) => Html(pages::timeline(&history).into_string()).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(pages::error_page("Nothing is stored about this order or payment.").into_string()),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}
