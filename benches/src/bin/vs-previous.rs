//! `vs-previous OLD_CHOOSE_LOOP NEW_CHOOSE_LOOP`: the hot path of this core against a
//! previous one, in the same run: round-robin choose+finish at 100 peers on one thread,
//! in wall ns/op, CPU ns/op and instructions per op (`valgrind --tool=callgrind`, which
//! counts instructions, not time, so it is exact whatever else the machine does).
//!
//! Both arguments are `choose-loop` binaries (`benches/src/bin/choose-loop.rs`), one built
//! from the previous revision (`make bench-previous` builds it from git history). The two
//! are run alternately, five times each; the table shows the medians. Writes
//! `target/bench/previous.md`.

use std::fmt::Write as _;
use std::process::{Command, ExitCode};

use peerlb_benches::target_dir;

const STRATEGY: &str = "round-robin";
const PEERS: &str = "100";
const OPS: u64 = 20_000_000;
const RUNS: usize = 5;
/// Allowed noise on wall and CPU time before "no worse" fails.
const TIME_SLACK: f64 = 1.05;

/// (wall ns/op, CPU ns/op) from one `choose-loop` run.
fn time_run(bin: &str) -> Option<(f64, f64)> {
    let out = Command::new(bin)
        .args([STRATEGY, PEERS, "1", &OPS.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let number_before = |marker: &str| -> Option<f64> {
        let end = text.find(marker)?;
        text[..end].split_whitespace().last()?.parse().ok()
    };
    Some((number_before(" ns/op wall")?, number_before(" ns/op CPU")?))
}

/// Instructions callgrind counts for a run of `ops` operations.
fn instructions(bin: &str, ops: u64) -> Option<f64> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            bin,
            STRATEGY,
            PEERS,
            "1",
            &ops.to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.contains("refs:"))?;
    line.split(':').nth(1)?.trim().replace(',', "").parse().ok()
}

/// Instructions per choose+finish: the difference of two run lengths, so setup cancels.
fn instructions_per_op(bin: &str) -> Option<f64> {
    let short = instructions(bin, 1_000_000)?;
    let long = instructions(bin, 2_000_000)?;
    Some((long - short) / 1_000_000.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [old, new] = args.as_slice() else {
        eprintln!("usage: vs-previous OLD_CHOOSE_LOOP NEW_CHOOSE_LOOP");
        return ExitCode::from(2);
    };
    let (mut old_t, mut new_t) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (bin, into) in [(old, &mut old_t), (new, &mut new_t)] {
            match time_run(bin) {
                Some(t) => into.push(t),
                None => {
                    eprintln!("vs-previous: {bin} did not run");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let wall = |v: &[(f64, f64)]| median(v.iter().map(|t| t.0).collect());
    let cpu = |v: &[(f64, f64)]| median(v.iter().map(|t| t.1).collect());
    let (old_wall, new_wall) = (wall(&old_t), wall(&new_t));
    let (old_cpu, new_cpu) = (cpu(&old_t), cpu(&new_t));
    let old_ir = instructions_per_op(old);
    let new_ir = instructions_per_op(new);
    let verdict = |ok: bool| if ok { "**met**" } else { "**missed**" };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## This core against the previous one (`vs-previous`)\n\n\
         `{STRATEGY}` choose+finish, {PEERS} peers, one thread, {OPS} ops per run, \
         {RUNS} runs of each binary alternately (medians); instructions from callgrind \
         (2 M ops minus 1 M ops, per op). The previous core is built from git history by \
         `make bench-previous`.\n\n\
         | | previous | this | ratio | no worse? |\n|---|---:|---:|---:|---|"
    );
    let _ = writeln!(
        md,
        "| wall ns/op | {old_wall:.2} | {new_wall:.2} | {:.2}× | {} |",
        new_wall / old_wall,
        verdict(new_wall <= old_wall * TIME_SLACK)
    );
    let _ = writeln!(
        md,
        "| CPU ns/op | {old_cpu:.2} | {new_cpu:.2} | {:.2}× | {} |",
        new_cpu / old_cpu,
        verdict(new_cpu <= old_cpu * TIME_SLACK)
    );
    match (old_ir, new_ir) {
        (Some(o), Some(n)) => {
            let _ = writeln!(
                md,
                "| instructions/op | {o:.1} | {n:.1} | {:.3}× | {} |",
                n / o,
                verdict(n <= o + 0.5)
            );
        }
        _ => md.push_str("| instructions/op | – | – | – | not measured (no valgrind) |\n"),
    }
    let _ = writeln!(
        md,
        "\nTime rows allow {:.0} % for noise; instruction counts must not grow.",
        (TIME_SLACK - 1.0) * 100.0
    );
    let dir = target_dir().join("bench");
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) = std::fs::write(dir.join("previous.md"), &md) {
        eprintln!("vs-previous: cannot write {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    print!("{md}");
    ExitCode::SUCCESS
}
