//! Readiness: a real MCP probe of the upstream with the shared probe engine (`lifeline_mcp::probe`), cached for
//! `--ready-ttl` behind a single flight, so however many `/ready` requests arrive, the upstream sees at most one
//! probe per TTL (the readiness guide in `shared/seeds/001_*.txt`: a readiness probe must complete the MCP
//! handshake, not just TCP). The era the probe detected is remembered and handed back as a hint, so later probes
//! skip era detection; a failed hinted probe clears the hint.
//!
//! Optional, after the handshake and within the same `--ready-timeout`: one read-only tool step
//! (`ready_transaction`, run by the probe engine's transaction evaluator on the probe's session, so readiness
//! takes the path the tools take) and plain HTTP dependency checks (`ready_dependencies`, GET with an expected
//! status). Each is reported in the `/ready` JSON with its timing and cached with the probe.
//!
//! In front of a pool (several endpoints, or DNS discovery) nothing is probed here: the pool's watcher probes
//! every endpoint on its interval with the same options ([`Readiness::probe_options`], the transaction step
//! included: an endpoint whose step fails is unhealthy, `ProbeSummary::of`), and the gateway is ready while at
//! least one endpoint is healthy ([`Readiness::pool_check`]) and every dependency answers
//! ([`Readiness::pool_dependencies`], cached for `--ready-ttl` like the probe). A single static upstream keeps
//! the on-demand probe above, whose result also sets that endpoint's health.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeline_mcp::probe::Timeouts;
use lifeline_mcp::{Era, EraHint, ProbeOptions, ProbeReport};

use crate::config::Dependency;
use crate::metrics::Metrics;
use crate::upstream::Upstream;

/// One probe's outcome.
#[derive(Debug)]
pub(crate) struct ProbeResult {
    pub(crate) at: Instant,
    pub(crate) ready: bool,
    pub(crate) took: Duration,
    pub(crate) report: ProbeReport,
    /// One per configured dependency, in order (empty when none are configured).
    pub(crate) dependencies: Vec<DependencyResult>,
}

/// One HTTP dependency check.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DependencyResult {
    /// The URL without user info or query.
    pub(crate) url: String,
    /// The answered status matched `expect_status`.
    pub(crate) ok: bool,
    /// The answered status; `None` when no answer came.
    pub(crate) status: Option<u16>,
    /// The expected status.
    pub(crate) expect_status: u16,
    /// Why it failed, when no answer came (timeout, connection error).
    pub(crate) error: Option<String>,
    /// Milliseconds the request took.
    pub(crate) ms: f64,
}

/// The cached, single-flight readiness probe.
#[derive(Debug)]
pub(crate) struct Readiness {
    upstream: Arc<Upstream>,
    base: ProbeOptions,
    ttl: Duration,
    timeout: Duration,
    flight: tokio::sync::Mutex<Option<Arc<ProbeResult>>>,
    last: Mutex<Option<Arc<ProbeResult>>>,
    era_hint: Mutex<EraHint>,
    ever_ready: AtomicBool,
    metrics: Arc<Metrics>,
    dependencies: Vec<Dependency>,
    /// A pool's last dependency checks (no probe here: the watcher probes), cached for the TTL, single flight.
    pool_deps: tokio::sync::Mutex<Option<(Instant, Arc<Vec<DependencyResult>>)>>,
    http: reqwest::Client,
}

impl Readiness {
    /// `headers` are the upstream credentials (`--upstream-header`), sent on probes too; `probes` holds the TTL,
    /// the timeout, the optional transaction step and the dependencies.
    pub(crate) fn new(
        upstream: Arc<Upstream>,
        headers: Vec<(String, lifeline_mcp::probe::Secret)>,
        probes: &crate::config::ProbeConfig,
        metrics: Arc<Metrics>,
    ) -> Readiness {
        let (ttl, timeout) = (probes.ready_ttl, probes.ready_timeout);
        let base = ProbeOptions {
            timeouts: Timeouts {
                total: timeout,
                ..Timeouts::default()
            },
            headers,
            check_origin: false,
            client_name: "lifeline-gateway".to_owned(),
            // Slowness is for monitors to judge; readiness asks "can it serve", so never degrade on latency.
            slow_after: timeout.saturating_mul(2),
            transactions: probes.ready_transaction.clone(),
            ..ProbeOptions::default()
        };
        Readiness {
            upstream,
            base,
            ttl,
            timeout,
            flight: tokio::sync::Mutex::new(None),
            last: Mutex::new(None),
            era_hint: Mutex::new(EraHint::Auto),
            ever_ready: AtomicBool::new(false),
            metrics,
            dependencies: probes.ready_dependencies.clone(),
            pool_deps: tokio::sync::Mutex::new(None),
            // No redirects: a dependency answers for itself. Bounded per request below.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// Whether a probe has ever succeeded (the gateway leaves `starting` then); for a pool, whether an endpoint
    /// was ever healthy.
    pub(crate) fn ever_ready(&self) -> bool {
        if !self.ever_ready.load(Ordering::Acquire) && self.upstream.is_pool() {
            let _ = self.pool_check();
        }
        self.ever_ready.load(Ordering::Acquire)
    }

    /// Every endpoint of an HTTP upstream as JSON (`Pool::to_json`); `null` for a stdio upstream.
    pub(crate) fn endpoints_json(&self) -> serde_json::Value {
        self.upstream
            .pool()
            .map_or(serde_json::Value::Null, |p| p.to_json())
    }

    /// The options every readiness probe uses (also the pool watcher's, so both follow the same rules).
    pub(crate) fn probe_options(&self) -> ProbeOptions {
        self.base.clone()
    }

    /// For a pool: whether at least one endpoint is healthy, with the healthy count and every endpoint as JSON
    /// (`Pool::to_json`). `None` for a single static upstream or a stdio one (then [`Readiness::check`]).
    pub(crate) fn pool_check(&self) -> Option<(bool, usize, serde_json::Value)> {
        if !self.upstream.is_pool() {
            return None;
        }
        let pool = self.upstream.pool()?;
        let healthy = pool.healthy_count();
        let ready = healthy > 0;
        self.metrics.set_upstream_ready(ready);
        if ready && !self.ever_ready.swap(true, Ordering::AcqRel) {
            tracing::info!(upstream = %self.upstream.label(), healthy, "Upstream pool ready.");
        }
        Some((ready, healthy, pool.to_json()))
    }

    /// For a pool: the dependency checks (`ready_dependencies`), the cached ones while younger than the TTL, else
    /// fresh ones (waiting for those already running, if any), bounded by `--ready-timeout`. Empty without
    /// dependencies.
    pub(crate) async fn pool_dependencies(&self) -> Arc<Vec<DependencyResult>> {
        if self.dependencies.is_empty() {
            return Arc::new(Vec::new());
        }
        let mut slot = self.pool_deps.lock().await;
        if let Some((at, cached)) = slot.as_ref() {
            if at.elapsed() < self.ttl {
                return Arc::clone(cached);
            }
        }
        let fresh = Arc::new(self.check_dependencies(Instant::now()).await);
        *slot = Some((Instant::now(), Arc::clone(&fresh)));
        fresh
    }

    /// The last result without probing.
    pub(crate) fn last(&self) -> Option<Arc<ProbeResult>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current result: the cached one while younger than the TTL, else a fresh probe (waiting for the one
    /// already running, if any). Returns whether the result came from the cache.
    pub(crate) async fn check(&self) -> (Arc<ProbeResult>, bool) {
        // A failure the gateway knows of without asking the upstream is answered as it is, never cached.
        if let Some(report) = self.upstream.known_unavailable() {
            return (
                Arc::new(ProbeResult {
                    at: Instant::now(),
                    ready: false,
                    took: Duration::ZERO,
                    report,
                    dependencies: Vec::new(),
                }),
                false,
            );
        }
        let mut slot = self.flight.lock().await;
        if let Some(cached) = slot.as_ref() {
            if cached.at.elapsed() < self.ttl {
                return (Arc::clone(cached), true);
            }
        }
        let fresh = Arc::new(self.probe_once().await);
        *slot = Some(Arc::clone(&fresh));
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&fresh));
        (fresh, false)
    }

    async fn probe_once(&self) -> ProbeResult {
        let hint = *self.era_hint.lock().unwrap_or_else(|p| p.into_inner());
        let opts = ProbeOptions {
            era_hint: hint,
            ..self.base.clone()
        };
        let start = Instant::now();
        // The engine bounds itself by `timeouts.total`; the outer bound is a backstop.
        let report = tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            self.upstream.probe(&opts),
        )
        .await;
        let report =
            report.unwrap_or_else(|_| timeout_report(&self.upstream.label(), self.timeout));
        // The transaction step counts like the handshake: a failed one (not a slow-degraded one) is not ready.
        let transaction_ok = report.transactions.iter().all(|t| !t.failed());
        let dependencies = self.check_dependencies(start).await;
        let took = start.elapsed();
        let ready = report.is_usable() && transaction_ok && dependencies.iter().all(|d| d.ok);
        *self.era_hint.lock().unwrap_or_else(|p| p.into_inner()) = next_hint(ready, report.era);
        if ready && !self.ever_ready.swap(true, Ordering::AcqRel) {
            tracing::info!(upstream = %self.upstream.label(), took_ms = took.as_millis() as u64, "Upstream ready.");
        }
        if !ready {
            tracing::warn!(
                upstream = %self.upstream.label(),
                verdict = report.verdict.as_str(),
                reason = report.reason.map(|r| r.as_str()).unwrap_or("none"),
                detail = report.failure.as_ref().map(|f| f.message.as_str()).unwrap_or(""),
                "Upstream not ready."
            );
        }
        self.metrics.readiness_probe(ready);
        if let Some(pool) = self.upstream.pool() {
            // The single endpoint's health follows this probe (`lifeline_gateway_upstream_endpoint_healthy`).
            if let Some(ep) = pool.members().first() {
                pool.probed(ep, crate::upstream::ProbeSummary::of(&report, took));
            }
        }
        ProbeResult {
            at: Instant::now(),
            ready,
            took,
            report,
            dependencies,
        }
    }

    /// GETs every dependency concurrently, each bounded by its timeout and by what is left of the readiness
    /// timeout counted from `start`.
    async fn check_dependencies(&self, start: Instant) -> Vec<DependencyResult> {
        let left = self.timeout.saturating_sub(start.elapsed());
        let checks = self.dependencies.iter().map(|d| {
            let bound = d.timeout.min(left);
            async move {
                let t = Instant::now();
                let sent = tokio::time::timeout(bound, self.http.get(d.url.clone()).send()).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let (status, error) = match sent {
                    Ok(Ok(resp)) => (Some(resp.status().as_u16()), None),
                    Ok(Err(e)) => (None, Some(without_url(&e))),
                    Err(_) => (
                        None,
                        Some(format!("no answer within {} ms", bound.as_millis())),
                    ),
                };
                DependencyResult {
                    url: d.label(),
                    ok: status == Some(d.expect_status),
                    status,
                    expect_status: d.expect_status,
                    error,
                    ms,
                }
            }
        });
        futures_util::future::join_all(checks).await
    }
}

/// A request error's text without its URL (which may carry a secret in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// The era hint for the next probe: the era a passing probe found, else detect again.
pub(crate) fn next_hint(ready: bool, era: Option<Era>) -> EraHint {
    match (ready, era) {
        (true, Some(Era::Modern)) => EraHint::Modern,
        (true, Some(Era::Legacy)) => EraHint::Legacy,
        (true, Some(Era::Sse)) => EraHint::Sse,
        _ => EraHint::Auto,
    }
}

fn timeout_report(label: &str, after: Duration) -> ProbeReport {
    let reason = lifeline_mcp::Reason::Timeout;
    ProbeReport::failed(
        label.to_owned(),
        lifeline_mcp::probe::Failure::new(
            reason,
            format!("the readiness probe did not finish within {after:?}"),
        ),
        lifeline_mcp::probe::Timings::default(),
        String::new(),
    )
}
