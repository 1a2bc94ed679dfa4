//! The admin side (`--admin-listen`), for the orchestrator and for people. Routes:
//!
//! - `GET /live`: 200 while the runtime makes progress (task hop + fresh heartbeat), else 503. Never calls the
//!   upstream.
//! - `GET /ready`: 503 while starting (until the upstream first passes a probe) or draining; otherwise the
//!   cached single-flight MCP probe of the upstream: 200 when usable, 503 when not. JSON with each check. In
//!   front of a pool: 200 while at least one endpoint is healthy (the pool watcher's probes, ejections,
//!   draining), with every endpoint in `endpoints`.
//! - `GET /healthz`: JSON for people: version, uptime, state, sessions, requests in flight, last probe, and
//!   every upstream endpoint (`upstream_endpoints`: health, ejection, outstanding requests, last probe).
//! - `GET /metrics`: Prometheus text (OpenMetrics).
//! - `GET|POST /admin/traffic`: the pool's group weights, read and switched behind the admin token and the
//!   check gate (`admin/traffic.rs`).
//! - `POST /admin/reload`: a stdio upstream's reload (a new generation of children, as SIGHUP), behind the token.
//! - `POST /debug/stall?ms=N`: only in a build with the `test-hooks` cargo feature (tests; never the production
//!   binary) and the hidden `--debug-stall-endpoint` flag: blocks every runtime worker for `N` ms (at most 60 s),
//!   to prove `/live` catches a stalled runtime.

use std::sync::Arc;
use std::time::Instant;

use crate::server::RequestBody;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use lifeline_core::{InFlight, Phase, Shutdown};
use serde_json::{json, Value};

use crate::body::{self, Body};
use crate::live::Liveness;
use crate::metrics::Metrics;
use crate::proxy::Links;
use crate::ready::{ProbeResult, Readiness};
use crate::sessions::Sessions;

pub(crate) mod traffic;

/// Longest stall the debug endpoint accepts.
#[cfg(feature = "test-hooks")]
const MAX_DEBUG_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything the admin handlers read.
#[derive(Debug)]
pub(crate) struct Admin {
    pub(crate) liveness: Arc<Liveness>,
    pub(crate) readiness: Arc<Readiness>,
    pub(crate) shutdown: Shutdown,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) links: Arc<Links>,
    pub(crate) inflight: InFlight,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) started: Instant,
    pub(crate) upstream_label: String,
    pub(crate) traffic: traffic::TrafficAdmin,
    #[cfg(feature = "test-hooks")]
    pub(crate) debug_stall: bool,
}

impl Admin {
    pub(crate) async fn handle(self: Arc<Self>, req: Request<RequestBody>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/live") => self.live().await,
            (&Method::GET, "/ready") => self.ready().await,
            (&Method::GET, "/healthz") => self.healthz(),
            (&Method::GET, "/metrics") => self.metrics(),
            (_, "/admin/traffic") => self.traffic.handle(req).await,
            (&Method::POST, "/admin/reload") => self.traffic.reload(req).await,
            #[cfg(feature = "test-hooks")]
            (&Method::POST, "/debug/stall") if self.debug_stall => self.stall(req.uri().query()),
            _ => body::json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
        }
    }

    /// `starting`, `ready`, `draining` or `stopped`.
    pub(crate) fn state(&self) -> &'static str {
        match self.shutdown.phase() {
            Phase::Running if self.readiness.ever_ready() => "ready",
            Phase::Running => "starting",
            Phase::Draining | Phase::Refusing => "draining",
            Phase::Forcing => "stopped",
        }
    }

    fn sessions_active(&self) -> usize {
        self.sessions.len() + self.links.len()
    }

    async fn live(&self) -> Response<Body> {
        let hop_start = Instant::now();
        // The task hop: a spawned task only completes when some runtime worker is free to run it.
        let _ = tokio::spawn(async {}).await;
        let hop_us = hop_start.elapsed().as_micros() as u64;
        let report = self.liveness.report();
        let status = if report.live {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        body::json_response(
            status,
            &json!({
                "live": report.live,
                "heartbeat_age_ms": report.heartbeat_age_ms,
                "stall_ms": report.stall_ms,
                "task_hop_us": hop_us,
            }),
        )
    }

    async fn ready(&self) -> Response<Body> {
        let state = self.state();
        if matches!(state, "draining" | "stopped") {
            return body::json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({
                    "ready": false,
                    "state": state,
                    "checks": [{"name": "lifecycle", "ok": false, "state": state}],
                }),
            );
        }
        if let Some((ok, healthy, endpoints)) = self.readiness.pool_check() {
            // The pool's rule (one healthy endpoint; the watcher's probes run the transaction step) and the
            // dependencies, checked here since no probe runs on this path.
            let dependencies = self.readiness.pool_dependencies().await;
            let state = self.state();
            let ready = ok && dependencies.iter().all(|d| d.ok) && state == "ready";
            let mut checks = vec![
                json!({"name": "lifecycle", "ok": state == "ready", "state": state}),
                json!({"name": "upstream_pool", "ok": ok, "healthy": healthy}),
            ];
            checks.extend(dependencies.iter().map(dependency_check));
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return body::json_response(
                status,
                &json!({
                    "ready": ready,
                    "state": state,
                    "checks": checks,
                    "endpoints": endpoints,
                }),
            );
        }
        let (result, cached) = self.readiness.check().await;
        let state = self.state();
        let ready = result.ready && state == "ready";
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        body::json_response(
            status,
            &json!({
                "ready": ready,
                "state": state,
                "cached": cached,
                "checks": ready_checks(state, &result),
                "probe": result.report,
            }),
        )
    }

    fn healthz(&self) -> Response<Body> {
        let last = self.readiness.last();
        body::json_response(
            StatusCode::OK,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": self.started.elapsed().as_secs(),
                "state": self.state(),
                "upstream": self.upstream_label,
                "sessions_active": self.sessions_active(),
                "requests_in_flight": self.inflight.count(),
                "last_probe": last.as_deref().map(probe_check),
                "upstream_endpoints": self.readiness.endpoints_json(),
            }),
        )
    }

    fn metrics(&self) -> Response<Body> {
        // A pool's `lifeline_gateway_upstream_ready` follows its endpoints' health at scrape time.
        let _ = self.readiness.pool_check();
        let text = self
            .metrics
            .render(self.sessions_active(), self.inflight.count(), self.state());
        let mut resp = Response::new(body::full(text));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        resp
    }

    #[cfg(feature = "test-hooks")]
    fn stall(&self, query: Option<&str>) -> Response<Body> {
        let ms = query
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "ms"))
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(1000);
        let stall = std::time::Duration::from_millis(ms).min(MAX_DEBUG_STALL);
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::warn!(
            stall_ms = stall.as_millis() as u64,
            workers,
            "Debug stall: blocking every runtime worker."
        );
        for _ in 0..workers {
            // Deliberately blocking the runtime: this endpoint exists to simulate a hung event loop.
            // The log line says when this worker's stall began (the test's probe waits for all of them).
            tokio::spawn(async move {
                tracing::warn!("Debug stall: a runtime worker is blocked from now on.");
                std::thread::sleep(stall);
            });
        }
        body::json_response(
            StatusCode::ACCEPTED,
            &json!({"stalling_ms": stall.as_millis() as u64, "workers": workers}),
        )
    }
}

/// The `/ready` checks: the lifecycle, the upstream probe, the transaction step (when configured) and each
/// dependency (when configured), each with its timing.
fn ready_checks(state: &str, result: &ProbeResult) -> Vec<Value> {
    let mut checks = vec![
        json!({"name": "lifecycle", "ok": state == "ready", "state": state}),
        probe_check(result),
    ];
    for t in &result.report.transactions {
        checks.push(json!({
            "name": "transaction",
            "transaction": t.name,
            "ok": !t.failed(),
            "verdict": t.verdict,
            "reason": t.reason,
            "message": t.message,
            "ms": t.duration_ms,
            "steps": t.steps,
        }));
    }
    checks.extend(result.dependencies.iter().map(dependency_check));
    checks
}

/// One `ready_dependencies` check as an entry of the `/ready` JSON's `checks`.
fn dependency_check(d: &crate::ready::DependencyResult) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("name".to_owned(), json!("dependency"));
    }
    v
}

/// The upstream probe as one check of the `/ready` JSON: `ok` is the handshake's own (usable), so a failing
/// transaction step or dependency shows as its own check beside a healthy handshake.
fn probe_check(result: &ProbeResult) -> Value {
    let r = &result.report;
    json!({
        "name": "upstream_mcp",
        "ok": r.is_usable(),
        "verdict": r.verdict,
        "reason": r.reason,
        "message": r.failure.as_ref().map(|f| f.message.as_str()),
        "era": r.era,
        "transport": r.transport,
        "protocol_version": r.protocol_version,
        "ms": result.took.as_secs_f64() * 1000.0,
        "age_ms": result.at.elapsed().as_millis() as u64,
        "started_at": r.started_at,
        "timings_ms": r.timings_ms,
    })
}
