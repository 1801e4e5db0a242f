//! Orders, payments and payouts, and how callbacks move them. Transitions only
//! move forward: a late failure never un-pays an order, `captured` never goes
//! back to false, and a final payout status is overwritten only by a signed
//! status answer. What a callback alone cannot settle (a contradiction, a
//! rejection FreedomPay should have reverted, refunds that cannot be told
//! apart) asks for a status query ([`Confirm`]); what an operator must see is
//! flagged on its event ([`Plan::flag`]).

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::protocol::{Amount, Status};
use crate::untrusted::Untrusted;

use super::Callback;
use super::callback::{
    CaptureNotice, Detail, Origin, PaymentNotice, PayoutNotice, RefundNotice, ResultNotice,
    ResultOutcome,
};
use super::records::{Order, OrderStatus, Payment, PaymentStatus, Payout};
use super::rules::{RuleFailure, Rules};

/// What the database holds about a callback's subject, read inside its transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentState {
    pub order: Option<Order>,
    pub payment: Option<Payment>,
    pub payout: Option<Payout>,
    /// The order row exists but cannot be read (written malformed by an
    /// internal service): why. The callback is then answered by rule, as for
    /// an order that refuses payment, and its event is flagged.
    pub order_defect: Option<String>,
    /// The payment or payout row the callback is about exists but cannot be
    /// read (damaged by hand: the service writes these rows itself): why.
    /// Nothing can be decided against it: the callback is recorded, flagged
    /// `bad_stored_row`, and answered 503 until an operator mends the row.
    pub row_defect: Option<String>,
}

/// A new order status, written only when the order exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderUpdate {
    pub order_id: String,
    pub status: OrderStatus,
    pub paid_payment_id: Option<String>,
}

/// A status query a decision asks for, so that FreedomPay's signed answer
/// settles what the callbacks alone cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    pub subject: ConfirmSubject,
    /// Asked this many seconds from now.
    pub due_in_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmSubject {
    /// `get_status3` of this payment id (its result and refunded total).
    Payment(String),
    /// `payout_status2` of this payout order id.
    Payout(String),
}

/// How long after a rejection its reversal is confirmed: FreedomPay reverts a
/// rejected payment after our answer, not at once.
const REJECTION_CONFIRM_SECS: u64 = 300;

/// The decision for one callback: the answer and the rows to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub status: Status,
    pub description: String,
    pub payment: Option<Payment>,
    pub order: Option<OrderUpdate>,
    pub payout: Option<Payout>,
    /// Why an operator must look at this delivery (`events.flag`).
    pub flag: Option<String>,
    /// A status query to schedule with the decision.
    pub confirm: Option<Confirm>,
    /// Nothing can be decided yet (a refund or capture before its payment is
    /// known): nothing is claimed or changed, the event is recorded, and the
    /// answer is 503 so that FreedomPay delivers it again.
    pub retry_later: bool,
}

impl Plan {
    fn answer(status: Status, description: impl Into<String>) -> Plan {
        Plan {
            status,
            description: description.into(),
            payment: None,
            order: None,
            payout: None,
            flag: None,
            confirm: None,
            retry_later: false,
        }
    }

    /// A notice about a payment that is not known yet.
    fn early(kind: &str, payment_id: &str) -> Plan {
        warn!(
            payment_id = %Untrusted(payment_id),
            "{kind} before its payment is known: answered 503 until the payment is recorded"
        );
        Plan {
            retry_later: true,
            flag: Some("early_notice".into()),
            ..Plan::answer(
                Status::Error,
                format!("Payment {payment_id} is not known yet; please retry"),
            )
        }
    }
}

/// The status query that a repeated delivery asks for: a refund without
/// FreedomPay's refund id cannot be told apart from a second refund of the
/// same amount, and a repeat whose content differs needs FreedomPay's word.
pub fn repeat_confirmation(callback: &Callback, conflict: bool) -> Option<Confirm> {
    if callback.origin != Origin::Delivery {
        return None;
    }
    let subject = match &callback.detail {
        Detail::Refund(n) if n.refund_id.is_none() || conflict => {
            ConfirmSubject::Payment(n.payment_id.clone())
        }
        Detail::Payout(n) if conflict => ConfirmSubject::Payout(n.order_id.clone()),
        _ => return None,
    };
    Some(Confirm {
        subject,
        due_in_secs: 0,
    })
}

/// Decides a callback against the current state. Pure: the caller writes the plan.
pub fn decide(
    callback: &Callback,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    if let Some(defect) = &state.row_defect {
        return Plan {
            retry_later: true,
            flag: Some(format!("bad_stored_row: {defect}")),
            ..Plan::answer(
                Status::Error,
                "The stored record of this payment cannot be read; please retry",
            )
        };
    }
    let mut plan = match &callback.detail {
        Detail::Check(notice) => decide_check(notice, state, rules, now),
        Detail::Result(notice) => decide_result(notice, state, rules, now),
        Detail::Refund(notice) => decide_refund(notice, state),
        Detail::Capture(notice) => decide_capture(notice, state),
        Detail::Payout(notice) => decide_payout(notice, state, callback.origin),
        Detail::Redirect => Plan::answer(Status::Ok, ""),
        Detail::Unparsed => Plan::answer(Status::Error, "Malformed request"),
    };
    if let Some(defect) = &state.order_defect
        && plan.flag.is_none()
    {
        plan.flag = Some(format!("bad_order_row: {defect}"));
    }
    plan
}

/// The order rules, with an unreadable order row refusing like a rule.
fn check_rules(
    notice: &PaymentNotice,
    state: &CurrentState,
    rules: &Rules,
    paid_at: Option<DateTime<Utc>>,
) -> Result<(), RuleFailure> {
    if state.order_defect.is_some() {
        return Err(RuleFailure {
            rule: "order_row",
            description: format!(
                "Order {} cannot be paid: its record is damaged",
                notice.order_id
            ),
        });
    }
    rules.check(notice, state.order.as_ref(), paid_at)
}

fn new_payment(notice: &PaymentNotice, status: PaymentStatus) -> Payment {
    Payment {
        payment_id: notice.payment_id.clone(),
        order_id: notice.order_id.clone(),
        amount: notice.amount,
        currency: notice.currency.clone(),
        status,
        captured: None,
        testing_mode: notice.testing_mode,
        card_mask: None,
        failure_code: None,
        failure_description: None,
        needs_refund: false,
        refunded_amount: Amount::default(),
    }
}

fn decide_check(
    notice: &PaymentNotice,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    match check_rules(notice, state, rules, Some(now)) {
        Ok(()) => Plan {
            // A payment seen at check is recorded as pending, so that a result
            // that never comes can be found and reconciled.
            payment: state
                .payment
                .is_none()
                .then(|| new_payment(notice, PaymentStatus::Pending)),
            ..Plan::answer(Status::Ok, format!("Order {} can be paid", notice.order_id))
        },
        Err(failure) => Plan::answer(Status::Rejected, failure.description),
    }
}

fn decide_result(
    notice: &ResultNotice,
    state: &CurrentState,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Plan {
    let base = |status| {
        let mut payment = state
            .payment
            .clone()
            .unwrap_or_else(|| new_payment(&notice.payment, status));
        payment.amount = notice.payment.amount;
        payment.currency = notice.payment.currency.clone();
        payment.testing_mode = notice.payment.testing_mode;
        // Forward only: once captured, a later `pg_captured=0` changes nothing.
        if payment.captured != Some(true) {
            payment.captured = notice.captured.or(payment.captured);
        }
        payment.card_mask = notice.card_mask.clone().or(payment.card_mask);
        payment
    };
    let order_id = &notice.payment.order_id;
    let payment_id = &notice.payment.payment_id;
    // Expiry is judged when the payer paid, not when the (possibly retried)
    // callback arrives; a payment a check approved is not judged again.
    let approved_by_check = state
        .payment
        .as_ref()
        .is_some_and(|p| p.status == PaymentStatus::Pending);
    let paid_at = (!approved_by_check).then(|| {
        notice
            .payment_date
            .and_then(|local| rules.payment_date_utc(local))
            .map_or(now, |date| date.min(now))
    });
    match &notice.outcome {
        ResultOutcome::Succeeded => {
            match state.payment.as_ref().map(|p| p.status) {
                Some(PaymentStatus::Rejected) if !notice.can_reject => {
                    // We said "rejected", but FreedomPay now treats the
                    // payment as completed (`pg_can_reject=0` on a later
                    // delivery, or a status answer): the money is taken.
                    warn!(
                        order_id = %Untrusted(order_id),
                        payment_id = %Untrusted(payment_id),
                        "a rejected payment was completed by FreedomPay: recorded as succeeded, needs refund"
                    );
                    return Plan {
                        payment: Some(Payment {
                            status: PaymentStatus::Succeeded,
                            needs_refund: true,
                            ..base(PaymentStatus::Succeeded)
                        }),
                        ..Plan::answer(Status::Ok, "Payment accepted")
                    };
                }
                Some(PaymentStatus::Rejected) => {
                    return Plan::answer(
                        Status::Rejected,
                        format!("Payment {payment_id} was rejected"),
                    );
                }
                Some(status) if status.is_settled() => {
                    return Plan::answer(Status::Ok, "Payment already recorded");
                }
                _ => {}
            }
            match check_rules(&notice.payment, state, rules, paid_at) {
                Ok(()) => Plan {
                    payment: Some(Payment {
                        status: PaymentStatus::Succeeded,
                        ..base(PaymentStatus::Succeeded)
                    }),
                    order: state.order.as_ref().map(|_| OrderUpdate {
                        order_id: order_id.clone(),
                        status: OrderStatus::Paid,
                        paid_payment_id: Some(notice.payment.payment_id.clone()),
                    }),
                    ..Plan::answer(Status::Ok, "Payment accepted")
                },
                Err(failure) if notice.can_reject => Plan {
                    payment: Some(Payment {
                        status: PaymentStatus::Rejected,
                        ..base(PaymentStatus::Rejected)
                    }),
                    // A status query later confirms that FreedomPay really
                    // reverted it (a lost answer may have let it complete).
                    confirm: Some(Confirm {
                        subject: ConfirmSubject::Payment(payment_id.clone()),
                        due_in_secs: REJECTION_CONFIRM_SECS,
                    }),
                    ..Plan::answer(Status::Rejected, failure.description)
                },
                Err(failure) => {
                    // FreedomPay took the money and will not take "rejected" for
                    // an answer: accept it, and flag the payment for a refund.
                    warn!(
                        order_id = %Untrusted(order_id),
                        payment_id = %Untrusted(&notice.payment.payment_id),
                        rule = failure.rule,
                        reason = %Untrusted(&failure.description),
                        "payment taken although the order rules refuse it (pg_can_reject=0): needs refund"
                    );
                    Plan {
                        payment: Some(Payment {
                            status: PaymentStatus::Succeeded,
                            needs_refund: true,
                            ..base(PaymentStatus::Succeeded)
                        }),
                        ..Plan::answer(Status::Ok, "Payment accepted")
                    }
                }
            }
        }
        ResultOutcome::Failed { code, description } => {
            if state
                .payment
                .as_ref()
                .is_some_and(|p| p.status.is_settled())
            {
                // Forward only: a late failure never un-pays.
                return Plan::answer(
                    Status::Ok,
                    "Failure recorded; the payment had already succeeded",
                );
            }
            Plan {
                payment: Some(Payment {
                    status: PaymentStatus::Failed,
                    failure_code: code.clone(),
                    failure_description: description.clone(),
                    ..base(PaymentStatus::Failed)
                }),
                ..Plan::answer(Status::Ok, "Failure recorded")
            }
        }
        ResultOutcome::Other(code) => {
            warn!(payment_id = %Untrusted(&notice.payment.payment_id), pg_result = %Untrusted(code), "result with an unknown pg_result recorded without a state change");
            Plan::answer(Status::Ok, "Result recorded")
        }
    }
}

fn decide_refund(notice: &RefundNotice, state: &CurrentState) -> Plan {
    let Some(payment) = &state.payment else {
        return Plan::early("refund", &notice.payment_id);
    };
    if payment.status == PaymentStatus::Refunded {
        return Plan::answer(
            Status::Ok,
            "Refund recorded; the payment was already fully refunded",
        );
    }
    let total = if notice.cumulative {
        // The status API reports the refunded total: it moves the stored
        // total forward, never back, and repeats of it change nothing.
        match notice.amount {
            Some(total) if total > payment.refunded_amount => total,
            _ => return Plan::answer(Status::Ok, "Refund already recorded"),
        }
    } else {
        let refund = notice
            .amount
            .filter(|a| !a.is_zero())
            .unwrap_or(payment.amount);
        payment
            .refunded_amount
            .checked_add(refund)
            .unwrap_or(payment.amount)
    };
    let full = total >= payment.amount;
    // More refunded than paid: kept as FreedomPay reports it, and flagged.
    let flag = (total > payment.amount).then(|| {
        warn!(
            payment_id = %Untrusted(&payment.payment_id),
            refunded = %total,
            paid = %payment.amount,
            "refunded total exceeds the payment: flagged for an operator"
        );
        format!("over_refund: {total} refunded of {}", payment.amount)
    });
    let order_status = if full {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    // Only the payment that paid the order moves the order: refunding a
    // second payment for an already paid order leaves that order paid.
    let order = state
        .order
        .as_ref()
        .filter(|order| order.paid_payment_id.as_deref() == Some(payment.payment_id.as_str()));
    Plan {
        payment: Some(Payment {
            status: if full {
                PaymentStatus::Refunded
            } else {
                payment.status
            },
            refunded_amount: total,
            // A refund that covers the payment settles a pending auto-refund.
            needs_refund: payment.needs_refund && !full,
            ..payment.clone()
        }),
        order: order.map(|order| OrderUpdate {
            order_id: order.order_id.clone(),
            status: order_status,
            paid_payment_id: order.paid_payment_id.clone(),
        }),
        flag,
        ..Plan::answer(Status::Ok, "Refund recorded")
    }
}

fn decide_capture(notice: &CaptureNotice, state: &CurrentState) -> Plan {
    let Some(payment) = &state.payment else {
        return Plan::early("capture", &notice.payment_id);
    };
    // Money captured on a payment we rejected: FreedomPay may have completed
    // it. Flagged, and asked about now rather than at the rejection's delay.
    let rejected = payment.status == PaymentStatus::Rejected;
    if rejected {
        warn!(payment_id = %Untrusted(&payment.payment_id), "capture of a rejected payment: flagged, asking FreedomPay");
    }
    Plan {
        payment: Some(Payment {
            captured: Some(true),
            ..payment.clone()
        }),
        flag: rejected.then(|| "capture_of_rejected: the payment was rejected".to_owned()),
        confirm: rejected.then(|| Confirm {
            subject: ConfirmSubject::Payment(payment.payment_id.clone()),
            due_in_secs: 0,
        }),
        ..Plan::answer(Status::Ok, "Capture recorded")
    }
}

fn decide_payout(notice: &PayoutNotice, state: &CurrentState, origin: Origin) -> Plan {
    if let Some(existing) = &state.payout
        && existing.status.is_final()
        && existing.status != notice.status
    {
        if origin == Origin::Delivery {
            // Two final statuses contradict each other: keep the first until
            // a signed `payout_status2` answer decides, and flag it.
            warn!(
                order_id = %Untrusted(&notice.order_id),
                stored = existing.status.as_str(),
                received = notice.status.as_str(),
                "payout notification contradicts a final status; kept the first, asking FreedomPay"
            );
            return Plan {
                flag: Some(format!(
                    "payout_contradiction: {} stored, {} received",
                    existing.status.as_str(),
                    notice.status.as_str()
                )),
                confirm: Some(Confirm {
                    subject: ConfirmSubject::Payout(notice.order_id.clone()),
                    due_in_secs: 0,
                }),
                ..Plan::answer(Status::Ok, "Payout notification recorded")
            };
        }
        warn!(
            order_id = %Untrusted(&notice.order_id),
            stored = existing.status.as_str(),
            decided = notice.status.as_str(),
            "payout status settled by FreedomPay's signed status answer"
        );
    }
    let previous = state.payout.as_ref();
    Plan {
        payout: Some(Payout {
            order_id: notice.order_id.clone(),
            payment_id: notice
                .payment_id
                .clone()
                .or_else(|| previous.and_then(|p| p.payment_id.clone())),
            status: notice.status,
            amount: notice.amount.or_else(|| previous.and_then(|p| p.amount)),
            card_mask: notice
                .card_mask
                .clone()
                .or_else(|| previous.and_then(|p| p.card_mask.clone())),
        }),
        ..Plan::answer(Status::Ok, "Payout notification recorded")
    }
}
