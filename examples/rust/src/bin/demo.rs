//! `make demo`: four real HTTP/1.1 backends on 127.0.0.1, one 10× slower and one killed
//! halfway through, and the same workload through every strategy. Prints a table (requests
//! per backend, latency percentiles, errors, ejections) and writes `target/demo/table.md`
//! and two charts per strategy over time: `target/demo/latency.svg` (mean latency of the
//! successful requests per 100 ms) and `target/demo/errors.svg` (failed share per 100 ms).
//!
//! Exits non-zero if a request to a live backend failed or a live backend's count of
//! responses disagrees with the client's successes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use peerlb_examples::workload::{
    over_time, run_strategy, BackendSpec, StrategyRun, Window, Workload,
};
use peerlb_sim::model::Latency;
use peerlb_sim::stats::fmt_ms;
use peerlb_sim::svg::{self, LineChart};

/// The strategies, as spec strings, with the weights they get (a, b, c, d; empty = 1).
const STRATEGIES: [(&str, &[u32]); 8] = [
    ("round-robin", &[]),
    ("random", &[]),
    ("fewest-pending", &[]),
    ("two-random-choices", &[]),
    ("peak-ewma", &[]),
    ("hash-ring", &[]),
    ("hash-ring:ketama?bounded=1.25", &[]),
    // What an operator who knows c is slow would configure.
    ("weighted-round-robin", &[4, 4, 1, 4]),
];

const SLOW: usize = 2;
const KILLED: usize = 3;
const SECONDS: f64 = 2.0;
const WINDOW: f64 = 0.1;

fn main() -> ExitCode {
    let fast = Latency::LogNormal {
        median: Duration::from_millis(2),
        sigma: 0.25,
    };
    let slow = Latency::LogNormal {
        median: Duration::from_millis(20),
        sigma: 0.25,
    };
    let backends: Vec<BackendSpec> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, name)| BackendSpec {
            name: (*name).to_owned(),
            latency: if i == SLOW { slow } else { fast },
        })
        .collect();
    let duration = Duration::from_secs_f64(SECONDS);
    let workload = Workload {
        duration,
        clients: 24,
        rate: 1200.0,
        kill: Some((KILLED, duration / 2)),
        keys: 1000,
        seed: 7,
    };
    println!(
        "peerlb {} demo: 4 HTTP/1.1 backends on 127.0.0.1 (fresh for every strategy); \
         a, b, d answer in {}, c in {} (10× slower);\nd is killed {:.1} s into each run. \
         {} client threads send {}/s for {SECONDS:.1} s per strategy (keep-alive, shard key \
         user-0..{}),\nfinishing every choice with its outcome and latency.\n",
        peerlb::VERSION,
        fast.describe(),
        slow.describe(),
        SECONDS / 2.0,
        workload.clients,
        workload.rate,
        workload.keys - 1
    );
    let header = format!(
        "{:<31}{:>7}{:>7}{:>10}{:>12}{:>10}{:>10}{:>10}{:>8}{:>11}",
        "strategy", "a", "b", "c slow", "d killed", "p50", "p99", "p99.9", "errors", "ejections"
    );
    println!("requests sent to each backend; latency of the successful ones\n");
    println!("{header}");
    println!("{}", "-".repeat(header.len()));

    let tty = std::io::stderr().is_terminal();
    let mut runs = Vec::new();
    let mut ok = true;
    for (strategy, weights) in STRATEGIES {
        let label = if weights.is_empty() {
            strategy.to_owned()
        } else {
            format!("{strategy}*")
        };
        let result = run_strategy(strategy, &backends, weights, &workload, |done| {
            if tty {
                let filled = (done * 30.0) as usize;
                eprint!(
                    "\r{label:<31}[{}{}] {:.1}/{SECONDS:.1} s",
                    "#".repeat(filled),
                    ".".repeat(30 - filled.min(30)),
                    done * SECONDS
                );
                let _ = std::io::stderr().flush();
            }
        });
        if tty {
            eprint!("\r{}\r", " ".repeat(80));
        }
        let run = match result {
            Ok(run) => run,
            Err(e) => {
                eprintln!("demo: {e}");
                ok = false;
                continue;
            }
        };
        println!(
            "{label:<31}{:>7}{:>7}{:>10}{:>12}{:>10}{:>10}{:>10}{:>8}{:>11}",
            run.requests[0],
            run.requests[1],
            run.requests[2],
            run.requests[3],
            fmt_ms(run.latency.p50),
            fmt_ms(run.latency.p99),
            fmt_ms(run.latency.p999),
            run.errors,
            run.ejections
        );
        ok &= check(&run, &backends);
        runs.push((label, run));
    }
    println!(
        "\n* weights a, b, d = 4, c = 1. Errors are requests to d after it died (connection \
         reset or refused),\nfinished as `failure`; outlier ejection (on by default) takes d out \
         after 5 failures in a row,\nso each strategy sees about 5 errors instead of \
         hundreds."
    );
    match write_outputs(&runs) {
        Ok(dir) => println!(
            "wrote {0}/table.md, {0}/latency.svg and {0}/errors.svg",
            dir.display()
        ),
        Err(e) => {
            eprintln!("demo: writing target/demo: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("demo: requests to live backends failed or counts disagree (see above)");
        ExitCode::FAILURE
    }
}

/// Whether every request to a live backend succeeded and the live backends counted what
/// the client got (the killed one may have counted a response it died sending).
fn check(run: &StrategyRun, backends: &[BackendSpec]) -> bool {
    let mut ok = true;
    for (i, b) in backends.iter().enumerate().filter(|(i, _)| *i != KILLED) {
        let failed = run
            .samples
            .iter()
            .filter(|s| s.backend == i && !s.ok)
            .count() as u64;
        if failed > 0 || run.served[i] != run.requests[i] {
            println!(
                "    {}: {failed} failures, served {} of {} requests; e.g. {:?}",
                b.name, run.served[i], run.requests[i], run.error_samples
            );
            ok = false;
        }
    }
    ok
}

fn write_outputs(runs: &[(String, StrategyRun)]) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/demo");
    std::fs::create_dir_all(&dir)?;
    let mut table = String::from(
        "| strategy | a | b | c (10× slower) | d (killed halfway) | p50 | p99 | p99.9 | errors | ejections |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (label, run) in runs {
        table.push_str(&format!(
            "| `{label}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            run.requests[0],
            run.requests[1],
            run.requests[2],
            run.requests[3],
            fmt_ms(run.latency.p50),
            fmt_ms(run.latency.p99),
            fmt_ms(run.latency.p999),
            run.errors,
            run.ejections
        ));
    }
    std::fs::write(dir.join("table.md"), table)?;
    let windows: Vec<_> = runs
        .iter()
        .map(|(label, run)| (label.clone(), over_time(run, WINDOW, SECONDS)))
        .collect();
    let series = |f: fn(&Window) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        windows
            .iter()
            .map(|(label, w)| (label.clone(), w.iter().map(|w| (w.mid, f(w))).collect()))
            .collect()
    };
    let markers = vec![(SECONDS / 2.0, "d killed".to_owned())];
    let latency = svg::line_chart(&LineChart {
        title: "peerlb demo: mean latency of successful requests per 100 ms (c 10× slower)".into(),
        x_label: "seconds into the run".into(),
        y_label: "mean latency (ms, log scale)".into(),
        series: series(|w| w.mean_ms),
        markers: markers.clone(),
        x_max: Some(SECONDS),
        log_y: true,
    });
    std::fs::write(dir.join("latency.svg"), latency)?;
    let errors = svg::line_chart(&LineChart {
        title: "peerlb demo: failed requests per 100 ms (d killed halfway)".into(),
        x_label: "seconds into the run".into(),
        y_label: "failed (% of requests)".into(),
        series: series(|w| w.failed_pct),
        markers,
        x_max: Some(SECONDS),
        log_y: false,
    });
    std::fs::write(dir.join("errors.svg"), errors)?;
    Ok(dir.canonicalize().unwrap_or(dir))
}
