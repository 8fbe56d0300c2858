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

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use indexmap::IndexMap;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::admin::{AdminOp, AdminResult};
use crate::choice::Choice;
use crate::clock::Clock;
use crate::ejection::EjectionPolicy;
use crate::error::{panic_message, Error, Result};
use crate::events::{EventBus, EventKind, PeerEvent, Subscription};
use crate::introspect::{ListIntrospection, PeerIntrospection};
use crate::now_or_later::{Later, NowOrLater};
use crate::peer::{ConnectionStatus, Peer, PeerId, PeerRef, PeerSpec};
use crate::request::{Outcome, Request};
use crate::strategy::hash_ring::HashRingOptions;
use crate::strategy::maglev::MaglevOptions;
use crate::strategy::peak_ewma::PeakEwmaOptions;
use crate::strategy::weighted_round_robin::WeightedRoundRobinOptions;
use crate::strategy::{Strategy, StrategyConfig, StrategyKind};
use crate::transport::{AlwaysAvailable, Subscriber, Transport};

/// How to build a [`PeerList`]. Start from `ListOptions::default()` and chain setters.
///
/// ```
/// use peerlb::{ListOptions, StrategyKind};
/// let opts = ListOptions::default()
///     .strategy(StrategyKind::FewestPending)
///     .shuffle(false)
///     .seed(42)
///     .fail_fast(true)
///     .capacity(64);
/// assert!(opts.is_fail_fast());
/// ```
#[derive(Clone)]
pub struct ListOptions {
    strategy: StrategyConfig,
    clock: Clock,
    ejection: Option<EjectionPolicy>,
    custom_strategy: Option<Arc<dyn Strategy>>,
    shuffle: bool,
    seed: Option<u64>,
    fail_fast: bool,
    capacity: usize,
    transport: Option<Arc<dyn Transport>>,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            strategy: StrategyConfig::default(),
            clock: Clock::real(),
            ejection: Some(EjectionPolicy::default()),
            custom_strategy: None,
            shuffle: true,
            seed: None,
            fail_fast: false,
            capacity: 0,
            transport: None,
        }
    }
}

impl ListOptions {
    /// The built-in strategy (default `round-robin`).
    pub fn strategy(self, kind: StrategyKind) -> Self {
        self.strategy_config(kind.into())
    }

    /// The strategy by name (`"round-robin"`, `"random"`, `"fewest-pending"`,
    /// `"two-random-choices"`, `"hash-ring"`, `"maglev"`), optionally with options such as
    /// `"hash-ring:fast?bounded=1.25"` (see [`StrategyConfig`]); an unknown name or a bad
    /// option is `invalid-argument`.
    pub fn strategy_name(self, name: &str) -> Result<Self> {
        Ok(self.strategy_config(name.parse()?))
    }

    /// A built-in strategy with its options.
    ///
    /// ```
    /// use peerlb::strategy::maglev::MaglevOptions;
    /// use peerlb::{ListOptions, PeerList};
    /// let opts = ListOptions::default().strategy_config(MaglevOptions::default().into());
    /// assert_eq!(PeerList::new(opts).unwrap().strategy_name(), "maglev");
    /// ```
    pub fn strategy_config(mut self, config: StrategyConfig) -> Self {
        self.strategy = config;
        self.custom_strategy = None;
        self
    }

    /// The `hash-ring` strategy with these options.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// use peerlb::{ListOptions, PeerList};
    /// let opts = ListOptions::default().hash_ring(HashRingOptions::fast());
    /// assert_eq!(PeerList::new(opts).unwrap().strategy_name(), "hash-ring:fast");
    /// ```
    pub fn hash_ring(self, options: HashRingOptions) -> Self {
        self.strategy_config(options.into())
    }

    /// The `maglev` strategy with these options.
    ///
    /// ```
    /// use peerlb::strategy::maglev::MaglevOptions;
    /// use peerlb::{ListOptions, PeerList};
    /// let opts = ListOptions::default().maglev(MaglevOptions::default().table_size(251).unwrap());
    /// assert_eq!(PeerList::new(opts).unwrap().strategy_name(), "maglev?table=251");
    /// ```
    pub fn maglev(self, options: MaglevOptions) -> Self {
        self.strategy_config(options.into())
    }

    /// The `weighted-round-robin` strategy with these options.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::strategy::weighted_round_robin::WeightedRoundRobinOptions;
    /// use peerlb::{ListOptions, PeerList};
    /// let opts = ListOptions::default().weighted_round_robin(WeightedRoundRobinOptions {
    ///     slow_start: Some(Duration::from_secs(30)),
    /// });
    /// assert_eq!(PeerList::new(opts).unwrap().strategy_name(), "weighted-round-robin?slow_start_ms=30000");
    /// ```
    pub fn weighted_round_robin(self, options: WeightedRoundRobinOptions) -> Self {
        self.strategy_config(options.into())
    }

    /// The `peak-ewma` strategy with these options.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::strategy::peak_ewma::PeakEwmaOptions;
    /// use peerlb::{ListOptions, PeerList};
    /// let opts = ListOptions::default().peak_ewma(PeakEwmaOptions {
    ///     decay: Duration::from_secs(5),
    ///     ..Default::default()
    /// });
    /// assert_eq!(PeerList::new(opts).unwrap().strategy_name(), "peak-ewma?decay_ms=5000");
    /// ```
    pub fn peak_ewma(self, options: PeakEwmaOptions) -> Self {
        self.strategy_config(options.into())
    }

    /// The clock strategies (and latency measurement) use; default the real monotonic
    /// clock. Tests pass a [`ManualClock`](crate::clock::ManualClock) to simulate time.
    ///
    /// ```
    /// use peerlb::{clock::ManualClock, ListOptions};
    /// let manual = ManualClock::new();
    /// let opts = ListOptions::default().clock(manual.clone().into());
    /// ```
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Outlier ejection (see [`crate::ejection`]): on by default with
    /// [`EjectionPolicy::default`]; `None` turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::{ejection::EjectionPolicy, ListOptions};
    /// let opts = ListOptions::default().ejection(Some(EjectionPolicy {
    ///     consecutive_failures: 3,
    ///     base_time: Duration::from_secs(10),
    ///     ..EjectionPolicy::default()
    /// }));
    /// let off = ListOptions::default().ejection(None);
    /// # let _ = (opts, off);
    /// ```
    pub fn ejection(mut self, policy: Option<EjectionPolicy>) -> Self {
        self.ejection = policy;
        self
    }

    /// A strategy of your own (called with the list's lock held; it must not call back
    /// into the list).
    pub fn custom_strategy(mut self, strategy: Arc<dyn Strategy>) -> Self {
        self.custom_strategy = Some(strategy);
        self
    }

    /// Shuffle peers as they are retained (default `true`), so that many clients given
    /// the same peer set do not all start on the same peer.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Seed for shuffling and random strategies (default: from the OS).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Fail `choose` at once with `no-peer-available` instead of waiting (default `false`).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Expected number of peers (pre-sizes the list; default 0). Only a hint: values
    /// above 65 536 pre-size for 65 536, and the list grows as peers come.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The transport (default [`AlwaysAvailable`]).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Whether `fail_fast` is set.
    pub fn is_fail_fast(&self) -> bool {
        self.fail_fast
    }
}

impl fmt::Debug for ListOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListOptions")
            .field("strategy", &self.strategy)
            .field("clock", &self.clock)
            .field("ejection", &self.ejection)
            .field("custom_strategy", &self.custom_strategy.is_some())
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("fail_fast", &self.fail_fast)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// The most peers a capacity hint pre-sizes for (a hint is never trusted further: a huge
/// one must not abort the process on allocation).
const MAX_CAPACITY_HINT: usize = 1 << 16;

/// A list of peers with a strategy to choose among the available ones.
///
/// Cheap to clone (clones share one list); `Send + Sync`. See the [module docs](self).
#[derive(Clone)]
pub struct PeerList {
    shared: Arc<ListShared>,
}

/// The shared inside of a list; peers and subscribers point back at it weakly.
pub(crate) struct ListShared {
    strategy: Arc<dyn Strategy>,
    /// The strategy's full spec string, options included (`"hash-ring?bounded=1.25"`), or
    /// a custom strategy's name.
    spec: String,
    transport: Arc<dyn Transport>,
    shuffle: bool,
    fail_fast: bool,
    notify_pending: bool,
    notify_outcome: bool,
    clock: Clock,
    /// Origin of the clock stamps choices carry (see [`ListShared::stamp`]).
    epoch: Instant,
    running: AtomicBool,
    /// Outlier ejection, if on.
    ejection: Option<EjectionPolicy>,
    state: Mutex<State>,
    /// Fired when a peer becomes available or the list stops.
    changed: Event,
    /// Peer events and their subscribers.
    events: Arc<EventBus>,
}

struct State {
    running: bool,
    peers: IndexMap<PeerId, Slot>,
    rng: StdRng,
    /// Ids an admin disabled; kept across removals so a re-added peer stays disabled.
    disabled: HashSet<PeerId>,
    /// Whether too few peers are healthy, so ejections are ignored.
    panic: bool,
}

struct Slot {
    weight: u32,
    /// The retained (or being retained) peer, as the subscriber handed to the transport;
    /// `None` while uninitialized.
    entry: Option<Subscriber>,
    phase: Phase,
    /// Whether the strategy currently offers it.
    offered: bool,
    /// An admin disabled it.
    disabled: bool,
    /// Ejected until then.
    ejected_until: Option<Instant>,
    /// How many times it has been ejected (the next ejection lasts longer).
    ejections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Retaining,
    Retained,
}

impl Slot {
    fn holds(&self, peer: &PeerRef) -> bool {
        self.entry
            .as_ref()
            .is_some_and(|e| PeerRef::ptr_eq(e.peer(), peer))
    }

    fn peer(&self) -> Option<&PeerRef> {
        self.entry.as_ref().map(Subscriber::peer)
    }

    fn new(weight: u32, disabled: bool) -> Slot {
        Slot {
            weight,
            entry: None,
            phase: Phase::Uninitialized,
            offered: false,
            disabled,
            ejected_until: None,
            ejections: 0,
        }
    }

    /// Retained, reported available, and not disabled.
    fn usable(&self) -> bool {
        self.phase == Phase::Retained
            && !self.disabled
            && self
                .peer()
                .is_some_and(|p| p.connection_status() == ConnectionStatus::Available)
    }
}

/// Events collected under the list's lock, queued before it is released.
type Events = Vec<PeerEvent>;

fn event(kind: EventKind, peer: &PeerId, detail: impl Into<String>) -> PeerEvent {
    PeerEvent {
        kind,
        peer: peer.clone(),
        detail: detail.into(),
    }
}

impl PeerList {
    /// A new, idle list.
    pub fn new(options: ListOptions) -> Result<PeerList> {
        if let Some(policy) = &options.ejection {
            policy.validate()?;
        }
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
        let rng = match options.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let shared = Arc::new(ListShared {
            spec,
            notify_pending: strategy.wants_pending_updates(),
            notify_outcome: strategy.wants_outcomes(),
            epoch: options.clock.now(),
            clock: options.clock,
            strategy,
            transport: options
                .transport
                .unwrap_or_else(|| Arc::new(AlwaysAvailable)),
            shuffle: options.shuffle,
            fail_fast: options.fail_fast,
            running: AtomicBool::new(false),
            ejection: options.ejection,
            state: Mutex::new(State {
                running: false,
                peers: IndexMap::with_capacity(options.capacity.min(MAX_CAPACITY_HINT)),
                rng,
                disabled: HashSet::new(),
                panic: false,
            }),
            changed: Event::new(),
            events: Arc::new(EventBus::default()),
        });
        Ok(PeerList { shared })
    }

    /// The strategy's full spec, options included: `"round-robin"`,
    /// `"hash-ring?bounded=1.25"`, `"peak-ewma?choices=all"` (defaults are left out, so
    /// it parses back to the same strategy), or a custom strategy's name.
    pub fn strategy_name(&self) -> &str {
        &self.shared.spec
    }

    /// Whether the list is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }

    /// How many peers the list has, retained or not.
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
    /// `peer-not-in-list`, `transport-failed`) come back together.
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
        let additions: Vec<PeerSpec> = additions.into_iter().map(Into::into).collect();
        let removals: Vec<String> = removals
            .into_iter()
            .map(|r| r.as_ref().to_owned())
            .collect();
        self.shared.update(additions, removals)
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
    /// known at once, else a [`Later`] that waits for a peer until the request's deadline
    /// and owns what it needs (the shard key is copied). [`PeerList::choose`] is
    /// `choose_now(request).wait()`; the bindings use this to take the fast path inline and
    /// wait their own way (block, await, an event loop's promise).
    #[inline]
    pub fn choose_now(&self, request: &Request<'_>) -> NowOrLater<Result<Choice>> {
        if let Some(choice) = self.shared.try_choose(request) {
            return NowOrLater::Now(Ok(choice));
        }
        self.choose_later(request)
    }

    #[cold]
    fn choose_later(&self, request: &Request<'_>) -> NowOrLater<Result<Choice>> {
        if let Some(err) = self.shared.cannot_wait(request) {
            // A peer may have come meanwhile.
            return NowOrLater::Now(self.shared.try_choose(request).ok_or(err));
        }
        let list = self.clone();
        let deadline = request.deadline().expect("checked by cannot_wait");
        let key = request.shard_key().map(<[u8]>::to_vec);
        NowOrLater::Later(Later::new(async move {
            let mut request = Request::new().with_deadline(deadline);
            if let Some(k) = &key {
                request = request.with_shard_key(k);
            }
            list.shared.choose_slow_async(&request).await
        }))
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
    /// state.
    ///
    /// A peer that was disabled and then removed by an update is still remembered as
    /// disabled (so it comes back disabled); `delete` and `enable` of such an id forget it
    /// and succeed.
    pub fn delete(&self, id: &str) -> Result<AdminResult> {
        let peer = PeerId::new(id)?;
        // Forget first: a concurrent re-add then comes back enabled and is removed below.
        let forgot = self.shared.lock().disabled.remove(&peer);
        match self.shared.update(Vec::new(), vec![id.to_owned()]) {
            Ok(()) => Ok(AdminResult::Success),
            Err(e) if forgot && e.code() == crate::ErrorCode::PeerNotInList => {
                Ok(AdminResult::Success)
            }
            Err(e) => Err(e),
        }
    }

    /// An admin operation by name (the surfaces that dispatch on a string or a number use
    /// this): the same as calling [`PeerList::disable`], [`PeerList::enable`],
    /// [`PeerList::reset`] or [`PeerList::delete`].
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
        }
    }

    /// Every backend with its admin and ejection state: the `peers` of
    /// [`PeerList::introspect`] (the backend admin's `list_backends`).
    pub fn list_backends(&self) -> Vec<PeerIntrospection> {
        self.introspect().peers
    }

    /// The status of one peer, if it is in the list (`None` status fields for
    /// uninitialized peers are reported as `unavailable` with 0 pending).
    pub fn peer_status(&self, id: &str) -> Option<crate::PeerStatus> {
        let state = self.shared.lock();
        let slot = state.peers.get(id)?;
        Some(slot.peer().map(|p| p.status()).unwrap_or_default())
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
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is kept consistent at every unlock, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self) -> &str {
        &self.spec
    }

    /// A new peer record and the subscriber its transport reports through.
    fn new_peer(self: &Arc<Self>, id: PeerId, weight: u32) -> Subscriber {
        let peer = Peer::new_ref(
            id,
            weight,
            Arc::downgrade(self),
            self.notify_pending,
            self.notify_outcome,
            self.ejection.map_or(0, |p| p.consecutive_failures),
        );
        Subscriber::new(Arc::downgrade(self), peer)
    }

    fn start(self: &Arc<Self>) -> Result<()> {
        let mut to_retain = Vec::new();
        {
            let mut state = self.lock();
            if state.running {
                return Err(Error::AlreadyStarted(format!(
                    "{:?} peer list is already running",
                    self.name()
                )));
            }
            state.running = true;
            self.running.store(true, Ordering::Release);
            let State { peers, rng, .. } = &mut *state;
            for (id, slot) in peers.iter_mut() {
                if slot.entry.is_none() {
                    let sub = self.new_peer(id.clone(), slot.weight);
                    slot.entry = Some(sub.clone());
                    slot.phase = Phase::Retaining;
                    to_retain.push(sub);
                }
            }
            if self.shuffle {
                to_retain.shuffle(rng);
            }
        }
        let mut errors = Vec::new();
        for sub in to_retain {
            self.retain(sub, &mut errors);
        }
        self.strategy.batch_end();
        Error::combine(errors)
    }

    fn stop(&self) -> Result<()> {
        let mut to_release = Vec::new();
        {
            let mut state = self.lock();
            if !state.running {
                return Err(self.not_running());
            }
            state.running = false;
            self.running.store(false, Ordering::Release);
            state.panic = false;
            let mut events = Events::new();
            for (id, slot) in state.peers.iter_mut() {
                if let Some(sub) = slot.entry.take() {
                    if sub.peer().connection_status() == ConnectionStatus::Available {
                        events.push(event(EventKind::Unavailable, id, "the list stopped"));
                    }
                    if slot.offered {
                        self.strategy.remove(sub.peer());
                        slot.offered = false;
                    }
                    if slot.phase == Phase::Retained {
                        to_release.push(sub);
                    }
                    // A peer still being retained is released by its retainer, which will
                    // find its slot emptied.
                }
                slot.phase = Phase::Uninitialized;
            }
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.events.deliver();
        self.changed.notify(usize::MAX);
        let mut errors = Vec::new();
        for sub in to_release {
            self.release(&sub, &mut errors);
        }
        Error::combine(errors)
    }

    fn update(self: &Arc<Self>, additions: Vec<PeerSpec>, removals: Vec<String>) -> Result<()> {
        if additions.is_empty() && removals.is_empty() {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut to_release = Vec::new();
        let mut to_retain = Vec::new();
        let offered_new;
        {
            let mut state = self.lock();
            let mut events = Events::new();
            let removed_any = !removals.is_empty();
            for raw in removals {
                let id = match PeerId::new(&raw) {
                    Ok(id) => id,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                match state.peers.shift_remove(&id) {
                    None => errors.push(Error::PeerNotInList(id.to_string())),
                    Some(slot) => {
                        events.push(event(EventKind::Removed, &id, ""));
                        if let Some(sub) = slot.entry {
                            if slot.offered {
                                self.strategy.remove(sub.peer());
                            }
                            if slot.phase == Phase::Retained {
                                to_release.push(sub);
                            }
                        }
                    }
                }
            }
            let mut valid = Vec::with_capacity(additions.len());
            for spec in additions {
                match validate_spec(&spec) {
                    Ok(id) => valid.push((id, spec.weight)),
                    Err(e) => errors.push(e),
                }
            }
            let running = state.running;
            if running && self.shuffle {
                valid.shuffle(&mut state.rng);
            }
            for (id, weight) in valid {
                if state.peers.contains_key(&id) {
                    errors.push(Error::PeerAlreadyInList(id.to_string()));
                    continue;
                }
                let mut slot = Slot::new(weight, state.disabled.contains(&id));
                events.push(event(EventKind::Added, &id, ""));
                if running {
                    let sub = self.new_peer(id.clone(), weight);
                    slot.entry = Some(sub.clone());
                    slot.phase = Phase::Retaining;
                    to_retain.push(sub);
                }
                state.peers.insert(id, slot);
            }
            // Fewer peers may change how many are healthy (panic mode).
            offered_new = removed_any && self.refresh(&mut state);
            self.events.push(events);
        }
        self.after_change(offered_new);
        for sub in to_release {
            self.release(&sub, &mut errors);
        }
        for sub in to_retain {
            self.retain(sub, &mut errors);
        }
        self.strategy.batch_end();
        Error::combine(errors)
    }

    /// Calls the transport's `retain` (no lock held), then settles the peer's slot.
    fn retain(&self, sub: Subscriber, errors: &mut Vec<Error>) {
        let peer = sub.peer();
        let result = call_transport("retain", peer.id(), || {
            self.transport.retain(peer.id(), &sub)
        });
        let mut became_available = false;
        let mut release_now = false;
        {
            let mut state = self.lock();
            let mut events = Events::new();
            let still_ours = state.peers.get(peer.id()).is_some_and(|s| s.holds(peer));
            match (result, still_ours) {
                (Ok(()), true) => {
                    let slot = state.peers.get_mut(peer.id()).expect("checked above");
                    slot.phase = Phase::Retained;
                    if peer.connection_status() == ConnectionStatus::Available {
                        events.push(event(EventKind::Available, peer.id(), ""));
                    }
                    became_available = self.refresh(&mut state);
                }
                // Removed, or the list stopped, while the transport was retaining it.
                (Ok(()), false) => release_now = true,
                (Err(e), true) => {
                    // Left out of the list (as yarpc): subscribers saw it added, so they
                    // hear it leave.
                    state.peers.shift_remove(peer.id());
                    events.push(event(EventKind::Removed, peer.id(), e.to_string()));
                    errors.push(e);
                }
                (Err(e), false) => errors.push(e),
            }
            self.events.push(events);
        }
        self.after_change(became_available);
        if release_now {
            self.release(&sub, errors);
        }
    }

    fn release(&self, sub: &Subscriber, errors: &mut Vec<Error>) {
        let id = sub.peer().id();
        if let Err(e) = call_transport("release", id, || self.transport.release(id, sub)) {
            errors.push(e);
        }
    }

    /// A transport reported `status` for `peer`; returns whether the report was current.
    pub(crate) fn status_changed(&self, peer: &PeerRef, status: ConnectionStatus) -> bool {
        let became_available;
        {
            let mut state = self.lock();
            let Some(slot) = state.peers.get_mut(peer.id()).filter(|s| s.holds(peer)) else {
                return false;
            };
            let before = peer.connection_status();
            peer.set_connection_status(status);
            if slot.phase != Phase::Retained {
                // Still inside retain: the retainer offers it once retain returns.
                return true;
            }
            let mut events = Events::new();
            let available = ConnectionStatus::Available;
            if before != available && status == available {
                events.push(event(EventKind::Available, peer.id(), ""));
            } else if before == available && status != available {
                events.push(event(EventKind::Unavailable, peer.id(), status.as_str()));
            }
            became_available = self.refresh(&mut state);
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.after_change(became_available);
        true
    }

    /// Makes the strategy offer exactly the peers it should: running, retained, available,
    /// enabled, and not ejected (unless in panic mode, which this recomputes). Returns
    /// whether it offered a peer it did not before (waiters should wake).
    fn refresh(&self, state: &mut State) -> bool {
        let running = state.running;
        let panic = match self.ejection {
            Some(policy) if running => {
                let (mut enabled, mut healthy) = (0, 0);
                for slot in state.peers.values() {
                    if slot.phase == Phase::Retained && !slot.disabled {
                        enabled += 1;
                        if slot.usable() && slot.ejected_until.is_none() {
                            healthy += 1;
                        }
                    }
                }
                policy.panics(healthy, enabled)
            }
            _ => false,
        };
        state.panic = panic;
        let mut offered_new = false;
        for slot in state.peers.values_mut() {
            let wanted = running && slot.usable() && (slot.ejected_until.is_none() || panic);
            if wanted == slot.offered {
                continue;
            }
            let peer = slot.peer().expect("a usable or offered peer is retained");
            if wanted {
                self.strategy.add(peer);
                offered_new = true;
            } else {
                self.strategy.remove(peer);
            }
            slot.offered = wanted;
        }
        offered_new
    }

    /// `peer` just completed a run of failures long enough to eject it: eject it unless
    /// it is ejected or disabled already, or too many peers are ejected.
    pub(crate) fn failure_streak(self: &Arc<Self>, peer: &PeerRef) {
        let Some(policy) = self.ejection else {
            return;
        };
        let until;
        {
            let mut state = self.lock();
            if !state.running {
                return;
            }
            let total = state.peers.len();
            let ejected = state
                .peers
                .values()
                .filter(|s| s.ejected_until.is_some())
                .count();
            let Some(slot) = state.peers.get_mut(peer.id()).filter(|s| s.holds(peer)) else {
                return;
            };
            if slot.ejected_until.is_some() || slot.disabled {
                // Already out of rotation (chosen only in panic mode) or out by hand.
                peer.clear_streak();
                return;
            }
            if ejected >= policy.max_ejected(total) {
                // The streak goes on; the next failure tries again.
                return;
            }
            slot.ejections = slot.ejections.saturating_add(1);
            let time = policy.ejection_time(slot.ejections);
            let now = self.clock.now();
            // A time too far to represent is as good as forever: a year.
            until = now
                .checked_add(time)
                .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
                .unwrap_or(now);
            slot.ejected_until = Some(until);
            let detail = format!(
                "{} consecutive failures; ejected for {:?} (ejection {})",
                peer.consecutive_failures(),
                time,
                slot.ejections
            );
            peer.clear_streak();
            let events = vec![event(EventKind::Ejected, peer.id(), detail)];
            self.refresh(&mut state);
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.events.deliver();
        let list = Arc::downgrade(self);
        self.clock.call_at(
            until,
            Box::new(move || {
                if let Some(list) = list.upgrade() {
                    list.restore_due();
                }
            }),
        );
    }

    /// After a change, with no lock held: delivers the events it queued and wakes waiting
    /// chooses when it offered a new peer.
    fn after_change(&self, offered_new: bool) {
        self.events.deliver();
        if offered_new {
            self.changed.notify(usize::MAX);
        }
    }

    /// Restores every peer whose ejection time is over.
    fn restore_due(&self) {
        let offered_new;
        {
            let mut state = self.lock();
            let now = self.clock.now();
            let mut events = Events::new();
            for (id, slot) in state.peers.iter_mut() {
                if slot.ejected_until.is_some_and(|t| t <= now) {
                    slot.ejected_until = None;
                    if let Some(peer) = slot.peer() {
                        peer.clear_streak();
                    }
                    events.push(event(EventKind::Restored, id, "ejection time is over"));
                }
            }
            if events.is_empty() {
                return;
            }
            offered_new = self.refresh(&mut state);
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.after_change(offered_new);
    }

    fn set_disabled(&self, id: &str, disabled: bool) -> Result<AdminResult> {
        let peer_id = PeerId::new(id)?;
        let offered_new;
        {
            let mut state = self.lock();
            let Some(slot) = state.peers.get_mut(&peer_id) else {
                // Enabling a removed peer that is remembered as disabled forgets it.
                if !disabled && state.disabled.remove(&peer_id) {
                    return Ok(AdminResult::Success);
                }
                return Err(Error::PeerNotInList(peer_id.to_string()));
            };
            if slot.disabled == disabled {
                return Ok(AdminResult::NoActionRequired);
            }
            slot.disabled = disabled;
            let (kind, detail) = if disabled {
                state.disabled.insert(peer_id.clone());
                (EventKind::Disabled, "disabled by admin")
            } else {
                state.disabled.remove(&peer_id);
                (EventKind::Enabled, "enabled by admin")
            };
            let events = vec![event(kind, &peer_id, detail)];
            offered_new = self.refresh(&mut state);
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.after_change(offered_new);
        Ok(AdminResult::Success)
    }

    fn reset(&self, id: &str) -> Result<AdminResult> {
        let peer_id = PeerId::new(id)?;
        let offered_new;
        {
            let mut state = self.lock();
            let Some(slot) = state.peers.get_mut(&peer_id) else {
                return Err(Error::PeerNotInList(peer_id.to_string()));
            };
            let streak = slot.peer().map_or(0, |p| p.consecutive_failures());
            if slot.ejected_until.is_none() && slot.ejections == 0 && streak == 0 {
                return Ok(AdminResult::NoActionRequired);
            }
            let was_ejected = slot.ejected_until.take().is_some();
            slot.ejections = 0;
            if let Some(peer) = slot.peer() {
                peer.clear_streak();
            }
            let mut events = Events::new();
            if was_ejected {
                events.push(event(EventKind::Restored, &peer_id, "reset by admin"));
            }
            offered_new = self.refresh(&mut state);
            self.events.push(events);
        }
        self.strategy.batch_end();
        self.after_change(offered_new);
        Ok(AdminResult::Success)
    }

    pub(crate) fn pending_changed(&self, peer: &PeerRef) {
        self.strategy.pending_changed(peer);
    }

    /// A request to `peer` ended; only called when the strategy wants outcomes. Without a
    /// given latency, it is the time since `started` on the list's clock.
    pub(crate) fn request_finished(
        &self,
        peer: &PeerRef,
        outcome: Outcome,
        latency: Option<Duration>,
        started: u64,
    ) {
        // One clock reading serves the latency and the strategy.
        let now = self.clock.now();
        let latency = match latency {
            Some(l) => l,
            None if started == 0 => Duration::ZERO,
            None => Duration::from_nanos(self.stamp_at(now).saturating_sub(started)),
        };
        // This runs inside `Choice::finish` or a drop: a panicking custom strategy must not
        // turn into a panic in drop (an abort while unwinding), so it is contained here;
        // the request has already ended either way.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.strategy
                .request_finished_at(peer, outcome, latency, now)
        }));
    }

    /// Nanoseconds since the list was made, on its clock, plus one (so never 0, which
    /// means "not timed" in a [`Choice`]).
    #[inline]
    fn stamp(&self) -> u64 {
        self.stamp_at(self.clock.now())
    }

    /// [`ListShared::stamp`] of a given instant.
    #[inline]
    fn stamp_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.epoch);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    #[inline]
    fn try_choose(&self, request: &Request<'_>) -> Option<Choice> {
        let request = self.strategy.choose(request)?;
        if self.notify_pending {
            self.strategy.pending_changed(&request.peer_ref());
        }
        if self.notify_outcome {
            return Some(Choice::timed(request, self.stamp()));
        }
        Some(Choice::new(request))
    }

    /// Why a choose cannot wait: not running, fail-fast, or no deadline.
    fn cannot_wait(&self, request: &Request<'_>) -> Option<Error> {
        if !self.running.load(Ordering::Acquire) {
            return Some(self.not_running());
        }
        if self.fail_fast {
            return Some(Error::NoPeerAvailable(self.unavailable_message()));
        }
        if request.deadline().is_none() {
            return Some(Error::NoDeadline(format!(
                "{}, and the request has no deadline to wait for one; give choose a timeout",
                self.unavailable_message()
            )));
        }
        None
    }

    #[cold]
    fn choose_slow(&self, request: &Request<'_>) -> Result<Choice> {
        let started = Instant::now();
        loop {
            if let Some(err) = self.cannot_wait(request) {
                return Err(err);
            }
            let deadline = request.deadline().expect("checked by cannot_wait");
            let listener = self.changed.listen();
            if let Some(choice) = self.try_choose(request) {
                return Ok(choice);
            }
            if !self.running.load(Ordering::Acquire) {
                return Err(self.not_running());
            }
            if listener.wait_deadline(deadline).is_none() {
                return self
                    .try_choose(request)
                    .ok_or_else(|| self.timed_out(started));
            }
            if let Some(choice) = self.try_choose(request) {
                return Ok(choice);
            }
        }
    }

    #[cold]
    async fn choose_slow_async(&self, request: &Request<'_>) -> Result<Choice> {
        let started = Instant::now();
        // The deadline timer runs on its own thread (futures-timer's), not on the library
        // runtime: a wait ends on time even when every runtime worker is busy.
        let mut timer: Option<futures_timer::Delay> = None;
        loop {
            if let Some(err) = self.cannot_wait(request) {
                return Err(err);
            }
            let deadline = request.deadline().expect("checked by cannot_wait");
            let listener = self.changed.listen();
            if let Some(choice) = self.try_choose(request) {
                return Ok(choice);
            }
            if !self.running.load(Ordering::Acquire) {
                return Err(self.not_running());
            }
            let timer = timer.get_or_insert_with(|| {
                futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now()))
            });
            let mut listener = std::pin::pin!(listener);
            let woke = std::future::poll_fn(|cx| {
                use std::task::Poll;
                if listener.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                match std::pin::Pin::new(&mut *timer).poll(cx) {
                    Poll::Ready(()) => Poll::Ready(false),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if !woke {
                return self
                    .try_choose(request)
                    .ok_or_else(|| self.timed_out(started));
            }
        }
    }

    fn not_running(&self) -> Error {
        Error::NotStarted(format!(
            "{:?} peer list is not running; call start() first",
            self.name()
        ))
    }

    fn timed_out(&self, started: Instant) -> Error {
        Error::Timeout(format!(
            "{:?} peer list timed out after {:?} waiting for an available peer: {}",
            self.name(),
            round_ms(started.elapsed()),
            self.unavailable_message()
        ))
    }

    /// "peer list has 3 peers but none are available (2 unavailable, 1 connecting)".
    fn unavailable_message(&self) -> String {
        let state = self.lock();
        let total = state.peers.len();
        if total == 0 {
            return format!(
                "{:?} peer list has no peers; add some with update()",
                self.name()
            );
        }
        let (mut unavailable, mut connecting, mut retaining, mut taken) = (0, 0, 0, 0);
        let (mut disabled, mut ejected) = (0, 0);
        for slot in state.peers.values() {
            match (slot.peer(), slot.phase) {
                (Some(_), Phase::Retaining) => retaining += 1,
                _ if slot.disabled => disabled += 1,
                (Some(_), _) if slot.ejected_until.is_some() && slot.usable() => ejected += 1,
                (Some(_), _) if slot.offered => taken += 1,
                (Some(p), _) if p.connection_status() == ConnectionStatus::Connecting => {
                    connecting += 1
                }
                _ => unavailable += 1,
            }
        }
        let parts: Vec<String> = [
            (unavailable, "unavailable"),
            (connecting, "connecting"),
            (retaining, "still being retained"),
            (taken, "available a moment ago"),
            (disabled, "disabled"),
            (ejected, "ejected"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!(
            "{:?} peer list has {total} peer{} but none are available ({})",
            self.name(),
            if total == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }

    fn introspect(&self) -> ListIntrospection {
        let state = self.lock();
        let now = self.clock.now();
        let peers: Vec<PeerIntrospection> = state
            .peers
            .iter()
            .map(|(id, slot)| {
                let (status, pending) = match slot.peer() {
                    None => ("uninitialized", 0),
                    Some(peer) => (peer.connection_status().as_str(), peer.pending()),
                };
                let ejected_for = slot.ejected_until.map(|t| t.saturating_duration_since(now));
                PeerIntrospection {
                    id: id.to_string(),
                    status: status.to_owned(),
                    pending,
                    weight: slot.weight,
                    admin: if slot.disabled { "disabled" } else { "enabled" }.to_owned(),
                    ejected: ejected_for.is_some(),
                    ejected_for_ms: ejected_for
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    ejections: slot.ejections,
                    consecutive_failures: slot.peer().map_or(0, |p| p.consecutive_failures()),
                    chosen: slot.peer().map_or(0, |p| p.chosen()),
                    failures: slot.peer().map_or(0, |p| p.failures()),
                }
            })
            .collect();
        let available = state.peers.values().filter(|s| s.offered).count();
        let total = peers.len();
        let (state_name, title) = if state.running {
            ("running", "Running")
        } else {
            ("idle", "Idle")
        };
        ListIntrospection {
            strategy: self.name().to_owned(),
            transport: self.transport.name().to_owned(),
            state: state_name.to_owned(),
            summary: format!("{title} ({available}/{total} available)"),
            available,
            total,
            panic: state.panic,
            ejected: peers.iter().filter(|p| p.ejected).count(),
            disabled: peers.iter().filter(|p| p.admin == "disabled").count(),
            chosen: peers.iter().map(|p| p.chosen).sum(),
            failures: peers.iter().map(|p| p.failures).sum(),
            ejections: peers.iter().map(|p| u64::from(p.ejections)).sum(),
            peers,
        }
    }
}

impl Drop for ListShared {
    /// A list dropped while running releases its peers (no lock is held by then).
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if !state.running {
            return;
        }
        let retained: Vec<Subscriber> = state
            .peers
            .values_mut()
            .filter(|s| s.phase == Phase::Retained)
            .filter_map(|s| s.entry.take())
            .collect();
        let mut ignored = Vec::new();
        for sub in retained {
            self.release(&sub, &mut ignored);
        }
    }
}

fn validate_spec(spec: &PeerSpec) -> Result<PeerId> {
    let id = PeerId::new(&spec.id)?;
    if spec.weight == 0 {
        return Err(Error::InvalidArgument(format!(
            "peer {:?} has weight 0; weights start at 1",
            spec.id
        )));
    }
    Ok(id)
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
