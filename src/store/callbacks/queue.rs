//! The group-commit queue, backend-neutral: callbacks, redirects and
//! unparsed deliveries queue here ([`Writer::process`]), and writer tasks each
//! take every job waiting as a group and hand it to the write path
//! (`callbacks::path::run_group`; SQLite: one worker, PostgreSQL: a few).
//! Each caller gets its answer through its job's reply, sent only after the
//! commit that holds it; when a group fails as a whole, [`fail_all`] gives
//! every caller the error (so FreedomPay retries it).

use tokio::sync::{mpsc, oneshot};

use super::steps::Work;
use crate::store::{Delivery, Processed, StoreError};

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
}

impl Writer {
    /// Starts a writer task that hands each group of waiting jobs to `run`,
    /// and awaits `finish` once every handle is gone.
    ///
    /// `workers` tasks take groups from the one queue, so that as many groups
    /// can be in flight at once (each on a connection of its own).
    pub(crate) fn start<F, Fut, Done>(run: F, finish: Done, workers: usize) -> Writer
    where
        F: Fn(Vec<Job>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
        Done: std::future::Future<Output = ()> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = std::sync::Arc::new(tokio::sync::Mutex::new(jobs));
        let tasks: Vec<_> = (0..workers.max(1))
            .map(|_| {
                let (jobs, run) = (jobs.clone(), run.clone());
                tokio::spawn(async move {
                    let mut group = Vec::with_capacity(MAX_GROUP);
                    loop {
                        let received = jobs.lock().await.recv_many(&mut group, MAX_GROUP).await;
                        if received == 0 {
                            break;
                        }
                        run(std::mem::take(&mut group)).await;
                    }
                })
            })
            .collect();
        tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
            finish.await;
        });
        Writer { queue }
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
