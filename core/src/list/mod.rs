//! The peer list: the one owner of lifecycle, locking and waiting.
//!
//! Modelled on yarpc's `peer/abstractlist`:
//!
//! * Peers added before [`PeerList::start`] are *uninitialized*: recorded, not retained.
//!   `start` retains them all (shuffled unless `shuffle(false)`); `stop` releases them all
//!   and they become uninitialized again, so a stopped list can be started again.
//! * [`PeerList::update`] applies removals, then additions, doing every one it can and
//!   reporting all failures together.
//! * Only *available* peers are offered to the strategy. [`PeerList::choose`] on a running
//!   list with none waits for one until the request's deadline (`timeout`); without a
//!   deadline it fails at once (`no-deadline`); a `fail_fast` list fails at once
//!   (`no-peer-available`).
//! * No transport callback runs while the list's lock is held, so a transport may call
//!   back into the list (report status, update peers) from inside `retain`/`release`.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
//!
//! let list = PeerList::new(ListOptions::default().strategy(StrategyKind::RoundRobin)).unwrap();
//! list.update(["10.0.0.1:80", "10.0.0.2:80"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let choice = list.choose(&Request::new().with_timeout(Duration::from_millis(100))).unwrap();
//! println!("send to {}", choice.peer());
//! choice.finish(Outcome::Ok, None);
//! assert_eq!(list.introspect().summary, "Running (2/2 available)");
//! list.stop().unwrap();
//! ```
//!
//! # Subsetting
//!
//! With [`ListOptions::subset`] and [`ListOptions::subset_client`] the list keeps the whole
//! *offered* membership and retains only its deterministic subset (see [`crate::subset`]).
//!
//! * Every `update(additions, removals)` names changes of the offered membership, and its
//!   errors are about that membership: `peer-already-in-list` for an id already offered,
//!   `peer-not-in-list` for an id not offered (as yarpc's list reports them for its own
//!   membership). Removing an offered peer that is not retained, or adding one, succeeds
//!   whether or not the subset changes.
//! * After the offered membership changed, the list computes the subset again (O(offered)
//!   hashing and an O(offered) selection, once per update, not per peer) and applies the
//!   difference to its records in the same commit as the update: peers that left the
//!   subset are removed (events, sessions, release), peers that entered are added (and
//!   retained when the list runs). One backend more or less moves at most one peer in and
//!   one out (often none: a peer outside the subset usually leaves it as it was), as long
//!   as the number of subsets per round stays (see [`crate::subset`]).
//! * The records (`total`, `peers`, the queries, admin actions, `len`) are the retained
//!   subset; the offered membership is visible as `subset.offered` in introspection.
//! * Admin `delete` of a peer removes it from the offered membership (as
//!   `update(None, [id])` does), so a replacement may enter; `add_backend` adds to the
//!   offered membership, and the backend is retained only if it falls in the subset.
//! * A peer whose `retain` failed leaves the records (as without subsetting) but stays
//!   offered; the next update that changes the offered membership adds it again.
//! * Other admin actions (`disable`, `enable`, `reset`, `failover`, `backend_config`) act on
//!   the records: for an offered peer outside the subset they answer `peer-not-in-list`.
//!
//! # How the list is built
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | this facade and the shared state |
//! | `options.rs` | [`ListOptions`] |
//! | `commit.rs` | the one path every change takes (below) |
//! | `membership.rs` | the peer records, lifecycle (`start`, `stop`, `update`), retaining and releasing, status reports |
//! | `eligibility.rs` | which peers the strategy offers: the class tally, outlier ejection, admin, the panic floor |
//! | `waiting.rs` | `choose` when no peer is available: blocking, async, `choose_now` |
//! | `introspection.rs` | snapshots and the messages that describe the list |
//! | `sessions.rs` | open sessions per peer, session events, a failover's choice of peer (see [`crate::session`]) |
//! | `backend_admin.rs` | the backend administrator's `add_backend` and `backend_config` |
//! | `queries.rs` | yarpc's `available`, `uninitialized`, `num_*` and `peers` |
//! | `breakers.rs` | the circuit breakers `max_pending` and `max_pending_per_peer` |
//! | `scrape.rs` | the list's metrics, read at scrape time |
//! | `subsetting.rs` | the offered membership of a subsetting list and its subset ([Subsetting](self#subsetting)) |
//!
//! # The change path
//!
//! Every change (an update, a start or stop, a status report, an admin action, an
//! ejection or restoration) goes through one commit function (`ListShared::commit`), which fixes the order:
//! lock → change → queue events → unlock → strategy `batch_end` → deliver events → wake
//! waiting `choose` calls. Inside the change, each peer record that is touched is
//! *reconciled* (`Commit::reconcile`): its class (healthy, ejected, connecting, ...) is
//! recomputed, the class tally adjusted, and its offer to the strategy added or withdrawn.
//! So a change costs O(changed peers × log n) plus the strategy's one `batch_end`; nothing
//! scans the whole list, except `stop` (which releases every peer) and introspection.
//!
//! # Invariants
//!
//! * A peer record is offered to the strategy exactly when it is retained, reported
//!   available, enabled, and not ejected — or ejected while the panic floor is active.
//! * The tally counts each record once, in the class it was last reconciled into; the
//!   panic floor is recomputed from it at the end of every commit, and only when it flips
//!   are the ejected records reconciled again (O(ejected)).
//! * Each fact is stored once: whether the list runs (`ListShared::running`, written under
//!   the lock), admin-disabled ids (`State::disabled`, which outlives removals), a peer's
//!   status (its `Peer`; the record keeps only the status it last acted on, for events).
//! * The strategy hears changes in the order of the commits (its `update` runs under the
//!   lock); its `batch_end` may run in another order, and publishes everything staged so
//!   far (see `strategy::snapshot`).
//! * A status report from inside `retain` takes no lock: it only sets the peer's status,
//!   and the list reads it when it settles the batch it retained.

mod backend_admin;
mod breakers;
mod commit;
mod eligibility;
mod introspection;
mod membership;
mod options;
mod queries;
pub mod routing;
mod scrape;
mod sessions;
mod subsetting;
mod waiting;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use event_listener::Event;

use crate::admin::{AdminOp, AdminResult};
use crate::choice::Choice;
use crate::clock::Clock;
use crate::ejection::EjectionPolicy;
use crate::error::{panic_message, Error, Result};
use crate::events::{EventBus, PeerEvent, Subscription};
use crate::introspect::{ListIntrospection, PeerIntrospection};
use crate::now_or_later::NowOrLater;
use crate::peer::{Peer, PeerId, PeerRef, PeerSpec};
use crate::request::{Outcome, Request};
use crate::session::SessionEvent;
use crate::strategy::Strategy;
use crate::transport::{AlwaysAvailable, Subscriber, Transport};

pub use options::{ListOptions, DEFAULT_CAPACITY};
pub(crate) use sessions::Left;

pub(crate) use breakers::Admission;
use breakers::Breakers;

use membership::State;

/// The most peers a capacity hint pre-sizes for (a hint is never trusted further: a huge
/// one must not abort the process on allocation).
const MAX_CAPACITY_HINT: usize = 1 << 16;

/// A list of peers with a strategy to choose among the available ones.
///
/// Cheap to clone (clones share one list); `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct PeerList {
    pub(crate) shared: Arc<ListShared>,
}

/// The shared inside of a list; peers point back at it weakly.
pub(crate) struct ListShared {
    /// This list, weakly (for the peers it makes and the timers it sets).
    this: Weak<ListShared>,
    strategy: Arc<dyn Strategy>,
    /// The strategy's full spec string, options included (`"hash-ring?bounded=1.25"`), or
    /// a custom strategy's name.
    spec: String,
    transport: Arc<dyn Transport>,
    shuffle: bool,
    fail_fast: bool,
    notify_pending: bool,
    /// Whether to call `pending_changed` after a choose (see
    /// `Strategy::choose_counts_pending`).
    notify_chosen: bool,
    notify_outcome: bool,
    clock: Clock,
    /// Origin of the clock stamps ejections carry (see [`ListShared::stamp_at`]).
    epoch: Instant,
    /// Origin of the stamps choices carry, on the clock's nanosecond scale (see
    /// [`ListShared::stamp`]).
    epoch_ns: u64,
    /// Whether the list runs: written only under the lock, read without it.
    running: AtomicBool,
    /// Outlier ejection, if on.
    ejection: Option<EjectionPolicy>,
    state: Mutex<State>,
    /// Fired when a peer becomes available or the list stops.
    changed: Event,
    /// Peer events and their subscribers.
    events: Arc<EventBus>,
    /// The list's name (`ListOptions::name`): its `list` label and admin path.
    list_name: Arc<str>,
    /// Metrics, unless the list was made with `metrics(false)`.
    metrics: Option<crate::metrics::ListMetrics>,
    /// Circuit breakers, when the list has any.
    breakers: Option<Breakers>,
    /// Session events and their subscribers.
    session_events: Arc<EventBus<SessionEvent>>,
    /// The capacity hint the list was made with.
    capacity: usize,
    /// Priority and zone routing (see [`routing`]).
    routing: routing::Routing,
}

impl PeerList {
    /// A new, idle list.
    pub fn new(options: ListOptions) -> Result<PeerList> {
        if let Some(policy) = &options.ejection {
            policy.validate()?;
        }
        let list_name: Arc<str> = match &options.name {
            Some(name) => {
                crate::registry::validate_name(name)?;
                Arc::from(name.as_str())
            }
            None => Arc::from(crate::registry::default_name()),
        };
        let breakers = Breakers::new(options.max_pending, options.max_pending_per_peer)?;
        let subset = subsetting::Subsetting::new(options.subset, options.subset_client)?;
        let routing = routing::Routing::new(
            &options.fleet,
            options
                .custom_strategy
                .is_none()
                .then_some(options.strategy),
            options.seed,
            options.clock.clone(),
        )?;
        let (strategy, spec) = match options.custom_strategy {
            Some(s) => {
                let name = s.name().to_owned();
                (s, name)
            }
            None => (
                options.strategy.build(options.seed, &options.clock),
                options.strategy.to_string(),
            ),
        };
        let shared = Arc::new_cyclic(|this| ListShared {
            this: this.clone(),
            spec,
            notify_pending: strategy.wants_pending_updates(),
            notify_chosen: strategy.wants_pending_updates() && !strategy.choose_counts_pending(),
            notify_outcome: strategy.wants_outcomes(),
            epoch: options.clock.now(),
            epoch_ns: options.clock.now_ns(),
            clock: options.clock,
            strategy,
            transport: options
                .transport
                .unwrap_or_else(|| Arc::new(AlwaysAvailable)),
            shuffle: options.shuffle,
            fail_fast: options.fail_fast,
            running: AtomicBool::new(false),
            ejection: options.ejection,
            state: Mutex::new(State::new(
                options.capacity.min(MAX_CAPACITY_HINT),
                options.seed,
                subset,
            )),
            changed: Event::new(),
            events: Arc::new(EventBus::default()),
            list_name: list_name.clone(),
            metrics: options
                .metrics
                .then(|| crate::metrics::ListMetrics::new(options.peer_labels)),
            breakers,
            session_events: Arc::new(EventBus::default()),
            capacity: options.capacity,
            routing,
        });
        crate::registry::register(list_name, Arc::downgrade(&shared));
        Ok(PeerList { shared })
    }

    /// A handle of a list the registry found.
    pub(crate) fn from_shared(shared: Arc<ListShared>) -> PeerList {
        PeerList { shared }
    }

    /// The list's name ([`ListOptions::name`], or `list-N` when it was made without one).
    pub fn name(&self) -> &str {
        &self.shared.list_name
    }

    /// The list's metrics in the Prometheus text format (see [`crate::metrics`]); empty
    /// for a list made with `metrics(false)`.
    pub fn metrics(&self) -> String {
        self.metrics_as(crate::metrics::MetricsFormat::Prometheus)
    }

    /// The list's metrics in `format`.
    pub fn metrics_as(&self, format: crate::metrics::MetricsFormat) -> String {
        match self.shared.metrics_sample() {
            Some(sample) => crate::metrics::encode(vec![sample], format),
            None => String::new(),
        }
    }

    /// Counts a retry the budget refused (metrics).
    pub(crate) fn count_retry_refused(&self) {
        self.shared.count_retry_refused();
    }

    /// This list's sample for a scrape, unless it keeps no metrics.
    pub(crate) fn metrics_sample(&self) -> Option<crate::metrics::ListSample> {
        self.shared.metrics_sample()
    }

    /// The strategy's full spec, options included: `"round-robin"`,
    /// `"hash-ring?bounded=1.25"`, `"peak-ewma?choices=all"` (defaults are left out, so
    /// it parses back to the same strategy), or a custom strategy's name.
    pub fn strategy_name(&self) -> &str {
        &self.shared.spec
    }

    /// Whether the list is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.shared.is_running()
    }

    /// How many peers the list has, retained or not (with [`ListOptions::subset`]: those
    /// of its subset).
    pub fn len(&self) -> usize {
        self.shared.lock().peers.len()
    }

    /// Whether the list has no peers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts the list: retains every peer. Errors with `already-started` when running;
    /// transport failures for individual peers are reported together (those peers are
    /// left out, the list runs).
    pub fn start(&self) -> Result<()> {
        self.shared.start()
    }

    /// Stops the list: releases every peer (they stay in the list, uninitialized) and
    /// wakes waiting `choose` calls, which fail with `not-started`.
    pub fn stop(&self) -> Result<()> {
        self.shared.stop()
    }

    /// Adds and removes peers: removals first, then additions. Everything that can be
    /// applied is; the failures (`invalid-argument`, `peer-already-in-list`,
    /// `peer-not-in-list`, `transport-failed`) come back together. Costs O(changes × log n)
    /// plus one build of the strategy's structure, however many peers the list has. With
    /// [`ListOptions::subset`], the changes are of the offered membership, and the list
    /// retains its subset (see [Subsetting](self#subsetting); O(offered) per update).
    ///
    /// ```
    /// use peerlb::{ErrorCode, ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a", "b"], None::<&str>).unwrap();
    /// let err = list.update(["c", "a"], ["zzz"]).unwrap_err();
    /// assert_eq!(err.errors().len(), 2); // zzz not in list, a already in list
    /// assert_eq!(list.len(), 3); // c was still added
    /// ```
    pub fn update<A, R>(&self, additions: A, removals: R) -> Result<()>
    where
        A: IntoIterator,
        A::Item: Into<PeerSpec>,
        R: IntoIterator,
        R::Item: AsRef<str>,
    {
        // Validated one by one as they come, so no copy of the whole input is kept.
        let mut errors = Vec::new();
        let additions = additions.into_iter();
        let mut valid = Vec::with_capacity(additions.size_hint().0.min(MAX_CAPACITY_HINT));
        for spec in additions {
            match membership::validate_spec(spec.into()) {
                Ok(v) => valid.push(v),
                Err(e) => errors.push(e),
            }
        }
        let removals: Vec<String> = removals
            .into_iter()
            .map(|r| r.as_ref().to_owned())
            .collect();
        if valid.is_empty() && removals.is_empty() && errors.is_empty() {
            return Ok(());
        }
        self.shared.update(valid, removals, errors)
    }

    /// Chooses an available peer, waiting (blocking this thread) until the request's
    /// deadline if none is available. See the module docs for the error cases.
    #[inline]
    pub fn choose(&self, request: &Request<'_>) -> Result<Choice> {
        match self.shared.try_choose(request) {
            Some(choice) => Ok(choice),
            None => self.shared.choose_slow(request),
        }
    }

    /// [`PeerList::choose`] for async code: waits without blocking a thread. Works under
    /// any executor, and needs no runtime context (deadlines use their own timer thread).
    pub async fn choose_async(&self, request: &Request<'_>) -> Result<Choice> {
        if let Some(choice) = self.shared.try_choose(request) {
            return Ok(choice);
        }
        self.shared.choose_slow_async(request).await
    }

    /// Chooses without blocking: [`NowOrLater::Now`] with the choice or the final error
    /// (`not-started`, `no-peer-available` on a fail-fast list, `no-deadline`) when that is
    /// known at once, else a [`Later`](crate::Later) that waits for a peer until the
    /// request's deadline and owns what it needs (the shard key is copied). The bindings
    /// use this to take the fast path inline and wait their own way (block, await, an
    /// event loop's promise).
    #[inline]
    pub fn choose_now(&self, request: &Request<'_>) -> NowOrLater<Result<Choice>> {
        if let Some(choice) = self.shared.try_choose(request) {
            return NowOrLater::Now(Ok(choice));
        }
        self.shared.choose_later(self.clone(), request)
    }

    /// Chooses a peer if one can be chosen now: `None` when [`PeerList::choose`] would wait
    /// or fail (the list is not running, or no peer is available). Never blocks and never
    /// fails; the request's deadline is not looked at. The bindings take this fast path
    /// first and build a request with a deadline (which reads the clock) only when it says
    /// `None`.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList, Request};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// assert!(list.try_choose(&Request::new()).is_none()); // not running
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// assert_eq!(list.try_choose(&Request::new()).unwrap().peer().as_str(), "a:1");
    /// ```
    #[inline]
    pub fn try_choose(&self, request: &Request<'_>) -> Option<Choice> {
        self.shared.try_choose(request)
    }

    /// A snapshot of the list for debugging and tests.
    pub fn introspect(&self) -> ListIntrospection {
        self.shared.introspect()
    }

    /// Subscribes to peer events (see [`crate::events`]); the callback runs outside the
    /// list's lock, one event at a time, and may call back into the list. Keep the
    /// returned [`Subscription`]: dropping it unsubscribes.
    pub fn subscribe<F>(&self, callback: F) -> Subscription
    where
        F: Fn(&PeerEvent) + Send + Sync + 'static,
    {
        self.shared.events.subscribe(Arc::new(callback))
    }

    /// Admin: no new requests go to `id` (in-flight ones finish); it stays disabled across
    /// updates until [`PeerList::enable`]. See [`crate::admin`].
    pub fn disable(&self, id: &str) -> Result<AdminResult> {
        self.shared.set_disabled(id, true)
    }

    /// Admin: undoes [`PeerList::disable`].
    pub fn enable(&self, id: &str) -> Result<AdminResult> {
        self.shared.set_disabled(id, false)
    }

    /// Admin: clears `id`'s ejection and failure history (a tripped peer comes back now).
    pub fn reset(&self, id: &str) -> Result<AdminResult> {
        self.shared.reset(id)
    }

    /// Admin: removes `id` from the list (as `update(None, [id])`) and forgets its admin
    /// state. Sessions bound to it are asked to move (see [`PeerList::failover`]); they
    /// stay open until their owners fail them over or close them.
    ///
    /// A peer that was disabled and then removed by an update is still remembered as
    /// disabled (so it comes back disabled); `delete` and `enable` of such an id forget it
    /// and succeed.
    ///
    /// On a list with [`ListOptions::subset`], `delete` takes the id out of the offered
    /// membership (retained or not), and the subset may take a replacement in.
    pub fn delete(&self, id: &str) -> Result<AdminResult> {
        self.shared.delete(id)
    }

    /// An admin operation by name (the surfaces that dispatch on a string or a number use
    /// this): the same as calling [`PeerList::disable`], [`PeerList::enable`],
    /// [`PeerList::reset`], [`PeerList::delete`] or [`PeerList::failover`].
    ///
    /// ```
    /// use peerlb::{admin::{AdminOp, AdminResult}, ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update(["a:1"], None::<&str>).unwrap();
    /// let op: AdminOp = "disable".parse().unwrap();
    /// assert_eq!(list.admin(op, "a:1").unwrap(), AdminResult::Success);
    /// ```
    pub fn admin(&self, op: AdminOp, id: &str) -> Result<AdminResult> {
        match op {
            AdminOp::Disable => self.disable(id),
            AdminOp::Enable => self.enable(id),
            AdminOp::Reset => self.reset(id),
            AdminOp::Delete => self.delete(id),
            AdminOp::Failover => self.failover(id),
        }
    }

    /// Every backend with its admin and ejection state, in the order they were added: the
    /// `peers` of [`PeerList::introspect`] (the backend admin's `list_backends`).
    pub fn list_backends(&self) -> Vec<PeerIntrospection> {
        self.shared.backends()
    }

    /// The status of one peer, if it is in the list (an uninitialized peer is reported
    /// as `unavailable` with 0 pending).
    pub fn peer_status(&self, id: &str) -> Option<crate::PeerStatus> {
        self.shared.peer_status(id)
    }
}

impl fmt::Debug for PeerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerList({:?}, {})",
            self.strategy_name(),
            self.introspect().summary
        )
    }
}

/// Runs a transport callback, turning an error or a panic into `transport-failed`.
fn call_transport(
    operation: &'static str,
    peer: &PeerId,
    f: impl FnOnce() -> std::result::Result<(), String>,
) -> Result<()> {
    let outcome = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(panic.as_ref()))));
    outcome.map_err(|message| Error::TransportFailed {
        operation,
        peer: peer.to_string(),
        message,
    })
}

impl ListShared {
    /// Counts a retry the budget refused (metrics).
    pub(crate) fn count_retry_refused(&self) {
        if let Some(m) = &self.metrics {
            m.budget_refused();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is kept consistent at every unlock, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self) -> &str {
        &self.spec
    }

    #[inline]
    fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// A new peer for the transport to retain (`series`: its id's metric series).
    fn new_peer(
        &self,
        id: PeerId,
        weight: u32,
        series: Option<Arc<crate::metrics::PeerSeries>>,
    ) -> PeerRef {
        Peer::new_ref_with(
            id,
            weight,
            self.this.clone(),
            self.notify_pending,
            self.notify_outcome,
            self.ejection.map_or(0, |p| p.consecutive_failures),
            series,
            self.breakers.as_ref().and_then(Breakers::admission),
        )
    }

    /// Counts a retry (metrics).
    pub(crate) fn count_retry(&self) {
        if let Some(m) = &self.metrics {
            m.retried();
        }
    }

    /// A peer's pending count changed: the strategy that holds it hears it (the list's, or
    /// its locality's while the list routes).
    pub(crate) fn pending_changed(&self, peer: &PeerRef) {
        if self.routing.is_routed() {
            self.routed_pending_changed(peer);
        } else {
            self.strategy.pending_changed(peer);
        }
    }

    /// A request to `peer` ended (with the backend's load report, if it sent one); only
    /// called when the strategy wants outcomes. Without a given latency, it is the time
    /// since `started` on the list's clock.
    pub(crate) fn request_finished(
        &self,
        peer: &PeerRef,
        outcome: Outcome,
        latency: Option<Duration>,
        load: Option<&crate::load_report::LoadReport>,
        started: u64,
        pending_at_start: u32,
    ) {
        // One clock reading serves the latency and the strategy.
        let now_ns = self.clock.now_ns();
        let latency = match latency {
            Some(l) => l,
            None if started == 0 => Duration::ZERO,
            None => {
                let measured = Duration::from_nanos(self.stamp_ns(now_ns).saturating_sub(started));
                // A given latency was recorded by `Choice::finish`; a measured one is here.
                if let Some(series) = peer.series() {
                    series.record_latency(measured);
                }
                measured
            }
        };
        // This runs inside `Choice::finish` or a drop: a panicking custom strategy must not
        // turn into a panic in drop (an abort while unwinding), so it is contained here;
        // the request has already ended either way.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let end = crate::strategy::RequestEnd {
                peer,
                outcome,
                latency,
                now_ns,
                clock: &self.clock,
                pending_at_start: (started != 0).then_some(pending_at_start),
                load,
            };
            if self.routing.is_routed() {
                self.routed_request_ended(&end);
            } else {
                self.strategy.request_ended(&end);
            }
        }));
    }

    /// Nanoseconds since the list was made, on its clock's nanosecond scale, plus one (so
    /// never 0, which means "not timed" in a [`Choice`]).
    #[inline]
    fn stamp(&self) -> u64 {
        self.stamp_ns(self.clock.now_ns())
    }

    /// [`ListShared::stamp`] of a reading of [`Clock::now_ns`].
    #[inline]
    fn stamp_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.epoch_ns).saturating_add(1)
    }

    /// An instant as a stamp of the list's clock (ejection times), nanoseconds since the
    /// list was made plus one.
    #[inline]
    fn stamp_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.epoch);
        // Saturates: a manual clock can be moved to u64::MAX nanoseconds and beyond.
        u64::try_from(d.as_nanos()).map_or(u64::MAX, |n| n.saturating_add(1))
    }
}

impl Drop for ListShared {
    /// A list dropped while running releases its peers (no lock is held by then). The
    /// releases, and the drop of the transport, are user code: when the last handle goes on
    /// one of the library runtime's async workers (a task that held the list), they run on
    /// its blocking pool instead.
    fn drop(&mut self) {
        let retained = if *self.running.get_mut() {
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            state.take_retained()
        } else {
            Vec::new()
        };
        let transport = self.transport.clone();
        let release = move || {
            for peer in retained {
                let sub = Subscriber::new(peer);
                let id = sub.peer().id();
                let _ = call_transport("release", id, || transport.release(id, &sub));
            }
            drop(transport); // possibly the last handle of a foreign transport
        };
        if crate::runtime::on_worker_thread() {
            crate::runtime::run_blocking(release);
        } else {
            release();
        }
    }
}
