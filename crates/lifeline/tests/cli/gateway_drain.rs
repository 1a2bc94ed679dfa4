//! The drain (`shared/seeds/003_*.txt`): on SIGTERM `/ready` fails at once, everything is served for
//! `--drain-delay`, then new sessions and stateless requests get 503 + Retry-After while calls in flight finish,
//! streams the gateway must close get a final `retry:` field, and the process exits 0. A second signal exits at
//! once.

use crate::gateway_harness as harness;

use std::time::{Duration, Instant};

use harness::{event_json, open_session, post, GatewayUnderTest, Gw, Streaming, INIT};
use lifeline_testkit::peers::{EverythingTransport, Peer};
use nix::sys::signal::Signal;

fn long_call(id: u64, duration_s: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"trigger-long-running-operation","arguments":{{"duration":{duration_s},"steps":{duration_s}}},"_meta":{{"progressToken":"p{id}"}}}}}}"#
    )
}

#[tokio::test]
async fn sigterm_lets_a_long_call_finish_refuses_new_work_and_exits_0() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let mut gw = Gw::start(
        &peer.url,
        &[
            "--drain-delay",
            "1s",
            "--drain-timeout",
            "20s",
            "--retry-after",
            "2s",
        ],
    )
    .await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let sid = open_session(&gw.mcp()).await;

    // A 5 s tool call with progress, in flight.
    let mut call = Streaming::open(
        "POST",
        &gw.mcp(),
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        Some(&long_call(7, 5)),
    )
    .await;
    assert_eq!(call.status, 200);
    let first = loop {
        let ev = call
            .next_event(Duration::from_secs(10))
            .await
            .expect("an event");
        if let Some(j) = event_json(&ev) {
            break j;
        }
    };
    assert_eq!(first["method"], "notifications/progress", "{first}");

    let signalled = Instant::now();
    gw.signal(Signal::SIGTERM);
    // Not ready at once; still live.
    lifeline_testkit::assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = Duration::from_millis(500)
    );
    assert_eq!(gw.admin_get("/live").await.status, 200);
    let h: serde_json::Value =
        serde_json::from_slice(&gw.admin_get("/healthz").await.body).expect("json");
    assert_eq!(h["state"], "draining");

    // After the drain delay: a new session is refused with 503 + Retry-After.
    let refused = std::cell::RefCell::new(None);
    lifeline_testkit::assert_eventually!(
        {
            let r = post(&gw.mcp(), &[], INIT).await;
            if r.status == 503 {
                refused.replace(Some(r));
                true
            } else {
                assert_eq!(
                    r.status,
                    200,
                    "served normally during the delay: {}",
                    r.text()
                );
                false
            }
        },
        patience = Duration::from_secs(5).saturating_sub(signalled.elapsed()),
        "never refused"
    );
    let refused = refused.into_inner().expect("set when the condition held");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "refused before the drain delay"
    );
    assert_eq!(refused.header("retry-after"), Some("2"));
    // A new stateless request too.
    let r = post(
        &gw.mcp(),
        &[],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status, 503);

    // The call in flight completes with its result.
    let mut result = None;
    while let Some(ev) = call.next_event(Duration::from_secs(15)).await {
        if let Some(j) = event_json(&ev).filter(|j| j["id"] == 7) {
            result = Some(j);
        }
    }
    let result = result.expect("the long call's result arrived");
    assert!(
        result["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("completed"),
        "{result}"
    );

    let status = gw.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gw.logs());
    let logs = gw.logs();
    for phase in [
        "Drain started",
        "refusing new work",
        "Drain complete",
        "Gateway stopped",
    ] {
        assert!(logs.contains(phase), "missing phase log {phase:?}:\n{logs}");
    }
}

#[tokio::test]
async fn open_streams_get_a_retry_field_before_the_drain_closes_them() {
    let peer = Peer::everything(EverythingTransport::Sse).await;
    let mut gw = Gw::start(
        &peer.url,
        &[
            "--drain-delay",
            "500ms",
            "--drain-timeout",
            "10s",
            "--sse-retry",
            "2500ms",
        ],
    )
    .await;
    gw.wait_ready(Duration::from_secs(20)).await;
    let mut stream = Streaming::open(
        "GET",
        &format!("{}/sse", gw.base),
        &[("Accept", "text/event-stream")],
        None,
    )
    .await;
    assert_eq!(stream.status, 200);
    let endpoint = stream
        .next_event(Duration::from_secs(10))
        .await
        .expect("endpoint");
    assert!(endpoint.contains("/messages?sessionId="), "{endpoint}");

    gw.signal(Signal::SIGTERM);
    let mut last = String::new();
    while let Some(ev) = stream.next_event(Duration::from_secs(10)).await {
        last = ev;
    }
    assert_eq!(
        last.trim(),
        "retry: 2500",
        "the final event tells the client when to reconnect"
    );
    let status = gw.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", gw.logs());
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let mut gw = Gw::start(
        &peer.url,
        &["--drain-delay", "30s", "--drain-timeout", "60s"],
    )
    .await;
    gw.signal(Signal::SIGTERM);
    lifeline_testkit::assert_eventually!(
        gw.admin_get("/ready").await.status == 503,
        patience = Duration::from_secs(2)
    );
    let start = Instant::now();
    gw.signal(Signal::SIGINT);
    let status = gw.wait_exit(Duration::from_secs(3)).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    assert!(gw.logs().contains("Second stop signal"), "{}", gw.logs());
}
