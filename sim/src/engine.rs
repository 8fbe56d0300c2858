//! The discrete-event loop: Poisson arrivals choose through a real [`PeerList`] on a
//! [`ManualClock`]; completions finish their [`Choice`] with the sampled latency.
//!
//! Time is virtual (nanoseconds from 0); the manual clock is advanced to each event's time
//! before the list sees it, so time-based strategies (peak-ewma's decay) read simulated
//! time. One run is single-threaded and, for a given scenario, seed and calling thread,
//! exactly reproducible (see the crate docs on the core's per-thread random streams).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use peerlb::clock::ManualClock;
use peerlb::{
    Choice, ListOptions, LoadReport, Outcome, PeerList, PeerSpec, Request, StrategyConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};

use crate::model::Scenario;
use crate::stats::Percentiles;

/// What one backend got during the measured part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendCount {
    /// Requests sent to it.
    pub requests: u64,
    /// Of those, how many failed.
    pub errors: u64,
}

/// The result of one strategy on one scenario.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The strategy spec, as given.
    pub strategy: String,
    /// Latency percentiles of the successful measured requests.
    pub latency: Percentiles,
    /// Measured requests (arrived after the warmup).
    pub requests: u64,
    /// Measured requests that failed.
    pub errors: u64,
    /// Measured requests sent to degraded (slow or failing) backends.
    pub to_degraded: u64,
    /// Per backend, in the scenario's order.
    pub per_backend: Vec<BackendCount>,
    /// The most requests in flight at once.
    pub max_in_flight: usize,
    /// Requests sent to each backend in each second of the run (by arrival, warmup
    /// included): `per_second[s][backend]`.
    pub per_second: Vec<Vec<u64>>,
    /// p99 of the successful requests that arrived in the first and in the second half of
    /// the measured time (a growing queue shows as a second half far above the first).
    pub p99_halves: [u64; 2],
}

impl RunResult {
    /// Failed share of the measured requests (0..=1).
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.requests.max(1) as f64
    }

    /// Share of the measured requests sent to degraded backends (0..=1).
    pub fn degraded_share(&self) -> f64 {
        self.to_degraded as f64 / self.requests.max(1) as f64
    }

    /// `backend`'s share of the requests that arrived in seconds `from..to` of the run.
    pub fn share_between(&self, backend: usize, from: usize, to: usize) -> f64 {
        let seconds =
            &self.per_second[from.min(self.per_second.len())..to.min(self.per_second.len())];
        let all: u64 = seconds.iter().flatten().sum();
        let mine: u64 = seconds.iter().map(|s| s[backend]).sum();
        mine as f64 / all.max(1) as f64
    }
}

/// A request in flight: its choice (finished when the client sees the response) and what it
/// will report.
struct InFlight {
    choice: Choice,
    backend: usize,
    /// When it arrived (its latency runs from here, queueing and stalls included).
    arrived: u64,
    /// How long the backend works on it once a worker takes it.
    service: u64,
    failed: bool,
    measured: bool,
    /// Stall time gathered while in flight, not yet added to when the client sees it.
    stalled: u64,
    /// The backend's report, taken when it answered (with `Scenario::reports`).
    report: Option<LoadReport>,
}

/// What happens at an instant: a backend finishes a request, the client sees a response,
/// the client stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Done(u64),
    Seen(u64),
    Stall,
}

/// One backend's recent work, for its load reports.
#[derive(Default)]
struct Load {
    /// Requests it holds (working or queued).
    in_flight: u32,
    /// (finished at, service time, failed) over the last [`REPORT_WINDOW`].
    recent: VecDeque<(u64, u64, bool)>,
}

/// The window a backend's qps, eps and utilization are measured over.
const REPORT_WINDOW: u64 = 1_000_000_000;

impl Load {
    fn report(&mut self, now: u64, capacity: usize) -> LoadReport {
        while self
            .recent
            .front()
            .is_some_and(|&(t, _, _)| t + REPORT_WINDOW <= now)
        {
            self.recent.pop_front();
        }
        let seconds = REPORT_WINDOW as f64 / 1e9;
        let busy: u64 = self.recent.iter().map(|&(_, s, _)| s).sum();
        let errors = self.recent.iter().filter(|&&(_, _, f)| f).count();
        LoadReport {
            requests_in_flight: Some(self.in_flight),
            utilization: Some(busy as f64 / 1e9 / seconds / capacity.max(1) as f64),
            qps: Some(self.recent.len() as f64 / seconds),
            eps: Some(errors as f64 / seconds),
        }
    }
}

/// Runs `strategy` (a spec such as `"peak-ewma"` or `"hash-ring:ketama?bounded=1.25"`)
/// on `scenario`. Errors only for a bad spec or a list that refuses the backends.
///
/// The list is `ListOptions::default()` with the spec, a manual clock, `fail_fast(true)`
/// and the scenario's seed; every backend is a peer (with its weight). Each arrival
/// chooses (with a shard key drawn from the scenario's keys), samples the chosen backend's
/// service time (or failure), waits for a free worker if the backend has a limit (FIFO),
/// and finishes the choice when the client sees the response: at completion, or later by
/// the stalls that happened while it was in flight. It finishes with its latency (queueing
/// and stalls included), `Ok` or `Failure`, and the backend's load report when the
/// scenario has reports.
pub fn run(scenario: &Scenario, strategy: &str) -> peerlb::Result<RunResult> {
    let config: StrategyConfig = strategy.parse()?;
    let manual = ManualClock::new();
    let list = PeerList::new(
        ListOptions::default()
            .strategy_config(config)
            .clock(manual.clone().into())
            .fail_fast(true)
            .seed(scenario.seed),
    )?;
    list.update(
        scenario
            .backends
            .iter()
            .map(|b| PeerSpec::weighted(b.name.clone(), b.weight)),
        None::<&str>,
    )?;
    list.start()?;
    let index: HashMap<&str, usize> = scenario
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), i))
        .collect();

    // Separate streams, so every strategy sees the same arrivals, keys and stalls.
    let mut arrivals = StdRng::seed_from_u64(scenario.seed);
    let mut keys = StdRng::seed_from_u64(scenario.seed ^ 0x6b65_7973);
    let mut service = StdRng::seed_from_u64(scenario.seed ^ 0x7365_7276);
    let mut stall_rng = StdRng::seed_from_u64(scenario.seed ^ 0x7374_616c);
    let gap = Exp::new(scenario.rate).expect("the arrival rate is positive");
    let stall_gap = scenario
        .stalls
        .map(|s| Exp::new(s.rate).expect("the stall rate is positive"));
    let end = duration_ns(scenario.duration);
    let warmup = duration_ns(scenario.warmup);
    let seconds = scenario.duration.as_secs_f64().ceil() as usize;

    let mut now = 0u64;
    let mut next_arrival = 0u64;
    // The client is stalled until then: it sends nothing before.
    let mut stalled_until = 0u64;
    let mut seq = 0u64;
    let mut heap: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    if let Some(g) = &stall_gap {
        heap.push(Reverse((sample_gap(g, &mut stall_rng), Event::Stall)));
    }
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    // Per backend: busy workers, requests waiting for one (by id), recent work.
    let mut busy = vec![0usize; scenario.backends.len()];
    let mut queues: Vec<VecDeque<u64>> = vec![VecDeque::new(); scenario.backends.len()];
    let mut loads: Vec<Load> = (0..scenario.backends.len())
        .map(|_| Load::default())
        .collect();
    let mut latencies =
        Vec::with_capacity((scenario.rate * scenario.duration.as_secs_f64()) as usize);
    // (arrived, latency) of the measured successes, for the halves.
    let mut timed: Vec<(u64, u64)> = Vec::with_capacity(latencies.capacity());
    let mut result = RunResult {
        scenario: scenario.name.clone(),
        strategy: strategy.to_owned(),
        latency: Percentiles::default(),
        requests: 0,
        errors: 0,
        to_degraded: 0,
        per_backend: vec![BackendCount::default(); scenario.backends.len()],
        max_in_flight: 0,
        per_second: vec![vec![0; scenario.backends.len()]; seconds.max(1)],
        p99_halves: [0, 0],
    };
    loop {
        let arrival_due = next_arrival < end;
        // A stalled client sends what arrived meanwhile when it runs again.
        let send_at = next_arrival.max(stalled_until);
        // Events at or before the next arrival go first (all of them once arrivals end,
        // but stalls, which then stop).
        if let Some(&Reverse((at, event))) = heap.peek() {
            if event == Event::Stall && !arrival_due {
                heap.pop();
                continue;
            }
            if !arrival_due || at <= send_at {
                heap.pop();
                advance(&manual, &mut now, at);
                match event {
                    Event::Stall => {
                        let stalls = scenario.stalls.expect("stall events need stalls");
                        let d = stalls.duration.sample(1.0, &mut stall_rng);
                        for r in in_flight.values_mut() {
                            r.stalled += d;
                        }
                        stalled_until = stalled_until.max(now + d);
                        let g = stall_gap.as_ref().expect("stall events need stalls");
                        heap.push(Reverse((now + sample_gap(g, &mut stall_rng), Event::Stall)));
                    }
                    Event::Done(id) => {
                        let backend = in_flight[&id].backend;
                        // Its worker takes the next waiting request, if any.
                        busy[backend] -= 1;
                        if let Some(next) = queues[backend].pop_front() {
                            busy[backend] += 1;
                            heap.push(Reverse((now + in_flight[&next].service, Event::Done(next))));
                        }
                        let r = in_flight
                            .get_mut(&id)
                            .expect("a finished request is in flight");
                        let load = &mut loads[backend];
                        load.in_flight -= 1;
                        load.recent.push_back((now, r.service, r.failed));
                        if scenario.reports {
                            r.report =
                                Some(load.report(now, scenario.backends[backend].capacity()));
                        }
                        heap.push(Reverse((now, Event::Seen(id))));
                    }
                    Event::Seen(id) => {
                        let r = in_flight.get_mut(&id).expect("a seen request is in flight");
                        if r.stalled > 0 {
                            // A stall happened since: the client sees it that much later.
                            let later = now + std::mem::take(&mut r.stalled);
                            heap.push(Reverse((later, Event::Seen(id))));
                            continue;
                        }
                        let r = in_flight.remove(&id).expect("a seen request is in flight");
                        let latency = now - r.arrived;
                        let outcome = if r.failed {
                            Outcome::Failure
                        } else {
                            Outcome::Ok
                        };
                        r.choice.finish_with_load(
                            outcome,
                            Some(Duration::from_nanos(latency)),
                            r.report.as_ref(),
                        );
                        if r.measured {
                            let count = &mut result.per_backend[r.backend];
                            count.requests += 1;
                            result.requests += 1;
                            if r.failed {
                                count.errors += 1;
                                result.errors += 1;
                            } else {
                                latencies.push(latency);
                                timed.push((r.arrived, latency));
                            }
                            if scenario.backends[r.backend].factor_at(r.arrived) != 1.0
                                || scenario.backends[r.backend].error_rate > 0.0
                            {
                                result.to_degraded += 1;
                            }
                        }
                    }
                }
                continue;
            }
        }
        if !arrival_due {
            break;
        }
        advance(&manual, &mut now, send_at);
        let key = format!("key-{}", keys.random_range(0..scenario.keys.max(1)));
        let choice = list.choose(&Request::new().with_shard_key(key.as_bytes()))?;
        let backend = index[choice.peer().as_str()];
        let b = &scenario.backends[backend];
        let failed = b.error_rate > 0.0 && service.random_bool(b.error_rate.min(1.0));
        let service_time = if failed {
            duration_ns(b.failure_latency).max(1)
        } else {
            b.latency.sample(b.factor_at(now), &mut service)
        };
        in_flight.insert(
            seq,
            InFlight {
                choice,
                backend,
                arrived: now,
                service: service_time,
                failed,
                measured: now >= warmup,
                stalled: 0,
                report: None,
            },
        );
        loads[backend].in_flight += 1;
        if let Some(slot) = result.per_second.get_mut((now / 1_000_000_000) as usize) {
            slot[backend] += 1;
        }
        if b.workers.map_or(true, |w| busy[backend] < w) {
            busy[backend] += 1;
            heap.push(Reverse((now + service_time, Event::Done(seq))));
        } else {
            queues[backend].push_back(seq);
        }
        seq += 1;
        result.max_in_flight = result.max_in_flight.max(in_flight.len());
        next_arrival += sample_gap(&gap, &mut arrivals);
    }
    list.stop()?;
    result.latency = Percentiles::of(&mut latencies);
    let middle = warmup + (end - warmup) / 2;
    let (mut first, mut second): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (arrived, latency) in timed {
        if arrived < middle {
            first.push(latency);
        } else {
            second.push(latency);
        }
    }
    result.p99_halves = [
        Percentiles::of(&mut first).p99,
        Percentiles::of(&mut second).p99,
    ];
    Ok(result)
}

fn sample_gap(gap: &Exp<f64>, rng: &mut StdRng) -> u64 {
    (gap.sample(rng) * 1e9).round().max(1.0) as u64
}

/// Moves virtual time (and the list's clock) forward to `t`.
fn advance(manual: &ManualClock, now: &mut u64, t: u64) {
    if t > *now {
        manual.advance(Duration::from_nanos(t - *now));
        *now = t;
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Latency};

    fn small(backends: Vec<Backend>) -> Scenario {
        Scenario {
            name: "t".into(),
            description: "t".into(),
            backends,
            rate: 1000.0,
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            keys: 100,
            seed: 9,
            stalls: None,
            reports: false,
        }
    }

    fn constant(ms: u64) -> Latency {
        Latency::Constant(Duration::from_millis(ms))
    }

    #[test]
    fn round_robin_splits_evenly_and_latency_is_the_backends() {
        let s = small(vec![
            Backend::healthy("a", constant(4)),
            Backend::healthy("b", constant(4)),
        ]);
        let r = run(&s, "round-robin").unwrap();
        // About 2000 measured arrivals at 1000/s over 2 s.
        assert!((1800..2200).contains(&r.requests), "{}", r.requests);
        let (a, b) = (r.per_backend[0].requests, r.per_backend[1].requests);
        assert!(a.abs_diff(b) <= 1, "{a} vs {b}");
        assert_eq!(r.latency.p50, 4_000_000);
        assert_eq!(r.latency.p999, 4_000_000);
        assert_eq!(r.errors, 0);
        // 1000/s × 4 ms = 4 in flight on average; Poisson bursts go higher.
        assert!(r.max_in_flight >= 4, "{}", r.max_in_flight);
    }

    #[test]
    fn failures_are_counted_and_left_out_of_latencies() {
        let s = small(vec![
            Backend::healthy("a", constant(4)).failing(1.0, Duration::from_millis(1)),
            Backend::healthy("b", constant(4)),
        ]);
        let r = run(&s, "round-robin").unwrap();
        assert_eq!(r.errors, r.per_backend[0].requests);
        assert_eq!(r.per_backend[0].errors, r.per_backend[0].requests);
        assert_eq!(r.to_degraded, r.per_backend[0].requests);
        assert_eq!(r.latency.count as u64, r.per_backend[1].requests);
        assert_eq!(r.latency.p50, 4_000_000);
    }

    #[test]
    fn a_worker_limit_queues_requests_first_in_first_out() {
        // One worker, 4 ms per request, 1000 arrivals/s: 4× overloaded, so the queue (and
        // with it the latency) grows through the run; without the limit it stays 4 ms.
        let limited = small(vec![Backend::healthy("a", constant(4)).with_workers(1)]);
        let r = run(&limited, "round-robin").unwrap();
        assert!(r.latency.p50 > 1_000_000_000, "{}", r.latency.p50);
        let unlimited = small(vec![Backend::healthy("a", constant(4))]);
        assert_eq!(
            run(&unlimited, "round-robin").unwrap().latency.p999,
            4_000_000
        );
        // Enough workers for the load: little queueing.
        let enough = small(vec![Backend::healthy("a", constant(4)).with_workers(16)]);
        assert_eq!(run(&enough, "round-robin").unwrap().latency.p50, 4_000_000);
    }

    #[test]
    fn same_thread_same_seed_same_result_and_bad_specs_are_errors() {
        let s = small(vec![
            Backend::healthy("a", constant(4)),
            Backend::healthy("b", constant(4)).slower(10.0),
        ]);
        let x = run(&s, "peak-ewma").unwrap();
        let y = run(&s, "peak-ewma").unwrap();
        assert_eq!(x.per_backend, y.per_backend);
        assert_eq!(x.latency, y.latency);
        assert!(run(&s, "no-such-strategy").is_err());
    }

    #[test]
    fn stalls_delay_what_is_in_flight_and_hold_back_sends() {
        use crate::model::Stalls;
        let mut s = small(vec![Backend::healthy("a", constant(4))]);
        s.stalls = Some(Stalls {
            rate: 5.0,
            duration: constant(10),
        });
        let r = run(&s, "round-robin").unwrap();
        let calm = run(
            &small(vec![Backend::healthy("a", constant(4))]),
            "round-robin",
        )
        .unwrap();
        assert_eq!(calm.latency.p999, 4_000_000);
        // A request is seen 10 ms later per stall it was in flight for: 4, 14, 24 ms ...
        assert_eq!(r.latency.p50, 4_000_000);
        assert!(r.latency.p999 >= 14_000_000, "{:?}", r.latency);
        assert_eq!((r.latency.p999 - 4_000_000) % 10_000_000, 0);
        // Sends wait while the client is stalled, none is lost.
        assert_eq!(r.requests, calm.requests);
    }

    #[test]
    fn reports_carry_utilization_qps_and_in_flight() {
        let mut load = Load {
            in_flight: 3,
            ..Load::default()
        };
        for i in 0..100u64 {
            load.recent
                .push_back((i * 10_000_000, 8_000_000, i % 10 == 0));
        }
        // At 1.5 s, the window holds those after 0.5 s: 49 served, 4 failed, 0.392 s of
        // service over 16 cores.
        let r = load.report(1_500_000_000, 16);
        assert_eq!(r.requests_in_flight, Some(3));
        assert_eq!(r.qps, Some(49.0));
        assert_eq!(r.eps, Some(4.0));
        assert!(
            (r.utilization.unwrap() - 0.392 / 16.0).abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn a_backend_recovers_at_its_time() {
        let b = Backend::healthy("a", constant(4))
            .slower(10.0)
            .recovering_at(Duration::from_secs(2));
        let mut s = small(vec![b, Backend::healthy("b", constant(4))]);
        s.duration = Duration::from_secs(4);
        let r = run(&s, "round-robin").unwrap();
        // Slow requests (40 ms) only from those that arrived in its first 2 s.
        assert_eq!(r.latency.p50, 4_000_000);
        assert_eq!(r.latency.p999, 40_000_000);
        let after = r.share_between(0, 2, 4);
        assert!((0.45..0.55).contains(&after), "{after}");
    }

    #[test]
    fn peak_ewma_hears_latencies_on_the_manual_clock() {
        // Two backends, one 10× slower: peak-ewma keeps most requests on the fast one (the
        // slow one still gets some when the fast one has 10+ pending), which it can only
        // do if finish() delivered the latencies on the simulated clock.
        let s = small(vec![
            Backend::healthy("a", constant(4)),
            Backend::healthy("b", constant(4)).slower(10.0),
        ]);
        let r = run(&s, "peak-ewma").unwrap();
        assert!(r.degraded_share() < 0.1, "{}", r.degraded_share());
        let rr = run(&s, "round-robin").unwrap();
        assert!(rr.degraded_share() > 0.45, "{}", rr.degraded_share());
    }
}
