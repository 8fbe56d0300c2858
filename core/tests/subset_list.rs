//! The `subset` list option: a list retains exactly `deterministic_subset` of what it was
//! offered, through any sequence of updates, while running or not, with events, transport
//! calls and errors that follow from the offered membership.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use peerlb::subset::deterministic_subset;
use peerlb::transport::{Subscriber, Transport};
use peerlb::{ErrorCode, ListOptions, PeerList, PeerSpec};
use proptest::prelude::*;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.2.0.{i}:80")).collect()
}

fn subset_list(size: usize, client: u64) -> PeerList {
    PeerList::new(
        ListOptions::default()
            .subset(size)
            .subset_client(client)
            .seed(1),
    )
    .unwrap()
}

fn retained(list: &PeerList) -> BTreeSet<String> {
    list.introspect().peers.into_iter().map(|p| p.id).collect()
}

fn expected(offered: &BTreeSet<String>, client: u64, size: usize) -> BTreeSet<String> {
    let offered: Vec<&String> = offered.iter().collect();
    deterministic_subset(&offered, client, size)
        .into_iter()
        .collect()
}

/// Records retain and release calls.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl Transport for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn retain(&self, id: &peerlb::PeerId, sub: &Subscriber) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("retain {id}"));
        sub.set_status(peerlb::ConnectionStatus::Available);
        Ok(())
    }
    fn release(&self, id: &peerlb::PeerId, _: &Subscriber) -> Result<(), String> {
        self.0.lock().unwrap().push(format!("release {id}"));
        Ok(())
    }
}

#[test]
fn options_must_come_together() {
    let err = PeerList::new(ListOptions::default().subset(3)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = PeerList::new(ListOptions::default().subset_client(3)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    // 0 is off, with or without a client.
    for opts in [
        ListOptions::default().subset(0),
        ListOptions::default().subset(0).subset_client(9),
    ] {
        let list = PeerList::new(opts).unwrap();
        list.update(ids(5), None::<&str>).unwrap();
        assert_eq!(list.len(), 5);
        assert_eq!(list.introspect().subset, None);
    }
}

#[test]
fn errors_are_about_the_offered_membership_and_change_nothing_retained() {
    let all = ids(12);
    let list = subset_list(4, 7);
    list.update(&all, None::<&str>).unwrap();
    let before = retained(&list);
    assert_eq!(before.len(), 4);
    let outside = all.iter().find(|id| !before.contains(*id)).unwrap();
    // An offered peer, retained or not, is already in the list; an id never offered is not.
    let err = list
        .update([outside.as_str(), before.first().unwrap()], ["nope:1"])
        .unwrap_err();
    let codes: Vec<ErrorCode> = err.errors().iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::PeerNotInList,
            ErrorCode::PeerAlreadyInList,
            ErrorCode::PeerAlreadyInList
        ]
    );
    assert_eq!(retained(&list), before);
    assert_eq!(list.introspect().subset.unwrap().offered, 12);
    // Bad input: invalid ids and weights fail, the list stays.
    let err = list
        .update([PeerSpec::weighted("x:1", 0)], ["", "a\0b"])
        .unwrap_err();
    assert!(err
        .errors()
        .iter()
        .all(|e| e.code() == ErrorCode::InvalidArgument));
    assert_eq!(retained(&list), before);
    assert_eq!(list.introspect().subset.unwrap().offered, 12);
}

#[test]
fn removing_an_unretained_peer_touches_nothing_and_a_retained_one_brings_one_in() {
    let all = ids(12);
    let transport = Arc::new(Recording::default());
    let list = PeerList::new(
        ListOptions::default()
            .subset(4)
            .subset_client(7)
            .transport(transport.clone()),
    )
    .unwrap();
    list.update(&all, None::<&str>).unwrap();
    list.start().unwrap();
    let before = retained(&list);
    transport.0.lock().unwrap().clear();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let _sub = list.subscribe(move |e| {
        seen.lock()
            .unwrap()
            .push(format!("{:?} {}", e.kind, e.peer))
    });

    // A peer outside the subset whose removal leaves the subset as it is (most do; one
    // before the window shifts it by one place).
    let full: BTreeSet<String> = all.iter().cloned().collect();
    let outside = all
        .iter()
        .find(|id| {
            let mut less = full.clone();
            less.remove(*id);
            !before.contains(*id) && expected(&less, 7, 4) == before
        })
        .unwrap()
        .clone();
    list.update(None::<&str>, [outside.as_str()]).unwrap();
    assert_eq!(retained(&list), before);
    assert!(transport.0.lock().unwrap().is_empty());
    assert!(events.lock().unwrap().is_empty());

    let inside = before.first().unwrap().clone();
    list.update(None::<&str>, [inside.as_str()]).unwrap();
    let after = retained(&list);
    let offered: BTreeSet<String> = all
        .iter()
        .filter(|id| **id != outside && **id != inside)
        .cloned()
        .collect();
    assert_eq!(after, expected(&offered, 7, 4));
    let came: Vec<&String> = after.difference(&before).collect();
    assert!(came.len() <= 1, "{came:?}");
    let calls = transport.0.lock().unwrap().clone();
    let mut want = vec![format!("release {inside}")];
    want.extend(came.iter().map(|id| format!("retain {id}")));
    assert_eq!(calls, want);
    assert_eq!(list.introspect().total, 4);
    assert_eq!(list.introspect().available, 4);
}

#[test]
fn admin_delete_and_add_backend_work_on_the_offered_membership() {
    let all = ids(12);
    let list = subset_list(4, 3);
    list.update(&all, None::<&str>).unwrap();
    list.start().unwrap();
    let mut offered: BTreeSet<String> = all.iter().cloned().collect();
    let before = retained(&list);
    let inside = before.first().unwrap().clone();
    let outside = all.iter().find(|id| !before.contains(*id)).unwrap().clone();
    // Deleting an offered peer outside the subset succeeds; the subset moves by at most one.
    assert_eq!(
        list.delete(&outside).unwrap(),
        peerlb::admin::AdminResult::Success
    );
    offered.remove(&outside);
    let now = retained(&list);
    assert_eq!(now, expected(&offered, 3, 4));
    assert!(now.symmetric_difference(&before).count() <= 2);
    let before = now;
    let inside = if before.contains(&inside) {
        inside
    } else {
        before.first().unwrap().clone()
    };
    // Deleting a retained one lets a replacement in.
    list.delete(&inside).unwrap();
    offered.remove(&inside);
    assert_eq!(retained(&list), expected(&offered, 3, 4));
    assert_eq!(
        list.delete(&inside).unwrap_err().code(),
        ErrorCode::PeerNotInList
    );
    // add_backend offers; it is retained only if it falls in the subset.
    let answer = list.add_backend(&format!(r#"{{"id":"{outside}"}}"#));
    assert!(answer.contains("\"success\""), "{answer}");
    offered.insert(outside.clone());
    assert_eq!(retained(&list), expected(&offered, 3, 4));
    let again = list.add_backend(&format!(r#"{{"id":"{outside}"}}"#));
    assert!(again.contains("peer-already-in-list"), "{again}");
    assert_eq!(list.introspect().subset.unwrap().offered, offered.len());
}

#[test]
fn a_subset_as_large_as_the_offer_retains_everything() {
    let list = subset_list(50, 1);
    list.update(ids(12), None::<&str>).unwrap();
    assert_eq!(list.len(), 12);
    list.update(None::<&str>, ["10.2.0.3:80"]).unwrap();
    assert_eq!(list.len(), 11);
}

#[test]
fn metadata_rides_with_an_offered_peer_into_the_subset() {
    let list = subset_list(1, 0);
    list.update(
        [
            PeerSpec::weighted("a:1", 3)
                .with_zone("z1")
                .with_priority(2),
            PeerSpec::weighted("b:1", 5)
                .with_zone("z2")
                .with_priority(1),
        ],
        None::<&str>,
    )
    .unwrap();
    let kept = list.introspect().peers.remove(0);
    let gone = if kept.id == "a:1" { "a:1" } else { "b:1" };
    list.update(None::<&str>, [gone]).unwrap();
    let now = list.introspect().peers.remove(0);
    let (weight, zone, priority) = if now.id == "a:1" {
        (3, "z1", 2)
    } else {
        (5, "z2", 1)
    };
    assert_ne!(now.id, kept.id);
    assert_eq!(
        (now.weight, now.zone.as_deref(), now.priority),
        (weight, Some(zone), priority)
    );
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<usize>),
    Remove(Vec<usize>),
    Start,
    Stop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..60, 0..8).prop_map(Op::Add),
        3 => prop::collection::vec(0usize..60, 0..8).prop_map(Op::Remove),
        1 => Just(Op::Start),
        1 => Just(Op::Stop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Through random updates (with duplicates and unknown ids), starts and stops, the
    /// list retains exactly the function's answer for what it was offered, and its errors
    /// are those of the offered membership.
    #[test]
    fn the_retained_set_is_always_the_functions_answer(
        size in 1usize..12,
        client in 0u64..50,
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let pool = ids(60);
        let list = subset_list(size, client);
        let mut offered = BTreeSet::new();
        let mut running = false;
        for op in ops {
            match op {
                Op::Add(ns) => {
                    let mut dups = 0;
                    let mut seen = offered.clone();
                    for &n in &ns {
                        if !seen.insert(pool[n].clone()) {
                            dups += 1;
                        }
                    }
                    let result = list.update(ns.iter().map(|&n| pool[n].as_str()), None::<&str>);
                    prop_assert_eq!(result.is_err(), dups > 0);
                    if let Err(e) = result {
                        prop_assert!(e.errors().iter().all(|e| e.code() == ErrorCode::PeerAlreadyInList));
                        prop_assert_eq!(e.errors().len(), dups);
                    }
                    offered = seen;
                }
                Op::Remove(ns) => {
                    let mut missing = 0;
                    for &n in &ns {
                        if !offered.remove(&pool[n]) {
                            missing += 1;
                        }
                    }
                    let result = list.update(None::<&str>, ns.iter().map(|&n| pool[n].as_str()));
                    prop_assert_eq!(result.is_err(), missing > 0);
                    if let Err(e) = result {
                        prop_assert_eq!(e.errors().len(), missing);
                    }
                }
                Op::Start => {
                    prop_assert_eq!(list.start().is_ok(), !running);
                    running = true;
                }
                Op::Stop => {
                    prop_assert_eq!(list.stop().is_ok(), running);
                    running = false;
                }
            }
            let snap = list.introspect();
            let mine: BTreeSet<String> = snap.peers.iter().map(|p| p.id.clone()).collect();
            prop_assert_eq!(&mine, &expected(&offered, client, size));
            prop_assert_eq!(snap.total, size.min(offered.len()));
            prop_assert_eq!(snap.subset.unwrap().offered, offered.len());
            if running {
                prop_assert_eq!(snap.available, snap.total);
            } else {
                prop_assert!(snap.peers.iter().all(|p| p.status == "uninitialized"));
            }
        }
    }
}
