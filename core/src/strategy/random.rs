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

use super::snapshot::{PeerSnapshot, View};
use super::stripes::{SplitMix, Striped};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

/// The random strategy.
pub struct Random {
    peers: PeerSnapshot,
    local: Striped<Local>,
}

struct Local {
    view: View,
    rng: SplitMix,
}

impl Random {
    /// A random strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> Random {
        let peers = PeerSnapshot::new();
        let local = Striped::new(|i| Local {
            view: View::new(&peers),
            rng: SplitMix::for_stripe(seed, i),
        });
        Random { peers, local }
    }
}

impl Strategy for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn add(&self, peer: &PeerRef) {
        self.peers.push(peer);
    }

    fn remove(&self, peer: &PeerRef) {
        self.peers.swap_remove(peer);
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.peers.generation();
        self.local.with_current(|local| {
            if local.view.is_stale(generation) {
                local.view = View::new(&self.peers);
            }
            let peers = local.view.peers();
            match peers.len() {
                0 => None,
                n => Some(peers[local.rng.below(n)].start_request()),
            }
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
