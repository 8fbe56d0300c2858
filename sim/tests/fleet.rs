//! The fleet scenario's qualitative results (100 clients × 10 000 backends in 3 zones,
//! deterministic subsets of 50, one zone degraded), asserted on short runs.
//!
//! Deterministic: seeded, and one test in this file so its thread is the only one drawing
//! from the core's per-thread random streams (see the crate docs). Runs are measured for
//! 3 s instead of `make sim`'s 10 and the full mesh runs once (1 M peers take about 15 s
//! in a debug build); the covering variant is scaled down to 1 000 backends (100 clients ×
//! 50 = 5 × 1 000 slots) because 1 000 subsets of 10 000 backends take 20 s unoptimised.

use std::time::Duration;

use peerlb_sim::fleet::{self, client_backends, Config, Fleet, FleetResult, DEGRADED_ZONE};

fn fleets() -> (Fleet, Fleet, Fleet) {
    let mut known = fleet::known_fleets(Duration::from_secs(3)).into_iter();
    let healthy = known.next().unwrap();
    let slow = known.next().unwrap();
    let failing = known.next().unwrap();
    assert_eq!(
        (
            healthy.name.as_str(),
            slow.name.as_str(),
            failing.name.as_str()
        ),
        ("healthy", "zone-c-slow", "zone-c-failing")
    );
    (healthy, slow, failing)
}

fn sim(f: &Fleet, config: &Config) -> FleetResult {
    fleet::run(f, config).unwrap_or_else(|e| panic!("{} / {}: {e}", f.name, config.name))
}

#[test]
fn fleet_scenario() {
    let (healthy, slow, failing) = fleets();
    let rr = "round-robin";
    // 100 clients in 3 zones, 10 000 backends spread evenly (3334, 3333, 3333).
    assert_eq!(healthy.clients, 100);
    assert_eq!(healthy.backends.len(), 10_000);
    let in_c = (0..10_000)
        .filter(|&j| healthy.backend_zone(j) == DEGRADED_ZONE)
        .count();
    assert_eq!(in_c, 3333);
    // 30 % of zone c fails (30 of every 100 of its backends; 1 020 of 3 333).
    let failing_c = failing
        .backends
        .iter()
        .filter(|b| b.error_rate > 0.0)
        .count();
    assert_eq!(failing_c, 1020);

    // Subsets of 50: 100 × 50 = 5 000 slots over 10 000 backends, and the subsets of one
    // round do not overlap: half the backends are held by exactly one client, the other
    // half by none, whatever the traffic.
    let subset = Config::subset(rr, 50, false);
    let held = client_backends(&healthy, &subset);
    assert!(held.iter().all(|s| s.len() == 50));
    let spread = sim(&healthy, &subset);
    assert_eq!(spread.peers_held, 5_000);
    assert_eq!(spread.max_connections(), 1);
    assert_eq!(spread.unheld_backends(), 5_000);
    assert!((spread.mean_connections() - 0.5).abs() < 1e-9);
    assert!(spread.idle_backends() >= 5_000);
    // Without a local zone, the held half shares the load evenly (the Poisson noise of
    // 12 requests per backend in 3 s: max about 3× the mean over all 10 000 backends,
    // whose mean counts the idle half) and two thirds of requests cross zones.
    assert!(spread.max_over_mean() <= 4.0, "{}", spread.max_over_mean());
    assert!(
        (0.6..0.73).contains(&spread.cross_zone_share()),
        "{}",
        spread.cross_zone_share()
    );
    assert_eq!(spread.errors, 0);

    // With a local zone, every request stays in the client's zone, but the subsets ignore
    // zones: a client sends everything to the ~17 of its 50 backends in its own zone, the
    // others (held by a client of another zone) get nothing. Load concentrates on about a
    // sixth of the fleet.
    let zoned = Config::subset(rr, 50, true);
    let local = sim(&healthy, &zoned);
    assert_eq!(local.cross_zone, 0);
    assert!(local.idle_backends() > 8_000, "{}", local.idle_backends());
    assert!(local.max_over_mean() > 10.0, "{}", local.max_over_mean());
    assert_eq!(local.errors, 0);

    // One zone 5× slower: zone-aware routing counts health, not latency, so zone c's
    // clients keep every request at home (no spill) and the concentrated backends queue.
    let slowed = sim(&slow, &zoned);
    assert_eq!(slowed.cross_zone, 0);
    assert_eq!(slowed.degraded_zone_spilled, 0);
    assert!(slowed.latency.p99 > 4 * local.latency.p99);

    // 30 % of zone c failing: a subset client sends each of its backends 4–12 requests/s,
    // so 5 consecutive failures eject a failing backend within a second or two; the zone's
    // healthy share drops below its share of peers and zone-aware routing spills the rest
    // to zones a and b, while their clients stay at home.
    let spilled = sim(&failing, &zoned);
    assert_eq!(spilled.healthy_zone_cross, 0);
    assert!(
        (0.1..0.35).contains(&spilled.spill()),
        "spill {}",
        spilled.spill()
    );
    assert!(spilled.error_rate() < 0.03, "{}", spilled.error_rate());

    // The full-mesh baseline (with a local zone): every client holds every backend, no
    // request crosses zones, and no failing backend is ejected: a client sends each of its
    // 3 333 local backends 0.06 requests/s, 5 consecutive failures take over a minute. So
    // nothing spills and zone c's clients see 30 % errors (10 % of all requests).
    let mesh = sim(&failing, &Config::full_mesh(rr, true));
    assert_eq!(mesh.peers_held, 1_000_000);
    assert_eq!(mesh.max_connections(), 100);
    assert_eq!(mesh.unheld_backends(), 0);
    assert_eq!(mesh.cross_zone, 0);
    assert_eq!(mesh.degraded_zone_spilled, 0);
    assert!(
        (0.08..0.12).contains(&mesh.error_rate()),
        "{}",
        mesh.error_rate()
    );
    assert!(mesh.error_rate() > 3.0 * spilled.error_rate());
    // Its balance is the Poisson noise of 6 requests per backend.
    assert!(mesh.max_over_mean() <= 3.5, "{}", mesh.max_over_mean());

    // Enough clients to cover the fleet (scaled down: 100 clients × 50 over 1 000
    // backends, 5 slots per backend): every backend is held by exactly 5 clients, and with
    // a local zone the load spreads far better than with half the fleet unheld.
    let mut covered = healthy.clone();
    covered.backends.truncate(1_000);
    let covering = sim(&covered, &zoned);
    assert!(covering.connections.iter().all(|&c| c == 5));
    assert_eq!(covering.cross_zone, 0);
    assert!(
        covering.max_over_mean() < local.max_over_mean() / 2.0,
        "{} vs {}",
        covering.max_over_mean(),
        local.max_over_mean()
    );
}
