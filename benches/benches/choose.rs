//! choose + finish for every built-in strategy at 10, 100 and 1000 peers, on 1 and 2
//! threads, next to the mutex baseline (`peerlb_benches::MutexRoundRobin`) in the same run.
//!
//! `make bench-rust` (or `cargo bench -p peerlb-benches --bench choose`). Criterion's
//! usual arguments work after `--`, e.g. `-- round-robin` or `-- --measurement-time 5`.
//! Multi-thread numbers are throughput: total wall time ÷ total ops (see `run_on_threads`).

mod shared;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::{
    cpu_log_path, group_name, peer_ids, run_on_threads, threads_label, CpuLog, MutexRoundRobin,
    BASELINE, PEER_COUNTS, THREAD_COUNTS,
};

/// CPU time beside criterion's wall time (see `CpuLog`), saved for the summary.
static CPU: CpuLog = CpuLog::new();

/// A running list of `n` always-available peers, in a fixed order and seed.
fn running_list(kind: StrategyKind, n: usize) -> PeerList {
    let list = PeerList::new(
        ListOptions::default()
            .strategy(kind)
            .shuffle(false)
            .seed(1)
            .capacity(n),
    )
    .expect("valid options");
    list.update(peer_ids(n), None::<&str>)
        .expect("distinct valid ids");
    list.start().expect("a new list starts");
    list
}

/// One benchmark: wall time to criterion, CPU time to the log.
fn bench<F: Fn() + Sync>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group_id: &str,
    function: &str,
    threads: usize,
    op: &F,
) {
    let parameter = threads_label(threads);
    group.bench_function(BenchmarkId::new(function, &parameter), |b| {
        b.iter_custom(|iters| {
            let timing = run_on_threads(threads, iters, op);
            CPU.record(group_id, function, &parameter, iters, timing);
            timing.wall
        })
    });
}

/// Distinct shard keys, so the hash strategies do real lookups (the others ignore keys).
const KEYS: usize = 4096;

thread_local! {
    static NEXT_KEY: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The calling thread's next key from `keys` (every op takes one, baseline included).
fn next_key(keys: &[Vec<u8>]) -> &[u8] {
    let i = NEXT_KEY.with(|k| {
        let i = k.get();
        k.set(if i + 1 == keys.len() { 0 } else { i + 1 });
        i
    });
    &keys[i]
}

fn choose_finish(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("user:{i}").into_bytes())
        .collect();
    for n in PEER_COUNTS {
        let group_id = group_name(n);
        let mut group = c.benchmark_group(&group_id);
        group.throughput(Throughput::Elements(1));
        for kind in StrategyKind::ALL {
            let list = running_list(kind, n);
            // No deadline: with every peer available, choose never waits.
            let op = || {
                let request = Request::new().with_shard_key(next_key(&keys));
                let choice = list.choose(&request).expect("a peer is available");
                black_box(choice.peer());
                choice.finish(Outcome::Ok, None);
            };
            for threads in THREAD_COUNTS {
                bench(&mut group, &group_id, kind.as_str(), threads, &op);
            }
            list.stop().expect("the list is running");
        }
        let baseline = MutexRoundRobin::new(peer_ids(n));
        let op = || {
            black_box(next_key(&keys));
            let i = baseline.choose().expect("the baseline has peers");
            black_box(i);
            baseline.finish(i);
        };
        for threads in THREAD_COUNTS {
            bench(&mut group, &group_id, BASELINE, threads, &op);
        }
        group.finish();
    }
    let path = cpu_log_path();
    if let Err(e) = CPU.save(&path) {
        eprintln!("choose: cannot write {}: {e}", path.display());
    }
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = choose_finish
}
criterion_main!(benches);
