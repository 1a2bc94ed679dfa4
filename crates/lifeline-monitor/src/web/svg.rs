//! Inline SVG charts (no scripts, no external assets): p50/p95 latency lines over time.
//!
//! Rendered with `maud`, which escapes every interpolated value (the hover labels are the only text); this
//! module needs nothing from the pages that embed it.

use std::fmt::Write as _;

use maud::{html, Markup};

/// A latency chart of `points` (`(label, p50, p95)` in ms, oldest first) `width`×`height` px. Gaps (no data)
/// break the lines. With `axis`, the maximum is printed top left and each point has a hover column with a
/// `<title>`. The labels are escaped.
pub fn latency_chart(
    points: &[(String, Option<f64>, Option<f64>)],
    width: u32,
    height: u32,
    axis: bool,
) -> Markup {
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
    let line = |series: usize| {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, p) in points.iter().enumerate() {
            match if series == 1 { p.1 } else { p.2 } {
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
        d.trim_end().to_owned()
    };
    // Hover targets: one invisible column per point.
    let col = (w / n).max(1.0);
    html! {
        svg class="chart" viewBox={ "0 0 " (width) " " (height) } width="100%" height=(height)
            preserveAspectRatio="none" role="img" aria-label="latency p50 and p95" {
            @for (series, class) in [(2usize, "p95"), (1usize, "p50")] {
                @let d = line(series);
                @if !d.is_empty() {
                    path class=(class) d=(d) {}
                }
            }
            @if axis {
                text x="2" y="10" class="axis" { (fmt_ms(max)) }
                @for (i, (label, p50, p95)) in points.iter().enumerate() {
                    @if p50.is_some() || p95.is_some() {
                        rect x=(format!("{:.1}", x(i) - col / 2.0)) y="0" width=(format!("{col:.1}"))
                            height=(height) class="hover" {
                            title {
                                (label) ": p50 " (p50.map_or("–".into(), fmt_ms))
                                " · p95 " (p95.map_or("–".into(), fmt_ms))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `12 ms`, `1.4 s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}
