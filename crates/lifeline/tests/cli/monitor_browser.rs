//! Headless Chromium (Debian `chromium`) loads the status page of a monitor with 90 days of history (loaded
//! through the store's rollup path), an incident, drift/certificate events and two days of raw results with
//! phase timings, then the target page; the test checks the rendered DOM, runs the axe-core accessibility
//! checker (`lifeline_testkit::a11y`: WCAG A/AA rules, contrast and labels among them) on both pages, and saves
//! screenshots under `target/` for review. Skipped (loudly) only with LIFELINE_SKIP_BROWSER=1.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lifeline_mcp::{Reason, Verdict};
use lifeline_monitor::store::{
    EventKind, IncidentOp, NewEvent, ProbeRow, RecordOp, Severity, TargetState,
};
use lifeline_monitor::Store;
use lifeline_testkit::assert_eventually;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
const HOUR: i64 = 3_600_000;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|c| {
            Command::new("which")
                .arg(c)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn seed_history(db: &str) {
    let store = Store::connect(db).await.unwrap();
    let now = now_ms();
    let ids: Vec<i64> = store
        .sync_targets(
            &[
                ("alpha".into(), "https://alpha.example/mcp".into()),
                ("beta".into(), "https://beta.example/mcp".into()),
                ("gamma".into(), "https://gamma.example/mcp".into()),
                ("delta".into(), "https://delta.example/mcp".into()),
            ],
            now,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    // delta is probed from region r2 (issue 14): a day of its agent's results, one every 5 min (every fifth
    // failing), and one every 5 s from 30 s ago to 90 s ahead, so every round judged while the test runs has one.
    // Its interval is 5 s (the monitor's minimum), so every 5 s round holds a seeded row: with the 60 s default the
    // first round judged could end before the dense rows began, and the next one was judged about 65 s later,
    // past the test's patience (CI failure of 2026-12-07: "the targets are still unknown on the page").
    let region_rows: Vec<lifeline_monitor::agent::AgentResult> = (0..288)
        .map(|i| now - 86_400_000 + i * 300_000)
        .chain((0..24).map(|i| now - 30_000 + i * 5_000))
        .enumerate()
        .map(|(i, at)| lifeline_monitor::agent::AgentResult {
            target: "delta".into(),
            probed_at_ms: at,
            attempt: 0,
            up: at > now - 60_000 || i % 5 != 0,
            latency_ms: 20,
            error: None,
            reason: None,
            schema_hash: None,
        })
        .collect();
    let a2 = lifeline_monitor::store::AgentCall {
        name: "a2",
        region: "r2",
        at_ms: now,
    };
    store
        .record_region_results(&a2, &region_rows)
        .await
        .unwrap();
    lifeline_monitor::simulate::load_history(&store, &ids[..3], 90, now, 7)
        .await
        .unwrap();
    // A past incident on beta, with drift and certificate events.
    let beta = TargetState {
        id: ids[1],
        name: "beta".into(),
        url: "https://beta.example/mcp".into(),
        ..TargetState::default()
    };
    // Two days of usable probes with phase timings (one every 20 minutes), for the per-phase chart.
    let probes: Vec<RecordOp> = (1..=47 * 3)
        .map(|i| {
            let slow = if i % 9 == 0 { 3.0 } else { 1.0 };
            let ts = now - i * 20 * 60_000;
            let timings = json!({
                "dns": 1.0, "connect": 2.0 * slow, "tls": 11.0, "first_byte": 4.0,
                "discover": 18.0 * slow, "initialize": 9.0, "initialized": 2.0, "tools_list": 6.0 + (i % 5) as f64,
                "ping": 2.0, "origin_check": 1.5, "close": 1.0, "total": 60.0 * slow + (i % 5) as f64,
            });
            RecordOp {
                state: TargetState {
                    id: ids[1],
                    name: "beta".into(),
                    url: "https://beta.example/mcp".into(),
                    ..TargetState::default()
                },
                tools_json: None,
                result: ProbeRow {
                    up: true,
                    latency_ms: timings["total"].as_f64(),
                    timings: Some(timings.to_string()),
                    ..ProbeRow::new(ts, Verdict::Healthy)
                },
                events: vec![],
                incident: IncidentOp::None,
            }
        })
        .collect();
    store.record(&probes).await.unwrap();
    let at = now - 30 * HOUR;
    let r = ProbeRow {
        reason: Some(Reason::HttpStatus.into()),
        message: Some("HTTP 502 from the ingress".into()),
        ..ProbeRow::new(at, Verdict::Unhealthy)
    };
    let opened = store
        .record(&[RecordOp {
            state: beta.clone(),
            tools_json: None,
            result: r.clone(),
            events: vec![
                NewEvent {
                    ts_ms: at - HOUR,
                    kind: EventKind::SchemaDrift,
                    severity: Severity::Warning,
                    summary: "beta: tool schema changed (breaking; +1 −1 ~1)".into(),
                    details: json!({
                        "from_hash": "4f1c2a9e0b7d3c5a", "to_hash": "9a8b7c6d5e4f3a2b",
                        "classification": "breaking", "breaking": true,
                        "added": ["summarize"], "removed": ["search"], "changed": ["fetch"],
                        "changes": [
                            {"tool": "fetch", "path": "/inputSchema/required/1", "kind": "breaking",
                             "description": "new required property `timeout_ms`"},
                            {"tool": "search", "path": "", "kind": "breaking", "description": "tool removed"},
                            {"tool": "summarize", "path": "", "kind": "additive", "description": "new tool"},
                        ],
                    }),
                },
                NewEvent {
                    ts_ms: at - 2 * HOUR,
                    kind: EventKind::CertExpiring,
                    severity: Severity::Warning,
                    summary: "beta: certificate expires in 13 days".into(),
                    details: json!({"days_left": 13}),
                },
            ],
            incident: IncidentOp::Open {
                at_ms: at,
                reason: Some(Reason::HttpStatus),
                message: Some("HTTP 502 from the ingress".into()),
                summary: "beta is down".into(),
                alerts: vec![],
            },
        }])
        .await
        .unwrap();
    let id = opened[0].unwrap();
    store
        .record(&[RecordOp {
            state: beta,
            tools_json: None,
            result: ProbeRow {
                up: true,
                latency_ms: Some(40.0),
                ..ProbeRow::new(at + HOUR, Verdict::Healthy)
            },
            events: vec![],
            incident: IncidentOp::Resolve {
                incident_id: id,
                at_ms: at + HOUR,
                summary: "beta recovered after 1h".into(),
                alerts: vec![],
            },
        }])
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_renders_the_status_page_with_history() {
    if std::env::var("LIFELINE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("!!! LIFELINE_SKIP_BROWSER=1: the Chromium status-page test is SKIPPED !!!");
        return;
    }
    let browser = chromium().expect(
        "chromium is not installed: `apt-get install chromium`, or set LIFELINE_SKIP_BROWSER=1",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("hist.db").display());
    seed_history(&db).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = dir.path().join("monitor.yaml");
    std::fs::write(
        &cfg,
        format!(
            "storage: \"{db}\"\nlisten: 127.0.0.1:0\ntitle: Lifeline demo status\ntargets:\n  - {{ name: alpha, url: \"http://{closed}/mcp\" }}\n  - {{ name: beta, url: \"http://{closed}/mcp\" }}\n  - {{ name: gamma, url: \"http://{closed}/mcp\" }}\n  - {{ name: delta, url: \"http://{closed}/mcp\", interval: 5s, timeout: 2s, regions: [r2] }}\nagents:\n  - {{ name: a2, region: r2, token_files: [a2.sha256] }}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["monitor", "--log-json", "--config"])
        .arg(&cfg)
        .env("LIFELINE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let _proc = Proc(child);
    // Drain stderr on a thread for the whole run (a full pipe would stall the monitor's logging).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(i) = line.find("http://127.0.0.1:") {
            let rest = &line[i + 7..];
            addr = Some(rest[..rest.find('/').unwrap()].to_owned());
            break;
        }
    }
    let url = format!("http://{}/", addr.expect("listening line"));
    // Wait until the first probes are in (targets no longer "unknown").
    assert_eventually!(
        !dump_dom(&browser, &url).contains("pill s-unknown"),
        patience = Duration::from_secs(30),
        "the targets are still unknown on the page"
    );
    let dom = dump_dom(&browser, &url);
    for want in [
        "Lifeline demo status",
        "alpha",
        "beta",
        "gamma",
        "delta",
        "Recent incidents",
        "HTTP 502 from the ingress",
        "certificate expires in 13 days",
        "tool schema changed",
        "class=\"bars\"",
        "<svg class=\"chart\"",
    ] {
        assert!(dom.contains(want), "missing {want:?} in the rendered page");
    }
    // 90 bars per target, most with data and a hover title.
    assert!(
        dom.matches("<i class=\"u").count() >= 3 * 80,
        "bars with data"
    );
    assert!(dom.contains("probes up"));

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    screenshot(
        &browser,
        &url,
        &out.join("monitor-status-page.png"),
        "1280,2400",
    );
    screenshot(
        &browser,
        &url,
        &out.join("monitor-status-page-mobile.png"),
        "390,2400",
    );
    let target_url = format!("{url}targets/beta");
    let target_page = dump_dom(&browser, &target_url);
    for want in [
        "Latency per phase, hourly means, last 48 hours",
        "<svg class=\"chart stack\"",
        "tools_list",
        "Uptime per day, 90 days",
        "<svg class=\"chart uptime-chart\"",
        "Incidents",
        "<svg class=\"chart strip\"",
        "<ol class=\"timeline\">",
        "HTTP 502 from the ingress",
        "Resolved",
        "Tool-schema changes",
        "new required property `timeout_ms`",
        "tool removed",
        "4f1c2a9e0b7d",
        "certificate expires in 13 days",
    ] {
        assert!(
            target_page.contains(want),
            "missing {want:?} in the target page"
        );
    }
    // 48 hourly columns of phases; most hours hold three probes.
    assert!(
        target_page.matches("<rect class=\"ph").count() >= 40 * 8,
        "stacked phase segments"
    );
    // The incident lasted an hour (opened at -30 h, resolved at -29 h).
    assert!(target_page.contains("after 1 h"), "resolved after 1 h");

    // An unknown name (with characters that need encoding) is a 404 page that shows it escaped.
    let (status, body) = http_get(&addr_of(&url), "/targets/no%20such%3Cb%3E");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no such&lt;b&gt;"), "{body}");

    // A multi-region target's page: the region x hour view of the last day and the per-region results.
    let region_url = format!("{url}targets/delta");
    let region_page = dump_dom(&browser, &region_url);
    for want in [
        "Regions, last 24 hours",
        "class=\"g-down\"",
        "Per-region results, last hour",
    ] {
        assert!(
            region_page.contains(want),
            "missing {want:?} in the region page"
        );
    }
    assert!(
        dom.contains("last round: "),
        "the status page shows delta's regions"
    );

    // Accessibility: no WCAG A/AA violation on any page (contrast, labels, names, structure).
    for (page, violations) in lifeline_testkit::a11y::axe_violations(
        std::path::Path::new(&browser),
        &[url.clone(), target_url.clone(), region_url.clone()],
    ) {
        assert!(
            violations.is_empty(),
            "axe found violations on {page}:\n{}",
            lifeline_testkit::a11y::describe(&violations)
        );
    }

    screenshot(
        &browser,
        &target_url,
        &out.join("monitor-target-page.png"),
        "1280,3200",
    );
    screenshot(
        &browser,
        &target_url,
        &out.join("monitor-target-page-mobile.png"),
        "390,3600",
    );
}

/// Saves a screenshot of `url` at `size` (`W,H`) to `path` and checks it was written (over 10 kB: not blank).
fn screenshot(browser: &str, url: &str, path: &std::path::Path, size: &str) {
    let _ = std::fs::remove_file(path);
    let status = chrome(browser)
        .arg(format!("--window-size={size}"))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::metadata(path)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "{} written",
        path.display()
    );
}

/// `127.0.0.1:port` of `http://127.0.0.1:port/`.
fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A bare HTTP/1.1 GET (the status code and body), bounded by 30 s timeouts.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn chrome(browser: &str) -> Command {
    let profile = std::env::temp_dir().join(format!("lifeline-chromium-{}", std::process::id()));
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    c
}

fn dump_dom(browser: &str, url: &str) -> String {
    let out = chrome(browser).arg("--dump-dom").arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
