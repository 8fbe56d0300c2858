//! `weighted-round-robin:orca`: weighted round-robin with weights the backends' load reports
//! set, as gRPC's `weighted_round_robin` policy computes them from ORCA reports (gRFC A58).
//!
//! # Weights
//! Each report ([`LoadReport`], passed to
//! [`Choice::finish_with_load`](crate::Choice::finish_with_load)) with a utilization above 0
//! and a qps above 0 sets its peer's weight to
//!
//! ```text
//! qps / (utilization + eps / qps × error_utilization_penalty)
//! ```
//!
//! (a report missing either is ignored, as gRPC ignores "empty" reports). A weight is used
//! only once the peer has reported for a whole blackout period (default 10 s; so a peer
//! that just started, whose qps is still low, is not starved) and only while its newest
//! report is younger than the expiration period (default 3 min; an expired peer starts a
//! new blackout when reports resume). Peers without a usable weight get the mean of the
//! usable ones; with fewer than two usable weights, or all of them equal, it is plain
//! round-robin — so without reports it balances like `round-robin`.
//!
//! # Schedule
//! The weights are turned into a schedule at most once per update period (default 1 s):
//! scaled so the largest is 65535, then picked by gRPC's static stride ("EDF") scheduler —
//! a sequence number `i` names backend `i mod n` in generation `i / n`, which is picked
//! when `(weight × generation + index × 32767) mod 65535 ≥ 65535 − weight`, else skipped.
//! Each thread keeps its own sequence number in its stripe (gRPC shares one atomic counter),
//! so `choose` writes no shared cache line; on one thread the order is gRPC's for the same
//! starting number.
//!
//! gRPC recomputes the schedule on a timer; here the finish that brings a report after the
//! update period has passed rebuilds it (no `choose` ever builds). A change of the peer set
//! rebuilds it at once. A peer that becomes available again starts without a weight (its
//! blackout applies again), as a gRPC subchannel that reconnects.
//!
//! Options (`weighted-round-robin:orca?key=value&...`): `blackout_ms` (0..=4294967295,
//! default 10000; 0 = no blackout), `weight_expiration_ms` (1..=4294967295, default
//! 180000), `weight_update_ms` (100..=4294967295, default 1000), and
//! `error_utilization_penalty` (0..=1000000, default 1). gRPC's out-of-band reporting
//! (`enable_oob_load_report`) has no counterpart: reports come with responses.
//!
//! ```
//! use std::time::Duration;
//! use peerlb::{ListOptions, LoadReport, Outcome, PeerList, Request};
//! let list = PeerList::new(
//!     ListOptions::default().strategy_name("weighted-round-robin:orca?blackout_ms=0").unwrap(),
//! ).unwrap();
//! list.update(["a", "b"], None::<&str>).unwrap();
//! list.start().unwrap();
//! // Without reports: round-robin.
//! let first: Vec<String> = (0..4).map(|_| list.choose(&Request::new()).unwrap().peer().to_string()).collect();
//! assert_eq!(first.iter().filter(|p| *p == "a").count(), 2);
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::snapshot::{apply_unordered, index_of, Member, Published, Publisher};
use super::stripes::{SplitMix, Striped};
use super::{RequestEnd, Strategy};
use crate::clock::Clock;
use crate::error::Result;
use crate::load_report::LoadReport;
use crate::peer::{InFlight, PeerRef};
use crate::request::{Outcome, Request};
use crate::spec::{ms, parse_float, parse_ms, unknown_key};

/// Options of `weighted-round-robin:orca` (gRPC's `weighted_round_robin` config).
///
/// ```
/// use std::time::Duration;
/// use peerlb::strategy::orca::OrcaOptions;
/// let o = OrcaOptions::default();
/// assert_eq!(o.blackout, Duration::from_secs(10));
/// assert_eq!(o.weight_expiration, Duration::from_secs(180));
/// assert_eq!(o.weight_update, Duration::from_secs(1));
/// assert_eq!(o.error_utilization_penalty, 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrcaOptions {
    /// How long a peer must have reported before its weight is used (key `blackout_ms`;
    /// default 10 s; zero = at once).
    pub blackout: Duration,
    /// A weight whose newest report is this old is no longer used (key
    /// `weight_expiration_ms`; default 3 min).
    pub weight_expiration: Duration,
    /// How often the schedule takes new weights (key `weight_update_ms`; default 1 s, at
    /// least 100 ms).
    pub weight_update: Duration,
    /// How much errors count as utilization: `eps / qps × penalty` (key
    /// `error_utilization_penalty`; default 1).
    pub error_utilization_penalty: f64,
}

impl Default for OrcaOptions {
    fn default() -> Self {
        OrcaOptions {
            blackout: Duration::from_secs(10),
            weight_expiration: Duration::from_secs(180),
            weight_update: Duration::from_secs(1),
            error_utilization_penalty: 1.0,
        }
    }
}

/// The keys of [`OrcaOptions`].
pub(crate) const KEYS: [&str; 4] = [
    "blackout_ms",
    "weight_expiration_ms",
    "weight_update_ms",
    "error_utilization_penalty",
];

impl OrcaOptions {
    /// Sets one option by its key (see the [module docs](self)); `name` is the spec name
    /// for messages.
    pub(crate) fn set(&mut self, name: &str, key: &str, value: &str) -> Result<()> {
        let any = u64::from(u32::MAX);
        match key {
            "blackout_ms" => self.blackout = parse_ms(key, value, 0..=any)?,
            "weight_expiration_ms" => self.weight_expiration = parse_ms(key, value, 1..=any)?,
            "weight_update_ms" => self.weight_update = parse_ms(key, value, 100..=any)?,
            "error_utilization_penalty" => {
                self.error_utilization_penalty = parse_float(key, value, 0.0..=1e6)?
            }
            _ => return Err(unknown_key(name, key, &KEYS)),
        }
        Ok(())
    }

    /// The options that differ from the defaults, as spec pairs.
    pub(crate) fn changed(&self) -> Vec<(&'static str, String)> {
        let d = OrcaOptions::default();
        let mut pairs = Vec::new();
        if self.blackout != d.blackout {
            pairs.push(("blackout_ms", ms(self.blackout)));
        }
        if self.weight_expiration != d.weight_expiration {
            pairs.push(("weight_expiration_ms", ms(self.weight_expiration)));
        }
        if self.weight_update != d.weight_update {
            pairs.push(("weight_update_ms", ms(self.weight_update)));
        }
        if self.error_utilization_penalty != d.error_utilization_penalty {
            pairs.push((
                "error_utilization_penalty",
                self.error_utilization_penalty.to_string(),
            ));
        }
        pairs
    }
}

/// "Never" in the time fields of [`Weight`].
const NEVER: u64 = 0;

/// The largest scaled weight (gRPC's `maxWeight`).
const MAX_WEIGHT: u64 = u16::MAX as u64;

/// A peer's weight as its reports set it (gRPC's `endpointWeight`).
#[derive(Default)]
struct Weight {
    value: f64,
    /// When reports began (since the last expiry), ns since the epoch; `NEVER` = not yet.
    non_empty_since: u64,
    /// When the newest report came; `NEVER` = no report yet.
    last_updated: u64,
}

struct Entry {
    peer: PeerRef,
    weight: Mutex<Weight>,
}

impl Member for Arc<Entry> {
    #[inline]
    fn peer(&self) -> &PeerRef {
        &self.peer
    }
}

/// One published schedule.
struct Table {
    entries: Vec<Arc<Entry>>,
    /// Scaled weights for the stride scheduler; empty = plain round-robin.
    weights: Vec<u16>,
    /// When the next rebuild may take new weights (ns since the epoch).
    next_update: u64,
}

struct Local {
    table: Arc<Published<Table>>,
    /// This thread's sequence number (gRPC's `inc()`); set at its first choose.
    sequence: u32,
    used: bool,
}

/// The `weighted-round-robin:orca` strategy (see the [module docs](self)).
pub struct OrcaWeightedRoundRobin {
    table: Publisher<Table>,
    local: Striped<Local>,
    /// Where the sequence numbers of the threads that choose start: the k-th thread to
    /// choose starts at stream `k` of this seed, so one thread's order depends only on
    /// the seed.
    starts: Mutex<SplitMix>,
    options: OrcaOptions,
    clock: Clock,
    /// The clock's [`Clock::now_ns`] when the strategy was made.
    epoch_ns: u64,
}

impl OrcaWeightedRoundRobin {
    /// A strategy with `options`, keeping time with `clock`; `seed` picks the threads'
    /// starting sequence numbers (as gRPC starts its counter at a random number).
    ///
    /// ```
    /// use peerlb::Strategy;
    /// use peerlb::clock::Clock;
    /// use peerlb::strategy::orca::{OrcaOptions, OrcaWeightedRoundRobin};
    /// let s = OrcaWeightedRoundRobin::with_options(Some(1), OrcaOptions::default(), Clock::real());
    /// assert_eq!(s.name(), "weighted-round-robin");
    /// ```
    pub fn with_options(
        seed: Option<u64>,
        options: OrcaOptions,
        clock: Clock,
    ) -> OrcaWeightedRoundRobin {
        let table = Publisher::new(Table {
            entries: Vec::new(),
            weights: Vec::new(),
            next_update: 0,
        });
        OrcaWeightedRoundRobin {
            local: Striped::new(|_| Local {
                table: table.load(),
                sequence: 0,
                used: false,
            }),
            starts: Mutex::new(SplitMix::for_stripe(seed, 0)),
            table,
            options: OrcaOptions {
                weight_update: options.weight_update.max(Duration::from_millis(100)),
                ..options
            },
            epoch_ns: clock.now_ns(),
            clock,
        }
    }

    /// Nanoseconds from the epoch to a [`Clock::now_ns`] reading, at least 1 (0 is
    /// [`NEVER`]).
    fn since_epoch(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.epoch_ns).max(1)
    }

    fn ns(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The weight `entry` counts with at `now` (gRPC's `endpointWeight.weight`): 0 when it
    /// has no report, its reports expired, or its blackout is not over.
    fn weight_at(&self, entry: &Entry, now: u64) -> f64 {
        let mut w = entry.weight.lock().unwrap_or_else(|e| e.into_inner());
        if w.last_updated == NEVER {
            return 0.0;
        }
        if now.saturating_sub(w.last_updated) >= Self::ns(self.options.weight_expiration) {
            w.non_empty_since = NEVER;
            return 0.0;
        }
        let blackout = Self::ns(self.options.blackout);
        if blackout != 0
            && (w.non_empty_since == NEVER || now.saturating_sub(w.non_empty_since) < blackout)
        {
            return 0.0;
        }
        w.value
    }

    /// The schedule for `entries` at `now` (gRPC's `newScheduler`).
    fn build(&self, entries: Vec<Arc<Entry>>, now: u64) -> Table {
        let next_update = now.saturating_add(Self::ns(self.options.weight_update));
        let round_robin = |entries| Table {
            entries,
            weights: Vec::new(),
            next_update,
        };
        let n = entries.len();
        if n <= 1 {
            return round_robin(entries);
        }
        let raw: Vec<f64> = entries.iter().map(|e| self.weight_at(e, now)).collect();
        let zeros = raw.iter().filter(|&&w| w == 0.0).count();
        if zeros >= n - 1 {
            return round_robin(entries);
        }
        let sum: f64 = raw.iter().sum();
        let max = raw.iter().copied().fold(0.0, f64::max);
        let scale = MAX_WEIGHT as f64 / max;
        let mean = (scale * sum / (n - zeros) as f64).round() as u16;
        let mut all_equal = true;
        let weights: Vec<u16> = raw
            .iter()
            .map(|&w| {
                if w == 0.0 {
                    mean
                } else {
                    let scaled = (scale * w).round() as u16;
                    all_equal &= scaled == mean;
                    scaled
                }
            })
            .collect();
        if all_equal {
            return round_robin(entries);
        }
        Table {
            entries,
            weights,
            next_update,
        }
    }

    /// The scaled weights of the current schedule, in the order of its peers (empty: plain
    /// round-robin), with those peers' ids; for tests and introspection.
    ///
    /// ```
    /// use peerlb::clock::Clock;
    /// use peerlb::strategy::orca::{OrcaOptions, OrcaWeightedRoundRobin};
    /// let s = OrcaWeightedRoundRobin::with_options(None, OrcaOptions::default(), Clock::real());
    /// assert!(s.schedule().is_empty());
    /// ```
    pub fn schedule(&self) -> Vec<(String, u16)> {
        let table = self.table.peek();
        table
            .weights
            .iter()
            .zip(&table.entries)
            .map(|(w, e)| (e.peer.id().to_string(), *w))
            .collect()
    }

    /// A starting sequence number for a thread's first choose.
    #[cold]
    fn claim(&self) -> u32 {
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        starts.below(1 << 32) as u32
    }

    /// Takes new weights into the schedule if the update period is over (unless another
    /// thread is rebuilding it).
    fn refresh(&self, now: u64) {
        self.table.republish(false, |table| {
            (now >= table.next_update).then(|| self.build(table.entries.clone(), now))
        });
    }
}

/// gRPC's static stride scheduler: the index `sequence` picks, or `None` to skip it.
#[inline]
fn stride_pick(weights: &[u16], sequence: u32) -> Option<usize> {
    const OFFSET: u64 = MAX_WEIGHT / 2;
    let n = weights.len() as u64;
    let idx = u64::from(sequence);
    let index = idx % n;
    let generation = idx / n;
    let weight = u64::from(weights[index as usize]);
    let m = (weight * generation + index * OFFSET) % MAX_WEIGHT;
    (m >= MAX_WEIGHT - weight).then_some(index as usize)
}

impl Strategy for OrcaWeightedRoundRobin {
    fn name(&self) -> &str {
        "weighted-round-robin"
    }

    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        self.table.stage(added, removed);
    }

    fn batch_end(&self) {
        let now = self.since_epoch(self.clock.now_ns());
        self.table.publish_staged(|current, changes| {
            let entries = apply_unordered(&current.entries, changes, |peer| {
                Arc::new(Entry {
                    peer: peer.clone(),
                    weight: Mutex::new(Weight::default()),
                })
            });
            self.build(entries, now)
        });
    }

    #[inline]
    fn choose(&self, _request: &Request<'_>) -> Option<InFlight> {
        let generation = self.table.generation();
        self.local.with_current(|local| {
            if local.table.generation != generation {
                local.table = self.table.load();
            }
            let table = &*local.table;
            let n = table.entries.len();
            if n == 0 {
                return None;
            }
            if !local.used {
                local.sequence = self.claim();
                local.used = true;
            }
            if table.weights.is_empty() {
                local.sequence = local.sequence.wrapping_add(1);
                let i = (local.sequence as usize) % n;
                return Some(table.entries[i].peer.start_request());
            }
            // Ends within n steps: the heaviest peer (65535) is never skipped.
            loop {
                local.sequence = local.sequence.wrapping_add(1);
                if let Some(i) = stride_pick(&table.weights, local.sequence) {
                    return Some(table.entries[i].peer.start_request());
                }
            }
        })
    }

    fn wants_outcomes(&self) -> bool {
        true
    }

    fn request_ended(&self, end: &RequestEnd<'_>) {
        let now = self.since_epoch(end.now_ns);
        if let Some(report) = end.load {
            self.report(end.peer, report, now);
        }
        if now >= self.table.peek().next_update {
            self.refresh(now);
        }
    }

    fn request_finished(&self, _peer: &PeerRef, _outcome: Outcome, _latency: Duration) {}
}

impl OrcaWeightedRoundRobin {
    /// A peer's report (gRPC's `OnLoadReport`).
    fn report(&self, peer: &PeerRef, report: &LoadReport, now: u64) {
        let usable = |v: Option<f64>| v.filter(|x| x.is_finite() && *x > 0.0);
        let (Some(utilization), Some(qps)) = (usable(report.utilization), usable(report.qps))
        else {
            return; // gRPC ignores a report without utilization or qps
        };
        let eps = report
            .eps
            .filter(|x| x.is_finite() && *x >= 0.0)
            .unwrap_or(0.0);
        let entries = self.table.peek();
        let Some(i) = index_of(&entries.entries, peer) else {
            return;
        };
        let mut w = entries.entries[i]
            .weight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        w.value = qps / (utilization + eps / qps * self.options.error_utilization_penalty);
        w.last_updated = now;
        if w.non_empty_since == NEVER {
            w.non_empty_since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{Choice, ListOptions, PeerList};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn list(spec: &str, ids: &[&str]) -> (PeerList, ManualClock) {
        let clock = ManualClock::new();
        let list = PeerList::new(
            ListOptions::default()
                .strategy_name(spec)
                .unwrap()
                .clock(clock.clone().into())
                .shuffle(false)
                .seed(3),
        )
        .unwrap();
        list.update(ids.iter().copied(), None::<&str>).unwrap();
        list.start().unwrap();
        (list, clock)
    }

    fn choose(list: &PeerList) -> Choice {
        list.choose(&Request::new()).unwrap()
    }

    /// Chooses `n` times, finishing each with the report `load(peer)`; counts per peer.
    fn run(
        list: &PeerList,
        n: usize,
        load: impl Fn(&str) -> Option<&'static str>,
    ) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..n {
            let c = choose(list);
            let id = c.peer().to_string();
            let report = load(&id).map(|t| t.parse::<LoadReport>().unwrap());
            c.finish_with_load(Outcome::Ok, None, report.as_ref());
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    fn count(counts: &std::collections::BTreeMap<String, usize>, id: &str) -> usize {
        counts.get(id).copied().unwrap_or(0)
    }

    #[test]
    fn the_stride_scheduler_is_grpcs() {
        // Weights 65535 and 32768: a is never skipped, b every other generation.
        let weights = [65535u16, 32768];
        let picks: String = (0u32..12)
            .filter_map(|i| stride_pick(&weights, i))
            .map(|i| if i == 0 { 'a' } else { 'b' })
            .collect();
        assert_eq!(picks, "abaabaaba");
        // Over n × 65535 sequence numbers each peer is picked about its weight's times.
        let weights = [65535u16, 21845, 43690];
        let mut got = [0u64; 3];
        for i in 0..3 * 65535u32 {
            if let Some(k) = stride_pick(&weights, i) {
                got[k] += 1;
            }
        }
        for (g, w) in got.iter().zip(weights) {
            assert!(g.abs_diff(u64::from(w)) <= 1, "{got:?}");
        }
    }

    #[test]
    fn without_reports_it_is_round_robin() {
        let (list, clock) = list("weighted-round-robin:orca?blackout_ms=0", &["a", "b", "c"]);
        let counts = run(&list, 30, |_| None);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [10, 10, 10]);
        // Empty reports (no utilization or no qps) are ignored, as gRPC does.
        clock.advance(ms(2000));
        let counts = run(&list, 30, |_| Some("TEXT rps_fractional=100"));
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [10, 10, 10]);
    }

    #[test]
    fn weights_are_qps_over_utilization_plus_penalized_errors() {
        let (list, clock) = list("weighted-round-robin:orca?blackout_ms=0", &["a", "b", "c"]);
        let load = |p: &str| match p {
            "a" => Some("TEXT cpu_utilization=0.5, rps_fractional=100"), // 200
            "b" => Some("TEXT cpu_utilization=0.5, rps_fractional=100, eps=50"), // 100
            _ => None,                                                   // the mean, 150
        };
        run(&list, 6, load);
        clock.advance(ms(1001)); // past the update period
        run(&list, 1, load);
        let counts = run(&list, 9000, load);
        let share = |id| count(&counts, id) as f64 / 9000.0;
        assert!((share("a") - 200.0 / 450.0).abs() < 0.01, "{counts:?}");
        assert!((share("b") - 100.0 / 450.0).abs() < 0.01, "{counts:?}");
        assert!((share("c") - 150.0 / 450.0).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn blackout_and_expiry() {
        let (list, clock) = list("weighted-round-robin:orca", &["a", "b"]);
        let load = |p: &str| match p {
            "a" => Some("TEXT application_utilization=0.1, rps_fractional=100"),
            _ => Some("TEXT application_utilization=0.9, rps_fractional=100"),
        };
        // Reports for 9 s: still in blackout (10 s), so round-robin.
        for _ in 0..9 {
            run(&list, 10, load);
            clock.advance(ms(1000));
        }
        let counts = run(&list, 100, load);
        assert_eq!((count(&counts, "a"), count(&counts, "b")), (50, 50));
        // After the blackout: weights 1000 and 111.
        clock.advance(ms(1500));
        run(&list, 1, load);
        let counts = run(&list, 1000, load);
        assert!(count(&counts, "a") > 880, "{counts:?}");
        // No report for 3 minutes: the weights expire, round-robin again.
        clock.advance(ms(180_000));
        let counts = run(&list, 100, |_| None);
        assert!(count(&counts, "a") <= 51, "{counts:?}");
        let counts = run(&list, 100, |_| None);
        assert_eq!((count(&counts, "a"), count(&counts, "b")), (50, 50));
    }

    #[test]
    fn options_parse() {
        let o: crate::strategy::weighted_round_robin::WeightedRoundRobinOptions =
            "weighted-round-robin:orca?blackout_ms=0&weight_update_ms=250&error_utilization_penalty=2"
                .parse()
                .unwrap();
        let orca = o.orca.unwrap();
        assert_eq!(orca.blackout, Duration::ZERO);
        assert_eq!(orca.weight_update, ms(250));
        assert_eq!(orca.error_utilization_penalty, 2.0);
        for bad in [
            "weighted-round-robin:orca?weight_update_ms=99",
            "weighted-round-robin:orca?slow_start_ms=10",
            "weighted-round-robin:orca?error_utilization_penalty=-1",
            "weighted-round-robin:orca?weight_expiration_ms=0",
            "weighted-round-robin:grpc",
            "weighted-round-robin?blackout_ms=0",
        ] {
            let err = bad
                .parse::<crate::strategy::weighted_round_robin::WeightedRoundRobinOptions>()
                .unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
    }
}
