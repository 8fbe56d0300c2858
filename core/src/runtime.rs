//! The library's one tokio runtime: started lazily on first need, two worker threads
//! named `peerlb-rt`. Timers (async waits), health checks and updaters run on it.
//!
//! # Nothing blocks an async worker
//!
//! Two workers serve every list, probe, updater and timer of the process, so a worker that
//! blocks stalls all of them. The rule the library follows:
//!
//! * **Async workers** run only non-blocking futures: timers, sockets, DNS and etcd
//!   clients, and the bookkeeping around them.
//! * **The blocking pool** ([`spawn_blocking`], [`run_blocking`]) runs everything that may
//!   block or take long, and every user callback: file reads, name resolution, transports'
//!   `retain`/`release` (reached through `PeerList::update`), strategies' rebuilds after a
//!   status report, updater and event callbacks, timer callbacks, blocking health checks.
//! * **Drops** that may run user code (the last handle of a list releases its peers; a C
//!   check frees its user data) are moved to the blocking pool when they would happen on a
//!   worker ([`on_worker_thread`]).
//!
//! Deadlines of `choose` do not depend on the runtime at all (they use their own timer
//! thread), so a busy runtime can delay health checks and updates, never a `choose`.
//!
//! ```
//! use peerlb::runtime;
//! let answer = runtime::handle().block_on(runtime::spawn_blocking(|| {
//!     assert!(!runtime::on_worker_thread()); // user code may block here
//!     6 * 7
//! }));
//! assert_eq!(answer.unwrap(), 42);
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Worker threads of the library runtime.
pub const RUNTIME_THREADS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// A handle to the library runtime, starting it on first call.
pub fn handle() -> Handle {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(RUNTIME_THREADS)
                .thread_name("peerlb-rt")
                .on_thread_start(|| RUNTIME_THREAD.with(|t| t.set(true)))
                .enable_all()
                .build()
                .expect("peerlb: cannot start the tokio runtime")
        })
        .handle()
        .clone()
}

thread_local! {
    /// Set on the runtime's own threads (workers and blocking pool).
    static RUNTIME_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set while [`spawn_blocking`] runs a job on a blocking-pool thread.
    static IN_BLOCKING_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is one of the runtime's async workers, where user callbacks must
/// not run (a slow callback would stall every timer, probe and updater of the library).
///
/// A blocking-pool thread counts as a worker unless it runs a job of [`spawn_blocking`] or
/// [`run_blocking`], so the answer errs on the side of moving work off the thread.
pub fn on_worker_thread() -> bool {
    RUNTIME_THREAD.with(Cell::get) && !IN_BLOCKING_JOB.with(Cell::get)
}

/// Clears the blocking-job flag when a job ends, also by a panic.
struct BlockingJob;

impl BlockingJob {
    fn enter() -> BlockingJob {
        IN_BLOCKING_JOB.with(|b| b.set(true));
        BlockingJob
    }
}

impl Drop for BlockingJob {
    fn drop(&mut self) {
        IN_BLOCKING_JOB.with(|b| b.set(false));
    }
}

/// Runs `job` on the runtime's blocking pool and returns a handle to await its result
/// (a panic in `job` is the handle's error). Use it from async code for anything that may
/// block or call user code; awaiting the handle keeps one job in flight per caller, so
/// slow jobs do not pile up.
///
/// ```
/// # peerlb::runtime::handle().block_on(async {
/// let is_dir = peerlb::runtime::spawn_blocking(|| std::fs::metadata("/").map(|m| m.is_dir()))
///     .await
///     .unwrap();
/// assert!(is_dir.unwrap());
/// # });
/// ```
pub fn spawn_blocking<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    handle().spawn_blocking(move || {
        let _flag = BlockingJob::enter();
        job()
    })
}

/// Runs `job` on the runtime's blocking pool (where callbacks may take their time),
/// without waiting for it. A panic in `job` is caught and ignored.
pub fn run_blocking(job: impl FnOnce() + Send + 'static) {
    drop(spawn_blocking(move || {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }));
}

/// Whether the runtime has been started (nothing runs until something needs it).
pub fn is_started() -> bool {
    RUNTIME.get().is_some()
}

/// Owns a value whose drop may run user code (a list handle, a callback): when it is
/// dropped on an async worker, the value is dropped on the blocking pool instead.
///
/// It also forwards `Future` to the value, so a task's whole future can be wrapped: a task
/// that is aborted or ends on a worker then drops what it captured off the worker.
pub(crate) struct DropOffWorker<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropOffWorker<T> {
    pub(crate) fn new(value: T) -> DropOffWorker<T> {
        DropOffWorker(Some(value))
    }
}

impl<T: Send + 'static> Drop for DropOffWorker<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            if on_worker_thread() {
                run_blocking(move || drop(value));
            }
        }
    }
}

impl<F: Future + Unpin + Send + 'static> Future for DropOffWorker<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.0.as_mut() {
            Some(future) => Pin::new(future).poll(cx),
            None => Poll::Pending, // unreachable: only `drop` takes the value
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Reports, when dropped, whether the drop happened on an async worker.
    struct Probe(mpsc::Sender<bool>);
    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.send(on_worker_thread());
        }
    }

    #[test]
    fn blocking_jobs_are_not_workers_and_workers_are() {
        let rt = handle();
        assert!(!on_worker_thread(), "a test thread is no worker");
        assert!(!rt.block_on(spawn_blocking(on_worker_thread)).unwrap());
        assert!(rt.block_on(rt.spawn(async { on_worker_thread() })).unwrap());
        // The flag is cleared when a job panics.
        assert!(rt.block_on(spawn_blocking(|| panic!("boom"))).is_err());
        for _ in 0..4 {
            assert!(!rt.block_on(spawn_blocking(on_worker_thread)).unwrap());
        }
    }

    #[test]
    fn values_dropped_on_a_worker_are_dropped_on_the_blocking_pool() {
        let (tx, rx) = mpsc::channel();
        let guarded = DropOffWorker::new(Probe(tx.clone()));
        handle().spawn(async move { drop(guarded) });
        assert!(!rx.recv().unwrap(), "dropped on a worker");
        let plain = Probe(tx);
        handle().spawn(async move { drop(plain) });
        assert!(rx.recv().unwrap(), "the control drop runs on the worker");
    }

    #[test]
    fn futures_forward_and_drop_off_the_worker() {
        let task = DropOffWorker::new(Box::pin(async { 7 }));
        assert_eq!(handle().block_on(handle().spawn(task)).unwrap(), 7);
        // An aborted task's future is dropped by a worker: what it holds is not.
        let (tx, rx) = mpsc::channel();
        let probe = Probe(tx);
        let task = handle().spawn(DropOffWorker::new(Box::pin(async move {
            let _keep = &probe;
            std::future::pending::<()>().await
        })));
        task.abort();
        assert!(!rx.recv().unwrap());
    }
}
