//! `Upstream`: the score-based list of backends (after siderolabs/go-loadbalancer's
//! `upstream` package).
//!
//! Every backend (a string, usually `host:port`) has a score. It starts at the initial
//! score (default +1). Each health check moves it by the success delta (default +1) or the
//! fail delta (default −1); so do [`Upstream::up`] and [`Upstream::down`], which callers use
//! when a real request succeeded or failed. A rise is capped at the high score (default
//! +3), a fall at the low score (default −3) — exactly as the Go package clamps (an initial
//! score outside `[low, high]` is allowed and only clamped by the move that crosses the
//! bound on that side). [`Upstream::pick`] returns the next backend with a score `>= 0` in
//! round-robin order (starting after the last pick), or `no-peer-available` when none
//! is eligible. [`Upstream::reconcile`] replaces the set: backends that stay keep their
//! score and order, new ones are appended with the initial score.
//!
//! Health checks: the first round runs at once, then one round every interval
//! (default 1 s). In a round every backend is checked concurrently, each bounded by the
//! timeout (default 100 ms, as in Go); a check that errs, panics, throws or does not end
//! in time is a failure. Checks run on the library runtime with no lock held; a blocking
//! (C/Python-style) check runs on its blocking pool, never on an async worker, and while
//! one is still running past its timeout the backend is not checked again (each such round
//! counts as a failure). An asynchronous check ([`HealthCheck::asynchronous`]) is called
//! and polled on an async worker, like any future: it must not block (Node's JS checks
//! only post to the JS thread and wait for its answer). The TCP probe resolves names on
//! the blocking pool (see [`crate::tcp_probe::resolve`]). The last handle of the checks
//! is dropped off the async workers too (a C check frees its user data then). [`UpstreamOptions::manual`] turns the background rounds off so tests can
//! drive them with [`Upstream::check_now`]. Go's optional tiers and jitter are not
//! implemented.
//!
//! ```
//! use peerlb::{HealthCheck, Upstream, UpstreamOptions};
//! let up = Upstream::new(
//!     ["a:1", "b:1"],
//!     HealthCheck::blocking(|b: &str| if b == "a:1" { Ok(()) } else { Err("down".into()) }),
//!     UpstreamOptions::default().manual(),
//! ).unwrap();
//! assert_eq!(up.pick().unwrap(), "a:1");
//! assert_eq!(up.pick().unwrap(), "b:1");
//! up.check_now(); // a:1 -> 2, b:1 -> 0
//! up.check_now(); // a:1 -> 3, b:1 -> -1
//! assert_eq!(up.score("b:1"), Some(-1.0));
//! assert_eq!(up.pick().unwrap(), "a:1");
//! assert_eq!(up.pick().unwrap(), "a:1");
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::error::panic_message;
use crate::error::{Error, Result};
use crate::tcp_probe::probe_tcp;

/// What an asynchronous health check returns.
pub type CheckFuture = Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send>>;

type BlockingFn = dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync;
type AsyncFn = dyn Fn(String) -> CheckFuture + Send + Sync;

/// How an [`Upstream`] checks one backend. `Ok` moves its score up, `Err` (or a panic, or
/// no answer within the timeout) moves it down.
#[derive(Clone)]
pub enum HealthCheck {
    /// The built-in TCP probe: the backend (`host:port`) accepts a connection.
    TcpProbe,
    /// A blocking function, run on the library runtime's blocking pool.
    Blocking(Arc<BlockingFn>),
    /// A function returning a future, both run on the library runtime's async workers
    /// (the future is dropped at the timeout). Neither may block: use
    /// [`HealthCheck::Blocking`] for code that does.
    Async(Arc<AsyncFn>),
}

impl Default for HealthCheck {
    /// The TCP probe (go-loadbalancer's default check dials the backend).
    fn default() -> Self {
        HealthCheck::TcpProbe
    }
}

impl HealthCheck {
    /// A blocking check.
    pub fn blocking(
        f: impl Fn(&str) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        HealthCheck::Blocking(Arc::new(f))
    }

    /// An asynchronous check.
    pub fn asynchronous<F>(f: impl Fn(String) -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        HealthCheck::Async(Arc::new(move |b| Box::pin(f(b))))
    }
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthCheck::TcpProbe => "TcpProbe",
            HealthCheck::Blocking(_) => "Blocking",
            HealthCheck::Async(_) => "Async",
        })
    }
}

/// Options of an [`Upstream`] (defaults as in go-loadbalancer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamOptions {
    /// Time between health-check rounds; `None` = no background rounds (use
    /// [`Upstream::check_now`]). Default 1 s.
    pub health_check_interval: Option<Duration>,
    /// How long one check may take before it counts as failed. Default 100 ms.
    pub health_check_timeout: Duration,
    /// Score of a new backend. Default +1.
    pub initial_score: f64,
    /// Lowest score (`<= 0`). Default −3.
    pub low_score: f64,
    /// Highest score (`>= 0`, `>= low_score`). Default +3.
    pub high_score: f64,
    /// Added on a failed check or `down` (`< 0`). Default −1.
    pub fail_delta: f64,
    /// Added on a good check or `up` (`> 0`). Default +1.
    pub success_delta: f64,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            health_check_interval: Some(Duration::from_secs(1)),
            health_check_timeout: Duration::from_millis(100),
            initial_score: 1.0,
            low_score: -3.0,
            high_score: 3.0,
            fail_delta: -1.0,
            success_delta: 1.0,
        }
    }
}

impl UpstreamOptions {
    /// No background health checks; rounds run only through [`Upstream::check_now`].
    pub fn manual(mut self) -> Self {
        self.health_check_interval = None;
        self
    }

    /// Checks these options (the Go package's rules, plus: numbers finite, durations
    /// between 1 ms and one day); a violation is `invalid-argument`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(format!("upstream: {m}")));
        let nums = [
            self.initial_score,
            self.low_score,
            self.high_score,
            self.fail_delta,
            self.success_delta,
        ];
        if nums.iter().any(|n| !n.is_finite()) {
            return bad("scores and deltas must be finite numbers");
        }
        if self.low_score > 0.0 {
            return bad("low score should be non-positive");
        }
        if self.high_score < 0.0 {
            return bad("high score should be non-negative");
        }
        if self.low_score > self.high_score {
            return bad("low score should be less or equal to high score");
        }
        if self.fail_delta >= 0.0 {
            return bad("fail delta should be negative");
        }
        if self.success_delta <= 0.0 {
            return bad("success delta should be positive");
        }
        let range = Duration::from_millis(1)..=Duration::from_secs(86_400);
        if !range.contains(&self.health_check_timeout) {
            return bad("health-check timeout must be between 1 ms and one day");
        }
        if let Some(i) = self.health_check_interval {
            if !range.contains(&i) {
                return bad("health-check interval must be between 1 ms and one day");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Node {
    backend: String,
    score: f64,
}

#[derive(Debug)]
struct State {
    nodes: Vec<Node>,
    current: usize, // index of the last pick + 1 (0 = none yet), as Go's `current + 1`
}

struct Inner {
    options: UpstreamOptions,
    check: HealthCheck,
    state: Mutex<State>,
    inflight: Mutex<HashSet<String>>,
    shutdown: AtomicBool,
}

impl Drop for Inner {
    /// The check may be user code whose drop runs more user code (a C check frees its user
    /// data); the last handle of `Inner` is often a check task's, on an async worker.
    fn drop(&mut self) {
        if crate::runtime::on_worker_thread() {
            let check = std::mem::replace(&mut self.check, HealthCheck::TcpProbe);
            crate::runtime::run_blocking(move || drop(check));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn up(&self, backend: &str) {
        let mut s = lock(&self.state);
        for n in s.nodes.iter_mut().filter(|n| n.backend == backend) {
            n.score += self.options.success_delta;
            if n.score > self.options.high_score {
                n.score = self.options.high_score;
            }
        }
    }

    fn down(&self, backend: &str) {
        let mut s = lock(&self.state);
        for n in s.nodes.iter_mut().filter(|n| n.backend == backend) {
            n.score += self.options.fail_delta;
            if n.score < self.options.low_score {
                n.score = self.options.low_score;
            }
        }
    }
}

/// Removes a backend from the in-flight set when its check ends (or is dropped).
struct InflightGuard {
    inner: Arc<Inner>,
    backend: String,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        lock(&self.inner.inflight).remove(&self.backend);
    }
}

async fn check_one(inner: Arc<Inner>, backend: String) {
    let fresh = lock(&inner.inflight).insert(backend.clone());
    let ok = if !fresh {
        false // the previous check of this backend is still running
    } else {
        let guard = InflightGuard {
            inner: inner.clone(),
            backend: backend.clone(),
        };
        let timeout = inner.options.health_check_timeout;
        let fut: CheckFuture = match &inner.check {
            HealthCheck::TcpProbe => {
                let b = backend.clone();
                Box::pin(async move {
                    let _g = guard;
                    probe_tcp(&b, timeout).await
                })
            }
            HealthCheck::Async(f) => match catch_unwind(AssertUnwindSafe(|| f(backend.clone()))) {
                Ok(fut) => Box::pin(async move {
                    let _g = guard;
                    fut.await
                }),
                Err(p) => Box::pin(std::future::ready(Err(panic_message(&*p)))),
            },
            HealthCheck::Blocking(f) => {
                let f = f.clone();
                let b = backend.clone();
                let h = crate::runtime::spawn_blocking(move || {
                    let _g = guard;
                    catch_unwind(AssertUnwindSafe(|| f(&b)))
                        .unwrap_or_else(|p| Err(panic_message(&*p)))
                });
                Box::pin(async move { h.await.unwrap_or_else(|e| Err(e.to_string())) })
            }
        };
        let task = tokio::spawn(fut);
        let abort = task.abort_handle();
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(Ok(()))) => true,
            Ok(_) => false,
            Err(_) => {
                abort.abort();
                false
            }
        }
    };
    if inner.shutdown.load(Ordering::Acquire) {
        return;
    }
    if ok {
        inner.up(&backend);
    } else {
        inner.down(&backend);
    }
}

async fn run_round(inner: Arc<Inner>) {
    let backends: Vec<String> = {
        let s = lock(&inner.state);
        let mut seen = HashSet::new();
        s.nodes
            .iter()
            .filter(|n| seen.insert(n.backend.clone()))
            .map(|n| n.backend.clone())
            .collect()
    };
    let tasks: Vec<_> = backends
        .into_iter()
        .map(|b| tokio::spawn(check_one(inner.clone(), b)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// A score-based list of backends with health checks (see the [module docs](self)).
///
/// `Send + Sync`; every method may be called from any thread. Dropping it shuts it down.
pub struct Upstream {
    inner: Arc<Inner>,
    task: Mutex<Option<AbortHandle>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("options", &self.inner.options)
            .field("check", &self.inner.check)
            .field("scores", &self.scores())
            .finish()
    }
}

/// A backend must be a valid peer id (the rule every list applies).
fn valid_backend(backend: String) -> Result<String> {
    crate::PeerId::new(&backend)?;
    Ok(backend)
}

impl Upstream {
    /// A list of `backends` (in this order, each with the initial score) checked by
    /// `check`; starts the background health checks unless the options are
    /// [`manual`](UpstreamOptions::manual). Bad options, and a backend that is not a valid
    /// peer id (empty, over 1024 bytes, or with a NUL), are `invalid-argument`.
    pub fn new<I, S>(backends: I, check: HealthCheck, options: UpstreamOptions) -> Result<Upstream>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        options.validate()?;
        let nodes = backends
            .into_iter()
            .map(|b| {
                Ok(Node {
                    backend: valid_backend(b.into())?,
                    score: options.initial_score,
                })
            })
            .collect::<Result<_>>()?;
        let inner = Arc::new(Inner {
            options,
            check,
            state: Mutex::new(State { nodes, current: 0 }),
            inflight: Mutex::new(HashSet::new()),
            shutdown: AtomicBool::new(false),
        });
        let task = options.health_check_interval.map(|interval| {
            let weak = Arc::downgrade(&inner);
            crate::runtime::handle()
                .spawn(async move {
                    let mut ticker = tokio::time::interval(interval);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticker.tick().await;
                        let Some(inner) = weak.upgrade() else { return };
                        if inner.shutdown.load(Ordering::Acquire) {
                            return;
                        }
                        run_round(inner).await;
                    }
                })
                .abort_handle()
        });
        Ok(Upstream {
            inner,
            task: Mutex::new(task),
        })
    }

    /// Its options.
    pub fn options(&self) -> UpstreamOptions {
        self.inner.options
    }

    /// The next backend with a score `>= 0`, round-robin from the one after the last pick;
    /// `no-peer-available` ("no upstreams available") when there is none.
    pub fn pick(&self) -> Result<String> {
        let mut s = lock(&self.inner.state);
        let len = s.nodes.len();
        for j in 0..len {
            let i = (s.current + j) % len;
            if s.nodes[i].score >= 0.0 {
                s.current = i + 1;
                return Ok(s.nodes[i].backend.clone());
            }
        }
        Err(Error::NoPeerAvailable("no upstreams available".into()))
    }

    /// Moves `backend`'s score up by the success delta (capped at the high score).
    /// Unknown backends are ignored.
    pub fn up(&self, backend: &str) {
        self.inner.up(backend)
    }

    /// Moves `backend`'s score down by the fail delta (capped at the low score).
    /// Unknown backends are ignored.
    pub fn down(&self, backend: &str) {
        self.inner.down(backend)
    }

    /// Replaces the set of backends: those that stay keep their score and place, new ones
    /// are appended (in the given order, without repeats) with the initial score. O(n + m).
    /// A backend that is not a valid peer id is `invalid-argument`, and nothing changes.
    pub fn reconcile<I, S>(&self, backends: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let wanted: Vec<String> = backends
            .into_iter()
            .map(|b| valid_backend(b.into()))
            .collect::<Result<_>>()?;
        let keep: HashSet<&str> = wanted.iter().map(String::as_str).collect();
        let mut s = lock(&self.inner.state);
        s.nodes.retain(|n| keep.contains(n.backend.as_str()));
        let mut have: HashSet<String> = s.nodes.iter().map(|n| n.backend.clone()).collect();
        for b in &wanted {
            if have.insert(b.clone()) {
                s.nodes.push(Node {
                    backend: b.clone(),
                    score: self.inner.options.initial_score,
                });
            }
        }
        Ok(())
    }

    /// The backends with their scores, in list order.
    pub fn scores(&self) -> Vec<(String, f64)> {
        lock(&self.inner.state)
            .nodes
            .iter()
            .map(|n| (n.backend.clone(), n.score))
            .collect()
    }

    /// The score of `backend` (the first entry with that name), if it is in the list.
    pub fn score(&self, backend: &str) -> Option<f64> {
        lock(&self.inner.state)
            .nodes
            .iter()
            .find(|n| n.backend == backend)
            .map(|n| n.score)
    }

    /// The backends, in list order.
    pub fn backends(&self) -> Vec<String> {
        self.scores().into_iter().map(|(b, _)| b).collect()
    }

    /// Runs one health-check round now and returns when every check has ended or timed
    /// out and the scores moved. Blocks the calling thread: do not call it from inside an
    /// async task, least of all on the library runtime (use [`Upstream::check_now_async`]).
    pub fn check_now(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = self.inner.clone();
        crate::runtime::handle().spawn(async move {
            run_round(inner).await;
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }

    /// [`Upstream::check_now`] for async callers (any executor).
    pub async fn check_now_async(&self) {
        let inner = self.inner.clone();
        let _ = crate::runtime::handle().spawn(run_round(inner)).await;
    }

    /// Stops the health checks (checks still running have no effect any more). `pick`,
    /// `up`, `down` and `reconcile` keep working. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.inner.shutdown.store(true, Ordering::Release);
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }

    /// Whether [`Upstream::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.load(Ordering::Acquire)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shutdown();
    }
}
