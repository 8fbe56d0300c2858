//! Regressions found in review of ejection, admin, events and retry (each failed before
//! its fix).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::clock::{Clock, ManualClock};
use peerlb::retry::{Attempt, RetryBudget, RetryPolicy};
use peerlb::{ListOptions, PeerId, PeerList, Request, Subscriber, Transport};

struct FailOne;
impl Transport for FailOne {
    fn retain(&self, id: &PeerId, sub: &Subscriber) -> Result<(), String> {
        if id.as_str() == "bad:1" {
            return Err("nope".into());
        }
        sub.set_status(peerlb::ConnectionStatus::Available);
        Ok(())
    }
    fn release(&self, _id: &PeerId, _sub: &Subscriber) -> Result<(), String> {
        Ok(())
    }
}

/// A peer whose retain fails is dropped from the list: subscribers hear it added and
/// removed.
#[test]
fn retain_failure_is_added_then_removed() {
    let list = PeerList::new(ListOptions::default().transport(Arc::new(FailOne))).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let _sub = list.subscribe(move |e| log.lock().unwrap().push(e.to_string()));
    list.start().unwrap();
    let _ = list.update(["good:1", "bad:1"], None::<&str>);
    let events = seen.lock().unwrap().clone();
    println!("events: {events:?}; len {}", list.len());
    assert_eq!(list.len(), 1, "bad:1 left the list");
    assert!(
        events.contains(&"removed bad:1".to_string()),
        "subscribers were told bad:1 was added but never that it left: {events:?}"
    );
}

/// Disable, then remove (update): the id is remembered as disabled, and delete (or enable)
/// of it forgets it, so it comes back enabled.
#[test]
fn disabled_then_removed_peer_can_be_forgotten() {
    let list = PeerList::new(ListOptions::default()).unwrap();
    list.update(["a:1"], None::<&str>).unwrap();
    list.disable("a:1").unwrap();
    list.update(None::<&str>, ["a:1"]).unwrap();
    let del = list.delete("a:1");
    let en = list.enable("a:1");
    println!("delete -> {del:?}; enable -> {en:?}");
    list.update(["a:1"], None::<&str>).unwrap();
    let admin = list.list_backends()[0].admin.clone();
    assert_eq!(del, Ok(peerlb::AdminResult::Success));
    assert_eq!(
        en.unwrap_err().code(),
        peerlb::ErrorCode::PeerNotInList,
        "already forgotten"
    );
    assert_eq!(admin, "enabled");
    // Without the delete, the re-added peer comes back disabled; enable forgets it too.
    list.disable("a:1").unwrap();
    list.update(None::<&str>, ["a:1"]).unwrap();
    assert_eq!(list.enable("a:1"), Ok(peerlb::AdminResult::Success));
    list.update(["a:1"], None::<&str>).unwrap();
    assert_eq!(list.list_backends()[0].admin, "enabled");
}

/// A retry whose choose fails gives its budget token back.
#[test]
fn retry_budget_refunded_when_no_retry_happens() {
    let manual = ManualClock::new();
    let budget =
        RetryBudget::new(0.0, 1, Duration::from_secs(1), Clock::from(manual.clone())).unwrap();
    let list = PeerList::new(ListOptions::default().fail_fast(true).ejection(None)).unwrap();
    list.update(["a:1"], None::<&str>).unwrap();
    list.start().unwrap();
    let policy = RetryPolicy::new(2).budget(budget.clone());
    assert_eq!(budget.balance(), 1);
    // Attempt 1 fails and, inside the attempt, the only peer goes away: the retry's choose
    // fails with no-peer-available.
    let l2 = list.clone();
    let r = peerlb::retry::call(&list, &Request::new(), &policy, |_p| -> Result<(), _> {
        l2.update(None::<&str>, ["a:1"]).unwrap();
        Err(Attempt::Failure("boom"))
    });
    println!("call -> {r:?}; balance now {}", budget.balance());
    assert_eq!(
        budget.balance(),
        1,
        "no retry was made, yet the budget token is gone"
    );
}

/// Dropping (cancelling) a waiting `choose_async` also ends its deadline timer task.
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

/// Unsubscribing drops the callback outside the bus lock: a callback that owns another
/// Subscription of the same list does not deadlock.
#[test]
fn unsubscribe_drops_the_callback_outside_the_lock() {
    let list = PeerList::new(ListOptions::default()).unwrap();
    let sub2 = list.subscribe(|_| {});
    let sub1 = list.subscribe(move |_| {
        let _keep = &sub2;
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(sub1);
        let _ = tx.send(());
    });
    let done = rx.recv_timeout(Duration::from_secs(2)).is_ok();
    println!("drop(sub1) returned: {done}");
    assert!(
        done,
        "drop(Subscription) deadlocked (self-deadlock on EventBus mutex)"
    );
}

/// Subscribers never run on the library runtime's async workers (a slow one would stall
/// every timer, probe and updater): timer-driven restorations and probe reports are
/// delivered from its blocking pool.
#[test]
fn timer_and_probe_events_are_not_delivered_on_async_workers() {
    use std::net::TcpListener;
    use std::time::Instant;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let list = PeerList::new(
        ListOptions::default()
            .transport(
                peerlb::transport_from_spec("tcp-probe?interval_ms=20&timeout_ms=20").unwrap(),
            )
            .ejection(Some(peerlb::EjectionPolicy {
                consecutive_failures: 1,
                base_time: Duration::from_millis(20),
                ..Default::default()
            })),
    )
    .unwrap();
    let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let log = seen.clone();
    let _sub = list.subscribe(move |e| {
        let on_worker = peerlb::runtime::on_worker_thread();
        log.lock().unwrap().push((e.kind.to_string(), on_worker));
    });
    list.update([addr.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    let wait_for = |kind: &str| {
        let t0 = Instant::now();
        while !seen.lock().unwrap().iter().any(|(k, _)| k == kind) {
            assert!(t0.elapsed() < Duration::from_secs(5), "no {kind} event");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait_for("available"); // reported by the probe, from the runtime
    let c = list
        .choose(&Request::new().with_timeout(Duration::from_secs(1)))
        .unwrap();
    c.finish(peerlb::Outcome::Failure, None);
    wait_for("ejected");
    wait_for("restored"); // a real-clock timer on the runtime
    let events = seen.lock().unwrap().clone();
    assert!(
        events.iter().all(|(_, on_worker)| !on_worker),
        "a subscriber ran on an async worker: {events:?}"
    );
}
