//! What a simulation runs: backends (latency distribution, slowdown, error rate) and a
//! scenario (backends + open-loop load + duration + seed).

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};

/// A backend's service-time distribution (before its slowdown factor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Lognormal with this median and shape σ (the log's standard deviation); σ = 0.5
    /// puts p99 at about 3.2× the median.
    LogNormal {
        /// The median service time.
        median: Duration,
        /// σ of the underlying normal (> 0).
        sigma: f64,
    },
    /// Exponential with this mean (p99 = 4.6× the mean).
    Exponential {
        /// The mean service time.
        mean: Duration,
    },
}

impl Latency {
    /// One service time in nanoseconds, scaled by `factor` (1 for a healthy backend).
    pub fn sample(&self, factor: f64, rng: &mut impl Rng) -> u64 {
        let ns = match *self {
            Latency::Constant(d) => d.as_nanos() as f64,
            Latency::LogNormal { median, sigma } => {
                let d = LogNormal::new((median.as_nanos() as f64).ln(), sigma)
                    .expect("sigma is finite and positive");
                d.sample(rng)
            }
            Latency::Exponential { mean } => {
                let d = Exp::new(1.0 / mean.as_nanos().max(1) as f64)
                    .expect("a positive mean gives a positive rate");
                d.sample(rng)
            }
        };
        (ns * factor).round().max(1.0) as u64
    }

    /// A short description, e.g. `lognormal(median 10 ms, σ 0.5)`.
    pub fn describe(&self) -> String {
        match self {
            Latency::Constant(d) => format!("constant {}", crate::stats::fmt_ms(d.as_nanos())),
            Latency::LogNormal { median, sigma } => format!(
                "lognormal(median {}, σ {sigma})",
                crate::stats::fmt_ms(median.as_nanos())
            ),
            Latency::Exponential { mean } => {
                format!(
                    "exponential(mean {})",
                    crate::stats::fmt_ms(mean.as_nanos())
                )
            }
        }
    }
}

/// One simulated backend. Without a worker limit it serves any number of requests at once
/// (no queue): a request's latency is a fresh sample, so load shows up only as pending
/// counts. With `workers`, requests beyond that many wait in a FIFO queue, and their
/// latency includes the wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// The peer id it gets in the list.
    pub name: String,
    /// Service time before the slowdown.
    pub latency: Latency,
    /// Slowdown factor (1 = healthy, 10 = ten times slower).
    pub slow_factor: f64,
    /// Probability that a request fails (0..=1).
    pub error_rate: f64,
    /// How long a failing request takes (a fast failure, such as a refused connection,
    /// is a few hundred microseconds).
    pub failure_latency: Duration,
    /// Its weight in the list (for `weighted-round-robin` and weighted hash rings).
    pub weight: u32,
    /// How many requests it works on at once (`None`: unlimited, no queue).
    pub workers: Option<usize>,
}

impl Backend {
    /// A healthy backend of weight 1 with this latency.
    pub fn healthy(name: impl Into<String>, latency: Latency) -> Backend {
        Backend {
            name: name.into(),
            latency,
            slow_factor: 1.0,
            error_rate: 0.0,
            failure_latency: Duration::from_micros(500),
            weight: 1,
            workers: None,
        }
    }

    /// The same backend with `n` workers (at least 1) and a FIFO queue in front.
    pub fn with_workers(mut self, n: usize) -> Backend {
        self.workers = Some(n.max(1));
        self
    }

    /// The same backend, `factor` times slower.
    pub fn slower(mut self, factor: f64) -> Backend {
        self.slow_factor = factor;
        self
    }

    /// The same backend, failing a `rate` fraction of requests after `after`.
    pub fn failing(mut self, rate: f64, after: Duration) -> Backend {
        self.error_rate = rate;
        self.failure_latency = after;
        self
    }

    /// Whether it is slowed down or failing (what the "to degraded" column counts).
    pub fn is_degraded(&self) -> bool {
        self.slow_factor != 1.0 || self.error_rate > 0.0
    }
}

/// Backends plus an open-loop Poisson load, in virtual time.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name, e.g. `1-of-4-slow`.
    pub name: String,
    /// One line for tables.
    pub description: String,
    /// The backends.
    pub backends: Vec<Backend>,
    /// Arrivals per second (Poisson, whatever the responses do).
    pub rate: f64,
    /// How long arrivals go on (virtual time).
    pub duration: Duration,
    /// Requests arriving before this are simulated but not measured (strategies start
    /// from their defaults, e.g. peak-ewma's default RTT).
    pub warmup: Duration,
    /// Shard keys are drawn uniformly from this many (`key-0` ...), for hash strategies.
    pub keys: u32,
    /// Seeds the arrivals, keys, latencies and errors, and the list (shuffle, random
    /// strategies).
    pub seed: u64,
}

impl Scenario {
    /// Four healthy backends (`b0`..`b3`), lognormal latency (median 10 ms, σ 0.5),
    /// 2000 requests/s (about 23 in flight), 30 s after a 2 s warmup, 1000 keys, seed 1.
    pub fn healthy() -> Scenario {
        let latency = Latency::LogNormal {
            median: Duration::from_millis(10),
            sigma: 0.5,
        };
        Scenario {
            name: "healthy".into(),
            description: "4 healthy backends".into(),
            backends: (0..4)
                .map(|i| Backend::healthy(format!("b{i}"), latency))
                .collect(),
            rate: 2000.0,
            duration: Duration::from_secs(32),
            warmup: Duration::from_secs(2),
            keys: 1000,
            seed: 1,
        }
    }

    /// Renames the scenario.
    pub fn named(mut self, name: &str, description: &str) -> Scenario {
        self.name = name.into();
        self.description = description.into();
        self
    }

    /// The first `n` backends `factor` times slower.
    pub fn with_slow(mut self, n: usize, factor: f64) -> Scenario {
        for b in self.backends.iter_mut().take(n) {
            *b = b.clone().slower(factor);
        }
        self
    }

    /// The first `n` backends failing `rate` of requests after `after`.
    pub fn with_failing(mut self, n: usize, rate: f64, after: Duration) -> Scenario {
        for b in self.backends.iter_mut().take(n) {
            *b = b.clone().failing(rate, after);
        }
        self
    }

    /// Another arrival rate (requests per second).
    pub fn with_rate(mut self, rate: f64) -> Scenario {
        self.rate = rate;
        self
    }

    /// Another measured duration (the warmup stays).
    pub fn with_measured(mut self, measured: Duration) -> Scenario {
        self.duration = self.warmup + measured;
        self
    }

    /// Every backend with this latency distribution.
    pub fn with_latency(mut self, latency: Latency) -> Scenario {
        for b in &mut self.backends {
            b.latency = latency;
        }
        self
    }

    /// Every backend with `n` workers and a queue (see [`Backend::with_workers`]).
    pub fn with_workers(mut self, n: usize) -> Scenario {
        for b in &mut self.backends {
            b.workers = Some(n.max(1));
        }
        self
    }

    /// Another seed.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// The same scenario with every backend healthy: the reference for ratios.
    pub fn all_healthy(&self) -> Scenario {
        let mut s = self.clone();
        for b in &mut s.backends {
            b.slow_factor = 1.0;
            b.error_rate = 0.0;
        }
        s.name = "healthy".into();
        s.description = format!("{} healthy backends", s.backends.len());
        s
    }
}

/// The known cases the simulator reproduces: all healthy, 1 of 4 ten times slower, 2 of 4
/// ten times slower, and 1 of 4 failing half its requests fast (1 ms), all at the
/// [`Scenario::healthy`] load.
pub fn known_scenarios() -> Vec<Scenario> {
    let base = Scenario::healthy();
    vec![
        base.clone(),
        base.clone()
            .with_slow(1, 10.0)
            .named("1-of-4-slow", "b0 10× slower"),
        base.clone()
            .with_slow(2, 10.0)
            .named("2-of-4-slow", "b0, b1 10× slower"),
        base.with_failing(1, 0.5, Duration::from_millis(1))
            .named("1-of-4-failing", "b0 fails 50% in 1 ms"),
    ]
}

/// The strategies the simulator compares, as strategy spec strings.
pub const STRATEGIES: [&str; 8] = [
    "round-robin",
    "random",
    "fewest-pending",
    "two-random-choices",
    "peak-ewma",
    "peak-ewma?choices=all",
    "hash-ring",
    "hash-ring:ketama?bounded=1.25",
];
