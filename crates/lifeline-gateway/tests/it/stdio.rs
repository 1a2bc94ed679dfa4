//! The gateway (in process) with `-- CMD`: a stdio MCP server behind it, in session and pool mode. Real peers
//! (server-everything over stdio, the Python SDK 2.x server over stdio) driven by the Python SDK client and
//! `@modelcontextprotocol/inspector-cli`, plus the testkit's misbehaving stdio fake for what no real peer does on
//! demand (non-JSON stdout, a child killed mid-session). Needs `scripts/install-peers.sh`. The tests that signal the
//! gateway process, run it as PID 1 or inspect its process (children, memory) stay in the binary's
//! `tests/cli/gateway_stdio.rs`.

use std::time::Duration;

use crate::harness::{
    self, assert_listed_everything_tools, assert_streamed_progress, everything_long_call,
    inspector_lists_and_calls, message_with_id, metric, open_session, pid_alive, post, py2_python,
    py_client, tools_call, whoami, GatewayUnderTest, Streaming, TestGateway as Gw,
    EVERYTHING_GET_SUM, STDIO_READY_FLAGS, STDIO_READY_PATIENCE,
};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{self, raw_http, Peer};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// `@modelcontextprotocol/inspector-cli` through the gateway: tools/list, then get-sum (server-everything).
async fn inspector_gets_the_sum(mcp: &str) {
    inspector_lists_and_calls(mcp, EVERYTHING_GET_SUM).await;
}

#[tokio::test]
async fn server_everything_over_stdio_through_the_gateway() {
    let (node, args) = Peer::everything_stdio_command();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = Gw::start_stdio(&node.to_string_lossy(), &args, STDIO_READY_FLAGS).await;
    gw.wait_ready(STDIO_READY_PATIENCE).await;
    let ready = gw.admin_get("/ready").await.text();
    assert!(ready.contains("\"transport\":\"stdio\""), "{ready}");

    let run = everything_long_call(&gw.mcp(), &[]).await;
    assert_listed_everything_tools(&run);
    // The SDK client DELETEs its session: the gateway forgot it and ended the child.
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "lifeline_gateway_sessions_active"),
        Some(0.0),
        "{m}"
    );
    gw.wait_log("Stdio session ended.").await;

    inspector_gets_the_sum(&gw.mcp()).await;
}

#[tokio::test]
async fn python_sdk_server_over_stdio_through_the_gateway() {
    let script = peers::peers_sources().join("py2_server.py");
    let gw = Gw::start_stdio(
        &py2_python(),
        &[&script.to_string_lossy(), "stdio"],
        STDIO_READY_FLAGS,
    )
    .await;
    gw.wait_ready(STDIO_READY_PATIENCE).await;
    let run = py_client(&[
        &gw.mcp(),
        "--call",
        "slow_progress",
        "--args",
        r#"{"steps": 5, "delay_ms": 300}"#,
    ])
    .await;
    assert!(
        run.of("tools")[0]["names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|t| t == "slow_progress")),
        "{:?}",
        run.events
    );
    assert_streamed_progress(&run, 4);

    // Session mode serves the legacy era: a client that tries the modern one first falls back…
    let mcp = gw.mcp();
    let run = py_client(&[
        &mcp,
        "--mode",
        "auto",
        "--call",
        "add",
        "--args",
        r#"{"a": 2, "b": 3}"#,
    ])
    .await;
    assert!(run.ok, "{:?}\n{}", run.events, run.stderr);
    assert_eq!(run.of("connected")[0]["protocol_version"], "2025-11-25");
    // …and a modern-only client gets UnsupportedProtocolVersion, a clear error rather than a hang.
    let run = py_client(&[
        &mcp,
        "--mode",
        "2026-07-28",
        "--call",
        "add",
        "--args",
        r#"{"a": 2, "b": 3}"#,
    ])
    .await;
    assert!(!run.ok);
    assert!(
        run.of("error")[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Unsupported protocol version")),
        "{:?}",
        run.events
    );
}

#[tokio::test]
async fn each_session_gets_its_own_child_and_a_dead_child_means_404() {
    // (Not waiting for /ready: the fake's non-JSON stdout rightly fails the probe.)
    let gw = Gw::start_stdio_fake(&[]).await;
    let url = gw.mcp();
    let (a, b) = tokio::join!(open_session(&url), open_session(&url));
    assert_ne!(a, b);
    // The same request id on both sessions at once: each answer comes from its own child.
    let (pid_a, pid_b) = tokio::join!(whoami(&url, &a), whoami(&url, &b));
    assert_ne!(pid_a, pid_b, "two sessions share a child");
    assert_eq!(whoami(&url, &a).await, pid_a, "a session keeps its child");
    // The fake writes non-JSON lines: skipped and logged, never forwarded.
    gw.wait_log("non-JSON-RPC line").await;

    // A crashed child: its session answers 404 (so the client re-initializes); the other is untouched.
    kill(Pid::from_raw(pid_a as i32), Signal::SIGKILL).expect("kill the child");
    assert_eventually!(
        post(&url, &[("Mcp-Session-Id", &a)], &tools_call(3, "whoami"))
            .await
            .status
            == 404,
        patience = Duration::from_secs(10),
        "a session whose child died answers 404"
    );
    assert_eq!(whoami(&url, &b).await, pid_b);
    let c = open_session(&url).await;
    let pid_c = whoami(&url, &c).await;
    assert!(pid_c != pid_a && pid_c != pid_b);

    // DELETE ends the child.
    let r = raw_http::request(
        "DELETE",
        &url,
        &[("Mcp-Session-Id", &b)],
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("DELETE");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eventually!(
        !pid_alive(pid_b),
        patience = Duration::from_secs(10),
        "the deleted session's child exits"
    );
    let r = post(&url, &[("Mcp-Session-Id", &b)], &tools_call(4, "whoami")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(pid_alive(pid_c));
}

#[tokio::test]
async fn a_child_that_never_answers_initialize_is_a_504_and_is_ended() {
    // `sleep` ignores its stdin: closing it does not end it, SIGTERM to its group does.
    let gw = Gw::start_stdio("sh", &["-c", "sleep 300"], &["--upstream-timeout", "2s"]).await;
    let r = post(&gw.mcp(), &[], harness::INIT).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).expect("JSON")["id"],
        1
    );
    assert_eq!(gw.admin_get("/live").await.status, 200);
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_sessions_active"),
        Some(0.0)
    );

    // In pool mode the gateway's own initialize times out the same way; /ready says so.
    let gw = Gw::start_stdio(
        "sh",
        &["-c", "sleep 300"],
        &[
            "--upstream-timeout",
            "1s",
            "--stdio-mode",
            "pool",
            "--pool-size",
            "1",
        ],
    )
    .await;
    assert_eventually!(
        gw.admin_get("/ready")
            .await
            .text()
            .contains("did not answer initialize within 1s"),
        patience = Duration::from_secs(20),
        "/ready names the silent child"
    );
    let r = post(&gw.mcp(), &[], harness::INIT).await;
    assert_eq!(r.status, 502, "{}", r.text());
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_502_and_not_ready() {
    let gw = Gw::start_stdio("/nonexistent/mcp-server", &["--flag"], &[]).await;
    let r = post(&gw.mcp(), &[], harness::INIT).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let body: Value = serde_json::from_slice(&r.body).expect("a JSON-RPC error");
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32000);
    gw.wait_log("cannot start the stdio server").await;
    assert_eventually!(
        gw.admin_get("/ready").await.text().contains("cannot start"),
        patience = Duration::from_secs(10),
        "/ready names the failure"
    );
    assert_eq!(gw.admin_get("/ready").await.status, 503);
    assert_eq!(gw.admin_get("/live").await.status, 200);

    // The same in pool mode: the pool keeps retrying with backoff (counted), /ready names why it is empty.
    let gw = Gw::start_stdio(
        "/nonexistent/mcp-server",
        &[],
        &["--stdio-mode", "pool", "--pool-size", "2"],
    )
    .await;
    let r = post(&gw.mcp(), &[], harness::INIT).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).expect("JSON")["id"],
        1
    );
    assert_eventually!(
        {
            let ready = gw.admin_get("/ready").await;
            ready.status == 503 && ready.text().contains("no stdio server is running")
        },
        patience = Duration::from_secs(15),
        "/ready says no pool child runs"
    );
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_restarts_total")
            .is_some_and(|n| n >= 2.0),
        patience = Duration::from_secs(15),
        "restarts are attempted and counted"
    );
    assert_eq!(gw.admin_get("/live").await.status, 200);

    // A child that exits at once: the same clear 502, and the gateway stays up.
    let gw = Gw::start_stdio("sh", &["-c", "echo 'boom' >&2; exit 3"], &[]).await;
    let r = post(&gw.mcp(), &[], harness::INIT).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(gw.admin_get("/live").await.status, 200);
    gw.wait_log("boom").await; // the child's stderr
}

/// Waits until `n` pool children are up.
async fn wait_pool(gw: &Gw, n: usize) {
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_children") == Some(n as f64),
        patience = Duration::from_secs(30),
        "the pool's children start"
    );
}

/// Opens `n` legacy sessions one after the other.
async fn sessions(url: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(open_session(url).await);
    }
    out
}

#[tokio::test]
async fn pool_mode_serves_the_python_sdk_client_with_streamed_progress() {
    let (node, args) = Peer::everything_stdio_command();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut flags = vec!["--stdio-mode", "pool", "--pool-size", "2"];
    flags.extend_from_slice(STDIO_READY_FLAGS);
    let gw = Gw::start_stdio(&node.to_string_lossy(), &args, &flags).await;
    gw.wait_ready(STDIO_READY_PATIENCE).await;
    let mcp = gw.mcp();
    let long = [
        mcp.as_str(),
        "--call",
        "trigger-long-running-operation",
        "--args",
        r#"{"duration": 3, "steps": 5}"#,
    ];
    let sum = [
        mcp.as_str(),
        "--call",
        "get-sum",
        "--args",
        r#"{"a": 2, "b": 3}"#,
    ];
    let (a, b) = tokio::join!(py_client(&long), py_client(&sum));
    assert_streamed_progress(&a, 4);
    assert!(b.ok, "{:?}\n{}", b.events, b.stderr);
    assert!(
        b.of("result")[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains('5')),
        "{:?}",
        b.events
    );
    assert!(
        b.of("progress").is_empty(),
        "progress crossed clients: {:?}",
        b.events
    );
    inspector_gets_the_sum(&mcp).await;
}

#[tokio::test]
async fn pool_mode_rewrites_ids_so_clients_sharing_a_child_never_see_each_other() {
    let script = peers::peers_sources().join("py2_server.py");
    let gw = Gw::start_stdio(
        &py2_python(),
        &[&script.to_string_lossy(), "stdio"],
        &["--stdio-mode", "pool", "--pool-size", "1"],
    )
    .await;
    wait_pool(&gw, 1).await;
    let url = gw.mcp();
    let s = sessions(&url, 2).await;
    // The same request id and progress token on both sessions, at once, on the one child.
    let call = |steps: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"slow_progress","arguments":{{"steps":{steps},"delay_ms":150}},"_meta":{{"progressToken":"same"}}}}}}"#
        )
    };
    let (c3, c5) = (call(3), call(5));
    let (h0, h1) = (
        [("Mcp-Session-Id", s[0].as_str())],
        [("Mcp-Session-Id", s[1].as_str())],
    );
    let (r3, r5) = tokio::join!(post(&url, &h0, &c3), post(&url, &h1, &c5));
    for (r, steps) in [(r3, 3), (r5, 5)] {
        let text = r.text();
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect();
        let progress: Vec<&Value> = events
            .iter()
            .filter(|e| e["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), steps, "{text}");
        assert!(
            progress
                .iter()
                .all(|p| p["params"]["progressToken"] == "same" && p["params"]["total"] == steps),
            "{text}"
        );
        let last = events.last().expect("a response");
        assert_eq!(last["id"], 2, "{text}");
        assert_eq!(
            last["result"]["content"][0]["text"],
            format!("done after {steps} steps"),
            "{text}"
        );
    }

    // A client's own cancellation reaches the child under the id the child knows.
    let long = r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"slow_progress","arguments":{"steps":40,"delay_ms":100},"_meta":{"progressToken":"same"}}}"#;
    let mut stream = Streaming::open(
        "POST",
        &url,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &s[0]),
        ],
        Some(long),
    )
    .await;
    assert!(stream
        .next_event(Duration::from_secs(10))
        .await
        .is_some_and(|e| e.contains("notifications/progress")));
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"changed my mind"}}"#;
    let r = post(&url, &[("Mcp-Session-Id", &s[0])], cancel).await;
    assert_eq!(r.status, 202);
    assert_eventually!(
        gw.logs().contains("Client cancellation forwarded."),
        patience = Duration::from_secs(10),
        "the cancellation is forwarded"
    );
    drop(stream);
    let (h1, c2) = ([("Mcp-Session-Id", s[1].as_str())], call(2));
    let r = post(&url, &h1, &c2).await;
    assert!(r.text().contains("done after 2 steps"), "{}", r.text());

    // A modern (2026-07-28) request: the pool speaks legacy only, so UnsupportedProtocolVersion, not a hang.
    let r = post(
        &url,
        &[("MCP-Protocol-Version", "2026-07-28")],
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let body: Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(body["error"]["code"], -32022, "{body}");
    assert_eq!(
        body["error"]["data"]["supported"][0], "2025-11-25",
        "{body}"
    );

    // What cannot be one stdio message is refused, not swallowed.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#;
    let r = post(&url, &[("Mcp-Session-Id", &s[1])], batch).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(&url, &[("Mcp-Session-Id", &s[1])], "not json").await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn pool_mode_restarts_a_crashed_child_and_its_sessions_get_404() {
    let gw = Gw::start_stdio_fake(&["--stdio-mode", "pool", "--pool-size", "2"]).await;
    let url = gw.mcp();
    wait_pool(&gw, 2).await;
    let s = sessions(&url, 3).await;
    let mut pids = Vec::new();
    for sid in &s {
        pids.push(whoami(&url, sid).await);
    }
    let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        2,
        "sessions spread over both children: {pids:?}"
    );

    kill(Pid::from_raw(pids[0] as i32), Signal::SIGKILL).expect("kill a pool child");
    assert_eventually!(
        post(&url, &[("Mcp-Session-Id", &s[0])], &tools_call(3, "whoami"))
            .await
            .status
            == 404,
        patience = Duration::from_secs(10),
        "the crashed child's session answers 404"
    );
    // Sessions on the other child are untouched.
    let other = s
        .iter()
        .zip(&pids)
        .find(|(_, p)| **p != pids[0])
        .map(|(sid, _)| sid.clone())
        .expect("a session on the other child");
    assert_ne!(whoami(&url, &other).await, pids[0]);
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_restarts_total")
            .is_some_and(|n| n >= 1.0),
        patience = Duration::from_secs(10),
        "the restart is counted"
    );
    // Re-initializing works, on live children only.
    let sid = open_session(&url).await;
    assert_ne!(whoami(&url, &sid).await, pids[0]);
}

/// Regression: in pool mode the first `/ready` could run before any child was up, and its "no pool child has
/// started yet" was cached for the whole `--ready-ttl`, so `/ready` stayed 503 long after the pool was serving.
/// A failure the gateway knows of without a probe is no longer cached.
#[tokio::test]
async fn pool_readiness_follows_the_children_without_waiting_out_the_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("go");
    // server-everything (the fake's deliberate non-JSON noise would fail the probe itself). The child waits,
    // bounded by the test (the gateway is killed on drop), until the test opens the gate.
    let (node, args) = Peer::everything_stdio_command();
    let wrapper = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; exec '{}' {}",
        gate.display(),
        node.display(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let gw = Gw::start_stdio(
        "sh",
        &["-c", &wrapper],
        &[
            "--stdio-mode",
            "pool",
            "--pool-size",
            "1",
            "--ready-ttl",
            "300s",
        ],
    )
    .await;
    let r = gw.admin_get("/ready").await;
    assert_eq!(r.status, 503, "no child can be up yet: {}", r.text());
    std::fs::write(&gate, b"").expect("open the gate");
    wait_pool(&gw, 1).await;
    // Within 30 s (a probe starts Node once), far less than the 300 s a cached failure would have lasted.
    assert_eventually!(
        gw.admin_get("/ready").await.status == 200,
        patience = Duration::from_secs(30),
        "/ready follows the pool as soon as its child is up: {}",
        gw.admin_get("/ready").await.text()
    );
}

/// What the fake child sees of its environment.
async fn child_env(gw: &Gw) -> Value {
    let url = gw.mcp();
    let sid = open_session(&url).await;
    let r = post(&url, &[("Mcp-Session-Id", &sid)], &tools_call(2, "env")).await;
    let m = message_with_id(&r.text(), 2).unwrap_or_else(|| panic!("{}", r.text()));
    let text = m["result"]["content"][0]["text"].as_str().expect("text");
    serde_json::from_str(text).expect("JSON")
}

#[tokio::test]
async fn the_childs_environment_is_explicit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("child.env");
    std::fs::write(&env_file, "# for the child\nFROM_FILE=yes\n").expect("write");
    let env_file = env_file.to_string_lossy().into_owned();
    let gw =
        Gw::start_stdio_fake(&["--env", "LIFELINE_TEST_VAR=hello", "--env-file", &env_file]).await;
    let seen = child_env(&gw).await;
    assert_eq!(seen["LIFELINE_TEST_VAR"], "hello", "{seen}");
    assert_eq!(seen["FROM_FILE"], "yes", "{seen}");
    // The test runner's CARGO_* variables reach the gateway, not the child.
    assert_eq!(seen["inherited_cargo"], false, "{seen}");
    assert!(!gw.logs().contains("hello"), "env values are never logged");

    let gw = Gw::start_stdio_fake(&["--inherit-env"]).await;
    assert_eq!(child_env(&gw).await["inherited_cargo"], true);
}

#[tokio::test]
async fn pool_mode_serves_modern_clients_from_a_modern_child() {
    let script = peers::peers_sources().join("py2_server.py");
    let gw = Gw::start_stdio(
        &py2_python(),
        &[&script.to_string_lossy(), "stdio"],
        &["--stdio-mode", "pool", "--pool-size", "2"],
    )
    .await;
    wait_pool(&gw, 2).await;
    gw.wait_log("\"era\":\"modern\"").await;
    let mcp = gw.mcp();
    let modern = [
        mcp.as_str(),
        "--mode",
        "2026-07-28",
        "--call",
        "slow_progress",
        "--args",
        r#"{"steps": 5, "delay_ms": 300}"#,
    ];
    let legacy = [
        mcp.as_str(),
        "--mode",
        "legacy",
        "--call",
        "echo",
        "--args",
        r#"{"message": "legacy through the pool"}"#,
    ];
    let (m, l) = tokio::join!(py_client(&modern), py_client(&legacy));
    assert_eq!(
        m.of("connected")[0]["protocol_version"],
        "2026-07-28",
        "{:?}",
        m.events
    );
    assert_streamed_progress(&m, 4);
    assert_eq!(
        l.of("connected")[0]["protocol_version"],
        "2025-11-25",
        "{:?}",
        l.events
    );
    assert_eq!(
        l.of("result")[0]["text"],
        "legacy through the pool",
        "{:?}",
        l.events
    );
}

// Regression: a modern server slower to start than the pool's 2 s `server/discover` wait was sent `initialize`,
// refused it (its connection already serves 2026-07-28) and was restarted, again and again while the machine
// stayed slow. Whichever answer comes first now decides, as in the probe engine.
#[tokio::test]
async fn a_modern_pool_child_slow_to_start_is_taken_as_modern() {
    let script = peers::peers_sources().join("py2_server.py");
    let slow = format!(
        "sleep 3; exec {} {} stdio",
        py2_python(),
        script.to_string_lossy()
    );
    let gw = Gw::start_stdio(
        "sh",
        &["-c", &slow],
        &["--stdio-mode", "pool", "--pool-size", "2"],
    )
    .await;
    wait_pool(&gw, 2).await;
    gw.wait_log("\"era\":\"modern\"").await;
    assert!(
        !gw.logs().contains("Pool child failed to start"),
        "{}",
        gw.logs()
    );
}

#[tokio::test]
async fn max_sessions_bounds_children_and_idle_sessions_end_their_child() {
    let gw = Gw::start_stdio_fake(&["--max-sessions", "1", "--session-idle-ttl", "1s"]).await;
    let url = gw.mcp();
    let sid = open_session(&url).await;
    let pid = whoami(&url, &sid).await;
    // A second session would be a second child: refused while the first lives.
    let r = post(&url, &[], harness::INIT).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // Idle beyond the TTL: the gateway ends the session and shuts its child down.
    assert_eventually!(
        !pid_alive(pid),
        patience = Duration::from_secs(15),
        "the idle session's child is shut down"
    );
    let r = post(&url, &[("Mcp-Session-Id", &sid)], &tools_call(3, "whoami")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_children") == Some(0.0),
        patience = Duration::from_secs(5),
        "no child left"
    );
    let sid = open_session(&url).await;
    assert!(whoami(&url, &sid).await != pid);
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_children"),
        Some(1.0)
    );
}
