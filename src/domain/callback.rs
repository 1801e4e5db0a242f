//! A verified callback, parsed into typed values ("parse, don't validate"):
//! required fields present, amounts exact, flags read. Of a callback's
//! fields, only this module reads the protocol names (besides `auth`, which
//! finds the merchant and signature first); everything later in the callback
//! path works on these types. FreedomPay's status answers are read by the
//! reconciler (`reconcile::facts`), and the API client writes its requests
//! (`api`).

use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use crate::protocol::signature::Variant;
use crate::protocol::{Amount, Field, Message, Value};

use super::pan::mask_pan;
use super::records::PayoutStatus;

/// The endpoint a callback arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    Check,
    Result,
    Refund,
    Capture,
    Payout,
    Success,
    Failure,
}

impl CallbackKind {
    pub const ALL: [CallbackKind; 7] = [
        CallbackKind::Check,
        CallbackKind::Result,
        CallbackKind::Refund,
        CallbackKind::Capture,
        CallbackKind::Payout,
        CallbackKind::Success,
        CallbackKind::Failure,
    ];

    /// The name used in the `events.kind` column, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::Check => "check",
            CallbackKind::Result => "result",
            CallbackKind::Refund => "refund",
            CallbackKind::Capture => "capture",
            CallbackKind::Payout => "payout",
            CallbackKind::Success => "success",
            CallbackKind::Failure => "failure",
        }
    }

    /// Success and failure are the payer's browser coming back: verified and
    /// logged, never a change of payment state.
    pub fn is_redirect(self) -> bool {
        matches!(self, CallbackKind::Success | CallbackKind::Failure)
    }
}

/// A required field is missing or a field has a value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("required field {0} is missing")]
    Missing(&'static str),
    #[error("field {field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The payment facts that check and result share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentNotice {
    pub order_id: String,
    pub payment_id: String,
    pub amount: Amount,
    pub currency: String,
    pub testing_mode: bool,
}

/// What `pg_result` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultOutcome {
    Succeeded,
    Failed {
        code: Option<String>,
        description: Option<String>,
    },
    /// A value other than 0 or 1 (the schema allows 2; its meaning is unknown).
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultNotice {
    pub payment: PaymentNotice,
    pub outcome: ResultOutcome,
    pub can_reject: bool,
    pub captured: Option<bool>,
    pub card_mask: Option<String>,
    /// When FreedomPay says the payer paid (`pg_payment_date`), if readable,
    /// as written: its time zone is not stated (see [`Rules::payment_date_utc`]).
    ///
    /// [`Rules::payment_date_utc`]: super::Rules::payment_date_utc
    pub payment_date: Option<NaiveDateTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundNotice {
    pub payment_id: String,
    pub order_id: Option<String>,
    /// Absent or zero: a full refund.
    pub amount: Option<Amount>,
    /// FreedomPay's id of the refund itself, when it sends one.
    pub refund_id: Option<String>,
    /// `amount` is the refunded total so far (as the status API reports it),
    /// not the amount of one refund.
    pub cumulative: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureNotice {
    pub payment_id: String,
    pub order_id: Option<String>,
    pub amount: Option<Amount>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutNotice {
    pub order_id: String,
    pub payment_id: Option<String>,
    pub status: PayoutStatus,
    pub amount: Option<Amount>,
    pub card_mask: Option<String>,
}

/// What a callback says, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    Check(PaymentNotice),
    Result(ResultNotice),
    Refund(RefundNotice),
    Capture(CaptureNotice),
    Payout(PayoutNotice),
    Redirect,
    /// Authenticated, but its fields could not be read: recorded, never decided.
    Unparsed,
}

/// Where a callback's facts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// FreedomPay called one of our endpoints.
    Delivery,
    /// We asked FreedomPay's status API (a callback that never came, or the
    /// confirmation of a refund): the verified answer, applied through the
    /// same decisions, recorded as an event of kind `reconcile`.
    Reconcile,
}

/// A verified, parsed callback of one merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The endpoint, or for a reconciled fact the endpoint it stands for.
    pub kind: CallbackKind,
    pub origin: Origin,
    pub merchant_id: String,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub detail: Detail,
}

/// Identifies "the same callback" across FreedomPay's retries: merchant, kind,
/// the payment (or payout order) it is about, and what it says about it.
/// Salt and signature change on every delivery, so they are never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub merchant_id: String,
    /// The `events.kind` of the callback (`reconcile` for reconciled facts).
    pub kind: &'static str,
    pub subject_id: String,
    pub discriminator: String,
}

impl Callback {
    /// Reads the fields a callback of `kind` needs from a verified message.
    pub fn parse(
        kind: CallbackKind,
        merchant_id: &str,
        message: &Message,
    ) -> Result<Self, FieldError> {
        let fields = Fields(message);
        let detail = match kind {
            CallbackKind::Check => Detail::Check(fields.payment_notice()?),
            CallbackKind::Result => Detail::Result(fields.result_notice()?),
            CallbackKind::Refund => Detail::Refund(RefundNotice {
                payment_id: fields.required("pg_payment_id")?.to_owned(),
                order_id: fields.optional("pg_order_id")?.map(str::to_owned),
                amount: fields.refund_amount()?,
                refund_id: fields.optional("pg_refund_payment_id")?.map(str::to_owned),
                cumulative: false,
            }),
            CallbackKind::Capture => Detail::Capture(CaptureNotice {
                payment_id: fields.required("pg_payment_id")?.to_owned(),
                order_id: fields.optional("pg_order_id")?.map(str::to_owned),
                amount: match fields.optional("pg_clearing_amount")? {
                    Some(_) => fields.amount("pg_clearing_amount")?,
                    None => fields.amount("pg_amount")?,
                },
            }),
            CallbackKind::Payout => Detail::Payout(PayoutNotice {
                order_id: fields.required("pg_order_id")?.to_owned(),
                payment_id: fields.optional("pg_payment_id")?.map(str::to_owned),
                status: fields.payout_status()?,
                amount: fields.amount("pg_payment_amount")?,
                card_mask: fields.optional("pg_card_hash")?.map(mask_pan),
            }),
            CallbackKind::Success | CallbackKind::Failure => Detail::Redirect,
        };
        Ok(Callback {
            kind,
            origin: Origin::Delivery,
            merchant_id: merchant_id.to_owned(),
            order_id: fields
                .optional("pg_order_id")
                .ok()
                .flatten()
                .map(str::to_owned),
            payment_id: fields
                .optional("pg_payment_id")
                .ok()
                .flatten()
                .map(str::to_owned),
            detail,
        })
    }

    /// An authenticated delivery whose fields could not be parsed: only the
    /// ids it names, for the event.
    pub fn unparsed(kind: CallbackKind, merchant_id: &str, message: &Message) -> Self {
        let id = |name| {
            message
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Callback {
            kind,
            origin: Origin::Delivery,
            merchant_id: merchant_id.to_owned(),
            order_id: id("pg_order_id"),
            payment_id: id("pg_payment_id"),
            detail: Detail::Unparsed,
        }
    }

    /// The idempotency key; `None` for what is decided afresh on every
    /// delivery (checks: they change nothing durable, so a repeat is judged
    /// against the state of now) and for what decides nothing (redirects,
    /// unparsed deliveries).
    pub fn idempotency_key(&self) -> Option<IdempotencyKey> {
        let (subject, discriminator) = match &self.detail {
            Detail::Check(_) | Detail::Redirect | Detail::Unparsed => return None,
            Detail::Result(n) => (
                n.payment.payment_id.clone(),
                result_code(&n.outcome).to_owned(),
            ),
            Detail::Refund(n) => (
                n.payment_id.clone(),
                n.refund_id
                    .clone()
                    .unwrap_or_else(|| n.amount.map(|a| a.canonical()).unwrap_or_default()),
            ),
            Detail::Capture(n) => (n.payment_id.clone(), String::new()),
            Detail::Payout(n) => (n.order_id.clone(), n.status.as_str().to_owned()),
        };
        // Reconciled facts share one kind; the endpoint they stand for keeps
        // a payment's result apart from its refund.
        let discriminator = match self.origin {
            Origin::Delivery => discriminator,
            Origin::Reconcile => format!("{}:{discriminator}", self.kind.as_str()),
        };
        Some(IdempotencyKey {
            merchant_id: self.merchant_id.clone(),
            kind: self.event_kind(),
            subject_id: subject,
            discriminator,
        })
    }

    /// The key under which a redirect back is recorded once: its payment (or
    /// order) and outcome. `None` for everything else.
    pub fn redirect_key(&self) -> Option<IdempotencyKey> {
        if !self.kind.is_redirect() {
            return None;
        }
        let subject = self.payment_id.clone().or_else(|| self.order_id.clone())?;
        Some(IdempotencyKey {
            merchant_id: self.merchant_id.clone(),
            kind: self.event_kind(),
            subject_id: subject,
            discriminator: String::new(),
        })
    }

    /// The `events.kind` of this callback.
    pub fn event_kind(&self) -> &'static str {
        match self.origin {
            Origin::Delivery => self.kind.as_str(),
            Origin::Reconcile => "reconcile",
        }
    }
}

/// The content fingerprint of a delivery: SHA-256 (hex) of the fields its
/// signature covered under `variant`, in name order, so that two deliveries
/// of one key are told apart by what FreedomPay signed and not by their salt
/// or by unsigned additions. Left out: `pg_salt`, `pg_sig`, the empty values
/// the drop-empty variant does not sign, and `pg_can_reject`, which FreedomPay
/// changes on a routine retry (protocol reference §3.2) and which the
/// idempotency steps look at on their own.
pub fn fingerprint(message: &Message, variant: Variant) -> String {
    fn feed(hasher: &mut Sha256, prefix: &str, fields: &[Field], drop_empty: bool) {
        let top = prefix.is_empty();
        let mut sorted: Vec<_> = fields
            .iter()
            .filter(|f| !(top && matches!(f.name.as_str(), "pg_salt" | "pg_sig" | "pg_can_reject")))
            .filter(|f| !(drop_empty && matches!(&f.value, Value::Text(t) if t.is_empty())))
            .collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for field in sorted {
            let name = format!("{prefix}{}", field.name);
            match &field.value {
                Value::Text(text) => {
                    hasher.update(name.as_bytes());
                    hasher.update([0]);
                    hasher.update(text.as_bytes());
                    hasher.update([0]);
                }
                Value::Nested(children) => feed(hasher, &format!("{name}/"), children, drop_empty),
            }
        }
    }
    let mut hasher = Sha256::new();
    feed(
        &mut hasher,
        "",
        message.fields(),
        variant == Variant::DropEmpty,
    );
    hex::encode(hasher.finalize())
}

/// The names of the fields whose values differ between two deliveries (as
/// stored: `events.fields`, card numbers masked), salt and signature aside.
/// Values are not returned: the log names the fields only.
pub fn differing_fields(first: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    // `events.fields` is an array of `[name, value]` pairs.
    let pairs = |value: &serde_json::Value| -> Vec<(String, String)> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let pair = pair.as_array()?;
                Some((pair.first()?.as_str()?.to_owned(), pair.get(1)?.to_string()))
            })
            .collect()
    };
    let (a, b) = (pairs(first), pairs(now));
    let values = |list: &[(String, String)], name: &str| -> Vec<String> {
        list.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut names: Vec<String> = a
        .iter()
        .chain(&b)
        .map(|(n, _)| n.clone())
        .filter(|n| n != "pg_salt" && n != "pg_sig")
        .collect();
    names.sort();
    names.dedup();
    names.retain(|name| values(&a, name) != values(&b, name));
    names
}

/// `pg_payment_date` (`YYYY-MM-DD HH:MM:SS`) as written; FreedomPay does not
/// state the zone (protocol reference §2). A value in another shape is not an
/// error (the field decides nothing else): the payment is then judged at its
/// arrival.
fn payment_date(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()
}

fn result_code(outcome: &ResultOutcome) -> &str {
    match outcome {
        ResultOutcome::Succeeded => "1",
        ResultOutcome::Failed { .. } => "0",
        ResultOutcome::Other(code) => code,
    }
}

/// Field access with the protocol's conventions: a protocol field must not
/// repeat, and an empty value counts as absent (an empty field is not
/// protected by the tolerated drop-empty signature variant, so it must never
/// carry meaning).
struct Fields<'a>(&'a Message);

impl<'a> Fields<'a> {
    fn optional(&self, name: &'static str) -> Result<Option<&'a str>, FieldError> {
        let value = self.0.get_unique(name).map_err(|_| FieldError::Invalid {
            field: name,
            reason: "appears more than once".into(),
        })?;
        Ok(value.filter(|v| !v.is_empty()))
    }

    fn required(&self, name: &'static str) -> Result<&'a str, FieldError> {
        self.optional(name)?.ok_or(FieldError::Missing(name))
    }

    fn flag(&self, name: &'static str) -> Result<Option<bool>, FieldError> {
        match self.optional(name)? {
            None => Ok(None),
            Some("1") => Ok(Some(true)),
            Some("0") => Ok(Some(false)),
            Some(other) => Err(FieldError::Invalid {
                field: name,
                reason: format!("expected 0 or 1, got {other:?}"),
            }),
        }
    }

    fn amount(&self, name: &'static str) -> Result<Option<Amount>, FieldError> {
        self.optional(name)?
            .map(|text| {
                text.parse::<Amount>().map_err(|e| FieldError::Invalid {
                    field: name,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn payment_notice(&self) -> Result<PaymentNotice, FieldError> {
        Ok(PaymentNotice {
            order_id: self.required("pg_order_id")?.to_owned(),
            payment_id: self.required("pg_payment_id")?.to_owned(),
            amount: self
                .amount("pg_amount")?
                .ok_or(FieldError::Missing("pg_amount"))?,
            currency: self.required("pg_currency")?.to_owned(),
            testing_mode: self.flag("pg_testing_mode")?.unwrap_or(false),
        })
    }

    fn result_notice(&self) -> Result<ResultNotice, FieldError> {
        let outcome = match self.required("pg_result")? {
            "1" => ResultOutcome::Succeeded,
            "0" => ResultOutcome::Failed {
                code: self.optional("pg_failure_code")?.map(str::to_owned),
                description: self
                    .optional("pg_failure_description")?
                    .map(|text| super::pan::mask_card_numbers(text).into_owned()),
            },
            other if other.len() <= 8 && other.bytes().all(|b| b.is_ascii_digit()) => {
                ResultOutcome::Other(other.to_owned())
            }
            other => {
                return Err(FieldError::Invalid {
                    field: "pg_result",
                    reason: format!("expected a number, got {other:?}"),
                });
            }
        };
        Ok(ResultNotice {
            payment: self.payment_notice()?,
            outcome,
            can_reject: self.flag("pg_can_reject")?.unwrap_or(false),
            captured: self.flag("pg_captured")?,
            card_mask: self.optional("pg_card_pan")?.map(mask_pan),
            payment_date: self.optional("pg_payment_date")?.and_then(payment_date),
        })
    }

    /// Refund amounts may be written negative (as in status responses); the
    /// magnitude is what was refunded.
    fn refund_amount(&self) -> Result<Option<Amount>, FieldError> {
        for name in ["pg_refund_amount", "pg_amount"] {
            if let Some(text) = self.optional(name)? {
                let magnitude = text.strip_prefix('-').unwrap_or(text);
                let amount = magnitude
                    .parse::<Amount>()
                    .map_err(|e| FieldError::Invalid {
                        field: name,
                        reason: e.to_string(),
                    })?;
                return Ok(Some(amount));
            }
        }
        Ok(None)
    }

    fn payout_status(&self) -> Result<PayoutStatus, FieldError> {
        let text = self.required("pg_status")?;
        PayoutStatus::from_notification(text).ok_or_else(|| FieldError::Invalid {
            field: "pg_status",
            reason: format!("unknown payout status {text:?}"),
        })
    }
}
