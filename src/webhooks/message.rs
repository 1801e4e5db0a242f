//! What the merchant's services are told: the message types, the JSON body of
//! each message, and which messages a change of a payment or payout makes.
//!
//! A body is made once, when its change is decided, and kept: every retry and
//! every endpoint gets the same bytes under the same `webhook-id`. Money is
//! written as decimal strings with two decimals (`"7000.00"`), never as JSON
//! numbers, because a consumer that reads numbers as floats would round them.
//! Card numbers appear only as the stored masks, masked once more here.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::domain::pan::mask_pan;
use crate::domain::{Payment, PaymentStatus, Payout, PayoutStatus};
use crate::protocol::Amount;

/// The `type` of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    PaymentSucceeded,
    PaymentFailed,
    PaymentRejected,
    PaymentRefunded,
    PaymentCaptured,
    PayoutSucceeded,
    PayoutFailed,
    EventFlagged,
}

impl MessageType {
    /// Every type, in the order the README documents them.
    pub const ALL: [MessageType; 8] = [
        MessageType::PaymentSucceeded,
        MessageType::PaymentFailed,
        MessageType::PaymentRejected,
        MessageType::PaymentRefunded,
        MessageType::PaymentCaptured,
        MessageType::PayoutSucceeded,
        MessageType::PayoutFailed,
        MessageType::EventFlagged,
    ];

    /// The `type` field's text (and the name `[[webhooks]] types` uses).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::PaymentSucceeded => "payment.succeeded",
            MessageType::PaymentFailed => "payment.failed",
            MessageType::PaymentRejected => "payment.rejected",
            MessageType::PaymentRefunded => "payment.refunded",
            MessageType::PaymentCaptured => "payment.captured",
            MessageType::PayoutSucceeded => "payout.succeeded",
            MessageType::PayoutFailed => "payout.failed",
            MessageType::EventFlagged => "event.flagged",
        }
    }

    pub fn parse(text: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// What happened, with the facts only that kind of message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// The money was taken. `needs_refund`: the order rules refused the
    /// payment but FreedomPay would not take "rejected" (`pg_can_reject=0`),
    /// so it must be given back.
    PaymentSucceeded {
        needs_refund: bool,
        captured: Option<bool>,
    },
    PaymentFailed {
        failure_code: Option<String>,
        failure_description: Option<String>,
    },
    /// The service refused the payment (an order rule) and FreedomPay reverts it.
    PaymentRejected,
    /// Money given back: this refund's amount and the total refunded so far.
    PaymentRefunded {
        refund_amount: Amount,
        refunded_total: Amount,
    },
    /// A two-stage payment's money was captured after its authorisation.
    PaymentCaptured,
    PayoutSucceeded,
    PayoutFailed,
    /// An operator must look at a callback: a conflicting repeat, or any
    /// `events.flag` kind (`over_refund`, `early_notice`, `unparseable`, …).
    EventFlagged {
        /// The callback's kind (`result`, `refund`, …).
        event_kind: String,
        /// `events.flag`, e.g. `over_refund: 150 refunded of 100`.
        flag: Option<String>,
        /// `events.conflict`: a repeat whose signed content differs from the first.
        conflict: bool,
    },
}

impl What {
    pub fn message_type(&self) -> MessageType {
        match self {
            What::PaymentSucceeded { .. } => MessageType::PaymentSucceeded,
            What::PaymentFailed { .. } => MessageType::PaymentFailed,
            What::PaymentRejected => MessageType::PaymentRejected,
            What::PaymentRefunded { .. } => MessageType::PaymentRefunded,
            What::PaymentCaptured => MessageType::PaymentCaptured,
            What::PayoutSucceeded => MessageType::PayoutSucceeded,
            What::PayoutFailed => MessageType::PayoutFailed,
            What::EventFlagged { .. } => MessageType::EventFlagged,
        }
    }
}

/// One message to be written to the outbox: its subject's facts and what
/// happened. The body is made from it by [`MessageInput::body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInput {
    pub merchant_id: String,
    /// The merchant's order id (a payout's order id for payouts); unknown
    /// only for a flag on a callback whose fields could not be read.
    pub order_id: Option<String>,
    /// FreedomPay's `pg_payment_id`, when known.
    pub payment_id: Option<String>,
    pub amount: Option<Amount>,
    pub currency: Option<String>,
    /// The subject's stored status (`payments.status`, `payouts.status`).
    pub status: Option<String>,
    /// The event (callback or status answer) that made the change.
    pub event_id: i64,
    /// When the change was decided: the body's `timestamp`.
    pub occurred_at: DateTime<Utc>,
    pub testing_mode: Option<bool>,
    /// The stored card mask (masked again when written).
    pub card_mask: Option<String>,
    pub what: What,
}

impl MessageInput {
    pub fn message_type(&self) -> MessageType {
        self.what.message_type()
    }

    /// The messages of one subject (a payment, or a payout) are delivered to
    /// an endpoint in the order they were committed: this names the subject.
    /// A flag without a payment or payout is its own subject.
    pub fn ordering_key(&self) -> String {
        match (&self.what, &self.payment_id, &self.order_id) {
            (What::PayoutSucceeded | What::PayoutFailed, _, Some(order_id)) => {
                format!("payout:{}:{order_id}", self.merchant_id)
            }
            (_, Some(payment_id), _) => format!("payment:{}:{payment_id}", self.merchant_id),
            _ => format!("event:{}", self.event_id),
        }
    }

    /// The JSON body: `{"type", "timestamp", "data": {…}}`, keys in a fixed
    /// order. `data` always has `merchant_id`, `order_id`, `payment_id`,
    /// `amount`, `currency`, `status`, `event_id`, `testing_mode` and
    /// `card_mask` (null when not known), then the fields of its type.
    pub fn body(&self) -> String {
        let money = |amount: &Amount| Value::String(money_text(amount));
        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
        let mut data: Vec<(&'static str, Value)> = vec![
            ("merchant_id", self.merchant_id.clone().into()),
            ("order_id", text(&self.order_id)),
            ("payment_id", text(&self.payment_id)),
            ("amount", self.amount.as_ref().map_or(Value::Null, money)),
            ("currency", text(&self.currency)),
            ("status", text(&self.status)),
            ("event_id", self.event_id.into()),
            (
                "testing_mode",
                self.testing_mode.map_or(Value::Null, Value::Bool),
            ),
            (
                "card_mask",
                self.card_mask
                    .as_deref()
                    .map_or(Value::Null, |mask| Value::String(mask_pan(mask))),
            ),
        ];
        match &self.what {
            What::PaymentSucceeded {
                needs_refund,
                captured,
            } => {
                data.push(("needs_refund", Value::Bool(*needs_refund)));
                data.push(("captured", captured.map_or(Value::Null, Value::Bool)));
            }
            What::PaymentFailed {
                failure_code,
                failure_description,
            } => {
                data.push(("failure_code", text(failure_code)));
                data.push(("failure_description", text(failure_description)));
            }
            What::PaymentRefunded {
                refund_amount,
                refunded_total,
            } => {
                data.push(("refund_amount", money(refund_amount)));
                data.push(("refunded_total", money(refunded_total)));
            }
            What::EventFlagged {
                event_kind,
                flag,
                conflict,
            } => {
                data.push(("event_kind", event_kind.clone().into()));
                data.push(("flag", text(flag)));
                data.push(("conflict", Value::Bool(*conflict)));
            }
            What::PaymentRejected
            | What::PaymentCaptured
            | What::PayoutSucceeded
            | What::PayoutFailed => {}
        }
        let body = Body {
            kind: self.message_type().as_str(),
            timestamp: self
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            data: Ordered(data),
        };
        // Serialising strings, booleans and numbers cannot fail; were it to,
        // an empty object is stored rather than a panic in the write path.
        serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[derive(Serialize)]
struct Body {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Ordered,
}

/// An amount as the body writes it: a decimal string with two decimals.
pub fn money_text(amount: &Amount) -> String {
    format!("{:.2}", amount.as_decimal())
}

/// JSON object fields in the order given (serde_json's own map sorts them).
struct Ordered(Vec<(&'static str, Value)>);

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// A new message id: `msg_` and a UUIDv7, so ids sort roughly by creation
/// time (handy in logs), yet say nothing a receiver could rely on for order.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// A flag on the event that made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The callback's kind (`result`, `refund`, …).
    pub event_kind: String,
    /// `events.flag`, when set.
    pub flag: Option<String>,
    /// `events.conflict`.
    pub conflict: bool,
    /// The ids the callback named, for a flag without a stored subject.
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
}

/// One decided change, as the write path sees it: the stored payment and
/// payout before and after, and the event's flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    pub merchant_id: &'a str,
    pub event_id: i64,
    pub at: DateTime<Utc>,
    /// `(before, after)`: `before` is `None` for a payment first seen now.
    pub payment: Option<(Option<&'a Payment>, &'a Payment)>,
    pub payout: Option<(Option<&'a Payout>, &'a Payout)>,
    /// Set when the event is flagged or is a conflicting repeat.
    pub flag: Option<Flag>,
}

/// The messages one change makes, in the order they are to be delivered:
/// the payment's (its new status, then a capture, then a refund), the
/// payout's, then the flag. A change that moves nothing makes none, so a
/// repeated callback never makes a second message.
pub fn messages(change: &Change<'_>) -> Vec<MessageInput> {
    let mut out = Vec::new();
    if let Some((before, after)) = change.payment {
        payment_messages(change, before, after, &mut out);
    }
    if let Some((before, after)) = change.payout {
        let was = before.map(|p| p.status);
        let what = match after.status {
            PayoutStatus::Success if was != Some(PayoutStatus::Success) => {
                Some(What::PayoutSucceeded)
            }
            PayoutStatus::Error if was != Some(PayoutStatus::Error) => Some(What::PayoutFailed),
            _ => None,
        };
        if let Some(what) = what {
            out.push(MessageInput {
                merchant_id: change.merchant_id.to_owned(),
                order_id: Some(after.order_id.clone()),
                payment_id: after.payment_id.clone(),
                amount: after.amount,
                // `payouts` keeps no currency (FreedomPay's payout notify has none).
                currency: None,
                status: Some(after.status.as_str().to_owned()),
                event_id: change.event_id,
                occurred_at: change.at,
                testing_mode: None,
                card_mask: after.card_mask.clone(),
                what,
            });
        }
    }
    if let Some(flag) = &change.flag
        && (flag.flag.is_some() || flag.conflict)
    {
        out.push(flag_message(change, flag));
    }
    out
}

fn payment_message(change: &Change<'_>, payment: &Payment, what: What) -> MessageInput {
    MessageInput {
        merchant_id: change.merchant_id.to_owned(),
        order_id: Some(payment.order_id.clone()),
        payment_id: Some(payment.payment_id.clone()),
        amount: Some(payment.amount),
        currency: Some(payment.currency.clone()),
        status: Some(payment.status.as_str().to_owned()),
        event_id: change.event_id,
        occurred_at: change.at,
        testing_mode: Some(payment.testing_mode),
        card_mask: payment.card_mask.clone(),
        what,
    }
}

fn payment_messages(
    change: &Change<'_>,
    before: Option<&Payment>,
    after: &Payment,
    out: &mut Vec<MessageInput>,
) {
    let was = before.map(|p| p.status);
    let status = match after.status {
        PaymentStatus::Succeeded if was != Some(PaymentStatus::Succeeded) => {
            Some(What::PaymentSucceeded {
                needs_refund: after.needs_refund,
                captured: after.captured,
            })
        }
        PaymentStatus::Failed if was != Some(PaymentStatus::Failed) => Some(What::PaymentFailed {
            failure_code: after.failure_code.clone(),
            failure_description: after.failure_description.clone(),
        }),
        PaymentStatus::Rejected if was != Some(PaymentStatus::Rejected) => {
            Some(What::PaymentRejected)
        }
        // A payment first seen refunded (a status answer for a result that
        // never came) was paid first: its services hear that before the refund.
        PaymentStatus::Refunded
            if matches!(
                was,
                None | Some(PaymentStatus::Pending | PaymentStatus::Failed)
            ) =>
        {
            Some(What::PaymentSucceeded {
                needs_refund: after.needs_refund,
                captured: after.captured,
            })
        }
        // Pending (a check) is not news; a refund is told below.
        _ => None,
    };
    let succeeded_now = matches!(status, Some(What::PaymentSucceeded { .. }));
    if let Some(what) = status {
        out.push(payment_message(change, after, what));
    }
    // A capture is news only after the payment was told: a one-stage payment
    // that succeeds captured says so in its `payment.succeeded`.
    let captured_before = before.is_some_and(|p| p.captured == Some(true));
    if after.captured == Some(true) && !captured_before && !succeeded_now {
        out.push(payment_message(change, after, What::PaymentCaptured));
    }
    let refunded_before = before.map_or_else(Amount::default, |p| p.refunded_amount);
    if let Some(refund) = after.refunded_amount.checked_sub(refunded_before)
        && !refund.is_zero()
    {
        out.push(payment_message(
            change,
            after,
            What::PaymentRefunded {
                refund_amount: refund,
                refunded_total: after.refunded_amount,
            },
        ));
    }
}

fn flag_message(change: &Change<'_>, flag: &Flag) -> MessageInput {
    let what = What::EventFlagged {
        event_kind: flag.event_kind.clone(),
        flag: flag.flag.clone(),
        conflict: flag.conflict,
    };
    // The subject's stored facts when the change has them, else the ids the
    // callback named.
    if let Some((_, payment)) = change.payment {
        return payment_message(change, payment, what);
    }
    if let Some((_, payout)) = change.payout {
        return MessageInput {
            merchant_id: change.merchant_id.to_owned(),
            order_id: Some(payout.order_id.clone()),
            payment_id: payout.payment_id.clone(),
            amount: payout.amount,
            currency: None,
            status: Some(payout.status.as_str().to_owned()),
            event_id: change.event_id,
            occurred_at: change.at,
            testing_mode: None,
            card_mask: payout.card_mask.clone(),
            what,
        };
    }
    MessageInput {
        merchant_id: change.merchant_id.to_owned(),
        order_id: flag.order_id.clone(),
        payment_id: flag.payment_id.clone(),
        amount: None,
        currency: None,
        status: None,
        event_id: change.event_id,
        occurred_at: change.at,
        testing_mode: None,
        card_mask: None,
        what,
    }
}
