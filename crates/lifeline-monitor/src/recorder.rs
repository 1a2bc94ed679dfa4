//! The recorder: the single writer of probe outcomes. It batches outcomes (up to [`MAX_BATCH`] or
//! `tuning.flush_every`), evaluates each against the target's in-memory state ([`crate::evaluate`]) and writes
//! the batch in one transaction. In-memory state only advances when the transaction commits. It runs until the
//! scheduler's sender is gone and the channel is empty, so every result handed over is written before exit.
//!
//! **Database outages** (issue 14): a batch whose write attempts all fail with a retryable error is not lost.
//! Its results go back to an outage buffer of at most [`MAX_PENDING`] results (the oldest beyond it are dropped
//! and counted in `lifeline_monitor_results_dropped_total`), retried every [`RETRY_EVERY`] and ahead of newer
//! results, so they are written in probe order once the database is back. They are evaluated again then, on
//! the state as last committed. Probing itself stops when a shard's trust window runs out (4/5 of the lease
//! ttl), which bounds what an outage can add to the buffer. A buffered result is still fenced: if the outage
//! outlasted its shard's lease and the shard was taken again (by any replica, a new epoch), it is rejected
//! and counted in `lifeline_monitor_fenced_writes_total`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use lifeline_mcp::ProbeReport;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

use crate::config::Config;
use crate::evaluate::{evaluate, Context};
use crate::metrics::{Metrics, VerdictLabels};
use crate::scheduler::Outcome;
use crate::shards::ShardView;
use crate::store::{Fence, HeldShard, IncidentOp, OpenIncident, RecordOp, Store, TargetState};

/// What the recorder's writes are fenced on: this replica's name and its view of the shards it holds.
pub(crate) struct Fencing {
    /// This replica's name (the `owner` of its shard leases).
    pub(crate) owner: String,
    /// The shards it holds now.
    pub(crate) shards: Arc<ShardView>,
}

/// Most outcomes written in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Attempts at writing one batch before it goes back to the outage buffer (a retryable error) or is dropped.
const WRITE_ATTEMPTS: u32 = 3;
/// Most results kept across a database outage: 20,000 is 12 s of 100,000 targets at 60 s, the trust window
/// of the default 15 s lease, after which nothing more is probed. A result is about 1-10 KiB in memory (its
/// report with the tool list), so at most ~200 MiB in the worst case.
pub(crate) const MAX_PENDING: usize = 20_000;
/// How often buffered results are retried while no new result arrives.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Writes outcomes from `rx` until it closes. `ids[i]` is the row id of `config.targets[i]`. The states of
/// the targets come from the shard manager as their shards are taken ([`ShardView::take_fresh`]).
pub(crate) async fn run(
    store: Store,
    config: Arc<Config>,
    ids: Vec<i64>,
    mut rx: mpsc::Receiver<Outcome>,
    metrics: Arc<Metrics>,
    alerts_queued: Arc<Notify>,
    fence: Fencing,
) {
    let mut states: HashMap<i64, TargetState> = HashMap::new();
    let mut buf: Vec<Outcome> = Vec::with_capacity(MAX_BATCH);
    // Results whose write failed for a retryable reason (the database is down), oldest first.
    let mut pending: VecDeque<Outcome> = VecDeque::new();
    let mut closed = false;
    while !closed || !pending.is_empty() {
        let got = if closed {
            0
        } else if pending.is_empty() {
            rx.recv_many(&mut buf, MAX_BATCH).await
        } else {
            tokio::time::timeout(RETRY_EVERY, rx.recv_many(&mut buf, MAX_BATCH))
                .await
                .unwrap_or(usize::MAX)
        };
        if got == 0 {
            closed = true;
        } else if got != usize::MAX {
            let deadline = tokio::time::Instant::now() + config.tuning.flush_every;
            while buf.len() < MAX_BATCH {
                let room = MAX_BATCH - buf.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut buf, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        pending.extend(buf.drain(..));
        if pending.len() > MAX_PENDING {
            let over = pending.len() - MAX_PENDING;
            pending.drain(..over);
            metrics.results_dropped.inc_by(over as u64);
            tracing::error!(
                dropped = over,
                bound = MAX_PENDING,
                "Outage buffer full: the oldest results were dropped."
            );
        }
        let w = Writer {
            store: &store,
            config: &config,
            ids: &ids,
            metrics: &metrics,
            alerts_queued: &alerts_queued,
            fence: &fence,
        };
        // Oldest first, one batch at a time; a batch that fails again goes back to the front and waits.
        while !pending.is_empty() {
            let n = pending.len().min(MAX_BATCH);
            let batch: Vec<Outcome> = pending.drain(..n).collect();
            if let Err(back) = write_batch(&w, &mut states, batch).await {
                if closed {
                    // Stopping with the database still down: nothing will write them.
                    metrics
                        .results_dropped
                        .inc_by((back.len() + pending.len()) as u64);
                    tracing::error!(
                        results = back.len() + pending.len(),
                        "Stopping with results unwritten: the database is unreachable."
                    );
                    pending.clear();
                } else {
                    for o in back.into_iter().rev() {
                        pending.push_front(o);
                    }
                }
                break;
            }
        }
        metrics
            .results_pending
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
    }
    tracing::debug!("Recorder finished.");
}

/// What a batch write reads.
struct Writer<'a> {
    store: &'a Store,
    config: &'a Config,
    ids: &'a [i64],
    metrics: &'a Metrics,
    alerts_queued: &'a Notify,
    fence: &'a Fencing,
}

/// Evaluates and writes `batch`. A batch whose attempts all failed with a retryable error is handed back
/// (`Err`, the results still fresh) for the outage buffer; the states did not advance.
async fn write_batch(
    w: &Writer<'_>,
    states: &mut HashMap<i64, TargetState>,
    batch: Vec<Outcome>,
) -> Result<(), Vec<Outcome>> {
    let Writer {
        store,
        config,
        ids,
        metrics,
        alerts_queued,
        fence,
    } = *w;
    // States read back for shards this replica just took replace what it remembered of them.
    for s in fence.shards.take_fresh() {
        states.insert(s.id, s);
    }
    // A result probed under an epoch another replica may have held since is a late write: dropped before it
    // is evaluated (so it cannot advance a state), and fenced again in the store's transaction. One of this
    // replica's unbroken run of epochs (a lease that lapsed in a database outage and was taken back) is
    // written under the run's last epoch.
    let before = batch.len();
    let batch: Vec<Outcome> = batch
        .into_iter()
        .filter_map(|mut o| {
            o.term.epoch = fence.shards.write_epoch(o.term.shard, o.term.epoch)?;
            Some(o)
        })
        .collect();
    let late = before - batch.len();
    if late > 0 {
        metrics
            .fenced_writes
            .inc_by(u64::try_from(late).unwrap_or(u64::MAX));
        tracing::warn!(
            late,
            "Results of shards no longer held were dropped (epoch fencing)."
        );
    }
    let mut terms: Vec<HeldShard> = Vec::with_capacity(batch.len());
    // Work on copies: the real state advances only if the transaction commits.
    let mut working: HashMap<i64, TargetState> = HashMap::new();
    let mut ops: Vec<RecordOp> = Vec::with_capacity(batch.len());
    for Outcome {
        idx,
        at_ms,
        report,
        term,
    } in &batch
    {
        let Some(target) = config.targets.get(*idx) else {
            continue;
        };
        let id = ids[*idx];
        let prev = match working.get(&id) {
            Some(s) => s.clone(),
            None => states.get(&id).cloned().unwrap_or_else(|| TargetState {
                id,
                name: target.name.clone(),
                url: target.display_url(),
                ..TargetState::default()
            }),
        };
        let old_tools = old_tools(store, &prev, report).await;
        let cx = Context {
            target,
            alerts: &config.alerts,
            at_ms: *at_ms,
            maintenance_until: config.maintenance_until(target.maintenance_name(), *at_ms),
            old_tools: old_tools.as_deref(),
        };
        let op = evaluate(&prev, report, &cx);
        working.insert(id, op.state.clone());
        ops.push(op);
        terms.push(*term);
    }

    let mut attempt = 0;
    let fenced = Fence {
        owner: &fence.owner,
        terms: &terms,
    };
    let recorded = loop {
        attempt += 1;
        match store.record_fenced(&ops, Some(fenced)).await {
            Ok(r) => break r,
            Err(e) if attempt < WRITE_ATTEMPTS && e.is_retryable() => {
                metrics.store_error("record");
                tracing::warn!(error = %e, attempt, "Writing results failed; retrying.");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) if e.is_retryable() => {
                metrics.store_error("record");
                tracing::warn!(error = %e, results = ops.len(), "Writing results failed; kept for a later attempt.");
                return Err(batch);
            }
            Err(e) => {
                metrics.store_error("record");
                metrics.results_dropped.inc_by(ops.len() as u64);
                tracing::error!(error = %e, results = ops.len(), "Writing results failed; this batch is lost.");
                return Ok(());
            }
        }
    };

    let mut queued = false;
    let rejected = recorded.rejected.iter().filter(|r| **r).count();
    if rejected > 0 {
        metrics
            .fenced_writes
            .inc_by(u64::try_from(rejected).unwrap_or(u64::MAX));
        tracing::warn!(
            rejected,
            "Late results rejected by their shard epoch: another replica holds their shards now."
        );
    }
    for ((op, opened_id), rejected) in ops.into_iter().zip(recorded.opened).zip(recorded.rejected) {
        if rejected {
            continue; // the state stays as it was; the new owner reads its own from the store
        }
        let mut state = op.state;
        match &op.incident {
            IncidentOp::Open { at_ms, alerts, .. } => {
                state.open_incident = opened_id.map(|id| OpenIncident {
                    id,
                    opened_ms: *at_ms,
                    last_notified_ms: *at_ms,
                    reminders: 0,
                });
                queued |= !alerts.is_empty();
                if let Some(id) = opened_id {
                    tracing::warn!(target.name = %state.name, incident.id = id, reason = ?state.last_reason, "Incident opened.");
                }
            }
            IncidentOp::Resolve {
                incident_id,
                alerts,
                ..
            } => {
                queued |= !alerts.is_empty();
                tracing::info!(target.name = %state.name, incident.id = incident_id, "Incident resolved.");
            }
            IncidentOp::Remind { alerts, .. } => queued |= !alerts.is_empty(),
            IncidentOp::None => {}
        }
        metrics
            .probes
            .get_or_create(&VerdictLabels {
                verdict: op.result.verdict.as_str().to_owned(),
            })
            .inc();
        states.insert(state.id, state);
    }
    if queued {
        alerts_queued.notify_one();
    }
    Ok(())
}

/// The previous tool list, loaded only when the schema hash changed (rare), so states stay small in memory.
async fn old_tools(store: &Store, prev: &TargetState, report: &ProbeReport) -> Option<Vec<Value>> {
    let new = report.schema_hash.as_ref()?;
    if prev.schema_hash.as_ref().is_none_or(|old| old == new) {
        return None;
    }
    let text = store.last_tools(prev.id).await.ok().flatten()?;
    serde_json::from_str(&text).ok()
}
