//! `weighted-round-robin` against a reference nginx implementation (property test), and
//! `peak-ewma` and the outcome hook under a simulated clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::clock::ManualClock;
use peerlb::{
    Choice, InFlight, ListOptions, Outcome, PeerList, PeerRef, PeerSpec, Request, Strategy,
    StrategyKind,
};
use proptest::prelude::*;

/// nginx's smooth weighted round-robin, straight from its definition.
fn nginx(weights: &[u32], picks: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..picks)
        .map(|_| {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                current[i] += i64::from(*w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn wrr_list(weights: &[u32]) -> PeerList {
    let list = PeerList::new(
        ListOptions::default()
            .strategy(StrategyKind::WeightedRoundRobin)
            .shuffle(false),
    )
    .unwrap();
    let specs: Vec<PeerSpec> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| PeerSpec::weighted(format!("p{i}"), w))
        .collect();
    list.update(specs, None::<&str>).unwrap();
    list.start().unwrap();
    list
}

fn index_of(choice: &Choice) -> usize {
    choice.peer().as_str()[1..].parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A single thread sees exactly nginx's order (on the gcd-reduced weights), so every
    /// cycle gives each peer exactly its (reduced) weight.
    #[test]
    fn weighted_round_robin_is_nginx_exactly(weights in prop::collection::vec(1u32..=40, 1..=8)) {
        let g = weights.iter().fold(0, |g, &w| gcd(g, w));
        let reduced: Vec<u32> = weights.iter().map(|w| w / g).collect();
        let cycle: usize = reduced.iter().map(|&w| w as usize).sum();
        let list = wrr_list(&weights);
        let got: Vec<usize> = (0..cycle * 3)
            .map(|_| {
                let c = list.choose(&Request::new()).unwrap();
                index_of(&c)
            })
            .collect();
        prop_assert_eq!(&got, &nginx(&reduced, cycle * 3));
        for window in got.chunks(cycle) {
            for (i, &w) in reduced.iter().enumerate() {
                prop_assert_eq!(window.iter().filter(|&&x| x == i).count(), w as usize);
            }
        }
    }
}

#[test]
fn weighted_round_robin_keeps_proportions_across_threads() {
    let list = wrr_list(&[3, 1]);
    let counts = Arc::new(Mutex::new([0usize; 2]));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let list = list.clone();
            let counts = counts.clone();
            std::thread::spawn(move || {
                let mut local = [0usize; 2];
                for _ in 0..4000 {
                    local[index_of(&list.choose(&Request::new()).unwrap())] += 1;
                }
                let mut c = counts.lock().unwrap();
                c[0] += local[0];
                c[1] += local[1];
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Each thread walks whole cycles of 4 (a a b a), so the totals are exact.
    assert_eq!(*counts.lock().unwrap(), [12000, 4000]);
    assert_eq!(list.introspect().peers[0].pending, 0);
}

/// Runs `n` sequential requests; each takes `latency(peer)` on the manual clock (the
/// strategy measures it: finish is given no latency). Returns how many went to `watch`.
fn drive(
    list: &PeerList,
    clock: &ManualClock,
    n: usize,
    watch: &str,
    latency: &dyn Fn(&str) -> u64,
) -> usize {
    let mut hits = 0;
    for _ in 0..n {
        let c = list.choose(&Request::new()).unwrap();
        let id = c.peer().to_string();
        hits += usize::from(id == watch);
        clock.advance(Duration::from_millis(latency(&id)));
        c.finish(Outcome::Ok, None);
    }
    hits
}

#[test]
fn peak_ewma_sheds_a_peer_that_turns_slow_and_takes_it_back_after_recovery() {
    let clock = ManualClock::new();
    let list = PeerList::new(
        ListOptions::default()
            .strategy(StrategyKind::PeakEwma)
            .seed(11)
            .clock(clock.clone().into()),
    )
    .unwrap();
    list.update(["a", "b", "c", "d"], None::<&str>).unwrap();
    list.start().unwrap();

    // Healthy: all at 10 ms. Peers without samples sit at default_rtt (30 ms) and are
    // avoided until it decays, so warm up first; then "a" gets roughly its share.
    drive(&list, &clock, 3000, "a", &|_| 10);
    let healthy = drive(&list, &clock, 400, "a", &|_| 10);
    assert!((50..=200).contains(&healthy), "healthy share {healthy}/400");

    // "a" turns 10x slower. After its first slow answer it gets almost nothing.
    let slow = |id: &str| if id == "a" { 100 } else { 10 };
    let mut before_first_slow = 0;
    while drive(&list, &clock, 1, "a", &slow) == 0 {
        before_first_slow += 1;
        assert!(before_first_slow < 50, "a was never chosen");
    }
    let shed = drive(&list, &clock, 300, "a", &slow);
    assert!(shed <= 6, "a still got {shed}/300 while slow");

    // "a" recovers. Its estimate decays (τ = 10 s; ~23 s of traffic to fall from 100 ms
    // to 10 ms), it gets tried again, and its fast answers win its share back.
    drive(&list, &clock, 3000, "a", &|_| 10);
    let back = drive(&list, &clock, 1000, "a", &|_| 10);
    assert!(back >= 150, "a got only {back}/1000 after recovering");
}

#[test]
fn peak_ewma_uses_given_latencies_over_measured_time() {
    let clock = ManualClock::new();
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name("peak-ewma?default_rtt_ms=30")
            .unwrap()
            .clock(clock.clone().into()),
    )
    .unwrap();
    list.update(["a", "b"], None::<&str>).unwrap();
    list.start().unwrap();
    // Whatever the clock says (no time passes), a given 500 ms latency makes the peer slow.
    let c = list.choose(&Request::new()).unwrap();
    let slow = c.peer().to_string();
    c.finish(Outcome::Ok, Some(Duration::from_millis(500)));
    for _ in 0..20 {
        let c = list.choose(&Request::new()).unwrap();
        assert_ne!(c.peer().as_str(), slow);
        c.finish(Outcome::Ok, Some(Duration::from_millis(1)));
    }
}

/// A strategy that records what the outcome hook tells it.
#[derive(Default)]
struct Recorder {
    peers: Mutex<Vec<PeerRef>>,
    heard: Mutex<Vec<(String, Outcome, Duration)>>,
    wants: bool,
}

impl Strategy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn update(&self, added: &[PeerRef], removed: &[PeerRef]) {
        let mut peers = self.peers.lock().unwrap();
        peers.retain(|q| !removed.iter().any(|p| PeerRef::ptr_eq(p, q)));
        peers.extend_from_slice(added);
    }
    fn choose(&self, _: &Request<'_>) -> Option<InFlight> {
        self.peers
            .lock()
            .unwrap()
            .first()
            .map(PeerRef::start_request)
    }
    fn wants_outcomes(&self) -> bool {
        self.wants
    }
    fn request_finished(&self, peer: &PeerRef, outcome: Outcome, latency: Duration) {
        assert!(self.wants, "called without asking");
        if outcome == Outcome::Declined && latency == Duration::from_millis(666) {
            panic!("a custom strategy's bug");
        }
        assert_eq!(peer.pending(), 0, "pending goes down before the hook");
        self.heard
            .lock()
            .unwrap()
            .push((peer.id().to_string(), outcome, latency));
    }
}

fn recorder_list(wants: bool, clock: &ManualClock) -> (PeerList, Arc<Recorder>) {
    let rec = Arc::new(Recorder {
        wants,
        ..Default::default()
    });
    let list = PeerList::new(
        ListOptions::default()
            .custom_strategy(rec.clone())
            .clock(clock.clone().into()),
    )
    .unwrap();
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    (list, rec)
}

#[test]
fn outcome_hook_reports_given_measured_dropped_and_raw_round_tripped_requests() {
    let clock = ManualClock::new();
    let (list, rec) = recorder_list(true, &clock);
    let ms = Duration::from_millis;

    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Failure, Some(ms(42)));

    let c = list.choose(&Request::new()).unwrap();
    clock.advance(ms(7));
    c.finish(Outcome::Ok, None);

    let c = list.choose(&Request::new()).unwrap();
    clock.advance(ms(3));
    drop(c);

    let token = list.choose(&Request::new()).unwrap().into_raw();
    clock.advance(ms(9));
    // SAFETY: the token came from into_raw just above and is used once.
    let c = unsafe { Choice::from_raw(token) };
    assert_eq!(c.peer().as_str(), "a");
    c.finish(Outcome::Declined, None);

    // A panicking hook is contained: finishing (and dropping while unwinding) survives.
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Declined, Some(ms(666)));
    assert_eq!(list.peer_status("a").unwrap().pending, 0);

    // The list gone, a late finish still works and reports nothing.
    let late = list.choose(&Request::new()).unwrap();
    drop(list);
    late.finish(Outcome::Ok, None);

    let heard = rec.heard.lock().unwrap().clone();
    let a = || "a".to_string();
    assert_eq!(
        heard,
        [
            (a(), Outcome::Failure, ms(42)),
            (a(), Outcome::Ok, ms(7)),
            (a(), Outcome::Cancelled, ms(3)),
            (a(), Outcome::Declined, ms(9)),
        ]
    );
}

#[test]
fn outcome_hook_is_silent_for_strategies_that_do_not_ask() {
    let clock = ManualClock::new();
    let (list, rec) = recorder_list(false, &clock);
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, Some(Duration::from_millis(1)));
    let token = list.choose(&Request::new()).unwrap().into_raw();
    // SAFETY: the token came from into_raw just above and is used once.
    drop(unsafe { Choice::from_raw(token) });
    assert!(rec.heard.lock().unwrap().is_empty());
    assert_eq!(list.peer_status("a").unwrap().pending, 0);
}

#[test]
fn weighted_round_robin_slow_start_on_a_list() {
    let clock = ManualClock::new();
    let list = PeerList::new(
        ListOptions::default()
            .strategy_name("weighted-round-robin?slow_start_ms=8000")
            .unwrap()
            .shuffle(false)
            .clock(clock.clone().into()),
    )
    .unwrap();
    list.update([PeerSpec::weighted("a", 4)], None::<&str>)
        .unwrap();
    list.start().unwrap();
    let count_b = |n: usize| {
        (0..n)
            .filter(|_| list.choose(&Request::new()).unwrap().peer().as_str() == "b")
            .count()
    };
    assert_eq!(count_b(3), 0); // traffic began
    list.update([PeerSpec::weighted("b", 4)], None::<&str>)
        .unwrap();
    assert_eq!(count_b(50), 10); // b at effective weight 1: cycles of 5
    clock.advance(Duration::from_secs(4));
    count_b(1); // b now at 1 + 3 * 0.5 = 2 (cycles of 3)
    assert_eq!(count_b(60), 20);
    clock.advance(Duration::from_secs(4));
    count_b(1); // fully ramped: equal weights
    assert_eq!(count_b(60), 30);
}
