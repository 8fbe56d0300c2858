//! The etcd updater against a real etcd server (the `etcd` binary: `$PEERLB_ETCD`, else
//! `etcd` on PATH; `make test` installs the `etcd-server` package when missing). The test
//! starts etcd on free loopback ports with a temp data dir, kills it and restarts it.
//! Without an etcd binary it FAILS (it never skips).
#![cfg(feature = "etcd")]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use etcd_client::Client;
use peerlb::updater::{EtcdUpdater, UpdaterEvent};
use peerlb::{ErrorCode, ListOptions, PeerList};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Etcd {
    child: Child,
    client_port: u16,
    peer_port: u16,
}

fn etcd_binary() -> String {
    if let Ok(p) = std::env::var("PEERLB_ETCD") {
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("etcd");
        if p.is_file() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!(
        "no etcd binary: install the etcd-server package (make test does) or set PEERLB_ETCD; \
         this test does not skip"
    );
}

impl Etcd {
    fn start(data: &Path, client_port: u16, peer_port: u16) -> Etcd {
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(etcd_binary())
            .args(["--name", "t", "--data-dir"])
            .arg(data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start etcd");
        let etcd = Etcd {
            child,
            client_port,
            peer_port,
        };
        // ready when a put works
        let start = Instant::now();
        loop {
            let ok = rt().block_on(async {
                let mut c = Client::connect([etcd.url()], None).await.ok()?;
                tokio::time::timeout(Duration::from_secs(1), c.put("/ready", "1", None))
                    .await
                    .ok()?
                    .ok()
            });
            if ok.is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not start"
            );
            thread::sleep(Duration::from_millis(50));
        }
        etcd
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

fn put(url: &str, key: &str, value: &str) {
    rt().block_on(async {
        let mut c = Client::connect([url], None).await.unwrap();
        c.put(key, value, None).await.unwrap();
    });
}

fn delete(url: &str, key: &str) {
    rt().block_on(async {
        let mut c = Client::connect([url], None).await.unwrap();
        c.delete(key, None).await.unwrap();
    });
}

fn peers(list: &PeerList) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = list
        .introspect()
        .peers
        .iter()
        .map(|p| (p.id.clone(), p.weight))
        .collect();
    v.sort();
    v
}

fn want(v: &[(&str, u32)]) -> Vec<(String, u32)> {
    v.iter().map(|(a, w)| (a.to_string(), *w)).collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

#[test]
fn etcd_prefix_is_followed_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (cp, pp) = (free_port(), free_port());
    let mut etcd = Etcd::start(dir.path(), cp, pp);
    let url = etcd.url();
    put(&url, "/svc/api/a", "10.0.0.1:80");
    put(&url, "/svc/api/10.0.0.2:80", "");
    put(
        &url,
        "/svc/api/c",
        r#"{"addr": "10.0.0.3:80", "weight": 5}"#,
    );
    put(&url, "/svc/other/x", "10.9.9.9:1"); // outside the prefix

    let list = PeerList::new(ListOptions::default().shuffle(false)).unwrap();
    let events = Arc::new(Mutex::new(Vec::<UpdaterEvent>::new()));
    let ev = events.clone();
    let binding = EtcdUpdater::new([url.clone()], "/svc/api/")
        .unwrap()
        .timeout(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(100))
        .on_event(Arc::new(move |e: &UpdaterEvent| {
            ev.lock().unwrap().push(e.clone())
        }))
        .bind(&list);
    binding.start().unwrap();
    wait_for("initial get", || {
        peers(&list) == want(&[("10.0.0.1:80", 1), ("10.0.0.2:80", 1), ("10.0.0.3:80", 5)])
    });

    // put / delete -> the list follows (well within a second)
    let t0 = Instant::now();
    put(
        &url,
        "/svc/api/d",
        r#"{"addr": "10.0.0.4:80", "weight": 2}"#,
    );
    wait_for("put", || peers(&list).len() == 4);
    let took = t0.elapsed(); // from before the put (which also connects) to the list
    eprintln!("etcd put reached the list in {took:?}");
    assert!(took < Duration::from_secs(1), "put took {took:?}");
    let t0 = Instant::now();
    delete(&url, "/svc/api/a");
    wait_for("delete", || peers(&list).len() == 3);
    let took = t0.elapsed();
    eprintln!("etcd delete reached the list in {took:?}");
    put(
        &url,
        "/svc/api/c",
        r#"{"addr": "10.0.0.3:80", "weight": 7}"#,
    );
    wait_for("weight change", || {
        peers(&list).contains(&("10.0.0.3:80".into(), 7))
    });
    // zone and priority ride in the JSON value; a change of either is a remove + add
    put(
        &url,
        "/svc/api/c",
        r#"{"addr": "10.0.0.3:80", "weight": 7, "zone": "us-east-1b", "priority": 1}"#,
    );
    wait_for("zone and priority", || {
        list.introspect().peers.iter().any(|p| {
            p.id == "10.0.0.3:80"
                && p.weight == 7
                && p.zone.as_deref() == Some("us-east-1b")
                && p.priority == 1
        })
    });
    put(
        &url,
        "/svc/api/bad",
        r#"{"addr": "10.0.0.9:80", "priority": -1}"#,
    );
    wait_for("bad priority reported", || {
        binding
            .last_error()
            .is_some_and(|e| e.to_string().contains("bad priority"))
    });
    delete(&url, "/svc/api/bad");
    put(
        &url,
        "/svc/api/c",
        r#"{"addr": "10.0.0.3:80", "weight": 7}"#,
    );
    wait_for("zone and priority dropped", || {
        list.introspect()
            .peers
            .iter()
            .any(|p| p.id == "10.0.0.3:80" && p.zone.is_none() && p.priority == 0)
    });

    // a bad value is reported and left out; the rest stays
    put(&url, "/svc/api/bad", "not a peer");
    wait_for("bad value reported", || {
        binding.last_error().is_some_and(|e| {
            e.code() == ErrorCode::SourceFailed && e.to_string().contains("/svc/api/bad")
        })
    });
    delete(&url, "/svc/api/bad");
    let before_kill = want(&[("10.0.0.2:80", 1), ("10.0.0.3:80", 7), ("10.0.0.4:80", 2)]);
    wait_for("settled", || peers(&list) == before_kill);

    // etcd killed: keep the last good set, report the failure
    etcd.kill();
    wait_for("disconnect reported", || binding.last_error().is_some());
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        peers(&list),
        before_kill,
        "last good set kept while etcd is down"
    );

    // restarted (same data, same ports): the watch resumes; changes are seen
    let etcd2 = Etcd::start(dir.path(), etcd.client_port, etcd.peer_port);
    let t0 = Instant::now(); // etcd answers again
    drop(etcd);
    put(&url, "/svc/api/e", "10.0.0.5:80");
    delete(&url, "/svc/api/10.0.0.2:80");
    wait_for("resumed", || {
        peers(&list) == want(&[("10.0.0.3:80", 7), ("10.0.0.4:80", 2), ("10.0.0.5:80", 1)])
    });
    let took = t0.elapsed();
    eprintln!(
        "etcd: restarted etcd ready -> changes made after it in the list: {took:?} (retry 100 ms)"
    );
    wait_for("error cleared", || binding.last_error().is_none());
    put(&url, "/svc/api/f", "10.0.0.6:80");
    wait_for("after restart", || peers(&list).len() == 4);

    // no duplicate or lost updates: the list never refused an add or a remove
    let events = events.lock().unwrap();
    for e in events.iter() {
        if let UpdaterEvent::Error(err) = e {
            assert!(
                !matches!(
                    err.code(),
                    ErrorCode::PeerAlreadyInList | ErrorCode::PeerNotInList
                ),
                "duplicate/lost update: {err}"
            );
        }
    }
    let adds_of_5 = events
        .iter()
        .filter(|e| matches!(e, UpdaterEvent::Applied { added, .. } if added.iter().any(|p| p.id == "10.0.0.5:80")))
        .count();
    assert_eq!(adds_of_5, 1, "10.0.0.5:80 added exactly once");
    binding.stop().unwrap();
    drop(etcd2);
}

#[test]
fn etcd_bad_arguments() {
    assert_eq!(
        EtcdUpdater::new(Vec::<String>::new(), "/p/")
            .err()
            .unwrap()
            .code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        EtcdUpdater::new(["http://127.0.0.1:1"], "")
            .err()
            .unwrap()
            .code(),
        ErrorCode::InvalidArgument
    );
}
