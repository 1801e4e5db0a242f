//! Refund tasks: send a refund at most once, and mark it done only when a
//! signed status shows the money returned.
//!
//! The request id is chosen and stored, with the amount and the total that
//! will confirm it, before the first call, and the stage is `sending` while a
//! call may be in flight. A task found in `sending` (the process died, or the
//! answer was lost or not believable) did not learn whether FreedomPay acted:
//! - `v5` and `card_api` send again with the same request id, which
//!   FreedomPay answers with the first outcome;
//! - `revoke` and `superapp` have no such key, so the signed status is asked
//!   first, and only a payment that shows no refund is sent again.

use super::{Reconciler, Step, refund_fact, refunded_total};
use crate::api::{ApiClient, ApiError, RefundMethod, RefundRequest};
use crate::domain::task::{RefundStage, Task};
use crate::protocol::Amount;
use crate::store::StoreError;
use crate::untrusted::Untrusted;

/// The task key of the automatic refund of a payment (one per payment).
pub const AUTO_REFUND_KEY: &str = "auto";

impl Reconciler {
    pub(super) async fn refund(
        &self,
        api: &ApiClient,
        task: &mut Task,
    ) -> Result<Step, StoreError> {
        let Some(method) = task.method.as_deref().and_then(RefundMethod::parse) else {
            return Ok(Step::GiveUp(format!(
                "unknown refund method {:?}",
                task.method
            )));
        };
        let payment = match self.task_payment(task).await? {
            Ok(payment) => payment,
            Err(step) => return Ok(step),
        };
        match task.stage.unwrap_or(RefundStage::New) {
            RefundStage::New => {
                if task.task_key == AUTO_REFUND_KEY && !payment.needs_refund {
                    return Ok(Step::Done(
                        "no longer needed: the payment was refunded or settled".into(),
                    ));
                }
                let remaining = payment
                    .amount
                    .checked_sub(payment.refunded_amount)
                    .unwrap_or_default();
                let amount = task.amount.unwrap_or(remaining);
                if amount.is_zero() || amount > remaining {
                    return Ok(Step::GiveUp(format!(
                        "cannot refund {amount}: {remaining} of the payment is left to refund"
                    )));
                }
                task.amount = Some(amount);
                task.confirm_total = payment.refunded_amount.checked_add(amount);
                task.request_id
                    .get_or_insert_with(|| uuid::Uuid::now_v7().to_string());
            }
            RefundStage::Sending if !method.is_idempotent() => {
                // Did the earlier attempt go through? Ask before sending again.
                match self.confirmation(api, task).await {
                    Ok(Some(total)) => return self.confirmed(task, &payment.order_id, total).await,
                    Ok(None) => {}
                    Err(e) => return Ok(Step::Again(e.to_string())),
                }
            }
            RefundStage::Sending => {}
            RefundStage::Requested => {
                return self
                    .confirm(
                        api,
                        task,
                        &payment.order_id,
                        "FreedomPay does not show the refund yet",
                    )
                    .await;
            }
        }
        self.send(api, method, task, &payment.order_id).await
    }

    /// Stores that a call is about to leave, makes it, and records the answer.
    async fn send(
        &self,
        api: &ApiClient,
        method: RefundMethod,
        task: &mut Task,
        order_id: &str,
    ) -> Result<Step, StoreError> {
        let (Some(request_id), Some(amount)) = (task.request_id.clone(), task.amount) else {
            return Ok(Step::GiveUp(
                "the refund has no request id or amount".into(),
            ));
        };
        task.stage = Some(RefundStage::Sending);
        // Committed before the call, attempt counted: if the process dies
        // while the call is in flight, the next attempt knows a request may
        // have left. (`finish` counts the attempt of a run that goes on.)
        let in_flight = Task {
            attempts: task.attempts + 1,
            ..task.clone()
        };
        if !self.store.save_task(&in_flight, 0, true).await? {
            return Ok(Step::Lost);
        }
        let request = RefundRequest {
            method,
            request_id: &request_id,
            payment_id: &task.subject_id,
            order_id,
            amount,
        };
        match api.send_refund(&request).await {
            Ok(accepted) => {
                tracing::info!(payment_id = %Untrusted(&task.subject_id), %request_id, method = method.as_str(), %amount, "refund requested");
                task.stage = Some(RefundStage::Requested);
                task.attempts = 0;
                task.refund_id = accepted.refund_id;
                task.outcome = Some("requested".into());
                // Confirm at once: often the refund shows immediately.
                self.confirm(
                    api,
                    task,
                    order_id,
                    "requested; FreedomPay does not show the refund yet",
                )
                .await
            }
            // A signed refusal: FreedomPay did not refund.
            Err(ApiError::Api {
                code, description, ..
            }) => Ok(Step::GiveUp(format!(
                "FreedomPay refused the refund: {code} {description}"
            ))),
            // No believable answer: whether it went through is unknown.
            Err(e) => Ok(Step::Again(e.to_string())),
        }
    }

    /// The refunded total, when a signed status shows this refund done.
    async fn confirmation(&self, api: &ApiClient, task: &Task) -> Result<Option<Amount>, ApiError> {
        let report = api.payment_status(Some(&task.subject_id), None).await?;
        let total = refunded_total(&report);
        Ok(match (total, task.confirm_total) {
            (Some(total), Some(needed)) if total >= needed => Some(total),
            _ => None,
        })
    }

    /// Done when a signed status shows the refund (applied through the
    /// callbacks' decisions); otherwise asked again later, with `pending` as
    /// the reason.
    async fn confirm(
        &self,
        api: &ApiClient,
        task: &Task,
        order_id: &str,
        pending: &str,
    ) -> Result<Step, StoreError> {
        match self.confirmation(api, task).await {
            Ok(Some(total)) => self.confirmed(task, order_id, total).await,
            Ok(None) => Ok(Step::Again(pending.to_owned())),
            Err(e) => Ok(Step::Again(e.to_string())),
        }
    }

    /// Applies the confirmed refund through the callbacks' decisions.
    async fn confirmed(
        &self,
        task: &Task,
        order_id: &str,
        total: Amount,
    ) -> Result<Step, StoreError> {
        let fact = refund_fact(&task.merchant_id, order_id, &task.subject_id, total);
        let mut answer = crate::protocol::Message::new();
        answer.push("pg_payment_id", task.subject_id.clone());
        answer.push("pg_refund_amount", total.canonical());
        if let Some(id) = &task.request_id {
            answer.push("request_id", id.clone());
        }
        self.apply(fact, &answer).await?;
        Ok(Step::Done(format!(
            "refunded; FreedomPay shows {total} refunded in total"
        )))
    }
}
