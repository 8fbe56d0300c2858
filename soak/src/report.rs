//! The report: a table of what happened and the RSS and open-file curves as an SVG.

use std::fmt::Write as _;

/// One surface's samples: seconds since the start, RSS in bytes, open descriptors.
pub struct Curve {
    pub name: String,
    pub samples: Vec<(f64, u64, usize)>,
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    curves: &[Curve],
    value: impl Fn(&(f64, u64, usize)) -> f64,
    seconds: f64,
    warmup: f64,
) {
    let (left, width, height) = (70.0, 760.0, 220.0);
    let max = curves
        .iter()
        .flat_map(|c| c.samples.iter().map(&value))
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |t: f64| left + t / seconds.max(1.0) * width;
    let y = |v: f64| top + height - v / max * height;
    let _ = write!(
        svg,
        r##"<text x="{left}" y="{}" font-size="14">{title}</text>
<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>
<line x1="{wx}" y1="{top}" x2="{wx}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>
<text x="{wx}" y="{}" font-size="10" fill="#777"> warm-up</text>
<text x="{}" y="{}" font-size="10" text-anchor="end">{:.0}</text>
<text x="{}" y="{}" font-size="10" text-anchor="end">0</text>
"##,
        top - 6.0,
        top + height,
        top + 12.0,
        left - 4.0,
        top + 10.0,
        max,
        left - 4.0,
        top + height,
        wx = x(warmup),
    );
    for (i, c) in curves.iter().enumerate() {
        let points: Vec<String> = c
            .samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.0), y(value(s))))
            .collect();
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>
<text x="{}" y="{}" font-size="11" fill="{color}">{}</text>"#,
            points.join(" "),
            left + width + 6.0,
            top + 14.0 + 14.0 * i as f64,
            c.name
        );
    }
}

/// RSS (MB) and open descriptors of every surface over the run.
pub fn svg(curves: &[Curve], seconds: f64, warmup: f64) -> String {
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="540" font-family="sans-serif">
<rect width="900" height="540" fill="white"/>
"#,
    );
    panel(
        &mut svg,
        30.0,
        "RSS (MB) per surface process",
        curves,
        |s| s.1 as f64 / 1e6,
        seconds,
        warmup,
    );
    panel(
        &mut svg,
        290.0,
        "open file descriptors per surface process",
        curves,
        |s| s.2 as f64,
        seconds,
        warmup,
    );
    let _ = write!(
        svg,
        r#"<text x="450" y="530" font-size="11" text-anchor="middle">seconds (run of {seconds:.0} s)</text>
</svg>
"#
    );
    svg
}
