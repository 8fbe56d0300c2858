//! Spec-string options: every option type's `Display` is its canonical spec (defaults left
//! out, the mode shown only when it is not the default), which parses back to the same
//! value; no pair in it is redundant; the order of pairs does not matter; and a list
//! reports exactly that spec.

use std::fmt::Debug;
use std::str::FromStr;
use std::time::Duration;

use proptest::prelude::*;

use peerlb::strategy::hash_ring::HashRingOptions;
use peerlb::strategy::maglev::MaglevOptions;
use peerlb::strategy::orca::OrcaOptions;
use peerlb::strategy::peak_ewma::PeakEwmaOptions;
use peerlb::strategy::prequal::PrequalOptions;
use peerlb::strategy::weighted_round_robin::WeightedRoundRobinOptions;
use peerlb::strategy::{SpecOptions, StrategyConfig};
use peerlb::{EjectionPolicy, ErrorCode, ListOptions, PeerList, StrategyKind, TcpProbeOptions};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn hash_ring() -> impl Strategy<Value = HashRingOptions> {
    (
        any::<bool>(),
        proptest::option::of(1u32..=10_000),
        proptest::option::of(1.0f64..=100.0),
    )
        .prop_map(|(fast, vnodes, bounded)| {
            let mut o = if fast {
                HashRingOptions::fast()
            } else {
                HashRingOptions::ketama()
            };
            if let Some(v) = vnodes {
                o = o.vnodes(v).unwrap();
            }
            if let Some(c) = bounded {
                o = o.bounded_load(c).unwrap();
            }
            o
        })
}

fn maglev() -> impl Strategy<Value = MaglevOptions> {
    // Small tables: a list builds its table, and this runs hundreds of cases.
    (3u32..=70_000).prop_filter_map("a prime", |n| MaglevOptions::default().table_size(n).ok())
}

fn weighted_round_robin() -> impl Strategy<Value = WeightedRoundRobinOptions> {
    prop_oneof![
        proptest::option::of(0..=u64::from(u32::MAX)).prop_map(|w| WeightedRoundRobinOptions {
            slow_start: w.map(ms),
            orca: None,
        }),
        (
            0..=u64::from(u32::MAX),
            1..=u64::from(u32::MAX),
            100..=u64::from(u32::MAX),
            0.0f64..=1e6,
        )
            .prop_map(|(blackout, expiration, update, penalty)| {
                WeightedRoundRobinOptions {
                    slow_start: None,
                    orca: Some(OrcaOptions {
                        blackout: ms(blackout),
                        weight_expiration: ms(expiration),
                        weight_update: ms(update),
                        error_utilization_penalty: penalty,
                    }),
                }
            }),
    ]
}

fn prequal() -> impl Strategy<Value = PrequalOptions> {
    (
        prop_oneof![Just(0usize), 2usize..=64],
        0.0f64..=1.0,
        1..=u64::from(u32::MAX),
    )
        .prop_map(|(choices, q_rif, probe)| PrequalOptions {
            choices,
            q_rif,
            probe: ms(probe),
        })
}

fn peak_ewma() -> impl Strategy<Value = PeakEwmaOptions> {
    (
        1..=u64::from(u32::MAX),
        0..=u64::from(u32::MAX),
        prop_oneof![Just(0usize), 2usize..=1024],
    )
        .prop_map(|(decay, rtt, choices)| PeakEwmaOptions {
            decay: ms(decay),
            default_rtt: ms(rtt),
            choices,
        })
}

fn tcp_probe() -> impl Strategy<Value = TcpProbeOptions> {
    (
        1u64..=86_400_000,
        1u64..=86_400_000,
        1u32..=1000,
        1u32..=1000,
    )
        .prop_map(|(interval, timeout, healthy, unhealthy)| TcpProbeOptions {
            interval: ms(interval),
            timeout: ms(timeout),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        })
}

fn ejection() -> impl Strategy<Value = EjectionPolicy> {
    (
        1..=u32::MAX,
        any::<u64>(),
        any::<u64>(),
        0u32..=100,
        0u32..=100,
    )
        .prop_map(
            |(failures, base, extra, max_percent, panic)| EjectionPolicy {
                consecutive_failures: failures,
                base_time: ms(base),
                max_time: ms(base.saturating_add(extra)),
                max_percent,
                panic_threshold_percent: panic,
            },
        )
}

fn strategy_config() -> impl Strategy<Value = StrategyConfig> {
    prop_oneof![
        proptest::sample::select(StrategyKind::ALL.to_vec()).prop_map(StrategyConfig::from),
        hash_ring().prop_map(StrategyConfig::HashRing),
        maglev().prop_map(StrategyConfig::Maglev),
        weighted_round_robin().prop_map(StrategyConfig::WeightedRoundRobin),
        peak_ewma().prop_map(StrategyConfig::PeakEwma),
        prequal().prop_map(StrategyConfig::Prequal),
    ]
}

/// `spec` split at `?` into its head and pairs.
fn parts(spec: &str) -> (&str, Vec<&str>) {
    match spec.split_once('?') {
        Some((head, query)) => (head, query.split('&').collect()),
        None => (spec, Vec::new()),
    }
}

fn join(head: &str, pairs: &[&str]) -> String {
    if pairs.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", pairs.join("&"))
    }
}

/// The properties every option type's spec has.
fn canonical<T>(value: &T, shuffle: &[usize]) -> Result<(), TestCaseError>
where
    T: FromStr<Err = peerlb::Error> + ToString + PartialEq + Debug,
{
    let spec = value.to_string();
    // It parses back to the same value.
    let parsed: T = spec
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{spec}: {e}")))?;
    prop_assert_eq!(&parsed, value, "{}", spec);
    let (head, pairs) = parts(&spec);
    // No pair is redundant: without any one of them, the value is another (or none, when
    // a rule between keys then fails, e.g. max_ms below base_ms).
    for skip in 0..pairs.len() {
        let mut fewer = pairs.clone();
        fewer.remove(skip);
        if let Ok(other) = join(head, &fewer).parse::<T>() {
            prop_assert_ne!(&other, value, "{} is a default in {}", pairs[skip], spec);
        }
    }
    // The order of pairs does not matter, and the display does not depend on it.
    let mut reordered = pairs.clone();
    for (i, &j) in shuffle.iter().enumerate() {
        if i < reordered.len() {
            let j = j % reordered.len();
            reordered.swap(i, j);
        }
    }
    let again: T = join(head, &reordered).parse().unwrap();
    prop_assert_eq!(&again, value);
    prop_assert_eq!(again.to_string(), spec);
    Ok(())
}

fn shuffles() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 5)
}

proptest! {
    #[test]
    fn hash_ring_specs(o in hash_ring(), s in shuffles()) {
        canonical(&o, &s)?;
        prop_assert_eq!(HashRingOptions::from_spec(&o.to_spec()).unwrap(), o);
    }

    #[test]
    fn maglev_specs(o in maglev(), s in shuffles()) {
        canonical(&o, &s)?;
    }

    #[test]
    fn weighted_round_robin_specs(o in weighted_round_robin(), s in shuffles()) {
        canonical(&o, &s)?;
    }

    #[test]
    fn peak_ewma_specs(o in peak_ewma(), s in shuffles()) {
        canonical(&o, &s)?;
    }

    #[test]
    fn prequal_specs(o in prequal(), s in shuffles()) {
        canonical(&o, &s)?;
    }

    #[test]
    fn tcp_probe_specs(o in tcp_probe(), s in shuffles()) {
        canonical(&o, &s)?;
        prop_assert!(peerlb::transport_from_spec(&o.to_string()).is_ok());
    }

    #[test]
    fn ejection_specs(p in ejection(), s in shuffles()) {
        canonical(&p, &s)?;
        let spec = p.to_string();
        prop_assert_eq!(peerlb::ejection::parse(&spec).unwrap(), Some(p));
        // The C surface's bare pairs mean the same.
        if let Some(bare) = spec.strip_prefix("default?") {
            prop_assert_eq!(bare.parse::<EjectionPolicy>().unwrap(), p);
        }
    }

    #[test]
    fn strategy_config_specs_are_what_the_list_reports(c in strategy_config(), s in shuffles()) {
        canonical(&c, &s)?;
        let list = PeerList::new(ListOptions::default().strategy_config(c)).unwrap();
        prop_assert_eq!(list.strategy_name(), c.to_string());
        let by_name = PeerList::new(ListOptions::default().strategy_name(&c.to_string()).unwrap()).unwrap();
        prop_assert_eq!(by_name.strategy_name(), c.to_string());
    }

    /// Arbitrary text never panics: it parses or is invalid-argument.
    #[test]
    fn any_text_parses_or_is_invalid_argument(text in "[a-z_:?&=.0-9-]{0,40}") {
        let errors = [
            text.parse::<StrategyConfig>().err(),
            text.parse::<TcpProbeOptions>().err(),
            text.parse::<EjectionPolicy>().err(),
            peerlb::transport_from_spec(&text).err(),
        ];
        for e in errors.into_iter().flatten() {
            prop_assert_eq!(e.code(), ErrorCode::InvalidArgument, "{}: {}", text, e);
        }
    }
}

#[test]
fn defaults_are_bare_names() {
    assert_eq!(HashRingOptions::default().to_string(), "hash-ring");
    assert_eq!(MaglevOptions::default().to_string(), "maglev");
    assert_eq!(
        WeightedRoundRobinOptions::default().to_string(),
        "weighted-round-robin"
    );
    assert_eq!(PeakEwmaOptions::default().to_string(), "peak-ewma");
    assert_eq!(PrequalOptions::default().to_string(), "prequal");
    assert_eq!(TcpProbeOptions::default().to_string(), "tcp-probe");
    assert_eq!(EjectionPolicy::default().to_string(), "default");
    for kind in StrategyKind::ALL {
        assert_eq!(StrategyConfig::from(kind).to_string(), kind.as_str());
    }
}

#[test]
fn errors_name_the_spec_the_key_and_the_range() {
    for (text, wanted) in [
        (
            TcpProbeOptions::from_spec("tcp-probe?interval_ms=0").unwrap_err(),
            "transport \"tcp-probe?interval_ms=0\": interval_ms must be a whole number of \
             milliseconds in 1..=86400000, got \"0\"",
        ),
        (
            TcpProbeOptions::from_spec("tcp-probe?unhealthy_threshold=1001").unwrap_err(),
            "unhealthy_threshold must be an integer in 1..=1000",
        ),
        (
            TcpProbeOptions::from_spec("tcp-probe?colour=red").unwrap_err(),
            "tcp-probe has no option \"colour\"; expected interval_ms, timeout_ms, \
             healthy_threshold, unhealthy_threshold",
        ),
        (
            "default?panic_percent=101"
                .parse::<EjectionPolicy>()
                .unwrap_err(),
            "ejection \"default?panic_percent=101\": panic_percent must be an integer in 0..=100",
        ),
    ] {
        assert_eq!(text.code(), ErrorCode::InvalidArgument);
        assert!(text.to_string().contains(wanted), "{text}");
    }
    let err = "maglev?table=x".parse::<StrategyConfig>().unwrap_err();
    let wanted = format!(
        "strategy \"maglev?table=x\": table must be an integer in 3..={}, got \"x\"",
        peerlb::strategy::maglev::MAX_TABLE_SIZE
    );
    assert!(err.to_string().contains(&wanted), "{err}");
}
