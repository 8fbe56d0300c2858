//! The http-probe and grpc-health transports against real servers the test starts: a
//! Python `http.server` and a `grpcio-health-checking` server (tests/health/), each
//! flipping between healthy and not on command.
//!
//! The Python comes from `PEERLB_PYTHON`, else the repository's `.venv`, else `python3`.
//! The gRPC tests need `grpcio-health-checking` there; without it they say so and pass,
//! unless `PEERLB_REQUIRE_GRPC_HEALTH=1` (set by `make test`), where they fail. They are built
//! with the cargo feature `grpc-health` only.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use peerlb::events::EventKind;
use peerlb::{
    transport_from_spec, ConnectionStatus, ErrorCode, ListOptions, PeerList, Subscription,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PEERLB_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// A flipping server in a child process.
struct Flip {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Flip {
    fn start(script: &str, args: &[&str]) -> Flip {
        let mut child = Command::new(python())
            .arg(repo().join("tests/health").join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
            .parse()
            .unwrap();
        Flip {
            child,
            stdin,
            stdout,
            port,
        }
    }

    fn command(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    fn stats(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.command("stats")).unwrap()
    }

    fn id(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Flip {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "grpc-health")]
fn grpc_available() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import grpc_health.v1.health"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("PEERLB_REQUIRE_GRPC_HEALTH").is_none(),
            "grpcio-health-checking is not importable by {:?}",
            python()
        );
        eprintln!(
            "skipped: grpcio-health-checking is not installed for {:?}",
            python()
        );
    }
    ok
}

/// A running list of one peer on `spec`, and its availability events.
fn watch(spec: &str, id: &str) -> (PeerList, mpsc::Receiver<(EventKind, Instant)>, Subscription) {
    let list = PeerList::new(ListOptions::default().transport(transport_from_spec(spec).unwrap()))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let sub = list.subscribe(move |e| {
        if matches!(e.kind, EventKind::Available | EventKind::Unavailable) {
            let _ = tx.send((e.kind, Instant::now()));
        }
    });
    list.update([id], None::<&str>).unwrap();
    list.start().unwrap();
    (list, rx, sub)
}

/// Waits (seconds at most) until the list reports `want` for `id`.
fn wait_status(list: &PeerList, id: &str, want: ConnectionStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while list.peer_status(id).unwrap().connection_status != want {
        assert!(Instant::now() < deadline, "{id} never became {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The next availability event, within seconds.
fn next(rx: &mpsc::Receiver<(EventKind, Instant)>) -> (EventKind, Instant) {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("an availability event within 20 s")
}

#[test]
fn http_probe_follows_a_server_flipping_between_200_and_503() {
    let mut server = Flip::start("flip_http.py", &[]);
    let id = server.id();
    let spec = "http-probe?path=/healthz&expect=200-299&host=api.test&interval_ms=50\
                &timeout_ms=1000&healthy_threshold=2&unhealthy_threshold=3";
    let (list, rx, _sub) = watch(spec, &id);
    assert_eq!(list.introspect().transport, "http-probe");
    assert_eq!(next(&rx).0, EventKind::Available);
    let stats = server.stats();
    assert_eq!(stats["path"], "/healthz");
    assert_eq!(stats["host"], "api.test");
    for _ in 0..2 {
        let flipped = Instant::now();
        assert_eq!(server.command("down"), "ok");
        let (kind, at) = next(&rx);
        assert_eq!(kind, EventKind::Unavailable);
        eprintln!("http-probe: 503 -> unavailable in {:?}", at - flipped);
        // Three failures in a row were needed.
        assert!(server.stats()["unavailable"].as_u64().unwrap() >= 3);
        let flipped = Instant::now();
        assert_eq!(server.command("up"), "ok");
        let (kind, at) = next(&rx);
        assert_eq!(kind, EventKind::Available);
        eprintln!("http-probe: 200 -> available in {:?}", at - flipped);
        assert!(server.stats()["ok"].as_u64().unwrap() >= 2);
    }
}

#[test]
fn http_probe_counts_unexpected_statuses_and_dead_servers_as_unhealthy() {
    // A first failed probe makes a connecting peer unavailable (no event: it never was
    // available), so these wait on its status.
    let server = Flip::start("flip_http.py", &["--down"]);
    let (l1, _rx, _s1) = watch("http-probe?interval_ms=50", &server.id());
    wait_status(&l1, &server.id(), ConnectionStatus::Unavailable);
    let up = Flip::start("flip_http.py", &[]);
    let (l2, _rx, _s2) = watch("http-probe?interval_ms=50&expect=201", &up.id());
    wait_status(&l2, &up.id(), ConnectionStatus::Unavailable);
    let (_list, rx, _sub3) = watch("http-probe?interval_ms=50", &up.id());
    assert_eq!(next(&rx).0, EventKind::Available);
    drop(up);
    assert_eq!(next(&rx).0, EventKind::Unavailable);
}

#[cfg(feature = "grpc-health")]
#[test]
fn grpc_health_follows_a_server_flipping_between_serving_and_not_serving() {
    if !grpc_available() {
        return;
    }
    let mut server = Flip::start("flip_grpc.py", &[]);
    let id = server.id();
    let spec = "grpc-health?service=peerlb.test&interval_ms=50&timeout_ms=1000\
                &healthy_threshold=2&unhealthy_threshold=2";
    let (list, rx, _sub) = watch(spec, &id);
    assert_eq!(list.introspect().transport, "grpc-health");
    assert_eq!(next(&rx).0, EventKind::Available);
    for _ in 0..2 {
        let flipped = Instant::now();
        assert_eq!(server.command("down"), "ok");
        let (kind, at) = next(&rx);
        assert_eq!(kind, EventKind::Unavailable);
        eprintln!(
            "grpc-health: NOT_SERVING -> unavailable in {:?}",
            at - flipped
        );
        let flipped = Instant::now();
        assert_eq!(server.command("up"), "ok");
        let (kind, at) = next(&rx);
        assert_eq!(kind, EventKind::Available);
        eprintln!("grpc-health: SERVING -> available in {:?}", at - flipped);
    }
    assert!(server.stats()["checks"].as_u64().unwrap() >= 8);
}

#[cfg(feature = "grpc-health")]
#[test]
fn grpc_health_unknown_services_and_dead_servers_are_unhealthy() {
    if !grpc_available() {
        return;
    }
    let server = Flip::start("flip_grpc.py", &[]);
    let (l1, _rx, _s1) = watch(
        "grpc-health?service=no.such.Service&interval_ms=50",
        &server.id(),
    );
    wait_status(&l1, &server.id(), ConnectionStatus::Unavailable);
    let (_l2, rx, _s2) = watch("grpc-health?interval_ms=50", &server.id());
    assert_eq!(next(&rx).0, EventKind::Available);
    drop(server);
    assert_eq!(next(&rx).0, EventKind::Unavailable);
}

#[test]
fn bad_probe_specs_are_invalid_arguments() {
    for spec in [
        "http-probe?path=healthz",
        "http-probe?path=/a b",
        "http-probe?expect=99",
        "http-probe?expect=300-200",
        "http-probe?expect=",
        "http-probe?interval_ms=0",
        "http-probe?healthy_threshold=0",
        "http-probe?port=1",
        "grpc-health?service=a b",
        "grpc-health?unhealthy_threshold=1001",
        "grpc-health:fast",
    ] {
        let err = transport_from_spec(spec).err().unwrap();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{spec}");
    }
}
