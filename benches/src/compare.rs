//! The comparison table: peerlb next to another library doing the same job, both measured
//! in the same run, as one markdown table (`target/bench/comparisons.md`, the first
//! section of the summary).
//!
//! Rows come from two places:
//!
//! * **Rust**: criterion's results of `benches/vs_tower.rs` (group
//!   [`TOWER_GROUP`](crate::TOWER_GROUP)), paired by [`TOWER_PAIRS`](crate::TOWER_PAIRS).
//! * **Other surfaces**: every `target/bench/*.compare.json` (`make bench-python` writes
//!   `python.compare.json`, `make bench-node` `node.compare.json`), read in file-name
//!   order. Each is a JSON array of rows:
//!
//! ```text
//! {"surface": "Python", "peerlb": "hash-ring ...", "peerlb_ns": 250.0,
//!  "other": "uhashring ...", "other_ns": 2500.0,
//!  "goal": 10,                                              (optional)
//!  "baseline": "empty method call", "baseline_ns": 40.0}    (optional, same run)
//! ```
//!
//! The *speed-up* is the other library's ns/op ÷ peerlb's (above 1: peerlb is faster).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::summary::Measurement;
use crate::{peerlb_function, threads_label, TOWER_GOAL, TOWER_GROUP, TOWER_PAIRS, TOWER_PEERS};

/// File name suffix of a surface's comparison rows inside `target/bench/`.
pub const COMPARE_SUFFIX: &str = ".compare.json";

/// The comparison section, inside the output directory (written by the summary tool).
pub const COMPARISONS_FILE: &str = "comparisons.md";

/// One row: a peerlb operation and another library's operation doing the same job.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `"Rust"`, `"Python"`, `"Node"`.
    pub surface: String,
    /// What peerlb did, e.g. `"two-random-choices choose + finish"`.
    pub peerlb: String,
    /// peerlb's time per op, ns.
    pub peerlb_ns: f64,
    /// What the other library did, e.g. `"tower p2c PendingRequests"`.
    pub other: String,
    /// The other library's time per op, ns.
    pub other_ns: f64,
    /// The speed-up peerlb aims for, if any.
    pub goal: Option<f64>,
    /// A floor measured in the same run (e.g. an empty call into the binding) and its ns.
    pub baseline: Option<(String, f64)>,
}

impl Comparison {
    /// The other library's ns/op ÷ peerlb's: above 1, peerlb is faster.
    ///
    /// ```
    /// use peerlb_benches::compare::Comparison;
    /// let c = Comparison {
    ///     surface: "Rust".into(), peerlb: "a".into(), peerlb_ns: 50.0,
    ///     other: "b".into(), other_ns: 200.0, goal: Some(3.0), baseline: None,
    /// };
    /// assert_eq!(c.speedup(), 4.0);
    /// ```
    pub fn speedup(&self) -> f64 {
        self.other_ns / self.peerlb_ns
    }
}

/// The tower rows from criterion's results (pairs with a side missing are left out).
pub fn from_criterion(measurements: &[Measurement]) -> Vec<Comparison> {
    let parameter = threads_label(1);
    let ns = |function: &str| {
        measurements
            .iter()
            .find(|m| {
                m.group == TOWER_GROUP
                    && m.function == function
                    && m.parameter.as_deref() == Some(parameter.as_str())
            })
            .map(|m| m.ns)
    };
    TOWER_PAIRS
        .iter()
        .filter_map(|&(kind, tower)| {
            let ours = ns(&peerlb_function(kind))?;
            let theirs = ns(tower)?;
            Some(Comparison {
                surface: "Rust".into(),
                peerlb: format!("`{kind}` choose + finish, {TOWER_PEERS} peers"),
                peerlb_ns: ours,
                other: format!("{tower}: poll_ready + call + response, {TOWER_PEERS} services"),
                other_ns: theirs,
                goal: Some(TOWER_GOAL),
                baseline: None,
            })
        })
        .collect()
}

/// Reads every `*.compare.json` in `dir`, in file-name order. A malformed file is an
/// error naming it.
pub fn read_fragments(dir: &Path) -> Result<Vec<Comparison>, String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(COMPARE_SUFFIX))
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let bad = |why: &str| format!("{}: {why}", path.display());
        let text = fs::read_to_string(&path).map_err(|e| bad(&e.to_string()))?;
        let rows: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let rows = rows.as_array().ok_or_else(|| bad("not a JSON array"))?;
        for row in rows {
            out.push(parse_row(row).map_err(|why| bad(&why))?);
        }
    }
    Ok(out)
}

fn parse_row(row: &Value) -> Result<Comparison, String> {
    let text = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("a row without the text {k:?}"))
    };
    let num = |k: &str| {
        row.get(k)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| format!("a row without a positive number {k:?}"))
    };
    let baseline = match row.get("baseline") {
        None | Some(Value::Null) => None,
        Some(_) => Some((text("baseline")?, num("baseline_ns")?)),
    };
    Ok(Comparison {
        surface: text("surface")?,
        peerlb: text("peerlb")?,
        peerlb_ns: num("peerlb_ns")?,
        other: text("other")?,
        other_ns: num("other_ns")?,
        goal: row.get("goal").and_then(Value::as_f64),
        baseline,
    })
}

/// `9.81`, `42.3`, `123`.
fn fmt3(x: f64) -> String {
    if x.abs() < 10.0 {
        format!("{x:.2}")
    } else if x.abs() < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// The comparison section: one table, one row per [`Comparison`].
pub fn render(rows: &[Comparison]) -> String {
    let mut md = String::new();
    md.push_str("## peerlb vs other libraries\n\n");
    md.push_str(
        "Each row: peerlb and another library doing the same job, measured in the same run \
         on the same machine (details in each surface's section below). *Speed-up* = the \
         other library's ns/op ÷ peerlb's (above 1: peerlb is faster). *Baseline*: a floor \
         measured in the same run, with peerlb's op as a multiple of it.\n\n",
    );
    md.push_str(
        "| surface | peerlb | ns/op | compared with | ns/op | speed-up | goal | verdict | baseline |\n\
         |---|---|---:|---|---:|---:|---:|---|---|\n",
    );
    for c in rows {
        let speedup = c.speedup();
        let (goal, verdict) = match c.goal {
            Some(g) if speedup >= g => (format!("≥ {g}×"), "met".to_owned()),
            // Why: how far peerlb's op is from the goal.
            Some(g) => (
                format!("≥ {g}×"),
                format!(
                    "**missed**: peerlb's op would need to take {} ns, {:.1}× less",
                    fmt3(c.other_ns / g),
                    g / speedup
                ),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let baseline = c.baseline.as_ref().map_or("–".to_owned(), |(name, ns)| {
            format!("{name}: {} ns (peerlb {:.1}×)", fmt3(*ns), c.peerlb_ns / ns)
        });
        let speedup = if speedup >= 1.0 {
            format!("**{speedup:.1}×**")
        } else {
            format!("**{speedup:.2}×** ({:.1}× slower)", 1.0 / speedup)
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {speedup} | {goal} | {verdict} | {baseline} |",
            c.surface,
            c.peerlb,
            fmt3(c.peerlb_ns),
            c.other,
            fmt3(c.other_ns),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(function: &str, ns: f64) -> Measurement {
        Measurement {
            group: TOWER_GROUP.into(),
            function: function.into(),
            parameter: Some(threads_label(1)),
            ns,
            ci: (ns, ns),
        }
    }

    #[test]
    fn tower_pairs_from_criterion() {
        let ms = [
            m("peerlb two-random-choices", 40.0),
            m(crate::TOWER_PENDING, 200.0),
            m("peerlb peak-ewma", 80.0),
            // no PeakEwma measurement: that pair is left out
        ];
        let rows = from_criterion(&ms);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].speedup(), 5.0);
        assert!(rows[0].peerlb.contains("two-random-choices"));
        let md = render(&rows);
        assert!(md.contains("| **5.0×** | ≥ 3× | met | – |"), "{md}");
    }

    #[test]
    fn fragments_in_name_order_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("peerlb-compare-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let row = |surface: &str, ours: f64, theirs: f64| {
            serde_json::json!({
                "surface": surface, "peerlb": "hash-ring", "peerlb_ns": ours,
                "other": "theirs", "other_ns": theirs, "goal": 10,
                "baseline": "empty call", "baseline_ns": 50.0,
            })
        };
        let write = |name: &str, v: Value| fs::write(dir.join(name), v.to_string()).unwrap();
        write(
            "python.compare.json",
            Value::Array(vec![row("Python", 200.0, 1000.0)]),
        );
        write(
            "node.compare.json",
            Value::Array(vec![row("Node", 100.0, 25.0)]),
        );
        fs::write(dir.join("python.md"), "not a compare file").unwrap();
        let rows = read_fragments(&dir).unwrap();
        let surfaces: Vec<&str> = rows.iter().map(|r| r.surface.as_str()).collect();
        assert_eq!(surfaces, ["Node", "Python"]);
        let md = render(&rows);
        assert!(
            md.contains("| **5.0×** | ≥ 10× | **missed**: peerlb's op would need to take 100 ns, 2.0× less | empty call: 50.0 ns (peerlb 4.0×) |"),
            "{md}"
        );
        assert!(
            md.contains("| **0.25×** (4.0× slower) | ≥ 10× | **missed**: peerlb's op would need to take 2.50 ns, 40.0× less |"),
            "{md}"
        );
        write("zzz.compare.json", serde_json::json!([{"surface": "X"}]));
        let err = read_fragments(&dir).unwrap_err();
        assert!(err.contains("zzz.compare.json"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
        assert!(read_fragments(&dir).unwrap().is_empty());
    }
}
