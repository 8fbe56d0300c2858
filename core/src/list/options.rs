//! [`ListOptions`]: how to build a [`PeerList`](super::PeerList).

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::ejection::EjectionPolicy;
use crate::error::Result;
use crate::strategy::hash_ring::HashRingOptions;
use crate::strategy::maglev::MaglevOptions;
use crate::strategy::peak_ewma::PeakEwmaOptions;
use crate::strategy::weighted_round_robin::WeightedRoundRobinOptions;
use crate::strategy::{Strategy, StrategyConfig, StrategyKind};
use crate::transport::Transport;

/// The capacity hint a list gets when none is given: yarpc's default.
pub const DEFAULT_CAPACITY: usize = 10;

/// How to build a [`PeerList`](super::PeerList). Start from `ListOptions::default()` and chain setters.
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
    pub(super) strategy: StrategyConfig,
    pub(super) clock: Clock,
    pub(super) ejection: Option<EjectionPolicy>,
    pub(super) custom_strategy: Option<Arc<dyn Strategy>>,
    pub(super) shuffle: bool,
    pub(super) seed: Option<u64>,
    pub(super) fail_fast: bool,
    pub(super) capacity: usize,
    pub(super) transport: Option<Arc<dyn Transport>>,
    /// Routing by priority and zone (see `routing.rs`).
    pub(super) fleet: super::routing::FleetOptions,
    pub(super) name: Option<String>,
    pub(super) metrics: bool,
    pub(super) peer_labels: bool,
    pub(super) max_pending: Option<usize>,
    pub(super) max_pending_per_peer: Option<usize>,
    /// Deterministic subsetting (see `subsetting.rs`).
    pub(super) subset: Option<usize>,
    pub(super) subset_client: Option<u64>,
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
            capacity: DEFAULT_CAPACITY,
            transport: None,
            fleet: Default::default(),
            name: None,
            metrics: true,
            peer_labels: true,
            max_pending: None,
            max_pending_per_peer: None,
            subset: None,
            subset_client: None,
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
    ///     ..Default::default()
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

    /// Expected number of peers (pre-sizes the list; default 10, yarpc's). Only a hint:
    /// values above 65 536 pre-size for 65 536, and the list grows as peers come.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The transport (default [`AlwaysAvailable`](crate::transport::AlwaysAvailable)).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The list's name: its `list` label in metrics and its path on the admin endpoint
    /// (`/lists/{name}/backends`). 1..=128 bytes of ASCII letters, digits, `_`, `-`, `.` and
    /// `:`; anything else is `invalid-argument` when the list is made. Without one the
    /// list is named `list-N` (N counts the lists of the process from 1). See
    /// [`crate::registry`] for lists that share a name.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default().name("checkout")).unwrap();
    /// assert_eq!(list.name(), "checkout");
    /// assert!(PeerList::new(ListOptions::default().name("a b")).is_err());
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the list keeps metrics (default `true`; see [`crate::metrics`]). Off, it
    /// records nothing and [`PeerList::metrics`](super::PeerList::metrics) is empty.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Whether metrics carry a `peer` label (default `true`). `false` collapses every
    /// per-peer series into one per list, for lists with many peers.
    pub fn peer_labels(mut self, on: bool) -> Self {
        self.peer_labels = on;
        self
    }

    /// Circuit breaker (Envoy's `max_requests`): with `limit` requests of this list in
    /// flight, `choose` fails at once with `overloaded`. At least 1; off by default (see
    /// [`crate::list`]'s circuit breakers).
    ///
    /// ```
    /// use peerlb::{ErrorCode, ListOptions, PeerList, Request};
    /// let list = PeerList::new(ListOptions::default().max_pending(1)).unwrap();
    /// list.update(["a:1", "b:1"], None::<&str>).unwrap();
    /// list.start().unwrap();
    /// let held = list.choose(&Request::new()).unwrap();
    /// assert_eq!(list.choose(&Request::new()).unwrap_err().code(), ErrorCode::Overloaded);
    /// drop(held);
    /// assert!(list.choose(&Request::new()).is_ok());
    /// ```
    pub fn max_pending(mut self, limit: usize) -> Self {
        self.max_pending = Some(limit);
        self
    }

    /// Circuit breaker per peer: a peer with `limit` requests in flight is not chosen (the
    /// list asks its strategy for another); when every peer it tries is at the limit,
    /// `choose` fails at once with `overloaded`. At least 1; off by default.
    pub fn max_pending_per_peer(mut self, limit: usize) -> Self {
        self.max_pending_per_peer = Some(limit);
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
            .field("fleet", &self.fleet)
            .field("name", &self.name)
            .field("metrics", &self.metrics)
            .field("peer_labels", &self.peer_labels)
            .field("max_pending", &self.max_pending)
            .field("max_pending_per_peer", &self.max_pending_per_peer)
            .field("subset", &self.subset)
            .field("subset_client", &self.subset_client)
            .finish()
    }
}
