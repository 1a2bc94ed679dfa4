//! The phased shutdown token: a cheap, cloneable handle on the process's lifecycle phase.
//!
//! Phases only move forward (`Running` → `Draining` → `Refusing` → `Forcing`). Each service decides what a
//! phase means for it; the conventions every Lifeline service follows are documented on [`Phase`].
//!
//! A service's library entry point (`Gateway::run`, `Monitor::run`, `lifeline_scan::scan`) takes a `Shutdown`
//! from its caller and only ever reads it; whoever holds a clone triggers the phases: the binary from OS
//! signals (through [`crate::drain::supervise`]), a test or an embedder directly with [`Shutdown::advance`].
//! [`Shutdown::abort`] is `Forcing` "at once" (a second stop signal): services then skip the bounded
//! clean-up they would otherwise wait for after a drain.

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
    tx: Arc<watch::Sender<State>>,
}

/// The phase, plus whether `Forcing` came from [`Shutdown::abort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    phase: Phase,
    aborted: bool,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A token in [`Phase::Running`].
    pub fn new() -> Shutdown {
        let (tx, _rx) = watch::channel(State {
            phase: Phase::Running,
            aborted: false,
        });
        Shutdown { tx: Arc::new(tx) }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.tx.borrow().phase
    }

    /// True once [`Shutdown::abort`] was called: the stop is to happen at once, without the bounded clean-up
    /// that normally follows a drain.
    pub fn is_aborted(&self) -> bool {
        self.tx.borrow().aborted
    }

    /// True while in [`Phase::Running`].
    pub fn is_running(&self) -> bool {
        self.phase() == Phase::Running
    }

    /// Moves to `to` when it is later than the current phase. Returns true when the phase changed; moving
    /// backwards is ignored (returns false).
    pub fn advance(&self, to: Phase) -> bool {
        self.tx.send_if_modified(|current| {
            if to > current.phase {
                current.phase = to;
                true
            } else {
                false
            }
        })
    }

    /// Moves to [`Phase::Forcing`] and marks the stop as "at once" (a second stop signal). Returns true when
    /// this call set the mark. Idempotent.
    pub fn abort(&self) -> bool {
        self.tx.send_if_modified(|current| {
            if current.aborted {
                false
            } else {
                current.phase = Phase::Forcing;
                current.aborted = true;
                true
            }
        })
    }

    /// Resolves once the phase is `phase` or later (at once when it already is). Cancel-safe.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| s.phase >= phase).await;
    }

    /// Resolves once [`Shutdown::abort`] was called (at once when it already was). Cancel-safe.
    pub async fn aborted(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| s.aborted).await;
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
        assert!(!s.is_aborted());
    }

    #[tokio::test]
    async fn abort_forces_and_marks_the_stop_as_at_once() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.aborted().await }
        });
        s.advance(Phase::Forcing);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "forcing alone is not an abort");
        assert!(s.abort());
        assert!(!s.abort(), "idempotent");
        assert_eq!(s.phase(), Phase::Forcing);
        assert!(s.is_aborted());
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("abort wakes waiters")
            .expect("waiter task");
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
