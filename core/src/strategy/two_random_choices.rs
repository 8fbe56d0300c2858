//! `two-random-choices`: of two distinct random peers, the one with fewer pending requests.
//!
//! Exactly yarpc's `tworandomchoices`: draw `i` uniformly, then `j` uniformly among the
//! other peers; choose `j` only if it has strictly fewer pending requests (a tie keeps
//! `i`). With one peer, that peer. Lock-free like `random`.

use std::sync::Arc;

use super::snapshot::PeerSnapshot;
use super::stripes::StripedRng;
use super::Strategy;
use crate::peer::Peer;
use crate::request::Request;

/// The power-of-two-choices strategy.
pub struct TwoRandomChoices {
    peers: PeerSnapshot,
    rng: StripedRng,
}

impl TwoRandomChoices {
    /// A two-random-choices strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> TwoRandomChoices {
        TwoRandomChoices {
            peers: PeerSnapshot::new(),
            rng: StripedRng::new(seed),
        }
    }
}

impl Strategy for TwoRandomChoices {
    fn name(&self) -> &str {
        "two-random-choices"
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
        let n = peers.len();
        match n {
            0 => None,
            1 => Some(peers[0].clone()),
            _ => {
                let i = self.rng.below(n);
                let mut j = i + 1 + self.rng.below(n - 1);
                if j >= n {
                    j -= n;
                }
                let pick = if peers[j].pending() < peers[i].pending() {
                    j
                } else {
                    i
                };
                Some(peers[pick].clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::peers;

    #[test]
    fn never_picks_the_busier_of_two() {
        let s = TwoRandomChoices::new(Some(3));
        let ps = peers(&["idle", "busy"]);
        for p in &ps {
            s.add(p);
        }
        for _ in 0..5 {
            ps[1].begin_request();
        }
        for _ in 0..50 {
            assert_eq!(s.choose(&Request::new()).unwrap().id().as_str(), "idle");
        }
    }
}
