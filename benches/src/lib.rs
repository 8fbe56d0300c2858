//! Support for peerlb's benchmarks (`make bench`).
//!
//! * [`MutexRoundRobin`] — the baseline every strategy is compared with in the same run:
//!   round-robin written the obvious way, a mutex around a `Vec` of peers.
//! * [`run_on_threads`] — runs an operation `iters` times split over N threads and returns
//!   the wall time, for criterion's `iter_custom` (per-op time = wall time / total ops,
//!   i.e. throughput).
//! * [`summary`] — turns criterion's `target/criterion/**/new/estimates.json` into
//!   `target/bench/summary.md`, together with the other surfaces' `target/bench/*.md`
//!   fragments (see `benches/README.md`).
#![warn(missing_docs)]

use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub mod summary;

/// Peer counts every strategy is benchmarked at.
pub const PEER_COUNTS: [usize; 3] = [10, 100, 1000];

/// Thread counts every strategy is benchmarked at.
pub const THREAD_COUNTS: [usize; 2] = [1, 2];

/// The benchmark function id of the mutex baseline.
pub const BASELINE: &str = "mutex-baseline";

/// The criterion group for `peers` peers, e.g. `"choose+finish, 100 peers"`.
pub fn group_name(peers: usize) -> String {
    format!("choose+finish, {peers} peers")
}

/// The criterion parameter for a thread count: `"1 thread"`, `"2 threads"`.
pub fn threads_label(threads: usize) -> String {
    if threads == 1 {
        "1 thread".to_owned()
    } else {
        format!("{threads} threads")
    }
}

/// `n` distinct peer ids that look like real ones (`10.0.x.y:8080`).
pub fn peer_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.0.{}.{}:8080", i / 256, i % 256))
        .collect()
}

/// The baseline: a round-robin list written the obvious way — one mutex around a `Vec` of
/// peers with their pending counts and a cursor. `choose` locks, picks, increments the
/// peer's pending count; `finish` locks and decrements it.
///
/// ```text
/// let i = list.choose().unwrap();
/// // ... send to list.id(i) ...
/// list.finish(i);
/// ```
#[derive(Debug)]
pub struct MutexRoundRobin {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    peers: Vec<BaselinePeer>,
    cursor: usize,
}

#[derive(Debug)]
struct BaselinePeer {
    id: String,
    pending: usize,
}

impl MutexRoundRobin {
    /// A list of `ids`, cursor on the first.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> MutexRoundRobin {
        let peers = ids
            .into_iter()
            .map(|id| BaselinePeer {
                id: id.into(),
                pending: 0,
            })
            .collect();
        MutexRoundRobin {
            inner: Mutex::new(Inner { peers, cursor: 0 }),
        }
    }

    /// The next peer's index (its pending count goes up), or `None` for an empty list.
    #[inline]
    pub fn choose(&self) -> Option<usize> {
        let mut inner = self.inner.lock().unwrap();
        let n = inner.peers.len();
        if n == 0 {
            return None;
        }
        let i = inner.cursor;
        inner.cursor = if i + 1 == n { 0 } else { i + 1 };
        inner.peers[i].pending += 1;
        Some(i)
    }

    /// Ends a request to the peer at `index` (its pending count goes down).
    #[inline]
    pub fn finish(&self, index: usize) {
        let mut inner = self.inner.lock().unwrap();
        let peer = &mut inner.peers[index];
        peer.pending = peer.pending.saturating_sub(1);
    }

    /// The id of the peer at `index`.
    pub fn id(&self, index: usize) -> String {
        self.inner.lock().unwrap().peers[index].id.clone()
    }

    /// The pending count of the peer at `index`.
    pub fn pending(&self, index: usize) -> usize {
        self.inner.lock().unwrap().peers[index].pending
    }
}

/// Runs `op` `iters` times in total, split over `threads` threads, and returns the wall
/// time from the moment all threads are released (a barrier) until the last one is done.
///
/// With `threads == 1` the loop runs on the calling thread (no spawn). Otherwise threads
/// are spawned for this call, wait on a barrier, and do `iters / threads` operations each
/// (the first few one more when it does not divide). Dividing the result by `iters` gives
/// time per operation as throughput: total wall time / total operations.
pub fn run_on_threads<F: Fn() + Sync>(threads: usize, iters: u64, op: &F) -> Duration {
    assert!(threads > 0, "run_on_threads needs at least one thread");
    if threads == 1 {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads + 1);
    let t = threads as u64;
    let mut start = None;
    thread::scope(|s| {
        for k in 0..t {
            let share = iters / t + u64::from(k < iters % t);
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..share {
                    op();
                }
            });
        }
        barrier.wait();
        start = Some(Instant::now());
    });
    start.expect("set inside the scope").elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn baseline_cycles_and_counts_pending() {
        let list = MutexRoundRobin::new(["a", "b", "c"]);
        let picks: Vec<usize> = (0..4).map(|_| list.choose().unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        assert_eq!(list.id(2), "c");
        assert_eq!(list.pending(0), 2);
        list.finish(0);
        list.finish(0);
        list.finish(0); // one too many: stays at zero
        assert_eq!(list.pending(0), 0);
        assert_eq!(list.pending(1), 1);
    }

    #[test]
    fn baseline_empty_list_has_no_choice() {
        let list = MutexRoundRobin::new(Vec::<String>::new());
        assert_eq!(list.choose(), None);
    }

    #[test]
    fn run_on_threads_does_exactly_iters_operations() {
        for threads in [1, 2, 3] {
            for iters in [0, 1, 7, 1000] {
                let done = AtomicU64::new(0);
                run_on_threads(threads, iters, &|| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(done.into_inner(), iters, "{threads} threads, {iters} iters");
            }
        }
    }

    #[test]
    fn run_on_threads_really_uses_that_many_threads() {
        let ids = Mutex::new(std::collections::HashSet::new());
        run_on_threads(2, 100, &|| {
            ids.lock().unwrap().insert(thread::current().id());
        });
        let ids = ids.into_inner().unwrap();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&thread::current().id()));
    }

    #[test]
    fn labels_and_ids() {
        assert_eq!(group_name(100), "choose+finish, 100 peers");
        assert_eq!(threads_label(1), "1 thread");
        assert_eq!(threads_label(2), "2 threads");
        let ids = peer_ids(1000);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 1000);
        assert_eq!(ids[257], "10.0.1.1:8080");
    }
}
