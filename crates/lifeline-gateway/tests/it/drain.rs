//! The drain through the injected `Shutdown`: `/ready` fails at once, a call in flight completes, new sessions
//! are refused while refusing, and `Gateway::run` returns once the drain forces the end.

use std::time::Duration;

use lifeline_core::{DrainOutcome, Phase, Shutdown, SignalKind};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http;
use lifeline_testkit::peers::{EverythingTransport, Peer};

use super::{admin_get, bind_gateway, open_session, INIT};

/// A `tools/call` of server-everything's long-running operation: `seconds` seconds, one progress step each.
fn long_call(id: u64, seconds: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"trigger-long-running-operation","arguments":{{"duration":{seconds},"steps":{seconds}}},"_meta":{{"progressToken":"p{id}"}}}}}}"#
    )
}

#[tokio::test]
async fn injected_shutdown_fails_ready_at_once_lets_the_call_finish_and_run_returns() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let gateway = bind_gateway(&peer.url, "1s", "20s").await;
    let mcp = format!("http://{}/mcp", gateway.client_addr().expect("client addr"));
    let admin = gateway.admin_addr().expect("admin addr").to_string();
    let (plan, inflight) = (gateway.drain_plan(), gateway.in_flight());
    let shutdown = Shutdown::new();
    let run = tokio::spawn(gateway.run(shutdown.clone()));

    assert_eventually!(
        admin_get(&admin, "/ready").await.status == 200,
        patience = Duration::from_secs(20)
    );
    let sid = open_session(&mcp).await;

    // A 3 s call, in flight when the drain starts.
    let call = tokio::spawn({
        let (mcp, sid) = (mcp.clone(), sid.clone());
        async move {
            raw_http::post_json(
                &mcp,
                &[
                    ("Mcp-Session-Id", &sid),
                    ("MCP-Protocol-Version", "2025-11-25"),
                ],
                &long_call(7, 3),
            )
            .await
        }
    });
    assert_eventually!(inflight.count() >= 1, patience = Duration::from_secs(5));

    // The caller's timetable, without OS signals: no second signal ever comes.
    let drain = tokio::spawn({
        let (shutdown, inflight) = (shutdown.clone(), inflight.clone());
        async move {
            lifeline_core::drain(
                &shutdown,
                &inflight,
                plan,
                std::future::pending(),
                SignalKind::Term,
            )
            .await
        }
    });

    // Not ready at once, still live.
    assert_eventually!(
        admin_get(&admin, "/ready").await.status == 503,
        patience = Duration::from_millis(500)
    );
    assert_eq!(admin_get(&admin, "/live").await.status, 200);

    // After the delay, a new session is refused with 503 + Retry-After.
    assert_eventually!(
        shutdown.phase() == Phase::Refusing,
        patience = Duration::from_secs(3)
    );
    let refused = raw_http::post_json(&mcp, &[], INIT)
        .await
        .expect("an answer");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );

    // The call in flight completes with its result.
    let done = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .expect("the call finished")
        .expect("call task")
        .expect("the call answered");
    assert_eq!(done.status, 200, "{}", done.text());
    let body = done.text();
    assert!(
        body.contains(r#""id":7"#) && body.contains(r#""result""#),
        "{body}"
    );

    // The drain ends clean and the run returns.
    let outcome = tokio::time::timeout(Duration::from_secs(20), drain)
        .await
        .expect("the drain ended")
        .expect("drain task");
    assert!(matches!(outcome, DrainOutcome::Clean { .. }), "{outcome:?}");
    let summary = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("run returned")
        .expect("run task");
    assert!(!summary.aborted);
    assert_eq!(summary.in_flight, 0);
}

#[tokio::test]
async fn abort_makes_run_return_at_once() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let gateway = bind_gateway(&peer.url, "30s", "60s").await;
    let admin = gateway.admin_addr().expect("admin addr").to_string();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(gateway.run(shutdown.clone()));
    shutdown.advance(Phase::Draining);
    assert_eventually!(
        admin_get(&admin, "/ready").await.status == 503,
        patience = Duration::from_secs(2)
    );
    let aborted = std::time::Instant::now();
    shutdown.abort();
    let summary = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returned")
        .expect("run task");
    assert!(summary.aborted);
    assert!(
        aborted.elapsed() < Duration::from_secs(2),
        "took {:?}",
        aborted.elapsed()
    );
}

/// The drain-forced alert (`deploy/observability`) reads the deadline and the work in flight from `/metrics`,
/// since a forced drain itself is never scraped: the deadline is 0 while serving and the drain's timeout from
/// the moment the drain starts; the readiness gauges are there too.
#[tokio::test]
async fn a_drain_publishes_its_deadline_on_metrics() {
    use lifeline_testkit::mcp_http::metric;

    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let gateway = bind_gateway(&peer.url, "30s", "60s").await;
    let admin = gateway.admin_addr().expect("admin addr").to_string();
    let shutdown = Shutdown::new();
    let run = tokio::spawn(gateway.run(shutdown.clone()));
    assert_eventually!(
        admin_get(&admin, "/ready").await.status == 200,
        patience = Duration::from_secs(20)
    );
    let text = admin_get(&admin, "/metrics").await.text();
    let deadline = "lifeline_gateway_drain_deadline_timestamp_seconds";
    assert_eq!(metric(&text, deadline), Some(0.0), "{text}");
    assert_eq!(
        metric(&text, "lifeline_gateway_upstream_ready"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "lifeline_gateway_sessions_max"),
        Some(10_000.0),
        "{text}"
    );

    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs_f64()
    };
    let before = now();
    shutdown.advance(Phase::Draining);
    let seen = std::cell::Cell::new(None);
    assert_eventually!(
        {
            let text = admin_get(&admin, "/metrics").await.text();
            seen.set(metric(&text, deadline));
            seen.get().is_some_and(|d| d > 0.0)
        },
        patience = Duration::from_secs(5),
        "no deadline after the drain started: {:?}",
        seen.get()
    );
    let at = seen.get().unwrap_or_default();
    // 60 s after the drain started, give or take a slow machine.
    assert!(
        (before + 59.0..now() + 61.0).contains(&at),
        "deadline {at}, drain started at {before}"
    );

    shutdown.abort();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returned")
        .expect("run task");
}
