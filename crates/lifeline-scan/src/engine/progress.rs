//! Live counters of a running scan, shared with whatever displays progress (a bar or periodic log lines).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strum::EnumCount;

use crate::category::Category;

/// Counters updated by the scheduler and read by a progress display on another task. All relaxed atomics: a
/// snapshot may be a few results out of date, never wrong by more.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    in_flight: AtomicU64,
    skipped: AtomicU64,
    by_category: [AtomicU64; Category::COUNT],
}

/// A copy of [`Progress`] at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressSnapshot {
    /// Endpoints to scan, once known (files: from the start; standard input: when it ends).
    pub total: Option<u64>,
    /// Endpoints finished.
    pub done: u64,
    /// Probes running now.
    pub in_flight: u64,
    /// Input entries skipped (invalid, duplicate, deleted, no remote).
    pub skipped: u64,
    /// Finished endpoints per category, indexed by [`Category::index`].
    pub by_category: [u64; Category::COUNT],
    /// Time since the scan started.
    pub elapsed: Duration,
}

const UNKNOWN: u64 = u64::MAX;

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            total: AtomicU64::new(UNKNOWN),
            done: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            by_category: Default::default(),
        }
    }
}

impl Progress {
    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let total = self.total.load(Ordering::Relaxed);
        ProgressSnapshot {
            total: (total != UNKNOWN).then_some(total),
            done: self.done.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            by_category: std::array::from_fn(|i| self.by_category[i].load(Ordering::Relaxed)),
            elapsed: self.started.elapsed(),
        }
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, category: Category) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.by_category[category.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }
}

/// Counts one running probe until dropped.
pub(crate) struct InFlight<'a>(&'a Progress);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ProgressSnapshot {
    /// Finished endpoints per second since the start.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    /// Estimated time left at the current rate, when the total is known and the rate is not zero.
    pub fn eta(&self) -> Option<Duration> {
        let total = self.total?;
        let rate = self.rate();
        (rate > 0.0).then(|| Duration::from_secs_f64(total.saturating_sub(self.done) as f64 / rate))
    }

    /// `healthy 3 degraded 0 auth_gated 1 …`: the tallies so far.
    pub fn tallies(&self) -> String {
        let mut out = String::new();
        for c in Category::ALL {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{} {}", c.as_str(), self.by_category[c.index()]));
        }
        out
    }
}
