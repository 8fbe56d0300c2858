//! Metrics: what a list's text says after real chooses and finishes, cardinality, the
//! process-wide registry, and the circuit breakers' numbers.

use std::time::Duration;

use peerlb::metrics::{gather, gather_as, MetricsFormat};
use peerlb::retry::{self, Attempt, RetryBudget, RetryPolicy};
use peerlb::{registry, ErrorCode, ListOptions, Outcome, PeerList, Request};

fn running(name: &str, options: ListOptions, peers: &[&str]) -> PeerList {
    let list = PeerList::new(options.name(name).shuffle(false)).unwrap();
    list.update(peers.iter().copied(), None::<&str>).unwrap();
    list.start().unwrap();
    list
}

/// The value of the sample line that starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn counters_gauges_and_latencies_follow_the_requests() {
    let list = running("metrics-basic", ListOptions::default(), &["a:1", "b:1"]);
    let r = Request::new();
    list.choose(&r)
        .unwrap()
        .finish(Outcome::Ok, Some(Duration::from_millis(3))); // a
    list.choose(&r).unwrap().finish(Outcome::Failure, None); // b
    list.choose(&r)
        .unwrap()
        .finish(Outcome::Declined, Some(Duration::from_millis(1))); // a
    drop(list.choose(&r).unwrap()); // b, cancelled
    let held = list.choose(&r).unwrap(); // a, in flight
    let text = list.metrics();
    let a = r#"{list="metrics-basic",peer="a:1"}"#;
    let b = r#"{list="metrics-basic",peer="b:1"}"#;
    assert_eq!(
        value(&text, &format!("peerlb_chosen_total{a}")),
        Some(3.0),
        "{text}"
    );
    assert_eq!(value(&text, &format!("peerlb_chosen_total{b}")), Some(2.0));
    let outcome = |peer: &str, o: &str| {
        value(
            &text,
            &format!(
                r#"peerlb_finished_total{{list="metrics-basic",peer="{peer}",outcome="{o}"}}"#
            ),
        )
    };
    assert_eq!(outcome("a:1", "ok"), Some(1.0));
    assert_eq!(outcome("a:1", "declined"), Some(1.0));
    assert_eq!(outcome("b:1", "failure"), Some(1.0));
    assert_eq!(outcome("b:1", "cancelled"), Some(1.0));
    assert_eq!(outcome("b:1", "ok"), Some(0.0));
    assert_eq!(
        value(&text, &format!("peerlb_pending_requests{a}")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &format!("peerlb_peer_available{a}")),
        Some(1.0)
    );
    // Two latencies were given for a (3 ms, 1 ms); none for b.
    assert_eq!(
        value(&text, &format!("peerlb_request_duration_seconds_count{a}")),
        Some(2.0)
    );
    assert_eq!(
        value(&text, &format!("peerlb_request_duration_seconds_sum{a}")),
        Some(0.004)
    );
    assert_eq!(
        value(
            &text,
            r#"peerlb_request_duration_seconds_bucket{list="metrics-basic",peer="a:1",le="0.001048576"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &format!("peerlb_request_duration_seconds_count{b}")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, r#"peerlb_peers{list="metrics-basic"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(&text, r#"peerlb_available_peers{list="metrics-basic"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(&text, r#"peerlb_panic_floor_active{list="metrics-basic"}"#),
        Some(0.0)
    );
    assert!(text.contains("# TYPE peerlb_chosen_total counter\n"));
    assert!(text.contains("# TYPE peerlb_request_duration_seconds histogram\n"));
    held.finish(Outcome::Ok, None);
    let text = list.metrics();
    assert_eq!(outcome_of(&text, "a:1", "ok"), 2.0);
}

fn outcome_of(text: &str, peer: &str, outcome: &str) -> f64 {
    value(
        text,
        &format!(
            r#"peerlb_finished_total{{list="metrics-basic",peer="{peer}",outcome="{outcome}"}}"#
        ),
    )
    .unwrap()
}

#[test]
fn measured_latencies_are_recorded_for_strategies_that_use_outcomes() {
    let list = running(
        "metrics-measured",
        ListOptions::default().strategy_name("peak-ewma").unwrap(),
        &["a:1"],
    );
    for _ in 0..3 {
        list.choose(&Request::new())
            .unwrap()
            .finish(Outcome::Ok, None);
    }
    let text = list.metrics();
    assert_eq!(
        value(
            &text,
            r#"peerlb_request_duration_seconds_count{list="metrics-measured",peer="a:1"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

#[test]
fn a_removed_peer_keeps_its_series_until_its_last_request_ends() {
    let list = running("metrics-removed", ListOptions::default(), &["a:1", "b:1"]);
    let first = list.choose(&Request::new()).unwrap();
    assert_eq!(first.peer().as_str(), "a:1");
    list.update(None::<&str>, ["a:1"]).unwrap();
    let text = list.metrics();
    assert!(text.contains(r#"peer="a:1""#), "{text}");
    assert_eq!(
        value(
            &text,
            r#"peerlb_pending_requests{list="metrics-removed",peer="a:1"}"#
        ),
        Some(1.0)
    );
    first.finish(Outcome::Ok, None);
    let text = list.metrics();
    assert!(!text.contains(r#"peer="a:1""#), "{text}");
    assert!(text.contains(r#"peer="b:1""#));
    // Added again, it is back (its counters go on if an old peer of the id still lived).
    list.update(["a:1"], None::<&str>).unwrap();
    assert!(value(
        &list.metrics(),
        r#"peerlb_chosen_total{list="metrics-removed",peer="a:1"}"#
    )
    .is_some());
}

#[test]
fn counters_survive_a_restart() {
    let list = running("metrics-restart", ListOptions::default(), &["a:1"]);
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, None);
    list.stop().unwrap();
    list.start().unwrap();
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Failure, None);
    let text = list.metrics();
    let a = r#"{list="metrics-restart",peer="a:1"}"#;
    assert_eq!(
        value(&text, &format!("peerlb_chosen_total{a}")),
        Some(2.0),
        "{text}"
    );
}

#[test]
fn peer_labels_off_collapses_the_peers() {
    let list = running(
        "metrics-collapsed",
        ListOptions::default().peer_labels(false),
        &["a:1", "b:1", "c:1"],
    );
    for _ in 0..6 {
        list.choose(&Request::new())
            .unwrap()
            .finish(Outcome::Ok, Some(Duration::from_millis(2)));
    }
    let text = list.metrics();
    assert!(!text.contains("peer="), "{text}");
    assert_eq!(
        value(&text, r#"peerlb_chosen_total{list="metrics-collapsed"}"#),
        Some(6.0)
    );
    assert_eq!(
        value(
            &text,
            r#"peerlb_request_duration_seconds_count{list="metrics-collapsed"}"#
        ),
        Some(6.0)
    );
}

#[test]
fn metrics_off_records_nothing() {
    let list = running(
        "metrics-off",
        ListOptions::default().metrics(false),
        &["a:1"],
    );
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, Some(Duration::from_millis(1)));
    assert_eq!(list.metrics(), "");
    assert!(!gather().contains("metrics-off"));
}

#[test]
fn the_registry_gathers_every_list_and_shows_the_newest_of_a_name() {
    let one = running("metrics-gather-1", ListOptions::default(), &["a:1"]);
    let two = running("metrics-gather-2", ListOptions::default(), &["b:1"]);
    let text = gather();
    assert!(
        text.contains(r#"peerlb_peers{list="metrics-gather-1"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"peerlb_peers{list="metrics-gather-2"} 1"#));
    let newer = running("metrics-gather-1", ListOptions::default(), &["x:1", "y:1"]);
    let text = gather();
    assert!(
        text.contains(r#"peerlb_peers{list="metrics-gather-1"} 2"#),
        "{text}"
    );
    assert_eq!(registry::find("metrics-gather-1").unwrap().len(), 2);
    drop(newer);
    assert_eq!(registry::find("metrics-gather-1").unwrap().len(), 1);
    drop((one, two));
    assert!(registry::find("metrics-gather-2").is_none());
    let om = gather_as(MetricsFormat::OpenMetrics);
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn names_are_checked_and_defaulted() {
    for bad in ["", "a b", "a/b", "é", &"x".repeat(129)] {
        let err = PeerList::new(ListOptions::default().name(bad)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad:?}");
    }
    let unnamed = PeerList::new(ListOptions::default()).unwrap();
    assert!(unnamed.name().starts_with("list-"), "{}", unnamed.name());
    assert_eq!(unnamed.introspect().name, unnamed.name());
}

#[test]
fn retries_and_budget_refusals_are_counted() {
    let list = running(
        "metrics-retry",
        ListOptions::default().ejection(None),
        &["a:1", "b:1", "c:1"],
    );
    let policy = RetryPolicy::new(3);
    let _ = retry::call(&list, &Request::new(), &policy, |_| -> Result<(), _> {
        Err(Attempt::Failure("boom"))
    });
    let budget = RetryBudget::new(0.0, 0, Duration::from_secs(10), peerlb::Clock::real()).unwrap();
    let err = retry::call(
        &list,
        &Request::new(),
        &policy.budget(budget),
        |_| -> Result<(), _> { Err(Attempt::Failure("boom")) },
    )
    .unwrap_err();
    assert!(err.to_string().contains("retry budget exhausted"), "{err}");
    let text = list.metrics();
    assert_eq!(
        value(&text, r#"peerlb_retries_total{list="metrics-retry"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"peerlb_retry_budget_exhausted_total{list="metrics-retry"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn ejections_are_counted() {
    let list = running(
        "metrics-eject",
        ListOptions::default().ejection(Some(peerlb::EjectionPolicy {
            consecutive_failures: 1,
            max_percent: 100,
            panic_threshold_percent: 0,
            ..Default::default()
        })),
        &["a:1", "b:1"],
    );
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Failure, None);
    let text = list.metrics();
    assert_eq!(
        value(
            &text,
            r#"peerlb_ejections_total{list="metrics-eject",peer="a:1"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"peerlb_peer_ejected{list="metrics-eject",peer="a:1"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"peerlb_ejected_peers{list="metrics-eject"}"#),
        Some(1.0)
    );
}

#[test]
fn breakers_show_in_metrics_and_introspection() {
    let list = running(
        "metrics-breakers",
        ListOptions::default()
            .max_pending(3)
            .max_pending_per_peer(1),
        &["a:1", "b:1"],
    );
    let r = Request::new().with_timeout(Duration::from_secs(5));
    let a = list.choose(&r).unwrap();
    let b = list.choose(&r).unwrap();
    assert_eq!(list.choose(&r).unwrap_err().code(), ErrorCode::Overloaded);
    let i = list.introspect();
    assert_eq!((i.max_pending, i.max_pending_per_peer), (Some(3), Some(1)));
    assert_eq!((i.pending, i.overloaded), (2, 1));
    let text = list.metrics();
    assert_eq!(
        value(&text, r#"peerlb_max_pending{list="metrics-breakers"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"peerlb_saturated_peers{list="metrics-breakers"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            r#"peerlb_overloaded_total{list="metrics-breakers",breaker="max_pending_per_peer"}"#
        ),
        Some(1.0)
    );
    assert!(value(
        &text,
        r#"peerlb_peer_limit_skips_total{list="metrics-breakers",peer="a:1"}"#
    )
    .is_some_and(|v| v >= 1.0));
    drop((a, b));
}
