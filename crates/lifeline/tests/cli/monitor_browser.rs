//! Headless Chromium (Debian `chromium`) loads the status page of a monitor with 90 days of history (loaded
//! through the store's rollup path), an incident and drift/certificate events; the test checks the rendered
//! DOM and saves screenshots under `target/` for review. Skipped (loudly) only with LIFELINE_SKIP_BROWSER=1.

use std::io::{BufRead as _, BufReader};
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

fn now_ms() -> i64 {
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
            ],
            now,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    lifeline_monitor::simulate::load_history(&store, &ids, 90, now, 7)
        .await
        .unwrap();
    // A past incident on beta, with drift and certificate events.
    let beta = TargetState {
        id: ids[1],
        name: "beta".into(),
        url: "https://beta.example/mcp".into(),
        ..TargetState::default()
    };
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
                    summary: "beta: tool schema changed (breaking; +0 −1 ~0)".into(),
                    details: json!({"removed": ["search"]}),
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
            "storage: \"{db}\"\nlisten: 127.0.0.1:0\ntitle: Lifeline demo status\ntargets:\n  - {{ name: alpha, url: \"http://{closed}/mcp\" }}\n  - {{ name: beta, url: \"http://{closed}/mcp\" }}\n  - {{ name: gamma, url: \"http://{closed}/mcp\" }}\n"
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
    for (name, size) in [
        ("monitor-status-page.png", "1280,2400"),
        ("monitor-status-page-mobile.png", "390,2400"),
    ] {
        let path = out.join(name);
        let _ = std::fs::remove_file(&path);
        let status = chrome(&browser)
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", path.display()))
            .arg(&url)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            std::fs::metadata(&path)
                .map(|m| m.len() > 10_000)
                .unwrap_or(false),
            "{} written",
            path.display()
        );
    }
    let target_page = dump_dom(&browser, &format!("{url}targets/beta"));
    assert!(
        target_page.contains("Latency, hourly, last 7 days") && target_page.contains("Incidents")
    );
    let path = out.join("monitor-target-page.png");
    assert!(chrome(&browser)
        .arg("--window-size=1280,2000")
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("{url}targets/beta"))
        .status()
        .unwrap()
        .success());
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
