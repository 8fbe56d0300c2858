//! Strategies: how to pick among a list's *available* peers.
//!
//! The [`PeerList`](crate::PeerList) owns lifecycle, locking and waiting; a strategy only
//! keeps its own view of the available peers and picks one in [`Strategy::choose`]. The list
//! tells it which peers became available and which stopped being so, in batches
//! ([`Strategy::update`], under the list's lock, in the order of the list's changes), then
//! calls [`Strategy::batch_end`] with no lock held, where a strategy that derives a structure
//! from its peers (an array snapshot, a ring, a table) builds and publishes it once per
//! batch. `choose` and `pending_changed` run concurrently from any thread and must not block
//! for long; `choose` never builds anything.
//!
//! One file per strategy:
//!
//! | name | file | picks |
//! |---|---|---|
//! | `round-robin` | [`round_robin`] | each available peer in turn |
//! | `random` | [`random`] | uniformly at random (seedable) |
//! | `fewest-pending` | [`fewest_pending`] | fewest in-flight requests; ties to the peer waiting longest |
//! | `two-random-choices` | [`two_random_choices`] | the less loaded of two distinct random peers |
//! | `hash-ring` | [`hash_ring`] | the shard key's owner on a consistent-hash ring (ketama or fast) |
//! | `maglev` | [`maglev`] | the shard key's slot in a Maglev lookup table |
//! | `weighted-round-robin` | [`weighted_round_robin`] | smooth weighted round-robin (nginx), optional slow start |
//! | `weighted-round-robin:orca` | [`orca`] | weights from the backends' load reports (gRPC's ORCA-driven weighted round-robin) |
//! | `peak-ewma` | [`peak_ewma`] | two random choices on peak-EWMA latency × (pending + 1) (Finagle, tower) |
//! | `prequal` | [`prequal`] | hot-cold lexicographic on requests in flight and latency at that load (Google's Prequal) |
//!
//! # Strategy names with options
//!
//! Everywhere a strategy is named by a string (`ListOptions::strategy_name`, the C, Python
//! and Node bindings, conformance scenarios), options may follow the name:
//!
//! ```text
//! name[:mode][?key=value[&key=value...]]
//! ```
//!
//! | name | modes | keys |
//! |---|---|---|
//! | `hash-ring` | `ketama` (default), `fast` | `vnodes` (1..=10000; default 40 for ketama, 160 for fast), `bounded` (bounded-load factor, 1..=100, e.g. 1.25; off by default) |
//! | `maglev` | none | `table` (a prime, 3..=1048573; default 65537) |
//! | `weighted-round-robin` | `orca` (weights from load reports) | `slow_start_ms` (slow-start window in ms, 0..=4294967295; 0 = off, the default); mode `orca`: `blackout_ms` (0..=4294967295, default 10000), `weight_expiration_ms` (1..=4294967295, default 180000), `weight_update_ms` (100..=4294967295, default 1000), `error_utilization_penalty` (0..=1000000, default 1) |
//! | `peak-ewma` | none | `decay_ms` (EWMA time constant τ in ms, 1..=4294967295, default 10000), `default_rtt_ms` (latency assumed before the first sample, 0..=4294967295, default 30), `choices` (`all` or 2..=1024, default 2) |
//! | `prequal` | none | `choices` (pool size: `all` or 2..=64, default 16), `q_rif` (hot quantile, 0..=1, default 0.5), `probe_ms` (staleness before a probe, 1..=4294967295, default 1000) |
//!
//! e.g. `"hash-ring:fast"`, `"hash-ring:ketama?bounded=1.25"`, `"maglev?table=251"`,
//! `"peak-ewma?decay_ms=5000&default_rtt_ms=10"`, `"weighted-round-robin?slow_start_ms=30000"`,
//! `"weighted-round-robin:orca?blackout_ms=0"`, `"prequal?q_rif=0.75"`.
//! Other strategies take no options. An unknown name, mode or key, a repeated key, a
//! malformed pair or an out-of-range value is `invalid-argument`, with a message that
//! names the spec, the key and what it accepts. See [`StrategyConfig`].
//!
//! Every option type with a spec (the five above, [`TcpProbeOptions`](crate::TcpProbeOptions)
//! and [`EjectionPolicy`](crate::EjectionPolicy)) implements [`SpecOptions`]: one parser,
//! one set of value parsers ([`parse_ms`], [`parse_int`], [`parse_float`],
//! [`parse_all_or_int`]), and a `Display` that gives the canonical spec (defaults left out,
//! the mode shown when it is not the default), which parses back to the same value.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::load_report::LoadReport;
use crate::peer::{InFlight, PeerRef};
use crate::request::{Outcome, Request};

pub mod fewest_pending;
pub mod hash_ring;
pub mod maglev;
pub mod orca;
pub mod peak_ewma;
pub mod prequal;
pub mod random;
pub mod round_robin;
pub(crate) mod snapshot;
pub(crate) mod stripes;
pub mod two_random_choices;
pub mod weighted_round_robin;

pub use crate::spec::{
    no_modes, parse_all_or_int, parse_float, parse_int, parse_ms, unknown_key, SpecOptions,
};

/// Picks a peer among the available ones.
///
/// `choose` starts the request on the peer it picks ([`PeerRef::start_request`]), so the
/// pick and the pending count move together (strategies that pick under their own lock,
/// like `fewest-pending`, thus never hand one idle peer to two callers).
///
/// A toy strategy that always picks the first available peer:
///
/// ```
/// use std::sync::Mutex;
/// use peerlb::{InFlight, PeerRef, Request, Strategy};
///
/// #[derive(Default)]
/// struct First(Mutex<Vec<PeerRef>>);
/// impl Strategy for First {
///     fn name(&self) -> &str { "first" }
///     fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
///         let mut peers = self.0.lock().unwrap();
///         peers.retain(|q| !removed.iter().any(|p| PeerRef::ptr_eq(p, q)));
///         peers.extend_from_slice(added);
///     }
///     fn choose(&self, _: &Request<'_>) -> Option<InFlight> {
///         self.0.lock().unwrap().first().map(PeerRef::start_request)
///     }
/// }
/// let s = First::default();
/// s.add(&peerlb::Peer::detached(peerlb::PeerId::new("a").unwrap(), 1));
/// assert_eq!(s.choose(&Request::new()).unwrap().peer().id().as_str(), "a");
/// ```
pub trait Strategy: Send + Sync + 'static {
    /// The strategy's name, e.g. `"round-robin"` (used in messages and introspection).
    fn name(&self) -> &str;

    /// One batch of changes to the available peers: `removed` stopped being available (a
    /// status change, a removal, ejection, the list stopping) and `added` became available;
    /// removals apply first. A peer appears at most once in a batch, is never added twice
    /// without a removal in between, and is only removed after it was added.
    ///
    /// The list calls this under its lock, in the order of its changes, so it must be
    /// cheap — O(changes × log n), never a pass over every peer — and must not call back
    /// into the list. A strategy that derives an O(n) structure from its peers records the
    /// changes here and builds the structure in [`Strategy::batch_end`].
    fn update(&self, added: &[PeerRef], removed: &[PeerRef]);

    /// Pick one of the available peers and start the request on it, or `None` when there
    /// is none.
    fn choose(&self, request: &Request<'_>) -> Option<InFlight>;

    /// Whether [`Strategy::pending_changed`] should be called (it costs a little on every
    /// choose and finish).
    fn wants_pending_updates(&self) -> bool {
        false
    }

    /// The peer's pending count changed (a request started or finished).
    fn pending_changed(&self, _peer: &PeerRef) {}

    /// Whether [`Strategy::choose`] already accounts for the request it starts, so the list
    /// need not call [`Strategy::pending_changed`] right after it (only when requests
    /// finish). Default `false`.
    fn choose_counts_pending(&self) -> bool {
        false
    }

    /// Whether [`Strategy::request_finished`] should be called. When `true`, the list
    /// also reads its clock at every `choose` to measure latencies the caller does not
    /// give, so only strategies that use them should say so.
    fn wants_outcomes(&self) -> bool {
        false
    }

    /// A request to `peer` ended with `outcome` after `latency` (as given to
    /// [`Choice::finish`](crate::Choice::finish), or measured from `choose` to the end on the
    /// list's clock; zero for a choice rebuilt without its start time). Called after the
    /// peer's pending count went down, from the finishing thread; also for peers the
    /// strategy no longer offers. A panic here is caught and ignored (it may run inside
    /// a drop).
    fn request_finished(&self, _peer: &PeerRef, _outcome: Outcome, _latency: Duration) {}

    /// [`Strategy::request_finished`] with the list's reading of its clock when the request
    /// ended, so a strategy that needs the time does not read the clock again (the list
    /// calls this one). The default ignores `now` and calls `request_finished`.
    fn request_finished_at(
        &self,
        peer: &PeerRef,
        outcome: Outcome,
        latency: Duration,
        now: std::time::Instant,
    ) {
        let _ = now;
        self.request_finished(peer, outcome, latency)
    }

    /// A request ended, with everything the list knows about it (see [`RequestEnd`]): the
    /// list calls this one. The default passes the peer, outcome, latency and time on to
    /// [`Strategy::request_finished_at`]; a strategy that uses the rest (the backend's load
    /// report, the peer's load when the request started) implements this instead.
    fn request_ended(&self, end: &RequestEnd<'_>) {
        self.request_finished_at(end.peer, end.outcome, end.latency, end.clock.now())
    }

    /// The list finished one batch of [`Strategy::update`]s. A strategy that derives a
    /// structure from its peers (`hash-ring`'s ring, `maglev`'s table, the arrays of
    /// `round-robin` and `random`) builds and publishes it here, once per batch, so that no
    /// `choose` pays for a build and a 100 000-peer update costs one build, not 100 000.
    ///
    /// Called with no lock of the list held, before the call that made the change returns,
    /// possibly while other threads call [`Strategy::choose`], the `update` of a later batch,
    /// or `batch_end` itself (which then publishes every batch staged so far). The default
    /// does nothing (a strategy that keeps its view current in `update` needs nothing here).
    fn batch_end(&self) {}

    /// Adds one peer outside a list (tests, standalone use): `update(&[peer], &[])`, then
    /// `batch_end()`.
    fn add(&self, peer: &PeerRef) {
        self.update(std::slice::from_ref(peer), &[]);
        self.batch_end();
    }

    /// Removes one peer outside a list: `update(&[], &[peer])`, then `batch_end()`.
    fn remove(&self, peer: &PeerRef) {
        self.update(&[], std::slice::from_ref(peer));
        self.batch_end();
    }
}

/// How a request ended, as the list hands it to [`Strategy::request_ended`] (only for
/// strategies that want outcomes, from the finishing thread, after the peer's pending count
/// went down).
#[derive(Debug, Clone, Copy)]
pub struct RequestEnd<'a> {
    /// The peer it went to.
    pub peer: &'a PeerRef,
    /// How it ended.
    pub outcome: Outcome,
    /// Its latency: as given to `finish`, or measured from `choose` on the list's clock.
    pub latency: Duration,
    /// The list's reading of its clock when it ended, in nanoseconds on
    /// [`Clock::now_ns`]'s scale (compare it only with other readings of the same clock).
    pub now_ns: u64,
    /// The list's clock (for a strategy that needs an `Instant`: reading it costs a clock
    /// reading; `now_ns` is free).
    pub clock: &'a Clock,
    /// How many other requests to the peer this client had in flight when it started
    /// (`None` for a choice rebuilt without its start).
    pub pending_at_start: Option<u32>,
    /// What the backend reported about its load, if the caller passed a report to
    /// [`Choice::finish_with_load`](crate::Choice::finish_with_load). Its numbers are as
    /// the caller gave them: ignore those that are not finite and ≥ 0.
    pub load: Option<&'a LoadReport>,
}

/// The built-in strategies, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StrategyKind {
    /// See [`round_robin`].
    #[default]
    RoundRobin,
    /// See [`random`].
    Random,
    /// See [`fewest_pending`].
    FewestPending,
    /// See [`two_random_choices`].
    TwoRandomChoices,
    /// See [`hash_ring`] (default options; see [`StrategyConfig`] for others).
    HashRing,
    /// See [`maglev`] (default options; see [`StrategyConfig`] for others).
    Maglev,
    /// See [`weighted_round_robin`].
    WeightedRoundRobin,
    /// See [`peak_ewma`].
    PeakEwma,
    /// See [`prequal`].
    Prequal,
}

impl StrategyKind {
    /// Every built-in strategy.
    pub const ALL: [StrategyKind; 9] = [
        StrategyKind::RoundRobin,
        StrategyKind::Random,
        StrategyKind::FewestPending,
        StrategyKind::TwoRandomChoices,
        StrategyKind::HashRing,
        StrategyKind::Maglev,
        StrategyKind::WeightedRoundRobin,
        StrategyKind::PeakEwma,
        StrategyKind::Prequal,
    ];

    /// The kebab-case name, e.g. `"two-random-choices"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::RoundRobin => "round-robin",
            StrategyKind::Random => "random",
            StrategyKind::FewestPending => "fewest-pending",
            StrategyKind::TwoRandomChoices => "two-random-choices",
            StrategyKind::HashRing => "hash-ring",
            StrategyKind::Maglev => "maglev",
            StrategyKind::WeightedRoundRobin => "weighted-round-robin",
            StrategyKind::PeakEwma => "peak-ewma",
            StrategyKind::Prequal => "prequal",
        }
    }

    /// Builds a fresh strategy of this kind with default options and the real clock;
    /// `seed` makes random choices reproducible.
    ///
    /// ```
    /// use peerlb::StrategyKind;
    /// assert_eq!(StrategyKind::PeakEwma.build(Some(1)).name(), "peak-ewma");
    /// ```
    pub fn build(self, seed: Option<u64>) -> Arc<dyn Strategy> {
        StrategyConfig::from(self).build(seed, &Clock::real())
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<StrategyKind> {
        StrategyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
                Error::InvalidArgument(format!(
                    "unknown strategy {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// A built-in strategy with its options: what a strategy name with options (see the
/// [module docs](self)) parses to, and what [`ListOptions`](crate::ListOptions) builds from.
///
/// One value has one representation: a strategy that has options always carries them
/// (`From<StrategyKind>` gives the defaults), and its `Display` is the canonical spec
/// (defaults left out), which parses back to the same value.
///
/// ```
/// use peerlb::strategy::hash_ring::HashRingOptions;
/// use peerlb::strategy::StrategyConfig;
/// use peerlb::{ErrorCode, StrategyKind};
/// let c: StrategyConfig = "hash-ring:fast?bounded=1.25".parse().unwrap();
/// assert_eq!(c, StrategyConfig::HashRing(HashRingOptions::fast().bounded_load(1.25).unwrap()));
/// assert_eq!(c.kind(), StrategyKind::HashRing);
/// assert_eq!(c.to_string(), "hash-ring:fast?bounded=1.25");
/// assert_eq!("round-robin".parse::<StrategyConfig>().unwrap(), StrategyKind::RoundRobin.into());
/// assert_eq!(
///     StrategyConfig::from(StrategyKind::HashRing),
///     StrategyConfig::HashRing(HashRingOptions::default()),
/// );
/// assert_eq!("hash-ring:ketama?vnodes=40".parse::<StrategyConfig>().unwrap().to_string(), "hash-ring");
/// let err = "maglev?table=100".parse::<StrategyConfig>().unwrap_err();
/// assert_eq!(err.code(), ErrorCode::InvalidArgument);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum StrategyConfig {
    /// `round-robin` (no options).
    #[default]
    RoundRobin,
    /// `random` (no options).
    Random,
    /// `fewest-pending` (no options).
    FewestPending,
    /// `two-random-choices` (no options).
    TwoRandomChoices,
    /// `hash-ring` with these options.
    HashRing(hash_ring::HashRingOptions),
    /// `maglev` with these options.
    Maglev(maglev::MaglevOptions),
    /// `weighted-round-robin` with these options.
    WeightedRoundRobin(weighted_round_robin::WeightedRoundRobinOptions),
    /// `peak-ewma` with these options.
    PeakEwma(peak_ewma::PeakEwmaOptions),
    /// `prequal` with these options.
    Prequal(prequal::PrequalOptions),
}

impl From<StrategyKind> for StrategyConfig {
    /// The strategy with its default options.
    fn from(kind: StrategyKind) -> StrategyConfig {
        match kind {
            StrategyKind::RoundRobin => StrategyConfig::RoundRobin,
            StrategyKind::Random => StrategyConfig::Random,
            StrategyKind::FewestPending => StrategyConfig::FewestPending,
            StrategyKind::TwoRandomChoices => StrategyConfig::TwoRandomChoices,
            StrategyKind::HashRing => StrategyConfig::HashRing(Default::default()),
            StrategyKind::Maglev => StrategyConfig::Maglev(Default::default()),
            StrategyKind::WeightedRoundRobin => {
                StrategyConfig::WeightedRoundRobin(Default::default())
            }
            StrategyKind::PeakEwma => StrategyConfig::PeakEwma(Default::default()),
            StrategyKind::Prequal => StrategyConfig::Prequal(Default::default()),
        }
    }
}

impl From<hash_ring::HashRingOptions> for StrategyConfig {
    fn from(options: hash_ring::HashRingOptions) -> StrategyConfig {
        StrategyConfig::HashRing(options)
    }
}

impl From<weighted_round_robin::WeightedRoundRobinOptions> for StrategyConfig {
    fn from(options: weighted_round_robin::WeightedRoundRobinOptions) -> StrategyConfig {
        StrategyConfig::WeightedRoundRobin(options)
    }
}

impl From<peak_ewma::PeakEwmaOptions> for StrategyConfig {
    fn from(options: peak_ewma::PeakEwmaOptions) -> StrategyConfig {
        StrategyConfig::PeakEwma(options)
    }
}

impl From<prequal::PrequalOptions> for StrategyConfig {
    fn from(options: prequal::PrequalOptions) -> StrategyConfig {
        StrategyConfig::Prequal(options)
    }
}

impl From<maglev::MaglevOptions> for StrategyConfig {
    fn from(options: maglev::MaglevOptions) -> StrategyConfig {
        StrategyConfig::Maglev(options)
    }
}

impl StrategyConfig {
    /// Which strategy.
    ///
    /// ```
    /// use peerlb::strategy::StrategyConfig;
    /// use peerlb::StrategyKind;
    /// assert_eq!("maglev".parse::<StrategyConfig>().unwrap().kind(), StrategyKind::Maglev);
    /// ```
    pub fn kind(&self) -> StrategyKind {
        match self {
            StrategyConfig::RoundRobin => StrategyKind::RoundRobin,
            StrategyConfig::Random => StrategyKind::Random,
            StrategyConfig::FewestPending => StrategyKind::FewestPending,
            StrategyConfig::TwoRandomChoices => StrategyKind::TwoRandomChoices,
            StrategyConfig::HashRing(_) => StrategyKind::HashRing,
            StrategyConfig::Maglev(_) => StrategyKind::Maglev,
            StrategyConfig::WeightedRoundRobin(_) => StrategyKind::WeightedRoundRobin,
            StrategyConfig::PeakEwma(_) => StrategyKind::PeakEwma,
            StrategyConfig::Prequal(_) => StrategyKind::Prequal,
        }
    }

    /// Builds a fresh strategy; `seed` makes random choices reproducible, `clock` is
    /// what strategies that keep time read.
    ///
    /// ```
    /// use peerlb::clock::Clock;
    /// use peerlb::strategy::StrategyConfig;
    /// let s = "hash-ring:fast".parse::<StrategyConfig>().unwrap().build(None, &Clock::real());
    /// assert_eq!(s.name(), "hash-ring");
    /// ```
    pub fn build(&self, seed: Option<u64>, clock: &Clock) -> Arc<dyn Strategy> {
        match self {
            StrategyConfig::RoundRobin => Arc::new(round_robin::RoundRobin::new()),
            StrategyConfig::Random => Arc::new(random::Random::new(seed)),
            StrategyConfig::FewestPending => Arc::new(fewest_pending::FewestPending::new()),
            StrategyConfig::TwoRandomChoices => {
                Arc::new(two_random_choices::TwoRandomChoices::new(seed))
            }
            StrategyConfig::HashRing(o) => Arc::new(hash_ring::HashRing::new(*o)),
            StrategyConfig::Maglev(o) => Arc::new(maglev::Maglev::new(*o)),
            StrategyConfig::WeightedRoundRobin(o) => match o.orca {
                Some(orca) => Arc::new(orca::OrcaWeightedRoundRobin::with_options(
                    seed,
                    orca,
                    clock.clone(),
                )),
                None => Arc::new(weighted_round_robin::WeightedRoundRobin::with_options(
                    *o,
                    clock.clone(),
                )),
            },
            StrategyConfig::PeakEwma(o) => {
                Arc::new(peak_ewma::PeakEwma::with_options(seed, *o, clock.clone()))
            }
            StrategyConfig::Prequal(o) => {
                Arc::new(prequal::Prequal::with_options(seed, *o, clock.clone()))
            }
        }
    }
}

impl fmt::Display for StrategyConfig {
    /// The canonical spec (defaults left out), which parses back to the same config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyConfig::HashRing(o) => o.fmt(f),
            StrategyConfig::Maglev(o) => o.fmt(f),
            StrategyConfig::WeightedRoundRobin(o) => o.fmt(f),
            StrategyConfig::PeakEwma(o) => o.fmt(f),
            StrategyConfig::Prequal(o) => o.fmt(f),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

impl FromStr for StrategyConfig {
    type Err = Error;
    /// Parses `name[:mode][?key=value&...]` (see the [module docs](self)).
    fn from_str(s: &str) -> Result<StrategyConfig> {
        use crate::spec::options_from;
        let (head, params) = crate::spec::split_spec("strategy", s)?;
        let (name, mode) = crate::spec::split_mode(head);
        let kind: StrategyKind = name.parse()?;
        Ok(match kind {
            StrategyKind::HashRing => StrategyConfig::HashRing(options_from(s, mode, &params)?),
            StrategyKind::Maglev => StrategyConfig::Maglev(options_from(s, mode, &params)?),
            StrategyKind::WeightedRoundRobin => {
                StrategyConfig::WeightedRoundRobin(options_from(s, mode, &params)?)
            }
            StrategyKind::PeakEwma => StrategyConfig::PeakEwma(options_from(s, mode, &params)?),
            StrategyKind::Prequal => StrategyConfig::Prequal(options_from(s, mode, &params)?),
            other => {
                if mode.is_some() || !params.is_empty() {
                    return Err(Error::InvalidArgument(format!(
                        "strategy {s:?}: {other} takes no options"
                    )));
                }
                other.into()
            }
        })
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn names_round_trip() {
        for s in [
            "round-robin",
            "random",
            "fewest-pending",
            "two-random-choices",
            "hash-ring",
            "hash-ring:fast",
            "hash-ring?vnodes=160",
            "hash-ring:fast?vnodes=40",
            "hash-ring?bounded=1.25",
            "hash-ring:fast?vnodes=7&bounded=2",
            "maglev",
            "maglev?table=251",
            "weighted-round-robin",
            "weighted-round-robin?slow_start_ms=30000",
            "peak-ewma",
            "peak-ewma?decay_ms=5000",
            "peak-ewma?decay_ms=5000&default_rtt_ms=10",
            "peak-ewma?choices=all",
            "peak-ewma?choices=3",
            "weighted-round-robin:orca",
            "weighted-round-robin:orca?blackout_ms=0&weight_update_ms=250",
            "prequal",
            "prequal?choices=all",
            "prequal?choices=8&q_rif=0.75&probe_ms=500",
        ] {
            let c: StrategyConfig = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        // Other spellings of the same value give the canonical spec.
        for (given, canonical) in [
            (
                "hash-ring:ketama?bounded=1.25&vnodes=40",
                "hash-ring?bounded=1.25",
            ),
            ("hash-ring:fast?vnodes=160", "hash-ring:fast"),
            ("hash-ring:ketama", "hash-ring"),
            ("maglev?table=65537", "maglev"),
            (
                "weighted-round-robin?slow_start_ms=0",
                "weighted-round-robin",
            ),
            ("peak-ewma?choices=2&decay_ms=10000", "peak-ewma"),
            (
                "peak-ewma?choices=all&decay_ms=5000",
                "peak-ewma?decay_ms=5000&choices=all",
            ),
        ] {
            let c: StrategyConfig = given.parse().unwrap();
            assert_eq!(c.to_string(), canonical, "{given}");
            assert_eq!(canonical.parse::<StrategyConfig>().unwrap(), c, "{given}");
        }
        for kind in StrategyKind::ALL {
            let parsed: StrategyConfig = kind.as_str().parse().unwrap();
            assert_eq!(StrategyConfig::from(kind), parsed, "{kind}");
            assert_eq!(StrategyConfig::from(kind).to_string(), kind.as_str());
        }
    }

    #[test]
    fn bad_names_are_invalid_argument() {
        for s in [
            "",
            "hash-ring:",
            "hash-ring:md5",
            "hash-ring?",
            "hash-ring?bounded",
            "hash-ring?bounded=",
            "hash-ring?=1",
            "hash-ring?bounded=0.9",
            "hash-ring?bounded=abc",
            "hash-ring?bounded=nan",
            "hash-ring?bounded=inf",
            "hash-ring?vnodes=0",
            "hash-ring?vnodes=-1",
            "hash-ring?vnodes=10001",
            "hash-ring?vnodes=1&vnodes=2",
            "hash-ring?table=251",
            "hash-ring?vnodes=1&",
            "maglev:fast",
            "maglev?table=65536",
            "maglev?table=1",
            "maglev?table=99999999999",
            "maglev?bounded=1.25",
            "round-robin:fast",
            "peak-ewma:fast",
            "peak-ewma?nope=1",
            "peak-ewma?decay_ms=0",
            "peak-ewma?decay_ms=5&decay_ms=6",
            "peak-ewma?choices=1",
            "peak-ewma?choices=1025",
            "weighted-round-robin?slow_start_ms=x",
            "weighted-round-robin?slow_start_ms=4294967296",
            "weighted-round-robin?bounded=1.25",
            "weighted-round-robin:orca?slow_start_ms=1",
            "weighted-round-robin:orca?weight_update_ms=50",
            "weighted-round-robin:fast",
            "prequal?q_rif=2",
            "prequal?choices=65",
            "prequal?probe_ms=0",
            "prequal:orca",
            "round-robin?x=1",
            "Hash-Ring",
            "hash-ring ",
        ] {
            let err = s.parse::<StrategyConfig>().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{s:?}: {err}");
        }
    }

    #[test]
    fn errors_name_the_spec_the_key_and_the_range() {
        for (spec, wanted) in [
            (
                "hash-ring?vnodes=0",
                "vnodes must be an integer in 1..=10000, got \"0\"",
            ),
            (
                "hash-ring?bounded=0.9",
                "bounded must be a number in 1..=100, got \"0.9\"",
            ),
            (
                "maglev?table=100",
                "maglev table size must be a prime in 3..=",
            ),
            (
                "peak-ewma?choices=1",
                "choices must be \"all\" or an integer in 2..=1024",
            ),
            (
                "peak-ewma?decay_ms=0",
                "decay_ms must be a whole number of milliseconds in 1..=",
            ),
            (
                "weighted-round-robin?speed=1",
                "has no option \"speed\"; expected slow_start_ms",
            ),
            (
                "hash-ring:md5",
                "hash-ring has no mode \"md5\"; expected ketama or fast",
            ),
            ("maglev:fast", "maglev has no modes"),
            ("random?x=1", "random takes no options"),
        ] {
            let err = spec.parse::<StrategyConfig>().unwrap_err().to_string();
            assert!(err.contains(&format!("strategy {spec:?}: ")), "{err}");
            assert!(err.contains(wanted), "{spec}: {err}");
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::peer::PeerId;

    pub fn peers(ids: &[&str]) -> Vec<PeerRef> {
        ids.iter()
            .map(|id| crate::Peer::detached(PeerId::new(id).unwrap(), 1))
            .collect()
    }

    pub fn pick(s: &dyn Strategy) -> String {
        s.choose(&Request::new()).unwrap().peer().id().to_string()
    }

    /// A transport that makes every peer available at once and keeps the subscribers, so
    /// a test can report statuses later.
    #[derive(Default)]
    struct Recording(std::sync::Mutex<Vec<crate::Subscriber>>);

    impl crate::Transport for Recording {
        fn retain(&self, _: &PeerId, sub: &crate::Subscriber) -> std::result::Result<(), String> {
            sub.set_status(crate::ConnectionStatus::Available);
            self.0.lock().unwrap().push(sub.clone());
            Ok(())
        }
        fn release(&self, _: &PeerId, _: &crate::Subscriber) -> std::result::Result<(), String> {
            Ok(())
        }
    }

    /// Drives a list over `strategy` (which counts its rebuilds in `rebuilds()`) through
    /// start, updates, status reports and stop: each batch rebuilds once, when it ends,
    /// and no `choose` rebuilds.
    pub fn rebuilds_once_per_batch(strategy: Arc<dyn Strategy>, rebuilds: &dyn Fn() -> u64) {
        use crate::{ConnectionStatus, ListOptions, PeerList};
        let transport = Arc::new(Recording::default());
        let list = PeerList::new(
            ListOptions::default()
                .custom_strategy(strategy)
                .transport(transport.clone()),
        )
        .unwrap();
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("10.2.{}.{}:80", i / 256, i % 256))
            .collect();
        let key = Request::new().with_shard_key(b"user-1");
        let choose = || list.choose(&key).unwrap().finish(Outcome::Ok, None);
        list.update(&ids, None::<&str>).unwrap();
        assert_eq!(rebuilds(), 0, "nothing is offered before start");
        list.start().unwrap();
        assert_eq!(rebuilds(), 1, "start offers 1000 peers: one rebuild");
        choose();
        choose();
        assert_eq!(rebuilds(), 1, "choose after start rebuilt");
        list.update(["10.3.0.1:80"], [ids[0].as_str()]).unwrap();
        assert_eq!(rebuilds(), 2, "an update: one rebuild");
        choose();
        assert_eq!(rebuilds(), 2, "choose after an update rebuilt");
        let sub = transport.0.lock().unwrap()[5].clone();
        sub.set_status(ConnectionStatus::Unavailable);
        assert_eq!(rebuilds(), 3, "a status report: one rebuild");
        choose();
        sub.set_status(ConnectionStatus::Unavailable); // no change
        sub.set_status(ConnectionStatus::Available);
        choose();
        assert_eq!(rebuilds(), 4, "choose after a status report rebuilt");
        list.update(None::<&str>, ["not-a-member"]).unwrap_err();
        assert_eq!(rebuilds(), 4, "a batch that changed nothing rebuilt");
        list.stop().unwrap();
        assert_eq!(rebuilds(), 5, "stop empties the ring at once");
    }
}
