//! The drain timetable every Lifeline service follows after a stop signal (the phases of [`crate::Phase`]):
//! not ready at once, keep serving for `delay` (the load balancer's deregistration window), then refuse new work
//! while in-flight work finishes, and force the rest at `timeout` after the signal. A second signal aborts the
//! drain at once. Each phase is logged with the count of work in flight.
//!
//! [`drain()`] is the timetable alone (any future can be the second signal, so tests drive it without OS
//! signals); [`supervise`] is what the binary runs around a service: OS [`Signals`] → [`drain()`] → phases,
//! and a stop signal after the drain is an abort too.

use std::future::Future;
use std::time::Duration;

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

/// How a supervised service ended (see [`supervise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervised<T> {
    /// What the service returned.
    pub output: T,
    /// The first stop signal, if one arrived before the service returned.
    pub signal: Option<SignalKind>,
    /// The drain's outcome, when the drain ran to its end before the service returned (`None` when no signal
    /// came or the service returned while draining). A stop signal after the drain makes this `Aborted`.
    pub drain: Option<DrainOutcome>,
}

/// Walks `shutdown` through the drain phases after `first` arrived, and returns when the drain is over. On
/// return the phase is [`Phase::Forcing`] whatever the outcome, so every stream still open can close.
/// `second` resolving (the next stop signal, usually [`Signals::recv`]) aborts the drain at once
/// ([`Shutdown::abort`]).
pub async fn drain(
    shutdown: &Shutdown,
    inflight: &InFlight,
    plan: DrainPlan,
    second: impl Future<Output = SignalKind>,
    first: SignalKind,
) -> DrainOutcome {
    tokio::pin!(second);
    // The runtime's clock (not `std`'s), so a paused test clock drives the timetable too.
    let start = tokio::time::Instant::now();
    let deadline = start + plan.timeout;
    let refuse_at = start + plan.delay.min(plan.timeout);
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
        second = &mut second => return abort(shutdown, inflight, second),
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
            second = &mut second => return abort(shutdown, inflight, second),
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

/// Runs `service` (a service's `run` future, holding a clone of `shutdown`) to its end while turning process
/// signals into phases: the first SIGTERM/SIGINT starts [`drain()`] on `plan` (counting `inflight`); a second
/// one, during the drain or while the service finishes after it, is [`Shutdown::abort`]. The service's own
/// bounds decide how long it takes after `Forcing`; this never cuts it. Cancel-safe only as a whole.
pub async fn supervise<F: Future>(
    service: F,
    shutdown: &Shutdown,
    inflight: &InFlight,
    plan: DrainPlan,
    signals: &mut Signals,
) -> Supervised<F::Output> {
    tokio::pin!(service);
    let first = tokio::select! {
        output = &mut service => return Supervised { output, signal: None, drain: None },
        first = signals.recv() => first,
    };
    let outcome = tokio::select! {
        output = &mut service => return Supervised { output, signal: Some(first), drain: None },
        outcome = drain(shutdown, inflight, plan, signals.recv(), first) => outcome,
    };
    if matches!(outcome, DrainOutcome::Aborted { .. }) {
        let output = service.await;
        return Supervised {
            output,
            signal: Some(first),
            drain: Some(outcome),
        };
    }
    tokio::select! {
        output = &mut service => Supervised { output, signal: Some(first), drain: Some(outcome) },
        second = signals.recv() => {
            let aborted = abort(shutdown, inflight, second);
            let output = service.await;
            Supervised { output, signal: Some(first), drain: Some(aborted) }
        }
    }
}

fn abort(shutdown: &Shutdown, inflight: &InFlight, signal: SignalKind) -> DrainOutcome {
    shutdown.abort();
    let remaining = inflight.count();
    tracing::warn!(
        signal = signal.as_str(),
        remaining,
        "Second stop signal: exiting at once."
    );
    DrainOutcome::Aborted { signal, remaining }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: DrainPlan = DrainPlan {
        delay: Duration::from_secs(5),
        timeout: Duration::from_secs(25),
    };

    #[tokio::test(start_paused = true)]
    async fn walks_the_phases_on_the_timetable_and_ends_clean_when_work_finishes() {
        let shutdown = Shutdown::new();
        let inflight = InFlight::new();
        let unit = inflight.enter();
        let run = tokio::spawn({
            let (shutdown, inflight) = (shutdown.clone(), inflight.clone());
            async move {
                drain(
                    &shutdown,
                    &inflight,
                    PLAN,
                    std::future::pending(),
                    SignalKind::Term,
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(shutdown.phase(), Phase::Draining, "not ready at once");
        tokio::time::sleep(PLAN.delay).await;
        assert_eq!(
            shutdown.phase(),
            Phase::Refusing,
            "refusing after the delay"
        );
        drop(unit);
        let outcome = run.await.expect("drain task");
        assert!(matches!(outcome, DrainOutcome::Clean { .. }), "{outcome:?}");
        assert_eq!(shutdown.phase(), Phase::Forcing);
        assert!(!shutdown.is_aborted());
    }

    #[tokio::test(start_paused = true)]
    async fn forces_at_the_deadline_and_a_second_signal_aborts() {
        let shutdown = Shutdown::new();
        let inflight = InFlight::new();
        let _stuck = inflight.enter();
        let outcome = drain(
            &shutdown,
            &inflight,
            PLAN,
            std::future::pending(),
            SignalKind::Term,
        )
        .await;
        assert_eq!(outcome, DrainOutcome::Forced { remaining: 1 });
        assert!(!shutdown.is_aborted());

        let shutdown = Shutdown::new();
        let outcome = drain(
            &shutdown,
            &inflight,
            PLAN,
            std::future::ready(SignalKind::Int),
            SignalKind::Term,
        )
        .await;
        assert_eq!(
            outcome,
            DrainOutcome::Aborted {
                signal: SignalKind::Int,
                remaining: 1
            }
        );
        assert!(shutdown.is_aborted());
    }
}
