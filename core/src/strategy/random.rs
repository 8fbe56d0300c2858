//! `random`: a uniformly random available peer.
//!
//! As yarpc's `randpeer`: peers are appended as they become available and swap-removed.
//! Draws come from per-thread random streams (see `stripes`), so choosing takes no lock;
//! with a `seed`, a single thread's sequence of picks is reproducible.
//!
//! ```
//! use peerlb::{ListOptions, PeerList, Request, StrategyKind};
//! let list = PeerList::new(ListOptions::default().strategy(StrategyKind::Random).seed(7)).unwrap();
//! list.update(["a", "b", "c"], Vec::<String>::new()).unwrap();
//! list.start().unwrap();
//! let peer = list.choose(&Request::new()).unwrap().peer().to_string();
//! assert!(["a", "b", "c"].contains(&peer.as_str()));
//! ```

use std::sync::Arc;

use super::snapshot::PeerSnapshot;
use super::stripes::StripedRng;
use super::Strategy;
use crate::peer::Peer;
use crate::request::Request;

/// The random strategy.
pub struct Random {
    peers: PeerSnapshot,
    rng: StripedRng,
}

impl Random {
    /// A random strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> Random {
        Random {
            peers: PeerSnapshot::new(),
            rng: StripedRng::new(seed),
        }
    }
}

impl Strategy for Random {
    fn name(&self) -> &str {
        "random"
    }

    fn add(&self, peer: &Arc<Peer>) {
        self.peers.add(peer);
    }

    fn remove(&self, peer: &Arc<Peer>) {
        self.peers.remove(peer);
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<Arc<Peer>> {
        let peers = self.peers.load();
        match peers.len() {
            0 => None,
            n => Some(peers[self.rng.below(n)].clone()),
        }
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
