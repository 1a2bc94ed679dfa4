//! What a client's disconnect means across the federation's era bridge (issue 16), against the Python SDK 2.x
//! server in stateless mode spoken to as a modern (2026-07-28) server. Its `slow_progress` tool counts, in
//! `/debug/calls`, each run (`slow_progress`), each run a cancellation reached (`slow_progress:cancelled`: the SDK
//! cancels the handler when the request's connection closes) and each run that went to its end
//! (`slow_progress:done`).
//!
//! - A modern client's closed connection is its cancellation (2026-07-28 `basic/patterns/cancellation`
//!   §Transport-Specific Cancellation), also while the answer it waits for is a JSON body: the gateway's own request
//!   to the modern server is closed with it.
//! - A legacy client's is not (2025-11-25 `basic/transports` §Sending Messages to the Server 6: "Disconnection
//!   SHOULD NOT be interpreted as the client cancelling its request"): the request runs to its end at the modern
//!   server, its answer discarded and counted; past the bound on such requests (`max_sessions`) it is dropped.

use std::time::Duration;

use lifeline_mcp::era::{modern_params, MODERN_VERSION};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::json;

use crate::federation::{
    debug_json, leave_after_first_progress, wait_all_ready, HEALTH_PATIENCE, READY_PATIENCE,
};
use crate::harness::{metric, open_session, GatewayUnderTest, TestGateway as Gw};

/// The `slow_progress` counters of a Python peer: runs started, runs a cancellation reached, runs that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Runs {
    started: u64,
    cancelled: u64,
    done: u64,
}

async fn runs(peer: &Peer) -> Runs {
    let calls = debug_json(peer, "/debug/calls").await;
    let n = |k: &str| calls[k].as_u64().unwrap_or(0);
    Runs {
        started: n("slow_progress"),
        cancelled: n("slow_progress:cancelled"),
        done: n("slow_progress:done"),
    }
}

/// Waits until `peer` has started `started` runs of `slow_progress`.
async fn running(peer: &Peer, started: u64) {
    assert_eventually!(
        runs(peer).await.started == started,
        patience = HEALTH_PATIENCE,
        "slow_progress did not start: {:?}",
        runs(peer).await
    );
}

/// Waits until `ended` runs of `slow_progress` ended (cancelled or done) at `peer`; returns the counters.
async fn ended(peer: &Peer, ended: u64) -> Runs {
    assert_eventually!(
        {
            let r = runs(peer).await;
            r.cancelled + r.done >= ended
        },
        patience = HEALTH_PATIENCE,
        "slow_progress did not end: {:?}",
        runs(peer).await
    );
    runs(peer).await
}

/// A 2026-07-28 `tools/call` of `slow_progress` (`steps` × 50 ms) named `tool`, without a progress token (so the
/// server has nothing to stream before its answer): its headers and body.
fn modern_call(tool: &str, steps: u32) -> (Vec<(&'static str, String)>, String) {
    let params = modern_params(
        json!({"name": tool, "arguments": {"steps": steps, "delay_ms": 50}}),
        "disconnect-test",
        "1",
    );
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string();
    let headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Accept", "application/json, text/event-stream".to_owned()),
        ("MCP-Protocol-Version", MODERN_VERSION.to_owned()),
        ("Mcp-Method", "tools/call".to_owned()),
        ("Mcp-Name", tool.to_owned()),
    ];
    (headers, body)
}

/// `POST url` in a task of its own, on a connection of its own: aborting the task closes the connection, as a
/// client that goes away does.
fn post_in_task(
    url: &str,
    headers: &[(&str, String)],
    body: String,
) -> tokio::task::JoinHandle<std::io::Result<raw_http::RawResponse>> {
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    tokio::spawn(async move {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        raw_http::request(
            "POST",
            &url,
            &headers,
            Some(body.as_bytes()),
            Duration::from_secs(60),
        )
        .await
    })
}

/// Closes the connection of a request started with [`post_in_task`], which must still be waiting for its answer.
async fn disconnect(call: tokio::task::JoinHandle<std::io::Result<raw_http::RawResponse>>) {
    call.abort();
    match call.await {
        Err(e) if e.is_cancelled() => {}
        other => panic!("the request ended before its client left: {other:?}"),
    }
}

/// Modern client → modern server, the answer pending as a JSON body: the client closing its connection cancels the
/// request at the server (2026-07-28 `basic/patterns/cancellation` §Transport-Specific Cancellation: "The server
/// MUST treat a client disconnect as cancellation of that request"; the gateway is that server, and a client of the
/// modern one, whose request it closes). Without a progress token the tool sends nothing before its answer, and the
/// SDK answers such a call as `application/json` (checked directly and through the gateway on a short call). The
/// long call would take 10 s; the test fails if it runs to its end (`slow_progress:done`) instead of being
/// cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_clients_disconnect_cancels_its_request_at_a_modern_server_before_a_json_answer() {
    let modern = Peer::python(PyServer::Stateless).await;
    let yaml = format!(
        "servers:\n- {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n",
        modern.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();

    // A short call is answered as JSON, by the server and by the gateway.
    for (url, tool) in [
        (modern.url.as_str(), "slow_progress"),
        (mcp.as_str(), "modern__slow_progress"),
    ] {
        let (headers, body) = modern_call(tool, 2);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = raw_http::request(
            "POST",
            url,
            &headers,
            Some(body.as_bytes()),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{url}: {}",
            r.text()
        );
        assert!(
            r.text().contains("done after 2 steps"),
            "{url}: {}",
            r.text()
        );
    }
    let before = runs(&modern).await;
    assert_eq!(before.done, 2, "{before:?}");

    // 200 steps 50 ms apart: 10 s unless cancelled.
    let (headers, body) = modern_call("modern__slow_progress", 200);
    let call = post_in_task(&mcp, &headers, body);
    running(&modern, before.started + 1).await;
    disconnect(call).await;
    let after = ended(&modern, before.cancelled + before.done + 1).await;
    assert_eq!(
        (after.cancelled, after.done),
        (before.cancelled + 1, before.done),
        "the modern server ran the call to its end although its client left\n{}",
        gw.logs()
    );
}

/// Legacy client → modern server: a disconnect is not a cancellation (2025-11-25 `basic/transports` §Sending
/// Messages to the Server 6), so the call (3 s) runs to its end at the modern server, whichever form the client's
/// answer had taken (none yet, the gateway waiting for the server's JSON answer; or an SSE stream with a progress
/// notification on it), and the gateway counts the discarded answer; the client's `notifications/cancelled` still
/// cancels a request it left. Past the bound (`max_sessions: 1` here: one such request at a time) a second one is
/// dropped with its client, which the modern server takes as a cancellation, and counted as dropped. Fails if the
/// gateway drops the upstream request with its client (`slow_progress:cancelled` instead of `slow_progress:done`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_clients_disconnect_lets_its_request_run_to_its_end_at_a_modern_server() {
    let modern = Peer::python(PyServer::Stateless).await;
    let yaml = format!(
        "max_sessions: 1\nservers:\n- {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n",
        modern.url
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    wait_all_ready(&gw).await;
    let mcp = gw.mcp();
    let sid = open_session(&mcp).await;
    let legacy_call = |id: i64, progress: bool, steps: u32| {
        let mut params =
            json!({"name": "modern__slow_progress", "arguments": {"steps": steps, "delay_ms": 50}});
        if progress {
            params["_meta"] = json!({"progressToken": format!("p{id}")});
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
    };
    let session = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Accept", "application/json, text/event-stream".to_owned()),
        ("Mcp-Session-Id", sid.clone()),
        ("MCP-Protocol-Version", "2025-11-25".to_owned()),
    ];
    let orphaned = |result: &'static str| {
        let gw = &gw;
        async move {
            metric(
                &gw.admin_get("/metrics").await.text(),
                &format!(
                    "lifeline_gateway_federation_orphaned_requests_total{{result=\"{result}\"}}"
                ),
            )
            .unwrap_or(0.0)
        }
    };

    // The client leaves while the gateway waits for the server's answer (nothing sent to the client yet).
    // 60 steps 50 ms apart: 3 s.
    let before = runs(&modern).await;
    let call = post_in_task(&mcp, &headers, legacy_call(60, false, 60));
    running(&modern, before.started + 1).await;
    disconnect(call).await;
    let after = ended(&modern, before.cancelled + before.done + 1).await;
    assert_eq!(
        (after.cancelled, after.done),
        (before.cancelled, before.done + 1),
        "JSON pending: the modern server saw a cancellation although the legacy client only left\n{}",
        gw.logs()
    );
    assert_eventually!(
        orphaned("discarded").await == 1.0,
        patience = HEALTH_PATIENCE,
        "the discarded answer is counted"
    );

    // The client leaves once its answer streams (a progress notification came first).
    let before = after;
    let body = legacy_call(61, true, 60);
    let stream_headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    leave_after_first_progress(&mcp, &stream_headers, &body, "legacy → modern").await;
    let after = ended(&modern, before.cancelled + before.done + 1).await;
    assert_eq!(
        (after.cancelled, after.done),
        (before.cancelled, before.done + 1),
        "SSE: the modern server saw a cancellation although the legacy client only left\n{}",
        gw.logs()
    );
    assert_eventually!(
        orphaned("discarded").await == 2.0,
        patience = HEALTH_PATIENCE,
        "the discarded answer is counted"
    );

    // A client that left can still cancel: its `notifications/cancelled`, on a connection of its own, reaches the
    // request, which would run 10 s otherwise.
    let before = after;
    let call = post_in_task(&mcp, &headers, legacy_call(62, false, 200));
    running(&modern, before.started + 1).await;
    let left = || {
        gw.logs()
            .matches("The client closed the connection before its answer.")
            .count()
    };
    let seen = left();
    disconnect(call).await;
    // The gateway notices the close before the cancellation goes out: else, on a loaded machine, the answer to the
    // cancelled request can come first and is written to the closed connection instead of being discarded.
    assert_eventually!(
        left() > seen,
        patience = HEALTH_PATIENCE,
        "the gateway did not notice that the client left\n{}",
        gw.logs()
    );
    let cancel = json!({
        "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 62, "reason": "the user pressed stop"},
    })
    .to_string();
    let r = crate::harness::post(&mcp, &session, &cancel).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let after = ended(&modern, before.cancelled + before.done + 1).await;
    assert_eq!(
        (after.cancelled, after.done),
        (before.cancelled + 1, before.done),
        "the legacy client's notifications/cancelled did not cancel the request it left\n{}",
        gw.logs()
    );
    assert_eventually!(
        orphaned("discarded").await == 3.0,
        patience = HEALTH_PATIENCE,
        "the discarded answer is counted"
    );

    // Two leave at once with room for one: one runs to its end, the other is dropped (a cancellation upstream).
    // 80 steps 50 ms apart: 4 s.
    let before = after;
    let calls = [
        post_in_task(&mcp, &headers, legacy_call(63, false, 80)),
        post_in_task(&mcp, &headers, legacy_call(64, false, 80)),
    ];
    running(&modern, before.started + 2).await;
    for call in calls {
        disconnect(call).await;
    }
    let after = ended(&modern, before.cancelled + before.done + 2).await;
    assert_eq!(
        (after.cancelled, after.done),
        (before.cancelled + 1, before.done + 1),
        "one of two runs on, the other is dropped\n{}",
        gw.logs()
    );
    assert_eq!(orphaned("dropped").await, 1.0);
    assert_eventually!(
        orphaned("discarded").await == 4.0,
        patience = HEALTH_PATIENCE,
        "the discarded answer is counted"
    );
    // The session goes on.
    let r = crate::harness::post(&mcp, &session, &legacy_call(65, false, 1)).await;
    assert!(r.text().contains("done after 1 steps"), "{}", r.text());
}
