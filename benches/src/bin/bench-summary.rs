//! `bench-summary [--criterion DIR] [--out DIR]`: writes `target/bench/summary.md` from
//! criterion's results (`target/criterion`) and the other surfaces' `target/bench/*.md`
//! fragments, and prints it. See `benches/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The workspace's target directory, as cargo and criterion pick it.
    let target = peerlb_benches::target_dir();
    let mut criterion = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("criterion"));
    let mut out = target.join("bench");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--criterion" => &mut criterion,
            "--out" => &mut out,
            "-h" | "--help" => {
                println!("usage: bench-summary [--criterion DIR] [--out DIR]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("bench-summary: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        };
        match args.next() {
            Some(v) => *slot = PathBuf::from(v),
            None => {
                eprintln!("bench-summary: {arg} needs a directory");
                return ExitCode::from(2);
            }
        }
    }
    match peerlb_benches::summary::write_summary(&criterion, &out) {
        Ok(written) => {
            match std::fs::read_to_string(&written.summary) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("bench-summary: cannot read back the summary: {e}"),
            }
            eprintln!(
                "bench-summary: wrote {} ({} criterion results; sections: {})",
                written.summary.display(),
                written.measurements,
                if written.fragments.is_empty() {
                    "none".to_owned()
                } else {
                    written.fragments.join(", ")
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-summary: {e}");
            ExitCode::FAILURE
        }
    }
}
