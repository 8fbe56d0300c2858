//! `make soak`: chaos against real local processes for a bounded time.
//!
//! Eight HTTP backends (child processes), a list per surface (Rust in this process, Python
//! and Node in driver processes), each fed by the file updater (six backends) and the DNS
//! updater (two, from a DNS server this process runs), with client workers sending
//! requests through retries at a steady rate, while a seeded schedule injects faults. The
//! invariants are checked every second and at the end; the report goes to
//! `target/soak/` (see `soak/README.md`).
//!
//! ```text
//! soak [--seconds N] [--seed S] [--out DIR] [--surfaces rust,python,node]
//!      [--python PATH] [--node PATH] [--node-package DIR]
//! soak backend --addr IP:PORT      (a backend process; the harness starts these)
//! ```

mod backend;
mod checks;
mod dns;
mod faults;
mod report;
mod surface;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use backend::{Backend, Mode};
use checks::{Dead, LogTail, SurfaceChecks};
use dns::{DnsMode, DnsServer};
use faults::{Action, Kind, Schedule, BACKENDS, FILE_BACKENDS};
use surface::{Config, ProcessSurface, RustSurface, Surface, THROWING};

/// Client workers per surface, and requests per second each.
const WORKERS: usize = 4;
const RATE: u32 = 20;
/// Consecutive failures that eject a peer in the soak's lists.
const FAILURES: u32 = 3;

struct Options {
    seconds: u64,
    seed: u64,
    out: PathBuf,
    surfaces: Vec<String>,
    python: String,
    node: String,
    node_package: String,
}

fn options() -> Options {
    let mut o = Options {
        seconds: std::env::var("SOAK_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600),
        seed: 1,
        out: PathBuf::from("target/soak"),
        surfaces: vec!["rust".into(), "python".into(), "node".into()],
        python: std::env::var("SOAK_PYTHON").unwrap_or_else(|_| "python3".into()),
        node: std::env::var("SOAK_NODE").unwrap_or_else(|_| "node".into()),
        node_package: std::env::var("SOAK_NODE_PACKAGE").unwrap_or_else(|_| "bindings/node".into()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seconds" => o.seconds = value.parse().expect("--seconds N"),
            "--seed" => o.seed = value.parse().expect("--seed N"),
            "--out" => o.out = PathBuf::from(value),
            "--surfaces" => o.surfaces = value.split(',').map(str::to_owned).collect(),
            "--python" => o.python = value,
            "--node" => o.node = value,
            "--node-package" => o.node_package = value,
            other => panic!("unknown option {other:?}"),
        }
        i += 2;
    }
    o
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The peers file: the file-fed backends, or the same with a line that does not parse.
fn write_peers(path: &PathBuf, ports: &[u16], bad: bool) {
    let mut text = String::from("# soak: the file-fed backends\n");
    for p in ports {
        text.push_str(&format!("127.0.0.1:{p}\n"));
    }
    if bad {
        text.push_str("this is not a peer\n");
    }
    // By rename, as the file updater's docs ask: never seen half-written.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write the peers file");
    std::fs::rename(&tmp, path).expect("rename the peers file");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Per surface: RSS and descriptor samples, and how they compare with the warm-up.
struct Process {
    curve: report::Curve,
    rss_base: Option<f64>,
    fds_base: Option<f64>,
    rss_out: Vec<String>,
    fds_max: usize,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("backend") {
        let addr: SocketAddr = std::env::args()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .expect("soak backend --addr IP:PORT");
        backend::serve(addr);
    }
    let o = options();
    std::fs::create_dir_all(&o.out).expect("the output folder");
    let thrown = Arc::new(AtomicU64::new(0));
    let panics = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let (thrown, panics) = (thrown.clone(), panics.clone());
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() == Some(&THROWING) {
                thrown.fetch_add(1, Ordering::Relaxed);
            } else {
                panics.lock().unwrap().push(info.to_string());
                default(info);
            }
        }));
    }

    let ports: Vec<u16> = (0..BACKENDS).map(|_| free_port()).collect();
    println!(
        "soak: {} s, seed {}, backends on 127.0.0.1:{ports:?}",
        o.seconds, o.seed
    );
    let mut backends: Vec<Backend> = ports
        .iter()
        .map(|p| Backend::start(SocketAddr::from(([127, 0, 0, 1], *p))))
        .collect();
    let dns = DnsServer::start(ports[FILE_BACKENDS..].to_vec());
    let out = std::fs::canonicalize(&o.out).expect("the output folder");
    let peers_file = out.join("peers.txt");
    for name in &o.surfaces {
        // Made here, so the harness can follow them from the start.
        std::fs::write(out.join(format!("{name}.log")), "").expect("a surface log");
    }
    write_peers(&peers_file, &ports[..FILE_BACKENDS], false);

    let config = |name: &str, strategy: &str| Config {
        file: peers_file.to_string_lossy().into_owned(),
        dns: dns.addr,
        dns_name: dns::NAME.to_owned(),
        log: out
            .join(format!("{name}.log"))
            .to_string_lossy()
            .into_owned(),
        strategy: strategy.to_owned(),
        workers: WORKERS,
        rate_per_worker: RATE,
        ejection_failures: FAILURES,
    };
    let drivers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drivers");
    let mut surfaces: Vec<Box<dyn Surface>> = Vec::new();
    for name in &o.surfaces {
        let s: Box<dyn Surface> = match name.as_str() {
            "rust" => Box::new(RustSurface::start(&config("rust", "fewest-pending"))),
            "python" => Box::new(ProcessSurface::start(
                "python",
                &o.python,
                &[drivers.join("driver.py").to_string_lossy().into_owned()],
                &config("python", "round-robin"),
            )),
            "node" => Box::new(ProcessSurface::start(
                "node",
                &o.node,
                &[
                    // Throwing subscribers are process warnings: counted, not printed.
                    "--no-warnings".to_owned(),
                    drivers.join("driver.js").to_string_lossy().into_owned(),
                    o.node_package.clone(),
                ],
                &config("node", "two-random-choices"),
            )),
            other => panic!("unknown surface {other:?}"),
        };
        surfaces.push(s);
    }
    let mut tails: Vec<LogTail> = o
        .surfaces
        .iter()
        .map(|n| LogTail::open(&config(n, "").log).expect("a surface log"))
        .collect();
    let mut checks: Vec<SurfaceChecks> = o
        .surfaces
        .iter()
        .map(|n| SurfaceChecks::new(n, FAILURES, WORKERS))
        .collect();
    let mut processes: Vec<Process> = o
        .surfaces
        .iter()
        .map(|n| Process {
            curve: report::Curve {
                name: n.clone(),
                samples: Vec::new(),
            },
            rss_base: None,
            fds_base: None,
            rss_out: Vec::new(),
            fds_max: 0,
        })
        .collect();
    let mut dead: Vec<Dead> = Vec::new();
    // (surface, unix ms) of every report that said the list was in panic mode.
    let mut panic_reports: Vec<(usize, u64)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut last_reports: Vec<Value> = vec![json!({}); surfaces.len()];

    let seconds = o.seconds as f64;
    let warmup = (seconds * 0.25).clamp(10.0, 60.0);
    let baseline_until = warmup + 5.0;
    let start = Instant::now();
    let run = Duration::from_secs(o.seconds);
    let mut schedule = Schedule::new(o.seed, surfaces.len(), Duration::from_secs(3));
    let mut next_check = Duration::ZERO;
    loop {
        let now = start.elapsed();
        let starting = now + Duration::from_secs(8) < run;
        if !starting && !schedule.busy() && now >= run {
            break;
        }
        for action in schedule.due(now, starting) {
            apply(
                &action,
                &mut backends,
                &dns,
                &peers_file,
                &ports,
                &mut surfaces,
                &mut dead,
                &mut problems,
            );
        }
        if now >= next_check {
            next_check = now + Duration::from_secs(1);
            let t = now.as_secs_f64();
            for (i, s) in surfaces.iter_mut().enumerate() {
                let report = s.command(json!({"cmd": "report"}));
                if report["dead"] == true {
                    problems.push(format!("{}: the driver died", s.name()));
                }
                if report["panic"] == true {
                    panic_reports.push((i, surface::unix_ms()));
                }
                let pending = report["pending"].as_u64().unwrap_or(0);
                if pending > WORKERS as u64 * 2 {
                    problems.push(format!(
                        "{}: {pending} requests pending with {WORKERS} workers",
                        s.name()
                    ));
                }
                last_reports[i] = report;
                if let Some((rss, fds)) = checks::sample(s.pid()) {
                    let p = &mut processes[i];
                    p.curve.samples.push((t, rss, fds));
                    if t >= baseline_until && p.rss_base.is_none() {
                        let window: Vec<&(f64, u64, usize)> =
                            p.curve.samples.iter().filter(|x| x.0 >= warmup).collect();
                        p.rss_base = Some(median(window.iter().map(|x| x.1 as f64).collect()));
                        p.fds_base = Some(median(window.iter().map(|x| x.2 as f64).collect()));
                    }
                    if let Some(base) = p.rss_base {
                        let drift = rss as f64 / base - 1.0;
                        if drift.abs() > 0.10 && p.rss_out.len() < 10 {
                            p.rss_out.push(format!(
                                "{t:.0} s: {:.1} MB ({:+.1} % of {:.1} MB)",
                                rss as f64 / 1e6,
                                drift * 100.0,
                                base / 1e6
                            ));
                        }
                        p.fds_max = p.fds_max.max(fds);
                    }
                }
            }
            for (i, c) in checks.iter_mut().enumerate() {
                c.take(tails[i].lines(), &dead);
                let reports = &panic_reports;
                c.check_dead(&dead, &|port, from| {
                    let until = dead
                        .iter()
                        .find(|d| d.port == port && d.from_ms == from)
                        .and_then(|d| d.until_ms)
                        .unwrap_or(u64::MAX);
                    reports
                        .iter()
                        .any(|(s, t)| *s == i && *t >= from && *t <= until.saturating_add(1000))
                });
            }
            if !problems.is_empty() || checks.iter().any(|c| !c.violations.is_empty()) {
                // Keep running (to see the whole run) but say so as it happens.
                for p in problems.iter() {
                    eprintln!("soak: PROBLEM {p}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // The end: clients stop, in-flight requests finish, every list is asked once more.
    let mut finals = Vec::new();
    for s in surfaces.iter_mut() {
        let r = s.command(json!({"cmd": "quit"}));
        finals.push(r);
    }
    std::thread::sleep(Duration::from_millis(300));
    for (i, c) in checks.iter_mut().enumerate() {
        c.take(tails[i].lines(), &dead);
    }
    let exits: Vec<String> = surfaces.iter_mut().map(|s| s.exit_status()).collect();
    drop(surfaces);

    // Verdicts.
    let mut failures: Vec<String> = problems.clone();
    for p in panics.lock().unwrap().iter() {
        failures.push(format!("rust: a panic: {p}"));
    }
    for (i, f) in finals.iter().enumerate() {
        let name = &o.surfaces[i];
        if exits[i] != "exit 0" && exits[i] != "in process" {
            failures.push(format!("{name}: the driver ended with {}", exits[i]));
        }
        if f["final"] != true {
            failures.push(format!("{name}: no final report ({f})"));
            continue;
        }
        if f["pending"].as_u64() != Some(0) {
            failures.push(format!(
                "{name}: {} requests still pending at the end",
                f["pending"]
            ));
        }
        if f["caller_errors"].as_u64() != Some(0) {
            failures.push(format!(
                "{name}: {} errors reached callers",
                f["caller_errors"]
            ));
        }
        for p in f["problems"].as_array().into_iter().flatten() {
            failures.push(format!("{name}: {}", p.as_str().unwrap_or_default()));
        }
    }
    for c in &checks {
        for v in &c.violations {
            failures.push(format!("{}: {v}", c.name));
        }
    }
    for p in &processes {
        if p.rss_base.is_none() && seconds >= baseline_until {
            failures.push(format!("{}: no RSS samples", p.curve.name));
        }
        for r in &p.rss_out {
            failures.push(format!(
                "{}: RSS outside ±10 % of the warm-up: {r}",
                p.curve.name
            ));
        }
        if p.fds_base.is_some() {
            // Pooled connections come and go with the faults (a backend killed, the DNS
            // peers removed): the count swings by up to workers x backends. Flat means the
            // end stays under the highest count of the first half after the warm-up (when
            // every kind of fault has happened), not under one moment's count.
            let first_half = baseline_until.max(seconds / 2.0);
            let ceiling = p
                .curve
                .samples
                .iter()
                .filter(|x| x.0 >= warmup && x.0 <= first_half)
                .map(|x| x.2)
                .max()
                .unwrap_or(0) as f64;
            let last: Vec<f64> = p
                .curve
                .samples
                .iter()
                .rev()
                .take(5)
                .map(|x| x.2 as f64)
                .collect();
            let end = median(last);
            if end > ceiling + 4.0 {
                failures.push(format!(
                    "{}: open descriptors grew from at most {ceiling:.0} (first half) to {end:.0}",
                    p.curve.name
                ));
            }
        }
    }

    // The report.
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    for (_, k, _) in &schedule.injected {
        *kinds.entry(*k).or_default() += 1;
    }
    let mut md = String::new();
    md.push_str(&format!(
        "# soak: {} s, seed {}, {} surfaces, {} backends\n\n",
        o.seconds,
        o.seed,
        o.surfaces.len(),
        BACKENDS
    ));
    md.push_str("| surface | requests | ok | errors seen by callers | expected (list stopped) | attempts | failed attempts | ejections | restorations | subscriber throws | RSS warm-up → end | fds warm-up → end |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for (i, f) in finals.iter().enumerate() {
        let c = &checks[i];
        let p = &processes[i];
        let end = p.curve.samples.last();
        let throws = match o.surfaces[i].as_str() {
            "rust" => thrown.load(Ordering::Relaxed),
            _ => f["thrown"].as_u64().unwrap_or(0),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {throws} | {} → {} | {} → {} |\n",
            o.surfaces[i],
            f["requests"],
            f["ok"],
            f["caller_errors"],
            f["expected_errors"],
            c.attempts,
            c.failed_attempts,
            c.events.get("ejected").copied().unwrap_or(0),
            c.events.get("restored").copied().unwrap_or(0),
            p.rss_base
                .map_or("-".into(), |b| format!("{:.1} MB", b / 1e6)),
            end.map_or("-".into(), |e| format!("{:.1} MB", e.1 as f64 / 1e6)),
            p.fds_base.map_or("-".into(), |b| format!("{b:.0}")),
            end.map_or("-".into(), |e| e.2.to_string()),
        ));
    }
    md.push_str(&format!(
        "\n{} faults injected:\n\n| fault | count |\n|---|---:|\n",
        schedule.injected.len()
    ));
    for (k, n) in &kinds {
        md.push_str(&format!("| {} | {n} |\n", k.describe()));
    }
    md.push_str(&format!(
        "\nDNS queries answered: {}.\n",
        dns.served.load(Ordering::Relaxed)
    ));
    md.push_str("\nInvariants: pending back to 0; no request to a backend dead longer than its ejection allows; no caller error (at least three backends stay healthy); RSS within ±10 % of the warm-up; open descriptors flat; per-peer event order; no panic, abort or unhandled rejection.\n\n");
    if failures.is_empty() {
        md.push_str("**Every invariant held.**\n");
    } else {
        md.push_str(&format!("**{} invariant violations:**\n\n", failures.len()));
        for f in &failures {
            md.push_str(&format!("- {f}\n"));
        }
    }
    md.push_str("\nFaults in order:\n\n");
    for (t, k, what) in &schedule.injected {
        md.push_str(&format!(
            "- {:.1} s: {} ({what})\n",
            t.as_secs_f64(),
            k.describe()
        ));
    }
    let curves: Vec<report::Curve> = processes.into_iter().map(|p| p.curve).collect();
    std::fs::write(o.out.join("report.md"), &md).expect("write the report");
    std::fs::write(
        o.out.join("rss-fds.svg"),
        report::svg(&curves, seconds, warmup),
    )
    .expect("write the SVG");
    println!("{md}");
    println!(
        "soak: report in {}, curves in {}",
        o.out.join("report.md").display(),
        o.out.join("rss-fds.svg").display()
    );
    drop(backends);
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    action: &Action,
    backends: &mut [Backend],
    dns: &DnsServer,
    peers_file: &PathBuf,
    ports: &[u16],
    surfaces: &mut [Box<dyn Surface>],
    dead: &mut Vec<Dead>,
    problems: &mut Vec<String>,
) {
    let peer = |b: usize| format!("127.0.0.1:{}", ports[b]);
    let mut all = |cmd: Value, problems: &mut Vec<String>| {
        for s in surfaces.iter_mut() {
            let r = s.command(cmd.clone());
            if r["ok"] != true {
                problems.push(format!("{}: {cmd} failed: {r}", s.name()));
            }
        }
    };
    match action {
        Action::Kill(b) => {
            dead.push(Dead {
                port: ports[*b],
                from_ms: surface::unix_ms(),
                until_ms: None,
            });
            backends[*b].kill();
        }
        Action::Restart(b) => {
            backends[*b].restart();
            if let Some(d) = dead
                .iter_mut()
                .rev()
                .find(|d| d.port == ports[*b] && d.until_ms.is_none())
            {
                d.until_ms = Some(surface::unix_ms());
            }
        }
        Action::Slow(b) => backends[*b].set_mode(Mode::Slow),
        Action::Fail(b) => backends[*b].set_mode(Mode::Fail),
        Action::Heal(b) => backends[*b].set_mode(Mode::Ok),
        Action::DnsServFail => dns.set_mode(DnsMode::ServFail),
        Action::DnsEmpty => dns.set_mode(DnsMode::Empty),
        Action::DnsAnswer => dns.set_mode(DnsMode::Answer),
        Action::BadFile => write_peers(peers_file, &ports[..FILE_BACKENDS], true),
        Action::GoodFile => write_peers(peers_file, &ports[..FILE_BACKENDS], false),
        Action::Disable(b) => all(
            json!({"cmd": "admin", "action": "disable", "peer": peer(*b)}),
            problems,
        ),
        Action::Enable(b) => all(
            json!({"cmd": "admin", "action": "enable", "peer": peer(*b)}),
            problems,
        ),
        Action::Reset(b) => all(
            json!({"cmd": "admin", "action": "reset", "peer": peer(*b)}),
            problems,
        ),
        Action::ThrowingOn => all(json!({"cmd": "throwing", "on": true}), problems),
        Action::ThrowingOff => all(json!({"cmd": "throwing", "on": false}), problems),
        Action::Stop(s) | Action::Start(s) => {
            let cmd = if matches!(action, Action::Stop(_)) {
                "stop"
            } else {
                "start"
            };
            if let Some(surface) = surfaces.get_mut(*s) {
                let r = surface.command(json!({"cmd": cmd}));
                if r["ok"] != true {
                    problems.push(format!("{}: {cmd} failed: {r}", surface.name()));
                }
            }
        }
    }
}
