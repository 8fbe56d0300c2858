//! `Upstream`: go-loadbalancer's numbers step by step, and the TCP probe on real sockets.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerlb::{ErrorCode, HealthCheck, Upstream, UpstreamOptions};

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
    u.reconcile(["one", "two", "three"]);
    assert_eq!(u.pick().unwrap(), "two");
    u.reconcile(["one", "two", "four"]);
    assert_eq!(u.pick().unwrap(), "four");
    u.reconcile(["five", "six", "four"]);
    assert_eq!(u.backends(), ["four", "five", "six"]);
    assert_eq!(picks(&u, 3), ["four", "five", "six"]);
    for want in [0.0, -1.0] {
        u.down("four");
        assert_eq!(u.score("four"), Some(want));
    }
    // (Go starts "four" at 1 too; its comments count from 3 but the picks are the same.)
    assert_eq!(picks(&u, 2), ["five", "six"]);
    u.reconcile(["five", "six", "four"]);
    assert_eq!(u.score("four"), Some(-1.0), "kept its score");
    assert_eq!(picks(&u, 2), ["five", "six"]);
    u.reconcile(Vec::<String>::new());
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
    let u = Upstream::new(["ok", "bad"], check, UpstreamOptions::default().manual()).unwrap();
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
        ..UpstreamOptions::default().manual()
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

#[test]
fn slow_checks_count_as_failures_and_are_not_piled_up() {
    let calls = Arc::new(Mutex::new(0usize));
    let c = calls.clone();
    let check = HealthCheck::blocking(move |b| {
        *c.lock().unwrap() += 1;
        if b == "slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        Ok(())
    });
    let o = UpstreamOptions {
        health_check_timeout: Duration::from_millis(200),
        ..UpstreamOptions::default().manual()
    };
    let u = Upstream::new(["slow", "fine"], check, o).unwrap();
    let t0 = Instant::now();
    u.check_now();
    assert!(
        t0.elapsed() < Duration::from_millis(1400),
        "round waited for the slow check"
    );
    assert_eq!(u.score("slow"), Some(0.0));
    assert_eq!(u.score("fine"), Some(2.0));
    // The slow check is still running: not started again, counted as failed.
    u.check_now();
    assert_eq!(u.score("slow"), Some(-1.0));
    assert_eq!(u.score("fine"), Some(3.0));
    assert_eq!(*calls.lock().unwrap(), 3);
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
        health_check_timeout: Duration::from_millis(30),
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
    let u =
        Arc::new(Upstream::new(["a", "b"], check, UpstreamOptions::default().manual()).unwrap());
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
            t0.elapsed() < Duration::from_secs(5),
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
        health_check_timeout: Duration::from_millis(50),
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
