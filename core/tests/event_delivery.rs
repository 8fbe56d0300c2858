//! Where and how events are delivered: unsubscribing never deadlocks, and subscribers
//! never run on the library runtime's async workers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlb::{ListOptions, PeerList, Request};

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
