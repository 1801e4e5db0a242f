//! What a verified status answer means, as the callbacks it stands for: a
//! payment's result (and its refunded total), or a payout's final status.
//! These go through the same decisions as FreedomPay's own callbacks, with
//! origin [`Origin::Reconcile`]. Pure: no I/O.

use crate::api::PaymentStatusReport;
use crate::domain::{
    Callback, CallbackKind, Detail, Origin, PaymentNotice, PayoutNotice, PayoutStatus,
    RefundNotice, ResultNotice, ResultOutcome,
};
use crate::protocol::{Amount, Message};

/// What a payment status says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentFacts {
    /// Still in progress (`pending`, `new`, `incomplete`, `partial`…): ask later.
    NotFinal(String),
    /// Final: these callbacks, in order.
    Final(Vec<Callback>),
}

/// `pg_payment_status` values that end a payment well or badly; anything
/// else is taken as still in progress (the vocabulary is not fully
/// documented, protocol reference §3.5).
const SUCCEEDED: [&str; 4] = ["success", "ok", "refunded", "revoked"];
const FAILED: [&str; 4] = ["failed", "failure", "error", "canceled"];

/// The callbacks that a status answer about a payment of `order_id` stands for.
pub fn payment_facts(
    merchant_id: &str,
    order_id: &str,
    fallback: Option<(&str, Amount, &str)>,
    report: &PaymentStatusReport,
) -> PaymentFacts {
    let status = report.payment_status.as_str();
    let outcome = if SUCCEEDED.contains(&status) {
        ResultOutcome::Succeeded
    } else if FAILED.contains(&status) {
        ResultOutcome::Failed {
            code: report.response.get("pg_failure_code").map(str::to_owned),
            description: Some(
                report
                    .response
                    .get("pg_failure_description")
                    .unwrap_or("failed according to the status API")
                    .to_owned(),
            ),
        }
    } else {
        return PaymentFacts::NotFinal(status.to_owned());
    };
    let (Some(payment_id), Some(amount), Some(currency)) = (
        report
            .payment_id
            .as_deref()
            .or(fallback.map(|(id, _, _)| id)),
        report.amount.or(fallback.map(|(_, a, _)| a)),
        report.currency.as_deref().or(fallback.map(|(_, _, c)| c)),
    ) else {
        return PaymentFacts::NotFinal(format!(
            "{status}, but without payment id, amount or currency"
        ));
    };
    let payment = PaymentNotice {
        order_id: order_id.to_owned(),
        payment_id: payment_id.to_owned(),
        amount,
        currency: currency.to_owned(),
        testing_mode: report.response.get("pg_testing_mode") == Some("1"),
    };
    let succeeded = outcome == ResultOutcome::Succeeded;
    let mut facts = vec![reconciled(
        merchant_id,
        CallbackKind::Result,
        Some(order_id),
        Some(payment_id),
        Detail::Result(ResultNotice {
            payment,
            outcome,
            // The money is taken: a rule that refuses it flags a refund.
            can_reject: false,
            captured: report.captured,
            card_mask: None,
            payment_date: None,
        }),
    )];
    if let Some(total) = refunded_total(report)
        && succeeded
    {
        facts.push(refund_fact(merchant_id, order_id, payment_id, total));
    }
    PaymentFacts::Final(facts)
}

/// Whether a status answer shows the payment reverted: `revoked` or
/// `refunded`, or a refunded total that covers `amount`. For a payment we
/// rejected, that is FreedomPay confirming the rejection (the money went
/// back), not a completed payment to refund again.
pub fn shows_reverted(report: &PaymentStatusReport, amount: Amount) -> bool {
    matches!(report.payment_status.as_str(), "revoked" | "refunded")
        || report
            .refund_amount
            .is_some_and(|total| !total.is_zero() && total >= amount)
}

/// The refunded total a status answer shows, if any.
pub fn refunded_total(report: &PaymentStatusReport) -> Option<Amount> {
    let total = report.refund_amount.filter(|a| !a.is_zero());
    match report.payment_status.as_str() {
        // Fully refunded: the whole amount, whatever the total field says.
        "refunded" | "revoked" => report.amount.max(total),
        _ => total,
    }
}

/// The refund a status answer confirms: the refunded total so far.
pub fn refund_fact(merchant_id: &str, order_id: &str, payment_id: &str, total: Amount) -> Callback {
    reconciled(
        merchant_id,
        CallbackKind::Refund,
        Some(order_id),
        Some(payment_id),
        Detail::Refund(RefundNotice {
            payment_id: payment_id.to_owned(),
            order_id: Some(order_id.to_owned()),
            amount: Some(total),
            refund_id: None,
            cumulative: true,
        }),
    )
}

/// What a payout status answer (`payout_status2`, or the `pg_status` of a
/// payout request) says: the payout's final state, or `None` while in
/// `process`.
pub fn payout_fact(merchant_id: &str, order_id: &str, response: &Message) -> Option<Callback> {
    let text = response
        .get("pg_payment_status")
        .or(response.get("pg_status"))?;
    let status = PayoutStatus::from_notification(text)?;
    if !status.is_final() {
        return None;
    }
    let amount = ["pg_payment_amount", "pg_amount"]
        .into_iter()
        .find_map(|name| response.get(name)?.parse::<Amount>().ok());
    let payment_id = response
        .get("pg_payment_id")
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    Some(reconciled(
        merchant_id,
        CallbackKind::Payout,
        Some(order_id),
        payment_id.as_deref(),
        Detail::Payout(PayoutNotice {
            order_id: order_id.to_owned(),
            payment_id: payment_id.clone(),
            status,
            amount,
            card_mask: None,
        }),
    ))
}

fn reconciled(
    merchant_id: &str,
    kind: CallbackKind,
    order_id: Option<&str>,
    payment_id: Option<&str>,
    detail: Detail,
) -> Callback {
    Callback {
        kind,
        origin: Origin::Reconcile,
        merchant_id: merchant_id.to_owned(),
        order_id: order_id.map(str::to_owned),
        payment_id: payment_id.map(str::to_owned),
        detail,
    }
}
