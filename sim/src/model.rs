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

    /// The mean in nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        match *self {
            Latency::Constant(d) => d.as_nanos() as f64,
            Latency::LogNormal { median, sigma } => {
                median.as_nanos() as f64 * (sigma * sigma / 2.0).exp()
            }
            Latency::Exponential { mean } => mean.as_nanos() as f64,
        }
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
    /// When its slowdown ends (virtual time from the start): requests that arrive later get
    /// the healthy latency. `None`: slow (if `slow_factor` says so) throughout.
    pub recovers_at: Option<Duration>,
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
            recovers_at: None,
        }
    }

    /// The same backend, recovering from its slowdown at `at` (see
    /// [`Backend::recovers_at`]).
    pub fn recovering_at(mut self, at: Duration) -> Backend {
        self.recovers_at = Some(at);
        self
    }

    /// The slowdown factor for a request arriving at `t` ns.
    pub fn factor_at(&self, t: u64) -> f64 {
        match self.recovers_at {
            Some(at) if t >= at.as_nanos() as u64 => 1.0,
            _ => self.slow_factor,
        }
    }

    /// What its utilization reports divide by: its workers, or [`UNLIMITED_CAPACITY`].
    pub fn capacity(&self) -> usize {
        self.workers.unwrap_or(UNLIMITED_CAPACITY)
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

/// The capacity a backend without a worker limit reports utilization against (its
/// "cores"): utilization = service time served per second / this.
pub const UNLIMITED_CAPACITY: usize = 16;

/// Client-side stalls (a GC pause, a descheduled thread): at Poisson-distributed instants
/// the client stops for a while, and every request in flight at that instant is seen to
/// finish that much later (an additive delay shared by all of them). Backends are not
/// affected; the client's pending counts stay up until it sees the responses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stalls {
    /// Stalls per second (Poisson).
    pub rate: f64,
    /// How long each lasts.
    pub duration: Latency,
}

impl Stalls {
    /// A short description, e.g. `5/s stalls of exponential(mean 8.0 ms)`.
    pub fn describe(&self) -> String {
        format!("{}/s stalls of {}", self.rate, self.duration.describe())
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
    /// Client-side stalls (off: `None`, the default).
    pub stalls: Option<Stalls>,
    /// Whether backends send a load report with every response (requests in flight,
    /// utilization, queries and errors per second over the last second), which the
    /// simulated client passes to `finish_with_load`. Off by default.
    pub reports: bool,
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
            stalls: None,
            reports: false,
        }
    }

    /// With client-side stalls.
    pub fn with_stalls(mut self, stalls: Stalls) -> Scenario {
        self.stalls = Some(stalls);
        self
    }

    /// With backends reporting their load (see [`Scenario::reports`]).
    pub fn with_reports(mut self) -> Scenario {
        self.reports = true;
        self
    }

    /// `n` backends (`b0`..) like the first one, with the same per-backend load (the rate
    /// scales with the count).
    pub fn with_backends(mut self, n: usize) -> Scenario {
        let per_backend = self.rate / self.backends.len().max(1) as f64;
        let template = self.backends[0].clone();
        self.backends = (0..n)
            .map(|i| Backend {
                name: format!("b{i}"),
                ..template.clone()
            })
            .collect();
        self.rate = per_backend * n as f64;
        self
    }

    /// The mean service time of its first backend when healthy, in ns.
    pub fn mean_service(&self) -> f64 {
        self.backends[0].latency.mean_ns()
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
            b.recovers_at = None;
        }
        s.name = "healthy".into();
        s.description = format!("{} healthy backends", s.backends.len());
        s
    }
}

/// The known cases the simulator reproduces, all at the [`Scenario::healthy`] load per
/// backend (500 requests/s each, lognormal latency with a 10 ms median):
///
/// | name | what |
/// |---|---|
/// | `healthy` | 4 healthy backends |
/// | `1-of-4-slow` | `b0` 10× slower |
/// | `2-of-4-slow` | `b0`, `b1` 10× slower |
/// | `2-of-4-slow+reports` | the same, backends reporting their load with every response |
/// | `1-of-4-failing` | `b0` fails half its requests in 1 ms |
/// | `3-of-10-slow` | 10 backends (σ 0.6), `b0`..`b2` 5× slower |
/// | `unequal-queues` | 6 backends with 1, 1, 2, 2, 4, 4 workers and FIFO queues, at 70 % of their total capacity |
/// | `unequal-queues+reports` | the same, backends reporting their load |
/// | `recovered` | `b0` 10× slower for the first 10 s, then healthy |
/// | `demo-stalls` | the real demo's backends (2 ms, one 20 ms, σ 0.25; 1200 requests/s) with client stalls |
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
        base.clone()
            .with_slow(2, 10.0)
            .with_reports()
            .named("2-of-4-slow+reports", "b0, b1 10× slower; load reports"),
        base.clone()
            .with_failing(1, 0.5, Duration::from_millis(1))
            .named("1-of-4-failing", "b0 fails 50% in 1 ms"),
        three_of_ten_slow(),
        unequal_queues(),
        unequal_queues().with_reports().named(
            "unequal-queues+reports",
            "6 backends with 1, 1, 2, 2, 4, 4 workers (FIFO queues), 70% load; load reports",
        ),
        recovered(),
        demo_stalls(),
    ]
}

/// 10 backends, lognormal (median 10 ms, σ 0.6), 5000 requests/s, `b0`..`b2` 5× slower.
pub fn three_of_ten_slow() -> Scenario {
    Scenario::healthy()
        .with_latency(Latency::LogNormal {
            median: Duration::from_millis(10),
            sigma: 0.6,
        })
        .with_backends(10)
        .with_slow(3, 5.0)
        .named("3-of-10-slow", "10 backends (σ 0.6), b0..b2 5× slower")
}

/// Workers per backend in [`unequal_queues`].
pub const UNEQUAL_WORKERS: [usize; 6] = [1, 1, 2, 2, 4, 4];

/// 6 backends with 1, 1, 2, 2, 4, 4 workers and FIFO queues, lognormal (median 10 ms,
/// σ 0.5), arrivals at 70 % of their total capacity (14 workers / mean service time).
pub fn unequal_queues() -> Scenario {
    let mut s = Scenario::healthy().with_backends(UNEQUAL_WORKERS.len());
    for (b, w) in s.backends.iter_mut().zip(UNEQUAL_WORKERS) {
        b.workers = Some(w);
    }
    let capacity = UNEQUAL_WORKERS.iter().sum::<usize>() as f64 * 1e9 / s.mean_service();
    s.rate = (0.7 * capacity).round();
    s.named(
        "unequal-queues",
        "6 backends with 1, 1, 2, 2, 4, 4 workers (FIFO queues), 70% load",
    )
}

/// When `b0` recovers in [`recovered`].
pub const RECOVERY_AT: Duration = Duration::from_secs(10);

/// 4 backends, `b0` 10× slower until [`RECOVERY_AT`] (10 s), then healthy; 30 s in all.
pub fn recovered() -> Scenario {
    let mut s = Scenario::healthy().named(
        "recovered",
        "b0 10× slower for the first 10 s, then healthy",
    );
    s.backends[0] = s.backends[0]
        .clone()
        .slower(10.0)
        .recovering_at(RECOVERY_AT);
    s.duration = Duration::from_secs(30);
    s
}

/// The stalls of [`demo_stalls`]: 3 a second, exponential with a 30 ms mean. Calibrated on
/// the real demo before `prequal`: with them, `peak-ewma` sends the slow backend about 5 %
/// of the requests and its p99 is about 7× the healthy p99, as in the real demo (5.5 %,
/// 6.8×), while the healthy p99 stays near the backends' own (3.8 ms against 3.6 ms), as
/// it does there (3.7 ms).
pub const DEMO_STALLS: Stalls = Stalls {
    rate: 3.0,
    duration: Latency::Exponential {
        mean: Duration::from_millis(30),
    },
};

/// The real demo's backends (`make demo`: three answer in 2 ms, one in 20 ms, lognormal
/// σ 0.25, 1200 requests/s) with client-side stalls ([`DEMO_STALLS`]).
pub fn demo_stalls() -> Scenario {
    let fast = Latency::LogNormal {
        median: Duration::from_millis(2),
        sigma: 0.25,
    };
    let mut s = Scenario::healthy()
        .with_latency(fast)
        .with_rate(1200.0)
        .with_slow(1, 10.0)
        .with_stalls(DEMO_STALLS)
        .named(
            "demo-stalls",
            "the demo's backends (b0 10× slower) with client stalls",
        );
    s.keys = 1000;
    s
}

/// The strategy the targets of [`crate::report::Report::targets`] are for: the
/// latency-aware default, at its default options.
pub const DEFAULT_STRATEGY: &str = "prequal";

/// The strategies the simulator compares, as strategy spec strings.
pub const STRATEGIES: [&str; 10] = [
    "round-robin",
    "random",
    "fewest-pending",
    "two-random-choices",
    "peak-ewma",
    "peak-ewma?choices=all",
    "prequal",
    "weighted-round-robin:orca",
    "hash-ring",
    "hash-ring:ketama?bounded=1.25",
];
