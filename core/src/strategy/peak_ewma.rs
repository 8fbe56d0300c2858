//! `peak-ewma`: power of two choices on a latency estimate × load (Finagle's and tower's
//! Peak-EWMA).
//!
//! Each available peer carries an estimate of its latency: an exponentially weighted moving
//! average that *jumps* to any sample slower than the estimate ("peak") and otherwise
//! moves toward the sample with weight `1 - exp(-Δt/τ)`, where Δt is the time since the
//! previous sample and τ is [`PeakEwmaOptions::decay`] (default 10 s). Between samples the
//! estimate decays toward zero as `estimate × exp(-Δt/τ)` (as tower's `load()` does), so
//! a peer that was slow long ago gets tried again. A new peer starts at
//! [`PeakEwmaOptions::default_rtt`] (default 30 ms, linkerd's choice; tower makes the caller
//! pick one).
//!
//! The cost of a peer is `estimate × (pending + 1)`; `choose` draws two distinct peers at
//! random (seedable, per-thread streams as in `two-random-choices`) and takes the cheaper
//! one (a tie keeps the first draw). With one peer, that peer. Since both estimates decay
//! by the same factor per unit of time, `choose` compares them without reading the clock
//! (one `exp` of the difference of their sample times).
//!
//! Samples are the latencies given to [`Choice::finish`](crate::Choice::finish), or, when
//! none is given (or the choice is dropped), the time from `choose` to the end on the
//! list's [`Clock`]. Every outcome counts, as in tower (a cancelled
//! request's duration says the peer was slow enough to give up on).
//!
//! # Difference from tower
//! tower's `load()` *writes* the decayed estimate back on every read; here reads only
//! compute it (choose writes to no shared cache line). A sample applies tower's update to
//! the estimate as readers see it (decayed to now), with Δt since the previous sample:
//! `next = max-peak(sample, decayed)` or `decayed·e^(-Δt/τ) + sample·(1 - e^(-Δt/τ))`.
//! tower's Δt is the time since the last *read* (tiny under load, so a fast sample there
//! barely moves the decayed estimate); ours weighs a fast sample by how long the estimate
//! went unconfirmed. A recovered peer is taken back as soon as its decayed estimate falls
//! below the others' (its next fast sample then is a "peak" above the decayed value).
//!
//! A peer that stops being available and comes back starts again at `default_rtt`. Pick
//! `default_rtt` near your real latencies: a peer without samples competes with
//! `default_rtt` (decaying with τ), so a value far above the real latency keeps new peers
//! out for a while (≈ τ·ln(default/real)), and one far below sends them a burst.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, Outcome, PeerList, Request};
//!
//! let list = PeerList::new(
//!     ListOptions::default().strategy_name("peak-ewma?decay_ms=10000&default_rtt_ms=30").unwrap(),
//! ).unwrap();
//! list.update(["fast", "slow"], None::<&str>).unwrap();
//! list.start().unwrap();
//! for _ in 0..10 {
//!     let c = list.choose(&Request::new()).unwrap();
//!     let latency = if c.peer().as_str() == "slow" { 500 } else { 5 };
//!     c.finish(Outcome::Ok, Some(Duration::from_millis(latency)));
//! }
//! let picks: Vec<String> = (0..10)
//!     .map(|_| list.choose(&Request::new()).unwrap().peer().to_string())
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
use crate::spec::{ms, parse_all_or_int, parse_ms, unknown_key, SpecOptions};

/// Options of `peak-ewma` (name syntax:
/// `peak-ewma?decay_ms=10000&default_rtt_ms=30&choices=2`).
///
/// ```
/// use std::time::Duration;
/// use peerlb::strategy::peak_ewma::PeakEwmaOptions;
/// let o = PeakEwmaOptions::default();
/// assert_eq!(o.decay, Duration::from_secs(10));
/// assert_eq!(o.default_rtt, Duration::from_millis(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeakEwmaOptions {
    /// The EWMA's time constant τ (> 0; default 10 s; key `decay_ms`).
    pub decay: Duration,
    /// The estimate of a peer without samples (default 30 ms; key `default_rtt_ms`).
    pub default_rtt: Duration,
    /// How many peers each choose compares (key `choices`): 2 (the default, power of two
    /// choices), any k ≥ 2 (k random draws, with replacement, as Envoy's least-request
    /// `choice_count`), or 0 = every available peer (key value `all`; O(n) per choose).
    /// More choices avoid slow peers better when several are slow at once (with 2 of 4
    /// slow, two choices draw the slow pair one time in six).
    pub choices: usize,
}

impl Default for PeakEwmaOptions {
    fn default() -> Self {
        PeakEwmaOptions {
            decay: Duration::from_secs(10),
            default_rtt: Duration::from_millis(30),
            choices: 2,
        }
    }
}

/// The most peers one choose may compare (key `choices`), besides `all`.
pub const MAX_CHOICES: usize = 1024;

impl SpecOptions for PeakEwmaOptions {
    const KIND: &'static str = "strategy";
    const NAME: &'static str = "peak-ewma";

    /// `decay_ms` (1..=4294967295), `default_rtt_ms` (0..=4294967295), `choices` (`all`
    /// or 2..=1024).
    ///
    /// ```
    /// use peerlb::strategy::SpecOptions;
    /// use peerlb::strategy::peak_ewma::PeakEwmaOptions;
    /// let mut o = PeakEwmaOptions::default();
    /// o.set("default_rtt_ms", "5").unwrap();
    /// o.set("choices", "all").unwrap();
    /// assert_eq!(o.to_string(), "peak-ewma?default_rtt_ms=5&choices=all");
    /// assert!(o.set("colour", "red").is_err());
    /// assert!(o.set("decay_ms", "0").is_err()); // τ must be positive
    /// ```
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let any_ms = 0..=u64::from(u32::MAX);
        match key {
            "decay_ms" => self.decay = parse_ms(key, value, 1..=*any_ms.end())?,
            "default_rtt_ms" => self.default_rtt = parse_ms(key, value, any_ms)?,
            "choices" => self.choices = parse_all_or_int(key, value, 2..=MAX_CHOICES)?.unwrap_or(0),
            _ => {
                return Err(unknown_key(
                    Self::NAME,
                    key,
                    &["decay_ms", "default_rtt_ms", "choices"],
                ))
            }
        }
        Ok(())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let defaults = PeakEwmaOptions::default();
        let mut pairs = Vec::new();
        if self.decay != defaults.decay {
            pairs.push(("decay_ms", ms(self.decay)));
        }
        if self.default_rtt != defaults.default_rtt {
            pairs.push(("default_rtt_ms", ms(self.default_rtt)));
        }
        if self.choices != defaults.choices {
            pairs.push((
                "choices",
                match self.choices {
                    0 => "all".to_owned(),
                    n => n.to_string(),
                },
            ));
        }
        pairs
    }
}

impl std::fmt::Display for PeakEwmaOptions {
    /// The canonical spec, e.g. `peak-ewma?choices=all` (see [`SpecOptions::to_spec`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl std::str::FromStr for PeakEwmaOptions {
    type Err = Error;
    /// Parses `peak-ewma[?key=value&...]` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<PeakEwmaOptions> {
        PeakEwmaOptions::from_spec(s)
    }
}

/// One available peer and its latency estimate.
struct Entry {
    peer: PeerRef,
    /// The estimate in nanoseconds (f64 bits), as of `at`.
    rtt: AtomicU64,
    /// When `rtt` was last set, in nanoseconds since the strategy's epoch.
    at: AtomicU64,
    /// Serializes samples (readers do not take it).
    update: Mutex<()>,
}

impl Entry {
    /// The estimate decayed to `now`.
    #[inline]
    fn estimate(&self, now: u64, decay_ns: f64) -> f64 {
        let rtt = f64::from_bits(self.rtt.load(Ordering::Relaxed));
        let at = self.at.load(Ordering::Relaxed);
        if now > at {
            rtt * (-((now - at) as f64) / decay_ns).exp()
        } else {
            rtt
        }
    }
}

/// Whether `a` costs less than `b` now. Both estimates decay by `exp(-(now - at)/τ)`, so
/// the comparison needs no clock: `rtt_a·(p_a+1)·exp((at_a - at_b)/τ) < rtt_b·(p_b+1)`.
/// `inv_decay` is 1/τ in 1/ns.
#[inline]
fn cheaper(a: &Entry, b: &Entry, inv_decay: f64) -> bool {
    let ra = f64::from_bits(a.rtt.load(Ordering::Relaxed)) * (a.peer.pending() as f64 + 1.0);
    let rb = f64::from_bits(b.rtt.load(Ordering::Relaxed)) * (b.peer.pending() as f64 + 1.0);
    let (ta, tb) = (a.at.load(Ordering::Relaxed), b.at.load(Ordering::Relaxed));
    if ta == tb {
        return ra < rb;
    }
    // (A signed difference converts to a float in one instruction; a u64 does not.)
    let shift = ta.wrapping_sub(tb) as i64 as f64 * inv_decay;
    ra * exp_near_zero(shift) < rb
}

/// `e^x`, by its Taylor polynomial when |x| < 1e-3 (relative error below 2e-10), else
/// `f64::exp`. Decay exponents are Δt/τ with Δt the milliseconds between two samples and τ
/// seconds, so the polynomial almost always applies and the hot path pays no `exp` call.
#[inline]
fn exp_near_zero(x: f64) -> f64 {
    if x.abs() < 1e-3 {
        1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0)))
    } else {
        x.exp()
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
}

/// The peak-EWMA strategy.
pub struct PeakEwma {
    entries: Publisher<Vec<Arc<Entry>>>,
    local: Striped<Local>,
    clock: Clock,
    /// The clock's [`Clock::now_ns`] when the strategy was made.
    epoch_ns: u64,
    decay_ns: f64,
    /// 1 / `decay_ns` (a multiply is cheaper than a division).
    inv_decay: f64,
    default_rtt_ns: f64,
    /// Peers compared per choose; 0 = all.
    choices: usize,
}

impl PeakEwma {
    /// A peak-EWMA strategy with default options and the real clock; `seed` makes the
    /// random draws reproducible.
    ///
    /// ```
    /// use peerlb::Strategy;
    /// let s = peerlb::strategy::peak_ewma::PeakEwma::new(Some(1));
    /// assert_eq!(s.name(), "peak-ewma");
    /// ```
    pub fn new(seed: Option<u64>) -> PeakEwma {
        PeakEwma::with_options(seed, PeakEwmaOptions::default(), Clock::real())
    }

    /// A peak-EWMA strategy with `options`, keeping time with `clock`.
    ///
    /// ```
    /// use peerlb::clock::ManualClock;
    /// use peerlb::strategy::peak_ewma::{PeakEwma, PeakEwmaOptions};
    /// let s = PeakEwma::with_options(Some(1), PeakEwmaOptions::default(), ManualClock::new().into());
    /// ```
    pub fn with_options(seed: Option<u64>, options: PeakEwmaOptions, clock: Clock) -> PeakEwma {
        let entries = Publisher::new(Vec::new());
        PeakEwma {
            local: Striped::new(|i| Local {
                view: entries.load(),
                rng: SplitMix::for_stripe(seed, i),
            }),
            entries,
            epoch_ns: clock.now_ns(),
            clock,
            decay_ns: options.decay.as_nanos().max(1) as f64,
            inv_decay: 1.0 / options.decay.as_nanos().max(1) as f64,
            default_rtt_ns: options.default_rtt.as_nanos() as f64,
            choices: options.choices,
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.since_epoch(self.clock.now_ns())
    }

    /// Nanoseconds from the strategy's epoch to a [`Clock::now_ns`] reading (at least 1).
    #[inline]
    fn since_epoch(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.epoch_ns).max(1)
    }

    /// The current estimate for `peer` (decayed to now), if the strategy offers it; for
    /// tests and introspection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use peerlb::{Peer, PeerId, Strategy, Outcome};
    /// use peerlb::clock::ManualClock;
    /// use peerlb::strategy::peak_ewma::{PeakEwma, PeakEwmaOptions};
    /// let s = PeakEwma::with_options(None, PeakEwmaOptions::default(), ManualClock::new().into());
    /// let p = Peer::detached(PeerId::new("a").unwrap(), 1);
    /// s.add(&p);
    /// assert_eq!(s.estimate(&p), Some(Duration::from_millis(30)));
    /// s.request_finished(&p, Outcome::Ok, Duration::from_millis(300));
    /// assert_eq!(s.estimate(&p), Some(Duration::from_millis(300)));
    /// ```
    pub fn estimate(&self, peer: &PeerRef) -> Option<Duration> {
        let entries = self.entries.peek();
        let i = index_of(&entries, peer)?;
        let ns = entries[i].estimate(self.now(), self.decay_ns);
        Some(Duration::from_nanos(ns.round() as u64))
    }
}

impl Strategy for PeakEwma {
    fn name(&self) -> &str {
        "peak-ewma"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.entries.stage(added, removed);
    }

    fn batch_end(&self) {
        self.entries.publish_staged(|current, changes| {
            // A new peer starts at the default estimate, as of now.
            let now = self.now();
            apply_unordered(current, changes, |peer| {
                Arc::new(Entry {
                    peer: peer.clone(),
                    rtt: AtomicU64::new(self.default_rtt_ns.to_bits()),
                    at: AtomicU64::new(now),
                    update: Mutex::new(()),
                })
            })
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
                0 => None,
                1 => Some(entries[0].peer.start_request()),
                _ if self.choices != 2 => {
                    // k draws with replacement, or a scan of all from a random start (so
                    // ties do not always favour the same peer); keep the cheapest.
                    let start = local.rng.below(n);
                    let mut best = start;
                    if self.choices == 0 || self.choices >= n * 4 {
                        for step in 1..n {
                            let mut j = start + step;
                            if j >= n {
                                j -= n;
                            }
                            if cheaper(&entries[j], &entries[best], self.inv_decay) {
                                best = j;
                            }
                        }
                    } else {
                        for _ in 1..self.choices {
                            let j = local.rng.below(n);
                            if cheaper(&entries[j], &entries[best], self.inv_decay) {
                                best = j;
                            }
                        }
                    }
                    Some(entries[best].peer.start_request())
                }
                _ => {
                    let i = local.rng.below(n);
                    let mut j = i + 1 + local.rng.below(n - 1);
                    if j >= n {
                        j -= n;
                    }
                    let pick = if cheaper(&entries[j], &entries[i], self.inv_decay) {
                        j
                    } else {
                        i
                    };
                    Some(entries[pick].peer.start_request())
                }
            }
        })
    }

    fn wants_outcomes(&self) -> bool {
        true
    }

    fn request_finished(&self, peer: &PeerRef, _outcome: Outcome, latency: Duration) {
        self.sample(peer, latency, self.clock.now_ns());
    }

    fn request_finished_at(
        &self,
        peer: &PeerRef,
        _outcome: Outcome,
        latency: Duration,
        _at: Instant,
    ) {
        self.sample(peer, latency, self.clock.now_ns());
    }

    #[inline]
    fn request_ended(&self, end: &RequestEnd<'_>) {
        self.sample(end.peer, end.latency, end.now_ns);
    }
}

impl PeakEwma {
    /// One latency sample for `peer`, taken at `now_ns` (a [`Clock::now_ns`] reading).
    #[inline]
    fn sample(&self, peer: &PeerRef, latency: Duration, now_ns: u64) {
        let now = self.since_epoch(now_ns);
        // The finishing thread's own cached array (a stripe lock) rather than the shared
        // published one (an arc-swap load): the entry is the same.
        let generation = self.entries.generation();
        self.local.with_current(|local| {
            if local.view.generation != generation {
                local.view = self.entries.load();
            }
            let Some(i) = index_of(&local.view, peer) else {
                return; // no longer offered: its estimate is gone
            };
            let entry = &local.view[i];
            let _u = entry.update.lock().unwrap_or_else(|e| e.into_inner());
            // (Seconds times 1e9: a u128-to-float conversion costs more than the multiply.)
            let rtt = latency.as_secs_f64() * 1e9;
            let estimate = f64::from_bits(entry.rtt.load(Ordering::Relaxed));
            let at = entry.at.load(Ordering::Relaxed);
            // What readers see now: the estimate decayed since the previous sample (tower's
            // load() writes this back on every read; we compute it here instead).
            let decay = exp_near_zero(-(now.saturating_sub(at) as i64 as f64) * self.inv_decay);
            let decayed = estimate * decay;
            // tower's RttEstimate::update on that value: a slower sample is taken at once;
            // a faster one is blended in with weight 1 - exp(-Δt/τ).
            let next = if decayed < rtt {
                rtt
            } else {
                decayed * decay + rtt * (1.0 - decay)
            };
            entry.rtt.store(next.to_bits(), Ordering::Relaxed);
            entry.at.store(now.max(at), Ordering::Relaxed);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::strategy::test_support::peers;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn strategy(clock: &ManualClock) -> PeakEwma {
        PeakEwma::with_options(Some(7), PeakEwmaOptions::default(), clock.clone().into())
    }

    #[test]
    fn peaks_jump_and_lower_samples_blend_with_time() {
        let clock = ManualClock::new();
        let s = strategy(&clock);
        let p = &peers(&["a"])[0];
        s.add(p);
        s.request_finished(p, Outcome::Ok, ms(100));
        assert_eq!(s.estimate(p), Some(ms(100)));
        // One τ later, the estimate has decayed by e and a 10 ms sample blends in.
        clock.advance(Duration::from_secs(10));
        let decayed = s.estimate(p).unwrap().as_secs_f64() * 1000.0;
        assert!(
            (decayed - 100.0 / std::f64::consts::E).abs() < 0.01,
            "{decayed}"
        );
        s.request_finished(p, Outcome::Ok, ms(10));
        let d = (-1.0f64).exp();
        let want = 100.0 * d * d + 10.0 * (1.0 - d);
        let got = s.estimate(p).unwrap().as_secs_f64() * 1000.0;
        assert!((got - want).abs() < 0.01, "{got} vs {want}");
        // A slower sample is taken at once.
        s.request_finished(p, Outcome::Failure, ms(900));
        assert_eq!(s.estimate(p), Some(ms(900)));
    }

    #[test]
    fn cost_counts_pending_and_ties_keep_the_first_draw() {
        let clock = ManualClock::new();
        let s = strategy(&clock);
        let ps = peers(&["a", "b"]);
        for p in &ps {
            s.add(p);
        }
        // Same estimates: the one with fewer pending wins every time.
        let _busy: Vec<_> = (0..3).map(|_| ps[0].start_request()).collect();
        for _ in 0..20 {
            let r = s.choose(&Request::new()).unwrap();
            assert_eq!(r.peer().id().as_str(), "b");
        }
    }

    #[test]
    fn samples_for_removed_peers_are_ignored() {
        let clock = ManualClock::new();
        let s = strategy(&clock);
        let ps = peers(&["a", "b"]);
        s.add(&ps[0]);
        s.request_finished(&ps[1], Outcome::Ok, ms(5));
        s.remove(&ps[0]);
        s.request_finished(&ps[0], Outcome::Ok, ms(5));
        assert_eq!(s.estimate(&ps[0]), None);
        assert!(s.choose(&Request::new()).is_none());
    }

    /// Picks among 4 peers of which 2 are 10x slower, counting picks of the slow ones.
    fn slow_picks(choices: &str) -> usize {
        let clock = ManualClock::new();
        let mut o = PeakEwmaOptions::default();
        o.set("choices", choices).unwrap();
        let s = PeakEwma::with_options(Some(3), o, clock.clone().into());
        let ps = peers(&["fast1", "fast2", "slow1", "slow2"]);
        for p in &ps {
            s.add(p);
            let rtt = if p.id().as_str().starts_with("slow") {
                100
            } else {
                10
            };
            s.request_finished(p, Outcome::Ok, ms(rtt));
        }
        (0..600)
            .filter(|_| {
                let r = s.choose(&Request::new()).unwrap();
                r.peer().id().as_str().starts_with("slow")
            })
            .count()
    }

    #[test]
    fn more_choices_avoid_two_slow_peers() {
        // Two choices draw the slow pair one time in six; a scan of all never picks them
        // while the fast ones are idle; four draws miss both fast ones (1/2)^4 = 1/16.
        let two = slow_picks("2");
        assert!((60..=150).contains(&two), "two choices: {two}");
        assert_eq!(slow_picks("all"), 0);
        let four = slow_picks("4");
        assert!(four > 0 && four < two, "four choices: {four}");
        let mut o = PeakEwmaOptions::default();
        assert!(o.set("choices", "1").is_err());
        assert!(o.set("choices", "x").is_err());
    }
}
