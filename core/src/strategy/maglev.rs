//! `maglev`: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016), a lookup
//! table indexed by the shard key's hash.
//!
//! Each available peer gets a permutation of the table's slots from two hashes of its id,
//! `offset = h1(id) mod M` and `skip = h2(id) mod (M − 1) + 1` (slot `j` of the
//! permutation is `(offset + j·skip) mod M`; `M` prime makes it a full permutation). The
//! peers then take turns claiming their next still-free preferred slot until the table is
//! full; a peer of weight `w` takes `w / max weight` turns per round. Peers take turns in id
//! order, so every client with the same peer set builds the same table.
//!
//! * **Lookup** is O(1): `xxh3_64(key)` scaled onto `0..M` picks a slot. Requests **without
//!   a shard key fall back to round-robin** over the available peers (in id order).
//! * **Balance**: with equal weights each peer owns `⌊M/n⌋` or `⌈M/n⌉` slots.
//! * **Disruption**: the table holds only available peers; when one of `n` peers leaves
//!   (or comes back), its slots — about `1/n` of the keys — move, plus some of others'
//!   (the paper's trade-off for near-perfect balance). Measured on 100 000 keys with
//!   `M = 65537` (`cargo run --release -p peerlb --example hash_lookup`): removing one of
//!   10 / 100 / 1000 peers moved 10.4% / 1.6% / 0.75% of the keys (ideal 10% / 1% / 0.1%);
//!   `hash-ring` moves close to the ideal. An unavailable peer is never returned.
//! * **Cost**: [`Strategy::update`] only records the change; when the list ends the batch
//!   ([`Strategy::batch_end`]: after an update, a start or stop, a status report) the
//!   table is rebuilt once (O(M log M) work: about 5 ms at the default size, 0.1–0.2 s at
//!   the largest; a burst of changes such as starting a list of 1000 peers costs one build)
//!   and published through arc-swap, so no `choose` pays for it and none takes a lock.
//!   Memory: 4 bytes per slot. The rebuild is not incremental, which is why the table size
//!   is capped.
//!
//! The table size `M` must be a prime in `3..=1048573` (default 65537), and should be well
//! above 100 × the number of peers for 1% balance (so up to about 10 000 peers at the
//! largest size; with more peers than slots, some peers own no slot).
//!
//! # Naming
//! `"maglev"` or `"maglev?table=M"` (see [`StrategyConfig`](super::StrategyConfig)).
//!
//! ```
//! use peerlb::{ListOptions, PeerList, Request};
//! let list = PeerList::new(ListOptions::default().strategy_name("maglev?table=251").unwrap()).unwrap();
//! list.update(["a", "b", "c"], None::<&str>).unwrap();
//! list.start().unwrap();
//! let a = list.choose(&Request::new().with_shard_key(b"user-42")).unwrap().peer().to_string();
//! let b = list.choose(&Request::new().with_shard_key(b"user-42")).unwrap().peer().to_string();
//! assert_eq!(a, b);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::snapshot::{BuildCounter, Changes, Publisher};
use super::Strategy;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;
use crate::spec::{parse_int, unknown_key, SpecOptions};

/// The default table size (a prime).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;
/// The largest accepted table size (the largest prime below 2^20): a rebuild costs
/// O(M log M), about 0.1–0.2 s at this size, on every change of the peer set.
pub const MAX_TABLE_SIZE: u32 = 1_048_573;

/// Options of the `maglev` strategy.
///
/// ```
/// use peerlb::strategy::maglev::MaglevOptions;
/// let o = MaglevOptions::default().table_size(251).unwrap();
/// assert_eq!(o.table(), 251);
/// assert_eq!(o.to_string(), "maglev?table=251");
/// assert_eq!("maglev?table=251".parse::<MaglevOptions>().unwrap(), o);
/// assert!(MaglevOptions::default().table_size(1000).is_err()); // not prime
/// ```
///
/// Spec keys (see [`SpecOptions`]): `maglev?table=N`, a prime in 3..=[`MAX_TABLE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaglevOptions {
    table: u32,
}

impl Default for MaglevOptions {
    fn default() -> Self {
        MaglevOptions {
            table: DEFAULT_TABLE_SIZE,
        }
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while (d as u64) * (d as u64) <= n as u64 {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

impl MaglevOptions {
    /// Sets the table size: a prime in `3..=1048573`, else `invalid-argument`.
    ///
    /// ```
    /// use peerlb::strategy::maglev::MaglevOptions;
    /// assert!(MaglevOptions::default().table_size(65537).is_ok());
    /// assert!(MaglevOptions::default().table_size(2).is_err());
    /// ```
    pub fn table_size(mut self, size: u32) -> Result<MaglevOptions> {
        if !(3..=MAX_TABLE_SIZE).contains(&size) || !is_prime(size) {
            return Err(Error::InvalidArgument(format!(
                "maglev table size must be a prime in 3..={MAX_TABLE_SIZE}, got {size}"
            )));
        }
        self.table = size;
        Ok(self)
    }

    /// The table size.
    ///
    /// ```
    /// assert_eq!(peerlb::strategy::maglev::MaglevOptions::default().table(), 65537);
    /// ```
    pub fn table(&self) -> u32 {
        self.table
    }
}

impl SpecOptions for MaglevOptions {
    const KIND: &'static str = "strategy";
    const NAME: &'static str = "maglev";

    /// `table` (a prime in 3..=[`MAX_TABLE_SIZE`]).
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        *self = match key {
            "table" => self.table_size(parse_int(key, value, 3..=MAX_TABLE_SIZE)?)?,
            _ => return Err(unknown_key(Self::NAME, key, &["table"])),
        };
        Ok(())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        if self.table == DEFAULT_TABLE_SIZE {
            Vec::new()
        } else {
            vec![("table", self.table.to_string())]
        }
    }
}

impl fmt::Display for MaglevOptions {
    /// The canonical spec, e.g. `maglev?table=251` (see [`SpecOptions::to_spec`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl std::str::FromStr for MaglevOptions {
    type Err = Error;
    /// Parses `maglev[?table=N]` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<MaglevOptions> {
        MaglevOptions::from_spec(s)
    }
}

struct Table {
    /// Peers in id order; slots index into it.
    peers: Vec<PeerRef>,
    slots: Vec<u32>,
}

/// Builds the lookup table for `peers` (sorted by id).
fn populate(peers: &[PeerRef], m: u32) -> Vec<u32> {
    let n = peers.len();
    if n == 0 {
        return Vec::new();
    }
    let m64 = m as u64;
    let (offsets, skips): (Vec<u64>, Vec<u64>) = peers
        .iter()
        .map(|p| {
            let id = p.id().as_str().as_bytes();
            let h1 = xxhash_rust::xxh3::xxh3_64_with_seed(id, 0x6d61_676c);
            let h2 = xxhash_rust::xxh3::xxh3_64_with_seed(id, 0x736b_6970);
            (h1 % m64, h2 % (m64 - 1) + 1)
        })
        .unzip();
    let max_w = peers.iter().map(|p| p.weight()).max().unwrap_or(1) as f64;
    let share: Vec<f64> = peers.iter().map(|p| p.weight() as f64 / max_w).collect();
    let mut credit = vec![0.0f64; n];
    let mut next = vec![0u64; n];
    let mut slots = vec![u32::MAX; m as usize];
    let mut filled = 0usize;
    loop {
        for i in 0..n {
            credit[i] += share[i];
            while credit[i] >= 1.0 {
                credit[i] -= 1.0;
                loop {
                    let c = ((offsets[i] + next[i] * skips[i]) % m64) as usize;
                    next[i] += 1;
                    if slots[c] == u32::MAX {
                        slots[c] = i as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == m as usize {
                    return slots;
                }
            }
        }
    }
}

/// The `maglev` strategy (see the [module docs](self)).
///
/// ```
/// use peerlb::strategy::maglev::{Maglev, MaglevOptions};
/// use peerlb::{Peer, PeerId, Request, Strategy};
/// let m = Maglev::new(MaglevOptions::default());
/// m.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
/// assert_eq!(m.choose(&Request::new().with_shard_key(b"k")).unwrap().peer().id().as_str(), "a");
/// ```
pub struct Maglev {
    options: MaglevOptions,
    /// The published table; its `peers` are the members, in id order.
    table: Publisher<Table>,
    cursor: AtomicUsize,
    /// How many tables were built (tests check when that happens).
    rebuilds: BuildCounter,
}

impl Maglev {
    /// An empty table with these options.
    ///
    /// ```
    /// use peerlb::strategy::maglev::{Maglev, MaglevOptions};
    /// use peerlb::{Request, Strategy};
    /// assert!(Maglev::new(MaglevOptions::default()).choose(&Request::new()).is_none());
    /// ```
    pub fn new(options: MaglevOptions) -> Maglev {
        Maglev {
            options,
            table: Publisher::new(Table {
                peers: Vec::new(),
                slots: Vec::new(),
            }),
            cursor: AtomicUsize::new(0),
            rebuilds: BuildCounter::default(),
        }
    }

    /// The options it was built with.
    ///
    /// ```
    /// use peerlb::strategy::maglev::{Maglev, MaglevOptions};
    /// assert_eq!(Maglev::new(MaglevOptions::default()).options().table(), 65537);
    /// ```
    pub fn options(&self) -> &MaglevOptions {
        &self.options
    }

    /// The id of the peer `key` maps to (`None` when the table is empty).
    ///
    /// ```
    /// use peerlb::strategy::maglev::{Maglev, MaglevOptions};
    /// use peerlb::{Peer, PeerId, Strategy};
    /// let m = Maglev::new(MaglevOptions::default());
    /// m.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
    /// assert_eq!(m.owner(b"x").unwrap().as_str(), "a");
    /// ```
    pub fn owner(&self, key: &[u8]) -> Option<crate::PeerId> {
        let t = self.table.peek();
        let i = self.slot(key);
        t.slots.get(i).map(|&o| t.peers[o as usize].id().clone())
    }

    /// How many table slots each peer owns, by id (for balance checks and introspection).
    ///
    /// ```
    /// use peerlb::strategy::maglev::{Maglev, MaglevOptions};
    /// use peerlb::{Peer, PeerId, Strategy};
    /// let m = Maglev::new(MaglevOptions::default().table_size(7).unwrap());
    /// m.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
    /// m.add(&Peer::detached(PeerId::new("b").unwrap(), 1));
    /// let counts = m.slot_counts();
    /// assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 7);
    /// ```
    pub fn slot_counts(&self) -> Vec<(String, usize)> {
        let t = self.table.peek();
        let mut counts = vec![0usize; t.peers.len()];
        for &o in &t.slots {
            counts[o as usize] += 1;
        }
        t.peers
            .iter()
            .map(|p| p.id().to_string())
            .zip(counts)
            .collect()
    }

    #[inline]
    fn slot(&self, key: &[u8]) -> usize {
        let h = xxhash_rust::xxh3::xxh3_64(key);
        ((h as u128 * self.options.table as u128) >> 64) as usize
    }

    /// The next table: the current peers without `changes.removed`, merged with
    /// `changes.added` in id order.
    fn next_table(&self, old: &Table, changes: Changes) -> Table {
        let gone = changes.removed_set();
        let mut added = changes.added;
        added.sort_unstable_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
        let mut peers = Vec::with_capacity(old.peers.len() + added.len());
        let mut added = added.into_iter().peekable();
        for p in old
            .peers
            .iter()
            .filter(|p| !gone.contains(&(&***p as *const crate::Peer)))
        {
            while let Some(a) = added.next_if(|a| a.id().as_str() < p.id().as_str()) {
                peers.push(a);
            }
            peers.push(p.clone());
        }
        peers.extend(added);
        self.rebuilds.bump();
        Table {
            slots: populate(&peers, self.options.table),
            peers,
        }
    }

    /// How many times the table was rebuilt so far.
    #[cfg(test)]
    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds.get()
    }

    #[inline]
    fn choose_in(&self, t: &Table, request: &Request<'_>) -> Option<InFlight> {
        if t.peers.is_empty() {
            return None;
        }
        match request.shard_key() {
            Some(key) => Some(t.peers[t.slots[self.slot(key)] as usize].start_request()),
            None => {
                let k = self.cursor.fetch_add(1, Ordering::Relaxed) % t.peers.len();
                Some(t.peers[k].start_request())
            }
        }
    }
}

impl Strategy for Maglev {
    fn name(&self) -> &str {
        "maglev"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.table.stage(added, removed);
    }

    /// Builds and publishes the table if the batch changed it.
    fn batch_end(&self) {
        self.table
            .publish_staged(|old, changes| self.next_table(old, changes));
    }

    #[inline]
    fn choose(&self, request: &Request<'_>) -> Option<InFlight> {
        self.choose_in(&self.table.peek(), request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::test_support::peers;
    use crate::{Peer, PeerId};

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.1.{}.{}:8080", i / 256, i % 256))
            .collect()
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(251) && is_prime(MAX_TABLE_SIZE));
        assert!(!is_prime(65535) && !is_prime(1) && !is_prime(16_777_215));
    }

    #[test]
    fn balance_within_one_percent() {
        for n in [3usize, 10, 100] {
            let m = Maglev::new(MaglevOptions::default());
            let names = ids(n);
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            for p in peers(&refs) {
                m.add(&p);
            }
            let counts = m.slot_counts();
            let ideal = 65537.0 / n as f64;
            for (id, c) in &counts {
                let dev = (*c as f64 - ideal).abs() / ideal;
                assert!(dev < 0.01, "{n} peers: {id} owns {c}, ideal {ideal}");
            }
        }
    }

    #[test]
    fn weights_scale_slots() {
        let m = Maglev::new(MaglevOptions::default());
        m.add(&Peer::detached(PeerId::new("a").unwrap(), 1));
        m.add(&Peer::detached(PeerId::new("b").unwrap(), 3));
        let counts = m.slot_counts();
        let a = counts[0].1 as f64;
        let b = counts[1].1 as f64;
        assert!((b / a - 3.0).abs() < 0.01, "{counts:?}");
    }

    fn moved(n: usize) -> (f64, f64) {
        let m = Maglev::new(MaglevOptions::default());
        let names = ids(n + 1);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let ps = peers(&refs);
        for p in &ps[..n] {
            m.add(p);
        }
        let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
        let owners = |m: &Maglev| -> Vec<String> {
            keys.iter()
                .map(|k| m.owner(k.as_bytes()).unwrap().to_string())
                .collect()
        };
        let before = owners(&m);
        m.add(&ps[n]);
        let added = owners(&m);
        m.remove(&ps[n]);
        assert_eq!(owners(&m), before, "same peer set, same table");
        m.remove(&ps[0]);
        let removed = owners(&m);
        let frac = |a: &[String], b: &[String]| {
            a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / keys.len() as f64
        };
        (frac(&before, &added), frac(&before, &removed))
    }

    #[test]
    fn one_peer_change_moves_little() {
        for n in [5usize, 20, 100] {
            let (add, rem) = moved(n);
            // The paper measures a few percent of extra movement; allow 2x the ideal.
            assert!(add < 2.0 / (n + 1) as f64, "{n} peers, add moved {add}");
            assert!(rem < 2.0 / n as f64, "{n} peers, remove moved {rem}");
            assert!(add > 0.5 / (n + 1) as f64 && rem > 0.5 / n as f64);
        }
    }

    #[test]
    fn no_key_round_robins_and_empty_is_none() {
        let m = Maglev::new(MaglevOptions::default().table_size(251).unwrap());
        let ps = peers(&["b", "a"]);
        for p in &ps {
            m.add(p);
        }
        let got: Vec<String> = (0..4)
            .map(|_| m.choose(&Request::new()).unwrap().peer().id().to_string())
            .collect();
        assert_eq!(got, ["a", "b", "a", "b"]);
        for p in &ps {
            m.remove(p);
        }
        assert!(m.choose(&Request::new().with_shard_key(b"k")).is_none());
        assert!(m.owner(b"k").is_none());
    }

    #[test]
    fn more_peers_than_slots_still_works() {
        let m = Maglev::new(MaglevOptions::default().table_size(3).unwrap());
        let names = ids(10);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for p in peers(&refs) {
            m.add(&p);
        }
        assert_eq!(m.slot_counts().iter().map(|(_, c)| c).sum::<usize>(), 3);
        assert!(m.choose(&Request::new().with_shard_key(b"k")).is_some());
    }

    #[test]
    fn list_batches_rebuild_the_table_once_and_choose_never_does() {
        let s = std::sync::Arc::new(Maglev::new(MaglevOptions::default()));
        let counter = s.clone();
        crate::strategy::test_support::rebuilds_once_per_batch(s, &|| counter.rebuilds());
    }
}
