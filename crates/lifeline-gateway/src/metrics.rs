//! The gateway's Prometheus metrics, all registered here (prometheus-client), labels from bounded sets:
//!
//! | name | type | labels |
//! |---|---|---|
//! | `lifeline_gateway_sessions_active` | gauge | |
//! | `lifeline_gateway_sessions_max` | gauge | | (`--max-sessions`, the bound on legacy sessions)
//! | `lifeline_gateway_requests_in_flight` | gauge | |
//! | `lifeline_gateway_requests_total` | counter | `method` (MCP method, see `rpc::method_label`), `status` (HTTP) |
//! | `lifeline_gateway_request_duration_seconds` | histogram | `method`; exemplars `trace_id` when traces are on |
//! | `lifeline_gateway_upstream_errors_total` | counter | `reason` (`connect`, `timeout`, `protocol`, `body`, …) |
//! | `lifeline_gateway_rejected_total` | counter | `reason` (`origin`, `host`, `accept`, `content_type`, `body_too_large`, `max_sessions`, `draining`, `header_mismatch`, `batch_with_auth`, `invalid_with_auth`) |
//! | `lifeline_gateway_sessions_expired_total` | counter | |
//! | `lifeline_gateway_readiness_probes_total` | counter | `result` (`ready`, `not_ready`) |
//! | `lifeline_gateway_upstream_ready` | gauge | | (1 when the last readiness probe of the upstream passed; 0 when it failed, and before the first probe)
//! | `lifeline_gateway_state` | gauge | `state` (`starting`, `ready`, `draining`, `stopped`): 1 for the current one |
//! | `lifeline_gateway_stdio_restarts_total` | counter | | (stdio pool children restarted after they ended or failed to start)
//! | `lifeline_gateway_stdio_children` | gauge | | (stdio children running: initialized pool children, or session children)
//! | `lifeline_gateway_drain_deadline_timestamp_seconds` | gauge | | (Unix time at which the drain cuts what is still in flight; 0 until a drain starts)
//! | `lifeline_gateway_upstream_endpoint_*` | | `endpoint` | per pool endpoint: `healthy`, `draining`, `requests_total`, `errors_total{reason}`, `ejections_total` (see `metrics/endpoints.rs`: at most 64 endpoints labelled)
//! | `lifeline_gateway_federation_*` | | `server` | per federated server: `server_ready`, `server_state_changes_total{state}`, `requests_total{result}` (see `metrics/federation.rs`) |
//! | `lifeline_gateway_auth_decisions_total` | counter | `outcome` (`allowed`, `denied`, `unavailable`), `reason` (`auth::Reason`: `jwt`, `introspection`, `api_key`; `missing`, `malformed`, `expired`, `bad_signature`, `wrong_audience`, `wrong_issuer`, `unknown_key`, `inactive`, `insufficient_scope`, `rate_limited`; `jwks_unavailable`, `introspection_unavailable`) |
//! | `lifeline_gateway_auth_jwks_refreshes_total` | counter | `trigger` (`expired`: first use or lifetime over, `unknown_kid`), `result` (`ok`, `error`, `rate_limited`: an unknown-`kid` refetch refused by `jwks_refetch_interval`) |
//! | `lifeline_gateway_auth_introspection_duration_seconds` | histogram | `result` (`active`, `inactive`, `error`); calls actually made (cache misses) |
//! | `lifeline_gateway_auth_api_keys_reloads_total` | counter | `result` (`ok`: new keys in force, `error`: the file did not parse, the old keys stay) |
//! | `lifeline_gateway_session_recoveries_total` | counter | `result` (`sessions::RECOVERY_RESULTS`: `recovered`, `failed`, `in_flight_error`): transparent recovery of sealed sessions |
//!
//! Request duration runs from the request's arrival until its response body ends (streams included). When
//! OpenTelemetry traces are on, each bucket keeps the last sampled request's trace id as an OpenMetrics exemplar
//! (`…_bucket{le="0.004",method="tools/call"} 7 # {trace_id="4bf9…4736"} 0.0031`), so a slow bucket links to a
//! trace; `/metrics` is served as OpenMetrics text, the format Prometheus reads exemplars from (with
//! `--enable-feature=exemplar-storage`).
//!
//! A forced drain cannot be counted after the fact: the admin listener closes when the drain is forced and the
//! process exits right after, so no scrape would ever see such a counter move. What a scrape can see is the
//! deadline (`lifeline_gateway_drain_deadline_timestamp_seconds`) next to the requests still in flight; the
//! `LifelineGatewayDrainForced` rule in `deploy/observability/` fires on that (`docs/observability.md`).

use std::sync::atomic::AtomicU64;
use std::sync::{PoisonError, RwLock};

mod endpoints;
mod federation;

pub(crate) use endpoints::{EndpointFamilies, EndpointMetrics, ERROR_REASONS};
pub(crate) use federation::FederationFamilies;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Lifecycle states as reported by `/healthz` and `lifeline_gateway_state`.
pub(crate) const STATES: [&str; 4] = ["starting", "ready", "draining", "stopped"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// An exemplar's label set: the W3C trace id (32 lowercase hex digits).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceLabel {
    trace_id: String,
}

type DurationHistogram = HistogramWithExemplars<TraceLabel>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    trigger: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The request series of one method label with status 200, resolved once: the handles share their values
/// with the families' series (prometheus-client metrics are `Arc`s), so `/metrics` shows one series.
struct HotSeries {
    method: &'static str,
    ok: Counter,
    duration: DurationHistogram,
}

/// Bound on [`HotSeries`] entries (the method labels are a bounded set, `rpc::method_label`, smaller than this).
const HOT_SERIES_MAX: usize = 64;

/// Every gateway metric, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    /// Resolved `requests`/`duration` series of status 200, by method (see [`Metrics::request_done`]); a short
    /// list scanned by label, under a lock only written when a method is first seen.
    hot: RwLock<Vec<HotSeries>>,
    sessions_active: Gauge,
    in_flight: Gauge,
    requests: Family<RequestLabels, Counter>,
    duration: Family<MethodLabel, DurationHistogram, fn() -> DurationHistogram>,
    upstream_errors: Family<ReasonLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    sessions_expired: Counter,
    readiness_probes: Family<ResultLabel, Counter>,
    state: Family<StateLabel, Gauge>,
    stdio_restarts: Counter,
    stdio_children: Gauge,
    sessions_max: Gauge,
    upstream_ready: Gauge,
    drain_deadline: Gauge<f64, AtomicU64>,
    /// The upstream pool's per-endpoint series.
    pub(crate) endpoints: EndpointFamilies,
    /// The federation's per-server series (`metrics/federation.rs`).
    pub(crate) federation: FederationFamilies,
    auth_decisions: Family<DecisionLabels, Counter>,
    /// The `allowed` series of `auth_decisions` by source (`jwt`, `introspection`, `api_key`), looked up once:
    /// every authenticated request counts one, and the family's lookup hashes both labels under a lock
    /// (issue 12). Made on first use, so a source never used has no series beyond what `auth_series` made.
    auth_allowed: [std::sync::OnceLock<Counter>; 3],
    jwks_refreshes: Family<RefreshLabels, Counter>,
    introspection: Family<ResultLabel, Histogram, fn() -> Histogram>,
    api_keys_reloads: Family<ResultLabel, Counter>,
    session_recoveries: Family<ResultLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn duration_histogram() -> DurationHistogram {
    // 0.5 ms … ~262 s in ×2 steps: proxy overhead at the low end, long tool calls and streams at the high end.
    DurationHistogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 20,
    ))
}

fn introspection_histogram() -> Histogram {
    // 1 ms … ~4 s in ×2 steps: a nearby authorization server at the low end, the fetch timeout at the top.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 13,
    ))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let sessions_active = Gauge::default();
        let in_flight = Gauge::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration =
            Family::<MethodLabel, DurationHistogram, fn() -> DurationHistogram>::new_with_constructor(
                duration_histogram as fn() -> DurationHistogram,
            );
        let upstream_errors = Family::<ReasonLabel, Counter>::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let sessions_expired = Counter::default();
        let readiness_probes = Family::<ResultLabel, Counter>::default();
        let state = Family::<StateLabel, Gauge>::default();
        let stdio_restarts = Counter::default();
        let stdio_children = Gauge::default();
        let sessions_max = Gauge::default();
        let upstream_ready = Gauge::default();
        let drain_deadline = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lifeline_gateway_sessions_max",
            "The bound on open legacy sessions (--max-sessions)",
            sessions_max.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_ready",
            "1 when the last readiness probe of the upstream passed; 0 when it failed, and before the first",
            upstream_ready.clone(),
        );
        registry.register(
            "lifeline_gateway_drain_deadline_timestamp_seconds",
            "Unix time at which the drain force-closes what is still in flight; 0 until a drain starts",
            drain_deadline.clone(),
        );
        registry.register(
            "lifeline_gateway_stdio_children",
            "Stdio children running: initialized pool children, or one per session in session mode",
            stdio_children.clone(),
        );
        registry.register(
            "lifeline_gateway_stdio_restarts",
            "Stdio pool children restarted after they ended or failed to start",
            stdio_restarts.clone(),
        );
        registry.register(
            "lifeline_gateway_sessions_active",
            "Sessions open: legacy Streamable HTTP sessions plus HTTP+SSE streams",
            sessions_active.clone(),
        );
        registry.register(
            "lifeline_gateway_requests_in_flight",
            "Client requests whose response has not ended yet, open streams included",
            in_flight.clone(),
        );
        registry.register(
            "lifeline_gateway_requests",
            "Client requests answered, by MCP method and HTTP status",
            requests.clone(),
        );
        registry.register(
            "lifeline_gateway_request_duration_seconds",
            "Time from a client request's arrival to the end of its response body, by MCP method",
            duration.clone(),
        );
        registry.register(
            "lifeline_gateway_upstream_errors",
            "Upstream failures, by reason",
            upstream_errors.clone(),
        );
        registry.register(
            "lifeline_gateway_rejected",
            "Requests the gateway refused itself, by reason",
            rejected.clone(),
        );
        registry.register(
            "lifeline_gateway_sessions_expired",
            "Idle sessions the gateway ended (DELETE sent upstream)",
            sessions_expired.clone(),
        );
        registry.register(
            "lifeline_gateway_readiness_probes",
            "Readiness probes of the upstream actually run (cache misses), by result",
            readiness_probes.clone(),
        );
        registry.register(
            "lifeline_gateway_state",
            "Lifecycle state: 1 for the current state",
            state.clone(),
        );
        let endpoints = EndpointFamilies::register(&mut registry);
        let federation = FederationFamilies::register(&mut registry);
        let auth_decisions = Family::<DecisionLabels, Counter>::default();
        let jwks_refreshes = Family::<RefreshLabels, Counter>::default();
        let introspection =
            Family::<ResultLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                introspection_histogram as fn() -> Histogram,
            );
        let api_keys_reloads = Family::<ResultLabel, Counter>::default();
        let session_recoveries = Family::<ResultLabel, Counter>::default();
        for result in crate::sessions::RECOVERY_RESULTS {
            // Every result from the start, at 0: a rate() over a series that appears late misses its first step.
            let _ = session_recoveries.get_or_create(&ResultLabel { result });
        }
        registry.register(
            "lifeline_gateway_session_recoveries",
            "Transparent recoveries of sealed sessions whose upstream was gone, by result",
            session_recoveries.clone(),
        );
        registry.register(
            "lifeline_gateway_auth_decisions",
            "Authentication and policy decisions on client requests, by outcome and reason",
            auth_decisions.clone(),
        );
        registry.register(
            "lifeline_gateway_auth_jwks_refreshes",
            "JWKS fetches from trusted issuers, by trigger and result",
            jwks_refreshes.clone(),
        );
        registry.register(
            "lifeline_gateway_auth_introspection_duration_seconds",
            "Duration of token introspection calls (cache misses), by result",
            introspection.clone(),
        );
        registry.register(
            "lifeline_gateway_auth_api_keys_reloads",
            "Re-reads of the API key file that changed the keys (ok) or failed to parse (error)",
            api_keys_reloads.clone(),
        );
        Metrics {
            endpoints,
            federation,
            registry,
            hot: RwLock::new(Vec::new()),
            auth_decisions,
            auth_allowed: Default::default(),
            jwks_refreshes,
            introspection,
            api_keys_reloads,
            session_recoveries,
            sessions_active,
            in_flight,
            requests,
            duration,
            upstream_errors,
            rejected,
            sessions_expired,
            readiness_probes,
            state,
            stdio_restarts,
            stdio_children,
            sessions_max,
            upstream_ready,
            drain_deadline,
        }
    }

    /// Records the configured bound on sessions (`--max-sessions`), for the "sessions near the limit" rule.
    pub(crate) fn set_sessions_max(&self, max: usize) {
        self.sessions_max
            .set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    /// Records that a drain started and will force what is still in flight `timeout` from now.
    pub(crate) fn drain_started(&self, timeout: Duration) {
        let deadline = SystemTime::now() + timeout;
        let secs = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.drain_deadline.set(secs);
    }

    /// A stdio pool child came up (`up`) or ended.
    pub(crate) fn stdio_child(&self, up: bool) {
        if up {
            self.stdio_children.inc();
        } else {
            self.stdio_children.dec();
        }
    }

    /// Counts a restart of a stdio pool child.
    pub(crate) fn stdio_restart(&self) {
        self.stdio_restarts.inc();
    }

    /// Counts a finished request; `trace_id` (a sampled trace's id, only when traces are on) becomes the
    /// exemplar of the duration's bucket.
    ///
    /// A `200` goes through [`HotSeries`]: its two series resolved once per method, instead of two family
    /// lookups (a SipHash of the label set under a lock each) per request.
    pub(crate) fn request_done(
        &self,
        method: &'static str,
        status: u16,
        elapsed: Duration,
        trace_id: Option<String>,
    ) {
        let secs = elapsed.as_secs_f64();
        let exemplar = trace_id.map(|trace_id| TraceLabel { trace_id });
        if status != 200 {
            self.requests
                .get_or_create(&RequestLabels { method, status })
                .inc();
            self.duration
                .get_or_create(&MethodLabel { method })
                .observe(secs, exemplar);
            return;
        }
        {
            let hot = self.hot.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = hot.iter().find(|s| s.method == method) {
                series.ok.inc();
                series.duration.observe(secs, exemplar);
                return;
            }
        }
        let series = HotSeries {
            method,
            ok: self
                .requests
                .get_or_create(&RequestLabels { method, status })
                .clone(),
            duration: self.duration.get_or_create(&MethodLabel { method }).clone(),
        };
        series.ok.inc();
        series.duration.observe(secs, exemplar);
        let mut hot = self.hot.write().unwrap_or_else(PoisonError::into_inner);
        if hot.len() < HOT_SERIES_MAX && !hot.iter().any(|s| s.method == method) {
            hot.push(series);
        }
    }

    pub(crate) fn upstream_error(&self, reason: &'static str) {
        self.upstream_errors
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn session_expired(&self) {
        self.sessions_expired.inc();
    }

    /// Counts a transparent recovery's outcome (`result`: one of `sessions::RECOVERY_RESULTS`).
    pub(crate) fn session_recovery(&self, result: &'static str) {
        self.session_recoveries
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts a readiness probe of the upstream and remembers its result (`lifeline_gateway_upstream_ready`).
    pub(crate) fn readiness_probe(&self, ready: bool) {
        self.set_upstream_ready(ready);
        let result = if ready { "ready" } else { "not_ready" };
        self.readiness_probes
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Sets `lifeline_gateway_upstream_ready` without counting a probe (a pool: 1 while an endpoint is healthy).
    pub(crate) fn set_upstream_ready(&self, ready: bool) {
        self.upstream_ready.set(i64::from(ready));
    }
    /// Counts an authentication or policy decision (`lifeline_gateway_auth_decisions_total`); the one recording
    /// point for the auth and policy layers.
    pub(crate) fn auth_decision(&self, outcome: crate::auth::Outcome, reason: crate::auth::Reason) {
        use crate::auth::{Outcome, Reason};
        let allowed = match (outcome, reason) {
            (Outcome::Allowed, Reason::Jwt) => Some(0),
            (Outcome::Allowed, Reason::Introspection) => Some(1),
            (Outcome::Allowed, Reason::ApiKey) => Some(2),
            _ => None,
        };
        if let Some(slot) = allowed.and_then(|i| self.auth_allowed.get(i)) {
            slot.get_or_init(|| {
                self.auth_decisions
                    .get_or_create(&DecisionLabels {
                        outcome: outcome.as_str(),
                        reason: reason.as_str(),
                    })
                    .clone()
            })
            .inc();
            return;
        }
        self.auth_decisions
            .get_or_create(&DecisionLabels {
                outcome: outcome.as_str(),
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Creates the auth series at zero, so that rates and alerts see them before the first event (a series
    /// that appears only with its first increment hides that increment from `rate()`): every decision in
    /// `decisions`, and the JWKS, introspection and API key series of the sources configured.
    pub(crate) fn auth_series(
        &self,
        decisions: &[(crate::auth::Outcome, crate::auth::Reason)],
        jwks: bool,
        introspection: bool,
        api_keys: bool,
    ) {
        for (outcome, reason) in decisions {
            // Creating the series is the point; the returned guard is not needed.
            let _ = self.auth_decisions.get_or_create(&DecisionLabels {
                outcome: outcome.as_str(),
                reason: reason.as_str(),
            });
        }
        if jwks {
            for trigger in ["expired", "unknown_kid"] {
                for result in ["ok", "error", "rate_limited"] {
                    let _ = self
                        .jwks_refreshes
                        .get_or_create(&RefreshLabels { trigger, result });
                }
            }
        }
        if introspection {
            for result in ["active", "inactive", "error"] {
                let _ = self.introspection.get_or_create(&ResultLabel { result });
            }
        }
        if api_keys {
            for result in ["ok", "error"] {
                let _ = self.api_keys_reloads.get_or_create(&ResultLabel { result });
            }
        }
    }

    /// Counts a JWKS fetch (or a refused unknown-`kid` refetch, `result` `rate_limited`).
    pub(crate) fn jwks_refresh(&self, trigger: &'static str, result: &'static str) {
        self.jwks_refreshes
            .get_or_create(&RefreshLabels { trigger, result })
            .inc();
    }

    /// Records one introspection call.
    pub(crate) fn introspection(&self, result: &'static str, elapsed: Duration) {
        self.introspection
            .get_or_create(&ResultLabel { result })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an API key file reload (`ok`) or a file that did not parse (`error`).
    pub(crate) fn api_keys_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.api_keys_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Renders the text exposition, after setting the gauges that are read from their source at scrape time.
    pub(crate) fn render(&self, sessions: usize, in_flight: usize, state: &'static str) -> String {
        self.sessions_active.set(sessions as i64);
        self.in_flight.set(in_flight as i64);
        for s in STATES {
            self.state
                .get_or_create(&StateLabel { state: s })
                .set(i64::from(s == state));
        }
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_names() {
        let m = Metrics::new();
        m.request_done("tools/list", 200, Duration::from_millis(3), None);
        m.request_done(
            "tools/call",
            200,
            Duration::from_millis(3),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
        );
        m.upstream_error("timeout");
        m.rejected("origin");
        m.stdio_restart();
        m.stdio_child(true);
        m.stdio_child(true);
        m.stdio_child(false);
        m.set_sessions_max(8);
        m.readiness_probe(false);
        m.auth_decision(
            crate::auth::Outcome::Denied,
            crate::auth::Reason::WrongAudience,
        );
        m.jwks_refresh("unknown_kid", "ok");
        m.introspection("active", Duration::from_millis(3));
        m.api_keys_reload(true);
        m.federation.orphaned("discarded");
        let text = m.render(3, 2, "ready");
        for needle in [
            "lifeline_gateway_sessions_active 3",
            "lifeline_gateway_requests_in_flight 2",
            "lifeline_gateway_requests_total{method=\"tools/list\",status=\"200\"} 1",
            "lifeline_gateway_request_duration_seconds_bucket{le=\"0.004\",method=\"tools/list\"} 1\n",
            "lifeline_gateway_request_duration_seconds_bucket{le=\"0.004\",method=\"tools/call\"} 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.003\n",
            "lifeline_gateway_upstream_errors_total{reason=\"timeout\"} 1",
            "lifeline_gateway_rejected_total{reason=\"origin\"} 1",
            "lifeline_gateway_state{state=\"ready\"} 1",
            "lifeline_gateway_state{state=\"draining\"} 0",
            "lifeline_gateway_stdio_restarts_total 1",
            "lifeline_gateway_stdio_children 1",
            "lifeline_gateway_sessions_max 8",
            "lifeline_gateway_upstream_ready 0",
            "lifeline_gateway_readiness_probes_total{result=\"not_ready\"} 1",
            "lifeline_gateway_drain_deadline_timestamp_seconds 0.0",
            "lifeline_gateway_auth_decisions_total{outcome=\"denied\",reason=\"wrong_audience\"} 1",
            "lifeline_gateway_auth_jwks_refreshes_total{trigger=\"unknown_kid\",result=\"ok\"} 1",
            "lifeline_gateway_auth_introspection_duration_seconds_bucket{le=\"0.004\",result=\"active\"} 1",
            "lifeline_gateway_auth_api_keys_reloads_total{result=\"ok\"} 1",
            "lifeline_gateway_federation_orphaned_requests_total{result=\"discarded\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn a_drain_publishes_its_deadline_and_a_probe_its_result() {
        let m = Metrics::new();
        m.readiness_probe(true);
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs_f64();
        m.drain_started(Duration::from_secs(25));
        let text = m.render(0, 0, "draining");
        assert!(text.contains("lifeline_gateway_upstream_ready 1"), "{text}");
        let deadline: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("lifeline_gateway_drain_deadline_timestamp_seconds "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no deadline in\n{text}"));
        // 25 s after the call, give or take a slow machine.
        assert!(
            (before + 24.0..before + 60.0).contains(&deadline),
            "deadline {deadline}, now {before}"
        );
    }
}
