//! `choose-loop STRATEGY PEERS THREADS OPS`: runs OPS choose+finish operations (split over
//! THREADS threads) on a list of PEERS peers and prints wall and CPU time per op. For
//! profilers (`perf record`, `valgrind --tool=callgrind`) and quick checks; `make bench`
//! is the measurement of record. STRATEGY is a peerlb strategy name or `mutex-baseline`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::{peer_ids, run_on_threads, MutexRoundRobin, BASELINE};

fn usage() -> ExitCode {
    eprintln!("usage: choose-loop STRATEGY PEERS THREADS OPS   (STRATEGY: a peerlb strategy or {BASELINE})");
    ExitCode::from(2)
}

/// CPU time (user + system) used by the whole process so far, joined threads included, in
/// ns; from /proc/self/stat, so only as fine as the clock tick (assumed 100 Hz): run enough
/// ops for a few seconds. 0 where /proc is missing.
fn cpu_ns() -> u128 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u128>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10_000_000
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [strategy, peers, threads, ops] = args.as_slice() else {
        return usage();
    };
    let (Ok(peers), Ok(threads), Ok(ops)) = (
        peers.parse::<usize>(),
        threads.parse::<usize>(),
        ops.parse::<u64>(),
    ) else {
        return usage();
    };
    if peers == 0 || threads == 0 {
        return usage();
    }
    let started = Instant::now();
    let cpu_before = cpu_ns();
    if strategy == BASELINE {
        let baseline = MutexRoundRobin::new(peer_ids(peers));
        run_on_threads(threads, ops, &|| {
            let i = baseline.choose().expect("the baseline has peers");
            black_box(i);
            baseline.finish(i);
        });
    } else {
        let kind: StrategyKind = match strategy.parse() {
            Ok(kind) => kind,
            Err(e) => {
                eprintln!("choose-loop: {e}");
                return usage();
            }
        };
        let list = PeerList::new(ListOptions::default().strategy(kind).shuffle(false).seed(1))
            .expect("valid options");
        list.update(peer_ids(peers), None::<&str>)
            .expect("distinct valid ids");
        list.start().expect("a new list starts");
        let request = Request::new();
        run_on_threads(threads, ops, &|| {
            let choice = list.choose(&request).expect("a peer is available");
            black_box(choice.peer());
            choice.finish(Outcome::Ok, None);
        });
    }
    let wall = started.elapsed().as_nanos() as f64 / ops.max(1) as f64;
    let cpu = (cpu_ns() - cpu_before) as f64 / ops.max(1) as f64;
    println!(
        "{strategy}, {peers} peers, {threads} thread(s), {ops} ops: {wall:.2} ns/op wall \
         (throughput), {cpu:.2} ns/op CPU (all threads)"
    );
    ExitCode::SUCCESS
}
