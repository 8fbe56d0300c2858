//! choose + finish for every built-in strategy at 10, 100 and 1000 peers, on 1 and 2
//! threads, next to the mutex baseline (`peerlb_benches::MutexRoundRobin`) in the same run.
//!
//! `make bench-rust` (or `cargo bench -p peerlb-benches --bench choose`). Criterion's
//! usual arguments work after `--`, e.g. `-- round-robin` or `-- --measurement-time 5`.
//! Multi-thread numbers are throughput: total wall time ÷ total ops (see `run_on_threads`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::{
    group_name, peer_ids, run_on_threads, threads_label, MutexRoundRobin, BASELINE, PEER_COUNTS,
    THREAD_COUNTS,
};

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

fn choose_finish(c: &mut Criterion) {
    for n in PEER_COUNTS {
        let mut group = c.benchmark_group(group_name(n));
        group.throughput(Throughput::Elements(1));
        for kind in StrategyKind::ALL {
            let list = running_list(kind, n);
            // No deadline: with every peer available, choose never waits.
            let request = Request::new();
            let op = || {
                let choice = list.choose(&request).expect("a peer is available");
                black_box(choice.peer());
                choice.finish(Outcome::Ok, None);
            };
            for threads in THREAD_COUNTS {
                group.bench_function(
                    BenchmarkId::new(kind.as_str(), threads_label(threads)),
                    |b| b.iter_custom(|iters| run_on_threads(threads, iters, &op)),
                );
            }
            list.stop().expect("the list is running");
        }
        let baseline = MutexRoundRobin::new(peer_ids(n));
        let op = || {
            let i = baseline.choose().expect("the baseline has peers");
            black_box(i);
            baseline.finish(i);
        };
        for threads in THREAD_COUNTS {
            group.bench_function(BenchmarkId::new(BASELINE, threads_label(threads)), |b| {
                b.iter_custom(|iters| run_on_threads(threads, iters, &op))
            });
        }
        group.finish();
    }
}

/// Short enough for `make bench` to finish in a few minutes on 2 cores (30 benchmarks).
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = choose_finish
}
criterion_main!(benches);
