//! The phased shutdown token: a cheap, cloneable handle on the process's lifecycle phase.
//!
//! Phases only move forward (`Running` → `Draining` → `Refusing` → `Forcing`). Each service decides what a
//! phase means for it; the conventions every Lifeline service follows are documented on [`Phase`].

use std::sync::Arc;

use tokio::sync::watch;

/// Where a service is in its shutdown. Ordered: a later phase compares greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Normal operation.
    Running,
    /// A stop was requested: stop being ready (readiness probes fail) but keep serving everything, so the load
    /// balancer can deregister the instance before anything is refused.
    Draining,
    /// Refuse new work (new sessions, new stateless requests) while in-flight work and open streams finish.
    Refusing,
    /// The drain deadline passed (or a second signal arrived): cut whatever is left and exit.
    Forcing,
}

impl Phase {
    /// The stable label used in logs and JSON: `running`, `draining`, `refusing`, `forcing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Refusing => "refusing",
            Phase::Forcing => "forcing",
        }
    }
}

/// A cloneable handle on the shutdown phase. Every clone sees the same phase; advancing it wakes every waiter.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A token in [`Phase::Running`].
    pub fn new() -> Shutdown {
        let (tx, _rx) = watch::channel(Phase::Running);
        Shutdown { tx: Arc::new(tx) }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// True while in [`Phase::Running`].
    pub fn is_running(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Moves to `to` when it is later than the current phase. Returns true when the phase changed; moving
    /// backwards is ignored (returns false).
    pub fn advance(&self, to: Phase) -> bool {
        self.tx.send_if_modified(|current| {
            if to > *current {
                *current = to;
                true
            } else {
                false
            }
        })
    }

    /// Resolves once the phase is `phase` or later (at once when it already is). Cancel-safe.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// A `'static` future resolving once the phase is `phase` or later, for state machines that store it.
    pub fn reached_owned(
        &self,
        phase: Phase,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move { this.reached(phase).await }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn phases_only_move_forward() {
        let s = Shutdown::new();
        assert!(s.is_running());
        assert!(s.advance(Phase::Refusing));
        assert!(!s.advance(Phase::Draining));
        assert_eq!(s.phase(), Phase::Refusing);
        assert!(!s.advance(Phase::Refusing));
        assert!(s.advance(Phase::Forcing));
        assert_eq!(s.phase().as_str(), "forcing");
    }

    #[tokio::test]
    async fn reached_wakes_waiters_and_resolves_for_past_phases() {
        let s = Shutdown::new();
        let waiter = tokio::spawn(s.reached_owned(Phase::Draining));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.advance(Phase::Refusing);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter woke")
            .expect("waiter task");
        // Already past: resolves at once.
        tokio::time::timeout(Duration::from_secs(5), s.reached(Phase::Draining))
            .await
            .expect("resolves at once");
    }
}
