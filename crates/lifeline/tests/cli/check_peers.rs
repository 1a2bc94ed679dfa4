//! `lifeline check` against the real MCP peers on 127.0.0.1 (installed, pinned, by `scripts/install-peers.sh`):
//! server-everything over stdio, Streamable HTTP and SSE; the official Python SDK 2.x served stateful, stateless
//! and JSON-response (all three also serve the modern era); a legacy-only Python SDK 1.x server; and the official
//! conformance suite's client scenario `initialize`. Each must be healthy with the right era and tool count, and
//! leave no session behind on the server.

use std::process::{Output, Stdio};
use std::time::Duration;

use lifeline_testkit::peers::{self, Conformance, EverythingTransport, Peer, Py1Mode, PyServer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
const RUN_PATIENCE: Duration = Duration::from_secs(90);

/// Runs `program ARGS` (no colour, no credential variables, its own process group), bounded by [`RUN_PATIENCE`];
/// also `discovery.rs`'s runner.
pub(crate) async fn run(program: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("LIFELINE_BEARER_TOKEN")
        .env_remove("LIFELINE_OAUTH_CLIENT_SECRET")
        .env_remove("LIFELINE_OAUTH_REFRESH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawning");
    tokio::time::timeout(RUN_PATIENCE, child.wait_with_output())
        .await
        .expect("finished in time")
        .expect("output collected")
}

/// Runs `lifeline check ARGS --json` and returns the one report, asserting exit 0.
async fn check_json(args: &[&str]) -> Value {
    // `--json` goes first: with `--stdio`, everything after `--` belongs to the child. These tests judge what a
    // probe finds, not how fast: on a loaded 2-core machine a Python server alone can take 9 s to start, which
    // the default `--slow 5s` would call degraded and `--timeout 10s` nearly cut.
    let mut all = vec!["check", "--json", "--slow", "60s", "--timeout", "60s"];
    all.extend_from_slice(args);
    let out = run(BIN, &all).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "lifeline {all:?} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<Value> = serde_json::from_str(&stdout).expect("--json prints a JSON array");
    assert_eq!(reports.len(), 1);
    reports.into_iter().next().expect("one report")
}

#[track_caller]
fn assert_healthy(report: &Value, era: &str, transport: &str, tools: u64) {
    let pretty = serde_json::to_string_pretty(report).unwrap_or_default();
    assert_eq!(report["verdict"], "healthy", "{pretty}");
    assert_eq!(report["era"], era, "{pretty}");
    assert_eq!(report["transport"], transport, "{pretty}");
    assert_eq!(report["tools_count"], tools, "{pretty}");
    assert_eq!(
        report["schema_hash"].as_str().map(str::len),
        Some(64),
        "{pretty}"
    );
}

#[tokio::test]
async fn server_everything_over_streamable_http_sse_and_stdio() {
    let http = Peer::everything(EverythingTransport::StreamableHttp).await;
    let report = check_json(&[&http.url]).await;
    assert_healthy(&report, "legacy", "streamable_http", 13);
    assert_eq!(report["protocol_version"], "2025-11-25");
    assert_eq!(report["server_info"]["name"], "mcp-servers/everything");
    // server-everything keeps sessions forever (~190 KB each) and has no session-count endpoint: the probe's
    // DELETE is proven by the absence of the session_not_closed warning and by the close timing.
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        !warnings.iter().any(|w| w == "session_not_closed"),
        "{report}"
    );
    assert!(report["timings_ms"]["close"].is_number(), "{report}");

    let sse = Peer::everything(EverythingTransport::Sse).await;
    let report = check_json(&[&sse.url]).await;
    assert_healthy(&report, "sse", "http_sse", 13);
    assert!(report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w == "deprecated_transport"));

    let (program, args) = Peer::everything_stdio_command();
    let mut argv = vec!["--stdio", "--"];
    let program = program.to_string_lossy().into_owned();
    argv.push(&program);
    argv.extend(args.iter().map(String::as_str));
    let report = check_json(&argv).await;
    assert_healthy(&report, "legacy", "stdio", 13);
}

#[tokio::test]
async fn python_sdk_2_serves_the_modern_era_in_every_mode_and_keeps_no_session() {
    for mode in [PyServer::Stateful, PyServer::Stateless, PyServer::Json] {
        let peer = Peer::python(mode).await;
        let report = check_json(&[&peer.url]).await;
        assert_healthy(&report, "modern", "streamable_http", 4);
        assert_eq!(report["protocol_version"], "2026-07-28");
        assert!(report["timings_ms"]["discover"].is_number(), "{report}");
        assert!(
            report["timings_ms"].get("ping").is_none(),
            "no ping in the modern era: {report}"
        );
        assert_eq!(
            peer.sessions_active().await,
            Some(0),
            "{mode:?}: a session was left behind"
        );
    }
}

#[tokio::test]
async fn python_sdk_2_stateful_as_a_legacy_session_is_ended() {
    let peer = Peer::python(PyServer::Stateful).await;
    let report = check_json(&[&peer.url, "--era", "legacy"]).await;
    assert_healthy(&report, "legacy", "streamable_http", 4);
    assert_eq!(report["protocol_version"], "2025-11-25");
    assert_eq!(
        peer.sessions_active().await,
        Some(0),
        "the legacy session was left behind"
    );
}

#[tokio::test]
async fn python_sdk_1_legacy_only_over_streamable_http_sse_and_stdio() {
    let peer = Peer::python_legacy(Py1Mode::Stateful).await;
    let report = check_json(&[&peer.url]).await;
    assert_healthy(&report, "legacy", "streamable_http", 4);
    assert_eq!(
        peer.sessions_active().await,
        Some(0),
        "the legacy session was left behind"
    );

    let peer = Peer::python_legacy(Py1Mode::Sse).await;
    let report = check_json(&[&peer.url]).await;
    assert_healthy(&report, "sse", "http_sse", 4);
    // The probe closed the stream itself (its `close` phase), and the server sees it closed. The server notices a
    // closed SSE connection on its own schedule (unlike a DELETE, answered after the session is gone), so the
    // count is awaited, briefly.
    assert!(
        report["timings_ms"]["close"].is_number(),
        "the probe ends the SSE session: {report}"
    );
    lifeline_testkit::assert_eventually!(
        peer.sessions_active().await == Some(0),
        patience = Duration::from_secs(5),
        "the SSE stream was left open"
    );

    let (program, args) = Peer::python_legacy_stdio_command();
    let program = program.to_string_lossy().into_owned();
    let mut argv = vec!["--stdio", "--", program.as_str()];
    argv.extend(args.iter().map(String::as_str));
    assert_healthy(&check_json(&argv).await, "legacy", "stdio", 4);
}

#[tokio::test]
async fn python_sdk_2_over_stdio_is_modern() {
    let (program, args) = Peer::python_stdio_command();
    let program = program.to_string_lossy().into_owned();
    let mut argv = vec!["--stdio", "--", program.as_str()];
    argv.extend(args.iter().map(String::as_str));
    let report = check_json(&argv).await;
    assert_healthy(&report, "modern", "stdio", 4);
}

/// Runs the conformance suite `which`'s client `scenario` with `command` (the scenario server's URL appended) and
/// returns its exit code and its whole output.
async fn conformance_client(
    which: Conformance,
    command: &str,
    scenario: &str,
    timeout_ms: u32,
) -> (Option<i32>, String) {
    let (node, mut args) = peers::conformance_command(which);
    let timeout = timeout_ms.to_string();
    args.extend(
        [
            "client",
            "--command",
            command,
            "--scenario",
            scenario,
            "--timeout",
            &timeout,
        ]
        .into_iter()
        .map(str::to_owned),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&node.to_string_lossy(), &argv).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The official conformance suite's client scenario `initialize` runs `lifeline check <url>` against its own
/// scenario server and checks the initialize request. A client that sends nothing scores `Passed: 0/0`, so the
/// test asserts the exact count, not just the exit code.
#[tokio::test]
async fn conformance_client_initialize_scenario_passes() {
    // `exec` so the suite's timeout signal reaches lifeline itself, not only the shell around it.
    let command = format!("exec {BIN} check");
    let (code, text) =
        conformance_client(Conformance::Stable, &command, "initialize", 30_000).await;
    assert_eq!(code, Some(0), "conformance failed:\n{text}");
    assert!(
        text.contains("Passed: 1/1"),
        "expected exactly one passing check:\n{text}"
    );
    assert!(text.contains("OVERALL: PASSED"), "{text}");
}

/// The official conformance suite's OAuth client-credentials scenarios (the `io.modelcontextprotocol/
/// oauth-client-credentials` extension: `client_secret_basic`, and `private_key_jwt` with an ES256 key) run
/// `lifeline check` against their own resource and authorization servers: discovery from the 401, the token
/// request, the assertion's claims (`aud` = the issuer), the bearer token on every request. Every check must pass.
#[tokio::test]
async fn conformance_client_credentials_scenarios_pass() {
    let script = peers::peers_sources().join("conformance_oauth_client.sh");
    let command = format!("sh {} {BIN}", script.display());
    for scenario in [
        "auth/client-credentials-basic",
        "auth/client-credentials-jwt",
    ] {
        let (code, text) = conformance_client(Conformance::Next, &command, scenario, 60_000).await;
        assert_eq!(code, Some(0), "{scenario} failed:\n{text}");
        assert!(text.contains(" 0 failed"), "{scenario}:\n{text}");
        assert!(text.contains("OVERALL: PASSED"), "{scenario}:\n{text}");
        assert!(
            text.contains("valid-bearer-token"),
            "{scenario}: the token reached the server:\n{text}"
        );
    }
}

/// `lifeline check` logs in with OAuth client credentials like a spec client: discovery from the real 401 of the
/// Python SDK's resource server, a token from the real authorization server (oidc-provider), the secret from a
/// file and never printed; an expiring secret is degraded with the days left; a wrong secret is `auth_failed`,
/// exit 1; OAuth flags without a client id are a usage error.
#[tokio::test]
async fn oauth_client_credentials_log_in() {
    use lifeline_testkit::peers::oidc::{
        AuthServer, AuthServerConfig, ClientConfig, PyAuthConfig, ResourceConfig,
    };
    let secret = "s3cret-client-value";
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("probe", secret, "mcp:read"))
            .resource(ResourceConfig::any_loopback("mcp:read")),
    )
    .await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write the secret");
    let secret_file = secret_file.to_string_lossy().into_owned();
    let login = [
        "--oauth-client-id",
        "probe",
        "--oauth-client-secret-file",
        &secret_file,
    ];

    let report = check_json(&[&[peer.url.as_str()][..], &login].concat()).await;
    assert_eq!(report["verdict"], "healthy", "{report}");
    assert!(report["timings_ms"]["token"].is_number(), "{report}");
    assert!(!report.to_string().contains(secret));

    let soon = (std::time::SystemTime::now() + Duration::from_secs(3 * 86_400 + 3_600))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let expiring = ["--oauth-client-secret-expires-at", soon.as_str()];
    let report = check_json(&[&[peer.url.as_str()][..], &login, &expiring].concat()).await;
    assert_eq!(
        (report["verdict"].as_str(), report["reason"].as_str()),
        (Some("degraded"), Some("credential_expiring")),
        "{report}"
    );
    assert_eq!(report["credentials"][0]["kind"], "client_secret");
    assert_eq!(report["credentials"][0]["days_left"], 3);

    std::fs::write(dir.path().join("wrong"), "not-the-secret\n").expect("write");
    let wrong = dir.path().join("wrong").to_string_lossy().into_owned();
    let out = run(
        BIN,
        &[
            "check",
            "--json",
            "--timeout",
            "60s",
            &peer.url,
            "--oauth-client-id",
            "probe",
            "--oauth-client-secret-file",
            &wrong,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let reports: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(reports[0]["reason"], "auth_failed", "{reports}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not-the-secret"));

    let out = run(
        BIN,
        &["check", &peer.url, "--oauth-client-secret-file", &wrong],
    )
    .await;
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --oauth-client-id"));
}

/// `--era` through the gateway's era bridge (issue 16; docs/gateway-federation.md §Eras): `check --era modern`
/// speaks 2026-07-28 to a federated endpoint whose server is legacy-only (server-everything), and `check --era
/// legacy` speaks `initialize` to one whose server the gateway speaks to as modern (the Python SDK 2.x server,
/// stateless, `era: modern`). Both are healthy with the server's own tool count; the legacy probe's session is
/// ended (its DELETE answered), and the stateless server is left with none.
#[tokio::test]
async fn check_forces_either_era_through_the_gateway_bridge() {
    use crate::gateway_harness::{GatewayUnderTest, Gw};
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let modern = Peer::python(PyServer::Stateless).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "servers:\n- {{name: legacy, url: {}, era: legacy, health_interval: 300ms}}\n\
             - {{name: modern, url: {}, era: modern, health_interval: 300ms}}\n",
            everything.url, modern.url
        ),
    )
    .expect("config");
    let gw = Gw::start_with(&["--config", &config.to_string_lossy()]).await;
    gw.wait_ready(Duration::from_secs(60)).await;

    let to_legacy = format!("{}/servers/legacy/mcp", gw.base);
    let report = check_json(&[&to_legacy, "--era", "modern"]).await;
    assert_healthy(&report, "modern", "streamable_http", 13);
    assert_eq!(report["protocol_version"], "2026-07-28");
    assert_eq!(report["server_info"]["name"], "lifeline-federation/legacy");

    let to_modern = format!("{}/servers/modern/mcp", gw.base);
    let report = check_json(&[&to_modern, "--era", "legacy"]).await;
    assert_healthy(&report, "legacy", "streamable_http", 4);
    assert_eq!(report["protocol_version"], "2025-11-25");
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        !warnings.iter().any(|w| w == "session_not_closed"),
        "{report}"
    );
    assert_eq!(modern.sessions_active().await, Some(0));
}
