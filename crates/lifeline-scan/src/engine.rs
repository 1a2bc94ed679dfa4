//! The scheduler: streams endpoints from the input, probes them under a global and a per-host concurrency cap,
//! retries non-healthy ones, and hands every result to a [`RecordSink`] as soon as it is known. Memory is bounded
//! by the queue (at most [`ScanOptions::queue`] endpoints between input and result), never by the list's length.
//!
//! Stopping follows the phases of the caller's [`Shutdown`] (a scan has no readiness, so `Draining` means
//! nothing to it): at `Refusing` (Ctrl-C) no new probe starts, queued endpoints are dropped, probes in flight
//! may finish for [`ScanOptions::drain`], then they are abandoned (or at once at `Forcing`, a second Ctrl-C).
//! The sink has seen every result that was complete, so the caller can write a partial report.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_core::{Phase, Shutdown};
use lifeline_mcp::{ProbeOptions, ProbeReport, Target};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::category::Category;
use crate::input::{self, Domain, Endpoint, InputError, InputEvent, InputSource, Skipped};
use crate::policy::{self, AddressCheck};
use crate::record::{better, dns_failed_report, now_rfc3339, ScanRecord};

mod domains;
mod hosts;
mod progress;

pub use progress::{Progress, ProgressSnapshot};

use hosts::HostLimiter;

/// Default global cap on probes in flight.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Default cap on probes in flight against one host.
pub const DEFAULT_PER_HOST: usize = 4;
/// Default wait between attempts on one endpoint (`--attempt-spacing`).
pub const DEFAULT_ATTEMPT_SPACING: Duration = Duration::from_secs(5);
/// Default time in-flight probes get to finish after a stop request.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(3);

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Probes in flight at once, over all hosts (≥ 1). Default [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// Probes in flight at once against one host name or address (≥ 1). Default [`DEFAULT_PER_HOST`].
    pub per_host: usize,
    /// Probes per endpoint at most: an endpoint that is not healthy is probed again, and the best result is kept
    /// (≥ 1). Default 1.
    pub attempts: u32,
    /// Wait between two attempts on the same endpoint. Default [`DEFAULT_ATTEMPT_SPACING`].
    pub attempt_spacing: Duration,
    /// Probe hosts that resolve to private, loopback, link-local or other non-public addresses. Default false.
    pub allow_private: bool,
    /// Bound on how long probes in flight may finish after a stop request. Default [`DEFAULT_DRAIN`].
    pub drain: Duration,
    /// Endpoints taken from the input but not finished, at most (waiting for a host or global slot, sleeping
    /// between attempts, or probing). Default `max(4 × concurrency, 1024)`.
    pub queue: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            concurrency: DEFAULT_CONCURRENCY,
            per_host: DEFAULT_PER_HOST,
            attempts: 1,
            attempt_spacing: DEFAULT_ATTEMPT_SPACING,
            allow_private: false,
            drain: DEFAULT_DRAIN,
            queue: default_queue(DEFAULT_CONCURRENCY),
        }
    }
}

/// The default queue bound for a concurrency: `max(4 × concurrency, 1024)`.
pub fn default_queue(concurrency: usize) -> usize {
    concurrency.saturating_mul(4).max(1024)
}

/// Probes one URL. The production implementation is [`EngineProber`]; tests substitute their own.
pub trait Prober: Send + Sync + 'static {
    /// Probes `url` once. Must not fail and should be bounded in time.
    fn probe(&self, url: &Url) -> impl Future<Output = ProbeReport> + Send;
    /// Bound on the address check's DNS look-up.
    fn resolve_timeout(&self) -> Duration;
    /// The options of the fetches of AI Catalogs and Server Cards for domain entries (`engine/domains.rs`).
    /// Default: [`ProbeOptions::default`].
    fn options(&self) -> ProbeOptions {
        ProbeOptions::default()
    }
}

/// The real probe: [`lifeline_mcp::probe()`] with fixed options, the same sequence as `lifeline check`.
#[derive(Debug, Clone)]
pub struct EngineProber {
    /// The options every probe uses (no tool call in a census).
    pub options: ProbeOptions,
}

/// Extra time past the probe's total timeout before a probe that has not returned is given up. The engine bounds
/// itself (total plus a short clean-up); this only keeps a census from hanging on a bug.
pub const PROBE_GRACE: Duration = Duration::from_secs(5);

impl Prober for EngineProber {
    fn probe(&self, url: &Url) -> impl Future<Output = ProbeReport> + Send {
        let target = Target::Http(url.clone());
        let bound = self.options.timeouts.total + PROBE_GRACE;
        async move {
            match tokio::time::timeout(bound, lifeline_mcp::probe(&target, &self.options)).await {
                Ok(report) => report,
                Err(_) => crate::record::overdue_report(url, bound),
            }
        }
    }

    fn resolve_timeout(&self) -> Duration {
        self.options
            .timeouts
            .dns
            .unwrap_or(self.options.timeouts.total)
    }

    fn options(&self) -> ProbeOptions {
        self.options.clone()
    }
}

/// Receives results and skipped entries, in the scheduler's task, as they happen.
pub trait RecordSink: Send {
    /// One endpoint's final result. An error stops the scan (the run returns it).
    fn record(&mut self, record: &ScanRecord) -> std::io::Result<()>;
    /// An input entry that is not scanned.
    fn skipped(&mut self, _skipped: &Skipped) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a scan ended.
#[derive(Debug, Default)]
pub struct ScanRun {
    /// Endpoints with a result (every category, refused included).
    pub finished: u64,
    /// True when `stop` fired before the input was exhausted: the results are a partial census.
    pub interrupted: bool,
    /// Probes in flight that were abandoned after a stop (no result recorded for them).
    pub abandoned: u64,
    /// Endpoints taken from the input but never probed because of a stop.
    pub not_started: u64,
    /// The input failed part-way (after the results recorded so far).
    pub input_error: Option<InputError>,
    /// Wall time.
    pub elapsed: Duration,
}

impl ScanRun {
    /// True when the results do not cover the whole input.
    pub fn is_partial(&self) -> bool {
        self.interrupted || self.input_error.is_some() || self.abandoned > 0 || self.not_started > 0
    }
}

/// Why a scan could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The sink failed to write a result (a full disk, a closed pipe).
    #[error("writing scan results: {0}")]
    Sink(#[source] std::io::Error),
}

/// Scans every endpoint of `source`: the input is read on a blocking thread and streamed in. `shutdown` stops
/// it early: [`Phase::Refusing`] stops taking endpoints and lets probes in flight finish within
/// [`ScanOptions::drain`]; [`Phase::Forcing`] abandons them at once.
pub async fn scan<P: Prober>(
    source: InputSource,
    prober: P,
    options: &ScanOptions,
    progress: Arc<Progress>,
    sink: &mut dyn RecordSink,
    shutdown: Shutdown,
) -> Result<ScanRun, ScanError> {
    let (tx, rx) = mpsc::channel(256);
    let reader = tokio::task::spawn_blocking(move || {
        let result = input::read(&source, &mut |event| tx.blocking_send(Ok(event)).is_ok());
        if let Err(err) = result {
            let _ = tx.blocking_send(Err(err));
        }
    });
    let run = scan_events(rx, prober, options, progress, sink, shutdown).await;
    // The reader ends by itself: it stops at the first send into the dropped channel.
    drop(reader);
    run
}

/// Scans the endpoints received on `events` (for callers that produce their own input); `shutdown` as for
/// [`scan`].
pub async fn scan_events<P: Prober>(
    mut events: mpsc::Receiver<Result<InputEvent, InputError>>,
    prober: P,
    options: &ScanOptions,
    progress: Arc<Progress>,
    sink: &mut dyn RecordSink,
    shutdown: Shutdown,
) -> Result<ScanRun, ScanError> {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        prober,
        global: Arc::new(Semaphore::new(options.concurrency.max(1))),
        hosts: HostLimiter::new(options.per_host),
        attempts: options.attempts.max(1),
        spacing: options.attempt_spacing,
        allow_private: options.allow_private,
        stop: CancellationToken::new(),
        abandon: CancellationToken::new(),
        progress: Arc::clone(&progress),
    });
    let queue = options.queue.max(1);
    let mut tasks: JoinSet<TaskResult> = JoinSet::new();
    let mut run = ScanRun::default();
    let mut input_open = true;
    let mut received = 0u64;
    let mut drain_deadline: Option<tokio::time::Instant> = None;

    let begin_stop = |shared: &Shared<P>, events: &mut mpsc::Receiver<_>| {
        shared.global.close();
        shared.hosts.close();
        shared.stop.cancel();
        events.close();
        tokio::time::Instant::now() + options.drain
    };

    loop {
        if !input_open && tasks.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = shutdown.reached(Phase::Refusing), if drain_deadline.is_none() => {
                run.interrupted = input_open || !tasks.is_empty();
                input_open = false;
                drain_deadline = Some(begin_stop(&shared, &mut events));
            }
            () = shutdown.reached(Phase::Forcing), if !shared.abandon.is_cancelled() => {
                shared.abandon.cancel();
            }
            () = sleep_until(drain_deadline), if drain_deadline.is_some() && !shared.abandon.is_cancelled() => {
                shared.abandon.cancel();
            }
            Some(joined) = tasks.join_next() => {
                match joined {
                    Ok(TaskResult::Done(record)) => {
                        progress.finished(record.category);
                        run.finished += 1;
                        if let Err(err) = sink.record(&record) {
                            shared.abandon.cancel();
                            begin_stop(&shared, &mut events);
                            tasks.shutdown().await;
                            return Err(ScanError::Sink(err));
                        }
                    }
                    Ok(TaskResult::Discovered(found)) => {
                        for record in &found.rows {
                            progress.finished(record.category);
                            run.finished += 1;
                            if let Err(err) = sink.record(record) {
                                shared.abandon.cancel();
                                begin_stop(&shared, &mut events);
                                tasks.shutdown().await;
                                return Err(ScanError::Sink(err));
                            }
                        }
                        if !shared.stop.is_cancelled() {
                            for endpoint in found.endpoints {
                                received += 1;
                                tasks.spawn(endpoint_task(endpoint, Arc::clone(&shared)));
                            }
                        }
                    }
                    Ok(TaskResult::NotStarted) => run.not_started += 1,
                    Ok(TaskResult::Abandoned) => run.abandoned += 1,
                    Err(err) => {
                        tracing::error!(error = %err, "A probe task failed.");
                        run.abandoned += 1;
                    }
                }
            }
            event = events.recv(), if input_open && tasks.len() < queue => {
                match event {
                    None => {
                        input_open = false;
                        progress.set_total(received);
                    }
                    Some(Ok(InputEvent::Total(total))) => progress.set_total(total),
                    Some(Ok(InputEvent::Skipped(skipped))) => {
                        progress.skipped();
                        if let Err(err) = sink.skipped(&skipped) {
                            begin_stop(&shared, &mut events);
                            shared.abandon.cancel();
                            tasks.shutdown().await;
                            return Err(ScanError::Sink(err));
                        }
                    }
                    Some(Ok(InputEvent::Endpoint(endpoint))) => {
                        received += 1;
                        tasks.spawn(endpoint_task(endpoint, Arc::clone(&shared)));
                    }
                    Some(Ok(InputEvent::Domain(domain))) => {
                        tasks.spawn(domain_task(domain, Arc::clone(&shared)));
                    }
                    Some(Err(err)) => {
                        run.input_error = Some(err);
                        input_open = false;
                        drain_deadline = Some(begin_stop(&shared, &mut events));
                    }
                }
            }
            else => break,
        }
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Shared<P> {
    prober: P,
    global: Arc<Semaphore>,
    hosts: HostLimiter,
    attempts: u32,
    spacing: Duration,
    allow_private: bool,
    /// Fired on a stop request: ends waits between attempts.
    stop: CancellationToken,
    /// Fired when probes in flight are given up.
    abandon: CancellationToken,
    progress: Arc<Progress>,
}

enum TaskResult {
    Done(Box<ScanRecord>),
    /// A domain's endpoints (scanned next) and the rows of what could not be read.
    Discovered(domains::Found),
    NotStarted,
    Abandoned,
}

async fn endpoint_task<P: Prober>(endpoint: Endpoint, shared: Arc<Shared<P>>) -> TaskResult {
    let host = input::host_key(&endpoint.url);
    let mut best: Option<ScanRecord> = None;
    let mut probes = 0u32;
    let mut started = false;
    for attempt in 0..shared.attempts {
        if attempt > 0 {
            tokio::select! {
                () = tokio::time::sleep(shared.spacing) => {}
                () = shared.stop.cancelled() => break,
            }
        }
        // Host slot first, so an endpoint waiting for a busy host never holds a global slot.
        let Some(_host_slot) = shared.hosts.acquire(&host).await else {
            break;
        };
        let Ok(_global_slot) = Arc::clone(&shared.global).acquire_owned().await else {
            break;
        };
        started = true;
        let _in_flight = shared.progress.enter();
        let record = tokio::select! {
            record = one_attempt(&endpoint, &shared) => record,
            () = shared.abandon.cancelled() => break,
        };
        let refused = record.category == Category::RefusedPrivate;
        if !refused {
            probes += 1;
        }
        let final_answer = refused || record.category == Category::Healthy;
        best = Some(match best {
            None => record,
            Some(earlier) => better(earlier, record),
        });
        if final_answer {
            break;
        }
    }
    match best {
        Some(mut record) => {
            record.attempts = probes;
            TaskResult::Done(Box::new(record))
        }
        None if started => TaskResult::Abandoned,
        None => TaskResult::NotStarted,
    }
}

/// One attempt: the address check (unless private addresses are allowed), then the probe.
async fn one_attempt<P: Prober>(endpoint: &Endpoint, shared: &Shared<P>) -> ScanRecord {
    let url = &endpoint.url;
    if !shared.allow_private {
        let name = endpoint.name.clone();
        if let Some(record) = admit(url, name, shared.prober.resolve_timeout()).await {
            return record;
        }
    }
    let report = shared.prober.probe(url).await;
    ScanRecord::probed(url.clone(), endpoint.name.clone(), 1, report)
}

/// The address check of `url`: `None` when every address is public, else its record (`refused_private`, or
/// `dns_failed` when the name did not resolve).
async fn admit(url: &Url, name: Option<String>, resolve_timeout: Duration) -> Option<ScanRecord> {
    let started_at = now_rfc3339();
    let t0 = Instant::now();
    match policy::check_url(url, resolve_timeout).await {
        AddressCheck::Public => None,
        AddressCheck::Refused(refusal) => Some(ScanRecord::refused(url.clone(), name, refusal)),
        AddressCheck::Unresolved(message) => {
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let report = dns_failed_report(url, message, started_at, ms);
            Some(ScanRecord::probed(url.clone(), name, 1, report))
        }
    }
}

/// A domain: the address check of its catalog URL, then (with a host and a global slot, as a probe) the
/// catalog and its cards (`domains.rs`).
async fn domain_task<P: Prober>(domain: Domain, shared: Arc<Shared<P>>) -> TaskResult {
    let url = &domain.catalog;
    let timeout = shared.prober.resolve_timeout();
    if !shared.allow_private {
        if let Some(record) = admit(url, None, timeout).await {
            return TaskResult::Done(Box::new(record));
        }
    }
    let host = input::host_key(url);
    let Some(_host_slot) = shared.hosts.acquire(&host).await else {
        return TaskResult::NotStarted;
    };
    let Ok(_global_slot) = Arc::clone(&shared.global).acquire_owned().await else {
        return TaskResult::NotStarted;
    };
    let _in_flight = shared.progress.enter();
    let opts = shared.prober.options();
    tokio::select! {
        found = domains::discover(url, &opts, shared.allow_private, timeout) => TaskResult::Discovered(found),
        () = shared.abandon.cancelled() => TaskResult::Abandoned,
    }
}

#[cfg(test)]
mod tests;
