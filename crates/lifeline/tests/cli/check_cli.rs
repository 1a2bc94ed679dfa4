//! `lifeline check` as a CI job runs it: the built binary, its stdout/stderr, its JSON and its exit code.
//!
//! The first group needs no server (usage errors exit 64, unreadable files exit 2, `--help`). The second probes
//! the testkit's fake servers on 127.0.0.1 and needs the probe engine.

use lifeline_testkit::assert_eventually;
use lifeline_testkit::cli::{assert_exit, stderr, stdout};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use lifeline_mcp::schema::schema_hash;
use lifeline_testkit::fakes::{
    echo_tool, numbered_tools, FakeKind, FakeServer, HealthyOpts, ModernOpts, TlsKind,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
/// Bound on one run of the binary; a probe is bounded by `--timeout` (10 s by default) plus cleanup.
const RUN_PATIENCE: Duration = Duration::from_secs(60);

/// Runs `lifeline check ARGS` in its own process group, killed if it outlives [`RUN_PATIENCE`]. The bearer
/// token variable is removed unless `env` sets it, and colour is off.
async fn check_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("check")
        .args(args)
        .env_remove("LIFELINE_BEARER_TOKEN")
        .env_remove("LIFELINE_OAUTH_CLIENT_SECRET")
        .env_remove("LIFELINE_OAUTH_REFRESH_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawning the lifeline binary");
    tokio::time::timeout(RUN_PATIENCE, child.wait_with_output())
        .await
        .expect("lifeline check finished in time")
        .expect("collecting lifeline's output")
}

pub(crate) async fn check(args: &[&str]) -> Output {
    check_with_env(args, &[]).await
}

pub(crate) fn json_reports(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\n{}",
            stdout(out),
            stderr(out)
        )
    });
    v.as_array().expect("--json prints an array").clone()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------- usage (64), operational (2), help

#[tokio::test]
async fn usage_errors_exit_64_with_a_helpful_message() {
    let cases: [(&[&str], &str); 11] = [
        (&[], "no target"),
        (
            &["http://127.0.0.1:9/mcp", "--stdio", "--", "true"],
            "not both",
        ),
        (&["--stdio"], "needs the server's command"),
        (&["--", "npx", "server"], "add --stdio"),
        (
            &[
                "http://127.0.0.1:9/a",
                "http://127.0.0.1:9/b",
                "--snapshot",
                "s.json",
            ],
            "one server's tools",
        ),
        (
            &[
                "http://127.0.0.1:9/a",
                "http://127.0.0.1:9/b",
                "--update-snapshot",
                "s.json",
            ],
            "one server's tools",
        ),
        (
            &[
                "http://127.0.0.1:9/mcp",
                "--call",
                "echo",
                "--args",
                "{nope",
            ],
            "--args is not valid JSON",
        ),
        (
            &[
                "http://127.0.0.1:9/mcp",
                "--call",
                "echo",
                "--args",
                "[1, 2]",
            ],
            "must be a JSON object",
        ),
        (&["ftp://127.0.0.1/mcp"], "http:// or https://"),
        (&["http://127.0.0.1:9/mcp", "--timeout", "10"], "unit"),
        (&["http://127.0.0.1:9/mcp", "--env", "A=b"], "need --stdio"),
    ];
    for (args, needle) in cases {
        let out = check(args).await;
        assert_exit(&out, 64);
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: {needle:?} not in\n{}",
            stderr(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed to stdout: {}",
            stdout(&out)
        );
    }
}

#[tokio::test]
async fn a_malformed_header_is_a_usage_error_that_never_echoes_the_value() {
    for header in [
        "Bearer s3cret-token-value",
        "Bad Name: s3cret-token-value",
        "X-Key: s3cret-token-value\nX: y",
    ] {
        let out = check(&["http://127.0.0.1:9/mcp", "--header", header]).await;
        assert_exit(&out, 64);
        let err = stderr(&out);
        assert!(err.contains("--header #1"), "{err}");
        assert!(!err.contains("s3cret"), "the header value leaked: {err}");
    }
}

#[tokio::test]
async fn help_teaches_the_flags_exit_codes_and_docs() {
    let out = check(&["--help"]).await;
    assert_exit(&out, 0);
    let help = stdout(&out);
    for needle in [
        "--stdio",
        "--json",
        "--junit",
        "--snapshot",
        "--update-snapshot",
        "--fail-on",
        "[default: unhealthy]",
        "--header",
        "--bearer-token-file",
        "LIFELINE_BEARER_TOKEN",
        "--call",
        "--args",
        "[default: 10s]",
        "--connect-timeout",
        "--tls-timeout",
        "--step-timeout",
        "--cert-warning-days",
        "[default: 14]",
        "--slow",
        "--ca-file",
        "--max-tool-pages",
        "--no-origin-check",
        "--era",
        "--concurrency",
        "--env",
        "--inherit-env",
        "Exit codes:",
        "64  usage error",
        "docs/ci-gate.md",
        "docs/check-json.md",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[tokio::test]
async fn an_unreadable_snapshot_is_an_operational_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("missing.json")
        .to_string_lossy()
        .into_owned();
    let garbage = write(dir.path(), "garbage.json", "{\"hash\": \"abc\"}");
    let newer = write(dir.path(), "newer.json", "{\"format\": 99, \"tools\": []}");
    for (path, needle) in [
        (&missing, "--update-snapshot"),
        (&garbage, "not a Lifeline tool snapshot"),
        (&newer, "format 99 is not supported"),
    ] {
        let out = check(&["http://127.0.0.1:9/mcp", "--snapshot", path]).await;
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(needle),
            "{needle:?} not in {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "no probe runs: {}", stdout(&out));
    }
}

#[tokio::test]
async fn unreadable_token_and_ca_files_are_operational_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").to_string_lossy().into_owned();
    let empty = write(dir.path(), "empty", "\n");
    let not_pem = write(dir.path(), "ca.pem", "hello");
    for args in [
        ["--bearer-token-file", missing.as_str()],
        ["--bearer-token-file", empty.as_str()],
        ["--ca-file", not_pem.as_str()],
    ] {
        let out = check(&["http://127.0.0.1:9/mcp", args[0], args[1]]).await;
        assert_exit(&out, 2);
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_and_exits_1() {
    let fake = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let out = check(&[&fake.url()]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.starts_with("unhealthy  http://127.0.0.1:"), "{text}");
    assert!(text.contains("  reason     connect_refused"), "{text}");

    let out = check(&[&fake.url(), "--json"]).await;
    assert_exit(&out, 1);
    let reports = json_reports(&out);
    assert_eq!(reports[0]["verdict"], "unhealthy");
    assert_eq!(reports[0]["reason"], "connect_refused");
}

#[tokio::test]
async fn url_credentials_are_redacted_everywhere() {
    let fake = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let url = format!("http://probe:hunter2-secret@{}/mcp", fake.addr());
    for format in [&[][..], &["--json"][..]] {
        let out = check(&[&[url.as_str()][..], format].concat()).await;
        assert_exit(&out, 1);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !all.contains("hunter2-secret") && !all.contains("probe:"),
            "{all}"
        );
        assert!(
            all.contains(&format!("http://<redacted>@{}/mcp", fake.addr())),
            "{all}"
        );
    }
}

#[tokio::test]
async fn a_stdio_server_that_exits_is_unhealthy() {
    let out = check(&[
        "--stdio",
        "--env",
        "API_KEY=sk-test-0123456789",
        "--",
        "false",
    ])
    .await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.starts_with("unhealthy  stdio: false\n"), "{text}");
    assert!(!text.contains("sk-test-0123456789"), "{text}");
}

// ---------------------------------------------------------------- against fake servers (needs the engine)

#[tokio::test]
async fn a_healthy_legacy_server_passes_and_keeps_no_session() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let out = check(&[&fake.url()]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("healthy  {}\n", fake.url())),
        "{text}"
    );
    assert!(
        text.contains("  era        legacy over streamable_http, protocol 2025-11-25\n"),
        "{text}"
    );
    assert!(text.contains("  tools      1, schema "), "{text}");
    assert!(text.contains(" · total "), "{text}");

    let out = check(&[&fake.url(), "--json"]).await;
    assert_exit(&out, 0);
    let r = &json_reports(&out)[0];
    assert_eq!(r["url"], fake.url());
    assert_eq!(r["verdict"], "healthy");
    assert_eq!(r["reason"], Value::Null);
    assert_eq!(r["era"], "legacy");
    assert_eq!(r["transport"], "streamable_http");
    assert_eq!(r["tools_count"], 1);
    assert_eq!(r["schema_hash"], schema_hash(&[echo_tool()]));
    assert!(r["timings_ms"]["total"].as_f64().is_some(), "{r}");
    assert_eq!(r["tls"], Value::Null);
    assert_eventually!(
        fake.sessions_open() == 0,
        patience = Duration::from_secs(5),
        "the probe left {} session(s) open",
        fake.sessions_open()
    );
}

#[tokio::test]
async fn a_modern_server_is_reported_as_modern() {
    let fake = FakeServer::start(FakeKind::Modern(ModernOpts::default()))
        .await
        .unwrap();
    let out = check(&[&fake.url(), "--json"]).await;
    assert_exit(&out, 0);
    let r = &json_reports(&out)[0];
    assert_eq!(
        (r["verdict"].as_str(), r["era"].as_str()),
        (Some("healthy"), Some("modern")),
        "{r}"
    );
    assert_eq!(r["tools_count"], 1);
}

#[tokio::test]
async fn an_http_sse_server_is_healthy_with_a_deprecation_warning() {
    let fake = FakeServer::start(FakeKind::LegacySse).await.unwrap();
    let out = check(&[&fake.url(), "--json"]).await;
    assert_exit(&out, 0);
    let r = &json_reports(&out)[0];
    assert_eq!(
        (r["era"].as_str(), r["transport"].as_str()),
        (Some("sse"), Some("http_sse")),
        "{r}"
    );
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .contains(&json!("deprecated_transport")),
        "{r}"
    );
}

#[tokio::test]
async fn several_targets_are_reported_in_input_order() {
    let healthy = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let closed = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let html = FakeServer::start(FakeKind::Html200).await.unwrap();
    let urls = [closed.url(), healthy.url(), html.url()];
    let out = check(&[&urls[0], &urls[1], &urls[2], "--json", "--concurrency", "2"]).await;
    assert_exit(&out, 1);
    let reports = json_reports(&out);
    let got: Vec<(&str, &str)> = reports
        .iter()
        .map(|r| (r["url"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (urls[0].as_str(), "unhealthy"),
            (urls[1].as_str(), "healthy"),
            (urls[2].as_str(), "unhealthy")
        ]
    );
    assert_eq!(reports[2]["reason"], "not_mcp");

    let out = check(&[&urls[0], &urls[1], &urls[2]]).await;
    assert_exit(&out, 1);
    assert!(
        stdout(&out).ends_with("\n2 of 3 targets fail: 1 healthy, 2 unhealthy\n"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn snapshot_workflow_fails_only_on_breaking_drift() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir
        .path()
        .join("tools.snapshot.json")
        .to_string_lossy()
        .into_owned();
    let original = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();

    // Record.
    let out = check(&[&original.url(), "--update-snapshot", &snap]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("  snapshot   wrote "),
        "{}",
        stdout(&out)
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    assert_eq!(file["format"], 1);
    assert_eq!(file["schema_hash"], schema_hash(&[echo_tool()]));

    // Same tools: no drift.
    let out = check(&[&original.url(), "--snapshot", &snap]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("  drift      none: the tools match "),
        "{}",
        stdout(&out)
    );

    // A new tool: additive, passes.
    let mut tools = vec![echo_tool()];
    tools.extend(numbered_tools(1));
    let grown = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tools,
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let out = check(&[&grown.url(), "--snapshot", &snap, "--json"]).await;
    assert_exit(&out, 0);
    let drift = &json_reports(&out)[0]["drift"];
    assert_eq!(
        (drift["compared"].as_bool(), drift["breaking"].as_bool()),
        (Some(true), Some(false)),
        "{drift}"
    );
    assert_eq!(drift["changes"][0]["kind"], "additive");

    // echo removed: breaking, fails.
    let shrunk = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tools: numbered_tools(1),
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let out = check(&[&shrunk.url(), "--snapshot", &snap]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.starts_with("healthy  "),
        "the verdict stays healthy: {text}"
    );
    assert!(text.contains("breaking  echo: tool removed"), "{text}");

    // A failed probe never overwrites a snapshot.
    let closed = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let before = std::fs::read_to_string(&snap).unwrap();
    let out = check(&[&closed.url(), "--update-snapshot", &snap]).await;
    assert_exit(&out, 1);
    assert_eq!(std::fs::read_to_string(&snap).unwrap(), before);
}

#[tokio::test]
async fn auth_required_exits_1_and_tokens_are_never_printed() {
    let token = "tok-0123456789-secret";
    let fake = FakeServer::start(FakeKind::AuthRequired {
        token: Some(token.to_owned()),
    })
    .await
    .unwrap();

    let out = check(&[&fake.url(), "--json"]).await;
    assert_exit(&out, 1);
    let r = &json_reports(&out)[0];
    assert_eq!(
        (r["verdict"].as_str(), r["reason"].as_str()),
        (Some("auth_required"), Some("auth_required"))
    );
    assert!(
        r["auth"]["resource_metadata_url"]
            .as_str()
            .unwrap_or_default()
            .contains("/.well-known/oauth-protected-resource"),
        "{r}"
    );

    let wrong = "wrong-token-abcdef-123";
    let out = check_with_env(
        &[&fake.url(), "--json"],
        &[("LIFELINE_BEARER_TOKEN", wrong)],
    )
    .await;
    assert_exit(&out, 1);
    let out_text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out_text.contains(wrong), "the token leaked:\n{out_text}");
    // A credential was presented and rejected: auth_failed, not auth_required.
    let r = &json_reports(&out)[0];
    assert_eq!(
        (r["verdict"].as_str(), r["reason"].as_str()),
        (Some("unhealthy"), Some("auth_failed"))
    );

    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", &format!("{token}\n"));
    let out = check(&[&fake.url(), "--bearer-token-file", &token_file]).await;
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains(token) && !stderr(&out).contains(token));

    let header = format!("Authorization: Bearer {token}");
    let out = check(&[&fake.url(), "--header", &header, "--json"]).await;
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains(token) && !stderr(&out).contains(token));
}

#[tokio::test]
async fn a_tool_error_is_degraded_and_fails_only_with_fail_on_degraded() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tool_is_error: true,
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let url = fake.url();
    let call = ["--call", "echo", "--args", r#"{"message":"hi"}"#];
    let out = check(&[&[url.as_str()][..], &call].concat()).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("degraded  "), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("  reason     tool_error"),
        "{}",
        stdout(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml").to_string_lossy().into_owned();
    let args = [
        &[url.as_str()][..],
        &call,
        &["--fail-on", "degraded", "--junit", &junit],
    ]
    .concat();
    let out = check(&args).await;
    assert_exit(&out, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
    assert!(xml.contains(r#"type="tool_error""#), "{xml}");
}

#[tokio::test]
async fn junit_has_one_testcase_per_target() {
    let healthy = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let closed = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml").to_string_lossy().into_owned();
    let out = check(&[&healthy.url(), &closed.url(), "--junit", &junit]).await;
    assert_exit(&out, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(xml.contains(r#"type="connect_refused""#), "{xml}");
}

#[tokio::test]
async fn tls_is_shown_and_a_private_ca_can_be_trusted() {
    let fake = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tls: Some(TlsKind::CaSigned { days_left: 90 }),
        ..HealthyOpts::default()
    }))
    .await
    .unwrap();
    let out = check(&[&fake.url()]).await;
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("  reason     tls_failed"),
        "{}",
        stdout(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", fake.ca_pem().unwrap());
    let out = check(&[&fake.url(), "--ca-file", &ca]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("  tls        valid"), "{text}");
    assert!(text.contains("days left)"), "{text}");
}

/// The OAuth flags' usage mistakes exit 64 before anything is probed or read, and never echo a secret.
#[tokio::test]
async fn oauth_flag_mistakes_are_usage_errors() {
    let url = "http://127.0.0.1:9/mcp";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--oauth-scope", "a"],
            "--oauth-scope needs --oauth-client-id",
        ),
        (
            &["--oauth-client-id", "p"],
            "--oauth-client-id needs a credential",
        ),
        (
            &[
                "--oauth-client-id",
                "p",
                "--oauth-client-secret-file",
                "/x",
                "--oauth-private-key-file",
                "/k",
            ],
            "not both",
        ),
        (
            &[
                "--oauth-client-id",
                "p",
                "--oauth-client-secret-file",
                "/x",
                "-H",
                "Authorization: Bearer s3cret-hdr",
            ],
            "sets the Authorization header",
        ),
        (
            &[
                "--oauth-client-id",
                "p",
                "--oauth-client-secret-file",
                "/x",
                "--oauth-token-url",
                "ftp://as/token",
            ],
            "--oauth-token-url must be an http",
        ),
        (
            &[
                "--oauth-client-id",
                "p",
                "--oauth-client-secret-file",
                "/x",
                "--oauth-client-secret-expires-at",
                "soon",
            ],
            "--oauth-client-secret-expires-at: \"soon\" is not a date",
        ),
    ];
    for (args, expected) in cases {
        let out = check(&[&[url][..], args].concat()).await;
        assert_exit(&out, 64);
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("s3cret-hdr"), "{err}");
    }
}
