//! `metrics-cost [OUT.md]`: what metrics (and circuit breakers that never trip) cost the hot
//! path: `round-robin` choose + finish at 100 peers on one thread, the same list made with
//! metrics off and on, finished without a latency (nothing to record) and with one (a
//! histogram sample), all measured in this one run. Each variant runs in rounds,
//! interleaved with the others, and its fastest round (CPU time of the thread) is its
//! ns/op; the cost is on − off.
//! Writes a markdown fragment for the bench summary (`target/bench/metrics.md` by default).
//! Target: recording costs at most 5 ns per choose+finish.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use peerlb::{ListOptions, Outcome, PeerList, Request};
use peerlb_benches::peer_ids;

const PEERS: usize = 100;
const OPS_PER_ROUND: u32 = 2_000_000;
const ROUNDS: usize = 15;
const TARGET_NS: f64 = 5.0;

struct Variant {
    name: &'static str,
    list: PeerList,
    latency: Option<Duration>,
    rounds: Vec<f64>,
}

fn list(options: ListOptions) -> PeerList {
    let list = PeerList::new(options.shuffle(false).seed(1).capacity(PEERS)).expect("valid");
    list.update(peer_ids(PEERS), None::<&str>).expect("ids");
    list.start().expect("starts");
    list
}

/// This thread's CPU time (not wall time: other work on a shared machine inflates wall
/// time, and this bench compares a few nanoseconds).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One round: CPU ns per op.
fn round(v: &Variant) -> f64 {
    let request = Request::new();
    let t0 = thread_cpu();
    for _ in 0..OPS_PER_ROUND {
        let choice = v.list.choose(&request).expect("a peer");
        black_box(choice.peer());
        choice.finish(Outcome::Ok, black_box(v.latency));
    }
    (thread_cpu() - t0).as_nanos() as f64 / f64::from(OPS_PER_ROUND)
}

/// The fastest round: the one other work on the machine disturbed least.
fn fastest(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--variant K --ops N`: only variant K, N ops, no report (for callgrind).
    let only = args
        .iter()
        .position(|a| a == "--variant")
        .map(|i| args[i + 1].parse::<usize>().expect("--variant K"));
    let ops = args
        .iter()
        .position(|a| a == "--ops")
        .map(|i| args[i + 1].parse::<u32>().expect("--ops N"));
    let out = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "target/bench/metrics.md".to_owned());
    let latency = Some(Duration::from_micros(250));
    let mut variants = vec![
        Variant {
            name: "metrics off, finish(ok)",
            list: list(ListOptions::default().metrics(false)),
            latency: None,
            rounds: Vec::new(),
        },
        Variant {
            name: "metrics on, finish(ok)",
            list: list(ListOptions::default()),
            latency: None,
            rounds: Vec::new(),
        },
        Variant {
            name: "metrics off, finish(ok, latency)",
            list: list(ListOptions::default().metrics(false)),
            latency,
            rounds: Vec::new(),
        },
        Variant {
            name: "metrics on, finish(ok, latency)",
            list: list(ListOptions::default()),
            latency,
            rounds: Vec::new(),
        },
        Variant {
            name: "metrics off, max_pending_per_peer (never reached)",
            list: list(
                ListOptions::default()
                    .metrics(false)
                    .max_pending_per_peer(1 << 20),
            ),
            latency: None,
            rounds: Vec::new(),
        },
        Variant {
            name: "metrics off, max_pending (never reached)",
            list: list(ListOptions::default().metrics(false).max_pending(1 << 20)),
            latency: None,
            rounds: Vec::new(),
        },
    ];
    if let Some(k) = only {
        let v = &variants[k];
        let request = Request::new();
        for _ in 0..ops.unwrap_or(OPS_PER_ROUND) {
            let choice = v.list.choose(&request).expect("a peer");
            black_box(choice.peer());
            choice.finish(Outcome::Ok, black_box(v.latency));
        }
        return;
    }
    // Warm up every variant once, then interleave the rounds.
    for v in &variants {
        round(v);
    }
    for _ in 0..ROUNDS {
        for v in &mut variants {
            let ns = round(v);
            v.rounds.push(ns);
        }
    }
    let ns: Vec<f64> = variants.iter().map(|v| fastest(&v.rounds)).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Metrics and circuit breakers on the hot path (`round-robin`, {PEERS} peers, 1 thread)\n\n\
         Each variant: {ROUNDS} interleaved rounds of {OPS_PER_ROUND} choose+finish; the fastest round, \
         in CPU time of the measuring thread. Same process, same run.\n\n| variant | CPU ns/op |\n|---|---:|"
    );
    for (v, n) in variants.iter().zip(&ns) {
        let _ = writeln!(md, "| {} | {n:.1} |", v.name);
    }
    let _ = writeln!(
        md,
        "\n| cost | measured | target | verdict |\n|---|---:|---:|---|"
    );
    let rows = [
        (
            "metrics recording, finish without latency",
            ns[1] - ns[0],
            true,
        ),
        (
            "metrics recording, finish with latency (histogram)",
            ns[3] - ns[2],
            true,
        ),
        ("max_pending_per_peer check", ns[4] - ns[0], false),
        (
            "max_pending admission (shared counter)",
            ns[5] - ns[0],
            false,
        ),
    ];
    for (what, cost, targeted) in rows {
        let (target, verdict) = if targeted {
            (
                format!("≤ {TARGET_NS} ns"),
                if cost <= TARGET_NS {
                    "met"
                } else {
                    "**missed**"
                }
                .to_owned(),
            )
        } else {
            ("—".to_owned(), "(measured)".to_owned())
        };
        let _ = writeln!(md, "| {what} | {cost:+.1} ns | {target} | {verdict} |");
    }
    print!("{md}");
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&out, md) {
        eprintln!("metrics-cost: cannot write {out}: {e}");
    }
}
