//! The payer's browser coming back (success and failure URLs). Verified like a
//! callback and logged as an event, but never a change of payment state: the
//! result callback is the only proof of payment. The page shown to the payer
//! names the order with any card number in it masked (`domain::pan`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::callback::read_and_verify;
use super::{AppState, reply};
use crate::domain::pan::mask_card_numbers;
use crate::domain::task::{NewTask, TaskKind};
use crate::domain::{Callback, CallbackKind};
use crate::store::RedirectRecord;
use crate::telemetry::metrics::REDIRECT_REPEATS;
use crate::untrusted::Untrusted;

pub async fn handle(
    State(app): State<Arc<AppState>>,
    kind: CallbackKind,
    request: Request,
) -> Response {
    let verified = match read_and_verify(&app, kind, request).await {
        Ok(v) => v,
        Err(response) => {
            let status = response.status();
            return reply::page(status, "Payment", "This link is not valid.");
        }
    };
    let callback = match verified.parse(kind) {
        Ok(c) => c,
        Err(_) => {
            return reply::page(
                StatusCode::BAD_REQUEST,
                "Payment",
                "This link is not valid.",
            );
        }
    };
    let delivery = verified.delivery(callback.clone());
    // The payer is not kept waiting on the log: if the database is down the
    // page is still shown.
    // Recorded once per payment and outcome; repeats are only counted.
    match app.store.record_redirect(&delivery).await {
        Ok(RedirectRecord::Repeat) => {
            metrics::counter!(REDIRECT_REPEATS, "endpoint" => kind.as_str()).increment(1);
        }
        Ok(RedirectRecord::First(_)) => {}
        Err(e) => warn!(endpoint = kind.as_str(), error = %e, "redirect not logged"),
    }
    if let (Some(after), Some(order_id)) = (app.reconcile_redirects_after, &callback.order_id) {
        schedule_status_query(&app, &callback.merchant_id, order_id, after).await;
    }
    let target = match kind {
        CallbackKind::Success => app.success_url.as_deref(),
        _ => app.failure_url.as_deref(),
    };
    match target.and_then(|url| redirect_url(url, &callback)) {
        Some(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        None => {
            let order = mask_card_numbers(callback.order_id.as_deref().unwrap_or(""));
            let (title, text) = match kind {
                CallbackKind::Success => (
                    "Thank you",
                    format!(
                        "Your payment for order {order} is being confirmed. You can close this page."
                    ),
                ),
                _ => (
                    "Payment not completed",
                    format!("The payment for order {order} did not go through."),
                ),
            };
            reply::page(StatusCode::OK, title, &text)
        }
    }
}

/// The payer is back: if no result arrives for the order, the reconciler
/// asks FreedomPay about it `after` seconds from now.
async fn schedule_status_query(app: &AppState, merchant_id: &str, order_id: &str, after: u64) {
    let task = NewTask {
        merchant_id,
        kind: TaskKind::OrderStatus,
        subject_id: order_id,
        task_key: "",
        stage: None,
        method: None,
        request_id: None,
        amount: None,
        confirm_total: None,
        due_in_secs: after,
    };
    if let Err(e) = app.store.schedule_task(&task).await {
        warn!(order_id = %Untrusted(order_id), error = %e, "status query after the redirect not scheduled");
    }
}

/// The configured URL with `order_id` and `payment_id` appended.
fn redirect_url(base: &str, callback: &Callback) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(order_id) = &callback.order_id {
            query.append_pair("order_id", order_id);
        }
        if let Some(payment_id) = &callback.payment_id {
            query.append_pair("payment_id", payment_id);
        }
    }
    Some(url.into())
}
