//! The drain (`shared/seeds/003_*.txt`): on SIGTERM `/ready` fails at once, everything is served for
//! `--drain-delay`, then new sessions and stateless requests get 503 + Retry-After while calls in flight finish,
//! streams the gateway must close get a final `retry:` field, and the process exits 0. A second signal exits at
//! once. An edge gateway in front of replicas reads each sidecar's `/ready` (`upstreams[].ready_port`): a
//! SIGTERMed sidecar gets no new session during its drain delay while its old sessions keep working.

use crate::gateway_harness as harness;

use std::time::{Duration, Instant};

use harness::{
    call_add, event_json, metric, open_session, post, GatewayUnderTest, Gw, Streaming, INIT,
};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};
use nix::sys::signal::Signal;

fn long_call(id: u64, duration_s: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"trigger-long-running-operation","arguments":{{"duration":{duration_s},"steps":{duration_s}}},"_meta":{{"progressToken":"p{id}"}}}}}}"#
    )
}

#[tokio::test]
async fn sigterm_lets_a_long_call_finish_refuses_new_work_and_exits_0() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let mut gw = Gw::start(
        &peer.url,
        &[
            "--drain-delay",
            "1s",
            "--drain-timeout",
            "20s",
            "--retry-after",
            "2s",
        ],
    )
    .await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let sid = open_session(&gw.mcp()).await;

    // A 5 s tool call with progress, in flight.
    let mut call = Streaming::open(
        "POST",
        &gw.mcp(),
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        Some(&long_call(7, 5)),
    )
    .await;
    assert_eq!(call.status, 200);
    let first = loop {
        let ev = call
            .next_event(Duration::from_secs(10))
            .await
            .expect("an event");
        if let Some(j) = event_json(&ev) {
            break j;
        }
    };
    assert_eq!(first["method"], "notifications/progress", "{first}");

    let signalled = Instant::now();
    gw.signal(Signal::SIGTERM);
    // Not ready at once; still live.
    lifeline_testkit::assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = Duration::from_millis(500)
    );
    assert_eq!(gw.admin_get("/live").await.status, 200);
    let h: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/healthz").await.body).expect("json");
    assert_eq!(h["state"], "draining");

    // After the drain delay: a new session is refused with 503 + Retry-After.
    let refused = std::cell::RefCell::new(None);
    lifeline_testkit::assert_eventually!(
        {
            let r = post(&gw.mcp(), &[], INIT).await;
            if r.status == 503 {
                refused.replace(Some(r));
                true
            } else {
                assert_eq!(
                    r.status,
                    200,
                    "served normally during the delay: {}",
                    r.text()
                );
                false
            }
        },
        patience = Duration::from_secs(5).saturating_sub(signalled.elapsed()),
        "never refused"
    );
    let refused = refused.into_inner().expect("set when the condition held");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "refused before the drain delay"
    );
    assert_eq!(refused.header("retry-after"), Some("2"));
    // A new stateless request too.
    let r = post(
        &gw.mcp(),
        &[],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status, 503);

    // The call in flight completes with its result.
    let mut result = None;
    while let Some(ev) = call.next_event(Duration::from_secs(15)).await {
        if let Some(j) = event_json(&ev).filter(|j| j["id"] == 7) {
            result = Some(j);
        }
    }
    let result = result.expect("the long call's result arrived");
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("completed"),
        "{result}"
    );

    let status = gw.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gw.logs());
    let logs = gw.logs();
    for phase in [
        "Drain started",
        "refusing new work",
        "Drain complete",
        "Gateway stopped",
    ] {
        assert!(logs.contains(phase), "missing phase log {phase:?}:\n{logs}");
    }
}

#[tokio::test]
async fn open_streams_get_a_retry_field_before_the_drain_closes_them() {
    let peer = Peer::everything(EverythingTransport::Sse).await;
    let mut gw = Gw::start(
        &peer.url,
        &[
            "--drain-delay",
            "500ms",
            "--drain-timeout",
            "10s",
            "--sse-retry",
            "2500ms",
        ],
    )
    .await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let mut stream = Streaming::open(
        "GET",
        &format!("{}/sse", gw.base),
        &[("Accept", "text/event-stream")],
        None,
    )
    .await;
    assert_eq!(stream.status, 200);
    let endpoint = stream
        .next_event(Duration::from_secs(10))
        .await
        .expect("endpoint");
    assert!(endpoint.contains("/messages?sessionId="), "{endpoint}");

    gw.signal(Signal::SIGTERM);
    let mut last = String::new();
    while let Some(ev) = stream.next_event(Duration::from_secs(10)).await {
        last = ev;
    }
    assert_eq!(
        last.trim(),
        "retry: 2500",
        "the final event tells the client when to reconnect"
    );
    let status = gw.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", gw.logs());
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let mut gw = Gw::start(
        &peer.url,
        &["--drain-delay", "30s", "--drain-timeout", "60s"],
    )
    .await;
    gw.signal(Signal::SIGTERM);
    lifeline_testkit::assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = Duration::from_secs(2)
    );
    let start = Instant::now();
    gw.signal(Signal::SIGINT);
    let status = gw.wait_exit(Duration::from_secs(3)).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    assert!(gw.logs().contains("Second stop signal"), "{}", gw.logs());
}

/// `lifeline_gateway_upstream_endpoint_NAME{endpoint="URL"}` of the gateway's metrics `m` (0 when absent).
fn endpoint_metric(m: &str, name: &str, url: &str) -> f64 {
    metric(
        m,
        &format!("lifeline_gateway_upstream_endpoint_{name}{{endpoint=\"{url}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn an_edge_sends_no_new_session_to_a_replica_whose_sidecar_drains() {
    // Two replicas as the kit deploys them (the Python SDK 2.x server, stateful, behind its own sidecar gateway
    // with a long drain delay), pooled by an edge gateway that reads each sidecar's /ready.
    let (ra, rb) = tokio::join!(
        Peer::python(PyServer::Stateful),
        Peer::python(PyServer::Stateful)
    );
    let sidecar_flags = [
        "--drain-delay",
        "60s",
        "--drain-timeout",
        "90s",
        "--ready-ttl",
        "300ms",
    ];
    let (sa, sb) = tokio::join!(
        Gw::start(&ra.url, &sidecar_flags),
        Gw::start(&rb.url, &sidecar_flags)
    );
    let patience = Duration::from_secs(60);
    sa.wait_ready(patience).await;
    sb.wait_ready(patience).await;
    let admin_port = |gw: &Gw| gw.admin.rsplit_once(':').expect("host:port").1.to_owned();
    let (a, b) = (sa.mcp(), sb.mcp());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("edge.yaml");
    std::fs::write(
        &config,
        format!(
            "upstreams:\n  - url: {a}\n    ready_port: {}\n  - url: {b}\n    ready_port: {}\n\
             upstream_health_interval: 300ms\nready_timeout: 10s\n",
            admin_port(&sa),
            admin_port(&sb)
        ),
    )
    .expect("write the edge config");
    let edge = Gw::start_with(&["--config", &config.to_string_lossy()]).await;
    edge.wait_ready(patience).await;
    assert_eventually!(
        {
            let m = edge.metrics().await;
            [&a, &b]
                .iter()
                .all(|u| endpoint_metric(&m, "healthy", u) == 1.0)
        },
        patience = patience,
        "both replicas probed healthy"
    );

    // Sessions until one lives on replica A (a session is two requests: initialize, initialized).
    let mcp = edge.mcp();
    let mut on_a = None;
    for _ in 0..30 {
        let before = endpoint_metric(&edge.metrics().await, "requests_total", &a);
        let sid = open_session(&mcp).await;
        if endpoint_metric(&edge.metrics().await, "requests_total", &a) > before {
            on_a = Some(sid);
            break;
        }
    }
    let old = on_a.expect("a session on replica A within 30");

    // SIGTERM to A's sidecar: its /ready fails at once while it serves everything for 60 s.
    let signalled = Instant::now();
    sa.signal(Signal::SIGTERM);
    assert_eventually!(
        endpoint_metric(&edge.metrics().await, "draining", &a) == 1.0,
        patience = Duration::from_secs(30),
        "the edge sees A's sidecar draining"
    );
    let m = edge.metrics().await;
    assert_eq!(endpoint_metric(&m, "healthy", &a), 0.0, "{m}");
    assert_eq!(endpoint_metric(&m, "draining", &b), 0.0, "{m}");
    let h: serde_json::Value =
        serde_json::from_slice(&edge.admin_get("/healthz").await.body).expect("json");
    let ep_a = h["upstream_endpoints"]
        .as_array()
        .and_then(|eps| eps.iter().find(|e| e["endpoint"] == a.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ep_a["sidecar_ready"], false, "{h}");
    assert_eq!(
        edge.admin_get("/ready").await.status,
        200,
        "B still takes sessions"
    );

    // No new session lands on A during its drain delay: all go to B.
    let (to_a, to_b) = {
        let m = edge.metrics().await;
        (
            endpoint_metric(&m, "requests_total", &a),
            endpoint_metric(&m, "requests_total", &b),
        )
    };
    for _ in 0..10 {
        open_session(&mcp).await;
    }
    let m = edge.metrics().await;
    assert_eq!(endpoint_metric(&m, "requests_total", &a), to_a, "{m}");
    assert_eq!(
        endpoint_metric(&m, "requests_total", &b),
        to_b + 20.0,
        "{m}"
    );

    // The old session keeps working on A, through the edge.
    let r = call_add(&mcp, &old).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"5\""), "{}", r.text());
    assert_eq!(
        endpoint_metric(&edge.metrics().await, "requests_total", &a),
        to_a + 1.0
    );
    // All of it happened inside A's drain delay (otherwise A would refuse new sessions on its own).
    assert!(
        signalled.elapsed() < Duration::from_secs(60),
        "the test outlasted the drain delay: {:?}",
        signalled.elapsed()
    );
    drop(rb);
    drop(ra);
}
