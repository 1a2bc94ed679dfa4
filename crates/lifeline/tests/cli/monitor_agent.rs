//! `lifeline monitor agent`, the real binary, against a real `lifeline monitor` (SQLite) on 127.0.0.1 (issue 14,
//! "Regions"). Its one target sits behind OAuth: a real authorization server (oidc-provider) and the Python SDK
//! as a resource server that checks JWTs. The central side holds the client secret in a file and delegates it
//! with the assignment, so the agent logs in and probes it healthy; the central replica stores the pushed
//! results, judges the round `up` from the store, and the agent stops cleanly on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, PyAuthConfig, ResourceConfig,
};
use lifeline_testkit::peers::Peer;

use crate::monitor_cli::{http_get, spawn_monitor};

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");

#[tokio::test]
async fn the_agent_binary_probes_a_target_behind_oauth_with_delegated_credentials() {
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::post(
                "agent-probe",
                "ag3nt-secret",
                "mcp:read",
            ))
            .resource(ResourceConfig::any_loopback("mcp:read")),
    )
    .await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("secret"), "ag3nt-secret\n").unwrap();
    std::fs::write(p("token"), "agent-token-2\n").unwrap();
    // sha256("agent-token-2"), as `printf %s "$TOKEN" | sha256sum` gives it.
    let hash = lifeline_monitor::agent::token::token_hash("agent-token-2");
    std::fs::write(p("a2.sha256"), hash).unwrap();
    std::fs::write(
        p("monitor.yaml"),
        format!(
            "storage: \"sqlite://{db}\"\nlisten: 127.0.0.1:0\nagents:\n  - {{ name: a2, region: r2, token_files: [\"{tok}\"] }}\n\
             targets:\n  - name: search\n    url: {url}\n    interval: 5s\n    timeout: 4s\n    regions: [r2]\n    \
             auth: {{ client_id: agent-probe, client_secret_file: \"{secret}\", auth_method: client_secret_post, scope: \"mcp:read\" }}\n",
            db = p("m.db").display(),
            tok = p("a2.sha256").display(),
            url = peer.url,
            secret = p("secret").display(),
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (_central, addr, _rx, _log) = spawn_monitor(
        Command::new(BIN)
            .args(["monitor", "--config"])
            .arg(p("monitor.yaml")),
        deadline,
    );
    // The agent logs the central URL it starts with: spawn_monitor's "listening" line serves to wait for it.
    let (mut agent, _, _agent_rx, _) = spawn_monitor(
        Command::new(BIN)
            .args(["monitor", "agent", "--region", "r2", "--central"])
            .arg(format!("http://{addr}"))
            .arg("--token-file")
            .arg(p("token"))
            .arg("--spool")
            .arg(p("spool.jsonl")),
        deadline,
    );
    let pid = agent.0.id();
    let patience = Duration::from_secs(45);
    // The agent's results arrive, up: it presented a token from the delegated client credentials.
    assert_eventually!(
        http_get(&addr, "/api/v1/targets/search/regions")
            .1
            .contains(r#""up":true"#),
        patience = patience,
        "{}",
        http_get(&addr, "/api/v1/targets/search/regions").1
    );
    // The central replica judges the round from the store: the target is up (it never probes it itself).
    assert_eventually!(
        http_get(&addr, "/api/v1/targets/search")
            .1
            .contains(r#""verdict":"healthy""#),
        patience = patience,
        "{}",
        http_get(&addr, "/api/v1/targets/search").1
    );
    let stats = auth.stats().await;
    assert!(stats.token_requests_of("agent-probe") >= 1, "{stats:?}");

    // SIGTERM: the agent stops, exit 0.
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let stopped = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < stopped,
            "the agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
}
