//! Server-rendered HTML: the status page (`/`) and a page per target (`/targets/{name}`). Inline CSS, no
//! scripts, no external assets; readable without JavaScript and on a phone (a single column under 700 px).

use std::fmt::Write as _;

use time::format_description::well_known::Rfc3339;

use super::snapshot::{DaySummary, Snapshot, TargetView, WINDOWS_HOURS};
use super::svg::{fmt_ms, latency_chart};
use crate::store::{EventRow, IncidentRow, ResultRow};

/// Targets per page of the status page.
pub const PAGE_SIZE: usize = 50;

const CSS: &str = r#"
:root{--ok:#1f9d55;--warn:#d69e2e;--bad:#e53e3e;--mid:#68d391;--none:#d5dbe3;--fg:#1a202c;--muted:#5a6778;--bg:#f7f9fb;--card:#fff}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1040px;margin:0 auto;padding:16px}h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.1rem;margin:1.4em 0 .5em}
a{color:#2b6cb0;text-decoration:none}a:hover{text-decoration:underline}
.banner{padding:12px 16px;border-radius:8px;color:#fff;font-weight:600;margin:12px 0}.banner.ok{background:var(--ok)}.banner.bad{background:var(--bad)}.banner.warn{background:var(--warn)}
.card{background:var(--card);border:1px solid #e2e8f0;border-radius:8px;padding:12px 14px;margin:10px 0}
.row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:baseline}.name{font-weight:600;font-size:1.05rem}
.muted{color:var(--muted);font-size:.88rem}.url{word-break:break-all}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:.8rem;font-weight:600;color:#fff}
.s-up{background:var(--ok)}.s-down{background:var(--bad)}.s-failing,.s-degraded{background:var(--warn)}.s-maintenance{background:#805ad5}.s-unknown{background:#a0aec0}
.bars{display:flex;gap:1px;height:28px;margin:8px 0 2px}.bars i{flex:1;border-radius:1px;background:var(--none);min-width:1px}
.bars i.u4{background:var(--ok)}.bars i.u3{background:var(--mid)}.bars i.u2{background:var(--warn)}.bars i.u1{background:var(--bad)}
.uptime{display:flex;gap:14px;flex-wrap:wrap;font-size:.88rem}.uptime b{font-variant-numeric:tabular-nums}
.chart{display:block;margin-top:6px;background:#fbfcfd;border-radius:4px}.chart path{fill:none;stroke-width:1.5;vector-effect:non-scaling-stroke}
.chart .p50{stroke:#3182ce}.chart .p95{stroke:#dd6b20}.chart .axis{font-size:9px;fill:var(--muted)}.chart .hover{fill:transparent}.chart .hover:hover{fill:rgba(0,0,0,.06)}
.legend span{margin-right:10px}.legend .p50{color:#3182ce}.legend .p95{color:#dd6b20}
table{width:100%;border-collapse:collapse;font-size:.88rem}th,td{text-align:left;padding:5px 6px;border-bottom:1px solid #edf2f7;vertical-align:top}
.sev-critical{color:var(--bad);font-weight:600}.sev-warning{color:#b7791f;font-weight:600}
nav.pages a,nav.pages span{margin-right:8px}
@media (max-width:700px){main{padding:10px}.bars{height:22px}th.opt,td.opt{display:none}}
"#;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

fn head(out: &mut String, title: &str, refresh: bool) {
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{}<title>{}</title><style>{CSS}</style></head><body><main>",
        if refresh { "<meta http-equiv=\"refresh\" content=\"60\">" } else { "" },
        esc(title)
    );
}

fn bars(out: &mut String, days: &[DaySummary]) {
    out.push_str("<div class=\"bars\" role=\"img\" aria-label=\"daily uptime, 90 days\">");
    for d in days {
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
        let _ = write!(
            out,
            "<i class=\"{class}\" title=\"{}: {label}{lat}\"></i>",
            fmt_day(d.day)
        );
    }
    out.push_str("</div>");
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(out, "<div class=\"row muted\" style=\"justify-content:space-between\"><span>{}</span><span>{}</span></div>", fmt_day(first.day), fmt_day(last.day));
    }
}

fn uptime_row(out: &mut String, t: &TargetView) {
    out.push_str("<div class=\"uptime\">");
    for (i, (label, _)) in WINDOWS_HOURS.iter().enumerate() {
        let _ = write!(
            out,
            "<span>{label} <b>{}</b></span>",
            fmt_pct(t.uptime[i].ratio())
        );
    }
    out.push_str("</div>");
}

fn target_card(out: &mut String, t: &TargetView, now_ms: i64) {
    let s = &t.state;
    let _ = write!(
        out,
        "<section class=\"card\" id=\"t-{n}\"><div class=\"row\"><a class=\"name\" href=\"/targets/{n}\">{n}</a><span class=\"pill s-{st}\">{st}</span>",
        n = esc(&s.name),
        st = t.status
    );
    // A failed probe's time says nothing about speed.
    if let Some(ms) = s
        .last_latency_ms
        .filter(|_| matches!(s.last_verdict.as_deref(), Some("healthy" | "degraded")))
    {
        let _ = write!(out, "<span class=\"muted\">{}</span>", fmt_ms(ms));
    }
    if let Some(at) = s.last_checked_ms {
        let _ = write!(
            out,
            "<span class=\"muted\">checked {}s ago</span>",
            ((now_ms - at) / 1000).max(0)
        );
    }
    if let Some(d) = s.tls_days_left {
        let _ = write!(out, "<span class=\"muted\">cert {d} days</span>");
    }
    let _ = write!(out, "</div><div class=\"muted url\">{}</div>", esc(&s.url));
    if t.status != "up" {
        if let Some(m) = s.last_message.as_deref().or(s.last_reason.as_deref()) {
            let _ = write!(out, "<div class=\"muted\">{}</div>", esc(m));
        }
    }
    let days = t.days();
    bars(out, &days);
    uptime_row(out, t);
    let points: Vec<(String, Option<f64>, Option<f64>)> = days
        .iter()
        .rev()
        .take(30)
        .rev()
        .map(|d| (fmt_day(d.day), d.p50_ms, d.p95_ms))
        .collect();
    if points.iter().any(|p| p.2.is_some()) {
        out.push_str(&latency_chart(&points, 600, 40, false));
    }
    out.push_str("</section>");
}

fn incidents_table(out: &mut String, rows: &[IncidentRow]) {
    out.push_str("<table><tr><th>Target</th><th>Opened</th><th>Resolved</th><th class=\"opt\">Reason</th></tr>");
    for i in rows {
        let _ = write!(
            out,
            "<tr><td><a href=\"/targets/{n}\">{n}</a></td><td><time datetime=\"{}\">{}</time></td><td>{}</td><td class=\"opt\">{}</td></tr>",
            rfc3339(i.opened_ms),
            fmt_time(i.opened_ms),
            i.resolved_ms.map_or("<b>open</b>".to_owned(), fmt_time),
            esc(i.message.as_deref().or(i.reason.as_deref()).unwrap_or("")),
            n = esc(&i.target),
        );
    }
    out.push_str("</table>");
}

fn events_table(out: &mut String, rows: &[EventRow]) {
    out.push_str("<table><tr><th>When</th><th>Event</th></tr>");
    for e in rows {
        let _ = write!(
            out,
            "<tr><td><time datetime=\"{}\">{}</time></td><td class=\"sev-{}\">{}</td></tr>",
            rfc3339(e.ts_ms),
            fmt_time(e.ts_ms),
            esc(&e.severity),
            esc(&e.summary)
        );
    }
    out.push_str("</table>");
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

/// The status page, page `page` (1-based) of [`PAGE_SIZE`] targets, problems first.
pub fn status_page(snap: &Snapshot, title: &str, page: usize) -> String {
    let now = snap.generated_ms;
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, title, true);
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    let down = snap.targets.iter().filter(|t| t.status == "down").count();
    let warn = snap
        .targets
        .iter()
        .filter(|t| matches!(t.status, "failing" | "degraded"))
        .count();
    let (class, text) = if snap.targets.is_empty() {
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
    };
    let _ = write!(out, "<div class=\"banner {class}\">{}</div>", esc(&text));
    if !snap.open_incidents.is_empty() {
        out.push_str("<h2>Open incidents</h2>");
        incidents_table(&mut out, &snap.open_incidents);
    }
    let mut order: Vec<&TargetView> = snap.targets.iter().collect();
    order.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then_with(|| a.state.name.cmp(&b.state.name))
    });
    let pages = order.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let _ = write!(
        out,
        "<h2>Targets <span class=\"muted\">(90 days, one bar per day)</span></h2>"
    );
    for t in order.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
        target_card(&mut out, t, now);
    }
    if pages > 1 {
        out.push_str("<nav class=\"pages\">Page ");
        for p in 1..=pages {
            if p == page {
                let _ = write!(out, "<span><b>{p}</b></span>");
            } else {
                let _ = write!(out, "<a href=\"/?page={p}\">{p}</a>");
            }
        }
        out.push_str("</nav>");
    }
    out.push_str("<p class=\"legend muted\"><span class=\"p50\">— p50</span><span class=\"p95\">— p95</span> daily latency, last 30 days</p>");
    if !snap.recent_incidents.is_empty() {
        out.push_str("<h2>Recent incidents</h2>");
        incidents_table(&mut out, &snap.recent_incidents);
    }
    if !snap.recent_events.is_empty() {
        out.push_str("<h2>Drift, version and certificate events</h2>");
        events_table(&mut out, &snap.recent_events);
    }
    let _ = write!(
        out,
        "<p class=\"muted\">Updated {} · <a href=\"/api/v1/targets\">JSON API</a> · <a href=\"/metrics\">metrics</a></p></main></body></html>",
        fmt_time(now)
    );
    out
}

/// What the target page shows besides the snapshot entry.
#[derive(Debug, Default)]
pub struct TargetDetail {
    /// Hourly `(label, p50, p95)` for the last 7 days.
    pub hourly: Vec<(String, Option<f64>, Option<f64>)>,
    /// Latest raw results, newest first.
    pub results: Vec<ResultRow>,
    /// The target's incidents, newest first.
    pub incidents: Vec<IncidentRow>,
    /// The target's events, newest first.
    pub events: Vec<EventRow>,
}

/// The page of one target.
pub fn target_page(t: &TargetView, detail: &TargetDetail, title: &str, now_ms: i64) -> String {
    let s = &t.state;
    let mut out = String::with_capacity(32 * 1024);
    head(&mut out, &format!("{} · {title}", s.name), true);
    let _ = write!(out, "<p><a href=\"/\">← {}</a></p>", esc(title));
    target_card(&mut out, t, now_ms);
    out.push_str("<section class=\"card\"><table>");
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
    for (k, v) in rows {
        if let Some(v) = v {
            let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
        }
    }
    out.push_str("</table></section>");
    out.push_str("<h2>Latency, hourly, last 7 days</h2><section class=\"card\">");
    out.push_str(&latency_chart(&detail.hourly, 900, 140, true));
    out.push_str("<p class=\"legend muted\"><span class=\"p50\">— p50</span><span class=\"p95\">— p95</span></p></section>");
    let daily: Vec<(String, Option<f64>, Option<f64>)> = t
        .days()
        .iter()
        .map(|d| (fmt_day(d.day), d.p50_ms, d.p95_ms))
        .collect();
    out.push_str("<h2>Latency, daily, 90 days</h2><section class=\"card\">");
    out.push_str(&latency_chart(&daily, 900, 140, true));
    out.push_str("</section>");
    if !detail.incidents.is_empty() {
        out.push_str("<h2>Incidents</h2>");
        incidents_table(&mut out, &detail.incidents);
    }
    if !detail.events.is_empty() {
        out.push_str("<h2>Events</h2>");
        events_table(&mut out, &detail.events);
    }
    out.push_str("<h2>Latest probes</h2><table><tr><th>When</th><th>Verdict</th><th>Time</th><th class=\"opt\">Detail</th></tr>");
    for r in &detail.results {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td class=\"opt\">{}</td></tr>",
            fmt_time(r.ts_ms),
            esc(&r.verdict),
            if r.maintenance { " (maintenance)" } else { "" },
            r.latency_ms.map(fmt_ms).unwrap_or_default(),
            esc(r.message.as_deref().or(r.reason.as_deref()).unwrap_or(""))
        );
    }
    let _ = write!(
        out,
        "</table><p class=\"muted\"><a href=\"/api/v1/targets/{n}/history\">history JSON</a> · <a href=\"/api/v1/events?target={n}\">events JSON</a></p></main></body></html>",
        n = esc(&s.name)
    );
    out
}

/// A minimal error page.
pub fn not_found(what: &str) -> String {
    let mut out = String::new();
    head(&mut out, "Not found", false);
    let _ = write!(
        out,
        "<h1>Not found</h1><p>{}</p><p><a href=\"/\">Status page</a></p></main></body></html>",
        esc(what)
    );
    out
}
