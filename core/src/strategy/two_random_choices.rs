//! `two-random-choices`: of two distinct random peers, the one with fewer pending requests.
//!
//! Exactly yarpc's `tworandomchoices`: draw `i` uniformly, then `j` uniformly among the
//! other peers; choose `j` only if it has strictly fewer pending requests (a tie keeps
//! `i`). With one peer, that peer. Like `random`, each thread draws from its own stream over
//! its own cached copy of the peer array.

use super::snapshot::{PeerSnapshot, View};
use super::stripes::{SplitMix, Striped};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

/// The power-of-two-choices strategy.
pub struct TwoRandomChoices {
    peers: PeerSnapshot,
    local: Striped<Local>,
}

struct Local {
    view: View,
    rng: SplitMix,
}

impl TwoRandomChoices {
    /// A two-random-choices strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> TwoRandomChoices {
        let peers = PeerSnapshot::new();
        let local = Striped::new(|i| Local {
            view: View::new(&peers),
            rng: SplitMix::for_stripe(seed, i),
        });
        TwoRandomChoices { peers, local }
    }
}

impl Strategy for TwoRandomChoices {
    fn name(&self) -> &str {
        "two-random-choices"
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
            let n = peers.len();
            match n {
                0 => None,
                1 => Some(peers[0].start_request()),
                _ => {
                    let i = local.rng.below(n);
                    let mut j = i + 1 + local.rng.below(n - 1);
                    if j >= n {
                        j -= n;
                    }
                    let pick = if peers[j].pending() < peers[i].pending() {
                        j
                    } else {
                        i
                    };
                    Some(peers[pick].start_request())
                }
            }
        })
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
        let _busy: Vec<_> = (0..5).map(|_| ps[1].start_request()).collect();
        for _ in 0..50 {
            assert_eq!(
                s.choose(&Request::new()).unwrap().peer().id().as_str(),
                "idle"
            );
        }
    }
}
