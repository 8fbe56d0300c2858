//! Support for peerlb's benchmarks (`make bench`).
//!
//! * [`MutexRoundRobin`] — the baseline every strategy is compared with in the same run:
//!   round-robin written the obvious way, a mutex around a `Vec` of peers.
//! * [`run_on_threads`] — runs an operation `iters` times split over N threads and returns
//!   the wall time, for criterion's `iter_custom` (per-op time = wall time / total ops,
//!   i.e. throughput).
//! * [`compare`] — the comparison table: peerlb next to other libraries (tower in Rust,
//!   uhashring in Python, hashring and load-balancers in Node), measured in the same run.
//! * [`summary`] — turns criterion's `target/criterion/**/new/estimates.json` into
//!   `target/bench/summary.md`, together with the other surfaces' `target/bench/*.md`
//!   fragments (see `benches/README.md`).
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod compare;
pub mod summary;

/// The workspace's target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where the benchmarks leave the CPU time they measured beside criterion's wall time.
pub fn cpu_log_path() -> PathBuf {
    target_dir().join("bench").join(CPU_LOG_FILE)
}

/// File name of the CPU log inside `target/bench/`.
pub const CPU_LOG_FILE: &str = "rust-cpu.json";

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

/// Peers in the comparison with tower (`benches/vs_tower.rs`).
pub const TOWER_PEERS: usize = 100;

/// The criterion group of the comparison with tower.
pub const TOWER_GROUP: &str = "vs tower, 100 peers";

/// Function id of tower's `p2c::Balance` over `load::PendingRequests`.
pub const TOWER_PENDING: &str = "tower p2c PendingRequests";

/// Function id of tower's `p2c::Balance` over `load::PeakEwma`.
pub const TOWER_PEAK_EWMA: &str = "tower p2c PeakEwma";

/// Function id of a peerlb strategy in the comparison with tower, e.g.
/// `"peerlb two-random-choices"`.
pub fn peerlb_function(kind: peerlb::StrategyKind) -> String {
    format!("peerlb {kind}")
}

/// The pairs the comparison table shows: (peerlb strategy, the tower balancer doing the
/// same job). peerlb's goal is [`TOWER_GOAL`]× tower's speed.
pub const TOWER_PAIRS: [(peerlb::StrategyKind, &str); 2] = [
    (peerlb::StrategyKind::TwoRandomChoices, TOWER_PENDING),
    (peerlb::StrategyKind::PeakEwma, TOWER_PEAK_EWMA),
];

/// peerlb should pick at least this many times faster than tower at [`TOWER_PEERS`].
pub const TOWER_GOAL: f64 = 3.0;

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

/// How long a [`run_on_threads`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Wall time from the release of all threads until the last one finished.
    pub wall: Duration,
    /// CPU time the threads used for the ops, summed over the threads; `None` where the
    /// OS does not tell (it is read from Linux's `/proc/thread-self/schedstat`).
    pub cpu: Option<Duration>,
}

/// CPU time the calling thread has run so far (Linux: `/proc/thread-self/schedstat`, in
/// ns), or `None`.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn cpu_used<F: Fn()>(ops: u64, op: &F) -> Option<Duration> {
    let before = thread_cpu_time();
    for _ in 0..ops {
        op();
    }
    Some(thread_cpu_time()?.saturating_sub(before?))
}

/// Runs `op` `iters` times in total, split over `threads` threads, and returns the wall
/// time from the moment all threads are released (a barrier) until the last one is done,
/// plus the CPU time the threads used.
///
/// With `threads == 1` the loop runs on the calling thread (no spawn). Otherwise threads
/// are spawned for this call, wait on a barrier, and do `iters / threads` operations each
/// (the first few one more when it does not divide). Dividing the wall time by `iters`
/// gives time per operation as throughput: total wall time / total operations.
pub fn run_on_threads<F: Fn() + Sync>(threads: usize, iters: u64, op: &F) -> Timing {
    assert!(threads > 0, "run_on_threads needs at least one thread");
    if threads == 1 {
        let start = Instant::now();
        let cpu = cpu_used(iters, op);
        return Timing {
            wall: start.elapsed(),
            cpu,
        };
    }
    let barrier = Barrier::new(threads + 1);
    let t = threads as u64;
    let mut start = None;
    let cpu = thread::scope(|s| {
        let workers: Vec<_> = (0..t)
            .map(|k| {
                let share = iters / t + u64::from(k < iters % t);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    cpu_used(share, op)
                })
            })
            .collect();
        barrier.wait();
        start = Some(Instant::now());
        workers
            .into_iter()
            .map(|w| w.join().expect("benchmark op panicked"))
            .sum::<Option<Duration>>()
    });
    Timing {
        wall: start.expect("set inside the scope").elapsed(),
        cpu,
    }
}

/// CPU time per op gathered while criterion runs (criterion itself only sees wall time),
/// saved as `target/bench/rust-cpu.json` for the summary: a JSON array of
/// `{"group", "function", "parameter", "cpu_ns", "ops"}`. It covers every run criterion
/// made of a benchmark, warm-up included.
#[derive(Debug)]
pub struct CpuLog {
    entries: Mutex<BTreeMap<BenchKey, (u128, u64)>>,
}

/// (group, function, parameter).
type BenchKey = (String, String, String);

impl Default for CpuLog {
    fn default() -> CpuLog {
        CpuLog::new()
    }
}

impl CpuLog {
    /// Runs shorter than this are not recorded.
    pub const MIN_OPS: u64 = 1000;

    /// An empty log.
    pub const fn new() -> CpuLog {
        CpuLog {
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one run of `iters` ops of a benchmark. Ignored when the CPU time is unknown
    /// or the run is shorter than [`CpuLog::MIN_OPS`] (criterion's `--test` mode and its
    /// first warm-up runs: too short to mean anything).
    pub fn record(&self, group: &str, function: &str, parameter: &str, iters: u64, t: Timing) {
        let Some(cpu) = t.cpu.filter(|_| iters >= Self::MIN_OPS) else {
            return;
        };
        let key = (group.to_owned(), function.to_owned(), parameter.to_owned());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(key).or_insert((0, 0));
        entry.0 += cpu.as_nanos();
        entry.1 += iters;
    }

    /// Writes the log to `path`, replacing the entries of the benchmarks that ran and
    /// keeping the others already in the file (so a filtered `cargo bench` run keeps
    /// the rest).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut all: BTreeMap<BenchKey, Value> = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) {
                for item in items {
                    let field = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
                    if let (Some(g), Some(f), Some(p)) =
                        (field("group"), field("function"), field("parameter"))
                    {
                        all.insert((g, f, p), item);
                    }
                }
            }
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for ((g, f, p), (cpu_ns, ops)) in entries.iter() {
            let item = json!({
                "group": g, "function": f, "parameter": p,
                "cpu_ns": *cpu_ns as f64, "ops": ops,
            });
            all.insert((g.clone(), f.clone(), p.clone()), item);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let items: Vec<Value> = all.into_values().collect();
        std::fs::write(path, serde_json::to_string_pretty(&items)?)
    }
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
        let timing = run_on_threads(2, 100, &|| {
            ids.lock().unwrap().insert(thread::current().id());
        });
        assert!(timing.wall > Duration::ZERO);
        let ids = ids.into_inner().unwrap();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&thread::current().id()));
    }

    #[test]
    fn cpu_log_merges_with_the_file() {
        let dir = std::env::temp_dir().join(format!("peerlb-cpulog-{}", std::process::id()));
        let path = dir.join("rust-cpu.json");
        let _ = std::fs::remove_dir_all(&dir);
        let t = |ns| Timing {
            wall: Duration::from_nanos(ns),
            cpu: Some(Duration::from_nanos(ns)),
        };
        let first = CpuLog::new();
        first.record("g", "a", "1 thread", 1000, t(100));
        first.record("g", "b", "1 thread", 1000, t(300));
        first.record("g", "b", "1 thread", 1000, t(100));
        first.record("g", "b", "1 thread", 999, t(100_000)); // too short: ignored
        first.record("g", "c", "1 thread", 1000, Timing { cpu: None, ..t(5) });
        first.save(&path).unwrap();
        let second = CpuLog::new();
        second.record("g", "a", "1 thread", 1000, t(7));
        second.save(&path).unwrap();
        let items: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let items = items.as_array().unwrap();
        assert_eq!(items.len(), 2, "{items:?}"); // c had no CPU time
        assert_eq!(items[0]["function"], "a");
        assert_eq!(items[0]["cpu_ns"], 7.0); // replaced by the second run
        assert_eq!(items[1]["cpu_ns"], 400.0); // kept from the first, summed over runs
        assert_eq!(items[1]["ops"], 2000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn labels_and_ids() {
        assert_eq!(group_name(100), "choose+finish, 100 peers");
        assert!(TOWER_GROUP.contains(&format!(" {TOWER_PEERS} peers")));
        assert_eq!(
            peerlb_function(peerlb::StrategyKind::PeakEwma),
            "peerlb peak-ewma"
        );
        assert_eq!(threads_label(1), "1 thread");
        assert_eq!(threads_label(2), "2 threads");
        let ids = peer_ids(1000);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 1000);
        assert_eq!(ids[257], "10.0.1.1:8080");
    }
}
