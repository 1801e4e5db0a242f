//! Group commit: callbacks queue here, and one writer task takes every callback
//! that is waiting as a group. For SQLite's single writer the group runs in one
//! transaction, then commits once (each callback in a savepoint of its own
//! only when one of them fails).
//! (PostgreSQL's groups are in `pg_group`.) One fsync then covers the whole
//! group, and no connection spins on SQLite's busy lock. Each caller gets its
//! answer only after the shared commit; if the commit fails, every callback of
//! the group gets the error (so FreedomPay retries it). If a callback's own
//! steps fail, the group runs again with a savepoint per callback, so that
//! callback is rolled back to its savepoint without touching the others.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::group_decide::groupable;
use super::sqlite::SqliteTx;
use super::sqlite_group;
use super::{CallbackTx, Decide, Delivery, Processed, StoreError, process_steps};
use crate::domain::IdempotencyKey;

/// Callbacks folded into one transaction at most.
const MAX_GROUP: usize = 128;

/// Callbacks waiting for the writer at most; beyond it, callers wait to queue.
const QUEUE: usize = 1024;

/// One queued callback and where its answer goes.
pub(crate) struct Job {
    pub(crate) delivery: Delivery,
    pub(crate) decide: Decide,
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
    /// Starts the SQLite writer task on `pool` (which should hold one connection).
    pub(crate) fn start_sqlite(pool: SqlitePool) -> Writer {
        let closing = pool.clone();
        Self::start(
            move |group| {
                let pool = pool.clone();
                async move { run_group(&pool, group).await }
            },
            async move { closing.close().await },
            1,
        )
    }

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
        decide: Decide,
    ) -> Result<Processed, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            delivery,
            decide,
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

async fn run_group(pool: &SqlitePool, group: Vec<Job>) {
    // First the whole group in one transaction without savepoints: two
    // statements fewer per callback. If one callback's steps fail, nothing of
    // that attempt is kept, and the group runs again with a savepoint per
    // callback, so that only the failing callback fails.
    match run_without_savepoints(pool, &group).await {
        Ok(results) => {
            for (job, result) in group.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(error) if group.len() == 1 || error.is_unavailable() => {
            fail_all(group.into_iter().map(|j| j.reply), &error);
        }
        Err(_) => run_with_savepoints(pool, group).await,
    }
}

async fn run_without_savepoints(
    pool: &SqlitePool,
    group: &[Job],
) -> Result<Vec<Processed>, StoreError> {
    let mut tx = SqliteTx::begin(pool).await?;
    // The groupable callbacks are decided together in a few group-wide
    // statements; the others one by one after them, in the same transaction.
    let keyed = groupable(group);
    let mut results: Vec<Option<Processed>> = group.iter().map(|_| None).collect();
    if keyed.len() > 1 {
        let pairs: Vec<(&Job, &IdempotencyKey)> =
            keyed.iter().map(|(i, k)| (&group[*i], k)).collect();
        // `None`: a repeat or a decision the group path does not take; all
        // of the group then takes the per-callback steps below.
        if let Some(batched) = sqlite_group::run_batch(tx.connection(), &pairs).await? {
            for ((index, _), processed) in keyed.iter().zip(batched) {
                results[*index] = Some(processed);
            }
        }
    }
    for (index, job) in group.iter().enumerate() {
        if results[index].is_none() {
            let steps = process_steps(&mut tx, &job.delivery, &job.decide);
            results[index] = Some(steps.instrument(job.span.clone()).await?);
        }
    }
    tx.commit().await?;
    Ok(results.into_iter().flatten().collect())
}

async fn run_with_savepoints(pool: &SqlitePool, group: Vec<Job>) {
    let mut tx = match SqliteTx::begin(pool).await {
        Ok(tx) => tx,
        Err(e) => return fail_all(group.into_iter().map(|j| j.reply), &e),
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let steps = async {
            tx.savepoint().await?;
            let result = process_steps(&mut tx, &job.delivery, &job.decide).await;
            match &result {
                Ok(_) => tx.release().await?,
                Err(_) => tx.rollback_to_savepoint().await?,
            }
            Ok::<_, StoreError>(result)
        }
        .instrument(job.span)
        .await;
        match steps {
            Ok(result) => outcomes.push((job.reply, result)),
            Err(e) => {
                // The transaction itself is unusable: nothing of the group commits.
                let replies = outcomes
                    .into_iter()
                    .map(|(reply, _)| reply)
                    .chain(std::iter::once(job.reply));
                return fail_all(replies, &e);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, result) in outcomes {
                let _ = reply.send(result);
            }
        }
        Err(e) => fail_all(outcomes.into_iter().map(|(reply, _)| reply), &e),
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
