//! Sessions beyond the shared scenarios: waits, async forms, concurrency, re-entrant and
//! panicking listeners, drops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use peerlb::session::SessionEventKind;
use peerlb::{ErrorCode, ListOptions, NowOrLater, PeerList, Reason, Request};

fn list_of(ids: &[&str]) -> PeerList {
    let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
    list.update(ids.iter().copied(), None::<&str>).unwrap();
    list.start().unwrap();
    list
}

fn seconds(n: u64) -> Request<'static> {
    Request::new().with_timeout(Duration::from_secs(n))
}

#[test]
fn a_failover_waits_for_another_peer_until_its_deadline() {
    let list = list_of(&["a:1"]);
    let session = list.open_session(&Request::new()).unwrap();
    let adder = {
        let list = list.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            list.update(["b:1"], None::<&str>).unwrap();
        })
    };
    let peer = session.failover_with("reset", &seconds(10)).unwrap();
    adder.join().unwrap();
    assert_eq!(peer.as_str(), "b:1");
    assert_eq!(session.peer().as_str(), "b:1");
    assert_eq!(list.peer_status("b:1").unwrap().pending, 1);
}

#[test]
fn opening_waits_for_a_peer() {
    let list = list_of(&[]);
    let adder = {
        let list = list.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            list.update(["a:1"], None::<&str>).unwrap();
        })
    };
    let session = list.open_session(&seconds(10)).unwrap();
    adder.join().unwrap();
    assert_eq!(session.peer().as_str(), "a:1");
}

#[test]
fn async_forms_open_and_fail_over_without_blocking() {
    let list = list_of(&["a:1", "b:1"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = list.open_session_async(&seconds(1)).await.unwrap();
        assert_eq!(session.peer().as_str(), "a:1");
        let moved = session.failover_async("gone").await.unwrap();
        assert_eq!(moved.as_str(), "b:1");
        // One thread: the wait must not block it while another task adds the peer.
        let lonely = list_of(&["x:1"]);
        let s = lonely.open_session_async(&Request::new()).await.unwrap();
        let adder = {
            let lonely = lonely.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                lonely.update(["y:1"], None::<&str>).unwrap();
            })
        };
        let moved = s.failover_with_async("gone", &seconds(10)).await.unwrap();
        adder.await.unwrap();
        assert_eq!(moved.as_str(), "y:1");
    });
}

#[test]
fn closing_during_a_failover_wait_ends_the_wait_and_leaks_nothing() {
    let list = list_of(&["a:1"]);
    let session = Arc::new(list.open_session(&Request::new()).unwrap());
    let NowOrLater::Later(wait) = session.failover_now("reset", &seconds(10)) else {
        panic!("no other peer: the failover must wait");
    };
    session.close().unwrap();
    list.update(["b:1"], None::<&str>).unwrap();
    let err = wait.wait().unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyFinished);
    assert_eq!(list.peer_status("b:1").unwrap().pending, 0);
    assert_eq!(list.introspect().sessions, 0);
}

#[test]
fn an_abandoned_failover_wait_leaves_the_session_open_and_unbound() {
    let list = list_of(&["a:1"]);
    let session = list.open_session(&Request::new()).unwrap();
    let NowOrLater::Later(wait) = session.failover_now("reset", &seconds(10)) else {
        panic!("must wait");
    };
    drop(wait);
    assert!(session.is_open() && !session.is_bound());
    list.update(["b:1"], None::<&str>).unwrap();
    assert_eq!(session.failover("again").unwrap().as_str(), "b:1");
}

#[test]
fn session_listeners_may_call_back_in_and_a_panicking_one_is_skipped() {
    let list = list_of(&["a:1", "b:1"]);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let panics = Arc::new(AtomicUsize::new(0));
    let p = panics.clone();
    let _bad = list.subscribe_sessions(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
        panic!("listener bug");
    });
    let log = heard.clone();
    let inner = list.clone();
    let _good = list.subscribe_sessions(move |e| {
        // Re-entrant: the list's lock is not held while a listener runs.
        let config = inner.backend_config(e.peer.as_str()).unwrap();
        let open = inner.introspect().sessions;
        log.lock()
            .unwrap()
            .push(format!("{e} {open} {}", config.contains("\"sessions\"")));
    });
    let s = list.open_session(&Request::new()).unwrap();
    s.failover(Reason::new("reset").with_code(1006)).unwrap();
    drop(s);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            "created 1 a:1 1 true",
            "terminated 1 a:1 1 true",
            "created 1 b:1 1 true",
            "terminated 1 b:1 0 true"
        ]
    );
    assert_eq!(panics.load(Ordering::SeqCst), 4);
}

#[test]
fn a_listener_may_fail_over_the_session_it_hears_about() {
    let list = list_of(&["a:1", "b:1", "c:1"]);
    let session = Arc::new(list.open_session(&Request::new()).unwrap());
    let moved = Arc::new(Mutex::new(Vec::new()));
    let (s, m) = (Arc::downgrade(&session), moved.clone());
    let _sub = list.subscribe_sessions(move |e| {
        if e.kind == SessionEventKind::FailoverRequested {
            if let Some(s) = s.upgrade() {
                m.lock()
                    .unwrap()
                    .push(s.failover("admin").unwrap().to_string());
            }
        }
    });
    assert_eq!(list.failover("a:1").unwrap(), peerlb::AdminResult::Success);
    assert_eq!(*moved.lock().unwrap(), ["b:1"]);
    assert!(!session.failover_requested());
}

#[test]
fn many_threads_open_fail_over_and_close_sessions() {
    let list = list_of(&["a:1", "b:1", "c:1", "d:1"]);
    let events = Arc::new(AtomicUsize::new(0));
    let counter = events.clone();
    let _sub = list.subscribe_sessions(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let list = list.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let s = list.open_session(&seconds(5)).unwrap();
                    if (i + t) % 3 == 0 {
                        s.failover_with("churn", &seconds(5)).unwrap();
                    }
                    if i % 2 == 0 {
                        s.close().unwrap();
                    } // else dropped, which closes it
                }
            })
        })
        .collect();
    let admin = {
        let list = list.clone();
        thread::spawn(move || {
            for i in 0..100 {
                let _ = list.failover(["a:1", "b:1", "c:1", "d:1"][i % 4]);
                let _ = list.backend_config("a:1");
            }
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    admin.join().unwrap();
    let snapshot = list.introspect();
    assert_eq!(snapshot.sessions, 0);
    assert!(snapshot
        .peers
        .iter()
        .all(|p| p.pending == 0 && p.sessions == 0));
    assert!(events.load(Ordering::Relaxed) >= 4 * 200 * 2);
}

#[test]
fn sessions_outlive_a_stop_and_the_last_list_handle() {
    let list = list_of(&["a:1"]);
    let session = list.open_session(&Request::new()).unwrap();
    list.stop().unwrap();
    assert!(session.is_bound());
    let err = session.failover("stopped").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotStarted);
    drop(list);
    session.close().unwrap();
}

#[test]
fn removing_a_peer_while_a_session_is_being_opened_asks_it_to_move() {
    // The session is bound to a peer whose record is gone by the time it registers: it is
    // flagged at once (checked here through the public order of events).
    let list = list_of(&["a:1", "b:1"]);
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let log = kinds.clone();
    let _sub = list.subscribe_sessions(move |e| log.lock().unwrap().push(e.to_string()));
    let s = list.open_session(&Request::new()).unwrap();
    list.update(None::<&str>, ["a:1"]).unwrap();
    assert!(s.failover_requested());
    assert_eq!(
        *kinds.lock().unwrap(),
        ["created 1 a:1", "failover-requested 1 a:1"]
    );
    assert_eq!(list.introspect().sessions, 1);
}

#[test]
fn a_failover_counts_in_the_strategys_pending_order() {
    for strategy in ["fewest-pending", "peak-ewma", "prequal"] {
        let list = PeerList::new(
            ListOptions::default()
                .shuffle(false)
                .strategy_name(strategy)
                .unwrap(),
        )
        .unwrap();
        list.update(["a:1", "b:1", "c:1"], None::<&str>).unwrap();
        list.start().unwrap();
        let session = list.open_session(&Request::new()).unwrap();
        let first = session.peer().as_str().to_owned();
        let moved = session.failover_with("reset", &seconds(1)).unwrap();
        assert_ne!(moved.as_str(), first, "{strategy}");
        // Requests started by the failover, the session and these chooses all count:
        // fewest-pending keeps every peer within one request of the others.
        let held: Vec<_> = (0..5)
            .map(|_| list.choose(&Request::new()).unwrap())
            .collect();
        if strategy == "fewest-pending" {
            let pending: Vec<u64> = ["a:1", "b:1", "c:1"]
                .iter()
                .map(|id| list.peer_status(id).unwrap().pending as u64)
                .collect();
            let (lo, hi) = (pending.iter().min().unwrap(), pending.iter().max().unwrap());
            assert!(hi - lo <= 1, "{strategy}: {pending:?}");
        }
        for c in held {
            c.finish(peerlb::Outcome::Ok, Some(Duration::from_millis(2)));
        }
        let total: u64 = ["a:1", "b:1", "c:1"]
            .iter()
            .map(|id| list.peer_status(id).unwrap().pending as u64)
            .sum();
        assert_eq!(total, 1, "{strategy}: the session's request only");
    }
}
