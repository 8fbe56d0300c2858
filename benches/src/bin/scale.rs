//! `scale`: what a list's change path costs at 1 000 to 100 000 peers, in one run, and
//! whether it meets its targets. Writes `target/bench/scale.md` (a fragment of the bench
//! summary) and prints it.
//!
//! Measured, every strategy unless said otherwise (ids of 16 bytes, always-available
//! peers, `shuffle(false)`):
//! * `update` of N peers into a running, empty list, for N = 1 000, 10 000, 100 000, and
//!   the time per peer at 100 000 against 1 000 (target: within 2×);
//! * `start()` of a list of 100 000 uninitialized peers;
//! * removing 1 000 and adding 1 000 peers in one `update` of a 10 000-peer list;
//! * memory per peer: the growth of the resident set of a fresh process while it builds
//!   and starts a 100 000-peer list, divided by 100 000, with the list's metrics off (the
//!   list's own cost; target: 256 B) and on (the default; `scale --memory STRATEGY on|off`
//!   runs in a child process);
//! * the slowest `choose` + `finish` on another thread while those updates run, as wall
//!   time and as the chooser thread's own CPU time (wall time includes any moment the OS
//!   took the core away; CPU time does not).
//!
//! * with `subset(50)` (deterministic subsetting as a list option, `round-robin`): the
//!   first `update` offering N peers, an update that takes one offered peer out and
//!   puts one in (what an updater sends for one replaced backend), and the 1 000/1 000
//!   churn, at N = 10 000 and 100 000 offered peers (`scale --subset` runs only these).
//!
//! Each timing is the median of several runs. Speed is never asserted in tests; this
//! table's verdicts are the record.

use std::fmt::Write as _;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::target_dir;

/// Targets (Rust, this run).
const UPDATE_10K_MS: f64 = 10.0;
const UPDATE_100K_MS: f64 = 150.0;
const START_100K_MS: f64 = 200.0;
const CHURN_MS: f64 = 3.0;
const PER_PEER_RATIO: f64 = 2.0;
const BYTES_PER_PEER: f64 = 256.0;
const CHOOSE_WORST_US: f64 = 100.0;

/// `n` distinct ids of exactly 16 bytes, starting at `from`.
fn ids(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("peer-{i:06}:8080"))
        .collect()
}

fn new_list(strategy: &str) -> PeerList {
    new_list_with_metrics(strategy, true)
}

/// A list of `strategy`, with its metrics on (the default) or off.
fn new_list_with_metrics(strategy: &str, metrics: bool) -> PeerList {
    PeerList::new(
        ListOptions::default()
            .strategy_name(strategy)
            .expect("a known strategy")
            .shuffle(false)
            .seed(1)
            .metrics(metrics),
    )
    .expect("valid options")
}

/// This thread's CPU time (a vDSO-free but cheap system call, unlike `/proc` reads).
fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median time of `update(add n)` into a running, empty list.
fn update_into_running(strategy: &str, n: usize, runs: usize) -> f64 {
    let add = ids(0, n);
    median(
        (0..runs)
            .map(|_| {
                let list = new_list(strategy);
                list.start().unwrap();
                let t = Instant::now();
                list.update(&add, None::<&str>).unwrap();
                let d = ms(t.elapsed());
                drop(list);
                d
            })
            .collect(),
    )
}

/// Median time of `start()` with `n` uninitialized peers.
fn start_uninitialized(strategy: &str, n: usize, runs: usize) -> f64 {
    let add = ids(0, n);
    median(
        (0..runs)
            .map(|_| {
                let list = new_list(strategy);
                list.update(&add, None::<&str>).unwrap();
                let t = Instant::now();
                list.start().unwrap();
                ms(t.elapsed())
            })
            .collect(),
    )
}

/// Median time of removing 1 000 and adding 1 000 in one update of a 10 000-peer list.
fn churn(strategy: &str, runs: usize) -> f64 {
    let list = new_list(strategy);
    list.update(ids(0, 10_000), None::<&str>).unwrap();
    list.start().unwrap();
    let mut next = 10_000;
    let mut oldest = 0;
    median(
        (0..runs)
            .map(|_| {
                let add = ids(next, 1000);
                let remove = ids(oldest, 1000);
                next += 1000;
                oldest += 1000;
                let t = Instant::now();
                list.update(&add, &remove).unwrap();
                ms(t.elapsed())
            })
            .collect(),
    )
}

/// The slowest choose+finish (wall, thread CPU) on a second thread while `work` runs on
/// this one, over a list of 10 000 peers that `work` changes.
fn worst_choose(strategy: &str, work: impl FnOnce(&PeerList)) -> (f64, f64) {
    let list = new_list(strategy);
    list.update(ids(0, 10_000), None::<&str>).unwrap();
    list.start().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let chooser = {
        let list = list.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let key = Request::new().with_shard_key(b"user-1");
            let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let c0 = thread_cpu_now();
                let t = Instant::now();
                if let Ok(choice) = list.choose(&key) {
                    choice.finish(Outcome::Ok, None);
                }
                let w = t.elapsed();
                let c = thread_cpu_now().saturating_sub(c0);
                if n > 100 {
                    // (the first calls warm up the thread's cache)
                    wall = wall.max(w);
                    cpu = cpu.max(c);
                }
                n += 1;
            }
            (wall, cpu)
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    work(&list);
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    let (wall, cpu) = chooser.join().unwrap();
    (wall.as_secs_f64() * 1e6, cpu.as_secs_f64() * 1e6)
}

/// The changes `worst_choose` runs: the 10 000-peer list grows to 100 000, churns, and
/// shrinks back (it always has peers: the chooser measures successful chooses).
fn heavy_changes(list: &PeerList) {
    list.update(ids(10_000, 90_000), None::<&str>).unwrap();
    for round in 0..5 {
        let from = round * 1000;
        list.update(ids(200_000 + from, 1000), ids(from, 1000))
            .unwrap();
    }
    list.update(None::<&str>, ids(10_000, 90_000)).unwrap();
}

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0
}

/// Child process: the resident-set growth per peer of a started 100 000-peer list.
fn memory_child(strategy: &str, metrics: bool) -> ExitCode {
    let add = ids(0, 100_000);
    let list = new_list_with_metrics(strategy, metrics);
    // One choose first, so every lazily built piece of the process exists already.
    let warm = new_list(strategy);
    warm.update(ids(500_000, 10), None::<&str>).unwrap();
    warm.start().unwrap();
    warm.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, None);
    let before = rss_bytes();
    list.update(&add, None::<&str>).unwrap();
    list.start().unwrap();
    list.choose(&Request::new())
        .unwrap()
        .finish(Outcome::Ok, None);
    let after = rss_bytes();
    drop(add);
    println!("{}", (after - before) / 100_000.0);
    ExitCode::SUCCESS
}

/// Memory per peer of a started 100 000-peer list, measured in a fresh process, with the
/// list's metrics on or off.
fn memory_per_peer(strategy: &str, metrics: bool) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--memory", strategy, if metrics { "on" } else { "off" }])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

const SUBSET: usize = 50;

/// A running `round-robin` list with `subset(50)` offered `n` peers.
fn subset_list(n: usize) -> PeerList {
    let list = PeerList::new(
        ListOptions::default()
            .shuffle(false)
            .seed(1)
            .subset(SUBSET)
            .subset_client(17),
    )
    .expect("valid options");
    list.start().unwrap();
    list.update(ids(0, n), None::<&str>).unwrap();
    list
}

/// The subsetting rows: (first update, one out + one in, churn 1 000/1 000) in ms, and
/// the retained peers that moved over the one-out-one-in updates (at most 2 each).
fn subset_row(n: usize, runs: usize) -> (f64, f64, f64, usize) {
    let add = ids(0, n);
    let first = median(
        (0..runs)
            .map(|_| {
                let list = PeerList::new(
                    ListOptions::default()
                        .shuffle(false)
                        .seed(1)
                        .subset(SUBSET)
                        .subset_client(17),
                )
                .unwrap();
                list.start().unwrap();
                let t = Instant::now();
                list.update(&add, None::<&str>).unwrap();
                ms(t.elapsed())
            })
            .collect(),
    );
    let list = subset_list(n);
    let retained = |l: &PeerList| -> std::collections::BTreeSet<String> {
        l.introspect().peers.into_iter().map(|p| p.id).collect()
    };
    let mut moved = 0;
    let one = median(
        (0..runs * 4)
            .map(|i| {
                let before = retained(&list);
                let t = Instant::now();
                list.update(ids(1_000_000 + i, 1), ids(i, 1)).unwrap();
                let d = ms(t.elapsed());
                moved = moved.max(before.symmetric_difference(&retained(&list)).count());
                d
            })
            .collect(),
    );
    let mut next = n;
    let mut oldest = runs * 4;
    let churn = median(
        (0..runs)
            .map(|_| {
                let add = ids(2_000_000 + next, 1000);
                let remove = ids(oldest, 1000);
                next += 1000;
                oldest += 1000;
                let t = Instant::now();
                list.update(&add, &remove).unwrap();
                ms(t.elapsed())
            })
            .collect(),
    );
    (first, one, churn, moved)
}

/// The subsetting section of the table.
fn subset_section(runs: usize) -> String {
    let mut md = format!(
        "\n### With `subset({SUBSET})` (`round-robin`, client 17)\n\n\
         The list keeps every offered peer and retains its deterministic subset; each update \
         computes the subset again (hashing every offered id once) and applies the \
         difference in one commit. Medians of {runs} runs ({} for one out + one in).\n\n\
         | offered | first update | one out + one in | churn 1 000/1 000 | most retained peers moved by one out + one in |\n\
         |---:|---:|---:|---:|---:|\n",
        runs * 4
    );
    for n in [10_000, 100_000] {
        let (first, one, churn, moved) = subset_row(n, runs);
        let _ = writeln!(
            md,
            "| {n} | {first:.2} ms | {one:.2} ms | {churn:.2} ms | {moved} |"
        );
    }
    md
}

fn verdict(ok: bool, why: &str) -> String {
    if ok {
        "**met**".to_owned()
    } else {
        format!("**missed** ({why})")
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, strategy, metrics] = args.as_slice() {
        if flag == "--memory" {
            return memory_child(strategy, metrics != "off");
        }
    }
    if let [flag, strategy, n] = args.as_slice() {
        if flag == "--once" {
            // One update of n peers into a running list, for profilers.
            let n: usize = n.parse().unwrap_or(100_000);
            let t = update_into_running(strategy, n, 1);
            println!("{strategy}: update of {n} peers: {t:.2} ms");
            return ExitCode::SUCCESS;
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 5 };
    if args.iter().any(|a| a == "--subset") {
        print!("{}", subset_section(runs));
        return ExitCode::SUCCESS;
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## The list's change path at scale (`scale`, Rust, 16-byte ids)\n\n\
         Medians of {runs} runs; every row measured in this run. `update` adds to a running, \
         empty list; churn removes 1 000 and adds 1 000 in one update of a 10 000-peer list; \
         memory is the resident-set growth of a fresh process per started 100 000-peer list, \
         without and with the list's metrics (on by default: per-peer counters and a latency \
         histogram); the other columns are lists with their default metrics on; \
         the worst choose is the slowest choose+finish on a second thread while a 10 000-peer \
         list grows to 100 000, churns and shrinks back (wall time, and the chooser thread's \
         CPU time, which leaves out moments the OS took the core away).\n"
    );
    md.push_str(
        "| strategy | update 1 000 | update 10 000 | update 100 000 | per peer 100 000 ÷ 1 000 | start 100 000 | churn 1 000/1 000 | memory / peer, metrics off / on | worst choose wall / CPU |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut checks: Vec<(String, String, String)> = Vec::new();
    for strategy in StrategyKind::ALL.map(StrategyKind::as_str) {
        let u1k = update_into_running(strategy, 1_000, runs * 3);
        let u10k = update_into_running(strategy, 10_000, runs);
        let u100k = update_into_running(strategy, 100_000, runs.min(3));
        let ratio = (u100k / 100_000.0) / (u1k / 1_000.0);
        let start = start_uninitialized(strategy, 100_000, runs.min(3));
        let churn = churn(strategy, runs);
        let memory = memory_per_peer(strategy, false);
        let memory_metrics = memory_per_peer(strategy, true);
        let (wall, cpu) = worst_choose(strategy, heavy_changes);
        let _ = writeln!(
            md,
            "| `{strategy}` | {u1k:.2} ms | {u10k:.2} ms | {u100k:.1} ms | {ratio:.2}× | {start:.1} ms | {churn:.2} ms | {} / {} | {wall:.0} µs / {cpu:.0} µs |",
            memory.map_or("?".to_owned(), |m| format!("{m:.0} B")),
            memory_metrics.map_or("?".to_owned(), |m| format!("{m:.0} B")),
        );
        checks.push((
            format!("`{strategy}`: time per peer at 100 000 ≤ {PER_PEER_RATIO}× at 1 000"),
            format!("{ratio:.2}×"),
            verdict(ratio <= PER_PEER_RATIO, "see the table"),
        ));
        checks.push((
            format!("`{strategy}`: worst choose during updates ≤ {CHOOSE_WORST_US} µs (CPU)"),
            format!("{cpu:.0} µs CPU ({wall:.0} µs wall)"),
            verdict(
                cpu <= CHOOSE_WORST_US,
                "a rebuild or a drop on the choose path",
            ),
        ));
        if strategy == "round-robin" {
            checks.push((
                format!("`update` of 10 000 peers ≤ {UPDATE_10K_MS} ms"),
                format!("{u10k:.2} ms"),
                verdict(u10k <= UPDATE_10K_MS, "see the table"),
            ));
            checks.push((
                format!("`update` of 100 000 peers ≤ {UPDATE_100K_MS} ms"),
                format!("{u100k:.1} ms"),
                verdict(u100k <= UPDATE_100K_MS, "see the table"),
            ));
            checks.push((
                format!("`start()` of 100 000 peers ≤ {START_100K_MS} ms"),
                format!("{start:.1} ms"),
                verdict(start <= START_100K_MS, "see the table"),
            ));
            checks.push((
                format!("remove 1 000 + add 1 000 in 10 000 ≤ {CHURN_MS} ms"),
                format!("{churn:.2} ms"),
                verdict(churn <= CHURN_MS, "see the table"),
            ));
            if let Some(m) = memory {
                checks.push((
                    format!(
                        "the list's memory per peer at 100 000 ≤ {BYTES_PER_PEER} B (metrics off)"
                    ),
                    format!("{m:.0} B"),
                    verdict(m <= BYTES_PER_PEER, "see the table"),
                ));
            }
        }
        eprintln!("scale: {strategy} done");
    }
    md.push_str(&subset_section(runs));
    md.push_str("\n### Targets (change path)\n\n| target | measured | verdict |\n|---|---:|---|\n");
    for (target, measured, v) in &checks {
        let _ = writeln!(md, "| {target} | {measured} | {v} |");
    }
    let dir = target_dir().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) = std::fs::write(dir.join("scale.md"), &md) {
        eprintln!("scale: cannot write {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    print!("{md}");
    ExitCode::SUCCESS
}
