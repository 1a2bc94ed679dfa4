//! The state one probe carries through its phases: the deadline, the timings, the warnings and the facts found.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

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
    next_id: i64,
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
            next_id: 0,
        }
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

    /// Records `phase` as having taken from `since` until now.
    pub(crate) fn time(&mut self, phase: Phase, since: Instant) {
        self.timings.add(phase, ms(since.elapsed()));
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
