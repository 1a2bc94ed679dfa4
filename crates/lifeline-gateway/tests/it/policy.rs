//! The policy point (issue 12) against real upstreams: the 2026-07-28 mirrored-header check (`Mcp-Name`,
//! `Mcp-Method` against the body), per-tool scope rules (403 `insufficient_scope` with the exact challenge),
//! `tools/list` filtered in JSON and SSE answers of both eras and on 2024-11-05 streams, `nextCursor` pages,
//! per-principal rate limits (429 with the request's id and `Retry-After`) and the audit line. Principals are API
//! keys (`auth.api_keys_file`). Every refusal also proves the upstream never ran the call: the py2 server counts
//! its tool runs (`GET /debug/calls`, and a `py2_server: tool NAME called` stderr line the gateway logs for a
//! stdio child).

use std::time::Duration;

use lifeline_mcp::era::{modern_params, MODERN_VERSION};
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::{json, Value};

use crate::harness::{post, GatewayUnderTest, TestGateway as Gw};

/// How many times the py2 peer ran `tool` (its `/debug/calls`).
async fn runs(peer: &Peer, tool: &str) -> u64 {
    let r = lifeline_testkit::peers::raw_http::request(
        "GET",
        &format!("{}/debug/calls", peer.base),
        &[],
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("GET /debug/calls");
    let calls: Value = serde_json::from_slice(&r.body).expect("JSON calls");
    calls.get(tool).and_then(Value::as_u64).unwrap_or(0)
}

fn body_json(r: &lifeline_testkit::peers::raw_http::RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", r.text()))
}

/// A modern (2026-07-28) `tools/call` of `tool` with `id`.
fn modern_call(id: u64, tool: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": modern_params(json!({"name": tool, "arguments": {"message": "hi"}}), "policy-test", "1"),
    })
    .to_string()
}

#[tokio::test]
async fn a_mirrored_header_that_disagrees_with_the_body_is_400_and_never_reaches_the_upstream() {
    let peer = Peer::python(PyServer::Stateless).await;
    let gw = Gw::start(&peer.url, &[]).await;
    let modern = |name: &'static str| {
        [
            ("MCP-Protocol-Version", MODERN_VERSION),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", name),
        ]
    };

    // The header names a harmless tool, the body another: refused with the request's id (2026-07-28
    // streamable-http §Server Validation).
    let r = post(&gw.mcp(), &modern("add"), &modern_call(41, "echo")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let err = body_json(&r);
    assert_eq!(err["id"], 41, "{err}");
    assert_eq!(err["error"]["code"], -32020, "{err}");
    // Mcp-Method against the body's method.
    let r = post(
        &gw.mcp(),
        &[
            ("MCP-Protocol-Version", MODERN_VERSION),
            ("Mcp-Method", "tools/list"),
            ("Mcp-Name", "echo"),
        ],
        &modern_call(42, "echo"),
    )
    .await;
    assert_eq!((r.status, body_json(&r)["id"].clone()), (400, json!(42)));
    assert_eq!(runs(&peer, "echo").await, 0, "the upstream never ran it");

    // Matching headers, one of them Base64-encoded (§Value Encoding): the call goes through and runs.
    let r = post(
        &gw.mcp(),
        &modern("=?base64?ZWNobw==?="),
        &modern_call(43, "echo"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"id\":43"), "{}", r.text());
    assert_eq!(runs(&peer, "echo").await, 1);

    let m = gw.metrics().await;
    assert_eq!(
        crate::harness::metric(
            &m,
            "lifeline_gateway_rejected_total{reason=\"header_mismatch\"}"
        ),
        Some(2.0),
        "{m}"
    );
}
