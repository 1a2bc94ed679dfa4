//! Issue 14, "Regions", on a real PostgreSQL: two central replicas share one database; three probe agents on
//! 127.0.0.2, .3 and .4 (the real agent loop, `lifeline_monitor::agent::run`, with a scripted prober each so a
//! region's failures are chosen) push to *different* replicas. Whichever replica holds a target's shard judges
//! its rounds from `region_results`, so:
//! - `api` failing in two of three regions pages exactly once with its stable key, and resolves once, after
//!   one replica stopped mid-incident and the other took its shards;
//! - `edge` failing in one region is `regional`: shown in the API, never paged; its tool-schema hash differs in
//!   one region: one `schema:edge` episode, alerted once;
//! - two agents cut: every round `unknown`, one "probe fleet degraded" alert and one stale alert per cut agent,
//!   no target page; each resolves once when the agents return;
//! - the agents' liveness is served by every replica from the store: the replica an agent never talks to
//!   shows it in `GET /api/v1/agents` and in the agent metrics, recently seen.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use lifeline_monitor::agent::run::{run as run_agent, AgentOptions, AgentStats};
use lifeline_monitor::agent::token::token_hash;
use tokio_util::sync::CancellationToken;

use super::ha::{lifeline_now_ms, on, Pg};
use super::*;
use crate::running::start_as;

/// One region's prober: a failed probe for the targets in `failing`, a healthy one otherwise, with the
/// tool-schema hash `h1`, or `h2` for the targets in `old_schema` (a region served an old build).
#[derive(Default)]
struct RegionProber {
    failing: Mutex<HashSet<String>>,
    old_schema: Mutex<HashSet<String>>,
}

impl RegionProber {
    fn fail(&self, target: &str, failing: bool) {
        let mut f = self.failing.lock().unwrap();
        if failing {
            f.insert(target.to_owned());
        } else {
            f.remove(target);
        }
    }
}

impl Prober for RegionProber {
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport> {
        let failing = self.failing.lock().unwrap().contains(&target.name);
        let old = self.old_schema.lock().unwrap().contains(&target.name);
        Box::pin(async move {
            let mut timings = Timings::default();
            timings.add(Phase::Total, 5.0);
            if failing {
                return ProbeReport::failed(
                    target.url.to_string(),
                    Failure::new(Reason::ConnectRefused, "connection refused"),
                    timings,
                    String::new(),
                );
            }
            let mut r = ProbeReport::alive(target.url.to_string(), timings, String::new());
            r.schema_hash = Some(if old { "h2" } else { "h1" }.to_owned());
            r
        })
    }
}

/// `(target, kind)` of every webhook received, in order.
fn pages(received: &Received) -> Vec<(String, String)> {
    on(received, "webhook")
        .into_iter()
        .map(|(b, _)| {
            (
                b["target"]["name"].as_str().unwrap_or_default().to_owned(),
                b["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn count(p: &[(String, String)], target: &str, kind: &str) -> usize {
    p.iter().filter(|(t, k)| t == target && k == kind).count()
}

async fn json_of(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Results the replica at `base` has recorded, every verdict (`lifeline_monitor_probes_total`): here only
/// judged region rounds (the central scheduler probes no multi-region target) and the fleet's episodes.
async fn recorded(base: &str) -> f64 {
    let text = super::metrics_text(base).await.expect("metrics");
    text.lines()
        .filter(|l| l.starts_with("lifeline_monitor_probes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Agent {
    stop: CancellationToken,
}

/// Starts agent `a<n>` on 127.0.0.`n`, pushing to `central`, spooling to `spool` in `dir`.
fn start_agent(
    n: u8,
    central: &str,
    (dir, spool): (&std::path::Path, &str),
    prober: Arc<RegionProber>,
) -> Agent {
    let mut o = AgentOptions::new(
        central.parse().unwrap(),
        format!("token-{n}"),
        dir.join(spool),
    );
    o.pull_every = Duration::from_secs(1);
    o.push_every = Duration::from_millis(200);
    o.local_address = Some(IpAddr::from([127, 0, 0, n]));
    let stop = CancellationToken::new();
    let stats = Arc::new(Mutex::new(AgentStats::default()));
    tokio::spawn(run_agent(o, prober, stats, stop.clone()));
    Agent { stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_page_a_quorum_once_never_regional_and_alert_a_degraded_fleet_once() {
    let Some(pg) = Pg::create("regions").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rx, received) = receiver().await;
    let mut yaml = format!(
        "storage: \"{}\"\nalerts:\n  - {{ type: webhook, url: \"{rx}/webhook\" }}\n  - {{ type: pagerduty, routing_key: rk, events_url: \"{rx}/pd\" }}\nagents:\n",
        pg.url
    );
    for n in [2u8, 3, 4] {
        let f = dir.path().join(format!("a{n}.sha256"));
        std::fs::write(&f, token_hash(&format!("token-{n}"))).unwrap();
        yaml.push_str(&format!(
            "  - {{ name: a{n}, region: r{n}, token_files: [\"{}\"] }}\n",
            f.display()
        ));
    }
    yaml.push_str(
        "targets:\n  - { name: api, url: \"http://127.0.0.1:9/mcp\", regions: [r2, r3, r4] }\n  \
         - { name: edge, url: \"http://127.0.0.1:9/mcp\", regions: [r2, r3, r4] }\n",
    );
    let config = || {
        let mut c = Config::from_yaml(&yaml, &|_| None).unwrap();
        for t in &mut c.targets {
            // Faster than the file allows, so the test runs in seconds: 1 s rounds.
            t.interval = Duration::from_secs(1);
            t.timeout = Duration::from_millis(500);
        }
        fast_tuning(&mut c);
        c.tuning.lease_ttl = Duration::from_secs(3);
        c
    };
    // The central scheduler never probes a multi-region target: this prober must stay unused.
    let central = Scripted::new(Verdict::Unhealthy);
    let c1 = start_as(config(), central.clone(), "c1").await;
    let c2 = start_as(config(), central.clone(), "c2").await;
    let probers: [Arc<RegionProber>; 3] = Default::default();
    // api fails in r2 and r3 (a quorum), edge in r2 only (regional), and r4 serves edge an old schema.
    probers[0].fail("api", true);
    probers[1].fail("api", true);
    probers[0].fail("edge", true);
    probers[2].old_schema.lock().unwrap().insert("edge".into());
    // a2 and a4 push to one replica, a3 to the other.
    let started_ms = lifeline_now_ms();
    let bases = [c1.base.clone(), c2.base.clone(), c1.base.clone()];
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| {
            let n = i as u8 + 2;
            let spool = format!("spool-{n}.jsonl");
            start_agent(n, &bases[i], (dir.path(), &spool), probers[i].clone())
        })
        .collect();

    // Once the shards are split, `holder` holds api's shard; it stops mid-incident below.
    let store = lifeline_monitor::Store::connect(&pg.url).await.unwrap();
    let api_shard = i64::from(lifeline_monitor::store::shard_of("api"));
    assert_eventually!(
        {
            let leases = store.shard_leases().await.unwrap();
            ["c1", "c2"].iter().all(|r| {
                leases
                    .iter()
                    .filter(|l| l.owner.as_deref() == Some(*r))
                    .count()
                    == 64
            })
        },
        patience = PATIENCE
    );
    let owner = store
        .shard_leases()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.shard == api_shard)
        .and_then(|l| l.owner);
    // a2 pulls from and pushes to c1 only; c2 serves its liveness from the store's `agents` table, in its API
    // and its metrics (refreshed with the snapshot).
    let a2_on_c2 = || async {
        let v = json_of(&format!("{}/api/v1/agents", c2.base)).await;
        v["agents"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == "a2"))
            .cloned()
            .unwrap_or_default()
    };
    assert_eventually!(
        {
            let a = a2_on_c2().await;
            a["last_seen_ms"].as_i64() >= Some(started_ms) && a["results_total"].as_i64() > Some(0)
        },
        patience = PATIENCE,
        "replica c2 does not show agent a2 (which talks to c1 only): {}",
        a2_on_c2().await
    );
    let a = a2_on_c2().await;
    assert!(a["results_last_minute"].as_i64() > Some(0), "{a}");
    assert!(a["lag_ms"].as_i64() >= Some(0), "{a}");
    let series = r#"lifeline_monitor_agent_last_seen_timestamp_seconds{agent="a2"}"#;
    assert_eventually!(
        sample(&c2.base, series)
            .await
            .is_some_and(|s| s >= (started_ms / 1_000) as f64),
        patience = PATIENCE,
        "c2's {series}: {:?}",
        sample(&c2.base, series).await
    );
    assert!(
        sample(
            &c2.base,
            r#"lifeline_monitor_agent_lag_seconds{agent="a2"}"#
        )
        .await
        .is_some(),
        "c2 exports no lag for a2"
    );

    let (holder, r1) = if owner.as_deref() == Some("c1") {
        (c1, c2)
    } else {
        (c2, c1)
    };
    assert_eventually!(
        count(&pages(&received), "api", "opened") == 1,
        patience = Duration::from_secs(40),
        "no page for api down in two of three regions: {:?}",
        pages(&received)
    );
    assert_eventually!(
        count(&pages(&received), "schema:edge", "opened") == 1,
        patience = PATIENCE,
        "{:?}",
        pages(&received)
    );
    // Both replicas answer the same from the store: edge's rounds are regional (r2 down), never paged.
    for base in [&r1.base, &holder.base] {
        let v = json_of(&format!("{base}/api/v1/targets/edge/regions")).await;
        assert!(
            v["rounds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["verdict"] == "regional"),
            "{v}"
        );
        assert_eq!(v["schema_divergence"]["r4"], "h2", "{v}");
    }

    // The holder of api's shard stops mid-incident (its agents move to the other replica first, so no
    // region misses a round): the other takes its shards, resumes judging where the store says, adopts the
    // open incident and resolves it once.
    for (i, base) in bases.iter().enumerate() {
        if *base == holder.base {
            let n = i as u8 + 2;
            let spool = format!("spool-{n}b.jsonl");
            let moved = start_agent(n, &r1.base, (dir.path(), &spool), probers[i].clone());
            std::mem::replace(&mut agents[i], moved).stop.cancel();
        }
    }
    holder.stop().await;
    probers[0].fail("api", false);
    probers[1].fail("api", false);
    assert_eventually!(
        count(&pages(&received), "api", "resolved") == 1,
        patience = Duration::from_secs(40),
        "no resolve for api: {:?}",
        pages(&received)
    );

    // Two agents cut: unknown rounds, one fleet alert, one stale alert each, no target page.
    agents[1].stop.cancel();
    agents[2].stop.cancel();
    assert_eventually!(
        count(&pages(&received), "fleet:probes", "opened") == 1
            && count(&pages(&received), "agent:a3", "opened") == 1
            && count(&pages(&received), "agent:a4", "opened") == 1,
        patience = PATIENCE,
        "{:?}",
        pages(&received)
    );
    // The one region left fails: still no quorum, no page. Waited for, not read once: the alerts above can
    // open while the last complete round still holds the cut agents' final results (a stale agent is 3 s
    // silent, a round is complete 3.5 s after it ends).
    probers[0].fail("api", true);
    let api_regions = format!("{}/api/v1/targets/api/regions", r1.base);
    let failed_alone = |v: &Value| {
        let round = &v["rounds"][0];
        let start = round["start_ms"].as_i64().unwrap_or(i64::MAX);
        round["verdict"] == "unknown"
            && v["results"].as_array().is_some_and(|l| {
                l.iter().any(|x| {
                    x["region"] == "r2"
                        && x["up"] == false
                        && x["probed_at_ms"]
                            .as_i64()
                            .is_some_and(|t| (start..start + 1_000).contains(&t))
                })
            })
    };
    assert_eventually!(
        failed_alone(&json_of(&api_regions).await),
        patience = PATIENCE,
        "no unknown round with r2 failing alone: {}",
        json_of(&api_regions).await
    );

    // They return: each episode resolves once.
    probers[0].fail("api", false);
    agents[1] = start_agent(
        3,
        &r1.base,
        (dir.path(), "spool-3c.jsonl"),
        probers[1].clone(),
    );
    agents[2] = start_agent(
        4,
        &r1.base,
        (dir.path(), "spool-4c.jsonl"),
        probers[2].clone(),
    );
    assert_eventually!(
        ["fleet:probes", "agent:a3", "agent:a4"]
            .iter()
            .all(|s| count(&pages(&received), s, "resolved") == 1),
        patience = PATIENCE,
        "{:?}",
        pages(&received)
    );
    // Room for any wrong extra page: three more rounds of both targets judged (and recorded) on the replica
    // left, then nothing new has arrived.
    let before = (pages(&received), on(&received, "pd").len());
    let judged = recorded(&r1.base).await;
    assert_eventually!(
        recorded(&r1.base).await >= judged + 6.0,
        patience = PATIENCE,
        "the replica left judges no more rounds"
    );
    let p = pages(&received);
    assert_eq!(
        (&p, on(&received, "pd").len()),
        (&before.0, before.1),
        "no alert after every episode resolved"
    );
    let mut by: HashMap<(String, String), usize> = HashMap::new();
    for e in &p {
        *by.entry(e.clone()).or_default() += 1;
    }
    assert!(by.values().all(|n| *n == 1), "each transition once: {p:?}");
    assert_eq!(count(&p, "api", "opened"), 1, "{p:?}");
    assert_eq!(
        count(&p, "edge", "opened"),
        0,
        "regional is never paged: {p:?}"
    );
    // Stable keys: PagerDuty's trigger and resolve of api's incident share one dedup key.
    let pd: Vec<Value> = on(&received, "pd").into_iter().map(|(b, _)| b).collect();
    let api: Vec<&Value> = pd
        .iter()
        .filter(|b| {
            b["dedup_key"]
                .as_str()
                .unwrap()
                .starts_with("lifeline/api/")
        })
        .collect();
    assert_eq!(api.len(), 2, "{pd:#?}");
    assert_eq!(api[0]["dedup_key"], api[1]["dedup_key"]);
    assert_eq!(
        central.calls(),
        0,
        "the central replicas probed a multi-region target"
    );

    for a in agents {
        a.stop.cancel();
    }
    r1.stop().await;
    pg.drop().await;
}
