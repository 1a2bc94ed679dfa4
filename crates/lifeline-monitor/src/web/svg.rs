//! Inline SVG charts (no scripts, no external assets): p50/p95 latency lines over time, stacked columns (latency
//! per phase), uptime columns per day and a strip of spans (incidents over 90 days).
//!
//! Rendered with `maud`, which escapes every interpolated value (the hover labels and axis labels are the only
//! text); this module needs nothing from the pages that embed it. Each chart is one `<svg role="img">` with an
//! `aria-label` saying what it shows; the values are in `<title>`s for hover and in the page's tables.

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

/// One column of a [`stacked_columns`] chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Hover label (escaped), e.g. the hour.
    pub label: String,
    /// One value per series, bottom first (ms); all 0 means no data.
    pub values: Vec<f64>,
}

/// Stacked columns `width`×`height` px: one column per entry of `columns` (oldest first), one segment per series,
/// bottom first, each `<rect>` of class `{class_prefix}{i}` (`i` the series index, for the page's palette).
/// The maximum stack height is printed top left; each column has a hover `<title>` listing the non-zero
/// segments with `names` (escaped). `aria` is the chart's accessible name.
pub fn stacked_columns(
    columns: &[Column],
    names: &[&str],
    class_prefix: &str,
    (width, height): (u32, u32),
    aria: &str,
) -> Markup {
    let max = columns
        .iter()
        .map(|c| c.values.iter().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (w, h) = (f64::from(width), f64::from(height));
    let pad_top = 12.0;
    let n = columns.len().max(1) as f64;
    let col = w / n;
    let bar = (col * 0.8).max(1.0);
    let scale = (h - pad_top - 1.0) / max;
    // Segments per column, bottom first: (series, top y, height).
    let segments = |c: &Column| -> Vec<(usize, f64, f64)> {
        let mut y = h;
        c.values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(s, v)| {
                let seg = v * scale;
                y -= seg;
                (s, y, seg)
            })
            .collect()
    };
    html! {
        svg class="chart stack" viewBox={ "0 0 " (width) " " (height) } width="100%" height=(height)
            preserveAspectRatio="none" role="img" aria-label=(aria) {
            text x="2" y="10" class="axis" { (fmt_ms(max)) }
            @for (i, c) in columns.iter().enumerate() {
                @let total: f64 = c.values.iter().sum();
                @if total > 0.0 {
                    g {
                        title {
                            (c.label) ": " (fmt_ms(total))
                            @for (s, v) in c.values.iter().enumerate() {
                                @if *v > 0.0 {
                                    " · " (names.get(s).copied().unwrap_or("?")) " " (fmt_ms(*v))
                                }
                            }
                        }
                        @let x = format!("{:.1}", i as f64 * col + (col - bar) / 2.0);
                        @for (s, top, seg) in segments(c) {
                            rect class={ (class_prefix) (s) } x=(x) y=(format!("{top:.1}"))
                                width=(format!("{bar:.1}")) height=(format!("{seg:.1}")) {}
                        }
                    }
                }
            }
        }
    }
}

/// One day of an [`uptime_columns`] chart.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeDay {
    /// Hover text (escaped): the date and figures.
    pub title: String,
    /// Up ÷ total, `None` without probes.
    pub ratio: Option<f64>,
    /// CSS class of the column (`u4` best … `u1` worst).
    pub class: &'static str,
}

/// Uptime per day as columns `width`×`height` px, oldest first. The axis runs from `floor` (a ratio below 1,
/// e.g. 0.9: lower days are drawn at the bottom, full height means 100%) to 100%, both printed; a day without
/// probes is a short grey stub of class `nodata`.
pub fn uptime_columns(days: &[UptimeDay], floor: f64, (width, height): (u32, u32)) -> Markup {
    let (w, h) = (f64::from(width), f64::from(height));
    let pad_top = 12.0;
    let n = days.len().max(1) as f64;
    let col = w / n;
    let bar = (col * 0.75).max(1.0);
    let floor = floor.clamp(0.0, 0.999);
    let plot = h - pad_top - 1.0;
    html! {
        svg class="chart uptime-chart" viewBox={ "0 0 " (width) " " (height) } width="100%" height=(height)
            preserveAspectRatio="none" role="img" aria-label="uptime per day, 90 days" {
            text x="2" y="10" class="axis" { "100%" }
            text x="2" y=(format!("{:.0}", h - 3.0)) class="axis" { (format!("{:.0}%", floor * 100.0)) }
            @for (i, d) in days.iter().enumerate() {
                @let x = format!("{:.1}", i as f64 * col + (col - bar) / 2.0);
                @let (class, bh) = match d.ratio {
                    Some(r) => (d.class, 2.0 + plot * ((r - floor) / (1.0 - floor)).clamp(0.0, 1.0)),
                    None => ("nodata", 2.0),
                };
                rect class=(class) x=(x) y=(format!("{:.1}", h - bh)) width=(format!("{bar:.1}"))
                    height=(format!("{bh:.1}")) {
                    title { (d.title) }
                }
            }
        }
    }
}

/// A span of a [`span_strip`]: `[start_ms, end_ms)` with a hover title (escaped).
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Start, Unix ms.
    pub start_ms: i64,
    /// End, Unix ms (an open span ends now).
    pub end_ms: i64,
    /// Hover text.
    pub title: String,
    /// True while it lasts (drawn with class `open`).
    pub open: bool,
}

/// A horizontal strip `width`×`height` px over `[from_ms, to_ms)` with one rectangle per span (at least 2 px
/// wide, so a short incident stays visible), class `span` (`span open` for open ones), and the two ends'
/// labels (`from_label`, `to_label`) under it.
pub fn span_strip(
    spans: &[Span],
    (from_ms, to_ms): (i64, i64),
    (from_label, to_label): (&str, &str),
    (width, height): (u32, u32),
) -> Markup {
    let w = f64::from(width);
    let range = (to_ms - from_ms).max(1) as f64;
    let x = |ms: i64| ((ms.clamp(from_ms, to_ms) - from_ms) as f64 / range * w).clamp(0.0, w);
    let track = f64::from(height) - 12.0;
    html! {
        svg class="chart strip" viewBox={ "0 0 " (width) " " (height) } width="100%" height=(height)
            preserveAspectRatio="none" role="img" aria-label="incidents over 90 days" {
            rect class="track" x="0" y="0" width=(width) height=(format!("{track:.0}")) {}
            @for s in spans {
                @let x0 = x(s.start_ms);
                @let x1 = x(s.end_ms).max(x0 + 2.0).min(w);
                @let x0 = x0.min(x1 - 2.0).max(0.0);
                rect class=(if s.open { "span open" } else { "span" }) x=(format!("{x0:.1}")) y="0"
                    width=(format!("{:.1}", x1 - x0)) height=(format!("{track:.0}")) {
                    title { (s.title) }
                }
            }
            text x="0" y=(height - 1) class="axis" { (from_label) }
            text x=(width) y=(height - 1) class="axis end" { (to_label) }
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
