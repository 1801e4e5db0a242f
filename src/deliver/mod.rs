//! The dispatcher: sends the webhook outbox's deliveries to the merchant's
//! endpoints (`[[webhooks]]`). A background task of `serve` when endpoints
//! are configured, or the `deliver` command. It
//! 1. claims due deliveries with a lease (`Store::claim_deliveries`), as
//!    many as it has free slots (256 in flight at most): each the head of
//!    its endpoint's queue for its payment or payout, so one subject's
//!    messages arrive in commit order while different subjects never wait
//!    for each other (instances sharing a database take different
//!    deliveries);
//! 2. sends each in a task of its own, signed at its attempt's time
//!    (`webhooks::Sender`), so a slow endpoint holds only its own
//!    deliveries;
//! 3. settles the attempts (`Store::settle_deliveries`, all that finished
//!    meanwhile in one transaction): delivered on a 2xx; otherwise tried
//!    again on the schedule (`webhooks::Schedule`, `Retry-After`
//!    honoured), dead after the last attempt or on `410 Gone`.
//!
//! An endpoint that answers `410 Gone` says it no longer wants messages:
//! that delivery is dead and this process claims nothing more for the
//! endpoint until it is restarted (an error in the log, the gauge
//! `freedompay_webhook_endpoint_disabled` at 1 and its alert). Its other
//! deliveries stay pending, so fixing the endpoint (or removing it from
//! `[[webhooks]]`) and restarting loses nothing.
//!
//! It is woken at once after a commit of this process that wrote
//! deliveries, on PostgreSQL also by other instances' commits (`LISTEN
//! freedompay_events`, `store::listen`), and polls every
//! `webhook_delivery.poll_interval_ms` for the rest (retries falling due,
//! a lost listening connection).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{error, warn};

use crate::config::WebhookDeliverySettings;
use crate::store::outbox::{Claimed, Settled};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::{
    WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINT_DISABLED,
};
use crate::webhooks::{Endpoint, Next, Outcome, Schedule, Sender, SenderError};

/// Deliveries being sent at once at most: with [`GATHER`], what one
/// dispatcher can send (about `IN_FLIGHT` per gathering and round trip,
/// several thousand a second), above what one instance's callbacks write.
const IN_FLIGHT: usize = 256;
/// Attempts settled in one transaction at most.
const SETTLE_BATCH: usize = 256;
/// How long the loop gathers after a wake-up before it claims. Each claim
/// and each settlement is a transaction of its own on the database the
/// callbacks write to; under load, a longer gathering makes them fewer and
/// larger (their cost is mostly per transaction), at the price of these
/// milliseconds of delivery latency (the goal is a p99 of 250 ms).
const GATHER: Duration = Duration::from_millis(20);

/// The dispatcher of one process.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    endpoints: HashMap<String, Arc<Endpoint>>,
    sender: Sender,
    schedule: Schedule,
    /// Who holds a claimed delivery's lease: this process.
    owner: String,
    lease_secs: u64,
    poll: Duration,
    /// Endpoints that answered 410 Gone: nothing more is claimed for them.
    gone: Mutex<HashSet<String>>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        endpoints: Vec<Endpoint>,
        settings: &WebhookDeliverySettings,
    ) -> Result<Dispatcher, SenderError> {
        Ok(Dispatcher {
            store,
            endpoints: endpoints
                .into_iter()
                .map(|e| (e.name.clone(), Arc::new(e)))
                .collect(),
            sender: Sender::new()?,
            schedule: settings.schedule(),
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            lease_secs: settings.lease_secs,
            poll: Duration::from_millis(settings.poll_interval_ms.max(10)),
            gone: Mutex::new(HashSet::new()),
        })
        .inspect(|dispatcher: &Dispatcher| {
            for name in dispatcher.endpoints.keys() {
                metrics::gauge!(WEBHOOK_ENDPOINT_DISABLED, "endpoint" => name.clone()).set(0.0);
            }
        })
    }

    /// Claims and sends until `stop` completes. Up to [`IN_FLIGHT`]
    /// deliveries are sent at once, each in a task of its own: a slow or
    /// silent endpoint holds only its own deliveries (and the later messages
    /// of their payments) until its timeout, never a batch of others. What
    /// the attempts came to is settled by one task, everything finished
    /// meanwhile in one transaction; each settlement wakes the loop, since
    /// the next message of a payment may now be sent. After a wake-up the
    /// loop gathers for [`GATHER`] before it claims, so that under load one
    /// claim takes many deliveries rather than each commit's few. At `stop`
    /// the deliveries in flight are abandoned with the task (their leases
    /// run out and they are sent again: at least once).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let this = Arc::new(self);
        let mut commits = this.store.commits(this.poll);
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let settled = Arc::new(Notify::new());
        let (finished, to_settle) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(this.clone().settle(to_settle, settled.clone()));
        loop {
            while tasks.try_join_next().is_some() {}
            let free = u32::try_from(slots.available_permits()).unwrap_or(0);
            let claimed = match this.claim(free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!(error = %e, "webhook dispatcher: claiming failed; trying again after the poll interval");
                    Vec::new()
                }
            };
            // A full claim may have left more behind; otherwise wait.
            let more = free > 0 && claimed.len() == free as usize;
            for delivery in claimed {
                // Never waits: no more were claimed than slots were free,
                // and only this loop takes them.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (this, finished) = (this.clone(), finished.clone());
                tasks.spawn(async move {
                    if let Some(settled) = this.attempt(&delivery).await {
                        // The slot is freed once the attempt is settled.
                        let _ = finished.send((settled, slot));
                    }
                });
            }
            if more {
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = this.store.deliveries_written() => {}
                () = commits.heard() => {}
                () = settled.notified() => {}
                () = tokio::time::sleep(this.poll) => {}
            }
            tokio::time::sleep(GATHER).await;
        }
    }

    /// Settles finished attempts as they come, together: one transaction
    /// for all that finished while the previous one was written.
    async fn settle(
        self: Arc<Self>,
        mut finished: mpsc::UnboundedReceiver<(Settled, OwnedSemaphorePermit)>,
        settled: Arc<Notify>,
    ) {
        let mut batch = Vec::new();
        while finished.recv_many(&mut batch, SETTLE_BATCH).await > 0 {
            let attempts: Vec<Settled> = batch.iter().map(|(s, _)| s.clone()).collect();
            if let Err(e) = self.store.settle_deliveries(&self.owner, &attempts).await {
                warn!(error = %e, deliveries = attempts.len(), "webhook dispatcher: attempts could not be recorded; they are sent again after their leases");
            }
            // Frees the slots.
            batch.clear();
            settled.notify_one();
        }
    }

    /// Claims up to `free` due deliveries to the endpoints still wanted.
    async fn claim(&self, free: u32) -> Result<Vec<Claimed>, StoreError> {
        let names: Vec<&str> = {
            let gone = self.gone_endpoints();
            self.endpoints
                .keys()
                .filter(|name| !gone.contains(*name))
                .map(String::as_str)
                .collect()
        };
        if names.is_empty() || free == 0 {
            return Ok(Vec::new());
        }
        self.store
            .claim_deliveries(&self.owner, self.lease_secs, free, &names)
            .await
    }

    /// Sends one claimed delivery; what came of it, to be settled.
    async fn attempt(&self, claimed: &Claimed) -> Option<Settled> {
        // Claims name only configured endpoints.
        let endpoint = self.endpoints.get(&claimed.endpoint)?;
        let attempt = self
            .sender
            .send(
                endpoint,
                &claimed.message_id,
                Utc::now().timestamp(),
                &claimed.body,
            )
            .await;
        let attempt_no = u32::try_from(claimed.attempts)
            .unwrap_or(0)
            .saturating_add(1);
        let (state, retry_in_ms, outcome, reason) = match &attempt.outcome {
            Outcome::Delivered => ("delivered", 0, "delivered", None),
            Outcome::Gone => {
                error!(
                    endpoint = %endpoint.name,
                    message_id = %claimed.message_id,
                    "the webhook endpoint answered 410 Gone: this delivery is dead and the endpoint is disabled until restart (its other deliveries wait); fix it or remove it from [[webhooks]], then restart"
                );
                self.disable(&endpoint.name);
                ("dead", 0, "gone", Some("410 Gone".to_owned()))
            }
            Outcome::Failed { reason } => {
                let now = Utc::now();
                match self
                    .schedule
                    .after_failure(attempt_no, attempt.retry_after, now)
                {
                    Next::RetryAt(at) => (
                        "pending",
                        (at - now).num_milliseconds().max(0),
                        "failed",
                        Some(reason.clone()),
                    ),
                    Next::Dead => {
                        warn!(
                            endpoint = %endpoint.name,
                            message_id = %claimed.message_id,
                            attempts = attempt_no,
                            "a webhook delivery is dead after its last attempt; `webhooks replay` sends it again"
                        );
                        ("dead", 0, "failed", Some(reason.clone()))
                    }
                }
            }
        };
        let counted = if state == "dead" { "dead" } else { outcome };
        metrics::counter!(WEBHOOK_DELIVERIES, "endpoint" => endpoint.name.clone(), "outcome" => counted)
            .increment(1);
        metrics::histogram!(WEBHOOK_ATTEMPT_SECONDS, "endpoint" => endpoint.name.clone())
            .record(attempt.latency.as_secs_f64());
        let excerpt = (!attempt.excerpt.is_empty()).then(|| attempt.excerpt.clone());
        Some(Settled {
            message_id: claimed.message_id.clone(),
            endpoint: claimed.endpoint.clone(),
            state,
            retry_in_ms,
            outcome,
            status: attempt.status.map(i32::from),
            latency_ms: i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX),
            excerpt,
            error: reason,
        })
    }
}

impl Dispatcher {
    /// The endpoints that answered 410 Gone.
    fn gone_endpoints(&self) -> HashSet<String> {
        // A poisoned lock only means a panic elsewhere held it; the set is
        // still whole.
        match self.gone.lock() {
            Ok(gone) => gone.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Claims nothing more for `endpoint` in this process.
    fn disable(&self, endpoint: &str) {
        match self.gone.lock() {
            Ok(mut gone) => gone.insert(endpoint.to_owned()),
            Err(poisoned) => poisoned.into_inner().insert(endpoint.to_owned()),
        };
        metrics::gauge!(WEBHOOK_ENDPOINT_DISABLED, "endpoint" => endpoint.to_owned()).set(1.0);
    }
}
