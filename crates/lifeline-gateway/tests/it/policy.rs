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

use crate::harness::{metric, post, GatewayUnderTest, TestGateway as Gw, INIT, INITIALIZED};
use lifeline_testkit::peers::raw_http::RawResponse;

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

/// The API keys of the tests: `reader` (mcp:read), `writer` (mcp:read mcp:write); the file lives as long as this.
struct Keys {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
}

const READER: &str = "reader-key-4f1c9a7e2b";
const WRITER: &str = "writer-key-9d3e6b1a55";

fn keys() -> Keys {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("api-keys");
    let line = |name: &str, key: &str, scopes: &str| {
        format!(
            "{name} sha256:{} {scopes}\n",
            hex::encode(sha2::Sha256::digest(key))
        )
    };
    let text = line("reader", READER, "mcp:read") + &line("writer", WRITER, "mcp:read mcp:write");
    std::fs::write(&file, text).expect("write the key file");
    Keys { _dir: dir, file }
}

/// The `auth:` block of the tests (YAML): the keys, `add` needs mcp:read and mcp:write, `fail` and
/// server-everything's `get-*` tools mcp:admin, every other tool mcp:read; plus `extra` lines (a `rate_limit`).
fn auth_yaml(keys: &Keys, extra: &str) -> String {
    format!(
        "auth:\n  api_keys_file: {}\n  tools:\n    - match: add\n      require_scopes: [mcp:read, mcp:write]\n    - match: fail\n      require_scopes: [mcp:admin]\n    - match: get-*\n      require_scopes: [mcp:admin]\n    - match: \"*\"\n      require_scopes: [mcp:read]\n{extra}",
        keys.file.display()
    )
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The JSON-RPC message answering `id` in `r`: the JSON body, or the SSE event carrying it.
fn answer(r: &RawResponse, id: &Value) -> Value {
    let text = r.text();
    if r.header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id") == Some(id))
            .unwrap_or_else(|| panic!("no answer to {id} in {text}"))
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"))
    }
}

/// The names listed in a `tools/list` answer.
fn names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("a tools/list result: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// A legacy session for `key` through the gateway; returns the headers its requests carry.
async fn legacy_session(url: &str, key: &str) -> Vec<(String, String)> {
    let auth = bearer(key);
    let r = post(url, &[("Authorization", &auth)], INIT).await;
    assert_eq!(r.status, 200, "initialize: {}", r.text());
    let sid = r.header("mcp-session-id").expect("a session id").to_owned();
    let headers = vec![
        ("Authorization".to_owned(), auth),
        ("Mcp-Session-Id".to_owned(), sid),
        ("MCP-Protocol-Version".to_owned(), "2025-11-25".to_owned()),
    ];
    let r = post(url, &pairs(&headers), INITIALIZED).await;
    assert_eq!(r.status, 202, "initialized: {}", r.text());
    headers
}

fn pairs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn call(id: u64, tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"a": 1, "b": 2, "message": "hi"}}}).to_string()
}

fn list(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string()
}

/// The `WWW-Authenticate` of a 403 for a call needing mcp:read and mcp:write with API keys only (no
/// authorization server, so no `resource_metadata`).
const ADD_CHALLENGE: &str = r#"Bearer error="insufficient_scope", scope="mcp:read mcp:write", error_description="the token lacks a scope this operation needs""#;

#[tokio::test]
async fn scope_rules_refuse_with_every_needed_scope_filter_lists_and_audit_each_call() {
    let peer = Peer::python(PyServer::Stateful).await;
    let keys = keys();
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &["--upstream", &peer.url]).await;
    let reader = legacy_session(&gw.mcp(), READER).await;
    let writer = legacy_session(&gw.mcp(), WRITER).await;

    // The reader may not call `add`: 403, the challenge naming both scopes the call needs, the request's id.
    let r = post(&gw.mcp(), &pairs(&reader), &call(5, "add")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(ADD_CHALLENGE));
    assert_eq!(answer(&r, &json!(5))["id"], 5);
    assert_eq!(
        runs(&peer, "add").await,
        0,
        "the upstream never ran the refused call"
    );

    // Its tools/list (an SSE answer in this mode) lists what it may call, in the upstream's order.
    let r = post(&gw.mcp(), &pairs(&reader), &list(6)).await;
    assert_eq!(r.status, 200);
    assert_eq!(names(&answer(&r, &json!(6))), ["echo", "slow_progress"]);
    // The writer's lists `add` too and may call it.
    let r = post(&gw.mcp(), &pairs(&writer), &list(7)).await;
    assert_eq!(
        names(&answer(&r, &json!(7))),
        ["echo", "add", "slow_progress"]
    );
    let r = post(&gw.mcp(), &pairs(&writer), &call(8, "add")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(answer(&r, &json!(8))["result"].is_object(), "{}", r.text());
    assert_eq!(runs(&peer, "add").await, 1);

    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_auth_decisions_total{outcome=\"denied\",reason=\"insufficient_scope\"}"),
        Some(1.0),
        "{m}"
    );
    // One audit line per tools/call, with who, what and how it ended; no key anywhere in the log.
    gw.wait_log("\"tool\":\"add\",\"outcome\":\"allowed\"")
        .await;
    let logs = gw.logs();
    let audit: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "Tool call.")
        .collect();
    assert_eq!(audit.len(), 2, "{logs}");
    assert_eq!(
        (
            &audit[0]["principal"],
            &audit[0]["tool"],
            &audit[0]["outcome"],
            &audit[0]["reason"],
            &audit[0]["http.status"]
        ),
        (
            &json!("reader"),
            &json!("add"),
            &json!("denied"),
            &json!("insufficient_scope"),
            &json!(403)
        ),
        "{}",
        audit[0]
    );
    assert_eq!(audit[0]["jsonrpc.request.id"], "5");
    assert_eq!(
        (
            &audit[1]["principal"],
            &audit[1]["outcome"],
            &audit[1]["principal.source"]
        ),
        (&json!("writer"), &json!("allowed"), &json!("api_key")),
    );
    assert!(
        audit[1]["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
        "{}",
        audit[1]
    );
    assert!(
        !logs.contains(READER) && !logs.contains(WRITER),
        "a key in the log"
    );
}
