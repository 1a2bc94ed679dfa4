//! Benchmark (not a test): CPU and wall time per probe of one process probing the Python SDK 2.x server
//! (stateful) four ways: unauthenticated against the plain peer (`tests/peers/py2_server.py`, for reference), and
//! against `tests/peers/py2_auth_server.py` with auth off, with a static bearer token, and with the OAuth client and
//! a cached token (tokens from the real oidc-provider). Goal (issue 13): an authenticated probe with a cached token
//! within 1.2x of an unauthenticated one, read on the same server (auth off vs OAuth cached), so only auth differs.
//! CPU is this process's own (getrusage RUSAGE_SELF), so the servers' work is not counted; the wall time includes
//! it (the auth server checks a JWT per request). `RUNS` probes per row (default 200). Run: `cargo bench -p
//! lifeline-mcp --bench probe_auth` (scripts/bench-check.sh runs it too). Loopback only.
//!
//! The OAuth row against the static-token row is the token cache's cost. Measured 2026-12-07 on the shared 2-core
//! machine, 200 probes per row, before the same-server row existed: 450 / 759 / 736 µs CPU per probe (plain peer /
//! static token / OAuth cached), OAuth cached / static token 0.97x, one token request in total.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeline_mcp::probe::{OAuthClient, OAuthConfig, ProbeOptions, Secret, SecretSource, Target};
use lifeline_mcp::{probe, Verdict};
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, PyAuthConfig, ResourceConfig, TokenCheck,
};
use lifeline_testkit::peers::{Peer, PyServer};
use nix::sys::resource::{getrusage, UsageWho};

fn cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| {
        Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
    };
    t(u.user_time()) + t(u.system_time())
}

async fn row(name: &str, url: &str, opts: &ProbeOptions, runs: u32) -> f64 {
    let target = Target::Http(url.parse().expect("URL"));
    // Warm-up (and the one token request of the OAuth row).
    let first = probe(&target, opts).await;
    assert_eq!(
        first.verdict,
        Verdict::Healthy,
        "{name}: {:?}",
        first.failure
    );
    let (c0, w0) = (cpu(), Instant::now());
    for _ in 0..runs {
        let r = probe(&target, opts).await;
        assert_eq!(r.verdict, Verdict::Healthy, "{name}: {:?}", r.failure);
    }
    let cpu_us = (cpu() - c0).as_secs_f64() * 1e6 / f64::from(runs);
    let wall_ms = w0.elapsed().as_secs_f64() * 1e3 / f64::from(runs);
    println!("{name:<28} {cpu_us:>10.0} µs CPU/probe {wall_ms:>9.2} ms wall/probe");
    cpu_us
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("bench", "bench-secret", "mcp:read"))
            .resource(ResourceConfig::any_loopback("mcp:read").with_ttl(Duration::from_secs(3600))),
    )
    .await;
    let plain = Peer::python(PyServer::Stateful).await;
    let guarded = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    // The same server with auth off: the unauthenticated baseline that differs from the OAuth row by auth only.
    let open = Peer::python_auth(&PyAuthConfig {
        check: TokenCheck::Off,
        ..PyAuthConfig::jwt(auth.issuer())
    })
    .await;
    let base = ProbeOptions {
        check_origin: false,
        ..ProbeOptions::default()
    };
    let token = auth
        .client_credentials(
            "bench",
            "bench-secret",
            Some(&guarded.url),
            Some("mcp:read"),
        )
        .await
        .expect("a token");
    let bearer = ProbeOptions {
        bearer_token: Some(Secret::new(token.access_token)),
        ..base.clone()
    };
    let mut config =
        OAuthConfig::client_secret("bench", SecretSource::Value(Secret::new("bench-secret")));
    config.scope = Some("mcp:read".to_owned());
    let oauth = ProbeOptions {
        oauth: Some(Arc::new(OAuthClient::new(config))),
        ..base.clone()
    };
    println!("probe_auth: {runs} probes per row, one process, Python SDK 2.x stateful");
    let plain_row = row(
        "unauthenticated, plain Python peer",
        &plain.url,
        &base,
        runs,
    )
    .await;
    let none = row(
        "unauthenticated, same server (auth off)",
        &open.url,
        &base,
        runs,
    )
    .await;
    let fixed = row("static bearer token", &guarded.url, &bearer, runs).await;
    let cached = row("OAuth, cached token", &guarded.url, &oauth, runs).await;
    println!(
        "ratio CPU: OAuth cached / unauthenticated same server {:.2}x (goal ≤ 1.2x); OAuth cached / static bearer \
         {:.2}x; (for reference: / the plain peer {:.2}x)",
        cached / none,
        cached / fixed,
        cached / plain_row
    );
    let requests = auth.stats().await.token_requests_of("bench");
    println!(
        "token requests at the AS for the OAuth row: {} (plus 1 for the static token)",
        requests - 1
    );
}
