//! The `tcp-probe` transport against real listening sockets on 127.0.0.1 (and ::1).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use peerlb::tcp_probe::{transport_from_spec, TcpProbeOptions};
use peerlb::{ConnectionStatus, ErrorCode, ListOptions, PeerList, Request};

fn list(spec: &str) -> PeerList {
    PeerList::new(
        ListOptions::default()
            .shuffle(false)
            .transport(transport_from_spec(spec).unwrap()),
    )
    .unwrap()
}

fn status(list: &PeerList, id: &str) -> ConnectionStatus {
    list.peer_status(id).unwrap().connection_status
}

/// Waits (up to 5 s) until `id` has `want`; returns how long it took.
fn wait_for(list: &PeerList, id: &str, want: ConnectionStatus) -> Duration {
    let t0 = Instant::now();
    while status(list, id) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{id} never became {want:?} (is {:?})",
            status(list, id)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

const SPEC: &str = "tcp-probe?interval_ms=50&timeout_ms=50";

#[test]
fn peer_goes_down_and_comes_back() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let list = list(SPEC);
    assert_eq!(list.introspect().transport, "tcp-probe");
    list.update([addr.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait_for(&list, &addr, ConnectionStatus::Available);
    let c = list
        .choose(&Request::new().with_timeout(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(c.peer().as_str(), addr);
    drop(c);

    drop(l); // stops accepting
    let down = wait_for(&list, &addr, ConnectionStatus::Unavailable);
    eprintln!("detected down after {down:?}");
    let err = list
        .choose(&Request::new().with_timeout(Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout);

    let _l2 = TcpListener::bind(&addr).unwrap(); // accepts again
    let up = wait_for(&list, &addr, ConnectionStatus::Available);
    eprintln!("detected up after {up:?}");
    list.stop().unwrap();
}

#[test]
fn a_port_nobody_listens_on_is_unavailable_and_others_are_not_affected() {
    let good = TcpListener::bind("127.0.0.1:0").unwrap();
    let good_addr = good.local_addr().unwrap().to_string();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let list = list(SPEC);
    list.update([good_addr.as_str(), closed_addr.as_str()], None::<&str>)
        .unwrap();
    list.start().unwrap();
    wait_for(&list, &good_addr, ConnectionStatus::Available);
    wait_for(&list, &closed_addr, ConnectionStatus::Unavailable);
    for _ in 0..5 {
        let c = list
            .choose(&Request::new().with_timeout(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(c.peer().as_str(), good_addr);
    }
}

#[test]
fn starts_connecting_and_resolves_names() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // A long interval: the first probe decides, the status before it is connecting.
    let list = list("tcp-probe?interval_ms=60000&timeout_ms=1000");
    let id = format!("localhost:{port}");
    list.update([id.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    let s = status(&list, &id);
    assert!(
        s == ConnectionStatus::Connecting || s == ConnectionStatus::Available,
        "{s:?}"
    );
    wait_for(&list, &id, ConnectionStatus::Available);
}

#[test]
fn unresolvable_names_are_unavailable() {
    let list = list(SPEC);
    let id = "no-such-host.invalid:80";
    list.update([id], None::<&str>).unwrap();
    list.start().unwrap();
    wait_for(&list, id, ConnectionStatus::Unavailable);
}

#[test]
fn ipv6_literal() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let addr = l.local_addr().unwrap().to_string();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    let list = list(SPEC);
    list.update([addr.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait_for(&list, &addr, ConnectionStatus::Available);
    drop(l);
    wait_for(&list, &addr, ConnectionStatus::Unavailable);
}

fn count_accepts(l: &TcpListener, over: Duration) -> usize {
    l.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < over {
        while l.accept().is_ok() {
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    n
}

#[test]
fn release_stops_the_probe() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let list = list("tcp-probe?interval_ms=20&timeout_ms=50");
    list.update([addr.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait_for(&list, &addr, ConnectionStatus::Available);
    assert!(count_accepts(&l, Duration::from_millis(200)) >= 3);
    list.update(None::<&str>, [addr.as_str()]).unwrap();
    count_accepts(&l, Duration::from_millis(50)); // one probe may have been under way
    assert_eq!(count_accepts(&l, Duration::from_millis(200)), 0);

    // stop() releases too, and start() probes again.
    list.update([addr.as_str()], None::<&str>).unwrap();
    wait_for(&list, &addr, ConnectionStatus::Available);
    list.stop().unwrap();
    count_accepts(&l, Duration::from_millis(50));
    assert_eq!(count_accepts(&l, Duration::from_millis(200)), 0);
    list.start().unwrap();
    assert!(count_accepts(&l, Duration::from_millis(200)) >= 3);
    drop(list); // dropping the list (and its transport) stops the probes
    count_accepts(&l, Duration::from_millis(50));
    assert_eq!(count_accepts(&l, Duration::from_millis(200)), 0);
}

#[test]
fn thresholds_delay_the_flip() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let list = list("tcp-probe?interval_ms=100&timeout_ms=50&unhealthy_threshold=3");
    list.update([addr.as_str()], None::<&str>).unwrap();
    list.start().unwrap();
    wait_for(&list, &addr, ConnectionStatus::Available);
    let t0 = Instant::now();
    drop(l);
    wait_for(&list, &addr, ConnectionStatus::Unavailable);
    // Three failed probes in a row, 100 ms apart: at least 200 ms after the first failure.
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn specs() {
    let o: TcpProbeOptions =
        "tcp-probe?interval_ms=200&timeout_ms=100&healthy_threshold=2&unhealthy_threshold=3"
            .parse()
            .unwrap();
    assert_eq!(o.interval, Duration::from_millis(200));
    assert_eq!(o.timeout, Duration::from_millis(100));
    assert_eq!((o.healthy_threshold, o.unhealthy_threshold), (2, 3));
    assert_eq!(o.to_string().parse::<TcpProbeOptions>().unwrap(), o);
    let d = TcpProbeOptions::default();
    assert_eq!(
        (
            d.interval,
            d.timeout,
            d.healthy_threshold,
            d.unhealthy_threshold
        ),
        (Duration::from_secs(1), Duration::from_millis(500), 1, 1)
    );
    assert_eq!("tcp-probe".parse::<TcpProbeOptions>().unwrap(), d);
    for bad in [
        "",
        "tcp",
        "tcp-probe?",
        "tcp-probe?interval_ms",
        "tcp-probe?interval_ms=",
        "tcp-probe?interval_ms=0",
        "tcp-probe?interval_ms=-5",
        "tcp-probe?interval_ms=1.5",
        "tcp-probe?interval_ms=99999999999",
        "tcp-probe?timeout_ms=0",
        "tcp-probe?healthy_threshold=0",
        "tcp-probe?unhealthy_threshold=1001",
        "tcp-probe?interval_ms=5&interval_ms=6",
        "tcp-probe?colour=red",
        "always-available?x=1",
        "Always-Available",
    ] {
        let err = transport_from_spec(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad:?}");
    }
}
