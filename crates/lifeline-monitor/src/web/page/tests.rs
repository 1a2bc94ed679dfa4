use std::sync::Arc;

use super::*;
use crate::store::{EventKind, ResultRow, Severity, TargetState, UptimeCounts};
use lifeline_mcp::{Reason, Verdict};

const HOSTILE: &str = "<script>alert('x')</script> \"q\" & co";
const NOW_MS: i64 = 1_777_777_777_000;

fn view(name: &str, status: &'static str, message: Option<&str>) -> TargetView {
    let today = NOW_MS / 86_400_000;
    let rolled_days: Arc<[DaySummary]> = (0..90)
        .map(|i| DaySummary {
            day: today - 89 + i,
            up: if i % 7 == 0 { 90 } else { 100 },
            total: if i < 3 { 0 } else { 100 },
            p50_ms: (i >= 3).then_some(40.0 + i as f64),
            p95_ms: (i >= 3).then_some(900.0 + 10.0 * i as f64),
        })
        .collect();
    TargetView {
        state: TargetState {
            id: 1,
            name: name.to_owned(),
            url: format!("https://example.com/mcp?q=<{name}>&x=\"1\""),
            last_checked_ms: Some(NOW_MS - 12_000),
            last_verdict: Some(
                if status == "up" {
                    "healthy"
                } else {
                    "unhealthy"
                }
                .to_owned(),
            ),
            last_reason: Some("http_status".to_owned()),
            last_message: message.map(str::to_owned),
            last_latency_ms: Some(123.0),
            era: Some("legacy".to_owned()),
            protocol_version: Some("2025-11-25".to_owned()),
            server_name: Some(HOSTILE.to_owned()),
            server_version: Some("1.0 <b>".to_owned()),
            tools_count: Some(7),
            schema_hash: Some("0123456789abcdef0123".to_owned()),
            tls_days_left: Some(13),
            ..TargetState::default()
        },
        status,
        interval_s: 30,
        uptime: [
            UptimeCounts { up: 99, total: 100 },
            UptimeCounts {
                up: 9999,
                total: 10000,
            },
            UptimeCounts { up: 0, total: 0 },
            UptimeCounts { up: 1, total: 2 },
        ],
        rolled_days,
        today_raw: UptimeCounts { up: 3, total: 4 },
        transaction_of: None,
        regions: (name == "t").then(|| crate::web::snapshot::RegionsView {
            verdict: "regional",
            regions: vec![("eu-west".into(), Some(false)), (HOSTILE.into(), None)],
        }),
    }
}

fn incident(target: &str, resolved: bool) -> IncidentRow {
    IncidentRow {
        id: 1,
        target_id: 1,
        target: target.to_owned(),
        opened_ms: NOW_MS - 3_600_000,
        resolved_ms: resolved.then_some(NOW_MS - 60_000),
        reason: Some(Reason::HttpStatus.into()),
        message: Some(format!("HTTP 502 from {HOSTILE}")),
        reminders: 0,
    }
}

fn event(target: &str) -> EventRow {
    EventRow {
        id: 1,
        target_id: 1,
        target: target.to_owned(),
        ts_ms: NOW_MS - 7_200_000,
        kind: EventKind::SchemaDrift.into(),
        severity: Severity::Warning.into(),
        summary: format!("tool schema changed: {HOSTILE}"),
        details: serde_json::Value::Null,
    }
}

fn snapshot(targets: Vec<TargetView>) -> Snapshot {
    Snapshot {
        generated_ms: NOW_MS,
        open_incidents: vec![incident(HOSTILE, false)],
        recent_incidents: vec![incident(HOSTILE, true), incident("beta", false)],
        recent_events: vec![event(HOSTILE)],
        targets,
        ..Snapshot::default()
    }
}

fn detail() -> TargetDetail {
    let results = vec![ResultRow {
        maintenance: true,
        reason: Some(Reason::HttpStatus.into()),
        message: Some(HOSTILE.to_owned()),
        latency_ms: Some(1500.0),
        ..ResultRow::new(NOW_MS - 30_000, Verdict::Unhealthy)
    }];
    TargetDetail {
        hourly: (0..168)
            .map(|i| {
                (
                    format!("hour {i} <&>"),
                    (i % 5 != 0).then_some(30.0),
                    (i % 5 != 0).then_some(90.0),
                )
            })
            .collect(),
        phases: crate::web::phases::hourly(
            &[(
                NOW_MS - 3_600_000,
                r#"{"connect":2,"discover":10,"tools_list":4,"total":20}"#.to_owned(),
            )],
            NOW_MS / 3_600_000 - 47,
            NOW_MS / 3_600_000,
        ),
        results,
        incidents: vec![incident(HOSTILE, true), incident(HOSTILE, false)],
        events: vec![event(HOSTILE)],
        drift: vec![drift_event(HOSTILE)],
        regions: vec![crate::agent::RegionResult {
            region: "eu-west".into(),
            agent: "eu-1".into(),
            received_ms: NOW_MS,
            result: crate::agent::AgentResult {
                target: "t".into(),
                probed_at_ms: NOW_MS - 10_000,
                attempt: 0,
                up: false,
                latency_ms: 12,
                error: Some(HOSTILE.to_owned()),
                reason: None,
                schema_hash: None,
            },
        }],
        region_hours: vec![
            (HOSTILE.to_owned(), vec![(1, 1); 24]),
            ("us-east".to_owned(), (0..24).map(|h| (h % 3, 2)).collect()),
        ],
        region_hours_from_ms: (NOW_MS / 3_600_000 - 23) * 3_600_000,
        region_schema: Some((
            true,
            [
                ("eu-west".to_owned(), HOSTILE.to_owned()),
                ("us-east".to_owned(), "9f2c".to_owned()),
            ]
            .into(),
        )),
    }
}

fn drift_event(target: &str) -> EventRow {
    EventRow {
        details: serde_json::json!({
            "from_hash": "aaaaaaaaaaaaaaaaaaaa", "to_hash": "bbbbbbbbbbbbbbbbbbbb", "classification": "breaking",
            "changes": [
                {"tool": HOSTILE, "path": "", "kind": "breaking", "description": "tool removed"},
                {"tool": "echo", "path": "/inputSchema/properties/x", "kind": "additive",
                 "description": format!("optional property {HOSTILE} added")},
            ],
        }),
        ..event(target)
    }
}

/// The pages of the fixtures above: (status page 1, status page 2, target page, not-found page).
fn pages() -> [String; 4] {
    let mut many: Vec<TargetView> = (0..60)
        .map(|i| {
            view(
                &format!("t{i:02}"),
                if i % 3 == 0 { "down" } else { "up" },
                Some("HTTP 502"),
            )
        })
        .collect();
    many.push(view(HOSTILE, "failing", Some(HOSTILE)));
    let snap = snapshot(many);
    let t = view(HOSTILE, "down", Some(HOSTILE));
    [
        status_page(&snap, &format!("Status of {HOSTILE}"), 1, None),
        status_page(&snap, "Status", 2, Some(60)),
        target_page(&t, &detail(), "Status & co", NOW_MS, None),
        not_found(&format!("No target is named `{HOSTILE}`.")),
    ]
}

/// `HOSTILE` as it must appear in text and in double-quoted attribute values.
const ESCAPED: &str = "&lt;script&gt;alert('x')&lt;/script&gt; &quot;q&quot; &amp; co";

#[test]
fn hostile_names_and_messages_are_escaped_on_every_page() {
    let [first, second, target, missing] = pages();
    for (name, page) in [
        ("status 1", &first),
        ("status 2", &second),
        ("target", &target),
        ("not found", &missing),
    ] {
        assert!(
            page.starts_with("<!doctype html><html lang=\"en\"><head>"),
            "{name}"
        );
        assert!(page.ends_with("</main></body></html>"), "{name}");
        assert!(!page.contains("<script"), "{name}: {page}");
        assert!(!page.contains(HOSTILE), "{name}");
        assert!(page.contains(ESCAPED), "{name}");
    }
    // Title, banner text, attributes (id, href) and the SVG hover labels.
    assert!(first.contains(&format!("<title>Status of {ESCAPED}</title>")));
    assert!(first.contains(&format!("<h1>Status of {ESCAPED}</h1>")));
    assert!(first.contains(&format!("id=\"t-{ESCAPED}\"")));
    // Hrefs carry the name percent-encoded as one path segment (and then HTML-escaped: `&` stays in a segment).
    let segment = "%3Cscript%3Ealert('x')%3C%2Fscript%3E%20%22q%22%20&amp;%20co";
    assert!(first.contains(&format!("href=\"/targets/{segment}\"")));
    assert!(target.contains("<title>hour 7 &lt;&amp;&gt;: p50 30 ms · p95 90 ms</title>"));
    assert!(target.contains(&format!("<td>{ESCAPED} 1.0 &lt;b&gt;</td>")));
    assert!(target.contains(
        "href=\"/api/v1/events?target=%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E+%22q%22+%26+co\">events JSON</a>"
    ));
    assert!(target.contains(&format!(
        "href=\"/api/v1/targets/{segment}/history\">history JSON</a>"
    )));
    // The drift diff names the hostile tool escaped.
    assert!(target.contains(&format!("<code>{ESCAPED}</code> tool removed")));
    assert!(target.contains("https://example.com/mcp?q=&lt;"));
    assert!(target.contains("<td>unhealthy (maintenance)</td>"));
}

#[test]
fn status_page_pages_problems_first() {
    let [first, second, ..] = pages();
    // 61 targets: 50 on page 1 (the 20 down ones and the failing one first), 11 on page 2.
    assert_eq!(first.matches("<section class=\"card\"").count(), PAGE_SIZE);
    assert_eq!(second.matches("<section class=\"card\"").count(), 11);
    assert_eq!(first.matches("pill s-down").count(), 20);
    assert!(first.contains("pill s-failing"));
    assert!(first.contains("<div class=\"banner bad\">20 of 61 targets down</div>"));
    assert!(first.contains(
        "<nav class=\"pages\">Page <span><b>1</b></span><a href=\"/?page=2\">2</a></nav>"
    ));
    assert!(second.contains("<a href=\"/?page=1\">1</a><span><b>2</b></span>"));
    // 90 bars per card; today's raw results are added to the last bar.
    assert_eq!(first.matches("<i class=\"").count(), 90 * PAGE_SIZE);
    assert!(first.contains("(103/104 probes up)"));
    // Reloading only when asked for (WCAG 2.2.1), with a link to turn it on or off that keeps the page.
    assert!(!first.contains("http-equiv=\"refresh\""));
    assert!(first.contains("<a href=\"?refresh=60\">reload every minute</a>"));
    assert!(second.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
    assert!(second.contains("<a href=\"?page=2\">stop reloading (every 60 s)</a>"));
}

#[test]
fn target_page_shows_phases_uptime_incidents_and_drift() {
    let [_, _, target, _] = pages();
    // The per-region results of the probe agents.
    assert!(target.contains("Per-region results, last hour"));
    assert!(
        target.contains("<td>eu-west</td><td>eu-1</td><td>failing</td>"),
        "{target}"
    );
    // The region x hour view: 24 columns per region, the share up in words; the schema divergence.
    assert!(target.contains("Regions, last 24 hours"));
    assert_eq!(
        target.matches("<td class=\"g-up\"").count(),
        24 + 8,
        "{target}"
    );
    assert_eq!(
        target.matches("<td class=\"g-down\"").count(),
        16,
        "{target}"
    );
    assert!(target.contains("Tool schema differs across regions: "));
    // 48 hourly columns, one with data: connect, discover (less the connect), tools_list, other.
    assert_eq!(target.matches("<rect class=\"ph").count(), 4, "{target}");
    assert!(target.contains("<li><i class=\"sw ph1\"></i>connect</li>"));
    assert!(target.contains("<li><i class=\"sw ph13\"></i>other</li>"));
    assert!(!target.contains("sw ph0"), "dns never ran: no key");
    // 90 uptime columns, the first three without data.
    assert_eq!(target.matches("<rect class=\"nodata\"").count(), 3);
    assert_eq!(target.matches("<rect class=\"u").count(), 87);
    // Two incidents on the strip (one open), each with a timeline.
    assert_eq!(target.matches("<rect class=\"span").count(), 2);
    assert_eq!(target.matches("<rect class=\"span open\"").count(), 1);
    assert_eq!(target.matches("<ol class=\"timeline\">").count(), 2);
    assert!(target.contains("<b>Resolved</b> after 59 min"));
    assert!(target.contains("<b>Still open</b> after 1 h"));
    // The drift: classification, short hashes, one line per change.
    assert!(target.contains("<span class=\"pill c-breaking\">breaking</span>"));
    assert!(target.contains("<code>aaaaaaaaaaaa</code> → <code>bbbbbbbbbbbb</code>"));
    assert_eq!(target.matches("<li class=\"d-").count(), 2);
    assert!(target.contains("<li class=\"d-removed breaking\">"));
    assert!(target.contains("<code>echo/inputSchema/properties/x</code>"));
}
