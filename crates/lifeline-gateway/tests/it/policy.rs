//! The policy point (issue 12) against real upstreams: the 2026-07-28 mirrored-header check (`Mcp-Name`,
//! `Mcp-Method` against the body), per-tool scope rules (403 `insufficient_scope` with the exact challenge),
//! `tools/list` filtered in JSON and SSE answers of both eras and on 2024-11-05 streams, `nextCursor` pages,
//! per-principal rate limits (429 with the request's id and `Retry-After`) and the audit line. Principals are API
//! keys (`auth.api_keys_file`). Every refusal also proves the upstream never ran the call: the py2 server counts
//! its tool runs (`GET /debug/calls`, and a `py2_server: tool NAME called` stderr line the gateway logs for a
//! stdio child).

use std::time::Duration;

use lifeline_mcp::era::{modern_params, MODERN_VERSION};
use lifeline_testkit::fakes::{numbered_tools, FakeKind, FakeServer, HealthyOpts};
use lifeline_testkit::peers::oidc::{AuthServer, AuthServerConfig, ClientConfig, ResourceConfig};
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};
use serde_json::{json, Value};

use crate::harness::{
    event_json, message_with_id, metric, post, GatewayUnderTest, Streaming, TestGateway as Gw,
    INIT, INITIALIZED,
};
use lifeline_testkit::peers::raw_http::RawResponse;

/// How many times the py2 peer ran `tool` (its `/debug/calls`).
pub(crate) async fn runs(peer: &Peer, tool: &str) -> u64 {
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
        "params": modern_params(json!({"name": tool, "arguments": {"a": 1, "b": 2, "message": "hi"}}), "policy-test", "1"),
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

/// The JSON-RPC message answering `id` in `r` (the testkit's `message_with_id`: a JSON body or an SSE event).
fn answer(r: &RawResponse, id: i64) -> Value {
    message_with_id(&r.text(), id).unwrap_or_else(|| panic!("no answer to {id} in {}", r.text()))
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
    assert_eq!(answer(&r, 5)["id"], 5);
    assert_eq!(
        runs(&peer, "add").await,
        0,
        "the upstream never ran the refused call"
    );

    // Smuggling attempts: a duplicate `method` key (Python's parser takes the last one) and a batch are refused
    // under a policy rather than passed on unread.
    let dup = r#"{"jsonrpc":"2.0","id":9,"method":"ping","method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#;
    let r = post(&gw.mcp(), &pairs(&reader), dup).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let batch = format!("[{}]", call(10, "add"));
    let r = post(&gw.mcp(), &pairs(&reader), &batch).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        runs(&peer, "add").await,
        0,
        "the upstream never ran a smuggled call"
    );

    // Its tools/list (an SSE answer in this mode) lists what it may call, in the upstream's order.
    let r = post(&gw.mcp(), &pairs(&reader), &list(6)).await;
    assert_eq!(r.status, 200);
    assert_eq!(names(&answer(&r, 6)), ["echo", "slow_progress"]);
    // The writer's lists `add` too and may call it.
    let r = post(&gw.mcp(), &pairs(&writer), &list(7)).await;
    assert_eq!(names(&answer(&r, 7)), ["echo", "add", "slow_progress"]);
    let r = post(&gw.mcp(), &pairs(&writer), &call(8, "add")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(answer(&r, 8)["result"].is_object(), "{}", r.text());
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

/// The headers of a modern (2026-07-28) `tools/call` of `tool` or `tools/list` by `key`.
fn modern_headers<'a>(
    auth: &'a str,
    method: &'a str,
    tool: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("Authorization", auth),
        ("MCP-Protocol-Version", MODERN_VERSION),
        ("Mcp-Method", method),
    ];
    if let Some(tool) = tool {
        h.push(("Mcp-Name", tool));
    }
    h
}

fn modern_list(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": modern_params(json!({}), "policy-test", "1")})
        .to_string()
}

#[tokio::test]
async fn tools_list_is_filtered_in_json_and_modern_answers_and_on_server_everything() {
    let keys = keys();
    let reader = bearer(READER);

    // Legacy era, plain JSON answers (py2 in json mode).
    let json_peer = Peer::python(PyServer::Json).await;
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &["--upstream", &json_peer.url]).await;
    let session = legacy_session(&gw.mcp(), READER).await;
    let r = post(&gw.mcp(), &pairs(&session), &list(2)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(names(&answer(&r, 2)), ["echo", "slow_progress"]);
    drop(gw);

    // Modern era (stateless, 2026-07-28 request metadata).
    let modern_peer = Peer::python(PyServer::Stateless).await;
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &["--upstream", &modern_peer.url]).await;
    let r = post(
        &gw.mcp(),
        &modern_headers(&reader, "tools/list", None),
        &modern_list(3),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(&answer(&r, 3)), ["echo", "slow_progress"]);
    drop(gw);

    // server-everything over Streamable HTTP (SSE answers): its get-* tools need mcp:admin, nobody has it.
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &["--upstream", &everything.url]).await;
    let session = legacy_session(&gw.mcp(), WRITER).await;
    let r = post(&gw.mcp(), &pairs(&session), &list(4)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = names(&answer(&r, 4));
    assert!(listed.iter().any(|n| n == "echo"), "{listed:?}");
    assert!(!listed.iter().any(|n| n.starts_with("get-")), "{listed:?}");
    let r = post(&gw.mcp(), &pairs(&session), &call(5, "get-sum")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", scope="mcp:admin", error_description="the token lacks a scope this operation needs""#
        )
    );
}

#[tokio::test]
async fn a_stdio_upstream_never_runs_a_refused_call_and_its_lists_are_filtered() {
    let keys = keys();
    let (python, args) = Peer::python_stdio_command();
    let mut argv: Vec<&str> = vec!["--"];
    argv.push(python.to_str().expect("a UTF-8 path"));
    argv.extend(args.iter().map(String::as_str));
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &argv).await;
    let reader = legacy_session(&gw.mcp(), READER).await;
    let writer = legacy_session(&gw.mcp(), WRITER).await;

    let r = post(&gw.mcp(), &pairs(&reader), &call(2, "add")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some(ADD_CHALLENGE));
    let r = post(&gw.mcp(), &pairs(&reader), &list(3)).await;
    assert_eq!(names(&answer(&r, 3)), ["echo", "slow_progress"]);
    // The writer's call runs: its stderr line reaches the gateway's log; the reader's never did.
    let r = post(&gw.mcp(), &pairs(&writer), &call(4, "add")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.wait_log("py2_server: tool add called").await;
    let logs = gw.logs();
    assert_eq!(
        logs.matches("py2_server: tool add called").count(),
        1,
        "only the writer's call ran: {logs}"
    );
}

#[tokio::test]
async fn next_cursor_pages_are_filtered_and_paging_goes_on() {
    // Pagination needs an upstream that pages: none of the installed real servers does, so the testkit's
    // healthy fake (SSE answers, 2 tools a page) stands in.
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tools: numbered_tools(5),
        page_size: 2,
        sse_replies: true,
        ..HealthyOpts::default()
    }))
    .await
    .expect("a fake upstream");
    let keys = keys();
    let yaml = format!(
        "auth:\n  api_keys_file: {}\n  tools:\n    - match: \"tool_0*1\"\n      require_scopes: [mcp:admin]\n    - match: tool_002\n      require_scopes: [mcp:admin]\n    - match: tool_003\n      require_scopes: [x]\n",
        keys.file.display()
    );
    let gw = Gw::start_with_file(&yaml, &["--upstream", &fake.url()]).await;
    let session = legacy_session(&gw.mcp(), READER).await;
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor: Option<String> = None;
    for id in 10..20u64 {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params})
            .to_string();
        let r = post(&gw.mcp(), &pairs(&session), &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let a = answer(&r, id as i64);
        seen.extend(names(&a));
        cursor = a["result"]["nextCursor"].as_str().map(str::to_owned);
        match &cursor {
            Some(c) => cursors.push(c.clone()),
            None => break,
        }
    }
    // tool_001 is gone from the first page, the second page came out empty, and both cursors survived, so the
    // last page was reached.
    assert_eq!(seen, ["tool_000", "tool_004"]);
    assert_eq!(cursors.len(), 2, "three pages, two cursors: {cursors:?}");
}

#[tokio::test]
async fn a_principal_over_its_rate_limit_gets_429_with_the_id_and_retry_after() {
    let peer = Peer::python(PyServer::Stateless).await;
    let keys = keys();
    let yaml = auth_yaml(&keys, "  rate_limit: { per_principal: 1/m, burst: 2 }\n");
    let gw = Gw::start_with_file(&yaml, &["--upstream", &peer.url]).await;
    let (reader, writer) = (bearer(READER), bearer(WRITER));
    let echo = modern_headers(&reader, "tools/call", Some("echo"));
    for id in 1..=2 {
        let r = post(&gw.mcp(), &echo, &modern_call(id, "echo")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = post(&gw.mcp(), &echo, &modern_call(3, "echo")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", r.headers));
    assert!((1..=60).contains(&retry), "{retry}");
    let err = body_json(&r);
    assert_eq!(err["id"], 3, "{err}");
    assert!(
        err["error"]["data"]["retryAfterMs"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{err}"
    );
    assert_eq!(runs(&peer, "echo").await, 2, "the refused call never ran");
    // Another principal has its own bucket.
    let r = post(
        &gw.mcp(),
        &modern_headers(&writer, "tools/call", Some("echo")),
        &modern_call(4, "echo"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "lifeline_gateway_auth_decisions_total{outcome=\"denied\",reason=\"rate_limited\"}"
        ),
        Some(1.0),
        "{m}"
    );
    gw.wait_log("\"reason\":\"rate_limited\"").await;
}

#[tokio::test]
async fn http_sse_messages_refuse_calls_and_the_stream_lists_only_callable_tools() {
    let peer = Peer::everything(EverythingTransport::Sse).await;
    let keys = keys();
    let gw = Gw::start_with_file(&auth_yaml(&keys, ""), &["--upstream", &peer.url]).await;
    let auth = bearer(READER);
    let mut stream = Streaming::open(
        "GET",
        &format!("{}/sse", gw.base),
        &[("Accept", "text/event-stream"), ("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(stream.status, 200);
    let path = stream.endpoint_path().await;
    let messages = format!("{}{path}", gw.base);
    let send = |body: String| {
        let messages = messages.clone();
        let auth = auth.clone();
        async move {
            lifeline_testkit::peers::raw_http::request(
                "POST",
                &messages,
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", &auth),
                ],
                Some(body.as_bytes()),
                Duration::from_secs(10),
            )
            .await
            .expect("POST /messages")
        }
    };
    assert_eq!(send(INIT.to_owned()).await.status, 202);
    let _ = next_answer(&mut stream, &json!(1)).await;
    assert_eq!(send(INITIALIZED.to_owned()).await.status, 202);

    // A call the rules refuse: 403 on the POST, nothing on the stream.
    let r = send(call(7, "get-sum")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.contains("scope=\"mcp:admin\"")));
    // tools/list: its answer on the stream is filtered, and it is the next answer (no answer for id 7 came).
    assert_eq!(send(list(8)).await.status, 202);
    let (answer, others) = next_answer(&mut stream, &json!(8)).await;
    assert!(
        others.iter().all(|m| m.get("id") != Some(&json!(7))),
        "{others:?}"
    );
    let listed = names(&answer);
    assert!(listed.iter().any(|n| n == "echo"), "{listed:?}");
    assert!(!listed.iter().any(|n| n.starts_with("get-")), "{listed:?}");
}

/// Reads the stream until the message answering `id`; returns it and the other messages seen before it.
async fn next_answer(stream: &mut Streaming, id: &Value) -> (Value, Vec<Value>) {
    let mut others = Vec::new();
    for _ in 0..50 {
        let event = stream
            .next_event(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("the stream ended before the answer to {id}"));
        let Some(msg) = event_json(&event) else {
            continue;
        };
        if msg.get("id") == Some(id) {
            return (msg, others);
        }
        others.push(msg);
    }
    panic!("no answer to {id} within 50 events: {others:?}");
}

#[tokio::test]
async fn a_jwt_principal_is_challenged_for_the_scopes_its_call_needs() {
    const RESOURCE: &str = "https://mcp.example.com/mcp";
    let peer = Peer::python(PyServer::Stateless).await;
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic(
                "agent",
                "agent-secret",
                "mcp:read mcp:write",
            ))
            .resource(ResourceConfig::jwt(RESOURCE, "mcp:read mcp:write")),
    )
    .await;
    let yaml = format!(
        "auth:\n  resource: {RESOURCE}\n  jwt:\n    - issuer: {}\n  scopes_supported: [mcp:read]\n  tools:\n    - match: add\n      require_scopes: [mcp:read, mcp:write]\n",
        auth.issuer()
    );
    let gw = Gw::start_with_file(&yaml, &["--upstream", &peer.url]).await;
    let token = |scope: &'static str| {
        let auth = &auth;
        async move {
            auth.client_credentials("agent", "agent-secret", Some(RESOURCE), Some(scope))
                .await
                .unwrap_or_else(|e| panic!("a token: {e}"))
                .access_token
        }
    };
    let read_only = bearer(&token("mcp:read").await);
    let r = post(
        &gw.mcp(),
        &modern_headers(&read_only, "tools/call", Some("add")),
        &modern_call(1, "add"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error_description="the token lacks a scope this operation needs""#
        )
    );
    assert_eq!(body_json(&r)["id"], 1);
    assert_eq!(runs(&peer, "add").await, 0);

    let both = bearer(&token("mcp:read mcp:write").await);
    let r = post(
        &gw.mcp(),
        &modern_headers(&both, "tools/call", Some("add")),
        &modern_call(2, "add"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(runs(&peer, "add").await, 1);
    gw.wait_log("\"principal.source\":\"jwt\"").await;
    let logs = gw.logs();
    let token_text = read_only.trim_start_matches("Bearer ");
    assert!(!logs.contains(token_text), "a token in the log");
}
