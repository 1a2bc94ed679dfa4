//! The pool's background work, both ended by the drain: the active health probe of every endpoint (only for a
//! pool in the full sense, `PoolConfig::is_pool`) and the DNS resolution of `discovery: dns` entries.
//!
//! Probes use the shared probe engine (`lifeline_mcp::probe`) with the readiness probe's options (the same
//! rules as `/ready`; a legacy probe session is always ended with DELETE by the engine), all endpoints at once,
//! each bounded by `--ready-timeout`. An endpoint with `ready_port` also has its sidecar's `/ready` read in the
//! same round (GET, no redirects, the same bound): a sidecar `lifeline gateway` answers 503 there from the
//! first moment of its drain (`admin.rs`), while it still serves everything for its `--drain-delay`, so the
//! MCP probe alone would keep sending it new sessions until it starts refusing them.
//!
//! Resolution uses the system resolver (`tokio::net::lookup_host`, i.e. `getaddrinfo`: `/etc/hosts`, then the
//! cluster DNS); a failed lookup keeps the endpoints resolved before, so a DNS hiccup never empties the pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_core::{Phase, Shutdown};
use lifeline_mcp::{ProbeOptions, Target};
use url::Url;

use super::{Pool, PoolEndpoint, ProbeSummary};
use crate::config::{Discovery, MAX_ENDPOINTS};

/// Bound on one DNS lookup.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the pool's background work until the drain forces the end: DNS re-resolution every `dns_interval`
/// (when an entry uses DNS) and, for a pool, an active probe round every `health_interval`.
pub(crate) async fn watch_pool(pool: Arc<Pool>, opts: ProbeOptions, shutdown: Shutdown) {
    let cfg = pool.config().clone();
    let has_dns = cfg.endpoints.iter().any(|e| e.discovery == Discovery::Dns);
    let probing = cfg.is_pool();
    let mut dns_tick = tokio::time::interval(cfg.dns_interval);
    dns_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut health_tick = tokio::time::interval(cfg.health_interval);
    health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // No redirects: a sidecar answers for itself.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let stop = shutdown.reached(Phase::Forcing);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = dns_tick.tick(), if has_dns => {
                tokio::select! {
                    () = resolve_dns_entries(&pool) => {}
                    _ = &mut stop => return,
                }
            }
            _ = health_tick.tick(), if probing => {
                tokio::select! {
                    () = probe_round(&pool, &opts, &http) => {}
                    _ = &mut stop => return,
                }
            }
            _ = &mut stop => return,
        }
    }
}

/// Resolves every `discovery: dns` entry once and updates the pool (at most [`MAX_ENDPOINTS`] addresses per
/// entry, sorted, so the choice is stable).
pub(crate) async fn resolve_dns_entries(pool: &Pool) {
    for (i, entry) in pool.config().endpoints.iter().enumerate() {
        if entry.discovery != Discovery::Dns {
            continue;
        }
        let (Some(host), Some(port)) = (entry.url.host_str(), entry.url.port_or_known_default())
        else {
            continue;
        };
        let lookup = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((host.to_owned(), port)),
        )
        .await;
        let addrs: BTreeSet<std::net::SocketAddr> = match lookup {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(err)) => {
                tracing::warn!(host, error = %err, "Cannot resolve a pool entry; keeping its endpoints.");
                continue;
            }
            Err(_) => {
                tracing::warn!(
                    host,
                    "Resolving a pool entry timed out; keeping its endpoints."
                );
                continue;
            }
        };
        let urls: Vec<Url> = addrs
            .into_iter()
            .take(MAX_ENDPOINTS)
            .filter_map(|addr| {
                let mut u = entry.url.clone();
                u.set_ip_host(addr.ip()).ok()?;
                Some(u)
            })
            .collect();
        pool.replace_entry(i, urls);
    }
}

/// Probes every endpoint once, concurrently, and reads the `/ready` of those with a `ready_port`.
async fn probe_round(pool: &Arc<Pool>, opts: &ProbeOptions, http: &reqwest::Client) {
    let mut set = tokio::task::JoinSet::new();
    for ep in pool.members().iter() {
        let ep = Arc::clone(ep);
        let pool = Arc::clone(pool);
        let opts = opts.clone();
        let http = http.clone();
        set.spawn(async move {
            let bound = opts.timeouts.total;
            let ready = async {
                match &ep.ready_url {
                    Some(url) => Some(sidecar_ready(&http, url, bound).await),
                    None => None,
                }
            };
            let (summary, ready) = tokio::join!(probe_endpoint(&pool, &ep, opts), ready);
            pool.probed(&ep, summary);
            if let Some((ok, detail)) = ready {
                pool.ready_checked(&ep, ok, &detail);
            }
        });
    }
    while set.join_next().await.is_some() {}
    pool.publish_all();
}

/// GETs a sidecar's `/ready` at `url` within `bound`: whether it answered 200, and the status or why there was
/// none (for the log).
async fn sidecar_ready(http: &reqwest::Client, url: &Url, bound: Duration) -> (bool, String) {
    match tokio::time::timeout(bound, http.get(url.clone()).send()).await {
        Ok(Ok(resp)) => (
            resp.status() == reqwest::StatusCode::OK,
            resp.status().as_u16().to_string(),
        ),
        Ok(Err(e)) if e.is_connect() => (false, "connection failed".to_owned()),
        Ok(Err(_)) => (false, "request failed".to_owned()),
        Err(_) => (false, format!("no answer within {} ms", bound.as_millis())),
    }
}

/// One probe of `ep`, with its era hint; a healthy one's tools become its group's snapshot
/// ([`Pool::record_tools`]).
pub(crate) async fn probe_endpoint(
    pool: &Pool,
    ep: &PoolEndpoint,
    opts: ProbeOptions,
) -> ProbeSummary {
    let failed = |reason: &str, message: String, ms: f64| ProbeSummary {
        ok: false,
        verdict: "down".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        ms,
        server_info: None,
        protocol_version: None,
        at: Some(Instant::now()),
    };
    let Some((url, _)) = ep.mcp.as_ref().or(ep.sse.as_ref()) else {
        return failed("config", "the endpoint has no URL".to_owned(), 0.0);
    };
    let total = opts.timeouts.total;
    let start = Instant::now();
    let Some(report) = probe_report(ep, url, opts).await else {
        return failed(
            "timeout",
            format!("the probe did not finish within {total:?}"),
            start.elapsed().as_secs_f64() * 1000.0,
        );
    };
    pool.record_tools(ep, &report);
    ProbeSummary::of(&report, start.elapsed())
}

/// One probe of `ep` at `url` with the shared engine and its era hint (then updated), bounded by
/// `opts.timeouts.total` plus a second; `None` when that bound passed. The full report (its `tools` too): the
/// pool's health and the traffic gate of `POST /admin/traffic` both judge from it.
pub(crate) async fn probe_report(
    ep: &PoolEndpoint,
    url: &Url,
    opts: ProbeOptions,
) -> Option<lifeline_mcp::ProbeReport> {
    let hint = *ep.era_hint.lock().unwrap_or_else(|p| p.into_inner());
    let total = opts.timeouts.total;
    let opts = ProbeOptions {
        era_hint: hint,
        ..opts
    };
    // The engine bounds itself by `timeouts.total`; the outer bound is a backstop.
    let report = tokio::time::timeout(
        total + Duration::from_secs(1),
        lifeline_mcp::probe(&Target::Http(url.clone()), &opts),
    )
    .await
    .ok()?;
    *ep.era_hint.lock().unwrap_or_else(|p| p.into_inner()) =
        crate::ready::next_hint(report.is_usable(), report.era);
    Some(report)
}
