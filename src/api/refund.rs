//! Refunds through each of FreedomPay's refund APIs. Whatever the method, a
//! refund is only *requested* here; it counts as done when a signed status
//! shows the money returned (see `reconcile::refunds`).
//!
//! - `revoke`: `revoke.php`, signed form in, signed XML out (§4.2).
//! - `superapp`: `implement/superapp/refund`, JSON with `pg_sig` (§4.5).
//! - `v5`: `v5/g2g/edit` with `X-Action: gateway.payment.refund`, a detached
//!   JWS and `X-Request-Id` (§4.4).
//! - `card_api`: `v5/card-api/transaction/refund` with a `request_id` in the
//!   body; its signature scheme is not documented, the v5 JWS is assumed (§4.6).
//!
//! Only `v5` and `card_api` are idempotent on FreedomPay's side (a repeated
//! request id returns the first answer). For the others the caller must find
//! out whether an earlier attempt went through before sending again.

use crate::protocol::answer::fresh_salt;
use crate::protocol::json::json_to_message;
use crate::protocol::{Amount, Message, sign};

use super::ApiClient;
use super::client::ApiError;
use super::jws::{self, Algorithm};

/// How a merchant's refunds are sent (`merchants[].refund_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundMethod {
    Revoke,
    SuperApp,
    V5,
    CardApi,
}

impl RefundMethod {
    pub const ALL: [RefundMethod; 4] = [
        RefundMethod::Revoke,
        RefundMethod::SuperApp,
        RefundMethod::V5,
        RefundMethod::CardApi,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// The name in configuration and in `outbound_tasks.method`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundMethod::Revoke => "revoke",
            RefundMethod::SuperApp => "superapp",
            RefundMethod::V5 => "v5",
            RefundMethod::CardApi => "card_api",
        }
    }

    /// FreedomPay answers a repeated request id with the first answer, so a
    /// retry can never refund twice.
    pub fn is_idempotent(self) -> bool {
        matches!(self, RefundMethod::V5 | RefundMethod::CardApi)
    }
}

/// One refund to request.
#[derive(Clone, Copy, Debug)]
pub struct RefundRequest<'a> {
    pub method: RefundMethod,
    /// Ours, fixed before the first attempt and the same on every retry.
    pub request_id: &'a str,
    pub payment_id: &'a str,
    /// The merchant's order id (the SuperApp refund names the order).
    pub order_id: &'a str,
    pub amount: Amount,
}

/// FreedomPay took the refund request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundAccepted {
    /// FreedomPay's id of the refund, when a signed answer gave one.
    pub refund_id: Option<String>,
}

const SUPERAPP_PATH: &str = "implement/superapp/refund";
/// The SuperApp refund's script name for `pg_sig` (the last path segment).
const SUPERAPP_SCRIPT: &str = "refund";
const V5_EDIT_PATH: &str = "/v5/g2g/edit";
const CARD_API_REFUND_PATH: &str = "/v5/card-api/transaction/refund";

impl ApiClient {
    /// Requests `refund` with its method.
    pub async fn send_refund(
        &self,
        refund: &RefundRequest<'_>,
    ) -> Result<RefundAccepted, ApiError> {
        match refund.method {
            RefundMethod::Revoke => {
                let response = self.refund(refund.payment_id, Some(refund.amount)).await?;
                Ok(RefundAccepted {
                    refund_id: response.get("pg_refund_payment_id").map(str::to_owned),
                })
            }
            RefundMethod::SuperApp => self.superapp_refund(refund).await,
            RefundMethod::V5 => {
                let body = format!(
                    r#"{{"id":{},"amount":{}}}"#,
                    json_string(refund.payment_id),
                    refund.amount.canonical()
                );
                let headers = [("x-action", "gateway.payment.refund".to_owned())];
                self.jws_call(V5_EDIT_PATH, refund.request_id, &headers, body)
                    .await
            }
            RefundMethod::CardApi => {
                let body = format!(
                    r#"{{"request_id":{},"transaction_id":{},"amount":{},"description":{}}}"#,
                    json_string(refund.request_id),
                    json_string(refund.payment_id),
                    refund.amount.canonical(),
                    json_string("Refund")
                );
                self.jws_call(CARD_API_REFUND_PATH, refund.request_id, &[], body)
                    .await
            }
        }
    }

    /// The SuperApp refund: JSON fields signed with `pg_sig`, answered in JSON
    /// with `pg_sig`, verified by the same rule before it is believed.
    async fn superapp_refund(
        &self,
        refund: &RefundRequest<'_>,
    ) -> Result<RefundAccepted, ApiError> {
        let mut fields = Message::new();
        fields.push("pg_merchant_id", self.merchant_id());
        fields.push("pg_order_id", refund.order_id);
        fields.push("pg_refund_amount", refund.amount.canonical());
        fields.push("pg_salt", fresh_salt());
        let sig = sign(SUPERAPP_SCRIPT, &fields, self.key());
        fields.push("pg_sig", sig);
        let body = serde_json::Value::Object(
            fields
                .to_pairs()
                .into_iter()
                .map(|(n, v)| (n, serde_json::Value::String(v)))
                .collect(),
        )
        .to_string();
        let (_, answer) = self
            .post(
                SUPERAPP_SCRIPT,
                SUPERAPP_PATH,
                &[("content-type", "application/json".to_owned())],
                body,
            )
            .await?;
        let message = json_to_message(&answer).map_err(|e| ApiError::Malformed {
            script: SUPERAPP_SCRIPT.into(),
            reason: e.to_string(),
        })?;
        let message = self.believe(SUPERAPP_SCRIPT, message)?;
        if message.get("pg_error_code").is_some_and(|c| c != "0") {
            return Err(ApiError::Api {
                script: SUPERAPP_SCRIPT.into(),
                code: message.get("pg_error_code").unwrap_or("").to_owned(),
                description: message.get("pg_error_description").unwrap_or("").to_owned(),
            });
        }
        Ok(RefundAccepted {
            refund_id: message.get("pg_payment_id").map(str::to_owned),
        })
    }

    /// A v5 call: the JSON body signed with a detached HS512 JWS, the request
    /// id in `X-Request-Id`. A signed answer is verified and believed; an
    /// answer without a signature only tells that the request arrived, and its
    /// contents are not used.
    async fn jws_call(
        &self,
        path: &str,
        request_id: &str,
        extra: &[(&str, String)],
        body: String,
    ) -> Result<RefundAccepted, ApiError> {
        let script = path.trim_start_matches('/');
        let header = jws::header_json(path, self.merchant_id(), Algorithm::Hs512);
        let signature =
            jws::detached_signature(&header, body.as_bytes(), self.key(), Algorithm::Hs512);
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("accept", "application/json".to_owned()),
            ("x-request-id", request_id.to_owned()),
            ("x-jws-signature", signature),
        ];
        headers.extend(extra.iter().cloned());
        let (response_headers, answer) = self.post(script, path, &headers, body).await?;
        let Some(token) = response_headers
            .get("x-jws-signature")
            .and_then(|v| v.to_str().ok())
        else {
            tracing::warn!(
                path,
                request_id,
                "refund answer carries no signature; awaiting a signed status"
            );
            return Ok(RefundAccepted { refund_id: None });
        };
        jws::verify_detached(token, answer.as_bytes(), self.key()).map_err(|_| {
            ApiError::Signature {
                script: script.to_owned(),
            }
        })?;
        let json: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| ApiError::Malformed {
                script: script.to_owned(),
                reason: e.to_string(),
            })?;
        let request_status = response_headers
            .get("x-request-status")
            .and_then(|v| v.to_str().ok())
            .or_else(|| json.get("status").and_then(|s| s.as_str()));
        if request_status == Some("error") {
            let text = |name: &str| {
                json.get(name)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default()
            };
            return Err(ApiError::Api {
                script: script.to_owned(),
                code: text("code"),
                description: text("message"),
            });
        }
        let refund_id = json
            .pointer("/refund_payment/id")
            .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned));
        Ok(RefundAccepted { refund_id })
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
