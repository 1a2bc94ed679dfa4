//! The monitor's Prometheus metrics, all registered here (prometheus-client). Names follow
//! `lifeline_monitor_<name>_<unit>[_total]`; labels come from bounded sets (verdicts, alert kinds, outcomes)
//! or from the configured target and provider names.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    /// 1 while this replica holds the scheduler lease.
    pub leader: Gauge,
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
            store_errors: Family::default(),
            alert_sends: Family::default(),
            target_up: Family::default(),
            target_verdict: Family::default(),
            target_latency: Family::default(),
            target_tls_days_left: Family::default(),
            incidents_open: Gauge::default(),
            leader: Gauge::default(),
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
            "1 while this replica holds the scheduler lease",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
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
