//! Rate limits per verified principal (issue 12: "never per IP by default: large clients share egress
//! addresses"; 2026-07-28 `server/tools` §Security Considerations: servers MUST "rate limit tool invocations").
//!
//! One token bucket (GCRA, the `governor` crate's keyed limiter) per principal subject, or, with `per_tool`, per
//! (subject, tool) for `tools/call` (other requests of the principal keep using its own bucket). Every JSON-RPC
//! *request* a principal posts takes one token; notifications, responses, `GET` streams and `DELETE` take none.
//!
//! Bounded: at most [`MAX_TRACKED_KEYS`] buckets are kept. Past the bound, idle buckets (full again, so
//! indistinguishable from a fresh one: forgetting them changes nothing) are evicted, at most once per
//! [`EVICT_EVERY`] so a full table of busy buckets cannot turn every request into a sweep; while the table is
//! still full of busy buckets, requests of principals without a bucket share one overflow bucket, so memory
//! stays bounded and nobody goes unlimited.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// The most buckets kept at once: 65 536 (about 100 bytes each with their keys).
pub(crate) const MAX_TRACKED_KEYS: usize = 65_536;
/// The least time between two sweeps for idle buckets: 1 s.
pub(crate) const EVICT_EVERY: Duration = Duration::from_secs(1);

/// A bucket's key: the principal's subject, and the tool with `per_tool`. The overflow bucket is `("", None)`
/// with `overflow` set, which no principal can have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    subject: Arc<str>,
    tool: Option<Box<str>>,
    overflow: bool,
}

/// The limiter of one gateway.
pub(crate) struct Limiter<C: Clock = DefaultClock> {
    buckets: RateLimiter<Key, DashMapStateStore<Key>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    per_tool: bool,
    max_keys: usize,
    /// Clock time (ns since the clock's start) of the last sweep.
    last_sweep: AtomicU64,
    start: C::Instant,
}

impl<C: Clock> std::fmt::Debug for Limiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("per_tool", &self.per_tool)
            .field("tracked", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

impl Limiter<DefaultClock> {
    /// A limiter refilling one token every `period` (`20/s` is 50 ms) with buckets of `burst` tokens.
    pub(crate) fn new(period: Duration, burst: NonZeroU32, per_tool: bool) -> Limiter {
        Limiter::with_clock(
            period,
            burst,
            per_tool,
            MAX_TRACKED_KEYS,
            DefaultClock::default(),
        )
    }
}

impl<C: Clock + Clone> Limiter<C> {
    /// [`Limiter::new`] on `clock`, keeping at most `max_keys` buckets.
    pub(crate) fn with_clock(
        period: Duration,
        burst: NonZeroU32,
        per_tool: bool,
        max_keys: usize,
        clock: C,
    ) -> Limiter<C> {
        // A zero period would be an unlimited rate; the config validation refuses it, this keeps it safe anyway.
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let start = clock.now();
        Limiter {
            buckets: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            per_tool,
            max_keys: max_keys.max(1),
            last_sweep: AtomicU64::new(0),
            start,
        }
    }

    /// Takes a token for a request of `subject` (calling `tool` when it is a `tools/call`). `Err` carries how
    /// long until the bucket has a token again (for `Retry-After`).
    pub(crate) fn check(&self, subject: &Arc<str>, tool: Option<&str>) -> Result<(), Duration> {
        let mut key = Key {
            subject: Arc::clone(subject),
            tool: tool.filter(|_| self.per_tool).map(Box::from),
            overflow: false,
        };
        if self.buckets.len() >= self.max_keys {
            self.sweep();
            if self.buckets.len() >= self.max_keys {
                key = Key {
                    subject: Arc::from(""),
                    tool: None,
                    overflow: true,
                };
            }
        }
        self.buckets
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Buckets currently kept.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Drops idle buckets, at most once per [`EVICT_EVERY`].
    fn sweep(&self) {
        let now = self.clock.now().duration_since(self.start).as_u64();
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= EVICT_EVERY.as_nanos() as u64;
        if due
            && self
                .last_sweep
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(per_tool: bool, max_keys: usize) -> (Limiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(
            Duration::from_millis(100),
            NonZeroU32::new(2).expect("2"),
            per_tool,
            max_keys,
            clock.clone(),
        );
        (l, clock)
    }

    fn who(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn a_bucket_per_principal_with_burst_and_refill() {
        let (l, clock) = limiter(false, 100);
        let (alice, bob) = (who("alice"), who("bob"));
        assert!(l.check(&alice, Some("echo")).is_ok());
        assert!(l.check(&alice, Some("add")).is_ok());
        let wait = l.check(&alice, None).expect_err("burst of 2 spent");
        assert_eq!(wait, Duration::from_millis(100));
        // Bob has his own bucket.
        assert!(l.check(&bob, None).is_ok());
        clock.advance(Duration::from_millis(100));
        assert!(l.check(&alice, None).is_ok());
        assert!(l.check(&alice, None).is_err());
    }

    #[test]
    fn per_tool_buckets_split_a_principal() {
        let (l, _clock) = limiter(true, 100);
        let alice = who("alice");
        for _ in 0..2 {
            assert!(l.check(&alice, Some("echo")).is_ok());
        }
        assert!(l.check(&alice, Some("echo")).is_err());
        assert!(l.check(&alice, Some("add")).is_ok());
        // Requests that are not tool calls use the principal's own bucket.
        assert!(l.check(&alice, None).is_ok());
    }

    #[test]
    fn the_table_is_bounded_idle_buckets_go_first() {
        let (l, clock) = limiter(false, 3);
        for p in ["a", "b", "c"] {
            assert!(l.check(&who(p), None).is_ok());
        }
        assert_eq!(l.tracked(), 3);
        // Full of busy buckets: a newcomer lands in the shared overflow bucket (burst 2), never unlimited.
        assert!(l.check(&who("d"), None).is_ok());
        assert!(l.check(&who("e"), None).is_ok());
        assert!(l.check(&who("f"), None).is_err());
        assert!(l.tracked() <= 4, "{}", l.tracked());
        // Once the others are idle (full again) they are swept and newcomers get buckets of their own.
        clock.advance(Duration::from_secs(2));
        assert!(l.check(&who("g"), None).is_ok());
        assert!(l.tracked() <= 3, "{}", l.tracked());
        assert!(l.check(&who("g"), None).is_ok());
        assert!(l.check(&who("g"), None).is_err());
    }
}
