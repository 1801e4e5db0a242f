//! How operators are shown what the store holds: the closing summary of
//! a history (what the state is, what is waiting, which webhook deliveries
//! are pending or dead), the fields of an event worth showing first, and a
//! webhook delivery's last answer in words. The `history` command and the console both
//! show these; the store only reads the rows.

use crate::store::tables::Lenient;
use crate::store::tables::events::EventRow;
use crate::store::{EventDelivery, History};

/// What the state is, and what is waiting and when: one sentence a line.
pub fn summary(history: &History) -> Vec<String> {
    let mut lines = Vec::new();
    match &history.order {
        Some(order) => {
            let damage = if order.damaged.is_empty() {
                String::new()
            } else {
                format!(", {} damaged", order.damaged.join(", "))
            };
            let mut line = format!(
                "order {} is {} ({} {}{damage})",
                order.order_id, order.status, order.amount, order.currency
            );
            if order.status.0.as_deref() == Ok("pending") {
                match order.expires_at {
                    Some(Lenient(Ok(at))) => line.push_str(&format!(
                        "; waiting for payment until {}",
                        at.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                    _ => line.push_str("; waiting for payment"),
                }
            }
            lines.push(line);
        }
        None => match &history.order_id {
            Some(id) => lines.push(format!("order {id} is not in the orders table")),
            None => lines.push("the order of this payment is not known".to_owned()),
        },
    }
    for p in &history.payments {
        let mut line = format!("payment {} {}", p.payment_id, p.status);
        if p.refunded_amount != "0" {
            line.push_str(&format!(
                ", {} of {} {} refunded",
                p.refunded_amount, p.amount, p.currency
            ));
        }
        if p.needs_refund {
            line.push_str(", needs a refund");
        }
        if !p.damaged.is_empty() {
            line.push_str(&format!(", {} damaged", p.damaged.join(", ")));
        }
        lines.push(line);
    }
    if let Some(payout) = &history.payout {
        lines.push(format!("payout {} is {}", payout.order_id, payout.status));
    }
    let mut waiting = false;
    for t in &history.tasks {
        let what = match t.task.as_str() {
            "refund" => format!(
                "refund of {} for payment {}",
                t.amount.as_deref().unwrap_or("the rest"),
                t.subject_id
            ),
            "payment_status" => format!("status query for payment {}", t.subject_id),
            "order_status" => format!("status query for order {}", t.subject_id),
            "payout_status" => format!("status query for payout {}", t.subject_id),
            other => format!("{other} task for {}", t.subject_id),
        };
        match t.state.as_str() {
            "open" => {
                waiting = true;
                let stage = match t.stage.as_deref() {
                    Some("requested") => " (accepted by FreedomPay, to confirm)",
                    Some("sending") => " (a request may have left, outcome unknown)",
                    Some("new") => " (not sent yet)",
                    _ => "",
                };
                lines.push(format!(
                    "waiting: {what}{stage}, attempt {} done, next at {}",
                    t.attempts,
                    t.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")
                ));
            }
            "failed" => {
                waiting = true;
                lines.push(format!(
                    "failed: {what}, after {} attempts: {} (an operator must look)",
                    t.attempts,
                    t.last_error.as_deref().unwrap_or("no error recorded")
                ));
            }
            _ => {}
        }
    }
    for m in &history.webhooks {
        for d in &m.deliveries {
            match d.state.as_str() {
                "pending" => {
                    waiting = true;
                    lines.push(format!(
                        "waiting: webhook {} {} to {}, attempt {} done (last {}), next at {}",
                        m.id,
                        m.message_type,
                        d.endpoint,
                        d.attempts,
                        last_answer(d),
                        d.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")
                    ));
                }
                "dead" => {
                    waiting = true;
                    lines.push(format!(
                        "dead: webhook {} {} to {}, after {} attempts (last {}); \
                         `webhooks replay {}` sends it again",
                        m.id,
                        m.message_type,
                        d.endpoint,
                        d.attempts,
                        last_answer(d),
                        m.id
                    ));
                }
                _ => {}
            }
        }
    }
    if !waiting && history.payments.iter().any(|p| p.needs_refund) {
        waiting = true;
        lines.push("waiting: a payment needs a refund and no refund task exists yet".to_owned());
    }
    if !waiting {
        lines.push("nothing is waiting".to_owned());
    }
    lines
}

/// A webhook delivery's last answer: the error of its last attempt (which
/// names the HTTP status when there was one; stored text: escape it where
/// it is shown), else `HTTP <status>`, else `-` (not tried yet).
pub fn last_answer(d: &EventDelivery) -> String {
    match (d.last_error.as_deref(), d.last_status) {
        (Some(error), _) if !error.is_empty() => error.to_owned(),
        (_, Some(status)) => format!("HTTP {status}"),
        _ => "-".to_owned(),
    }
}

/// The fields a timeline shows for each event; the rest are shown on demand.
pub const KEY_FIELDS: &[&str] = &[
    "pg_amount",
    "pg_currency",
    "pg_result",
    "pg_status",
    "pg_can_reject",
    "pg_captured",
    "pg_clearing_amount",
    "pg_refund_amount",
    "pg_refund_payment_id",
    "pg_card_pan",
    "pg_failure_code",
    "pg_failure_description",
    "pg_testing_mode",
];

/// The received fields as `(name, value)` in arrival order; a nested
/// value's fields are named `parent[child]`. Stored fields that are not
/// the expected array of pairs yield nothing.
pub fn pairs(event: &EventRow) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, prefix: Option<&str>, out: &mut Vec<(String, String)>) {
        let Some(items) = value.as_array() else {
            return;
        };
        for item in items {
            let Some([name, value]) = item.as_array().map(Vec::as_slice) else {
                continue;
            };
            let name = name.as_str().unwrap_or("");
            let name = match prefix {
                Some(p) => format!("{p}[{name}]"),
                None => name.to_owned(),
            };
            match value {
                serde_json::Value::String(text) => out.push((name, text.clone())),
                nested @ serde_json::Value::Array(_) => walk(nested, Some(&name), out),
                other => out.push((name, other.to_string())),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.fields) {
        walk(&value, None, &mut out);
    }
    out
}

/// The fields of [`KEY_FIELDS`] present in `event`, in arrival order.
pub fn key_fields(event: &EventRow) -> Vec<(String, String)> {
    pairs(event)
        .into_iter()
        .filter(|(name, _)| KEY_FIELDS.contains(&name.as_str()))
        .collect()
}
