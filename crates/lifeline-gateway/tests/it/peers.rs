//! Real peers through the in-process gateway: server-everything (Streamable HTTP and HTTP+SSE) and the Python SDK 2.x
//! server (stateful legacy and stateless modern) upstream; the Python SDK client and
//! `@modelcontextprotocol/inspector-cli` downstream, listing and calling tools, including a long-running tool whose
//! progress notifications must arrive as they are sent. Needs `scripts/install-peers.sh`.

use std::time::Duration;

use crate::harness::{
    assert_listed_everything_tools, assert_streamed_progress, event_json, everything_long_call,
    inspector_lists_and_calls, metric, py_client, GatewayUnderTest, InspectorCall, Streaming,
    TestGateway as Gw, EVERYTHING_GET_SUM,
};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};

#[tokio::test]
async fn server_everything_streamable_http_through_the_gateway() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let gw = Gw::start(&peer.url, &["--session-idle-ttl", "2s"]).await;
    gw.wait_ready(Duration::from_secs(20)).await;

    let run = everything_long_call(&gw.mcp(), &[]).await;
    assert_listed_everything_tools(&run);
    // The SDK client ended its session (DELETE) and the gateway forgot it.
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_active"),
        Some(0.0),
        "{m}"
    );

    inspector_lists_and_calls(&gw.mcp(), EVERYTHING_GET_SUM).await;

    // inspector-cli never DELETEs its sessions: the gateway's idle TTL does (session_idle_ttl 2s).
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_sessions_active") == Some(0.0),
        patience = Duration::from_secs(15),
        "abandoned sessions expire"
    );
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_expired_total"),
        Some(2.0),
        "{m}"
    );
    assert!(
        m.contains("lifeline_gateway_requests_total{method=\"tools/call\",status=\"200\"}"),
        "{m}"
    );
}

#[tokio::test]
async fn server_everything_http_sse_through_the_gateway() {
    let peer = Peer::everything(EverythingTransport::Sse).await;
    let gw = Gw::start(&peer.url, &[]).await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let sse_url = format!("{}/sse", gw.base);

    // The endpoint event names the gateway's message path, not the upstream's.
    let mut stream =
        Streaming::open("GET", &sse_url, &[("Accept", "text/event-stream")], None).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("x-accel-buffering"), Some("no"));
    let endpoint = stream
        .next_event(Duration::from_secs(10))
        .await
        .expect("endpoint event");
    assert!(endpoint.contains("event: endpoint"), "{endpoint}");
    assert!(
        endpoint.contains("data: /messages?sessionId="),
        "{endpoint}"
    );
    drop(stream);

    everything_long_call(&sse_url, &["--transport", "sse"]).await;

    inspector_lists_and_calls(
        &sse_url,
        InspectorCall {
            transport: "sse",
            listed: "echo",
            tool: "echo",
            args: &["message=through-sse"],
            answer: "through-sse",
        },
    )
    .await;
}

#[tokio::test]
async fn python_sdk_stateful_legacy_through_the_gateway() {
    let peer = Peer::python(PyServer::Stateful).await;
    let gw = Gw::start(&peer.url, &["--session-idle-ttl", "2s"]).await;
    gw.wait_ready(Duration::from_secs(20)).await;

    let run = py_client(&[
        &gw.mcp(),
        "--mode",
        "legacy",
        "--call",
        "slow_progress",
        "--args",
        r#"{"steps": 5, "delay_ms": 400}"#,
    ])
    .await;
    assert_eq!(
        run.of("connected")[0]["protocol_version"],
        "2025-11-25",
        "{:?}",
        run.events
    );
    assert_streamed_progress(&run, 4);
    assert_eq!(
        peer.sessions_active().await,
        Some(0),
        "the SDK client DELETEs its session"
    );

    inspector_lists_and_calls(
        &gw.mcp(),
        InspectorCall {
            transport: "http",
            listed: "slow_progress",
            tool: "echo",
            args: &["message=hello-py"],
            answer: "hello-py",
        },
    )
    .await;
    // inspector-cli leaves its sessions open; the gateway ends them upstream after the idle TTL.
    assert!(peer.sessions_active().await.unwrap_or_default() >= 1);
    assert_eventually!(
        peer.sessions_active().await == Some(0),
        patience = Duration::from_secs(15),
        "the gateway sends the DELETE the client never sent"
    );
}

#[tokio::test]
async fn python_sdk_stateless_modern_through_the_gateway() {
    let peer = Peer::python(PyServer::Stateless).await;
    let gw = Gw::start(&peer.url, &[]).await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let ready: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/ready").await.body).expect("json");
    assert_eq!(ready["probe"]["era"], "modern", "{ready}");

    // A modern (2026-07-28) client: stateless requests with Mcp-Method / Mcp-Name headers.
    let run = py_client(&[
        &gw.mcp(),
        "--mode",
        "2026-07-28",
        "--call",
        "slow_progress",
        "--args",
        r#"{"steps": 5, "delay_ms": 400}"#,
    ])
    .await;
    assert_eq!(
        run.of("connected")[0]["protocol_version"],
        "2026-07-28",
        "{:?} {}",
        run.events,
        run.stderr
    );
    assert_streamed_progress(&run, 4);

    // Dual-era discovery goes through too.
    let run = py_client(&[
        &gw.mcp(),
        "--mode",
        "auto",
        "--call",
        "add",
        "--args",
        r#"{"a": 2, "b": 40}"#,
    ])
    .await;
    assert!(run.ok, "{:?} {}", run.events, run.stderr);
    assert_eq!(run.of("result")[0]["text"], "42");

    // By hand: a modern tools/call whose SSE reply streams through.
    let body = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut s = Streaming::open(
        "POST",
        &gw.mcp(),
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
        ],
        Some(body),
    )
    .await;
    assert_eq!(s.status, 200);
    let text = if s
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream")
    {
        let mut found = None;
        while let Some(ev) = s.next_event(Duration::from_secs(10)).await {
            if let Some(j) = event_json(&ev).filter(|j| j["id"] == 9) {
                found = Some(j);
                break;
            }
        }
        found.expect("the response event")
    } else {
        serde_json::from_str(&s.rest(Duration::from_secs(10)).await).expect("json")
    };
    assert_eq!(text["result"]["content"][0]["text"], "m", "{text}");
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_active"),
        Some(0.0),
        "{m}"
    );
}
