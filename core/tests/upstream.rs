//! `Upstream`: go-loadbalancer's numbers step by step, and the TCP probe on real sockets.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use peerlb::{ErrorCode, HealthCheck, Upstream, UpstreamOptions};

/// Manual rounds with a check timeout of seconds: a check that is meant to pass never
/// misses it on a loaded machine.
fn patient() -> UpstreamOptions {
    UpstreamOptions {
        health_check_timeout: Duration::from_secs(5),
        ..UpstreamOptions::default().manual()
    }
}

/// Runs `f` on its own thread and returns its result, failing the test when it does not
/// return within 10 s.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} did not return within 10 s"))
}

fn manual(backends: &[&str]) -> Upstream {
    Upstream::new(
        backends.iter().copied(),
        HealthCheck::blocking(|_| Ok(())),
        UpstreamOptions::default().manual(),
    )
    .unwrap()
}

fn picks(u: &Upstream, n: usize) -> Vec<String> {
    (0..n).map(|_| u.pick().unwrap()).collect()
}

#[test]
fn empty() {
    let u = manual(&[]);
    let e = u.pick().unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoPeerAvailable);
    assert_eq!(e.to_string(), "no upstreams available");
}

#[test]
fn round_robin() {
    let u = manual(&["one", "two", "three"]);
    assert_eq!(picks(&u, 4), ["one", "two", "three", "one"]);
}

#[test]
fn down_up() {
    // go-loadbalancer TestDownUp, with the scores checked after every step.
    let u = manual(&["one", "two", "three"]);
    assert_eq!(u.pick().unwrap(), "one");
    u.down("two");
    assert_eq!(u.score("two"), Some(0.0));
    u.down("two");
    assert_eq!(u.score("two"), Some(-1.0));
    u.down("three");
    assert_eq!(u.score("three"), Some(0.0));
    assert_eq!(picks(&u, 3), ["three", "one", "three"]);
    u.down("three");
    assert_eq!(u.score("three"), Some(-1.0));
    for want in [0.0, 1.0, 2.0, 3.0, 3.0] {
        u.up("two");
        assert_eq!(u.score("two"), Some(want));
    }
    assert_eq!(picks(&u, 3), ["one", "two", "one"]);
    for want in [2.0, 1.0, 0.0, -1.0] {
        u.down("two");
        assert_eq!(u.score("two"), Some(want));
    }
    assert_eq!(u.pick().unwrap(), "one");
    for want in [-2.0, -3.0, -3.0] {
        u.down("two");
        assert_eq!(u.score("two"), Some(want));
    }
    assert_eq!(u.pick().unwrap(), "one");
    for want in [-2.0, -1.0, 0.0] {
        u.up("two");
        assert_eq!(u.score("two"), Some(want));
    }
    assert_eq!(u.pick().unwrap(), "two");
    u.up("nobody"); // unknown backends are ignored
    u.down("nobody");
    assert_eq!(u.backends(), ["one", "two", "three"]);
}

#[test]
fn all_negative_is_an_error_and_recovers() {
    let u = manual(&["a", "b"]);
    for _ in 0..2 {
        u.down("a");
        u.down("b");
    }
    assert_eq!(u.pick().unwrap_err().code(), ErrorCode::NoPeerAvailable);
    u.up("b");
    assert_eq!(picks(&u, 2), ["b", "b"]);
}

#[test]
fn reconcile() {
    // go-loadbalancer TestReconcile.
    let u = manual(&["one", "two", "three"]);
    assert_eq!(u.pick().unwrap(), "one");
    u.reconcile(["one", "two", "three"]).unwrap();
    assert_eq!(u.pick().unwrap(), "two");
    u.reconcile(["one", "two", "four"]).unwrap();
    assert_eq!(u.pick().unwrap(), "four");
    u.reconcile(["five", "six", "four"]).unwrap();
    assert_eq!(u.backends(), ["four", "five", "six"]);
    assert_eq!(picks(&u, 3), ["four", "five", "six"]);
    for want in [0.0, -1.0] {
        u.down("four");
        assert_eq!(u.score("four"), Some(want));
    }
    // (Go starts "four" at 1 too; its comments count from 3 but the picks are the same.)
    assert_eq!(picks(&u, 2), ["five", "six"]);
    u.reconcile(["five", "six", "four"]).unwrap();
    assert_eq!(u.score("four"), Some(-1.0), "kept its score");
    assert_eq!(picks(&u, 2), ["five", "six"]);
    u.reconcile(Vec::<String>::new()).unwrap();
    assert_eq!(u.pick().unwrap_err().to_string(), "no upstreams available");
}

/// A blocking check whose answers the test sets per backend.
fn scripted() -> (HealthCheck, Arc<Mutex<HashMap<String, bool>>>) {
    let answers: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
    let a = answers.clone();
    let check = HealthCheck::blocking(move |b| {
        if *a.lock().unwrap().get(b).unwrap_or(&true) {
            Ok(())
        } else {
            Err(format!("{b} is down"))
        }
    });
    (check, answers)
}

#[test]
fn checks_move_scores_step_by_step_and_clamp() {
    let (check, answers) = scripted();
    let u = Upstream::new(["ok", "bad"], check, patient()).unwrap();
    answers.lock().unwrap().insert("bad".into(), false);
    let mut seen = Vec::new();
    for _ in 0..6 {
        u.check_now();
        seen.push((u.score("ok").unwrap(), u.score("bad").unwrap()));
    }
    assert_eq!(
        seen,
        [
            (2.0, 0.0),
            (3.0, -1.0),
            (3.0, -2.0),
            (3.0, -3.0),
            (3.0, -3.0),
            (3.0, -3.0)
        ]
    );
    assert_eq!(picks(&u, 3), ["ok", "ok", "ok"]);
    answers.lock().unwrap().insert("bad".into(), true);
    let mut back = Vec::new();
    for _ in 0..4 {
        u.check_now();
        back.push(u.score("bad").unwrap());
    }
    assert_eq!(back, [-2.0, -1.0, 0.0, 1.0]);
    assert_eq!(picks(&u, 2), ["bad", "ok"]);
}

#[test]
fn custom_scores_and_deltas() {
    let (check, answers) = scripted();
    let o = UpstreamOptions {
        initial_score: 0.5,
        low_score: -1.0,
        high_score: 2.0,
        fail_delta: -0.75,
        success_delta: 0.5,
        ..patient()
    };
    let u = Upstream::new(["x"], check, o).unwrap();
    answers.lock().unwrap().insert("x".into(), false);
    let mut s = Vec::new();
    for _ in 0..3 {
        u.check_now();
        s.push(u.score("x").unwrap());
    }
    assert_eq!(s, [-0.25, -1.0, -1.0]);
    assert!(u.pick().is_err());
    answers.lock().unwrap().insert("x".into(), true);
    let mut s = Vec::new();
    for _ in 0..7 {
        u.check_now();
        s.push(u.score("x").unwrap());
    }
    assert_eq!(s, [-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0]);
}

#[test]
fn initial_score_outside_bounds_is_clamped_only_by_the_crossing_move() {
    // As in Go: up caps at high, down caps at low; nothing else clamps.
    let o = UpstreamOptions {
        initial_score: 5.0,
        ..UpstreamOptions::default().manual()
    };
    let u = Upstream::new(["a", "b"], HealthCheck::TcpProbe, o).unwrap();
    u.down("a");
    assert_eq!(u.score("a"), Some(4.0));
    u.up("b");
    assert_eq!(u.score("b"), Some(3.0));
}

#[test]
fn panicking_checks_count_as_failures() {
    let check = HealthCheck::blocking(|b| match b {
        "panics" => panic!("boom"),
        "errs" => Err("no".into()),
        _ => Ok(()),
    });
    let o = UpstreamOptions {
        health_check_timeout: Duration::from_secs(10),
        ..UpstreamOptions::default().manual()
    };
    let u = Upstream::new(["panics", "errs", "fine"], check, o).unwrap();
    u.check_now();
    u.check_now();
    assert_eq!(
        u.scores(),
        [
            ("panics".into(), -1.0),
            ("errs".into(), -1.0),
            ("fine".into(), 3.0)
        ]
    );
}

/// A gate a check waits at; opened by the test, or when dropped (a failing test must not
/// leave a check blocked).
#[derive(Default)]
struct Gate(Mutex<bool>, Condvar);

impl Gate {
    fn wait(&self) {
        let mut open = self.0.lock().unwrap();
        while !*open {
            open = self.1.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }
}

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[test]
fn slow_checks_count_as_failures_and_are_not_piled_up() {
    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let gate = Arc::new(Gate::default());
    let _opens = OpenOnDrop(gate.clone());
    let (c, g) = (calls.clone(), gate.clone());
    let check = HealthCheck::blocking(move |b| {
        *c.lock().unwrap().entry(b.to_owned()).or_default() += 1;
        if b == "slow" {
            g.wait(); // until the test opens the gate
        }
        Ok(())
    });
    let o = UpstreamOptions {
        health_check_timeout: Duration::from_secs(1),
        ..UpstreamOptions::default().manual()
    };
    let u = Arc::new(Upstream::new(["slow", "fine"], check, o).unwrap());
    let count = |b: &str| calls.lock().unwrap().get(b).copied().unwrap_or(0);
    // A round ends at the timeout, not when the slow check does (it waits for the test).
    let round = u.clone();
    bounded("a round with a hung check", move || round.check_now());
    assert_eq!(u.score("slow"), Some(0.0));
    assert_eq!(u.score("fine"), Some(2.0));
    // The slow check is still running: not started again, counted as failed.
    let round = u.clone();
    bounded("a second round", move || round.check_now());
    assert_eq!(u.score("slow"), Some(-1.0));
    assert_eq!(u.score("fine"), Some(3.0));
    assert_eq!((count("slow"), count("fine")), (1, 2));
    // Once it ends, the backend is checked again.
    gate.open();
    let t0 = Instant::now();
    while count("slow") < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never checked again"
        );
        let round = u.clone();
        bounded("a round", move || round.check_now());
    }
}

/// Reports, when dropped, whether the drop ran on a runtime async worker.
struct DropSite(mpsc::Sender<bool>);

impl Drop for DropSite {
    fn drop(&mut self) {
        let _ = self.0.send(peerlb::runtime::on_worker_thread());
    }
}

#[test]
fn blocking_checks_and_their_drop_run_off_the_async_workers() {
    let (tx, rx) = mpsc::channel();
    let site = DropSite(tx);
    let ran_on_worker = Arc::new(Mutex::new(Vec::new()));
    let seen = ran_on_worker.clone();
    let check = HealthCheck::blocking(move |_| {
        let _keep = &site; // dropped with the check
        seen.lock()
            .unwrap()
            .push(peerlb::runtime::on_worker_thread());
        Ok(())
    });
    let u = Upstream::new(["a", "b"], check, patient()).unwrap();
    // The last handle goes inside a task on the runtime, as when a check task outlives
    // the Upstream: the check (a C check frees its user data then) is dropped off it.
    peerlb::runtime::handle().spawn(async move {
        u.check_now_async().await;
        drop(u);
    });
    let dropped_on_worker = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the check was never dropped");
    assert_eq!(*ran_on_worker.lock().unwrap(), [false, false]);
    assert!(
        !dropped_on_worker,
        "the check was dropped on an async worker"
    );
}

#[test]
fn async_checks_and_timeouts() {
    let check = HealthCheck::asynchronous(|b: String| async move {
        match b.as_str() {
            "hangs" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            "err" => Err("no".into()),
            _ => Ok(()),
        }
    });
    let o = UpstreamOptions {
        health_check_timeout: Duration::from_secs(1),
        ..UpstreamOptions::default().manual()
    };
    let u = Upstream::new(["hangs", "err", "ok"], check, o).unwrap();
    u.check_now();
    assert_eq!(
        u.scores(),
        [
            ("hangs".into(), 0.0),
            ("err".into(), 0.0),
            ("ok".into(), 2.0)
        ]
    );
    u.check_now(); // the hung future was dropped at the timeout, so it is checked again
    assert_eq!(u.score("hangs"), Some(-1.0));
}

#[test]
fn checks_may_reenter_the_upstream() {
    let slot: Arc<Mutex<Option<Arc<Upstream>>>> = Arc::default();
    let s = slot.clone();
    let check = HealthCheck::blocking(move |b| {
        let u = s.lock().unwrap().clone().unwrap();
        let _ = u.pick();
        let _ = u.scores();
        if b == "a" {
            u.up("b"); // no lock is held while a check runs
        }
        Ok(())
    });
    let u = Arc::new(Upstream::new(["a", "b"], check, patient()).unwrap());
    *slot.lock().unwrap() = Some(u.clone());
    u.check_now();
    assert_eq!(u.score("a"), Some(2.0));
    assert_eq!(u.score("b"), Some(3.0));
    *slot.lock().unwrap() = None;
}

#[test]
fn bad_options() {
    let base = UpstreamOptions::default();
    for o in [
        UpstreamOptions {
            low_score: 0.5,
            ..base
        },
        UpstreamOptions {
            high_score: -0.5,
            ..base
        },
        UpstreamOptions {
            low_score: -1.0,
            high_score: -2.0,
            ..base
        },
        UpstreamOptions {
            fail_delta: 0.0,
            ..base
        },
        UpstreamOptions {
            success_delta: 0.0,
            ..base
        },
        UpstreamOptions {
            success_delta: f64::NAN,
            ..base
        },
        UpstreamOptions {
            initial_score: f64::INFINITY,
            ..base
        },
        UpstreamOptions {
            health_check_timeout: Duration::ZERO,
            ..base
        },
        UpstreamOptions {
            health_check_interval: Some(Duration::ZERO),
            ..base
        },
    ] {
        let e = Upstream::new(["a"], HealthCheck::TcpProbe, o).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{o:?}");
    }
}

fn wait_score(u: &Upstream, b: &str, pred: impl Fn(f64) -> bool) -> Duration {
    let t0 = Instant::now();
    while !pred(u.score(b).unwrap()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{b}: {:?}",
            u.scores()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

#[test]
fn tcp_probe_with_real_sockets() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let o = UpstreamOptions {
        health_check_interval: Some(Duration::from_millis(20)),
        health_check_timeout: Duration::from_secs(1),
        ..UpstreamOptions::default()
    };
    let u = Upstream::new([addr.clone(), dead_addr.clone()], HealthCheck::TcpProbe, o).unwrap();
    wait_score(&u, &addr, |s| s == 3.0);
    wait_score(&u, &dead_addr, |s| s == -3.0);
    assert_eq!(picks(&u, 3), [addr.clone(), addr.clone(), addr.clone()]);
    drop(l);
    wait_score(&u, &addr, |s| s < 0.0);
    assert!(u.pick().is_err());
    let _l2 = TcpListener::bind(&addr).unwrap();
    wait_score(&u, &addr, |s| s >= 0.0);
    assert_eq!(u.pick().unwrap(), addr);
    u.shutdown();
    let frozen = u.scores();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(u.scores(), frozen, "no checks after shutdown");
    u.shutdown();
}
