//! The Merchant API client: POST a signed form to `<base>/<script>`, read the
//! signed XML `<response>`, verify it with the same script name, and turn
//! `pg_status=error` into a typed error. Calls are paced: FreedomPay asks for
//! 1.5 to 2 s between consecutive payment API requests (§4).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::protocol::answer::fresh_salt;
use crate::protocol::encode::to_urlencoded;
use crate::protocol::{Amount, Message, VerifyOptions, parse_answer, script_name, sign, verify};

/// Why a call did not give a believable answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("network error calling {script}: {source}")]
    Network {
        script: String,
        source: reqwest::Error,
    },
    #[error("{script} answered HTTP {status}")]
    Http { script: String, status: u16 },
    #[error("{script} answered something that is not a FreedomPay response: {reason}")]
    Malformed { script: String, reason: String },
    #[error("the signature of the {script} response does not verify; the response is ignored")]
    Signature { script: String },
    #[error("{script} refused: {code} {description}")]
    Api {
        script: String,
        code: String,
        description: String,
    },
}

/// The client of one merchant.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    merchant_id: String,
    key: SecretString,
    pacing: Duration,
    last_call: Mutex<Option<Instant>>,
}

/// What `get_status3.php` says about a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentStatusReport {
    pub payment_id: Option<String>,
    /// `pg_payment_status`: `success`, `failed`, `incomplete`, `partial`, `pending`…
    pub payment_status: String,
    pub amount: Option<Amount>,
    pub currency: Option<String>,
    pub captured: Option<bool>,
    /// The refunded total (FreedomPay writes it negative; this is its magnitude).
    pub refund_amount: Option<Amount>,
    /// Every field of the verified response.
    pub response: Message,
}

impl ApiClient {
    /// `base_url` is the API host (`https://api.freedompay.kz`, the test host,
    /// or any URL in tests); `pacing` the least time between two calls.
    pub fn new(
        base_url: &str,
        merchant_id: &str,
        key: SecretString,
        timeout: Duration,
        pacing: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        ApiClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            merchant_id: merchant_id.to_owned(),
            key,
            pacing,
            last_call: Mutex::new(None),
        }
    }

    /// Calls `path` (e.g. `get_status3.php`, `g2g/payout_status`) with `fields`
    /// plus `pg_merchant_id`, a fresh `pg_salt` and the signature; returns the
    /// verified response when its `pg_status` is not `error`.
    pub async fn call(&self, path: &str, fields: &[(&str, String)]) -> Result<Message, ApiError> {
        let script = script_name(path).to_owned();
        let mut request = Message::new();
        request.push("pg_merchant_id", self.merchant_id.clone());
        for (name, value) in fields {
            request.push(*name, value.clone());
        }
        request.push("pg_salt", fresh_salt());
        let sig = sign(&script, &request, self.key.expose_secret());
        request.push("pg_sig", sig);

        self.wait_for_turn().await;
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(to_urlencoded(&request))
            .send()
            .await
            .map_err(|source| ApiError::Network {
                script: script.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ApiError::Http { script, status });
        }
        let body = response.text().await.map_err(|source| ApiError::Network {
            script: script.clone(),
            source,
        })?;
        let answer = parse_answer(&body).map_err(|e| ApiError::Malformed {
            script: script.clone(),
            reason: e.to_string(),
        })?;
        let strict = VerifyOptions {
            allow_variants: false,
        };
        if verify(
            &script,
            &answer.message,
            &[self.key.expose_secret()],
            strict,
        )
        .is_err()
        {
            return Err(ApiError::Signature { script });
        }
        if answer.message.get("pg_status") == Some("error") {
            let field = |name| answer.message.get(name).unwrap_or("").to_owned();
            return Err(ApiError::Api {
                script,
                code: field("pg_error_code"),
                description: field("pg_error_description"),
            });
        }
        Ok(answer.message)
    }

    /// Keeps FreedomPay's advised distance between two calls.
    async fn wait_for_turn(&self) {
        let mut last = self.last_call.lock().await;
        if let Some(at) = *last {
            let next = at + self.pacing;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// `get_status3.php` for a payment (by FreedomPay id, else by order id).
    pub async fn payment_status(
        &self,
        payment_id: Option<&str>,
        order_id: Option<&str>,
    ) -> Result<PaymentStatusReport, ApiError> {
        let mut fields = Vec::new();
        if let Some(id) = payment_id {
            fields.push(("pg_payment_id", id.to_owned()));
        }
        if let Some(id) = order_id {
            fields.push(("pg_order_id", id.to_owned()));
        }
        let response = self.call("get_status3.php", &fields).await?;
        let malformed = |reason: String| ApiError::Malformed {
            script: "get_status3.php".into(),
            reason,
        };
        let amount = |name: &str| -> Result<Option<Amount>, ApiError> {
            response
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.trim_start_matches('-')
                        .parse::<Amount>()
                        .map_err(|e| malformed(format!("{name}: {e}")))
                })
                .transpose()
        };
        Ok(PaymentStatusReport {
            payment_id: response.get("pg_payment_id").map(str::to_owned),
            payment_status: response
                .get("pg_payment_status")
                .ok_or_else(|| malformed("pg_payment_status is missing".into()))?
                .to_owned(),
            amount: amount("pg_amount")?,
            currency: response.get("pg_currency").map(str::to_owned),
            captured: response.get("pg_captured").map(|v| v == "1"),
            refund_amount: amount("pg_refund_amount")?,
            response: response.clone(),
        })
    }

    /// `revoke.php`: refund a payment, fully (no amount) or partly.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Option<Amount>,
    ) -> Result<Message, ApiError> {
        let mut fields = vec![("pg_payment_id", payment_id.to_owned())];
        if let Some(amount) = amount {
            fields.push(("pg_refund_amount", amount.canonical()));
        }
        self.call("revoke.php", &fields).await
    }

    /// `cancel.php`: cancel a two-step payment before it is captured.
    pub async fn cancel(&self, payment_id: &str) -> Result<Message, ApiError> {
        self.call("cancel.php", &[("pg_payment_id", payment_id.to_owned())])
            .await
    }

    /// `do_capture.php`: capture (clear) a two-step payment, fully or partly.
    pub async fn capture(
        &self,
        payment_id: &str,
        amount: Option<Amount>,
    ) -> Result<Message, ApiError> {
        let mut fields = vec![("pg_payment_id", payment_id.to_owned())];
        if let Some(amount) = amount {
            fields.push(("pg_clearing_amount", amount.canonical()));
        }
        self.call("do_capture.php", &fields).await
    }

    /// `g2g/payout_status2`: the state of a payout (`success`, `error`, `process`).
    pub async fn payout_status(&self, order_id: &str) -> Result<Message, ApiError> {
        self.call(
            "g2g/payout_status2",
            &[("pg_order_id", order_id.to_owned())],
        )
        .await
    }

    /// `g2g/balance_status`: the merchant's balance in `currency`.
    pub async fn balance(&self, currency: &str) -> Result<Message, ApiError> {
        self.call(
            "g2g/balance_status",
            &[("pg_currency", currency.to_owned())],
        )
        .await
    }
}
