//! Synthetic transactions in the monitor, end to end with the real prober against the real Python SDK 2.x
//! server (`tests/peers/py2_tools_server.py`): each transaction is scheduled as a target of its own, its
//! results (with their steps) are stored, it opens its own incident while its target's handshake stays healthy,
//! it shows under its target on the status page ("alive but returning wrong results"), in the API and in the
//! metrics, and all of it survives a restart.

use std::sync::Arc;
use std::time::Duration;

use lifeline_monitor::{Config, McpProber};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

fn config(db: &str, url: &str) -> Config {
    let yaml = format!(
        r#"
storage: "{db}"
targets:
  - name: svc
    url: "{url}"
    failure_threshold: 2
    allow_tools: [search, fetch]
    transactions:
      - name: roundtrip
        steps:
          - tool: search
            arguments: {{ query: lifeline-canary }}
            save: {{ first_id: 'result.structuredContent.items[0].id' }}
          - tool: fetch
            arguments: {{ id: '${{first_id}}' }}
            expect: ['result.structuredContent.id == first_id']
      - name: garbage
        steps:
          - tool: search
            arguments: {{ query: lifeline-canary }}
            expect: ['size(result.structuredContent.items) > 5']
"#
    );
    let mut c = Config::from_yaml(&yaml, &|_| None).unwrap();
    // Faster than the file allows, so the test runs in seconds; generous timeouts for a loaded machine.
    for t in &mut c.targets {
        t.interval = Duration::from_millis(300);
        t.timeout = Duration::from_secs(30);
        t.slow_after = Duration::from_secs(30);
    }
    c.tuning.snapshot_refresh = Duration::from_millis(50);
    c.tuning.flush_every = Duration::from_millis(10);
    c.tuning.lease_ttl = Duration::from_millis(600);
    c.shutdown.probe_grace = Duration::from_secs(5);
    c
}

#[path = "support/running.rs"]
mod running;

use running::{start, Running};

trait Api {
    async fn get(&self, path: &str) -> Value;
    async fn text(&self, path: &str) -> String;
    async fn target(&self, name: &str) -> Value;
}

impl Api for Running {
    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn target(&self, name: &str) -> Value {
        let all = self.get("/api/v1/targets").await;
        all["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

#[tokio::test]
async fn transactions_are_scheduled_stored_alerted_shown_and_survive_a_restart() {
    let peer = Peer::python_tools(PyServer::Stateful).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("m.db").display());
    let m = start(config(&db, &peer.url), Arc::new(McpProber)).await;

    // The garbage transaction opens an incident while the handshake and the honest transaction stay up.
    assert_eventually!(
        m.target("svc.garbage").await["status"] == "down",
        patience = PATIENCE,
        "svc.garbage never went down"
    );
    let garbage = m.target("svc.garbage").await;
    assert_eq!(garbage["reason"], "assertion_failed", "{garbage}");
    assert_eq!(garbage["transaction_of"], "svc", "{garbage}");
    assert!(
        garbage["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expected size(result.structuredContent.items) > 5 but the left side was 2"),
        "{garbage}"
    );
    let incident = garbage["open_incident_id"]
        .as_i64()
        .expect("an open incident");
    assert_eventually!(
        m.target("svc.roundtrip").await["verdict"] == "healthy",
        patience = PATIENCE,
        "svc.roundtrip never turned healthy"
    );
    let svc = m.target("svc").await;
    assert_eq!(svc["status"], "up", "{svc}");
    assert!(svc.get("transaction_of").is_none(), "{svc}");

    // Raw history keeps each step with its outcome and latency.
    let history = m
        .get("/api/v1/targets/svc.roundtrip/history?resolution=raw")
        .await;
    let points = history["points"].as_array().cloned().unwrap_or_default();
    let stepped = points
        .iter()
        .find(|p| p["verdict"] == "healthy")
        .unwrap_or_else(|| panic!("no healthy point: {history}"));
    let steps = stepped["steps"].as_array().expect("steps stored");
    assert_eq!(steps.len(), 2, "{stepped}");
    assert_eq!(steps[1]["target"], "fetch");
    assert_eq!(steps[1]["outcome"], "passed");
    assert!(steps[1]["latency_ms"].as_f64().is_some(), "{stepped}");

    // The status page says it in words, under its target; the metrics count the runs.
    let page = m.text("/").await;
    assert!(page.contains("transaction of"), "{page}");
    assert!(page.contains("alive but returning wrong results"), "{page}");
    let svc_at = page.find("id=\"t-svc\"").expect("svc card");
    let garbage_at = page.find("id=\"t-svc.garbage\"").expect("garbage card");
    assert!(
        svc_at < garbage_at,
        "the transaction shows under its target"
    );
    let metrics = m.text("/metrics").await;
    assert!(
        metrics.contains(r#"lifeline_monitor_transaction_runs_total{verdict="unhealthy"}"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"lifeline_monitor_transaction_step_duration_seconds_count{kind="tool"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"lifeline_monitor_target_verdict{target="svc.garbage",verdict="unhealthy"} 1"#
        ),
        "{metrics}"
    );
    m.stop().await;

    // Restart on the same database with the server gone: what was stored is still there (the same incident,
    // the stored steps), and the probes that fail now are the handshake's, not the assertion's.
    drop(peer);
    let m = start(config(&db, "http://127.0.0.1:9/mcp"), Arc::new(McpProber)).await;
    assert_eventually!(
        m.target("svc.garbage").await["name"] == "svc.garbage",
        patience = PATIENCE,
        "the restarted monitor never listed svc.garbage"
    );
    let garbage = m.target("svc.garbage").await;
    assert_eq!(
        garbage["open_incident_id"].as_i64(),
        Some(incident),
        "{garbage}"
    );
    let history = m
        .get("/api/v1/targets/svc.garbage/history?resolution=raw")
        .await;
    let points = history["points"].as_array().cloned().unwrap_or_default();
    assert!(
        points
            .iter()
            .any(|p| p["reason"] == "assertion_failed" && p["steps"][0]["actual"] == "2"),
        "{history}"
    );
    let incidents = m.get("/api/v1/incidents?target=svc.garbage").await;
    assert_eq!(
        incidents["incidents"][0]["reason"], "assertion_failed",
        "{incidents}"
    );
    m.stop().await;
}
