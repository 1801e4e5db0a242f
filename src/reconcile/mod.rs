//! The reconciler: a background task of `serve` that talks back to FreedomPay
//! for what its callbacks did not settle.
//!
//! Each round it
//! 1. creates the tasks that have become due (`Store::discover_tasks`):
//!    payments seen at check and payouts still in `process` for longer than
//!    `reconcile.after_secs`, and refunds of payments flagged `needs_refund`
//!    for merchants with `auto_refund` (searched on `database.read_url` when
//!    it is set, created on the primary); redirects schedule an order status
//!    query themselves, and callback decisions schedule confirmations (task
//!    key `confirm`: a rejected payment, refunds that cannot be told apart, a
//!    payout whose final statuses contradict each other), which ask whatever
//!    the stored status;
//! 2. claims up to `reconcile.batch` due tasks under a lease (several
//!    instances on one database take different tasks);
//! 3. works each: a signed status query whose verified answer is applied
//!    through the same decisions as callbacks (events of kind `reconcile`), or
//!    a refund step (`refunds`).
//!
//! A task that cannot finish yet is retried with exponential backoff, and
//! given up (`failed`, logged as an error) after its bounded attempts.

mod facts;
mod refunds;
mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::{error, info, warn};

use crate::api::ApiClient;
use crate::api::client::ClientSetupError;
use crate::config::{ConfigError, ReconcileSettings, Settings};
use crate::domain::pan::masked_fields_json;
use crate::domain::task::{RefundStage, Task, TaskKind, TaskState};
use crate::domain::{Callback, Payment, Rules};
use crate::protocol::Message;
use crate::store::{Delivery, Processed, Store, StoreError};
use crate::telemetry::metrics::RECONCILE_TASKS;
use crate::untrusted::Untrusted;

pub use facts::{
    PaymentFacts, payment_facts, payout_fact, refund_fact, refunded_total, shows_reverted,
};

/// Longest wait between two attempts of one task.
const MAX_BACKOFF_SECS: u64 = 3600;

/// One merchant's side of the reconciler.
#[derive(Debug)]
struct MerchantApi {
    client: ApiClient,
    auto_refund: Option<&'static str>,
}

/// The reconciler of one process.
#[derive(Debug)]
pub struct Reconciler {
    store: Store,
    rules: Arc<Rules>,
    settings: ReconcileSettings,
    merchants: HashMap<String, MerchantApi>,
}

/// How handling a task ended this time.
#[derive(Debug)]
pub(crate) enum Step {
    /// Finished, with what happened.
    Done(String),
    /// Not yet: try again after the backoff (counts as an attempt).
    Again(String),
    /// Given up: an operator must look.
    GiveUp(String),
    /// The claim was lost to another instance; leave the task alone.
    Lost,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub created: u64,
    pub handled: usize,
}

impl Reconciler {
    /// One API client per merchant. Fails on a configuration problem, or
    /// when the HTTP client cannot be set up (no CA certificates).
    pub fn new(settings: &Settings, store: Store) -> Result<Reconciler, ClientSetupError> {
        let mut merchants = HashMap::new();
        for merchant in &settings.merchants {
            let method = crate::api::RefundMethod::parse(&merchant.refund_method)
                .ok_or_else(|| ConfigError::new("refund_method", "unknown refund method"))?;
            merchants.insert(
                merchant.id.clone(),
                MerchantApi {
                    client: ApiClient::from_settings(&settings.api, merchant)?,
                    auto_refund: merchant.auto_refund.then_some(method.as_str()),
                },
            );
        }
        Ok(Reconciler {
            store,
            rules: Arc::new(Rules::from_settings(&settings.rules)?),
            settings: settings.reconcile.clone(),
            merchants,
        })
    }

    /// Runs rounds every `reconcile.interval_secs` until `shutdown` completes.
    /// A round that fails (the database is down) is logged and the next one
    /// tries again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        // The first round one interval after start: a process that restarts
        // in a loop does not hammer FreedomPay.
        let period = Duration::from_secs(self.settings.interval_secs);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        info!(
            after_secs = self.settings.after_secs,
            interval_secs = self.settings.interval_secs,
            "reconciler started"
        );
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = &mut shutdown => break,
            }
            match self.round().await {
                Ok(round) if round.created + round.handled as u64 > 0 => {
                    info!(
                        created = round.created,
                        handled = round.handled,
                        "reconcile round"
                    );
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "reconcile round failed; trying again next round"),
            }
        }
    }

    /// One round: create due tasks, claim a batch, work it.
    pub async fn round(&self) -> Result<Round, StoreError> {
        let auto_refund: Vec<(&str, &str)> = self
            .merchants
            .iter()
            .filter_map(|(id, m)| m.auto_refund.map(|method| (id.as_str(), method)))
            .collect();
        let created = self
            .store
            .discover_tasks(self.settings.after_secs, &auto_refund)
            .await?;
        let owner = crate::protocol::answer::fresh_salt();
        let tasks = self
            .store
            .claim_tasks(&owner, self.settings.lease_secs, self.settings.batch)
            .await?;
        let handled = tasks.len();
        for task in tasks {
            self.handle(task).await?;
        }
        Ok(Round { created, handled })
    }

    /// Works the task `id` now, due or not (the `refund` command). False when
    /// it is not open or another instance holds it.
    pub async fn run_task(&self, id: i64) -> Result<bool, StoreError> {
        let owner = crate::protocol::answer::fresh_salt();
        match self
            .store
            .claim_task(id, &owner, self.settings.lease_secs)
            .await?
        {
            Some(task) => {
                self.handle(task).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The API client of `merchant_id`.
    pub fn client(&self, merchant_id: &str) -> Option<&ApiClient> {
        self.merchants.get(merchant_id).map(|m| &m.client)
    }

    /// Applies a verified payout answer (of a payout request or a status
    /// query) when it is final. `None` while the payout is in `process`.
    pub async fn apply_payout_answer(
        &self,
        merchant_id: &str,
        order_id: &str,
        answer: &Message,
    ) -> Result<Option<Processed>, StoreError> {
        match payout_fact(merchant_id, order_id, answer) {
            Some(fact) => self.apply(fact, answer).await.map(Some),
            None => Ok(None),
        }
    }

    async fn handle(&self, mut task: Task) -> Result<(), StoreError> {
        let Some(merchant) = self.merchants.get(&task.merchant_id) else {
            let reason = format!("merchant {} is not configured", task.merchant_id);
            return self.finish(task, Step::GiveUp(reason)).await;
        };
        let step = match task.kind {
            TaskKind::PaymentStatus => self.payment_status(&merchant.client, &task).await,
            TaskKind::OrderStatus => self.order_status(&merchant.client, &task).await,
            TaskKind::PayoutStatus => self.payout_status(&merchant.client, &task).await,
            TaskKind::Refund => self.refund(&merchant.client, &mut task).await,
        };
        // A database failure leaves the task claimed: its lease runs out and
        // a later round takes it again.
        let step = step?;
        self.finish(task, step).await
    }

    /// Records how the task ended this time, with backoff for another attempt.
    async fn finish(&self, mut task: Task, step: Step) -> Result<(), StoreError> {
        let limit = self.attempt_limit(&task);
        let (due_in, step) = match step {
            Step::Again(reason) if task.attempts + 1 >= limit as i32 => (
                0,
                Step::GiveUp(format!("{reason} (gave up after {} attempts)", limit)),
            ),
            Step::Again(reason) => {
                task.attempts += 1;
                (self.backoff(task.attempts), Step::Again(reason))
            }
            other => (0, other),
        };
        let label = match &step {
            Step::Done(_) => "done",
            Step::Again(_) => "again",
            Step::GiveUp(_) => "failed",
            Step::Lost => "lost",
        };
        metrics::counter!(RECONCILE_TASKS, "task" => task.kind.as_str(), "outcome" => label)
            .increment(1);
        match &step {
            Step::Done(outcome) => {
                task.state = TaskState::Done;
                task.outcome = Some(outcome.clone());
                info!(task = task.kind.as_str(), subject = %Untrusted(&task.subject_id), outcome = %Untrusted(outcome), "task done");
            }
            Step::Again(reason) => {
                task.last_error = Some(reason.clone());
                info!(task = task.kind.as_str(), subject = %Untrusted(&task.subject_id), reason = %Untrusted(reason), attempts = task.attempts, retry_in_secs = due_in, "task not finished yet");
            }
            Step::GiveUp(reason) => {
                task.state = TaskState::Failed;
                task.last_error = Some(reason.clone());
                error!(task = task.kind.as_str(), subject = %Untrusted(&task.subject_id), reason = %Untrusted(reason), "task given up; an operator must look");
            }
            Step::Lost => {
                warn!(task = task.kind.as_str(), subject = %Untrusted(&task.subject_id), "task was taken over by another instance");
                return Ok(());
            }
        }
        if !self.store.save_task(&task, due_in, false).await? {
            warn!(task = task.kind.as_str(), subject = %Untrusted(&task.subject_id), "task was taken over by another instance; its result here is dropped");
        }
        Ok(())
    }

    fn attempt_limit(&self, task: &Task) -> u32 {
        match (task.kind, task.stage) {
            (TaskKind::Refund, Some(RefundStage::New | RefundStage::Sending)) => {
                self.settings.refund_max_attempts
            }
            _ => self.settings.max_attempts,
        }
    }

    /// `retry_base_secs`, doubled for every attempt made, at most an hour.
    /// Public for the direct tests in `tests/it/core_reconcile.rs`.
    pub fn backoff(&self, attempts: i32) -> u64 {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.settings
            .retry_base_secs
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF_SECS)
    }

    /// The payment a task is about; a task whose payment is not in the
    /// database ends (there is nothing to reconcile it with).
    async fn task_payment(&self, task: &Task) -> Result<Result<Payment, Step>, StoreError> {
        Ok(self
            .store
            .payment(&task.merchant_id, &task.subject_id)
            .await?
            .ok_or_else(|| Step::GiveUp("the payment is not in the database".into())))
    }

    /// Applies a reconciled fact through the callbacks' own decisions; the
    /// event records the verified answer it came from.
    async fn apply(&self, callback: Callback, answer: &Message) -> Result<Processed, StoreError> {
        let delivery = Delivery {
            callback,
            fields_json: masked_fields_json(answer),
            signature_variant: "canonical",
            key_label: "current",
            // A status answer is FreedomPay's word at the time of asking: it
            // never conflicts with an earlier answer under the same key.
            fingerprint: None,
            flag: None,
        };
        self.store
            .process(delivery, self.rules.clone(), Utc::now())
            .await
    }
}
