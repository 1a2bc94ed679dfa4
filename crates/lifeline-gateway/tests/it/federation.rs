//! Federation (issue 16) over three real servers on loopback: server-everything (legacy, stateful, SSE-framed
//! replies), the Python SDK 2.x server in stateless mode (the modern-capable one) and the same Python server over
//! stdio. The Python SDK client lists the merged tools (prefixed `NAME__tool`) and calls one of each; killing
//! the optional server makes its tools vanish with `notifications/tools/list_changed` on the client's stream while
//! the same session keeps calling the others, and its calls get an error naming its state; killing the required
//! one makes `/ready` 503. Needs `scripts/install-peers.sh`.

use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};
use serde_json::Value;

use crate::harness::{
    message_with_id, metric, open_session, post, py_client, GatewayUnderTest, Streaming,
    TestGateway as Gw,
};

/// Starting three servers (one spawned by the gateway) on a loaded 2-core machine.
const READY_PATIENCE: Duration = Duration::from_secs(60);
/// A few health checks (`health_interval: 300ms`) on a loaded machine.
const HEALTH_PATIENCE: Duration = Duration::from_secs(30);

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
async fn wait_all_ready(gw: &Gw) {
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
}
