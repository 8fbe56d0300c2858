//! Strategies: how to pick among a list's *available* peers.
//!
//! The [`PeerList`](crate::PeerList) owns lifecycle, locking and waiting; a strategy only
//! keeps its own view of the available peers (it hears [`Strategy::add`] and
//! [`Strategy::remove`] as peers become available or stop being so) and picks one in
//! [`Strategy::choose`]. `add`/`remove` are serialized by the list; `choose` and
//! `pending_changed` run concurrently from any thread and must not block for long.
//!
//! One file per strategy:
//!
//! | name | file | picks |
//! |---|---|---|
//! | `round-robin` | [`round_robin`] | each available peer in turn |
//! | `random` | [`random`] | uniformly at random (seedable) |
//! | `fewest-pending` | [`fewest_pending`] | fewest in-flight requests; ties to the peer waiting longest |
//! | `two-random-choices` | [`two_random_choices`] | the less loaded of two distinct random peers |
//! | `weighted-round-robin` | [`weighted_round_robin`] | smooth weighted round-robin (nginx), optional slow start |
//! | `peak-ewma` | [`peak_ewma`] | two random choices on peak-EWMA latency × (pending + 1) (Finagle, tower) |
//!
//! Strategies with options take them as typed structs ([`StrategyOptions`], through
//! [`ListOptions::strategy_options`](crate::ListOptions::strategy_options)) or in the
//! compact name syntax `name?key=value&key=value` (e.g.
//! `"peak-ewma?decay_ms=10000&default_rtt_ms=30"`), which every surface accepts wherever it
//! accepts a strategy name.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::{Outcome, Request};

pub mod fewest_pending;
pub mod peak_ewma;
pub mod random;
pub mod round_robin;
pub(crate) mod snapshot;
pub(crate) mod stripes;
pub mod two_random_choices;
pub mod weighted_round_robin;

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
///     fn add(&self, p: &PeerRef) { self.0.lock().unwrap().push(p.clone()) }
///     fn remove(&self, p: &PeerRef) { self.0.lock().unwrap().retain(|q| !PeerRef::ptr_eq(p, q)) }
///     fn choose(&self, _: &Request<'_>) -> Option<InFlight> {
///         self.0.lock().unwrap().first().map(PeerRef::start_request)
///     }
/// }
/// ```
pub trait Strategy: Send + Sync + 'static {
    /// The strategy's name, e.g. `"round-robin"` (used in messages and introspection).
    fn name(&self) -> &str;

    /// A peer became available. Called by the list, never twice for the same `Peer`
    /// without a `remove` in between.
    fn add(&self, peer: &PeerRef);

    /// A peer stopped being available (status change, removal, or list stop).
    fn remove(&self, peer: &PeerRef);

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
    /// See [`weighted_round_robin`].
    WeightedRoundRobin,
    /// See [`peak_ewma`].
    PeakEwma,
}

impl StrategyKind {
    /// Every built-in strategy.
    pub const ALL: [StrategyKind; 6] = [
        StrategyKind::RoundRobin,
        StrategyKind::Random,
        StrategyKind::FewestPending,
        StrategyKind::TwoRandomChoices,
        StrategyKind::WeightedRoundRobin,
        StrategyKind::PeakEwma,
    ];

    /// The kebab-case name, e.g. `"two-random-choices"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::RoundRobin => "round-robin",
            StrategyKind::Random => "random",
            StrategyKind::FewestPending => "fewest-pending",
            StrategyKind::TwoRandomChoices => "two-random-choices",
            StrategyKind::WeightedRoundRobin => "weighted-round-robin",
            StrategyKind::PeakEwma => "peak-ewma",
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
        self.build_with(seed, &StrategyOptions::default(), &Clock::real())
    }

    /// Builds a fresh strategy of this kind with `options` (each strategy reads its own
    /// part) and `clock` (for strategies that keep time).
    ///
    /// ```
    /// use peerlb::{clock::ManualClock, StrategyKind, StrategyOptions};
    /// let s = StrategyKind::WeightedRoundRobin.build_with(
    ///     None,
    ///     &StrategyOptions::default(),
    ///     &ManualClock::new().into(),
    /// );
    /// assert_eq!(s.name(), "weighted-round-robin");
    /// ```
    pub fn build_with(
        self,
        seed: Option<u64>,
        options: &StrategyOptions,
        clock: &Clock,
    ) -> Arc<dyn Strategy> {
        match self {
            StrategyKind::WeightedRoundRobin => {
                Arc::new(weighted_round_robin::WeightedRoundRobin::with_options(
                    options.weighted_round_robin.clone(),
                    clock.clone(),
                ))
            }
            StrategyKind::PeakEwma => Arc::new(peak_ewma::PeakEwma::with_options(
                seed,
                options.peak_ewma.clone(),
                clock.clone(),
            )),
            StrategyKind::RoundRobin => Arc::new(round_robin::RoundRobin::new()),
            StrategyKind::Random => Arc::new(random::Random::new(seed)),
            StrategyKind::FewestPending => Arc::new(fewest_pending::FewestPending::new()),
            StrategyKind::TwoRandomChoices => {
                Arc::new(two_random_choices::TwoRandomChoices::new(seed))
            }
        }
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

/// Options of the built-in strategies that take some; each strategy reads its own field.
///
/// Also settable from a strategy name in the compact syntax `name?key=value&key=value`
/// (used by C, Python and Node, which pass strategy names as strings):
///
/// | strategy | key | meaning |
/// |---|---|---|
/// | `weighted-round-robin` | `slow_start_ms` | slow-start window in ms (0 = off, the default) |
/// | `peak-ewma` | `decay_ms` | EWMA time constant τ in ms (default 10000) |
/// | `peak-ewma` | `default_rtt_ms` | latency assumed before the first sample, in ms (default 30) |
///
/// ```
/// use std::time::Duration;
/// use peerlb::{StrategyKind, StrategyOptions};
/// let mut o = StrategyOptions::default();
/// let kind = o.parse("weighted-round-robin?slow_start_ms=30000").unwrap();
/// assert_eq!(kind, StrategyKind::WeightedRoundRobin);
/// assert_eq!(o.weighted_round_robin.slow_start, Some(Duration::from_secs(30)));
/// assert!(o.parse("round-robin?x=1").is_err()); // round-robin takes no options
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrategyOptions {
    /// For `weighted-round-robin`.
    pub weighted_round_robin: weighted_round_robin::WeightedRoundRobinOptions,
    /// For `peak-ewma`.
    pub peak_ewma: peak_ewma::PeakEwmaOptions,
}

impl StrategyOptions {
    /// Parses `name` or `name?key=value&key=value`, storing the options given in `self`
    /// (others keep their values), and returns the strategy kind. Unknown names or keys,
    /// malformed pairs, repeated keys and bad values are `invalid-argument`, and `self` is
    /// left unchanged.
    pub fn parse(&mut self, spec: &str) -> Result<StrategyKind> {
        let (name, query) = match spec.split_once('?') {
            Some((name, query)) => (name, Some(query)),
            None => (spec, None),
        };
        let kind: StrategyKind = name.parse()?;
        let Some(query) = query else {
            return Ok(kind);
        };
        let mut next = self.clone();
        let mut seen: Vec<&str> = Vec::new();
        for pair in query.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(Error::InvalidArgument(format!(
                    "strategy option {pair:?} in {spec:?} is not key=value"
                )));
            };
            if seen.contains(&key) {
                return Err(Error::InvalidArgument(format!(
                    "strategy option {key:?} given twice in {spec:?}"
                )));
            }
            seen.push(key);
            let known = match kind {
                StrategyKind::WeightedRoundRobin => next.weighted_round_robin.set(key, value)?,
                StrategyKind::PeakEwma => next.peak_ewma.set(key, value)?,
                _ => false,
            };
            if !known {
                return Err(Error::InvalidArgument(format!(
                    "strategy {name:?} has no option {key:?} (in {spec:?})"
                )));
            }
        }
        *self = next;
        Ok(kind)
    }
}

/// Parses a millisecond option value (`0..=u32::MAX` whole milliseconds).
pub(crate) fn parse_ms(key: &str, value: &str) -> Result<Duration> {
    value
        .parse::<u32>()
        .map(|ms| Duration::from_millis(u64::from(ms)))
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "strategy option {key}={value:?} is not a whole number of milliseconds (0..=4294967295)"
            ))
        })
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
}
