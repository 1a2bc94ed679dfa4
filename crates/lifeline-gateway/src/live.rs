//! Liveness: is the gateway's async runtime still making progress? A heartbeat task beats on the runtime every
//! `min(1 s, live_stall / 2)`; `/live` awaits a task hop (a spawned task's join, which needs a free worker) and
//! then checks that the heartbeat is fresh. Never touches the upstream (the liveness guide in
//! `shared/seeds/000_*.txt`: external failures belong to readiness, not to restarts).
//!
//! A stall the runtime recovered from (a heartbeat gap longer than `live_stall`) keeps `/live` failing for one
//! more `live_stall`, so the probe that was stuck behind the stall reports it instead of a misleading 200.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lifeline_core::{Phase, Shutdown};

/// The watchdog's shared state.
#[derive(Debug)]
pub(crate) struct Liveness {
    epoch: Instant,
    limit: Duration,
    period: Duration,
    last_beat_ms: AtomicU64,
    stalled_until_ms: AtomicU64,
    last_stall_ms: AtomicU64,
}

/// What `/live` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveReport {
    pub(crate) live: bool,
    pub(crate) heartbeat_age_ms: u64,
    /// The longest recent heartbeat gap beyond the limit, when one makes `live` false.
    pub(crate) stall_ms: Option<u64>,
}

impl Liveness {
    pub(crate) fn new(limit: Duration) -> Liveness {
        Liveness {
            epoch: Instant::now(),
            limit,
            period: (limit / 2).min(Duration::from_secs(1)),
            last_beat_ms: AtomicU64::new(0),
            stalled_until_ms: AtomicU64::new(0),
            last_stall_ms: AtomicU64::new(0),
        }
    }

    /// Milliseconds since start-up, plus one, so that 0 means "never".
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Beats until the shutdown reaches [`Phase::Forcing`]. Spawn it on the runtime being watched.
    pub(crate) async fn heartbeat(&self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = shutdown.reached(Phase::Forcing);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => self.beat(),
                _ = &mut stop => return,
            }
        }
    }

    fn beat(&self) {
        let now = self.now_ms();
        let prev = self.last_beat_ms.swap(now, Ordering::AcqRel);
        let gap = now.saturating_sub(prev);
        if prev != 0 && gap > self.limit.as_millis() as u64 {
            self.last_stall_ms.store(gap, Ordering::Release);
            self.stalled_until_ms
                .store(now + self.limit.as_millis() as u64, Ordering::Release);
            tracing::warn!(stall_ms = gap, "Runtime stalled: the heartbeat was late.");
        }
    }

    /// The verdict now (call it after the task hop).
    pub(crate) fn report(&self) -> LiveReport {
        let now = self.now_ms();
        let last = self.last_beat_ms.load(Ordering::Acquire);
        // Before the first beat (0), this counts from start-up.
        let age = now.saturating_sub(last);
        let limit = self.limit.as_millis() as u64;
        let recent_stall = now < self.stalled_until_ms.load(Ordering::Acquire);
        let stall_ms = if age > limit {
            Some(age)
        } else if recent_stall {
            Some(self.last_stall_ms.load(Ordering::Acquire))
        } else {
            None
        };
        LiveReport {
            live: stall_ms.is_none(),
            heartbeat_age_ms: age,
            stall_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_beat_is_reported_for_one_more_limit() {
        let l = Liveness::new(Duration::from_millis(200));
        l.beat();
        assert!(l.report().live);
        std::thread::sleep(Duration::from_millis(300));
        let r = l.report();
        assert!(!r.live, "stale heartbeat");
        l.beat();
        let r = l.report();
        assert!(!r.live, "recent stall still reported");
        assert!(r.stall_ms.unwrap_or_default() >= 300, "{r:?}");
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(50));
            l.beat();
        }
        assert!(l.report().live);
    }
}
