//! The library's one tokio runtime: started lazily on first need, two worker threads
//! named `peerlb-rt`. Timers (async waits), health checks and updaters run on it.

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
                .enable_all()
                .build()
                .expect("peerlb: cannot start the tokio runtime")
        })
        .handle()
        .clone()
}

/// Whether the runtime has been started (nothing runs until something needs it).
pub fn is_started() -> bool {
    RUNTIME.get().is_some()
}
