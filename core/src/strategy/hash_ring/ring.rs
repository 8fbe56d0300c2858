//! One published ring: its sorted points and owners, how it is built from scratch, and how
//! it is rebuilt from the previous ring when members change.

use super::HashMode;
use crate::peer::PeerRef;

/// One published ring.
pub(crate) struct Ring {
    /// The peers on the ring (in the order they were added; owners index into it).
    pub(crate) peers: Vec<PeerRef>,
    /// Vnodes per peer (parallel to `peers`).
    pub(super) vnodes: Vec<u32>,
    /// Sorted, distinct ring points, and each point's owner (index into `peers`).
    pub(super) points: Vec<u64>,
    pub(super) owners: Vec<u32>,
    /// `buckets[b]` = index of the first point whose top bits are `>= b`.
    pub(super) buckets: Vec<u32>,
    pub(super) shift: u32,
    pub(super) total_weight: u64,
    /// Indexes into `peers` in id order (the round-robin fallback's order).
    pub(super) by_id: Vec<u32>,
}

impl Ring {
    pub(super) fn empty() -> Ring {
        Ring::new(Vec::new(), Vec::new(), Vec::new())
    }

    /// A ring from `pairs` sorted by point (duplicates allowed; the greater id wins).
    pub(super) fn new(peers: Vec<PeerRef>, vnodes: Vec<u32>, pairs: Vec<(u64, u32)>) -> Ring {
        let mut points = Vec::with_capacity(pairs.len());
        let mut owners: Vec<u32> = Vec::with_capacity(pairs.len());
        for (h, o) in pairs {
            if points.last() == Some(&h) {
                let last = owners.last_mut().unwrap();
                if peers[o as usize].id().as_str().as_bytes()
                    > peers[*last as usize].id().as_str().as_bytes()
                {
                    *last = o;
                }
            } else {
                points.push(h);
                owners.push(o);
            }
        }
        let bits = (points.len().max(2).next_power_of_two().trailing_zeros()).clamp(1, 20);
        let shift = 64 - bits;
        let nb = 1usize << bits;
        let mut buckets = Vec::with_capacity(nb + 1);
        let mut i = 0usize;
        for b in 0..=nb {
            while i < points.len() && ((points[i] >> shift) as usize) < b {
                i += 1;
            }
            buckets.push(i as u32);
        }
        let total_weight = peers.iter().map(|p| p.weight() as u64).sum();
        let mut by_id: Vec<u32> = (0..peers.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| {
            peers[a as usize]
                .id()
                .as_str()
                .cmp(peers[b as usize].id().as_str())
        });
        Ring {
            by_id,
            peers,
            vnodes,
            points,
            owners,
            buckets,
            shift,
            total_weight,
        }
    }

    /// Index of the first point `> h`, wrapping to 0. The ring must not be empty.
    #[inline]
    pub(super) fn find(&self, h: u64) -> usize {
        let b = (h >> self.shift) as usize;
        let lo = self.buckets[b] as usize;
        let hi = self.buckets[b + 1] as usize;
        let i = lo + self.points[lo..hi].partition_point(|&p| p <= h);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    /// The (point, owner) pairs, sorted.
    pub(super) fn pairs(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.points.iter().copied().zip(self.owners.iter().copied())
    }
}

/// Vnodes of each peer (ketama's `vnodes * n * w / W`; at least 1 in fast mode).
fn vnode_counts(mode: HashMode, vnodes: u32, peers: &[PeerRef]) -> Vec<u32> {
    let n = peers.len() as u64;
    let total: u64 = peers.iter().map(|p| p.weight() as u64).sum();
    peers
        .iter()
        .map(|p| {
            let k = (vnodes as u64 * n * p.weight() as u64) / total.max(1);
            let k = k.min(u32::MAX as u64) as u32;
            match mode {
                HashMode::Ketama => k,
                HashMode::Fast => k.max(1),
            }
        })
        .collect()
}

/// Sorts ring points by hash. Ties keep any order (`Ring::new` settles them by id). Hashes
/// are uniform, so a least-significant-digit radix sort (six 11-bit passes) is several
/// times cheaper than a comparison sort for the 160 points per peer a ring holds.
pub(super) fn sort_points(pairs: &mut Vec<(u64, u32)>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if pairs.len() < 4096 {
        pairs.sort_unstable_by_key(|p| p.0);
        return;
    }
    let mut src = std::mem::take(pairs);
    let mut dst = src.clone();
    for pass in 0..64u32.div_ceil(BITS) {
        let shift = pass * BITS;
        let digit = |h: u64| ((h >> shift) as usize) & (BUCKETS - 1);
        let mut starts = vec![0usize; BUCKETS];
        for &(h, _) in &src {
            starts[digit(h)] += 1;
        }
        if starts.contains(&src.len()) {
            continue; // every point has the same digit here
        }
        let mut sum = 0;
        for n in &mut starts {
            let count = *n;
            *n = sum;
            sum += count;
        }
        for &p in &src {
            let d = digit(p.0);
            dst[starts[d]] = p;
            starts[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    *pairs = src;
}

/// Merges two sorted pair lists.
fn merge(a: impl Iterator<Item = (u64, u32)>, b: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    let mut out = Vec::with_capacity(b.len());
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(&y) = b.peek() {
            if y.0 < x.0 {
                out.push(y);
                b.next();
            } else {
                break;
            }
        }
        out.push(x);
    }
    out.extend(b);
    out
}

/// The ring building blocks shared with tests: builds a ring for `peers` from scratch.
pub(super) fn build(mode: HashMode, vnodes: u32, peers: Vec<PeerRef>) -> Ring {
    let counts = vnode_counts(mode, vnodes, &peers);
    let mut pairs = Vec::with_capacity(counts.iter().map(|&k| k as usize * 4).sum());
    for (i, (p, &k)) in peers.iter().zip(&counts).enumerate() {
        mode.points(p.id().as_str(), k, i as u32, &mut pairs);
    }
    sort_points(&mut pairs);
    Ring::new(peers, counts, pairs)
}

/// Builds the ring for `peers`, reusing `old` when only some peers came or went and the
/// others keep their vnode counts (merging and filtering points: O(points)); otherwise
/// from scratch (O(points · log points), hashing every vnode).
pub(super) fn rebuild(mode: HashMode, vnodes: u32, old: &Ring, peers: Vec<PeerRef>) -> Ring {
    let counts = vnode_counts(mode, vnodes, &peers);
    // Where each old peer went (u32::MAX = gone); new peers are the ones not found.
    let mut remap = vec![u32::MAX; old.peers.len()];
    let mut fresh = Vec::new();
    let index: std::collections::HashMap<*const crate::Peer, usize> = old
        .peers
        .iter()
        .enumerate()
        .map(|(j, q)| (&**q as *const crate::Peer, j))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        match index.get(&(&**p as *const crate::Peer)) {
            Some(&j) => remap[j] = i as u32,
            None => fresh.push(i),
        }
    }
    let per_vnode = if mode == HashMode::Ketama { 4 } else { 1 };
    let had_tie =
        old.points.len() != old.vnodes.iter().map(|&k| k as usize).sum::<usize>() * per_vnode;
    let removed_any = remap.contains(&u32::MAX);
    let same_counts = remap
        .iter()
        .enumerate()
        .all(|(j, &r)| r == u32::MAX || counts[r as usize] == old.vnodes[j]);
    let incremental = same_counts && !(had_tie && removed_any) && old.peers.len() > fresh.len();
    if !incremental {
        return build(mode, vnodes, peers);
    }
    let mut mine = Vec::new();
    for &i in &fresh {
        mode.points(peers[i].id().as_str(), counts[i], i as u32, &mut mine);
    }
    sort_points(&mut mine);
    let kept = old.pairs().filter_map(|(h, o)| {
        let r = remap[o as usize];
        (r != u32::MAX).then_some((h, r))
    });
    let pairs = merge(kept, mine);
    Ring::new(peers, counts, pairs)
}
