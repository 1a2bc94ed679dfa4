//! The HTML report's charts, as inline SVG written on the server (no script, no external asset): horizontal
//! bars of shares (the categories, the reasons) and a histogram of the latency distribution.
//!
//! Purpose-built rather than shared with the monitor's status page (`lifeline-monitor/src/web/svg.rs`): those are
//! time series (lines, stacked columns over hours and days), these are categorical bars and one histogram, and
//! the two crates must not depend on each other; the only common part would be the `<svg>` element itself, not
//! worth putting `maud` into `lifeline-core` for. Every label is interpolated by `maud` (escaped) and cleaned
//! by the caller's renderer when a server controls it.

use maud::{html, Markup, Render};

use crate::summary::{LatencyBin, Share};

/// Width of the drawing area, px (the SVG scales to its box).
const WIDTH: f64 = 460.0;
/// Height of one bar row, px.
const ROW: f64 = 20.0;
/// Left margin for the labels, px.
const LABEL_W: f64 = 130.0;
/// Right margin for the figures, px.
const FIGURE_W: f64 = 90.0;

/// Horizontal bars, one per share with a non-zero count, longest = the largest count. `class_of(label)` gives
/// the bar's CSS class (the category colours), or `None` for the neutral one; `label` renders a label (the
/// caller's escaping renderer). `aria` names the chart.
pub(crate) fn share_bars<'a, L: Render>(
    shares: &'a [Share],
    class_of: impl Fn(&str) -> Option<&'a str>,
    label: impl Fn(&'a str) -> L,
    aria: &str,
) -> Markup {
    let rows: Vec<&Share> = shares.iter().filter(|s| s.count > 0).collect();
    let widest = rows.iter().map(|s| s.count).max().unwrap_or(1).max(1) as f64;
    let height = (rows.len().max(1) as f64) * ROW + 4.0;
    let bar_max = WIDTH - LABEL_W - FIGURE_W;
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (height) } width="100%" role="img" aria-label=(aria) {
            @if rows.is_empty() {
                text x="0" y="14" { "none" }
            }
            @for (i, s) in rows.iter().enumerate() {
                @let y = i as f64 * ROW + 2.0;
                @let w = (s.count as f64 / widest * bar_max).max(1.0);
                g {
                    title { (label(&s.label)) ": " (s.count) (format!(" ({:.1}%)", s.percent)) }
                    text x=(LABEL_W - 6.0) y=(y + 13.0) class="lbl" { (label(&s.label)) }
                    rect class={ "bar " (class_of(&s.label).unwrap_or("plain")) } x=(LABEL_W) y=(y + 2.0)
                        width=(format!("{w:.1}")) height=(ROW - 6.0) {}
                    text x=(format!("{:.1}", LABEL_W + w + 5.0)) y=(y + 13.0) class="fig" {
                        (s.count) (format!(" · {:.1}%", s.percent))
                    }
                }
            }
        }
    }
}

/// `10 ms`, `2.5 s`.
fn bound(ms: u64) -> String {
    if ms >= 1000 {
        let s = ms as f64 / 1000.0;
        if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    } else {
        format!("{ms} ms")
    }
}

/// A bin's label: `<10 ms`, `10–25 ms`, `≥10 s`.
pub(crate) fn bin_label(b: &LatencyBin) -> String {
    match (b.from_ms, b.to_ms) {
        (0, Some(to)) => format!("<{}", bound(to)),
        (from, Some(to)) => format!("{}–{}", bound(from), bound(to)),
        (from, None) => format!("≥{}", bound(from)),
    }
}

/// A bin's short tick label, milliseconds unless marked: `<10`, `10–25`, `0.5–1s`, `≥10s`.
fn tick(b: &LatencyBin) -> String {
    let n = |ms: u64| {
        if ms >= 1000 || b.from_ms >= 500 {
            format!("{}", ms as f64 / 1000.0)
        } else {
            ms.to_string()
        }
    };
    let unit = if b.from_ms >= 500 { "s" } else { "" };
    match (b.from_ms, b.to_ms) {
        (0, Some(to)) => format!("<{}{unit}", n(to)),
        (from, Some(to)) => format!("{}–{}{unit}", n(from), n(to)),
        (from, None) => format!("≥{}{unit}", n(from)),
    }
}

/// The latency histogram: one column per bin, usable endpoints at the bottom (class `usable`), the other probed
/// ones on top (class `other`), the bin's short label under it ([`tick`]; the full one in its hover title) and
/// its count over it.
pub(crate) fn latency_histogram(bins: &[LatencyBin]) -> Markup {
    let height = 150.0;
    let (top, bottom) = (14.0, 18.0);
    let plot = height - top - bottom;
    let n = bins.len().max(1) as f64;
    let col = WIDTH / n;
    let bar = col * 0.8;
    let max = bins
        .iter()
        .map(|b| b.usable + b.other)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (height) } width="100%" role="img"
            aria-label="latency distribution of probed endpoints" {
            @for (i, b) in bins.iter().enumerate() {
                @let x = i as f64 * col + (col - bar) / 2.0;
                @let hu = b.usable as f64 / max * plot;
                @let ho = b.other as f64 / max * plot;
                @let base = height - bottom;
                g {
                    title { (bin_label(b)) ": " (b.usable) " usable, " (b.other) " other" }
                    @if b.usable > 0 {
                        rect class="usable" x=(format!("{x:.1}")) y=(format!("{:.1}", base - hu))
                            width=(format!("{bar:.1}")) height=(format!("{hu:.1}")) {}
                    }
                    @if b.other > 0 {
                        rect class="other" x=(format!("{x:.1}")) y=(format!("{:.1}", base - hu - ho))
                            width=(format!("{bar:.1}")) height=(format!("{ho:.1}")) {}
                    }
                    @if b.usable + b.other > 0 {
                        text class="fig mid" x=(format!("{:.1}", x + bar / 2.0))
                            y=(format!("{:.1}", base - hu - ho - 3.0)) { (b.usable + b.other) }
                    }
                    text class="tick mid" x=(format!("{:.1}", x + bar / 2.0)) y=(height - 5.0) { (tick(b)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(label: &str, count: u64) -> Share {
        Share {
            label: label.into(),
            count,
            percent: count as f64,
        }
    }

    fn bin(from_ms: u64, to_ms: Option<u64>) -> LatencyBin {
        LatencyBin {
            from_ms,
            to_ms,
            usable: 0,
            other: 0,
        }
    }

    #[test]
    fn bin_labels() {
        assert_eq!(bin_label(&bin(0, Some(10))), "<10 ms");
        assert_eq!(bin_label(&bin(1000, Some(2500))), "1 s–2.5 s");
        assert_eq!(bin_label(&bin(10_000, None)), "≥10 s");
        assert_eq!(tick(&bin(0, Some(10))), "<10");
        assert_eq!(tick(&bin(250, Some(500))), "250–500");
        assert_eq!(tick(&bin(500, Some(1000))), "0.5–1s");
        assert_eq!(tick(&bin(1000, Some(2500))), "1–2.5s");
        assert_eq!(tick(&bin(10_000, None)), "≥10s");
    }

    #[test]
    fn bars_skip_zero_counts_and_scale_to_the_largest() {
        let shares = [share("healthy", 10), share("dead", 0), share("broken", 5)];
        let svg = share_bars(
            &shares,
            |l| (l == "healthy").then_some("healthy"),
            |l| l,
            "categories",
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("class=\"bar healthy\""), "{svg}");
        assert!(svg.contains("class=\"bar plain\""), "{svg}");
        let widest = format!("width=\"{:.1}\"", WIDTH - LABEL_W - FIGURE_W);
        let half = format!("width=\"{:.1}\"", (WIDTH - LABEL_W - FIGURE_W) / 2.0);
        assert!(svg.contains(&widest) && svg.contains(&half), "{svg}");
        assert!(svg.contains("<title>broken: 5 (5.0%)</title>"), "{svg}");
    }

    #[test]
    fn histogram_stacks_usable_under_other() {
        let bins = [
            LatencyBin {
                usable: 3,
                other: 1,
                ..bin(0, Some(10))
            },
            bin(10, None),
        ];
        let svg = latency_histogram(&bins).into_string();
        assert_eq!(svg.matches("class=\"usable\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("class=\"other\"").count(), 1, "{svg}");
        assert!(
            svg.contains("<title>&lt;10 ms: 3 usable, 1 other</title>"),
            "{svg}"
        );
        assert!(svg.contains(">≥10</text>"), "{svg}");
    }
}
