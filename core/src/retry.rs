//! Retry on another peer, with an attempt limit, an overall timeout and a retry budget
//! (go-kit's `lb.Retry(max, timeout, balancer)`, plus Finagle's and Envoy's budgets).
//!
//! * An attempt that fails ([`Attempt::Failure`]) is retried on a *different* peer while
//!   fewer than `max_attempts` were made and the overall `timeout` has not passed. The
//!   failure is reported to the list as [`Outcome::Failure`], so it counts toward
//!   ejection.
//! * An attempt the peer *declined* ([`Attempt::Declined`]: it refused on purpose, e.g.
//!   overload) stops at once with a `declined` error, and is neither retried nor counted
//!   against the peer.
//! * When the attempts run out, the error (code `retry-exhausted`) lists every attempt's
//!   error, as go-kit does: `retry attempts exceeded (e1; e2; e3)`. When the timeout passes
//!   first, the error is a `timeout` listing the attempts made.
//! * A [`RetryBudget`] shared by many calls allows retries only while they stay under a
//!   ratio of the calls made in a sliding window (default 20 % over 10 s) plus a minimum
//!   rate (default 10 retries per second), so a failing dependency does not turn into a
//!   retry storm. A retry the budget refuses ends the call with `retry-exhausted`
//!   ("retry budget exhausted …").
//!
//! "A different peer": the list is asked again (with the shard key varied per attempt, as
//! Envoy does for hashing balancers) up to a few times while it returns a peer this call
//! already tried; when only tried peers are left, one of them is used again.
//!
//! [`call`] runs the loop for Rust closures; the bindings drive a [`Retry`] step by step
//! (choose, then report how the attempt went), which also suits async code.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, PeerList, Request, retry::{self, Attempt, RetryPolicy}};
//!
//! let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
//! list.update(["a:1", "b:1", "c:1"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let policy = RetryPolicy::new(3).timeout(Duration::from_secs(1));
//! let mut calls = Vec::new();
//! let answer = retry::call(&list, &Request::new(), &policy, |peer| {
//!     calls.push(peer.to_string());
//!     if calls.len() < 3 { Err(Attempt::Failure("connection refused")) } else { Ok(42) }
//! });
//! assert_eq!(answer.unwrap(), 42);
//! assert_eq!(calls.len(), 3);
//! calls.sort();
//! calls.dedup();
//! assert_eq!(calls.len(), 3); // three different peers
//!
//! let err = retry::call(&list, &Request::new(), &policy, |_| -> Result<(), _> {
//!     Err(Attempt::Failure("boom"))
//! }).unwrap_err();
//! assert_eq!(err.to_string(), "retry attempts exceeded (boom; boom; boom)");
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::choice::Choice;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::list::PeerList;
use crate::now_or_later::{Later, NowOrLater};
use crate::peer::PeerId;
use crate::request::{Outcome, Request};

/// How an attempt failed, as the caller's function tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<E> {
    /// It failed; try another peer (counts toward the peer's ejection).
    Failure(E),
    /// The peer refused on purpose: stop, do not retry, do not count it against the peer.
    Declined(E),
}

/// How many attempts, for how long, under which budget.
#[derive(Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    timeout: Option<Duration>,
    budget: Option<Arc<RetryBudget>>,
}

impl RetryPolicy {
    /// At most `max_attempts` attempts in all (the first included; at least 1), no
    /// overall timeout, no budget.
    pub fn new(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            timeout: None,
            budget: None,
        }
    }

    /// The whole call (every attempt and every wait for a peer) ends by then.
    pub fn timeout(mut self, timeout: Duration) -> RetryPolicy {
        self.timeout = Some(timeout);
        self
    }

    /// Retries also need the budget's permission.
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> RetryPolicy {
        self.budget = Some(budget);
        self
    }

    /// Sets the attempt limit (the first attempt included). 0 is `invalid-argument`: a call
    /// makes at least one attempt. What every surface calls with a limit its caller gave.
    ///
    /// ```
    /// use peerlb::retry::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().with_max_attempts(5).unwrap().max_attempts(), 5);
    /// assert!(RetryPolicy::default().with_max_attempts(0).is_err());
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Result<RetryPolicy> {
        if max_attempts == 0 {
            return Err(Error::InvalidArgument(
                "max_attempts must be at least 1 (the first attempt counts)".into(),
            ));
        }
        self.max_attempts = max_attempts;
        Ok(self)
    }

    /// The attempt limit.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

impl Default for RetryPolicy {
    /// Three attempts, no timeout, no budget.
    fn default() -> Self {
        RetryPolicy::new(3)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("timeout", &self.timeout)
            .field("budget", &self.budget.is_some())
            .finish()
    }
}

/// A retry budget (Finagle's `RetryBudget`): over a sliding window of `ttl`, retries may
/// be at most `min_per_sec × ttl + ratio × calls`.
///
/// ```
/// use std::time::Duration;
/// use peerlb::clock::{Clock, ManualClock};
/// use peerlb::retry::RetryBudget;
///
/// let manual = ManualClock::new();
/// let budget = RetryBudget::new(0.2, 0, Duration::from_secs(10), Clock::from(manual.clone())).unwrap();
/// for _ in 0..10 { budget.deposit(); }          // ten calls...
/// assert!(budget.try_withdraw());               // ...allow two retries
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw());
/// manual.advance(Duration::from_secs(11));      // the window moves on
/// assert!(!budget.try_withdraw());
/// ```
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: u32,
    ttl: Duration,
    clock: Clock,
    window: Mutex<Window>,
}

/// The options of a [`RetryBudget`]; `None` means the default (ratio 0.2, 10 retries per
/// second, a 10 s window).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RetryBudgetOptions {
    /// Retries per call, 0..=1 (default 0.2).
    pub ratio: Option<f64>,
    /// Retries per second always allowed (default 10).
    pub min_per_sec: Option<u32>,
    /// The sliding window, 1 s..=60 s (default 10 s).
    pub ttl: Option<Duration>,
}

/// The window: calls and retries per slice (10 slices of `ttl / 10`), each slice tagged
/// with its absolute index since `origin` so stale slices are recognized and reused.
struct Window {
    origin: Instant,
    /// (absolute slice index, calls, retries).
    slices: [(u64, u64, u64); SLICES],
}

const SLICES: usize = 10;

impl RetryBudget {
    /// A budget allowing `ratio` (0..=1) retries per call plus `min_per_sec` retries per
    /// second, over a sliding window of `ttl` (1 s..=60 s).
    pub fn new(ratio: f64, min_per_sec: u32, ttl: Duration, clock: Clock) -> Result<Arc<Self>> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(Error::InvalidArgument(format!(
                "retry budget ratio {ratio} is not between 0 and 1"
            )));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(Error::InvalidArgument(format!(
                "retry budget window {ttl:?} is not between 1s and 60s"
            )));
        }
        Ok(Arc::new(RetryBudget {
            ratio,
            min_per_sec,
            ttl,
            window: Mutex::new(Window {
                origin: clock.now(),
                slices: [(u64::MAX, 0, 0); SLICES],
            }),
            clock,
        }))
    }

    /// Finagle's and Envoy's defaults: 20 % of calls, plus 10 retries per second, over 10 s,
    /// on the real clock.
    pub fn standard() -> Arc<Self> {
        RetryBudget::from_options(&RetryBudgetOptions::default(), Clock::real())
            .expect("the defaults are valid")
    }

    /// A budget from options where anything not given takes the default (what the bindings
    /// call, so that the defaults live here only).
    ///
    /// ```
    /// use peerlb::clock::Clock;
    /// use peerlb::retry::{RetryBudget, RetryBudgetOptions};
    /// let b = RetryBudget::from_options(&RetryBudgetOptions { ratio: Some(0.5), ..Default::default() }, Clock::real()).unwrap();
    /// assert_eq!(b.balance(), 100); // 10 per second over 10 s, no calls yet
    /// ```
    pub fn from_options(options: &RetryBudgetOptions, clock: Clock) -> Result<Arc<Self>> {
        RetryBudget::new(
            options.ratio.unwrap_or(0.2),
            options.min_per_sec.unwrap_or(10),
            options.ttl.unwrap_or(Duration::from_secs(10)),
            clock,
        )
    }

    /// Runs `f` on the window, the current slice's index, and the window's totals.
    fn with_window<T>(&self, f: impl FnOnce(&mut (u64, u64, u64), u64, u64) -> T) -> T {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let slice = (self.ttl / SLICES as u32).as_nanos().max(1);
        let now = self
            .clock
            .now()
            .saturating_duration_since(w.origin)
            .as_nanos();
        let index = (now / slice) as u64;
        let (mut calls, mut retries) = (0, 0);
        for s in &w.slices {
            if s.0 <= index && s.0 + SLICES as u64 > index {
                calls += s.1;
                retries += s.2;
            }
        }
        let current = &mut w.slices[(index % SLICES as u64) as usize];
        if current.0 != index {
            *current = (index, 0, 0);
        }
        f(current, calls, retries)
    }

    fn allowed(&self, calls: u64) -> f64 {
        self.min_per_sec as f64 * self.ttl.as_secs_f64() + self.ratio * calls as f64
    }

    /// Records a call (a first attempt).
    pub fn deposit(&self) {
        self.with_window(|current, _, _| current.1 += 1);
    }

    /// Asks for one retry; true (and counted) when the budget allows it.
    pub fn try_withdraw(&self) -> bool {
        self.with_window(|current, calls, retries| {
            if (retries + 1) as f64 <= self.allowed(calls) + 1e-9 {
                current.2 += 1;
                true
            } else {
                false
            }
        })
    }

    /// Gives back what [`RetryBudget::deposit`] (`retry == false`) or a successful
    /// [`RetryBudget::try_withdraw`] (`retry == true`) counted, for an attempt that never
    /// started (no peer could be chosen for it).
    pub fn refund(&self, retry: bool) {
        self.with_window(|current, _, _| {
            let n = if retry {
                &mut current.2
            } else {
                &mut current.1
            };
            *n = n.saturating_sub(1);
        });
    }

    /// Retries the budget would allow right now.
    pub fn balance(&self) -> u64 {
        self.with_window(|_, calls, retries| {
            ((self.allowed(calls) + 1e-9).floor() as u64).saturating_sub(retries)
        })
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_per_sec", &self.min_per_sec)
            .field("ttl", &self.ttl)
            .field("balance", &self.balance())
            .finish()
    }
}

/// How many times a retry asks the list again for a peer it has not tried yet.
const RECHOOSE_LIMIT: usize = 8;

/// The request of one choose of an attempt.
fn attempt_request(deadline: Option<Instant>, key: &Option<Vec<u8>>) -> Request<'_> {
    let mut request = Request::new();
    if let Some(d) = deadline {
        request = request.with_deadline(d);
    }
    if let Some(k) = key {
        request = request.with_shard_key(k);
    }
    request
}

/// One retried call, driven step by step: [`Retry::choose`] an attempt's peer, run the
/// attempt, then report it with [`Retry::failed`], [`Retry::declined`] or
/// [`Retry::succeeded`]. [`call`] does this for a Rust closure.
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    started: Instant,
    /// Set by [`Retry::approve_next`]: the next attempt's checks are done (and its budget
    /// spent), so the next [`Retry::check_next`] passes without checking again.
    approved: bool,
    deadline: Option<Instant>,
    errors: Vec<String>,
    tried: Vec<PeerId>,
    attempts: u32,
    /// The peer of the last failed attempt and the remote system's code for it, which the
    /// call's final error carries (see [`Error::peer`], [`Error::remote_code`]).
    last_failed: Option<(PeerId, Option<i64>)>,
    /// What [`Retry::check_next`] counted in the budget for the attempt being chosen
    /// (`Some(true)`: a retry, `Some(false)`: the call), refunded if no peer is chosen.
    charged: Option<bool>,
    /// The last [`Retry::check_next`] failed because the budget refused a retry.
    refused: bool,
}

impl Retry {
    /// Starts a call under `policy` (its timeout counts from now).
    pub fn new(policy: &RetryPolicy) -> Retry {
        let started = Instant::now();
        Retry {
            deadline: policy.timeout.and_then(|t| started.checked_add(t)),
            policy: policy.clone(),
            started,
            approved: false,
            errors: Vec::new(),
            tried: Vec::new(),
            attempts: 0,
            last_failed: None,
            charged: None,
            refused: false,
        }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The errors of the failed attempts so far, in order.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The deadline of the next choose: the request's or the call's, whichever is first.
    pub fn deadline(&self, request: &Request<'_>) -> Option<Instant> {
        match (request.deadline(), self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the call is over by its limits: the attempts are used up, or the overall
    /// timeout passed after at least one attempt. (The budget is asked only when an attempt
    /// is about to start, by [`Retry::check_next`].)
    ///
    /// ```
    /// use peerlb::retry::{Retry, RetryPolicy};
    /// let r = Retry::new(&RetryPolicy::new(1));
    /// assert!(!r.is_over());
    /// ```
    pub fn is_over(&self) -> bool {
        self.attempts >= self.policy.max_attempts
            || (self.attempts > 0 && self.deadline.is_some_and(|d| Instant::now() >= d))
    }

    /// Whether another attempt may start (limit, timeout, budget); `Err` is the call's
    /// final error. Spends budget for a retry.
    pub fn check_next(&mut self) -> Result<()> {
        if std::mem::take(&mut self.approved) {
            return Ok(());
        }
        if self.attempts >= self.policy.max_attempts {
            return Err(self.final_error("retry attempts exceeded"));
        }
        if let Some(deadline) = self.deadline {
            if self.attempts > 0 && Instant::now() >= deadline {
                return Err(self.timed_out());
            }
        }
        if let Some(budget) = &self.policy.budget {
            if self.attempts == 0 {
                budget.deposit();
                self.charged = Some(false);
            } else if budget.try_withdraw() {
                self.charged = Some(true);
            } else {
                self.refused = true;
                return Err(self.final_error("retry budget exhausted"));
            }
        }
        Ok(())
    }

    /// [`Retry::check_next`] now, for a caller that must know whether it will retry before
    /// it chooses (an HTTP integration keeps a failed response until then, to hand it back
    /// when no retry may follow): on `Ok`, the next choose skips the checks.
    ///
    /// ```
    /// use peerlb::retry::{Retry, RetryPolicy};
    /// let mut r = Retry::new(&RetryPolicy::new(1));
    /// r.approve_next().unwrap(); // the first attempt
    /// assert!(r.check_next().is_ok()); // already approved
    /// ```
    pub fn approve_next(&mut self) -> Result<()> {
        self.check_next()?;
        self.approved = true;
        Ok(())
    }

    /// [`Retry::approve_next`] after an attempt on `peer` failed, counting a budget's
    /// refusal in the metrics of the list `peer` belongs to.
    pub(crate) fn approve_next_after(&mut self, peer: &crate::peer::PeerRef) -> Result<()> {
        let approved = self.approve_next();
        if std::mem::take(&mut self.refused) {
            if let Some(list) = peer.list() {
                list.count_retry_refused();
            }
        }
        approved
    }

    /// [`Retry::check_next`], counting a budget's refusal in `list`'s metrics.
    fn check_next_on(&mut self, list: &PeerList) -> Result<()> {
        let checked = self.check_next();
        if std::mem::take(&mut self.refused) {
            list.count_retry_refused();
        }
        checked
    }

    /// The shard key for this attempt: the request's for the first, varied for retries.
    pub fn shard_key(&self, request: &Request<'_>, rechoose: usize) -> Option<Vec<u8>> {
        let key = request.shard_key()?;
        if self.attempts == 0 && rechoose == 0 {
            return Some(key.to_vec());
        }
        let mut varied = key.to_vec();
        varied.extend_from_slice(format!("#retry{}.{}", self.attempts, rechoose).as_bytes());
        Some(varied)
    }

    /// Whether `peer` was tried already by this call.
    pub fn tried(&self, peer: &PeerId) -> bool {
        self.tried.contains(peer)
    }

    /// Chooses the peer for the next attempt (blocking while the list has none, until the
    /// deadline), preferring one this call has not tried yet.
    pub fn choose(&mut self, list: &PeerList, request: &Request<'_>) -> Result<Choice> {
        crate::now_or_later::block_on(self.choose_async(list, request))
    }

    /// [`Retry::choose`] for async code: waits for a peer without blocking a thread.
    pub async fn choose_async(&mut self, list: &PeerList, request: &Request<'_>) -> Result<Choice> {
        self.check_next_on(list)?;
        let deadline = self.deadline(request);
        self.choose_from(list, request, deadline, 0, None, None)
            .await
    }

    /// The choosing of one attempt from its `first` try on: each try asks the list (or
    /// awaits `pending`, a wait already under way for that try) and keeps the first peer
    /// this call has not tried; with none new after the tries, the last one.
    async fn choose_from(
        &mut self,
        list: &PeerList,
        request: &Request<'_>,
        deadline: Option<Instant>,
        first: usize,
        mut pending: Option<Later<Result<Choice>>>,
        mut last: Option<Choice>,
    ) -> Result<Choice> {
        for rechoose in first..self.rechoose_limit() {
            let result = match pending.take() {
                Some(wait) => wait.await,
                None => {
                    let key = self.shard_key(request, rechoose);
                    list.choose_async(&attempt_request(deadline, &key)).await
                }
            };
            let choice = result.map_err(|e| self.choose_failed(e))?;
            if let Some(choice) = self.keep_if_untried(choice, &mut last) {
                return Ok(choice);
            }
        }
        Ok(self.started_attempt(last.expect("at least one choose ran")))
    }

    /// Chooses the next attempt's peer without blocking: [`NowOrLater::Now`] when the
    /// answer is known at once (the common case), else a [`Later`] that waits (blocking
    /// with [`Later::wait`], or awaited) and gives this `Retry` back with the answer. The
    /// rules are exactly [`Retry::choose`]'s; the bindings drive every retry through this.
    ///
    /// ```
    /// use peerlb::{ListOptions, NowOrLater, PeerList, Request};
    /// use peerlb::retry::{Retry, RetryPolicy};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// let NowOrLater::Now((mut retry, chosen)) = Retry::new(&RetryPolicy::default()).choose_now(&list, &Request::new()) else {
    ///     unreachable!("a peer is available")
    /// };
    /// retry.succeeded(chosen.unwrap(), None);
    /// ```
    pub fn choose_now(
        mut self,
        list: &PeerList,
        request: &Request<'_>,
    ) -> NowOrLater<(Retry, Result<Choice>)> {
        if let Err(e) = self.check_next_on(list) {
            return NowOrLater::Now((self, Err(e)));
        }
        let deadline = self.deadline(request);
        let mut last = None;
        for rechoose in 0..self.rechoose_limit() {
            let key = self.shard_key(request, rechoose);
            match list.choose_now(&attempt_request(deadline, &key)) {
                NowOrLater::Now(Ok(choice)) => {
                    if let Some(choice) = self.keep_if_untried(choice, &mut last) {
                        return NowOrLater::Now((self, Ok(choice)));
                    }
                }
                NowOrLater::Now(Err(e)) => {
                    let e = self.choose_failed(e);
                    return NowOrLater::Now((self, Err(e)));
                }
                NowOrLater::Later(wait) => {
                    let list = list.clone();
                    let key = request.shard_key().map(<[u8]>::to_vec);
                    return NowOrLater::Later(Later::new(async move {
                        let request = attempt_request(None, &key);
                        let result = self
                            .choose_from(&list, &request, deadline, rechoose, Some(wait), last)
                            .await;
                        (self, result)
                    }));
                }
            }
        }
        let choice = self.started_attempt(last.expect("at least one choose ran"));
        NowOrLater::Now((self, Ok(choice)))
    }

    /// How many times one attempt asks the list for a peer it has not tried.
    fn rechoose_limit(&self) -> usize {
        RECHOOSE_LIMIT.min(self.tried.len() + 1)
    }

    /// Starts the attempt on `choice` if its peer is new to this call; otherwise keeps it
    /// in `last` (ending the one there before, as cancelled) for when nothing new comes.
    fn keep_if_untried(&mut self, choice: Choice, last: &mut Option<Choice>) -> Option<Choice> {
        if self.tried(choice.peer()) {
            *last = Some(choice);
            return None;
        }
        Some(self.started_attempt(choice))
    }

    /// Records that `choice` is the next attempt (for drivers that choose by themselves,
    /// e.g. asynchronously, after [`Retry::check_next`]).
    pub fn started_attempt(&mut self, choice: Choice) -> Choice {
        self.charged = None;
        self.attempts += 1;
        if self.attempts > 1 {
            choice.count_retry();
        }
        self.tried.push(choice.peer().clone());
        choice
    }

    /// The error for a failed choose: itself on the first attempt, else with the attempts.
    /// What the budget was charged for this attempt is given back.
    pub fn choose_failed(&mut self, error: Error) -> Error {
        if let (Some(retry), Some(budget)) = (self.charged.take(), &self.policy.budget) {
            budget.refund(retry);
        }
        if self.errors.is_empty() {
            return error;
        }
        let what = format!(
            "retry stopped: no peer for attempt {}: {}",
            self.attempts + 1,
            error
        );
        let error = match error {
            Error::Timeout(_) => Error::Timeout(self.with_attempts(&what)),
            _ => Error::RetryExhausted(self.with_attempts(&what)),
        };
        self.at_last_failed(error)
    }

    /// The attempt on `choice` succeeded.
    pub fn succeeded(&mut self, choice: Choice, latency: Option<Duration>) {
        choice.finish(Outcome::Ok, latency);
    }

    /// The attempt on `choice` failed with `error`; the next [`Retry::choose`] tries
    /// another peer (or gives the final error).
    pub fn failed(&mut self, choice: Choice, error: impl fmt::Display, latency: Option<Duration>) {
        self.failed_with_code(choice, error, None, latency);
    }

    /// [`Retry::failed`] with the remote system's own code for the failure (an HTTP
    /// status, ...): the call's final error carries the last failed attempt's peer and
    /// code ([`Error::peer`], [`Error::remote_code`]).
    pub fn failed_with_code(
        &mut self,
        choice: Choice,
        error: impl fmt::Display,
        code: Option<i64>,
        latency: Option<Duration>,
    ) {
        self.last_failed = Some((choice.peer().clone(), code));
        choice.finish(Outcome::Failure, latency);
        self.errors.push(error.to_string());
    }

    /// The peer declined the attempt: the call ends with this `declined` error, which
    /// carries the peer ([`Error::peer`]).
    pub fn declined(
        &mut self,
        choice: Choice,
        error: impl fmt::Display,
        latency: Option<Duration>,
    ) -> Error {
        self.declined_with_code(choice, error, None, latency)
    }

    /// [`Retry::declined`] with the remote system's own code for the refusal (e.g. HTTP
    /// 401), which the `declined` error carries ([`Error::remote_code`]).
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList, Request};
    /// use peerlb::retry::{Retry, RetryPolicy};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// let mut retry = Retry::new(&RetryPolicy::default());
    /// let choice = retry.choose(&list, &Request::new()).unwrap();
    /// let e = retry.declined_with_code(choice, "unauthorized", Some(401), None);
    /// assert_eq!((e.peer(), e.remote_code()), (Some("a:1"), Some(401)));
    /// ```
    pub fn declined_with_code(
        &mut self,
        choice: Choice,
        error: impl fmt::Display,
        code: Option<i64>,
        latency: Option<Duration>,
    ) -> Error {
        let peer = choice.peer().to_string();
        choice.finish(Outcome::Declined, latency);
        Error::Declined(format!("peer {peer:?} declined the request: {error}")).at_peer(peer, code)
    }

    /// `error` carrying the last failed attempt's peer and code, if an attempt failed.
    fn at_last_failed(&self, error: Error) -> Error {
        match &self.last_failed {
            Some((peer, code)) => error.at_peer(peer.as_str(), *code),
            None => error,
        }
    }

    fn with_attempts(&self, what: &str) -> String {
        format!("{what} ({})", self.errors.join("; "))
    }

    fn final_error(&self, what: &str) -> Error {
        self.at_last_failed(Error::RetryExhausted(self.with_attempts(what)))
    }

    fn timed_out(&self) -> Error {
        let what = format!(
            "retry timed out after {} attempt{} in {:?}",
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            Duration::from_millis(self.started.elapsed().as_millis() as u64)
        );
        self.at_last_failed(Error::Timeout(self.with_attempts(&what)))
    }
}

/// Calls `f` with a chosen peer until it succeeds, declines, or the policy says stop.
/// `f` returns `Ok(value)`, or `Err(Attempt::Failure(e))` / `Err(Attempt::Declined(e))`
/// (any `e: Display`). See the [module docs](self).
pub fn call<T, E, F>(
    list: &PeerList,
    request: &Request<'_>,
    policy: &RetryPolicy,
    mut f: F,
) -> Result<T>
where
    E: fmt::Display,
    F: FnMut(&PeerId) -> std::result::Result<T, Attempt<E>>,
{
    let mut retry = Retry::new(policy);
    loop {
        let choice = retry.choose(list, request)?;
        let peer = choice.peer().clone();
        match f(&peer) {
            Ok(value) => {
                retry.succeeded(choice, None);
                return Ok(value);
            }
            Err(Attempt::Failure(e)) => retry.failed(choice, e, None),
            Err(Attempt::Declined(e)) => return Err(retry.declined(choice, e, None)),
        }
    }
}
