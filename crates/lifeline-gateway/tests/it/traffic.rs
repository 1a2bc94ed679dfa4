//! Blue-green through the gateway's pool (`docs/gateway-replicas.md` §Switching versions): three real Python
//! SDK 2.x replicas in three groups (`blue`, live; `red` with a breaking tool change; `green` with an additive
//! one). `POST /admin/traffic` needs the admin token (401 without), refuses `red` with 409 and the drift in its
//! reasons, accepts `green` while sessions on `blue` keep calling tools (every call answered 200), and then new
//! sessions go to `green` while `blue` keeps its sessions. With the live group dead the gate fails closed: it
//! compares with the snapshot it recorded of the live group, and refuses when it has none. Needs
//! `scripts/install-peers.sh`.

use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

use crate::harness::{call_add, metric, open_session, GatewayUnderTest, TestGateway as Gw};

/// Three Python replicas starting at once on a loaded 2-core machine.
const READY_PATIENCE: Duration = Duration::from_secs(60);
/// The gate probes three replicas (bounded by `--ready-timeout`).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
const TOKEN: &str = "s3cret-admin-token-for-tests";

async fn admin_post(gw: &Gw, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let url = format!("{}/admin/traffic", gw.admin);
    let r = raw_http::request("POST", &url, &headers, Some(body.as_bytes()), ADMIN_TIMEOUT)
        .await
        .expect("the admin answers");
    let json = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, json)
}

async fn sessions(peer: &Peer) -> u64 {
    peer.sessions_active()
        .await
        .expect("a Python replica counts its sessions")
}

#[tokio::test]
async fn switch_under_load_is_gated_by_probe_and_drift() {
    let (blue, red, green) = tokio::join!(
        Peer::python(PyServer::Stateful),
        Peer::python_with_env(PyServer::Stateful, &[("LIFELINE_PEER_TOOLS", "breaking")]),
        Peer::python_with_env(PyServer::Stateful, &[("LIFELINE_PEER_TOOLS", "additive")]),
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token");
    let yaml = format!(
        "upstreams:\n  - {{url: {}, group: blue}}\n  - {{url: {}, group: red}}\n  - {{url: {}, group: green}}\ntraffic: {{blue: 100}}\n",
        blue.url, red.url, green.url
    );
    let token_path = token_file.to_string_lossy().into_owned();
    let gw = Gw::start_with_file(
        &yaml,
        &[
            "--admin-token-file",
            &token_path,
            "--upstream-health-interval",
            "300ms",
            "--ready-timeout",
            "10s",
        ],
    )
    .await;
    gw.wait_ready(READY_PATIENCE).await;
    let mcp = gw.mcp();

    // Before any switch every new session goes to blue.
    let mut old = Vec::new();
    for _ in 0..6 {
        old.push(open_session(&mcp).await);
    }
    assert_eventually!(
        sessions(&blue).await == 6 && sessions(&green).await == 0 && sessions(&red).await == 0,
        patience = Duration::from_secs(20),
        "six sessions, all on blue"
    );

    // No token, a wrong token: 401, nothing changes.
    let (status, _) = admin_post(&gw, None, r#"{"group":"green","weight":100}"#).await;
    assert_eq!(status, 401);
    let (status, _) = admin_post(
        &gw,
        Some("wrong-token-wrong-token"),
        r#"{"group":"green","weight":100}"#,
    )
    .await;
    assert_eq!(status, 401);

    // Red changes `add` incompatibly: refused, with the drift named.
    let (status, body) = admin_post(&gw, Some(TOKEN), r#"{"group":"red","weight":100}"#).await;
    assert_eq!(status, 409, "{body}");
    let reasons = body["reasons"].as_array().expect("reasons");
    assert!(
        reasons.iter().any(|r| r["check"] == "drift"
            && r["changes"].as_array().is_some_and(|c| c
                .iter()
                .any(|c| c["tool"] == "add" && c["kind"] == "breaking"))),
        "{body}"
    );
    let weights: Value =
        serde_json::from_slice(&gw.admin_get("/admin/traffic").await.body).expect("JSON");
    assert_eq!(weights["weights"]["blue"], 100, "{weights}");

    // Green only adds a tool: accepted while the old sessions keep calling.
    let load = {
        let mcp = mcp.clone();
        let old = old.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _round in 0..5 {
                for sid in &old {
                    statuses.push(call_add(&mcp, sid).await.status);
                }
            }
            statuses
        })
    };
    let (status, body) = admin_post(&gw, Some(TOKEN), r#"{"group":"green","weight":100}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["weights"]["green"], 100, "{body}");
    assert_eq!(body["live_snapshot"], "taken", "{body}");
    let statuses = load.await.expect("the load task");
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every call of the old sessions answered: {statuses:?}"
    );

    // New sessions go to green; blue keeps its six and they still work.
    for _ in 0..4 {
        open_session(&mcp).await;
    }
    assert_eventually!(
        sessions(&blue).await == 6 && sessions(&green).await == 4 && sessions(&red).await == 0,
        patience = Duration::from_secs(20),
        "old sessions stay on blue, new ones on green"
    );
    for sid in &old {
        assert_eq!(call_add(&mcp, sid).await.status, 200);
    }
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "lifeline_gateway_upstream_group_weight{group=\"green\"}"
        ),
        Some(100.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "lifeline_gateway_upstream_group_weight{group=\"blue\"}"),
        Some(0.0)
    );

    // The live group (green now) dies: the gate fails closed. It compares with the snapshot of green its probes
    // recorded, so red's breaking change is still refused…
    crate::pools::kill_9(&green);
    let (status, body) = admin_post(&gw, Some(TOKEN), r#"{"group":"red","weight":100}"#).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["live_snapshot"], "recorded", "{body}");
    assert!(
        body["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["check"] == "drift")),
        "{body}"
    );
    // …and a gateway that never saw the live group answer has nothing to compare with: refused, not waved through.
    let yaml = yaml.replace("traffic: {blue: 100}", "traffic: {green: 100}");
    let fresh = Gw::start_with_file(&yaml, &["--admin-token-file", &token_path]).await;
    let (status, body) = admin_post(&fresh, Some(TOKEN), r#"{"group":"blue","weight":100}"#).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["live_snapshot"], "unavailable", "{body}");
    assert_eq!(body["reasons"][0]["check"], "live_snapshot", "{body}");
    assert_eq!(body["weights"]["green"], 100, "nothing changed: {body}");
}

#[tokio::test]
async fn traffic_switching_is_closed_without_a_token_file() {
    let (a, b) = tokio::join!(
        Peer::python(PyServer::Stateful),
        Peer::python(PyServer::Stateful)
    );
    let gw = Gw::start_with(&["--upstream", &a.url, "--upstream", &b.url]).await;
    let (status, body) = admin_post(&gw, Some(TOKEN), r#"{"group":"default","weight":100}"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("--admin-token-file")),
        "{body}"
    );
}
