//! `lifeline monitor` as a user runs it: `--check-config` on every example and on broken files (exit codes and
//! field paths), and the quick start serving its status page, API and metrics, then stopping cleanly on SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeline_testkit::assert_eventually;

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_env(cmd: &mut Command) -> &mut Command {
    for var in [
        "EVERYTHING_TOKEN",
        "SLACK_URL",
        "PD_KEY",
        "API_TOKEN",
        "AUDIT_TOKEN",
        "OPSGENIE_API_KEY",
        "SMTP_PASSWORD",
    ] {
        cmd.env(var, "x");
    }
    cmd.env("SLACK_URL", "https://hooks.slack.com/services/T/B/X")
        .env(
            "TEAMS_WORKFLOW_URL",
            "https://prod.westeurope.logic.azure.com/workflows/x",
        )
        .env(
            "DISCORD_WEBHOOK_URL",
            "https://discord.com/api/webhooks/1/x",
        )
        .env(
            "DATABASE_URL",
            "postgres://lifeline@127.0.0.1:5432/lifeline",
        )
}

#[test]
fn every_monitor_example_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("monitor") && name.ends_with(".yaml")) {
            continue;
        }
        let out = example_env(
            Command::new(BIN)
                .args(["monitor", "--check-config", "--config"])
                .arg(&path),
        )
        .output()
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let effective: serde_json::Value = serde_json::from_str(
            stdout
                .strip_prefix("config OK\n")
                .unwrap_or_else(|| panic!("{name}: starts with config OK: {stdout}")),
        )
        .unwrap_or_else(|e| panic!("{name}: the effective config is JSON ({e}): {stdout}"));
        assert!(
            effective["targets"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{name}: {stdout}"
        );
        // example_env gives every secret the value "x"; none is printed (a JSON string "x" would be one).
        assert!(
            !stdout.contains("\"x\""),
            "{name}: a secret is printed: {stdout}"
        );
        n += 1;
    }
    assert!(n >= 4, "examples/monitor*.yaml: found {n}");
}

fn check(yaml: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, yaml).unwrap();
    let out = Command::new(BIN)
        .args(["monitor", "--check-config", "--config"])
        .arg(&f)
        .env_remove("NOPE_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configs_exit_64_naming_the_field() {
    let cases = [
        ("targets:\n  - { name: a, url: 'http://h/mcp' }\n  - { name: b, url: 'http://h/mcp', interval: 1s }\n", "targets[1].interval: must be at least 5s"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', bearer_token: '${NOPE_TOKEN}' }\n", "targets[0].bearer_token: environment variable NOPE_TOKEN is not set"),
        ("targets:\n  - { name: a, url: 'http://h/mcp', colour: red }\n", "unknown field `colour`"),
        // The transactions' safety gate refuses a tool the target does not allow, before anything runs.
        (
            "targets:\n  - { name: a, url: 'http://h/mcp', allow_tools: [search], transactions: [{ name: t, steps: [{ tool: delete_all }] }] }\n",
            "targets[0].transactions[0].steps[0].tool: the safety gate refuses \"delete_all\"",
        ),
    ];
    for (yaml, want) in cases {
        let (code, err) = check(yaml);
        assert_eq!(code, Some(64), "{err}");
        assert!(err.contains(want), "{err}\nwant: {want}");
    }
    let out = Command::new(BIN).arg("monitor").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config FILE or --target URL"));
}

#[test]
fn check_config_prints_the_effective_config_with_overrides_and_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(
        &f,
        "listen: 127.0.0.1:8081\nstorage: postgres://u:pw@db/lifeline\ntargets:\n  - { name: a, url: 'https://user:pw@h/mcp?key=q', bearer_token: '${TOK}', headers: { X-Key: '${TOK}' } }\nalerts:\n  - { type: slack, webhook_url: 'https://hooks.slack.com/services/T/B/SECRET' }\n  - { type: pagerduty, routing_key: '${TOK}' }\n",
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(["monitor", "--check-config", "--config"])
            .arg(&f)
            .args(args)
            .env("TOK", "s3cret")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = run(&[], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(stdout.strip_prefix("config OK\n").expect("config OK")).unwrap();
    for secret in ["s3cret", ":pw@", "SECRET", "key=q"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
    }
    assert_eq!(v["listen"], "127.0.0.1:8081");
    assert_eq!(v["log_format"], "text");
    assert_eq!(v["targets"][0]["bearer_token"], "<redacted>");
    assert_eq!(v["targets"][0]["headers"]["X-Key"], "<redacted>");
    assert_eq!(v["targets"][0]["interval"], "1m");
    assert_eq!(v["alerts"][0]["type"], "slack");
    assert_eq!(v["alerts"][1]["routing_key"], "<redacted>");

    // The environment beats the file, a flag beats the environment; --log-json is the old spelling of
    // --log-format json.
    let env = [
        ("LIFELINE_LISTEN", "127.0.0.1:8082"),
        ("LIFELINE_LOG_FORMAT", "json"),
    ];
    let (_, stdout, stderr) = run(&[], &env);
    let v: serde_json::Value =
        serde_json::from_str(stdout.strip_prefix("config OK\n").expect(&stderr)).unwrap();
    assert_eq!(
        (v["listen"].as_str(), v["log_format"].as_str()),
        (Some("127.0.0.1:8082"), Some("json"))
    );
    let (_, stdout, stderr) = run(
        &["--listen", "127.0.0.1:8083", "--log-format", "text"],
        &env,
    );
    let v: serde_json::Value =
        serde_json::from_str(stdout.strip_prefix("config OK\n").expect(&stderr)).unwrap();
    assert_eq!(
        (v["listen"].as_str(), v["log_format"].as_str()),
        (Some("127.0.0.1:8083"), Some("text"))
    );
    let (_, stdout, stderr) = run(&["--log-json"], &[]);
    assert!(
        stdout.contains("\"log_format\": \"json\""),
        "{stdout}{stderr}"
    );

    // Bad overrides are errors at the field, every one on its own line.
    let (code, _, stderr) = run(&["--listen", "nowhere", "--log-format", "xml"], &[]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("listen: `nowhere` is not an address")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("log_format: \"xml\" is not one of text, json")),
        "{stderr}"
    );
}

/// The monitor process, in its own process group, killed on drop.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` (a `lifeline monitor` command line) in its own process group with `LIFELINE_LOG=info` and its
/// stderr read line by line, and waits until `deadline` for the line naming its `http://127.0.0.1:PORT/`.
/// Returns the process, `127.0.0.1:PORT`, the rest of the log as it comes, and the lines read so far.
pub(crate) fn spawn_monitor(
    cmd: &mut Command,
    deadline: Instant,
) -> (Proc, String, std::sync::mpsc::Receiver<String>, Vec<String>) {
    let mut child = cmd
        .env("LIFELINE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the listening line");
        log.push(line.clone());
        if let Some(i) = line.find("http://127.0.0.1:") {
            let rest = &line[i + 7..];
            break rest[..rest.find('/').unwrap()].to_owned();
        }
    };
    (proc, addr, rx, log)
}

pub(crate) fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn quick_start_serves_the_page_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: the probe fails fast with connect_refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (proc, addr, rx, mut log) = spawn_monitor(
        Command::new(BIN)
            .args([
                "monitor",
                "--log-json",
                "--listen",
                "127.0.0.1:0",
                "--target",
            ])
            .arg(format!("http://{closed}/mcp"))
            .current_dir(dir.path()),
        deadline,
    );
    // The first probe result reaches the API.
    let target = std::cell::RefCell::new(serde_json::Value::Null);
    assert_eventually!(
        blocking {
            let (code, body) = http_get(&addr, "/api/v1/targets");
            assert_eq!(code, 200);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            target.replace(v["targets"][0].clone());
            target.borrow()["last_checked_at"].is_string()
        },
        patience = deadline.saturating_duration_since(Instant::now()),
        "no probe result in the API: {}",
        target.borrow()
    );
    let target = target.into_inner();
    assert_eq!(target["name"], "127.0.0.1");
    assert_eq!(target["verdict"], "unhealthy", "{target}");
    let (code, page) = http_get(&addr, "/");
    assert_eq!(code, 200);
    assert!(page.contains("<title>MCP status</title>") && page.contains("127.0.0.1"));
    assert_eq!(http_get(&addr, "/live").0, 200);
    assert_eq!(http_get(&addr, "/ready").0, 200);
    let (_, metrics) = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("lifeline_monitor_probes_total{verdict=\"unhealthy\"}"),
        "{metrics}"
    );

    let pid = proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut proc = proc;
    assert_eventually!(
        blocking proc.0.try_wait().unwrap().is_some(),
        patience = Duration::from_secs(30),
        "no exit after SIGTERM"
    );
    // The exit status stays available once the child is reaped.
    let status = proc.0.try_wait().unwrap().expect("exited");
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("Monitor stopped")),
        "{}",
        log.join("\n")
    );
    assert!(dir.path().join("lifeline.db").exists());
}

/// The exit rule after a signal (`exit::after_signal`): a second signal while a probe is still in flight
/// exits at once, and with 0 like every drain (before the one lifecycle it exited 2).
#[test]
fn a_second_signal_exits_at_once_and_with_0() {
    let dir = tempfile::tempdir().unwrap();
    // A target that accepts and never answers: its probe stays in flight (target timeout 10 s, grace 15 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (accepted_tx, accepted) = std::sync::mpsc::channel::<TcpStream>();
    std::thread::spawn(move || {
        // Bounded: the test ends (and drops the receiver) within its own deadlines.
        for conn in silent.incoming().take(16).map_while(Result::ok) {
            if accepted_tx.send(conn).is_err() {
                break;
            }
        }
    });
    let mut child = Command::new(BIN)
        .args(["monitor", "--listen", "127.0.0.1:0", "--target"])
        .arg(format!("http://{silent_addr}/mcp"))
        .current_dir(dir.path())
        .env("LIFELINE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // A bound, not a pace: the debug monitor's start and first probe took over 30 s on a 2-core machine that
    // was also running a 10,000-target benchmark.
    let _held = accepted
        .recv_timeout(Duration::from_secs(90))
        .expect("the first probe connects");
    let pid = proc.0.id().to_string();
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    kill("-TERM");
    // The drain is under way (the probe keeps it waiting) before the second signal.
    let mut log = Vec::new();
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while !log.iter().any(|l: &String| l.contains("Drain")) {
        let line = rx
            .recv_timeout(drain_deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no drain log line: {}", log.join("\n")));
        log.push(line);
    }
    assert!(
        proc.0.try_wait().unwrap().is_none(),
        "still waiting for the probe"
    );
    let second = Instant::now();
    kill("-INT");
    lifeline_testkit::assert_eventually!(
        blocking proc.0.try_wait().unwrap().is_some(),
        patience = Duration::from_secs(3),
        "no exit at once after the second signal"
    );
    assert!(second.elapsed() < Duration::from_secs(3));
    let status = proc.0.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("Second stop signal")),
        "{}",
        log.join("\n")
    );
}

/// Regression: `lifeline monitor --check-config … | head -0` panicked in `println!` on the closed pipe. Both
/// services' `--check-config` now exit 0 quietly when the reader has gone (the house rule for a broken pipe).
#[test]
fn check_config_into_a_closed_pipe_exits_0_without_a_panic() {
    let monitor = [
        "monitor",
        "--check-config",
        "--target",
        "http://127.0.0.1:9/mcp",
    ];
    let gateway = [
        "gateway",
        "--check-config",
        "--upstream",
        "http://127.0.0.1:9/mcp",
    ];
    for args in [&monitor[..], &gateway[..]] {
        // The read end is closed before the child starts, so its first write fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .stdout(writer)
            .output()
            .expect("lifeline runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The key that seals rotated refresh tokens: a malformed `LIFELINE_SECRET_KEY` is a usage error at
/// `--check-config` (exit 64) whose message never repeats the key; a valid one (hex or base64) passes.
#[test]
fn a_bad_secret_key_is_a_usage_error_that_never_shows_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.yaml");
    std::fs::write(
        &config,
        "targets:\n  - { name: a, url: 'http://127.0.0.1:9/mcp' }\n",
    )
    .unwrap();
    let run = |key: &str| {
        Command::new(BIN)
            .args(["monitor", "--check-config", "--config"])
            .arg(&config)
            .env("LIFELINE_SECRET_KEY", key)
            .env_remove("LIFELINE_SECRET_KEY_FILE")
            .output()
            .unwrap()
    };
    let out = run("too-short-key-zzz");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LIFELINE_SECRET_KEY"), "{stderr}");
    assert!(!stderr.contains("too-short-key-zzz"), "{stderr}");
    assert_eq!(run(&"0f".repeat(32)).status.code(), Some(0));
    assert_eq!(
        run("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .status
            .code(),
        Some(0)
    );
}
