//! Lifeline's gateway: the Kubernetes-ready sidecar in front of an MCP server. It owns the two listeners (client
//! `proxy` and `admin`), the upstream seam (`upstream`: HTTP, or stdio children), legacy session tracking with
//! idle expiry and a bound (`sessions`), the SSE relay with keep-alives and drain-aware closing (`sse`), the
//! edge rules of the MCP transports (`edge`), `/live` (`live`), `/ready` (`ready`), metrics, and what each
//! drain phase means for the gateway (`drain`: the session-ending tasks and the after-drain sequence).
//!
//! With an `auth:` block the gateway is the OAuth 2.1 resource server in front of its upstream (`auth`: the
//! layer every client request to the MCP endpoint, `/sse`, `/messages` and the federated endpoints passes first;
//! RFC 9728 metadata).
//!
//! The gateway never buffers a response body, never forwards the client's `Authorization` unless told to (and
//! never with auth on), and
//! never reads the process environment (the binary turns flags, `LIFELINE_*` variables and the config file
//! into a [`RawConfig`]). Nor does it listen for OS signals: [`Gateway::run`] takes a
//! [`lifeline_core::Shutdown`] that its caller walks through the phases (the binary with
//! `lifeline_core::supervise` on [`Gateway::drain_plan`] and [`Gateway::in_flight`]; a test directly).
//! [`Gateway::run`] is the one place that spawns the gateway's long-lived tasks, and all of them end with the
//! drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_core::{DrainPlan, InFlight, Phase, Shutdown};
use tokio::net::TcpListener;

mod admin;
mod auth;
mod body;
pub mod config;
mod discovery;
mod drain;
mod edge;
mod federation;
mod http1;
mod live;
mod metrics;
mod policy;
mod proxy;
mod ready;
mod rpc;
mod server;
mod sessions;
mod sse;
mod timer;
mod trace;
pub mod upstream;

pub use body::{Body, BoxError};
pub use config::{ConfigError, FileFormat, GatewayConfig, RawConfig};
/// Sealed session ids for `benches/sealed_ids.rs` (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use sessions::seal::bench as sealed_ids;
pub use upstream::{EndpointRef, HttpUpstream, Route, StdioUpstream, Upstream, UpstreamError};

use crate::admin::Admin;
use crate::auth::Auth;
use crate::drain::{Ending, CLOSE_GRACE};
use crate::live::Liveness;
use crate::metrics::Metrics;
use crate::proxy::{Links, Proxy};
use crate::ready::Readiness;
use crate::sessions::Sessions;

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The authentication layer could not be set up (its HTTP client for the authorization servers).
    #[error("cannot set up authentication: {0}")]
    Auth(String),
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
    inflight: InFlight,
    metrics: Arc<Metrics>,
    auth: Option<Arc<Auth>>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// True when the stop was aborted ([`Shutdown::abort`], a second signal): the bounded wait for
    /// connections to close was skipped.
    pub aborted: bool,
    /// Requests and streams still in flight when the run returned (cut at the deadline or by the abort).
    pub in_flight: usize,
}

impl Gateway {
    /// Binds both listeners.
    ///
    /// Errors: [`GatewayError::Bind`], [`GatewayError::Auth`].
    pub async fn bind(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let metrics = Arc::new(Metrics::new());
        let auth = match &cfg.auth {
            Some(a) => Some(Arc::new(
                Auth::new(a, &cfg.paths, Arc::clone(&metrics), cfg.retry_after)
                    .map_err(|e| GatewayError::Auth(e.to_string()))?,
            )),
            None => None,
        };
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
            inflight: InFlight::new(),
            metrics,
            auth,
        })
    }

    /// The drain timetable from the configuration (`drain_delay`, `drain_timeout`), for the caller that walks
    /// the [`Shutdown`] given to [`Gateway::run`] through its phases.
    pub fn drain_plan(&self) -> DrainPlan {
        self.cfg.drain
    }

    /// The counter of client requests and streams in flight (a clone sharing the count), for the drain's
    /// wait at [`Phase::Refusing`]: once it reaches zero the drain is clean.
    pub fn in_flight(&self) -> InFlight {
        self.inflight.clone()
    }

    /// The bound client address.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.client.local_addr().ok()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.local_addr().ok()
    }

    /// Serves until `shutdown` reaches [`Phase::Forcing`], then runs the after-drain sequence (bounded, see
    /// the `drain` module) and returns. What each earlier phase means: `Draining` fails `/ready` and serves
    /// everything; `Refusing` refuses new sessions and stateless requests (503), ends idle sessions (with sealed
    /// ids: keeps serving every session, shared by the gateway replicas) and lets work in flight finish; `Forcing` closes what is left. The caller walks the phases (usually
    /// `lifeline_core::supervise` with [`Gateway::drain_plan`] and [`Gateway::in_flight`]) and exits the
    /// process afterwards (tasks still running then, such as connections cut at the deadline, end with the
    /// runtime).
    pub async fn run(self, shutdown: Shutdown) -> RunSummary {
        let cfg = self.cfg;
        let inflight = self.inflight;
        let metrics = self.metrics;
        let auth = self.auth;
        if let Some(auth) = &auth {
            auth.spawn_background(&shutdown);
        }
        metrics.set_sessions_max(cfg.sessions.max_sessions);
        let sessions = Arc::new(
            Sessions::new(cfg.sessions.max_sessions, cfg.sessions.idle_ttl)
                .with_keys(cfg.sessions.keys.as_ref())
                .with_metrics(Arc::clone(&metrics)),
        );
        let links = Arc::new(Links::default());
        let upstream = Arc::new(match &cfg.stdio {
            Some(stdio) => Upstream::Stdio(StdioUpstream::new(
                stdio.clone(),
                cfg.upstream.timeout,
                Arc::clone(&metrics),
            )),
            None => Upstream::Http(HttpUpstream::with_metrics(
                &cfg.upstream,
                Arc::clone(&metrics),
            )),
        });
        if let Some(pool) = upstream.pool() {
            // DNS-discovered endpoints join before the first request (bounded by the lookup timeout).
            upstream::resolve_dns_entries(pool).await;
        }
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
            &cfg.probes,
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
            tokio::spawn(forward_signals(
                Arc::clone(&upstream),
                shutdown.clone(),
                readiness.probe_options(),
                cfg.drain.timeout,
            ));
        }
        tokio::spawn({
            let liveness = Arc::clone(&liveness);
            let shutdown = shutdown.clone();
            async move { liveness.heartbeat(shutdown).await }
        });
        if upstream.is_pool() {
            if let Some(pool) = upstream.pool() {
                tokio::spawn(upstream::watch_pool(
                    Arc::clone(pool),
                    readiness.probe_options(),
                    shutdown.clone(),
                ));
            }
        } else {
            tokio::spawn(warm_up(
                Arc::clone(&readiness),
                shutdown.clone(),
                cfg.probes.ready_ttl,
            ));
        }
        tokio::spawn(drain::sweep_idle_sessions(
            Arc::clone(&sessions),
            Arc::clone(&upstream),
            Arc::clone(&metrics),
            shutdown.clone(),
            cfg.sessions.idle_ttl,
        ));
        let ender = tokio::spawn(drain::end_sessions_when_refusing(
            Arc::clone(&sessions),
            Arc::clone(&upstream),
            shutdown.clone(),
        ));

        // `servers:` (issue 16): the federated endpoints, behind the proxy's layers (`proxy/federated.rs`).
        let federation = cfg.federation.as_ref().map(|f| {
            Arc::new(federation::Federation::new(
                f,
                &cfg,
                &metrics,
                shutdown.clone(),
            ))
        });
        if let Some(fed) = &federation {
            fed.start();
        }
        let proxy = Arc::new(Proxy {
            cfg: Arc::clone(&cfg),
            upstream: Arc::clone(&upstream),
            sessions: Arc::clone(&sessions),
            links: Arc::clone(&links),
            metrics: Arc::clone(&metrics),
            inflight: inflight.clone(),
            shutdown: shutdown.clone(),
            policy: auth
                .as_ref()
                .and_then(|a| policy::Policy::new(a.config()))
                .map(Arc::new),
            auth,
            federation: federation.clone(),
        });
        let traffic = admin::traffic::TrafficAdmin {
            pool: upstream.pool().cloned(),
            token_file: cfg.traffic.admin_token_file.clone(),
            probe: readiness.probe_options(),
            switching: tokio::sync::Mutex::new(()),
            upstream: Arc::clone(&upstream),
            drain_timeout: cfg.drain.timeout,
        };
        if let (Some(pool), Some(weights)) = (upstream.pool(), cfg.traffic.weights.clone()) {
            pool.set_group_weights(weights);
        }
        let admin = Arc::new(Admin {
            liveness,
            readiness,
            shutdown: shutdown.clone(),
            sessions: Arc::clone(&sessions),
            links: Arc::clone(&links),
            inflight: inflight.clone(),
            metrics: Arc::clone(&metrics),
            started: Instant::now(),
            upstream_label: upstream.label(),
            traffic,
            #[cfg(feature = "test-hooks")]
            debug_stall: cfg.debug_stall_endpoint,
        });
        // Server Cards and the AI Catalog (issue 16 §Discovery), answered before the proxy and the federation.
        let discovery = discovery::Discovery::new(
            &cfg.card,
            &cfg.paths.mcp,
            Arc::clone(&admin.readiness),
            Arc::clone(&upstream),
            federation.clone(),
        )
        .map(Arc::new);
        let client_server = tokio::spawn(server::serve(
            "client",
            self.client,
            move |req: http::Request<server::RequestBody>, peer| {
                let proxy = Arc::clone(&proxy);
                // Cards and the catalog are public: answered ahead of the auth layer (discovery.rs).
                let card = discovery.as_ref().and_then(|d| d.answer(&req));
                async move {
                    match card {
                        Some(card) => card,
                        None => proxy.handle(req, peer).await,
                    }
                }
            },
            shutdown.reached_owned(Phase::Forcing),
            CLOSE_GRACE,
        ));
        let admin_server = tokio::spawn(server::serve(
            "admin",
            self.admin,
            {
                let federation = federation.clone();
                move |req: http::Request<server::RequestBody>, _peer| {
                    let admin = Arc::clone(&admin);
                    let federation = federation.clone();
                    async move {
                        let get = req.method() == http::Method::GET;
                        match (federation, req.uri().path()) {
                            (Some(fed), "/ready") if get => fed.ready(),
                            (Some(fed), "/servers") if get => fed.servers_view(),
                            (Some(fed), "/healthz") if get => {
                                fed.healthz(admin.handle(req).await).await
                            }
                            _ => admin.handle(req).await,
                        }
                    }
                }
            },
            shutdown.reached_owned(Phase::Forcing),
            Duration::ZERO,
        ));
        tracing::info!(upstream = %upstream.label(), "Gateway serving.");

        shutdown.reached(Phase::Draining).await;
        // The caller's timetable runs from the same moment (`Gateway::drain_plan`): published for the
        // drain-forced rule, which no counter could serve (the process is gone when the drain is forced).
        metrics.drain_started(cfg.drain.timeout);
        tracing::info!(
            sessions = sessions.len() + links.len(),
            in_flight = inflight.count(),
            "Stop requested: draining."
        );
        shutdown.reached(Phase::Forcing).await;
        let ending = Ending {
            ender,
            client_server,
            admin_server,
            reaper,
        };
        drain::after_drain(&shutdown, ending, &upstream).await;
        if let Some(fed) = &federation {
            fed.close().await;
        }
        let summary = RunSummary {
            aborted: shutdown.is_aborted(),
            in_flight: inflight.count(),
        };
        tracing::info!(
            sessions = sessions.len() + links.len(),
            in_flight = summary.in_flight,
            aborted = summary.aborted,
            "Gateway stopped."
        );
        summary
    }
}

/// SIGHUP reloads the stdio server without interrupting anyone (`upstream::reload`: a new generation of
/// children; `opts` are the readiness probe's, `drain_timeout` bounds the old generation). SIGUSR1 and SIGUSR2
/// are forwarded to the stdio children's process groups, as an init would (servers rotate logs on them). SIGTERM and SIGINT are not forwarded: they start the drain,
/// which ends each child in the spec's order once its work is done (2025-11-25 `basic/lifecycle` §Shutdown).
async fn forward_signals(
    upstream: Arc<Upstream>,
    shutdown: Shutdown,
    opts: lifeline_mcp::ProbeOptions,
    drain_timeout: Duration,
) {
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
        if sig == Signal::SIGHUP {
            // A reload: a new generation of children (`upstream/stdio/generation.rs`), in the background so a
            // second signal or the drain is not held up; reloads queue one at a time.
            tracing::info!("SIGHUP: reloading the stdio server (a new generation of children).");
            let (up, opts) = (Arc::clone(&upstream), opts.clone());
            tokio::spawn(async move {
                let _ = upstream::reload(&up, &opts, drain_timeout).await;
            });
            continue;
        }
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
