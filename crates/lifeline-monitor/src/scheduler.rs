//! The scheduler: each target on its own interval, phases spread so a fleet does not probe in lock-step, a
//! global cap on probes in flight, and never two probes of one target at once (a due probe whose previous one
//! still runs is skipped and counted). Its stop follows the phases of the leadership term's [`Shutdown`]: at
//! `Refusing` it stops starting probes and waits for the ones in flight, up to the grace period or until
//! `Forcing`, whichever comes first; their results are sent to the recorder, which writes them before exit.
//! Each probe counts in the monitor's [`InFlight`] from its start until its result is queued.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lifeline_core::{InFlight, Phase as StopPhase, Shutdown};
use lifeline_mcp::probe::{Failure, Phase, ProbeReport, Timings};
use lifeline_mcp::Reason;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::TargetConfig;
use crate::metrics::Metrics;
use crate::prober::Prober;
use crate::shards::ShardView;
use crate::store::{shard_of, HeldShard, SHARDS};

/// Extra time past a target's timeout before the scheduler gives up on a probe that overran it.
const OVERRUN_MARGIN: Duration = Duration::from_secs(5);
/// The targets of a newly taken shard are probed within this much (less when their interval is shorter).
const TAKEOVER_SPREAD: Duration = Duration::from_millis(500);
/// The first round of probes is spread over at most this much per target (so one target starts at once).
const FIRST_ROUND_SPREAD_PER_TARGET: Duration = Duration::from_millis(50);

/// One probe's result, on its way to the recorder.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Index into the configured targets.
    pub(crate) idx: usize,
    /// Probe start, Unix ms.
    pub(crate) at_ms: i64,
    /// The report.
    pub(crate) report: ProbeReport,
    /// The target's shard and the epoch this replica held it under when the probe started: the write is
    /// fenced on it.
    pub(crate) term: HeldShard,
}

pub(crate) fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn phase_offset(name: &str, spread: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(h.finish() % spread_ms)
}

/// Sleeps until `due`, or forever when nothing is due (every target parked).
async fn sleep_until_or_forever(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The report for a probe that overran its timeout by [`OVERRUN_MARGIN`].
fn overrun_report(target: &TargetConfig, started: &str) -> ProbeReport {
    let mut timings = Timings::default();
    timings.add(
        Phase::Total,
        (target.timeout + OVERRUN_MARGIN).as_secs_f64() * 1000.0,
    );
    ProbeReport::failed(
        target.display_url(),
        Failure::new(Reason::Timeout, "the probe overran its timeout"),
        timings,
        started.to_owned(),
    )
}

/// What the scheduler stops on and counts in.
pub(crate) struct Stop {
    /// The leadership term's phases: `Refusing` stops scheduling, `Forcing` abandons probes in flight.
    pub(crate) term: Shutdown,
    /// Bound on the wait for probes in flight after `Refusing`.
    pub(crate) grace: Duration,
    /// Counts each probe from its start until its result is queued.
    pub(crate) inflight: InFlight,
    /// The shards this replica may probe now: a target whose shard is not held (or outside its trust window)
    /// keeps its place on the timetable but is not probed.
    pub(crate) shards: Arc<ShardView>,
}

/// Runs until `stop.term` reaches `Refusing`, then drains in-flight probes for at most `stop.grace` (less if
/// the term reaches `Forcing`).
pub(crate) async fn run(
    targets: Arc<Vec<TargetConfig>>,
    prober: Arc<dyn Prober>,
    tx: mpsc::Sender<Outcome>,
    max_concurrency: usize,
    stop: Stop,
    metrics: Arc<Metrics>,
) {
    let Stop {
        term,
        grace,
        inflight,
        shards,
    } = stop;
    let shard_of_target: Vec<u32> = targets.iter().map(|t| shard_of(&t.name)).collect();
    let refusing = term.reached(StopPhase::Refusing);
    tokio::pin!(refusing);
    let start = Instant::now();
    let first_spread_per =
        FIRST_ROUND_SPREAD_PER_TARGET * u32::try_from(targets.len()).unwrap_or(u32::MAX);
    let mut heap: BinaryHeap<Reverse<(Instant, usize)>> = targets
        .iter()
        .enumerate()
        // A multi-region target is probed by its regions' agents only; its holder judges their rounds.
        .filter(|(_, t)| !crate::agent::by_agents(t))
        .map(|(i, t)| {
            let spread = t.interval.min(first_spread_per);
            Reverse((start + phase_offset(&t.name, spread), i))
        })
        .collect();
    let in_flight: Vec<Arc<AtomicBool>> = targets
        .iter()
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    let semaphore = Arc::new(Semaphore::new(max_concurrency.max(1)));
    let mut tasks = JoinSet::new();

    // Targets of shards this replica does not hold (or no longer trusts), parked per shard until it takes them.
    let mut parked: Vec<Vec<usize>> = vec![Vec::new(); SHARDS as usize];
    loop {
        let due_next = heap.peek().map(|Reverse((due, _))| *due);
        tokio::select! {
            () = &mut refusing => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            () = shards.taken() => {
                // Newly taken shards: their targets are probed at once (spread over at most TAKEOVER_SPREAD),
                // so a takeover adds no wait for the next interval to the gap.
                let now = Instant::now();
                for (shard, idxs) in parked.iter_mut().enumerate() {
                    if idxs.is_empty() || shards.current(u32::try_from(shard).unwrap_or(u32::MAX)).is_none() {
                        continue;
                    }
                    for idx in idxs.drain(..) {
                        let t = &targets[idx];
                        heap.push(Reverse((now + phase_offset(&t.name, t.interval.min(TAKEOVER_SPREAD)), idx)));
                    }
                }
                continue;
            }
            () = sleep_until_or_forever(due_next) => {}
        }
        let Some(Reverse((due, idx))) = heap.pop() else {
            continue;
        };
        let target = &targets[idx];
        let shard = shard_of_target[idx];
        let Some(epoch) = shards.current(shard) else {
            // Another replica's shard, or ours outside its trust window: parked until taken.
            parked[shard as usize].push(idx);
            continue;
        };
        let mut next = due + target.interval;
        let now = Instant::now();
        if next <= now {
            // We fell behind (a saturated cap, a suspended process): resume on the interval from now.
            next = now + phase_offset(&target.name, target.interval.min(Duration::from_secs(1)));
        }
        heap.push(Reverse((next, idx)));
        let held = HeldShard {
            shard: i64::from(shard),
            epoch,
        };
        if in_flight[idx].load(Ordering::Acquire) {
            metrics.probes_skipped.inc();
            tracing::warn!(target.name = %target.name, "Probe skipped: the previous one is still running.");
            continue;
        }
        let permit = tokio::select! {
            () = &mut refusing => break,
            p = semaphore.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        // Counted before the phase is checked again: a drain that saw nothing in flight after `Refusing` began
        // cannot miss a probe started here, and none starts once it is `Refusing`.
        let unit = inflight.enter();
        if term.phase() >= StopPhase::Refusing {
            break;
        }
        in_flight[idx].store(true, Ordering::Release);
        let flag = in_flight[idx].clone();
        let targets = targets.clone();
        let prober = prober.clone();
        let tx = tx.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move {
            let target = &targets[idx];
            let at_ms = now_ms();
            metrics.probes_in_flight.inc();
            let report =
                match tokio::time::timeout(target.timeout + OVERRUN_MARGIN, prober.probe(target))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => overrun_report(target, ""),
                };
            metrics.probes_in_flight.dec();
            metrics.observe_phases(&report.timings_ms);
            if target.transaction.is_some() {
                if let Some(t) = report.transactions.first() {
                    metrics.observe_transaction(report.verdict, t);
                }
            }
            // Flag cleared only after the result is queued, so the target's results stay in order.
            let _ = tx
                .send(Outcome {
                    idx,
                    at_ms,
                    report,
                    term: held,
                })
                .await;
            flag.store(false, Ordering::Release);
            drop(permit);
            drop(unit);
        });
    }

    let deadline = Instant::now() + grace;
    if !tasks.is_empty() {
        tracing::info!(in_flight = tasks.len(), "Waiting for in-flight probes.");
    }
    let forcing = term.reached(StopPhase::Forcing);
    tokio::pin!(forcing);
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(_) => continue,
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(lost = tasks.len(), "Shutdown grace ran out; abandoning in-flight probes.");
            }
            () = &mut forcing => {
                tracing::warn!(lost = tasks.len(), "Shutdown forced; abandoning in-flight probes.");
            }
        }
        tasks.abort_all();
        break;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_offsets_stay_within_the_spread() {
        for name in ["a", "b", "everything", "x-1"] {
            assert!(phase_offset(name, Duration::from_secs(60)) < Duration::from_secs(60));
            assert_eq!(phase_offset(name, Duration::ZERO), Duration::ZERO);
        }
    }
}
