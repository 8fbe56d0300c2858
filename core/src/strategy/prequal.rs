//! `prequal`: hot-cold lexicographic selection on requests in flight and latency, after
//! Google's Prequal ("Load is not what you should balance", Wydrowski, Kleinberg, Rumble,
//! NSDI 2024). The latency-aware strategy to pick when you do not want to tune anything.
//!
//! # The rule
//! Each `choose` looks at a pool of peers: every available peer when there are at most
//! [`PrequalOptions::choices`] (default 16), else that many drawn at random. For each it
//! takes the requests in flight (RIF) and the latency expected at that RIF. Peers expected
//! to be more than [`COMPETITIVE`]× slower than the fastest in the pool drop out. Of the
//! rest, a peer is *hot* when its RIF is above the [`PrequalOptions::q_rif`] quantile of
//! their RIFs (default 0.5, the median), *cold* otherwise; the pick is the cold peer with
//! the lowest expected latency, counting those within 1.25× of it ([`NEAR_DIVISOR`]) as
//! equally fast and taking the one of them with the fewest in flight (then the pool's
//! random order). Latency decides; load only vetoes the busier half and breaks near-ties.
//! There is no product of the two to tune, so an idle slow peer never beats a busy fast
//! one (as it does under peak-EWMA's latency × (pending + 1)), and a fast peer is not piled
//! on until it queues (the veto).
//!
//! # What it measures
//! * **RIF**: this client's requests in flight to the peer; or, when the backend reported
//!   its own count ([`LoadReport::requests_in_flight`](crate::LoadReport), through
//!   [`Choice::finish_with_load`](crate::Choice::finish_with_load)) within the last probe
//!   interval, that count moved by the change in this client's own count since the report
//!   (so it includes other clients' requests).
//! * **Latency at a load level**: each peer keeps its recent latencies by how many other
//!   requests this client had in flight to it when each started ([`LOAD_LEVELS`] levels:
//!   0, 1, 2, 3, 4–5, 6–7, 8–11, ...). The latency expected at a level is the median of the
//!   last [`WINDOW`] latencies there (the lower one of an even count), raised to any lower
//!   level's (a peer is not faster under more load); below the lowest level with samples,
//!   that level's. This is Prequal's "latency at the current RIF", measured by the client:
//!   a backend that queues shows it at the levels where it queues, so its expected latency
//!   rises as its RIF does, before slow answers come back; one that does not queue looks
//!   the same at every level. The median ignores the odd latency a client-side stall (a
//!   GC pause, a descheduled thread) inflates, where peak-EWMA jumps to it and keeps it
//!   for seconds.
//! * **Probes**: a peer whose newest answer is older than [`PrequalOptions::probe`]
//!   (default 1 s) and that has nothing in flight is *stale*: what it did then may not hold
//!   now, in either direction. The next `choose` whose pool holds it sends it one request
//!   (Prequal probes servers out of band; a client library has only real requests), and
//!   its latencies start afresh from that answer. So a slow peer costs one request per
//!   probe interval (at 2000 requests/s, 0.05 % of them), and a recovered one is back at
//!   its share within about a probe interval. A peer without any answer yet (new, or back
//!   after being unavailable) is stale at once.
//! * **Outcomes**: a failure (or a refusal) counts as a latency only when it is slower than
//!   the peer's latency at that level (a timeout says the peer is slow; a refused
//!   connection that fails in microseconds does not say it is fast: that is outlier
//!   ejection's business). A cancelled request counts for nothing.
//!
//! # Differences from Prequal
//! Prequal's servers answer probes with their RIF and their latency at that RIF; clients
//! keep a pool of recent probe answers (reused a few times, aged out), take the hot/cold
//! threshold from the RIF distribution the probes show, and send no query to a server
//! without a probe. Here the client's own view — every peer's pending count and measured
//! latencies, for free — stands in for the probe pool, the threshold is the quantile over
//! the pool it looks at, stale peers get a real request as their probe, and peers far
//! slower than the fastest are left out before the quantile is taken (without that, with
//! half the peers slow and idle, the fast half would all be "hot"). Near-equal latencies
//! go to the peer with fewer in flight (Prequal takes the lowest estimate outright; with
//! estimates measured from a few of the client's own requests, that let noise decide and
//! left a peer that was unlucky in its samples without traffic until they aged out).
//! Backends that report their in-flight counts give it Prequal's view of load from other
//! clients.
//!
//! # Cost
//! A `choose` reads the clock once and each pooled peer's counters (O(pool), ≤ 16 by
//! default); a finish takes the peer's own small lock to file the latency. Like
//! `peak-ewma`, it takes no shared lock: each thread keeps its random stream, scratch space
//! and cached peer array in its stripe, and the array is rebuilt only when the set of peers
//! changes.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, Outcome, PeerList, Request};
//!
//! let list = PeerList::new(ListOptions::default().strategy_name("prequal").unwrap()).unwrap();
//! list.update(["fast", "slow"], None::<&str>).unwrap();
//! list.start().unwrap();
//! for _ in 0..10 {
//!     let c = list.choose(&Request::new()).unwrap();
//!     let latency = if c.peer().as_str() == "slow" { 500 } else { 5 };
//!     c.finish(Outcome::Ok, Some(Duration::from_millis(latency)));
//! }
//! let picks: Vec<String> = (0..10)
//!     .map(|_| {
//!         let c = list.choose(&Request::new()).unwrap();
//!         let id = c.peer().to_string();
//!         c.finish(Outcome::Ok, Some(Duration::from_millis(5)));
//!         id
//!     })
//!     .collect();
//! assert!(picks.iter().all(|p| p == "fast"));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::snapshot::{apply_unordered, index_of, Member, Published, Publisher};
use super::stripes::{SplitMix, Striped};
use super::{RequestEnd, Strategy};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef};
use crate::request::{Outcome, Request};
use crate::spec::{ms, parse_all_or_int, parse_float, parse_ms, unknown_key, SpecOptions};

/// How many recent latencies per load level a peer's estimate is the median of.
pub const WINDOW: usize = 4;

/// The largest pool one `choose` may look at (key `choices`), besides `all`.
pub const MAX_CHOICES: usize = 64;

/// Peers expected to be more than this many times slower than the fastest in the pool do
/// not compete (see the [module docs](self)).
pub const COMPETITIVE: u64 = 3;

/// Cold peers expected within 1 + 1/`NEAR_DIVISOR` (1.25×) of the fastest cold one count
/// as equally fast; the one with the fewest in flight of them is picked.
pub const NEAR_DIVISOR: u64 = 4;

/// Options of `prequal` (spec: `prequal?choices=16&q_rif=0.5&probe_ms=1000`).
///
/// ```
/// use std::time::Duration;
/// use peerlb::strategy::prequal::PrequalOptions;
/// let o = PrequalOptions::default();
/// assert_eq!(o.choices, 16);
/// assert_eq!(o.q_rif, 0.5);
/// assert_eq!(o.probe, Duration::from_secs(1));
/// let o: PrequalOptions = "prequal?choices=all&probe_ms=500".parse().unwrap();
/// assert_eq!(o.to_string(), "prequal?choices=all&probe_ms=500");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrequalOptions {
    /// How many peers one `choose` looks at (key `choices`: `all` or 2..=64; default 16):
    /// every available peer when there are at most this many, else this many drawn at
    /// random (with replacement). 0 = all (O(n) per choose).
    pub choices: usize,
    /// The RIF quantile above which a competing peer is hot (key `q_rif`, 0..=1; default
    /// 0.5). Lower values balance load more and latency less; 1 turns the veto off.
    pub q_rif: f64,
    /// A peer whose newest latency sample is older than this, with nothing in flight, gets
    /// the next request as a probe (key `probe_ms`, 1..=4294967295; default 1000).
    pub probe: Duration,
}

impl Default for PrequalOptions {
    fn default() -> Self {
        PrequalOptions {
            choices: 16,
            q_rif: 0.5,
            probe: Duration::from_secs(1),
        }
    }
}

impl SpecOptions for PrequalOptions {
    const KIND: &'static str = "strategy";
    const NAME: &'static str = "prequal";

    /// `choices` (`all` or 2..=64), `q_rif` (0..=1), `probe_ms` (1..=4294967295).
    ///
    /// ```
    /// use peerlb::strategy::SpecOptions;
    /// use peerlb::strategy::prequal::PrequalOptions;
    /// let mut o = PrequalOptions::default();
    /// o.set("q_rif", "0.75").unwrap();
    /// assert_eq!(o.to_string(), "prequal?q_rif=0.75");
    /// assert!(o.set("q_rif", "1.5").is_err());
    /// assert!(o.set("choices", "1").is_err());
    /// ```
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "choices" => self.choices = parse_all_or_int(key, value, 2..=MAX_CHOICES)?.unwrap_or(0),
            "q_rif" => self.q_rif = parse_float(key, value, 0.0..=1.0)?,
            "probe_ms" => self.probe = parse_ms(key, value, 1..=u64::from(u32::MAX))?,
            _ => {
                return Err(unknown_key(
                    Self::NAME,
                    key,
                    &["choices", "q_rif", "probe_ms"],
                ))
            }
        }
        Ok(())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let defaults = PrequalOptions::default();
        let mut pairs = Vec::new();
        if self.choices != defaults.choices {
            pairs.push((
                "choices",
                match self.choices {
                    0 => "all".to_owned(),
                    n => n.to_string(),
                },
            ));
        }
        if self.q_rif != defaults.q_rif {
            pairs.push(("q_rif", self.q_rif.to_string()));
        }
        if self.probe != defaults.probe {
            pairs.push(("probe_ms", ms(self.probe)));
        }
        pairs
    }
}

impl std::fmt::Display for PrequalOptions {
    /// The canonical spec, e.g. `prequal?q_rif=0.5` (see [`SpecOptions::to_spec`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl std::str::FromStr for PrequalOptions {
    type Err = Error;
    /// Parses `prequal[?key=value&...]` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<PrequalOptions> {
        PrequalOptions::from_spec(s)
    }
}

/// "No estimate yet" in [`Entry::estimates`].
const NO_ESTIMATE: u64 = 0;

/// Load levels a peer's latencies are kept by: its requests in flight when a request
/// started, in buckets 0, 1, 2, 3, 4–5, 6–7, 8–11, 12–15, 16–23, ... (half octaves), the
/// last one open-ended.
pub const LOAD_LEVELS: usize = 16;

/// The load level of `rif` requests in flight.
#[inline]
fn level(rif: u32) -> usize {
    if rif < 4 {
        return rif as usize;
    }
    let octave = 31 - rif.leading_zeros(); // ≥ 2
    let half = (rif >> (octave - 1)) & 1;
    (4 + 2 * (octave as usize - 2) + half as usize).min(LOAD_LEVELS - 1)
}

/// The recent latencies of one peer at one load level.
#[derive(Default, Clone, Copy)]
struct Level {
    ring: [u64; WINDOW],
    len: u8,
    next: u8,
    /// When its newest sample came (ns since the epoch).
    at: u64,
}

impl Level {
    /// Adds a sample that came at `now`.
    fn push(&mut self, sample: u64, now: u64) {
        self.at = now;
        self.ring[self.next as usize] = sample;
        self.next = ((self.next as usize + 1) % WINDOW) as u8;
        self.len = (self.len as usize + 1).min(WINDOW) as u8;
    }

    /// The median (the lower one of an even count), or [`NO_ESTIMATE`].
    fn median(&self) -> u64 {
        if self.len == 0 {
            return NO_ESTIMATE;
        }
        let mut sorted = self.ring;
        let window = &mut sorted[..self.len as usize];
        let mid = (window.len() - 1) / 2;
        *window.select_nth_unstable(mid).1
    }
}

/// One peer's latencies by load level.
#[derive(Default)]
struct Samples {
    levels: [Level; LOAD_LEVELS],
}

/// One available peer and what the strategy knows of it.
struct Entry {
    peer: PeerRef,
    /// The latency expected at each load level (ns, at least 1), or [`NO_ESTIMATE`] when
    /// there is no sample at all: the level's median, raised to every lower level's (a
    /// peer is not faster under more load), or, below the lowest level with samples, that
    /// level's.
    estimates: [AtomicU64; LOAD_LEVELS],
    /// When the newest sample came, ns since the strategy's epoch (0 = never).
    sampled_at: AtomicU64,
    /// The last reported in-flight count (high 32 bits) and this client's own pending count
    /// when it came (low 32 bits).
    reported: AtomicU64,
    /// When `reported` was set, ns since the epoch (0 = never).
    reported_at: AtomicU64,
    samples: Mutex<Samples>,
}

impl Entry {
    fn new(peer: PeerRef) -> Entry {
        Entry {
            peer,
            estimates: std::array::from_fn(|_| AtomicU64::new(NO_ESTIMATE)),
            sampled_at: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            reported_at: AtomicU64::new(0),
            samples: Mutex::new(Samples::default()),
        }
    }

    /// Recomputes [`Entry::estimates`] from the samples.
    fn publish(&self, samples: &Samples) {
        let medians: [u64; LOAD_LEVELS] = std::array::from_fn(|i| samples.levels[i].median());
        let lowest = medians
            .iter()
            .copied()
            .find(|&m| m != NO_ESTIMATE)
            .unwrap_or(NO_ESTIMATE);
        let mut running = lowest;
        for (estimate, median) in self.estimates.iter().zip(medians) {
            running = running.max(median);
            estimate.store(running, Ordering::Relaxed);
        }
    }

    /// The latency expected with `rif` requests in flight, or [`NO_ESTIMATE`].
    #[inline]
    fn estimate(&self, rif: u32) -> u64 {
        self.estimates[level(rif)].load(Ordering::Relaxed)
    }
}

impl Member for Arc<Entry> {
    #[inline]
    fn peer(&self) -> &PeerRef {
        &self.peer
    }
}

struct Local {
    view: Arc<Published<Vec<Arc<Entry>>>>,
    rng: SplitMix,
    /// Scratch space for one choose's pool and its RIFs (kept, so a choose allocates
    /// nothing once it has seen its largest pool).
    pool: Vec<Candidate>,
    rifs: Vec<u32>,
}

/// What `choose` looked at for one pooled peer.
#[derive(Clone, Copy)]
struct Candidate {
    index: u32,
    rif: u32,
    /// Latency estimate; `u64::MAX` when unknown (a probe is already out).
    latency: u64,
}

/// The `prequal` strategy (see the [module docs](self)).
pub struct Prequal {
    entries: Publisher<Vec<Arc<Entry>>>,
    local: Striped<Local>,
    clock: Clock,
    /// The clock's [`Clock::now_ns`] when the strategy was made.
    epoch_ns: u64,
    /// Pool size; 0 = all.
    choices: usize,
    q_rif: f64,
    probe_ns: u64,
}

impl Prequal {
    /// A `prequal` strategy with default options and the real clock; `seed` makes the
    /// random pools reproducible.
    ///
    /// ```
    /// use peerlb::Strategy;
    /// assert_eq!(peerlb::strategy::prequal::Prequal::new(Some(1)).name(), "prequal");
    /// ```
    pub fn new(seed: Option<u64>) -> Prequal {
        Prequal::with_options(seed, PrequalOptions::default(), Clock::real())
    }

    /// A `prequal` strategy with `options`, keeping time with `clock`.
    ///
    /// ```
    /// use peerlb::clock::ManualClock;
    /// use peerlb::strategy::prequal::{Prequal, PrequalOptions};
    /// let s = Prequal::with_options(Some(1), PrequalOptions::default(), ManualClock::new().into());
    /// ```
    pub fn with_options(seed: Option<u64>, options: PrequalOptions, clock: Clock) -> Prequal {
        let entries = Publisher::new(Vec::new());
        Prequal {
            local: Striped::new(|i| Local {
                view: entries.load(),
                rng: SplitMix::for_stripe(seed, i),
                pool: Vec::new(),
                rifs: Vec::new(),
            }),
            entries,
            epoch_ns: clock.now_ns(),
            clock,
            choices: options.choices,
            q_rif: if options.q_rif.is_finite() {
                options.q_rif.clamp(0.0, 1.0)
            } else {
                PrequalOptions::default().q_rif
            },
            probe_ns: u64::try_from(options.probe.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
        }
    }

    /// Nanoseconds from the strategy's epoch to a [`Clock::now_ns`] reading, at least 1 (0
    /// means "never").
    #[inline]
    fn since_epoch(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.epoch_ns).max(1)
    }

    /// The latency `peer` is expected to answer in when it has no other request in flight
    /// (the median of its recent samples at that load), if the strategy offers it and has
    /// a sample; for tests and introspection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::{Outcome, Peer, PeerId, Strategy};
    /// use peerlb::strategy::prequal::Prequal;
    /// let s = Prequal::new(None);
    /// let p = Peer::detached(PeerId::new("a").unwrap(), 1);
    /// s.add(&p);
    /// assert_eq!(s.estimate(&p), None);
    /// s.request_finished(&p, Outcome::Ok, Duration::from_millis(30));
    /// assert_eq!(s.estimate(&p), Some(Duration::from_millis(30)));
    /// ```
    pub fn estimate(&self, peer: &PeerRef) -> Option<Duration> {
        let entries = self.entries.peek();
        let i = index_of(&entries, peer)?;
        match entries[i].estimate(0) {
            NO_ESTIMATE => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// The requests in flight `choose` counts for `entry` at `now`.
    #[inline]
    fn rif(&self, entry: &Entry, pending: u32, now: u64) -> u32 {
        let at = entry.reported_at.load(Ordering::Relaxed);
        if at == 0 || now.saturating_sub(at) > self.probe_ns {
            return pending;
        }
        let packed = entry.reported.load(Ordering::Relaxed);
        let (reported, own_then) = ((packed >> 32) as u32, packed as u32);
        // The report's count, moved by what this client started or ended since.
        let adjusted = i64::from(reported) + i64::from(pending) - i64::from(own_then);
        (adjusted.max(i64::from(pending))).min(i64::from(u32::MAX)) as u32
    }

    /// Picks from the pool `order` (indices into `entries`), or `None` if it is empty;
    /// `pool` and `rifs` are scratch space.
    #[inline]
    fn pick(
        &self,
        entries: &[Arc<Entry>],
        order: impl Iterator<Item = usize>,
        now: u64,
        pool: &mut Vec<Candidate>,
        rifs: &mut Vec<u32>,
    ) -> Option<usize> {
        pool.clear();
        let mut fastest = u64::MAX;
        for i in order {
            let entry = &entries[i];
            let pending = u32::try_from(entry.peer.pending()).unwrap_or(u32::MAX);
            if pending == 0 {
                let sampled = entry.sampled_at.load(Ordering::Relaxed);
                if sampled == 0 || now.saturating_sub(sampled) > self.probe_ns {
                    return Some(i); // stale and idle: probe it
                }
            }
            let latency = match entry.estimate(pending) {
                NO_ESTIMATE => u64::MAX, // its probe is out: unknown until it answers
                ns => ns,
            };
            fastest = fastest.min(latency);
            pool.push(Candidate {
                index: i as u32,
                rif: self.rif(entry, pending, now),
                latency,
            });
        }
        // Only peers within COMPETITIVE× of the fastest compete and set the threshold.
        let limit = fastest.saturating_mul(COMPETITIVE);
        pool.retain(|c| c.latency <= limit);
        rifs.clear();
        rifs.extend(pool.iter().map(|c| c.rif));
        if rifs.is_empty() {
            return None;
        }
        let rank = ((self.q_rif * rifs.len() as f64).ceil() as usize).clamp(1, rifs.len());
        let threshold = *rifs.select_nth_unstable(rank - 1).1;
        // The fastest cold peer, and those close enough to it to count as equally fast: the
        // one with the fewest in flight of them.
        let fastest_cold = pool
            .iter()
            .filter(|c| c.rif <= threshold)
            .map(|c| c.latency)
            .min()?;
        let near = fastest_cold.saturating_add(fastest_cold / NEAR_DIVISOR);
        pool.iter()
            .filter(|c| c.rif <= threshold && c.latency <= near)
            .min_by_key(|c| (c.rif, c.latency))
            .map(|c| c.index as usize)
    }
}

impl Strategy for Prequal {
    fn name(&self) -> &str {
        "prequal"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.entries.stage(added, removed);
    }

    fn batch_end(&self) {
        self.entries.publish_staged(|current, changes| {
            apply_unordered(current, changes, |peer| Arc::new(Entry::new(peer.clone())))
        });
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.entries.generation();
        self.local.with_current(|local| {
            if local.view.generation != generation {
                local.view = self.entries.load();
            }
            let entries: &[Arc<Entry>] = &local.view;
            let n = entries.len();
            match n {
                0 => return None,
                1 => return Some(entries[0].peer.start_request()),
                _ => {}
            }
            let now = self.since_epoch(self.clock.now_ns());
            let start = local.rng.below(n);
            let k = if self.choices == 0 {
                n
            } else {
                self.choices.min(n)
            };
            let Local {
                rng, pool, rifs, ..
            } = local;
            let pick = if k == n {
                // Every peer, from a random start (so ties do not favour one).
                let order = (0..n).map(|s| {
                    if start + s >= n {
                        start + s - n
                    } else {
                        start + s
                    }
                });
                self.pick(entries, order, now, pool, rifs)
            } else {
                // k draws with replacement (a repeat only shrinks the pool a little).
                let order = std::iter::once(start).chain((1..k).map(|_| rng.below(n)));
                self.pick(entries, order, now, pool, rifs)
            };
            pick.map(|i| entries[i].peer.start_request())
        })
    }

    fn wants_outcomes(&self) -> bool {
        true
    }

    fn request_finished(&self, peer: &PeerRef, outcome: Outcome, latency: Duration) {
        self.request_finished_at(peer, outcome, latency, self.clock.now());
    }

    fn request_finished_at(
        &self,
        peer: &PeerRef,
        outcome: Outcome,
        latency: Duration,
        _at: Instant,
    ) {
        self.request_ended(&RequestEnd {
            peer,
            outcome,
            latency,
            now_ns: self.clock.now_ns(),
            clock: &self.clock,
            pending_at_start: None,
            load: None,
        });
    }

    fn request_ended(&self, end: &RequestEnd<'_>) {
        let entries = self.entries.peek();
        let Some(i) = index_of(&entries, end.peer) else {
            return; // no longer offered
        };
        let entry = &entries[i];
        let now = self.since_epoch(end.now_ns);
        if let Some(rif) = end.load.and_then(|l| l.requests_in_flight) {
            let own = end.peer.pending().min(u32::MAX as usize) as u64;
            entry
                .reported
                .store((u64::from(rif) << 32) | own, Ordering::Relaxed);
            entry.reported_at.store(now, Ordering::Relaxed);
        }
        // A cancelled request says when the caller gave up, not how the peer is doing.
        if end.outcome == Outcome::Cancelled {
            return;
        }
        let sample = u64::try_from(end.latency.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let level = level(end.pending_at_start.unwrap_or(0));
        let mut samples = entry.samples.lock().unwrap_or_else(|e| e.into_inner());
        let sampled = entry.sampled_at.load(Ordering::Relaxed);
        if sampled == 0 || now.saturating_sub(sampled) > self.probe_ns {
            // Stale: what the peer did before says nothing now.
            *samples = Samples::default();
        }
        // A failure (or a refusal) is a latency sample only when it is slower than the
        // estimate: a timeout says the peer is slow, a refused connection that fails in
        // microseconds does not say it is fast. Either way the peer was heard from.
        let known = samples.levels[level].median();
        if end.outcome == Outcome::Ok || (known != NO_ESTIMATE && sample > known) {
            // Levels not heard from for a probe interval are forgotten, so that one that
            // looked slow by chance, and so is not picked at, does not stay so.
            for l in samples.levels.iter_mut() {
                if l.len > 0 && now.saturating_sub(l.at) > self.probe_ns {
                    *l = Level::default();
                }
            }
            samples.levels[level].push(sample, now);
            entry.publish(&samples);
        }
        entry.sampled_at.store(now.max(sampled), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{Choice, ListOptions, LoadReport, PeerList};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A started list over `ids` (in this order, no shuffle) with `spec`, on a manual clock.
    fn list(spec: &str, ids: &[&str]) -> (PeerList, ManualClock) {
        let clock = ManualClock::new();
        let list = PeerList::new(
            ListOptions::default()
                .strategy_name(spec)
                .unwrap()
                .clock(clock.clone().into())
                .shuffle(false)
                .seed(5),
        )
        .unwrap();
        list.update(ids.iter().copied(), None::<&str>).unwrap();
        list.start().unwrap();
        (list, clock)
    }

    fn choose(list: &PeerList) -> Choice {
        list.choose(&Request::new()).unwrap()
    }

    /// Chooses, and finishes at once with `latency_of(peer)`; returns the peer.
    fn serve(list: &PeerList, latency_of: impl Fn(&str) -> u64) -> String {
        let c = choose(list);
        let id = c.peer().to_string();
        c.finish(Outcome::Ok, Some(ms(latency_of(&id))));
        id
    }

    /// Every peer answers once (each is stale at first, so each gets a probe).
    fn warm(list: &PeerList, latency_of: impl Fn(&str) -> u64, peers: usize) {
        let held: Vec<Choice> = (0..peers).map(|_| choose(list)).collect();
        let mut seen: Vec<String> = held.iter().map(|c| c.peer().to_string()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), peers, "each peer probed once");
        for c in held {
            let l = latency_of(c.peer().as_str());
            c.finish(Outcome::Ok, Some(ms(l)));
        }
    }

    #[test]
    fn load_levels_are_half_octaves() {
        let levels: Vec<usize> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 23, 24, 31, 32]
            .iter()
            .map(|&r| level(r))
            .collect();
        assert_eq!(levels, [0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10]);
        assert_eq!(level(u32::MAX), LOAD_LEVELS - 1);
        assert_eq!(level(200), LOAD_LEVELS - 1);
    }

    #[test]
    fn medians_ignore_one_outlier() {
        let mut l = Level::default();
        assert_eq!(l.median(), NO_ESTIMATE);
        l.push(10, 1);
        assert_eq!(l.median(), 10);
        l.push(500, 1); // a stalled answer
        assert_eq!(l.median(), 10, "the lower median of two");
        l.push(11, 1);
        l.push(12, 1);
        assert_eq!(l.median(), 11);
        l.push(9, 1); // the window slides: 500, 11, 12, 9
        assert_eq!(l.median(), 11);
    }

    #[test]
    fn the_fastest_peer_wins_and_a_slow_one_gets_one_probe_a_second() {
        let (list, clock) = list("prequal", &["fast", "slow"]);
        let latency = |p: &str| if p == "slow" { 100 } else { 10 };
        warm(&list, latency, 2);
        for _ in 0..50 {
            assert_eq!(serve(&list, latency), "fast");
        }
        // A second later both are stale; "fast" is busy, so only "slow" is probed.
        let busy = choose(&list);
        assert_eq!(busy.peer().as_str(), "fast");
        clock.advance(ms(1001));
        let probe = choose(&list);
        assert_eq!(
            probe.peer().as_str(),
            "slow",
            "the stale, idle peer gets one request"
        );
        // While its probe is out, it gets nothing more.
        assert_eq!(serve(&list, latency), "fast");
        probe.finish(Outcome::Ok, Some(ms(100)));
        busy.finish(Outcome::Ok, Some(ms(10)));
        for _ in 0..50 {
            assert_eq!(serve(&list, latency), "fast");
        }
    }

    #[test]
    fn a_recovered_peer_is_back_after_its_next_probe() {
        let (list, clock) = list("prequal", &["a", "b"]);
        warm(&list, |p| if p == "b" { 100 } else { 10 }, 2);
        clock.advance(ms(1001));
        let busy = choose(&list); // "a" (stale and idle, drawn first) or "b"
        let other = choose(&list);
        assert_ne!(busy.peer(), other.peer());
        busy.finish(Outcome::Ok, Some(ms(10)));
        other.finish(Outcome::Ok, Some(ms(10))); // b answers fast now
        let picks: Vec<String> = (0..40).map(|_| serve(&list, |_| 10)).collect();
        let b = picks.iter().filter(|p| *p == "b").count();
        assert!((10..=30).contains(&b), "b got {b} of 40");
    }

    #[test]
    fn the_busier_half_is_vetoed_among_equals() {
        let (list, _clock) = list("prequal", &["a", "b", "c", "d"]);
        warm(&list, |_| 10, 4);
        // Requests held open spread over the four: none gets two more than another.
        let held: Vec<Choice> = (0..40).map(|_| choose(&list)).collect();
        for id in ["a", "b", "c", "d"] {
            let n = held.iter().filter(|c| c.peer().as_str() == id).count();
            assert!((9..=11).contains(&n), "{id}: {n}");
        }
    }

    #[test]
    fn an_idle_slow_peer_does_not_beat_a_busy_fast_one() {
        let (list, _clock) = list("prequal", &["fast", "slow"]);
        let latency = |p: &str| if p == "slow" { 40 } else { 10 };
        warm(&list, latency, 2);
        // Many in flight on "fast" (it does not queue: its latency stays 10 ms at every
        // level seen), "slow" idle: "slow" is 4× slower, so it does not compete.
        let held: Vec<Choice> = (0..20).map(|_| choose(&list)).collect();
        assert!(held.iter().all(|c| c.peer().as_str() == "fast"));
    }

    #[test]
    fn a_peer_that_queues_is_avoided_at_the_load_it_queues_at() {
        let (list, _clock) = list("prequal", &["queues", "steady"]);
        warm(&list, |p| if p == "queues" { 5 } else { 8 }, 2);
        // "queues" answers in 5 ms alone, 60 ms with 4 or more others in flight; "steady"
        // 8 ms at any load. Teach both at levels 0..=5 by holding requests open.
        for _ in 0..4 {
            let held: Vec<Choice> = (0..12).map(|_| choose(&list)).collect();
            let mut at = std::collections::HashMap::<String, u64>::new();
            for c in held {
                let id = c.peer().to_string();
                let before = at.entry(id.clone()).or_default();
                let latency = if id == "queues" && *before >= 4 {
                    60
                } else if id == "queues" {
                    5
                } else {
                    8
                };
                *before += 1;
                c.finish(Outcome::Ok, Some(ms(latency)));
            }
        }
        let held: Vec<Choice> = (0..12).map(|_| choose(&list)).collect();
        let queued = held
            .iter()
            .filter(|c| c.peer().as_str() == "queues")
            .count();
        assert!(
            queued <= 5,
            "{queued} of 12 went to the peer that queues beyond 4"
        );
    }

    #[test]
    fn reported_in_flight_counts_make_a_peer_hot() {
        let (list, _clock) = list("prequal", &["a", "b"]);
        warm(&list, |p| if p == "a" { 10 } else { 12 }, 2);
        assert_eq!(serve(&list, |p| if p == "a" { 10 } else { 12 }), "a");
        // "a" reports 30 requests in flight from other clients: it is hot, "b" is not.
        let c = choose(&list);
        assert_eq!(c.peer().as_str(), "a");
        c.finish_with_load(Outcome::Ok, Some(ms(10)), Some(&LoadReport::in_flight(30)));
        for _ in 0..5 {
            assert_eq!(serve(&list, |p| if p == "a" { 10 } else { 12 }), "b");
        }
    }

    #[test]
    fn fast_failures_do_not_look_fast_and_cancellations_count_for_nothing() {
        let clock = ManualClock::new();
        let s = Prequal::with_options(Some(1), PrequalOptions::default(), clock.clone().into());
        let p = &crate::strategy::test_support::peers(&["a"])[0];
        s.add(p);
        s.request_finished(p, Outcome::Ok, ms(50));
        s.request_finished(p, Outcome::Failure, ms(1));
        s.request_finished(p, Outcome::Cancelled, ms(1));
        assert_eq!(s.estimate(p), Some(ms(50)));
        // A slow failure (a timeout) is a latency.
        s.request_finished(p, Outcome::Failure, ms(900));
        s.request_finished(p, Outcome::Failure, ms(900));
        s.request_finished(p, Outcome::Failure, ms(900));
        assert_eq!(s.estimate(p), Some(ms(900)));
        // Stale: the next answer starts afresh.
        clock.advance(ms(1001));
        s.request_finished(p, Outcome::Ok, ms(20));
        assert_eq!(s.estimate(p), Some(ms(20)));
        s.remove(p);
        assert_eq!(s.estimate(p), None);
    }

    #[test]
    fn large_lists_sample_a_pool() {
        let ids: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (sampled, _clock) = list("prequal", &refs);
        // Every peer is new (stale) and gets a probe before any gets a second request.
        let held: Vec<Choice> = (0..200).map(|_| choose(&sampled)).collect();
        let mut seen: Vec<&str> = held.iter().map(|c| c.peer().as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 150, "{} distinct", seen.len());
        drop(held);
        let (all, _) = list("prequal?choices=all", &refs);
        let held: Vec<Choice> = (0..200).map(|_| choose(&all)).collect();
        let mut seen: Vec<&str> = held.iter().map(|c| c.peer().as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 200, "a scan of all finds every stale peer");
    }

    #[test]
    fn options_parse_and_reject_bad_values() {
        let o: PrequalOptions = "prequal?choices=4&q_rif=0.9&probe_ms=250".parse().unwrap();
        assert_eq!(
            o,
            PrequalOptions {
                choices: 4,
                q_rif: 0.9,
                probe: ms(250)
            }
        );
        for bad in [
            "prequal?choices=1",
            "prequal?choices=65",
            "prequal?q_rif=-0.1",
            "prequal?q_rif=nan",
            "prequal?probe_ms=0",
            "prequal?colour=red",
            "prequal:fast",
        ] {
            assert!(bad.parse::<PrequalOptions>().is_err(), "{bad}");
        }
    }
}
