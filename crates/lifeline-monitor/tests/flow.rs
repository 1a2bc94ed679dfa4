//! The monitor end to end with a scripted prober and a local alert receiver on 127.0.0.1: incidents open once
//! after the threshold and page each provider exactly once (through retries), a restart mid-incident sends
//! nothing twice, recovery resolves once, maintenance suppresses, and drift and version changes become events.
//! `flow/providers.rs`: Teams, Discord and Opsgenie against loopback fakes of their APIs, email through a real
//! SMTP server (aiosmtpd); `flow/alertmanager.rs`: a real Alertmanager routing to a webhook receiver;
//! `flow/ha.rs`: three replicas on a real PostgreSQL (issue 14); `flow/regions.rs`: two replicas judging three
//! probe agents' rounds from PostgreSQL (issue 14, "Regions").

#[path = "flow/alertmanager.rs"]
mod alertmanager;
#[path = "flow/ha.rs"]
mod ha;
#[path = "flow/providers.rs"]
mod providers;
#[path = "flow/regions.rs"]
mod regions;
#[path = "support/running.rs"]
mod running;

use running::start;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use lifeline_mcp::probe::{Failure, Phase, ProbeReport, ServerInfo, Timings};
use lifeline_mcp::{Era, Reason, Verdict};
use lifeline_monitor::prober::BoxFuture;
use lifeline_monitor::{Config, Prober, TargetConfig};
use lifeline_testkit::assert_eventually;
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone)]
struct Mode {
    verdict: Verdict,
    protocol: &'static str,
    server_version: &'static str,
    hash: &'static str,
    tools: Vec<Value>,
}

struct Scripted {
    mode: Mutex<Mode>,
    calls: AtomicU64,
}

impl Scripted {
    fn new(verdict: Verdict) -> Arc<Self> {
        Arc::new(Scripted {
            mode: Mutex::new(Mode {
                verdict,
                protocol: "2025-06-18",
                server_version: "1.0.0",
                hash: "h1",
                tools: vec![json!({"name": "echo"}), json!({"name": "sum"})],
            }),
            calls: AtomicU64::new(0),
        })
    }
    fn set(&self, f: impl FnOnce(&mut Mode)) {
        f(&mut self.mode.lock().unwrap());
    }
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Prober for Scripted {
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport> {
        let m = self.mode.lock().unwrap().clone();
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut timings = Timings::default();
            timings.add(Phase::Total, 12.5);
            let ok = m.verdict == Verdict::Healthy;
            ProbeReport {
                url: target.url.to_string(),
                verdict: m.verdict,
                reason: (!ok).then_some(Reason::ConnectRefused),
                failure: (!ok).then(|| Failure::new(Reason::ConnectRefused, "connection refused")),
                era: ok.then_some(Era::Legacy),
                transport: None,
                protocol_version: ok.then(|| m.protocol.to_owned()),
                server_info: ok.then(|| ServerInfo {
                    name: Some("fake".into()),
                    version: Some(m.server_version.into()),
                }),
                capabilities: None,
                tools_count: ok.then_some(m.tools.len()),
                schema_hash: ok.then(|| m.hash.to_owned()),
                timings_ms: timings,
                tls: None,
                auth: None,
                tool_call: None,
                credentials: Vec::new(),
                warnings: vec![],
                started_at: String::new(),
                transactions: Vec::new(),
                tools: if ok { m.tools.clone() } else { vec![] },
            }
        })
    }
}

#[derive(Default)]
struct Received {
    bodies: Mutex<Vec<(String, Value)>>,
    /// Per accepted body, in the same order: the raw path and query, and the `Authorization` header.
    raw: Mutex<Vec<(String, Option<String>)>>,
    /// Per accepted body, in the same order: the `Idempotency-Key` and `webhook-id` headers.
    keys: Mutex<Vec<(Option<String>, Option<String>)>>,
    fail_next: AtomicU32,
}

async fn receive(
    State(r): State<Arc<Received>>,
    Path(path): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    if r.fail_next.load(Ordering::SeqCst) > 0 {
        r.fail_next.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let auth = header("authorization");
    let raw = uri
        .path_and_query()
        .map_or_else(String::new, ToString::to_string);
    // One lock for both lists, so a reader never sees them out of step.
    let mut bodies = r.bodies.lock().unwrap();
    r.raw.lock().unwrap().push((raw, auth));
    r.keys
        .lock()
        .unwrap()
        .push((header("idempotency-key"), header("webhook-id")));
    bodies.push((path, body));
    StatusCode::ACCEPTED
}

async fn receiver() -> (String, Arc<Received>) {
    let r = Arc::new(Received::default());
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, r)
}

impl Received {
    fn all(&self) -> Vec<(String, Value)> {
        self.bodies.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

fn config(db: &str, receiver: &str, maintenance: bool) -> Config {
    let alerts = format!(
        r#"
  - {{ type: webhook, url: "{receiver}/webhook", headers: {{ X-Token: abc }} }}
  - {{ type: slack, webhook_url: "{receiver}/slack" }}
  - {{ type: pagerduty, routing_key: rk, events_url: "{receiver}/pd" }}"#
    );
    config_with(db, &alerts, maintenance)
}

/// One target `svc`, the `alerts:` entries given (YAML list items), timings shortened for tests.
fn config_with(db: &str, alerts: &str, maintenance: bool) -> Config {
    let yaml = format!(
        r#"
storage: "{db}"
targets:
  - {{ name: svc, url: "http://127.0.0.1:9/mcp" }}
alerts:{alerts}
{maint}
"#,
        maint = if maintenance {
            "maintenance:\n  - { cron: '* * * * *', duration: 2h }"
        } else {
            ""
        }
    );
    let mut c = Config::from_yaml(&yaml, &|_| None).unwrap();
    // Faster than the file allows, so the test runs in seconds.
    c.targets[0].interval = Duration::from_millis(60);
    c.targets[0].timeout = Duration::from_millis(50);
    fast_tuning(&mut c);
    c
}

/// The monitor's internal periods shortened for tests (snapshot, flush, outbox poll, alert backoff, lease,
/// drain) and 2 s per alert send.
fn fast_tuning(c: &mut Config) {
    c.tuning.snapshot_refresh = Duration::from_millis(50);
    c.tuning.flush_every = Duration::from_millis(10);
    c.tuning.dispatch_poll = Duration::from_millis(30);
    c.tuning.alert_backoff = Duration::from_millis(10);
    c.tuning.lease_ttl = Duration::from_millis(600);
    c.shutdown.probe_grace = Duration::from_secs(2);
    for a in &mut c.alerts {
        a.timeout = Duration::from_secs(2);
    }
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// The text of `{base}/metrics`; `None` when it cannot be fetched.
async fn metrics_text(base: &str) -> Option<String> {
    reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The value of the sample `series` (name and labels, as exported) in the text of `{base}/metrics`.
async fn sample(base: &str, series: &str) -> Option<f64> {
    metrics_text(base)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits for `n` more probes: enough time for any wrong extra alert to show up.
async fn more_probes(p: &Scripted, n: u64) {
    let target = p.calls() + n;
    assert_eventually!(
        p.calls() >= target,
        patience = PATIENCE,
        "timed out waiting for more probes"
    );
}

/// Waits until `n` alerts arrived, lets 10 more probes pass (time for any wrong extra alert), and returns them:
/// exactly `n`, or the test fails.
async fn exactly(
    received: &Received,
    prober: &Scripted,
    n: usize,
    what: &str,
) -> Vec<(String, Value)> {
    assert_eventually!(
        received.count() >= n,
        patience = PATIENCE,
        "timed out waiting for {what}"
    );
    more_probes(prober, 10).await;
    let got = received.all();
    assert_eq!(got.len(), n, "{what}: {got:#?}");
    got
}

#[tokio::test]
async fn incident_pages_each_provider_once_survives_restart_and_resolves_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let (rx, received) = receiver().await;
    received.fail_next.store(2, Ordering::SeqCst); // the first two sends fail once: retries deliver them
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(config(&db, &rx, false), prober.clone()).await;

    let got = exactly(&received, &prober, 3, "one alert per provider").await;
    let mut paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["pd", "slack", "webhook"]);
    let body = |p: &str| got.iter().find(|(q, _)| q == p).unwrap().1.clone();
    let pd = body("pd");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["routing_key"], "rk");
    let dedup = pd["dedup_key"].as_str().unwrap().to_owned();
    assert!(dedup.starts_with("lifeline/svc/"), "{dedup}");
    let hook = body("webhook");
    assert_eq!(hook["kind"], "opened");
    assert_eq!(hook["target"]["name"], "svc");
    assert_eq!(hook["dedup_key"], dedup.as_str());
    assert_eq!(hook["incident"]["reason"], "connect_refused");
    assert!(body("slack")["text"]
        .as_str()
        .unwrap()
        .contains("svc is DOWN"));

    let targets = get(&format!("{}/api/v1/targets", m.base)).await;
    assert_eq!(targets["targets"][0]["status"], "down");
    let metrics = reqwest::get(format!("{}/metrics", m.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"lifeline_monitor_alert_sends_total{provider="pagerduty",kind="opened",outcome="sent"} 1"#), "{metrics}");

    // Restart in the middle of the incident: nothing is sent again.
    m.stop().await;
    let m = start(config(&db, &rx, false), prober.clone()).await;
    more_probes(&prober, 15).await;
    assert_eq!(received.count(), 3, "{:#?}", received.all());

    // Recovery resolves once, per provider, with the same dedup key.
    prober.set(|m| m.verdict = Verdict::Healthy);
    let got = exactly(&received, &prober, 6, "one resolve per provider").await;
    let resolve = got[3..].iter().find(|(p, _)| p == "pd").unwrap();
    assert_eq!(resolve.1["event_action"], "resolve");
    assert_eq!(resolve.1["dedup_key"], dedup.as_str());
    assert!(got[3..].iter().any(|(p, b)| p == "webhook"
        && b["kind"] == "resolved"
        && b["incident"]["resolved_at"].is_string()));

    let incidents = get(&format!("{}/api/v1/incidents", m.base)).await;
    let list = incidents["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{incidents}");
    assert_eq!(list[0]["open"], false);
    let page = reqwest::get(format!("{}/", m.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("svc") && page.contains("Recent incidents"),
        "{page}"
    );
    m.stop().await;
}

#[tokio::test]
async fn maintenance_window_suppresses_incidents_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let (rx, received) = receiver().await;
    let prober = Scripted::new(Verdict::Unhealthy);
    let m = start(config(&db, &rx, true), prober.clone()).await;
    more_probes(&prober, 20).await;
    let base = m.base.clone();
    let status = std::cell::RefCell::new(Value::Null);
    assert_eventually!(
        {
            let now = get(&format!("{base}/api/v1/targets")).await["targets"][0]["status"].clone();
            status.replace(now);
            *status.borrow() == "maintenance"
        },
        patience = PATIENCE,
        "the target's status is {}, not maintenance",
        status.borrow()
    );
    assert_eq!(status.into_inner(), "maintenance");
    assert_eq!(received.count(), 0);
    let incidents = get(&format!("{base}/api/v1/incidents")).await;
    assert_eq!(incidents["incidents"].as_array().unwrap().len(), 0);
    m.stop().await;
}

#[tokio::test]
async fn drift_and_version_changes_become_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let (rx, _received) = receiver().await;
    let prober = Scripted::new(Verdict::Healthy);
    let m = start(config(&db, &rx, false), prober.clone()).await;
    more_probes(&prober, 5).await;
    prober.set(|m| {
        m.protocol = "2025-11-25";
        m.server_version = "1.1.0";
        m.hash = "h2";
        m.tools = vec![json!({"name": "echo"})];
    });
    let url = format!("{}/api/v1/events?target=svc", m.base);
    let kinds = std::cell::RefCell::new(Vec::<String>::new());
    assert_eventually!(
        {
            let ev = get(&url).await;
            kinds.replace(
                ev["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["kind"].as_str().unwrap().to_owned())
                    .collect(),
            );
            kinds.borrow().len() >= 3
        },
        patience = PATIENCE,
        "three change events, got {:?}",
        kinds.borrow()
    );
    let mut kinds = kinds.into_inner();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "protocol_version_changed",
            "schema_drift",
            "server_version_changed"
        ]
    );
    let drift = get(&format!("{}/api/v1/events?kind=schema_drift", m.base)).await;
    let d = &drift["events"][0]["details"];
    assert_eq!(d["classification"], "breaking");
    assert_eq!(d["removed"], json!(["sum"]));
    more_probes(&prober, 5).await;
    assert_eq!(
        get(&url).await["events"].as_array().unwrap().len(),
        3,
        "each change is reported once"
    );
    let t = get(&format!("{}/api/v1/targets/svc", m.base)).await;
    assert_eq!(t["protocol_version"], "2025-11-25");
    assert_eq!(t["days"].as_array().unwrap().len(), 90);
    let h = get(&format!(
        "{}/api/v1/targets/svc/history?resolution=raw",
        m.base
    ))
    .await;
    assert_eq!(h["resolution"], "raw");
    assert_eq!(
        get(&format!("{}/api/v1/targets/svc/history", m.base)).await["resolution"],
        "hour"
    );
    assert!(!h["points"].as_array().unwrap().is_empty());
    m.stop().await;
}
