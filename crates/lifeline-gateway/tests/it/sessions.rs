//! Sessions with no shared state (issue 15): sealed `Mcp-Session-Id` tokens (`--session-key-file`) and
//! transparent recovery, against real peers on loopback (three Python SDK 2.x stateful replicas; the Python SDK
//! and TypeScript SDK clients holding live sessions; HAProxy round-robin in front of two gateway replicas).
//! Needs `scripts/install-peers.sh` (and HAProxy, from the `--apt` list of `scripts/test.sh`).

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{self, raw_http, Peer, PyServer};
use lifeline_testkit::process::{free_port, ChildGuard};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::harness::{open_session, GatewayUnderTest, TestGateway as Gw};
use crate::pools::{kill_9, three_stateful_replicas};

/// Generous: three Python replicas starting at once on a loaded 2-core machine.
const READY_PATIENCE: Duration = Duration::from_secs(60);
/// One client step (a call through the gateway, a recovery included) on a loaded machine.
const STEP_PATIENCE: Duration = Duration::from_secs(30);

const KEY_A: &str = "5e0f3a8c1b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";
const KEY_B: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// A key file with `keys`, one a line.
fn key_file(dir: &tempfile::TempDir, name: &str, keys: &[&str]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, keys.join("\n") + "\n").expect("write the key file");
    path.to_string_lossy().into_owned()
}

/// A `tools/call` of `add` on session `sid`: the HTTP status and the body; status 0 when the answer broke
/// off (its SSE stream was cut when the replica died: headers were relayed already).
async fn call_add(mcp: &str, sid: &str) -> (u16, String) {
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}"#;
    let headers = [
        ("Mcp-Session-Id", sid),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    match raw_http::post_json(mcp, &headers, body).await {
        Ok(r) => (r.status, r.text()),
        Err(e) => (0, e.to_string()),
    }
}

/// How many times each replica ran a tool (`GET /debug/calls` of the Python peer, summed over tools).
async fn tool_runs(replicas: &[Peer]) -> Vec<u64> {
    let mut out = Vec::new();
    for r in replicas {
        let url = format!("{}/debug/calls", r.base);
        let resp = raw_http::request("GET", &url, &[], None, Duration::from_secs(5))
            .await
            .expect("a Python replica counts its tool calls");
        let json: Value = serde_json::from_slice(&resp.body).expect("JSON");
        out.push(
            json.as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum()),
        );
    }
    out
}

/// The one replica whose tool runs went up between `before` and `after`.
fn the_one_that_ran(before: &[u64], after: &[u64]) -> usize {
    let grown: Vec<usize> = (0..before.len())
        .filter(|i| after[*i] > before[*i])
        .collect();
    assert_eq!(
        grown.len(),
        1,
        "exactly one replica ran it: {before:?} → {after:?}"
    );
    grown[0]
}

/// A live SDK client session (`tests/peers/clients/session_client.{py,mjs}`): it calls `add` once on start and
/// once more per [`LiveClient::call`], printing one JSON event a line.
struct LiveClient {
    guard: ChildGuard,
    stdin: std::process::ChildStdin,
    events: mpsc::UnboundedReceiver<Value>,
}

impl LiveClient {
    fn python(url: &str) -> LiveClient {
        let mut cmd = Command::new(peers::peers_dir().join("py2/bin/python"));
        cmd.arg(peers::peers_sources().join("clients/session_client.py"))
            .arg(url);
        LiveClient::spawn("python session client", cmd)
    }

    fn typescript(url: &str) -> LiveClient {
        let mut cmd = Command::new(peers::node22());
        cmd.arg(peers::peers_sources().join("clients/session_client.mjs"))
            .arg(url)
            .env(
                "LIFELINE_NPM_MODULES",
                peers::peers_dir().join("npm/node_modules"),
            );
        LiveClient::spawn("typescript session client", cmd)
    }

    fn spawn(name: &str, cmd: Command) -> LiveClient {
        let mut guard = ChildGuard::spawn_piped(name, cmd).expect("the client starts");
        let stdin = guard.take_stdin().expect("piped stdin");
        let stdout = guard.take_stdout().expect("piped stdout");
        let (tx, events) = mpsc::unbounded_channel();
        // Bounded by the child: the thread ends at its EOF (the guard kills the child on drop).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        LiveClient {
            guard,
            stdin,
            events,
        }
    }

    /// The next event other than `connected`.
    async fn next(&mut self) -> Value {
        loop {
            let ev = tokio::time::timeout(STEP_PATIENCE, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: no event in time\n{}",
                        self.guard.name(),
                        self.guard.output_tail()
                    )
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{}: exited\n{}",
                        self.guard.name(),
                        self.guard.output_tail()
                    )
                });
            if ev["event"] != "connected" {
                return ev;
            }
        }
    }

    /// One more call; returns its event.
    async fn call(&mut self) -> Value {
        self.stdin
            .write_all(b"call\n")
            .expect("the client reads stdin");
        self.stdin.flush().expect("flush");
        self.next().await
    }
}

#[tokio::test]
async fn sealed_sessions_survive_a_kill_9_under_load() {
    let replicas = three_stateful_replicas().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let keys = key_file(&dir, "keys", &[KEY_A]);
    let mut args: Vec<&str> = Vec::new();
    for r in &replicas {
        args.extend(["--upstream", r.url.as_str()]);
    }
    args.extend([
        "--session-key-file",
        &keys,
        "--upstream-health-interval",
        "300ms",
        "--upstream-consecutive-errors",
        "2",
        "--ready-timeout",
        "10s",
    ]);
    let gw = Gw::start_with(&args).await;
    gw.wait_ready(READY_PATIENCE).await;

    // The live SDK sessions, and the replica each landed on (the one whose tool ran).
    let before = tool_runs(&replicas).await;
    let mut py = LiveClient::python(&gw.mcp());
    let first = py.next().await;
    assert_eq!(first["event"], "result", "{first}");
    let mid = tool_runs(&replicas).await;
    let py_home = the_one_that_ran(&before, &mid);
    let mut ts = LiveClient::typescript(&gw.mcp());
    let first = ts.next().await;
    assert_eq!(first["event"], "result", "{first}");
    let ts_sid = first["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    let ts_home = the_one_that_ran(&mid, &tool_runs(&replicas).await);

    // 50 sessions with sealed ids, then load on all of them.
    let mut sids = Vec::new();
    for _ in 0..50 {
        let sid = open_session(&gw.mcp()).await;
        assert!(
            sid.len() > 60,
            "a sealed token, not the upstream's id: {sid}"
        );
        sids.push(sid);
    }
    let started = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for sid in sids.clone() {
        let (mcp, started, killed) = (gw.mcp(), Arc::clone(&started), Arc::clone(&killed));
        load.push(tokio::spawn(async move {
            // (status, started after the kill was over)
            let mut seen: Vec<(u16, bool)> = Vec::new();
            let mut after = 0;
            for i in 0..400 {
                let late = killed.load(Ordering::Acquire);
                let (status, body) = call_add(&mcp, &sid).await;
                assert_ne!(status, 404, "session {sid} lost: {body}");
                seen.push((status, late));
                if i == 0 {
                    started.fetch_add(1, Ordering::AcqRel);
                }
                if late {
                    after += 1;
                    if after == 3 {
                        break;
                    }
                }
            }
            seen
        }));
    }
    assert_eventually!(
        started.load(Ordering::Acquire) == sids.len(),
        patience = STEP_PATIENCE,
        "every session made a call"
    );
    let mut dead = vec![py_home];
    if ts_home != py_home {
        dead.push(ts_home);
    }
    for i in &dead {
        kill_9(&replicas[*i]);
    }
    for i in &dead {
        let addr = replicas[*i].addr;
        assert_eventually!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            patience = STEP_PATIENCE,
            "the killed replica refuses connections"
        );
    }
    killed.store(true, Ordering::Release);
    let mut in_flight_errors = 0;
    let mut calls = 0;
    for task in load {
        let seen = task.await.expect("a load task");
        calls += seen.len();
        for (status, late) in seen {
            if late {
                assert_eq!(status, 200, "a call after the kill fails");
            } else if status != 200 {
                // 502/504: the gateway's JSON-RPC error with the id; 0: an SSE answer cut mid-stream.
                assert!(
                    matches!(status, 0 | 502 | 504),
                    "in flight at the kill: {status}"
                );
                in_flight_errors += 1;
            }
        }
    }
    eprintln!("kill -9 of {} replica(s) under load: {calls} calls, {in_flight_errors} in flight at the kill answered with a JSON-RPC error, 0 sessions lost", dead.len());

    // The live SDK sessions carry on, without re-initializing (the TS transport's id is unchanged).
    let ev = py.call().await;
    assert_eq!(
        ev["event"], "result",
        "the Python SDK session carries on: {ev}"
    );
    let ev = ts.call().await;
    assert_eq!(
        ev["event"], "result",
        "the TypeScript SDK session carries on: {ev}"
    );
    assert_eq!(
        ev["session_id"],
        ts_sid.as_str(),
        "the client's id never changes"
    );
    let logs = gw.logs();
    let recovered = logs
        .matches("Session recovered on another endpoint.")
        .count();
    eprintln!("{recovered} sessions recovered");
    assert!(
        recovered >= 5,
        "the dead replicas' sessions were recovered: {recovered}"
    );
}

/// HAProxy (`balance roundrobin`, no stickiness) in front of `gateways`; returns its guard and the MCP URL.
fn haproxy_round_robin(dir: &tempfile::TempDir, gateways: &[&Gw]) -> (ChildGuard, String) {
    let port = free_port();
    let mut cfg = format!(
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\
         frontend mcp\n  bind 127.0.0.1:{port}\n  default_backend gateways\n\
         backend gateways\n  balance roundrobin\n  http-reuse never\n"
    );
    for (i, g) in gateways.iter().enumerate() {
        let addr = g.base.trim_start_matches("http://");
        cfg.push_str(&format!("  server g{i} {addr}\n"));
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write haproxy.cfg");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(&path);
    let guard = ChildGuard::spawn("haproxy", cmd).expect("haproxy (scripts/test.sh installs it)");
    (guard, format!("http://127.0.0.1:{port}/mcp"))
}

/// `lifeline_gateway_requests_total` of every method and status, summed (0 when absent).
fn requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("lifeline_gateway_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_gateway_replicas_share_sessions_and_keys_rotate() {
    let (a, b) = tokio::join!(
        Peer::python(PyServer::Stateful),
        Peer::python(PyServer::Stateful)
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let old = key_file(&dir, "old", &[KEY_A]);
    let rotated = key_file(&dir, "rotated", &[KEY_B, KEY_A]);
    let dropped = key_file(&dir, "dropped", &[KEY_B]);
    let pool = ["--upstream", a.url.as_str(), "--upstream", b.url.as_str()];
    let with = |keys: &str| -> Vec<String> {
        pool.iter()
            .map(|s| s.to_string())
            .chain(["--session-key-file".into(), keys.into()])
            .collect()
    };
    let args = with(&old);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (g1, g2) = tokio::join!(Gw::start_with(&args), Gw::start_with(&args));
    g1.wait_ready(READY_PATIENCE).await;
    g2.wait_ready(READY_PATIENCE).await;
    let (_lb, mcp) = haproxy_round_robin(&dir, &[&g1, &g2]);
    assert_eventually!(
        std::net::TcpStream::connect(mcp.trim_start_matches("http://").trim_end_matches("/mcp"))
            .is_ok(),
        patience = STEP_PATIENCE,
        "HAProxy listens"
    );

    // One session, its requests alternating between the gateway replicas (round-robin, no affinity).
    let sid = open_session(&mcp).await;
    let (r1, r2) = (requests(&g1.metrics().await), requests(&g2.metrics().await));
    for i in 0..10 {
        let (status, body) = call_add(&mcp, &sid).await;
        assert_eq!(status, 200, "call {i}: {body}");
    }
    let (d1, d2) = (
        requests(&g1.metrics().await) - r1,
        requests(&g2.metrics().await) - r2,
    );
    assert!(
        d1 >= 4.0 && d2 >= 4.0,
        "both gateways served the session: {d1} and {d2}"
    );

    // A token no key opens is a 404 (the client re-initializes).
    let (status, _) = call_add(&g1.mcp(), "bm90IGEgdG9rZW4").await;
    assert_eq!(status, 404);

    // Rotation: a gateway with the new key first and the old one second still opens the old session.
    let args = with(&rotated);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let g3 = Gw::start_with(&args).await;
    g3.wait_ready(READY_PATIENCE).await;
    let (status, body) = call_add(&g3.mcp(), &sid).await;
    assert_eq!(
        status, 200,
        "the old session under the rotated keys: {body}"
    );
    let fresh = open_session(&g3.mcp()).await;
    let (status, _) = call_add(&g1.mcp(), &fresh).await;
    assert_eq!(
        status, 404,
        "a gateway without the new key cannot open its tokens"
    );
    // Once the old key leaves the file, its sessions end (404: the client re-initializes).
    let args = with(&dropped);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let g4 = Gw::start_with(&args).await;
    let (status, _) = call_add(&g4.mcp(), &sid).await;
    assert_eq!(status, 404);
    let (status, body) = call_add(&g4.mcp(), &fresh).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn sessions_recover_while_the_replicas_sidecars_drain_one_after_another() {
    let replicas = three_stateful_replicas().await;
    // Each replica behind its own sidecar gateway, as the kit deploys it; the edge pools the sidecars.
    let mut sidecars = Vec::new();
    for r in &replicas {
        sidecars.push(Gw::start_with(&["--upstream", r.url.as_str()]).await);
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let keys = key_file(&dir, "keys", &[KEY_A]);
    let urls: Vec<String> = sidecars.iter().map(Gw::mcp).collect();
    let mut args: Vec<&str> = Vec::new();
    for u in &urls {
        args.extend(["--upstream", u.as_str()]);
    }
    args.extend([
        "--session-key-file",
        &keys,
        "--upstream-health-interval",
        "300ms",
    ]);
    let edge = Gw::start_with(&args).await;
    edge.wait_ready(READY_PATIENCE).await;
    let mut sids = Vec::new();
    for _ in 0..20 {
        sids.push(open_session(&edge.mcp()).await);
    }
    // Drain two of the three sidecars in turn (their idle sessions end: 404 upstream; new sessions: 503).
    for s in &sidecars[..2] {
        s.advance(lifeline_core::Phase::Refusing);
        for sid in &sids {
            let (status, body) = call_add(&edge.mcp(), sid).await;
            assert_eq!(status, 200, "session {sid} survives the drain: {body}");
        }
    }
    let recovered = edge
        .logs()
        .matches("Session recovered on another endpoint.")
        .count();
    // About two thirds of the sessions lived on the drained sidecars; fewer than 5 would mean none moved.
    assert!(
        recovered >= 5,
        "sessions recovered from the drained sidecars: {recovered}"
    );
}
