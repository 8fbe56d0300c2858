//! Priority and zone routing: validation, and the switch between one strategy and one per
//! locality as the records' localities change.

use peerlb::{ErrorCode, ListOptions, PeerList, PeerSpec, Request, MAX_ZONE_LEN};

fn started(opts: ListOptions) -> PeerList {
    let list = PeerList::new(opts.shuffle(false)).unwrap();
    list.start().unwrap();
    list
}

fn picks(list: &PeerList, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| list.choose(&Request::new()).unwrap().peer().to_string())
        .collect()
}

#[test]
fn bad_zones_are_refused_and_leave_the_list_as_it_was() {
    let list = started(ListOptions::default());
    list.update([PeerSpec::new("a:1")], None::<&str>).unwrap();
    for zone in ["z".repeat(MAX_ZONE_LEN + 1), "a\0b".to_owned()] {
        let e = list
            .update([PeerSpec::new("b:1").with_zone(zone.clone())], None::<&str>)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
        assert_eq!(list.len(), 1);
    }
    let ok = "z".repeat(MAX_ZONE_LEN);
    list.update([PeerSpec::new("b:1").with_zone(ok)], None::<&str>)
        .unwrap();
    assert_eq!(list.len(), 2);
    let e = PeerList::new(ListOptions::default().local_zone("a\0")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    for f in [0.99, f64::NAN, f64::INFINITY, 100.5] {
        let e = PeerList::new(ListOptions::default().overprovisioning_factor(f)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{f}");
    }
}

#[test]
fn routing_switches_on_and_off_as_levels_come_and_go() {
    let list = started(ListOptions::default());
    list.update(["a:1", "a:2"], None::<&str>).unwrap();
    assert_eq!(picks(&list, 4), ["a:1", "a:2", "a:1", "a:2"]);
    // A second level: still all to P0 (fully healthy), the strategy picks inside it.
    list.update([PeerSpec::new("b:1").with_priority(1)], None::<&str>)
        .unwrap();
    let p = picks(&list, 6);
    assert!(p.iter().all(|id| id.starts_with("a:")), "{p:?}");
    // P0 gone: everything to P1.
    list.update(None::<PeerSpec>, ["a:1", "a:2"]).unwrap();
    assert_eq!(picks(&list, 3), ["b:1", "b:1", "b:1"]);
    // One level again (routing off): the list's strategy has every peer.
    list.update(
        [
            PeerSpec::new("c:1").with_priority(1),
            PeerSpec::new("c:2").with_priority(1),
        ],
        None::<&str>,
    )
    .unwrap();
    let mut p = picks(&list, 6);
    p.sort();
    assert_eq!(p, ["b:1", "b:1", "c:1", "c:1", "c:2", "c:2"]);
    let i = list.introspect();
    assert_eq!(i.priorities.len(), 1);
    assert_eq!((i.priorities[0].priority, i.priorities[0].load), (1, 100));
}

#[test]
fn zones_without_a_local_zone_do_not_route() {
    let list = started(ListOptions::default());
    list.update(
        [
            PeerSpec::new("a:1").with_zone("x"),
            PeerSpec::new("b:1").with_zone("y"),
            PeerSpec::new("c:1").with_zone("y"),
        ],
        None::<&str>,
    )
    .unwrap();
    assert_eq!(picks(&list, 3), ["a:1", "b:1", "c:1"]);
}

#[test]
fn a_custom_strategy_sees_every_peer_whatever_the_priorities() {
    let list = PeerList::new(ListOptions::default().shuffle(false).custom_strategy(
        std::sync::Arc::new(peerlb::strategy::round_robin::RoundRobin::new()),
    ))
    .unwrap();
    list.start().unwrap();
    list.update(
        [PeerSpec::new("a:1"), PeerSpec::new("b:1").with_priority(3)],
        None::<&str>,
    )
    .unwrap();
    let mut p = picks(&list, 2);
    p.sort();
    assert_eq!(p, ["a:1", "b:1"]);
}

#[test]
fn every_strategy_picks_inside_the_chosen_level_and_hears_its_requests() {
    for name in [
        "round-robin",
        "random",
        "fewest-pending",
        "two-random-choices",
        "hash-ring",
        "maglev",
        "weighted-round-robin",
        "peak-ewma",
        "prequal",
    ] {
        let list = started(ListOptions::default().seed(7).strategy_name(name).unwrap());
        list.update(
            (0..4)
                .map(|i| PeerSpec::new(format!("a:{i}")))
                .chain((0..4).map(|i| PeerSpec::new(format!("b:{i}")).with_priority(1))),
            None::<&str>,
        )
        .unwrap();
        // Held and finished requests: pending counts and outcomes reach the locality's
        // strategy (fewest-pending spreads held requests over P0's four peers).
        let held: Vec<_> = (0..8)
            .map(|i| {
                list.choose(&Request::new().with_shard_key(format!("k{i}").as_bytes()))
                    .unwrap()
            })
            .collect();
        for c in &held {
            assert!(c.peer().as_str().starts_with("a:"), "{name}: {}", c.peer());
        }
        if name == "fewest-pending" {
            let mut got: Vec<String> = held.iter().map(|c| c.peer().to_string()).collect();
            got.sort();
            assert_eq!(
                got,
                ["a:0", "a:0", "a:1", "a:1", "a:2", "a:2", "a:3", "a:3"]
            );
        }
        for c in held {
            c.finish(
                peerlb::Outcome::Ok,
                Some(std::time::Duration::from_millis(1)),
            );
        }
        let pending: usize = list.introspect().peers.iter().map(|p| p.pending).sum();
        assert_eq!(pending, 0, "{name}");
        // P0 gone: P1 takes everything.
        list.update(None::<PeerSpec>, (0..4).map(|i| format!("a:{i}")))
            .unwrap();
        let p = picks(&list, 8);
        assert!(p.iter().all(|id| id.starts_with("b:")), "{name}: {p:?}");
    }
}
