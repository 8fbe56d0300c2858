//! With both of the library runtime's async workers blocked (by any job: a FIFO read in
//! an updater did it before), a `choose` still ends at its deadline or as soon as a peer
//! comes, from blocking and async callers; once the workers are free, timers and updaters
//! go on. One test in its own binary: it stalls the runtime of its process on purpose.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use peerlb::runtime::{self, RUNTIME_THREADS};
use peerlb::updater::FileUpdater;
use peerlb::{Clock, ConnectionStatus, ErrorCode, Later, ListOptions, PeerList, Request};

mod common;

/// A gate: closed until opened, with a count of who arrived at it.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>, // (arrived, open)
    changed: Condvar,
}

impl Gate {
    /// Blocks this thread until the gate opens.
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        self.changed.notify_all();
        while !s.1 {
            s = self.changed.wait(s).unwrap();
        }
    }

    /// Waits until `n` have arrived; false if they did not within `limit`.
    fn arrived(&self, n: usize, limit: Duration) -> bool {
        let s = self.state.lock().unwrap();
        let (s, _) = self
            .changed
            .wait_timeout_while(s, limit, |s| s.0 < n)
            .unwrap();
        s.0 >= n
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// Both runtime workers, each blocked in a job until dropped (also when the test fails,
/// so the process is never left stalled).
struct Occupied(Arc<Gate>);

impl Drop for Occupied {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn occupy_the_workers() -> Occupied {
    let gate = Arc::new(Gate::default());
    for _ in 0..RUNTIME_THREADS {
        let g = gate.clone();
        // Blocking inside a future is the point: each job holds one worker.
        runtime::handle().spawn(async move { g.pass() });
    }
    let occupied = Occupied(gate.clone());
    // Two jobs blocked at once are on two workers: there are no others.
    assert!(
        gate.arrived(RUNTIME_THREADS, Duration::from_secs(10)),
        "the jobs never held both workers"
    );
    occupied
}

/// Runs `f` on its own thread and returns its result, failing the test when it does not
/// return within 10 s (a choose that hangs must fail the test, not stall it).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} did not return within 10 s"))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn choose_ends_on_time_while_every_worker_is_blocked_and_the_runtime_resumes_after() {
    // Started before the stall: a file updater and a timer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers");
    std::fs::write(&path, "a:1\n").unwrap();
    let followed = PeerList::new(ListOptions::default()).unwrap();
    let binding = FileUpdater::new(&path)
        .poll_interval(Duration::from_millis(10))
        .bind(&followed);
    binding.start().unwrap();
    let fired = Arc::new(AtomicBool::new(false));

    let occupied = occupy_the_workers();
    // The runtime is stalled indeed: a fresh task does not run.
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    runtime::handle().spawn(async move { r.store(true, Ordering::SeqCst) });
    thread::sleep(Duration::from_millis(200));
    assert!(
        !ran.load(Ordering::SeqCst),
        "a task ran on a blocked runtime"
    );

    let idle = PeerList::new(ListOptions::default()).unwrap();
    idle.start().unwrap();

    // Blocking: choose_now(..).wait() (what choose and the bindings do).
    let waiter = idle.clone();
    let (took, code) = bounded("choose_now(..).wait()", move || {
        let t0 = Instant::now();
        let request = Request::new().with_timeout(Duration::from_millis(200));
        let err = waiter.choose_now(&request).wait().unwrap_err();
        (t0.elapsed(), err.code())
    });
    assert_eq!(code, ErrorCode::Timeout);
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Async, under an executor of the caller's (here: blocking on the future).
    let waiter = idle.clone();
    let (took, code) = bounded("choose_async", move || {
        let t0 = Instant::now();
        let request = Request::new().with_timeout(Duration::from_millis(200));
        let err = Later::new(async move { waiter.choose_async(&request).await })
            .wait()
            .unwrap_err();
        (t0.elapsed(), err.code())
    });
    assert_eq!(code, ErrorCode::Timeout);
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // A waiting choose wakes when a peer comes, without the runtime.
    let transport = common::Manual::new(None);
    let list = PeerList::new(ListOptions::default().transport(transport.clone())).unwrap();
    list.update(["b:1"], None::<&str>).unwrap();
    list.start().unwrap();
    let reporter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        transport.set("b:1", ConnectionStatus::Available)
    });
    let chooser = list.clone();
    let (took, peer) = bounded("a waiting choose", move || {
        let t0 = Instant::now();
        let patient = Request::new().with_timeout(Duration::from_secs(30));
        let choice = chooser.choose_now(&patient).wait().unwrap();
        (t0.elapsed(), choice.peer().to_string())
    });
    assert_eq!(peer, "b:1");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(reporter.join().unwrap());

    // Work that needs the runtime, asked for during the stall.
    let f = fired.clone();
    let clock = Clock::real();
    clock.call_at(
        clock.now() + Duration::from_millis(20),
        Box::new(move || f.store(true, Ordering::SeqCst)),
    );
    // A rename: a poll never sees the file half-written.
    let fresh = dir.path().join("peers.new");
    std::fs::write(&fresh, "c:1\n").unwrap();
    std::fs::rename(&fresh, &path).unwrap();

    drop(occupied);
    wait_for("the task spawned during the stall", || {
        ran.load(Ordering::SeqCst)
    });
    wait_for("the timer", || fired.load(Ordering::SeqCst));
    wait_for("the file updater", || {
        followed.peer_status("c:1").is_some() && followed.peer_status("a:1").is_none()
    });
    binding.stop().unwrap();
}
