//! Writes `target/bench/summary.md` from criterion's results and the other surfaces'
//! fragments.
//!
//! * Criterion leaves one `new/estimates.json` (+ `new/benchmark.json` naming it) per
//!   benchmark under `target/criterion/`. Every criterion group becomes one markdown table
//!   in `target/bench/rust.md`: ns/op, Mop/s, the ratio to the [`BASELINE`](crate::BASELINE)
//!   of the same group and thread count, and the scaling from one thread to more.
//! * Any other `target/bench/*.md` (C, Python, Node, ...) is a *fragment*: it is appended
//!   to the summary as it is, in file-name order, after the Rust section.
//! * The comparison table ([`crate::compare`]: peerlb vs tower, uhashring, hashring, ...)
//!   goes to `target/bench/comparisons.md`, from criterion's tower group and every
//!   `target/bench/*.compare.json`.
//! * `summary.md` = a header, `comparisons.md`, `rust.md`, the other fragments, each
//!   preceded by its file name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::compare::{self, COMPARISONS_FILE};
use crate::{group_name, threads_label, BASELINE, CPU_LOG_FILE, TOWER_GROUP};

/// CPU ns/op by (group, function, parameter), from `rust-cpu.json` (see [`crate::CpuLog`]).
pub type CpuTimes = BTreeMap<(String, String, String), f64>;

/// Reads the CPU log the benchmarks wrote; a missing or malformed file gives none.
pub fn read_cpu_log(path: &Path) -> CpuTimes {
    let mut out = CpuTimes::new();
    let Ok(text) = fs::read_to_string(path) else {
        return out;
    };
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
        return out;
    };
    for item in items {
        let field = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
        let num = |k: &str| item.get(k).and_then(Value::as_f64);
        if let (Some(g), Some(f), Some(p), Some(cpu), Some(ops)) = (
            field("group"),
            field("function"),
            field("parameter"),
            num("cpu_ns"),
            num("ops"),
        ) {
            if ops > 0.0 {
                out.insert((g, f, p), cpu / ops);
            }
        }
    }
    out
}

/// The file the summary is written to, inside the output directory.
pub const SUMMARY_FILE: &str = "summary.md";

/// The Rust section, inside the output directory (also a fragment, written by this tool).
pub const RUST_FILE: &str = "rust.md";

/// One benchmark's result as criterion estimated it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Criterion group, e.g. `"choose+finish, 100 peers"`.
    pub group: String,
    /// Function id, e.g. `"round-robin"`.
    pub function: String,
    /// Parameter, e.g. `"2 threads"`.
    pub parameter: Option<String>,
    /// Nanoseconds per iteration (criterion's slope estimate, or the mean without one).
    pub ns: f64,
    /// The estimate's 95% confidence interval, in ns.
    pub ci: (f64, f64),
}

/// Reads every `**/new/estimates.json` under `dir` (criterion's output). A missing `dir`
/// gives no measurements; a malformed file is an error naming it.
pub fn read_criterion(dir: &Path) -> Result<Vec<Measurement>, String> {
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, &mut out)?;
    }
    out.sort_by(|a, b| {
        (
            natural_key(&a.group),
            &a.function,
            a.parameter.as_deref().map(natural_key),
        )
            .cmp(&(
                natural_key(&b.group),
                &b.function,
                b.parameter.as_deref().map(natural_key),
            ))
    });
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<Measurement>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for sub in dirs {
        let estimates = sub.join("estimates.json");
        let benchmark = sub.join("benchmark.json");
        if sub.file_name().is_some_and(|n| n == "new") && estimates.is_file() {
            out.push(read_one(&benchmark, &estimates)?);
        } else {
            walk(&sub, out)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

fn read_one(benchmark: &Path, estimates: &Path) -> Result<Measurement, String> {
    let id = read_json(benchmark)?;
    let est = read_json(estimates)?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let group =
        text(&id, "group_id").ok_or_else(|| format!("{} has no group_id", benchmark.display()))?;
    let function = text(&id, "function_id").unwrap_or_else(|| group.clone());
    let parameter = text(&id, "value_str");
    // Criterion reports the slope (time per iteration fitted over its linearly growing
    // samples) when it has one, else the mean.
    let stat = ["slope", "mean"]
        .iter()
        .find_map(|k| est.get(*k).filter(|v| !v.is_null()))
        .ok_or_else(|| format!("{} has neither slope nor mean", estimates.display()))?;
    let num = |v: Option<&Value>| v.and_then(Value::as_f64);
    let ns = num(stat.get("point_estimate"))
        .ok_or_else(|| format!("{} has no point_estimate", estimates.display()))?;
    let ci = stat.get("confidence_interval");
    let lo = num(ci.and_then(|c| c.get("lower_bound"))).unwrap_or(ns);
    let hi = num(ci.and_then(|c| c.get("upper_bound"))).unwrap_or(ns);
    Ok(Measurement {
        group,
        function,
        parameter,
        ns,
        ci: (lo, hi),
    })
}

/// A sort key that orders embedded numbers by value.
type NaturalKey = Vec<(u8, u64, String)>;

/// Sort key that orders embedded numbers by value ("10 peers" < "100 peers" < "1000 peers").
fn natural_key(s: &str) -> NaturalKey {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            let n = rest[..digits].parse().unwrap_or(u64::MAX);
            key.push((0, n, String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((1, 0, rest[..text].to_owned()));
            rest = &rest[text..];
        }
    }
    key
}

/// Row order: the built-in strategies in the order `StrategyKind::ALL` lists them, other
/// functions by name, the baseline last.
fn row_rank(function: &str) -> (usize, &str) {
    let order = peerlb::StrategyKind::ALL;
    match order.iter().position(|k| k.as_str() == function) {
        Some(i) => (i, ""),
        None if function == BASELINE => (usize::MAX, ""),
        None => (order.len(), function),
    }
}

/// `9.81`, `42.3`, `123`: three significant digits for humans.
fn fmt3(x: f64) -> String {
    if !x.is_finite() {
        "–".to_owned()
    } else if x.abs() < 10.0 {
        format!("{x:.2}")
    } else if x.abs() < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".to_owned()
    }
}

/// Renders the Rust section: one table per criterion group, then the targets.
pub fn render_rust(measurements: &[Measurement], cpu: &CpuTimes) -> String {
    let mut md = String::new();
    md.push_str("## Rust core (criterion)\n\n");
    if measurements.is_empty() {
        md.push_str("No criterion results found (run `make bench-rust`).\n");
        return md;
    }
    md.push_str(
        "One op = `PeerList::choose` with the next of 4096 shard keys + `Choice::finish` \
         (the baseline: a key fetch, its `choose` + `finish`; only the hash strategies use \
         the key). With N threads, ns/op is total wall time ÷ total ops over all threads \
         (throughput), so two threads that scale perfectly halve it. \
         *vs mutex* = the mutex baseline's ns/op ÷ this ns/op, same group and thread count, \
         same run (above 1 = faster than the baseline). *N/1 scaling* = throughput with \
         N threads ÷ throughput with 1. ± is criterion's 95% confidence interval. \
         *CPU ns/op* = CPU time the benchmark's threads used ÷ ops, over all of criterion's \
         runs of it (warm-up included): unlike wall time it hardly moves when other work \
         competes for the cores, and on 2 threads it shows what contention costs (ideally \
         the same as on 1 thread).\n\n",
    );
    let _ = writeln!(
        md,
        "The *{TOWER_GROUP}* group is the comparison with tower (`benches/vs_tower.rs`): \
         one op is a pick without a shard key among always-ready peers plus the end of the \
         request, on one thread (tower's `Balance` needs `&mut`), so it has no mutex \
         baseline; the comparison table above takes its ratios.\n"
    );
    let mut groups: BTreeMap<NaturalKey, (&str, Vec<&Measurement>)> = BTreeMap::new();
    for m in measurements {
        groups
            .entry(natural_key(&m.group))
            .or_insert_with(|| (m.group.as_str(), Vec::new()))
            .1
            .push(m);
    }
    for (name, ms) in groups.values() {
        render_group(&mut md, name, ms, cpu);
    }
    render_targets(&mut md, measurements, cpu);
    render_hot_path_targets(&mut md, measurements, cpu);
    md
}

/// peak-ewma choose+finish on one thread at [`TARGET_PEERS`] peers must take at most this
/// many ns.
pub const TARGET_PEAK_EWMA_NS: f64 = 60.0;
/// Round-robin's 2-thread CPU ns/op may be at most this many times its 1-thread one (the
/// contention-free form of the scaling target, for a machine too busy to show scaling).
pub const TARGET_CPU_RATIO: f64 = 1.2;

/// The hot-path targets of the Rust core that criterion's results decide: fewest-pending on
/// 2 threads, peak-ewma's latency, round-robin's scaling (or its CPU ns/op), each with a
/// verdict (the tower ratio is in the comparison table).
fn render_hot_path_targets(md: &mut String, ms: &[Measurement], cpu: &CpuTimes) {
    let group = group_name(TARGET_PEERS);
    let (one, two) = (threads_label(1), threads_label(2));
    let get = |f: &str, p: &str| {
        ms.iter()
            .find(|m| m.group == group && m.function == f && m.parameter.as_deref() == Some(p))
    };
    // A missed row says why: `why` is the reason the measurements give.
    let verdict = |ok: Option<bool>, why: String| match ok {
        Some(true) => "met".to_owned(),
        Some(false) => format!("**missed**: {why}"),
        None => "not measured".to_owned(),
    };
    let cpu_ns = |m: Option<&Measurement>| m.and_then(|m| cpu_of(cpu, m));
    let _ = writeln!(
        md,
        "### Hot-path targets ({TARGET_PEERS} peers)
"
    );
    md.push_str("| target | measured | verdict |\n|---|---:|---|\n");
    let (fp1, fp2) = (get("fewest-pending", &one), get("fewest-pending", &two));
    let scaling = fp1.zip(fp2).map(|(a, b)| a.ns / b.ns);
    let fp_cpu = cpu_ns(fp1).zip(cpu_ns(fp2));
    let cpu_note = fp_cpu.map_or(String::new(), |(a, b)| {
        format!(" (CPU ns/op {} / {})", fmt3(a), fmt3(b))
    });
    let _ = writeln!(
        md,
        "| `fewest-pending` 2-thread throughput ≥ 1-thread | {}{cpu_note} | {} |",
        scaling.map_or("–".into(), ratio),
        verdict(
            scaling.map(|x| x >= 1.0),
            contention(fp_cpu, "the heap's lock")
        )
    );
    let pe = get("peak-ewma", &one);
    let cpu_note = cpu_ns(pe).map_or(String::new(), |c| format!(" (CPU {} ns)", fmt3(c)));
    let _ = writeln!(
        md,
        "| `peak-ewma` choose+finish ≤ {TARGET_PEAK_EWMA_NS} ns on 1 thread | {} ns{cpu_note} | {} |",
        pe.map_or("–".into(), |m| fmt3(m.ns)),
        verdict(
            pe.map(|m| m.ns <= TARGET_PEAK_EWMA_NS),
            match cpu_ns(pe) {
                Some(c) if c <= TARGET_PEAK_EWMA_NS => {
                    "its CPU time is within the target: the thread waited for a core (a busy machine)".into()
                }
                Some(c) => format!("the work itself: {} ns of CPU per choose+finish", fmt3(c)),
                None => "no CPU time measured to tell the work from the machine's load".into(),
            }
        )
    );
    let (rr1, rr2) = (get("round-robin", &one), get("round-robin", &two));
    let scaling = rr1.zip(rr2).map(|(a, b)| a.ns / b.ns);
    let cpu_ratio = cpu_ns(rr1).zip(cpu_ns(rr2)).map(|(a, b)| b / a);
    let met = match (scaling, cpu_ratio) {
        (Some(s), _) if s >= TARGET_SCALING => Some(true),
        (_, Some(c)) => Some(c <= TARGET_CPU_RATIO),
        (Some(_), None) => Some(false),
        (None, None) => None,
    };
    let _ = writeln!(
        md,
        "| `round-robin` 2-thread scaling ≥ {TARGET_SCALING}×, or 2-thread CPU ns/op ≤ \
         {TARGET_CPU_RATIO}× 1-thread where the machine cannot show scaling | scaling {}, CPU ratio {} | {} |",
        scaling.map_or("–".into(), ratio),
        cpu_ratio.map_or("–".into(), ratio),
        verdict(
            met,
            contention(cpu_ns(rr1).zip(cpu_ns(rr2)), "the strategy's shared counter")
        )
    );
    md.push('\n');
}

/// Why a 2-thread target was missed, from the 1- and 2-thread CPU ns/op: the threads
/// contended (`shared` names for what), or they did not run at once (the machine).
fn contention(cpu: Option<(f64, f64)>, shared: &str) -> String {
    match cpu {
        Some((one, two)) if two / one > TARGET_CPU_RATIO => format!(
            "contention: each op costs {} the CPU time on 2 threads ({shared})",
            ratio(two / one)
        ),
        Some((one, two)) => format!(
            "2-thread CPU ns/op is {} the 1-thread one, so the threads did not contend: the \
             machine did not run them at once (shared cores)",
            ratio(two / one)
        ),
        None => "no CPU times measured to tell contention from the machine's load".into(),
    }
}

fn cpu_of(cpu: &CpuTimes, m: &Measurement) -> Option<f64> {
    let key = (
        m.group.clone(),
        m.function.clone(),
        m.parameter.clone().unwrap_or_default(),
    );
    cpu.get(&key).copied()
}

fn render_group(md: &mut String, name: &str, ms: &[&Measurement], cpu: &CpuTimes) {
    let has_cpu = ms.iter().any(|m| cpu_of(cpu, m).is_some());
    let mut params: Vec<Option<&str>> = Vec::new();
    for m in ms {
        if !params.contains(&m.parameter.as_deref()) {
            params.push(m.parameter.as_deref());
        }
    }
    params.sort_by_key(|p| p.map(natural_key));
    let mut functions: Vec<&str> = Vec::new();
    for m in ms {
        if !functions.contains(&m.function.as_str()) {
            functions.push(&m.function);
        }
    }
    functions.sort_by_key(|f| row_rank(f));
    let get = |f: &str, p: Option<&str>| {
        ms.iter()
            .find(|m| m.function == f && m.parameter.as_deref() == p)
            .copied()
    };
    let has_baseline = functions.contains(&BASELINE);

    let _ = writeln!(md, "### {name}\n");
    let mut header = vec!["".to_owned()];
    for p in &params {
        let label = p.map(|p| format!("{p}: ")).unwrap_or_default();
        header.push(format!("{label}ns/op"));
        header.push("Mop/s".to_owned());
        if has_baseline {
            header.push("vs mutex".to_owned());
        }
        if has_cpu {
            header.push("CPU ns/op".to_owned());
        }
    }
    let first = params[0];
    for p in &params[1..] {
        header.push(format!(
            "{}/{} scaling",
            leading_number(p.unwrap_or("")).unwrap_or(0),
            leading_number(first.unwrap_or("")).unwrap_or(0)
        ));
    }
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let align: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(md, "| {} |", align.join(" | "));
    for f in &functions {
        let mut row = vec![format!("`{f}`")];
        for p in &params {
            match get(f, *p) {
                Some(m) => {
                    let half = (m.ci.1 - m.ci.0) / 2.0;
                    row.push(format!("{} ± {}", fmt3(m.ns), fmt3(half)));
                    row.push(fmt3(1000.0 / m.ns));
                    if has_baseline {
                        let base = get(BASELINE, *p).map_or(f64::NAN, |b| b.ns / m.ns);
                        row.push(ratio(base));
                    }
                    if has_cpu {
                        row.push(cpu_of(cpu, m).map_or("–".to_owned(), fmt3));
                    }
                }
                None => {
                    let blanks = 2 + usize::from(has_baseline) + usize::from(has_cpu);
                    row.extend(std::iter::repeat("–".to_owned()).take(blanks));
                }
            }
        }
        for p in &params[1..] {
            let scaling = match (get(f, first), get(f, *p)) {
                (Some(one), Some(n)) => one.ns / n.ns,
                _ => f64::NAN,
            };
            row.push(ratio(scaling));
        }
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md.push('\n');
}

fn leading_number(s: &str) -> Option<u64> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    s[..digits].parse().ok()
}

/// The round-robin targets at 100 peers (one-thread latency, scaling, and against the baseline).
pub const TARGET_PEERS: usize = 100;
/// Round-robin choose+finish on one thread must take at most this many ns.
pub const TARGET_ONE_THREAD_NS: f64 = 15.0;
/// Two threads must give at least this many times one thread's throughput.
pub const TARGET_SCALING: f64 = 1.7;
/// Two threads must give at least this many times the baseline's two-thread throughput.
pub const TARGET_VS_BASELINE: f64 = 3.0;

fn render_targets(md: &mut String, ms: &[Measurement], cpu: &CpuTimes) {
    let group = group_name(TARGET_PEERS);
    let (one, two) = (threads_label(1), threads_label(2));
    let get = |f: &str, p: &str| {
        ms.iter()
            .find(|m| m.group == group && m.function == f && m.parameter.as_deref() == Some(p))
    };
    let rr1 = get("round-robin", &one);
    let rr2 = get("round-robin", &two);
    let base2 = get(BASELINE, &two);
    if rr1.is_none() && rr2.is_none() {
        return;
    }
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let _ = writeln!(md, "### Targets (`round-robin`, {TARGET_PEERS} peers)\n");
    md.push_str("| target | measured | verdict |\n|---|---:|---|\n");
    let ns = rr1.map(|m| m.ns);
    let cpu_note = rr1
        .and_then(|m| cpu_of(cpu, m))
        .map_or(String::new(), |c| format!(" (CPU {} ns)", fmt3(c)));
    let _ = writeln!(
        md,
        "| choose+finish on 1 thread ≤ {TARGET_ONE_THREAD_NS} ns | {} ns{cpu_note} | {} |",
        ns.map_or("–".into(), fmt3),
        verdict(ns.map(|x| x <= TARGET_ONE_THREAD_NS))
    );
    let scaling = rr1.zip(rr2).map(|(a, b)| a.ns / b.ns);
    let _ = writeln!(
        md,
        "| 2-thread throughput ≥ {TARGET_SCALING}× 1-thread | {} | {} |",
        scaling.map_or("–".into(), ratio),
        verdict(scaling.map(|x| x >= TARGET_SCALING))
    );
    let vs = rr2.zip(base2).map(|(a, b)| b.ns / a.ns);
    let _ = writeln!(
        md,
        "| 2-thread throughput ≥ {TARGET_VS_BASELINE}× the mutex baseline's 2-thread | {} | {} |",
        vs.map_or("–".into(), ratio),
        verdict(vs.map(|x| x >= TARGET_VS_BASELINE))
    );
    md.push('\n');
}

/// What [`write_summary`] did.
#[derive(Debug)]
pub struct Written {
    /// The summary's path.
    pub summary: PathBuf,
    /// How many criterion results went into the Rust section.
    pub measurements: usize,
    /// The fragments concatenated after it (file names).
    pub fragments: Vec<String>,
}

/// Reads criterion's results under `criterion_dir`, writes `out_dir/rust.md` (when there
/// are any), `out_dir/comparisons.md` (when there are comparisons: see [`compare`]) and
/// `out_dir/summary.md` (always): a header, `comparisons.md`, `rust.md`, then every other
/// `out_dir/*.md` in file-name order.
pub fn write_summary(criterion_dir: &Path, out_dir: &Path) -> Result<Written, String> {
    let measurements = read_criterion(criterion_dir)?;
    fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let write = |path: &Path, text: &str| {
        fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if !measurements.is_empty() {
        let cpu = read_cpu_log(&out_dir.join(CPU_LOG_FILE));
        write(&out_dir.join(RUST_FILE), &render_rust(&measurements, &cpu))?;
    }
    let mut comparisons = compare::from_criterion(&measurements);
    comparisons.extend(compare::read_fragments(out_dir)?);
    if !comparisons.is_empty() {
        write(
            &out_dir.join(COMPARISONS_FILE),
            &compare::render(&comparisons),
        )?;
    }
    let mut fragments: Vec<String> = fs::read_dir(out_dir)
        .map_err(|e| format!("cannot read {}: {e}", out_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md") && n != SUMMARY_FILE)
        .collect();
    fragments.sort_by_key(|n| (n != COMPARISONS_FILE, n != RUST_FILE, n.clone()));

    let mut md = String::new();
    md.push_str("# peerlb benchmarks\n\n");
    let _ = writeln!(
        md,
        "Written by `make bench` (`benches/src/summary.rs`) at {} on {}, {} CPUs visible, \
         load average {} (1/5/15 min; the benchmarks measure wall time, so anything else \
         running on the machine inflates them). Sections, each a file in `target/bench/`:\n",
        utc(SystemTime::now()),
        cpu_model().unwrap_or_else(|| "an unknown CPU".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average().unwrap_or_else(|| "unknown".into()),
    );
    let mut bodies = String::new();
    for name in &fragments {
        let path = out_dir.join(name);
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let modified = fs::metadata(&path).and_then(|m| m.modified()).ok().map(utc);
        let _ = writeln!(
            md,
            "- `{name}` (written {})",
            modified.unwrap_or_else(|| "at an unknown time".into())
        );
        let _ = writeln!(bodies, "<!-- {name} -->\n{}\n", text.trim_end());
    }
    if fragments.is_empty() {
        md.push_str("- none: no benchmark has written results yet\n");
    }
    md.push('\n');
    md.push_str(&bodies);
    let summary = out_dir.join(SUMMARY_FILE);
    write(&summary, &md)?;
    Ok(Written {
        summary,
        measurements: measurements.len(),
        fragments,
    })
}

fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// `"0.52 0.80 0.91"` from /proc/loadavg.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// `2026-11-23 10:40 UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missed_two_thread_target_says_whether_threads_contended() {
        let contended = contention(Some((10.0, 30.0)), "the lock");
        assert!(
            contended.starts_with("contention") && contended.contains("the lock"),
            "{contended}"
        );
        let machine = contention(Some((10.0, 11.0)), "the lock");
        assert!(machine.contains("did not contend"), "{machine}");
        assert!(contention(None, "x").contains("no CPU times"));
    }

    use super::*;

    fn fake(dir: &Path, group: &str, function: &str, param: &str, ns: f64) {
        let d = dir
            .join(group.replace([',', ' ', '+'], "_"))
            .join(function)
            .join(param.replace(' ', "_"))
            .join("new");
        fs::create_dir_all(&d).unwrap();
        let id = serde_json::json!({
            "group_id": group, "function_id": function, "value_str": param,
            "throughput": null, "full_id": format!("{group}/{function}/{param}"),
            "directory_name": "x", "title": "x"
        });
        let ci = serde_json::json!({"confidence_level": 0.95, "lower_bound": ns - 0.5, "upper_bound": ns + 0.5});
        let stat = serde_json::json!({"confidence_interval": ci, "point_estimate": ns, "standard_error": 0.1});
        let est = serde_json::json!({"mean": stat, "median": stat, "median_abs_dev": stat, "slope": stat, "std_dev": stat});
        fs::write(d.join("benchmark.json"), id.to_string()).unwrap();
        fs::write(d.join("estimates.json"), est.to_string()).unwrap();
        // criterion also keeps the previous run under base/, which must be ignored
        let base = d.parent().unwrap().join("base");
        fs::create_dir_all(&base).unwrap();
        fs::write(base.join("estimates.json"), "{}").unwrap();
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("peerlb-bench-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tables_ratios_targets_and_fragments() {
        let root = tempdir("summary");
        let crit = root.join("criterion");
        let g100 = group_name(100);
        let g1000 = group_name(1000);
        fake(&crit, &g100, "round-robin", "1 thread", 10.0);
        fake(&crit, &g100, "round-robin", "2 threads", 8.0);
        fake(&crit, &g100, BASELINE, "1 thread", 20.0);
        fake(&crit, &g100, BASELINE, "2 threads", 40.0);
        fake(&crit, &g1000, "random", "1 thread", 5.0);
        fake(
            &crit,
            TOWER_GROUP,
            "peerlb two-random-choices",
            "1 thread",
            50.0,
        );
        fake(&crit, TOWER_GROUP, crate::TOWER_PENDING, "1 thread", 200.0);
        let out = root.join("bench");
        fs::create_dir_all(&out).unwrap();
        let log = crate::CpuLog::new();
        let t = |ns| crate::Timing {
            wall: std::time::Duration::from_nanos(ns),
            cpu: Some(std::time::Duration::from_nanos(ns)),
        };
        log.record(&g100, "round-robin", "1 thread", 1000, t(9_000));
        log.record(&g100, "round-robin", "2 threads", 1000, t(12_000));
        log.save(&out.join(CPU_LOG_FILE)).unwrap();
        fs::write(out.join("python.md"), "## Python\n\npy table\n").unwrap();
        fs::write(out.join("c.md"), "## C\n\nc table\n").unwrap();
        let py = r#"[{"surface": "Python", "peerlb": "hash-ring", "peerlb_ns": 100,
                      "other": "uhashring", "other_ns": 1500, "goal": 10}]"#;
        fs::write(out.join("python.compare.json"), py).unwrap();

        let written = write_summary(&crit, &out).unwrap();
        assert_eq!(written.measurements, 7);
        assert_eq!(
            written.fragments,
            ["comparisons.md", "rust.md", "c.md", "python.md"]
        );
        let md = fs::read_to_string(out.join("summary.md")).unwrap();
        // 100 peers comes before 1000 peers; rust before c before python
        let pos = |s: &str| {
            md.find(s)
                .unwrap_or_else(|| panic!("{s:?} missing in\n{md}"))
        };
        assert!(pos("### choose+finish, 100 peers") < pos("### choose+finish, 1000 peers"));
        assert!(pos("## Rust core") < pos("## C\n") && pos("## C\n") < pos("## Python"));
        // the comparisons come first: tower's row (4×, goal 3×), then Python's (15×)
        assert!(pos("## peerlb vs other libraries") < pos("## Rust core"));
        assert!(pos("| **4.0×** | ≥ 3× | met |") < pos("| **15.0×** | ≥ 10× | met |"));
        // round-robin: 10 ns = 100 Mop/s, 2× the baseline on 1 thread, 5× on 2, scales 1.25×;
        // the CPU log covers round-robin only, the others show a dash there
        let rr = "| `round-robin` | 10.0 ± 0.50 | 100 | 2.00× | 9.00 \
                  | 8.00 ± 0.50 | 125 | 5.00× | 12.0 | 1.25× |";
        assert!(md.contains(rr), "{md}");
        let base = "| `mutex-baseline` | 20.0 ± 0.50 | 50.0 | 1.00× | – \
                    | 40.0 ± 0.50 | 25.0 | 1.00× | – | 0.50× |";
        assert!(md.contains(base), "{md}");
        assert!(md.contains("2/1 scaling"));
        // a group without the baseline has no ratio column
        assert!(md.contains("| `random` | 5.00 ± 0.50 | 200 |\n"), "{md}");
        // targets: 10 ns met, 1.25× scaling missed, 5× baseline met
        assert!(md.contains("| 10.0 ns (CPU 9.00 ns) | met |"), "{md}");
        assert!(md.contains("| 1.25× | **missed** |"), "{md}");
        assert!(md.contains("| 5.00× | met |"), "{md}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_results_still_writes_a_summary() {
        let root = tempdir("empty");
        let out = root.join("bench");
        let written = write_summary(&root.join("nowhere"), &out).unwrap();
        assert_eq!(written.measurements, 0);
        assert!(written.fragments.is_empty());
        let md = fs::read_to_string(&written.summary).unwrap();
        assert!(md.contains("none: no benchmark has written results yet"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn malformed_estimates_name_the_file() {
        let root = tempdir("bad");
        let d = root.join("g/f/new");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("benchmark.json"), r#"{"group_id":"g"}"#).unwrap();
        fs::write(d.join("estimates.json"), "not json").unwrap();
        let err = read_criterion(&root).unwrap_err();
        assert!(err.contains("estimates.json"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn natural_order_and_dates() {
        let mut v = vec!["a 1000 b", "a 10 b", "a 100 b"];
        v.sort_by_key(|s| natural_key(s));
        assert_eq!(v, ["a 10 b", "a 100 b", "a 1000 b"]);
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_429_800);
        assert_eq!(utc(t), "2026-11-23 10:30 UTC");
    }
}
