//! Outlier ejection, events, admin and retry against real TCP servers on 127.0.0.1:
//! four echo-less servers that accept and close; one is shut down halfway.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use peerlb::retry::{self, Attempt, RetryPolicy};
use peerlb::tcp_probe::transport_from_spec;
use peerlb::{EjectionPolicy, EventKind, ListOptions, Outcome, PeerList, Request, Subscription};

/// A server that accepts connections (and closes them) until stopped.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start_on(addr: &str) -> Server {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn start() -> Server {
        Server::start_on("127.0.0.1:0")
    }

    /// Stops accepting and closes the listening socket.
    fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The events a list delivered, as (kind, peer).
struct EventLog {
    seen: Arc<Mutex<Vec<(EventKind, String)>>>,
    _subscription: Subscription,
}

impl EventLog {
    /// Subscribes to `list`, adds `ids` and starts it.
    fn start(list: &PeerList, ids: &[String]) -> EventLog {
        let seen: Arc<Mutex<Vec<(EventKind, String)>>> = Arc::default();
        let log = seen.clone();
        let subscription =
            list.subscribe(move |e| log.lock().unwrap().push((e.kind, e.peer.to_string())));
        list.update(ids.iter().map(String::as_str), None::<&str>)
            .unwrap();
        list.start().unwrap();
        EventLog {
            seen,
            _subscription: subscription,
        }
    }

    fn contains(&self, kind: EventKind, peer: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .any(|(k, p)| *k == kind && p == peer)
    }

    /// Waits (up to 5 s) until `kind` was delivered for `peer`.
    fn wait_for(&self, kind: EventKind, peer: &str) {
        let t0 = Instant::now();
        while !self.contains(kind, peer) {
            assert!(t0.elapsed() < Duration::from_secs(5), "never {kind} {peer}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One request: a TCP connect to the chosen peer, finished by how it went.
fn request(list: &PeerList) -> (String, bool) {
    let choice = list
        .choose(&Request::new().with_timeout(Duration::from_secs(2)))
        .unwrap();
    let peer = choice.peer().to_string();
    let ok = TcpStream::connect_timeout(&peer.parse().unwrap(), Duration::from_millis(500)).is_ok();
    choice.finish(if ok { Outcome::Ok } else { Outcome::Failure }, None);
    (peer, ok)
}

#[test]
fn a_killed_server_is_ejected_after_five_failures_and_comes_back() {
    let mut servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let ids: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let policy = EjectionPolicy {
        base_time: Duration::from_millis(300),
        max_percent: 25,
        ..EjectionPolicy::default()
    };
    let list = PeerList::new(ListOptions::default().shuffle(false).ejection(Some(policy))).unwrap();
    let events = EventLog::start(&list, &ids);

    for _ in 0..20 {
        assert!(request(&list).1);
    }
    let dead = ids[1].clone();
    servers[1].kill();

    // Round-robin reaches the dead server every fourth request: five failures take about
    // 20 requests, then it gets none.
    let mut failures = 0;
    let mut ejected_at = None;
    for i in 0..200 {
        let (peer, ok) = request(&list);
        if !ok {
            assert_eq!(peer, dead);
            failures += 1;
            assert!(ejected_at.is_none(), "request {i} went to the ejected peer");
        }
        if failures == 5 && ejected_at.is_none() {
            ejected_at = Some(Instant::now());
        }
        if ejected_at.is_some_and(|t| t.elapsed() > Duration::from_millis(200)) {
            break;
        }
    }
    assert_eq!(failures, 5, "exactly five failures eject it");
    let intro = list.introspect();
    let dead_intro = intro.peers.iter().find(|p| p.id == dead).unwrap();
    assert!(dead_intro.ejected);
    assert_eq!(dead_intro.failures, 5);
    assert!(events.contains(EventKind::Ejected, &dead));

    // Bring it back on the same port; after the ejection time it is chosen again.
    let _revived = Server::start_on(&dead);
    events.wait_for(EventKind::Restored, &dead);
    let mut served = 0;
    for _ in 0..8 {
        let (peer, ok) = request(&list);
        assert!(ok);
        if peer == dead {
            served += 1;
        }
    }
    assert_eq!(served, 2, "the restored peer takes its share again");
}

#[test]
fn with_tcp_probe_a_killed_server_becomes_unavailable() {
    let mut servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let ids: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let list = PeerList::new(
        ListOptions::default()
            .transport(transport_from_spec("tcp-probe?interval_ms=50&timeout_ms=50").unwrap()),
    )
    .unwrap();
    let events = EventLog::start(&list, &ids);
    let t0 = Instant::now();
    while list.introspect().available < 4 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let dead = ids[2].clone();
    servers[2].kill();
    let killed = Instant::now();
    events.wait_for(EventKind::Unavailable, &dead);
    eprintln!(
        "tcp-probe: unavailable {:?} after the kill",
        killed.elapsed()
    );
    for _ in 0..12 {
        assert_ne!(request(&list).0, dead);
    }
}

#[test]
fn retry_moves_past_a_dead_server() {
    let mut servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let ids: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
    list.update(ids.iter().map(String::as_str), None::<&str>)
        .unwrap();
    list.start().unwrap();
    servers[0].kill();
    let policy = RetryPolicy::new(3).timeout(Duration::from_secs(5));
    for _ in 0..8 {
        let peer = retry::call(&list, &Request::new(), &policy, |peer| {
            TcpStream::connect_timeout(&peer.as_str().parse().unwrap(), Duration::from_millis(500))
                .map(|_| peer.to_string())
                .map_err(Attempt::Failure)
        })
        .unwrap();
        assert_ne!(peer, ids[0]);
    }
    // Calls 1, 4 and 7 landed on the dead server first (round-robin over 4 peers, each
    // failed attempt taking a turn); those failures count toward ejection.
    let intro = list.introspect();
    assert_eq!(
        intro
            .peers
            .iter()
            .find(|p| p.id == ids[0])
            .unwrap()
            .failures,
        3
    );
}
