//! What the gateway does around the drain's phases (the timetable itself is `lifeline_core::drain`, run by the
//! caller of [`crate::Gateway::run`]): the session-ending tasks, and the after-drain sequence once the phase is
//! `Forcing`.
//!
//! - [`sweep_idle_sessions`] ends sessions idle beyond the TTL while the gateway runs, until `Refusing`.
//! - [`end_sessions_when_refusing`] ends every idle session at `Refusing` and each busy one as it goes idle,
//!   so clients re-initialize elsewhere (2025-11-25 `basic/transports` §Session Management 5). With sealed ids
//!   (the edge tier) sessions are shared by the gateway replicas: they keep being served until `Forcing`, and
//!   only the sessions recovered on this replica are ended then.
//! - [`after_drain`]: lets the ended sessions reach the upstream and the listeners close their connections
//!   (bounded by [`CLOSE_GRACE`] × 2, skipped after [`Shutdown::abort`]), then shuts the stdio children down
//!   (bounded by [`UPSTREAM_CLOSE_GRACE`]), then stops the orphan reaper.

use std::sync::Arc;
use std::time::Duration;

use lifeline_core::{Phase, Shutdown};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::sessions::{Ended, Sessions};
use crate::upstream::Upstream;

/// How long connections get to close once the drain is over.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Bound on shutting the stdio children down once the drain is over (each takes at most three 2 s steps).
pub(crate) const UPSTREAM_CLOSE_GRACE: Duration = Duration::from_secs(7);
/// Concurrent `DELETE`s when the gateway ends sessions itself (idle TTL, drain).
const END_SESSION_CONCURRENCY: usize = 16;
/// How often the drain looks for busy sessions that went idle.
const BUSY_SESSION_POLL: Duration = Duration::from_millis(100);

/// The tasks the after-drain sequence waits for.
pub(crate) struct Ending {
    /// [`end_sessions_when_refusing`].
    pub(crate) ender: JoinHandle<()>,
    /// The client listener's server.
    pub(crate) client_server: JoinHandle<()>,
    /// The admin listener's server.
    pub(crate) admin_server: JoinHandle<()>,
    /// The orphan reaper, when the gateway is PID 1.
    pub(crate) reaper: Option<JoinHandle<()>>,
}

/// Runs once the phase is `Forcing`: waits (bounded) for the sessions the drain ended and for the listeners,
/// unless the stop was aborted (a second signal, now or meanwhile); then closes the upstream (stdio children
/// still running, i.e. sessions cut at the deadline, are shut down in the spec's order, each step bounded; after
/// an abort they get the quick path, SIGKILL as they drop) and stops the reaper.
pub(crate) async fn after_drain(shutdown: &Shutdown, ending: Ending, upstream: &Upstream) {
    if !shutdown.is_aborted() {
        let _ = tokio::time::timeout(CLOSE_GRACE * 2, async {
            tokio::select! {
                () = async {
                    let _ = ending.ender.await;
                    let _ = ending.client_server.await;
                    let _ = ending.admin_server.await;
                } => {}
                () = shutdown.aborted() => {}
            }
        })
        .await;
    }
    let _ = tokio::time::timeout(UPSTREAM_CLOSE_GRACE, upstream.close()).await;
    if let Some(reaper) = ending.reaper {
        reaper.abort();
    }
}

/// Ends sessions idle beyond the TTL: forgets them and sends the upstream the `DELETE` the client never sent
/// (2025-11-25 `basic/transports` §Session Management 5).
pub(crate) async fn sweep_idle_sessions(
    sessions: Arc<Sessions>,
    upstream: Arc<Upstream>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    ttl: Duration,
) {
    let every = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.reached(Phase::Refusing);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return,
        }
        let expired = sessions.take_expired();
        if expired.is_empty() {
            continue;
        }
        tracing::info!(count = expired.len(), "Ending idle sessions.");
        for _ in &expired {
            metrics.session_expired();
        }
        end_sessions(&upstream, expired).await;
    }
}

/// When the drain starts refusing, ends every idle session, so their clients' next request gets 404 and they
/// re-initialize on another instance; sessions busy then are ended as soon as they go idle. Returns once the
/// drain is over and no session is left (the caller bounds the wait). With sealed ids nothing is ended before
/// `Forcing` (any gateway replica serves any session: a 404 here would be a session lost for nothing); then the
/// sessions recovered here are ended upstream.
pub(crate) async fn end_sessions_when_refusing(
    sessions: Arc<Sessions>,
    upstream: Arc<Upstream>,
    shutdown: Shutdown,
) {
    shutdown.reached(Phase::Refusing).await;
    if sessions.sealed() {
        // The edge tier (sealed ids): every session is shared and keeps being served until the drain ends; the
        // only ones to end are those recovered on this replica (private to it), once nothing can use them.
        shutdown.reached(Phase::Forcing).await;
        let ended = sessions.take_idle();
        tracing::info!(
            ended = ended.len(),
            "Drain over: ending the sessions recovered on this replica."
        );
        end_sessions(&upstream, ended).await;
        return;
    }
    let idle = sessions.take_idle();
    tracing::info!(
        ended = idle.len(),
        busy = sessions.len(),
        "Drain: ending idle sessions; busy ones end after their last request."
    );
    end_sessions(&upstream, idle).await;
    while sessions.len() > 0 {
        tokio::select! {
            _ = tokio::time::sleep(BUSY_SESSION_POLL) => {}
            _ = shutdown.reached(Phase::Forcing) => {}
        }
        end_sessions(&upstream, sessions.take_idle()).await;
        if shutdown.phase() == Phase::Forcing {
            return;
        }
    }
}

async fn end_sessions(upstream: &Arc<Upstream>, ended: Vec<Ended>) {
    let mut set = tokio::task::JoinSet::new();
    for Ended { id, home } in ended {
        while set.len() >= END_SESSION_CONCURRENCY {
            let _ = set.join_next().await;
        }
        let upstream = Arc::clone(upstream);
        set.spawn(async move {
            match upstream.end_session(&id, home.as_ref()).await {
                Ok(status) => tracing::debug!(session.id = %id, status = status.as_u16(), "Session ended upstream."),
                Err(err) => tracing::debug!(session.id = %id, error = %err, "Ending a session upstream failed."),
            }
        });
    }
    while set.join_next().await.is_some() {}
}
