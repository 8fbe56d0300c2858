//! Ejection, admin and events under concurrent load, with a subscriber that calls back into
//! the list: no deadlock, events per peer in a consistent order, nothing left pending.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::{EjectionPolicy, EventKind, ListOptions, Outcome, PeerList, Request, StrategyKind};
use rand::{Rng, SeedableRng};

#[test]
fn churn_with_a_reentrant_subscriber() {
    for strategy in [
        StrategyKind::RoundRobin,
        StrategyKind::FewestPending,
        StrategyKind::TwoRandomChoices,
    ] {
        churn(strategy);
    }
}

fn churn(strategy: StrategyKind) {
    let list = PeerList::new(
        ListOptions::default()
            .strategy(strategy)
            .seed(7)
            .ejection(Some(EjectionPolicy {
                consecutive_failures: 3,
                base_time: Duration::from_millis(1),
                max_time: Duration::from_millis(5),
                max_percent: 50,
                panic_threshold_percent: 30,
            })),
    )
    .unwrap();
    let peers: Vec<String> = (0..8).map(|i| format!("10.0.0.{i}:80")).collect();
    list.update(peers.iter().map(String::as_str), None::<&str>)
        .unwrap();
    list.start().unwrap();

    let log: Arc<Mutex<Vec<(EventKind, String)>>> = Arc::default();
    let reentered = Arc::new(AtomicUsize::new(0));
    let sub = {
        let log = log.clone();
        let reentered = reentered.clone();
        let weak_list = list.clone();
        list.subscribe(move |e| {
            log.lock().unwrap().push((e.kind, e.peer.to_string()));
            if e.kind == EventKind::Ejected {
                // Re-enter: read the list, and now and then reset the peer at once.
                let _ = weak_list.introspect();
                if reentered.fetch_add(1, Ordering::Relaxed) % 4 == 0 {
                    let _ = weak_list.reset(e.peer.as_str());
                }
            }
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let list = list.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                for _ in 0..3000 {
                    let c = list
                        .choose(&Request::new().with_timeout(Duration::from_secs(5)))
                        .unwrap();
                    let outcome = match rng.random_range(0..10) {
                        0..=3 => Outcome::Failure,
                        4 => Outcome::Declined,
                        _ => Outcome::Ok,
                    };
                    c.finish(outcome, None);
                }
            })
        })
        .collect();
    let admin = {
        let list = list.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = list.disable("10.0.0.0:80");
                let _ = list.update(["10.0.0.9:80"], None::<&str>);
                let _ = list.enable("10.0.0.0:80");
                let _ = list.update(None::<&str>, ["10.0.0.9:80"]);
                i += 1;
                if i % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    admin.join().unwrap();
    // Let the last restorations fire.
    std::thread::sleep(Duration::from_millis(20));
    drop(sub);

    let intro = list.introspect();
    assert!(intro.peers.iter().all(|p| p.pending == 0), "{intro:?}");
    assert!(intro.ejections > 0, "some peer was ejected: {intro:?}");
    assert!(reentered.load(Ordering::Relaxed) > 0);

    // Per peer: ejected and restored alternate, starting with ejected; disabled and
    // enabled alternate; added and removed alternate.
    let mut state: HashMap<String, (bool, bool, bool)> = HashMap::new();
    for (kind, peer) in log.lock().unwrap().iter() {
        // (ejected, disabled, in the list): the subscription began after the first eight
        // peers were added, so only the churned ninth starts outside the list.
        let s = state
            .entry(peer.clone())
            .or_insert((false, false, !peer.ends_with(".9:80")));
        match kind {
            EventKind::Ejected => {
                assert!(!s.0, "{peer} ejected twice without a restore");
                s.0 = true;
            }
            EventKind::Restored => {
                assert!(s.0, "{peer} restored without an ejection");
                s.0 = false;
            }
            EventKind::Disabled => {
                assert!(!s.1, "{peer} disabled twice");
                s.1 = true;
            }
            EventKind::Enabled => {
                assert!(s.1, "{peer} enabled while enabled");
                s.1 = false;
            }
            EventKind::Added => {
                assert!(!s.2, "{peer} added while in the list");
                s.2 = true;
            }
            EventKind::Removed => {
                assert!(s.2, "{peer} removed while not in the list");
                // A removed peer's ejection ends with it.
                s.0 = false;
                s.2 = false;
            }
            EventKind::Available | EventKind::Unavailable => {}
        }
    }
    list.stop().unwrap();
}
