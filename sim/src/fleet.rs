//! Fleet scale: many clients, each a real [`PeerList`], over thousands of backends in
//! zones, with or without deterministic subsetting.
//!
//! A [`Fleet`] is backends spread evenly over zones (backend `j` in zone `j mod zones`),
//! and clients spread the same way (client `i` in zone `i mod zones`), each sending an
//! open-loop Poisson stream of requests. A [`Config`] says how every client builds its
//! list: the strategy, whether it holds every backend (full mesh) or only the `size`
//! backends [`peerlb::subset::deterministic_subset`] gives it, and whether the list has
//! [`ListOptions::local_zone`] set to the client's zone. Every backend is placed in its
//! zone at priority 0 ([`PeerSpec::with_zone`]) either way, so zones route only with a
//! local zone.
//!
//! [`run`] simulates the whole fleet in virtual time on one [`ManualClock`] shared by every
//! list: each arrival chooses through its client's list, each completion finishes the
//! [`Choice`] with `ok`/`failure` and the latency (the list's outlier ejection, on by
//! default, hears the failures). Backends are [`Backend`]s, so they may be slower, fail a
//! share of requests, and have a worker limit with a FIFO queue.
//!
//! [`FleetResult`] holds what the comparison needs: requests per backend (balance),
//! clients per backend (connections), cross-zone traffic, the traffic of the degraded
//! zone's clients that left their zone (spill), errors and latency percentiles.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use peerlb::clock::ManualClock;
use peerlb::subset::deterministic_subset;
use peerlb::{Choice, ListOptions, Outcome, PeerList, PeerSpec, Request, StrategyConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};

use crate::model::{Backend, Latency};
use crate::stats::{fmt_ms, Percentiles};

/// Backends, zones and clients at fleet scale, in virtual time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Short name, e.g. `zone-c-5x-slow`.
    pub name: String,
    /// One line for tables.
    pub description: String,
    /// Zone names; backend `j` is in zone `j mod zones.len()`, client `i` in zone
    /// `i mod zones.len()`.
    pub zones: Vec<String>,
    /// The backends (peer ids are their names).
    pub backends: Vec<Backend>,
    /// How many clients.
    pub clients: usize,
    /// Requests per second each client sends (Poisson).
    pub client_rate: f64,
    /// How long arrivals go on (virtual time).
    pub duration: Duration,
    /// Requests arriving before this are simulated but not measured (ejections happen,
    /// peak-ewma learns).
    pub warmup: Duration,
    /// Seeds arrivals, service times, errors and the lists.
    pub seed: u64,
    /// The zone whose backends are degraded, if any (for [`FleetResult::spill`]).
    pub degraded_zone: Option<usize>,
}

/// The fleet's backend latency: lognormal, median 10 ms, σ 0.5 (mean 11.3 ms).
pub const FLEET_LATENCY: Latency = Latency::LogNormal {
    median: Duration::from_millis(10),
    sigma: 0.5,
};

/// Workers per backend in [`Fleet::healthy`]: one, with a FIFO queue in front (about 88
/// requests/s of capacity when healthy, 18 when 5× slower), so that a backend given more
/// than its share queues.
pub const FLEET_WORKERS: usize = 1;

impl Fleet {
    /// `clients` clients sending `client_rate` requests/s each over `backends` healthy
    /// backends (`b0`, `b1`, ...; [`FLEET_LATENCY`], [`FLEET_WORKERS`] worker each) in
    /// three zones `a`, `b`, `c`; 10 s measured after a 2 s warmup, seed 1.
    pub fn healthy(clients: usize, client_rate: f64, backends: usize) -> Fleet {
        Fleet {
            name: "healthy".into(),
            description: "every zone healthy".into(),
            zones: ["a", "b", "c"].map(String::from).to_vec(),
            backends: (0..backends)
                .map(|j| {
                    Backend::healthy(format!("b{j}"), FLEET_LATENCY).with_workers(FLEET_WORKERS)
                })
                .collect(),
            clients,
            client_rate,
            duration: Duration::from_secs(12),
            warmup: Duration::from_secs(2),
            seed: 1,
            degraded_zone: None,
        }
    }

    /// The zone of backend `j`.
    pub fn backend_zone(&self, j: usize) -> usize {
        j % self.zones.len()
    }

    /// The zone of client `i`.
    pub fn client_zone(&self, i: usize) -> usize {
        i % self.zones.len()
    }

    /// Every backend of zone `zone` `factor` times slower.
    pub fn with_zone_slow(mut self, zone: usize, factor: f64) -> Fleet {
        let zones = self.zones.len();
        for (j, b) in self.backends.iter_mut().enumerate() {
            if j % zones == zone {
                *b = b.clone().slower(factor);
            }
        }
        self.degraded_zone = Some(zone);
        self
    }

    /// About `percent` % of zone `zone`'s backends failing every request after `after` (a
    /// refused connection): those whose index within the zone, modulo 100, is below
    /// `percent` (so the failing ones are spread through the zone's names).
    pub fn with_zone_failing(mut self, zone: usize, percent: usize, after: Duration) -> Fleet {
        let zones = self.zones.len();
        for (j, b) in self.backends.iter_mut().enumerate() {
            if j % zones == zone && (j / zones) % 100 < percent {
                *b = b.clone().failing(1.0, after);
            }
        }
        self.degraded_zone = Some(zone);
        self
    }

    /// Renames the fleet.
    pub fn named(mut self, name: &str, description: &str) -> Fleet {
        self.name = name.into();
        self.description = description.into();
        self
    }

    /// Another measured duration (the warmup stays).
    pub fn with_measured(mut self, measured: Duration) -> Fleet {
        self.duration = self.warmup + measured;
        self
    }

    /// Another seed.
    pub fn with_seed(mut self, seed: u64) -> Fleet {
        self.seed = seed;
        self
    }

    /// Another client count and per-client rate (the backends stay).
    pub fn with_clients(mut self, clients: usize, client_rate: f64) -> Fleet {
        self.clients = clients;
        self.client_rate = client_rate;
        self
    }

    /// One line on the load: clients, rate, backends, zones.
    pub fn describe_load(&self) -> String {
        let total = self.clients as f64 * self.client_rate;
        format!(
            "{} clients × {} requests/s = {} requests/s over {} backends ({:.1} requests/s \
             each on average) in {} zones",
            self.clients,
            self.client_rate,
            total,
            self.backends.len(),
            total / self.backends.len().max(1) as f64,
            self.zones.len()
        )
    }
}

/// How every client of a fleet builds its list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Short name for tables, e.g. `subset 50 + local zone`.
    pub name: String,
    /// The strategy spec (e.g. `round-robin`, `peak-ewma`).
    pub strategy: String,
    /// `Some(size)`: each client holds the `size` backends
    /// [`deterministic_subset`] gives it (client id = its index); `None`: every backend.
    pub subset: Option<usize>,
    /// Whether each client's list has `local_zone` set to the client's zone.
    pub local_zone: bool,
}

impl Config {
    /// Every client holds every backend.
    pub fn full_mesh(strategy: &str, local_zone: bool) -> Config {
        Config {
            name: format!("full mesh{}", if local_zone { " + local zone" } else { "" }),
            strategy: strategy.into(),
            subset: None,
            local_zone,
        }
    }

    /// Every client holds its deterministic subset of `size` backends.
    pub fn subset(strategy: &str, size: usize, local_zone: bool) -> Config {
        Config {
            name: format!(
                "subset {size}{}",
                if local_zone { " + local zone" } else { "" }
            ),
            strategy: strategy.into(),
            subset: Some(size),
            local_zone,
        }
    }
}

/// What a fleet did under one configuration (measured requests: those that arrived after
/// the warmup).
#[derive(Debug, Clone)]
pub struct FleetResult {
    /// The fleet's name.
    pub fleet: String,
    /// The configuration's name.
    pub config: String,
    /// The strategy spec.
    pub strategy: String,
    /// The fleet's client count.
    pub clients: usize,
    /// Measured requests per backend.
    pub per_backend: Vec<u64>,
    /// How many clients hold each backend in their list.
    pub connections: Vec<u32>,
    /// Measured requests.
    pub requests: u64,
    /// Measured requests that failed (including `choose` finding no peer).
    pub errors: u64,
    /// Measured requests sent to a backend outside the client's zone.
    pub cross_zone: u64,
    /// Measured requests of the degraded zone's clients.
    pub degraded_zone_requests: u64,
    /// Of those, how many went to another zone.
    pub degraded_zone_spilled: u64,
    /// Measured requests of the other (healthy) zones' clients.
    pub healthy_zone_requests: u64,
    /// Of those, how many went to another zone.
    pub healthy_zone_cross: u64,
    /// Measured requests served by degraded (slow or failing) backends.
    pub to_degraded: u64,
    /// Latency percentiles of the successful measured requests.
    pub latency: Percentiles,
    /// Peers held by all the lists together.
    pub peers_held: usize,
    /// Wall time to compute the subsets and build and fill every list.
    pub build_time: Duration,
    /// Wall time of the whole run (build included).
    pub wall_time: Duration,
}

impl FleetResult {
    /// Mean measured requests per backend (over every backend, idle ones included).
    pub fn mean_requests(&self) -> f64 {
        self.requests as f64 / self.per_backend.len().max(1) as f64
    }

    /// The busiest backend's requests over the mean: 1 is perfect balance.
    pub fn max_over_mean(&self) -> f64 {
        let max = self.per_backend.iter().copied().max().unwrap_or(0);
        max as f64 / self.mean_requests().max(f64::MIN_POSITIVE)
    }

    /// Backends that got no measured request.
    pub fn idle_backends(&self) -> usize {
        self.per_backend.iter().filter(|&&n| n == 0).count()
    }

    /// The most clients holding one backend.
    pub fn max_connections(&self) -> u32 {
        self.connections.iter().copied().max().unwrap_or(0)
    }

    /// Mean clients holding a backend.
    pub fn mean_connections(&self) -> f64 {
        self.connections.iter().map(|&c| c as f64).sum::<f64>()
            / self.connections.len().max(1) as f64
    }

    /// Backends no client holds.
    pub fn unheld_backends(&self) -> usize {
        self.connections.iter().filter(|&&c| c == 0).count()
    }

    /// Share of measured requests that crossed zones (0..=1).
    pub fn cross_zone_share(&self) -> f64 {
        self.cross_zone as f64 / self.requests.max(1) as f64
    }

    /// Share of the healthy zones' clients' requests that crossed zones (0..=1).
    pub fn healthy_cross_share(&self) -> f64 {
        self.healthy_zone_cross as f64 / self.healthy_zone_requests.max(1) as f64
    }

    /// Share of the degraded zone's clients' requests that left their zone (0..=1).
    pub fn spill(&self) -> f64 {
        self.degraded_zone_spilled as f64 / self.degraded_zone_requests.max(1) as f64
    }

    /// Share of measured requests served by degraded backends (0..=1).
    pub fn degraded_share(&self) -> f64 {
        self.to_degraded as f64 / self.requests.max(1) as f64
    }

    /// Failed share of measured requests (0..=1).
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.requests.max(1) as f64
    }
}

/// A request in flight.
struct InFlight {
    choice: Choice,
    backend: u32,
    arrived: u64,
    service: u64,
    failed: bool,
}

/// The backends each client of `fleet` holds under `config` (indices into
/// `fleet.backends`, client by client): every backend for a full mesh, else client `i`'s
/// [`deterministic_subset`] (client id `i`) of the backends' names.
pub fn client_backends(fleet: &Fleet, config: &Config) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..fleet.backends.len()).collect();
    let Some(size) = config.subset else {
        return vec![all; fleet.clients];
    };
    let names: Vec<&str> = fleet.backends.iter().map(|b| b.name.as_str()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(j, n)| (*n, j)).collect();
    (0..fleet.clients)
        .map(|i| {
            deterministic_subset(&names, i as u64, size)
                .iter()
                .map(|id| index[id.as_str()])
                .collect()
        })
        .collect()
}

/// Runs `fleet` with every client's list built as `config` says. Errors only for a bad
/// strategy spec or a list that refuses its peers.
///
/// Each client's list is `ListOptions::default()` with the strategy, the shared manual
/// clock, `fail_fast(true)`, a seed of its own (the fleet's seed and its index), a capacity
/// hint of its peer count, and `local_zone` (its zone) when the config says so; its peers
/// are its backends, each placed in its zone at priority 0. Outlier ejection stays at its
/// default (5 consecutive failures eject a peer for 30 s, at most 10 % of a list's peers).
pub fn run(fleet: &Fleet, config: &Config) -> peerlb::Result<FleetResult> {
    let started = Instant::now();
    let strategy: StrategyConfig = config.strategy.parse()?;
    let manual = ManualClock::new();
    let held = client_backends(fleet, config);
    let mut connections = vec![0u32; fleet.backends.len()];
    let mut lists = Vec::with_capacity(fleet.clients);
    for (i, backends) in held.iter().enumerate() {
        let mut options = ListOptions::default()
            .strategy_config(strategy)
            .clock(manual.clone().into())
            .fail_fast(true)
            .capacity(backends.len())
            .seed(fleet.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if config.local_zone {
            options = options.local_zone(fleet.zones[fleet.client_zone(i)].clone());
        }
        let list = PeerList::new(options)?;
        list.update(
            backends.iter().map(|&j| {
                PeerSpec::new(fleet.backends[j].name.clone())
                    .with_zone(fleet.zones[fleet.backend_zone(j)].clone())
                    .with_priority(0)
            }),
            None::<&str>,
        )?;
        list.start()?;
        for &j in backends {
            connections[j] += 1;
        }
        lists.push(list);
    }
    let build_time = started.elapsed();
    let peers_held = held.iter().map(Vec::len).sum();
    drop(held);
    let index: HashMap<&str, u32> = fleet
        .backends
        .iter()
        .enumerate()
        .map(|(j, b)| (b.name.as_str(), j as u32))
        .collect();

    let mut arrivals = StdRng::seed_from_u64(fleet.seed);
    let mut service = StdRng::seed_from_u64(fleet.seed ^ 0x7365_7276);
    let total_rate = fleet.client_rate * fleet.clients as f64;
    let gap = Exp::new(total_rate).expect("the fleet's rate is positive");
    let end = duration_ns(fleet.duration);
    let warmup = duration_ns(fleet.warmup);

    let mut now = 0u64;
    let mut next_arrival = 0u64;
    let mut seq = 0u64;
    let mut heap: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut busy = vec![0usize; fleet.backends.len()];
    let mut queues: Vec<VecDeque<u64>> = vec![VecDeque::new(); fleet.backends.len()];
    let mut latencies = Vec::with_capacity((total_rate * fleet.duration.as_secs_f64()) as usize);
    let mut result = FleetResult {
        fleet: fleet.name.clone(),
        config: config.name.clone(),
        strategy: config.strategy.clone(),
        clients: fleet.clients,
        per_backend: vec![0; fleet.backends.len()],
        connections,
        requests: 0,
        errors: 0,
        cross_zone: 0,
        degraded_zone_requests: 0,
        degraded_zone_spilled: 0,
        healthy_zone_requests: 0,
        healthy_zone_cross: 0,
        to_degraded: 0,
        latency: Percentiles::default(),
        peers_held,
        build_time,
        wall_time: Duration::ZERO,
    };
    loop {
        let arrival_due = next_arrival < end;
        if let Some(&Reverse((at, id))) = heap.peek() {
            if !arrival_due || at <= next_arrival {
                heap.pop();
                advance(&manual, &mut now, at);
                let backend = in_flight[&id].backend as usize;
                // Its worker takes the next waiting request, if any.
                busy[backend] -= 1;
                if let Some(next) = queues[backend].pop_front() {
                    busy[backend] += 1;
                    heap.push(Reverse((now + in_flight[&next].service, next)));
                }
                let r = in_flight
                    .remove(&id)
                    .expect("a finished request is in flight");
                let latency = now - r.arrived;
                let outcome = if r.failed {
                    Outcome::Failure
                } else {
                    Outcome::Ok
                };
                r.choice
                    .finish(outcome, Some(Duration::from_nanos(latency)));
                if r.arrived >= warmup {
                    if r.failed {
                        result.errors += 1;
                    } else {
                        latencies.push(latency);
                    }
                }
                continue;
            }
        }
        if !arrival_due {
            break;
        }
        advance(&manual, &mut now, next_arrival);
        next_arrival += sample_gap(&gap, &mut arrivals);
        let client = arrivals.random_range(0..fleet.clients);
        let measured = now >= warmup;
        let choice = match lists[client].choose(&Request::new()) {
            Ok(c) => c,
            Err(_) => {
                // No peer to offer (fail fast): a failed request that reached no backend.
                if measured {
                    result.requests += 1;
                    result.errors += 1;
                }
                continue;
            }
        };
        let backend = index[choice.peer().as_str()] as usize;
        let b = &fleet.backends[backend];
        let failed = b.error_rate > 0.0 && service.random_bool(b.error_rate.min(1.0));
        let service_time = if failed {
            duration_ns(b.failure_latency).max(1)
        } else {
            b.latency.sample(b.factor_at(now), &mut service)
        };
        if measured {
            result.requests += 1;
            result.per_backend[backend] += 1;
            let (from, to) = (fleet.client_zone(client), fleet.backend_zone(backend));
            let crossed = from != to;
            result.cross_zone += u64::from(crossed);
            if fleet.degraded_zone == Some(from) {
                result.degraded_zone_requests += 1;
                result.degraded_zone_spilled += u64::from(crossed);
            } else {
                result.healthy_zone_requests += 1;
                result.healthy_zone_cross += u64::from(crossed);
            }
            result.to_degraded += u64::from(b.is_degraded());
        }
        in_flight.insert(
            seq,
            InFlight {
                choice,
                backend: backend as u32,
                arrived: now,
                service: service_time,
                failed,
            },
        );
        if b.workers.map_or(true, |w| busy[backend] < w) {
            busy[backend] += 1;
            heap.push(Reverse((now + service_time, seq)));
        } else {
            queues[backend].push_back(seq);
        }
        seq += 1;
    }
    for list in &lists {
        list.stop()?;
    }
    result.latency = Percentiles::of(&mut latencies);
    result.wall_time = started.elapsed();
    Ok(result)
}

fn sample_gap(gap: &Exp<f64>, rng: &mut StdRng) -> u64 {
    (gap.sample(rng) * 1e9).round().max(1.0) as u64
}

/// Moves virtual time (and every list's clock) forward to `t`.
fn advance(manual: &ManualClock, now: &mut u64, t: u64) {
    if t > *now {
        manual.advance(Duration::from_nanos(t - *now));
        *now = t;
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The markdown table of fleet runs: one line per run.
pub fn markdown(results: &[FleetResult]) -> String {
    let mut out = String::from(
        "| fleet | clients | config | strategy | requests/backend max/mean | idle backends | \
         clients/backend max/mean | unheld backends | cross-zone | healthy zones cross | \
         degraded zone spill | to degraded | errors | p50 | p99 |\n\
         |---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | `{}` | {:.1} / {:.2} = {:.1}× | {} | {} / {:.2} | {} | {:.1}% | \
             {:.1}% | {} | {:.1}% | {:.2}% | {} | {} |\n",
            r.fleet,
            r.clients,
            r.config,
            r.strategy,
            r.per_backend.iter().copied().max().unwrap_or(0) as f64,
            r.mean_requests(),
            r.max_over_mean(),
            r.idle_backends(),
            r.max_connections(),
            r.mean_connections(),
            r.unheld_backends(),
            100.0 * r.cross_zone_share(),
            100.0 * r.healthy_cross_share(),
            if r.degraded_zone_requests > 0 {
                format!("{:.1}%", 100.0 * r.spill())
            } else {
                "–".into()
            },
            100.0 * r.degraded_share(),
            100.0 * r.error_rate(),
            fmt_ms(r.latency.p50),
            fmt_ms(r.latency.p99),
        ));
    }
    out
}

/// The degraded zone of [`known_fleets`]: `c` (index 2).
pub const DEGRADED_ZONE: usize = 2;

/// The share of the degraded zone's backends that fail in [`known_fleets`]' failing
/// variant, in percent.
pub const FAILING_PERCENT: usize = 30;

/// The fleets `make sim` compares, measured for `measured` after a 2 s warmup: 100 clients
/// × 200 requests/s over 10 000 backends (2 requests/s per backend on average) in zones
/// `a`, `b`, `c`:
///
/// | name | what |
/// |---|---|
/// | `healthy` | every backend healthy |
/// | `zone-c-slow` | every backend of zone `c` 5× slower |
/// | `zone-c-failing` | 30 % of zone `c`'s backends fail every request in 1 ms (refused connections) |
pub fn known_fleets(measured: Duration) -> Vec<Fleet> {
    let base = Fleet::healthy(100, 200.0, 10_000).with_measured(measured);
    vec![
        base.clone(),
        base.clone()
            .with_zone_slow(DEGRADED_ZONE, 5.0)
            .named("zone-c-slow", "every backend of zone c 5× slower"),
        base.with_zone_failing(DEGRADED_ZONE, FAILING_PERCENT, Duration::from_millis(1))
            .named(
                "zone-c-failing",
                "30% of zone c's backends fail every request in 1 ms",
            ),
    ]
}

/// The subset size of the comparison.
pub const SUBSET_SIZE: usize = 50;

/// The configurations each fleet of [`known_fleets`] runs under: full-mesh round-robin
/// without and with a local zone (the baseline), then subsets of [`SUBSET_SIZE`] with
/// round-robin (without and with a local zone) and peak-ewma (with one).
pub fn known_configs() -> Vec<Config> {
    vec![
        Config::full_mesh("round-robin", false),
        Config::full_mesh("round-robin", true),
        Config::subset("round-robin", SUBSET_SIZE, false),
        Config::subset("round-robin", SUBSET_SIZE, true),
        Config::subset("peak-ewma", SUBSET_SIZE, true),
    ]
}

/// The clients of the covering variant: enough that the subsets cover the fleet five times
/// (1 000 × 50 = 5 × 10 000 slots, so every backend is held by exactly 5 clients), each
/// sending 20 requests/s so the total load stays the same.
pub const COVERING_CLIENTS: usize = 1000;

/// The covering variant of `fleet` ([`COVERING_CLIENTS`] clients, the same total rate)
/// and the subset configurations it runs under (full mesh would be 10 M peers).
pub fn covering(fleet: &Fleet) -> (Fleet, Vec<Config>) {
    let total = fleet.client_rate * fleet.clients as f64;
    let f = fleet
        .clone()
        .with_clients(COVERING_CLIENTS, total / COVERING_CLIENTS as f64);
    let configs = known_configs()
        .into_iter()
        .filter(|c| c.subset.is_some())
        .collect();
    (f, configs)
}

/// Every (fleet, config) pair of the `make sim` fleet section, in table order: for each of
/// [`known_fleets`], the [`known_configs`] at 100 clients, then the [`covering`] variant.
pub fn known_runs(measured: Duration) -> Vec<(Fleet, Config)> {
    let mut runs = Vec::new();
    for fleet in known_fleets(measured) {
        for config in known_configs() {
            runs.push((fleet.clone(), config));
        }
        let (covering, configs) = covering(&fleet);
        for config in configs {
            runs.push((covering.clone(), config));
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Fleet {
        Fleet::healthy(6, 100.0, 60).with_measured(Duration::from_secs(2))
    }

    #[test]
    fn zones_and_subsets_are_as_documented() {
        let f = small();
        assert_eq!((f.backend_zone(4), f.client_zone(5)), (1, 2));
        let mesh = client_backends(&f, &Config::full_mesh("round-robin", false));
        assert!(mesh.iter().all(|s| s.len() == 60));
        // 6 clients × 10 = 60 slots: one round, every backend in exactly one subset.
        let subsets = client_backends(&f, &Config::subset("round-robin", 10, true));
        let mut all: Vec<usize> = subsets.concat();
        all.sort_unstable();
        assert_eq!(all, (0..60).collect::<Vec<_>>());
        let slow = f.clone().with_zone_slow(2, 5.0);
        assert_eq!(slow.backends.iter().filter(|b| b.is_degraded()).count(), 20);
        let failing = f.with_zone_failing(0, 30, Duration::from_millis(1));
        // Zone a's backends 0, 3, ... 57 have zone indices 0..19, all below 30.
        assert_eq!(
            failing.backends.iter().filter(|b| b.is_degraded()).count(),
            20
        );
    }

    #[test]
    fn a_local_zone_keeps_requests_at_home_and_counts_add_up() {
        let f = small();
        let spread = run(&f, &Config::full_mesh("round-robin", false)).unwrap();
        // About 1 200 measured arrivals (6 × 100/s over 2 s), every one counted once.
        assert!(
            (1_000..1_400).contains(&spread.requests),
            "{}",
            spread.requests
        );
        assert_eq!(spread.per_backend.iter().sum::<u64>(), spread.requests);
        assert_eq!(spread.latency.count as u64, spread.requests);
        assert!(spread.connections.iter().all(|&c| c == 6));
        assert!(spread.cross_zone > spread.requests / 2);
        let local = run(&f, &Config::full_mesh("round-robin", true)).unwrap();
        assert_eq!(local.cross_zone, 0);
        assert_eq!(local.errors, 0);
    }
}
