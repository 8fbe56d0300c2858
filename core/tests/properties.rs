//! Property tests: for every strategy, under any sequence of updates, status flips,
//! chooses and finishes, the chosen peer is in the list and available, pending counts
//! match the requests in flight, and all return to zero once every request is finished.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Manual;
use peerlb::{ConnectionStatus, ListOptions, Outcome, PeerList, Request, StrategyKind};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    Remove(u8),
    Status(u8, ConnectionStatus),
    Choose { hold: bool, key: u8 },
    Finish(usize, Outcome),
}

fn status() -> impl Strategy<Value = ConnectionStatus> {
    prop_oneof![
        Just(ConnectionStatus::Available),
        Just(ConnectionStatus::Unavailable),
        Just(ConnectionStatus::Connecting),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Ok),
        Just(Outcome::Failure),
        Just(Outcome::Declined),
        Just(Outcome::Cancelled),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..8).prop_map(Op::Add),
        1 => (0u8..8).prop_map(Op::Remove),
        2 => ((0u8..8), status()).prop_map(|(p, s)| Op::Status(p, s)),
        4 => (any::<bool>(), any::<u8>()).prop_map(|(hold, key)| Op::Choose { hold, key }),
        2 => ((0usize..16), outcome()).prop_map(|(i, o)| Op::Finish(i, o)),
    ]
}

fn strategy_kind() -> impl Strategy<Value = StrategyKind> {
    prop::sample::select(StrategyKind::ALL.to_vec())
}

fn id(p: u8) -> String {
    format!("10.0.0.{p}:80")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn choices_are_available_and_pending_balances(
        kind in strategy_kind(),
        seed in any::<u64>(),
        shuffle in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let transport = Manual::new(Some(ConnectionStatus::Available));
        let list = PeerList::new(
            ListOptions::default().strategy(kind).seed(seed).shuffle(shuffle).transport(transport.clone()),
        ).unwrap();
        list.start().unwrap();
        // The model: which peers are in the list, their status, and held requests.
        let mut present: BTreeMap<String, ConnectionStatus> = BTreeMap::new();
        // Held choices with the incarnation of their peer (a removed and re-added peer is
        // a new peer whose pending count starts at zero).
        let mut held: Vec<(peerlb::Choice, u32)> = Vec::new();
        let mut incarnation: BTreeMap<String, u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Add(p) => {
                    let r = list.update([id(p)], None::<&str>);
                    prop_assert_eq!(r.is_ok(), !present.contains_key(&id(p)));
                    present.entry(id(p)).or_insert(ConnectionStatus::Available);
                }
                Op::Remove(p) => {
                    let r = list.update(Vec::<String>::new(), [id(p)]);
                    prop_assert_eq!(r.is_ok(), present.remove(&id(p)).is_some());
                    *incarnation.entry(id(p)).or_default() += 1;
                }
                Op::Status(p, s) => {
                    let took = transport.set(&id(p), s);
                    prop_assert_eq!(took, present.contains_key(&id(p)));
                    if took { present.insert(id(p), s); }
                }
                Op::Choose { hold, key } => {
                    let any_available = present.values().any(|s| *s == ConnectionStatus::Available);
                    let k = [key];
                    match list.choose(&Request::new().with_shard_key(&k)) {
                        Ok(choice) => {
                            let peer = choice.peer().to_string();
                            prop_assert_eq!(present.get(&peer), Some(&ConnectionStatus::Available),
                                "chose {} which is not available", peer);
                            let gen = incarnation.get(&peer).copied().unwrap_or_default();
                            if hold { held.push((choice, gen)) } else { choice.finish(Outcome::Ok, None) }
                        }
                        Err(e) => {
                            prop_assert!(!any_available, "choose failed with peers available: {}", e);
                            prop_assert_eq!(e.code(), peerlb::ErrorCode::NoDeadline);
                        }
                    }
                }
                Op::Finish(i, outcome) => {
                    if !held.is_empty() {
                        let (c, _) = held.remove(i % held.len());
                        c.finish(outcome, None);
                    }
                }
            }
            // Pending on each present peer equals the held choices for it.
            let intro = list.introspect();
            for p in &intro.peers {
                let gen = incarnation.get(&p.id).copied().unwrap_or_default();
                let in_flight = held
                    .iter()
                    .filter(|(c, g)| c.peer().as_str() == p.id && *g == gen)
                    .count();
                prop_assert_eq!(p.pending, in_flight, "pending of {}", p.id);
            }
            let listed: BTreeSet<String> = intro.peers.iter().map(|p| p.id.clone()).collect();
            prop_assert_eq!(listed, present.keys().cloned().collect::<BTreeSet<_>>());
        }
        drop(held);
        for p in list.introspect().peers {
            prop_assert_eq!(p.pending, 0, "pending of {} after all finished", p.id);
        }
    }

    #[test]
    fn round_robin_gives_each_peer_once_per_cycle(
        n in 1usize..24,
        cycles in 1usize..5,
        seed in any::<u64>(),
        offset in 0usize..30,
    ) {
        let list = PeerList::new(ListOptions::default().seed(seed)).unwrap();
        list.update((0..n).map(|i| format!("p{i}")), None::<&str>).unwrap();
        list.start().unwrap();
        for _ in 0..offset {
            list.choose(&Request::new()).unwrap().finish(Outcome::Ok, None);
        }
        let picks: Vec<String> = (0..n * cycles)
            .map(|_| list.choose(&Request::new()).unwrap().peer().to_string())
            .collect();
        for window in picks.chunks(n) {
            let distinct: BTreeSet<&String> = window.iter().collect();
            prop_assert_eq!(distinct.len(), n, "a cycle repeated a peer: {:?}", window);
        }
    }

    #[test]
    fn fewest_pending_never_picks_a_busier_peer(
        n in 1usize..10,
        holds in prop::collection::vec(any::<bool>(), 1..40),
    ) {
        let list = PeerList::new(ListOptions::default().strategy(StrategyKind::FewestPending)).unwrap();
        list.update((0..n).map(|i| format!("p{i}")), None::<&str>).unwrap();
        list.start().unwrap();
        let mut held = Vec::new();
        for hold in holds {
            let min = list.introspect().peers.iter().map(|p| p.pending).min().unwrap();
            let c = list.choose(&Request::new()).unwrap();
            prop_assert_eq!(c.status().pending, min + 1);
            if hold { held.push(c) } else { c.finish(Outcome::Ok, None) }
        }
    }

    #[test]
    fn two_random_choices_never_picks_the_busiest_of_two(
        seed in any::<u64>(),
        busy in 1usize..5,
    ) {
        // With two peers both are always the candidates, so the idle one must win.
        let list = PeerList::new(ListOptions::default().strategy(StrategyKind::TwoRandomChoices).seed(seed).shuffle(false)).unwrap();
        list.update(["busy"], None::<&str>).unwrap();
        list.start().unwrap();
        let held: Vec<_> = (0..busy).map(|_| list.choose(&Request::new()).unwrap()).collect();
        list.update(["idle"], None::<&str>).unwrap();
        for _ in 0..20 {
            let c = list.choose(&Request::new()).unwrap();
            prop_assert_eq!(c.peer().as_str(), "idle");
        }
        drop(held);
    }
}
