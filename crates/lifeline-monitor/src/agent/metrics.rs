//! The metrics of the probe fleet and of the multi-region verdicts (issue 14, "Regions"), registered in the
//! monitor's registry by [`crate::metrics::Metrics::new`]. Labels: configured agent and target names and the
//! four verdicts (bounded by the configuration).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{agent}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    /// The agent's configured name.
    pub agent: String,
}

/// `{target, verdict}` of a multi-region round: `up`, `down`, `regional`, `unknown`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionVerdictLabels {
    /// The target's name.
    pub target: String,
    /// The round verdict.
    pub verdict: &'static str,
}

/// The agent and region metrics.
#[derive(Debug, Default, Clone)]
pub struct AgentMetrics {
    /// `lifeline_monitor_agent_results_total{agent}`: results accepted from the agent.
    pub results: Family<AgentLabels, Counter>,
    /// `lifeline_monitor_agent_rejected_results_total`: results refused (target not assigned to the region).
    pub rejected: Counter,
    /// `lifeline_monitor_agent_last_seen_timestamp_seconds{agent}`: the agent's last call to any replica, Unix
    /// seconds, from the store ([`AgentMetrics::show_seen`]).
    pub last_seen: Family<AgentLabels, Gauge>,
    /// `lifeline_monitor_agent_lag_seconds{agent}`: receive time minus the newest probe time of its latest push
    /// with results (to any replica), from the store.
    pub lag: Family<AgentLabels, Gauge<f64, AtomicU64>>,
    /// `lifeline_monitor_agent_stale{agent}`: 1 while silent for 3 intervals.
    pub stale: Family<AgentLabels, Gauge>,
    /// `lifeline_monitor_region_verdict{target, verdict}`: 1 for the last complete round's verdict.
    pub region_verdict: Family<RegionVerdictLabels, Gauge>,
    /// `lifeline_monitor_probe_fleet_degraded`: 1 while some multi-region target's last round is `unknown`.
    pub fleet_degraded: Gauge,
}

impl AgentMetrics {
    /// Sets the last-seen and lag gauges of each agent in `agents` (the configured ones: the label set stays
    /// bounded; a stored row of an agent no longer configured is left out) from `seen`, the store's `agents`
    /// rows. Called by the snapshot builder, so every replica exports the same values.
    pub fn show_seen(
        &self,
        agents: &[crate::config::AgentConfig],
        seen: &std::collections::BTreeMap<String, crate::store::AgentSeen>,
    ) {
        self.last_seen.clear();
        self.lag.clear();
        for a in agents {
            let Some(s) = seen.get(&a.name) else {
                continue;
            };
            let labels = AgentLabels {
                agent: a.name.clone(),
            };
            if let Some(ms) = s.last_seen_ms {
                self.last_seen
                    .get_or_create(&labels)
                    .set(ms.div_euclid(1_000));
            }
            if let Some(ms) = s.lag_ms {
                self.lag.get_or_create(&labels).set(ms as f64 / 1_000.0);
            }
        }
    }

    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lifeline_monitor_agent_results",
            "Results accepted from each probe agent",
            self.results.clone(),
        );
        registry.register(
            "lifeline_monitor_agent_rejected_results",
            "Agent results refused because their target is not assigned to the agent's region",
            self.rejected.clone(),
        );
        registry.register(
            "lifeline_monitor_agent_last_seen_timestamp_seconds",
            "The probe agent's last call to any central replica, Unix seconds",
            self.last_seen.clone(),
        );
        registry.register(
            "lifeline_monitor_agent_lag_seconds",
            "Receive time minus the newest probe time of the agent's latest push (large while a spool drains)",
            self.lag.clone(),
        );
        registry.register(
            "lifeline_monitor_agent_stale",
            "1 while the agent has been silent for 3 intervals",
            self.stale.clone(),
        );
        registry.register(
            "lifeline_monitor_region_verdict",
            "1 for the verdict (up, down, regional, unknown) of the target's last complete multi-region round",
            self.region_verdict.clone(),
        );
        registry.register(
            "lifeline_monitor_probe_fleet_degraded",
            "1 while some multi-region target's last round had too few regions reporting (unknown)",
            self.fleet_degraded.clone(),
        );
    }
}
