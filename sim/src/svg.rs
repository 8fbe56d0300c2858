//! Hand-written SVG charts (no plotting crate): grouped bars on a log y axis (what
//! latencies spanning 1 ms to 1 s need) and lines on a log or linear one. Shared with
//! `make demo`.

use std::fmt::Write;

/// Colours for series, in order (Okabe–Ito, readable by colour-blind people, then two of
/// Paul Tol's muted scheme for the ninth and tenth series).
const PALETTE: [&str; 10] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442",
    "#882255", "#999933",
];

const WIDTH: f64 = 1040.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 280.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// A y axis from `lo` to `hi`, log-scaled (both positive) or linear, mapped onto the
/// plot area.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    /// A linear axis from 0 to a round number at or above every value.
    fn linear(values: impl Iterator<Item = f64>) -> Axis {
        let top = values.filter(|v| v.is_finite()).fold(0.0f64, f64::max);
        let mut hi = 1.0;
        if top > 0.0 {
            let decade = 10f64.powf(top.log10().floor());
            hi = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * decade)
                .find(|v| *v >= top)
                .unwrap_or(10.0 * decade);
        }
        Axis {
            lo: 0.0,
            hi,
            log: false,
        }
    }

    /// A log axis over whole decades around the (positive) values.
    fn around(values: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (1.0, 10.0);
        }
        // Whole decades around the data.
        Axis {
            lo: 10f64.powf(lo.log10().floor()),
            hi: 10f64
                .powf((hi.log10() + 1e-9).ceil())
                .max(10f64.powf(lo.log10().floor() + 1.0)),
            log: true,
        }
    }

    fn y(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        let f = if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        HEIGHT - BOTTOM - f * (HEIGHT - TOP - BOTTOM)
    }

    /// Gridlines at 1, 2, 5 × 10^k (log), or at fifths (linear).
    fn ticks(&self) -> Vec<f64> {
        if !self.log {
            return (0..=5).map(|i| self.hi * i as f64 / 5.0).collect();
        }
        let mut out = Vec::new();
        let mut decade = self.lo;
        while decade <= self.hi * 1.0001 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                if v >= self.lo * 0.9999 && v <= self.hi * 1.0001 {
                    out.push(v);
                }
            }
            decade *= 10.0;
        }
        out
    }
}

fn label(v: f64) -> String {
    if v >= 1.0 && v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(out: &mut String, title: &str, y_label: &str, axis: &Axis) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>
<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>
"#,
        WIDTH / 2.0,
        escape(title),
        HEIGHT / 2.0,
        escape(y_label)
    );
    for t in axis.ticks() {
        let y = axis.y(t);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
}

fn legend(out: &mut String, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 10.0 + 20.0 * i as f64;
        let x = WIDTH - RIGHT + 12.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{y}" width="14" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            x + 20.0,
            y + 10.0,
            escape(name)
        );
    }
}

/// Grouped bars: one group per `groups` entry (its label under it), one bar per series
/// (named in `series`, in the legend) with value `values[group][series]`, y on a log axis.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[String],
    values: &[Vec<f64>],
) -> String {
    let axis = Axis::around(values.iter().flatten().copied());
    let mut out = String::new();
    header(&mut out, title, y_label, &axis);
    let plot_w = WIDTH - LEFT - RIGHT;
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    let base = HEIGHT - BOTTOM;
    for (g, name) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
        for (s, v) in values.get(g).into_iter().flatten().enumerate() {
            let y = axis.y(*v);
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {v:.1}</title></rect>"#,
                x0 + s as f64 * bar_w,
                bar_w * 0.92,
                (base - y).max(0.0),
                PALETTE[s % PALETTE.len()],
                escape(series.get(s).map_or("", String::as_str)),
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + (g as f64 + 0.5) * group_w,
            base + 20.0,
            escape(name)
        );
    }
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
}

/// A line chart: its texts, series and scales (see [`line_chart`]).
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    /// The title above the plot.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// One line each: name (in the legend) and points `(x, y)`.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Labelled vertical lines at given x (e.g. "d killed").
    pub markers: Vec<(f64, String)>,
    /// Labelled horizontal lines at given y (e.g. "healthy p99").
    pub levels: Vec<(f64, String)>,
    /// The right end of the x axis (which starts at 0); `None`: the largest x.
    pub x_max: Option<f64>,
    /// A log y axis (points with y <= 0 are left out) instead of a linear one from 0.
    pub log_y: bool,
}

/// Renders a [`LineChart`].
pub fn line_chart(chart: &LineChart) -> String {
    let LineChart {
        title,
        x_label,
        y_label,
        series,
        markers,
        levels,
        x_max,
        log_y,
    } = chart;
    let ys = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .chain(levels.iter().map(|&(y, _)| y));
    let axis = if *log_y {
        Axis::around(ys)
    } else {
        Axis::linear(ys)
    };
    let x_max = x_max
        .unwrap_or_else(|| {
            series
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
                .fold(0.0f64, f64::max)
        })
        .max(1e-9);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |v: f64| LEFT + v / x_max * plot_w;
    let mut out = String::new();
    header(&mut out, title, y_label, &axis);
    for i in 0..=5 {
        let v = x_max * i as f64 / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(v),
            HEIGHT - BOTTOM + 18.0,
            label(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0,
        escape(x_label)
    );
    for (at, name) in markers {
        let _ = writeln!(
            out,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{1}" stroke="red" stroke-dasharray="4 3"/><text x="{2:.1}" y="{3}" fill="red">{4}</text>"#,
            x(*at),
            HEIGHT - BOTTOM,
            x(*at) + 4.0,
            TOP + 14.0,
            escape(name)
        );
    }
    for (at, name) in levels.iter().filter(|(y, _)| !*log_y || *y > 0.0) {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{0:.1}" y1="{1:.1}" y2="{1:.1}" stroke="#444" stroke-width="1.5" stroke-dasharray="8 4"/><text x="{2:.1}" y="{3:.1}" fill="#444">{4}</text>"##,
            LEFT + plot_w,
            axis.y(*at),
            LEFT + 6.0,
            axis.y(*at) - 5.0,
            escape(name)
        );
    }
    for (i, (_, points)) in series.iter().enumerate() {
        let mut d = String::new();
        for &(px, py) in points.iter().filter(|(_, y)| !*log_y || *y > 0.0) {
            let _ = write!(d, "{:.1},{:.1} ", x(px), axis.y(py));
        }
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
            d.trim_end(),
            PALETTE[i % PALETTE.len()]
        );
    }
    let names: Vec<String> = series.iter().map(|(n, _)| n.clone()).collect();
    legend(&mut out, &names);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_span_round_numbers() {
        let l = Axis::linear([0.0, 37.0].into_iter());
        assert_eq!(l.hi, 50.0);
        assert_eq!(l.ticks(), [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        assert!((l.y(0.0) - (HEIGHT - BOTTOM)).abs() < 1e-9);
        let a = Axis::around([3.0, 40.0].into_iter());
        assert_eq!((a.lo, a.hi), (1.0, 100.0));
        assert_eq!(a.ticks(), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert!((a.y(1.0) - (HEIGHT - BOTTOM)).abs() < 1e-9);
        assert!((a.y(100.0) - TOP).abs() < 1e-9);
    }

    #[test]
    fn charts_are_well_formed_svg_with_escaped_names() {
        let bars = bar_chart(
            "p99",
            "ms",
            &["healthy".into(), "slow".into()],
            &["a&b".into(), "c".into()],
            &[vec![10.0, 20.0], vec![30.0, 300.0]],
        );
        assert!(bars.starts_with("<svg") && bars.ends_with("</svg>\n"));
        assert_eq!(bars.matches("<rect x=").count(), 4 + 2 + 1); // bars, legend, frame
        assert!(bars.contains("a&amp;b"));
        let lines = line_chart(&LineChart {
            series: vec![("x".into(), vec![(0.0, 1.0), (1.0, 5.0)])],
            markers: vec![(0.5, "kill".into())],
            levels: vec![(2.0, "healthy p99".into())],
            log_y: true,
            ..Default::default()
        });
        assert_eq!(lines.matches("<polyline").count(), 1);
        assert!(lines.contains(">kill<"));
        assert!(lines.contains(">healthy p99<"));
    }
}
