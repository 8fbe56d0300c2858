//! Many threads choosing and finishing while another thread updates the list and flips
//! statuses: nothing panics, nothing deadlocks, and every pending count ends at zero.
//! Also: async choose under a foreign (non-tokio) executor.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use common::Manual;
use peerlb::{ConnectionStatus, ErrorCode, ListOptions, Outcome, PeerList, Request, StrategyKind};

const CHOOSERS: usize = 4;
const CHOOSES_PER_THREAD: usize = 20_000;

fn hammer(kind: StrategyKind) {
    let transport = Manual::new(Some(ConnectionStatus::Available));
    let list = PeerList::new(
        ListOptions::default()
            .strategy(kind)
            .transport(transport.clone()),
    )
    .unwrap();
    // "anchor" is never removed nor flipped, so a peer is always available.
    list.update(["anchor", "p1", "p2", "p3", "p4", "p5"], None::<&str>)
        .unwrap();
    list.start().unwrap();

    let done = Arc::new(AtomicBool::new(false));
    // Churn rounds done so far: the choosers start once a few have run, so the two really
    // overlap even when the scheduler runs the choosers first (on 2 cores they can finish
    // before the churn thread is ever scheduled).
    let churned = Arc::new(AtomicUsize::new(0));
    let chosen = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(CHOOSERS + 1));
    let mut handles = Vec::new();
    for t in 0..CHOOSERS {
        let (list, chosen, start, churned) =
            (list.clone(), chosen.clone(), start.clone(), churned.clone());
        handles.push(thread::spawn(move || {
            start.wait();
            while churned.load(Ordering::Relaxed) < 8 {
                thread::yield_now();
            }
            let mut held = Vec::new();
            for i in 0..CHOOSES_PER_THREAD {
                let key = (i as u64).to_le_bytes();
                let req = Request::new()
                    .with_timeout(Duration::from_secs(5))
                    .with_shard_key(&key);
                let choice = list.choose(&req).expect("a peer is always available");
                chosen.fetch_add(1, Ordering::Relaxed);
                // Hold a few requests at a time so pending counts really move.
                held.push(choice);
                if held.len() > (t + 1) * 2 {
                    let outcome = if i % 7 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Ok
                    };
                    held.remove(0)
                        .finish(outcome, Some(Duration::from_micros(i as u64 % 300)));
                }
            }
        }));
    }
    let churn = {
        let (list, transport, done, start, churned) = (
            list.clone(),
            transport.clone(),
            done.clone(),
            start.clone(),
            churned.clone(),
        );
        thread::spawn(move || {
            start.wait();
            let mut round = 0u64;
            while !done.load(Ordering::Relaxed) {
                let p = format!("p{}", 1 + round % 5);
                match round % 4 {
                    0 => {
                        let _ = list.update(Vec::<String>::new(), [p.as_str()]);
                    }
                    1 => {
                        let _ = list.update([p.as_str()], None::<&str>);
                    }
                    2 => {
                        transport.set(&p, ConnectionStatus::Unavailable);
                    }
                    _ => {
                        transport.set(&p, ConnectionStatus::Available);
                    }
                }
                round += 1;
                churned.store(round as usize, Ordering::Relaxed);
                if round % 64 == 0 {
                    thread::yield_now();
                }
            }
            round
        })
    };
    for h in handles {
        h.join().expect("chooser panicked");
    }
    done.store(true, Ordering::Relaxed);
    let rounds = churn.join().expect("churn thread panicked");
    assert!(rounds >= 8, "the choosers waited for 8 churn rounds");
    assert_eq!(
        chosen.load(Ordering::Relaxed),
        CHOOSERS * CHOOSES_PER_THREAD
    );
    for p in list.introspect().peers {
        assert_eq!(p.pending, 0, "{kind}: {} still has pending requests", p.id);
    }
    list.stop().unwrap();
}

#[test]
fn round_robin_under_churn() {
    hammer(StrategyKind::RoundRobin);
}

#[test]
fn random_under_churn() {
    hammer(StrategyKind::Random);
}

#[test]
fn fewest_pending_under_churn() {
    hammer(StrategyKind::FewestPending);
}

#[test]
fn two_random_choices_under_churn() {
    hammer(StrategyKind::TwoRandomChoices);
}

#[test]
fn weighted_round_robin_under_churn() {
    hammer(StrategyKind::WeightedRoundRobin);
}

#[test]
fn hash_ring_under_churn() {
    hammer(StrategyKind::HashRing);
}

#[test]
fn maglev_under_churn() {
    hammer(StrategyKind::Maglev);
}

#[test]
fn peak_ewma_under_churn() {
    hammer(StrategyKind::PeakEwma);
}

/// A minimal executor: proves `choose_async` needs no tokio runtime of the caller's.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

#[test]
fn choose_async_waits_for_a_peer_without_tokio() {
    let transport = Manual::new(None);
    let list = PeerList::new(ListOptions::default().transport(transport.clone())).unwrap();
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    let flipper = {
        let transport = transport.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            transport.set("a", ConnectionStatus::Available);
        })
    };
    let req = Request::new().with_timeout(Duration::from_secs(10));
    let choice = block_on(list.choose_async(&req)).unwrap();
    assert_eq!(choice.peer().as_str(), "a");
    flipper.join().unwrap();
}

#[test]
fn choose_async_times_out_and_reports_errors_like_choose() {
    let transport = Manual::new(None);
    let list = PeerList::new(ListOptions::default().transport(transport)).unwrap();
    list.update(["a"], None::<&str>).unwrap();
    let err = block_on(list.choose_async(&Request::new())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotStarted);
    list.start().unwrap();
    let err = block_on(list.choose_async(&Request::new())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoDeadline);
    let req = Request::new().with_timeout(Duration::from_millis(20));
    let err = block_on(list.choose_async(&req)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert!(err.to_string().contains("1 unavailable"), "{err}");
}

#[test]
fn choose_async_under_tokio_wakes_many_waiters() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transport = Manual::new(None);
    let list = PeerList::new(ListOptions::default().transport(transport.clone())).unwrap();
    list.update(["a"], None::<&str>).unwrap();
    list.start().unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let list = list.clone();
            tasks.push(tokio::spawn(async move {
                let req = Request::new().with_timeout(Duration::from_secs(10));
                list.choose_async(&req).await.map(|c| c.peer().to_string())
            }));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        transport.set("a", ConnectionStatus::Available);
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "a");
        }
    });
    assert_eq!(list.introspect().peers[0].pending, 0);
}

#[test]
fn stop_wakes_blocked_choosers() {
    let list = PeerList::new(ListOptions::default()).unwrap();
    list.start().unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let list = list.clone();
            thread::spawn(move || {
                list.choose(&Request::new().with_timeout(Duration::from_secs(30)))
                    .unwrap_err()
                    .code()
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(30));
    list.stop().unwrap();
    for w in waiters {
        assert_eq!(w.join().unwrap(), ErrorCode::NotStarted);
    }
}

/// Dropping (cancelling) a waiting `choose_async` leaves nothing behind on the library
/// runtime (its deadline timer is futures-timer's, and goes with the future).
#[test]
fn cancelled_choose_async_leaves_no_timer_tasks() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let list = PeerList::new(ListOptions::default()).unwrap();
    list.start().unwrap();
    let rt = peerlb::runtime::handle();
    let before = rt.metrics().num_alive_tasks();
    for _ in 0..100 {
        let req = Request::new().with_timeout(Duration::from_secs(3600));
        let mut fut = Box::pin(list.choose_async(&req));
        let _g = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(fut.as_mut().poll(&mut cx), Poll::Pending));
        drop(fut); // cancelled, as asyncio / a JS abort / tokio::select! would
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rt.metrics().num_alive_tasks();
    println!("alive runtime tasks: before {before}, after 100 cancelled waits {after}");
    assert!(
        after < before + 10,
        "{} timer tasks left sleeping for an hour",
        after - before
    );
}
