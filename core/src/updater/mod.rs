//! Updaters: feed a [`PeerList`] from a source of peers, as yarpc's `Binder` does.
//!
//! An updater (a [`StaticUpdater`], [`FileUpdater`] or `DnsUpdater`) is a description
//! of a source. [`bind`](StaticUpdater::bind) ties it to one list and returns a
//! [`Binding`], the lifecycle: [`Binding::start`] reads the source and keeps following it
//! on the library runtime ([`crate::runtime::handle`]), [`Binding::stop`] stops following
//! it (the peers it added stay in the list). Dropping a binding stops it.
//!
//! Rules every updater follows:
//!
//! * It computes additions and removals against the set **it** last applied and calls
//!   [`PeerList::update`] with them (a change of weight, zone or priority is a removal plus
//!   an addition). It
//!   never waits for the list to be started: an idle list records the peers and retains
//!   them when it starts.
//! * **Keep last good**: when the source fails (missing file, bad line, DNS SERVFAIL or
//!   timeout, ...) nothing is applied; the error is reported as
//!   [`UpdaterEvent::Error`] with code [`ErrorCode::SourceFailed`](crate::ErrorCode) and kept in
//!   [`Binding::last_error`] until the source reads well again.
//! * Events go to the callback given with `on_event`, called from a library thread (or
//!   from `start`) and never while a lock of the library is held; it may call back into the
//!   library. A panicking callback is caught.
//! * **Nothing blocks the runtime's async workers** (see [`crate::runtime`]): a source is
//!   read with non-blocking I/O or on the blocking pool, and every change is applied to the
//!   list (which calls the list's transport, user code) and reported to the callback from
//!   the blocking pool. A driver waits for its apply before it reads again, so a slow
//!   transport or callback delays that binding only, and never piles up work.
//! * A list failure while applying (e.g. someone else already added that peer) is
//!   reported as an [`UpdaterEvent::Error`] carrying the list's error; the updater
//!   still considers the set applied.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use futures_lite_shim::BoxFuture;

use crate::{Error, PeerList, PeerSpec, Result};

#[cfg(feature = "dns")]
pub mod dns;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod file;
pub mod static_;
#[cfg(feature = "xds")]
pub mod xds;

#[cfg(feature = "dns")]
pub use dns::{DnsRecord, DnsUpdater};
#[cfg(feature = "etcd")]
pub use etcd::EtcdUpdater;
pub use file::{parse_peer_lines, FileUpdater};
pub use static_::StaticUpdater;
#[cfg(feature = "xds")]
pub use xds::XdsUpdater;

/// Boxed futures without another dependency.
mod futures_lite_shim {
    use std::future::Future;
    use std::pin::Pin;
    /// A boxed, sendable future.
    pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
}

/// What an updater reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdaterEvent {
    /// A changed set was applied to the list.
    Applied {
        /// Peers added (new ones, and changed weights).
        added: Vec<PeerSpec>,
        /// Peer ids removed (gone ones, and changed weights).
        removed: Vec<String>,
    },
    /// The source failed (the last good set is kept), or the list refused part of an update.
    Error(Error),
}

/// The callback that receives [`UpdaterEvent`]s.
pub type EventCallback = Arc<dyn Fn(&UpdaterEvent) + Send + Sync>;

/// Counters of a [`Binding`], for introspection and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingStats {
    /// Times the source was read successfully (changed or not).
    pub good_reads: u64,
    /// Times a changed set was applied to the list.
    pub changes: u64,
    /// Times the source failed.
    pub failures: u64,
}

/// What a running binding applies to: the list, the last applied set, the observer.
pub(crate) struct Sink {
    list: PeerList,
    on_event: Option<EventCallback>,
    state: Mutex<SinkState>,
    /// Set by `stop`; a driver that wakes up after it applies nothing.
    stopped: AtomicBool,
    good_reads: AtomicU64,
    changes: AtomicU64,
    failures: AtomicU64,
}

#[derive(Default)]
struct SinkState {
    /// The peers last applied, by id (a change of weight, zone or priority is a removal
    /// plus an addition).
    applied: BTreeMap<String, PeerSpec>,
    last_error: Option<Error>,
}

impl Sink {
    /// A sink for `list` whose diffs start from `applied`.
    pub(crate) fn new(
        list: PeerList,
        on_event: Option<EventCallback>,
        applied: BTreeMap<String, PeerSpec>,
    ) -> Sink {
        Sink {
            list,
            on_event,
            state: Mutex::new(SinkState {
                applied,
                last_error: None,
            }),
            stopped: AtomicBool::new(false),
            good_reads: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The set last applied.
    pub(crate) fn applied(&self) -> BTreeMap<String, PeerSpec> {
        self.lock().applied.clone()
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: UpdaterEvent) {
        if let Some(cb) = &self.on_event {
            // Never under a lock: callers release theirs before emitting.
            let _ = catch_unwind(AssertUnwindSafe(|| cb(&event)));
        }
    }

    /// Runs `job` with this sink on the runtime's blocking pool and waits for it: how a
    /// driver's task applies a set or reports a failure, since both call user code (the
    /// list's transport, the event callback).
    pub(crate) async fn off_worker(self: &Arc<Self>, job: impl FnOnce(&Sink) + Send + 'static) {
        let sink = self.clone();
        // A panic is already caught around the callback; a join error leaves nothing to do.
        let _ = crate::runtime::spawn_blocking(move || job(&sink)).await;
    }

    /// Makes the list hold exactly `desired` (as far as this updater is concerned).
    /// Calls the list's transport: never on an async worker (see [`Sink::off_worker`]).
    pub(crate) fn apply(&self, desired: Vec<PeerSpec>) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let desired: BTreeMap<String, PeerSpec> = desired
            .into_iter()
            .map(|mut p| {
                p.weight = p.weight.max(1);
                (p.id.clone(), p)
            })
            .collect();
        let (added, removed) = {
            let mut state = self.lock();
            let removed: Vec<String> = state
                .applied
                .iter()
                .filter(|(id, p)| desired.get(*id) != Some(*p))
                .map(|(id, _)| id.clone())
                .collect();
            let added: Vec<PeerSpec> = desired
                .iter()
                .filter(|(id, p)| state.applied.get(*id) != Some(*p))
                .map(|(_, p)| p.clone())
                .collect();
            state.applied = desired;
            state.last_error = None;
            (added, removed)
        };
        self.good_reads.fetch_add(1, Ordering::Relaxed);
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let result = self.list.update(added.clone(), removed.iter());
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.emit(UpdaterEvent::Applied { added, removed });
        if let Err(e) = result {
            self.emit(UpdaterEvent::Error(e));
        }
    }

    /// Records a source failure; the last good set stays. The event is sent when the
    /// error differs from the one already reported.
    pub(crate) fn fail(&self, error: Error) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        let fresh = {
            let mut state = self.lock();
            let fresh = state.last_error.as_ref() != Some(&error);
            state.last_error = Some(error.clone());
            fresh
        };
        if fresh {
            self.emit(UpdaterEvent::Error(error));
        }
    }

    /// Records a good read that changes nothing (e.g. an empty DNS answer not yet trusted).
    #[cfg_attr(not(feature = "dns"), allow(dead_code))] // only the DNS updater confirms
    pub(crate) fn confirm(&self) {
        self.good_reads.fetch_add(1, Ordering::Relaxed);
        self.lock().last_error = None;
    }
}

/// How a concrete updater follows its source once started.
pub(crate) trait Driver: Send + Sync + 'static {
    /// Called by [`Binding::start`]: may apply an initial set synchronously (static,
    /// file), then returns the task that keeps following the source, if any. An error
    /// (bad configuration) fails `start`, which then leaves the binding stopped.
    ///
    /// The task runs on an async worker: it must not block, and it hands every
    /// [`Sink::apply`] and [`Sink::fail`] to [`Sink::off_worker`].
    fn start(&self, sink: Arc<Sink>) -> Result<Option<BoxFuture<()>>>;
}

/// The lifecycle of an updater bound to a list (yarpc's `Binder` result).
///
/// `start` begins following the source, `stop` ends it; both are idempotent errors
/// (`already-started`, `not-started`) like the list's. Dropping the binding stops it.
pub struct Binding {
    driver: Arc<dyn Driver>,
    list: PeerList,
    on_event: Option<EventCallback>,
    describe: String,
    inner: Mutex<BindingInner>,
}

#[derive(Default)]
struct BindingInner {
    sink: Option<Arc<Sink>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The sink of the last run, kept for `peers`/`stats`/`last_error` after `stop`.
    last: Option<Arc<Sink>>,
}

impl Binding {
    pub(crate) fn new(
        driver: Arc<dyn Driver>,
        list: PeerList,
        on_event: Option<EventCallback>,
        describe: String,
    ) -> Binding {
        Binding {
            driver,
            list,
            on_event,
            describe,
            inner: Mutex::new(BindingInner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BindingInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts following the source. The set last applied by a previous run is the base
    /// for the diff, so start after stop does not add peers twice.
    pub fn start(&self) -> Result<()> {
        let sink = {
            let mut inner = self.lock();
            if inner.sink.is_some() {
                return Err(Error::AlreadyStarted(format!(
                    "updater {} is already started",
                    self.describe
                )));
            }
            let applied = inner.last.as_ref().map(|s| s.applied()).unwrap_or_default();
            let sink = Arc::new(Sink::new(self.list.clone(), self.on_event.clone(), applied));
            inner.sink = Some(sink.clone());
            inner.last = Some(sink.clone());
            sink
        };
        // Outside our lock: the driver may apply (and so call the event callback) now.
        let task = match self.driver.start(sink.clone()) {
            Ok(task) => task,
            Err(e) => {
                sink.stopped.store(true, Ordering::Release);
                let mut inner = self.lock();
                if inner.sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sink)) {
                    inner.sink = None;
                }
                return Err(e);
            }
        };
        if let Some(task) = task {
            // The task holds the sink, and through it a handle of the list and the event
            // callback: when it is aborted (or ends) on a worker, they are dropped on the
            // blocking pool, since dropping the last list handle releases its peers.
            let handle = crate::runtime::handle().spawn(crate::runtime::DropOffWorker::new(task));
            let mut inner = self.lock();
            match &inner.sink {
                Some(current) if Arc::ptr_eq(current, &sink) => inner.task = Some(handle),
                _ => handle.abort(), // stopped meanwhile
            }
        }
        Ok(())
    }

    /// Stops following the source. The peers stay in the list; an apply already in
    /// progress on another thread may still finish.
    pub fn stop(&self) -> Result<()> {
        let mut inner = self.lock();
        let Some(sink) = inner.sink.take() else {
            return Err(Error::NotStarted(format!(
                "updater {} is not started",
                self.describe
            )));
        };
        sink.stopped.store(true, Ordering::Release);
        if let Some(task) = inner.task.take() {
            task.abort();
        }
        Ok(())
    }

    /// Whether the binding is started.
    pub fn is_running(&self) -> bool {
        self.lock().sink.is_some()
    }

    /// What this binding follows, e.g. `file:/etc/peers` or `dns:srv:_http._tcp.example`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The set last applied (sorted by id), as this updater sees it.
    pub fn peers(&self) -> Vec<PeerSpec> {
        let sink = self.lock().last.clone();
        sink.map(|s| s.lock().applied.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The source's current failure, if its last read failed (cleared by a good read).
    pub fn last_error(&self) -> Option<Error> {
        let sink = self.lock().last.clone();
        sink.and_then(|s| s.lock().last_error.clone())
    }

    /// Counters of the current (or last) run.
    pub fn stats(&self) -> BindingStats {
        let sink = self.lock().last.clone();
        sink.map(|s| BindingStats {
            good_reads: s.good_reads.load(Ordering::Relaxed),
            changes: s.changes.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
        })
        .unwrap_or_default()
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("describe", &self.describe)
            .field("running", &self.is_running())
            .finish()
    }
}
