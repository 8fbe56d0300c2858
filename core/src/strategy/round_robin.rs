//! `round-robin`: each available peer in turn.
//!
//! Semantics follow yarpc's `roundrobin` peer ring: peers form a ring with a cursor on the
//! next peer to choose; a peer that becomes available is inserted just *before* the
//! cursor (so it is chosen last in the current cycle); removing the cursor's peer moves
//! the cursor to its successor.
//!
//! # Concurrency
//! The ring is an immutable array published by the writer (see `snapshot`). Each thread
//! keeps its own cursor and cached copy of the ring in its stripe (see `stripes`), so
//! `choose` takes one uncontended stripe lock and touches no shared cache line. One thread
//! walks the ring in exact order; a second thread starts at a different point of the ring
//! (golden-ratio spacing) so the two do not hit the same peers in lockstep. Insertions go
//! before the calling thread's cursor, or before the first chooser's cursor when the
//! caller has not chosen yet.
//!
//! ```
//! use peerlb::{ListOptions, PeerList, Request, StrategyKind};
//! let list = PeerList::new(ListOptions::default().strategy(StrategyKind::RoundRobin).shuffle(false)).unwrap();
//! list.update(["a", "b", "c"], Vec::<String>::new()).unwrap();
//! list.start().unwrap();
//! let picks: Vec<String> = (0..4).map(|_| list.choose(&Request::new()).unwrap().peer().to_string()).collect();
//! assert_eq!(picks, ["a", "b", "c", "a"]);
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::snapshot::{PeerSnapshot, Published, View};
use super::stripes::{self, Striped};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

const UNSET: usize = usize::MAX;

/// The round-robin strategy.
pub struct RoundRobin {
    ring: PeerSnapshot,
    local: Striped<Local>,
    /// How many stripes have chosen, and which one was first (its cursor is where
    /// insertions go for threads that have not chosen).
    claimed: AtomicUsize,
    primary: AtomicUsize,
}

struct Local {
    view: View,
    /// Index of this thread's next peer in `view`.
    cursor: usize,
    used: bool,
}

/// Where `peer` sits in `ring`, if it is there. Writers record each peer's index in its
/// strategy slot, so this is O(1) unless the slot was already rewritten by a newer ring.
fn position(ring: &Published, peer: &PeerRef) -> Option<usize> {
    let i = peer.strategy_slot().load(Ordering::Relaxed);
    if i == UNSET {
        return None;
    }
    if i < ring.peers.len() && PeerRef::ptr_eq(&ring.peers[i], peer) {
        return Some(i);
    }
    ring.peers.iter().position(|p| PeerRef::ptr_eq(p, peer))
}

impl Local {
    /// Moves to `ring`, keeping the cursor on the same next peer, or on the first peer
    /// after it that is still in the ring (yarpc: removing the cursor's peer moves the
    /// cursor to its successor).
    fn sync(&mut self, ring: Arc<Published>) {
        if self.used {
            let old = self.view.peers();
            let n = old.len();
            let found = (0..n).find_map(|step| position(&ring, &old[(self.cursor + step) % n]));
            self.cursor = found.unwrap_or(ring.head);
        }
        self.view = View { current: ring };
    }
}

impl RoundRobin {
    /// An empty ring.
    pub fn new() -> RoundRobin {
        let ring = PeerSnapshot::new();
        let local = Striped::new(|_| Local {
            view: View::new(&ring),
            cursor: 0,
            used: false,
        });
        RoundRobin {
            ring,
            local,
            claimed: AtomicUsize::new(0),
            primary: AtomicUsize::new(UNSET),
        }
    }

    /// First choose from this thread's stripe: the first chooser starts at the ring's
    /// head; later ones are spread around the ring.
    #[cold]
    fn claim(&self, local: &mut Local) {
        let k = self.claimed.fetch_add(1, Ordering::Relaxed);
        let ring = &local.view.current;
        let n = ring.peers.len().max(1);
        local.cursor = if k == 0 {
            let _ = self.primary.compare_exchange(
                UNSET,
                stripes::current(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            ring.head % n
        } else {
            let offset = ((k as f64 * 0.618_033_988_75).fract() * n as f64) as usize;
            (ring.head + offset) % n
        };
        local.used = true;
    }

    /// The index in `ring` (the current one) that new peers go before.
    fn insertion_point(&self, ring: &Arc<Published>) -> usize {
        let own = stripes::current();
        let primary = self.primary.load(Ordering::Relaxed);
        for stripe in [own, primary] {
            if stripe == UNSET {
                continue;
            }
            let cursor = self.local.with(stripe, |local| {
                local.used.then(|| {
                    if local.view.is_stale(ring.generation) {
                        local.sync(ring.clone());
                    }
                    local.cursor
                })
            });
            if let Some(c) = cursor {
                return c;
            }
        }
        ring.head
    }

    fn publish(&self, peers: Vec<PeerRef>, head: usize) {
        for (i, p) in peers.iter().enumerate() {
            p.strategy_slot().store(i, Ordering::Relaxed);
        }
        self.ring.publish(peers, head);
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        RoundRobin::new()
    }
}

impl Strategy for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn add(&self, peer: &PeerRef) {
        let _w = self.ring.write();
        let ring = self.ring.load();
        let n = ring.peers.len();
        let at = if n == 0 {
            0
        } else {
            self.insertion_point(&ring) % n
        };
        // Rotate so the insertion point is index 0, then append: "just before the cursor".
        let mut peers = Vec::with_capacity(n + 1);
        peers.extend_from_slice(&ring.peers[at..]);
        peers.extend_from_slice(&ring.peers[..at]);
        peers.push(peer.clone());
        let head = if n == 0 { 0 } else { (ring.head + n - at) % n };
        self.publish(peers, head);
    }

    fn remove(&self, peer: &PeerRef) {
        let _w = self.ring.write();
        let ring = self.ring.load();
        let Some(gone) = position(&ring, peer) else {
            return;
        };
        let mut peers = ring.peers.clone();
        peers.remove(gone);
        peer.strategy_slot().store(UNSET, Ordering::Relaxed);
        let m = peers.len().max(1);
        let head = if ring.head > gone {
            ring.head - 1
        } else {
            ring.head
        } % m;
        self.publish(peers, head);
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.ring.generation();
        self.local.with_current(|local| {
            if local.view.is_stale(generation) {
                local.sync(self.ring.load());
            }
            if !local.used {
                self.claim(local);
            }
            let peers = local.view.peers();
            let n = peers.len();
            if n == 0 {
                return None;
            }
            let i = if local.cursor < n { local.cursor } else { 0 };
            local.cursor = if i + 1 == n { 0 } else { i + 1 };
            Some(peers[i].start_request())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::{peers, pick};

    #[test]
    fn cycles_in_order() {
        let rr = RoundRobin::new();
        for p in peers(&["a", "b", "c"]) {
            rr.add(&p);
        }
        let got: Vec<String> = (0..6).map(|_| pick(&rr)).collect();
        assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn new_peer_goes_just_before_the_cursor() {
        let rr = RoundRobin::new();
        let ps = peers(&["a", "b", "c", "d"]);
        for p in &ps[..3] {
            rr.add(p);
        }
        assert_eq!(pick(&rr), "a");
        assert_eq!(pick(&rr), "b");
        rr.add(&ps[3]); // cursor is on c: ring becomes c, a, b, d
        let got: Vec<String> = (0..5).map(|_| pick(&rr)).collect();
        assert_eq!(got, ["c", "a", "b", "d", "c"]);
    }

    #[test]
    fn removing_the_cursor_peer_moves_to_its_successor() {
        let rr = RoundRobin::new();
        let ps = peers(&["a", "b", "c"]);
        for p in &ps {
            rr.add(p);
        }
        assert_eq!(pick(&rr), "a");
        rr.remove(&ps[1]);
        assert_eq!(pick(&rr), "c");
        assert_eq!(pick(&rr), "a");
        rr.remove(&ps[0]);
        rr.remove(&ps[2]);
        assert!(rr.choose(&Request::new()).is_none());
        rr.add(&ps[1]);
        assert_eq!(pick(&rr), "b");
    }

    #[test]
    fn a_second_thread_starts_elsewhere_on_the_ring() {
        let rr = Arc::new(RoundRobin::new());
        for p in peers(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]) {
            rr.add(&p);
        }
        assert_eq!(pick(&*rr), "a");
        let rr2 = rr.clone();
        let other = std::thread::spawn(move || pick(&*rr2)).join().unwrap();
        // Threads normally get distinct stripes; if they share one, it just continues.
        assert_ne!(other, "a");
    }
}
