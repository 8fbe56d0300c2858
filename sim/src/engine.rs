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
use peerlb::{Choice, ListOptions, Outcome, PeerList, PeerSpec, Request, StrategyConfig};
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
}

/// A request in flight: its choice (finished at completion) and what it will report.
struct InFlight {
    choice: Choice,
    backend: usize,
    /// When it arrived (its latency runs from here, queueing included).
    arrived: u64,
    /// How long the backend works on it once a worker takes it.
    service: u64,
    failed: bool,
    measured: bool,
}

/// Runs `strategy` (a spec such as `"peak-ewma"` or `"hash-ring:ketama?bounded=1.25"`)
/// on `scenario`. Errors only for a bad spec or a list that refuses the backends.
///
/// The list is `ListOptions::default()` with the spec, a manual clock, `fail_fast(true)`
/// and the scenario's seed; every backend is a peer (with its weight). Each arrival
/// chooses (with a shard key drawn from the scenario's keys), samples the chosen backend's
/// service time (or failure), waits for a free worker if the backend has a limit (FIFO),
/// and finishes the choice at completion with its latency (queueing included) and `Ok` or
/// `Failure`.
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

    // Separate streams, so every strategy sees the same arrivals and keys.
    let mut arrivals = StdRng::seed_from_u64(scenario.seed);
    let mut keys = StdRng::seed_from_u64(scenario.seed ^ 0x6b65_7973);
    let mut service = StdRng::seed_from_u64(scenario.seed ^ 0x7365_7276);
    let gap = Exp::new(scenario.rate).expect("the arrival rate is positive");
    let end = duration_ns(scenario.duration);
    let warmup = duration_ns(scenario.warmup);

    let mut now = 0u64;
    let mut next_arrival = 0u64;
    let mut seq = 0u64;
    let mut heap: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    // Per backend: busy workers, and requests waiting for one (by id).
    let mut busy = vec![0usize; scenario.backends.len()];
    let mut queues: Vec<VecDeque<u64>> = vec![VecDeque::new(); scenario.backends.len()];
    let mut latencies =
        Vec::with_capacity((scenario.rate * scenario.duration.as_secs_f64()) as usize);
    let mut result = RunResult {
        scenario: scenario.name.clone(),
        strategy: strategy.to_owned(),
        latency: Percentiles::default(),
        requests: 0,
        errors: 0,
        to_degraded: 0,
        per_backend: vec![BackendCount::default(); scenario.backends.len()],
        max_in_flight: 0,
    };
    loop {
        let arrival_due = next_arrival < end;
        // Completions at or before the next arrival go first (all of them once arrivals end).
        if let Some(&Reverse((done_at, id))) = heap.peek() {
            if !arrival_due || done_at <= next_arrival {
                heap.pop();
                advance(&manual, &mut now, done_at);
                let r = in_flight
                    .remove(&id)
                    .expect("every scheduled completion is in flight");
                // Its worker takes the next waiting request, if any.
                busy[r.backend] -= 1;
                if let Some(next) = queues[r.backend].pop_front() {
                    busy[r.backend] += 1;
                    heap.push(Reverse((now + in_flight[&next].service, next)));
                }
                let latency = now - r.arrived;
                let outcome = if r.failed {
                    Outcome::Failure
                } else {
                    Outcome::Ok
                };
                r.choice
                    .finish(outcome, Some(Duration::from_nanos(latency)));
                if r.measured {
                    let count = &mut result.per_backend[r.backend];
                    count.requests += 1;
                    result.requests += 1;
                    if r.failed {
                        count.errors += 1;
                        result.errors += 1;
                    } else {
                        latencies.push(latency);
                    }
                    if scenario.backends[r.backend].is_degraded() {
                        result.to_degraded += 1;
                    }
                }
                continue;
            }
        }
        if !arrival_due {
            break;
        }
        advance(&manual, &mut now, next_arrival);
        let key = format!("key-{}", keys.random_range(0..scenario.keys.max(1)));
        let choice = list.choose(&Request::new().with_shard_key(key.as_bytes()))?;
        let backend = index[choice.peer().as_str()];
        let b = &scenario.backends[backend];
        let failed = b.error_rate > 0.0 && service.random_bool(b.error_rate.min(1.0));
        let service_time = if failed {
            duration_ns(b.failure_latency).max(1)
        } else {
            b.latency.sample(b.slow_factor, &mut service)
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
            },
        );
        if b.workers.map_or(true, |w| busy[backend] < w) {
            busy[backend] += 1;
            heap.push(Reverse((now + service_time, seq)));
        } else {
            queues[backend].push_back(seq);
        }
        seq += 1;
        result.max_in_flight = result.max_in_flight.max(in_flight.len());
        next_arrival = now + (gap.sample(&mut arrivals) * 1e9).round().max(1.0) as u64;
    }
    list.stop()?;
    result.latency = Percentiles::of(&mut latencies);
    Ok(result)
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
