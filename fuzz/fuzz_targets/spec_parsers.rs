//! Every spec-string parser (strategies with their options, transports, ejection
//! policies, DNS record kinds) on arbitrary text: each returns a value or
//! `invalid-argument`, never panics, and whatever it accepts has a canonical spec that
//! parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlb::strategy::hash_ring::HashRingOptions;
use peerlb::strategy::maglev::MaglevOptions;
use peerlb::strategy::peak_ewma::PeakEwmaOptions;
use peerlb::strategy::weighted_round_robin::WeightedRoundRobinOptions;
use peerlb::strategy::SpecOptions;
use peerlb::{ejection, ErrorCode, StrategyConfig, TcpProbeOptions};

fn rejected<T>(what: &str, spec: &str, result: &peerlb::Result<T>) {
    if let Err(e) = result {
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{what} {spec:?}: {e}");
    }
}

/// Accepted options have a canonical spec that parses back to them.
fn round_trips<O: SpecOptions + PartialEq + std::fmt::Debug>(spec: &str) {
    let parsed = O::from_spec(spec);
    rejected(O::NAME, spec, &parsed);
    if let Ok(options) = parsed {
        let canonical = options.to_spec();
        let again = O::from_spec(&canonical)
            .unwrap_or_else(|e| panic!("{spec:?} -> {canonical:?} does not parse: {e}"));
        assert_eq!(again, options, "{spec:?} -> {canonical:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };

    let strategy = spec.parse::<StrategyConfig>();
    rejected("strategy", spec, &strategy);
    if let Ok(config) = strategy {
        let canonical = config.to_string();
        let again: StrategyConfig = canonical
            .parse()
            .unwrap_or_else(|e| panic!("{spec:?} -> {canonical:?} does not parse: {e}"));
        assert_eq!(again, config, "{spec:?} -> {canonical:?}");
    }
    round_trips::<HashRingOptions>(spec);
    round_trips::<MaglevOptions>(spec);
    round_trips::<PeakEwmaOptions>(spec);
    round_trips::<TcpProbeOptions>(spec);
    let wrr = WeightedRoundRobinOptions::from_spec(spec);
    rejected("weighted-round-robin", spec, &wrr);
    if let Ok(o) = wrr {
        WeightedRoundRobinOptions::from_spec(&o.to_spec()).expect("canonical spec parses");
    }

    let policy = ejection::parse(spec);
    rejected("ejection", spec, &policy);
    if let Ok(Some(p)) = policy {
        let canonical = p.to_string();
        let again = ejection::parse(&canonical)
            .unwrap_or_else(|e| panic!("{spec:?} -> {canonical:?} does not parse: {e}"));
        assert_eq!(again, Some(p), "{spec:?} -> {canonical:?}");
        p.validate().expect("a parsed policy is valid");
    }

    // Building a transport from a spec only parses it (nothing is probed until a peer is
    // retained, and no peer is).
    let transport = peerlb::transport_from_spec(spec);
    rejected("transport", spec, &transport);

    let (kind, port) = match spec.split_once(':') {
        Some((k, p)) => (Some(k), p.parse::<u16>().ok()),
        None => (Some(spec), None),
    };
    let record = peerlb::updater::DnsRecord::from_name(kind, port);
    rejected("dns record", spec, &record);
});
