//! The known balancing cases, reproduced in virtual time through the real strategies, and
//! the targets the latency-aware default (`prequal`, default options) meets on them.
//!
//! Deterministic: the simulation is seeded, and this file holds a single test so that its
//! thread is the only one in the process drawing from the core's per-thread random streams
//! (see the crate docs). Runs are measured for 10 s instead of `make sim`'s 30 so that a
//! debug build stays quick (about a minute).

use std::time::Duration;

use peerlb_sim::engine::{run, RunResult};
use peerlb_sim::model::{self, Scenario, RECOVERY_AT};

/// The strategy the targets are for, at its default options.
const DEFAULT: &str = "prequal";

/// The `make sim` load (2000 requests/s, lognormal 10 ms median, σ 0.5), measured for 10 s.
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

/// p99 of `strategy` on `scenario` over its p99 with every backend healthy.
fn ratio(scenario: &Scenario, strategy: &str) -> (f64, RunResult) {
    let r = sim(scenario, strategy);
    let healthy = sim(&scenario.all_healthy(), strategy).latency.p99;
    (r.latency.p99 as f64 / healthy as f64, r)
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
    assert_eq!(sim(&healthy, DEFAULT).latency.p99, reference);
    assert!((28.0..36.0).contains(&ms(reference)), "{}", ms(reference));

    // 1 of 4 backends 10× slower: peak-ewma keeps p99 within 1.3× of healthy and at
    // least 5× better than round-robin, which sends the slow backend its full quarter.
    // The margin is thin: seed 1 gives 1.16× here (1.15× in `make sim`), seeds 2–5 give
    // 1.26–1.30× in `make sim` (`--seed N`), the slow backend getting 0.6–0.8%.
    let ewma = sim(&one_slow, "peak-ewma");
    let rr = sim(&one_slow, "round-robin");
    let ewma_ratio = ewma.latency.p99 as f64 / reference as f64;
    assert!(ewma_ratio <= 1.3, "peak-ewma p99 {ewma_ratio:.2}× healthy");
    let better = rr.latency.p99 as f64 / ewma.latency.p99 as f64;
    assert!(
        better >= 5.0,
        "peak-ewma only {better:.1}× better than round-robin"
    );
    assert!(ewma.degraded_share() < 0.01, "{}", ewma.degraded_share());
    assert!((0.24..0.26).contains(&rr.degraded_share()));
    // Target: the default within 1.2× (it sends the slow backend one probe a second).
    let default = sim(&one_slow, DEFAULT);
    let r = default.latency.p99 as f64 / reference as f64;
    assert!(r <= 1.2, "{DEFAULT}, 1 of 4 slow: p99 {r:.2}× healthy");
    assert!(
        default.degraded_share() < 0.002,
        "{}",
        default.degraded_share()
    );

    // 2 of 4 slow: plain two-random-choices degrades. One draw in six is the two slow
    // backends, which it cannot avoid, so at least ~1/6 of requests go slow and p99 is a
    // slow backend's latency.
    let p2c = sim(&two_slow, "two-random-choices");
    assert!(p2c.degraded_share() >= 0.15, "{}", p2c.degraded_share());
    assert!(p2c.latency.p99 as f64 >= 5.0 * reference as f64);
    // peak-ewma is two random choices too (on latency × pending), so the same one draw in
    // six reaches it.
    let ewma = sim(&two_slow, "peak-ewma");
    assert!(ewma.degraded_share() >= 0.15, "{}", ewma.degraded_share());
    // fewest-pending sees every backend and sends the slow ones less than p2c does.
    let fewest = sim(&two_slow, "fewest-pending");
    assert!(fewest.degraded_share() < p2c.degraded_share());
    // peak-ewma comparing every peer (`choices=all`) avoids the slow pair far better, but
    // not enough: its cost, latency × (pending + 1), prefers an idle slow backend over a
    // fast one with several requests in flight, which these backends, serving requests in
    // parallel, do not queue (about 2% of requests, p99 about 3× healthy).
    let scan = sim(&two_slow, "peak-ewma?choices=all");
    assert!(scan.degraded_share() < 0.03, "{}", scan.degraded_share());
    assert!(scan.latency.p99 * 2 < p2c.latency.p99, "{:?}", scan.latency);
    assert!(scan.latency.p99 as f64 > 2.0 * reference as f64);
    // Target: the default within 2× (it measures at every load level that the fast pair
    // does not queue, so nothing makes the slow pair competitive).
    let default = sim(&two_slow, DEFAULT);
    let r = default.latency.p99 as f64 / reference as f64;
    assert!(r <= 2.0, "{DEFAULT}, 2 of 4 slow: p99 {r:.2}× healthy");
    // With load reports (in-flight counts, utilization, qps, eps): within 1.5×.
    let reported = two_slow.clone().with_reports();
    let r = sim(&reported, DEFAULT).latency.p99 as f64 / reference as f64;
    assert!(
        r <= 1.5,
        "{DEFAULT}, 2 of 4 slow with reports: p99 {r:.2}× healthy"
    );
    // Reports are what gRPC's ORCA-driven weights need: without them it is round-robin;
    // with them (after a 1 s blackout here, 10 s by default) each slow backend weighs a
    // tenth of a fast one (qps / utilization), about 4.5% of requests each.
    let orca = "weighted-round-robin:orca?blackout_ms=1000";
    let without = sim(&two_slow, orca).degraded_share();
    assert!((0.49..0.51).contains(&without), "{without}");
    let with = sim(&reported, orca);
    assert!(with.degraded_share() < 0.15, "{}", with.degraded_share());

    // 3 of 10 backends 5× slower (σ 0.6): peak-ewma about 2.3×, choices=all about 1.6×.
    let three = model::three_of_ten_slow().with_measured(Duration::from_secs(10));
    let (r, _) = ratio(&three, "peak-ewma");
    assert!(r > 2.0, "peak-ewma, 3 of 10 slow: {r:.2}×");
    let (r, default) = ratio(&three, DEFAULT);
    assert!(r <= 1.6, "{DEFAULT}, 3 of 10 slow: p99 {r:.2}× healthy");
    assert!(
        default.degraded_share() < 0.01,
        "{}",
        default.degraded_share()
    );

    // Queueing backends of unequal capacity (1, 1, 2, 2, 4, 4 workers) at 70% load:
    // round-robin overloads the 1-worker ones (its queue grows through the run); the
    // default stays stable with p99 within 8× the mean service time.
    let queues = model::unequal_queues().with_measured(Duration::from_secs(10));
    let mean = queues.mean_service();
    let rr = sim(&queues, "round-robin");
    let [first, second] = rr.p99_halves;
    assert!(
        second as f64 > 1.3 * first as f64 && first as f64 > 100.0 * mean,
        "{:?}",
        rr.p99_halves
    );
    let default = sim(&queues, DEFAULT);
    let [first, second] = default.p99_halves;
    assert!(
        (second as f64) < 1.5 * first as f64,
        "{DEFAULT} unstable: p99 {} then {}",
        ms(first),
        ms(second)
    );
    let r = default.latency.p99 as f64 / mean;
    assert!(
        r <= 8.0,
        "{DEFAULT}, unequal queues: p99 {r:.1}× the mean service time"
    );

    // A backend slow for 10 s, then healthy: back to ≥ 80% of its fair share (25%) within
    // 5 s, and it stays there. peak-EWMA's estimate decays over τ = 10 s instead.
    let recovered = model::recovered();
    let at = RECOVERY_AT.as_secs() as usize;
    let fair = 1.0 / recovered.backends.len() as f64;
    let default = sim(&recovered, DEFAULT);
    let early = default.share_between(0, at + 1, at + 5);
    let later = default.share_between(0, at + 5, 30);
    assert!(
        early >= 0.8 * fair && later >= 0.8 * fair,
        "{DEFAULT}: share {early:.3} in the 1–5 s after recovery, {later:.3} after"
    );
    let ewma = sim(&recovered, "peak-ewma");
    assert!(ewma.share_between(0, at + 1, at + 5) < 0.5 * fair);

    // The real demo's gap: its backends (2 ms, one 20 ms) with client stalls (3 a second,
    // 30 ms on average). peak-ewma jumps to every stalled answer and keeps the fast
    // backends' estimates up for seconds, so the slow one looks no worse: about 5% of
    // requests and p99 about 7× healthy, as in the demo before this fix (5.5%, 6.8×).
    // Without stalls it is fine, which says the stalls make the gap. The default closes it.
    // (30 s measured, as in `make sim`: peak-ewma's first seconds, from its 30 ms default
    // estimate, would otherwise weigh in.)
    let demo = model::demo_stalls();
    let (r, ewma) = ratio(&demo, "peak-ewma");
    assert!(r >= 4.0, "peak-ewma with stalls: {r:.2}×");
    assert!(ewma.degraded_share() >= 0.03, "{}", ewma.degraded_share());
    let mut calm = demo.clone();
    calm.stalls = None;
    let (r, _) = ratio(&calm, "peak-ewma");
    assert!(r <= 1.5, "peak-ewma without stalls: {r:.2}×");
    let (r, default) = ratio(&demo, DEFAULT);
    assert!(r <= 1.5, "{DEFAULT} with stalls: p99 {r:.2}× healthy");
    assert!(
        default.degraded_share() <= 0.01,
        "{}",
        default.degraded_share()
    );
}
