//! Server-rendered HTML: the status page (`/`) and a page per target (`/targets/{name}`). Inline CSS, no
//! scripts, no external assets; readable without JavaScript and on a phone (a single column under 700 px).
//!
//! The markup is written with `maud`: every interpolated value (target names and URLs, server names, failure
//! messages, event summaries, the configured title) is HTML-escaped unless wrapped in `PreEscaped`, which is
//! used only for the stylesheet and the doctype below. The charts come from [`super::svg`].

use maud::{html, Markup, PreEscaped};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use time::format_description::well_known::Rfc3339;

use super::snapshot::{DaySummary, Snapshot, TargetView, WINDOWS_HOURS};
use super::svg::{fmt_ms, latency_chart};
use crate::store::{EventRow, IncidentRow};

mod target;

pub use target::{fmt_duration, target_page, TargetDetail};

/// Targets per page of the status page.
pub const PAGE_SIZE: usize = 50;

const CSS: &str = r#"
:root{--ok:#1a7f37;--warn:#975a16;--bad:#c53030;--mid:#68d391;--none:#d5dbe3;--fg:#1a202c;--muted:#5a6778;--bg:#f7f9fb;--card:#fff;--p50:#2b6cb0;--p95:#b7410e}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1040px;margin:0 auto;padding:16px}h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.1rem;margin:1.4em 0 .5em}h3{font-size:.95rem;margin:.8em 0 .3em}
a{color:#2b6cb0;text-decoration:none}a:hover,p a{text-decoration:underline}
.banner{padding:12px 16px;border-radius:8px;color:#fff;font-weight:600;margin:12px 0}.banner.ok{background:var(--ok)}.banner.bad{background:var(--bad)}.banner.warn{background:var(--warn)}
.card{background:var(--card);border:1px solid #e2e8f0;border-radius:8px;padding:12px 14px;margin:10px 0}
.row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:baseline}.name{font-weight:600;font-size:1.05rem}
.muted{color:var(--muted);font-size:.88rem}.url{word-break:break-all}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:.8rem;font-weight:600;color:#fff}
.s-up{background:var(--ok)}.s-down{background:var(--bad)}.s-failing,.s-degraded{background:var(--warn)}.s-maintenance{background:#6b46c1}.s-unknown,.s-noreport{background:#4a5568}
.c-breaking{background:var(--bad)}.c-additive{background:#2b6cb0}.c-unknown{background:#4a5568}
.bars{display:flex;gap:1px;height:28px;margin:8px 0 2px}.bars i{flex:1;border-radius:1px;background:var(--none);min-width:1px}
.bars i.u4{background:var(--ok)}.bars i.u3{background:var(--mid)}.bars i.u2{background:#d69e2e}.bars i.u1{background:var(--bad)}
.uptime{display:flex;gap:14px;flex-wrap:wrap;font-size:.88rem}.uptime b{font-variant-numeric:tabular-nums}
.chart{display:block;margin-top:6px;background:#fbfcfd;border-radius:4px}.chart path{fill:none;stroke-width:1.5;vector-effect:non-scaling-stroke}
.chart .p50{stroke:var(--p50)}.chart .p95{stroke:var(--p95)}.chart .axis{font-size:9px;fill:var(--muted)}.chart .axis.end{text-anchor:end}.chart .hover{fill:transparent}.chart .hover:hover{fill:rgba(0,0,0,.06)}
.legend span{margin-right:10px}.legend .p50{color:var(--p50)}.legend .p95{color:var(--p95)}
.uptime-chart .u4{fill:var(--ok)}.uptime-chart .u3{fill:var(--mid)}.uptime-chart .u2{fill:#d69e2e}.uptime-chart .u1{fill:var(--bad)}.uptime-chart .nodata{fill:var(--none)}
.strip .track{fill:#edf2f7}.strip .span{fill:var(--bad)}.strip .span.open{fill:#822727}
.stack g:hover rect{opacity:.8}
.ph0{fill:#9ecae1;background:#9ecae1}.ph1{fill:#6baed6;background:#6baed6}.ph2{fill:#3182bd;background:#3182bd}.ph3{fill:#756bb1;background:#756bb1}
.ph4{fill:#08519c;background:#08519c}.ph5{fill:#31a354;background:#31a354}.ph6{fill:#74c476;background:#74c476}.ph7{fill:#a1d99b;background:#a1d99b}
.ph8{fill:#e6550d;background:#e6550d}.ph9{fill:#fd8d3c;background:#fd8d3c}.ph10{fill:#fdae6b;background:#fdae6b}.ph11{fill:#de2d26;background:#de2d26}
.ph12{fill:#969696;background:#969696}.ph13{fill:#d9d9d9;background:#d9d9d9}
ul.keys{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.85rem}.keys .sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
ol.timeline{list-style:none;margin:4px 0 10px;padding:0 0 0 14px;border-left:2px solid #e2e8f0;font-size:.88rem}ol.timeline li{margin:3px 0}
.t-open b{color:var(--bad)}.t-resolved b{color:var(--ok)}.t-ongoing b{color:var(--bad)}
ul.diff{list-style:none;padding:0;margin:6px 0 0;font-size:.88rem}ul.diff li{padding:2px 6px;border-radius:3px;margin:2px 0}
.d-added{background:#f0fff4}.d-removed{background:#fff5f5}.d-changed{background:#fffaf0}ul.diff .mark{font-weight:700;display:inline-block;width:1em}ul.diff .breaking b{color:var(--bad)}
table{width:100%;border-collapse:collapse;font-size:.88rem}th,td{text-align:left;padding:5px 6px;border-bottom:1px solid #edf2f7;vertical-align:top}
.region-grid{font-size:.75rem}.region-grid td{text-align:center;padding:2px 3px}.g-up{background:#c6f6d5}.g-some{background:#fefcbf}.g-down{background:#fed7d7}.g-none{color:var(--muted)}
.sev-critical{color:var(--bad);font-weight:600}.sev-warning{color:var(--warn);font-weight:600}
nav.pages a,nav.pages span{margin-right:8px}
@media (max-width:700px){main{padding:10px}.bars{height:22px}th.opt,td.opt{display:none}}
"#;

/// What a target name must not carry raw in one path segment (RFC 3986 §3.3: `pchar` is unreserved, sub-delims,
/// `:` and `@`): controls, space, `"#%/<>?[\]^`{|}` and non-ASCII (encoded as UTF-8 octets).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A target name as one URL path segment (percent-encoded; axum's `Path` decodes it back). Still HTML-escaped
/// by maud where it is interpolated (`&` and `'` stay as they are in a segment).
pub fn path_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A target name as a query value (`application/x-www-form-urlencoded`, as the API's `?target=` reads it).
pub fn query_value(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// `2026-05-01 12:00 UTC`.
pub fn fmt_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn fmt_day(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_default()
}

/// `99.95%` or `–`.
pub fn fmt_pct(r: Option<f64>) -> String {
    match r {
        Some(r) if (0.9999..1.0).contains(&r) => "99.99%".to_owned(),
        Some(r) => format!("{:.2}%", r * 100.0),
        None => "–".to_owned(),
    }
}

/// RFC 3339 for `datetime` attributes.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The document around a page's `body`: doctype, head with `title` (escaped) and the stylesheet, `<main>`.
/// `refresh` (seconds) adds a meta refresh: only when the reader asked for it (`?refresh=N`), because a page that
/// reloads by itself interrupts reading and screen readers (WCAG 2.1 §2.2.1 Timing Adjustable).
fn layout(title: &str, refresh: Option<u32>, body: Markup) -> String {
    html! {
        (PreEscaped("<!doctype html>"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                @if let Some(secs) = refresh {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

/// The CSS class (`u4` best … `u1` worst, empty without data) and the hover text of one day's bar.
fn bar_look(d: &DaySummary) -> (&'static str, String) {
    let (class, label) = match (d.total > 0).then(|| f64::from(d.up) / f64::from(d.total)) {
        None => ("", "no data".to_owned()),
        Some(r) => (
            if r >= 0.999 {
                "u4"
            } else if r >= 0.99 {
                "u3"
            } else if r >= 0.95 {
                "u2"
            } else {
                "u1"
            },
            format!("{} ({}/{} probes up)", fmt_pct(Some(r)), d.up, d.total),
        ),
    };
    let lat = match (d.p50_ms, d.p95_ms) {
        (Some(a), Some(b)) => format!(", p50 {} p95 {}", fmt_ms(a), fmt_ms(b)),
        _ => String::new(),
    };
    (class, format!("{}: {label}{lat}", fmt_day(d.day)))
}

fn bars(days: &[DaySummary]) -> Markup {
    html! {
        div class="bars" role="img" aria-label="daily uptime, 90 days" {
            @for d in days {
                @let (class, title) = bar_look(d);
                i class=(class) title=(title) {}
            }
        }
        @if let (Some(first), Some(last)) = (days.first(), days.last()) {
            div class="row muted" style="justify-content:space-between" {
                span { (fmt_day(first.day)) }
                span { (fmt_day(last.day)) }
            }
        }
    }
}

fn uptime_row(t: &TargetView) -> Markup {
    html! {
        div class="uptime" {
            @for (i, (label, _)) in WINDOWS_HOURS.iter().enumerate() {
                span { (label) " " b { (fmt_pct(t.uptime[i].ratio())) } }
            }
        }
    }
}

/// One target's card. `parent_up` is, for a transaction target, whether its configured target's probe is up:
/// a failing transaction on a healthy handshake is the "alive but returns garbage" case, said in words.
fn target_card(t: &TargetView, now_ms: i64, parent_up: Option<bool>) -> Markup {
    let s = &t.state;
    // A failed probe's time says nothing about speed.
    let latency = s
        .last_latency_ms
        .filter(|_| matches!(s.last_verdict.as_deref(), Some("healthy" | "degraded")));
    let problem = (t.status != "up")
        .then(|| s.last_message.as_deref().or(s.last_reason.as_deref()))
        .flatten();
    let days = t.days();
    let points: Vec<(String, Option<f64>, Option<f64>)> = days
        .iter()
        .rev()
        .take(30)
        .rev()
        .map(|d| (fmt_day(d.day), d.p50_ms, d.p95_ms))
        .collect();
    html! {
        section class="card" id={ "t-" (s.name) } {
            div class="row" {
                a class="name" href={ "/targets/" (path_segment(&s.name)) } { (s.name) }
                span class={ "pill s-" (t.status) } { (t.status) }
                @if let Some(ms) = latency {
                    span class="muted" { (fmt_ms(ms)) }
                }
                @if let Some(at) = s.last_checked_ms {
                    span class="muted" { "checked " (((now_ms - at) / 1000).max(0)) "s ago" }
                }
                @if let Some(d) = s.tls_days_left {
                    span class="muted" { "cert " (d) " days" }
                }
            }
            div class="muted url" { (s.url) }
            @if let Some(parent) = &t.transaction_of {
                div class="muted" {
                    "transaction of " a href={ "/targets/" (path_segment(parent)) } { (parent) }
                    @if t.status != "up" && parent_up == Some(true) {
                        " · alive but returning wrong results: the handshake is healthy, this transaction fails"
                    }
                }
            }
            @if let Some(m) = problem {
                div class="muted" { (m) }
            }
            @if let Some(r) = &t.regions {
                (regions_line(r))
            }
            (bars(&days))
            (uptime_row(t))
            @if points.iter().any(|p| p.2.is_some()) {
                (latency_chart(&points, 600, 40, false))
            }
        }
    }
}

/// A multi-region target's last complete round: its verdict and each region's final attempt, in words (the
/// colour only repeats them).
fn regions_line(r: &super::snapshot::RegionsView) -> Markup {
    html! {
        div class="row muted regions" {
            span { "last round: " b { (r.verdict) } }
            @for (region, up) in &r.regions {
                @let (class, word) = match up {
                    Some(true) => ("s-up", "up"),
                    Some(false) => ("s-down", "failing"),
                    None => ("s-noreport", "no report"),
                };
                span { (region) " " span class={ "pill " (class) } { (word) } }
            }
        }
    }
}

fn incidents_table(rows: &[IncidentRow]) -> Markup {
    html! {
        table {
            tr {
                th scope="col" { "Target" } th scope="col" { "Opened" } th scope="col" { "Resolved" }
                th scope="col" class="opt" { "Reason" }
            }
            @for i in rows {
                tr {
                    td { a href={ "/targets/" (path_segment(&i.target)) } { (i.target) } }
                    td { time datetime=(rfc3339(i.opened_ms)) { (fmt_time(i.opened_ms)) } }
                    td {
                        @match i.resolved_ms {
                            Some(ms) => (fmt_time(ms)),
                            None => b { "open" },
                        }
                    }
                    td class="opt" { (i.message.as_deref().or(i.reason.as_deref()).unwrap_or("")) }
                }
            }
        }
    }
}

fn events_table(rows: &[EventRow]) -> Markup {
    html! {
        table {
            tr { th scope="col" { "When" } th scope="col" { "Event" } }
            @for e in rows {
                tr {
                    td { time datetime=(rfc3339(e.ts_ms)) { (fmt_time(e.ts_ms)) } }
                    td class={ "sev-" (e.severity) } { (e.summary) }
                }
            }
        }
    }
}

fn rank(status: &str) -> u8 {
    match status {
        "down" => 0,
        "failing" => 1,
        "degraded" => 2,
        "maintenance" => 3,
        "unknown" => 4,
        _ => 5,
    }
}

/// The banner's class (`ok`, `warn`, `bad`) and text.
fn banner(snap: &Snapshot) -> (&'static str, String) {
    let down = snap.targets.iter().filter(|t| t.status == "down").count();
    let warn = snap
        .targets
        .iter()
        .filter(|t| matches!(t.status, "failing" | "degraded"))
        .count();
    if snap.targets.is_empty() {
        ("warn", "No targets configured".to_owned())
    } else if down > 0 {
        (
            "bad",
            format!("{down} of {} targets down", snap.targets.len()),
        )
    } else if warn > 0 {
        (
            "warn",
            format!("{warn} of {} targets degraded", snap.targets.len()),
        )
    } else {
        (
            "ok",
            format!("All {} targets operational", snap.targets.len()),
        )
    }
}

/// The reload interval a reader may ask for with `?refresh=N`, seconds: N clamped to this range.
pub const REFRESH_RANGE_S: std::ops::RangeInclusive<u32> = 10..=3600;

/// The link that turns the page's own reload on (every 60 s) or off, keeping `base_query` (`page=2&` or empty).
fn refresh_toggle(base_query: &str, refresh: Option<u32>) -> Markup {
    html! {
        @match refresh {
            Some(s) => a href={ "?" (base_query.trim_end_matches('&')) } { "stop reloading (every " (s) " s)" },
            None => a href={ "?" (base_query) "refresh=60" } { "reload every minute" },
        }
    }
}

/// The status page, page `page` (1-based, clamped to the pages there are) of [`PAGE_SIZE`] targets, problems
/// first; `refresh` (seconds, see [`REFRESH_RANGE_S`]) makes it reload itself.
pub fn status_page(snap: &Snapshot, title: &str, page: usize, refresh: Option<u32>) -> String {
    let now = snap.generated_ms;
    let (class, text) = banner(snap);
    // Problems first, by group: a target and its transaction targets sort together (at the group's worst
    // status), the target first, so a transaction shows under its target.
    let group = |t: &'_ TargetView| -> String {
        t.transaction_of
            .clone()
            .unwrap_or_else(|| t.state.name.clone())
    };
    let mut worst: std::collections::HashMap<String, u8> = std::collections::HashMap::new();
    for t in &snap.targets {
        let r = rank(t.status);
        worst
            .entry(group(t))
            .and_modify(|w| *w = (*w).min(r))
            .or_insert(r);
    }
    let up: std::collections::HashMap<&str, bool> = snap
        .targets
        .iter()
        .filter(|t| t.transaction_of.is_none())
        .map(|t| (t.state.name.as_str(), t.status == "up"))
        .collect();
    let mut order: Vec<&TargetView> = snap.targets.iter().collect();
    order.sort_by(|a, b| {
        let (ga, gb) = (group(a), group(b));
        let w = |g: &String| worst.get(g).copied().unwrap_or(u8::MAX);
        w(&ga)
            .cmp(&w(&gb))
            .then_with(|| ga.cmp(&gb))
            .then_with(|| a.transaction_of.is_some().cmp(&b.transaction_of.is_some()))
            .then_with(|| a.state.name.cmp(&b.state.name))
    });
    let pages = order.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let body = html! {
        h1 { (title) }
        div class={ "banner " (class) } { (text) }
        @if !snap.open_incidents.is_empty() {
            h2 { "Open incidents" }
            (incidents_table(&snap.open_incidents))
        }
        h2 { "Targets " span class="muted" { "(90 days, one bar per day)" } }
        @for t in order.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
            (target_card(t, now, t.transaction_of.as_deref().and_then(|p| up.get(p).copied())))
        }
        @if pages > 1 {
            nav class="pages" {
                "Page "
                @for p in 1..=pages {
                    @if p == page {
                        span { b { (p) } }
                    } @else {
                        a href={ "/?page=" (p) } { (p) }
                    }
                }
            }
        }
        p class="legend muted" {
            span class="p50" { "— p50" } span class="p95" { "— p95" } " daily latency, last 30 days"
        }
        @if !snap.recent_incidents.is_empty() {
            h2 { "Recent incidents" }
            (incidents_table(&snap.recent_incidents))
        }
        @if !snap.recent_events.is_empty() {
            h2 { "Drift, version and certificate events" }
            (events_table(&snap.recent_events))
        }
        p class="muted" {
            "Updated " (fmt_time(now)) " · " (refresh_toggle(&if page > 1 { format!("page={page}&") } else { String::new() }, refresh))
            " · " a href="/api/v1/targets" { "JSON API" } " · " a href="/metrics" { "metrics" }
        }
    };
    layout(title, refresh, body)
}

/// A minimal error page; `what` is escaped.
pub fn not_found(what: &str) -> String {
    let body = html! {
        h1 { "Not found" }
        p { (what) }
        p { a href="/" { "Status page" } }
    };
    layout("Not found", None, body)
}

#[cfg(test)]
mod tests;
