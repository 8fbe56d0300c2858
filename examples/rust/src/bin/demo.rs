//! `make demo`: three real TCP servers on 127.0.0.1, 300 requests per strategy through a
//! peerlb `PeerList` from 8 client threads, and a table of how many requests each server
//! answered (counted by the servers). Server `c` is slower, so the load-aware strategies
//! (`fewest-pending`, `two-random-choices`) send it visibly less.
//!
//! Exits non-zero if any request failed or the servers' counts disagree with the client's.

use std::process::ExitCode;
use std::time::Duration;

use peerlb::StrategyKind;
use peerlb_examples::{run_strategy, Server};

const REQUESTS: usize = 300;
const CLIENT_THREADS: usize = 8;

fn main() -> ExitCode {
    let specs = [
        ("a", Duration::from_millis(2)),
        ("b", Duration::from_millis(2)),
        ("c", Duration::from_millis(20)),
    ];
    let mut servers = Vec::new();
    for (name, delay) in specs {
        match Server::start(name, delay) {
            Ok(s) => servers.push(s),
            Err(e) => {
                eprintln!("demo: cannot start server {name} on 127.0.0.1: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "peerlb {} demo: {} local TCP servers, {REQUESTS} requests per strategy from \
         {CLIENT_THREADS} client threads, one TCP connection per request.",
        peerlb::VERSION,
        servers.len()
    );
    for s in &servers {
        println!(
            "  server {}  {}  answers after {} ms",
            s.name(),
            s.addr(),
            s.delay().as_millis()
        );
    }
    println!("\nRequests answered, as counted by each server:\n");
    let columns: Vec<String> = servers
        .iter()
        .map(|s| format!("{} ({} ms)", s.name(), s.delay().as_millis()))
        .collect();
    let mut header = format!("{:<20}", "strategy");
    for c in &columns {
        header.push_str(&format!("{c:>11}"));
    }
    header.push_str(&format!("{:>8}{:>11}", "errors", "wall time"));
    println!("{header}");
    println!("{}", "-".repeat(header.len()));

    let mut ok = true;
    for kind in StrategyKind::ALL {
        let report = match run_strategy(kind, &servers, REQUESTS, CLIENT_THREADS) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("demo: {kind}: {e}");
                ok = false;
                continue;
            }
        };
        let mut row = format!("{:<20}", report.strategy);
        for n in &report.served {
            row.push_str(&format!("{n:>11}"));
        }
        row.push_str(&format!(
            "{:>8}{:>8} ms",
            report.errors,
            report.elapsed.as_millis()
        ));
        println!("{row}");
        for message in &report.error_samples {
            println!("    error: {message}");
        }
        if report.errors > 0 {
            ok = false;
        }
        if !report.counts_agree(&servers) {
            println!(
                "    mismatch: servers counted {:?}, the client got replies {:?}",
                report.served, report.replies
            );
            ok = false;
        }
    }
    for s in servers {
        s.stop();
    }
    println!(
        "\nround-robin and random split evenly whatever the servers' speed; fewest-pending and \
         two-random-choices\nsee requests pile up on the slow server c and send it less."
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("demo: some requests failed or counts disagree (see above)");
        ExitCode::FAILURE
    }
}
