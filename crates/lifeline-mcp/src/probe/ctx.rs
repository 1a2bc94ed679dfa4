//! The state one probe carries through its phases: the deadline, the timings, the warnings and the facts found,
//! and, when traces are on (`lifeline_core::telemetry::traces_enabled`), the probe's spans.
//!
//! Span model: one root span `lifeline.probe` per probe (INTERNAL; `server.address`/`server.port` or
//! `network.transport = pipe`, then `lifeline.probe.verdict`, `mcp.protocol.version` and, unless healthy,
//! `error.type` = the verdict's reason), and one child per timed phase, opened by [`Ctx::clock`] and ended by
//! [`Ctx::time`]: the MCP steps as CLIENT spans named like the OpenTelemetry MCP semantic conventions' client
//! span (`{mcp.method.name} {target}`: `server/discover`, `initialize`, `notifications/initialized`,
//! `tools/list`, `ping`, `tools/call echo`; attribute `mcp.method.name`, `gen_ai.tool.name` for the call), the
//! others INTERNAL and named by their phase (`dns`, `connect`, `tls`, `spawn`, `sse_endpoint`, `origin_check`,
//! `close`). Every phase carries `lifeline.probe.phase`. Messages sent during a phase carry its context in
//! `params._meta` ([`Ctx::traced`]: HTTP in `HttpClient::post_rpc`, stdio at each send) and HTTP requests also
//! as `traceparent`/`tracestate` headers (`HttpClient::send`), so a gateway, server or stdio child that reads
//! either continues the trace.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use lifeline_core::telemetry::context::W3cContext;
use serde_json::Value;
use tracing::field::Empty;
use tracing::Span;

use super::config::ProbeOptions;
use super::report::{AuthInfo, Failure, Phase, ServerInfo, Timings, TlsInfo, ToolCallOutcome};
use crate::era::{Era, TransportKind};
use crate::verdict::{Reason, Warning};

/// How long cleanup (DELETE, stdio shutdown) may run after the probe's deadline has passed: a probe must never
/// leak a session because an earlier step used the whole budget.
pub(crate) const CLEANUP_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a ProbeOptions,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) timings: Timings,
    pub(crate) warnings: BTreeSet<Warning>,
    pub(crate) era: Option<Era>,
    pub(crate) transport: Option<TransportKind>,
    pub(crate) protocol_version: Option<String>,
    pub(crate) server_info: Option<ServerInfo>,
    pub(crate) capabilities: Option<Value>,
    pub(crate) tools: Option<Vec<Value>>,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) auth: Option<AuthInfo>,
    pub(crate) tool_call: Option<ToolCallOutcome>,
    /// True once a request carried a credential (`Authorization`: a bearer token, an OAuth token, a configured
    /// header): a 401/403 after it is `auth_failed`, not `auth_required`.
    pub(crate) credential_sent: bool,
    /// True once this probe obtained a token from the authorization server (a 401 to it is final).
    pub(crate) token_fetched: bool,
    /// True once this probe retried a request after a 401 (at most once per probe).
    pub(crate) auth_retried: bool,
    /// The transactions' reports, once they ran.
    pub(crate) transactions: Option<Vec<crate::transaction::TransactionReport>>,
    next_id: i64,
    /// The probe's root span (disabled when traces are off).
    pub(crate) span: Span,
    /// The open phase's span and the context its requests carry.
    phase: Option<(Phase, Span, Option<W3cContext>)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(opts: &'a ProbeOptions) -> Self {
        let started = Instant::now();
        Ctx {
            opts,
            started,
            deadline: started + opts.timeouts.total,
            timings: Timings::default(),
            warnings: BTreeSet::new(),
            era: None,
            transport: None,
            protocol_version: None,
            server_info: None,
            capabilities: None,
            tools: None,
            tls: None,
            auth: None,
            tool_call: None,
            credential_sent: false,
            token_fetched: false,
            auth_retried: false,
            transactions: None,
            next_id: 0,
            span: Span::none(),
            phase: None,
        }
    }

    /// Opens the root span for a probe of `target` (only when traces are on).
    pub(crate) fn trace(&mut self, target: &super::Target) {
        if !lifeline_core::telemetry::traces_enabled() {
            return;
        }
        let (address, port, transport) = match target {
            super::Target::Http(url) => (
                url.host_str().map(str::to_owned),
                url.port_or_known_default(),
                "tcp",
            ),
            super::Target::Stdio(_) => (None, None, "pipe"),
        };
        self.span = tracing::info_span!(
            target: "lifeline_mcp::probe",
            "lifeline.probe",
            otel.kind = "internal",
            otel.status_code = Empty,
            server.address = address.as_deref(),
            server.port = port.map(i64::from),
            network.transport = transport,
            mcp.protocol.version = Empty,
            lifeline.probe.verdict = Empty,
            error.type = Empty,
        );
    }

    /// Starts timing `phase` (see [`Ctx::time`]) and, when traces are on, opens its span (ending any other).
    pub(crate) fn clock(&mut self, phase: Phase) -> Instant {
        if !self.span.is_disabled() {
            let (name, method) = match phase {
                Phase::Discover => ("server/discover".to_owned(), Some("server/discover")),
                Phase::Initialize => ("initialize".to_owned(), Some("initialize")),
                Phase::Initialized => (
                    "notifications/initialized".to_owned(),
                    Some("notifications/initialized"),
                ),
                Phase::ToolsList => ("tools/list".to_owned(), Some("tools/list")),
                Phase::Ping => ("ping".to_owned(), Some("ping")),
                Phase::ToolsCall => (
                    match &self.opts.call {
                        Some(call) => format!("tools/call {}", call.name),
                        None => "tools/call".to_owned(),
                    },
                    Some("tools/call"),
                ),
                other => (other.as_str().to_owned(), None),
            };
            let span = tracing::info_span!(
                target: "lifeline_mcp::probe",
                parent: &self.span,
                "lifeline.probe.phase",
                otel.name = %name,
                otel.kind = if method.is_some() { "client" } else { "internal" },
                lifeline.probe.phase = phase.as_str(),
                mcp.method.name = method,
                gen_ai.tool.name = Empty,
                gen_ai.operation.name = Empty,
            );
            if let (Phase::ToolsCall, Some(call)) = (phase, &self.opts.call) {
                span.record("gen_ai.tool.name", call.name.as_str());
                span.record("gen_ai.operation.name", "execute_tool");
            }
            let w3c = lifeline_core::telemetry::context::outgoing(&span);
            self.phase = Some((phase, span, w3c));
        }
        Instant::now()
    }

    /// The trace context the requests of the open phase carry, when traces are on.
    pub(crate) fn outgoing(&self) -> Option<&W3cContext> {
        self.phase.as_ref().and_then(|(_, _, w3c)| w3c.as_ref())
    }

    /// `message` (a serialised JSON-RPC request or notification) with the open phase's trace context in its
    /// `params._meta` (see [`crate::jsonrpc::set_trace_context`]); unchanged when traces are off or no phase
    /// span is open.
    pub(crate) fn traced(&self, message: Vec<u8>) -> Vec<u8> {
        let Some(w3c) = self.outgoing() else {
            return message;
        };
        let Ok(mut value) = serde_json::from_slice::<Value>(&message) else {
            return message;
        };
        if !crate::jsonrpc::set_trace_context(&mut value, &w3c.traceparent, &w3c.tracestate) {
            return message;
        }
        serde_json::to_vec(&value).unwrap_or(message)
    }

    /// Records the outcome on the root span and ends it (called once, by `finish`).
    pub(crate) fn end_trace(&mut self, failure: Option<&Failure>) {
        self.phase = None;
        if self.span.is_disabled() {
            return;
        }
        if let Some(v) = &self.protocol_version {
            self.span.record("mcp.protocol.version", v.as_str());
        }
        let verdict = failure.map_or(crate::Verdict::Healthy, |f| f.reason.verdict());
        self.span.record("lifeline.probe.verdict", verdict.as_str());
        if let Some(f) = failure {
            self.span.record("error.type", f.reason.as_str());
            if verdict != crate::Verdict::Degraded {
                self.span.record("otel.status_code", "error");
            }
        }
        self.span = Span::none();
    }

    /// The next JSON-RPC request id (1, 2, …).
    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The bound for a phase: its own timeout (when set) capped by what is left of the total.
    pub(crate) fn budget(&self, own: Option<Duration>) -> Duration {
        let left = self.remaining();
        own.map_or(left, |own| own.min(left))
    }

    /// Runs `fut` within the phase's budget; on expiry, a `timeout` failure in `phase` (or `on_timeout`'s reason).
    pub(crate) async fn bounded<T>(
        &self,
        phase: Phase,
        own: Option<Duration>,
        fut: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let budget = self.budget(own);
        match tokio::time::timeout(budget, fut).await {
            Ok(r) => r,
            Err(_) => Err(timeout_failure(phase, budget)),
        }
    }

    pub(crate) fn warn(&mut self, w: Warning) {
        self.warnings.insert(w);
    }

    /// Records `phase` as having taken from `since` until now, and ends its span.
    pub(crate) fn time(&mut self, phase: Phase, since: Instant) {
        self.timings.add(phase, ms(since.elapsed()));
        if self
            .phase
            .as_ref()
            .is_some_and(|(open, _, _)| *open == phase)
        {
            self.phase = None;
        }
    }
}

pub(crate) fn timeout_failure(phase: Phase, budget: Duration) -> Failure {
    let reason = if phase == Phase::Connect {
        Reason::ConnectTimeout
    } else {
        Reason::Timeout
    };
    Failure::new(
        reason,
        format!(
            "no answer within {} ms ({})",
            budget.as_millis(),
            phase.as_str()
        ),
    )
    .in_phase(phase)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
