//! `lifeline gateway` configuration: `--help` documents every flag with its default and variable, `--check-config`
//! validates and prints the effective settings, precedence is defaults < file < environment < flags, and bad
//! configuration exits 64 naming the field.

use std::process::{Command, Output};

use serde_json::Value;

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    cmd.arg("gateway").args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIFELINE_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the lifeline binary runs")
}

fn effective(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .strip_prefix("config OK\n")
        .unwrap_or_else(|| panic!("--check-config starts with \"config OK\": {stdout}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("JSON ({e}): {stdout}"))
}

#[test]
fn help_documents_every_flag_with_default_and_variable() {
    let out = gateway(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--upstream",
        "--listen",
        "--admin-listen",
        "--allowed-origin",
        "--allowed-host",
        "--max-body-bytes",
        "--upstream-timeout",
        "--sse-keepalive",
        "--session-idle-ttl",
        "--max-sessions",
        "--forward-authorization",
        "--upstream-header",
        "--upstream-header-file",
        "--live-stall",
        "--ready-ttl",
        "--drain-delay",
        "--drain-timeout",
        "--config",
        "--check-config",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(
        help.contains("[default: 5s]")
            && help.contains("[default: 25s]")
            && help.contains("[default: 30m]")
    );
    assert!(help.contains("LIFELINE_DRAIN_DELAY") && help.contains("LIFELINE_UPSTREAM"));
    assert!(!help.contains("debug-stall"), "the test hook stays hidden");
}

#[test]
fn precedence_is_defaults_then_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = dir.path().join("gateway.yaml");
    std::fs::write(
        &yaml,
        "upstream: http://127.0.0.1:3000/mcp\ndrain_delay: 2s\nmax_sessions: 7\nready_ttl: 9s\nupstream_headers:\n  - 'X-Api-Key: s3cret'\n",
    )
    .expect("write");
    let yaml = yaml.to_string_lossy().into_owned();

    let cfg = effective(&gateway(&["--config", &yaml, "--check-config"], &[]));
    assert_eq!(cfg["drain_delay"], "2s");
    assert_eq!(cfg["max_sessions"], 7);
    assert_eq!(cfg["drain_timeout"], "25s", "default");
    assert_eq!(cfg["upstream_headers"][0], "x-api-key: <redacted>");
    assert!(
        !String::from_utf8_lossy(&gateway(&["--config", &yaml, "--check-config"], &[]).stdout)
            .contains("s3cret")
    );

    let env = [("LIFELINE_MAX_SESSIONS", "8"), ("LIFELINE_READY_TTL", "3s")];
    let cfg = effective(&gateway(&["--config", &yaml, "--check-config"], &env));
    assert_eq!(cfg["max_sessions"], 8, "environment beats the file");
    assert_eq!(cfg["ready_ttl"], "3s");

    let cfg = effective(&gateway(
        &["--config", &yaml, "--check-config", "--max-sessions", "9"],
        &env,
    ));
    assert_eq!(cfg["max_sessions"], 9, "flags beat the environment");
    assert_eq!(cfg["ready_ttl"], "3s");

    let toml = dir.path().join("gateway.toml");
    std::fs::write(&toml, "upstream = \"http://127.0.0.1:3000/sse\"\nallowed_origins = [\"https://app.example.com\"]\n")
        .expect("write");
    let cfg = effective(&gateway(
        &["--config", &toml.to_string_lossy(), "--check-config"],
        &[],
    ));
    assert_eq!(cfg["upstream_sse"], "http://127.0.0.1:3000/sse");
    assert_eq!(cfg["allowed_origins"][0], "https://app.example.com");

    let cfg = effective(&gateway(
        &["--check-config"],
        &[
            ("LIFELINE_UPSTREAM", "http://127.0.0.1:1/mcp"),
            (
                "LIFELINE_ALLOWED_ORIGINS",
                "https://a.example,https://b.example",
            ),
        ],
    ));
    assert_eq!(cfg["allowed_origins"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bad_configuration_exits_64_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.yaml");
    std::fs::write(
        &bogus,
        "upstream: http://127.0.0.1:3000/mcp\nbogus_key: 1\n",
    )
    .expect("write");
    // (arguments, environment, what stderr must name)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec!["--check-config".into()], vec![], "upstream: required"),
        (
            vec![
                "--config".into(),
                bogus.to_string_lossy().into_owned(),
                "--check-config".into(),
            ],
            vec![],
            "bogus_key",
        ),
        (
            vec![
                "--upstream".into(),
                "http://x/mcp".into(),
                "--check-config".into(),
            ],
            vec![("LIFELINE_DRAIN_DELAY", "soon")],
            "drain_delay",
        ),
        (
            vec![
                "--upstream".into(),
                "http://x/mcp".into(),
                "--drain-delay".into(),
                "30s".into(),
                "--check-config".into(),
            ],
            vec![],
            "drain_timeout",
        ),
        (
            vec![
                "--upstream".into(),
                "http://x/mcp".into(),
                "--upstream-header".into(),
                "nocolon".into(),
            ],
            vec![],
            "upstream_headers[0]",
        ),
    ];
    for (args, env, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gateway(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
    }
}

#[test]
fn a_command_after_double_dash_selects_the_stdio_upstream() {
    let out = gateway(&["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--stdio-mode",
        "--pool-size",
        "--env <KEY=VALUE>",
        "--env-file",
        "--inherit-env",
        "[CMD]...",
        "LIFELINE_STDIO_MODE",
        "[default: session]",
        "[default: 4]",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("child.env");
    std::fs::write(&env_file, "# secrets\nAPI_KEY=s3cret\n").expect("write");
    let yaml = dir.path().join("gateway.yaml");
    std::fs::write(&yaml, "command: [python, server.py]\nstdio_mode: session\n").expect("write");

    // From flags, the command after --.
    let cfg = effective(&gateway(
        &[
            "--env",
            "MODE=prod",
            "--env-file",
            &env_file.to_string_lossy(),
            "--check-config",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-everything",
        ],
        &[],
    ));
    assert_eq!(
        cfg["command"],
        serde_json::json!(["npx", "-y", "@modelcontextprotocol/server-everything"])
    );
    assert_eq!(cfg["stdio_mode"], "session");
    assert_eq!(cfg["pool_size"], 4);
    assert_eq!(cfg["inherit_env"], false);
    assert_eq!(
        cfg["env"],
        serde_json::json!(["API_KEY=<redacted>", "MODE=<redacted>"])
    );
    assert!(cfg["upstream"].is_null());
    assert!(!cfg.to_string().contains("s3cret"));

    // From the config file, with the environment layered on top.
    let cfg = effective(&gateway(
        &["--config", &yaml.to_string_lossy(), "--check-config"],
        &[("LIFELINE_INHERIT_ENV", "true")],
    ));
    assert_eq!(cfg["command"], serde_json::json!(["python", "server.py"]));
    assert_eq!(cfg["inherit_env"], true);

    // Errors name the field and exit 64.
    for (args, needle) in [
        (
            vec![
                "--upstream",
                "http://x/mcp",
                "--check-config",
                "--",
                "server",
            ],
            "command: a stdio command (after --) and upstream are mutually exclusive",
        ),
        (
            vec!["--stdio-mode", "fork", "--check-config", "--", "server"],
            "stdio_mode",
        ),
        (
            vec![
                "--upstream",
                "http://x/mcp",
                "--inherit-env",
                "--check-config",
            ],
            "inherit_env: only applies to a stdio upstream",
        ),
        (
            vec!["--env", "NOEQUALS", "--check-config", "--", "server"],
            "env[0]",
        ),
    ] {
        let out = gateway(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
    }
}

/// Regression: a port in use printed the OS error twice (`Address already in use (os error 98): Address already
/// in use (os error 98)`) and said nothing about what to do. Now: once, with the address, the setting and a hint;
/// exit 2 (the configuration is valid, the machine is not ready for it).
#[test]
fn a_port_in_use_is_reported_once_with_a_hint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = gateway(
        &[
            "--upstream",
            "http://127.0.0.1:9/mcp",
            "--listen",
            &addr,
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line: {stderr}"));
    assert_eq!(
        line.matches("os error").count(),
        1,
        "the OS error once: {line}"
    );
    assert!(
        line.contains(&format!("cannot listen on {addr} (listen)")),
        "{line}"
    );
    assert!(line.contains("--listen"), "names the flag: {line}");
    assert!(line.contains("another process"), "says what to do: {line}");
}

#[test]
fn every_problem_is_reported_one_a_line() {
    let out = gateway(
        &[
            "--listen",
            "nowhere",
            "--drain-delay",
            "soon",
            "--check-config",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for line in [
        "upstream: required",
        "listen: \"nowhere\" is not an address",
        "drain_delay: \"soon\" is not a duration",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(line)),
            "{line:?} on its own line in {stderr}"
        );
    }
}

#[test]
fn a_pool_is_configured_in_the_file_or_with_repeated_flags() {
    let cfg = effective(&gateway(
        &[
            "--upstream",
            "http://127.0.0.1:3001/mcp",
            "--upstream",
            "http://127.0.0.1:3002/mcp",
            "--check-config",
        ],
        &[],
    ));
    assert_eq!(cfg["upstreams"][1]["url"], "http://127.0.0.1:3002/mcp");
    assert_eq!(cfg["upstreams"][1]["weight"], 1);
    assert_eq!(cfg["upstreams"][1]["group"], "default");

    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = dir.path().join("pool.yaml");
    std::fs::write(
        &yaml,
        "upstreams:\n  - url: http://mcp-server-headless.mcp.svc.cluster.local:3000/mcp\n    discovery: dns\n    group: blue\n    weight: 2\n    ready_port: 9090\nupstream_health_interval: 2s\n",
    )
    .expect("write");
    let yaml = yaml.to_string_lossy().into_owned();
    let cfg = effective(&gateway(&["--config", &yaml, "--check-config"], &[]));
    assert_eq!(cfg["upstreams"][0]["discovery"], "dns");
    assert_eq!(cfg["upstreams"][0]["ready_port"], 9090);
    assert_eq!(cfg["upstreams"][0]["weight"], 2);
    assert_eq!(cfg["upstream_health_interval"], "2s");

    let out = gateway(
        &[
            "--config",
            &yaml,
            "--upstream",
            "http://a/mcp",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("upstreams:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A sidecar's ready_port: a port, and only for a pool (a single endpoint is never checked in the background).
    for (body, field) in [
        (
            "upstreams:\n  - url: http://a:1/mcp\n  - url: http://b:1/mcp\n    ready_port: 0\n",
            "upstreams[1].ready_port: must be between 1 and 65535",
        ),
        (
            "upstreams:\n  - url: http://a:1/mcp\n    ready_port: 9090\n",
            "upstreams[0].ready_port: only applies to a pool",
        ),
        (
            "upstreams:\n  - url: http://a:1/mcp\n    ready_port: 70000\n",
            "ready_port",
        ),
    ] {
        std::fs::write(dir.path().join("bad.yaml"), body).expect("write");
        let bad = dir.path().join("bad.yaml").to_string_lossy().into_owned();
        let out = gateway(&["--config", &bad, "--check-config"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{body}: {stderr}");
        assert!(stderr.contains(field), "{body}: {stderr}");
    }
}

/// Issue 12: `--check-config` validates the whole `auth:` block, reading every file it names, and prints it with
/// the secrets redacted (the introspection client secret, the API key hashes).
#[test]
fn the_auth_block_is_checked_with_its_files_and_printed_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("introspection");
    let keys = dir.path().join("api-keys");
    std::fs::write(&secret, "intro-s3cret\n").expect("write");
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    std::fs::write(&keys, format!("ci sha256:{hash} mcp:read\n")).expect("write");
    let yaml = |secret_file: &str| {
        format!(
            "upstream: http://127.0.0.1:3000/mcp\nauth:\n  resource: https://mcp.example.com/mcp\n  jwt:\n    - issuer: https://login.example.com\n  introspection:\n    - url: https://login.example.com/introspect\n      client_id: lifeline-gateway\n      client_secret_file: {secret_file}\n  api_keys_file: {}\n  tools:\n    - match: \"delete_*\"\n      require_scopes: [mcp:write]\n  rate_limit: {{ per_principal: 20/s, burst: 40 }}\n",
            keys.display()
        )
    };
    let file = dir.path().join("gateway.yaml");
    std::fs::write(&file, yaml(&secret.to_string_lossy())).expect("write");
    let out = gateway(
        &["--config", &file.to_string_lossy(), "--check-config"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let cfg = effective(&out);
    assert_eq!(cfg["auth"]["resource"], "https://mcp.example.com/mcp");
    assert_eq!(
        cfg["auth"]["introspection"][0]["client_secret"],
        "<redacted>"
    );
    assert_eq!(cfg["auth"]["api_keys"], 1);
    assert_eq!(cfg["auth"]["tools"][0]["match"], "delete_*");
    assert!(
        !stdout.contains("intro-s3cret") && !stdout.contains(hash),
        "{stdout}"
    );

    // A file that does not exist is a configuration error naming the field.
    std::fs::write(&file, yaml("/nonexistent/introspection")).expect("write");
    let out = gateway(
        &["--config", &file.to_string_lossy(), "--check-config"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("auth.introspection[0].client_secret_file: cannot read"),
        "{stderr}"
    );
    // Token passthrough cannot be switched on next to auth.
    std::fs::write(&file, yaml(&secret.to_string_lossy())).expect("write");
    let out = gateway(
        &[
            "--config",
            &file.to_string_lossy(),
            "--forward-authorization",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forward_authorization"));
}
