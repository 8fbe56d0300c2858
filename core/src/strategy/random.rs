//! `random`: a uniformly random available peer.
//!
//! As yarpc's `randpeer`: peers are appended as they become available and swap-removed.
//! Each thread draws from its own SplitMix64 stream over its own cached copy of the
//! peer array (see `stripes` and `snapshot`), so choosing takes no shared lock; with a
//! `seed`, a single thread's sequence of picks is reproducible.
//!
//! ```
//! use peerlb::{ListOptions, PeerList, Request, StrategyKind};
//! let list = PeerList::new(ListOptions::default().strategy(StrategyKind::Random).seed(7)).unwrap();
//! list.update(["a", "b", "c"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let peer = list.choose(&Request::new()).unwrap().peer().to_string();
//! assert!(["a", "b", "c"].contains(&peer.as_str()));
//! ```

use std::sync::Arc;

use super::snapshot::{apply_unordered, Published, Publisher};
use super::stripes::{SplitMix, Striped};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

/// An unordered array of the available peers (yarpc's random lists: appended as they come,
/// swap-removed as they go) and, per stripe, a cached copy of it and a random stream: what
/// `random` and `two-random-choices` draw from.
pub(crate) struct RandomDraws {
    peers: Publisher<Vec<PeerRef>>,
    local: Striped<Draws>,
}

struct Draws {
    view: Arc<Published<Vec<PeerRef>>>,
    rng: SplitMix,
}

impl RandomDraws {
    pub(crate) fn new(seed: Option<u64>) -> RandomDraws {
        let peers = Publisher::new(Vec::new());
        let local = Striped::new(|i| Draws {
            view: peers.load(),
            rng: SplitMix::for_stripe(seed, i),
        });
        RandomDraws { peers, local }
    }

    pub(crate) fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.peers.stage(added, removed);
    }

    pub(crate) fn batch_end(&self) {
        self.peers
            .publish_staged(|current, changes| apply_unordered(current, changes, PeerRef::clone));
    }

    /// Runs `f` on the current peers and this thread's random stream.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[PeerRef], &mut SplitMix) -> R) -> R {
        let generation = self.peers.generation();
        self.local.with_current(|local| {
            if local.view.generation != generation {
                local.view = self.peers.load();
            }
            f(&local.view, &mut local.rng)
        })
    }
}

/// The random strategy.
pub struct Random {
    draws: RandomDraws,
}

impl Random {
    /// A random strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> Random {
        Random {
            draws: RandomDraws::new(seed),
        }
    }
}

impl Strategy for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.draws.update(added, removed);
    }

    fn batch_end(&self) {
        self.draws.batch_end();
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        self.draws.with(|peers, rng| match peers.len() {
            0 => None,
            n => Some(peers[rng.below(n)].start_request()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::{peers, pick};

    #[test]
    fn picks_every_peer_and_only_available_ones() {
        let r = Random::new(Some(1));
        let ps = peers(&["a", "b", "c"]);
        for p in &ps {
            r.add(p);
        }
        r.remove(&ps[1]);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..300 {
            *seen.entry(pick(&r)).or_insert(0) += 1;
        }
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert!(seen.values().all(|&c| c > 100), "{seen:?}");
    }
}
