//! Lifeline's gateway: the Kubernetes-ready sidecar in front of an MCP server. It owns the two listeners (client
//! `proxy` and `admin`), the upstream seam (`upstream`: HTTP, or stdio children), legacy session tracking with
//! idle expiry and a bound (`sessions`), the SSE relay with keep-alives and drain-aware closing (`sse`), the
//! edge rules of the MCP transports (`edge`), `/live` (`live`), `/ready` (`ready`), metrics, and the drain
//! that follows a stop signal (phases from `lifeline_core`).
//!
//! The gateway never buffers a response body, never forwards the client's `Authorization` unless told to, and
//! never reads the process environment (the binary turns flags, `LIFELINE_*` variables and the config file
//! into a [`RawConfig`]). [`Gateway::run`] is the one place that spawns the gateway's long-lived tasks, and all
//! of them end with the drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_core::{DrainOutcome, InFlight, Phase, Shutdown, Signals};
use tokio::net::TcpListener;

mod admin;
mod body;
pub mod config;
mod edge;
mod live;
mod metrics;
mod proxy;
mod ready;
mod rpc;
mod server;
mod sessions;
mod sse;
pub mod upstream;

pub use body::{Body, BoxError};
pub use config::{ConfigError, FileFormat, GatewayConfig, RawConfig};
pub use upstream::{HttpUpstream, StdioUpstream, Upstream, UpstreamError};

use crate::admin::Admin;
use crate::live::Liveness;
use crate::metrics::Metrics;
use crate::proxy::{Links, Proxy};
use crate::ready::Readiness;
use crate::sessions::Sessions;

/// How long connections get to close once the drain is over.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Bound on shutting the stdio children down once the drain is over (each takes at most three 2 s steps).
const UPSTREAM_CLOSE_GRACE: Duration = Duration::from_secs(7);
/// Concurrent `DELETE`s when the gateway ends sessions itself (idle TTL, drain).
const END_SESSION_CONCURRENCY: usize = 16;

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({which}): {source}")]
    Bind {
        /// `listen` or `admin_listen`.
        which: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A gateway whose listeners are bound (so their addresses are known) but which serves nothing yet.
#[derive(Debug)]
pub struct Gateway {
    cfg: Arc<GatewayConfig>,
    client: TcpListener,
    admin: TcpListener,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// The drain's outcome.
    pub drain: DrainOutcome,
}

impl Gateway {
    /// Binds both listeners.
    ///
    /// Errors: [`GatewayError::Bind`].
    pub async fn bind(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let client = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                which: "listen",
                addr: cfg.listen,
                source,
            })?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .map_err(|source| GatewayError::Bind {
                which: "admin_listen",
                addr: cfg.admin_listen,
                source,
            })?;
        Ok(Gateway {
            cfg: Arc::new(cfg),
            client,
            admin,
        })
    }

    /// The bound client address.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client.local_addr().ok()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.local_addr().ok()
    }

    /// Serves until a stop signal, drains, and returns. The caller exits the process afterwards (tasks still
    /// running then, such as connections cut at the deadline, end with the runtime).
    pub async fn run(self, mut signals: Signals) -> RunSummary {
        let cfg = self.cfg;
        let shutdown = Shutdown::new();
        let inflight = InFlight::new();
        let metrics = Arc::new(Metrics::new());
        let sessions = Arc::new(Sessions::new(
            cfg.sessions.max_sessions,
            cfg.sessions.idle_ttl,
        ));
        let links = Arc::new(Links::default());
        let upstream = Arc::new(match &cfg.stdio {
            Some(stdio) => Upstream::Stdio(StdioUpstream::new(
                stdio.clone(),
                cfg.upstream.timeout,
                Arc::clone(&metrics),
            )),
            None => Upstream::Http(HttpUpstream::new(&cfg.upstream)),
        });
        upstream.start();
        let liveness = Arc::new(Liveness::new(cfg.probes.live_stall));
        let probe_headers = cfg
            .upstream
            .headers
            .iter()
            .filter_map(|(n, v)| {
                let value = v.to_str().ok()?.to_owned();
                Some((
                    n.as_str().to_owned(),
                    lifeline_mcp::probe::Secret::new(value),
                ))
            })
            .collect();
        let readiness = Arc::new(Readiness::new(
            Arc::clone(&upstream),
            probe_headers,
            cfg.probes.ready_ttl,
            cfg.probes.ready_timeout,
            Arc::clone(&metrics),
        ));

        // As a container's PID 1 the gateway inherits the orphans of its stdio children: reap them.
        let reaper = lifeline_core::reaper::is_init().then(|| {
            tracing::info!("Running as PID 1: reaping orphaned processes.");
            tokio::spawn(lifeline_core::reaper::reap_orphans(
                shutdown.reached_owned(Phase::Forcing),
            ))
        });
        if upstream.has_children() {
            tokio::spawn(forward_signals(Arc::clone(&upstream), shutdown.clone()));
        }
        tokio::spawn({
            let liveness = Arc::clone(&liveness);
            let shutdown = shutdown.clone();
            async move { liveness.heartbeat(shutdown).await }
        });
        tokio::spawn(warm_up(
            Arc::clone(&readiness),
            shutdown.clone(),
            cfg.probes.ready_ttl,
        ));
        tokio::spawn(sweep_idle_sessions(
            Arc::clone(&sessions),
            Arc::clone(&upstream),
            Arc::clone(&metrics),
            shutdown.clone(),
            cfg.sessions.idle_ttl,
        ));
        let ender = tokio::spawn(end_sessions_when_refusing(
            Arc::clone(&sessions),
            Arc::clone(&upstream),
            shutdown.clone(),
        ));

        let proxy = Arc::new(Proxy {
            cfg: Arc::clone(&cfg),
            upstream: Arc::clone(&upstream),
            sessions: Arc::clone(&sessions),
            links: Arc::clone(&links),
            metrics: Arc::clone(&metrics),
            inflight: inflight.clone(),
            shutdown: shutdown.clone(),
        });
        let admin = Arc::new(Admin {
            liveness,
            readiness,
            shutdown: shutdown.clone(),
            sessions: Arc::clone(&sessions),
            links: Arc::clone(&links),
            inflight: inflight.clone(),
            metrics,
            started: Instant::now(),
            upstream_label: upstream.label(),
            debug_stall: cfg.debug_stall_endpoint,
        });
        let client_server = tokio::spawn(server::serve(
            "client",
            self.client,
            move |req, peer| Arc::clone(&proxy).handle(req, peer),
            shutdown.reached_owned(Phase::Forcing),
            CLOSE_GRACE,
        ));
        let admin_server = tokio::spawn(server::serve(
            "admin",
            self.admin,
            move |req, _peer| Arc::clone(&admin).handle(req),
            shutdown.reached_owned(Phase::Forcing),
            Duration::ZERO,
        ));
        tracing::info!(upstream = %upstream.label(), "Gateway serving.");

        let first = signals.recv().await;
        tracing::info!(
            signal = first.as_str(),
            sessions = sessions.len() + links.len(),
            in_flight = inflight.count(),
            "Stop signal received."
        );
        let drain =
            lifeline_core::drain(&shutdown, &inflight, cfg.drain, &mut signals, first).await;
        if !matches!(drain, DrainOutcome::Aborted { .. }) {
            // Let the sessions the drain ended reach the upstream and the listeners close their connections
            // (both bounded), unless a second signal asked to exit now.
            let _ = tokio::time::timeout(CLOSE_GRACE * 2, async {
                let _ = ender.await;
                let _ = client_server.await;
                let _ = admin_server.await;
            })
            .await;
        }
        // Stdio children still running (sessions cut at the deadline) are shut down in the spec's order; each
        // step is bounded, and a second signal still gets the quick path (SIGKILL as they drop).
        let _ = tokio::time::timeout(UPSTREAM_CLOSE_GRACE, upstream.close()).await;
        if let Some(reaper) = reaper {
            reaper.abort();
        }
        tracing::info!(
            sessions = sessions.len() + links.len(),
            in_flight = inflight.count(),
            outcome = ?drain,
            "Gateway stopped."
        );
        RunSummary { drain }
    }
}

/// Forwards SIGHUP, SIGUSR1 and SIGUSR2 to the stdio children's process groups, as an init would (servers
/// reload configuration or rotate logs on them). SIGTERM and SIGINT are not forwarded: they start the drain,
/// which ends each child in the spec's order once its work is done (2025-11-25 `basic/lifecycle` §Shutdown).
async fn forward_signals(upstream: Arc<Upstream>, shutdown: Shutdown) {
    use nix::sys::signal::Signal;
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::warn!(
            "Cannot listen for SIGHUP/SIGUSR1/SIGUSR2; they will not reach the stdio server."
        );
        return;
    };
    let stop = shutdown.reached(Phase::Forcing);
    tokio::pin!(stop);
    loop {
        let sig = tokio::select! {
            _ = hup.recv() => Signal::SIGHUP,
            _ = usr1.recv() => Signal::SIGUSR1,
            _ = usr2.recv() => Signal::SIGUSR2,
            _ = &mut stop => return,
        };
        tracing::info!(
            signal = sig.as_str(),
            "Forwarding a signal to the stdio server."
        );
        upstream.signal_children(sig);
    }
}

/// Probes the upstream until it is first ready (state `starting` → `ready`), once per TTL (at least 1 s).
async fn warm_up(readiness: Arc<Readiness>, shutdown: Shutdown, ttl: Duration) {
    let every = ttl.max(Duration::from_secs(1));
    let stop = shutdown.reached(Phase::Draining);
    tokio::pin!(stop);
    while !readiness.ever_ready() {
        tokio::select! {
            _ = readiness.check() => {}
            _ = &mut stop => return,
        }
        if readiness.ever_ready() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}

/// Ends sessions idle beyond the TTL: forgets them and sends the upstream the `DELETE` the client never sent
/// (2025-11-25 `basic/transports` §Session Management 5).
async fn sweep_idle_sessions(
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
/// drain is over and no session is left (the caller bounds the wait).
async fn end_sessions_when_refusing(
    sessions: Arc<Sessions>,
    upstream: Arc<Upstream>,
    shutdown: Shutdown,
) {
    shutdown.reached(Phase::Refusing).await;
    let idle = sessions.take_idle();
    tracing::info!(
        ended = idle.len(),
        busy = sessions.len(),
        "Drain: ending idle sessions; busy ones end after their last request."
    );
    end_sessions(&upstream, idle).await;
    while sessions.len() > 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.reached(Phase::Forcing) => {}
        }
        end_sessions(&upstream, sessions.take_idle()).await;
        if shutdown.phase() == Phase::Forcing {
            return;
        }
    }
}

async fn end_sessions(upstream: &Arc<Upstream>, ids: Vec<Box<str>>) {
    let mut set = tokio::task::JoinSet::new();
    for id in ids {
        while set.len() >= END_SESSION_CONCURRENCY {
            let _ = set.join_next().await;
        }
        let upstream = Arc::clone(upstream);
        set.spawn(async move {
            match upstream.end_session(&id).await {
                Ok(status) => tracing::debug!(session.id = %id, status = status.as_u16(), "Session ended upstream."),
                Err(err) => tracing::debug!(session.id = %id, error = %err, "Ending a session upstream failed."),
            }
        });
    }
    while set.join_next().await.is_some() {}
}
