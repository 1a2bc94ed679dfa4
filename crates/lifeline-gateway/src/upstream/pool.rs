//! The upstream pool: the endpoints of an HTTP upstream (one for a single `--upstream URL`; several for repeated
//! `--upstream` or the file's `upstreams:`; one per address of a `discovery: dns` entry), how a request picks
//! one, and what each endpoint's health is.
//!
//! - **Balancing** ([`Pool::pick`]): power of two choices (Mitzenmacher, "The Power of Two Choices in
//!   Randomized Load Balancing", 2001; the same as Envoy's `LEAST_REQUEST` and linkerd's P2C): two endpoints
//!   drawn at random in proportion to their weights, the one with fewer outstanding requests per unit of weight
//!   wins. Only endpoints that take new work are drawn ([`PoolEndpoint::takes_new_work`]); when none does, every
//!   endpoint is (Envoy's panic routing), so a pool never refuses on its own judgement and a single endpoint
//!   behaves as the gateway always did.
//! - **Groups** (`traffic.rs`): once group weights are set (the `traffic:` config, `POST /admin/traffic`), a
//!   group is drawn first in proportion to its weight (percent), then an endpoint inside it as above; a group
//!   at weight 0 gets no new work unless no weighted group has an endpoint left to try.
//! - **Health**: an endpoint takes new work unless its last active probe failed (`watch.rs`: the shared MCP
//!   probe engine, each probe's session ended), it said it drains (a 503 answer; cleared by its next passing
//!   probe), its sidecar's `/ready` answered anything but 200 (with `ready_port`: read by the same health check,
//!   cleared by its next 200; a sidecar gateway answers 503 there from the first moment of its drain, while it
//!   still serves everything for `--drain-delay`, so no new session lands on a replica about to go), or passive
//!   outlier detection ejected it ([`Pool::record`]: `consecutive_errors` connect errors,
//!   timeouts or 5xx in a row eject it for `base_ejection_time` × the number of its recent ejections, bounded by
//!   `max_ejection_time`). Requests pinned to an endpoint (a session's) still go to it whatever its health:
//!   moving a session is the recovery seam's job, not the balancer's.
//! - **Identity**: an [`EndpointRef`] is a shared handle on one endpoint. The session table keeps the one that
//!   minted each session (`sessions.rs`), so an endpoint that left the pool (its pod went from the headless
//!   Service while it drains) still serves the sessions it holds. [`Pool::find`] looks an endpoint up by its
//!   label (the URL), for whatever carries the endpoint in another form (a sealed session id).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use http::Uri;
use lifeline_mcp::EraHint;
use url::Url;

use crate::config::{Discovery, EndpointConfig, PoolConfig};
use crate::metrics::{EndpointMetrics, Metrics};

mod traffic;
mod watch;

pub(crate) use watch::{probe_report, resolve_dns_entries, watch_pool};

/// A shared handle on one pool endpoint: what the session table remembers for each session, and what the
/// upstream puts in a response's extensions to say which endpoint answered. Compared by identity.
#[derive(Debug, Clone)]
pub struct EndpointRef(pub(crate) Arc<PoolEndpoint>);

impl PartialEq for EndpointRef {
    fn eq(&self, other: &EndpointRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl EndpointRef {
    /// The endpoint's label: its URL (for a DNS-discovered endpoint, with the address in place of the name).
    pub fn label(&self) -> &str {
        &self.0.label
    }

    /// The endpoint's group.
    pub(crate) fn group(&self) -> &str {
        &self.0.group
    }

    /// A full probe of the endpoint with the shared engine (`watch::probe_report`): `None` when it did not
    /// finish within `opts.timeouts.total` (plus a second) or the endpoint has no URL.
    pub(crate) async fn probe(
        &self,
        opts: lifeline_mcp::ProbeOptions,
    ) -> Option<lifeline_mcp::ProbeReport> {
        let (url, _) = self.0.mcp.as_ref().or(self.0.sse.as_ref())?;
        probe_report(&self.0, url, opts).await
    }
}

/// Probe state of an endpoint (`PoolEndpoint::probe`).
const PROBE_UNKNOWN: u8 = 0;
const PROBE_PASSED: u8 = 1;
const PROBE_FAILED: u8 = 2;

/// What the endpoint's sidecar `/ready` last answered (`PoolEndpoint::ready`).
const READY_UNKNOWN: u8 = 0;
const READY_YES: u8 = 1;
const READY_NO: u8 = 2;

/// One endpoint of the pool.
#[derive(Debug)]
pub(crate) struct PoolEndpoint {
    /// The URL, also the `endpoint` label of its metrics.
    pub(crate) label: String,
    /// The Streamable HTTP endpoint, when the pool serves it.
    pub(crate) mcp: Option<(Url, Uri)>,
    /// The HTTP+SSE stream, when the pool serves it.
    pub(crate) sse: Option<(Url, Uri)>,
    pub(crate) weight: u32,
    pub(crate) group: String,
    /// Index of the configured entry it comes from.
    entry: usize,
    /// Requests sent and not yet answered in full (response bodies included).
    outstanding: AtomicU32,
    /// Connect errors, timeouts and 5xx in a row.
    consecutive: AtomicU32,
    /// `PROBE_*`.
    probe: AtomicU8,
    /// Set by a 503, cleared by a passing probe.
    draining: AtomicBool,
    /// The sidecar's `/ready` URL (`ready_port` on the endpoint's host), when configured.
    pub(crate) ready_url: Option<Url>,
    /// `READY_*`: the sidecar's last `/ready` answer (never checked: unknown).
    ready: AtomicU8,
    /// Milliseconds since the pool's epoch until which the endpoint is ejected (0: never ejected).
    ejected_until_ms: AtomicU64,
    ejection: Mutex<Ejection>,
    /// The era the last passing probe found, handed to the next probe.
    pub(crate) era_hint: Mutex<EraHint>,
    /// The last probe's verdict and reason, for `/healthz` and `/ready`.
    pub(crate) last_probe: Mutex<Option<ProbeSummary>>,
    pub(crate) metrics: EndpointMetrics,
}

/// What `/healthz` shows of an endpoint's last probe.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ProbeSummary {
    pub(crate) ok: bool,
    pub(crate) verdict: String,
    pub(crate) reason: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) ms: f64,
    /// The `serverInfo` the probe's handshake returned (`initialize` result or `server/discover` `_meta`): what
    /// the pool's Server Card says (`discovery.rs`). Absent when the probe did not get that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_info: Option<lifeline_mcp::probe::ServerInfo>,
    /// The protocol version the probe spoke with the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) protocol_version: Option<String>,
    #[serde(skip)]
    pub(crate) at: Option<Instant>,
}

impl ProbeSummary {
    /// The summary of `report`, a probe that took `took`.
    pub(crate) fn of(
        report: &lifeline_mcp::ProbeReport,
        took: std::time::Duration,
    ) -> ProbeSummary {
        // A `ready_transaction` step runs in the probe; a failed one (not a slow one) fails the endpoint too.
        let failed_step = report.transactions.iter().find(|t| t.failed());
        ProbeSummary {
            ok: report.is_usable() && failed_step.is_none(),
            verdict: report.verdict.as_str().to_owned(),
            reason: report
                .reason
                .or_else(|| failed_step.and_then(|t| t.reason))
                .map(|r| r.as_str().to_owned()),
            message: report
                .failure
                .as_ref()
                .map(|f| f.message.clone())
                .or_else(|| {
                    failed_step.map(|t| {
                        format!(
                            "transaction {}: {}",
                            t.name,
                            t.message.as_deref().unwrap_or("failed")
                        )
                    })
                }),
            ms: took.as_secs_f64() * 1000.0,
            server_info: report.server_info.clone(),
            protocol_version: report.protocol_version.clone(),
            at: Some(Instant::now()),
        }
    }
}

#[derive(Debug, Default)]
struct Ejection {
    /// Ejections since the endpoint last stayed in for `max_ejection_time`.
    count: u32,
    /// When the last ejection ends.
    until: Option<Instant>,
}

/// The pool.
#[derive(Debug)]
pub(crate) struct Pool {
    cfg: PoolConfig,
    members: RwLock<Arc<Vec<Arc<PoolEndpoint>>>>,
    epoch: Instant,
    metrics: Arc<Metrics>,
    traffic: traffic::Traffic,
}

/// How a request travelled, for [`Pool::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer with this status.
    Status(u16),
    /// No answer: `connect`, `timeout` or `protocol`.
    Failed(&'static str),
}

impl Pool {
    /// The pool of `cfg`'s static entries; `discovery: dns` entries join once resolved
    /// ([`resolve_dns_entries`]).
    /// `extra_sse` is the HTTP+SSE URL of a single upstream that serves both transports (`upstream_sse`).
    pub(crate) fn new(cfg: &PoolConfig, extra_sse: Option<&Url>, metrics: Arc<Metrics>) -> Pool {
        let pool = Pool {
            cfg: cfg.clone(),
            members: RwLock::new(Arc::new(Vec::new())),
            epoch: Instant::now(),
            metrics,
            traffic: traffic::Traffic::default(),
        };
        let members = cfg
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.discovery == Discovery::Static)
            .map(|(i, e)| pool.endpoint(i, e, e.url.clone(), extra_sse.filter(|_| i == 0)))
            .collect();
        pool.set_members(members);
        pool
    }

    fn endpoint(
        &self,
        entry: usize,
        cfg: &EndpointConfig,
        url: Url,
        extra_sse: Option<&Url>,
    ) -> Arc<PoolEndpoint> {
        let pair = |u: &Url| -> Option<(Url, Uri)> {
            u.as_str().parse::<Uri>().ok().map(|uri| (u.clone(), uri))
        };
        let sse = url.path().trim_end_matches('/').ends_with("/sse");
        let label = url.to_string();
        let metrics = self.metrics.endpoints.endpoint(&label);
        let ready_url = cfg.ready_port.and_then(|port| ready_url(&url, port));
        Arc::new(PoolEndpoint {
            mcp: if sse { None } else { pair(&url) },
            sse: if sse {
                pair(&url)
            } else {
                extra_sse.and_then(pair)
            },
            label,
            weight: cfg.weight.max(1),
            group: cfg.group.clone(),
            entry,
            outstanding: AtomicU32::new(0),
            consecutive: AtomicU32::new(0),
            probe: AtomicU8::new(PROBE_UNKNOWN),
            draining: AtomicBool::new(false),
            ready_url,
            ready: AtomicU8::new(READY_UNKNOWN),
            ejected_until_ms: AtomicU64::new(0),
            ejection: Mutex::new(Ejection::default()),
            era_hint: Mutex::new(EraHint::Auto),
            last_probe: Mutex::new(None),
            metrics,
        })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// The current endpoints (a snapshot).
    pub(crate) fn members(&self) -> Arc<Vec<Arc<PoolEndpoint>>> {
        Arc::clone(&self.members.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn set_members(&self, members: Vec<Arc<PoolEndpoint>>) {
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(members);
    }

    /// The endpoint labelled `label` (its URL), if it is in the pool now: the way back from an endpoint named
    /// inside a session id (the sealed-session seam, `docs/gateway-replicas.md`) to its handle.
    // Used by the unit tests until the sealed session ids land.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn find(&self, label: &str) -> Option<EndpointRef> {
        self.members()
            .iter()
            .find(|e| e.label == label)
            .map(|e| EndpointRef(Arc::clone(e)))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Endpoints that take new sessions now ([`PoolEndpoint::takes_new_work`]).
    pub(crate) fn healthy_count(&self) -> usize {
        let now = self.now_ms();
        self.members()
            .iter()
            .filter(|e| e.takes_new_work(now) && e.probe.load(Ordering::Acquire) == PROBE_PASSED)
            .count()
    }

    /// The `serverInfo` and protocol version of the newest passing probe among the endpoints that take new work
    /// now (what a client of the pool would meet): the pool's Server Card facts (`discovery.rs`, issue 16
    /// §Discovery). `None` until such a probe has returned a `serverInfo`.
    pub(crate) fn server_info(&self) -> Option<(lifeline_mcp::probe::ServerInfo, Option<String>)> {
        let now = self.now_ms();
        let members = self.members();
        let mut newest: Option<(Instant, lifeline_mcp::probe::ServerInfo, Option<String>)> = None;
        for e in members
            .iter()
            .filter(|e| e.takes_new_work(now) && e.probe.load(Ordering::Acquire) == PROBE_PASSED)
        {
            let last = e.last_probe.lock().unwrap_or_else(|p| p.into_inner());
            let Some(p) = last.as_ref().filter(|p| p.ok) else {
                continue;
            };
            let (Some(at), Some(info)) = (p.at, &p.server_info) else {
                continue;
            };
            if newest.as_ref().is_none_or(|(t, ..)| at > *t) {
                newest = Some((at, info.clone(), p.protocol_version.clone()));
            }
        }
        newest.map(|(_, info, version)| (info, version))
    }

    /// Picks an endpoint for a request that may go anywhere (a stateless request, a new session), never
    /// `exclude` (the endpoint a first attempt failed to connect to). `None` only when the pool is empty (or
    /// holds only `exclude`).
    pub(crate) fn pick(&self, exclude: Option<&EndpointRef>) -> Option<EndpointRef> {
        let members = self.members();
        let allowed = |e: &Arc<PoolEndpoint>| exclude.is_none_or(|x| !Arc::ptr_eq(&x.0, e));
        if members.len() == 1 {
            return members
                .first()
                .filter(|e| allowed(e))
                .map(|e| EndpointRef(Arc::clone(e)));
        }
        let now = self.now_ms();
        let weights = self.traffic.get();
        let choose = |eligible: &dyn Fn(&Arc<PoolEndpoint>) -> bool| -> Option<Arc<PoolEndpoint>> {
            let total: u64 = members
                .iter()
                .filter(|e| eligible(e))
                .map(|e| u64::from(e.weight))
                .sum();
            if total == 0 {
                return None;
            }
            let a = weighted(&members, eligible, random() % total)?;
            let b = weighted(&members, eligible, random() % total)?;
            // Fewer outstanding requests per unit of weight wins: a/wa <= b/wb ⇔ a·wb <= b·wa.
            let load = |e: &PoolEndpoint| u64::from(e.outstanding.load(Ordering::Relaxed));
            Some(
                if load(&a) * u64::from(b.weight) <= load(&b) * u64::from(a.weight) {
                    a
                } else {
                    b
                },
            )
        };
        if let Some(weights) = weights.filter(|w| w.len() > 1) {
            // The group stage: a weighted group with an endpoint taking new work, drawn by weight; else any
            // weighted group with an endpoint at all (panic routing inside the weighted groups).
            let in_group = |e: &Arc<PoolEndpoint>, g: &str, strict: bool| {
                e.group == g && allowed(e) && (!strict || e.takes_new_work(now))
            };
            for strict in [true, false] {
                let live: Vec<(&String, u64)> = weights
                    .iter()
                    .filter(|(g, w)| **w > 0 && members.iter().any(|e| in_group(e, g, strict)))
                    .map(|(g, w)| (g, u64::from(*w)))
                    .collect();
                let total: u64 = live.iter().map(|(_, w)| w).sum();
                if total == 0 {
                    continue;
                }
                let mut at = random() % total;
                let group = live
                    .iter()
                    .find(|(_, w)| {
                        if at < *w {
                            true
                        } else {
                            at -= w;
                            false
                        }
                    })
                    .map(|(g, _)| g.as_str())
                    .unwrap_or_default();
                if let Some(e) = choose(&|e| in_group(e, group, strict)) {
                    return Some(EndpointRef(e));
                }
            }
        }
        choose(&|e| allowed(e) && e.takes_new_work(now))
            .or_else(|| choose(&|e| allowed(e)))
            .map(EndpointRef)
    }

    /// The configured groups, sorted (every entry's group, resolved or not).
    pub(crate) fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.cfg.endpoints.iter().map(|e| e.group.clone()).collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// The traffic weight of every configured group, in percent (0..=100, summing to 100): the weights set,
    /// or while none are, each group's share of the endpoints' weights now.
    pub(crate) fn group_weights(&self) -> BTreeMap<String, u32> {
        let groups = self.groups();
        if let Some(set) = self.traffic.get() {
            return groups
                .into_iter()
                .map(|g| {
                    let w = set.get(&g).copied().unwrap_or(0);
                    (g, w)
                })
                .collect();
        }
        let members = self.members();
        let parts: Vec<(String, u64)> = groups
            .into_iter()
            .map(|g| {
                let sum = members
                    .iter()
                    .filter(|e| e.group == g)
                    .map(|e| u64::from(e.weight))
                    .sum();
                (g, sum)
            })
            .collect();
        traffic::apportion(100, &parts)
    }

    /// Whether group weights are set (then the balancer draws a group first).
    pub(crate) fn has_group_weights(&self) -> bool {
        self.traffic.get().is_some()
    }

    /// Sets the group weights to `weights` (every configured group, 0..=100, summing to 100; the caller
    /// checked) and publishes them as `lifeline_gateway_upstream_group_weight`.
    pub(crate) fn set_group_weights(&self, weights: BTreeMap<String, u32>) {
        for (g, w) in &weights {
            self.metrics.endpoints.set_group_weight(g, *w);
        }
        tracing::info!(weights = ?weights, "Pool group weights set: new sessions follow them.");
        self.traffic.set(weights);
    }

    /// The weights after giving `group` `weight` percent, the other groups sharing the rest in proportion to
    /// their current weights (`traffic::rebalance`). Nothing is set.
    pub(crate) fn weights_with(&self, group: &str, weight: u32) -> BTreeMap<String, u32> {
        traffic::rebalance(&self.group_weights(), group, weight)
    }

    /// Records the tools of `ep`'s probe `report` as its group's snapshot, when the probe was healthy and
    /// listed tools (the drift gate's fallback: [`Pool::group_snapshot`]).
    pub(crate) fn record_tools(&self, ep: &PoolEndpoint, report: &lifeline_mcp::ProbeReport) {
        if report.verdict != lifeline_mcp::Verdict::Healthy || report.tools_count.is_none() {
            return;
        }
        self.traffic.record_snapshot(
            &ep.group,
            traffic::Snapshot {
                endpoint: ep.label.clone(),
                tools: report.tools.clone(),
                at: Instant::now(),
            },
        );
    }

    /// The last tools a healthy probe of `group` listed, with the endpoint and when (`None`: never).
    pub(crate) fn group_snapshot(&self, group: &str) -> Option<Arc<traffic::Snapshot>> {
        self.traffic.snapshot(group)
    }

    /// The current endpoints of `group`.
    pub(crate) fn group_members(&self, group: &str) -> Vec<EndpointRef> {
        self.members()
            .iter()
            .filter(|e| e.group == group)
            .map(|e| EndpointRef(Arc::clone(e)))
            .collect()
    }

    /// Whether `ep` takes new work now (not ejected, not draining, its last probe passed or none ran yet).
    pub(crate) fn takes_new_work(&self, ep: &EndpointRef) -> bool {
        ep.0.takes_new_work(self.now_ms())
    }

    /// Records how a request to `ep` went: passive outlier detection and the per-endpoint counters.
    pub(crate) fn record(&self, ep: &PoolEndpoint, outcome: Outcome) {
        let failed = match outcome {
            Outcome::Status(s) if s >= 500 => {
                ep.metrics.errors[3].inc();
                if s == 503 && !ep.draining.swap(true, Ordering::AcqRel) {
                    tracing::info!(endpoint = %ep.label, "Pool endpoint answered 503: no new sessions until its probe passes.");
                    self.publish_health(ep);
                }
                true
            }
            Outcome::Status(_) => false,
            Outcome::Failed(reason) => {
                if let Some(i) = crate::metrics::ERROR_REASONS
                    .iter()
                    .position(|r| *r == reason)
                {
                    ep.metrics.errors[i].inc();
                }
                if reason == "protocol" {
                    // A connection broken mid-answer says little about the endpoint (the client may have left):
                    // neither an outlier signal nor a success.
                    return;
                }
                true
            }
        };
        if !failed {
            ep.consecutive.store(0, Ordering::Relaxed);
            return;
        }
        let n = ep.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.cfg.consecutive_errors {
            ep.consecutive.store(0, Ordering::Relaxed);
            self.eject(ep);
        }
    }

    fn eject(&self, ep: &PoolEndpoint) {
        let now = Instant::now();
        let dur = {
            let mut ej = ep.ejection.lock().unwrap_or_else(|p| p.into_inner());
            if ej.until.is_some_and(|u| u > now) {
                // Still ejected (requests pinned there keep failing): the ejection stands as it is.
                return;
            }
            if ej
                .until
                .is_some_and(|u| now.saturating_duration_since(u) >= self.cfg.max_ejection_time)
            {
                // In service for a whole max_ejection_time since the last one: start counting again.
                ej.count = 0;
            }
            ej.count = ej.count.saturating_add(1);
            let dur = self
                .cfg
                .base_ejection_time
                .saturating_mul(ej.count)
                .min(self.cfg.max_ejection_time);
            ej.until = Some(now + dur);
            dur
        };
        ep.ejected_until_ms
            .store(self.now_ms() + dur.as_millis() as u64, Ordering::Release);
        ep.metrics.ejections.inc();
        tracing::warn!(endpoint = %ep.label, ejected_for_ms = dur.as_millis() as u64, "Pool endpoint ejected after consecutive failures.");
        self.publish_health(ep);
    }

    /// Records an active probe's result for `ep`.
    pub(crate) fn probed(&self, ep: &PoolEndpoint, summary: ProbeSummary) {
        let before = ep.probe.swap(
            if summary.ok {
                PROBE_PASSED
            } else {
                PROBE_FAILED
            },
            Ordering::AcqRel,
        );
        if summary.ok {
            ep.draining.store(false, Ordering::Release);
            // A passing active probe ends an ejection (Envoy's `successful_active_health_check_uneject_host`,
            // default true): a replica restarted on the same address takes new work again at once, instead of
            // the whole pool sitting out overlapping ejections during a rolling restart (and `/ready` failing).
            let now_ms = self.now_ms();
            if ep.ejected_until_ms.load(Ordering::Acquire) > now_ms {
                ep.ejected_until_ms.store(now_ms, Ordering::Release);
                let mut ej = ep.ejection.lock().unwrap_or_else(|p| p.into_inner());
                ej.until = Some(Instant::now());
                drop(ej);
                tracing::info!(endpoint = %ep.label, "Pool endpoint passes its probe: its ejection ends.");
            }
        }
        if before != PROBE_UNKNOWN && (before == PROBE_PASSED) != summary.ok {
            if summary.ok {
                tracing::info!(endpoint = %ep.label, "Pool endpoint passes its probe again.");
            } else {
                tracing::warn!(endpoint = %ep.label, reason = summary.reason.as_deref().unwrap_or("none"), "Pool endpoint failed its probe: no new sessions.");
            }
        }
        *ep.last_probe.lock().unwrap_or_else(|p| p.into_inner()) = Some(summary);
        self.publish_health(ep);
    }

    /// Records what `ep`'s sidecar `/ready` answered (`watch.rs`, with the active probe): `ok` (a 200) lets the
    /// endpoint take new work again, anything else marks it draining until the next 200. `detail` (the status,
    /// or why there was none) goes to the log on a change.
    pub(crate) fn ready_checked(&self, ep: &PoolEndpoint, ok: bool, detail: &str) {
        let before = ep
            .ready
            .swap(if ok { READY_YES } else { READY_NO }, Ordering::AcqRel);
        if ok && before == READY_NO {
            tracing::info!(endpoint = %ep.label, "Pool endpoint's sidecar is ready again: new sessions may go there.");
        } else if !ok && before != READY_NO {
            tracing::info!(endpoint = %ep.label, ready = detail, "Pool endpoint's sidecar is not ready (draining): no new sessions; its sessions stay.");
        }
        self.publish_health(ep);
    }

    /// Sets every endpoint's health gauge (ejections end by time, so the scrape reads them fresh).
    pub(crate) fn publish_all(&self) {
        for ep in self.members().iter() {
            self.publish_health(ep);
        }
    }

    fn publish_health(&self, ep: &PoolEndpoint) {
        let healthy =
            ep.takes_new_work(self.now_ms()) && ep.probe.load(Ordering::Acquire) == PROBE_PASSED;
        ep.metrics.healthy.set(i64::from(healthy));
        ep.metrics.draining.set(i64::from(ep.is_draining()));
    }

    /// Replaces the endpoints of the `discovery: dns` entry `entry` with one per address in `urls` (sorted),
    /// keeping the endpoints whose URL did not change. Endpoints that left release their metric labels; the
    /// sessions they hold keep them alive until those end.
    pub(crate) fn replace_entry(&self, entry: usize, urls: Vec<Url>) {
        let Some(cfg) = self.cfg.endpoints.get(entry) else {
            return;
        };
        let current = self.members();
        let mut next: Vec<Arc<PoolEndpoint>> = Vec::with_capacity(current.len() + urls.len());
        let mut changed = false;
        for e in current.iter() {
            if e.entry != entry || urls.iter().any(|u| u.as_str() == e.label) {
                next.push(Arc::clone(e));
            } else {
                changed = true;
                tracing::info!(endpoint = %e.label, "Pool endpoint left (no longer resolved).");
                self.metrics.endpoints.release(&e.label);
            }
        }
        for url in urls {
            if !current
                .iter()
                .any(|e| e.entry == entry && e.label == url.as_str())
            {
                changed = true;
                tracing::info!(endpoint = %url, "Pool endpoint joined (resolved).");
                next.push(self.endpoint(entry, cfg, url, None));
            }
        }
        if changed {
            next.sort_by(|a, b| (a.entry, &a.label).cmp(&(b.entry, &b.label)));
            self.set_members(next);
        }
    }

    /// The pool as JSON, for `/healthz` and `/ready`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let now = self.now_ms();
        let eps: Vec<serde_json::Value> = self
            .members()
            .iter()
            .map(|e| {
                let until = e.ejected_until_ms.load(Ordering::Acquire);
                serde_json::json!({
                    "endpoint": e.label,
                    "group": e.group,
                    "weight": e.weight,
                    "healthy": e.takes_new_work(now) && e.probe.load(Ordering::Acquire) == PROBE_PASSED,
                    "ejected_for_ms": until.saturating_sub(now),
                    "draining": e.is_draining(),
                    "sidecar_ready": match e.ready.load(Ordering::Acquire) {
                        READY_YES => serde_json::Value::Bool(true),
                        READY_NO => serde_json::Value::Bool(false),
                        _ => serde_json::Value::Null,
                    },
                    "outstanding": e.outstanding.load(Ordering::Relaxed),
                    "last_probe": e.last_probe.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|p| {
                        let mut v = serde_json::to_value(p).unwrap_or_default();
                        if let (Some(obj), Some(at)) = (v.as_object_mut(), p.at) {
                            obj.insert("age_ms".to_owned(), (at.elapsed().as_millis() as u64).into());
                        }
                        v
                    }),
                })
            })
            .collect();
        serde_json::Value::Array(eps)
    }
}

impl PoolEndpoint {
    /// Whether the balancer may send it new sessions and stateless requests: not ejected, not draining, and its
    /// last probe (if any yet) passed.
    pub(crate) fn takes_new_work(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Acquire) <= now_ms
            && !self.is_draining()
            && self.probe.load(Ordering::Acquire) != PROBE_FAILED
    }

    /// Whether it drains: it answered 503, or its sidecar's `/ready` did not answer 200.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire) || self.ready.load(Ordering::Acquire) == READY_NO
    }

    /// Counts a request sent to the endpoint until the returned guard drops (when its response body ends).
    pub(crate) fn start(self: &Arc<Self>) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.metrics.requests.inc();
        Outstanding(Arc::clone(self))
    }
}

/// One request outstanding at an endpoint, until dropped.
#[derive(Debug)]
pub(crate) struct Outstanding(Arc<PoolEndpoint>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

impl crate::body::EndObserver for Outstanding {
    fn body_failed(&mut self) {}
}

/// `http://HOST:PORT/ready` for the endpoint at `url` whose sidecar's admin listener is on `port` (the
/// endpoint's host, so a DNS-discovered endpoint's address); `None` only for a URL without a host.
fn ready_url(url: &Url, port: u16) -> Option<Url> {
    let mut u = Url::parse("http://localhost/ready").ok()?;
    match url.host()? {
        url::Host::Domain(d) => u.set_host(Some(d)).ok()?,
        url::Host::Ipv4(ip) => u.set_ip_host(ip.into()).ok()?,
        url::Host::Ipv6(ip) => u.set_ip_host(ip.into()).ok()?,
    }
    u.set_port(Some(port)).ok()?;
    Some(u)
}

/// The eligible endpoint at cumulative weight `at`.
fn weighted(
    members: &[Arc<PoolEndpoint>],
    eligible: &dyn Fn(&Arc<PoolEndpoint>) -> bool,
    mut at: u64,
) -> Option<Arc<PoolEndpoint>> {
    for e in members.iter().filter(|e| eligible(e)) {
        let w = u64::from(e.weight);
        if at < w {
            return Some(Arc::clone(e));
        }
        at -= w;
    }
    None
}

/// A fast non-cryptographic random number (xorshift64*, per thread, seeded from the process's random hasher
/// keys): the balancer needs spread, not secrecy.
fn random() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[cfg(test)]
mod tests;
