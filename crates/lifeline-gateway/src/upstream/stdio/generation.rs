//! Generations of stdio children: a reload without interrupting anyone (`docs/gateway-replicas.md` §Switching
//! versions; the PM2 `reload` of seed `003`). `SIGHUP` to the gateway, or `POST /admin/reload` on the admin port,
//! calls [`StdioUpstream::reload`]:
//!
//! 1. a new generation starts from the command and settings the gateway runs with (the program is executed
//!    again, so a new version installed at the same path, or a changed script, is what starts; the config file
//!    is not re-read);
//! 2. the gateway waits until it answers, with the same rules as `/ready`: in pool mode every slot of the new
//!    pool initialized (bounded by [`START_PATIENCE`]) and then the shared probe engine's full MCP probe of the
//!    command; in session mode a new warm spare that answers `ping`. A generation that does not answer is shut
//!    down and the old one keeps serving (the reload fails, nothing else changes);
//! 3. new sessions (and stateless requests) go to the new generation at once;
//! 4. sessions of the old generation keep their children until they end (`DELETE`, idle TTL) or `--drain-timeout`
//!    passes, then the old children are stopped (close stdin, SIGTERM, SIGKILL, as in a drain) and a session
//!    still open gets 404 and re-initializes onto the new generation (2025-11-25 `basic/transports` §Session
//!    Management 4).
//!
//! One reload runs at a time; a second waits for the first.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use lifeline_mcp::{ProbeOptions, Target};

use super::pool::Pool;
use super::StdioUpstream;
use crate::body::Body;
use crate::proxy::session_id;
use crate::upstream::Upstream;
use crate::upstream::UpstreamError;

/// Bound on a new pool generation's start (every slot initialized).
pub(crate) const START_PATIENCE: Duration = Duration::from_secs(60);

/// Pool mode's generations: the current pool and the old ones still serving their sessions.
#[derive(Debug)]
pub(super) struct Pools {
    current: RwLock<Arc<Pool>>,
    old: Mutex<Vec<Arc<Pool>>>,
}

impl Pools {
    pub(super) fn new(first: Pool) -> Pools {
        Pools {
            current: RwLock::new(Arc::new(first)),
            old: Mutex::new(Vec::new()),
        }
    }

    /// The generation new sessions go to.
    pub(super) fn current(&self) -> Arc<Pool> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn old(&self) -> MutexGuard<'_, Vec<Arc<Pool>>> {
        self.old.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every generation, the current one first.
    fn all(&self) -> Vec<Arc<Pool>> {
        let mut all = vec![self.current()];
        all.extend(self.old().iter().cloned());
        all
    }

    /// The generation holding session `sid` (the current one when none does: it answers 404 for it).
    fn holding(&self, sid: Option<&str>) -> Arc<Pool> {
        let current = self.current();
        let Some(sid) = sid else { return current };
        if current.has_session(sid) {
            return current;
        }
        self.old()
            .iter()
            .find(|p| p.has_session(sid))
            .cloned()
            .unwrap_or(current)
    }

    pub(super) fn start(&self) {
        self.current().start();
    }

    pub(super) async fn forward(
        &self,
        method: Method,
        headers: HeaderMap,
        bytes: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let sid = session_id(&headers);
        self.holding(sid.as_deref())
            .forward(method, headers, bytes)
            .await
    }

    pub(super) fn end_session(&self, sid: &str) -> StatusCode {
        self.holding(Some(sid)).end_session(sid)
    }

    pub(super) fn signal(&self, signal: nix::sys::signal::Signal) {
        for p in self.all() {
            p.signal(signal);
        }
    }

    pub(super) async fn close(&self) {
        for p in self.all() {
            p.close().await;
        }
    }
}

/// What a reload did, for the log and the admin answer.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Reloaded {
    /// `pool` or `session`.
    pub(crate) mode: &'static str,
    /// Sessions left on the old generation, to finish by `--drain-timeout`.
    pub(crate) old_sessions: usize,
    /// The new generation's probe: its verdict.
    pub(crate) verdict: String,
}

/// [`StdioUpstream::reload`] of `up` (an error for an HTTP upstream).
///
/// Errors: as [`StdioUpstream::reload`], and "not a stdio upstream".
pub(crate) async fn reload(
    up: &Arc<Upstream>,
    opts: &ProbeOptions,
    drain_timeout: Duration,
) -> Result<Reloaded, String> {
    match &**up {
        Upstream::Stdio(stdio) => stdio.reload(up, opts, drain_timeout).await,
        Upstream::Http(_) => Err(
            "not a stdio upstream: an HTTP pool switches versions with POST /admin/traffic"
                .to_owned(),
        ),
    }
}

/// Why a new generation's probe refuses it, as one sentence.
fn failed_probe(report: &lifeline_mcp::ProbeReport) -> String {
    format!(
        "the new generation failed its probe: {} ({})",
        report.verdict.as_str(),
        report
            .failure
            .as_ref()
            .map_or("no reason", |f| f.message.as_str())
    )
}

/// The stdio upstream inside `up` (it is one: only [`reload`] hands it over).
fn stdio(up: &Upstream) -> Option<&StdioUpstream> {
    match up {
        Upstream::Stdio(s) => Some(s),
        Upstream::Http(_) => None,
    }
}

impl StdioUpstream {
    /// Starts a new generation of children, waits until it answers, sends new sessions there, and lets the old
    /// generation's sessions finish until `drain_timeout` (in a background task) before stopping its children.
    /// `opts` are the readiness probe's options.
    ///
    /// Errors: a sentence saying why the new generation was not taken (it did not start or failed its probe);
    /// the old generation then keeps serving as before.
    /// `up` is the upstream this is inside, kept alive by the background task that ends the old generation.
    async fn reload(
        &self,
        up: &Arc<Upstream>,
        opts: &ProbeOptions,
        drain_timeout: Duration,
    ) -> Result<Reloaded, String> {
        let _one = self.reloading.lock().await;
        if let Some(pools) = &self.pool {
            let next = Arc::new(Pool::new(
                self.cfg.clone(),
                self.timeout,
                Arc::clone(&self.metrics),
            ));
            next.start();
            let report = async {
                let deadline = tokio::time::Instant::now() + START_PATIENCE;
                // Woken at every child that becomes ready (`Pool::wait_until`), no polling.
                let up = next.wait_until(deadline, |p| p.running() == p.size()).await;
                if !up {
                    return Err(format!(
                        "the new generation did not start within {START_PATIENCE:?}: {}",
                        next.unavailable()
                    ));
                }
                let report = lifeline_mcp::probe(&Target::Stdio(self.command()), opts).await;
                if !report.is_usable() {
                    return Err(failed_probe(&report));
                }
                Ok(report)
            }
            .await;
            let report = match report {
                Ok(r) => r,
                Err(err) => {
                    next.close().await;
                    tracing::error!(error = %err, "Stdio reload failed: the old generation keeps serving.");
                    return Err(err);
                }
            };
            let old = {
                let mut cur = pools.current.write().unwrap_or_else(|p| p.into_inner());
                std::mem::replace(&mut *cur, Arc::clone(&next))
            };
            let old_sessions = old.session_count();
            pools.old().push(Arc::clone(&old));
            tracing::info!(
                old_sessions,
                drain_timeout_ms = drain_timeout.as_millis() as u64,
                "Stdio reload: new sessions go to the new generation; the old one finishes its sessions."
            );
            let up = Arc::clone(up);
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + drain_timeout;
                // Woken at every session that ends there (`Pool::wait_until`), no polling.
                old.wait_until(deadline, |p| p.session_count() == 0).await;
                let left = old.session_count();
                old.close().await;
                if let Some(pools) = stdio(&up).and_then(|s| s.pool.as_ref()) {
                    pools.old().retain(|p| !Arc::ptr_eq(p, &old));
                }
                tracing::info!(
                    sessions_cut = left,
                    "Stdio reload: the old generation stopped."
                );
            });
            return Ok(Reloaded {
                mode: "pool",
                old_sessions,
                verdict: report.verdict.as_str().to_owned(),
            });
        }
        // Session mode: every session has its own child, so the new generation is the next spare (the command
        // executed again, answering `ping`) and every session started from now on.
        let Some(spare) = &self.spare else {
            return Err("no stdio children to reload".to_owned());
        };
        let (old, old_children): (Vec<Box<str>>, Vec<Arc<super::child::Child>>) = self
            .children()
            .iter()
            .map(|(sid, child)| (sid.clone(), Arc::clone(child)))
            .unzip();
        if let Err(err) = spare.renew() {
            return Err(format!("the new generation did not start: {err}"));
        }
        let report = spare.probe(opts.timeouts.total, self.label()).await;
        if !report.is_usable() {
            let err = failed_probe(&report);
            tracing::error!(error = %err, "Stdio reload failed.");
            return Err(err);
        }
        let old_sessions = old.len();
        tracing::info!(
            old_sessions,
            drain_timeout_ms = drain_timeout.as_millis() as u64,
            "Stdio reload: new sessions start the new generation; old sessions finish on their children."
        );
        let up = Arc::clone(up);
        tokio::spawn(async move {
            let Some(this) = stdio(&up) else { return };
            let deadline = tokio::time::Instant::now() + drain_timeout;
            let alive = |this: &StdioUpstream| -> Vec<Box<str>> {
                let children = this.children();
                old.iter()
                    .filter(|s| children.contains_key(*s))
                    .cloned()
                    .collect()
            };
            // Each old session's child ends with its session (DELETE, idle TTL, a crash): wait for all of them,
            // woken by each child's end, no polling.
            let ended = futures_util::future::join_all(old_children.iter().map(|c| c.wait_ended()));
            let _ = tokio::time::timeout_at(deadline, ended).await;
            let left = alive(this);
            for sid in &left {
                let _ = this.end_session(sid).await;
            }
            tracing::info!(
                sessions_cut = left.len(),
                "Stdio reload: the old generation stopped."
            );
        });
        Ok(Reloaded {
            mode: "session",
            old_sessions,
            verdict: report.verdict.as_str().to_owned(),
        })
    }
}
