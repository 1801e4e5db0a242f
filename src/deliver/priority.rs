//! The runtime the dispatcher sends on: a thread of its own at a lower CPU
//! priority than the callbacks' (`webhook_delivery.nice`, 10 by default).
//!
//! Callbacks carry money and FreedomPay waits for their answers; a webhook
//! can wait. When the cores are short (a burst of callbacks), the kernel
//! then runs the callbacks first and the sending thread in what is left:
//! deliveries fall behind, stay pending in the outbox (nothing is lost,
//! order per payment is kept) and catch up once the burst is over. When
//! the cores are not short, a lower priority costs nothing: the thread runs
//! as soon as it is woken. Only the sending (signing, the HTTP request, its
//! answer) runs here; claims and settlements stay with the caller, and
//! since no more are claimed than attempts have finished, they follow the
//! sending's pace.

use tokio::runtime::{Builder, Handle, Runtime};
use tracing::warn;

/// The sending runtime; shut down (without waiting for its tasks) when
/// dropped, which may happen inside another runtime.
#[derive(Debug)]
pub(crate) struct SendRuntime(Option<Runtime>);

impl SendRuntime {
    /// One worker thread, `nice` steps below the caller's priority (0: the
    /// same priority).
    pub(crate) fn start(nice: u8) -> std::io::Result<SendRuntime> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fpr-webhooks")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        Ok(SendRuntime(Some(runtime)))
    }

    pub(crate) fn handle(&self) -> Option<&Handle> {
        self.0.as_ref().map(Runtime::handle)
    }
}

impl Drop for SendRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Raises the calling thread's nice value by `nice` (at most to 19). On
/// Linux the nice value is a thread's own, so only this thread (and no
/// callback's) runs at the lower priority. If the system refuses, the
/// thread sends at the callbacks' priority, and says so.
#[cfg(target_os = "linux")]
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    let thread = rustix::thread::gettid();
    let lowered = rustix::process::getpriority_process(Some(thread)).and_then(|now| {
        rustix::process::setpriority_process(Some(thread), (now + i32::from(nice)).min(19))
    });
    if let Err(error) = lowered {
        warn!(%error, "webhook sending thread: its CPU priority could not be lowered; it sends at the callbacks' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(nice: u8) {
    if nice > 0 {
        warn!(
            "webhook sending thread: a lower CPU priority is set only on Linux; it sends at the callbacks' priority"
        );
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::SendRuntime;

    fn nice_of_this_thread() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    // Seen failing (the task ran at the caller's nice) with `lower_priority`
    // not called at the thread's start.
    #[test]
    fn what_it_runs_runs_that_many_steps_below_the_caller() {
        let here = nice_of_this_thread();
        for nice in [0, 3, 19] {
            let sending = SendRuntime::start(nice).unwrap();
            let handle = sending.handle().unwrap().clone();
            let there = handle
                .block_on(handle.spawn(async { nice_of_this_thread() }))
                .unwrap();
            assert_eq!(there, (here + i32::from(nice)).min(19), "nice {nice}");
            assert_eq!(
                nice_of_this_thread(),
                here,
                "the caller's own priority is unchanged"
            );
        }
    }
}
