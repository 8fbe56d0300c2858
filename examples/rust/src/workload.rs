//! One strategy's run in the demo: fresh backends, a [`PeerList`] over them, client threads
//! sending real HTTP requests on a fixed schedule, one backend killed part-way through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use peerlb::{ListOptions, Outcome, PeerList, PeerSpec, Request};
use peerlb_sim::model::Latency;
use peerlb_sim::stats::Percentiles;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::http::{Backend, Client};

/// A backend to start for every run.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// Its name (the table's column).
    pub name: String,
    /// How long it takes to answer.
    pub latency: Latency,
}

/// What every strategy gets: the same schedule of requests.
#[derive(Debug, Clone)]
pub struct Workload {
    /// How long requests are sent, per strategy.
    pub duration: Duration,
    /// Client threads; each sends on its own fixed schedule (open loop: a slow response
    /// delays only that client's next request, never the schedule of the others).
    pub clients: usize,
    /// Requests per second over all clients.
    pub rate: f64,
    /// Which backend (index) is killed, and when (from the start of the run).
    pub kill: Option<(usize, Duration)>,
    /// Requests sent before this (from the start of the run) are not measured: the
    /// latency percentiles and `measured` counts leave them out (strategies start from
    /// their defaults, connections are opened).
    pub warmup: Duration,
    /// Shard keys `user-0`.. are drawn from this many (for hash strategies).
    pub keys: u32,
    /// Seeds the list, the keys and the backends' delays.
    pub seed: u64,
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was sent, in seconds from the start of the run.
    pub at: f64,
    /// How long it took (choose to finish), in nanoseconds.
    pub latency: u64,
    /// Which backend it went to.
    pub backend: usize,
    /// Whether it succeeded.
    pub ok: bool,
}

/// What one strategy's run did.
#[derive(Debug, Clone)]
pub struct StrategyRun {
    /// The strategy spec.
    pub strategy: String,
    /// Requests the list sent to each backend.
    pub requests: Vec<u64>,
    /// Of those, the ones sent after the warmup.
    pub measured: Vec<u64>,
    /// Responses each backend counted (a cross-check of the successes).
    pub served: Vec<u64>,
    /// Failed requests (refused or reset connections, bad responses).
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Latency percentiles of the successful requests sent after the warmup.
    pub latency: Percentiles,
    /// Every request, in no particular order.
    pub samples: Vec<Sample>,
    /// Outlier ejections the list made during the run.
    pub ejections: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// How many times the list ejected a peer (outlier ejection is on by default: 5 failures
/// in a row eject a peer for 30 s).
pub fn ejections(list: &PeerList) -> u64 {
    list.introspect().ejections
}

/// Runs `strategy` (a spec such as `"peak-ewma"`) against fresh `backends`, with
/// per-backend `weights` (1 when empty), under `workload`; `tick` hears the fraction done
/// about every 100 ms. Every choice is finished with its outcome (`failure` for refused or
/// reset connections) and its latency.
pub fn run_strategy(
    strategy: &str,
    backends: &[BackendSpec],
    weights: &[u32],
    workload: &Workload,
    mut tick: impl FnMut(f64),
) -> Result<StrategyRun, String> {
    let mut servers = Vec::with_capacity(backends.len());
    for (i, b) in backends.iter().enumerate() {
        let server = Backend::start(&b.name, b.latency, workload.seed.wrapping_add(i as u64))
            .map_err(|e| format!("cannot start backend {} on 127.0.0.1: {e}", b.name))?;
        servers.push(server);
    }
    let fail = |e: peerlb::Error| format!("{strategy}: {e}");
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name(strategy)
            .map_err(fail)?
            .seed(workload.seed),
    )
    .map_err(fail)?;
    let ids: Vec<String> = servers.iter().map(Backend::peer_id).collect();
    list.update(
        ids.iter()
            .enumerate()
            .map(|(i, id)| PeerSpec::weighted(id.clone(), weights.get(i).copied().unwrap_or(1))),
        None::<&str>,
    )
    .map_err(fail)?;
    list.start().map_err(fail)?;
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();

    let clients = workload.clients.max(1);
    let interval = Duration::from_secs_f64(clients as f64 / workload.rate);
    let samples = Mutex::new(Vec::new());
    let error_samples = Mutex::new(Vec::new());
    let mut kill = workload.kill;
    if let Some((victim, at)) = kill {
        if at.is_zero() {
            servers[victim].kill();
            kill = None;
        }
    }
    let start = Instant::now();
    let end = start + workload.duration;
    thread::scope(|s| {
        for c in 0..clients {
            let (list, index, samples, error_samples) = (&list, &index, &samples, &error_samples);
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(workload.seed ^ ((c as u64 + 1) << 32));
                let mut client = Client::new();
                let mut mine = Vec::new();
                // Clients start spread over one interval.
                let mut send_at = start + interval.mul_f64(c as f64 / clients as f64);
                while send_at < end {
                    if let Some(wait) = send_at.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    send_at += interval;
                    let key = format!("user-{}", rng.random_range(0..workload.keys.max(1)));
                    let request = Request::new()
                        .with_timeout(Duration::from_secs(1))
                        .with_shard_key(key.as_bytes());
                    let sent = Instant::now();
                    let choice = match list.choose(&request) {
                        Ok(choice) => choice,
                        Err(e) => {
                            record_error(error_samples, format!("choose: {e}"));
                            continue;
                        }
                    };
                    let backend = index[choice.peer().as_str()];
                    let result = client.get(choice.peer().as_str(), &format!("/{key}"));
                    let latency = sent.elapsed();
                    let ok = result.is_ok();
                    match result {
                        Ok(_) => choice.finish(Outcome::Ok, Some(latency)),
                        Err(message) => {
                            choice.finish(Outcome::Failure, Some(latency));
                            record_error(error_samples, message);
                        }
                    }
                    mine.push(Sample {
                        at: (sent - start).as_secs_f64(),
                        latency: u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
                        backend,
                        ok,
                    });
                }
                samples.lock().unwrap().extend(mine);
            });
        }
        // This thread keeps time: progress ticks, and the kill.
        loop {
            let now = Instant::now();
            if let Some((victim, at)) = kill {
                if now >= start + at {
                    servers[victim].kill();
                    kill = None;
                }
            }
            if now >= end {
                break;
            }
            tick(((now - start).as_secs_f64() / workload.duration.as_secs_f64()).min(1.0));
            thread::sleep(Duration::from_millis(100).min(end - now));
        }
    });
    let elapsed = start.elapsed();
    let ejections = ejections(&list);
    list.stop().map_err(fail)?;
    tick(1.0);

    let samples = samples.into_inner().unwrap();
    let mut requests = vec![0u64; backends.len()];
    let mut measured = vec![0u64; backends.len()];
    let mut ok_latencies = Vec::with_capacity(samples.len());
    let mut errors = 0;
    let warmup = workload.warmup.as_secs_f64();
    for s in &samples {
        requests[s.backend] += 1;
        if !s.ok {
            errors += 1;
        }
        if s.at >= warmup {
            measured[s.backend] += 1;
            if s.ok {
                ok_latencies.push(s.latency);
            }
        }
    }
    Ok(StrategyRun {
        strategy: strategy.to_owned(),
        requests,
        measured,
        served: servers.iter().map(Backend::served).collect(),
        errors,
        error_samples: error_samples.into_inner().unwrap(),
        latency: Percentiles::of(&mut ok_latencies),
        samples,
        ejections,
        elapsed,
    })
}

fn record_error(samples: &Mutex<Vec<String>>, message: String) {
    let mut samples = samples.lock().unwrap();
    if samples.len() < 3 {
        samples.push(message);
    }
}

/// One window of a run's timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The window's middle, in seconds from the start of the run.
    pub mid: f64,
    /// Requests sent in it.
    pub requests: u64,
    /// Mean latency of its successful requests, in ms (0 when none succeeded).
    pub mean_ms: f64,
    /// p99 latency of its successful requests, in ms (0 when none succeeded).
    pub p99_ms: f64,
    /// Share of its requests that failed, in percent.
    pub failed_pct: f64,
}

/// `run`'s requests in windows of `window` seconds by send time, over `duration` seconds
/// (a request sent late, after the end, counts in the last window; empty windows are left
/// out).
pub fn over_time(run: &StrategyRun, window: f64, duration: f64) -> Vec<Window> {
    let n = ((duration / window - 1e-9).ceil() as usize).max(1);
    // (requests, latencies of the successes in ns)
    let mut buckets: Vec<(u64, Vec<u64>)> = vec![(0, Vec::new()); n];
    for s in &run.samples {
        let b = &mut buckets[((s.at / window) as usize).min(n - 1)];
        b.0 += 1;
        if s.ok {
            b.1.push(s.latency);
        }
    }
    buckets
        .iter_mut()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(i, (requests, ok))| {
            let sum: u128 = ok.iter().map(|&l| u128::from(l)).sum();
            let count = ok.len();
            Window {
                mid: (i as f64 + 0.5) * window,
                requests: *requests,
                mean_ms: if count == 0 {
                    0.0
                } else {
                    sum as f64 / count as f64 / 1e6
                },
                p99_ms: Percentiles::of(ok).p99 as f64 / 1e6,
                failed_pct: 100.0 * (*requests - count as u64) as f64 / *requests as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: usize) -> Vec<BackendSpec> {
        (0..n)
            .map(|i| BackendSpec {
                name: format!("s{i}"),
                latency: Latency::Constant(Duration::ZERO),
            })
            .collect()
    }

    fn workload(kill: Option<(usize, Duration)>) -> Workload {
        Workload {
            duration: Duration::from_millis(600),
            clients: 4,
            rate: 200.0,
            kill,
            warmup: Duration::ZERO,
            keys: 100,
            seed: 3,
        }
    }

    #[test]
    fn every_request_is_delivered_and_counted_by_its_backend() {
        for strategy in [
            "round-robin",
            "fewest-pending",
            "peak-ewma",
            "hash-ring:ketama?bounded=1.25",
        ] {
            let run = run_strategy(strategy, &backends(3), &[], &workload(None), |_| {}).unwrap();
            assert_eq!(run.errors, 0, "{strategy}: {:?}", run.error_samples);
            // A fixed schedule: 4 clients × 600 ms / 20 ms, whatever the timing.
            assert_eq!(run.samples.len(), 120, "{strategy}");
            assert_eq!(run.requests, run.served, "{strategy}");
            assert_eq!(run.ejections, 0);
        }
    }

    #[test]
    fn the_warmup_is_not_measured() {
        let mut w = workload(None);
        w.warmup = Duration::from_millis(300);
        let run = run_strategy("round-robin", &backends(2), &[], &w, |_| {}).unwrap();
        // Half the fixed schedule is sent before 300 ms.
        let measured: u64 = run.measured.iter().sum();
        assert_eq!(run.samples.len(), 120);
        assert_eq!(measured, 60);
        assert_eq!(run.latency.count, 60);
    }

    #[test]
    fn requests_to_a_killed_backend_fail_and_are_not_served() {
        // Killed at once: every request to it fails (reset or refused), none is served.
        let run = run_strategy(
            "round-robin",
            &backends(2),
            &[],
            &workload(Some((1, Duration::ZERO))),
            |_| {},
        )
        .unwrap();
        assert_eq!(run.served[1], 0);
        assert_eq!(run.errors, run.requests[1]);
        assert!(run.errors > 0);
        assert_eq!(run.served[0], run.requests[0]);
        assert!(!run.error_samples.is_empty());
    }

    #[test]
    fn windows_hold_mean_latency_of_successes_and_failed_share() {
        let sample = |at, latency, ok| Sample {
            at,
            latency,
            backend: 0,
            ok,
        };
        let run = StrategyRun {
            strategy: "x".into(),
            requests: vec![],
            measured: vec![],
            served: vec![],
            errors: 0,
            error_samples: vec![],
            latency: Percentiles::default(),
            samples: vec![
                sample(0.05, 1_000_000, true),
                sample(0.06, 3_000_000, true),
                sample(0.25, 9_000_000, false),
                sample(0.35, 2_000_000, true),
                sample(0.45, 4_000_000, true), // late: into the last window
            ],
            ejections: 0,
            elapsed: Duration::ZERO,
        };
        let w = over_time(&run, 0.1, 0.4);
        assert_eq!(w.len(), 3);
        assert!((w[0].mid - 0.05).abs() < 1e-9);
        assert_eq!(
            (w[0].requests, w[0].mean_ms, w[0].failed_pct),
            (2, 2.0, 0.0)
        );
        assert_eq!(w[0].p99_ms, 3.0);
        assert_eq!(
            (w[1].requests, w[1].mean_ms, w[1].failed_pct),
            (1, 0.0, 100.0)
        );
        assert_eq!(
            (w[2].requests, w[2].mean_ms, w[2].failed_pct),
            (2, 3.0, 0.0)
        );
    }
}
