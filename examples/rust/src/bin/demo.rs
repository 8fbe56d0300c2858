//! `make demo`: four real HTTP/1.1 backends on 127.0.0.1 and the same workload through every
//! strategy, twice: on four healthy backends (the baseline), then with one 10× slower and
//! one killed halfway through. Prints a table (requests per backend, the share sent to the
//! slow one, latency percentiles, p99 over the healthy run's p99, errors, ejections) and
//! writes `target/demo/table.md` and two charts per strategy over time:
//! `target/demo/latency.svg` (p99 of the successful requests per 250 ms, with the healthy
//! p99 marked) and `target/demo/errors.svg` (failed share per 100 ms).
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
const STRATEGIES: [(&str, &[u32]); 9] = [
    ("round-robin", &[]),
    ("random", &[]),
    ("fewest-pending", &[]),
    ("two-random-choices", &[]),
    ("peak-ewma", &[]),
    ("prequal", &[]),
    ("hash-ring", &[]),
    ("hash-ring:ketama?bounded=1.25", &[]),
    // What an operator who knows c is slow would configure.
    ("weighted-round-robin", &[4, 4, 1, 4]),
];

/// The latency-aware strategies (the real-world target is for the best of them).
const LATENCY_AWARE: [&str; 2] = ["peak-ewma", "prequal"];

const SLOW: usize = 2;
const KILLED: usize = 3;
/// The run with a slow and a killed backend, and the healthy baseline, per strategy.
const SECONDS: f64 = 3.0;
const HEALTHY_SECONDS: f64 = 2.0;
/// Requests sent in the first half second are not measured.
const WARMUP: f64 = 0.5;
const WINDOW: f64 = 0.25;
const ERROR_WINDOW: f64 = 0.1;

/// One strategy's two runs.
struct Row {
    label: String,
    strategy: &'static str,
    run: StrategyRun,
    healthy: StrategyRun,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.run.latency.p99 as f64 / self.healthy.latency.p99.max(1) as f64
    }

    /// Share of the measured requests sent to the slow backend.
    fn slow_share(&self) -> f64 {
        self.run.measured[SLOW] as f64 / self.run.measured.iter().sum::<u64>().max(1) as f64
    }
}

fn main() -> ExitCode {
    let fast = Latency::LogNormal {
        median: Duration::from_millis(2),
        sigma: 0.25,
    };
    let slow = Latency::LogNormal {
        median: Duration::from_millis(20),
        sigma: 0.25,
    };
    let spec = |i: usize, name: &str, slow_one: bool| BackendSpec {
        name: name.to_owned(),
        latency: if slow_one && i == SLOW { slow } else { fast },
    };
    let names = ["a", "b", "c", "d"];
    let backends: Vec<BackendSpec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| spec(i, n, true))
        .collect();
    let healthy_backends: Vec<BackendSpec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| spec(i, n, false))
        .collect();
    let duration = Duration::from_secs_f64(SECONDS);
    let workload = Workload {
        duration,
        clients: 24,
        rate: 1200.0,
        kill: Some((KILLED, duration / 2)),
        warmup: Duration::from_secs_f64(WARMUP),
        keys: 1000,
        seed: 7,
    };
    let healthy_workload = Workload {
        duration: Duration::from_secs_f64(HEALTHY_SECONDS),
        kill: None,
        ..workload.clone()
    };
    println!(
        "peerlb {} demo: 4 HTTP/1.1 backends on 127.0.0.1 (fresh for every run); a, b, d answer in {},\n\
         c in {} (10× slower), d is killed {:.1} s into the run. {} client threads send {}/s for \
         {SECONDS:.1} s per strategy\n(keep-alive, shard key user-0..{}), finishing every choice \
         with its outcome and latency. Before it, each strategy\nruns {HEALTHY_SECONDS:.1} s on \
         four healthy backends: the baseline. The first {WARMUP:.1} s of a run are not measured.\n",
        peerlb::VERSION,
        fast.describe(),
        slow.describe(),
        SECONDS / 2.0,
        workload.clients,
        workload.rate,
        workload.keys - 1
    );
    let header = format!(
        "{:<31}{:>6}{:>6}{:>8}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>7}{:>6}",
        "strategy",
        "a",
        "b",
        "c slow",
        "d killed",
        "to slow",
        "p50",
        "p99",
        "healthy",
        "p99/hp99",
        "p99.9",
        "errors",
        "ejct"
    );
    println!("requests sent to each backend after the warmup; latency of the successful ones\n");
    println!("{header}");
    println!("{}", "-".repeat(header.len()));

    let tty = std::io::stderr().is_terminal();
    let mut rows = Vec::new();
    let mut ok = true;
    for (strategy, weights) in STRATEGIES {
        let label = if weights.is_empty() {
            strategy.to_owned()
        } else {
            format!("{strategy}*")
        };
        let progress = |what: &'static str, seconds: f64| {
            let label = label.clone();
            move |done: f64| {
                if tty {
                    let filled = (done * 30.0) as usize;
                    eprint!(
                        "\r{label:<31}{what:<8}[{}{}] {:.1}/{seconds:.1} s",
                        "#".repeat(filled),
                        ".".repeat(30 - filled.min(30)),
                        done * seconds
                    );
                    let _ = std::io::stderr().flush();
                }
            }
        };
        let healthy = run_strategy(
            strategy,
            &healthy_backends,
            weights,
            &healthy_workload,
            progress("healthy", HEALTHY_SECONDS),
        );
        let run = run_strategy(
            strategy,
            &backends,
            weights,
            &workload,
            progress("degraded", SECONDS),
        );
        if tty {
            eprint!("\r{}\r", " ".repeat(90));
        }
        let (run, healthy) = match (run, healthy) {
            (Ok(run), Ok(healthy)) => (run, healthy),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("demo: {e}");
                ok = false;
                continue;
            }
        };
        let row = Row {
            label: label.clone(),
            strategy,
            run,
            healthy,
        };
        let r = &row.run;
        println!(
            "{label:<31}{:>6}{:>6}{:>8}{:>10}{:>8.1}%{:>9}{:>9}{:>9}{:>8.2}×{:>9}{:>7}{:>6}",
            r.measured[0],
            r.measured[1],
            r.measured[2],
            r.measured[3],
            100.0 * row.slow_share(),
            fmt_ms(r.latency.p50),
            fmt_ms(r.latency.p99),
            fmt_ms(row.healthy.latency.p99),
            row.ratio(),
            fmt_ms(r.latency.p999),
            r.errors,
            r.ejections
        );
        ok &= check(&row.run, &backends, Some(KILLED));
        ok &= check(&row.healthy, &healthy_backends, None);
        rows.push(row);
    }
    println!(
        "\n* weights a, b, d = 4, c = 1. \"healthy\": p99 of the same strategy on four healthy \
         backends; p99/hp99 the ratio.\nErrors are requests to d after it died (connection \
         reset or refused), finished as `failure`; outlier\nejection (on by default) takes d \
         out after 5 failures in a row, so each strategy sees about 5 errors\ninstead of \
         hundreds."
    );
    if let Some(best) = rows
        .iter()
        .filter(|r| LATENCY_AWARE.contains(&r.strategy))
        .min_by(|a, b| a.ratio().total_cmp(&b.ratio()))
    {
        let met = best.ratio() <= 1.5 && best.slow_share() <= 0.01;
        println!(
            "best latency-aware strategy: {} at {:.2}× its healthy p99, {:.2}% to the slow \
             backend (target: ≤ 1.5×, ≤ 1%): {}",
            best.label,
            best.ratio(),
            100.0 * best.slow_share(),
            if met { "met" } else { "missed" }
        );
    }
    match write_outputs(&rows) {
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
fn check(run: &StrategyRun, backends: &[BackendSpec], killed: Option<usize>) -> bool {
    let mut ok = true;
    for (i, b) in backends
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != killed)
    {
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

fn write_outputs(rows: &[Row]) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/demo");
    std::fs::create_dir_all(&dir)?;
    let mut table = String::from(
        "| strategy | a | b | c (10× slower) | d (killed halfway) | to slow | p50 | p99 | healthy p99 | p99 / healthy p99 | p99.9 | errors | ejections |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let r = &row.run;
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {:.1}% | {} | {} | {} | {:.2}× | {} | {} | {} |\n",
            row.label,
            r.measured[0],
            r.measured[1],
            r.measured[2],
            r.measured[3],
            100.0 * row.slow_share(),
            fmt_ms(r.latency.p50),
            fmt_ms(r.latency.p99),
            fmt_ms(row.healthy.latency.p99),
            row.ratio(),
            fmt_ms(r.latency.p999),
            r.errors,
            r.ejections
        ));
    }
    std::fs::write(dir.join("table.md"), table)?;
    let series = |window: f64, f: fn(&Window) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        rows.iter()
            .map(|row| {
                let w = over_time(&row.run, window, SECONDS);
                (row.label.clone(), w.iter().map(|w| (w.mid, f(w))).collect())
            })
            .collect()
    };
    let markers = vec![
        (WARMUP, "measured from here".to_owned()),
        (SECONDS / 2.0, "d killed".to_owned()),
    ];
    // The strategies' healthy p99s differ by noise only (every backend is fast): the line
    // marks their median.
    let mut healthy: Vec<u64> = rows.iter().map(|r| r.healthy.latency.p99).collect();
    healthy.sort_unstable();
    let levels = healthy
        .get(healthy.len() / 2)
        .map(|&p99| {
            vec![(
                p99 as f64 / 1e6,
                format!("healthy p99 {} (median over strategies)", fmt_ms(p99)),
            )]
        })
        .unwrap_or_default();
    let latency = svg::line_chart(&LineChart {
        title: "peerlb demo: p99 of successful requests per 250 ms (c 10× slower, d killed)".into(),
        x_label: "seconds into the run".into(),
        y_label: "p99 latency (ms, log scale)".into(),
        series: series(WINDOW, |w| w.p99_ms),
        markers: markers.clone(),
        levels,
        x_max: Some(SECONDS),
        log_y: true,
    });
    std::fs::write(dir.join("latency.svg"), latency)?;
    let errors = svg::line_chart(&LineChart {
        title: "peerlb demo: failed requests per 100 ms (d killed halfway)".into(),
        x_label: "seconds into the run".into(),
        y_label: "failed (% of requests)".into(),
        series: series(ERROR_WINDOW, |w| w.failed_pct),
        markers,
        levels: Vec::new(),
        x_max: Some(SECONDS),
        log_y: false,
    });
    std::fs::write(dir.join("errors.svg"), errors)?;
    Ok(dir.canonicalize().unwrap_or(dir))
}
