//! `weighted-round-robin`: smooth weighted round-robin, nginx's algorithm.
//!
//! Each peer has a weight ([`PeerSpec::weight`](crate::PeerSpec), default 1). nginx picks
//! by adding every peer's weight to its `current`, choosing the largest `current` (the
//! earliest added on a tie) and subtracting the total weight from it. Over one cycle of
//! `sum(weights)` picks each peer gets exactly its weight, spread out: weights 5, 1, 1 give
//! `a a b a c a a`.
//!
//! # Hot path: a precomputed cycle
//! nginx's algorithm mutates shared state at every pick, which would put a lock on the hot
//! path. Instead, once per batch of changes (at the batch's end, see `snapshot`) the writer
//! publishes an immutable table of the peers, their weights and the smooth sequence for one
//! full cycle, so a 1000-peer update costs one computation and no `choose` computes
//! anything (but the slow-start step below). Each thread walks that cycle with its own cursor in its stripe
//! (as `round-robin` does), so `choose` is: one shared, rarely written generation read,
//! one uncontended stripe lock, an index and a `start_request`. A single thread sees
//! nginx's exact order; several threads each walk the cycle from spread-out starting
//! points, so the totals keep the weights' proportions.
//!
//! Cycle length: the weights are first divided by their greatest common divisor (weights
//! 100, 300 give the cycle `b a b b`, length 4). Computing nginx's order costs
//! peers × cycle length; above 4M steps (e.g. thousands of peers with uneven weights) the
//! cycle is built by stride scheduling instead (peer `i`'s `k`-th pick at virtual time
//! `(k + ½)/wᵢ`, O(L log n)): the same exact counts per cycle and an equally even spread,
//! though not nginx's exact order. If the reduced sum still exceeds
//! [`MAX_CYCLE`] (or the number of peers, if larger), the weights are scaled down
//! proportionally (each at least 1) to fit, so very uneven huge weights are followed
//! approximately (within one pick per peer per cycle of [`MAX_CYCLE`]) instead of exactly.
//!
//! # Changes
//! A change recomputes the cycle for the new set, and every thread *keeps its position*
//! (its cursor index, modulo the new length) instead of restarting the cycle: an updater
//! that removes and re-adds a peer with another weight does not reset everyone else to
//! the start of the cycle (where the heaviest peer always comes first), so frequent
//! updates do not skew traffic toward the heaviest peer.
//!
//! # Slow start
//! With [`WeightedRoundRobinOptions::slow_start`] (off by default), a peer that becomes
//! available *after traffic began* (after the first `choose`) starts at effective weight 1
//! and ramps linearly to its weight over the window: `1 + (weight - 1) × elapsed / window`
//! (rounded down). Peers present before the first `choose` get their full weight at once.
//! While some peer is ramping, the table records when its effective weight next changes
//! (at most every `window / 32`), and `choose` reads the list's clock and compares with
//! that instant; the first thread past it re-publishes the table (if no writer is busy).
//! Without a ramping peer, `choose` does not read the clock.
//!
//! ```
//! use peerlb::{ListOptions, PeerList, PeerSpec, Request};
//! let list = PeerList::new(ListOptions::default().strategy_name("weighted-round-robin").unwrap().shuffle(false)).unwrap();
//! list.update([PeerSpec::weighted("a", 5), PeerSpec::new("b"), PeerSpec::new("c")], None::<&str>).unwrap();
//! list.start().unwrap();
//! let picks: String = (0..7).map(|_| list.choose(&Request::new()).unwrap().peer().to_string()).collect();
//! assert_eq!(picks, "aabacaa");
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::orca::OrcaOptions;
use super::snapshot::{Changes, Published, Publisher};

use super::stripes::Striped;
use super::Strategy;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::Request;
use crate::spec::{ms, parse_ms, unknown_key, SpecOptions};

/// The longest precomputed cycle (unless there are more peers than this).
pub const MAX_CYCLE: usize = 1 << 14;

/// Options of `weighted-round-robin` (spec: `weighted-round-robin?slow_start_ms=30000`, or
/// `weighted-round-robin:orca?...` for weights from load reports; see [`SpecOptions`]).
///
/// ```
/// use std::time::Duration;
/// use peerlb::strategy::weighted_round_robin::WeightedRoundRobinOptions;
/// assert_eq!(WeightedRoundRobinOptions::default().slow_start, None);
/// let o: WeightedRoundRobinOptions = "weighted-round-robin?slow_start_ms=1500".parse().unwrap();
/// assert_eq!(o.slow_start, Some(Duration::from_millis(1500)));
/// assert_eq!(o.to_string(), "weighted-round-robin?slow_start_ms=1500");
/// // Zero is off: one value, one spelling.
/// let off = WeightedRoundRobinOptions { slow_start: Some(Duration::ZERO), ..Default::default() };
/// assert_eq!(off, WeightedRoundRobinOptions::default());
/// assert_eq!(off.to_string(), "weighted-round-robin");
/// let orca: WeightedRoundRobinOptions = "weighted-round-robin:orca?blackout_ms=0".parse().unwrap();
/// assert_eq!(orca.orca.unwrap().blackout, Duration::ZERO);
/// assert_eq!(orca.to_string(), "weighted-round-robin:orca?blackout_ms=0");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedRoundRobinOptions {
    /// Slow-start window for peers that become available after traffic began (`None` or
    /// zero = off; key `slow_start_ms`, 0..=4294967295, 0 = off). Not in mode `orca`.
    pub slow_start: Option<Duration>,
    /// Mode `orca`: weights from the backends' load reports, as gRPC's weighted
    /// round-robin computes them, instead of the peers' own weights (see
    /// [`orca`](super::orca)); `None` = the peers' weights (the default mode).
    pub orca: Option<OrcaOptions>,
}

impl WeightedRoundRobinOptions {
    /// The slow-start window, `None` when off (zero counts as off).
    fn window(&self) -> Option<Duration> {
        self.slow_start.filter(|d| !d.is_zero())
    }
}

impl PartialEq for WeightedRoundRobinOptions {
    /// Equal when they behave the same: `Some(0)` and `None` are both off.
    fn eq(&self, other: &Self) -> bool {
        self.window() == other.window() && self.orca == other.orca
    }
}

impl Eq for WeightedRoundRobinOptions {}

impl SpecOptions for WeightedRoundRobinOptions {
    const KIND: &'static str = "strategy";
    const NAME: &'static str = "weighted-round-robin";

    /// Mode `orca` (weights from load reports), or none (the peers' weights).
    fn for_mode(mode: Option<&str>) -> Result<Self> {
        match mode {
            None => Ok(WeightedRoundRobinOptions::default()),
            Some("orca") => Ok(WeightedRoundRobinOptions {
                orca: Some(OrcaOptions::default()),
                ..Default::default()
            }),
            Some(m) => Err(Error::InvalidArgument(format!(
                "weighted-round-robin has no mode {m:?}; expected orca"
            ))),
        }
    }

    /// `slow_start_ms` (0..=4294967295; 0 = off); in mode `orca`, the keys of
    /// [`OrcaOptions`] instead.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if let Some(orca) = &mut self.orca {
            return orca.set("weighted-round-robin:orca", key, value);
        }
        match key {
            "slow_start_ms" => {
                let d = parse_ms(key, value, 0..=u64::from(u32::MAX))?;
                self.slow_start = (!d.is_zero()).then_some(d);
                Ok(())
            }
            _ => Err(unknown_key(Self::NAME, key, &["slow_start_ms"])),
        }
    }

    fn mode(&self) -> Option<&'static str> {
        self.orca.map(|_| "orca")
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        if let Some(orca) = &self.orca {
            return orca.changed();
        }
        match self.window() {
            Some(d) => vec![("slow_start_ms", ms(d))],
            None => Vec::new(),
        }
    }
}

impl std::fmt::Display for WeightedRoundRobinOptions {
    /// The canonical spec (see [`SpecOptions::to_spec`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl std::str::FromStr for WeightedRoundRobinOptions {
    type Err = Error;
    /// Parses `weighted-round-robin[?slow_start_ms=N]` or
    /// `weighted-round-robin:orca[?key=value&...]` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<WeightedRoundRobinOptions> {
        WeightedRoundRobinOptions::from_spec(s)
    }
}

const NEVER: u64 = u64::MAX;

#[derive(Clone)]
struct Member {
    peer: PeerRef,
    /// When its slow start began (ns since the strategy's epoch); `NEVER` = full weight.
    ramp_from: u64,
}

/// One published table: the peers in order, their effective weights and one cycle.
struct Table {
    members: Vec<Member>,
    /// The effective weights the cycle is built from.
    weights: Vec<u32>,
    /// When some ramping peer's effective weight next changes (`NEVER` = none ramps).
    refresh_at: u64,
    /// Indices into `members`, one full cycle.
    cycle: Vec<u32>,
}

struct Local {
    table: Arc<Published<Table>>,
    cursor: usize,
    used: bool,
}

/// The weighted round-robin strategy.
pub struct WeightedRoundRobin {
    table: Publisher<Table>,
    local: Striped<Local>,
    claimed: AtomicUsize,
    /// Set by the first `choose`: peers added later slow-start.
    served: AtomicBool,
    slow_start_ns: u64,
    clock: Clock,
    epoch: Instant,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One cycle of nginx's smooth weighted round-robin over `weights` (indices into them),
/// after gcd reduction and, if needed, proportional scaling to [`MAX_CYCLE`].
fn smooth_cycle(weights: &[u32]) -> Vec<u32> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let g = weights.iter().fold(0u64, |g, &w| gcd(g, u64::from(w)));
    let mut w: Vec<u64> = weights.iter().map(|&x| u64::from(x) / g).collect();
    let limit = MAX_CYCLE.max(n) as u64;
    let mut total: u64 = w.iter().sum();
    if total > limit {
        // Scale down proportionally (each at least 1); the sum stays at most limit + n.
        let budget = limit.saturating_sub(n as u64).max(1);
        for x in &mut w {
            *x = 1 + *x * budget / total;
        }
        let g = w.iter().fold(0u64, |g, &x| gcd(g, x));
        for x in &mut w {
            *x /= g;
        }
        total = w.iter().sum();
    }
    if w.iter().all(|&x| x == w[0]) {
        // Equal weights: nginx degenerates to plain order.
        return (0..n as u32).collect();
    }
    if (n as u64).saturating_mul(total) > MAX_NGINX_WORK {
        return stride_cycle(&w, total);
    }
    let total = total as i64;
    let w: Vec<i64> = w.into_iter().map(|x| x as i64).collect();
    let mut current = vec![0i64; n];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..n {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        cycle.push(best as u32);
    }
    cycle
}

/// Above this many steps (peers × cycle length) nginx's O(n) per pick is too slow to
/// compute a cycle; [`stride_cycle`] is used instead.
const MAX_NGINX_WORK: u64 = 1 << 22;

/// One cycle in which peer `i`'s `k`-th pick (k = 0, 1, ...) sits at virtual time
/// `(k + ½) / w[i]`, in time order (ties: lower index): the same exact counts per cycle
/// and the same even spread as nginx's order, in O(L log n) instead of O(L·n).
fn stride_cycle(w: &[u64], total: u64) -> Vec<u32> {
    use std::cmp::{Ordering as Cmp, Reverse};
    use std::collections::BinaryHeap;

    /// Peer `i`'s next pick at time `num / (2·w)`.
    #[derive(PartialEq, Eq)]
    struct Next {
        num: u64,
        w: u64,
        i: u32,
    }
    impl Ord for Next {
        fn cmp(&self, o: &Self) -> Cmp {
            (u128::from(self.num) * u128::from(o.w))
                .cmp(&(u128::from(o.num) * u128::from(self.w)))
                .then(self.i.cmp(&o.i))
        }
    }
    impl PartialOrd for Next {
        fn partial_cmp(&self, o: &Self) -> Option<Cmp> {
            Some(self.cmp(o))
        }
    }
    let mut heap: BinaryHeap<Reverse<Next>> = w
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            Reverse(Next {
                num: 1,
                w,
                i: i as u32,
            })
        })
        .collect();
    let mut cycle = Vec::with_capacity(total as usize);
    while let Some(Reverse(next)) = heap.pop() {
        cycle.push(next.i);
        // num = 2k + 1 after the k-th pick (0-based): k + 1 picks done.
        if next.num / 2 + 1 < next.w {
            heap.push(Reverse(Next {
                num: next.num + 2,
                ..next
            }));
        }
    }
    cycle
}

impl WeightedRoundRobin {
    /// A weighted round-robin without slow start.
    ///
    /// ```
    /// use peerlb::Strategy;
    /// let s = peerlb::strategy::weighted_round_robin::WeightedRoundRobin::new();
    /// assert_eq!(s.name(), "weighted-round-robin");
    /// ```
    pub fn new() -> WeightedRoundRobin {
        WeightedRoundRobin::with_options(WeightedRoundRobinOptions::default(), Clock::real())
    }

    /// A weighted round-robin with `options`, keeping time (for slow start) with `clock`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::clock::ManualClock;
    /// use peerlb::strategy::weighted_round_robin::{WeightedRoundRobin, WeightedRoundRobinOptions};
    /// let opts = WeightedRoundRobinOptions { slow_start: Some(Duration::from_secs(30)), ..Default::default() };
    /// let s = WeightedRoundRobin::with_options(opts, ManualClock::new().into());
    /// ```
    pub fn with_options(options: WeightedRoundRobinOptions, clock: Clock) -> WeightedRoundRobin {
        let table = Publisher::new(Table {
            members: Vec::new(),
            weights: Vec::new(),
            refresh_at: NEVER,
            cycle: Vec::new(),
        });
        WeightedRoundRobin {
            local: Striped::new(|_| Local {
                table: table.load(),
                cursor: 0,
                used: false,
            }),
            table,
            claimed: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            slow_start_ns: options
                .slow_start
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            epoch: clock.now(),
            clock,
        }
    }

    fn now(&self) -> u64 {
        let d = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// The table of `members` with their effective weights at `now`.
    fn build(&self, mut members: Vec<Member>, now: u64) -> Table {
        let window = self.slow_start_ns;
        let mut refresh_at = NEVER;
        let mut weights = Vec::with_capacity(members.len());
        for m in &mut members {
            let weight = m.peer.weight().max(1);
            if m.ramp_from != NEVER {
                let elapsed = now.saturating_sub(m.ramp_from);
                if elapsed >= window || weight == 1 {
                    m.ramp_from = NEVER;
                } else {
                    let span = u128::from(weight - 1);
                    let eff = 1 + (span * u128::from(elapsed) / u128::from(window)) as u32;
                    // Next integer step: elapsed where (weight-1)·e/window reaches eff.
                    let step = (u128::from(eff) * u128::from(window)).div_ceil(span) as u64;
                    let next = step.max(elapsed + (window / 32).max(1)).min(window);
                    refresh_at = refresh_at.min(m.ramp_from.saturating_add(next));
                    weights.push(eff);
                    continue;
                }
            }
            weights.push(weight);
        }
        Table {
            cycle: smooth_cycle(&weights),
            members,
            weights,
            refresh_at,
        }
    }

    /// The next table: `changes.removed` taken out (the others keep their order), then
    /// `changes.added` appended (ramping if traffic began and slow start is on).
    fn next_table(&self, old: &Table, changes: Changes) -> Table {
        let now = self.now();
        let mut members = Vec::with_capacity(old.members.len() + changes.added.len());
        if changes.removed.is_empty() {
            members.extend_from_slice(&old.members);
        } else {
            let gone = changes.removed_set();
            members.extend(
                old.members
                    .iter()
                    .filter(|m| !gone.contains(&(&*m.peer as *const crate::Peer)))
                    .cloned(),
            );
        }
        let ramp = self.slow_start_ns > 0 && self.served.load(Ordering::Relaxed);
        members.extend(changes.added.into_iter().map(|peer| Member {
            peer,
            ramp_from: if ramp { now } else { NEVER },
        }));
        self.build(members, now)
    }

    /// A ramping peer's effective weight moved: re-publish, unless a writer is busy (it
    /// publishes anyway).
    #[cold]
    fn refresh(&self) {
        let now = self.now();
        self.table.republish(false, |table| {
            (now >= table.refresh_at).then(|| self.build(table.members.clone(), now))
        });
    }

    #[cold]
    fn claim(&self, local: &mut Local) {
        self.served.store(true, Ordering::Relaxed);
        let k = self.claimed.fetch_add(1, Ordering::Relaxed);
        let n = local.table.cycle.len().max(1);
        local.cursor = ((k as f64 * 0.618_033_988_75).fract() * n as f64) as usize;
        local.used = true;
    }

    /// The effective weights the current cycle is built from, in the order peers were
    /// added (for tests and introspection).
    ///
    /// ```
    /// use peerlb::{Peer, PeerId, Strategy};
    /// use peerlb::strategy::weighted_round_robin::WeightedRoundRobin;
    /// let s = WeightedRoundRobin::new();
    /// s.add(&Peer::detached(PeerId::new("a").unwrap(), 3));
    /// assert_eq!(s.effective_weights(), [3]);
    /// ```
    pub fn effective_weights(&self) -> Vec<u32> {
        self.table.peek().weights.clone()
    }
}

impl Default for WeightedRoundRobin {
    fn default() -> Self {
        WeightedRoundRobin::new()
    }
}

impl Strategy for WeightedRoundRobin {
    fn name(&self) -> &str {
        "weighted-round-robin"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.table.stage(added, removed);
    }

    fn batch_end(&self) {
        self.table
            .publish_staged(|old, changes| self.next_table(old, changes));
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.table.generation();
        self.local.with_current(|local| {
            if local.table.generation != generation {
                local.table = self.table.load();
            }
            if local.table.refresh_at != NEVER && self.now() >= local.table.refresh_at {
                self.refresh();
                local.table = self.table.load();
            }
            if !local.used {
                self.claim(local);
            }
            let table = &*local.table;
            let cycle: &[u32] = &table.cycle;
            let n = cycle.len();
            if n == 0 {
                return None;
            }
            let i = if local.cursor < n {
                local.cursor
            } else {
                local.cursor % n
            };
            local.cursor = if i + 1 == n { 0 } else { i + 1 };
            Some(table.members[cycle[i] as usize].peer.start_request())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::peer::{Peer, PeerId};
    use crate::strategy::test_support::pick;

    fn weighted(specs: &[(&str, u32)]) -> Vec<PeerRef> {
        specs
            .iter()
            .map(|(id, w)| Peer::detached(PeerId::new(id).unwrap(), *w))
            .collect()
    }

    fn picks(s: &WeightedRoundRobin, n: usize) -> String {
        (0..n).map(|_| pick(s)).collect()
    }

    #[test]
    fn nginx_order_for_known_weights() {
        for (specs, want) in [
            (&[("a", 5), ("b", 1), ("c", 1)][..], "aabacaa"),
            (&[("a", 1), ("b", 1), ("c", 1)][..], "abc"),
            (&[("a", 2), ("b", 1)][..], "aba"),
            (&[("a", 4), ("b", 2), ("c", 1)][..], "abacaba"),
            (&[("a", 300), ("b", 100)][..], "aaba"),
        ] {
            let s = WeightedRoundRobin::new();
            for p in weighted(specs) {
                s.add(&p);
            }
            assert_eq!(picks(&s, want.len() * 2), want.repeat(2), "{specs:?}");
        }
    }

    #[test]
    fn cycle_is_exact_and_bounded() {
        assert_eq!(smooth_cycle(&[]), Vec::<u32>::new());
        let c = smooth_cycle(&[7, 3, 1]);
        assert_eq!(c.len(), 11);
        for (i, w) in [7, 3, 1].into_iter().enumerate() {
            assert_eq!(c.iter().filter(|&&x| x == i as u32).count(), w);
        }
        let huge = smooth_cycle(&[u32::MAX, 1, u32::MAX - 1]);
        assert!(huge.len() <= MAX_CYCLE + 3, "{}", huge.len());
        assert!(huge.contains(&1), "a light peer still appears");
    }

    #[test]
    fn stride_cycle_is_exact_and_spread() {
        let w = [5u64, 1, 1];
        let c = stride_cycle(&w, 7);
        assert_eq!(c, [0, 0, 0, 1, 2, 0, 0]);
        // Many peers with uneven weights take the stride path, with exact counts.
        let weights: Vec<u32> = (0..3000).map(|i| 1 + (i % 7)).collect();
        let cycle = smooth_cycle(&weights);
        let mut counts = vec![0u32; weights.len()];
        for &i in &cycle {
            counts[i as usize] += 1;
        }
        assert_eq!(counts, weights);
        // The heaviest peers are spread out: no peer appears twice in a row.
        assert!(cycle.windows(2).all(|p| p[0] != p[1]));
    }

    #[test]
    fn re_adding_a_peer_keeps_everyone_elses_position() {
        // A churny updater re-adds c before every pick; with a reset-to-start cycle the
        // heaviest peer would win every time.
        let s = WeightedRoundRobin::new();
        let ps = weighted(&[("a", 5), ("b", 1), ("c", 1)]);
        for p in &ps {
            s.add(p);
        }
        let mut c = ps[2].clone();
        let mut got = String::new();
        for _ in 0..70 {
            s.remove(&c);
            c = Peer::detached(PeerId::new("c").unwrap(), 1);
            s.add(&c);
            got.push_str(&pick(&s));
        }
        let count = |ch| got.chars().filter(|&x| x == ch).count();
        assert_eq!((count('a'), count('b'), count('c')), (50, 10, 10), "{got}");
    }

    #[test]
    fn slow_start_ramps_a_late_peer_linearly() {
        let clock = ManualClock::new();
        let opts = WeightedRoundRobinOptions {
            slow_start: Some(Duration::from_secs(10)),
            orca: None,
        };
        let s = WeightedRoundRobin::with_options(opts, clock.clone().into());
        let ps = weighted(&[("a", 10), ("b", 10)]);
        s.add(&ps[0]);
        assert_eq!(pick(&s), "a"); // traffic began: later peers slow-start
        s.add(&ps[1]);
        assert_eq!(s.effective_weights(), [10, 1]);
        let count_b = |s: &WeightedRoundRobin| (0..110).filter(|_| pick(s) == "b").count();
        assert_eq!(count_b(&s), 10); // cycle of 11: b once
        clock.advance(Duration::from_secs(5));
        assert_eq!(pick(&s).len(), 1); // a choose notices the refresh instant
        assert_eq!(s.effective_weights(), [10, 5]); // 1 + 9 * 0.5
        clock.advance(Duration::from_secs(5));
        pick(&s);
        assert_eq!(s.effective_weights(), [10, 10]);
        assert_eq!(count_b(&s), 55);
    }

    #[test]
    fn peers_present_before_traffic_do_not_slow_start() {
        let clock = ManualClock::new();
        let opts = WeightedRoundRobinOptions {
            slow_start: Some(Duration::from_secs(10)),
            orca: None,
        };
        let s = WeightedRoundRobin::with_options(opts, clock.into());
        for p in weighted(&[("a", 3), ("b", 2)]) {
            s.add(&p);
        }
        assert_eq!(s.effective_weights(), [3, 2]);
        assert_eq!(picks(&s, 5), "ababa");
    }
}
