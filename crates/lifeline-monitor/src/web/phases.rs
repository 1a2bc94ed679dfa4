//! Latency per probe phase over time, for the target page's stacked chart: each usable probe's `timings_ms`
//! (stored with every raw result, [`crate::store::ProbeRow::timings`]) split into parts that do not overlap, and
//! averaged per hour.
//!
//! Why means and not medians: the means of the parts add up to the mean total, so a stack of them is honest; a
//! stack of medians is not the median of anything. The handler reads at most the newest 60 probes of each hour
//! (`Store::phase_timings`), so a short interval makes each hour's mean a mean of its last 60 probes. Why only the raw window: the rollups keep the total's
//! latency sketch, not the phases, and raw results live 48 h (`retention.raw`).
//!
//! The probe's timings overlap (`lifeline_mcp::probe`): the connection phases (`dns`, `connect`, `tls`) and
//! `first_byte` run inside the MCP step that opened the connection (`discover`, `initialize`, the HTTP+SSE
//! `sse_endpoint`). [`split`] subtracts the connection phases from that step and leaves `first_byte` out; what
//! the parts do not cover (scheduling, JSON parsing, a reconnect folded into an earlier entry) is `other`.

use lifeline_mcp::probe::{Phase, Timings};

const HOUR_MS: i64 = 3_600_000;

/// The stacked parts, bottom first: the connection's, then the MCP steps in the order a probe runs them.
/// [`split`] returns one value per entry plus `other` last.
pub const STACK: [Phase; 13] = [
    Phase::Dns,
    Phase::Connect,
    Phase::Tls,
    Phase::Spawn,
    Phase::SseEndpoint,
    Phase::Discover,
    Phase::Initialize,
    Phase::Initialized,
    Phase::ToolsList,
    Phase::Ping,
    Phase::ToolsCall,
    Phase::OriginCheck,
    Phase::Close,
];

/// Parts per probe: [`STACK`] and `other`.
pub const PARTS: usize = STACK.len() + 1;

/// One hour of usable probes.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseHour {
    /// Hours since the Unix epoch (UTC).
    pub hour: i64,
    /// Usable probes with timings in the hour (0: no data, the means are all 0).
    pub probes: u32,
    /// Mean ms per part, in [`STACK`] order, `other` last; they add up to the mean total.
    pub mean_ms: [f64; PARTS],
}

impl PhaseHour {
    /// The mean total, ms (the height of the stack).
    pub fn total_ms(&self) -> f64 {
        self.mean_ms.iter().sum()
    }
}

/// A part's label: the `timings_ms` key (`tools_list`), or `other`.
pub fn part_label(i: usize) -> &'static str {
    STACK.get(i).map_or("other", |p| p.as_str())
}

fn is_connection(p: Phase) -> bool {
    matches!(p, Phase::Dns | Phase::Connect | Phase::Tls)
}

/// Splits one probe's timings into [`PARTS`] parts that do not overlap, in ms; they add up to `total` (or to
/// more, when the parts alone exceed it: then `other` is 0). Negative or non-finite values count as 0.
pub fn split(t: &Timings) -> [f64; PARTS] {
    let mut out = [0.0; PARTS];
    let clean = |ms: f64| if ms.is_finite() { ms.max(0.0) } else { 0.0 };
    // Connection time seen since the last MCP step: it ran inside the next one.
    let mut nested = 0.0;
    let mut total = None;
    for &(phase, ms) in &t.0 {
        let ms = clean(ms);
        match phase {
            Phase::Total => total = Some(ms),
            Phase::FirstByte => {}
            p => {
                let Some(i) = STACK.iter().position(|s| *s == p) else {
                    continue;
                };
                if is_connection(p) {
                    nested += ms;
                    out[i] += ms;
                } else if p == Phase::Spawn {
                    out[i] += ms;
                } else {
                    out[i] += (ms - nested).max(0.0);
                    nested = 0.0;
                }
            }
        }
    }
    let parts: f64 = out.iter().sum();
    if let Some(total) = total {
        out[PARTS - 1] = (total - parts).max(0.0);
    }
    out
}

/// One [`PhaseHour`] per hour in `[first_hour, last_hour]`, oldest first, from `(ts_ms, timings JSON)` samples
/// (any order; samples outside the range and timings that do not parse are skipped).
pub fn hourly(samples: &[(i64, String)], first_hour: i64, last_hour: i64) -> Vec<PhaseHour> {
    let mut hours: Vec<PhaseHour> = (first_hour..=last_hour)
        .map(|hour| PhaseHour {
            hour,
            probes: 0,
            mean_ms: [0.0; PARTS],
        })
        .collect();
    for (ts, json) in samples {
        let Some(h) = usize::try_from(ts.div_euclid(HOUR_MS) - first_hour)
            .ok()
            .and_then(|i| hours.get_mut(i))
        else {
            continue;
        };
        let Ok(t) = serde_json::from_str::<Timings>(json) else {
            continue;
        };
        // Sums first; divided below.
        for (sum, v) in h.mean_ms.iter_mut().zip(split(&t)) {
            *sum += v;
        }
        h.probes += 1;
    }
    for h in &mut hours {
        if h.probes > 0 {
            for v in &mut h.mean_ms {
                *v /= f64::from(h.probes);
            }
        }
    }
    hours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(Phase, f64)]) -> Timings {
        Timings(pairs.to_vec())
    }

    fn idx(p: Phase) -> usize {
        STACK.iter().position(|s| *s == p).unwrap()
    }

    #[test]
    fn split_table() {
        use Phase::*;
        // (name, timings, [(part, ms)] expected non-zero, other)
        type Case = (&'static str, Timings, Vec<(Phase, f64)>, f64);
        let cases: Vec<Case> = vec![
            (
                // The docs/check-json.md example: dns+connect+tls+first_byte ran inside discover.
                "modern https",
                t(&[
                    (Dns, 1.0),
                    (Connect, 2.0),
                    (Tls, 10.0),
                    (FirstByte, 3.0),
                    (Discover, 20.0),
                    (ToolsList, 5.0),
                    (Close, 1.0),
                    (Total, 30.0),
                ]),
                vec![
                    (Dns, 1.0),
                    (Connect, 2.0),
                    (Tls, 10.0),
                    (Discover, 7.0),
                    (ToolsList, 5.0),
                    (Close, 1.0),
                ],
                4.0,
            ),
            (
                "stdio: spawn is its own part",
                t(&[(Spawn, 50.0), (Initialize, 10.0), (Total, 61.0)]),
                vec![(Spawn, 50.0), (Initialize, 10.0)],
                1.0,
            ),
            (
                "parts above the total: other is 0",
                t(&[(Discover, 20.0), (Ping, 20.0), (Total, 30.0)]),
                vec![(Discover, 20.0), (Ping, 20.0)],
                0.0,
            ),
            (
                "a step shorter than its connection is clamped",
                t(&[(Connect, 9.0), (Discover, 5.0), (Total, 9.0)]),
                vec![(Connect, 9.0)],
                0.0,
            ),
            (
                "garbage values count as 0, no total: no other",
                t(&[(Ping, f64::NAN), (ToolsList, -3.0), (Initialize, 4.0)]),
                vec![(Initialize, 4.0)],
                0.0,
            ),
        ];
        for (name, timings, want, other) in cases {
            let got = split(&timings);
            let mut expect = [0.0; PARTS];
            for (p, ms) in want {
                expect[idx(p)] = ms;
            }
            expect[PARTS - 1] = other;
            assert_eq!(got, expect, "{name}");
        }
    }

    #[test]
    fn hourly_means_add_up_to_the_mean_total() {
        let hour = 500_000;
        let at = |h: i64, min: i64| h * HOUR_MS + min * 60_000;
        let samples = vec![
            (
                at(hour, 1),
                r#"{"connect":2,"discover":10,"tools_list":4,"total":20}"#.to_owned(),
            ),
            (
                at(hour, 30),
                r#"{"connect":4,"discover":14,"tools_list":6,"total":30}"#.to_owned(),
            ),
            (at(hour + 2, 0), r#"{"ping":3,"total":3}"#.to_owned()),
            (at(hour + 2, 1), "not json".to_owned()),
            (at(hour + 2, 2), r#"{"no_such_phase":1}"#.to_owned()),
            (at(hour + 9, 0), r#"{"ping":3,"total":3}"#.to_owned()),
            (at(hour - 1, 0), r#"{"ping":3,"total":3}"#.to_owned()),
        ];
        let hours = hourly(&samples, hour, hour + 2);
        assert_eq!(
            hours.iter().map(|h| (h.hour, h.probes)).collect::<Vec<_>>(),
            vec![(hour, 2), (hour + 1, 0), (hour + 2, 1)]
        );
        let h = &hours[0];
        assert_eq!(h.mean_ms[idx(Phase::Connect)], 3.0);
        assert_eq!(h.mean_ms[idx(Phase::Discover)], 9.0);
        assert_eq!(h.mean_ms[idx(Phase::ToolsList)], 5.0);
        assert_eq!(h.mean_ms[PARTS - 1], 8.0);
        assert_eq!(h.total_ms(), 25.0);
        assert_eq!(hours[1].total_ms(), 0.0);
        assert_eq!(part_label(idx(Phase::ToolsList)), "tools_list");
        assert_eq!(part_label(PARTS - 1), "other");
    }
}
