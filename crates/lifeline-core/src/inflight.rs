//! Counting work in flight (requests, open streams) so a drain can wait until none is left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A shared counter of work in flight. [`InFlight::enter`] returns a guard that counts one unit until dropped;
/// [`InFlight::idle`] waits until the count is zero.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    count: AtomicUsize,
    idle: Notify,
}

/// One unit of work in flight; dropping it ends the unit. Move it into a response body to count a stream for
/// as long as it is open.
#[derive(Debug)]
#[must_use = "the unit ends when the guard is dropped"]
pub struct InFlightGuard {
    inner: Arc<Inner>,
}

impl InFlight {
    /// A tracker with nothing in flight.
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Counts one unit of work until the returned guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.inner.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Units currently in flight.
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Resolves when nothing is in flight (at once if nothing is). Cancel-safe.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a guard dropped in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let tracker = InFlight::new();
        tokio::time::timeout(Duration::from_secs(1), tracker.idle())
            .await
            .expect("idle at once when empty");
        let a = tracker.enter();
        let b = tracker.enter();
        assert_eq!(tracker.count(), 2);
        let waiter = tokio::spawn({
            let t = tracker.clone();
            async move { t.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke when idle")
            .expect("waiter task");
        assert_eq!(tracker.count(), 0);
    }
}
