//! The library's one tokio runtime: started lazily on first need, two worker threads
//! named `peerlb-rt`. Timers (async waits), health checks and updaters run on it.

use std::cell::Cell;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

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
    /// Set while [`run_blocking`] runs a job on a blocking-pool thread.
    static IN_BLOCKING_JOB: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is one of the runtime's async workers, where user callbacks must
/// not run (a slow callback would stall every timer, probe and updater of the library).
pub fn on_worker_thread() -> bool {
    RUNTIME_THREAD.with(Cell::get) && !IN_BLOCKING_JOB.with(Cell::get)
}

/// Runs `job` on the runtime's blocking pool (where callbacks may take their time).
pub fn run_blocking(job: impl FnOnce() + Send + 'static) {
    handle().spawn_blocking(move || {
        IN_BLOCKING_JOB.with(|b| b.set(true));
        // A panicking job must not take the pool thread's flag with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        IN_BLOCKING_JOB.with(|b| b.set(false));
    });
}

/// Whether the runtime has been started (nothing runs until something needs it).
pub fn is_started() -> bool {
    RUNTIME.get().is_some()
}
