//! The central side's periodic look at the probe fleet (issue 14, "Regions"), every second while the web
//! server runs: the verdict of each multi-region target's **last complete round** (rounds are the target's
//! interval, aligned to the Unix epoch, judged once the round plus the probe timeout plus
//! [`PUSH_GRACE`] is over), each agent's liveness, and the metrics of both ([`super::metrics`]).
//!
//! What a user sees today: `down` and `regional` rounds are logged (warn, info) on change and exported in
//! `lifeline_monitor_region_verdict`; an `unknown` round is logged as "probe fleet degraded" and sets
//! `lifeline_monitor_probe_fleet_degraded`, never a target page; an agent silent for 3 intervals is logged
//! once as stale and sets `lifeline_monitor_agent_stale`. Multi-region verdicts do **not** open incidents
//! or send alerts yet (see `docs/monitor-ha.md` §Regions, "Not done").

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::metrics::{AgentLabels, RegionVerdictLabels};
use super::quorum::{Quorum, RoundVerdict};
use crate::scheduler::now_ms;
use crate::web::AppState;

/// Time after a round's probe timeout before it is judged (pushes go every second): 3 s.
pub const PUSH_GRACE: Duration = Duration::from_secs(3);
/// An agent whose region has no target is judged stale against this interval: 60 s.
pub const IDLE_AGENT_INTERVAL: Duration = Duration::from_secs(60);

const VERDICTS: [&str; 4] = ["up", "down", "regional", "unknown"];

/// The label of a verdict.
pub fn verdict_name(v: &RoundVerdict) -> &'static str {
    match v {
        RoundVerdict::Up => "up",
        RoundVerdict::Down { .. } => "down",
        RoundVerdict::Regional { .. } => "regional",
        RoundVerdict::Unknown { .. } => "unknown",
    }
}

/// State kept between ticks: the last verdict per target (log on change only).
#[derive(Debug, Default)]
pub struct Evaluator {
    last: HashMap<String, &'static str>,
    since_ms: i64,
}

impl Evaluator {
    /// An evaluator whose never-seen agents count as silent from `since_ms`.
    pub fn new(since_ms: i64) -> Self {
        Evaluator {
            last: HashMap::new(),
            since_ms,
        }
    }

    /// One look at `now_ms`; returns each multi-region target's verdict of its last complete round.
    pub fn tick(&mut self, app: &AppState, now_ms: i64) -> Vec<(String, RoundVerdict)> {
        let m = &app.metrics.agents;
        let mut out = Vec::new();
        let mut degraded = false;
        for t in app
            .config
            .targets
            .iter()
            .filter(|t| t.transaction.is_none())
        {
            let Some(r) = &t.regions else { continue };
            let interval = t.interval.as_millis().max(1) as i64;
            let judged_until = now_ms - (t.timeout + PUSH_GRACE).as_millis() as i64;
            let end = judged_until - judged_until.rem_euclid(interval);
            let q: Quorum = r.quorum.into();
            let v = app
                .board
                .verdict(&t.name, &r.regions, &q, end - interval, interval);
            let name = verdict_name(&v);
            for label in VERDICTS {
                m.region_verdict
                    .get_or_create(&RegionVerdictLabels {
                        target: t.name.clone(),
                        verdict: label,
                    })
                    .set(i64::from(label == name));
            }
            degraded |= name == "unknown";
            if self.last.insert(t.name.clone(), name) != Some(name) {
                match &v {
                    RoundVerdict::Down { failing } => {
                        tracing::warn!(target.name = %t.name, failing = ?failing, "Target down from a quorum of regions.")
                    }
                    RoundVerdict::Regional { failing } => {
                        tracing::info!(target.name = %t.name, failing = ?failing, "Target failing in some regions (regional, not paged).")
                    }
                    RoundVerdict::Unknown { reporting } => {
                        tracing::warn!(target.name = %t.name, reporting = ?reporting, "Probe fleet degraded: too few regions reported (no verdict on the target).")
                    }
                    RoundVerdict::Up => {
                        tracing::info!(target.name = %t.name, "Target up from every reporting region.")
                    }
                }
            }
            out.push((t.name.clone(), v));
        }
        m.fleet_degraded.set(i64::from(degraded));

        let seen = app.board.agents();
        for a in &app.config.agents {
            let interval = app
                .config
                .targets
                .iter()
                .filter(|t| {
                    t.regions
                        .as_ref()
                        .is_some_and(|r| r.regions.contains(&a.region))
                })
                .map(|t| t.interval)
                .min()
                .unwrap_or(IDLE_AGENT_INTERVAL);
            let labels = AgentLabels {
                agent: a.name.clone(),
            };
            for name in app.board.newly_stale(
                &[a.name.as_str()],
                interval.as_millis() as i64,
                self.since_ms,
                now_ms,
            ) {
                tracing::warn!(agent = %name, region = %a.region, "Probe agent stale: silent for 3 intervals.");
            }
            let s = seen.get(&a.name);
            let last = s.and_then(|s| s.last_seen_ms).unwrap_or(self.since_ms);
            let stale = now_ms - last
                >= i64::from(super::board::STALE_INTERVALS) * interval.as_millis() as i64;
            m.stale.get_or_create(&labels).set(i64::from(stale));
            if let Some(s) = s {
                if let Some(l) = s.last_seen_ms {
                    m.last_seen.get_or_create(&labels).set(l / 1000);
                }
                if let Some(l) = s.lag_ms {
                    m.lag.get_or_create(&labels).set(l as f64 / 1000.0);
                }
            }
        }
        out
    }
}

/// Ticks every second until `stop`.
pub async fn run(app: std::sync::Arc<AppState>, stop: CancellationToken) {
    let mut e = Evaluator::new(now_ms());
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        e.tick(&app, now_ms());
    }
}
