//! `make sim`: every strategy on the known scenarios, in virtual time; prints the table and
//! the default's targets, and writes `target/sim/table.md` and `target/sim/p99.svg`.
//!
//! ```text
//! peerlb-sim [--rate N] [--seconds S] [--seed N] [--exponential | --sigma X]
//!            [--workers N] [--strategies SPEC,SPEC,...] [--scenarios NAME,...] [--out DIR]
//!            [--no-fleet | --fleet-only] [--fleet-seconds S]
//! ```
//!
//! `--rate` is arrivals per second (default 2000, about 23 requests in flight), `--seconds`
//! the measured virtual time per run (default 30, after a 2 s warmup), `--exponential`
//! swaps the lognormal latencies for exponential ones with the same mean, `--sigma` sets
//! the lognormal's shape (median stays 10 ms; 0 = constant 10 ms), `--workers` gives every
//! backend that many workers with a FIFO queue in front (default: no queue), `--strategies` a
//! comma-separated list of strategy specs (default: the ten compared), `--scenarios` a
//! comma-separated subset of the known scenarios (default: all). The first five options
//! apply to every scenario run. After the table come the targets of the latency-aware
//! default (`prequal`) with verdicts.
//!
//! Then the fleet section (see `peerlb_sim::fleet`): 100 clients, each its own list, over
//! 10 000 backends in 3 zones, full mesh against deterministic subsets of 50, healthy and
//! with one zone degraded, plus 1 000 clients whose subsets cover the fleet; its table goes
//! to `target/sim/fleet.md` too. `--fleet-seconds` is its measured virtual time (default
//! 10, after a 2 s warmup), `--no-fleet` leaves it out, `--fleet-only` runs only it. The
//! options above do not change it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use peerlb_sim::fleet;
use peerlb_sim::model::{known_scenarios, Latency, STRATEGIES};
use peerlb_sim::report::Report;

struct Args {
    rate: Option<f64>,
    seconds: Option<f64>,
    seed: Option<u64>,
    exponential: bool,
    sigma: Option<f64>,
    workers: Option<usize>,
    strategies: Vec<String>,
    scenarios: Option<Vec<String>>,
    out: PathBuf,
    fleet: bool,
    known: bool,
    fleet_seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rate: None,
        seconds: None,
        seed: None,
        exponential: false,
        sigma: None,
        workers: None,
        strategies: STRATEGIES.iter().map(|s| (*s).to_owned()).collect(),
        scenarios: None,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sim"),
        fleet: true,
        known: true,
        fleet_seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or(format!("{name}: expected a positive number, got {v:?}"))
        };
        match flag.as_str() {
            "--rate" => args.rate = Some(number("--rate", value("--rate")?)?),
            "--seconds" => args.seconds = Some(number("--seconds", value("--seconds")?)?),
            "--seed" => {
                let v = value("--seed")?;
                args.seed = Some(v.parse().map_err(|_| format!("--seed: bad number {v:?}"))?);
            }
            "--exponential" => args.exponential = true,
            "--workers" => {
                let v = value("--workers")?;
                args.workers = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("--workers: expected a positive count, got {v:?}"))?,
                );
            }
            "--sigma" => {
                let v = value("--sigma")?;
                args.sigma = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or(format!("--sigma: expected a number >= 0, got {v:?}"))?,
                );
            }
            "--strategies" => {
                args.strategies = value("--strategies")?
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--scenarios" => {
                args.scenarios = Some(
                    value("--scenarios")?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--no-fleet" => args.fleet = false,
            "--fleet-only" => args.known = false,
            "--fleet-seconds" => {
                args.fleet_seconds = number("--fleet-seconds", value("--fleet-seconds")?)?
            }
            "-h" | "--help" => {
                return Err("usage: peerlb-sim [--rate N] [--seconds S] [--seed N] \
                            [--exponential | --sigma X] [--workers N] [--strategies SPEC,...] [--scenarios NAME,...] [--out DIR] \
                            [--no-fleet | --fleet-only] [--fleet-seconds S]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peerlb-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.known {
        let code = run_known(&args);
        if code != ExitCode::SUCCESS {
            return code;
        }
    }
    if args.fleet {
        return run_fleet(&args);
    }
    ExitCode::SUCCESS
}

/// The strategies × known scenarios table and the default's targets.
fn run_known(args: &Args) -> ExitCode {
    let known = known_scenarios();
    if let Some(names) = &args.scenarios {
        if let Some(bad) = names.iter().find(|n| !known.iter().any(|s| &s.name == *n)) {
            let all: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
            eprintln!(
                "peerlb-sim: unknown scenario {bad:?}; expected some of {}",
                all.join(", ")
            );
            return ExitCode::FAILURE;
        }
    }
    let scenarios: Vec<_> = known
        .into_iter()
        .filter(|s| {
            args.scenarios
                .as_ref()
                .map_or(true, |names| names.contains(&s.name))
        })
        .map(|mut s| {
            if let Some(rate) = args.rate {
                s = s.with_rate(rate);
            }
            if let Some(seconds) = args.seconds {
                s = s.with_measured(Duration::from_secs_f64(seconds));
            }
            if let Some(seed) = args.seed {
                s = s.with_seed(seed);
            }
            if args.exponential {
                // Same mean as lognormal(median 10 ms, σ 0.5): 10·e^(σ²/2) ≈ 11.3 ms.
                s = s.with_latency(Latency::Exponential {
                    mean: Duration::from_micros(11_331),
                });
            }
            if let Some(n) = args.workers {
                s = s.with_workers(n);
            }
            if let Some(sigma) = args.sigma {
                let median = Duration::from_millis(10);
                s = s.with_latency(if sigma == 0.0 {
                    Latency::Constant(median)
                } else {
                    Latency::LogNormal { median, sigma }
                });
            }
            s
        })
        .collect();
    let strategies: Vec<&str> = args.strategies.iter().map(String::as_str).collect();
    let tty = std::io::stderr().is_terminal();
    let report = Report::build(&scenarios, &strategies, |done, total| {
        if tty {
            let filled = done * 30 / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} runs",
                "#".repeat(filled),
                " ".repeat(30 - filled)
            );
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("peerlb-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = format!(
        "{}\n{}\nLatency percentiles are over successful requests; \"errors\" and \"sent to \
         degraded\" are shares of all measured requests; the ratio is to the same strategy's \
         p99 with every backend healthy.\n\n{}",
        report.setup(),
        report.markdown(),
        report.targets()
    );
    println!("{table}");
    if let Err(e) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("table.md"), &table))
        .and_then(|()| std::fs::write(args.out.join("p99.svg"), report.p99_svg()))
    {
        eprintln!("peerlb-sim: writing {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {0}/table.md and {0}/p99.svg",
        args.out
            .canonicalize()
            .unwrap_or(args.out.clone())
            .display()
    );
    ExitCode::SUCCESS
}

/// The fleet section: every (fleet, configuration) of `fleet::known_runs`.
fn run_fleet(args: &Args) -> ExitCode {
    let runs = fleet::known_runs(Duration::from_secs_f64(args.fleet_seconds));
    let tty = std::io::stderr().is_terminal();
    let mut results = Vec::with_capacity(runs.len());
    for (i, (f, config)) in runs.iter().enumerate() {
        match fleet::run(f, config) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("peerlb-sim: fleet {} / {}: {e}", f.name, config.name);
                return ExitCode::FAILURE;
            }
        }
        if tty {
            eprint!("\rfleet: {}/{} runs", i + 1, runs.len());
            if i + 1 == runs.len() {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
    let base = &runs[0].0;
    let mut cost = String::from(
        "| clients | config | peers held (all lists) | lists built in | run took (wall) |\n\
         |---:|---|---:|---:|---:|\n",
    );
    for r in results.iter().filter(|r| r.fleet == base.name) {
        cost.push_str(&format!(
            "| {} | {} `{}` | {} | {:.2} s | {:.2} s |\n",
            r.clients,
            r.config,
            r.strategy,
            r.peers_held,
            r.build_time.as_secs_f64(),
            r.wall_time.as_secs_f64()
        ));
    }
    let mean = base.client_rate * base.clients as f64 * (base.duration - base.warmup).as_secs_f64()
        / base.backends.len() as f64;
    let peak = peak_rss_mb().map_or(String::new(), |mb| {
        format!(" Peak resident memory of this process so far: {mb} MB.")
    });
    let table = format!(
        "## Fleet: {}\n\nBackends: {}, {} worker{} each (FIFO queue); b<j> in zone j mod 3, \
         client i in zone i mod 3. Degraded zone: c. {:.0} s measured after a {:.0} s warmup, \
         seed {}. Subsets: `peerlb::subset::deterministic_subset` (client id = its index); \
         every peer placed in its zone at priority 0; \"local zone\" = `ListOptions::local_zone` \
         set to the client's zone. Outlier ejection at its default (5 consecutive failures, at \
         most 10% of a list's peers). Fleets: {}.\n\n{}\n\
         requests/backend: measured requests per backend over all {} backends (idle ones \
         included; at {:.0} requests per backend on average, Poisson noise alone puts the max \
         near {:.1}× the mean: λ + √(2 λ ln n) over n backends); clients/backend: how many lists hold it (\"connections\"); \
         cross-zone: share of all requests sent outside the client's zone; healthy zones cross: \
         the same for the clients of zones a and b; degraded zone spill: share of zone c's \
         clients' requests sent to a and b; to degraded: share of all requests served by a \
         degraded backend.\n\n{}{}\n",
        base.describe_load(),
        fleet::FLEET_LATENCY.describe(),
        fleet::FLEET_WORKERS,
        if fleet::FLEET_WORKERS == 1 { "" } else { "s" },
        (base.duration - base.warmup).as_secs_f64(),
        base.warmup.as_secs_f64(),
        base.seed,
        fleet_names(&runs),
        fleet::markdown(&results),
        base.backends.len(),
        mean,
        1.0 + (2.0 * mean.max(1e-9) * (base.backends.len() as f64).ln()).sqrt() / mean.max(1e-9),
        cost,
        peak,
    );
    println!("{table}");
    if let Err(e) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("fleet.md"), &table))
    {
        eprintln!("peerlb-sim: writing {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {}/fleet.md",
        args.out
            .canonicalize()
            .unwrap_or(args.out.clone())
            .display()
    );
    ExitCode::SUCCESS
}

/// The process's peak resident set (`VmHWM`), in MB, where `/proc` has it.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `name` (description), ... of the distinct fleets in `runs`, in order.
fn fleet_names(runs: &[(fleet::Fleet, fleet::Config)]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (f, _) in runs {
        let line = format!("`{}` ({})", f.name, f.description);
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    seen.join(", ")
}
