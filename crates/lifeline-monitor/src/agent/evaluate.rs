//! The central side's judgement of multi-region targets (issue 14, "Regions"), from the **store**, so every
//! replica agrees and a restart loses nothing. It runs on every replica, once a second, beside the scheduler:
//!
//! - **Rounds.** For each multi-region target whose shard this replica holds (inside its trust window), each
//!   complete round not yet judged (rounds are the target's interval aligned to the Unix epoch; a round is
//!   complete once it, the probe timeout and [`PUSH_GRACE`] are over) is read from `region_results` and
//!   decided by [`super::quorum::decide`]. `down` (and `regional` with `quorum.page_regional`) goes to the
//!   recorder as a failed probe of the target at the round's start, `up` and `regional` as a healthy one: the
//!   same hysteresis, incident transitions, outbox rows, stable keys and epoch fencing as a locally probed
//!   target. `unknown` goes nowhere: it never counts for or against the target. Where it resumes after a
//!   restart or a takeover comes from the store (the target's `last_checked_ms` is the last judged round's
//!   start), at most [`MAX_CATCHUP_ROUNDS`] back.
//!   Each judged round is also stored as the target's latest round (`region_rounds`: verdict, regions
//!   reporting, the regions' latest schema hashes), fenced on the shard's epoch.
//! - **The fleet**, on the holder of shard 0 only (fenced on shard 0's epoch), from one row per target (its
//!   latest judged round) and one per agent (the `agents` table), never a window of region results: "probe
//!   fleet degraded" while some target's latest judged round is `unknown`; an agent `stale` once it has
//!   pushed nothing for [`STALE_INTERVALS`] intervals of its region's targets; a target's tool-schema hash
//!   differing across regions in its latest judged round. Each is an episode of a fleet **subject**
//!   (`fleet:probes`, `agent:<name>`, `schema:<target>`: names no target can have), opened and resolved through
//!   the same incident machine, so each pages the alert providers once when it starts and once when it ends,
//!   with the stable keys of `docs/monitor-ha.md` (`lifeline/fleet:probes/<id>/opened`), and shows in
//!   `/api/v1/incidents`, never as a target incident.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::{Phase, Shutdown};
use lifeline_mcp::probe::{Failure, Phase as ProbePhase, ProbeReport, Timings};
use lifeline_mcp::Reason;
use serde_json::json;
use tokio::sync::{mpsc, Notify};

use super::metrics::{AgentLabels, RegionVerdictLabels};
use super::quorum::{decide, Quorum, RegionAttempt, RoundVerdict};
use super::RegionResult;
use crate::config::{Config, TargetConfig};
use crate::metrics::Metrics;
use crate::scheduler::{now_ms, Outcome};
use crate::shards::ShardView;
use crate::store::{
    shard_of, Fence, HeldShard, IncidentOp, JudgedRound, NewAlert, ProbeRow, RecordOp, Store,
    StoreError, TargetState,
};

/// Silent intervals after which an agent is `stale`: 3.
pub const STALE_INTERVALS: u32 = 3;
/// Time after a round's probe timeout before it is judged (pushes go every second): 3 s.
pub const PUSH_GRACE: Duration = Duration::from_secs(3);
/// An agent whose region has no target is never judged stale (it has nothing to push).
pub const IDLE_AGENT_INTERVAL: Duration = Duration::from_secs(60);
/// Rounds judged at most when a holder resumes (after a restart, a takeover or a store outage): 10; older
/// unjudged rounds are skipped.
pub const MAX_CATCHUP_ROUNDS: i64 = 10;
/// The fleet subject of "probe fleet degraded".
pub const FLEET_SUBJECT: &str = "fleet:probes";

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

/// The subject of agent `name` going stale: `agent:<name>`.
pub fn agent_subject(name: &str) -> String {
    format!("agent:{name}")
}

/// The subject of target `name`'s tool schema differing across regions: `schema:<name>`.
pub fn schema_subject(name: &str) -> String {
    format!("schema:{name}")
}

/// True for a fleet subject's name (target names cannot hold a `:`).
pub fn is_subject(name: &str) -> bool {
    name.contains(':')
}

/// The start of `t`'s last complete round at `now_ms` and its interval, both Unix ms.
pub fn last_complete_round(t: &TargetConfig, now_ms: i64) -> (i64, i64) {
    let interval = ms(t.interval).max(1);
    let judged_until = now_ms - ms(t.timeout + PUSH_GRACE);
    let end = judged_until - judged_until.rem_euclid(interval);
    (end - interval, interval)
}

/// The verdict of `t`'s round starting at `start_ms` from `rows` (any rows; those of other targets and
/// rounds are ignored).
pub fn round_verdict(t: &TargetConfig, rows: &[RegionResult], start_ms: i64) -> RoundVerdict {
    let Some(r) = &t.regions else {
        return RoundVerdict::Unknown { reporting: vec![] };
    };
    let interval = ms(t.interval).max(1);
    let attempts: Vec<RegionAttempt> = rows
        .iter()
        .filter(|x| {
            x.result.target == t.name
                && (start_ms..start_ms + interval).contains(&x.result.probed_at_ms)
        })
        .map(|x| RegionAttempt {
            region: x.region.clone(),
            attempt: x.result.attempt,
            up: x.result.up,
        })
        .collect();
    decide(&r.regions, &Quorum::from(r.quorum), &attempts)
}

/// The latest tool-schema hash each region reported for `t` in `rows`, by region: `None` when fewer than two
/// regions reported one (nothing to compare), else `(diverged, hashes)` with `diverged` true when they are not
/// all the same.
pub fn schema_hashes(
    t: &TargetConfig,
    rows: &[RegionResult],
) -> Option<(bool, BTreeMap<String, String>)> {
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for x in rows.iter().filter(|x| x.result.target == t.name) {
        if let Some(h) = &x.result.schema_hash {
            let e = latest
                .entry(x.region.clone())
                .or_insert((x.result.probed_at_ms, h.clone()));
            if x.result.probed_at_ms >= e.0 {
                *e = (x.result.probed_at_ms, h.clone());
            }
        }
    }
    if latest.len() < 2 {
        return None;
    }
    let distinct: BTreeSet<&String> = latest.values().map(|(_, h)| h).collect();
    let diverged = distinct.len() > 1;
    Some((
        diverged,
        latest.into_iter().map(|(r, (_, h))| (r, h)).collect(),
    ))
}

/// What the judge reads and writes.
pub(crate) struct Judge {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) view: Arc<ShardView>,
    pub(crate) tx: mpsc::Sender<Outcome>,
    pub(crate) metrics: Arc<Metrics>,
    /// This replica's name (the fence's owner).
    pub(crate) owner: String,
    pub(crate) alerts_queued: Arc<Notify>,
}

/// The judge's memory between ticks.
#[derive(Default)]
struct Memory {
    /// Per target index: the epoch it was judged under and the start of its last judged round.
    judged: HashMap<usize, (i64, i64)>,
    /// The shard-0 epoch the subjects were loaded under, and their states.
    subjects_epoch: Option<i64>,
    subjects: HashMap<String, TargetState>,
    /// Since when this replica judges the fleet (never-seen agents count as silent from here).
    fleet_since_ms: i64,
}

/// Judges every second until `term` reaches `Refusing` (then drops its sender, so the recorder can finish).
pub(crate) async fn run(j: Judge, term: Shutdown) {
    if !j.config.targets.iter().any(super::by_agents) {
        return;
    }
    let mut mem = Memory::default();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = term.reached(Phase::Refusing) => return,
            _ = every.tick() => {}
        }
        let now = now_ms();
        if let Err(e) = j.rounds(&mut mem, now).await {
            j.metrics.store_error("region_rounds");
            tracing::warn!(error = %e, "Judging region rounds failed; retrying next second.");
        }
        if let Err(e) = j.fleet(&mut mem, now).await {
            j.metrics.store_error("region_fleet");
            tracing::warn!(error = %e, "Judging the probe fleet failed; retrying next second.");
        }
        if j.tx.is_closed() {
            return;
        }
    }
}

impl Judge {
    /// Judges the due rounds of the held multi-region targets and hands their outcomes to the recorder.
    async fn rounds(&self, mem: &mut Memory, now: i64) -> Result<(), StoreError> {
        for (idx, t) in self.config.targets.iter().enumerate() {
            if !super::by_agents(t) {
                continue;
            }
            let shard = shard_of(&t.name);
            let Some(epoch) = self.view.current(shard) else {
                mem.judged.remove(&idx);
                continue;
            };
            let (last_start, interval) = last_complete_round(t, now);
            let judged = match mem.judged.get(&idx) {
                Some((e, at)) if *e == epoch => *at,
                // New term (start, takeover): resume where the store says the last holder stopped.
                _ => self
                    .store
                    .last_checked_ms(&t.name)
                    .await?
                    .unwrap_or(last_start - interval),
            };
            let first = (judged + interval).max(last_start - (MAX_CATCHUP_ROUNDS - 1) * interval);
            let first = first - first.rem_euclid(interval);
            mem.judged
                .insert(idx, (epoch, judged.max(first - interval)));
            if first > last_start {
                continue;
            }
            let rows = self
                .store
                .region_results_between(Some(&t.name), first, last_start + interval)
                .await?;
            let mut start = first;
            while start <= last_start {
                let v = round_verdict(t, &rows, start);
                self.export(t, &v);
                // Stored first (fenced on the shard's epoch), so the fleet check reads this round's verdict;
                // if the store fails, the round is judged again next second.
                let upto =
                    &rows[..rows.partition_point(|x| x.result.probed_at_ms < start + interval)];
                let judged = JudgedRound {
                    start_ms: start,
                    verdict: verdict_name(&v).to_owned(),
                    reporting: reporting(
                        &upto[upto.partition_point(|x| x.result.probed_at_ms < start)..],
                    ),
                    hashes: schema_hashes(t, upto).map(|(_, by)| by).unwrap_or_default(),
                };
                let term = HeldShard {
                    shard: i64::from(shard),
                    epoch,
                };
                self.store
                    .record_round(&t.name, &judged, &self.owner, term)
                    .await?;
                if let Some(report) = round_report(t, &rows, start, &v) {
                    let o = Outcome {
                        idx,
                        at_ms: start,
                        report,
                        term,
                    };
                    if self.tx.send(o).await.is_err() {
                        return Ok(()); // the recorder is gone: stopping
                    }
                }
                mem.judged.insert(idx, (epoch, start));
                start += interval;
            }
        }
        Ok(())
    }

    fn export(&self, t: &TargetConfig, v: &RoundVerdict) {
        let name = verdict_name(v);
        for label in VERDICTS {
            self.metrics
                .agents
                .region_verdict
                .get_or_create(&RegionVerdictLabels {
                    target: t.name.clone(),
                    verdict: label,
                })
                .set(i64::from(label == name));
        }
        match v {
            RoundVerdict::Down { failing } => {
                tracing::warn!(target.name = %t.name, failing = ?failing, "Round down from a quorum of regions.")
            }
            RoundVerdict::Regional { failing } => {
                tracing::info!(target.name = %t.name, failing = ?failing, "Round failing in some regions (regional).")
            }
            RoundVerdict::Unknown { reporting } => {
                tracing::debug!(target.name = %t.name, reporting = ?reporting, "Round unknown: too few regions reported.")
            }
            RoundVerdict::Up => {}
        }
    }

    /// On the holder of shard 0: the fleet's episodes (degraded, stale agents, schema divergence).
    async fn fleet(&self, mem: &mut Memory, now: i64) -> Result<(), StoreError> {
        let Some(epoch) = self.view.current(0) else {
            mem.subjects_epoch = None;
            mem.subjects.clear();
            return Ok(());
        };
        if mem.subjects_epoch != Some(epoch) {
            mem.subjects_epoch = Some(epoch);
            mem.subjects.clear();
            mem.fleet_since_ms = now;
        }
        let targets: Vec<&TargetConfig> = self
            .config
            .targets
            .iter()
            .filter(|t| super::by_agents(t))
            .collect();
        // One row per target (its latest judged round, written by its shard's holder) and per agent: never a
        // window of region results.
        let rounds = self.store.latest_rounds().await?;
        let seen = self.store.agents_seen(now).await?;

        let mut unknown = Vec::new();
        let mut want: Vec<(String, Option<String>)> = Vec::new();
        for t in &targets {
            let Some(round) = rounds.get(&t.name) else {
                continue; // never judged yet
            };
            let interval = ms(t.interval).max(1);
            // Rounds before this replica judged the fleet (a start, a takeover of shard 0), and its first
            // STALE_INTERVALS rounds, raise nothing: the agents get as long to report as they get before stale.
            if round.start_ms >= mem.fleet_since_ms + i64::from(STALE_INTERVALS) * interval
                && round.verdict == "unknown"
            {
                unknown.push(format!("{} ({} reporting)", t.name, round.reporting));
            }
            // Fewer than two regions with a hash (failing, cut off) says nothing: the episode stays as it is.
            if round.hashes.len() >= 2 {
                let diverged = round.hashes.values().collect::<BTreeSet<_>>().len() > 1;
                let list: Vec<String> = round
                    .hashes
                    .iter()
                    .map(|(r, h)| format!("{r} {}", h.get(..12).unwrap_or(h)))
                    .collect();
                let message = format!(
                    "{}: tool schema differs across regions: {}",
                    t.name,
                    list.join(", ")
                );
                want.push((schema_subject(&t.name), diverged.then_some(message)));
            }
        }
        self.metrics
            .agents
            .fleet_degraded
            .set(i64::from(!unknown.is_empty()));
        want.push((
            FLEET_SUBJECT.to_owned(),
            (!unknown.is_empty()).then(|| {
                format!(
                    "probe fleet degraded: too few regions reported for {}",
                    unknown.join(", ")
                )
            }),
        ));
        for a in &self.config.agents {
            let Some(interval) = targets
                .iter()
                .filter(|t| {
                    t.regions
                        .as_ref()
                        .is_some_and(|r| r.regions.contains(&a.region))
                })
                .map(|t| t.interval)
                .min()
            else {
                continue; // nothing assigned: nothing to push, never stale
            };
            let last = seen
                .get(&a.name)
                .and_then(|s| s.last_push_ms)
                .map_or(mem.fleet_since_ms, |p| p.max(mem.fleet_since_ms));
            let stale = now - last >= i64::from(STALE_INTERVALS) * ms(interval);
            self.metrics
                .agents
                .stale
                .get_or_create(&AgentLabels {
                    agent: a.name.clone(),
                })
                .set(i64::from(stale));
            want.push((
                agent_subject(&a.name),
                stale.then(|| {
                    format!(
                        "probe agent {} ({}) stale: nothing received for {} intervals of {}",
                        a.name,
                        a.region,
                        STALE_INTERVALS,
                        humantime::format_duration(interval)
                    )
                }),
            ));
        }

        let term = [HeldShard { shard: 0, epoch }];
        let mut queued = false;
        for (subject, episode) in want {
            let state = match mem.subjects.get(&subject) {
                Some(s) => s.clone(),
                None => {
                    let s = self.store.subject_state(&subject, now).await?;
                    mem.subjects.insert(subject.clone(), s.clone());
                    s
                }
            };
            let Some(op) = subject_op(&state, episode, now, &self.config) else {
                continue;
            };
            let fence = Fence {
                owner: &self.owner,
                terms: &term,
            };
            let done = self
                .store
                .record_fenced(std::slice::from_ref(&op), Some(fence))
                .await?;
            if done.rejected.first().copied().unwrap_or(true) {
                self.metrics.fenced_writes.inc();
                mem.subjects.clear();
                return Ok(()); // shard 0 moved on: its new holder judges the fleet
            }
            let mut next = op.state;
            if let IncidentOp::Open { at_ms, .. } = &op.incident {
                next.open_incident =
                    done.opened
                        .first()
                        .copied()
                        .flatten()
                        .map(|id| crate::store::OpenIncident {
                            id,
                            opened_ms: *at_ms,
                            last_notified_ms: *at_ms,
                            reminders: 0,
                        });
                tracing::warn!(subject = %subject, "Probe fleet episode opened.");
            } else {
                tracing::info!(subject = %subject, "Probe fleet episode resolved.");
            }
            queued = true;
            mem.subjects.insert(subject, next);
        }
        if queued {
            self.alerts_queued.notify_one();
        }
        Ok(())
    }
}

/// The regions that reported in `rows` (one round's).
fn reporting(rows: &[RegionResult]) -> i64 {
    let regions: BTreeSet<&str> = rows.iter().map(|x| x.region.as_str()).collect();
    i64::try_from(regions.len()).unwrap_or(i64::MAX)
}

/// The transition of a fleet subject: open with `episode`'s message when one is going on and none is open,
/// resolve when it is over; `None` when nothing changes.
fn subject_op(
    state: &TargetState,
    episode: Option<String>,
    at: i64,
    config: &Config,
) -> Option<RecordOp> {
    let open = episode.is_some();
    if open == state.open_incident.is_some() {
        return None;
    }
    let message = episode.unwrap_or_default();
    let context = json!({ "verdict": "fleet", "reason": null, "message": message, "at_ms": at });
    let alerts = config
        .alerts
        .iter()
        .map(|a| NewAlert {
            provider: a.name.clone(),
            due_ms: at,
            context: context.clone(),
        })
        .collect();
    let mut s = state.clone();
    s.last_checked_ms = Some(at);
    let report = ProbeReport::alive(String::new(), Timings::default(), String::new());
    let mut result = ProbeRow::from_report(&report, at, !open, false);
    let incident = match &state.open_incident {
        None => {
            result.message = Some(message.clone());
            IncidentOp::Open {
                at_ms: at,
                reason: None,
                message: Some(message.clone()),
                summary: message,
                alerts,
            }
        }
        Some(i) => {
            s.open_incident = None;
            IncidentOp::Resolve {
                incident_id: i.id,
                at_ms: at,
                summary: format!("{}: over", state.name),
                alerts,
            }
        }
    };
    Some(RecordOp {
        state: s,
        tools_json: None,
        result,
        events: Vec::new(),
        incident,
    })
}

/// The report a judged round hands to the recorder: failed for `down` (and for `regional` when
/// `quorum.page_regional`), healthy for `up` and `regional`, none for `unknown`.
fn round_report(
    t: &TargetConfig,
    rows: &[RegionResult],
    start: i64,
    v: &RoundVerdict,
) -> Option<ProbeReport> {
    let page_regional = t.regions.as_ref().is_some_and(|r| r.quorum.page_regional);
    let interval = ms(t.interval).max(1);
    let in_round: Vec<&RegionResult> = rows
        .iter()
        .filter(|x| (start..start + interval).contains(&x.result.probed_at_ms))
        .collect();
    let mut latencies: Vec<u64> = in_round.iter().map(|x| x.result.latency_ms).collect();
    latencies.sort_unstable();
    let mut timings = Timings::default();
    if let Some(median) = latencies.get(latencies.len() / 2) {
        timings.add(ProbePhase::Total, *median as f64);
    }
    let regions = t.regions.as_ref().map_or(0, |r| r.regions.len());
    let failing = match v {
        RoundVerdict::Unknown { .. } => return None,
        RoundVerdict::Down { failing } => Some(failing),
        RoundVerdict::Regional { failing } if page_regional => Some(failing),
        RoundVerdict::Up | RoundVerdict::Regional { .. } => None,
    };
    let Some(failing) = failing else {
        return Some(ProbeReport::alive(t.display_url(), timings, String::new()));
    };
    // The final attempt of each failing region says why.
    let mut why: BTreeMap<&str, (u32, Option<Reason>, Option<&str>)> = BTreeMap::new();
    for x in in_round.iter().filter(|x| !x.result.up) {
        let e = why.entry(x.region.as_str()).or_insert((0, None, None));
        if x.result.attempt >= e.0 {
            *e = (x.result.attempt, x.result.reason, x.result.error.as_deref());
        }
    }
    let reason = why
        .values()
        .find_map(|(_, r, _)| *r)
        .unwrap_or(Reason::Timeout);
    let detail: Vec<String> = failing
        .iter()
        .map(|r| match why.get(r.as_str()) {
            Some((_, _, Some(e))) => format!("{r}: {e}"),
            Some((_, Some(reason), None)) => format!("{r}: {}", reason.as_str()),
            _ => r.clone(),
        })
        .collect();
    let message = format!(
        "failing in {} of {regions} regions ({})",
        failing.len(),
        detail.join("; ")
    );
    Some(ProbeReport::failed(
        t.display_url(),
        Failure::new(reason, message),
        timings,
        String::new(),
    ))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The last complete round of every multi-region target at `now_ms`, by target name, from one read of the
/// store's recent window (the status page and the target list show it).
///
/// Errors: [`StoreError`] when the database fails.
pub async fn regions_views(
    store: &Store,
    config: &Config,
    now_ms: i64,
) -> Result<HashMap<String, crate::web::snapshot::RegionsView>, StoreError> {
    let targets: Vec<&TargetConfig> = config
        .targets
        .iter()
        .filter(|t| super::by_agents(t))
        .collect();
    let Some(widest) = targets
        .iter()
        .map(|t| 2 * ms(t.interval) + ms(t.timeout + PUSH_GRACE))
        .max()
    else {
        return Ok(HashMap::new());
    };
    let rows = store
        .region_results_between(None, now_ms - widest, i64::MAX)
        .await?;
    Ok(targets
        .into_iter()
        .map(|t| {
            let (start, interval) = last_complete_round(t, now_ms);
            let v = round_verdict(t, &rows, start);
            let regions = t
                .regions
                .iter()
                .flat_map(|r| &r.regions)
                .map(|region| {
                    let last = rows
                        .iter()
                        .filter(|x| {
                            x.result.target == t.name
                                && &x.region == region
                                && (start..start + interval).contains(&x.result.probed_at_ms)
                        })
                        .max_by_key(|x| x.result.attempt)
                        .map(|x| x.result.up);
                    (region.clone(), last)
                })
                .collect();
            (
                t.name.clone(),
                crate::web::snapshot::RegionsView {
                    verdict: verdict_name(&v),
                    regions,
                },
            )
        })
        .collect())
}

/// The region × time view of `t` (`None` or without regions: empty): per configured region, 24 hourly
/// `(up, total)` counts of `rows` from `from_ms` (an hour's start), oldest first.
pub fn region_hours(
    t: Option<&TargetConfig>,
    rows: &[RegionResult],
    from_ms: i64,
) -> Vec<(String, Vec<(u32, u32)>)> {
    const HOUR_MS: i64 = 3_600_000;
    let Some(regions) = t.and_then(|t| t.regions.as_ref()) else {
        return Vec::new();
    };
    regions
        .regions
        .iter()
        .map(|region| {
            let mut hours = vec![(0u32, 0u32); 24];
            for x in rows.iter().filter(|x| &x.region == region) {
                let h = (x.result.probed_at_ms - from_ms).div_euclid(HOUR_MS);
                if let Some(c) = usize::try_from(h).ok().and_then(|h| hours.get_mut(h)) {
                    c.0 += u32::from(x.result.up);
                    c.1 += 1;
                }
            }
            (region.clone(), hours)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(page_regional: bool) -> TargetConfig {
        let yaml = format!(
            "agents:\n  - {{ name: a, region: a, token_files: [f] }}\n  - {{ name: b, region: b, token_files: [f] }}\n  \
             - {{ name: c, region: c, token_files: [f] }}\ntargets:\n  - name: t\n    url: http://127.0.0.1:9/mcp\n    \
             interval: 10s\n    timeout: 2s\n    regions: [a, b, c]\n    quorum: {{ page_regional: {page_regional} }}\n"
        );
        Config::from_yaml(&yaml, &|_| None)
            .unwrap()
            .targets
            .remove(0)
    }

    fn row(region: &str, at: i64, up: bool, hash: Option<&str>) -> RegionResult {
        RegionResult {
            region: region.into(),
            agent: region.into(),
            received_ms: at,
            result: super::super::AgentResult {
                target: "t".into(),
                probed_at_ms: at,
                attempt: 0,
                up,
                latency_ms: 10,
                error: (!up).then(|| "connection refused".to_owned()),
                reason: (!up).then_some(Reason::ConnectRefused),
                schema_hash: hash.map(str::to_owned),
            },
        }
    }

    #[test]
    fn rounds_become_reports_only_down_pages_unless_regional_is_configured() {
        let rows = [
            row("a", 10_100, false, None),
            row("b", 10_200, true, Some("h")),
            row("c", 10_300, true, Some("h")),
            row("a", 20_100, false, None),
            row("b", 20_200, false, None),
            row("c", 30_300, true, None),
        ];
        for (page_regional, start, want) in [
            (false, 10_000, Some(true)),  // regional: shown, counted as up
            (true, 10_000, Some(false)),  // regional paged: a failure
            (false, 20_000, Some(false)), // down
            (false, 30_000, None),        // unknown: nothing
        ] {
            let t = target(page_regional);
            let v = round_verdict(&t, &rows, start);
            let r = round_report(&t, &rows, start, &v);
            assert_eq!(r.as_ref().map(|r| r.is_usable()), want, "{start} {v:?}");
        }
        let t = target(false);
        let down = round_report(&t, &rows, 20_000, &round_verdict(&t, &rows, 20_000)).unwrap();
        assert_eq!(down.reason, Some(Reason::ConnectRefused));
        assert_eq!(
            down.failure.unwrap().message,
            "failing in 2 of 3 regions (a: connection refused; b: connection refused)"
        );
        // A round is judged once it, the probe timeout and the push grace are over.
        assert_eq!(last_complete_round(&t, 35_000), (20_000, 10_000));
    }

    #[test]
    fn schema_hashes_compare_each_regions_latest() {
        let t = target(false);
        assert_eq!(schema_hashes(&t, &[row("a", 1, true, Some("h1"))]), None);
        let same = [row("a", 1, true, Some("h1")), row("b", 2, true, Some("h1"))];
        assert!(!schema_hashes(&t, &same).unwrap().0);
        let mut moved = same.to_vec();
        moved.push(row("b", 3, true, Some("h2")));
        let (diverged, by) = schema_hashes(&t, &moved).unwrap();
        assert!(diverged);
        assert_eq!(by["b"], "h2");
    }

    #[test]
    fn a_fleet_subject_opens_once_and_resolves_once() {
        let config = Config::from_yaml(
            "targets:\n  - { name: t, url: \"http://127.0.0.1:9/mcp\" }\nalerts:\n  - { type: webhook, url: \"http://127.0.0.1:9/\" }\n",
            &|_| None,
        )
        .unwrap();
        let mut s = TargetState {
            id: 7,
            name: FLEET_SUBJECT.into(),
            ..TargetState::default()
        };
        assert!(subject_op(&s, None, 1, &config).is_none());
        let open = subject_op(&s, Some("degraded".into()), 1, &config).unwrap();
        assert!(matches!(&open.incident, IncidentOp::Open { alerts, .. } if alerts.len() == 1));
        s.open_incident = Some(crate::store::OpenIncident {
            id: 3,
            opened_ms: 1,
            last_notified_ms: 1,
            reminders: 0,
        });
        assert!(subject_op(&s, Some("degraded".into()), 2, &config).is_none());
        let done = subject_op(&s, None, 3, &config).unwrap();
        assert!(matches!(
            done.incident,
            IncidentOp::Resolve { incident_id: 3, .. }
        ));
        assert!(is_subject(FLEET_SUBJECT) && is_subject(&agent_subject("a")) && !is_subject("api"));
    }
}
