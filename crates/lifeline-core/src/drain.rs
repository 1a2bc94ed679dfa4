//! The drain timetable every Lifeline service follows after a stop signal (the phases of [`crate::Phase`]):
//! not ready at once, keep serving for `delay` (the load balancer's deregistration window), then refuse new work
//! while in-flight work finishes, and force the rest at `timeout` after the signal. A second signal aborts the
//! drain at once. Each phase is logged with the count of work in flight.

use std::time::{Duration, Instant};

use crate::inflight::InFlight;
use crate::shutdown::{Phase, Shutdown};
use crate::signals::{SignalKind, Signals};

/// How often progress is logged while waiting for in-flight work.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// When each drain phase starts, measured from the first stop signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPlan {
    /// How long to keep serving everything after the signal (readiness already failing).
    pub delay: Duration,
    /// The deadline for the whole drain, from the signal: what is still in flight then is cut. Should be below
    /// the orchestrator's kill deadline (Kubernetes `terminationGracePeriodSeconds`, 30 s by default).
    pub timeout: Duration,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Everything in flight finished before the deadline.
    Clean {
        /// From the signal to the last unit finishing.
        elapsed: Duration,
    },
    /// The deadline passed with work still in flight; the caller cuts it.
    Forced {
        /// Units still in flight at the deadline.
        remaining: usize,
    },
    /// A second stop signal arrived: exit at once.
    Aborted {
        /// The second signal.
        signal: SignalKind,
        /// Units in flight when it arrived.
        remaining: usize,
    },
}

/// Walks `shutdown` through the drain phases after `first` arrived, and returns when the drain is over. On
/// return the phase is [`Phase::Forcing`] whatever the outcome, so every stream still open can close.
pub async fn drain(
    shutdown: &Shutdown,
    inflight: &InFlight,
    plan: DrainPlan,
    signals: &mut Signals,
    first: SignalKind,
) -> DrainOutcome {
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + plan.timeout);
    let refuse_at = tokio::time::Instant::from_std(start + plan.delay.min(plan.timeout));
    shutdown.advance(Phase::Draining);
    tracing::info!(
        signal = first.as_str(),
        in_flight = inflight.count(),
        delay_ms = plan.delay.as_millis() as u64,
        timeout_ms = plan.timeout.as_millis() as u64,
        "Drain started: not ready, still serving."
    );

    tokio::select! {
        _ = tokio::time::sleep_until(refuse_at) => {}
        second = signals.recv() => return abort(shutdown, inflight, second),
    }
    shutdown.advance(Phase::Refusing);
    tracing::info!(
        in_flight = inflight.count(),
        "Drain: refusing new work, waiting for work in flight."
    );

    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let outcome = loop {
        tokio::select! {
            _ = inflight.idle() => break DrainOutcome::Clean { elapsed: start.elapsed() },
            _ = tokio::time::sleep_until(deadline) => break DrainOutcome::Forced { remaining: inflight.count() },
            second = signals.recv() => return abort(shutdown, inflight, second),
            _ = progress.tick() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tracing::info!(in_flight = inflight.count(), ms_left = left.as_millis() as u64, "Draining.");
            }
        }
    };
    shutdown.advance(Phase::Forcing);
    match outcome {
        DrainOutcome::Clean { elapsed } => {
            tracing::info!(
                elapsed_ms = elapsed.as_millis() as u64,
                "Drain complete: nothing left in flight."
            )
        }
        DrainOutcome::Forced { remaining } => {
            tracing::warn!(
                remaining,
                "Drain deadline passed: force-closing what is left."
            )
        }
        DrainOutcome::Aborted { .. } => {}
    }
    outcome
}

fn abort(shutdown: &Shutdown, inflight: &InFlight, signal: SignalKind) -> DrainOutcome {
    shutdown.advance(Phase::Forcing);
    let remaining = inflight.count();
    tracing::warn!(
        signal = signal.as_str(),
        remaining,
        "Second stop signal: exiting at once."
    );
    DrainOutcome::Aborted { signal, remaining }
}
