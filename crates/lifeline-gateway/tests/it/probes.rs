//! Probe truth: `/ready` follows a real MCP probe of the upstream (cached, single-flight), `/live` follows the
//! gateway's own runtime and never the upstream (the stall hook needs the `test-hooks` feature), `/healthz` and `/metrics` report the documented shapes.

use std::time::{Duration, Instant};

use lifeline_testkit::assert_eventually;

use crate::harness::{metric, GatewayUnderTest, TestGateway as Gw};
use crate::open_session;
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts};
use lifeline_testkit::peers::raw_http;
use serde_json::Value;

fn json(r: &raw_http::RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("JSON ({e}): {}", r.text()))
}

#[tokio::test]
async fn a_hanging_upstream_fails_ready_within_one_ttl_while_live_stays_200() {
    let fake = FakeServer::start(FakeKind::AcceptThenHang)
        .await
        .expect("fake");
    let ttl = Duration::from_secs(2);
    let gw = Gw::start(&fake.url(), &["--ready-ttl", "2s", "--ready-timeout", "1s"]).await;
    let start = Instant::now();

    let r = gw.admin_get("/ready").await;
    assert_eq!(r.status, 503, "{}", r.text());
    // Within one TTL (plus the probe's own bound, which is what the probe waits for).
    assert!(
        start.elapsed() < ttl + Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    let body = json(&r);
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"][1]["name"], "upstream_mcp");
    assert_eq!(body["checks"][1]["ok"], false);
    assert_eq!(body["checks"][1]["reason"], "timeout", "{body}");

    // A probe storm: 40 concurrent /ready reach the upstream at most once per TTL.
    let storm_start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let url = format!("{}/ready", gw.admin);
        set.spawn(async move {
            raw_http::request("GET", &url, &[], None, Duration::from_secs(10)).await
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.expect("task").expect("GET /ready").status, 503);
    }
    let ttls = storm_start.elapsed().as_secs_f64() / ttl.as_secs_f64();
    let probes = metric(
        &gw.metrics().await,
        "lifeline_gateway_readiness_probes_total{result=\"not_ready\"}",
    )
    .expect("probe counter");
    let elapsed_ttls = start.elapsed().as_secs_f64() / ttl.as_secs_f64();
    assert!(
        probes <= elapsed_ttls.ceil() + 2.0,
        "{probes} probes in {elapsed_ttls:.1} TTLs (storm {ttls:.1} TTLs): the cache must absorb the storm"
    );
    assert!(
        (fake.requests_total() as f64) <= probes + 1.0,
        "the upstream saw {} connections for {probes} probes",
        fake.requests_total()
    );

    // /live never calls the upstream and stays 200.
    for _ in 0..5 {
        let r = gw.admin_get("/live").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(json(&r)["live"], true);
    }
    let h = json(&gw.admin_get("/healthz").await);
    assert_eq!(h["state"], "starting", "{h}");
}

#[tokio::test]
async fn ready_is_cached_and_reports_each_check() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .expect("fake");
    let gw = Gw::start(&fake.url(), &["--ready-ttl", "30s"]).await;
    gw.wait_ready(Duration::from_secs(15)).await;
    let before = fake.requests_total();
    for _ in 0..20 {
        let r = gw.admin_get("/ready").await;
        assert_eq!(r.status, 200);
        let body = json(&r);
        assert_eq!(body["cached"], true, "{body}");
        assert_eq!(body["checks"][0]["name"], "lifecycle");
        assert_eq!(body["checks"][1]["verdict"], "healthy", "{body}");
        assert!(
            body["checks"][1]["timings_ms"]["total"].is_number(),
            "{body}"
        );
        assert_eq!(body["probe"]["era"], "legacy");
    }
    assert_eq!(
        fake.requests_total(),
        before,
        "cached results never reach the upstream"
    );
    // The probe ends its legacy session.
    assert_eq!(fake.sessions_open(), 0);

    let _sid = open_session(&gw.mcp()).await;
    let h = json(&gw.admin_get("/healthz").await);
    assert_eq!(h["state"], "ready", "{h}");
    assert_eq!(h["sessions_active"], 1, "{h}");
    assert!(h["requests_in_flight"].is_number(), "{h}");
    assert!(h["uptime_s"].is_number(), "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["last_probe"]["ok"], true, "{h}");

    let m = gw.metrics().await;
    for name in [
        "lifeline_gateway_sessions_active 1",
        "lifeline_gateway_requests_in_flight ",
        "lifeline_gateway_requests_total{method=\"initialize\",status=\"200\"} 1",
        "lifeline_gateway_request_duration_seconds_bucket{",
        "lifeline_gateway_state{state=\"ready\"} 1",
        "# TYPE lifeline_gateway_upstream_errors counter",
    ] {
        assert!(m.contains(name), "missing {name:?}:\n{m}");
    }
}

#[tokio::test]
async fn a_stalled_runtime_is_caught_by_live() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .expect("fake");
    // The stall hook is off by default.
    let plain = Gw::start(&fake.url(), &[]).await;
    let r = raw_http::request(
        "POST",
        &format!("{}/debug/stall?ms=10", plain.admin),
        &[],
        None,
        Duration::from_secs(5),
    )
    .await
    .expect("POST");
    assert_eq!(r.status, 404);
    drop(plain);

    let gw = Gw::start(
        &fake.url(),
        &["--debug-stall-endpoint", "--live-stall", "1s"],
    )
    .await;
    assert_eq!(gw.admin_get("/live").await.status, 200);
    let r = raw_http::request(
        "POST",
        &format!("{}/debug/stall?ms=4000", gw.admin),
        &[],
        None,
        Duration::from_secs(5),
    )
    .await
    .expect("POST /debug/stall");
    assert_eq!(r.status, 202, "{}", r.text());
    // The stall tasks start after the answer: the probe goes out once every worker is blocked (on a loaded machine
    // it could otherwise be served first).
    let workers = json(&r)["workers"].as_u64().expect("workers") as usize;
    assert_eventually!(
        gw.logs()
            .matches("a runtime worker is blocked from now on")
            .count()
            == workers,
        patience = Duration::from_secs(3),
        "the stall did not begin on {workers} workers\n{}",
        gw.logs()
    );
    // As the kubelet would: a probe with a timeout. It must not see 200 while the runtime is stalled.
    let probe = raw_http::request(
        "GET",
        &format!("{}/live", gw.admin),
        &[],
        None,
        Duration::from_millis(1500),
    )
    .await;
    match probe {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        Ok(r) => assert_eq!(r.status, 503, "{}", r.text()),
    }
    // After the stall, /live reports it, then recovers.
    let start = Instant::now();
    let mut saw_503 = false;
    assert_eventually!(
        match raw_http::request(
            "GET",
            &format!("{}/live", gw.admin),
            &[],
            None,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(r) => {
                if r.status == 503 {
                    saw_503 = true;
                    assert!(
                        json(&r)["stall_ms"].as_u64().unwrap_or_default() >= 1000,
                        "{}",
                        r.text()
                    );
                }
                r.status == 200 && start.elapsed() > Duration::from_secs(1)
            }
            Err(_) => false,
        },
        patience = Duration::from_secs(15),
        "/live did not recover"
    );
    assert!(
        saw_503,
        "/live must report the stall once the runtime runs again"
    );
}
