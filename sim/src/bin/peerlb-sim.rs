//! `make sim`: every strategy on the known scenarios, in virtual time; prints the table and
//! the default's targets, and writes `target/sim/table.md` and `target/sim/p99.svg`.
//!
//! ```text
//! peerlb-sim [--rate N] [--seconds S] [--seed N] [--exponential | --sigma X]
//!            [--workers N] [--strategies SPEC,SPEC,...] [--scenarios NAME,...] [--out DIR]
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

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
            "-h" | "--help" => {
                return Err("usage: peerlb-sim [--rate N] [--seconds S] [--seed N] \
                            [--exponential | --sigma X] [--workers N] [--strategies SPEC,...] [--scenarios NAME,...] [--out DIR]"
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
