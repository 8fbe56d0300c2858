//! Updaters against real sources: files in a temp dir, and a real DNS server (UDP, on
//! 127.0.0.1, a free port) run by the test itself with hickory-proto messages.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use peerlb::updater::{
    BindingStats, DnsRecord, DnsUpdater, FileUpdater, StaticUpdater, UpdaterEvent,
};
use peerlb::{ErrorCode, ListOptions, PeerList, PeerSpec, Request};

fn list(strategy: &str) -> PeerList {
    PeerList::new(
        ListOptions::default()
            .strategy_name(strategy)
            .unwrap()
            .shuffle(false)
            .seed(1),
    )
    .unwrap()
}

fn ids(list: &PeerList) -> Vec<String> {
    let mut v: Vec<String> = list
        .introspect()
        .peers
        .iter()
        .map(|p| p.id.clone())
        .collect();
    v.sort();
    v
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn static_applies_on_start_with_weights_and_has_a_lifecycle() {
    let l = list("weighted-round-robin");
    let b = StaticUpdater::new([PeerSpec::weighted("a:1", 3), PeerSpec::new("b:1")]).bind(&l);
    assert!(l.is_empty(), "nothing before start");
    assert_eq!(b.stop().unwrap_err().code(), ErrorCode::NotStarted);
    b.start().unwrap();
    assert_eq!(ids(&l), s(&["a:1", "b:1"]));
    let weights: HashMap<String, u32> = l
        .introspect()
        .peers
        .iter()
        .map(|p| (p.id.clone(), p.weight))
        .collect();
    assert_eq!(weights["a:1"], 3);
    assert_eq!(b.start().unwrap_err().code(), ErrorCode::AlreadyStarted);
    b.stop().unwrap();
    assert_eq!(l.len(), 2, "stop leaves the peers");
    // start again: diff against what it applied, so no duplicate-add error
    b.start().unwrap();
    assert_eq!(b.last_error(), None);
    assert_eq!(l.len(), 2);
}

#[test]
fn list_refusals_are_reported_not_fatal() {
    let l = list("round-robin");
    l.update(["a:1"], None::<&str>).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let b = StaticUpdater::new(["a:1", "b:1"])
        .on_event(Arc::new(move |e: &UpdaterEvent| {
            ev.lock().unwrap().push(e.clone())
        }))
        .bind(&l);
    b.start().unwrap();
    assert_eq!(ids(&l), s(&["a:1", "b:1"]));
    let events = events.lock().unwrap();
    assert!(events.iter().any(
        |e| matches!(e, UpdaterEvent::Error(err) if err.code() == ErrorCode::PeerAlreadyInList)
    ));
}

fn write_atomic(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn file_follows_edits_renames_deletion_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.txt");
    std::fs::write(&path, "# backends\na:1 2\n\nb:1   # spare\n").unwrap();
    let l = list("round-robin");
    let events = Arc::new(Mutex::new(Vec::<UpdaterEvent>::new()));
    let ev = events.clone();
    let reentrant = l.clone();
    let seen_len = Arc::new(AtomicUsize::new(0));
    let sl = seen_len.clone();
    let b = FileUpdater::new(&path)
        .poll_interval(Duration::from_millis(20))
        .on_event(Arc::new(move |e: &UpdaterEvent| {
            // re-enters the list from the callback: must not deadlock
            sl.store(reentrant.len(), Ordering::SeqCst);
            ev.lock().unwrap().push(e.clone());
        }))
        .bind(&l);
    b.start().unwrap();
    assert_eq!(ids(&l), s(&["a:1", "b:1"]), "read synchronously on start");
    assert_eq!(seen_len.load(Ordering::SeqCst), 2);

    // edit in place
    std::fs::write(&path, "a:1 2\nc:1\n").unwrap();
    let took = wait_for("edit", Duration::from_secs(5), || {
        ids(&l) == s(&["a:1", "c:1"])
    });
    eprintln!("file edit reached the list in {took:?}");

    // weight change = remove + add
    std::fs::write(&path, "a:1 5\nc:1\n").unwrap();
    wait_for("weight", Duration::from_secs(5), || {
        l.introspect()
            .peers
            .iter()
            .any(|p| p.id == "a:1" && p.weight == 5)
    });

    // zone and priority: a change of either is a remove + add too
    std::fs::write(&path, "a:1 5 zone=us-east-1a\nc:1 priority=1 weight=2\n").unwrap();
    wait_for("zone and priority", Duration::from_secs(5), || {
        let peers = l.introspect().peers;
        peers
            .iter()
            .any(|p| p.id == "a:1" && p.weight == 5 && p.zone.as_deref() == Some("us-east-1a"))
            && peers
                .iter()
                .any(|p| p.id == "c:1" && p.priority == 1 && p.weight == 2 && p.zone.is_none())
    });
    std::fs::write(&path, "a:1 5\nc:1\n").unwrap();
    wait_for("zone and priority dropped", Duration::from_secs(5), || {
        l.introspect()
            .peers
            .iter()
            .all(|p| p.zone.is_none() && p.priority == 0)
    });

    // atomic rename over it
    write_atomic(&path, "d:1\n");
    wait_for("rename", Duration::from_secs(5), || ids(&l) == s(&["d:1"]));

    // bad line: keep last good, error names file and line (renamed in whole: a poll that
    // met a half-written file could apply its empty start)
    write_atomic(&path, "d:1\ne:1\nnot-a-peer\n");
    wait_for("bad line error", Duration::from_secs(5), || {
        b.last_error().is_some()
    });
    let err = b.last_error().unwrap();
    assert_eq!(err.code(), ErrorCode::SourceFailed);
    assert!(err.to_string().contains("peers.txt:3"), "{err}");
    assert_eq!(ids(&l), s(&["d:1"]));
    for bad in ["a:1 0\n", "a:1 2 3\n", "a:0\n", "::1:80\n", "a:1\na:1\n"] {
        write_atomic(&path, bad);
        wait_for("bad error", Duration::from_secs(5), || {
            b.last_error()
                .is_some_and(|e| e.to_string().contains("peers.txt:"))
                && b.stats().failures > 0
        });
    }
    assert_eq!(ids(&l), s(&["d:1"]));

    // deletion: keep last good, error names the file
    std::fs::remove_file(&path).unwrap();
    wait_for("missing error", Duration::from_secs(5), || {
        b.last_error()
            .is_some_and(|e| e.to_string().contains("cannot read"))
    });
    assert!(b.last_error().unwrap().to_string().contains("peers.txt"));
    assert_eq!(ids(&l), s(&["d:1"]));

    // comes back
    std::fs::write(&path, "f:1\n[::1]:80\n").unwrap();
    wait_for("recreate", Duration::from_secs(5), || {
        ids(&l) == s(&["[::1]:80", "f:1"])
    });
    assert_eq!(b.last_error(), None);

    // stop: no more following
    b.stop().unwrap();
    std::fs::write(&path, "g:1\n").unwrap();
    thread::sleep(Duration::from_millis(150));
    assert_eq!(ids(&l), s(&["[::1]:80", "f:1"]));
    let events = events.lock().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, UpdaterEvent::Applied { .. })));
    assert!(events.iter().any(|e| matches!(e, UpdaterEvent::Error(_))));
}

#[test]
fn file_lines_carry_zone_and_priority_and_bad_fields_name_the_line() {
    use peerlb::updater::parse_peer_lines;
    let peers = parse_peer_lines(
        "a:1 zone=z1 priority=2\nb:1 3 zone=z2\nc:1 weight=4 priority=0 # spare\n",
        "f",
    )
    .unwrap();
    let got: Vec<(&str, u32, Option<&str>, u32)> = peers
        .iter()
        .map(|p| (p.id.as_str(), p.weight, p.zone.as_deref(), p.priority))
        .collect();
    assert_eq!(
        got,
        [
            ("a:1", 1, Some("z1"), 2),
            ("b:1", 3, Some("z2"), 0),
            ("c:1", 4, None, 0)
        ]
    );
    for (text, words) in [
        ("a:1 priority=-1", "bad priority"),
        ("a:1 priority=x", "bad priority"),
        ("a:1 zone=a zone=b", "zone given twice"),
        ("a:1 2 weight=3", "weight given twice"),
        ("a:1 colour=red", "unknown field"),
        ("a:1 zone=a 3", "unexpected"),
        ("a:1 weight=0", "bad weight"),
    ] {
        let e = parse_peer_lines(&format!("ok:1\n{text}\n"), "f").unwrap_err();
        assert_eq!(e.code(), ErrorCode::SourceFailed);
        let msg = e.to_string();
        assert!(msg.contains("f:2") && msg.contains(words), "{text}: {msg}");
    }
    let long = format!("a:1 zone={}", "z".repeat(peerlb::MAX_ZONE_LEN + 1));
    assert!(parse_peer_lines(&long, "f").is_err());
}

#[test]
fn file_missing_at_start_reports_and_keeps_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.txt");
    let l = list("round-robin");
    let b = FileUpdater::new(&path).bind(&l);
    b.start().unwrap();
    assert!(l.is_empty());
    assert!(b.last_error().unwrap().to_string().contains("nope.txt"));
    assert_eq!(
        b.stats(),
        BindingStats {
            good_reads: 0,
            changes: 0,
            failures: 1
        }
    );
}

#[test]
fn panicking_event_callback_is_contained() {
    let l = list("round-robin");
    let b = StaticUpdater::new(["a:1"])
        .on_event(Arc::new(|_: &UpdaterEvent| panic!("boom")))
        .bind(&l);
    b.start().unwrap();
    assert_eq!(l.len(), 1);
}

// ---------------------------------------------------------------------------------------
// A real DNS server on 127.0.0.1.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Answer,
    NxDomain,
    ServFail,
}

struct Zone {
    mode: Mode,
    a: Vec<Ipv4Addr>,
    srv: Vec<(u16, u16, u16, &'static str)>,
    ttl: u32,
}

struct DnsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    nx_served: Arc<AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl DnsServer {
    fn start(bind: &str, zone: Arc<Mutex<Zone>>) -> DnsServer {
        let socket = UdpSocket::bind(bind).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let nx_served = Arc::new(AtomicUsize::new(0));
        let (z, st, sv, nx) = (
            zone.clone(),
            stop.clone(),
            served.clone(),
            nx_served.clone(),
        );
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut resp = Message::new();
                resp.set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_authoritative(true);
                let zone = z.lock().unwrap();
                for q in query.queries() {
                    resp.add_query(q.clone());
                    match zone.mode {
                        Mode::ServFail => {
                            resp.set_response_code(ResponseCode::ServFail);
                        }
                        Mode::NxDomain => {
                            resp.set_response_code(ResponseCode::NXDomain);
                            nx.fetch_add(1, Ordering::SeqCst);
                        }
                        Mode::Answer => match q.query_type() {
                            RecordType::A => {
                                for ip in &zone.a {
                                    resp.add_answer(Record::from_rdata(
                                        q.name().clone(),
                                        zone.ttl,
                                        RData::A(A(*ip)),
                                    ));
                                }
                            }
                            RecordType::SRV => {
                                for (prio, weight, port, target) in &zone.srv {
                                    resp.add_answer(Record::from_rdata(
                                        q.name().clone(),
                                        zone.ttl,
                                        RData::SRV(SRV::new(
                                            *prio,
                                            *weight,
                                            *port,
                                            Name::from_ascii(target).unwrap(),
                                        )),
                                    ));
                                }
                            }
                            _ => {}
                        },
                    }
                }
                drop(zone);
                let _ = socket.send_to(&resp.to_vec().unwrap(), peer);
                sv.fetch_add(1, Ordering::SeqCst);
            }
        });
        DnsServer {
            addr,
            stop,
            served,
            nx_served,
            thread: Some(thread),
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn zone(a: &[[u8; 4]]) -> Arc<Mutex<Zone>> {
    Arc::new(Mutex::new(Zone {
        mode: Mode::Answer,
        a: a.iter().map(|o| Ipv4Addr::from(*o)).collect(),
        srv: Vec::new(),
        ttl: 0,
    }))
}

#[test]
fn dns_a_records_follow_keep_last_good_and_flap_protection() {
    let z = zone(&[[10, 0, 0, 1], [10, 0, 0, 2]]);
    let mut server = DnsServer::start("127.0.0.1:0", z.clone());
    let l = list("round-robin");
    let b = DnsUpdater::new("backends.test", DnsRecord::A { port: 8080 })
        .unwrap()
        .nameserver(server.addr)
        .min_interval(Duration::from_millis(30))
        .timeout(Duration::from_millis(200))
        .bind(&l);
    b.start().unwrap();
    wait_for("first answer", Duration::from_secs(10), || {
        ids(&l) == s(&["10.0.0.1:8080", "10.0.0.2:8080"])
    });

    // records change between polls
    z.lock().unwrap().a = vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
    let took = wait_for("change", Duration::from_secs(10), || {
        ids(&l) == s(&["10.0.0.2:8080", "10.0.0.3:8080"])
    });
    eprintln!("dns change reached the list in {took:?} (min_interval 30ms, ttl 0)");

    // SERVFAIL: keep last good, report
    z.lock().unwrap().mode = Mode::ServFail;
    wait_for("servfail error", Duration::from_secs(10), || {
        b.last_error().is_some()
    });
    assert_eq!(b.last_error().unwrap().code(), ErrorCode::SourceFailed);
    assert_eq!(ids(&l), s(&["10.0.0.2:8080", "10.0.0.3:8080"]));

    // back to good
    z.lock().unwrap().mode = Mode::Answer;
    wait_for("recover", Duration::from_secs(10), || {
        b.last_error().is_none()
    });

    // server stopped: keep last good
    server.shutdown();
    let failures = b.stats().failures;
    wait_for("failures while stopped", Duration::from_secs(10), || {
        b.stats().failures >= failures + 2
    });
    assert!(b.last_error().is_some());
    assert_eq!(ids(&l), s(&["10.0.0.2:8080", "10.0.0.3:8080"]));

    // restart on the same port; then NXDOMAIN: applied only after 3 consecutive answers
    let mut server = DnsServer::start(&server.addr.to_string(), z.clone());
    wait_for("recover after restart", Duration::from_secs(10), || {
        b.last_error().is_none()
    });
    z.lock().unwrap().mode = Mode::NxDomain;
    wait_for("emptied", Duration::from_secs(10), || l.is_empty());
    let nx = server.nx_served.load(Ordering::SeqCst);
    assert!(nx >= 3, "emptied after only {nx} NXDOMAIN answers");
    assert!(server.served.load(Ordering::SeqCst) > 0);
    server.shutdown();
}

#[test]
fn dns_empty_answers_below_threshold_are_not_applied() {
    let z = zone(&[[10, 0, 0, 9]]);
    let server = DnsServer::start("127.0.0.1:0", z.clone());
    let l = list("round-robin");
    let b = DnsUpdater::new("backends.test.", DnsRecord::A { port: 1 })
        .unwrap()
        .nameserver(server.addr)
        .min_interval(Duration::from_millis(10))
        .empty_threshold(1_000)
        .bind(&l);
    b.start().unwrap();
    wait_for("first", Duration::from_secs(10), || l.len() == 1);
    {
        let mut zone = z.lock().unwrap();
        zone.a.clear(); // NOERROR with no records
    }
    let base = server.served.load(Ordering::SeqCst);
    wait_for("empties", Duration::from_secs(10), || {
        server.served.load(Ordering::SeqCst) >= base + 6
    });
    assert_eq!(
        ids(&l),
        s(&["10.0.0.9:1"]),
        "empty answers must not empty the list yet"
    );
    assert_eq!(b.last_error(), None, "an empty answer is not a failure");
}

#[test]
fn dns_srv_weights_reach_weighted_round_robin() {
    let z = zone(&[]);
    z.lock().unwrap().srv = vec![
        (10, 3, 9001, "one.test."),
        (10, 1, 9002, "two.test."),
        (20, 100, 9003, "fallback.test."), // higher priority number: not used
    ];
    let server = DnsServer::start("127.0.0.1:0", z.clone());
    let l = list("weighted-round-robin");
    l.start().unwrap();
    let b = DnsUpdater::new("_http._tcp.backends.test", DnsRecord::Srv)
        .unwrap()
        .nameserver(server.addr)
        .min_interval(Duration::from_millis(50))
        .bind(&l);
    b.start().unwrap();
    wait_for("srv", Duration::from_secs(10), || l.len() == 2);
    assert_eq!(ids(&l), s(&["one.test:9001", "two.test:9002"]));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        let c = l
            .choose(&Request::new().with_timeout(Duration::from_secs(1)))
            .unwrap();
        *counts.entry(c.peer().to_string()).or_default() += 1;
    }
    assert_eq!(counts["one.test:9001"], 300, "{counts:?}");
    assert_eq!(counts["two.test:9002"], 100, "{counts:?}");
    b.stop().unwrap();
    l.stop().unwrap();
}

#[test]
fn dns_rejects_bad_names_and_ports() {
    assert_eq!(
        DnsUpdater::new("", DnsRecord::Srv).err().unwrap().code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        DnsUpdater::new("ok.test", DnsRecord::A { port: 0 })
            .err()
            .unwrap()
            .code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn static_with_bad_peers_fails_start_and_leaves_the_list() {
    let l = list("round-robin");
    l.update(["x:1"], None::<&str>).unwrap();
    for bad in [
        vec![PeerSpec::new("a:1"), PeerSpec::new("")],
        vec![PeerSpec::weighted("a:1", 0)],
    ] {
        let b = StaticUpdater::new(bad).bind(&l);
        assert_eq!(b.start().unwrap_err().code(), ErrorCode::InvalidArgument);
        assert!(!b.is_running());
        assert_eq!(ids(&l), s(&["x:1"]));
    }
}

// ---------------------------------------------------------------------------------------
// Files that are not regular files, files over the size cap, and where the work runs.

/// Makes a FIFO (named pipe) at `path`.
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Runs `f` on its own thread and returns its result, failing the test when it does not
/// return within `limit` (a hang must fail the test, not stall the suite).
fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"))
}

fn source_failed_with(b: &peerlb::updater::Binding, words: &[&str]) -> bool {
    b.last_error().is_some_and(|e| {
        let text = e.to_string();
        e.code() == ErrorCode::SourceFailed && words.iter().all(|w| text.contains(w))
    })
}

#[test]
fn a_fifo_path_fails_start_at_once_with_source_failed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.fifo");
    mkfifo(&path);
    let l = list("round-robin");
    let b = Arc::new(
        FileUpdater::new(&path)
            .poll_interval(Duration::from_millis(10))
            .bind(&l),
    );
    let started = b.clone();
    within("start() on a FIFO", Duration::from_secs(10), move || {
        started.start()
    })
    .unwrap();
    assert!(
        source_failed_with(&b, &["peers.fifo", "not a regular file", "a FIFO"]),
        "{:?}",
        b.last_error()
    );
    assert!(l.is_empty());
    // The polls meet the FIFO too and never block: once it is a regular file, it is read.
    write_atomic(&path, "a:1\n");
    wait_for("the regular file", Duration::from_secs(10), || {
        ids(&l) == s(&["a:1"])
    });
    assert_eq!(b.last_error(), None);
    let stopping = b.clone();
    within("stop()", Duration::from_secs(10), move || stopping.stop()).unwrap();
}

#[test]
fn devices_and_directories_are_source_failed_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    for (path, what) in [
        (std::path::PathBuf::from("/dev/zero"), "a character device"),
        (std::path::PathBuf::from("/dev/null"), "a character device"),
        (dir.path().to_path_buf(), "a directory"),
    ] {
        let l = list("round-robin");
        let b = Arc::new(FileUpdater::new(&path).bind(&l));
        let started = b.clone();
        within("start()", Duration::from_secs(10), move || started.start()).unwrap();
        let shown = path.display().to_string();
        assert!(
            source_failed_with(&b, &[&shown, what]),
            "{shown}: {:?}",
            b.last_error()
        );
        assert!(l.is_empty());
    }
}

#[test]
fn a_file_swapped_for_a_fifo_or_a_device_keeps_the_last_good_set_and_stalls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = list("round-robin");
    // Two bindings whose files become FIFOs, and one whose file becomes /dev/zero: with
    // reads on the async workers, the FIFOs blocked both of them and /dev/zero ate memory.
    let mut bindings = Vec::new();
    for (i, name) in ["one.fifo", "two.fifo", "zero"].iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("10.0.0.{}:80\n", i + 1)).unwrap();
        let b = FileUpdater::new(&path)
            .poll_interval(Duration::from_millis(10))
            .bind(&l);
        b.start().unwrap();
        bindings.push((path, b));
    }
    assert_eq!(l.len(), 3);
    for (path, _) in &bindings {
        std::fs::remove_file(path).unwrap();
        if path.ends_with("zero") {
            std::os::unix::fs::symlink("/dev/zero", path).unwrap();
        } else {
            mkfifo(path);
        }
    }
    for (path, b) in &bindings {
        let what = if path.ends_with("zero") {
            "a character device"
        } else {
            "a FIFO"
        };
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        wait_for(&format!("{name} fails"), Duration::from_secs(10), || {
            source_failed_with(b, &[&name, what])
        });
    }
    assert_eq!(
        ids(&l),
        s(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]),
        "last good set kept"
    );

    // Meanwhile the process goes on: an unrelated list's choose waits its 200 ms and no
    // more, from a blocking and from an async caller, and another file updater follows
    // its file.
    let idle = list("round-robin");
    idle.start().unwrap();
    let waiter = idle.clone();
    let (took, code) = within("choose", Duration::from_secs(10), move || {
        let t0 = Instant::now();
        let err = waiter
            .choose(&Request::new().with_timeout(Duration::from_millis(200)))
            .unwrap_err();
        (t0.elapsed(), err.code())
    });
    assert_eq!(code, ErrorCode::Timeout);
    assert!(took < Duration::from_secs(5), "choose took {took:?}");
    let waiter = idle.clone();
    let code = within("choose_async", Duration::from_secs(10), move || {
        let request = Request::new().with_timeout(Duration::from_millis(200));
        peerlb::Later::new(async move { waiter.choose_async(&request).await })
            .wait()
            .unwrap_err()
            .code()
    });
    assert_eq!(code, ErrorCode::Timeout);
    let other_path = dir.path().join("other");
    std::fs::write(&other_path, "a:1\n").unwrap();
    let other = list("round-robin");
    let follower = FileUpdater::new(&other_path)
        .poll_interval(Duration::from_millis(10))
        .bind(&other);
    follower.start().unwrap();
    write_atomic(&other_path, "b:1\n");
    wait_for("another updater", Duration::from_secs(10), || {
        ids(&other) == s(&["b:1"])
    });

    // A regular file again: followed again.
    let (path, b) = &bindings[0];
    write_atomic(path, "10.0.0.9:80\n");
    wait_for("back to a regular file", Duration::from_secs(10), || {
        b.last_error().is_none() && ids(&l).contains(&"10.0.0.9:80".to_owned())
    });
}

#[test]
fn files_over_the_size_cap_fail_naming_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.txt");
    std::fs::write(&path, "a:1\n").unwrap();
    let l = list("round-robin");
    let b = FileUpdater::new(&path)
        .max_size(64)
        .poll_interval(Duration::from_millis(10))
        .bind(&l);
    b.start().unwrap();
    assert_eq!(ids(&l), s(&["a:1"]));
    // 65 bytes: one over.
    let big = format!("{}\n", "#".repeat(64));
    // (Every rewrite is a rename: a poll never sees a half-written file.)
    write_atomic(&path, &big);
    wait_for("over the cap", Duration::from_secs(10), || {
        source_failed_with(&b, &["peers.txt", "65 bytes", "limit of 64 bytes"])
    });
    assert_eq!(ids(&l), s(&["a:1"]), "last good set kept");
    // Exactly the cap is fine.
    write_atomic(&path, &format!("b:1\n{}\n", "#".repeat(59)));
    wait_for("at the cap", Duration::from_secs(10), || {
        ids(&l) == s(&["b:1"])
    });

    // The default cap, 16 MiB, on a sparse file one byte over it: refused before reading.
    let huge = dir.path().join("huge.txt");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(peerlb::updater::file::DEFAULT_FILE_MAX_SIZE + 1)
        .unwrap();
    let l = list("round-robin");
    let b = FileUpdater::new(&huge).bind(&l);
    b.start().unwrap();
    assert!(
        source_failed_with(
            &b,
            &["huge.txt", "16777217 bytes", "limit of 16777216 bytes"]
        ),
        "{:?}",
        b.last_error()
    );
}

/// A transport that records whether any of its calls ran on an async worker.
#[derive(Default)]
struct WhereCalled {
    calls: AtomicUsize,
    on_worker: AtomicBool,
}

impl peerlb::Transport for WhereCalled {
    fn retain(&self, _: &peerlb::PeerId, sub: &peerlb::Subscriber) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if peerlb::runtime::on_worker_thread() {
            self.on_worker.store(true, Ordering::SeqCst);
        }
        sub.set_status(peerlb::ConnectionStatus::Available);
        Ok(())
    }
    fn release(&self, _: &peerlb::PeerId, _: &peerlb::Subscriber) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if peerlb::runtime::on_worker_thread() {
            self.on_worker.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[test]
fn polled_changes_reach_transports_and_callbacks_off_the_async_workers() {
    let transport = Arc::new(WhereCalled::default());
    let l = PeerList::new(ListOptions::default().transport(transport.clone())).unwrap();
    l.start().unwrap();
    let callback_on_worker = Arc::new(AtomicBool::new(false));
    let callbacks = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (callback_on_worker.clone(), callbacks.clone());
    let on_event: peerlb::updater::EventCallback = Arc::new(move |_: &UpdaterEvent| {
        count.fetch_add(1, Ordering::SeqCst);
        if peerlb::runtime::on_worker_thread() {
            flag.store(true, Ordering::SeqCst);
        }
    });

    // The file updater's polls.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.txt");
    std::fs::write(&path, "a:1\n").unwrap();
    let file = FileUpdater::new(&path)
        .poll_interval(Duration::from_millis(10))
        .on_event(on_event.clone())
        .bind(&l);
    file.start().unwrap();
    let before = transport.calls.load(Ordering::SeqCst);
    write_atomic(&path, "b:1\n");
    wait_for("file change", Duration::from_secs(10), || {
        transport.calls.load(Ordering::SeqCst) >= before + 2
    });
    write_atomic(&path, "not a peer\n");
    wait_for("file error", Duration::from_secs(10), || {
        file.last_error().is_some()
    });
    file.stop().unwrap();

    // The DNS updater's polls.
    let z = zone(&[[10, 0, 0, 1]]);
    let mut server = DnsServer::start("127.0.0.1:0", z.clone());
    let dns = DnsUpdater::new("backends.test", DnsRecord::A { port: 80 })
        .unwrap()
        .nameserver(server.addr)
        .min_interval(Duration::from_millis(20))
        .on_event(on_event)
        .bind(&l);
    dns.start().unwrap();
    wait_for("dns", Duration::from_secs(10), || l.len() == 2);
    z.lock().unwrap().mode = Mode::ServFail;
    wait_for("dns error", Duration::from_secs(10), || {
        dns.last_error().is_some()
    });
    server.shutdown();

    assert!(callbacks.load(Ordering::SeqCst) >= 4);
    assert!(
        !transport.on_worker.load(Ordering::SeqCst),
        "a transport ran on an async worker"
    );
    assert!(
        !callback_on_worker.load(Ordering::SeqCst),
        "an event callback ran on an async worker"
    );
}
