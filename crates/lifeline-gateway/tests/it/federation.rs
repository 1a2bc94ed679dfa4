//! Federation (issue 16) over three real servers on loopback: server-everything (legacy, stateful, SSE-framed
//! replies), the Python SDK 2.x server in stateless mode (the modern-capable one) and the same Python server over
//! stdio. The Python SDK client lists the merged tools (prefixed `NAME__tool`) and calls one of each; killing
//! the optional server makes its tools vanish with `notifications/tools/list_changed` on the client's stream while
//! the same session keeps calling the others, and its calls get an error naming its state; killing the required
//! one makes `/ready` 503. Needs `scripts/install-peers.sh`.

use std::time::Duration;

use lifeline_mcp::era::{modern_params, MODERN_VERSION};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http::{self, RawResponse};
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{
    inspector, message_with_id, metric, open_session, post, py_client, GatewayUnderTest, Streaming,
    TestGateway as Gw, INIT,
};

/// Starting three servers (one spawned by the gateway) on a loaded 2-core machine.
pub(crate) const READY_PATIENCE: Duration = Duration::from_secs(60);
/// A few health checks (`health_interval: 300ms`) on a loaded machine.
pub(crate) const HEALTH_PATIENCE: Duration = Duration::from_secs(30);

fn config(everything: &str, modern: &str, opt: &str) -> String {
    let (program, args) = Peer::python_stdio_command();
    let command: Vec<String> = std::iter::once(program.display().to_string())
        .chain(args)
        .collect();
    format!(
        "servers:\n\
         - {{name: everything, url: {everything}, health: required, health_interval: 300ms}}\n\
         - {{name: modern, url: {modern}, health: required, health_interval: 300ms}}\n\
         - {{name: opt, url: {opt}, health: optional, health_interval: 300ms}}\n\
         - name: local\n  command: {}\n  health: optional\n  health_interval: 300ms\n",
        serde_json::to_string(&command).expect("json")
    )
}

/// Waits until every server is `ready` in `GET /servers`.
pub(crate) async fn wait_all_ready(gw: &Gw) {
    let all_ready = |v: &Value| {
        v["servers"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["state"] == "ready"))
    };
    assert_eventually!(
        all_ready(
            &serde_json::from_slice(&gw.admin_get("/servers").await.body).unwrap_or(Value::Null)
        ),
        patience = READY_PATIENCE,
        "every server ready: {}",
        gw.admin_get("/servers").await.text()
    );
}

/// Reads the client's GET stream until `notifications/tools/list_changed` (bounded in events and time).
async fn saw_list_changed(stream: &mut Streaming) -> bool {
    for _ in 0..20 {
        match stream.next_event(HEALTH_PATIENCE).await {
            Some(ev) if ev.contains("notifications/tools/list_changed") => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

fn kill_9(peer: &Peer) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(peer.guard.pid()).expect("a pid"));
    nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
}

/// The names in a `tools/list` on session `sid`.
async fn tool_names(mcp: &str, sid: &str) -> Vec<String> {
    let r = post(
        mcp,
        &[
            ("Mcp-Session-Id", sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = message_with_id(&r.text(), 5).expect("a tools/list response");
    v["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

async fn call(mcp: &str, sid: &str, name: &str, args: &str) -> Value {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
    );
    let r = post(
        mcp,
        &[
            ("Mcp-Session-Id", sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    message_with_id(&r.text(), 9).expect("a tools/call response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_merges_servers_of_both_eras_and_survives_one_leaving() {
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let modern = Peer::python(PyServer::Stateless).await;
    let opt = Peer::python(PyServer::Stateful).await;
    let opt_addr = opt.addr;
    let gw = Gw::start_with_file(&config(&everything.url, &modern.url, &opt.url), &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    // `/ready` waits for the required servers only; the optional ones (the stdio child starts slowly) too.
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();

    // The Python SDK client sees the merged, prefixed tools and calls one of each kind of server.
    for (tool, args, expect) in [
        ("everything__echo", r#"{"message":"hi"}"#, "hi"),
        ("modern__add", r#"{"a":2,"b":3}"#, "5"),
        ("local__echo", r#"{"message":"from stdio"}"#, "from stdio"),
    ] {
        let run = py_client(&[&mcp, "--call", tool, "--args", args]).await;
        assert!(run.ok, "{tool}: {}", run.stderr);
        let names = &run.of("tools")[0]["names"];
        for want in [
            "everything__echo",
            "everything__get-sum",
            "modern__add",
            "opt__add",
            "local__add",
        ] {
            assert!(
                names
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == want)),
                "{want} in {names}"
            );
        }
        let result = run.of("result");
        assert_eq!(result.len(), 1, "{tool}: {:?}", run.events);
        assert_eq!(result[0]["is_error"], false, "{tool}: {:?}", result[0]);
        assert!(
            result[0]["text"].to_string().contains(expect),
            "{tool}: {:?}",
            result[0]
        );
    }

    // inspector-cli (the TypeScript SDK client) lists the same merged tools and calls one of each.
    let (ok, out) = inspector(&[&mcp, "--transport", "http", "--method", "tools/list"]).await;
    for want in ["everything__echo", "modern__add", "local__echo"] {
        assert!(ok && out.contains(want), "{want}: {out}");
    }
    for (tool, args, expect) in [
        (
            "everything__echo",
            &["message=hi-inspector"][..],
            "hi-inspector",
        ),
        ("modern__add", &["a=20", "b=22"][..], "42"),
        (
            "local__echo",
            &["message=stdio-inspector"][..],
            "stdio-inspector",
        ),
    ] {
        let mut argv = vec![
            mcp.as_str(),
            "--transport",
            "http",
            "--method",
            "tools/call",
            "--tool-name",
            tool,
        ];
        for a in args {
            argv.extend(["--tool-arg", a]);
        }
        let (ok, out) = inspector(&argv).await;
        assert!(ok && out.contains(expect), "{tool}: {out}");
    }

    // Each server alone on /servers/NAME/mcp, names unprefixed.
    let alone = format!("{}/servers/modern/mcp", gw.base);
    let sid = open_session(&alone).await;
    let names = tool_names(&alone, &sid).await;
    assert!(
        names.contains(&"add".to_owned()) && !names.iter().any(|n| n.contains("__")),
        "{names:?}"
    );

    // One session on the merged endpoint, with its GET stream open; it has an upstream session with opt.
    let sid = open_session(&mcp).await;
    // A merged list makes this session's upstream sessions (and their GET streams) with every server.
    let listed = tool_names(&mcp, &sid).await;
    assert!(
        listed.contains(&"everything__echo".to_owned()),
        "{listed:?}"
    );
    let ok = call(&mcp, &sid, "opt__add", r#"{"a":1,"b":2}"#).await;
    assert!(ok["result"].to_string().contains('3'), "{ok}");
    let mut stream = Streaming::open(
        "GET",
        &mcp,
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        None,
    )
    .await;
    assert_eq!(stream.status, 200);

    // A server's own list_changed for this session reaches the client: server-everything registers a resource
    // for the session and says so on its GET stream.
    let made = call(
        &mcp,
        &sid,
        "everything__gzip-file-as-resource",
        r#"{"name":"hi.gz","data":"data:text/plain;base64,aGk=","outputType":"resourceLink"}"#,
    )
    .await;
    assert!(made["result"].is_object(), "{made}");
    let mut relayed = false;
    for _ in 0..20 {
        match stream.next_event(HEALTH_PATIENCE).await {
            Some(ev) if ev.contains("notifications/resources/list_changed") => {
                relayed = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        relayed,
        "the server's resources/list_changed on the client's stream"
    );

    // The optional server dies: its tools vanish with list_changed, the session keeps working.
    kill_9(&opt);
    drop(opt);
    assert!(
        saw_list_changed(&mut stream).await,
        "tools/list_changed after the optional server left"
    );
    let after = tool_names(&mcp, &sid).await;
    assert!(!after.iter().any(|n| n.starts_with("opt__")), "{after:?}");
    for want in ["everything__echo", "modern__add", "local__add"] {
        assert!(after.contains(&want.to_owned()), "{want} in {after:?}");
    }
    let gone = call(&mcp, &sid, "opt__add", r#"{"a":1,"b":1}"#).await;
    let msg = gone["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(msg.contains("opt") && msg.contains("down"), "{gone}");
    let ok = call(&mcp, &sid, "modern__add", r#"{"a":1,"b":1}"#).await;
    assert!(
        ok["result"].is_object() && ok["result"]["isError"] != true,
        "{ok}"
    );
    let ok = call(&mcp, &sid, "everything__echo", r#"{"message":"still"}"#).await;
    assert!(ok["result"].to_string().contains("still"), "{ok}");
    assert_eq!(
        gw.admin_get("/ready").await.status,
        200,
        "an optional server does not fail /ready"
    );
    let servers: Value =
        serde_json::from_slice(&gw.admin_get("/servers").await.body).expect("JSON");
    assert_eq!(servers["servers"][2]["state"], "down", "{servers}");
    let healthz: Value =
        serde_json::from_slice(&gw.admin_get("/healthz").await.body).expect("JSON");
    assert_eq!(healthz["servers"][2]["state"], "down", "{healthz}");
    let metrics = gw.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "lifeline_gateway_federation_server_ready{server=\"opt\"}"
        ),
        Some(0.0),
        "{metrics}"
    );

    // It returns (a new process: the client's old upstream session is gone, and is made again): its tools come
    // back with list_changed and the same client session calls them.
    let _opt = Peer::python_at(PyServer::Stateful, opt_addr).await;
    assert!(
        saw_list_changed(&mut stream).await,
        "tools/list_changed after the optional server returned"
    );
    let back = tool_names(&mcp, &sid).await;
    assert!(back.contains(&"opt__add".to_owned()), "{back:?}");
    let ok = call(&mcp, &sid, "opt__add", r#"{"a":2,"b":2}"#).await;
    assert!(ok["result"].to_string().contains('4'), "{ok}");
    assert!(
        gw.logs().contains("Upstream session expired"),
        "the call re-made the session the old process had held"
    );

    // A required server dies: /ready fails.
    kill_9(&everything);
    assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = HEALTH_PATIENCE,
        "/ready is 503 without the required server"
    );
}

/// Era bridging (issue 16 §Era bridging): a legacy client reaches a server spoken to in the modern era only
/// (`era: modern`: stateless requests with `_meta` and the mirrored headers), and a modern (2026-07-28) client
/// reaches legacy servers through the endpoint's implicit session, whose upstream sessions are ended with
/// `DELETE` once idle (the Python server's session count returns to the health check's one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_bridges_modern_and_legacy_both_ways() {
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let modern = Peer::python(PyServer::Stateless).await;
    let stateful = Peer::python(PyServer::Stateful).await;
    let yaml = format!(
        "session_idle_ttl: 2s\n\
         servers:\n\
         - {{name: everything, url: {}, era: legacy, health_interval: 300ms}}\n\
         - {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n\
         - {{name: stateful, url: {}, era: legacy, health_interval: 300ms}}\n",
        everything.url, modern.url, stateful.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();
    let servers: Value =
        serde_json::from_slice(&gw.admin_get("/servers").await.body).expect("JSON");
    assert_eq!(
        servers["servers"][1]["protocol_version"], "2026-07-28",
        "{servers}"
    );
    assert_eq!(
        servers["servers"][0]["protocol_version"], "2025-11-25",
        "{servers}"
    );

    // A legacy client → the server spoken to as modern.
    let run = py_client(&[
        &mcp,
        "--mode",
        "legacy",
        "--call",
        "modern__add",
        "--args",
        r#"{"a":20,"b":22}"#,
    ])
    .await;
    assert!(run.ok, "legacy → modern: {}", run.stderr);
    assert_eq!(
        run.of("connected")[0]["protocol_version"],
        "2025-11-25",
        "{:?}",
        run.events
    );
    assert!(
        run.of("result")[0]["text"].to_string().contains("42"),
        "{:?}",
        run.events
    );

    // A modern client → legacy servers (server-everything and the stateful Python server).
    for (tool, args, expect) in [
        ("everything__echo", r#"{"message":"bridged"}"#, "bridged"),
        ("stateful__add", r#"{"a":1,"b":2}"#, "3"),
    ] {
        let run = py_client(&[&mcp, "--mode", "2026-07-28", "--call", tool, "--args", args]).await;
        assert!(
            run.ok,
            "modern → legacy {tool}: {} {:?}",
            run.stderr, run.events
        );
        assert_eq!(
            run.of("connected")[0]["protocol_version"],
            "2026-07-28",
            "{:?}",
            run.events
        );
        let names = &run.of("tools")[0]["names"];
        assert!(
            names
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == tool)),
            "{tool} in {names}"
        );
        assert!(
            run.of("result")[0]["text"].to_string().contains(expect),
            "{tool}: {:?}",
            run.events
        );
    }

    // The implicit session's upstream session with the stateful server ends once idle: only the health check's own
    // session is left there.
    assert_eventually!(
        stateful.sessions_active().await == Some(1),
        patience = HEALTH_PATIENCE,
        "the bridged upstream session was ended after session_idle_ttl; sessions: {:?}",
        stateful.sessions_active().await
    );
    // And with server-everything, which never expires a session itself and has no count to ask: its own log says
    // when it opens one and when one is closed (on the gateway's DELETE). Every session the bridge opened there is
    // closed; only the health check's is left.
    assert_eventually!(
        open_everything_sessions(&everything) == Some(1),
        patience = HEALTH_PATIENCE,
        "server-everything sessions still open: {:?}\n{}",
        open_everything_sessions(&everything),
        everything.guard.output_tail()
    );
}

/// Sessions server-everything has opened and not closed, from its log (`Session initialized with ID: X`,
/// `Transport closed for session X`); `None` when the captured log lost lines (its middle was dropped).
fn open_everything_sessions(everything: &Peer) -> Option<usize> {
    let log = everything.guard.output_tail();
    if log.contains("bytes dropped") {
        return None;
    }
    let opened = log.matches("Session initialized with ID:").count();
    let closed = log.matches("Transport closed for session").count();
    opened.checked_sub(closed)
}

/// A `POST` of `body` to `url` with API key `key` (none when empty) and `extra` headers.
async fn post_as(url: &str, key: &str, extra: &[(&str, &str)], body: &str) -> RawResponse {
    let bearer = format!("Bearer {key}");
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if !key.is_empty() {
        headers.push(("Authorization", &bearer));
    }
    post(url, &headers, body).await
}

/// A modern (2026-07-28) `tools/call` of `tool` by `key`; the JSON-RPC answer and the HTTP status.
async fn modern_call_as(mcp: &str, key: &str, tool: &str, args: Value) -> (u16, Value) {
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": modern_params(json!({"name": tool, "arguments": args}), "fed-auth-test", "1"),
    })
    .to_string();
    let r = post_as(
        mcp,
        key,
        &[
            ("MCP-Protocol-Version", MODERN_VERSION),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", tool),
        ],
        &body,
    )
    .await;
    let v = message_with_id(&r.text(), 7).unwrap_or(Value::Null);
    (r.status, v)
}

/// The federated endpoints are behind the client listener's layers (`proxy/federated.rs`): without a credential
/// both endpoints answer 401 with the challenge; a foreign `Origin` is 403 even with one; per-tool rules apply to
/// the prefixed names (403 `insufficient_scope`, the call never runs upstream) and filter the merged
/// `tools/list`; a legacy session is its creator's alone; and two principals' modern requests run on two upstream
/// sessions (the bridge's implicit session is keyed by the verified principal). Requests are counted in the
/// per-request metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_endpoints_are_behind_auth_edge_and_policy() {
    let st = Peer::python(PyServer::Stateful).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let line = |name: &str, key: &str, scopes: &str| {
        format!(
            "{name} sha256:{} {scopes}\n",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    };
    std::fs::write(
        &keys,
        line("alice", "alice-key", "mcp:read mcp:write") + &line("bob", "bob-key", "mcp:read"),
    )
    .expect("keys");
    let yaml = format!(
        "auth:\n  resource: http://127.0.0.1/mcp\n  jwt: [{{issuer: https://login.example.com, jwks_url: http://127.0.0.1:9/jwks}}]\n  api_keys_file: {}\n  scopes_supported: [mcp:read, mcp:write]\n  \
         tools:\n    - match: st__add\n      require_scopes: [mcp:write]\n    - match: \"*\"\n      require_scopes: [mcp:read]\n\
         servers:\n- {{name: st, url: {}, era: legacy, health_interval: 300ms}}\n",
        keys.display(),
        st.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();
    let alone = format!("{}/servers/st/mcp", gw.base);

    // No credential: the challenge, on both endpoints and before any other check.
    for url in [&mcp, &alone] {
        let r = post_as(url, "", &[], INIT).await;
        assert_eq!(r.status, 401, "{url}: {}", r.text());
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("resource_metadata="),
            "{challenge}"
        );
    }
    // A credential, but a foreign Origin: the edge rule refuses it.
    let r = post_as(
        &mcp,
        "alice-key",
        &[("Origin", "http://evil.example")],
        INIT,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // Modern requests of two principals: alice may call st__add, bob may not (the rule names the prefixed tool).
    let (status, ok) = modern_call_as(&mcp, "alice-key", "st__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok["result"].to_string().contains('3'), "{ok}");
    let (status, ok) = modern_call_as(&mcp, "bob-key", "st__echo", json!({"message": "bob"})).await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok["result"].to_string().contains("bob"), "{ok}");
    let (status, denied) =
        modern_call_as(&mcp, "bob-key", "st__add", json!({"a": 1, "b": 2})).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(
        crate::policy::runs(&st, "add").await,
        1,
        "bob's st__add never ran"
    );
    // Two principals, two upstream sessions (plus the health check's own).
    assert_eq!(st.sessions_active().await, Some(3));

    // The merged tools/list is filtered per principal.
    let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list",
        "params": modern_params(json!({}), "fed-auth-test", "1")})
    .to_string();
    for (key, sees_add) in [("alice-key", true), ("bob-key", false)] {
        let r = post_as(
            &mcp,
            key,
            &[
                ("MCP-Protocol-Version", MODERN_VERSION),
                ("Mcp-Method", "tools/list"),
            ],
            &list,
        )
        .await;
        let v = message_with_id(&r.text(), 8).expect("a tools/list answer");
        let names = v["result"]["tools"].to_string();
        assert_eq!(names.contains("\"st__add\""), sees_add, "{key}: {names}");
        assert!(names.contains("\"st__echo\""), "{key}: {names}");
    }

    // A legacy session on the single-server endpoint is alice's alone.
    let r = post_as(&alone, "alice-key", &[], INIT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("a session").to_owned();
    let ping = r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;
    let r = post_as(&alone, "alice-key", &[("Mcp-Session-Id", &sid)], ping).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post_as(&alone, "bob-key", &[("Mcp-Session-Id", &sid)], ping).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Counted like any request (method, status).
    let metrics = gw.metrics().await;
    for sample in [
        "lifeline_gateway_requests_total{method=\"tools/call\",status=\"200\"}",
        "lifeline_gateway_requests_total{method=\"tools/call\",status=\"403\"}",
        "lifeline_gateway_requests_total{method=\"other\",status=\"401\"}",
    ] {
        assert!(
            metric(&metrics, sample).is_some_and(|n| n >= 1.0),
            "{sample}: {metrics}"
        );
    }
}

/// A suite run through the bridge takes seconds idle; this bounds it on a loaded 2-core machine.
const SUITE_PATIENCE: Duration = Duration::from_secs(170);

/// The 2026-07-28 scenarios (conformance 0.2.0-alpha.11, `--requirements 2026-07-28`) that fail through the bridge
/// from a modern client to the fixture spoken to as legacy (`era: legacy`), each with its row of the era matrix
/// (docs/gateway-federation.md §Eras). An entry ending in `*` is a name prefix. Any other failure, or an entry that
/// passes, fails the test.
const MODERN_TO_LEGACY_FAILURES: &[(&str, &str)] = &[
    (
        "server-stateless",
        "fails directly too (no `test_missing_capability` tool); the gateway has no `subscriptions/listen` (matrix: \
         list_changed for modern clients)",
    ),
    (
        "input-required-result-*",
        "fails directly too (no InputRequiredResult tools); a legacy server cannot give one (matrix: server → client \
         requests)",
    ),
    (
        "tasks-*",
        "fails directly too: the tasks extension (SEP-2663) is neither the fixture's nor the gateway's",
    ),
    (
        "http-custom-header-server-validation",
        "fails directly too: no tool with `x-mcp-header` parameters (SEP-2243)",
    ),
];

/// The same for the 0.1.16 suite (`--suite all`) from a legacy client to the fixture spoken to as modern
/// (`era: modern`).
const LEGACY_TO_MODERN_FAILURES: &[(&str, &str)] = &[
    (
        "tools-call-sampling",
        "matrix: a modern server has no back-channel for server → client requests on a stateless request",
    ),
    ("tools-call-elicitation", "the same: elicitation/create"),
    ("elicitation-sep1034-defaults", "the same: elicitation/create"),
    ("elicitation-sep1330-enums", "the same: elicitation/create"),
    (
        "resources-subscribe",
        "matrix: 2026-07-28 has no resources/subscribe (subscriptions/listen replaces it); the modern server answers \
         -32601",
    ),
    ("resources-unsubscribe", "the same"),
];

/// The official conformance suite's server scenarios through the era bridge, both directions, on the fixture
/// server (`tests/peers/conformance_fixture.py`, which speaks both eras) behind one gateway as two servers,
/// `legacy` (`era: legacy`) and `modern` (`era: modern`), each on its own endpoint (`prefix: never`, so the
/// scenarios' fixed tool names are the fixture's). The scenarios that fail are exactly the expected ones; how
/// they fare directly is guarded by `conformance.rs`. Needs `scripts/install-peers.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_scenarios_through_the_era_bridge() {
    use lifeline_testkit::peers::conformance::run_server_suite;
    use lifeline_testkit::peers::Conformance;
    let fixture = Peer::conformance_fixture().await;
    let yaml = format!(
        "servers:\n\
         - {{name: legacy, url: {0}, era: legacy, prefix: never, health_interval: 300ms}}\n\
         - {{name: modern, url: {0}, era: modern, prefix: never, health_interval: 300ms}}\n",
        fixture.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    let runs = [
        (
            Conformance::Next,
            "legacy",
            &["--requirements", "2026-07-28"][..],
            MODERN_TO_LEGACY_FAILURES,
        ),
        (
            Conformance::Stable,
            "modern",
            &["--suite", "all"][..],
            LEGACY_TO_MODERN_FAILURES,
        ),
    ];
    let mut problems = Vec::new();
    for (which, server, args, expected) in runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("{}/servers/{server}/mcp", gw.base);
        let run = run_server_suite(which, &url, dir.path(), args, SUITE_PATIENCE).await;
        assert!(
            run.announced
                .is_some_and(|n| n >= 30 && n == run.scenarios.len()),
            "{which:?}: an incomplete run:\n{}",
            run.output
        );
        let matches = |pattern: &str, name: &str| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        };
        for (name, result) in &run.scenarios {
            eprintln!(
                "  {which:?} → {server}: {name:<44} {} {}",
                if result.passed() { "pass" } else { "FAIL" },
                result.failures.join("; ")
            );
            let known = expected.iter().any(|(p, _)| matches(p, name));
            if !result.passed() && !known {
                problems.push(format!(
                    "{which:?} → {server}: {name} fails: {:?}",
                    result.failures
                ));
            }
        }
        for (pattern, why) in expected {
            if !run.failed().iter().any(|n| matches(pattern, n)) {
                problems.push(format!(
                    "{which:?} → {server}: stale expected failure {pattern} ({why})"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\ngateway logs:\n{}",
        problems.join("\n"),
        gw.logs()
    );
}

/// Sealed federated sessions (`--session-key-file`, docs/gateway-federation.md §Sessions): two gateway replicas
/// with the same key file and the same servers (a legacy stateful one and a modern one), one legacy client
/// session alternating between them. Each replica serves the other's session (adopting it from its token, with its
/// own upstream sessions made on first use); a token opens only on the endpoint it was made for; `DELETE` on one
/// replica makes that replica answer 404; a replica with another key answers 404. Needs
/// `scripts/install-peers.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_federated_session_alternates_between_two_replicas() {
    let stateful = Peer::python(PyServer::Stateful).await;
    let modern = Peer::python(PyServer::Stateless).await;
    let yaml = format!(
        "servers:\n\
         - {{name: stateful, url: {}, era: legacy, health_interval: 300ms}}\n\
         - {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n",
        stateful.url, modern.url
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, key: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{key}\n")).expect("write a key file");
        path.to_string_lossy().into_owned()
    };
    let keys = write(
        "keys",
        "5e0f3a8c1b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
    );
    let other = write(
        "other",
        "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
    );
    let a = Gw::start_with_file(&yaml, &["--session-key-file", &keys]).await;
    let b = Gw::start_with_file(&yaml, &["--session-key-file", &keys]).await;
    let c = Gw::start_with_file(&yaml, &["--session-key-file", &other]).await;
    for gw in [&a, &b, &c] {
        gw.wait_ready(READY_PATIENCE).await;
        wait_all_ready(gw).await;
    }
    let sid = open_session(&a.mcp()).await;
    assert!(sid.len() > 64, "a sealed token, not a bare id: {sid}");
    for (round, gw) in [&a, &b, &a, &b, &b, &a].into_iter().enumerate() {
        let x = i64::try_from(round).expect("small");
        for tool in ["stateful__add", "modern__add"] {
            let v = call(&gw.mcp(), &sid, tool, &format!(r#"{{"a":{x},"b":100}}"#)).await;
            assert!(
                v["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&(x + 100).to_string())),
                "round {round} {tool} on {}: {v}\n{}",
                gw.base,
                gw.logs()
            );
        }
        let names = tool_names(&gw.mcp(), &sid).await;
        assert!(
            names.iter().any(|n| n == "stateful__add") && names.iter().any(|n| n == "modern__add"),
            "round {round}: {names:?}"
        );
    }
    let adopted = metric(
        &b.admin_get("/metrics").await.text(),
        r#"lifeline_gateway_session_recoveries_total{result="recovered"}"#,
    );
    assert_eq!(adopted, Some(1.0), "replica B adopted the session once");
    let headers = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let list = r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}"#;
    // Another endpoint, another key: not this session.
    let one = format!("{}/servers/stateful/mcp", b.base);
    assert_eq!(post(&one, &headers, list).await.status, 404);
    assert_eq!(post(&c.mcp(), &headers, list).await.status, 404);
    // DELETE on B: B no longer serves it.
    let r = lifeline_testkit::peers::raw_http::request(
        "DELETE",
        &b.mcp(),
        &headers,
        None,
        Duration::from_secs(30),
    )
    .await
    .expect("DELETE");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(&b.mcp(), &headers, list).await.status, 404);
}

/// The JSON a Python test peer serves at `path` beside its `/mcp` (`/debug/calls`, `/debug/log-levels`).
/// POSTs `body` as a stream, waits (bounded) for its first event, a progress notification, and leaves: the client's
/// side of a disconnect while the answer streams. `what` names the case in a failure.
pub(crate) async fn leave_after_first_progress(
    mcp: &str,
    headers: &[(&str, &str)],
    body: &str,
    what: &str,
) {
    let mut call = Streaming::open("POST", mcp, headers, Some(body)).await;
    assert_eq!(call.status, 200, "{what}");
    let first = call.next_event(Duration::from_secs(15)).await;
    assert!(
        first
            .as_deref()
            .is_some_and(|e| e.contains("notifications/progress")),
        "{what}: {first:?}"
    );
}

pub(crate) async fn debug_json(peer: &Peer, path: &str) -> Value {
    let url = format!("{}{path}", peer.url.trim_end_matches("/mcp"));
    let r = raw_http::request("GET", &url, &[], None, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("GET {url}: {e}: {}", r.text()))
}

/// A modern client's per-request log level (2026-07-28 `server/utilities/logging` §Per-request log level) reaches
/// servers of both eras: a modern server gets `_meta`'s `logLevel` as the client sent it (the Python SDK sends
/// nothing without it), a legacy one a `logging/setLevel` on the implicit session's upstream session, sent only
/// when the level asked is below what was set (the fixture records each); each request gets the messages at its
/// own level and above, none without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_clients_log_level_reaches_servers_of_both_eras() {
    let fixture = Peer::conformance_fixture().await;
    let yaml = format!(
        "servers:\n\
         - {{name: legacy, url: {0}, era: legacy, health_interval: 300ms}}\n\
         - {{name: modern, url: {0}, era: modern, health_interval: 300ms}}\n",
        fixture.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();
    let levels_set = || debug_json(&fixture, "/debug/log-levels");
    // The messages a modern tools/call of `tool` streamed back, with `_meta` logLevel `level` (none: no key).
    let logged = |tool: &'static str, level: Option<&'static str>| {
        let mcp = mcp.clone();
        async move {
            let mut params = modern_params(
                json!({"name": tool, "arguments": {}}),
                "log-level-test",
                "1",
            );
            if let Some(level) = level {
                params["_meta"]["io.modelcontextprotocol/logLevel"] = json!(level);
            }
            let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params})
                .to_string();
            let r = post(
                &mcp,
                &[
                    ("MCP-Protocol-Version", MODERN_VERSION),
                    ("Mcp-Method", "tools/call"),
                    ("Mcp-Name", tool),
                ],
                &body,
            )
            .await;
            let text = r.text();
            assert_eq!(r.status, 200, "{tool} {level:?}: {text}");
            assert!(
                message_with_id(&text, 9).is_some_and(|m| m["result"]["isError"] != true),
                "{tool} {level:?}: {text}"
            );
            text.matches("notifications/message").count()
        }
    };
    for tool in [
        "modern__test_tool_with_logging",
        "legacy__test_tool_with_logging",
    ] {
        assert_eq!(logged(tool, None).await, 0, "{tool}: none unless asked");
        assert_eq!(logged(tool, Some("info")).await, 3, "{tool} at info");
        assert_eq!(logged(tool, Some("error")).await, 0, "{tool} at error");
    }
    // The legacy server was told once for info; debug lowers it again; error (higher) never raises it.
    assert_eq!(levels_set().await, json!(["info"]));
    assert_eq!(
        logged("legacy__test_tool_with_logging", Some("debug")).await,
        3
    );
    assert_eq!(levels_set().await, json!(["info", "debug"]));
}

/// `notifications/cancelled` from a legacy client session (2025-11-25 `basic/utilities/cancellation`) through the
/// federation, whose upstream requests carry ids of the gateway's own: a long `slow_progress` call on the legacy
/// (stateful) Python server is cancelled there with the upstream id (the tool sees the cancellation), one on the
/// modern (stateless) server by dropping its request; both client streams end at once with an error, and the
/// session goes on. A modern client closing its request's stream cancels it at the legacy server too (the gateway
/// sends `notifications/cancelled`). The Python server counts `slow_progress:cancelled` when a cancellation reaches
/// the tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_clients_cancellation_reaches_servers_of_both_eras() {
    let modern = Peer::python(PyServer::Stateless).await;
    let stateful = Peer::python(PyServer::Stateful).await;
    let yaml = format!(
        "servers:\n\
         - {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n\
         - {{name: stateful, url: {}, era: legacy, health_interval: 300ms}}\n",
        modern.url, stateful.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();
    let sid = open_session(&mcp).await;
    let session: [(&str, &str); 2] = [
        ("Mcp-Session-Id", &sid),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    async fn cancelled_at(peer: &Peer) -> u64 {
        debug_json(peer, "/debug/calls").await["slow_progress:cancelled"]
            .as_u64()
            .unwrap_or(0)
    }
    for (n, (tool, peer)) in [
        ("modern__slow_progress", &modern),
        ("stateful__slow_progress", &stateful),
    ]
    .into_iter()
    .enumerate()
    {
        let id = 40 + n as i64;
        // 200 steps 50 ms apart: 10 s unless cancelled.
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {"steps": 200, "delay_ms": 50},
                       "_meta": {"progressToken": format!("p{id}")}},
        })
        .to_string();
        let mut headers = session.to_vec();
        headers.push(("Accept", "application/json, text/event-stream"));
        headers.push(("Content-Type", "application/json"));
        let mut call = Streaming::open("POST", &mcp, &headers, Some(&body)).await;
        assert_eq!(call.status, 200, "{tool}");
        // The first progress notification: the call is running on the server.
        let first = call.next_event(Duration::from_secs(15)).await;
        assert!(
            first
                .as_deref()
                .is_some_and(|e| e.contains("notifications/progress")),
            "{tool}: {first:?}"
        );
        let cancel = json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "the user pressed stop"},
        })
        .to_string();
        let r = post(&mcp, &session, &cancel).await;
        assert_eq!(r.status, 202, "{tool}: {}", r.text());
        // The stream ends well before the 10 s the call would take, with the error answer last.
        let rest = call.rest(Duration::from_secs(5)).await;
        let answer = message_with_id(&rest, id).unwrap_or(Value::Null);
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cancelled")),
            "{tool}: {rest}"
        );
        // The cancellation reached the tool: as `notifications/cancelled` with the gateway's upstream id (legacy),
        // as the request's connection closing (modern).
        assert_eventually!(
            cancelled_at(peer).await == 1,
            patience = HEALTH_PATIENCE,
            "{tool}: the server saw no cancellation"
        );
    }
    // The session goes on.
    let r = call(&mcp, &sid, "stateful__add", r#"{"a":2,"b":3}"#).await;
    assert!(r.to_string().contains('5'), "{r}");

    // A modern client cancels by closing its request's stream (2026-07-28): the legacy server gets
    // `notifications/cancelled` from the gateway.
    let tool = "stateful__slow_progress";
    let mut params = modern_params(
        json!({"name": tool, "arguments": {"steps": 200, "delay_ms": 50}}),
        "cancel-test",
        "1",
    );
    params["_meta"]["progressToken"] = json!("m1");
    let body =
        json!({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": params}).to_string();
    let headers = [
        ("MCP-Protocol-Version", MODERN_VERSION),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
    ];
    leave_after_first_progress(&mcp, &headers, &body, &format!("modern → {tool}")).await;
    assert_eventually!(
        cancelled_at(&stateful).await == 2,
        patience = HEALTH_PATIENCE,
        "modern → {tool}: the legacy server saw no cancellation after the client closed its stream"
    );
}
