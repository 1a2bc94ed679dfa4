//! The gateway in front of a pool of real replicas on loopback (the Python SDK 2.x server, stateful, three of
//! them): sessions spread over the replicas and stay on the one that minted them; the Python SDK client lists
//! and calls tools through the pool; `kill -9` of one replica ejects it (probe and passive errors), new sessions
//! avoid it, `/ready` stays 200 and the metrics show it unhealthy; with every replica gone `/ready` is 503. A DNS
//! name becomes one endpoint per address (`localhost`: 127.0.0.1, and `[::1]` where the resolver lists it).
//! 2024-11-05 HTTP+SSE streams (server-everything) spread over two replicas and their messages follow them.
//! Needs `scripts/install-peers.sh`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};

use crate::harness::{
    everything_long_call, metric, open_session, post, py_client, GatewayUnderTest, Streaming,
    TestGateway as Gw, INIT,
};

/// Generous: three Python replicas starting at once on a loaded 2-core machine.
const READY_PATIENCE: Duration = Duration::from_secs(60);
/// Health decisions: a few probe rounds (`--upstream-health-interval 300ms`) on a loaded machine.
const HEALTH_PATIENCE: Duration = Duration::from_secs(30);

/// Pool flags that make health decisions quick: probes every 300 ms, ejection after 2 failures in a row.
const FAST_HEALTH: &[&str] = &[
    "--upstream-health-interval",
    "300ms",
    "--upstream-consecutive-errors",
    "2",
    "--ready-timeout",
    "10s",
];

/// `lifeline_gateway_upstream_endpoint_healthy{endpoint="URL"}`.
fn healthy(metrics: &str, url: &str) -> Option<f64> {
    metric(
        metrics,
        &format!("lifeline_gateway_upstream_endpoint_healthy{{endpoint=\"{url}\"}}"),
    )
}

/// `lifeline_gateway_upstream_endpoint_requests_total{endpoint="URL"}` (0 when absent).
fn requests_to(metrics: &str, url: &str) -> f64 {
    metric(
        metrics,
        &format!("lifeline_gateway_upstream_endpoint_requests_total{{endpoint=\"{url}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Sends `SIGKILL` to the replica's process group: `kill -9`, no goodbye.
pub(crate) fn kill_9(peer: &Peer) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(peer.guard.pid()).expect("a pid"));
    nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
}

/// The live sessions each Python replica holds (`/debug/sessions`).
async fn sessions_on(replicas: &[Peer]) -> Vec<u64> {
    futures_util::future::join_all(replicas.iter().map(|r| async {
        r.sessions_active()
            .await
            .expect("a Python replica counts its sessions")
    }))
    .await
}

/// A `tools/call` of `add` on session `sid`: the HTTP status.
async fn call_add(mcp: &str, sid: &str) -> u16 {
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}"#;
    post(
        mcp,
        &[
            ("Mcp-Session-Id", sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        body,
    )
    .await
    .status
}

/// Three Python SDK 2.x stateful replicas, started at once.
pub(crate) async fn three_stateful_replicas() -> [Peer; 3] {
    let (a, b, c) = tokio::join!(
        Peer::python(PyServer::Stateful),
        Peer::python(PyServer::Stateful),
        Peer::python(PyServer::Stateful)
    );
    [a, b, c]
}

#[tokio::test]
async fn three_replicas_share_sessions_and_one_killed_is_ejected() {
    let replicas = three_stateful_replicas().await;
    let mut args: Vec<&str> = Vec::new();
    for r in &replicas {
        args.extend(["--upstream", r.url.as_str()]);
    }
    args.extend_from_slice(FAST_HEALTH);
    let gw = Gw::start_with(&args).await;
    gw.wait_ready(READY_PATIENCE).await;
    assert_eventually!(
        {
            let m = gw.metrics().await;
            replicas.iter().all(|r| healthy(&m, &r.url) == Some(1.0))
        },
        patience = READY_PATIENCE,
        "every replica probed healthy"
    );

    // The real client lists and calls tools through the pool (its session is pinned to one replica).
    let run = py_client(&[
        &gw.mcp(),
        "--mode",
        "legacy",
        "--call",
        "add",
        "--args",
        r#"{"a": 2, "b": 40}"#,
    ])
    .await;
    assert!(run.ok, "{:?} {}", run.events, run.stderr);
    assert_eq!(run.of("result")[0]["text"], "42");

    // 50 sessions spread over the replicas, and each stays where it was minted: a request landing on another
    // replica would get its 404.
    let before = sessions_on(&replicas).await;
    let mut sids = Vec::new();
    for _ in 0..50 {
        sids.push(open_session(&gw.mcp()).await);
    }
    for sid in &sids {
        assert_eq!(
            call_add(&gw.mcp(), sid).await,
            200,
            "session {sid} stays on its replica"
        );
    }
    let after = sessions_on(&replicas).await;
    let added: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    // Expected about 17 each; fewer than 5 on one replica is a broken balancer (probability ~1e-4 by chance).
    assert!(added.iter().all(|n| *n >= 5), "spread: {added:?}");
    // ± a readiness probe's own short-lived session, alive at one count and not at the other.
    assert!(
        added.iter().sum::<u64>() >= 48,
        "every session is on a replica: {added:?}"
    );
    let m = gw.metrics().await;
    for r in &replicas {
        let sent = requests_to(&m, &r.url);
        assert!(sent >= 10.0, "{} got {sent} requests:\n{m}", r.url);
    }

    // kill -9 of one replica: ejected and shown unhealthy, /ready stays 200, new sessions avoid it.
    let [dead, alive @ ..] = &replicas;
    kill_9(dead);
    assert_eventually!(
        healthy(&gw.metrics().await, &dead.url) == Some(0.0),
        patience = HEALTH_PATIENCE,
        "the killed replica is unhealthy in the metrics"
    );
    let ready = gw.admin_get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_upstream_ready"),
        Some(1.0)
    );
    let healthz: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/healthz").await.body).expect("JSON");
    let listed = healthz["upstream_endpoints"]
        .as_array()
        .expect("every endpoint listed");
    assert_eq!(listed.len(), 3, "{healthz}");
    assert!(
        listed
            .iter()
            .any(|e| e["endpoint"] == dead.url.as_str() && e["healthy"] == false),
        "{healthz}"
    );
    let alive_before: u64 = sessions_on(alive).await.iter().sum();
    for _ in 0..20 {
        let sid = open_session(&gw.mcp()).await;
        assert_eq!(call_add(&gw.mcp(), &sid).await, 200, "a new session works");
    }
    let alive_after: u64 = sessions_on(alive).await.iter().sum();
    assert!(
        alive_after + 2 >= alive_before + 20,
        "all 20 new sessions went to the living replicas: {alive_before} → {alive_after}"
    );
    // The sessions the dead replica held fail with the gateway's own 502 (moving them is the recovery seam's
    // job, not the balancer's: `docs/gateway-replicas.md`); every other session carries on.
    let mut lost: u64 = 0;
    for sid in &sids {
        match call_add(&gw.mcp(), sid).await {
            200 => {}
            502 => lost += 1,
            other => panic!("session {sid}: {other}"),
        }
    }
    assert!(
        lost >= 5 && lost.abs_diff(added[0]) <= 2,
        "the dead replica's sessions fail, and only those: {lost} lost, {added:?} held"
    );
    let m = gw.metrics().await;
    let connect_errors = metric(
        &m,
        &format!(
            "lifeline_gateway_upstream_endpoint_errors_total{{endpoint=\"{}\",reason=\"connect\"}}",
            dead.url
        ),
    );
    assert!(connect_errors.is_some_and(|n| n >= 1.0), "{m}");

    // Every replica gone: /ready fails.
    for r in alive {
        kill_9(r);
    }
    assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = HEALTH_PATIENCE,
        "/ready is 503 with no healthy endpoint"
    );
    let ready: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/ready").await.body).expect("JSON");
    assert_eq!(ready["checks"][1]["healthy"], 0, "{ready}");
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_upstream_ready"),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_dns_name_is_one_endpoint_per_address() {
    // `localhost` as the system resolver sees it here: 127.0.0.1, and [::1] where /etc/hosts lists it (Debian's
    // default does). One replica per address, all on the same port.
    let first = Peer::python(PyServer::Stateful).await;
    let port = first.addr.port();
    let resolved: BTreeSet<SocketAddr> = tokio::net::lookup_host(("localhost", port))
        .await
        .expect("localhost resolves")
        .filter(|a| a.ip().is_loopback())
        .collect();
    assert!(
        resolved.contains(&first.addr),
        "localhost includes 127.0.0.1: {resolved:?}"
    );
    let mut replicas = vec![first];
    for addr in resolved.iter().filter(|a| a.ip().is_ipv6()) {
        replicas.push(Peer::python_at(PyServer::Stateful, *addr).await);
    }

    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("gateway.yaml");
    std::fs::write(
        &file,
        format!(
            "upstreams:\n  - url: http://localhost:{port}/mcp\n    discovery: dns\n    group: blue\nupstream_dns_interval: 1s\n"
        ),
    )
    .expect("write the config");
    let yaml = std::fs::read_to_string(&file).expect("read");
    let cfg = lifeline_gateway::RawConfig::parse(&yaml, lifeline_gateway::FileFormat::Yaml)
        .expect("parses");
    assert_eq!(cfg.upstreams.as_ref().map(Vec::len), Some(1));

    let gw = crate::harness::TestGateway::start_with_file(&yaml, FAST_HEALTH).await;
    gw.wait_ready(READY_PATIENCE).await;
    let healthz: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/healthz").await.body).expect("JSON");
    let endpoints: BTreeSet<String> = healthz["upstream_endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["endpoint"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = replicas.iter().map(|r| r.url.clone()).collect();
    assert_eq!(endpoints, expected, "one endpoint per resolved address");
    assert!(
        healthz["upstream_endpoints"]
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["group"] == "blue")),
        "{healthz}"
    );
    for _ in 0..(10 * replicas.len()) {
        let sid = open_session(&gw.mcp()).await;
        assert_eq!(call_add(&gw.mcp(), &sid).await, 200);
    }
    for r in &replicas {
        let n = r.sessions_active().await.unwrap_or(0);
        assert!(n >= 1, "{} holds sessions ({n})", r.url);
    }
}

#[tokio::test]
async fn http_sse_streams_spread_and_their_messages_follow_them() {
    // Two server-everything replicas on the 2024-11-05 HTTP+SSE transport: each client stream goes to one, and
    // the messages posted for that stream must reach the same replica (the other one does not know its session
    // and answers 404).
    let (a, b) = tokio::join!(
        Peer::everything(EverythingTransport::Sse),
        Peer::everything(EverythingTransport::Sse)
    );
    let mut args = vec!["--upstream", a.url.as_str(), "--upstream", b.url.as_str()];
    args.extend_from_slice(FAST_HEALTH);
    let gw = Gw::start_with(&args).await;
    gw.wait_ready(READY_PATIENCE).await;
    let sse_url = format!("{}/sse", gw.base);

    let mut streams = Vec::new();
    for _ in 0..8 {
        let mut s =
            Streaming::open("GET", &sse_url, &[("Accept", "text/event-stream")], None).await;
        assert_eq!(s.status, 200);
        let path = s.endpoint_path().await;
        streams.push((s, path));
    }
    // Held open, the streams are outstanding load: the two choices spread them over both replicas.
    let m = gw.metrics().await;
    for r in [&a, &b] {
        let sent = requests_to(&m, &r.url);
        assert!(sent >= 1.0, "{} got no stream:\n{m}", r.url);
    }
    for (_, path) in &streams {
        let r = post(&format!("{}{path}", gw.base), &[], INIT).await;
        assert_eq!(r.status, 202, "{path}: {}", r.text());
    }
    let run = everything_long_call(&sse_url, &["--transport", "sse"]).await;
    assert!(run.ok, "{:?} {}", run.events, run.stderr);
}
