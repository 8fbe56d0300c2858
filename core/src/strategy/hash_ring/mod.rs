//! `hash-ring`: consistent hashing of the request's shard key onto a ring of peers.
//!
//! Each available peer owns points on a 64-bit ring; a key goes to the owner of the first
//! point *strictly after* the key's hash, wrapping around to the first point. Requests
//! **without a shard key fall back to round-robin** over the available peers (in id
//! order, one cursor shared by all threads).
//!
//! # Modes
//!
//! * **`ketama`** (default) — the libmemcached/ketama continuum, key for key the same
//!   mapping as Python's `uhashring` (`hash_fn="ketama"`) and npm's `hashring` (default
//!   options), so peerlb clients in any language agree with existing ketama clients:
//!   * peer `p` of weight `w` among `n` peers of total weight `W` gets
//!     `k = vnodes * n * w / W` digests (integer division, `vnodes` = 40 by default);
//!   * digest `i` is `MD5("<peer id>-<i>")`; its 16 bytes give 4 points, each a
//!     little-endian `u32` (bytes 0–3, 4–7, 8–11, 12–15);
//!   * a key's hash is the little-endian `u32` of the first 4 bytes of `MD5(key)`, with
//!     the key taken as raw bytes (`uhashring` hashes `str(key)` as UTF-8, so compare
//!     with text keys);
//!   * lookup takes the first point `> hash` (Python's `bisect_right`), wrapping to the
//!     first point; two peers with the same point: the greater id (byte order) owns it
//!     (what `uhashring` does when peers are added in id order).
//!
//!   The `tests/vectors/` files check this against both packages on 10 000 keys for 3, 10
//!   and 100 peers, with and without weights.
//! * **`fast`** — no compatibility: points are `xxh3_64(peer id, seed = i)` and a key's
//!   hash is `xxh3_64(key)`, one point per vnode (160 vnodes by default, so about as many
//!   points as ketama). xxh3 is several times cheaper than MD5 for short keys and uses the
//!   whole 64-bit ring, so lookups are faster; choose it when no other client needs to
//!   agree with you.
//!
//! # Availability and movement
//!
//! The ring holds only the peers the list offers (the available ones), so an unavailable
//! peer is never returned: while it is away its keys go to the next peer on the ring, and
//! they come back when it returns; no other key moves (with equal weights; with unequal
//! weights the `k` formula above is re-evaluated and rounding may move a few more points,
//! exactly as in `uhashring`). Adding or removing one of `n` peers moves about `1/n` of the
//! keys.
//!
//! # Bounded load
//!
//! With `bounded_load(c)` (Mirrokni, Thorup, Zadimoghaddam, *Consistent Hashing with
//! Bounded Loads*, 2018; HAProxy's `hash-balance-factor` = `100 c`), a peer is skipped while
//! it is "full", and the walk continues onward around the ring. Peer `p` (weight `w`) may
//! take the request when
//!
//! ```text
//! pending(p) + 1 <= ceil(c * (P + 1) * w / W)
//! ```
//!
//! where `P` is the total pending count over the available peers (so `P + 1` counts the new
//! request) and `W` their total weight: with equal weights, no peer gets more than
//! `ceil(c × average load)`, the paper's per-bin capacity. (HAProxy's
//! `chash_server_is_eligible` instead rounds the *total* `ceil(c · (P + 1))` up once and
//! splits it among servers by weight, never below 1, so its caps can be one lower than
//! ours.) Since the caps add up to at least `P + 1`, some peer always qualifies (if the walk
//! finds none, because counts moved under it, the key's owner is used). The total `P` is
//! kept from the list's pending-count notifications, so it may lag by a request or two
//! under concurrency. `c` must be at least 1; 1.25 is the paper's usual choice (HAProxy
//! `hash-balance-factor 125`).
//!
//! # Concurrency and cost
//!
//! `add`/`remove` only record the change (O(peers)); the list then ends the batch
//! ([`Strategy::batch_end`]: after an update, a start or stop, a status report) and the
//! ring is rebuilt there, once, and published through arc-swap, so no `choose` pays for
//! it. A burst of changes — such as starting a list of 1000 peers, which adds them one by
//! one — thus costs one build, not one per peer. A `choose` that still finds the ring
//! stale (it raced with a batch in progress, or the strategy is used without a list)
//! rebuilds it itself, under the strategy's own small mutex, so concurrent choosers wait
//! for that one rebuild. A rebuild merges or filters the changed peers' points
//! (O(points)), or starts from scratch when weights change other peers' point counts
//! (O(points · log points)). Every other `choose` takes no lock: one version check, one
//! hash, one bucket-index lookup (a table of ring offsets by the hash's top bits) and a
//! short search within the bucket.
//!
//! # Naming
//!
//! `"hash-ring"`, `"hash-ring:ketama"`, `"hash-ring:fast"`, with optional
//! `?vnodes=N&bounded=C`, e.g. `"hash-ring:fast?bounded=1.25"` (see
//! [`StrategyConfig`](super::StrategyConfig)).
//!
//! ```
//! use peerlb::{ListOptions, PeerList, Request};
//! let list = PeerList::new(ListOptions::default().strategy_name("hash-ring").unwrap()).unwrap();
//! list.update(["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let a = list.choose(&Request::new().with_shard_key(b"user-42")).unwrap().peer().to_string();
//! let b = list.choose(&Request::new().with_shard_key(b"user-42")).unwrap().peer().to_string();
//! assert_eq!(a, b); // the same key always maps to the same peer
//! ```

mod options;
mod ring;

pub use options::{HashMode, HashRingOptions, MAX_BOUNDED_LOAD, MAX_VNODES};

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use super::snapshot::{BuildCounter, Changes, Publisher};
use super::Strategy;
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;
use ring::{rebuild, Ring};

/// The `hash-ring` strategy (see the [module docs](self)).
///
/// ```
/// use peerlb::strategy::hash_ring::{HashRing, HashRingOptions};
/// use peerlb::{Peer, PeerId, Request, Strategy};
/// let ring = HashRing::new(HashRingOptions::default());
/// for id in ["a", "b", "c"] {
///     ring.add(&Peer::detached(PeerId::new(id).unwrap(), 1));
/// }
/// let pick = ring.choose(&Request::new().with_shard_key(b"k")).unwrap();
/// assert!(["a", "b", "c"].contains(&pick.peer().id().as_str()));
/// ```
pub struct HashRing {
    options: HashRingOptions,
    /// The published ring; its `peers` are the members, in the order they came.
    ring: Publisher<Ring>,
    /// Round-robin cursor for requests without a key.
    cursor: AtomicUsize,
    /// Sum of the pending counts each ring peer last reported (bounded loads only; each
    /// peer's last report sits in its strategy slot).
    total_pending: AtomicI64,
    /// How many rings were built (tests check when that happens).
    rebuilds: BuildCounter,
}

const UNSET: usize = usize::MAX;

impl HashRing {
    /// An empty ring with these options.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::{HashRing, HashRingOptions};
    /// use peerlb::{Request, Strategy};
    /// let ring = HashRing::new(HashRingOptions::fast());
    /// assert!(ring.choose(&Request::new().with_shard_key(b"k")).is_none());
    /// ```
    pub fn new(options: HashRingOptions) -> HashRing {
        HashRing {
            options,
            ring: Publisher::new(Ring::empty()),
            cursor: AtomicUsize::new(0),
            total_pending: AtomicI64::new(0),
            rebuilds: BuildCounter::default(),
        }
    }

    /// The options it was built with.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::{HashRing, HashRingOptions};
    /// assert_eq!(HashRing::new(HashRingOptions::fast()).options(), &HashRingOptions::fast());
    /// ```
    pub fn options(&self) -> &HashRingOptions {
        &self.options
    }

    /// The id of the peer `key` maps to, ignoring loads (`None` when the ring is empty).
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::{HashRing, HashRingOptions};
    /// use peerlb::{Peer, PeerId, Strategy};
    /// let ring = HashRing::new(HashRingOptions::default());
    /// ring.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
    /// assert_eq!(ring.owner(b"anything").unwrap().as_str(), "a");
    /// ```
    pub fn owner(&self, key: &[u8]) -> Option<crate::PeerId> {
        let ring = self.ring.peek();
        if ring.points.is_empty() {
            return None;
        }
        let i = ring.find(self.options.mode.key_hash(key));
        Some(ring.peers[ring.owners[i] as usize].id().clone())
    }

    /// The next ring: the current peers without `changes.removed`, then `changes.added`.
    fn next_ring(&self, old: &Ring, changes: Changes) -> Ring {
        let mut peers = Vec::with_capacity(old.peers.len() + changes.added.len());
        if changes.removed.is_empty() {
            peers.extend_from_slice(&old.peers);
        } else {
            let gone = changes.removed_set();
            peers.extend(
                old.peers
                    .iter()
                    .filter(|p| !gone.contains(&(&***p as *const crate::Peer)))
                    .cloned(),
            );
        }
        peers.extend(changes.added);
        self.rebuilds.bump();
        rebuild(
            self.options.mode,
            self.options.vnodes_per_peer(),
            old,
            peers,
        )
    }

    /// How many times the ring was rebuilt so far.
    #[cfg(test)]
    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds.get()
    }

    /// Round-robin over the ring's peers in id order.
    fn round_robin(&self, ring: &Ring) -> Option<InFlight> {
        let n = ring.peers.len();
        if n == 0 {
            return None;
        }
        let k = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        Some(ring.peers[ring.by_id[k] as usize].start_request())
    }

    #[inline]
    fn choose_in(&self, ring: &Ring, request: &Request<'_>) -> Option<InFlight> {
        let Some(key) = request.shard_key() else {
            return self.round_robin(ring);
        };
        if ring.points.is_empty() {
            return None;
        }
        let i = ring.find(self.options.mode.key_hash(key));
        match self.options.bounded_load {
            None => Some(ring.peers[ring.owners[i] as usize].start_request()),
            Some(c) => Some(self.choose_bounded(ring, i, c)),
        }
    }

    #[cold]
    fn choose_bounded(&self, ring: &Ring, start: usize, c: f64) -> InFlight {
        let total = self.total_pending.load(Ordering::Relaxed).max(0) as f64;
        let w_total = ring.total_weight.max(1) as f64;
        let len = ring.points.len();
        let mut i = start;
        for _ in 0..len {
            let p = &ring.peers[ring.owners[i] as usize];
            let cap = (c * (total + 1.0) * p.weight() as f64 / w_total).ceil();
            if (p.pending() + 1) as f64 <= cap {
                return p.start_request();
            }
            i = if i + 1 == len { 0 } else { i + 1 };
        }
        ring.peers[ring.owners[start] as usize].start_request()
    }
}

impl Strategy for HashRing {
    fn name(&self) -> &str {
        "hash-ring"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        if self.options.bounded_load.is_some() {
            for peer in removed {
                let last = peer.strategy_slot().swap(UNSET, Ordering::Relaxed);
                if last != UNSET {
                    self.total_pending.fetch_sub(last as i64, Ordering::Relaxed);
                }
            }
            for peer in added {
                let now = peer.pending();
                peer.strategy_slot().store(now, Ordering::Relaxed);
                self.total_pending.fetch_add(now as i64, Ordering::Relaxed);
            }
        }
        self.ring.stage(added, removed);
    }

    #[inline]
    fn choose(&self, request: &Request<'_>) -> Option<InFlight> {
        self.choose_in(&self.ring.peek(), request)
    }

    /// Builds and publishes the ring if the batch changed it.
    fn batch_end(&self) {
        self.ring
            .publish_staged(|old, changes| self.next_ring(old, changes));
    }

    fn wants_pending_updates(&self) -> bool {
        self.options.bounded_load.is_some()
    }

    fn pending_changed(&self, peer: &PeerRef) {
        let slot = peer.strategy_slot();
        let mut last = slot.load(Ordering::Relaxed);
        loop {
            if last == UNSET {
                return; // not on the ring
            }
            let now = peer.pending();
            match slot.compare_exchange_weak(last, now, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    self.total_pending
                        .fetch_add(now as i64 - last as i64, Ordering::Relaxed);
                    return;
                }
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ring::{build, sort_points};
    use super::*;
    use crate::strategy::test_support::peers;
    use crate::{Peer, PeerId};

    fn owner_of(r: &HashRing, key: &str) -> String {
        r.owner(key.as_bytes()).unwrap().to_string()
    }

    fn ring_of(options: HashRingOptions, ids: &[&str]) -> (HashRing, Vec<PeerRef>) {
        let r = HashRing::new(options);
        let ps = peers(ids);
        for p in &ps {
            r.add(p);
        }
        (r, ps)
    }

    #[test]
    fn ketama_hash_matches_libketama() {
        // MD5("foo") = acbd18db 4cc2f85c edef654f ccc4a4d8
        assert_eq!(HashMode::Ketama.key_hash(b"foo") >> 32, 0xdb18_bdac);
    }

    #[test]
    fn incremental_and_full_builds_agree() {
        for mode in [HashMode::Ketama, HashMode::Fast] {
            for weighted in [false, true] {
                let ps: Vec<PeerRef> = (0..20)
                    .map(|i| {
                        let w = if weighted { 1 + i % 3 } else { 1 };
                        Peer::detached(PeerId::new(format!("10.0.0.{i}:80")).unwrap(), w)
                    })
                    .collect();
                let options = match mode {
                    HashMode::Ketama => HashRingOptions::ketama(),
                    HashMode::Fast => HashRingOptions::fast(),
                };
                let r = HashRing::new(options);
                for p in &ps[..19] {
                    r.add(p);
                }
                // Each change is its own batch, so each one takes the incremental path.
                r.remove(&ps[3]);
                r.add(&ps[19]);
                r.remove(&ps[19]);
                r.add(&ps[3]);
                r.update(&[], &[ps[3].clone(), ps[7].clone()]);
                r.batch_end();
                let mut rest = ps[..19].to_vec();
                rest.remove(7);
                rest.remove(3);
                let full = build(mode, mode.default_vnodes(), rest);
                let inc = r.ring.peek();
                let a: Vec<(u64, String)> = inc
                    .pairs()
                    .map(|(h, o)| (h, inc.peers[o as usize].id().to_string()))
                    .collect();
                let b: Vec<(u64, String)> = full
                    .pairs()
                    .map(|(h, o)| (h, full.peers[o as usize].id().to_string()))
                    .collect();
                assert_eq!(a, b, "{mode:?} weighted={weighted}");
            }
        }
    }

    #[test]
    fn unavailable_owner_moves_to_next_peer_and_back() {
        let (r, ps) = ring_of(HashRingOptions::default(), &["a", "b", "c", "d"]);
        let keys: Vec<String> = (0..2000).map(|i| format!("key-{i}")).collect();
        let before: Vec<String> = keys.iter().map(|k| owner_of(&r, k)).collect();
        r.remove(&ps[1]);
        for (k, was) in keys.iter().zip(&before) {
            let now = owner_of(&r, k);
            assert_ne!(now, "b");
            if was != "b" {
                assert_eq!(&now, was, "{k} moved although its owner stayed");
            }
        }
        r.add(&ps[1]);
        let after: Vec<String> = keys.iter().map(|k| owner_of(&r, k)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn no_key_is_round_robin_in_id_order() {
        let (r, ps) = ring_of(HashRingOptions::default(), &["c", "a", "b"]);
        let got: Vec<String> = (0..6)
            .map(|_| r.choose(&Request::new()).unwrap().peer().id().to_string())
            .collect();
        assert_eq!(got, ["a", "b", "c", "a", "b", "c"]);
        for p in &ps {
            r.remove(p);
        }
        assert!(r.choose(&Request::new()).is_none());
        assert!(r.choose(&Request::new().with_shard_key(b"x")).is_none());
    }

    #[test]
    fn bounded_load_skips_a_full_peer() {
        let (r, ps) = ring_of(
            HashRingOptions::default().bounded_load(1.25).unwrap(),
            &["a", "b", "c"],
        );
        let key = b"some-key";
        let owner = r.owner(key).unwrap().to_string();
        // Hold many requests on the owner; the strategy hears of each.
        let mut held = Vec::new();
        let first = r.choose(&Request::new().with_shard_key(key)).unwrap();
        assert_eq!(first.peer().id().as_str(), owner);
        r.pending_changed(&first.peer_ref());
        held.push(first);
        // total = 1, n = 3: cap = ceil(1.25 * 2 / 3) = 1, owner has 1 pending -> skipped.
        let second = r.choose(&Request::new().with_shard_key(key)).unwrap();
        assert_ne!(second.peer().id().as_str(), owner);
        r.pending_changed(&second.peer_ref());
        held.push(second);
        drop(held);
        for p in &ps {
            r.pending_changed(p);
        }
        assert_eq!(r.total_pending.load(Ordering::Relaxed), 0);
        let third = r.choose(&Request::new().with_shard_key(key)).unwrap();
        assert_eq!(third.peer().id().as_str(), owner);
    }

    #[test]
    fn bounded_load_caps_every_peer() {
        let (r, _ps) = ring_of(
            HashRingOptions::fast().bounded_load(1.25).unwrap(),
            &["a", "b", "c", "d"],
        );
        let mut held = Vec::new();
        for i in 0..400 {
            // Skewed keys: most map to few peers.
            let key = format!("hot-{}", i % 3);
            let c = r
                .choose(&Request::new().with_shard_key(key.as_bytes()))
                .unwrap();
            r.pending_changed(&c.peer_ref());
            held.push(c);
        }
        let mut counts = std::collections::BTreeMap::new();
        for c in &held {
            *counts.entry(c.peer().id().to_string()).or_insert(0usize) += 1;
        }
        // ceil(1.25 * 400 / 4) = 125
        assert!(counts.values().all(|&n| n <= 125), "{counts:?}");
    }

    #[test]
    fn weights_scale_points() {
        let r = HashRing::new(HashRingOptions::default());
        r.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
        r.add(&Peer::detached(PeerId::new("b").unwrap(), 3));
        let ring = r.ring.peek();
        // uhashring: k = 40 * 2 * w / 4 -> 20 and 60 digests
        assert_eq!(ring.vnodes, [20, 60]);
        assert_eq!(ring.points.len(), 320);
    }

    fn moved_fraction(options: HashRingOptions, n: usize) -> (f64, f64) {
        let ids: Vec<String> = (0..=n).map(|i| format!("peer-{i}")).collect();
        let idr: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (r, ps) = ring_of(options, &idr[..n]);
        let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
        let before: Vec<String> = keys.iter().map(|k| owner_of(&r, k)).collect();
        let extra = Peer::detached(PeerId::new(ids[n].as_str()).unwrap(), 1);
        r.add(&extra);
        let added: Vec<String> = keys.iter().map(|k| owner_of(&r, k)).collect();
        r.remove(&extra);
        r.remove(&ps[0]);
        let removed: Vec<String> = keys.iter().map(|k| owner_of(&r, k)).collect();
        let frac = |a: &[String], b: &[String]| {
            a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / keys.len() as f64
        };
        (frac(&before, &added), frac(&before, &removed))
    }

    #[test]
    fn one_peer_change_moves_about_one_nth() {
        for options in [HashRingOptions::ketama(), HashRingOptions::fast()] {
            for n in [5usize, 20] {
                let (add, rem) = moved_fraction(options, n);
                let ideal_add = 1.0 / (n + 1) as f64;
                let ideal_rem = 1.0 / n as f64;
                assert!(
                    add < ideal_add * 1.6 && add > ideal_add * 0.4,
                    "{n} add {add}"
                );
                assert!(
                    rem < ideal_rem * 1.6 && rem > ideal_rem * 0.4,
                    "{n} rem {rem}"
                );
            }
        }
    }

    #[test]
    fn list_batches_rebuild_the_ring_once_and_choose_never_does() {
        let s = std::sync::Arc::new(HashRing::new(HashRingOptions::default()));
        let counter = s.clone();
        crate::strategy::test_support::rebuilds_once_per_batch(s, &|| counter.rebuilds());
    }

    #[test]
    fn radix_sorted_points_match_a_comparison_sort() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for len in [0, 5, 4095, 4096, 50_000] {
            let mut pairs: Vec<(u64, u32)> = (0..len).map(|i| (next(), i as u32)).collect();
            let ties: Vec<(u64, u32)> = (0..len / 10).map(|i| (pairs[i].0, 7)).collect();
            pairs.extend(ties);
            let mut want = pairs.clone();
            want.sort_unstable();
            sort_points(&mut pairs);
            let keys = |v: &[(u64, u32)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(keys(&pairs), keys(&want), "{len}");
            pairs.sort_unstable();
            assert_eq!(pairs, want, "{len}: same points");
        }
    }
}
