//! The group-commit queue, backend-neutral: callbacks, redirects and
//! unparsed deliveries queue here ([`Writer::process`]), and the write
//! path's workers (`callbacks::path`; SQLite: one, PostgreSQL: a few) each
//! take every job waiting as a group ([`Jobs::next_group`]). Each caller
//! gets its answer through its job's reply, sent only after the commit that
//! holds it; when a group fails as a whole, [`fail_all`] gives every caller
//! the error (so FreedomPay retries it).

use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::steps::Work;
use crate::store::{Delivery, Processed, StoreError};
use crate::webhooks::Endpoint;

/// Callbacks folded into one transaction at most.
const MAX_GROUP: usize = 128;

/// Callbacks waiting for the writer at most; beyond it, callers wait to queue.
const QUEUE: usize = 1024;

/// One queued callback and where its answer goes.
pub(crate) struct Job {
    pub(crate) delivery: Delivery,
    pub(crate) work: Work,
    pub(crate) span: tracing::Span,
    pub(crate) reply: oneshot::Sender<Result<Processed, StoreError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

/// The handle callers queue on.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    /// The outbox's endpoints and signal, shared with the workers.
    outbox: Arc<Outbox>,
}

/// The write path's outbox, shared by the queue's handle and the workers.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// The webhook endpoints outbox rows are written for, set once when the
    /// service starts (`Store::announce_to`); unset or empty: no rows.
    pub(crate) endpoints: OnceLock<Arc<[Endpoint]>>,
    /// Signalled after a commit that wrote deliveries, so that the
    /// dispatcher sends them at once (polling is the backstop).
    pub(crate) written: Notify,
}

/// The workers' end of the queue, shared by all of them: each takes every
/// job waiting (up to [`MAX_GROUP`]) as its next group.
#[derive(Clone, Debug)]
pub(crate) struct Jobs(Arc<Mutex<mpsc::Receiver<Job>>>);

/// A new queue: the callers' handle and the workers' end.
pub(crate) fn channel(outbox: Arc<Outbox>) -> (Writer, Jobs) {
    let (queue, jobs) = mpsc::channel(QUEUE);
    (Writer { queue, outbox }, Jobs(Arc::new(Mutex::new(jobs))))
}

impl Jobs {
    /// Waits for the next group; `None` once every [`Writer`] is gone and
    /// the queue is empty.
    pub(crate) async fn next_group(&self) -> Option<Vec<Job>> {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let received = self.0.lock().await.recv_many(&mut group, MAX_GROUP).await;
        (received > 0).then_some(group)
    }
}

impl Writer {
    /// Sets the endpoints the outbox is written for; false when they were
    /// set already (they are fixed for the process's life).
    pub(crate) fn announce_to(&self, endpoints: Arc<[Endpoint]>) -> bool {
        self.outbox.endpoints.set(endpoints).is_ok()
    }

    /// The names of the endpoints the outbox is written for (none before
    /// [`Writer::announce_to`]).
    pub(crate) fn announced(&self) -> Vec<String> {
        self.outbox
            .endpoints
            .get()
            .map_or_else(Vec::new, |endpoints| {
                endpoints.iter().map(|e| e.name.clone()).collect()
            })
    }

    /// Waits until a commit has written deliveries (since the last wait).
    pub(crate) async fn deliveries_written(&self) {
        self.outbox.written.notified().await;
    }

    pub(crate) async fn process(
        &self,
        delivery: Delivery,
        work: Work,
    ) -> Result<Processed, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            delivery,
            work,
            span: tracing::Span::current(),
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

pub(crate) fn fail_all(
    replies: impl Iterator<Item = oneshot::Sender<Result<Processed, StoreError>>>,
    error: &StoreError,
) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::GroupFailed(error.to_string())));
    }
}
