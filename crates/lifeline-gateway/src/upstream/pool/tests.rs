//! The balancer and the passive health rules, without sockets.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{RawConfig, RawEndpoint};

fn pool(entries: &[(&str, u32)], errors: u32) -> Pool {
    let cfg = RawConfig {
        upstreams: Some(
            entries
                .iter()
                .map(|(u, w)| RawEndpoint {
                    url: (*u).to_owned(),
                    weight: Some(*w),
                    ..RawEndpoint::default()
                })
                .collect(),
        ),
        upstream_consecutive_errors: Some(errors),
        upstream_base_ejection_time: Some("10s".to_owned()),
        upstream_max_ejection_time: Some("25s".to_owned()),
        ..RawConfig::default()
    }
    .validate(&|_| Err(std::io::ErrorKind::NotFound.into()))
    .expect("valid");
    Pool::new(&cfg.upstream.pool, None, Arc::new(Metrics::new()))
}

fn counts(p: &Pool, draws: usize) -> Vec<usize> {
    let members = p.members();
    let mut n = vec![0; members.len()];
    for _ in 0..draws {
        let ep = p.pick(None).expect("an endpoint");
        let i = members
            .iter()
            .position(|m| Arc::ptr_eq(m, &ep.0))
            .expect("a member");
        n[i] += 1;
    }
    n
}

#[test]
fn weights_share_the_picks() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 3), ("http://127.0.0.1:2/mcp", 1)],
        5,
    );
    let n = counts(&p, 4000);
    // Unloaded, each draw is proportional to weight; the pair's tie goes to the first draw.
    assert!(n[0] > 2 * n[1], "{n:?}");
    assert!(n[1] > 200, "the light endpoint still gets its share: {n:?}");
}

#[test]
fn two_choices_prefer_the_less_loaded_endpoint() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 1), ("http://127.0.0.1:2/mcp", 1)],
        5,
    );
    let busy: Vec<Outstanding> = (0..10).map(|_| p.members()[0].start()).collect();
    let n = counts(&p, 1000);
    // The busy endpoint wins only when both draws land on it (a quarter of the time).
    assert!(n[1] > 2 * n[0], "{n:?}");
    drop(busy);
    assert_eq!(p.members()[0].outstanding.load(Ordering::Relaxed), 0);
}

#[test]
fn consecutive_failures_eject_for_a_growing_bounded_time() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 1), ("http://127.0.0.1:2/mcp", 1)],
        3,
    );
    let a = Arc::clone(&p.members()[0]);
    p.record(&a, Outcome::Failed("connect"));
    p.record(&a, Outcome::Status(502));
    p.record(&a, Outcome::Status(200));
    p.record(&a, Outcome::Failed("connect"));
    p.record(&a, Outcome::Failed("timeout"));
    assert!(
        a.takes_new_work(p.now_ms()),
        "a success in between resets the count"
    );
    p.record(&a, Outcome::Failed("protocol"));
    assert!(
        a.takes_new_work(p.now_ms()),
        "a broken connection is not an outlier signal"
    );
    p.record(&a, Outcome::Status(500));
    assert!(!a.takes_new_work(p.now_ms()), "three in a row eject");
    let n = counts(&p, 200);
    assert_eq!(
        n[0], 0,
        "an ejected endpoint gets no balanced requests: {n:?}"
    );
    let first = a.ejected_until_ms.load(Ordering::Acquire) - p.now_ms();
    assert!(first <= 10_000 && first > 9_000, "{first}");

    // The ejection ends; the next one lasts twice the base; the third is bounded by the maximum.
    let expire = |ep: &PoolEndpoint| {
        let mut ej = ep.ejection.lock().expect("lock");
        ej.until = Some(Instant::now() - Duration::from_millis(1));
        ep.ejected_until_ms.store(0, Ordering::Release);
    };
    expire(&a);
    for _ in 0..3 {
        p.record(&a, Outcome::Failed("connect"));
    }
    let second = a.ejected_until_ms.load(Ordering::Acquire) - p.now_ms();
    assert!(second > 19_000 && second <= 20_000, "{second}");
    expire(&a);
    for _ in 0..3 {
        p.record(&a, Outcome::Failed("connect"));
    }
    let third = a.ejected_until_ms.load(Ordering::Acquire) - p.now_ms();
    assert!(third > 24_000 && third <= 25_000, "{third}");
    assert_eq!(a.metrics.ejections.get(), 3);

    // A passing active probe ends an ejection (Envoy's successful_active_health_check_uneject_host); the next
    // ejection still counts as the fourth.
    p.probed(&a, passed());
    assert!(a.takes_new_work(p.now_ms()), "un-ejected by its probe");
    for _ in 0..3 {
        p.record(&a, Outcome::Failed("connect"));
    }
    assert!(!a.takes_new_work(p.now_ms()), "ejected again");
    assert_eq!(a.metrics.ejections.get(), 4);
}

#[test]
fn a_503_drains_until_a_probe_passes_and_a_failed_probe_excludes() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 1), ("http://127.0.0.1:2/mcp", 1)],
        5,
    );
    let a = Arc::clone(&p.members()[0]);
    let summary = |ok| ProbeSummary {
        ok,
        verdict: if ok { "healthy" } else { "down" }.to_owned(),
        reason: None,
        message: None,
        ms: 1.0,
        server_info: None,
        protocol_version: None,
        at: Some(Instant::now()),
    };
    p.record(&a, Outcome::Status(503));
    assert!(!a.takes_new_work(p.now_ms()));
    assert_eq!(counts(&p, 100)[0], 0);
    p.probed(&a, summary(true));
    assert!(a.takes_new_work(p.now_ms()));
    assert_eq!(p.healthy_count(), 1, "the other endpoint was never probed");
    p.probed(&a, summary(false));
    assert!(!a.takes_new_work(p.now_ms()));
    assert_eq!(p.healthy_count(), 0);
    assert_eq!(a.metrics.healthy.get(), 0);
}

#[test]
fn with_no_endpoint_taking_work_every_endpoint_is_a_candidate() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 1), ("http://127.0.0.1:2/mcp", 1)],
        1,
    );
    for ep in p.members().iter() {
        p.record(ep, Outcome::Failed("connect"));
    }
    let n = counts(&p, 200);
    assert!(
        n[0] > 0 && n[1] > 0,
        "panic routing spreads over all: {n:?}"
    );
    let first = EndpointRef(Arc::clone(&p.members()[0]));
    let other = p.pick(Some(&first)).expect("the other one");
    assert!(!Arc::ptr_eq(&other.0, &first.0), "a retry never goes back");
}

#[test]
fn dns_updates_keep_known_endpoints_and_release_gone_ones() {
    let cfg = RawConfig {
        upstreams: Some(vec![RawEndpoint {
            url: "http://replicas.test:3000/mcp".to_owned(),
            discovery: Some("dns".to_owned()),
            group: Some("blue".to_owned()),
            ..RawEndpoint::default()
        }]),
        ..RawConfig::default()
    }
    .validate(&|_| Err(std::io::ErrorKind::NotFound.into()))
    .expect("valid");
    assert!(cfg.upstream.pool.is_pool());
    let p = Pool::new(&cfg.upstream.pool, None, Arc::new(Metrics::new()));
    assert!(p.members().is_empty(), "DNS entries join once resolved");
    assert!(p.pick(None).is_none());
    let url = |s: &str| Url::parse(s).expect("url");
    p.replace_entry(
        0,
        vec![
            url("http://127.0.0.1:3000/mcp"),
            url("http://[::1]:3000/mcp"),
        ],
    );
    let kept = p.find("http://127.0.0.1:3000/mcp").expect("joined");
    assert_eq!(kept.0.group, "blue");
    p.replace_entry(
        0,
        vec![
            url("http://127.0.0.1:3000/mcp"),
            url("http://127.0.0.2:3000/mcp"),
        ],
    );
    let members = p.members();
    assert_eq!(members.len(), 2);
    assert!(
        Arc::ptr_eq(&members[0], &kept.0),
        "an endpoint still resolved is the same endpoint"
    );
    assert!(p.find("http://[::1]:3000/mcp").is_none(), "gone");
    assert_eq!(kept.label(), "http://127.0.0.1:3000/mcp");
}

fn grouped(entries: &[(&str, &str)]) -> Pool {
    let cfg = RawConfig {
        upstreams: Some(
            entries
                .iter()
                .map(|(u, g)| RawEndpoint {
                    url: (*u).to_owned(),
                    group: Some((*g).to_owned()),
                    ..RawEndpoint::default()
                })
                .collect(),
        ),
        ..RawConfig::default()
    }
    .validate(&|_| Err(std::io::ErrorKind::NotFound.into()))
    .expect("valid");
    Pool::new(&cfg.upstream.pool, None, Arc::new(Metrics::new()))
}

#[test]
fn group_weights_steer_new_work_and_fall_back_only_when_a_group_is_empty() {
    let p = grouped(&[
        ("http://127.0.0.1:1/mcp", "blue"),
        ("http://127.0.0.1:2/mcp", "blue"),
        ("http://127.0.0.1:3/mcp", "green"),
    ]);
    // Before weights are set: each group's share of the endpoints' weights.
    assert!(!p.has_group_weights());
    let w = p.group_weights();
    assert_eq!((w["blue"], w["green"]), (67, 33));
    p.set_group_weights(p.weights_with("green", 0));
    assert_eq!(counts(&p, 500)[2], 0, "green at 0 gets nothing");
    p.set_group_weights(p.weights_with("green", 100));
    assert_eq!(p.group_weights()["blue"], 0);
    assert_eq!(counts(&p, 500), vec![0, 0, 500], "all to green");
    p.set_group_weights(p.weights_with("green", 25));
    let n = counts(&p, 4000);
    assert!(n[2] > 700 && n[2] < 1300, "about a quarter to green: {n:?}");
    // A retry that excludes green's only endpoint goes to blue rather than nowhere.
    p.set_group_weights(p.weights_with("green", 100));
    let green = EndpointRef(Arc::clone(&p.members()[2]));
    let other = p.pick(Some(&green)).expect("an endpoint");
    assert_eq!(other.group(), "blue");
}

#[test]
fn a_sidecar_not_ready_gets_no_new_work_until_it_is_ready_again() {
    let p = pool(
        &[("http://127.0.0.1:1/mcp", 1), ("http://127.0.0.1:2/mcp", 1)],
        5,
    );
    let a = Arc::clone(&p.members()[0]);
    p.ready_checked(&a, false, "503");
    assert!(a.is_draining());
    assert_eq!(a.metrics.draining.get(), 1);
    assert_eq!(
        counts(&p, 200)[0],
        0,
        "a draining endpoint gets no new work"
    );
    // A passing MCP probe does not clear it: the sidecar drains while its server still answers.
    p.probed(&a, passed());
    assert!(!a.takes_new_work(p.now_ms()));
    assert_eq!(p.healthy_count(), 0, "the other endpoint was never probed");
    assert_eq!(p.to_json()[0]["sidecar_ready"], false);
    p.ready_checked(&a, true, "200");
    assert!(a.takes_new_work(p.now_ms()));
    assert_eq!(a.metrics.draining.get(), 0);
    assert_eq!(p.to_json()[0]["draining"], false);
    // Every endpoint draining: panic routing still picks one (a pool never refuses on its own judgement).
    for ep in p.members().iter() {
        p.ready_checked(ep, false, "connection failed");
    }
    assert!(p.pick(None).is_some());
}

#[test]
fn the_ready_url_is_the_endpoints_host_on_the_ready_port() {
    let cases = [
        ("http://10.0.0.7:3000/mcp?x=1", "http://10.0.0.7:9091/ready"),
        ("http://[::1]:3000/mcp", "http://[::1]:9091/ready"),
        (
            "http://replica.ns.svc:3000/sse",
            "http://replica.ns.svc:9091/ready",
        ),
    ];
    for (url, want) in cases {
        let url = Url::parse(url).expect("a URL");
        assert_eq!(
            super::ready_url(&url, 9091).map(String::from).as_deref(),
            Some(want)
        );
    }
}

/// A passing active probe's summary (no time: the tests read only its verdict).
fn passed() -> ProbeSummary {
    ProbeSummary {
        ok: true,
        verdict: "healthy".to_owned(),
        reason: None,
        message: None,
        ms: 1.0,
        server_info: None,
        protocol_version: None,
        at: None,
    }
}
