//! The receiving replica's view of the probe fleet (issue 14, "Regions"): each agent's liveness as this
//! replica saw it (last seen, lag, results per minute; `GET /api/v1/agents` and the agent metrics) and the
//! per-region results it received, per target. In memory and bounded: the last [`MAX_RESULTS_PER_TARGET`]
//! region results of each target, and only configured agents and targets. Decisions are not made from it:
//! the shard holders judge rounds, and the holder of shard 0 staleness, from the store (`super::evaluate`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::quorum::{decide, Quorum, RegionAttempt, RoundVerdict};

/// Region results kept per target (all regions together): 256.
pub const MAX_RESULTS_PER_TARGET: usize = 256;
/// Silent intervals after which an agent is `stale`: 3.
pub const STALE_INTERVALS: u32 = 3;

/// One probe attempt of one agent, as pushed to `POST /api/v1/agent/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    /// The target's configured name.
    pub target: String,
    /// When the probe started, Unix milliseconds (the agent's clock); kept when the result arrives late.
    pub probed_at_ms: i64,
    /// The attempt within the round: 0 first, retries after. Only a region's last attempt counts.
    #[serde(default)]
    pub attempt: u32,
    /// True when the probe counted as up.
    pub up: bool,
    /// The probe's duration in milliseconds.
    pub latency_ms: u64,
    /// The failure's one-line cause, if it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The failure's reason label (`connect_refused`, `timeout`, … of `docs/check-json.md`), if it failed;
    /// absent from older agents (a `down` verdict then says `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<lifeline_mcp::Reason>,
    /// The SHA-256 (hex) of the canonical tool list the probe saw, if it got that far; compared across
    /// regions (a divergence is its own event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_hash: Option<String>,
}

/// A stored region result: the agent's result and who sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionResult {
    /// The agent's region.
    pub region: String,
    /// The agent's name.
    pub agent: String,
    /// When the central side received it, Unix milliseconds.
    pub received_ms: i64,
    /// The result.
    #[serde(flatten)]
    pub result: AgentResult,
}

/// An agent's liveness.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentSeen {
    /// Last push or pull, Unix milliseconds; `None` before the first.
    pub last_seen_ms: Option<i64>,
    /// Receive time minus probe time of the last result, milliseconds (large after a partition drains).
    pub lag_ms: Option<i64>,
    /// Results received in the last minute.
    pub results_last_minute: usize,
    /// Results received in all.
    pub results_total: u64,
    /// Receive times of the last minute's results (bounded by the minute).
    #[serde(skip)]
    recent: VecDeque<i64>,
}

/// The board: shared by the web handlers and the evaluation.
#[derive(Debug, Default)]
pub struct Board {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    results: HashMap<String, VecDeque<RegionResult>>,
    agents: BTreeMap<String, AgentSeen>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `agent` called in at `now_ms`.
    pub fn seen(&self, agent: &str, now_ms: i64) {
        let mut g = self.lock();
        let a = g.agents.entry(agent.to_owned()).or_default();
        a.last_seen_ms = Some(now_ms);
    }

    /// Adds results of `agent` in `region`, received at `now_ms`; the oldest of a target beyond
    /// [`MAX_RESULTS_PER_TARGET`] are dropped (the verdict only needs the recent rounds).
    pub fn ingest(&self, agent: &str, region: &str, results: Vec<AgentResult>, now_ms: i64) {
        let mut g = self.lock();
        let n = results.len();
        let mut lag = None;
        for r in results {
            lag = Some(now_ms - r.probed_at_ms);
            let q = g.results.entry(r.target.clone()).or_default();
            q.push_back(RegionResult {
                region: region.to_owned(),
                agent: agent.to_owned(),
                received_ms: now_ms,
                result: r,
            });
            while q.len() > MAX_RESULTS_PER_TARGET {
                q.pop_front();
            }
        }
        let a = g.agents.entry(agent.to_owned()).or_default();
        a.last_seen_ms = Some(now_ms);
        if lag.is_some() {
            a.lag_ms = lag;
        }
        a.results_total += n as u64;
        a.recent.extend(std::iter::repeat_n(now_ms, n.min(100_000)));
        while a.recent.front().is_some_and(|t| *t < now_ms - 60_000) {
            a.recent.pop_front();
        }
        a.results_last_minute = a.recent.len();
    }

    /// The region results of `target` whose probe time is in `[from_ms, to_ms)`, oldest first.
    pub fn results(&self, target: &str, from_ms: i64, to_ms: i64) -> Vec<RegionResult> {
        self.lock()
            .results
            .get(target)
            .map(|q| {
                q.iter()
                    .filter(|r| (from_ms..to_ms).contains(&r.result.probed_at_ms))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The verdict of the round `[from_ms, from_ms + interval_ms)` of `target` under `quorum`.
    pub fn verdict(
        &self,
        target: &str,
        regions: &[String],
        quorum: &Quorum,
        from_ms: i64,
        interval_ms: i64,
    ) -> RoundVerdict {
        let attempts: Vec<RegionAttempt> = self
            .results(target, from_ms, from_ms + interval_ms)
            .into_iter()
            .map(|r| RegionAttempt {
                region: r.region,
                attempt: r.result.attempt,
                up: r.result.up,
            })
            .collect();
        decide(regions, quorum, &attempts)
    }

    /// Each known agent's liveness, by name.
    pub fn agents(&self) -> BTreeMap<String, AgentSeen> {
        self.lock().agents.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(target: &str, at: i64, up: bool) -> AgentResult {
        AgentResult {
            target: target.into(),
            probed_at_ms: at,
            attempt: 0,
            up,
            latency_ms: 5,
            error: None,
            reason: None,
            schema_hash: None,
        }
    }

    #[test]
    fn late_results_count_in_their_probe_round() {
        let b = Board::default();
        let regions: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let q = Quorum::default_for(3);
        b.ingest("a1", "a", vec![res("t", 1_000, false)], 1_100);
        assert!(matches!(
            b.verdict("t", &regions, &q, 0, 10_000),
            RoundVerdict::Unknown { .. }
        ));
        b.ingest("b1", "b", vec![res("t", 2_000, false)], 2_100);
        assert!(matches!(
            b.verdict("t", &regions, &q, 0, 10_000),
            RoundVerdict::Down { .. }
        ));
        // c's result arrives a minute late (a drained spool): it lands in its probe round.
        b.ingest("c1", "c", vec![res("t", 3_000, true)], 63_000);
        assert_eq!(b.results("t", 0, 10_000).len(), 3);
        assert_eq!(b.agents()["c1"].lag_ms, Some(60_000));
        b.seen("a1", 72_000);
        assert_eq!(b.agents()["a1"].last_seen_ms, Some(72_000));
    }

    #[test]
    fn a_target_keeps_a_bounded_number_of_results() {
        let b = Board::default();
        let many = (0..MAX_RESULTS_PER_TARGET as i64 + 10)
            .map(|i| res("t", i, true))
            .collect();
        b.ingest("a1", "a", many, 1_000_000);
        assert_eq!(b.results("t", 0, i64::MAX).len(), MAX_RESULTS_PER_TARGET);
        assert_eq!(
            b.agents()["a1"].results_total,
            MAX_RESULTS_PER_TARGET as u64 + 10
        );
    }
}
