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

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

pub mod fewest_pending;
pub mod random;
pub mod round_robin;
pub(crate) mod snapshot;
pub(crate) mod stripes;
pub mod two_random_choices;

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
}

impl StrategyKind {
    /// Every built-in strategy.
    pub const ALL: [StrategyKind; 4] = [
        StrategyKind::RoundRobin,
        StrategyKind::Random,
        StrategyKind::FewestPending,
        StrategyKind::TwoRandomChoices,
    ];

    /// The kebab-case name, e.g. `"two-random-choices"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::RoundRobin => "round-robin",
            StrategyKind::Random => "random",
            StrategyKind::FewestPending => "fewest-pending",
            StrategyKind::TwoRandomChoices => "two-random-choices",
        }
    }

    /// Builds a fresh strategy of this kind; `seed` makes random choices reproducible.
    pub fn build(self, seed: Option<u64>) -> Arc<dyn Strategy> {
        match self {
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
