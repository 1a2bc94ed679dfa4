//! The rules the gateway enforces at the edge and its session hygiene, in process against the testkit's fake
//! upstreams: Origin/Host (403), Accept (406), Content-Type (415), body limit (413), `--max-sessions` (503 +
//! Retry-After), idle TTL (the gateway sends the DELETE), upstream 404 → client 404, SSE headers, 502. Credentials
//! and MCP headers are checked in the binary's `tests/cli/gateway_edge.rs` (it asserts on the binary's start-up
//! log, which redacts the upstream secrets).

use std::time::Duration;

use crate::harness::{self, metric, open_session, post, GatewayUnderTest, TestGateway as Gw, INIT};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts};
use lifeline_testkit::peers::raw_http;
use serde_json::Value;

async fn healthy() -> FakeServer {
    FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .expect("fake upstream")
}

fn body_json(r: &raw_http::RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", r.text()))
}

#[tokio::test]
async fn origin_and_host_are_validated_at_the_edge() {
    let fake = healthy().await;
    let gw = Gw::start(
        &fake.url(),
        &["--allowed-origin", "https://app.example.com"],
    )
    .await;
    let own_origin = gw.base.clone();

    // No Origin (a non-browser client): passes.
    assert_eq!(post(&gw.mcp(), &[], INIT).await.status, 200);
    // Same origin as the request's Host: passes.
    assert_eq!(
        post(&gw.mcp(), &[("Origin", &own_origin)], INIT)
            .await
            .status,
        200
    );
    // An --allowed-origin: passes.
    assert_eq!(
        post(&gw.mcp(), &[("Origin", "https://app.example.com")], INIT)
            .await
            .status,
        200
    );

    // A foreign Origin: 403 with a JSON-RPC error that has no id (2025-11-25 transports §Security Warning).
    let r = post(&gw.mcp(), &[("Origin", "http://evil.example.com")], INIT).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let json = body_json(&r);
    assert_eq!(json["jsonrpc"], "2.0");
    assert!(json.get("id").is_none(), "no id: {json}");
    assert!(json["error"]["code"].is_i64(), "{json}");

    // DNS rebinding: Host and Origin both name the attacker (the conformance suite's dns-rebinding check).
    let r = harness::Streaming::open(
        "POST",
        &gw.mcp(),
        &[
            ("Host", "evil.example.com"),
            ("Origin", "http://evil.example.com"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some(INIT),
    )
    .await;
    assert_eq!(r.status, 403);

    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_rejected_total{reason=\"origin\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "lifeline_gateway_rejected_total{reason=\"host\"}"),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test]
async fn accept_content_type_and_body_limit() {
    let fake = healthy().await;
    let gw = Gw::start(&fake.url(), &["--max-body-bytes", "1024"]).await;

    let r = raw_http::request(
        "POST",
        &gw.mcp(),
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        Some(INIT.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    .expect("POST");
    assert_eq!(r.status, 406, "{}", r.text());
    assert!(body_json(&r)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("text/event-stream"));

    let r = raw_http::request(
        "POST",
        &gw.mcp(),
        &[
            ("Content-Type", "text/plain"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some(INIT.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    .expect("POST");
    assert_eq!(r.status, 415, "{}", r.text());

    let big = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{}"}}}}}}"#,
        "x".repeat(2000)
    );
    let r = post(&gw.mcp(), &[], &big).await;
    assert_eq!(r.status, 413, "{}", r.text());

    // GET needs Accept: text/event-stream.
    let r = raw_http::request(
        "GET",
        &gw.mcp(),
        &[("Accept", "application/json")],
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("GET");
    assert_eq!(r.status, 406);
}

/// Sends a POST with `body` (16 MiB, far over the limit) whole before reading anything, as Python's `urllib` and
/// most simple clients do, then reads the answer's status line.
async fn send_all_then_read(authority: &str, framing: &str, body: &[u8]) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{framing}\r\n"
    );
    let io = async {
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body).await?;
        let mut answer = vec![0u8; 512];
        let n = conn.read(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer[..n]).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(30), io).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("I/O: {e}")),
        Err(_) => Err("no answer within 30 s".to_owned()),
    }
}

// Regression: the gateway answered 413 and closed while an oversized body was still arriving, so a client that
// sends its whole body before reading got a broken pipe (or a reset) instead of the 413.
#[tokio::test]
async fn an_oversized_body_sent_whole_before_reading_still_gets_the_413() {
    let fake = healthy().await;
    let gw = Gw::start(&fake.url(), &["--max-body-bytes", "1024"]).await;
    // Once ready the gateway stops its start-up probes: from here on the upstream must see nothing.
    gw.wait_ready(Duration::from_secs(20)).await;
    let before = fake.requests_total();
    let authority = gw.base.trim_start_matches("http://").to_owned();
    let body = vec![b'x'; 16 * 1024 * 1024];
    // Declared too large up front, and found too large while reading (chunked: no length to judge by).
    let declared = send_all_then_read(
        &authority,
        &format!("Content-Length: {}\r\n", body.len()),
        &body,
    )
    .await;
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let read = send_all_then_read(&authority, "Transfer-Encoding: chunked\r\n", &chunked).await;
    for (how, answer) in [("declared", declared), ("chunked", read)] {
        let answer = answer.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert!(answer.starts_with("HTTP/1.1 413"), "{how}: {answer}");
    }
    assert_eq!(fake.requests_total(), before, "the upstream saw nothing");
}

#[tokio::test]
async fn max_sessions_refuses_new_sessions_with_retry_after() {
    let fake = healthy().await;
    let gw = Gw::start(&fake.url(), &["--max-sessions", "2", "--retry-after", "3s"]).await;
    let a = open_session(&gw.mcp()).await;
    let _b = open_session(&gw.mcp()).await;
    let r = post(&gw.mcp(), &[], INIT).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(body_json(&r)["id"], 1, "the error answers the request's id");
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_active"),
        Some(2.0),
        "{m}"
    );

    // Ending one frees a slot.
    let r = raw_http::request(
        "DELETE",
        &gw.mcp(),
        &[("Mcp-Session-Id", &a)],
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("DELETE");
    assert_eq!(r.status, 200);
    assert_eq!(post(&gw.mcp(), &[], INIT).await.status, 200);
}

#[tokio::test]
async fn idle_sessions_expire_and_the_gateway_sends_the_delete() {
    let fake = healthy().await;
    let gw = Gw::start(&fake.url(), &["--session-idle-ttl", "500ms"]).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    let open_before = fake.sessions_open();
    let sid = open_session(&gw.mcp()).await;
    assert_eq!(fake.sessions_open(), open_before + 1);
    assert_eventually!(
        fake.sessions_open() == open_before,
        patience = Duration::from_secs(10),
        "the gateway should DELETE the idle session upstream"
    );
    assert!(
        fake.rpc_methods().iter().any(|m| m == "HTTP DELETE"),
        "{:?}",
        fake.rpc_methods()
    );
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_expired_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_active"),
        Some(0.0),
        "{m}"
    );
    // The client's next request learns the session is gone (404), per spec, and re-initializes.
    let r = post(
        &gw.mcp(),
        &[("Mcp-Session-Id", &sid)],
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn an_upstream_404_for_a_session_reaches_the_client_and_is_forgotten() {
    let fake = FakeServer::start(FakeKind::SessionLost)
        .await
        .expect("fake");
    let gw = Gw::start(&fake.url(), &[]).await;
    let r = post(&gw.mcp(), &[], INIT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("session").to_owned();
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_sessions_active"),
        Some(1.0)
    );
    // The fake forgets the session after notifications/initialized.
    let r = post(&gw.mcp(), &[("Mcp-Session-Id", &sid)], harness::INITIALIZED).await;
    assert_eq!(r.status, 202);
    let r = post(
        &gw.mcp(),
        &[("Mcp-Session-Id", &sid)],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_sessions_active"),
        Some(0.0)
    );
}

#[tokio::test]
async fn sse_replies_carry_x_accel_buffering_no() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        sse_replies: true,
        x_accel_buffering: false,
        ..HealthyOpts::default()
    }))
    .await
    .expect("fake");
    let gw = Gw::start(&fake.url(), &[]).await;
    let r = post(&gw.mcp(), &[], INIT).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    assert!(r.text().contains("\"protocolVersion\""), "{}", r.text());
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_with_the_request_id() {
    let fake = FakeServer::start(FakeKind::ClosedPort).await.expect("fake");
    let gw = Gw::start(&fake.url(), &[]).await;
    let r = post(
        &gw.mcp(),
        &[],
        r#"{"jsonrpc":"2.0","id":"x7","method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(body_json(&r)["id"], "x7");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "lifeline_gateway_upstream_errors_total{reason=\"connect\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "lifeline_gateway_requests_total{method=\"tools/list\",status=\"502\"}"
        ),
        Some(1.0),
        "{m}"
    );
}
