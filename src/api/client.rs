//! The Merchant API client: POST a signed form to `<base>/<script>`, read the
//! signed XML `<response>`, verify it with the same script name, and turn
//! `pg_status=error` into a typed error. Calls are paced: FreedomPay asks for
//! 1.5 to 2 s between consecutive payment API requests (§4).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::{ApiSettings, ConfigError, MerchantSettings};
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

/// The HTTP client could not be set up: usually no CA certificates for TLS
/// (install `ca-certificates`, or point `SSL_CERT_FILE` at a bundle).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {reason}")]
pub struct HttpClientError {
    /// The error and its causes, on one line.
    pub reason: String,
}

/// Builds `builder`, or says why not on one line (reqwest's own message is
/// only "builder error"; the cause, such as "No CA certificates were loaded
/// from the system", is in its source chain).
pub fn build_http_client(
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, HttpClientError> {
    builder.build().map_err(|e| HttpClientError {
        reason: with_causes(&e),
    })
}

/// `error` and each of its causes, joined with ": " on one line.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a merchant's API client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Http(#[from] HttpClientError),
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

/// Where a payout goes.
#[derive(Clone, Copy, Debug)]
pub enum PayoutDestination<'a> {
    /// A card number (`g2g/p2p2nonreg`).
    Card(&'a str),
    /// A card registered with FreedomPay (`g2g/reg2reg`).
    Token(&'a str),
}

/// A payout to send.
#[derive(Clone, Copy, Debug)]
pub struct PayoutRequest<'a> {
    pub order_id: &'a str,
    pub amount: Amount,
    pub currency: Option<&'a str>,
    pub description: &'a str,
    /// Where FreedomPay sends the payout notify (our payout endpoint's URL).
    pub post_link: &'a str,
    /// Required by `reg2reg`: the user the card token belongs to.
    pub user_id: Option<&'a str>,
    pub destination: PayoutDestination<'a>,
}

/// What `get_status3.php` says about a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentStatusReport {
    pub payment_id: Option<String>,
    pub order_id: Option<String>,
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
    ) -> Result<Self, HttpClientError> {
        let http = build_http_client(reqwest::Client::builder().timeout(timeout))?;
        Ok(ApiClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            merchant_id: merchant_id.to_owned(),
            key,
            pacing,
            last_call: Mutex::new(None),
        })
    }

    /// The client of `merchant` with the `[api]` settings.
    pub fn from_settings(
        api: &ApiSettings,
        merchant: &MerchantSettings,
    ) -> Result<Self, ClientSetupError> {
        Ok(Self::new(
            &api.base_url,
            &merchant.id,
            merchant.payment_key()?,
            Duration::from_secs(api.timeout_secs.max(1)),
            Duration::from_millis(api.pacing_ms),
        )?)
    }

    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    pub(super) fn key(&self) -> &str {
        self.key.expose_secret()
    }

    /// POSTs `body` to `path` in its turn, and returns the headers and body of
    /// an HTTP 200 answer. `script` names the call in errors.
    pub(super) async fn post(
        &self,
        script: &str,
        path: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<(reqwest::header::HeaderMap, String), ApiError> {
        self.wait_for_turn().await;
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let mut request = self.http.post(&url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let network = |source| ApiError::Network {
            script: script.to_owned(),
            source,
        };
        let response = request.send().await.map_err(network)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ApiError::Http {
                script: script.to_owned(),
                status,
            });
        }
        let headers = response.headers().clone();
        let body = response.text().await.map_err(network)?;
        Ok((headers, body))
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

        let (_, body) = self
            .post(
                &script,
                path,
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                )],
                to_urlencoded(&request),
            )
            .await?;
        let answer = parse_answer(&body).map_err(|e| ApiError::Malformed {
            script: script.clone(),
            reason: e.to_string(),
        })?;
        self.believe(&script, answer.message)
    }

    /// The response, once its `pg_sig` verifies with the called script's name
    /// and our key (strictly: no tolerated variants), and its `pg_status` is
    /// not `error`.
    pub(super) fn believe(&self, script: &str, message: Message) -> Result<Message, ApiError> {
        let strict = VerifyOptions {
            allow_variants: false,
        };
        if verify(script, &message, &[self.key.expose_secret()], strict).is_err() {
            return Err(ApiError::Signature {
                script: script.to_owned(),
            });
        }
        if message.get("pg_status") == Some("error") {
            let field = |name| message.get(name).unwrap_or("").to_owned();
            return Err(ApiError::Api {
                script: script.to_owned(),
                code: field("pg_error_code"),
                description: field("pg_error_description"),
            });
        }
        Ok(message)
    }

    /// Keeps FreedomPay's advised distance between two calls.
    async fn wait_for_turn(&self) {
        let mut last = self.last_call.lock().await;
        let wait = pacing_delay(*last, Instant::now(), self.pacing);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
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
            payment_id: response
                .get("pg_payment_id")
                .filter(|id| !id.is_empty() && *id != "0")
                .map(str::to_owned),
            order_id: response.get("pg_order_id").map(str::to_owned),
            payment_status: response
                .get("pg_payment_status")
                .ok_or_else(|| malformed("pg_payment_status is missing".into()))?
                .to_owned(),
            amount: amount("pg_amount")?,
            currency: response.get("pg_currency").map(str::to_owned),
            captured: response.get("pg_captured").map(|v| v == "1"),
            refund_amount: amount("pg_refund_amount")?,
            response,
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

    /// `g2g/payout_status2`: the state of a payout in `pg_payment_status`
    /// (`success`, `error`, `process`).
    pub async fn payout_status(&self, order_id: &str) -> Result<Message, ApiError> {
        self.call(
            "g2g/payout_status2",
            &[("pg_order_id", order_id.to_owned())],
        )
        .await
    }

    /// `g2g/payout_status`, the older form: the payout state is in `pg_status`.
    pub async fn payout_status_v1(&self, order_id: &str) -> Result<Message, ApiError> {
        self.call("g2g/payout_status", &[("pg_order_id", order_id.to_owned())])
            .await
    }

    /// A payout to a card (`g2g/p2p2nonreg`) or to a registered card token
    /// (`g2g/reg2reg`). The response's `pg_status` is `ok`, or `process` when
    /// the final state is still to come (by notify or status query).
    pub async fn payout(&self, payout: &PayoutRequest<'_>) -> Result<Message, ApiError> {
        let mut fields = vec![
            ("pg_order_id", payout.order_id.to_owned()),
            ("pg_amount", payout.amount.canonical()),
            ("pg_description", payout.description.to_owned()),
            ("pg_post_link", payout.post_link.to_owned()),
        ];
        if let Some(currency) = payout.currency {
            fields.push(("pg_currency", currency.to_owned()));
        }
        if let Some(user) = payout.user_id {
            fields.push(("pg_user_id", user.to_owned()));
        }
        let path = match payout.destination {
            PayoutDestination::Card(card) => {
                fields.push(("pg_payment_to", card.to_owned()));
                "g2g/p2p2nonreg"
            }
            PayoutDestination::Token(token) => {
                fields.push(("pg_card_token_to", token.to_owned()));
                // reg2reg requires a time limit; a day is ample for a payout
                // sent now.
                let limit = chrono::Utc::now() + chrono::Duration::days(1);
                fields.push((
                    "pg_order_time_limit",
                    limit.format("%Y-%m-%d %H:%M:%S").to_string(),
                ));
                "g2g/reg2reg"
            }
        };
        self.call(path, &fields).await
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

/// How long a call must wait so that it leaves at least `pacing` after the
/// previous one (sent at `last`); zero for the first call. Pure, so that the
/// pacing rule is tested without timing real requests.
pub fn pacing_delay(last: Option<Instant>, now: Instant, pacing: Duration) -> Duration {
    last.map_or(Duration::ZERO, |at| {
        (at + pacing).saturating_duration_since(now)
    })
}
