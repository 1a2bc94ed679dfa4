//! The shard manager (issue 14): which of the [`SHARDS`] shards this replica probes, kept in the database's
//! `shard_leases` rows (see [`crate::store::HeldShard`]) and mirrored in a [`ShardView`] the scheduler and the
//! recorder read.
//!
//! Every round (a third of the lease ttl) it heartbeats its replica row, renews the leases it holds, drops the
//! ones it lost, gives back what exceeds its fair share (`ceil(SHARDS / live replicas)`) and takes free or
//! expired shards up to that share. A shard is probed only inside its **trust window**: from the local instant
//! its lease was last sent for renewal plus [`TRUST_FRACTION`] of the ttl, shorter than the ttl itself, so a
//! replica that was paused or cut off stops probing before anyone else can take the shard. Before a newly
//! taken shard is probed, the states of its targets (open incidents, counters) are read back from the store
//! and handed to the recorder, so a new owner never pages on stale state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::store::{shard_of, HeldShard, Store, StoreError, TargetState, SHARDS};

/// The trust window as a fraction of the ttl (numerator over 5): 4/5, i.e. 12 s of a 15 s lease. Renewals go
/// out every third of the ttl, so one failed renewal does not stop probing; two do.
const TRUST_FRACTION: u32 = 4;

/// How long after another replica's lease expiry a replica tries to take it (clock granularity
/// and the round trip).
const EXPIRY_SLACK: Duration = Duration::from_millis(20);

/// What this replica holds, as the scheduler and recorder see it: per shard, the epoch of its term and the
/// end of its trust window.
#[derive(Debug)]
pub(crate) struct ShardView {
    slots: Mutex<Vec<Option<(i64, Instant)>>>,
    /// Per shard, the unbroken run of epochs this replica held, `(first, last)`: each taken right after the
    /// previous one lapsed, so no other replica held the shard in between. A lapsed lease keeps its run until
    /// the shard is taken again (by this replica: the run goes on; by another: the run is gone at the next
    /// take, and the store's fence rejects the old epochs meanwhile). The recorder writes a buffered result of
    /// any epoch in the run under its last epoch.
    runs: Mutex<Vec<Option<(i64, i64)>>>,
    /// States read from the store for newly taken shards, waiting for the recorder to adopt them.
    fresh: Mutex<Vec<TargetState>>,
    /// True once the first round has taken its shards and read their states (`/ready` waits for it).
    loaded: AtomicBool,
    /// Signalled when shards are taken, so the scheduler probes their parked targets at once.
    taken: tokio::sync::Notify,
}

impl Default for ShardView {
    fn default() -> Self {
        ShardView {
            slots: Mutex::new(vec![None; SHARDS as usize]),
            runs: Mutex::new(vec![None; SHARDS as usize]),
            fresh: Mutex::new(Vec::new()),
            loaded: AtomicBool::new(false),
            taken: tokio::sync::Notify::new(),
        }
    }
}

impl ShardView {
    /// The epoch under which `shard` may be probed now, `None` when not held or outside its trust window.
    pub(crate) fn current(&self, shard: u32) -> Option<i64> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(shard as usize).copied().flatten() {
            Some((epoch, until)) if Instant::now() < until => Some(epoch),
            _ => None,
        }
    }

    /// The epoch a result probed under `(shard, epoch)` is written under: the last epoch of this replica's
    /// unbroken run on the shard when `epoch` is in it (trusted or not, held or lapsed: a result probed inside
    /// the trust window may be written after it, e.g. from the outage buffer; the store's fence decides), `None`
    /// when another replica may have held the shard since (a late write, dropped).
    pub(crate) fn write_epoch(&self, shard: i64, epoch: i64) -> Option<i64> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        match usize::try_from(shard)
            .ok()
            .and_then(|i| runs.get(i).copied().flatten())
        {
            Some((first, last)) if (first..=last).contains(&epoch) => Some(last),
            _ => None,
        }
    }

    /// Resolves when shards were taken since the last call (a stored permit: a signal sent while nobody waited
    /// is not lost).
    pub(crate) async fn taken(&self) {
        self.taken.notified().await;
    }

    /// The states read for newly taken shards since the last call.
    pub(crate) fn take_fresh(&self) -> Vec<TargetState> {
        std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True once the first round read the states of the shards it took.
    pub(crate) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn set(&self, shard: i64, v: Option<(i64, Instant)>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = usize::try_from(shard).ok().and_then(|i| slots.get_mut(i)) {
            *s = v;
        }
    }

    fn clear_all(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.iter_mut().for_each(|s| *s = None);
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter_mut().for_each(|s| *s = None);
    }

    /// Records that this replica took `shard` under `epoch`: the run goes on when `epoch` directly follows
    /// its last epoch (nobody held the shard in between), else a new run starts.
    fn taken_as(&self, shard: i64, epoch: i64) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = usize::try_from(shard).ok().and_then(|i| runs.get_mut(i)) {
            *r = match *r {
                Some((first, last)) if epoch == last + 1 || epoch == last => Some((first, epoch)),
                _ => Some((epoch, epoch)),
            };
        }
    }

    /// Forgets the run of `shard` (given back on purpose: another replica is meant to take it).
    fn end_run(&self, shard: i64) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = usize::try_from(shard).ok().and_then(|i| runs.get_mut(i)) {
            *r = None;
        }
    }
}

/// The manager's state between rounds.
pub(crate) struct Manager {
    pub(crate) store: Store,
    pub(crate) replica: String,
    pub(crate) ttl: Duration,
    pub(crate) view: Arc<ShardView>,
    pub(crate) metrics: Arc<Metrics>,
    held: HashMap<i64, i64>,
}

impl Manager {
    pub(crate) fn new(
        store: Store,
        replica: String,
        ttl: Duration,
        view: Arc<ShardView>,
        metrics: Arc<Metrics>,
    ) -> Manager {
        Manager {
            store,
            replica,
            ttl,
            view,
            metrics,
            held: HashMap::new(),
        }
    }

    fn trust(&self) -> Duration {
        self.ttl * TRUST_FRACTION / 5
    }

    /// One round: heartbeat, renew, give back the excess, take up to the fair share (reading the new shards'
    /// states before they are probed). A store error leaves the view as it is: its trust windows run out by
    /// themselves, so probing stops on time when the database stays unreachable.
    ///
    /// Returns when the next round is due: a third of the ttl, or sooner when another replica's lease expires
    /// before that (a crashed holder's shards are taken the moment they expire, not up to a third of a ttl
    /// later, whatever this replica's share was before).
    pub(crate) async fn round(&mut self) -> Result<Duration, StoreError> {
        let sent = Instant::now();
        let live = self
            .store
            .heartbeat_replica(&self.replica, self.ttl)
            .await?;
        let renewed = self.store.renew_shards(&self.replica, self.ttl).await?;
        let until = sent + self.trust();
        let mut now_held: HashMap<i64, i64> = HashMap::new();
        // Leases held under this name that this process did not take (a restart that kept its name): their
        // states are read back before they are probed, like any newly taken shard.
        let mut unknown: Vec<HeldShard> = Vec::new();
        for h in &renewed {
            if self.held.get(&h.shard) == Some(&h.epoch) {
                now_held.insert(h.shard, h.epoch);
                self.view.set(h.shard, Some((h.epoch, until)));
            } else {
                unknown.push(*h);
            }
        }
        for (shard, _) in self.held.iter().filter(|(s, _)| !now_held.contains_key(s)) {
            tracing::warn!(shard, replica = %self.replica, "Shard lease lost; no longer probing it.");
            self.view.set(*shard, None);
        }
        self.held = now_held;
        if !unknown.is_empty() {
            self.adopt(&unknown, until).await?;
        }

        let cap = (i64::from(SHARDS) + live - 1) / live;
        let count = i64::try_from(self.held.len()).unwrap_or(i64::MAX);
        if count > cap {
            // Give back the highest-numbered excess: stop probing first, then release.
            let mut mine: Vec<i64> = self.held.keys().copied().collect();
            mine.sort_unstable();
            tracing::info!(replica = %self.replica, live, cap, held = count,
                "Giving back the shards above the fair share.");
            for shard in mine
                .into_iter()
                .rev()
                .take(usize::try_from(count - cap).unwrap_or(0))
            {
                self.view.set(shard, None);
                self.view.end_run(shard);
                self.held.remove(&shard);
                self.store
                    .release_shards(&self.replica, Some(shard))
                    .await?;
            }
        } else if count < cap {
            let taken = self
                .store
                .acquire_shards(&self.replica, cap - count, self.ttl)
                .await?;
            if !taken.is_empty() {
                let shards: Vec<i64> = taken.iter().map(|h| h.shard).collect();
                tracing::info!(replica = %self.replica, live, cap, held = count, ?shards,
                    "Taking free or expired shards up to the fair share.");
                self.adopt(&taken, sent + self.trust()).await?;
            }
        }
        self.metrics
            .shards_held
            .set(i64::try_from(self.held.len()).unwrap_or(i64::MAX));
        self.view.loaded.store(true, Ordering::Release);
        // Every round, not only on a take: a shard whose trust window had lapsed (a slow database) and was
        // renewed again must get its parked targets back too.
        self.view.taken.notify_one();
        // Wake at the next expiry of another replica's lease, even at the fair share: a lease that expires
        // unrenewed means its holder is dead or cut off, and its `replicas` row (heartbeated just before its
        // renewals, so expiring just before them) has expired too, so the share grows at that round and the
        // dead replica's shards are taken within one ttl of its last renewal. Live replicas renew every ttl/3,
        // so their leases never expire sooner than this timer: no extra rounds in steady state.
        let mut next = self.ttl / 3;
        if let Some(ms) = self.store.next_foreign_expiry_ms(&self.replica).await? {
            let soon = Duration::from_millis(u64::try_from(ms).unwrap_or(0)) + EXPIRY_SLACK;
            next = next.min(soon);
        }
        Ok(next)
    }

    /// Reads the states of the targets in `taken` and hands them to the recorder, then opens the shards to
    /// probing. If the read fails the shards are released again (another replica, or the next round, retries).
    async fn adopt(&mut self, taken: &[HeldShard], until: Instant) -> Result<(), StoreError> {
        let shards: Vec<i64> = taken.iter().map(|h| h.shard).collect();
        let states = match self.store.load_states().await {
            Ok(s) => s,
            Err(e) => {
                for s in &shards {
                    let _ = self.store.release_shards(&self.replica, Some(*s)).await;
                }
                return Err(e);
            }
        };
        let fresh: Vec<TargetState> = states
            .into_iter()
            .filter(|s| shards.contains(&i64::from(shard_of(&s.name))))
            .collect();
        self.view
            .fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(fresh);
        for h in taken {
            self.held.insert(h.shard, h.epoch);
            self.view.taken_as(h.shard, h.epoch);
            self.view.set(h.shard, Some((h.epoch, until)));
        }
        self.view.taken.notify_one();
        tracing::info!(replica = %self.replica, taken = taken.len(), held = self.held.len(), "Shards taken.");
        Ok(())
    }

    /// Stops probing everything and releases every lease at once (a graceful stop), so the other replicas
    /// take the shards at their next round instead of after expiry.
    pub(crate) async fn release_all(&mut self) {
        self.view.clear_all();
        self.held.clear();
        self.metrics.shards_held.set(0);
        if let Err(e) = self.store.release_shards(&self.replica, None).await {
            tracing::warn!(error = %e, "Releasing the shard leases failed; they expire by themselves.");
        }
        if let Err(e) = self.store.forget_replica(&self.replica).await {
            tracing::warn!(error = %e, "Removing the replica row failed; it expires by itself.");
        }
    }
}
