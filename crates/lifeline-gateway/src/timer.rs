//! Reusable timers for the per-request deadlines of the hot path: the upstream's wait for response headers. (The
//! server's wait for a request head is one timer per connection, moved later for each request: `server/conn.rs`.)
//!
//! A fresh `tokio::time::sleep` per request costs a registration in tokio's timer wheel (a lock, list inserts)
//! when first polled and a deregistration (the lock again) when dropped before it fires, which is what every
//! deadline that is met does (issue 17: about 3.5k instructions per request for the upstream timeout alone).
//! A [`Deadline`] from [`Timers`] goes back to a small free list when dropped, still registered; the next
//! request takes it and moves its deadline later, which tokio does without the wheel (an atomic store: the
//! wheel finds the later deadline when the old one comes and files the timer again, once per period).
//!
//! The price: a timer in the free list stays registered with the waker of the task that last polled it until
//! its old deadline passes, and then wakes that task once for nothing (a connection task polls its socket and
//! sleeps again; a finished task ignores it). The free list is bounded ([`MAX_IDLE`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{Instant, Sleep};

/// Timers kept for reuse: beyond this many idle ones, a dropped [`Deadline`] is dropped for good.
const MAX_IDLE: usize = 256;

/// A free list of tokio timers of one runtime. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Timers {
    idle: Mutex<Vec<Pin<Box<Sleep>>>>,
    /// The runtime the timers belong to: a timer is only reused on it (a timer of a runtime that has shut down
    /// panics when polled).
    runtime: Option<tokio::runtime::Id>,
}

impl Timers {
    /// A free list for the current runtime (outside one, every [`Deadline`] is a fresh timer).
    pub(crate) fn new() -> Arc<Timers> {
        Arc::new(Timers {
            idle: Mutex::new(Vec::new()),
            runtime: Handle::try_current().ok().map(|h| h.id()),
        })
    }

    /// A timer that fires at `deadline`: a reused one when one is idle, else a new one.
    pub(crate) fn sleep_until(self: &Arc<Self>, deadline: Instant) -> Deadline {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let sleep = match reused {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Deadline {
            sleep: Some(sleep),
            home: Arc::clone(self),
        }
    }

    /// `fut`, or [`Elapsed`] when it has not finished within `limit` of this call (polled before the timer, as
    /// `tokio::time::timeout` does). A named future rather than an `async fn`, which would hold `fut` twice (as
    /// its argument and pinned), in a future every request moves.
    pub(crate) fn timeout<F: Future>(self: &Arc<Self>, limit: Duration, fut: F) -> Timeout<F> {
        Timeout {
            fut,
            deadline: self.sleep_until(Instant::now() + limit),
        }
    }

    /// Takes `sleep` back, unless the list is full or we are not on the runtime it belongs to.
    fn give_back(&self, sleep: Pin<Box<Sleep>>) {
        if self.runtime.is_none() || Handle::try_current().ok().map(|h| h.id()) != self.runtime {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(sleep);
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Timers::timeout`].
    pub(crate) struct Timeout<F> {
        #[pin]
        fut: F,
        deadline: Deadline,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        Pin::new(this.deadline).poll(cx).map(|()| Err(Elapsed))
    }
}

/// A [`Timers::timeout`] that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// A timer from [`Timers`]: a future that completes at its deadline; back to the free list when dropped.
#[derive(Debug)]
pub(crate) struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
    home: Arc<Timers>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            self.home.give_back(sleep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reused_timer_fires_at_its_new_deadline_and_a_timeout_runs_out() {
        let timers = Timers::new();
        let start = Instant::now();
        let first = timers.sleep_until(start + Duration::from_secs(5));
        drop(first); // never polled: back to the list
        let second = timers.sleep_until(start + Duration::from_secs(10));
        assert_eq!(timers.idle.lock().expect("lock").len(), 0, "reused");
        second.await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        // A timer polled, dropped before its deadline, then reused with a later one.
        let mut third = timers.sleep_until(Instant::now() + Duration::from_secs(1));
        assert!(futures_poll_once(&mut third).await.is_pending());
        drop(third);
        let t = Instant::now();
        timers.sleep_until(t + Duration::from_secs(3)).await;
        assert_eq!(Instant::now() - t, Duration::from_secs(3));
        // And one reused with an earlier deadline than the one it had.
        let long = timers.sleep_until(Instant::now() + Duration::from_secs(60));
        drop(long);
        let t = Instant::now();
        timers.sleep_until(t + Duration::from_secs(2)).await;
        assert_eq!(Instant::now() - t, Duration::from_secs(2));

        let ok = timers.timeout(Duration::from_secs(1), async { 7 }).await;
        assert_eq!(ok, Ok(7));
        let late = timers
            .timeout(
                Duration::from_secs(1),
                tokio::time::sleep(Duration::from_secs(2)),
            )
            .await;
        assert_eq!(late, Err(Elapsed));
    }

    /// One poll of `f`.
    async fn futures_poll_once(f: &mut Deadline) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
    }

    #[test]
    fn outside_a_runtime_nothing_is_kept() {
        let timers = Timers::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            drop(timers.sleep_until(Instant::now() + Duration::from_secs(1)));
        });
        assert_eq!(timers.idle.lock().expect("lock").len(), 0);
    }
}
