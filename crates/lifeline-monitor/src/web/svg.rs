//! Inline SVG charts (no scripts, no external assets): p50/p95 latency lines over time.

use std::fmt::Write as _;

/// A latency chart of `points` (`(label, p50, p95)` in ms, oldest first) `width`×`height` px. Gaps (no data)
/// break the lines. Each point has a `<title>` for hover.
pub fn latency_chart(
    points: &[(String, Option<f64>, Option<f64>)],
    width: u32,
    height: u32,
    axis: bool,
) -> String {
    let max = points
        .iter()
        .filter_map(|(_, a, b)| b.or(*a))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let n = points.len().max(2) as f64;
    let (w, h) = (f64::from(width), f64::from(height));
    let pad_top = if axis { 12.0 } else { 2.0 };
    let x = |i: usize| (i as f64) * (w - 2.0) / (n - 1.0) + 1.0;
    let y = |v: f64| h - 2.0 - (v / max) * (h - pad_top - 2.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" width="100%" height="{height}" preserveAspectRatio="none" role="img" aria-label="latency p50 and p95">"#
    );
    for (series, class) in [(2usize, "p95"), (1usize, "p50")] {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, p) in points.iter().enumerate() {
            let v = if series == 1 { p.1 } else { p.2 };
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(out, r#"<path class="{class}" d="{}"/>"#, d.trim_end());
        }
    }
    if axis {
        let _ = write!(
            out,
            r#"<text x="2" y="10" class="axis">{}</text>"#,
            fmt_ms(max)
        );
        // Hover targets: one invisible column per point.
        let col = (w / n).max(1.0);
        for (i, (label, p50, p95)) in points.iter().enumerate() {
            if p50.is_none() && p95.is_none() {
                continue;
            }
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="0" width="{col:.1}" height="{height}" class="hover"><title>{}: p50 {} · p95 {}</title></rect>"#,
                x(i) - col / 2.0,
                super::page::esc(label),
                p50.map_or("–".into(), fmt_ms),
                p95.map_or("–".into(), fmt_ms),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// `12 ms`, `1.4 s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}
