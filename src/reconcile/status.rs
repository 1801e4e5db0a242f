//! Status tasks: ask FreedomPay about a payment, an order or a payout whose
//! callback never came, and apply a final answer.

use super::{PaymentFacts, Reconciler, Step, payment_facts, payout_fact, shows_reverted};
use crate::api::{ApiClient, ApiError, PaymentStatusReport};
use crate::domain::task::{CONFIRM_KEY, Task};
use crate::domain::{OrderStatus, PaymentStatus};
use crate::store::StoreError;

impl Reconciler {
    /// A payment seen at check, still without a result.
    pub(super) async fn payment_status(
        &self,
        api: &ApiClient,
        task: &Task,
    ) -> Result<Step, StoreError> {
        let payment = match self.task_payment(task).await? {
            Ok(payment) => payment,
            Err(step) => return Ok(step),
        };
        // A confirmation asks whatever the stored status: it is asked because
        // the callbacks alone cannot settle it.
        if payment.status != PaymentStatus::Pending && task.task_key != CONFIRM_KEY {
            return Ok(Step::Done(format!(
                "the result arrived meanwhile ({})",
                payment.status.as_str()
            )));
        }
        let report = match api.payment_status(Some(&payment.payment_id), None).await {
            Ok(report) => report,
            Err(e) => return Ok(Step::Again(e.to_string())),
        };
        let fallback = (
            payment.payment_id.as_str(),
            payment.amount,
            payment.currency.as_str(),
        );
        self.apply_report(
            &task.merchant_id,
            &payment.order_id,
            Some(fallback),
            &report,
        )
        .await
    }

    /// An order the payer came back from, with no result.
    pub(super) async fn order_status(
        &self,
        api: &ApiClient,
        task: &Task,
    ) -> Result<Step, StoreError> {
        let order = self
            .store
            .order(&task.merchant_id, &task.subject_id)
            .await?;
        if let Some(order) = &order
            && order.status != OrderStatus::Pending
        {
            return Ok(Step::Done(format!(
                "the order is {} already",
                order.status.as_str()
            )));
        }
        let report = match api.payment_status(None, Some(&task.subject_id)).await {
            Ok(report) => report,
            // A signed "no such payment": the payer never paid.
            Err(ApiError::Api {
                code, description, ..
            }) => {
                return Ok(Step::Done(format!(
                    "FreedomPay knows no payment: {code} {description}"
                )));
            }
            Err(e) => return Ok(Step::Again(e.to_string())),
        };
        self.apply_report(&task.merchant_id, &task.subject_id, None, &report)
            .await
    }

    async fn apply_report(
        &self,
        merchant_id: &str,
        order_id: &str,
        fallback: Option<(&str, crate::protocol::Amount, &str)>,
        report: &PaymentStatusReport,
    ) -> Result<Step, StoreError> {
        // A payment we rejected that FreedomPay shows reverted: the rejection
        // is confirmed. Applied as a result, `revoked`/`refunded` would read
        // as a completed payment and flag a refund of money already returned.
        if let Some(payment_id) = report
            .payment_id
            .as_deref()
            .or(fallback.map(|(id, _, _)| id))
            && let Some(payment) = self.store.payment(merchant_id, payment_id).await?
            && payment.status == PaymentStatus::Rejected
            && shows_reverted(report, payment.amount)
        {
            return Ok(Step::Done(format!(
                "the rejection is confirmed: FreedomPay reports the payment as {}",
                report.payment_status
            )));
        }
        match payment_facts(merchant_id, order_id, fallback, report) {
            PaymentFacts::NotFinal(status) => Ok(Step::Again(format!(
                "FreedomPay reports the payment as {status}"
            ))),
            PaymentFacts::Final(facts) => {
                let mut answers = Vec::new();
                for fact in facts {
                    let processed = self.apply(fact, &report.response).await?;
                    answers.push(processed.description);
                }
                Ok(Step::Done(format!(
                    "{}: {}",
                    report.payment_status,
                    answers.join("; ")
                )))
            }
        }
    }

    /// A payout without a final status.
    pub(super) async fn payout_status(
        &self,
        api: &ApiClient,
        task: &Task,
    ) -> Result<Step, StoreError> {
        if let Some(payout) = self
            .store
            .payout(&task.merchant_id, &task.subject_id)
            .await?
            && payout.status.is_final()
            && task.task_key != CONFIRM_KEY
        {
            return Ok(Step::Done(format!(
                "the payout notify arrived meanwhile ({})",
                payout.status.as_str()
            )));
        }
        let response = match api.payout_status(&task.subject_id).await {
            Ok(response) => response,
            Err(e) => return Ok(Step::Again(e.to_string())),
        };
        match payout_fact(&task.merchant_id, &task.subject_id, &response) {
            Some(fact) => {
                let processed = self.apply(fact, &response).await?;
                Ok(Step::Done(processed.description))
            }
            None => Ok(Step::Again(
                "FreedomPay reports the payout in process".into(),
            )),
        }
    }
}
