//! The known balancing cases, reproduced in virtual time through the real strategies.
//!
//! Deterministic: the simulation is seeded, and this file holds a single (non-ignored) test
//! so that its thread is the only one in the process drawing from the core's per-thread
//! random streams (see the crate docs). Runs take a few seconds in a debug build.

use std::time::Duration;

use peerlb_sim::engine::{run, RunResult};
use peerlb_sim::model::Scenario;

/// The `make sim` load (2000 requests/s, lognormal 10 ms median, σ 0.5), measured for 10 s
/// instead of 30 so that a debug build stays quick.
fn scenario(slow: usize) -> Scenario {
    Scenario::healthy()
        .with_measured(Duration::from_secs(10))
        .with_slow(slow, 10.0)
}

fn sim(scenario: &Scenario, strategy: &str) -> RunResult {
    run(scenario, strategy).unwrap_or_else(|e| panic!("{strategy}: {e}"))
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[test]
fn known_cases() {
    let healthy = scenario(0);
    let one_slow = scenario(1);
    let two_slow = scenario(2);

    // With every backend healthy, latency does not depend on the choice (backends have no
    // queue), so every strategy sees the same p99: the reference.
    let reference = sim(&healthy, "round-robin").latency.p99;
    assert_eq!(sim(&healthy, "peak-ewma").latency.p99, reference);
    assert!((28.0..36.0).contains(&ms(reference)), "{}", ms(reference));

    // 1 of 4 backends 10× slower: peak-ewma keeps p99 within 1.3× of healthy and at
    // least 5× better than round-robin, which sends the slow backend its full quarter.
    // The margin is thin: seed 1 gives 1.16× here (1.15× in `make sim`), seeds 2–5 give
    // 1.26–1.30× in `make sim` (`--seed N`), the slow backend getting 0.6–0.8%.
    let ewma = sim(&one_slow, "peak-ewma");
    let rr = sim(&one_slow, "round-robin");
    let ratio = ewma.latency.p99 as f64 / reference as f64;
    assert!(ratio <= 1.3, "peak-ewma p99 {ratio:.2}× healthy");
    let better = rr.latency.p99 as f64 / ewma.latency.p99 as f64;
    assert!(
        better >= 5.0,
        "peak-ewma only {better:.1}× better than round-robin"
    );
    assert!(ewma.degraded_share() < 0.01, "{}", ewma.degraded_share());
    assert!((0.24..0.26).contains(&rr.degraded_share()));

    // 2 of 4 slow: plain two-random-choices degrades. One draw in six is the two slow
    // backends, which it cannot avoid, so at least ~1/6 of requests go slow and p99 is a
    // slow backend's latency.
    let p2c = sim(&two_slow, "two-random-choices");
    assert!(p2c.degraded_share() >= 0.15, "{}", p2c.degraded_share());
    assert!(p2c.latency.p99 as f64 >= 5.0 * reference as f64);
    // peak-ewma is two random choices too (on latency × pending), so the same one draw in
    // six reaches it: it does not hold p99 within 2× here (see
    // `two_of_four_slow_target_not_met`, ignored).
    let ewma = sim(&two_slow, "peak-ewma");
    assert!(ewma.degraded_share() >= 0.15, "{}", ewma.degraded_share());
    // fewest-pending sees every backend and sends the slow ones less than p2c does.
    let fewest = sim(&two_slow, "fewest-pending");
    assert!(fewest.degraded_share() < p2c.degraded_share());
    // peak-ewma comparing every peer (`choices=all`) avoids the slow pair far better: about
    // 2% of requests, p99 about 3× healthy (not the 2× target: its cost, latency ×
    // (pending + 1), prefers an idle slow backend over a fast one with several requests in
    // flight, which these backends, serving requests in parallel, do not queue).
    let scan = sim(&two_slow, "peak-ewma?choices=all");
    assert!(scan.degraded_share() < 0.03, "{}", scan.degraded_share());
    assert!(scan.latency.p99 * 2 < p2c.latency.p99, "{:?}", scan.latency);
}

/// A target the current strategies do not meet: with 2 of 4
/// backends 10× slower, peak-ewma, fewest-pending and bounded-load hash-ring each keep p99
/// within 2× of healthy. Every one of them sends 10–17% of requests to the slow backends
/// (above the 1% that p99 tolerates), at every load from 200 to 20 000 requests/s and every
/// peak-ewma decay from 1 s to 60 s; see LEAD-NOTES.md. Run with `--ignored` to see it fail.
#[test]
#[ignore = "target not met by the current strategies (see the doc comment)"]
fn two_of_four_slow_target_not_met() {
    let reference = sim(&scenario(0), "round-robin").latency.p99;
    let two_slow = scenario(2);
    for strategy in [
        "peak-ewma",
        "peak-ewma?choices=all",
        "fewest-pending",
        "hash-ring:ketama?bounded=1.25",
    ] {
        let r = sim(&two_slow, strategy);
        let ratio = r.latency.p99 as f64 / reference as f64;
        assert!(ratio <= 2.0, "{strategy}: p99 {ratio:.2}× healthy");
    }
}
