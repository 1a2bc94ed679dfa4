//! The monitor's Prometheus metrics, all registered here (prometheus-client). Names follow
//! `lifeline_monitor_<name>_<unit>[_total]`; labels come from bounded sets (verdicts, alert kinds, outcomes)
//! or from the configured target and provider names.
//!
//! `lifeline_monitor_probe_phase_duration_seconds{phase}` is a histogram over every target (the phase names are
//! `lifeline_mcp::probe::Phase`, 15 at most); it has no `target` label on purpose: 10,000 targets times the
//! phases times the buckets would be millions of series. Per target, `lifeline_monitor_target_latency_seconds`
//! holds the last probe's total.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// `{verdict}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// Verdict label.
    pub verdict: String,
}

/// `{target}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target name.
    pub target: String,
}

/// `{target, verdict}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetVerdictLabels {
    /// Target name.
    pub target: String,
    /// Verdict label.
    pub verdict: String,
}

/// `{provider, kind, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// Provider name.
    pub provider: String,
    /// `opened`, `reminder`, `resolved`, or `resend` (a batch of firing alerts re-sent to Alertmanager).
    pub kind: String,
    /// `sent`, `failed`, `dropped`.
    pub outcome: String,
}

/// `{phase}`: a `lifeline_mcp::probe::Phase` label (`dns`, `connect`, `tls`, `first_byte`, …, `total`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The phase.
    pub phase: &'static str,
}

/// `{kind}`: a transaction step's kind (`tool`, `resource`, `prompt`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepKindLabels {
    /// The step kind.
    pub kind: String,
}

/// `{operation}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `record`, `rollup`, `prune`, `snapshot`, `lease`, `outbox`.
    pub operation: String,
}

/// Every metric of the monitor.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Probes finished, by verdict.
    pub probes: Family<VerdictLabels, Counter>,
    /// Due probes skipped because the previous one of the target still ran.
    pub probes_skipped: Counter,
    /// Probes running now.
    pub probes_in_flight: Gauge,
    /// Time per probe phase, over all targets.
    pub probe_phase_duration: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    /// Storage operations that failed.
    pub store_errors: Family<OperationLabels, Counter>,
    /// Alert sends by provider, kind and outcome.
    pub alert_sends: Family<AlertLabels, Counter>,
    /// 1 when the target's last probe counted as up.
    pub target_up: Family<TargetLabels, Gauge>,
    /// 1 for the target's last verdict.
    pub target_verdict: Family<TargetVerdictLabels, Gauge>,
    /// The target's last probe time in seconds.
    pub target_latency: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    /// Days left on the target's certificate.
    pub target_tls_days_left: Family<TargetLabels, Gauge>,
    /// Open incidents.
    pub incidents_open: Gauge,
    /// 1 while this replica holds shard 0, whose holder runs the rollups and Alertmanager re-sends.
    pub leader: Gauge,
    /// Shards whose lease this replica holds (issue 14).
    pub shards_held: Gauge,
    /// Writes rejected by their shard epoch: results and incident changes of a former shard holder (issue 14).
    pub fenced_writes: Counter,
    /// Alert sends given up after their last attempt (dead-lettered, `state = 'dead'` in the outbox).
    pub alerts_dead_lettered: Counter,
    /// Probe results waiting for the database in the recorder's outage buffer (issue 14).
    pub results_pending: Gauge,
    /// Probe results dropped unwritten: the oldest beyond the outage buffer's bound, or a batch the database
    /// refused for good.
    pub results_dropped: Counter,
    /// Transaction runs finished, by the transaction's verdict (the transaction target's own verdict is in
    /// `lifeline_monitor_target_verdict{target="<target>.<transaction>"}`).
    pub transaction_runs: Family<VerdictLabels, Counter>,
    /// Time per transaction step that got an answer, by step kind, over all transactions.
    pub transaction_step_duration: Family<StepKindLabels, Histogram, fn() -> Histogram>,
    /// The probe agents' and multi-region verdicts' metrics (`crate::agent::metrics`).
    pub agents: crate::agent::metrics::AgentMetrics,
}

/// 1 ms … ~65 s in ×2 steps: a loopback connect at the low end, a probe's whole timeout at the high end.
fn phase_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            probes: Family::default(),
            probes_skipped: Counter::default(),
            probes_in_flight: Gauge::default(),
            probe_phase_duration: Family::new_with_constructor(
                phase_histogram as fn() -> Histogram,
            ),
            store_errors: Family::default(),
            alert_sends: Family::default(),
            target_up: Family::default(),
            target_verdict: Family::default(),
            target_latency: Family::default(),
            target_tls_days_left: Family::default(),
            incidents_open: Gauge::default(),
            leader: Gauge::default(),
            shards_held: Gauge::default(),
            fenced_writes: Counter::default(),
            results_pending: Gauge::default(),
            results_dropped: Counter::default(),
            alerts_dead_lettered: Counter::default(),
            transaction_runs: Family::default(),
            transaction_step_duration: Family::new_with_constructor(
                phase_histogram as fn() -> Histogram,
            ),
            agents: Default::default(),
        };
        registry.register(
            "lifeline_monitor_probes",
            "Probes finished, by verdict",
            m.probes.clone(),
        );
        registry.register(
            "lifeline_monitor_probes_skipped",
            "Due probes skipped because the previous probe of the target was still running",
            m.probes_skipped.clone(),
        );
        registry.register(
            "lifeline_monitor_probes_in_flight",
            "Probes running now",
            m.probes_in_flight.clone(),
        );
        registry.register(
            "lifeline_monitor_probe_phase_duration_seconds",
            "Time spent in each phase of a probe (dns, connect, tls, first_byte, initialize, tools_list, ..., total), over all targets",
            m.probe_phase_duration.clone(),
        );
        registry.register(
            "lifeline_monitor_store_errors",
            "Storage operations that failed",
            m.store_errors.clone(),
        );
        registry.register(
            "lifeline_monitor_alert_sends",
            "Alert sends by provider, kind (opened, reminder, resolved; resend: an Alertmanager re-send batch) and outcome (sent, failed, dropped)",
            m.alert_sends.clone(),
        );
        registry.register(
            "lifeline_monitor_target_up",
            "1 when the target's last probe counted as up",
            m.target_up.clone(),
        );
        registry.register(
            "lifeline_monitor_target_verdict",
            "1 for the target's last verdict",
            m.target_verdict.clone(),
        );
        registry.register(
            "lifeline_monitor_target_latency_seconds",
            "Duration of the target's last probe",
            m.target_latency.clone(),
        );
        registry.register(
            "lifeline_monitor_target_tls_days_left",
            "Days until the target's certificate expires",
            m.target_tls_days_left.clone(),
        );
        registry.register(
            "lifeline_monitor_incidents_open",
            "Open incidents",
            m.incidents_open.clone(),
        );
        registry.register(
            "lifeline_monitor_leader",
            "1 while this replica holds shard 0 (it runs the rollups and the Alertmanager re-sends)",
            m.leader.clone(),
        );
        registry.register(
            "lifeline_monitor_shards_held",
            "Shards (of 128) whose lease this replica holds",
            m.shards_held.clone(),
        );
        registry.register(
            "lifeline_monitor_fenced_writes",
            "Probe results (with their incident changes) rejected because their shard epoch was no longer this replica's",
            m.fenced_writes.clone(),
        );
        registry.register(
            "lifeline_monitor_results_pending",
            "Probe results waiting for the database in the recorder's outage buffer",
            m.results_pending.clone(),
        );
        registry.register(
            "lifeline_monitor_results_dropped",
            "Probe results dropped unwritten (beyond the outage buffer's bound, or refused for good)",
            m.results_dropped.clone(),
        );
        registry.register(
            "lifeline_monitor_alerts_dead_lettered",
            "Alert sends given up after their last attempt",
            m.alerts_dead_lettered.clone(),
        );
        registry.register(
            "lifeline_monitor_transaction_runs",
            "Synthetic transaction runs finished, by verdict",
            m.transaction_runs.clone(),
        );
        registry.register(
            "lifeline_monitor_transaction_step_duration_seconds",
            "Time per answered transaction step, by kind",
            m.transaction_step_duration.clone(),
        );
        m.agents.register(&mut registry);
        Metrics { registry, ..m }
    }

    /// Counts a finished transaction run (`verdict` as judged, see `crate::prober::transaction_view`) and
    /// observes each answered step's latency.
    pub fn observe_transaction(
        &self,
        verdict: lifeline_mcp::Verdict,
        t: &lifeline_mcp::transaction::TransactionReport,
    ) {
        self.transaction_runs
            .get_or_create(&VerdictLabels {
                verdict: verdict.as_str().to_owned(),
            })
            .inc();
        for step in &t.steps {
            if let Some(ms) = step.latency_ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
                self.transaction_step_duration
                    .get_or_create(&StepKindLabels {
                        kind: step.kind.clone(),
                    })
                    .observe(ms / 1000.0);
            }
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Observes each phase a finished probe timed (`timings_ms` of its report, in milliseconds).
    pub fn observe_phases(&self, timings: &lifeline_mcp::probe::Timings) {
        for (phase, ms) in &timings.0 {
            if ms.is_finite() && *ms >= 0.0 {
                self.probe_phase_duration
                    .get_or_create(&PhaseLabels {
                        phase: phase.as_str(),
                    })
                    .observe(ms / 1000.0);
            }
        }
    }

    /// Counts a failed storage operation.
    pub fn store_error(&self, operation: &str) {
        self.store_errors
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::probe::{Phase, Timings};

    use super::*;

    #[test]
    fn phases_of_a_probe_land_in_their_histograms() {
        let m = Metrics::new();
        let mut t = Timings::default();
        t.add(Phase::Connect, 0.5);
        t.add(Phase::Initialize, 12.0);
        t.add(Phase::Total, 20.0);
        t.add(Phase::Dns, f64::NAN);
        m.observe_phases(&t);
        let text = m.encode();
        for needle in [
            "lifeline_monitor_probe_phase_duration_seconds_count{phase=\"connect\"} 1",
            "lifeline_monitor_probe_phase_duration_seconds_bucket{le=\"0.001\",phase=\"connect\"} 1",
            "lifeline_monitor_probe_phase_duration_seconds_bucket{le=\"0.008\",phase=\"initialize\"} 0",
            "lifeline_monitor_probe_phase_duration_seconds_bucket{le=\"0.016\",phase=\"initialize\"} 1",
            "lifeline_monitor_probe_phase_duration_seconds_sum{phase=\"total\"} 0.02",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(
            !text.contains("phase=\"dns\""),
            "a NaN timing is not observed:\n{text}"
        );
    }
}
