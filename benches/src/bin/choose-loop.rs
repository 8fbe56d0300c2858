//! `choose-loop STRATEGY PEERS THREADS OPS`: runs OPS choose+finish operations (split over
//! THREADS threads) on a list of PEERS peers and prints wall and CPU time per op. For
//! profilers (`perf record`, `valgrind --tool=callgrind`) and quick checks; `make bench`
//! is the measurement of record. STRATEGY is a peerlb strategy name or `mutex-baseline`.

use std::hint::black_box;
use std::process::ExitCode;

use peerlb::{ListOptions, Outcome, PeerList, Request, StrategyKind};
use peerlb_benches::{peer_ids, run_on_threads, MutexRoundRobin, BASELINE};

fn usage() -> ExitCode {
    eprintln!("usage: choose-loop STRATEGY PEERS THREADS OPS   (STRATEGY: a peerlb strategy or {BASELINE})");
    ExitCode::from(2)
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
    let timing = if strategy == BASELINE {
        let baseline = MutexRoundRobin::new(peer_ids(peers));
        run_on_threads(threads, ops, &|| {
            let i = baseline.choose().expect("the baseline has peers");
            black_box(i);
            baseline.finish(i);
        })
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
        })
    };
    let per_op = |d: std::time::Duration| d.as_nanos() as f64 / ops.max(1) as f64;
    let cpu = timing.cpu.map_or("unknown".to_owned(), |c| {
        format!(
            "{:.2} ns/op CPU (summed over threads; {:.2} CPUs busy)",
            per_op(c),
            c.as_secs_f64() / timing.wall.as_secs_f64()
        )
    });
    println!(
        "{strategy}, {peers} peers, {threads} thread(s), {ops} ops: {:.2} ns/op wall \
         (throughput), {cpu}",
        per_op(timing.wall)
    );
    ExitCode::SUCCESS
}
