//! The xDS updater against a real ADS control plane: `tests/xds/ads_server.py` (grpcio +
//! xds-protos) run as a child process on 127.0.0.1. The Python comes from
//! `PEERLB_PYTHON`, else the repository's `.venv`; it needs `grpcio` and `xds-protos`
//! (`make test-updaters-xds` installs them). Without them the test FAILS (it never skips).
#![cfg(feature = "xds")]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use peerlb::updater::XdsUpdater;
use peerlb::{ErrorCode, ListOptions, PeerList, PeerSpec, Request, StrategyKind};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PEERLB_PYTHON") {
        return p.into();
    }
    repo().join(".venv/bin/python")
}

/// The control plane in a child process, driven by JSON lines.
struct Ads {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Ads {
    fn start(port: u16) -> Ads {
        let mut child = Command::new(python())
            .arg(repo().join("tests/xds/ads_server.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs (make test-updaters-xds makes .venv)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .unwrap_or_else(|| {
                panic!("ads_server.py did not start (grpcio, xds-protos?): {line:?}")
            })
            .parse()
            .unwrap();
        Ads {
            child,
            stdin,
            stdout,
            port,
        }
    }

    fn command(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Sets the state; returns the nonce of the push (empty when no stream is open).
    fn set(&mut self, version: &str, clusters: Value) -> String {
        let answer = self.command(json!({"op": "set", "version": version, "clusters": clusters}));
        answer["nonce"].as_str().unwrap().to_owned()
    }

    fn requests(&mut self) -> Vec<Value> {
        self.command(json!({"op": "requests"}))
            .as_array()
            .unwrap()
            .clone()
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

impl Drop for Ads {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

/// The list's peers as specs (id, weight, zone, priority), sorted by id.
fn specs(list: &PeerList) -> Vec<PeerSpec> {
    let mut v: Vec<PeerSpec> = list
        .introspect()
        .peers
        .iter()
        .map(|p| {
            let mut s = PeerSpec::weighted(p.id.clone(), p.weight).with_priority(p.priority);
            if let Some(z) = &p.zone {
                s = s.with_zone(z.as_str());
            }
            s
        })
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

fn ids(list: &PeerList) -> Vec<String> {
    specs(list).into_iter().map(|s| s.id).collect()
}

fn peer(id: &str, weight: u32, zone: Option<&str>, priority: u32) -> PeerSpec {
    let s = PeerSpec::weighted(id, weight).with_priority(priority);
    match zone {
        Some(z) => s.with_zone(z),
        None => s,
    }
}

#[test]
fn follows_clusters_acks_nacks_and_resyncs_after_a_restart() {
    let mut ads = Ads::start(0);
    let port = ads.port;
    // Before the updater connects: the state it gets on subscribing.
    ads.set(
        "v1",
        json!({
            "a": [
                {"addr": "10.0.0.1", "port": 80, "weight": 3, "health": "HEALTHY",
                 "region": "r1", "zone": "z1", "locality_weight": 5},
                {"addr": "10.0.0.2", "port": 80, "region": "r1", "zone": "z1", "locality_weight": 5},
            ],
            "b": [
                {"addr": "10.0.0.3", "port": 81, "region": "r2", "zone": "z2", "sub_zone": "s2",
                 "priority": 1},
                {"addr": "10.0.0.4", "port": 80, "health": "UNHEALTHY"},
                {"addr": "10.0.0.5", "port": 80, "health": "DRAINING"},
                {"addr": "10.0.0.6", "port": 80, "health": "DEGRADED"},
                {"addr": "::1", "port": 82, "health": "HEALTHY"},
            ],
            "not-subscribed": [{"addr": "10.9.9.9", "port": 80}],
        }),
    );
    let list = PeerList::new(ListOptions::default().strategy(StrategyKind::RoundRobin)).unwrap();
    list.start().unwrap();
    let updater = XdsUpdater::new(&format!("127.0.0.1:{port}"), ["a", "b"])
        .unwrap()
        .node_id("test-node")
        .unwrap()
        .node_cluster("test-cluster")
        .unwrap()
        .backoff_initial(Duration::from_millis(50))
        .backoff_max(Duration::from_millis(200));
    let binding = updater.bind(&list);
    binding.start().unwrap();
    let v1 = vec![
        peer("10.0.0.1:80", 3, Some("r1/z1"), 0),
        peer("10.0.0.2:80", 5, Some("r1/z1"), 0),
        peer("10.0.0.3:81", 1, Some("r2/z2/s2"), 1),
        peer("[::1]:82", 1, None, 0),
    ];
    let first = wait_for("v1", Duration::from_secs(10), || specs(&list) == v1);
    println!("xds: first set applied {first:?} after start (incl. connect)");
    assert_eq!(binding.peers(), v1);
    assert!(binding.last_error().is_none());

    // The subscription carried the node and both clusters; v1 was ACKed with its nonce.
    wait_for("the ACK of v1", Duration::from_secs(5), || {
        ads.requests().iter().any(|r| r["version"] == "v1")
    });
    let requests = ads.requests();
    assert_eq!(requests[0]["node_id"], "test-node");
    assert_eq!(requests[0]["node_cluster"], "test-cluster");
    assert_eq!(requests[0]["names"], json!(["a", "b"]));
    assert_eq!(requests[0]["version"], "");
    let ack = requests.iter().find(|r| r["version"] == "v1").unwrap();
    assert_eq!(ack["nonce"], "n1");
    assert!(ack["error"].is_null());

    // A request in flight and a session on 10.0.0.1, which then drains.
    let held = (0..8)
        .map(|_| list.choose(&Request::new()).unwrap())
        .find(|c| c.peer().as_str() == "10.0.0.1:80")
        .expect("round-robin reaches 10.0.0.1");
    let session = loop {
        let s = list.open_session(&Request::new()).unwrap();
        if s.peer().as_str() == "10.0.0.1:80" {
            break s;
        }
        s.close().unwrap();
    };
    let before = Instant::now();
    ads.set(
        "v2",
        json!({
            "a": [
                {"addr": "10.0.0.1", "port": 80, "weight": 3, "health": "DRAINING",
                 "region": "r1", "zone": "z1"},
                {"addr": "10.0.0.7", "port": 80, "weight": 2, "region": "r1", "zone": "z1"},
            ],
            "b": [{"addr": "10.0.0.3", "port": 81, "priority": 1}],
        }),
    );
    let v2 = vec![
        peer("10.0.0.3:81", 1, None, 1),
        peer("10.0.0.7:80", 2, Some("r1/z1"), 0),
    ];
    wait_for("v2", Duration::from_secs(5), || specs(&list) == v2);
    let delay = before.elapsed();
    println!("xds: change-to-list delay {delay:?} (from before the push to the list)");
    assert!(delay < Duration::from_millis(500), "{delay:?}");
    // The drained peer's request and session go on and end normally.
    assert_eq!(session.peer().as_str(), "10.0.0.1:80");
    held.finish(peerlb::Outcome::Ok, None);
    session.close().unwrap();

    // An invalid resource: NACKed with its nonce and the previous version; v2 stays.
    let bad = ads.set(
        "v3",
        json!({"a": [{"addr": "10.0.0.8", "port": 0}], "b": []}),
    );
    assert!(!bad.is_empty());
    wait_for("the NACK of v3", Duration::from_secs(5), || {
        ads.requests()
            .iter()
            .any(|r| r["nonce"] == bad.as_str() && !r["error"].is_null())
    });
    let nack = ads
        .requests()
        .into_iter()
        .find(|r| r["nonce"] == bad.as_str())
        .unwrap();
    assert_eq!(
        nack["version"], "v2",
        "a NACK carries the last accepted version"
    );
    assert!(nack["error"].as_str().unwrap().contains("port 0"), "{nack}");
    wait_for("the rejection reported", Duration::from_secs(5), || {
        binding.last_error().is_some()
    });
    let error = binding.last_error().unwrap();
    assert_eq!(error.code(), ErrorCode::SourceFailed);
    assert!(error.to_string().contains("v3"), "{error}");
    assert_eq!(specs(&list), v2, "the last good set stays");

    // Degraded endpoints: offered only when nothing is healthy.
    ads.set(
        "v4",
        json!({"a": [{"addr": "10.0.0.9", "port": 80, "health": "DEGRADED"}],
               "b": [{"addr": "10.0.0.10", "port": 80, "health": "UNHEALTHY"}]}),
    );
    wait_for("v4", Duration::from_secs(5), || {
        ids(&list) == ["10.0.0.9:80"]
    });
    assert!(
        binding.last_error().is_none(),
        "a good response clears the error"
    );

    // The control plane goes away: the last good set stays, the error is reported.
    ads.quit();
    wait_for("the outage reported", Duration::from_secs(5), || {
        binding
            .last_error()
            .is_some_and(|e| e.code() == ErrorCode::SourceFailed)
    });
    thread::sleep(Duration::from_millis(300));
    assert_eq!(ids(&list), ["10.0.0.9:80"], "kept while the server is away");

    // A new control plane on the same port with other state: reconnect, resubscribe, and
    // its state replaces the set.
    let mut ads = Ads::start(port);
    let before = Instant::now();
    ads.set("r1", json!({"a": [{"addr": "10.0.1.1", "port": 80}]}));
    let resync = wait_for("the resync", Duration::from_secs(5), || {
        ids(&list) == ["10.0.1.1:80"]
    });
    println!("xds: resync {resync:?} after the restarted server got its state");
    assert!(binding.last_error().is_none());
    let requests = ads.requests();
    assert_eq!(requests[0]["node_id"], "test-node");
    assert_eq!(
        requests[0]["version"], "v4",
        "resubscribes with the last version"
    );
    assert!(before.elapsed() < Duration::from_secs(2));
    binding.stop().unwrap();
    assert_eq!(ids(&list), ["10.0.1.1:80"], "stop leaves the peers");
}

#[test]
fn an_unreachable_control_plane_is_reported_and_start_does_not_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again: nothing listens there
    let list = PeerList::new(ListOptions::default()).unwrap();
    let binding = XdsUpdater::new(&format!("http://127.0.0.1:{port}"), ["a"])
        .unwrap()
        .backoff_initial(Duration::from_millis(20))
        .backoff_max(Duration::from_millis(50))
        .bind(&list);
    let t = Instant::now();
    binding.start().unwrap();
    assert!(t.elapsed() < Duration::from_millis(100));
    wait_for("the failure", Duration::from_secs(5), || {
        binding
            .last_error()
            .is_some_and(|e| e.code() == ErrorCode::SourceFailed)
    });
    wait_for("retries", Duration::from_secs(5), || {
        binding.stats().failures >= 3
    });
    assert!(list.is_empty());
}

#[test]
fn bad_configuration_is_invalid_argument() {
    let bad = [
        XdsUpdater::new("127.0.0.1:1", Vec::<String>::new()).err(),
        XdsUpdater::new("127.0.0.1:1", [""]).err(),
        XdsUpdater::new("https://127.0.0.1:1", ["a"]).err(),
        XdsUpdater::new("http://[::1", ["a"]).err(),
        XdsUpdater::new("", ["a"]).err(),
        XdsUpdater::new("127.0.0.1:1", ["a\0b"]).err(),
        XdsUpdater::new("127.0.0.1:1", ["a"])
            .unwrap()
            .node_id("")
            .err(),
        XdsUpdater::new("127.0.0.1:1", ["a"])
            .unwrap()
            .node_cluster("")
            .err(),
    ];
    for (i, e) in bad.into_iter().enumerate() {
        let e = e.unwrap_or_else(|| panic!("case {i} accepted"));
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "case {i}: {e}");
    }
}
