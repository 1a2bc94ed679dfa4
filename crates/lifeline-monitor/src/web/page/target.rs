//! The page of one target (`/targets/{name}`): its card, facts, latency per phase over the raw window (stacked),
//! p50/p95 over 7 and 90 days, uptime per day for 90 days, incidents each with its timeline, tool-schema changes
//! each with its diff, other events and the latest probes.
//!
//! Everything here is bounded by what [`TargetDetail`] holds (the handler reads at most a few hundred rows).

use lifeline_mcp::schema::{Change, ChangeKind};
use maud::{html, Markup};
use serde_json::Value;

use super::super::phases::{part_label, PhaseHour, PARTS};
use super::super::snapshot::TargetView;
use super::super::svg::{
    fmt_ms, latency_chart, span_strip, stacked_columns, uptime_columns, Column, Span, UptimeDay,
};
use super::{bar_look, events_table, fmt_day, fmt_time, layout, query_value, rfc3339, target_card};
use crate::store::{EventRow, IncidentRow, ResultRow};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// What the target page shows besides the snapshot entry. Each list is bounded by the handler's query limits.
#[derive(Debug, Default)]
pub struct TargetDetail {
    /// Hourly `(label, p50, p95)` for the last 7 days.
    pub hourly: Vec<(String, Option<f64>, Option<f64>)>,
    /// Mean latency per phase per hour over the raw window (48 h), oldest first.
    pub phases: Vec<PhaseHour>,
    /// Latest raw results, newest first.
    pub results: Vec<ResultRow>,
    /// The target's incidents, newest first.
    pub incidents: Vec<IncidentRow>,
    /// The target's events, newest first (the incident timelines and the "other events" table).
    pub events: Vec<EventRow>,
    /// The target's `schema_drift` events, newest first.
    pub drift: Vec<EventRow>,
    /// Its per-region results from the probe agents (stored in `region_results`), newest first; empty for a
    /// target without `regions:`.
    pub regions: Vec<crate::agent::RegionResult>,
    /// The region × time view of the last 24 hours: per configured region, 24 hourly `(up, total)` counts of
    /// its results, oldest hour first ([`crate::agent::evaluate::region_hours`]); empty without `regions:`.
    pub region_hours: Vec<(String, Vec<(u32, u32)>)>,
    /// The first hour of `region_hours`, Unix ms.
    pub region_hours_from_ms: i64,
    /// Each region's latest tool-schema hash, and whether they differ
    /// ([`crate::agent::evaluate::schema_hashes`]); `None` when fewer than two regions reported one.
    pub region_schema: Option<(bool, std::collections::BTreeMap<String, String>)>,
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn fmt_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

fn phase_chart(hours: &[PhaseHour]) -> Markup {
    let names: Vec<&str> = (0..PARTS).map(part_label).collect();
    let used: Vec<bool> = (0..PARTS)
        .map(|i| hours.iter().any(|h| h.mean_ms[i] > 0.0))
        .collect();
    let columns: Vec<Column> = hours
        .iter()
        .map(|h| Column {
            label: format!("{} ({} probes)", fmt_time(h.hour * HOUR_MS), h.probes),
            values: h.mean_ms.to_vec(),
        })
        .collect();
    html! {
        @if hours.iter().all(|h| h.probes == 0) {
            p class="muted" { "No usable probe with timings in the last 48 hours." }
        } @else {
            (stacked_columns(&columns, &names, "ph", (900, 160), "mean latency per phase, hourly, last 48 hours"))
            ul class="keys" {
                @for (i, name) in names.iter().enumerate() {
                    @if used[i] {
                        li { i class={ "sw ph" (i) } {} (name) }
                    }
                }
            }
        }
    }
}

fn uptime_chart(t: &TargetView) -> Markup {
    let days: Vec<UptimeDay> = t
        .days()
        .iter()
        .map(|d| {
            let (class, title) = bar_look(d);
            UptimeDay {
                title,
                ratio: (d.total > 0).then(|| f64::from(d.up) / f64::from(d.total)),
                class,
            }
        })
        .collect();
    // The axis starts at 90% unless a day was worse: then at that day's tens.
    let worst = days.iter().filter_map(|d| d.ratio).fold(1.0_f64, f64::min);
    let floor = ((worst * 10.0).floor() / 10.0).min(0.9);
    uptime_columns(&days, floor, (900, 120))
}

/// The timeline of one incident: opened, the target's other events while it lasted, reminders, resolved.
fn timeline(i: &IncidentRow, events: &[EventRow], now_ms: i64) -> Markup {
    let end = i.resolved_ms.unwrap_or(now_ms);
    let mut during: Vec<&EventRow> = events
        .iter()
        .filter(|e| {
            e.ts_ms >= i.opened_ms && e.ts_ms <= end && !e.kind.as_str().starts_with("incident_")
        })
        .collect();
    during.sort_by_key(|e| e.ts_ms);
    html! {
        ol class="timeline" {
            li class="t-open" {
                time datetime=(rfc3339(i.opened_ms)) { (fmt_time(i.opened_ms)) }
                " " b { "Opened" }
                @if let Some(r) = &i.reason { " · " code { (r.as_str()) } }
                @if let Some(m) = &i.message { " · " (m) }
            }
            @for e in during {
                li class={ "sev-" (e.severity) } {
                    time datetime=(rfc3339(e.ts_ms)) { (fmt_time(e.ts_ms)) }
                    " " (e.summary)
                }
            }
            @if i.reminders > 0 {
                li { (i.reminders) " reminder" @if i.reminders != 1 { "s" } " sent" }
            }
            @match i.resolved_ms {
                Some(at) => li class="t-resolved" {
                    time datetime=(rfc3339(at)) { (fmt_time(at)) }
                    " " b { "Resolved" } " after " (fmt_duration(at - i.opened_ms))
                },
                None => li class="t-ongoing" {
                    b { "Still open" } " after " (fmt_duration(now_ms - i.opened_ms))
                },
            }
        }
    }
}

fn incidents(detail: &TargetDetail, now_ms: i64) -> Markup {
    let from = (now_ms.div_euclid(DAY_MS) - 89) * DAY_MS;
    let spans: Vec<Span> = detail
        .incidents
        .iter()
        .filter(|i| i.resolved_ms.unwrap_or(now_ms) >= from)
        .map(|i| Span {
            start_ms: i.opened_ms,
            end_ms: i.resolved_ms.unwrap_or(now_ms),
            title: format!(
                "{}: {} for {}",
                fmt_time(i.opened_ms),
                i.reason.map_or("incident", |r| r.as_str()),
                fmt_duration(i.resolved_ms.unwrap_or(now_ms) - i.opened_ms)
            ),
            open: i.resolved_ms.is_none(),
        })
        .collect();
    html! {
        h2 { "Incidents" }
        section class="card" {
            (span_strip(&spans, (from, now_ms), (&fmt_day(from / DAY_MS), "now"), (900, 34)))
            @if detail.incidents.is_empty() {
                p class="muted" { "No incident in the last 90 days." }
            }
            @for i in &detail.incidents {
                article class="incident" {
                    h3 {
                        "Incident " (fmt_time(i.opened_ms))
                        @if i.resolved_ms.is_none() { " " span class="pill s-down" { "open" } }
                    }
                    (timeline(i, &detail.events, now_ms))
                }
            }
        }
    }
}

/// One change line of a drift diff: `(marker, what, tool, path, description, breaking)`.
type DiffLine = (&'static str, &'static str, String, String, String, bool);

/// The lines of a `schema_drift` event's diff, from its `details.changes` (every change, as
/// `lifeline_mcp::schema::diff` reports it) or, in events without them, from `added`/`removed`/`changed`.
fn diff_lines(details: &Value) -> Vec<DiffLine> {
    if let Some(changes) = details
        .get("changes")
        .and_then(|c| serde_json::from_value::<Vec<Change>>(c.clone()).ok())
    {
        return changes
            .into_iter()
            .map(|c| {
                let breaking = c.kind == ChangeKind::Breaking;
                let (marker, what) = match (c.path.as_str(), c.description.as_str()) {
                    ("", "new tool") => ("+", "added"),
                    ("", "tool removed") => ("−", "removed"),
                    _ => ("~", "changed"),
                };
                (marker, what, c.tool, c.path, c.description, breaking)
            })
            .collect();
    }
    let names = |key: &str| -> Vec<String> {
        details
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for t in names("added") {
        out.push(("+", "added", t, String::new(), "new tool".into(), false));
    }
    for t in names("removed") {
        out.push((
            "−",
            "removed",
            t,
            String::new(),
            "tool removed".into(),
            true,
        ));
    }
    for t in names("changed") {
        out.push((
            "~",
            "changed",
            t,
            String::new(),
            "definition changed".into(),
            false,
        ));
    }
    out
}

fn drift(rows: &[EventRow]) -> Markup {
    let short = |v: Option<&Value>| -> String {
        v.and_then(Value::as_str)
            .map(|h| h.chars().take(12).collect())
            .unwrap_or_else(|| "?".to_owned())
    };
    html! {
        h2 { "Tool-schema changes" }
        @if rows.is_empty() {
            p class="muted" { "No tool-schema change recorded." }
        }
        @for e in rows {
            @let class = e.details.get("classification").and_then(Value::as_str)
                .unwrap_or(if e.severity.as_str() == "warning" { "breaking" } else { "additive" });
            section class="card drift" {
                div class="row" {
                    time datetime=(rfc3339(e.ts_ms)) { (fmt_time(e.ts_ms)) }
                    span class={ "pill c-" (class) } { (class) }
                    span { (e.summary) }
                }
                @if e.details.get("from_hash").is_some() {
                    div class="muted" {
                        "schema hash " code { (short(e.details.get("from_hash"))) } " → "
                        code { (short(e.details.get("to_hash"))) }
                    }
                }
                ul class="diff" {
                    @for (marker, what, tool, path, description, breaking) in diff_lines(&e.details) {
                        li class={ "d-" (what) (if breaking { " breaking" } else { "" }) } {
                            span class="mark" aria-label=(what) { (marker) } " "
                            code { (tool) (path) } " " (description)
                            @if breaking { " " b { "breaking" } }
                        }
                    }
                }
            }
        }
    }
}

/// The page of one target; `now_ms` is the end of every time axis; `refresh` (seconds) makes it reload itself.
pub fn target_page(
    t: &TargetView,
    detail: &TargetDetail,
    title: &str,
    now_ms: i64,
    refresh: Option<u32>,
) -> String {
    let s = &t.state;
    let rows: [(&str, Option<String>); 9] = [
        ("Verdict", s.last_verdict.clone()),
        ("Reason", s.last_reason.clone()),
        ("Era", s.era.clone()),
        ("Protocol version", s.protocol_version.clone()),
        (
            "Server",
            s.server_name
                .as_ref()
                .map(|n| format!("{n} {}", s.server_version.as_deref().unwrap_or(""))),
        ),
        ("Tools", s.tools_count.map(|n| n.to_string())),
        (
            "Schema hash",
            s.schema_hash.as_ref().map(|h| h.chars().take(16).collect()),
        ),
        (
            "Certificate",
            s.tls_days_left.map(|d| format!("{d} days left")),
        ),
        ("Interval", Some(format!("{} s", t.interval_s))),
    ];
    let daily: Vec<(String, Option<f64>, Option<f64>)> = t
        .days()
        .iter()
        .map(|d| (fmt_day(d.day), d.p50_ms, d.p95_ms))
        .collect();
    let others: Vec<EventRow> = detail
        .events
        .iter()
        .filter(|e| {
            let k = e.kind.as_str();
            !k.starts_with("incident_") && k != "schema_drift"
        })
        .take(50)
        .cloned()
        .collect();
    let q = query_value(&s.name);
    let body = html! {
        p { a href="/" { "← " (title) } }
        (target_card(t, now_ms, None))
        section class="card" {
            table {
                @for (k, v) in &rows {
                    @if let Some(v) = v {
                        tr { th scope="row" { (k) } td { (v) } }
                    }
                }
            }
        }
        h2 { "Latency per phase, hourly means, last 48 hours" }
        section class="card" { (phase_chart(&detail.phases)) }
        h2 { "Latency, hourly, last 7 days" }
        section class="card" {
            (latency_chart(&detail.hourly, 900, 140, true))
            p class="legend muted" { span class="p50" { "— p50" } span class="p95" { "— p95" } }
        }
        h2 { "Latency, daily, 90 days" }
        section class="card" { (latency_chart(&daily, 900, 140, true)) }
        h2 { "Uptime per day, 90 days" }
        section class="card" { (uptime_chart(t)) }
        (incidents(detail, now_ms))
        (drift(&detail.drift))
        @if !others.is_empty() {
            h2 { "Version and certificate events" }
            (events_table(&others))
        }
        @if !detail.region_hours.is_empty() {
            h2 { "Regions, last 24 hours" }
            section class="card" {
                table class="region-grid" {
                    caption class="muted" { "Share of each region's probes that were up, per hour (UTC), oldest first; — no results." }
                    tr {
                        th scope="col" { "Region" }
                        @for h in 0..24i64 {
                            th scope="col" { (fmt_time(detail.region_hours_from_ms + h * 3_600_000).get(11..13).unwrap_or("")) }
                        }
                    }
                    @for (region, hours) in &detail.region_hours {
                        tr {
                            th scope="row" { (region) }
                            @for (up, total) in hours {
                                @let (class, text) = region_cell(*up, *total);
                                td class=(class) title={ (up) " of " (total) " up" } { (text) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some((diverged, hashes)) = &detail.region_schema {
            p class=(if *diverged { "sev-warning" } else { "muted" }) {
                @if *diverged { "Tool schema differs across regions: " } @else { "Tool schema, same in every region: " }
                @for (i, (region, hash)) in hashes.iter().enumerate() {
                    @if i > 0 { ", " }
                    (region) " " code { (hash.get(..12).unwrap_or(hash)) }
                }
            }
        }
        @if !detail.regions.is_empty() {
            h2 { "Per-region results, last hour" }
            table {
                tr { th scope="col" { "Probed" } th scope="col" { "Region" } th scope="col" { "Agent" } th scope="col" { "Result" } th scope="col" { "Time" } th scope="col" class="opt" { "Detail" } }
                @for r in &detail.regions {
                    tr {
                        td { (fmt_time(r.result.probed_at_ms)) }
                        td { (r.region) }
                        td { (r.agent) }
                        td { @if r.result.up { "up" } @else { "failing" } }
                        td { (fmt_ms(r.result.latency_ms as f64)) }
                        td class="opt" { (r.result.error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Latest probes" }
        table {
            tr { th scope="col" { "When" } th scope="col" { "Verdict" } th scope="col" { "Time" } th scope="col" class="opt" { "Detail" } }
            @for r in &detail.results {
                tr {
                    td { (fmt_time(r.ts_ms)) }
                    td {
                        (r.verdict)
                        @if r.maintenance { " (maintenance)" }
                    }
                    td { (r.latency_ms.map(fmt_ms).unwrap_or_default()) }
                    td class="opt" { (r.message.as_deref().or(r.reason.as_deref()).unwrap_or("")) }
                }
            }
        }
        p class="muted" {
            (super::refresh_toggle("", refresh)) " · "
            a href={ "/api/v1/targets/" (super::path_segment(&s.name)) "/history" } { "history JSON" }
            " · " a href={ "/api/v1/events?target=" (q) } { "events JSON" }
        }
    };
    layout(&format!("{} · {title}", s.name), refresh, body)
}

/// The class and text of one region × hour cell: the share up, in words (the colour only repeats it).
fn region_cell(up: u32, total: u32) -> (&'static str, String) {
    if total == 0 {
        return ("g-none", "—".to_owned());
    }
    let pct = u64::from(up) * 100 / u64::from(total);
    let class = match pct {
        100 => "g-up",
        90..=99 => "g-some",
        _ => "g-down",
    };
    (class, format!("{pct}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations() {
        for (ms, want) in [
            (-5, "0 s"),
            (59_999, "59 s"),
            (60_000, "1 min"),
            (3_600_000, "1 h"),
            (3_900_000, "1 h 5 min"),
            (86_400_000, "1 d"),
            (2 * 86_400_000 + 4 * 3_600_000 + 1, "2 d 4 h"),
        ] {
            assert_eq!(fmt_duration(ms), want, "{ms}");
        }
    }

    #[test]
    fn diff_lines_from_changes_and_from_name_lists() {
        let full = json!({"changes": [
            {"tool": "echo", "path": "", "kind": "additive", "description": "new tool"},
            {"tool": "search", "path": "", "kind": "breaking", "description": "tool removed"},
            {"tool": "sum", "path": "/inputSchema/properties/a/type", "kind": "breaking",
             "description": "type changed from number to string"},
        ]});
        let lines = diff_lines(&full);
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.0, l.1, l.2.as_str(), l.5))
                .collect::<Vec<_>>(),
            vec![
                ("+", "added", "echo", false),
                ("−", "removed", "search", true),
                ("~", "changed", "sum", true)
            ]
        );
        let names = json!({"removed": ["search"], "added": ["a"], "changed": ["b"]});
        assert_eq!(
            diff_lines(&names)
                .iter()
                .map(|l| (l.1, l.2.as_str()))
                .collect::<Vec<_>>(),
            vec![("added", "a"), ("removed", "search"), ("changed", "b")]
        );
        assert!(diff_lines(&Value::Null).is_empty());
    }
}
