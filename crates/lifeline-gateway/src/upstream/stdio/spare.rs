//! Session mode's warm spare: one started child that no session has claimed yet. The readiness probe asks it, and
//! the next `initialize` takes it over (and starts the next spare), so `/ready` never starts and throws away a
//! whole server per `--ready-ttl` (heavy for `npx`) and a new session skips the server's start-up time.
//!
//! What the readiness probe can ask a child that a client will initialize later: only `ping`. 2025-11-25
//! `basic/lifecycle` §Initialization: "The client SHOULD NOT send requests other than pings before the server has
//! responded to the initialize request", and `basic/utilities/ping` lets either side ping at any time. An
//! `initialize` would bind the child to the gateway's client info and capabilities instead of the real client's,
//! so the probe never sends one. The spare is ready when it answers the ping (a result, or an error response with
//! the ping's id: either proves the process reads stdin and writes JSON-RPC to stdout); a spare that does not
//! answer within the readiness timeout is shut down and replaced, so a hung server is never handed to a client.
//! The full handshake with the real client happens on every session's `initialize`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lifeline_mcp::probe::{Failure, Phase, Timings};
use lifeline_mcp::{ProbeReport, Reason, TransportKind};
use nix::sys::signal::Signal;
use serde_json::Value;

use super::child::{Child, RegisterError};
use super::stream::response_of;
use crate::config::StdioConfig;
use crate::upstream::UpstreamError;

/// The warm spare of session mode (see the module docs).
#[derive(Debug)]
pub(super) struct Spare {
    cfg: StdioConfig,
    /// The spare and the session id it will serve under (minted with it, so its log lines carry that id from
    /// the start).
    slot: Mutex<Option<(String, Arc<Child>)>>,
    /// Set by [`Spare::close`]: no new spare is started after it.
    closed: AtomicBool,
    pings: AtomicU64,
}

impl Spare {
    pub(super) fn new(cfg: StdioConfig) -> Spare {
        Spare {
            cfg,
            slot: Mutex::new(None),
            closed: AtomicBool::new(false),
            pings: AtomicU64::new(0),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<(String, Arc<Child>)>> {
        // Every update replaces the whole slot, so a poisoned lock still holds a consistent value.
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a spare when there is none (or the one there has exited), unless closed.
    ///
    /// Errors: [`UpstreamError::Connect`] when the command cannot be started.
    pub(super) fn refill(&self) -> Result<(), UpstreamError> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let dead = {
            let mut slot = self.slot();
            match slot.as_ref() {
                Some((_, child)) if child.is_alive() => return Ok(()),
                _ => {}
            }
            let sid = super::mint_session_id()?;
            let child = Child::spawn(&self.cfg, &sid, false)?;
            tracing::debug!(child.pid = child.pid, session.id = %sid, "Stdio spare started.");
            slot.replace((sid, child))
        };
        if let Some((_, dead)) = dead {
            reap(dead);
        }
        Ok(())
    }

    /// Replaces the spare with a new child (a reload: the command executed again); the old spare is shut down
    /// in the background.
    ///
    /// Errors: as [`Spare::refill`].
    pub(super) fn renew(&self) -> Result<(), UpstreamError> {
        if let Some((_, old)) = self.slot().take() {
            reap(old);
        }
        self.refill()
    }

    /// Takes the spare for a new session (`None` when there is no live one), and starts the next spare at once so
    /// that it is up before the session's answer leaves. A failure to start the next one is logged: the session
    /// is served all the same, and the readiness probe reports it.
    pub(super) fn take(&self) -> Option<(String, Arc<Child>)> {
        let taken = self.slot().take();
        let taken = match taken {
            Some((sid, child)) if child.is_alive() => Some((sid, child)),
            Some((_, dead)) => {
                reap(dead);
                None
            }
            None => None,
        };
        if let Err(err) = self.refill() {
            tracing::warn!(error = %err, "Cannot start the next stdio spare.");
        }
        taken
    }

    /// The readiness probe: a `ping` to the spare (started first if there is none), bounded by `timeout`.
    /// `label` is the upstream as displayed.
    pub(super) async fn probe(&self, timeout: Duration, label: String) -> ProbeReport {
        let started_at = ProbeReport::now_rfc3339();
        let start = Instant::now();
        let outcome = self.ping(timeout).await;
        let mut timings = Timings::default();
        let total = start.elapsed().as_secs_f64() * 1000.0;
        let mut report = match outcome {
            Ok(()) => {
                timings.add(Phase::Ping, total);
                timings.add(Phase::Total, total);
                ProbeReport::alive(label, timings, started_at)
            }
            Err(failure) => {
                timings.add(Phase::Total, total);
                ProbeReport::failed(label, failure, timings, started_at)
            }
        };
        report.transport = Some(TransportKind::Stdio);
        report
    }

    async fn ping(&self, timeout: Duration) -> Result<(), Failure> {
        self.refill()
            .map_err(|e| Failure::new(Reason::ConnectRefused, e.to_string()))?;
        let child = self
            .slot()
            .as_ref()
            .map(|(_, child)| Arc::clone(child))
            .ok_or_else(|| {
                Failure::new(
                    Reason::ConnectRefused,
                    "the gateway is stopping: no stdio spare".to_owned(),
                )
            })?;
        let n = self.pings.fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("lifeline-ready-{n}"));
        let key = id.to_string();
        let exited = |child: &Child| {
            Failure::new(
                Reason::ConnectRefused,
                format!(
                    "the stdio server exited before a client used it: {}",
                    child.ended().unwrap_or_default()
                ),
            )
        };
        let mut rx = match child.register(key.clone(), None) {
            Ok(rx) => rx,
            Err(RegisterError::Ended) => return Err(exited(&child)),
            Err(RegisterError::Duplicate) => {
                return Err(Failure::new(
                    Reason::ProtocolError,
                    "a readiness ping with this id is already in flight".to_owned(),
                ))
            }
        };
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        if let Err(err) = child.send(ping.to_string().as_bytes()).await {
            child.unregister(&key);
            return Err(Failure::new(Reason::ConnectRefused, err.to_string()));
        }
        match tokio::time::timeout(timeout, response_of(&mut rx)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(exited(&child)),
            Err(_) => {
                child.unregister(&key);
                // A hung spare must never be handed to a client: replace it.
                self.discard(&child);
                Err(Failure::new(
                    Reason::Timeout,
                    format!("the stdio server did not answer ping within {timeout:?}"),
                ))
            }
        }
    }

    /// Shuts `child` down if it is still the spare.
    fn discard(&self, child: &Arc<Child>) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|(_, c)| Arc::ptr_eq(c, child)) {
            if let Some((_, child)) = slot.take() {
                reap(child);
            }
        }
    }

    /// Forwards `signal` to the spare's process group.
    pub(super) fn signal(&self, signal: Signal) {
        if let Some((_, child)) = self.slot().as_ref() {
            child.signal(signal);
        }
    }

    /// The gateway is stopping: no spare is started any more, and the one there is shut down (bounded: three
    /// steps of 2 s at most).
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let spare = self.slot().take();
        if let Some((sid, child)) = spare {
            let how = child.shutdown().await;
            tracing::debug!(session.id = %sid, child.pid = child.pid, exit = how.as_deref().unwrap_or("unknown"), "Stdio spare ended.");
        }
    }
}

/// Shuts a child down in the background (it exited, or hung): its process is waited for, never left a zombie.
fn reap(child: Arc<Child>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let _ = child.shutdown().await;
        });
    }
}
