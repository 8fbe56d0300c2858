//! `two-random-choices`: of two distinct random peers, the one with fewer pending requests.
//!
//! Exactly yarpc's `tworandomchoices`: draw `i` uniformly, then `j` uniformly among the
//! other peers; choose `j` only if it has strictly fewer pending requests (a tie keeps
//! `i`). With one peer, that peer. Like `random`, each thread draws from its own stream over
//! its own cached copy of the peer array.

use super::random::RandomDraws;
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

/// The power-of-two-choices strategy.
pub struct TwoRandomChoices {
    draws: RandomDraws,
}

impl TwoRandomChoices {
    /// A two-random-choices strategy; `seed` makes it reproducible.
    pub fn new(seed: Option<u64>) -> TwoRandomChoices {
        TwoRandomChoices {
            draws: RandomDraws::new(seed),
        }
    }
}

impl Strategy for TwoRandomChoices {
    fn name(&self) -> &str {
        "two-random-choices"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.draws.update(added, removed);
    }

    fn batch_end(&self) {
        self.draws.batch_end();
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        self.draws.with(|peers, rng| {
            let n = peers.len();
            match n {
                0 => None,
                1 => Some(peers[0].start_request()),
                _ => {
                    let i = rng.below(n);
                    let mut j = i + 1 + rng.below(n - 1);
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
