//! `round-robin`: each available peer in turn.
//!
//! Semantics follow yarpc's `roundrobin` peer ring: peers form a ring with a cursor on the
//! next peer to choose; a peer that becomes available is inserted just *before* the
//! cursor (so it is chosen last in the current cycle); removing the cursor's peer moves
//! the cursor to its successor.
//!
//! # Concurrency
//! The ring is an immutable snapshot behind an [`ArcSwap`]; `choose` loads it and advances
//! a cursor with one relaxed atomic add — no lock. Cursors are striped per thread (see
//! `stripes`): one thread always walks the ring in exact order; a second thread gets its
//! own cursor, started at a different point of the ring (golden-ratio spacing) so the two
//! do not hit the same peers in lockstep. Insertions go before the calling thread's
//! cursor, or before the first chooser's cursor when the caller has not chosen yet.
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
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::stripes::{self, Padded, STRIPES};
use super::Strategy;
use crate::peer::Peer;
use crate::request::Request;

const UNUSED: usize = usize::MAX;

/// The round-robin strategy.
pub struct RoundRobin {
    ring: ArcSwap<Ring>,
    write: Mutex<()>,
}

struct Ring {
    peers: Vec<Arc<Peer>>,
    /// Per-stripe cursor (an ever-growing counter; index = value % len), or `UNUSED`.
    cursors: Box<[Padded<AtomicUsize>]>,
    /// Where an unused stripe's first thread starts when no stripe has chosen yet.
    head: usize,
    /// How many stripes have chosen from this ring family, and which was first.
    claimed: AtomicUsize,
    primary: AtomicUsize,
}

impl Ring {
    fn empty() -> Ring {
        Ring {
            peers: Vec::new(),
            cursors: (0..STRIPES)
                .map(|_| Padded(AtomicUsize::new(UNUSED)))
                .collect(),
            head: 0,
            claimed: AtomicUsize::new(0),
            primary: AtomicUsize::new(UNUSED),
        }
    }

    /// The index of `stripe`'s next peer, if the stripe has chosen.
    fn next_of(&self, stripe: usize) -> Option<usize> {
        let c = self.cursors[stripe].0.load(Ordering::Relaxed);
        (c != UNUSED && !self.peers.is_empty()).then(|| c % self.peers.len())
    }

    /// The cursor new peers are inserted before, for a caller on `stripe`.
    fn insertion_point(&self, stripe: usize) -> usize {
        self.next_of(stripe)
            .or_else(|| {
                let p = self.primary.load(Ordering::Relaxed);
                (p != UNUSED).then(|| self.next_of(p)).flatten()
            })
            .unwrap_or(self.head)
    }

    /// First choose from `stripe`: start at the head for the first chooser, and spread
    /// later ones around the ring.
    #[cold]
    fn claim(&self, stripe: usize) {
        let n = self.peers.len();
        let k = self.claimed.fetch_add(1, Ordering::Relaxed);
        let start = if k == 0 {
            let _ =
                self.primary
                    .compare_exchange(UNUSED, stripe, Ordering::Relaxed, Ordering::Relaxed);
            self.head
        } else {
            let base = self.insertion_point(stripe);
            // Golden-ratio spacing keeps successive threads far apart on the ring.
            let offset = ((k as f64 * 0.618_033_988_75).fract() * n as f64) as usize;
            (base + offset) % n.max(1)
        };
        let _ = self.cursors[stripe].0.compare_exchange(
            UNUSED,
            start,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A new ring with `peers`, where each used stripe's cursor is `remap(old index)`.
    fn rebuild(&self, peers: Vec<Arc<Peer>>, remap: impl Fn(usize) -> usize) -> Ring {
        let m = peers.len().max(1);
        let cursors = (0..STRIPES)
            .map(|s| {
                let c = self.next_of(s).map_or(UNUSED, |i| remap(i) % m);
                Padded(AtomicUsize::new(c))
            })
            .collect();
        let head = if self.peers.is_empty() {
            0
        } else {
            remap(self.head % self.peers.len()) % m
        };
        Ring {
            peers,
            cursors,
            head,
            claimed: AtomicUsize::new(self.claimed.load(Ordering::Relaxed)),
            primary: AtomicUsize::new(self.primary.load(Ordering::Relaxed)),
        }
    }
}

impl RoundRobin {
    /// An empty ring.
    pub fn new() -> RoundRobin {
        RoundRobin {
            ring: ArcSwap::from_pointee(Ring::empty()),
            write: Mutex::new(()),
        }
    }

    /// The ring's peers in choosing order from the calling thread's cursor (for tests and
    /// introspection).
    pub fn order(&self) -> Vec<Arc<Peer>> {
        let ring = self.ring.load();
        let start = ring.insertion_point(stripes::current());
        let n = ring.peers.len();
        (0..n)
            .map(|i| ring.peers[(start + i) % n].clone())
            .collect()
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

    fn add(&self, peer: &Arc<Peer>) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.ring.load();
        let n = old.peers.len();
        let at = if n == 0 {
            0
        } else {
            old.insertion_point(stripes::current())
        };
        // Rotate so the insertion point is index 0, then append: "just before the cursor".
        let mut peers = Vec::with_capacity(n + 1);
        peers.extend_from_slice(&old.peers[at..]);
        peers.extend_from_slice(&old.peers[..at]);
        peers.push(peer.clone());
        let new = old.rebuild(peers, |i| (i + n - at) % n.max(1));
        self.ring.store(Arc::new(new));
    }

    fn remove(&self, peer: &Arc<Peer>) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.ring.load();
        let Some(gone) = old.peers.iter().position(|p| Arc::ptr_eq(p, peer)) else {
            return;
        };
        let mut peers = old.peers.clone();
        peers.remove(gone);
        let new = old.rebuild(peers, |i| if i > gone { i - 1 } else { i });
        self.ring.store(Arc::new(new));
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<Arc<Peer>> {
        let ring = self.ring.load();
        let n = ring.peers.len();
        if n == 0 {
            return None;
        }
        let stripe = stripes::current();
        let cursor = &ring.cursors[stripe].0;
        if cursor.load(Ordering::Relaxed) == UNUSED {
            ring.claim(stripe);
        }
        let c = cursor.fetch_add(1, Ordering::Relaxed);
        Some(ring.peers[c % n].clone())
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
