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
//! | `peak-ewma` | [`peak_ewma`] | two random choices on peak-EWMA latency × (pending + 1) (Finagle, tower) |
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
//! | `maglev` | none | `table` (a prime, 3..=16777213; default 65537) |
//! | `weighted-round-robin` | none | `slow_start_ms` (slow-start window in ms; 0 = off, the default) |
//! | `peak-ewma` | none | `decay_ms` (EWMA time constant τ in ms, default 10000), `default_rtt_ms` (latency assumed before the first sample, default 30) |
//!
//! e.g. `"hash-ring:fast"`, `"hash-ring:ketama?bounded=1.25"`, `"maglev?table=251"`,
//! `"peak-ewma?decay_ms=5000&default_rtt_ms=10"`, `"weighted-round-robin?slow_start_ms=30000"`.
//! Other strategies take no options. An unknown name, mode or key, a repeated key, a
//! malformed pair or an out-of-range value is `invalid-argument`. See [`StrategyConfig`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::{Outcome, Request};

pub mod fewest_pending;
pub mod hash_ring;
pub mod maglev;
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
}

impl StrategyKind {
    /// Every built-in strategy.
    pub const ALL: [StrategyKind; 8] = [
        StrategyKind::RoundRobin,
        StrategyKind::Random,
        StrategyKind::FewestPending,
        StrategyKind::TwoRandomChoices,
        StrategyKind::HashRing,
        StrategyKind::Maglev,
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
            StrategyKind::HashRing => "hash-ring",
            StrategyKind::Maglev => "maglev",
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
/// ```
/// use peerlb::strategy::hash_ring::HashRingOptions;
/// use peerlb::strategy::StrategyConfig;
/// use peerlb::{ErrorCode, StrategyKind};
/// let c: StrategyConfig = "hash-ring:fast?bounded=1.25".parse().unwrap();
/// assert_eq!(c, StrategyConfig::HashRing(HashRingOptions::fast().bounded_load(1.25).unwrap()));
/// assert_eq!(c.kind(), StrategyKind::HashRing);
/// assert_eq!(c.to_string(), "hash-ring:fast?bounded=1.25");
/// assert_eq!("round-robin".parse::<StrategyConfig>().unwrap(), StrategyKind::RoundRobin.into());
/// let err = "maglev?table=100".parse::<StrategyConfig>().unwrap_err();
/// assert_eq!(err.code(), ErrorCode::InvalidArgument);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrategyConfig {
    /// A strategy without options (`round-robin`, `random`, ...). `HashRing` and `Maglev`
    /// here mean their default options.
    Kind(StrategyKind),
    /// `hash-ring` with these options.
    HashRing(hash_ring::HashRingOptions),
    /// `maglev` with these options.
    Maglev(maglev::MaglevOptions),
    /// `weighted-round-robin` with these options.
    WeightedRoundRobin(weighted_round_robin::WeightedRoundRobinOptions),
    /// `peak-ewma` with these options.
    PeakEwma(peak_ewma::PeakEwmaOptions),
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig::Kind(StrategyKind::default())
    }
}

impl From<StrategyKind> for StrategyConfig {
    fn from(kind: StrategyKind) -> StrategyConfig {
        match kind {
            StrategyKind::HashRing => StrategyConfig::HashRing(Default::default()),
            StrategyKind::Maglev => StrategyConfig::Maglev(Default::default()),
            StrategyKind::WeightedRoundRobin => {
                StrategyConfig::WeightedRoundRobin(Default::default())
            }
            StrategyKind::PeakEwma => StrategyConfig::PeakEwma(Default::default()),
            other => StrategyConfig::Kind(other),
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
            StrategyConfig::Kind(k) => *k,
            StrategyConfig::HashRing(_) => StrategyKind::HashRing,
            StrategyConfig::Maglev(_) => StrategyKind::Maglev,
            StrategyConfig::WeightedRoundRobin(_) => StrategyKind::WeightedRoundRobin,
            StrategyConfig::PeakEwma(_) => StrategyKind::PeakEwma,
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
            StrategyConfig::Kind(StrategyKind::RoundRobin) => {
                Arc::new(round_robin::RoundRobin::new())
            }
            StrategyConfig::Kind(StrategyKind::Random) => Arc::new(random::Random::new(seed)),
            StrategyConfig::Kind(StrategyKind::FewestPending) => {
                Arc::new(fewest_pending::FewestPending::new())
            }
            StrategyConfig::Kind(StrategyKind::TwoRandomChoices) => {
                Arc::new(two_random_choices::TwoRandomChoices::new(seed))
            }
            StrategyConfig::Kind(other) => StrategyConfig::from(*other).build(seed, clock),
            StrategyConfig::HashRing(o) => Arc::new(hash_ring::HashRing::new(*o)),
            StrategyConfig::Maglev(o) => Arc::new(maglev::Maglev::new(*o)),
            StrategyConfig::WeightedRoundRobin(o) => Arc::new(
                weighted_round_robin::WeightedRoundRobin::with_options(*o, clock.clone()),
            ),
            StrategyConfig::PeakEwma(o) => {
                Arc::new(peak_ewma::PeakEwma::with_options(seed, *o, clock.clone()))
            }
        }
    }
}

impl fmt::Display for StrategyConfig {
    /// The compact name (defaults omitted), which parses back to the same config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrategyConfig::Kind(k) => write!(f, "{k}"),
            StrategyConfig::HashRing(o) => write!(f, "{o}"),
            StrategyConfig::Maglev(o) => write!(f, "{o}"),
            StrategyConfig::WeightedRoundRobin(o) => match o.slow_start {
                Some(d) if !d.is_zero() => {
                    write!(f, "weighted-round-robin?slow_start_ms={}", d.as_millis())
                }
                _ => f.write_str("weighted-round-robin"),
            },
            StrategyConfig::PeakEwma(o) => {
                let defaults = peak_ewma::PeakEwmaOptions::default();
                let mut keys = Vec::new();
                if o.decay != defaults.decay {
                    keys.push(format!("decay_ms={}", o.decay.as_millis()));
                }
                if o.default_rtt != defaults.default_rtt {
                    keys.push(format!("default_rtt_ms={}", o.default_rtt.as_millis()));
                }
                if o.choices != defaults.choices {
                    keys.push(match o.choices {
                        0 => "choices=all".to_owned(),
                        n => format!("choices={n}"),
                    });
                }
                if keys.is_empty() {
                    f.write_str("peak-ewma")
                } else {
                    write!(f, "peak-ewma?{}", keys.join("&"))
                }
            }
        }
    }
}

/// Parses one option value of the compact name syntax.
pub(crate) fn parse_number<T: FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("strategy option {key}: bad value {value:?}")))
}

impl FromStr for StrategyConfig {
    type Err = Error;
    fn from_str(s: &str) -> Result<StrategyConfig> {
        let bad = |why: String| Error::InvalidArgument(format!("strategy {s:?}: {why}"));
        let (head, params) = crate::spec::split_spec("strategy", s)?;
        let (name, mode) = match head.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (head, None),
        };
        let kind: StrategyKind = name.parse()?;
        match kind {
            StrategyKind::HashRing => {
                let mut o = match mode {
                    None | Some("ketama") => hash_ring::HashRingOptions::ketama(),
                    Some("fast") => hash_ring::HashRingOptions::fast(),
                    Some(m) => {
                        return Err(bad(format!("unknown mode {m:?}; expected ketama or fast")))
                    }
                };
                for (k, v) in params {
                    o = o.set_param(k, v)?;
                }
                Ok(StrategyConfig::HashRing(o))
            }
            StrategyKind::Maglev => {
                if let Some(m) = mode {
                    return Err(bad(format!("maglev has no modes, got {m:?}")));
                }
                let mut o = maglev::MaglevOptions::default();
                for (k, v) in params {
                    o = o.set_param(k, v)?;
                }
                Ok(StrategyConfig::Maglev(o))
            }
            StrategyKind::WeightedRoundRobin | StrategyKind::PeakEwma => {
                if let Some(m) = mode {
                    return Err(bad(format!("{kind} has no modes, got {m:?}")));
                }
                let mut wrr = weighted_round_robin::WeightedRoundRobinOptions::default();
                let mut ewma = peak_ewma::PeakEwmaOptions::default();
                for (k, v) in params {
                    let known = match kind {
                        StrategyKind::WeightedRoundRobin => wrr.set(k, v)?,
                        _ => ewma.set(k, v)?,
                    };
                    if !known {
                        return Err(bad(format!("{kind} has no option {k:?}")));
                    }
                }
                Ok(match kind {
                    StrategyKind::WeightedRoundRobin => StrategyConfig::WeightedRoundRobin(wrr),
                    _ => StrategyConfig::PeakEwma(ewma),
                })
            }
            other => {
                if mode.is_some() || !params.is_empty() {
                    return Err(bad(format!("{other} takes no options")));
                }
                Ok(StrategyConfig::Kind(other))
            }
        }
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
            "hash-ring",
            "hash-ring:fast",
            "hash-ring?vnodes=160",
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
        ] {
            let c: StrategyConfig = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        let c: StrategyConfig = "hash-ring:ketama?bounded=1.25&vnodes=40".parse().unwrap();
        assert_eq!(c.to_string(), "hash-ring?vnodes=40&bounded=1.25");
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
            "weighted-round-robin?slow_start_ms=x",
            "weighted-round-robin?bounded=1.25",
            "round-robin?x=1",
            "Hash-Ring",
            "hash-ring ",
        ] {
            let err = s.parse::<StrategyConfig>().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{s:?}: {err}");
        }
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
