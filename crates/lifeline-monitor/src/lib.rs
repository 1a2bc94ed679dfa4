//! `lifeline monitor`: continuous external monitoring of MCP endpoints. This crate owns the service: the
//! configuration ([`config`]), the scheduler, the evaluation of each probe into history, events and incidents
//! ([`evaluate`]), the store (SQLite or PostgreSQL, [`store`]), alert delivery ([`alert`]) and the status page,
//! JSON API and metrics ([`web`]). [`Monitor::run`] ties them together and owns their lifecycle: the phases of
//! the [`lifeline_core::Shutdown`] its caller walks, with the grace periods of [`Lifecycle`].
//!
//! It must not parse command lines, read the process environment (the binary passes `${ENV}` lookups and the
//! replica id in), listen for OS signals (the binary turns them into phases), or exit the process. Probing
//! itself belongs to `lifeline_mcp::probe`, behind the [`prober::Prober`] seam.
//!
//! Task layout of a running monitor: every replica runs the web server, the snapshot builder, the shard
//! manager (`shards`: leases on 128 shards of the targets, a fair share each), the scheduler (probing only the
//! targets of the shards it holds, inside their trust window), the recorder (its writes fenced on the shard
//! epochs), and the alert dispatcher (any replica delivers the outbox). The rollup job and the Alertmanager
//! re-sends run only on the holder of shard 0. See `docs/monitor-ha.md`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lifeline_core::{InFlight, Phase, Shutdown};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod agent;
pub mod alert;
pub mod config;
pub mod drift;
pub mod evaluate;
mod lifecycle;
pub mod metrics;
pub mod prober;
mod recorder;
mod scheduler;
pub mod seal;
mod shards;
pub mod simulate;
pub mod sketch;
pub mod store;
pub mod web;

pub use config::{Config, ConfigError, TargetConfig};
pub use lifecycle::{
    Lifecycle, DEFAULT_ALERT_GRACE, DEFAULT_DRAIN_DELAY, DEFAULT_PROBE_GRACE, DEFAULT_WEB_GRACE,
};
pub use prober::{McpProber, Prober};
pub use store::Store;

use metrics::Metrics;
use scheduler::now_ms;
use web::snapshot::{Builder, SnapshotCell};
use web::AppState;

/// Capacity of the scheduler → recorder queue.
const OUTCOME_QUEUE: usize = 4096;

/// Why the monitor could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The database could not be opened, migrated or written at start.
    #[error("storage: {0}")]
    Store(#[from] store::StoreError),
    /// The HTTP client for alerts could not be built.
    #[error("alert HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// A second process was started on an SQLite database another live process uses.
    #[error(
        "another monitor process (replica `{other}`) is using this SQLite database: SQLite serves one process; \
         run several replicas on PostgreSQL (`storage: postgres://…`)"
    )]
    SecondReplica {
        /// The live replica's name.
        other: String,
    },
}

impl MonitorError {
    /// A bounded label.
    pub fn reason(&self) -> &'static str {
        match self {
            MonitorError::Store(e) => e.reason(),
            MonitorError::Http(_) => "http_client",
            MonitorError::Io(_) => "listener",
            MonitorError::SecondReplica { .. } => "second_replica",
        }
    }
}

/// A configured monitor, connected to its database.
pub struct Monitor {
    config: Arc<Config>,
    store: Store,
    prober: Arc<dyn Prober>,
    metrics: Arc<Metrics>,
    replica: String,
    client: reqwest::Client,
    lifecycle: Lifecycle,
    inflight: InFlight,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// The work of a replica between start and stop, with its own phases (following the monitor's).
struct Worker {
    term: Shutdown,
    stop_dispatch: CancellationToken,
    scheduler: JoinHandle<()>,
    recorder: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    rollup: JoinHandle<()>,
}

impl Monitor {
    /// Opens the database (migrating it) for `config`. `replica` names this process in leases and claims
    /// (e.g. `host-pid`); it must differ between replicas. The lifecycle is `config.shutdown`.
    pub async fn new(
        config: Config,
        prober: Arc<dyn Prober>,
        replica: impl Into<String>,
    ) -> Result<Monitor, MonitorError> {
        let store = Store::connect(&config.storage).await?;
        let lifecycle = config.shutdown;
        Ok(Monitor {
            config: Arc::new(config),
            store,
            prober,
            metrics: Arc::new(Metrics::new()),
            replica: replica.into(),
            client: alert::http_client()?,
            lifecycle,
            inflight: InFlight::new(),
        })
    }

    /// Replaces the grace periods of the shutdown phases.
    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Monitor {
        self.lifecycle = lifecycle;
        self
    }

    /// The grace periods in force; [`Lifecycle::drain_plan`] is the timetable for the caller's drain.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The counter of probes in flight (a clone sharing the count), for the drain's wait at
    /// [`Phase::Refusing`]: once it reaches zero the drain is clean.
    pub fn in_flight(&self) -> InFlight {
        self.inflight.clone()
    }

    /// Keeps the rotated refresh tokens of the targets' OAuth clients (those configured with a refresh token) in
    /// the database, sealed with `key` (see [`seal`]), so a restart resumes with the current one instead of the
    /// configured one a rotation revoked. Call before [`Monitor::run`]. Returns how many clients keep theirs.
    pub fn seal_refresh_tokens(&self, key: seal::SealKey) -> usize {
        let sealed = seal::SealedRefreshTokens::new(self.store.clone(), Arc::new(key));
        self.config
            .targets
            .iter()
            .filter_map(|t| t.auth.as_ref().and_then(|a| a.oauth.as_ref()))
            .filter(|c| c.config().refresh_token.is_some())
            .filter(|c| c.set_refresh_store(Arc::new(sealed.clone())))
            .count()
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves on `listener` and monitors, following `shutdown`'s phases (see [`Lifecycle`]): at `Draining`
    /// not ready, at `Refusing` stop probing, wait for in-flight probes (up to `probe_grace` or `Forcing`) and
    /// write their results, send the alerts they queued, give up the lease, stop serving; then return. The
    /// caller need not go past `Refusing`: the grace periods bound every step. After
    /// [`Shutdown::abort`] it returns without waiting for results, alerts or connections.
    ///
    /// Errors: the store failing at start or when this replica takes the lease and loads the target states
    /// ([`MonitorError::Store`]).
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> Result<(), MonitorError> {
        if self.store.backend() == store::Backend::Sqlite {
            self.refuse_second_sqlite_replica().await?;
        }
        let targets: Vec<(String, String)> = self
            .config
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.display_url()))
            .collect();
        let ids: Vec<i64> = self
            .store
            .sync_targets(&targets, now_ms())
            .await?
            .into_iter()
            .map(|(_, id)| id)
            .collect();

        let app = Arc::new(AppState {
            snapshot: SnapshotCell::default(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
            ready: false.into(),
        });
        let stop_web = CancellationToken::new();
        let web_task = {
            let router = web::router(app.clone());
            let stop = stop_web.clone();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(error = %e, "Web server failed.");
                }
            })
        };
        let rolled_up = Arc::new(Notify::new());
        let view = Arc::new(shards::ShardView::default());
        let snapshot_task = tokio::spawn(snapshot_loop(
            Builder::new(
                self.store.clone(),
                self.config.clone(),
                self.metrics.clone(),
            ),
            app.clone(),
            shutdown.clone(),
            rolled_up.clone(),
            view.clone(),
        ));

        let ttl = self.config.tuning.lease_ttl;
        let mut manager = shards::Manager::new(
            self.store.clone(),
            self.replica.clone(),
            ttl,
            view.clone(),
            self.metrics.clone(),
        );
        let singleton = Arc::new(AtomicBool::new(false));
        let worker =
            self.start_working(&ids, rolled_up, &shutdown, view.clone(), singleton.clone());
        let mut draining = false;
        loop {
            let next = match manager.round().await {
                Ok(next) => next,
                Err(e) => {
                    self.metrics.store_error("lease");
                    tracing::warn!(error = %e, "A shard lease round failed; shards stop being probed when their trust window ends.");
                    ttl / 3
                }
            };
            let first = view.current(0).is_some();
            singleton.store(first, Ordering::Release);
            self.metrics.leader.set(i64::from(first));
            let renew = tokio::time::sleep(next);
            tokio::pin!(renew);
            // At most two rounds: the drain's start (once), then the renewal or the stop.
            let stopping = loop {
                tokio::select! {
                    () = shutdown.reached(Phase::Refusing) => break true,
                    () = shutdown.reached(Phase::Draining), if !draining => {
                        draining = true;
                        app.ready.store(false, Ordering::Release);
                        tracing::info!(
                            delay_ms = u64::try_from(self.lifecycle.drain_delay.as_millis()).unwrap_or(u64::MAX),
                            "Stop requested: not ready, still probing."
                        );
                    }
                    () = &mut renew => break false,
                }
            };
            if stopping {
                break;
            }
        }

        tracing::info!("Shutting down: finishing in-flight probes.");
        app.ready.store(false, Ordering::Release);
        let finish = async {
            stop_working(worker, &self.lifecycle, &mut manager).await;
            singleton.store(false, Ordering::Release);
            self.metrics.leader.set(0);
            let _ = snapshot_task.await;
            stop_web.cancel();
            let _ = tokio::time::timeout(self.lifecycle.web_grace, web_task).await;
            true
        };
        let finished = tokio::select! {
            finished = finish => finished,
            () = shutdown.aborted() => false,
        };
        if finished {
            self.store.close().await;
            tracing::info!("Monitor stopped.");
        } else {
            // The rest (results, alerts, connections) ends with the process.
            tracing::warn!("Monitor stopped at once: results, alerts and connections still pending are dropped.");
        }
        Ok(())
    }

    /// SQLite serves one process: waits (up to the lease ttl and a second, so a crashed predecessor's row
    /// expires) for no other replica to be alive, then refuses with [`MonitorError::SecondReplica`].
    async fn refuse_second_sqlite_replica(&self) -> Result<(), MonitorError> {
        let ttl = self.config.tuning.lease_ttl;
        let deadline = tokio::time::Instant::now() + ttl + std::time::Duration::from_secs(1);
        loop {
            let others = self.store.other_live_replicas(&self.replica).await?;
            let Some(other) = others.into_iter().next() else {
                self.store.heartbeat_replica(&self.replica, ttl).await?;
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(MonitorError::SecondReplica { other });
            }
            tracing::warn!(other = %other, "Another monitor process uses this SQLite database; waiting for its lease to expire.");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Starts the work every replica does: the scheduler (probing the shards in `view`), the recorder
    /// (fenced on their epochs), the alert dispatcher (any replica delivers) and the rollup job (only while
    /// `singleton` says this replica holds shard 0).
    fn start_working(
        &self,
        ids: &[i64],
        rolled_up: Arc<Notify>,
        shutdown: &Shutdown,
        view: Arc<shards::ShardView>,
        singleton: Arc<AtomicBool>,
    ) -> Worker {
        let (tx, rx) = mpsc::channel(OUTCOME_QUEUE);
        let term = Shutdown::new();
        tokio::spawn(follow(shutdown.clone(), term.clone()));
        let stop_dispatch = CancellationToken::new();
        let queued = Arc::new(Notify::new());
        let targets = Arc::new(self.config.targets.clone());
        let max = usize::try_from(self.config.max_concurrency.get()).unwrap_or(usize::MAX);
        tokio::spawn(agent::evaluate::run(
            agent::evaluate::Judge {
                store: self.store.clone(),
                config: self.config.clone(),
                view: view.clone(),
                tx: tx.clone(),
                metrics: self.metrics.clone(),
                owner: self.replica.clone(),
                alerts_queued: queued.clone(),
            },
            term.clone(),
        ));
        let scheduler = tokio::spawn(scheduler::run(
            targets,
            self.prober.clone(),
            tx,
            max,
            scheduler::Stop {
                term: term.clone(),
                grace: self.lifecycle.probe_grace,
                inflight: self.inflight.clone(),
                shards: view.clone(),
            },
            self.metrics.clone(),
        ));
        let recorder = tokio::spawn(recorder::run(
            self.store.clone(),
            self.config.clone(),
            ids.to_vec(),
            rx,
            self.metrics.clone(),
            queued.clone(),
            recorder::Fencing {
                owner: self.replica.clone(),
                shards: view,
            },
        ));
        let dispatcher = tokio::spawn(alert::run_dispatcher(
            alert::Dispatcher {
                store: self.store.clone(),
                alerts: Arc::new(self.config.alerts.clone()),
                client: self.client.clone(),
                holder: self.replica.clone(),
                tuning: self.config.tuning.clone(),
                metrics: self.metrics.clone(),
                singleton: singleton.clone(),
            },
            queued,
            stop_dispatch.clone(),
        ));
        let rollup = tokio::spawn(rollup_loop(
            self.store.clone(),
            self.config.clone(),
            term.clone(),
            self.metrics.clone(),
            rolled_up,
            singleton,
        ));
        Worker {
            term,
            stop_dispatch,
            scheduler,
            recorder,
            dispatcher,
            rollup,
        }
    }
}

/// Passes the monitor's `Refusing` and `Forcing` on to the worker's term; returns once the term is forced
/// (either way).
async fn follow(process: Shutdown, term: Shutdown) {
    for phase in [Phase::Refusing, Phase::Forcing] {
        tokio::select! {
            () = process.reached(phase) => { term.advance(phase); }
            () = term.reached(Phase::Forcing) => return,
        }
    }
}

/// The stop, in order: no new probe, in-flight probes finish, every result is written (under leases still
/// held, so none is fenced), then every shard lease is released at once (the other replicas take the shards
/// at their next round), then the queued alerts go out (bounded by `alert_grace`).
async fn stop_working(w: Worker, lifecycle: &Lifecycle, manager: &mut shards::Manager) {
    w.term.advance(Phase::Refusing);
    let _ = w.scheduler.await; // in-flight probes finish (bounded by the grace period, or cut by `Forcing`)
    let _ = w.recorder.await; // every handed-over result is written
    manager.release_all().await;
    w.stop_dispatch.cancel();
    let _ = tokio::time::timeout(lifecycle.alert_grace, w.dispatcher).await; // queued alerts go out
    let _ = w.rollup.await;
    w.term.advance(Phase::Forcing); // ends `follow`
}

async fn snapshot_loop(
    mut builder: Builder,
    app: Arc<AppState>,
    shutdown: Shutdown,
    rolled_up: Arc<Notify>,
    view: Arc<shards::ShardView>,
) {
    let every = app.config.tuning.snapshot_refresh;
    loop {
        match builder.build(&app.snapshot).await {
            Ok(()) => {
                // Not ready before the first shard round read the incident state of the shards it took.
                if shutdown.is_running() && view.loaded() {
                    app.ready.store(true, Ordering::Release);
                    // The drain may have begun between the check and the store: never leave it ready then.
                    if !shutdown.is_running() {
                        app.ready.store(false, Ordering::Release);
                    }
                }
            }
            Err(e) => {
                app.metrics.store_error("snapshot");
                tracing::warn!(error = %e, "Refreshing the status snapshot failed.");
            }
        }
        tokio::select! {
            () = shutdown.reached(Phase::Refusing) => break,
            () = rolled_up.notified() => builder.invalidate_uptime(),
            () = tokio::time::sleep(every) => {}
        }
    }
}

async fn rollup_loop(
    store: Store,
    config: Arc<Config>,
    term: Shutdown,
    metrics: Arc<Metrics>,
    rolled_up: Arc<Notify>,
    singleton: Arc<AtomicBool>,
) {
    let r = &config.retention;
    loop {
        if !singleton.load(Ordering::Acquire) {
            // Only the holder of shard 0 rolls up and prunes.
            tokio::select! {
                () = term.reached(Phase::Refusing) => break,
                () = tokio::time::sleep(config.tuning.lease_ttl / 3) => continue,
            }
        }
        match store.rollup(now_ms(), config.tuning.rollup_grace).await {
            Ok(0) => {}
            Ok(hours) => {
                tracing::debug!(hours, "Rolled up.");
                rolled_up.notify_one();
            }
            Err(e) => {
                metrics.store_error("rollup");
                tracing::warn!(error = %e, "Rollup failed; retrying next round.");
            }
        }
        if let Err(e) = store.prune(now_ms(), r.raw, r.hourly, r.daily).await {
            metrics.store_error("prune");
            tracing::warn!(error = %e, "Pruning old rows failed.");
        }
        tokio::select! {
            () = term.reached(Phase::Refusing) => break,
            () = tokio::time::sleep(config.tuning.rollup_every) => {}
        }
    }
}
