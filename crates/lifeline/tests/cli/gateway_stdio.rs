//! `lifeline gateway -- CMD` where the real process matters: SIGTERM with a call in flight (exit 0), SIGHUP
//! reloading the children (a new generation) and SIGUSR1 forwarded to them, PID 1 under `unshare` reaping orphans, and the gateway process's own children and
//! memory (the warm spare, a 17 MiB line, a stdout flood, a client leaving mid-initialize), with the testkit's
//! misbehaving stdio fake. The in-process stdio tests (real peers, pool mode, errors) are in
//! `crates/lifeline-gateway/tests/it/stdio.rs`. Needs `scripts/install-peers.sh`.

use crate::gateway_harness as harness;

use std::time::Duration;

use harness::{
    message_with_id, metric, open_session, pid_alive, post, py2_python, tools_call, whoami,
    GatewayUnderTest, Gw, Streaming, STDIO_READY_FLAGS, STDIO_READY_PATIENCE,
};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::fakes::stdio_fake_server;
use lifeline_testkit::peers;
use nix::sys::signal::Signal;

/// A process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .inspect(|mib| eprintln!("peak RSS of pid {pid}: {mib:.1} MiB"))
        .expect("VmHWM")
}

#[tokio::test]
async fn overlong_lines_and_silent_children_give_clear_errors() {
    let gw = Gw::start_stdio_fake(&["--upstream-timeout", "2s"]).await;
    let url = gw.mcp();
    let sid = open_session(&url).await;
    let pid = whoami(&url, &sid).await;

    // A 17 MiB stdout line (the limit is 16 MiB): the child is ended, the request gets a JSON-RPC error, the
    // session 404s, and the gateway stays up.
    let r = post(&url, &[("Mcp-Session-Id", &sid)], &tools_call(5, "flood")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = message_with_id(&r.text(), 5).unwrap_or_else(|| panic!("{}", r.text()));
    assert_eq!(m["error"]["code"], -32000, "{m}");
    gw.wait_log("overlong stdout line").await;
    assert_eventually!(
        !pid_alive(pid),
        patience = Duration::from_secs(10),
        "the flooding child is gone"
    );
    let r = post(&url, &[("Mcp-Session-Id", &sid)], &tools_call(6, "whoami")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Bounded memory: at most one 16 MiB line buffer (grown by doubling) on top of the gateway's own footprint.
    let peak = peak_rss_mib(gw.guard.pid());
    assert!(peak < 128.0, "peak RSS {peak} MiB");

    // A client that leaves while its call is unanswered: the child is told to cancel it, and the session
    // keeps working.
    let sid = open_session(&url).await;
    let stream = Streaming::open(
        "POST",
        &url,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
        ],
        Some(&tools_call(7, "hang")),
    )
    .await;
    assert_eq!(stream.status, 200);
    drop(stream);
    assert_eventually!(
        gw.logs()
            .contains("Client left mid-request; cancelling it."),
        patience = Duration::from_secs(10),
        "the gateway cancels the abandoned request"
    );
    assert!(whoami(&url, &sid).await > 0, "the session still works");
    assert_eq!(gw.admin_get("/live").await.status, 200);
}

#[tokio::test]
async fn sigterm_with_a_call_in_flight_completes_it_and_exits_0() {
    let script = peers::peers_sources().join("py2_server.py");
    let mut gw = Gw::start_stdio(
        &py2_python(),
        &[&script.to_string_lossy(), "stdio"],
        &["--drain-delay", "200ms", "--drain-timeout", "15s"],
    )
    .await;
    let url = gw.mcp();
    let sid = open_session(&url).await;
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow_progress","arguments":{"steps":8,"delay_ms":250},"_meta":{"progressToken":"t9"}}}"#;
    let mut stream = Streaming::open(
        "POST",
        &url,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
        ],
        Some(call),
    )
    .await;
    assert_eq!(stream.status, 200);
    let first = stream
        .next_event(Duration::from_secs(15))
        .await
        .expect("a progress event");
    assert!(first.contains("notifications/progress"), "{first}");
    // The session's child and the warm spare started when the session took the previous one (before the
    // `initialize` answer left), seen from /proc before the signal: no readiness probe starts a child of its own.
    let children: Vec<u32> = children_of(gw.guard.pid())
        .into_iter()
        .map(|(pid, _, _)| pid)
        .collect();
    assert_eq!(
        children.len(),
        2,
        "the session's child and the warm spare: {children:?}"
    );
    gw.signal(Signal::SIGTERM);
    let rest = stream.rest(Duration::from_secs(15)).await;
    let m = message_with_id(&rest, 9).unwrap_or_else(|| panic!("no response in {rest}"));
    assert_eq!(m["result"]["isError"], false, "{m}");
    let status = gw.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}\n{}", gw.logs());
    gw.wait_log("Stdio session ended.").await;
    // The gateway shut its child down before exiting: nothing of it still runs (at most a zombie that init is
    // about to reap, had the gateway not reaped it itself).
    for pid in children {
        assert!(
            !pid_alive(pid) || proc_stat(pid).is_some_and(|(state, _, _)| state == 'Z'),
            "child {pid} still runs after the gateway exited: {:?}",
            proc_stat(pid)
        );
    }
}

// Regression: in session mode every readiness probe started a whole server of its own and threw it away (heavy
// for `npx`), and a child still shutting down from one raced with the sessions' children. The probe now pings a
// warm spare, which the next session takes over.
#[tokio::test]
async fn readiness_pings_the_warm_spare_and_the_next_session_takes_it() {
    let gw = Gw::start_stdio_fake(STDIO_READY_FLAGS).await;
    gw.wait_ready(STDIO_READY_PATIENCE).await;
    let gateway = gw.guard.pid();
    let kids = || -> Vec<u32> {
        children_of(gateway)
            .into_iter()
            .map(|(pid, _, _)| pid)
            .collect()
    };
    let spare = kids();
    assert_eq!(
        spare.len(),
        1,
        "one warm spare before any session: {spare:?}"
    );
    // Three fresh probes (the TTL is 1 s), each a ping answered by the same spare.
    let mut fresh = 0;
    assert_eventually!(
        {
            let r = gw.admin_get("/ready").await;
            let text = r.text();
            assert_eq!(r.status, 200, "{text}");
            if text.contains("\"cached\":false") {
                assert!(text.contains("\"ping\":"), "the probe pings: {text}");
                fresh += 1;
            }
            fresh >= 3
        },
        patience = Duration::from_secs(20),
        "three uncached readiness probes"
    );
    assert_eq!(kids(), spare, "no readiness probe started a child");
    let url = gw.mcp();
    let sid = open_session(&url).await;
    assert_eq!(
        whoami(&url, &sid).await,
        spare[0],
        "the session took the spare"
    );
    let now = kids();
    assert_eq!(
        now.len(),
        2,
        "the session's child and the next spare: {now:?}"
    );
    assert!(now.contains(&spare[0]), "{now:?}");
}

/// Waits until `n` pool children are up.
async fn wait_pool(gw: &Gw, n: usize) {
    assert_eventually!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_children") == Some(n as f64),
        patience = Duration::from_secs(30),
        "the pool's children start"
    );
}

/// `/proc/<pid>/stat` fields: (state, ppid, command name).
fn proc_stat(pid: u32) -> Option<(char, u32, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid, comm))
}

/// The processes whose parent is `ppid`: (pid, state, command name).
fn children_of(ppid: u32) -> Vec<(u32, char, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, parent, comm) = proc_stat(pid)?;
            (parent == ppid).then_some((pid, state, comm))
        })
        .collect()
}

#[tokio::test]
async fn as_pid_1_the_gateway_reaps_orphaned_grandchildren() {
    if std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: this machine cannot create a PID namespace (unshare --pid)");
        return;
    }
    // The child leaves an orphan behind: a subshell starts `sleep 2` in the background and exits at once, so
    // the sleep is re-parented to PID 1, the gateway.
    let fake = stdio_fake_server();
    let python = py2_python();
    let script = format!("(sleep 2 &); exec {python} {}", fake.to_string_lossy());
    let gw = Gw::start_wrapped(
        &["unshare", "--pid", "--fork", "--mount-proc"],
        &[
            "--stdio-mode",
            "pool",
            "--pool-size",
            "1",
            "--",
            "sh",
            "-c",
            &script,
        ],
    )
    .await;
    // Logged by the serving loop, just after "Gateway listening." (where `start` returns).
    assert_eventually!(
        gw.logs().contains("Running as PID 1"),
        patience = Duration::from_secs(10),
        "the gateway knows it is PID 1"
    );
    // The gateway's pid outside the namespace: the child of `unshare`.
    let outer = children_of(gw.guard.pid())
        .first()
        .map(|(pid, _, _)| *pid)
        .expect("unshare forked the gateway");
    assert_eventually!(
        children_of(outer)
            .iter()
            .any(|(_, _, comm)| comm == "sleep"),
        patience = Duration::from_secs(15),
        "the orphaned sleep is re-parented to the gateway"
    );
    assert_eventually!(
        !children_of(outer)
            .iter()
            .any(|(_, _, comm)| comm == "sleep"),
        patience = Duration::from_secs(10),
        "the orphan exits and is reaped, leaving no zombie"
    );
    // The pool child (a direct child) is untouched and still serves.
    let sid = open_session(&gw.mcp()).await;
    assert!(whoami(&gw.mcp(), &sid).await > 0);
}

#[tokio::test]
async fn a_child_flooding_stdout_is_relayed_with_bounded_memory() {
    let gw = Gw::start_stdio_fake(&[]).await;
    let url = gw.mcp();
    let sid = open_session(&url).await;
    let mut stream = Streaming::open(
        "POST",
        &url,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
        ],
        Some(&tools_call(2, "spam")),
    )
    .await;
    assert_eq!(stream.status, 200);
    let body = stream.rest(Duration::from_secs(60)).await;
    let notes = body.matches("notifications/message").count();
    assert_eq!(notes, 50_000, "every notification relayed, in order, once");
    let m = message_with_id(&body, 2).expect("the response ends the stream");
    assert_eq!(m["result"]["content"][0]["text"], "spammed");
    // The stream was relayed through bounded queues, never accumulated.
    let peak = peak_rss_mib(gw.guard.pid());
    assert!(peak < 64.0, "peak RSS {peak} MiB");
    assert_eq!(gw.admin_get("/live").await.status, 200);
}

#[tokio::test]
async fn sigusr1_is_forwarded_and_a_reload_that_fails_its_probe_keeps_the_old_children() {
    // The fake writes a non-JSON line at start, so the shared probe judges it unhealthy: SIGHUP's new generation
    // is refused and the old child keeps serving.
    let gw = Gw::start_stdio_fake(&["--stdio-mode", "pool", "--pool-size", "1"]).await;
    wait_pool(&gw, 1).await;
    let old = open_session(&gw.mcp()).await;
    let old_pid = whoami(&gw.mcp(), &old).await;
    gw.signal(Signal::SIGUSR1);
    gw.wait_log("fake got SIGUSR1").await;
    gw.signal(Signal::SIGHUP);
    assert_eventually!(
        gw.logs()
            .contains("Stdio reload failed: the old generation keeps serving."),
        patience = Duration::from_secs(90),
        "the reload is refused"
    );
    assert_eq!(whoami(&gw.mcp(), &old).await, old_pid);
    let fresh = open_session(&gw.mcp()).await;
    assert_eq!(
        whoami(&gw.mcp(), &fresh).await,
        old_pid,
        "new sessions still go to the old child"
    );
    assert_eq!(
        gw.admin_get("/live").await.status,
        200,
        "the gateway itself stays up"
    );
}

/// Whether [`harness::call_add`] (2 + 3) on session `sid` was answered with the sum.
async fn adds(mcp: &str, sid: &str) -> bool {
    let r = harness::call_add(mcp, sid).await;
    r.status == 200 && r.text().contains("\"5\"")
}

#[tokio::test]
async fn sighup_reloads_the_python_sdk_server_under_load_and_loses_nothing() {
    let (python, args) = peers::Peer::python_stdio_command();
    let python = python.to_string_lossy().into_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut flags = vec![
        "--stdio-mode",
        "pool",
        "--pool-size",
        "1",
        "--drain-timeout",
        "120s",
    ];
    flags.extend_from_slice(STDIO_READY_FLAGS);
    let gw = Gw::start_stdio(&python, &args, &flags).await;
    gw.wait_ready(STDIO_READY_PATIENCE).await;
    wait_pool(&gw, 1).await;
    let mcp = gw.mcp();
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(open_session(&mcp).await);
    }
    // Calls go on until the reload is logged, and two rounds more (bounded in count).
    let switched = std::sync::atomic::AtomicBool::new(false);
    let load = async {
        let (mut ok, mut failed, mut after) = (0, 0, 0);
        for _round in 0..2000 {
            if switched.load(std::sync::atomic::Ordering::Acquire) {
                after += 1;
                if after > 2 {
                    break;
                }
            }
            for sid in &old {
                if adds(&mcp, sid).await {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
        }
        (ok, failed, after)
    };
    let switch = async {
        gw.signal(Signal::SIGHUP);
        // A new Python child starts and the command is probed once: seconds on a loaded 2-core machine.
        assert_eventually!(
            gw.logs()
                .contains("Stdio reload: new sessions go to the new generation"),
            patience = Duration::from_secs(90),
            "the reload is done"
        );
        switched.store(true, std::sync::atomic::Ordering::Release);
    };
    let ((ok, failed, after), ()) = tokio::join!(load, switch);
    assert_eq!(failed, 0, "{ok} calls answered, {failed} not");
    assert!(after > 2, "the load went on past the switch");
    assert_eq!(
        metric(&gw.metrics().await, "lifeline_gateway_stdio_children"),
        Some(2.0),
        "both generations run while the old one has sessions"
    );
    let fresh = open_session(&mcp).await;
    assert!(adds(&mcp, &fresh).await);
}

// Regression: a client that closed its connection while its `initialize` waited left the child running for ever
// (hyper drops the handler future, and nothing owned the child yet).
#[tokio::test]
async fn a_client_that_leaves_mid_initialize_leaves_no_child_behind() {
    use tokio::io::AsyncWriteExt;
    let gw = Gw::start_stdio(
        "sh",
        &["-c", "exec sleep 300"],
        &["--upstream-timeout", "60s"],
    )
    .await;
    let authority = gw.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{}",
        harness::INIT.len(),
        harness::INIT
    );
    let gateway = gw.guard.pid();
    let sleeps = || -> Vec<u32> {
        children_of(gateway)
            .into_iter()
            .filter(|(_, _, comm)| comm == "sleep")
            .map(|(pid, _, _)| pid)
            .collect()
    };
    // The warm spare is up before any client comes; the `initialize` takes it and starts the next spare.
    assert_eventually!(
        sleeps().len() == 1,
        patience = Duration::from_secs(10),
        "the warm spare starts"
    );
    let taken = sleeps()[0];
    conn.write_all(request.as_bytes()).await.expect("write");
    assert_eventually!(
        sleeps().len() == 2,
        patience = Duration::from_secs(10),
        "the initialize takes the spare and the next spare starts"
    );
    assert!(pid_alive(taken), "the taken spare serves the initialize");
    drop(conn);
    assert_eventually!(
        !pid_alive(taken) || proc_stat(taken).is_some_and(|(state, _, _)| state == 'Z'),
        patience = Duration::from_secs(15),
        "the abandoned initialize's child is shut down"
    );
    assert_eventually!(
        sleeps().len() == 1 && !sleeps().contains(&taken),
        patience = Duration::from_secs(15),
        "only the new spare is left"
    );
}
