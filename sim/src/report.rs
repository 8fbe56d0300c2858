//! Runs strategies × scenarios and renders the results: a markdown table and an SVG chart.

use crate::engine::{run, RunResult};
use crate::model::{Scenario, DEFAULT_STRATEGY, RECOVERY_AT};
use crate::stats::fmt_ms;
use crate::svg;

/// One row of the table: a run plus its reference.
#[derive(Debug, Clone)]
pub struct Row {
    /// The run.
    pub run: RunResult,
    /// p99 of the same strategy with every backend healthy (same load, same seed), ns.
    pub healthy_p99: u64,
}

impl Row {
    /// p99 over the all-healthy p99 of the same strategy.
    pub fn ratio(&self) -> f64 {
        self.run.latency.p99 as f64 / self.healthy_p99.max(1) as f64
    }
}

/// Every strategy on every scenario, with the references.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// The strategy specs, in order.
    pub strategies: Vec<String>,
    /// One row per (scenario, strategy), scenario-major.
    pub rows: Vec<Row>,
}

impl Report {
    /// Runs every strategy on every scenario (and on each scenario's all-healthy twin for
    /// the reference; one run per strategy when twins coincide). `progress` hears
    /// `(done, total)` after each run.
    pub fn build(
        scenarios: &[Scenario],
        strategies: &[&str],
        mut progress: impl FnMut(usize, usize),
    ) -> peerlb::Result<Report> {
        let total = scenarios.len() * strategies.len();
        let mut rows = Vec::with_capacity(total);
        let mut healthy: Vec<(Scenario, String, u64)> = Vec::new();
        for scenario in scenarios {
            for &strategy in strategies {
                let result = run(scenario, strategy)?;
                let reference = scenario.all_healthy();
                let known = healthy
                    .iter()
                    .find(|(s, name, _)| *s == reference && name == strategy)
                    .map(|(_, _, p99)| *p99);
                let healthy_p99 = match known {
                    Some(p99) => p99,
                    None => {
                        let p99 = if reference == *scenario {
                            result.latency.p99
                        } else {
                            run(&reference, strategy)?.latency.p99
                        };
                        healthy.push((reference, strategy.to_owned(), p99));
                        p99
                    }
                };
                rows.push(Row {
                    run: result,
                    healthy_p99,
                });
                progress(rows.len(), total);
            }
        }
        Ok(Report {
            scenarios: scenarios.to_vec(),
            strategies: strategies.iter().map(|s| (*s).to_owned()).collect(),
            rows,
        })
    }

    /// The row for `scenario` (by name) and `strategy` (spec).
    pub fn row(&self, scenario: &str, strategy: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.run.scenario == scenario && r.run.strategy == strategy)
    }

    /// The markdown table: one line per scenario and strategy.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| scenario | strategy | p50 | p99 | p99.9 | p99 / healthy p99 | errors | sent to degraded |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &self.rows {
            let r = &row.run;
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {:.2}× | {:.1}% | {:.1}% |\n",
                r.scenario,
                r.strategy,
                fmt_ms(r.latency.p50),
                fmt_ms(r.latency.p99),
                fmt_ms(r.latency.p999),
                row.ratio(),
                100.0 * r.error_rate(),
                100.0 * r.degraded_share(),
            ));
        }
        out
    }

    /// The targets the latency-aware default ([`DEFAULT_STRATEGY`]) is held to, each with
    /// what this report measured and a verdict, as a markdown table (scenarios or the
    /// strategy missing from the report are left out).
    pub fn targets(&self) -> String {
        let mut out = format!(
            "| target (`{DEFAULT_STRATEGY}`, default options) | measured | verdict |\n|---|---:|---|\n"
        );
        let mut line = |target: &str, measured: String, met: bool| {
            out.push_str(&format!(
                "| {target} | {measured} | {} |\n",
                if met { "met" } else { "**missed**" }
            ));
        };
        let row = |scenario: &str| self.row(scenario, DEFAULT_STRATEGY);
        for (scenario, what, limit) in [
            ("1-of-4-slow", "1 of 4 slow: p99 ≤ 1.2× healthy", 1.2),
            ("2-of-4-slow", "2 of 4 slow: p99 ≤ 2× healthy", 2.0),
            (
                "2-of-4-slow+reports",
                "2 of 4 slow, with load reports: p99 ≤ 1.5× healthy",
                1.5,
            ),
            (
                "3-of-10-slow",
                "3 of 10 slow (5×, σ 0.6): p99 ≤ 1.6× healthy",
                1.6,
            ),
        ] {
            if let Some(r) = row(scenario) {
                line(what, format!("{:.2}×", r.ratio()), r.ratio() <= limit);
            }
        }
        if let (Some(r), Some(s)) = (
            row("unequal-queues"),
            self.scenarios.iter().find(|s| s.name == "unequal-queues"),
        ) {
            let [first, second] = r.run.p99_halves;
            let stable = (second as f64) < 1.5 * first as f64;
            let of_mean = r.run.latency.p99 as f64 / s.mean_service();
            line(
                "unequal queues (1, 1, 2, 2, 4, 4 workers, 70% load): stable, p99 ≤ 8× mean service time",
                format!(
                    "p99 {} then {} (halves); {of_mean:.1}× the mean",
                    fmt_ms(first),
                    fmt_ms(second)
                ),
                stable && of_mean <= 8.0,
            );
        }
        if let (Some(r), Some(s)) = (
            row("recovered"),
            self.scenarios.iter().find(|s| s.name == "recovered"),
        ) {
            let at = RECOVERY_AT.as_secs() as usize;
            let fair = 1.0 / s.backends.len() as f64;
            let end = s.duration.as_secs() as usize;
            let early = r.run.share_between(0, at + 1, at + 5);
            let later = r.run.share_between(0, at + 5, end);
            line(
                "recovered backend: ≥ 80% of its fair share within 5 s (and after)",
                format!(
                    "{:.0}% then {:.0}% of fair",
                    100.0 * early / fair,
                    100.0 * later / fair
                ),
                early >= 0.8 * fair && later >= 0.8 * fair,
            );
        }
        if let Some(r) = row("demo-stalls") {
            line(
                "the demo's backends with client stalls: p99 ≤ 1.5× healthy, ≤ 1% to the slow one",
                format!("{:.2}×, {:.2}%", r.ratio(), 100.0 * r.run.degraded_share()),
                r.ratio() <= 1.5 && r.run.degraded_share() <= 0.01,
            );
        }
        out
    }

    /// What was simulated, as markdown bullet points.
    pub fn setup(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            let b = &s.backends[0];
            let workers = if s.backends.iter().any(|x| x.workers != b.workers) {
                let each: Vec<String> = s
                    .backends
                    .iter()
                    .map(|x| x.workers.map_or("∞".to_owned(), |n| n.to_string()))
                    .collect();
                format!(", {} workers (FIFO queues)", each.join("/"))
            } else {
                match b.workers {
                    Some(n) => format!(", {n} workers each (FIFO queue)"),
                    None => ", no queue".to_owned(),
                }
            };
            let extras = match (&s.stalls, s.reports) {
                (Some(st), true) => format!("; client {}; load reports", st.describe()),
                (Some(st), false) => format!("; client {}", st.describe()),
                (None, true) => "; load reports".to_owned(),
                (None, false) => String::new(),
            };
            out.push_str(&format!(
                "- `{}`: {}; {} backends, {}{workers}; Poisson arrivals at {}/s for {:.0} s \
                 (the first {:.0} s not measured){extras}; seed {}\n",
                s.name,
                s.description,
                s.backends.len(),
                b.latency.describe(),
                s.rate,
                s.duration.as_secs_f64(),
                s.warmup.as_secs_f64(),
                s.seed
            ));
        }
        out
    }

    /// A grouped bar chart of p99 (ms, log scale) per strategy per scenario.
    pub fn p99_svg(&self) -> String {
        let groups: Vec<String> = self.scenarios.iter().map(|s| s.name.clone()).collect();
        let values: Vec<Vec<f64>> = self
            .scenarios
            .iter()
            .map(|s| {
                self.strategies
                    .iter()
                    .map(|st| {
                        self.row(&s.name, st)
                            .map_or(0.0, |r| r.run.latency.p99 as f64 / 1e6)
                    })
                    .collect()
            })
            .collect();
        svg::bar_chart(
            "peerlb-sim: p99 latency per strategy and scenario (virtual time)",
            "p99 latency (ms, log scale)",
            &groups,
            &self.strategies,
            &values,
        )
    }
}
