//! `round-robin`: each available peer in turn.
//!
//! Semantics follow yarpc's `roundrobin` peer ring: peers form a ring with a cursor on the
//! next peer to choose; a peer that becomes available is inserted just *before* the
//! cursor (so it is chosen last in the current cycle); removing the cursor's peer moves
//! the cursor to its successor.
//!
//! # Concurrency
//! The ring is an immutable array published once per batch (see `snapshot`). Each thread
//! keeps its own cursor and cached copy of the ring in its stripe (see `stripes`), so
//! `choose` takes one uncontended stripe lock and touches no shared cache line. One thread
//! walks the ring in exact order; a second thread starts at a different point of the ring
//! (golden-ratio spacing) so the two do not hit the same peers in lockstep. Insertions go
//! before the cursor of the thread that publishes the batch, or before the first chooser's
//! cursor when that thread has not chosen yet.
//!
//! # Ring keys
//! Every peer on the ring carries a key, strictly increasing along the array, that it keeps
//! while it stays on the ring (inserted peers get keys between their neighbours'). A thread
//! whose cached ring is out of date finds its cursor's peer, or that peer's successor when
//! it was removed, in the new ring by binary search on the key: O(log n) however many
//! versions it skipped, however many peers went. Keys are spread so that about a million
//! insertions at one point fit between two neighbours; past that the ring renumbers its
//! keys (a new key epoch), and a thread with a cached ring of an older epoch resumes at the
//! same relative position instead.
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

use super::snapshot::{Changes, Published, Publisher};
use super::stripes::{self, Striped};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;

const UNSET: usize = usize::MAX;

/// Key distance between peers when a ring is (re)numbered.
const SPACING: u64 = 1 << 40;
/// Key distance between peers inserted together (leaves room for more insertions there).
const INSERT_STEP: u64 = 1 << 20;

/// One version of the ring.
struct Ring {
    peers: Vec<PeerRef>,
    /// Strictly increasing; `keys[i]` belongs to `peers[i]` (see the module docs).
    keys: Vec<u64>,
    /// Where a thread that has never chosen starts.
    head: usize,
    /// Bumped when the keys are renumbered.
    epoch: u64,
}

impl Ring {
    fn empty() -> Ring {
        Ring {
            peers: Vec::new(),
            keys: Vec::new(),
            head: 0,
            epoch: 0,
        }
    }

    /// The index of the first peer whose key is at least `key` (the peer itself, or its
    /// successor when it left), wrapping to 0.
    fn at_or_after(&self, key: u64) -> usize {
        let i = self.keys.partition_point(|&k| k < key);
        if i == self.peers.len() {
            0
        } else {
            i
        }
    }
}

/// The round-robin strategy.
pub struct RoundRobin {
    ring: Publisher<Ring>,
    local: Striped<Local>,
    /// How many stripes have chosen, and which one was first (its cursor is where
    /// insertions go for threads that have not chosen).
    claimed: AtomicUsize,
    primary: AtomicUsize,
}

struct Local {
    view: Arc<Published<Ring>>,
    /// Index of this thread's next peer in `view`; `UNSET` until the stripe first chooses.
    cursor: usize,
}

impl Local {
    /// Moves to `ring`, keeping the cursor on the same next peer, or on the first peer
    /// after it that is still in the ring (yarpc: removing the cursor's peer moves the
    /// cursor to its successor).
    #[cold]
    #[inline(never)]
    fn sync(&mut self, ring: Arc<Published<Ring>>) {
        if self.cursor != UNSET {
            let old = &self.view;
            self.cursor = match (old.peers.len(), ring.peers.len()) {
                (_, 0) => 0,
                (0, _) => ring.head,
                (n, _) if old.epoch == ring.epoch => ring.at_or_after(old.keys[self.cursor % n]),
                (n, m) => (self.cursor % n) * m / n,
            };
        }
        self.view = ring;
    }

    /// The key of this thread's next peer, if it has chosen and its ring is not empty.
    fn cursor_key(&self) -> Option<(u64, u64)> {
        let n = self.view.peers.len();
        (self.cursor != UNSET && n > 0).then(|| (self.view.keys[self.cursor % n], self.view.epoch))
    }
}

impl RoundRobin {
    /// An empty ring.
    pub fn new() -> RoundRobin {
        let ring = Publisher::new(Ring::empty());
        let local = Striped::new(|_| Local {
            view: ring.load(),
            cursor: UNSET,
        });
        RoundRobin {
            ring,
            local,
            claimed: AtomicUsize::new(0),
            primary: AtomicUsize::new(UNSET),
        }
    }

    /// Where a stripe that never chose starts: the first chooser at the ring's head; later
    /// ones spread around the ring.
    #[cold]
    #[inline(never)]
    fn claim(&self, ring: &Ring) -> usize {
        let k = self.claimed.fetch_add(1, Ordering::Relaxed);
        let n = ring.peers.len().max(1);
        if k == 0 {
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
        }
    }

    /// The key (and key epoch) of the cursor new peers go before: this thread's, else the
    /// first chooser's; `None` when nobody has chosen.
    fn insertion_key(&self) -> Option<(u64, u64)> {
        let own = stripes::current();
        let primary = self.primary.load(Ordering::Relaxed);
        [own, primary]
            .into_iter()
            .filter(|&s| s != UNSET)
            .find_map(|stripe| self.local.with(stripe, |local| local.cursor_key()))
    }

    /// The next ring: `changes.removed` taken out (the head moves to its successor), then
    /// `changes.added` inserted as a block just before the insertion cursor.
    fn next_ring(&self, old: &Ring, changes: Changes) -> Ring {
        let mut ring = Ring {
            peers: Vec::with_capacity(old.peers.len() + changes.added.len()),
            keys: Vec::with_capacity(old.peers.len() + changes.added.len()),
            head: 0,
            epoch: old.epoch,
        };
        if changes.removed.is_empty() {
            ring.peers.extend_from_slice(&old.peers);
            ring.keys.extend_from_slice(&old.keys);
            ring.head = old.head;
        } else {
            let gone = changes.removed_set();
            for (i, (p, &k)) in old.peers.iter().zip(&old.keys).enumerate() {
                if i == old.head {
                    ring.head = ring.peers.len();
                }
                if !gone.contains(&(&**p as *const crate::Peer)) {
                    ring.peers.push(p.clone());
                    ring.keys.push(k);
                }
            }
            if ring.head >= ring.peers.len() {
                ring.head = 0;
            }
        }
        if !changes.added.is_empty() {
            self.insert(&mut ring, changes.added);
        }
        ring
    }

    /// Inserts `added` just before the insertion cursor (before the head when nobody has
    /// chosen), keeping the head on the same peer.
    fn insert(&self, ring: &mut Ring, added: Vec<PeerRef>) {
        let n = ring.peers.len();
        let at = match self.insertion_key() {
            _ if n == 0 => 0,
            Some((key, epoch)) if epoch == ring.epoch => ring.at_or_after(key),
            _ => ring.head,
        };
        // Just before index 0 is, on a ring, just after the last peer: append there, so
        // that no index moves.
        let at = if at == 0 { n } else { at };
        let k = added.len() as u64;
        let bounds = |ring: &Ring| {
            let lo = if at == 0 { 0 } else { ring.keys[at - 1] };
            let hi = ring.keys.get(at).copied().unwrap_or(u64::MAX);
            (lo, (hi - lo) / (k + 1))
        };
        if bounds(ring).1 == 0 {
            renumber(ring);
        }
        let (lo, room) = bounds(ring);
        let step = if at == n { SPACING } else { INSERT_STEP }.min(room).max(1);
        ring.keys.splice(at..at, (1..=k).map(|i| lo + i * step));
        ring.peers.splice(at..at, added);
        if at <= ring.head && at < n {
            ring.head += k as usize;
        }
    }
}

/// Spreads `ring`'s keys evenly again (a new key epoch).
#[cold]
fn renumber(ring: &mut Ring) {
    let spacing = SPACING.min(u64::MAX / (ring.peers.len() as u64 * 2 + 2));
    for (i, k) in ring.keys.iter_mut().enumerate() {
        *k = (i as u64 + 1) * spacing;
    }
    ring.epoch += 1;
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

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.ring.stage(added, removed);
    }

    fn batch_end(&self) {
        self.ring
            .publish_staged(|old, changes| self.next_ring(old, changes));
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.ring.generation();
        self.local.with_current(|local| {
            if local.view.generation != generation {
                local.sync(self.ring.load());
            }
            let peers: &[PeerRef] = &local.view.peers;
            let n = peers.len();
            let mut i = local.cursor;
            if i >= n {
                // The cycle wrapped, or this stripe chooses for the first time.
                if n == 0 {
                    return None;
                }
                i = if i == UNSET {
                    self.claim(&local.view)
                } else {
                    0
                };
            }
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

    #[test]
    fn a_thread_that_skipped_versions_resumes_at_the_cursors_successor() {
        let rr = RoundRobin::new();
        let ps = peers(&["a", "b", "c", "d", "e", "f", "g"]);
        rr.update(&ps, &[]);
        rr.batch_end();
        assert_eq!(pick(&rr), "a");
        assert_eq!(pick(&rr), "b"); // the cursor is on c
                                    // Three versions this thread never chooses in: c and d go, x comes (before the
                                    // cursor, now on e), then e goes.
        rr.update(&[], &ps[2..4]);
        rr.batch_end();
        let x = peers(&["x"]);
        rr.update(&x, &[]);
        rr.batch_end();
        rr.update(&[], &ps[4..5]);
        rr.batch_end();
        let got: Vec<String> = (0..6).map(|_| pick(&rr)).collect();
        assert_eq!(got, ["f", "g", "a", "b", "x", "f"]);
    }

    #[test]
    fn one_batch_inserts_its_peers_together_before_the_cursor() {
        let rr = RoundRobin::new();
        let ps = peers(&["a", "b", "c", "x", "y"]);
        rr.update(&ps[..3], &[]);
        rr.batch_end();
        assert_eq!(pick(&rr), "a");
        rr.update(&ps[3..], &[ps[2].clone()]);
        rr.batch_end();
        let got: Vec<String> = (0..5).map(|_| pick(&rr)).collect();
        assert_eq!(got, ["b", "a", "x", "y", "b"]); // the new peers end the cycle
    }

    #[test]
    fn many_insertions_at_one_point_keep_the_order() {
        let rr = RoundRobin::new();
        let ps = peers(&["a", "b"]);
        rr.update(&ps, &[]);
        rr.batch_end();
        assert_eq!(pick(&rr), "a"); // the cursor is on b
        let names: Vec<String> = (0..200).map(|i| format!("n{i:03}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for p in peers(&refs) {
            rr.add(&p); // each just before the cursor, after the previous one
        }
        let got: Vec<String> = (0..203).map(|_| pick(&rr)).collect();
        let mut want = vec!["b".to_owned()];
        want.push("a".to_owned());
        want.extend(names.iter().cloned());
        want.push("b".to_owned());
        assert_eq!(got, want);
    }

    #[test]
    fn renumbered_keys_keep_the_order_and_a_stale_thread_keeps_its_place() {
        let mut ring = Ring::empty();
        ring.peers = peers(&["a", "b", "c", "d"]);
        ring.keys = vec![10, 11, 12, 13];
        let old = ring.keys.clone();
        renumber(&mut ring);
        assert_eq!(ring.epoch, 1);
        assert!(ring.keys.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(ring.keys, old);
        let mut local = Local {
            view: Arc::new(Published {
                generation: 0,
                value: Ring {
                    peers: ring.peers.clone(),
                    keys: old,
                    head: 0,
                    epoch: 0,
                },
            }),
            cursor: 2,
        };
        local.sync(Arc::new(Published {
            generation: 1,
            value: ring,
        }));
        assert_eq!(local.cursor, 2, "same relative place after a renumbering");
    }
}
