//! Sessions with no shared state (issue 15): sealed `Mcp-Session-Id` tokens (`--session-key-file`) and
//! transparent recovery, against real peers on loopback (three Python SDK 2.x stateful replicas, or three
//! server-everything replicas; the Python SDK and TypeScript SDK clients holding live sessions, the Python SDK
//! client and inspector-cli listing and calling; HAProxy round-robin in front of two gateway replicas; a
//! rolling restart of three replicas each behind its own sidecar gateway, then the edge's own drain), with
//! `lifeline_gateway_session_recoveries_total` checked against what the clients saw.
//! Needs `scripts/install-peers.sh` (and HAProxy, from the `--apt` list of `scripts/test.sh`).

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::{self, raw_http, EverythingTransport, Peer, PyServer};
use lifeline_testkit::process::{free_port, ChildGuard};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::harness::{
    assert_listed_everything_tools, inspector_lists_and_calls, metric, open_session, py_client,
    GatewayUnderTest, TestGateway as Gw, EVERYTHING_GET_SUM, INIT,
};
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

/// `tools/call` of the Python peer's `add`.
const ADD: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}"#;
/// `tools/call` of server-everything's `get-sum`.
const GET_SUM: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":2,"b":3}}}"#;

/// A `tools/call` of `add` on session `sid`: the HTTP status and the body (see [`call`]).
async fn call_add(mcp: &str, sid: &str) -> (u16, String) {
    call(mcp, sid, ADD).await
}

/// POSTs `body` on session `sid`: the HTTP status and the body; status 0 when the answer broke off (its SSE
/// stream was cut when the replica died: headers were relayed already).
async fn call(mcp: &str, sid: &str, body: &str) -> (u16, String) {
    let headers = [
        ("Mcp-Session-Id", sid),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    match raw_http::post_json(mcp, &headers, body).await {
        Ok(r) => (r.status, r.text()),
        Err(e) => (0, e.to_string()),
    }
}

/// `lifeline_gateway_session_recoveries_total{result="RESULT"}` (0 when absent).
fn recoveries(metrics: &str, result: &str) -> f64 {
    metric(
        metrics,
        &format!("lifeline_gateway_session_recoveries_total{{result=\"{result}\"}}"),
    )
    .unwrap_or(0.0)
}

/// What a load of sessions saw: every status, whether it started after the event, and the sessions lost.
#[derive(Debug, Default)]
struct Seen {
    calls: usize,
    /// Non-200 answers to calls started before the event was over (in flight at a kill or a drain): 0 (an
    /// SSE answer cut), 502, 504.
    in_flight_errors: usize,
    /// Non-200 answers to calls started after it.
    late_errors: usize,
    /// The gateway's 502/504 among them (its JSON-RPC error with the id).
    gateway_errors: usize,
}

/// Runs `body` on every session of `sids` back to back (each at most 2000 calls) until `done` is set, then
/// three more each. Panics on a 404 (a session lost: its client would re-initialize).
fn load(mcp: &str, sids: &[String], body: &'static str, done: &Arc<AtomicBool>) -> Load {
    let started = Arc::new(AtomicUsize::new(0));
    let tasks = sids
        .iter()
        .map(|sid| {
            let (mcp, sid) = (mcp.to_owned(), sid.clone());
            let (started, done) = (Arc::clone(&started), Arc::clone(done));
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut after = 0;
                for i in 0..2000 {
                    let late = done.load(Ordering::Acquire);
                    let (status, text) = call(&mcp, &sid, body).await;
                    assert_ne!(status, 404, "session {sid} lost: {text}");
                    seen.calls += 1;
                    if i == 0 {
                        started.fetch_add(1, Ordering::AcqRel);
                    }
                    if status != 200 {
                        assert!(matches!(status, 0 | 502 | 504), "{status}: {text}");
                        seen.gateway_errors += usize::from(status != 0);
                        if late {
                            seen.late_errors += 1;
                        } else {
                            seen.in_flight_errors += 1;
                        }
                    }
                    if late {
                        after += 1;
                        if after == 3 {
                            break;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    Load { started, tasks }
}

/// A running [`load`].
struct Load {
    started: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Load {
    /// Waits (bounded) until every session made its first call.
    async fn running(&self) {
        let n = self.tasks.len();
        assert_eventually!(
            self.started.load(Ordering::Acquire) == n,
            patience = STEP_PATIENCE,
            "every session made a call"
        );
    }

    /// `kill -9` of `victims` under this load: once they refuse connections, sets `killed` (the load's `done`
    /// flag), waits for every session's last calls and asserts that every call started after the kill succeeded.
    async fn kill_9(self, victims: &[&Peer], killed: &AtomicBool) -> Seen {
        for v in victims {
            kill_9(v);
        }
        for v in victims {
            let addr = v.addr;
            assert_eventually!(
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
                patience = STEP_PATIENCE,
                "the killed replica refuses connections"
            );
        }
        killed.store(true, Ordering::Release);
        let seen = self.finish().await;
        assert_eq!(
            seen.late_errors, 0,
            "a call after the kill failed: {seen:?}"
        );
        seen
    }

    /// Waits for every session's last calls (set the `done` flag first); the totals.
    async fn finish(self) -> Seen {
        let mut total = Seen::default();
        for task in self.tasks {
            let s = tokio::time::timeout(STEP_PATIENCE * 4, task)
                .await
                .expect("a load task ends")
                .expect("a load task");
            total.calls += s.calls;
            total.in_flight_errors += s.in_flight_errors;
            total.late_errors += s.late_errors;
            total.gateway_errors += s.gateway_errors;
        }
        total
    }
}

/// A gateway pooling the MCP endpoints `urls` with sealed ids (a key file in the returned directory, kept
/// alive by the caller) and quick health decisions (probes every 300 ms, ejection after 2 failures in a row),
/// ready.
async fn sealed_pool(urls: &[&str]) -> (Gw, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let keys = key_file(&dir, "keys", &[KEY_A]);
    let mut args: Vec<&str> = Vec::new();
    for u in urls {
        args.extend(["--upstream", u]);
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
    (gw, dir)
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
    let urls: Vec<&str> = replicas.iter().map(|r| r.url.as_str()).collect();
    let (gw, _keys) = sealed_pool(&urls).await;

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
    let killed = Arc::new(AtomicBool::new(false));
    let running = load(&gw.mcp(), &sids, ADD, &killed);
    running.running().await;
    let mut dead = vec![py_home];
    if ts_home != py_home {
        dead.push(ts_home);
    }
    let victims: Vec<&Peer> = dead.iter().map(|i| &replicas[*i]).collect();
    let seen = running.kill_9(&victims, &killed).await;
    let (calls, in_flight_errors) = (seen.calls, seen.in_flight_errors);
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
    let m = gw.metrics().await;
    assert_eq!(recoveries(&m, "recovered"), recovered as f64, "{m}");
    assert_eq!(recoveries(&m, "failed"), 0.0, "{m}");
}

#[tokio::test]
async fn server_everything_replicas_share_50_sessions_and_survive_a_kill_9() {
    let (a, b, c) = tokio::join!(
        Peer::everything(EverythingTransport::StreamableHttp),
        Peer::everything(EverythingTransport::StreamableHttp),
        Peer::everything(EverythingTransport::StreamableHttp)
    );
    let replicas = [a, b, c];
    let urls: Vec<&str> = replicas.iter().map(|r| r.url.as_str()).collect();
    let (gw, _keys) = sealed_pool(&urls).await;
    let mcp = gw.mcp();

    // The Python SDK client lists and calls tools through the pool.
    let run = py_client(&[
        &mcp,
        "--mode",
        "legacy",
        "--call",
        "get-sum",
        "--args",
        r#"{"a": 2, "b": 40}"#,
    ])
    .await;
    assert!(run.ok, "{:?} {}", run.events, run.stderr);
    assert_listed_everything_tools(&run);
    assert!(
        run.of("result")[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("42")),
        "{:?}",
        run.events
    );

    // 50 sealed sessions, spread over the replicas (each `initialize` is balanced).
    let sent = |m: &str| -> Vec<f64> {
        replicas
            .iter()
            .map(|r| {
                metric(
                    m,
                    &format!(
                        "lifeline_gateway_upstream_endpoint_requests_total{{endpoint=\"{}\"}}",
                        r.url
                    ),
                )
                .unwrap_or(0.0)
            })
            .collect()
    };
    let before = sent(&gw.metrics().await);
    let mut sids = Vec::new();
    for _ in 0..50 {
        sids.push(open_session(&mcp).await);
    }
    let after = sent(&gw.metrics().await);
    // Two requests a session (initialize, initialized): about 33 each; fewer than 10 is a broken balancer.
    let spread: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(spread.iter().all(|n| *n >= 10.0), "spread: {spread:?}");

    // kill -9 of one replica under load on the 50 sessions: every session carries on, none re-initializes.
    let killed = Arc::new(AtomicBool::new(false));
    let running = load(&mcp, &sids, GET_SUM, &killed);
    running.running().await;
    let seen = running.kill_9(&[&replicas[0]], &killed).await;
    let m = gw.metrics().await;
    let recovered = recoveries(&m, "recovered");
    eprintln!(
        "server-everything, kill -9 of 1 of 3 under load: {seen:?}, {recovered} sessions recovered, 0 lost"
    );
    // About a third of the 50 lived on the killed replica.
    assert!(recovered >= 5.0, "{m}");
    assert_eq!(recoveries(&m, "failed"), 0.0, "{m}");
    assert_eq!(
        recoveries(&m, "in_flight_error"),
        seen.gateway_errors as f64,
        "every JSON-RPC error the gateway answered in flight is counted: {seen:?}\n{m}"
    );

    // inspector-cli lists and calls through the pool with one replica gone.
    inspector_lists_and_calls(&mcp, EVERYTHING_GET_SUM).await;
}

/// Regression (issue 15): server-everything answers a session id it does not know, a restarted replica's old
/// sessions included, with 400 and a JSON-RPC error instead of the spec's 404 (2025-11-25 `basic/transports`
/// §Session Management 3), and the recovery took only a 404: every session that lived on the restarted replica
/// was lost (its client got the 400). Now the narrow 400 is recovered like a 404 (`sessions/recover.rs`).
#[tokio::test]
async fn a_restarted_server_everything_replica_answers_400_and_its_sessions_recover() {
    let (a, b) = tokio::join!(
        Peer::everything(EverythingTransport::StreamableHttp),
        Peer::everything(EverythingTransport::StreamableHttp)
    );
    let (url_a, port_a) = (a.url.clone(), a.addr.port());
    let (gw, _keys) = sealed_pool(&[&a.url, &b.url]).await;
    let mcp = gw.mcp();
    let on_a = |m: &str| {
        metric(
            m,
            &format!("lifeline_gateway_upstream_endpoint_requests_total{{endpoint=\"{url_a}\"}}"),
        )
        .unwrap_or(0.0)
    };
    // Sessions until at least two live on the replica to restart (bounded; each initialize is balanced).
    let mut sids = Vec::new();
    for _ in 0..40 {
        sids.push(open_session(&mcp).await);
        if sids.len() >= 6 && on_a(&gw.metrics().await) >= 4.0 {
            break;
        }
    }
    assert!(on_a(&gw.metrics().await) >= 4.0, "no sessions on {url_a}");
    for sid in &sids {
        let (status, body) = call(&mcp, sid, GET_SUM).await;
        assert_eq!(status, 200, "{body}");
    }

    // The replica restarts on its port: it has forgotten every session, and says so with a 400.
    drop(a);
    let a = Peer::everything_on(EverythingTransport::StreamableHttp, port_a).await;
    assert_eq!(a.url, url_a);
    let direct = call(&a.url, "an-old-session-id", GET_SUM).await;
    assert_eq!(
        direct.0, 400,
        "server-everything's answer changed: {}",
        direct.1
    );
    assert!(direct.1.contains("No valid session ID"), "{}", direct.1);

    // Every session carries on: the ones that lived on the restarted replica recover, none is lost.
    for sid in &sids {
        let (status, body) = call(&mcp, sid, GET_SUM).await;
        assert_eq!(status, 200, "session {sid} after the restart: {body}");
        assert!(body.contains("5"), "{body}");
    }
    let m = gw.metrics().await;
    assert!(recoveries(&m, "recovered") >= 2.0, "{m}");
    assert_eq!(recoveries(&m, "failed"), 0.0, "{m}");
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

/// A replica as the kit deploys it: the server and its own sidecar gateway.
struct Replica {
    server: Peer,
    sidecar: Gw,
}

impl Replica {
    /// A new replica whose sidecar listens on `port` (0: any; a restarted replica takes its old port).
    async fn start(port: u16) -> Replica {
        let server = Peer::python(PyServer::Stateful).await;
        let listen = format!("127.0.0.1:{port}");
        let sidecar =
            Gw::start_with(&["--upstream", server.url.as_str(), "--listen", &listen]).await;
        sidecar.wait_ready(READY_PATIENCE).await;
        Replica { server, sidecar }
    }

    /// The sidecar's drain as a SIGTERM walks it (not ready, then refusing: idle sessions ended with 404,
    /// new ones refused with 503), until its sessions are gone (bounded); then the pod goes away.
    async fn drain_and_stop(self) {
        self.sidecar.advance(lifeline_core::Phase::Draining);
        self.sidecar.advance(lifeline_core::Phase::Refusing);
        assert_eventually!(
            metric(
                &self.sidecar.metrics().await,
                "lifeline_gateway_sessions_active"
            ) == Some(0.0),
            patience = STEP_PATIENCE,
            "the draining sidecar ended its sessions"
        );
        drop(self.sidecar);
        drop(self.server);
    }
}

#[tokio::test]
async fn a_rolling_restart_of_every_replica_behind_its_sidecar_loses_no_session() {
    // Three replicas, each behind its own sidecar gateway, pooled by an edge gateway with a key file: the kit's
    // edge → sidecar → server.
    let (a, b, c) = tokio::join!(Replica::start(0), Replica::start(0), Replica::start(0));
    let mut replicas = [Some(a), Some(b), Some(c)];
    let ports: Vec<u16> = replicas
        .iter()
        .flatten()
        .map(|r| {
            let (_, port) = r.sidecar.base.rsplit_once(':').expect("host:port");
            port.parse().expect("a port")
        })
        .collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/mcp"))
        .collect();
    // The default ejection (30 s) stays: a restarted replica's passing probe ends it.
    let (edge, _keys) = sealed_pool(&urls.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut sids = Vec::new();
    for _ in 0..20 {
        sids.push(open_session(&edge.mcp()).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let running = load(&edge.mcp(), &sids, ADD, &done);
    running.running().await;
    // Roll every replica in turn: drain it through its sidecar, then a new one on the same port.
    for (i, port) in ports.iter().enumerate() {
        let old = replicas[i].take().expect("a replica");
        old.drain_and_stop().await;
        replicas[i] = Some(Replica::start(*port).await);
        let url = &urls[i];
        assert_eventually!(
            metric(
                &edge.metrics().await,
                &format!("lifeline_gateway_upstream_endpoint_healthy{{endpoint=\"{url}\"}}")
            ) == Some(1.0),
            patience = READY_PATIENCE,
            "the edge takes the new replica in"
        );
    }
    done.store(true, Ordering::Release);
    let seen = running.finish().await;
    let m = edge.metrics().await;
    let recovered = recoveries(&m, "recovered");
    eprintln!("rolling restart of 3 replicas under load: {seen:?}, {recovered} sessions recovered, 0 lost");
    assert_eq!(seen.late_errors, 0, "{seen:?}");
    // Every session lived on a rolled replica at least once: each recovered at least once.
    assert!(recovered >= sids.len() as f64, "{m}");
    assert_eq!(recoveries(&m, "failed"), 0.0, "{m}");
    // The edge tier drains without losing a session either: a draining edge keeps serving sealed sessions
    // (any replica may), and refuses only new ones (503 + Retry-After) while its /ready sends the load balancer
    // elsewhere.
    edge.advance(lifeline_core::Phase::Draining);
    edge.advance(lifeline_core::Phase::Refusing);
    for sid in &sids {
        let (status, body) = call_add(&edge.mcp(), sid).await;
        assert_eq!(status, 200, "a draining edge serves session {sid}: {body}");
    }
    let init = raw_http::post_json(&edge.mcp(), &[], INIT)
        .await
        .expect("the draining edge answers");
    assert_eq!(init.status, 503, "{}", init.text());
    assert_eq!(init.header("retry-after"), Some("1"));
    assert_eq!(edge.admin_get("/ready").await.status, 503);
}
