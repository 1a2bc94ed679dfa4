//! The probe-only agent process, `lifeline monitor agent --region R --central URL --token-file F`
//! (issue 14, "Regions"). It only connects outward: it pulls its assignments from
//! `GET {central}/api/v1/agent/assignments`, probes each assigned target at its interval with the same probe
//! engine as the monitor ([`crate::Prober`]), spools every result on disk ([`super::spool`]) and pushes the
//! spool, oldest first, to `POST {central}/api/v1/agent/results` with its bearer token. While the central side
//! is unreachable (or refuses), results wait in the bounded spool and go out late with their probe time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::result::AgentResult;
use super::spool::Spool;
use crate::config::TargetConfig;
use crate::evaluate::is_up;
use crate::scheduler::now_ms;
use crate::Prober;

/// Results sent in one push: 1,000 (under the central side's `MAX_RESULTS_PER_PUSH`).
pub const PUSH_BATCH: usize = 1_000;

/// What the agent process needs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The central monitor's base URL (`https://monitor.example.com`).
    pub central: Url,
    /// The bearer token (from `--token-file`).
    pub token: String,
    /// The spool file (JSON lines).
    pub spool: PathBuf,
    /// Most results spooled. Default [`super::spool::DEFAULT_SPOOL_MAX`].
    pub spool_max: usize,
    /// How often assignments are pulled again. Default 60 s.
    pub pull_every: Duration,
    /// How often the spool is pushed. Default 1 s.
    pub push_every: Duration,
    /// The local address outgoing connections (to the central side) bind to; `None` lets the OS choose.
    pub local_address: Option<IpAddr>,
    /// The region the operator said this agent is in (`--region`); a different region in the assignments
    /// (the central side goes by the token's agent entry) is logged as an error at each pull. `None`: no check.
    pub region: Option<String>,
}

impl AgentOptions {
    /// Options with the defaults for `central` and `token`, spooling to `spool`.
    pub fn new(central: Url, token: String, spool: PathBuf) -> Self {
        AgentOptions {
            central,
            token,
            spool,
            spool_max: super::spool::DEFAULT_SPOOL_MAX,
            pull_every: Duration::from_secs(60),
            push_every: Duration::from_secs(1),
            local_address: None,
            region: None,
        }
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The spool file could not be opened.
    #[error("opening the spool {0}: {1}")]
    Spool(PathBuf, std::io::Error),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One assigned target. No `Debug`: it holds the target's credentials.
#[derive(Deserialize, PartialEq)]
struct Assigned {
    name: String,
    url: String,
    interval_ms: u64,
    timeout_ms: u64,
    #[serde(default)]
    credentials: Option<Credentials>,
}

/// What `super::api::credentials` sends.
#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Credentials {
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    auth: Option<ClientCredentials>,
}

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ClientCredentials {
    client_id: String,
    auth_method: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
}

impl Assigned {
    /// The target to probe, with its credentials (an OAuth client of its own: its token cache lives as long
    /// as the assignment does not change).
    fn target(&self, url: Url) -> TargetConfig {
        use lifeline_core::secret::Secret;
        use lifeline_mcp::probe::{ClientAuth, OAuthClient, OAuthConfig, SecretSource};
        let mut c = TargetConfig::new(self.name.clone(), url);
        c.interval = Duration::from_millis(self.interval_ms.max(1_000));
        c.timeout = Duration::from_millis(self.timeout_ms.max(100));
        if let Some(k) = &self.credentials {
            c.headers = k
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Secret::new(v.clone())))
                .collect();
            c.bearer_token = k.bearer_token.clone().map(Secret::new);
            if let Some(a) = &k.auth {
                let secret = || {
                    SecretSource::Value(Secret::new(a.client_secret.clone().unwrap_or_default()))
                };
                let mut cfg = OAuthConfig::client_secret(a.client_id.clone(), secret());
                cfg.auth = match a.auth_method.as_str() {
                    "client_secret_post" => ClientAuth::SecretPost(secret()),
                    "none" => ClientAuth::None,
                    _ => ClientAuth::SecretBasic(secret()),
                };
                cfg.scope = a.scope.clone();
                cfg.token_url = a.token_url.as_deref().and_then(|u| Url::parse(u).ok());
                c.auth = Some(crate::config::TargetAuth {
                    oauth: Some(Arc::new(OAuthClient::new(cfg))),
                    expiry: Vec::new(),
                    warning_days: lifeline_mcp::probe::config::DEFAULT_CREDENTIAL_WARNING_DAYS,
                });
            }
        }
        c
    }
}

#[derive(Deserialize)]
struct Assignments {
    region: String,
    targets: Vec<Assigned>,
}

/// What a running agent has done, for its caller and tests.
#[derive(Debug, Default, Clone)]
pub struct AgentStats {
    /// Results the central side accepted.
    pub pushed: u64,
    /// Pushes that failed (unreachable, refused or an error status).
    pub failed_pushes: u64,
    /// Results waiting in the spool.
    pub spooled: usize,
    /// Results dropped from a full spool.
    pub dropped: u64,
    /// Targets currently assigned.
    pub assigned: usize,
}

/// Runs the agent until `stop` is cancelled; `stats` is updated as it goes.
///
/// Errors: [`AgentError`] at start-up only; network failures are retried forever (results spool meanwhile).
pub async fn run(
    opts: AgentOptions,
    prober: Arc<dyn Prober>,
    stats: Arc<std::sync::Mutex<AgentStats>>,
    stop: CancellationToken,
) -> Result<(), AgentError> {
    let mut spool = Spool::open(&opts.spool, opts.spool_max)
        .map_err(|e| AgentError::Spool(opts.spool.clone(), e))?;
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(a) = opts.local_address {
        builder = builder.local_address(a);
    }
    let http = builder.build()?;
    let base = opts.central.as_str().trim_end_matches('/').to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AgentResult>(1024);
    let mut targets: Vec<TargetConfig> = Vec::new();
    let mut assigned: Vec<(Assigned, TargetConfig)> = Vec::new();
    let mut due: HashMap<String, Instant> = HashMap::new();
    // Targets whose probe still runs: at most one probe per target at a time (as the monitor's scheduler).
    let running: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
    let mut next_pull = Instant::now();
    let mut next_push = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if now >= next_pull {
            next_pull = now + opts.pull_every;
            match pull(&http, &base, &opts.token).await {
                Ok(a) => {
                    if opts.region.as_ref().is_some_and(|r| r != &a.region) {
                        tracing::error!(
                            flag = opts.region.as_deref().unwrap_or_default(),
                            central = %a.region,
                            "--region differs from the region the central side has for this token; probing for the central side's region."
                        );
                    }
                    let mut kept = std::mem::take(&mut assigned);
                    for t in a.targets {
                        // An unchanged assignment keeps its target (and its OAuth client's cached token).
                        if let Some(i) = kept.iter().position(|(k, _)| *k == t) {
                            assigned.push(kept.swap_remove(i));
                            continue;
                        }
                        match Url::parse(&t.url) {
                            Ok(u) => {
                                let c = t.target(u);
                                assigned.push((t, c));
                            }
                            Err(e) => {
                                tracing::warn!(target_name = %t.name, error = %e, "Assigned target has a bad URL; skipped.");
                            }
                        }
                    }
                    targets = assigned.iter().map(|(_, c)| c.clone()).collect();
                    due.retain(|n, _| targets.iter().any(|t| &t.name == n));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Pulling assignments failed; keeping the last ones.");
                    next_pull = now + opts.push_every.max(Duration::from_secs(1));
                }
            }
        }
        for t in &targets {
            let when = due.entry(t.name.clone()).or_insert_with(|| next_round(t));
            if *when <= now {
                *when = next_round(t);
                if !running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(t.name.clone())
                {
                    tracing::warn!(target_name = %t.name, "Previous probe still running; this one is skipped.");
                    continue;
                }
                let (t, prober, tx, running) =
                    (t.clone(), prober.clone(), tx.clone(), running.clone());
                tokio::spawn(async move {
                    let probed_at_ms = now_ms();
                    let started = Instant::now();
                    let report = prober.probe(&t).await;
                    let up = is_up(&report, &t);
                    running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&t.name);
                    let _ = tx
                        .send(AgentResult {
                            target: t.name.clone(),
                            probed_at_ms,
                            attempt: 0,
                            up,
                            latency_ms: started.elapsed().as_millis() as u64,
                            error: report.failure.as_ref().map(|f| f.message.clone()),
                            reason: report.reason,
                            schema_hash: report.schema_hash.clone(),
                        })
                        .await;
                });
            }
        }
        let mut fresh = Vec::new();
        while let Ok(r) = rx.try_recv() {
            fresh.push(r);
        }
        if !fresh.is_empty() {
            if let Err(e) = spool.push(fresh) {
                tracing::warn!(error = %e, "Writing the spool failed; results stay in memory.");
            }
        }
        if now >= next_push && !spool.is_empty() {
            next_push = now + opts.push_every;
            let batch = spool.peek(PUSH_BATCH);
            match push(&http, &base, &opts.token, &batch).await {
                Ok(()) => {
                    if let Err(e) = spool.ack(batch.len()) {
                        tracing::warn!(error = %e, "Writing the spool failed.");
                    }
                    stats.lock().unwrap_or_else(|p| p.into_inner()).pushed += batch.len() as u64;
                    // More waiting (a drained partition): push again at the next tick.
                    if !spool.is_empty() {
                        next_push = now;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, waiting = spool.len(), "Pushing results failed; they stay spooled.");
                    stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failed_pushes += 1;
                }
            }
        }
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        s.spooled = spool.len();
        s.dropped = spool.dropped();
        s.assigned = targets.len();
    }
    Ok(())
}

/// When `t`'s next probe is due: early in its next round (rounds are the interval aligned to the Unix epoch,
/// as the central side judges them), so each round gets one result per region. The offset in the round, a
/// stable hash of the name within the first tenth of the interval, spreads a region's targets.
fn next_round(t: &TargetConfig) -> Instant {
    use std::hash::{Hash, Hasher};
    let interval = i64::try_from(t.interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.name.hash(&mut h);
    let offset =
        i64::try_from(h.finish() % u64::try_from(interval / 10 + 1).unwrap_or(1)).unwrap_or(0);
    let now = now_ms();
    let mut wait = interval - now.rem_euclid(interval) + offset;
    if wait > interval {
        wait -= interval; // still before this round's offset
    }
    Instant::now() + Duration::from_millis(u64::try_from(wait).unwrap_or(0))
}

async fn pull(http: &reqwest::Client, base: &str, token: &str) -> Result<Assignments, String> {
    let r = http
        .get(format!("{base}/api/v1/agent/assignments"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status()));
    }
    r.json().await.map_err(|e| e.to_string())
}

async fn push(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    batch: &[AgentResult],
) -> Result<(), String> {
    let r = http
        .post(format!("{base}/api/v1/agent/results"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "results": batch }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use axum::extract::{ConnectInfo, Request};
    use axum::http::{Method, StatusCode};
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use lifeline_testkit::assert_eventually;

    use super::super::quorum::RoundVerdict;
    use super::super::token::token_hash;
    use super::*;
    use crate::McpProber;

    type Blocked = Arc<Mutex<HashSet<IpAddr>>>;

    /// The partition: the central side answers 503 to result pushes from a blocked agent address.
    async fn partition(
        blocked: Blocked,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        req: Request,
        next: Next,
    ) -> Response {
        let cut = blocked.lock().unwrap().contains(&peer.ip());
        if cut && req.method() == Method::POST && req.uri().path() == "/api/v1/agent/results" {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        next.run(req).await
    }

    /// Three agents on 127.0.0.2/.3/.4 probe a target on 127.0.0.1 (a closed port: a real connection
    /// refused) and push to a real central web server on 127.0.0.1.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quorum_decides_with_one_agent_partitioned_its_spool_drains_and_two_cut_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target_url = format!("http://{}/mcp", closed.local_addr().unwrap());
        drop(closed);
        let names = [(2u8, "r2"), (3, "r3"), (4, "r4")];
        let mut yaml = String::from("agents:\n");
        for (n, region) in names {
            let f = dir.path().join(format!("a{n}.sha256"));
            std::fs::write(&f, token_hash(&format!("token-{n}"))).unwrap();
            yaml.push_str(&format!(
                "  - {{ name: a{n}, region: {region}, token_files: [{}] }}\n",
                f.display()
            ));
        }
        yaml.push_str(&format!(
            "targets:\n  - {{ name: api, url: \"{target_url}\", interval: 5s, timeout: 2s, regions: [r2, r3, r4] }}\n"
        ));
        let app = super::super::central_for_tests(&yaml, dir.path()).await;
        let blocked: Blocked = Arc::new(Mutex::new(HashSet::from([IpAddr::from([127, 0, 0, 3])])));
        let router = crate::web::router(app.clone()).layer(axum::middleware::from_fn({
            let blocked = blocked.clone();
            move |ci, req, next| partition(blocked.clone(), ci, req, next)
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let central: Url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )));

        let stop = CancellationToken::new();
        let mut stats = Vec::new();
        // Agents probe early in each round (5 s, aligned to the Unix epoch): the first is the next round.
        let start_ms = now_ms() - now_ms().rem_euclid(5_000) + 5_000;
        for (n, _) in names {
            let mut o = AgentOptions::new(
                central.clone(),
                format!("token-{n}"),
                dir.path().join(format!("spool-{n}.jsonl")),
            );
            o.pull_every = Duration::from_secs(1);
            o.push_every = Duration::from_millis(200);
            o.local_address = Some(IpAddr::from([127, 0, 0, n]));
            let s = Arc::new(std::sync::Mutex::new(AgentStats::default()));
            stats.push(s.clone());
            tokio::spawn(run(o, Arc::new(McpProber), s, stop.child_token()));
        }
        let patience = Duration::from_secs(30);
        let verdict = |from: i64| crate::agent::stored_verdict(&app, "api", from);

        // r3's pushes are blocked: r2 and r4 both failing still make the quorum.
        assert_eventually!(
            verdict(start_ms).await
                == RoundVerdict::Down {
                    failing: vec!["r2".into(), "r4".into()]
                },
            patience = patience,
            "{:?}",
            verdict(start_ms).await
        );
        assert_eventually!(
            {
                let s = stats[1].lock().unwrap().clone();
                s.spooled > 0 && s.failed_pushes > 0
            },
            patience = patience
        );
        // The partition heals: r3's spool drains, its late results land in their probe round.
        blocked.lock().unwrap().clear();
        assert_eventually!(
            verdict(start_ms).await
                == RoundVerdict::Down {
                    failing: vec!["r2".into(), "r3".into(), "r4".into()]
                },
            patience = patience,
            "{:?}",
            verdict(start_ms).await
        );
        assert_eventually!(stats[1].lock().unwrap().spooled == 0, patience = patience);
        let seen = app.store.agents_seen(now_ms()).await.unwrap();
        assert!(seen["a3"].lag_ms.unwrap() >= 0, "{seen:?}");

        // Two of three cut: a round with only r2 reporting is unknown, never down.
        blocked
            .lock()
            .unwrap()
            .extend([IpAddr::from([127, 0, 0, 3]), IpAddr::from([127, 0, 0, 4])]);
        let cut_ms = now_ms() + 1_000;
        assert_eventually!(
            app.store
                .count_region_results("api", cut_ms, cut_ms + 5_000)
                .await
                .unwrap()
                > 0,
            patience = patience
        );
        let v = verdict(cut_ms).await;
        assert!(
            matches!(v, RoundVerdict::Unknown { ref reporting } if reporting == &["r2"]),
            "{v:?}"
        );
        stop.cancel();
        server.abort();
    }
}
