//! `lifeline scan` run as a user runs it: the built binary against the testkit's fake servers and the real peers
//! on 127.0.0.1, its reports, stdout and exit codes.
//!
//! The population tests need the peers from `scripts/install-peers.sh` (server-everything, the Python SDKs).
//! Every endpoint lives on 127.0.0.1, so those runs pass `--allow-private` and a high `--per-host`.

use lifeline_testkit::cli::{assert_exit, stderr, stdout};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts, ModernOpts, TlsKind};
use lifeline_testkit::peers::{EverythingTransport, Peer, Py1Mode, PyServer};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
/// Bound on one run of the binary: every probe is bounded by `--timeout`, and they run concurrently.
const RUN_PATIENCE: Duration = Duration::from_secs(120);

fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("scan")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Runs `lifeline scan ARGS` in its own process group, killed if it outlives [`RUN_PATIENCE`].
async fn scan(args: &[&str]) -> Output {
    let child = command(args).spawn().expect("spawning the lifeline binary");
    tokio::time::timeout(RUN_PATIENCE, child.wait_with_output())
        .await
        .expect("lifeline scan finished in time")
        .expect("collecting lifeline's output")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path.to_string_lossy().into_owned()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
        .collect()
}

fn by_url(lines: &[Value]) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|l| {
            (
                l["url"].as_str().expect("every line has a url").to_owned(),
                l.clone(),
            )
        })
        .collect()
}

fn counts(summary: &Value) -> BTreeMap<String, u64> {
    summary["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("valid JSON")
}

// ---------------------------------------------------------------- usage (64), operational (2), help

#[tokio::test]
async fn usage_and_operational_errors() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(dir.path(), "list.txt", "http://127.0.0.1:9/mcp\n");
    let not_a_baseline = write(dir.path(), "old.jsonl", "hello\n");
    let out_dir = dir.path().join("out").to_string_lossy().into_owned();
    let usage: [(&[&str], &str); 6] = [
        (&[], "INPUT"),
        (
            &[&list, "--out", &out_dir, "--format", "json,pdf"],
            "unknown format `pdf`",
        ),
        (&[&list, "--concurrency", "0"], "--concurrency"),
        (&[&list, "--timeout", "10"], "unit"),
        (&[&list, "--attempts", "11"], "--attempts"),
        (
            &[&list, "--baseline", &not_a_baseline],
            "holds no scan results",
        ),
    ];
    for (args, needle) in usage {
        let out = scan(args).await;
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
    let missing = dir
        .path()
        .join("missing.txt")
        .to_string_lossy()
        .into_owned();
    let out = scan(&[&missing]).await;
    assert_exit(&out, 2);
    let bad_json = write(dir.path(), "bad.json", "[\"http://127.0.0.1:9/mcp\",");
    let out = scan(&[&bad_json]).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("invalid JSON"), "{}", stderr(&out));

    let help = scan(&["--help"]).await;
    assert_exit(&help, 0);
    for needle in [
        "--allow-private",
        "--per-host",
        "--attempts",
        "--baseline",
        "--emit-monitor-config",
        "130",
    ] {
        assert!(stdout(&help).contains(needle), "{needle} not in --help");
    }
}

// ---------------------------------------------------------------- the address policy

/// Regression guard for the registry-is-untrusted rule: a literal loopback address, a name that resolves to
/// loopback, and IPv6 loopback are all refused without a single request reaching the server.
#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_refused_without_allow_private() {
    let server = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let port = server.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "list.txt",
        &format!("{}\nhttp://localhost:{port}/mcp\nhttp://[::1]:{port}/mcp\nhttp://169.254.169.254/latest/meta-data/\n", server.url()),
    );
    let out_dir = dir.path().join("out");
    let out = scan(&[
        &list,
        "--out",
        out_dir.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert_exit(&out, 0);
    let lines = read_jsonl(&out_dir.join("scan.jsonl"));
    assert_eq!(lines.len(), 4);
    for line in &lines {
        assert_eq!(line["category"], "refused_private", "{line}");
        assert_eq!(line["attempts"], 0);
    }
    let urls = by_url(&lines);
    assert_eq!(
        urls[&format!("http://localhost:{port}/mcp")]["refused"]["range"],
        "loopback"
    );
    assert_eq!(
        urls["http://169.254.169.254/latest/meta-data/"]["refused"]["range"],
        "link_local"
    );
    assert_eq!(
        server.requests_total(),
        0,
        "a refused endpoint was contacted"
    );
    assert!(
        stdout(&out).contains("refused_private          4   100.0%"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------- a mixed population, counted exactly

struct Population {
    _fakes: Vec<FakeServer>,
    _peers: Vec<Peer>,
    /// URL → (category, reason) expected.
    expected: BTreeMap<String, (&'static str, Option<&'static str>)>,
}

/// Every fake kind and three real peers. Timings assume `--timeout 8s --latency-bound 4s`: the slow one takes
/// about 5 s, the healthy ones well under 4 s even on a busy machine.
async fn population() -> Population {
    use FakeKind::*;
    let kinds: Vec<(FakeKind, &'static str, Option<&'static str>)> = vec![
        (Healthy(HealthyOpts::default()), "healthy", None),
        (
            Healthy(HealthyOpts {
                sse_replies: true,
                ..HealthyOpts::default()
            }),
            "healthy",
            None,
        ),
        (Modern(ModernOpts::default()), "healthy", None),
        (LegacySse, "healthy", None),
        (
            SlowInitialize {
                delay: Duration::from_secs(5),
            },
            "degraded",
            Some("slow"),
        ),
        (
            AuthRequired { token: None },
            "auth_gated",
            Some("auth_required"),
        ),
        (
            AuthRequired {
                token: Some("t0ken".into()),
            },
            "auth_gated",
            Some("auth_required"),
        ),
        (BadGateway502, "broken", Some("http_status")),
        (Html200, "broken", Some("not_mcp")),
        (InvalidJson, "broken", Some("protocol_error")),
        (RpcError, "broken", Some("rpc_error")),
        (UnsupportedVersion, "broken", Some("unsupported_version")),
        (SessionLost, "broken", Some("session_lost")),
        (
            Healthy(HealthyOpts {
                tools: vec![],
                ..HealthyOpts::default()
            }),
            "broken",
            Some("no_tools"),
        ),
        (ClosedPort, "dead", Some("connect_refused")),
        (AcceptThenHang, "dead", Some("timeout")),
        (SseNeverSends, "dead", Some("timeout")),
        (
            Healthy(HealthyOpts {
                tls: Some(TlsKind::SelfSigned),
                ..HealthyOpts::default()
            }),
            "dead",
            Some("tls_failed"),
        ),
    ];
    let mut expected = BTreeMap::new();
    let mut fakes = Vec::new();
    for (kind, category, reason) in kinds {
        let fake = FakeServer::start(kind)
            .await
            .expect("starting a fake server");
        expected.insert(fake.url(), (category, reason));
        fakes.push(fake);
    }
    let peers = vec![
        Peer::everything(EverythingTransport::StreamableHttp).await,
        Peer::python(PyServer::Stateless).await,
        Peer::python_legacy(Py1Mode::Sse).await,
    ];
    for peer in &peers {
        expected.insert(peer.url.clone(), ("healthy", None));
    }
    expected.insert(
        "http://nothing-here.invalid/mcp".to_owned(),
        ("dead", Some("dns_failed")),
    );
    Population {
        _fakes: fakes,
        _peers: peers,
        expected,
    }
}

const POPULATION_FLAGS: [&str; 7] = [
    "--allow-private",
    "--per-host",
    "64",
    "--timeout",
    "8s",
    "--latency-bound",
    "4s",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_mixed_population_is_counted_exactly_per_category() {
    let pop = population().await;
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::from("# a census of every failure mode\n\n");
    for url in pop.expected.keys() {
        list.push_str(url);
        list.push('\n');
    }
    // Duplicates and junk are skipped, not scanned.
    list.push_str(&format!(
        "{}\nnot a url\n",
        pop.expected.keys().next().unwrap()
    ));
    let list = write(dir.path(), "endpoints.txt", &list);
    let out_dir = dir.path().join("report");
    let monitor = dir.path().join("monitor.yaml");
    let mut args = vec![
        list.as_str(),
        "--out",
        out_dir.to_str().unwrap(),
        "--emit-monitor-config",
        monitor.to_str().unwrap(),
        "--progress",
        "log",
        "--progress-interval",
        "1s",
    ];
    args.extend(POPULATION_FLAGS);
    let t0 = Instant::now();
    let out = scan(&args).await;
    assert_exit(&out, 0);
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t0.elapsed()
    );

    let lines = read_jsonl(&out_dir.join("scan.jsonl"));
    assert_eq!(
        lines.len(),
        pop.expected.len(),
        "one line per unique endpoint"
    );
    let got = by_url(&lines);
    for (url, (category, reason)) in &pop.expected {
        let line = &got[url];
        assert_eq!(line["category"], *category, "{url}: {line:#}");
        assert_eq!(line["reason"].as_str(), *reason, "{url}: {line:#}");
        assert_eq!(line["attempts"], 1);
    }

    let summary = read_json(&out_dir.join("summary.json"));
    let want: BTreeMap<String, u64> = [
        ("healthy", 7),
        ("degraded", 1),
        ("auth_gated", 2),
        ("broken", 7),
        ("dead", 5),
        ("refused_private", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts(&summary), want);
    assert_eq!(summary["endpoints"], 22);
    assert_eq!(summary["partial"], false);
    assert_eq!(summary["skipped"]["duplicate"], 1);
    assert_eq!(summary["skipped"]["invalid_url"], 1);
    assert!(summary["latency_usable_ms"]["count"].as_u64() == Some(8));

    // The terminal summary carries the same figures.
    let text = stdout(&out);
    assert!(text.contains("lifeline scan: 22 endpoints"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("healthy ") && l.contains(" 7 ") && l.ends_with("31.8%")),
        "{text}"
    );
    assert!(text.contains("eras: "), "{text}");
    assert!(text.contains("latency (usable, n=8)"), "{text}");
    // Not a terminal: progress came as log lines.
    assert!(
        stderr(&out).contains("lifeline scan: wrote"),
        "{}",
        stderr(&out)
    );

    // CSV: a header and one row per endpoint.
    let csv = std::fs::read_to_string(out_dir.join("scan.csv")).unwrap();
    assert_eq!(csv.lines().count(), 23);
    // HTML: self-contained, one row per endpoint.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<tr class=\"c-").count(), 22);
    assert!(!html.contains("<link") && !html.contains(" src="));
    // Its charts: verdict share (5 non-empty categories), reasons, latency distribution; inline SVG, each named.
    assert_eq!(html.matches("<figure>").count(), 3, "{html}");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 3, "{html}");
    assert_eq!(
        html.matches("<rect class=\"bar ").count(),
        5 + summary["reasons"].as_array().unwrap().len()
    );
    assert!(html.contains("aria-label=\"latency distribution of probed endpoints\""));
    // The histogram's bins count every probed endpoint once (the refused ones are not probed: none here).
    let bins = summary["latency_histogram"].as_array().unwrap();
    assert_eq!(bins.len(), 11);
    let (usable, other) = bins.iter().fold((0, 0), |(u, o), b| {
        (
            u + b["usable"].as_u64().unwrap(),
            o + b["other"].as_u64().unwrap(),
        )
    });
    assert_eq!(usable, 8);
    assert_eq!(
        usable + other,
        summary["latency_probed_ms"]["count"].as_u64().unwrap()
    );
    // `docs/census-sample.html` is this report: LIFELINE_WRITE_CENSUS_SAMPLE=<path> copies it there.
    if let Some(path) = std::env::var_os("LIFELINE_WRITE_CENSUS_SAMPLE") {
        std::fs::write(path, &html).unwrap();
    }

    // The monitor config: the usable endpoints, uniquely named.
    let yaml = std::fs::read_to_string(&monitor).unwrap();
    let names: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("  - name: "))
        .collect();
    assert_eq!(names.len(), 8, "{yaml}");
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), 8, "{yaml}");
    for (url, (category, _)) in &pop.expected {
        let listed = yaml.contains(&format!("url: \"{url}\""));
        assert_eq!(
            listed,
            *category == "healthy" || *category == "degraded",
            "{url} in {yaml}"
        );
    }
}

// ---------------------------------------------------------------- a registry export

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_export_is_followed_to_its_remotes() {
    let healthy = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let sse = FakeServer::start(FakeKind::LegacySse).await.unwrap();
    let closed = FakeServer::start(FakeKind::ClosedPort).await.unwrap();
    let meta = |status: &str| json!({"io.modelcontextprotocol.registry/official": {"status": status, "isLatest": true}});
    let export = json!({
        "servers": [
            {"server": {"name": "io.test/both", "version": "1.0.0", "remotes": [
                {"type": "streamable-http", "url": healthy.url()},
                {"type": "sse", "url": sse.url()}]}, "_meta": meta("active")},
            {"server": {"name": "io.test/both", "version": "0.9.0", "remotes": [
                {"type": "streamable-http", "url": healthy.url()}]}, "_meta": meta("active")},
            {"server": {"name": "io.test/gone", "version": "1.0.0", "remotes": [
                {"type": "streamable-http", "url": closed.url()}]}, "_meta": meta("active")},
            {"server": {"name": "io.test/retired", "version": "1.0.0", "remotes": [
                {"type": "streamable-http", "url": "http://127.0.0.1:1/retired"}]}, "_meta": meta("deleted")},
            {"server": {"name": "io.test/stdio-only", "version": "1.0.0", "packages": [
                {"registryType": "npm", "identifier": "x", "transport": {"type": "stdio"}}]}, "_meta": meta("active")}
        ],
        "metadata": {"nextCursor": null, "count": 5}
    });
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "registry.json", &export.to_string());
    let out_dir = dir.path().join("out");
    let out = scan(&[
        &file,
        "--allow-private",
        "--out",
        out_dir.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert_exit(&out, 0);
    let lines = by_url(&read_jsonl(&out_dir.join("scan.jsonl")));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[&healthy.url()]["name"], "io.test/both");
    assert_eq!(lines[&healthy.url()]["category"], "healthy");
    assert_eq!(lines[&sse.url()]["category"], "healthy");
    assert_eq!(lines[&sse.url()]["transport"], "http_sse");
    assert_eq!(lines[&closed.url()]["category"], "dead");
    let summary = read_json(&out_dir.join("summary.json"));
    assert_eq!(summary["skipped"]["deleted"], 1);
    assert_eq!(summary["skipped"]["no_remote"], 1);
    assert_eq!(summary["skipped"]["duplicate"], 1);

    // A plain JSON array of URLs works the same way, from standard input too.
    let array = json!([healthy.url(), {"url": closed.url(), "name": "closed"}]).to_string();
    let mut cmd = command(&["-", "--allow-private"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(array.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(RUN_PATIENCE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("lifeline scan: 2 endpoints from -"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------- Ctrl-C

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_writes_the_partial_report_and_exits_130() {
    let healthy = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let hang = FakeServer::start(FakeKind::AcceptThenHang).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::new();
    for i in 0..3 {
        list.push_str(&format!("{}?n={i}\n", healthy.url()));
    }
    for i in 0..20 {
        list.push_str(&format!("{}?n={i}\n", hang.url()));
    }
    let list = write(dir.path(), "list.txt", &list);
    let out_dir = dir.path().join("out");
    let child = command(&[
        &list,
        "--allow-private",
        "--per-host",
        "64",
        "--timeout",
        "60s",
        "--drain",
        "1s",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id().expect("running") as i32);

    // Wait (bounded) until the three quick results are on disk and the hangers are all connected.
    let jsonl = out_dir.join("scan.jsonl");
    let done = || {
        std::fs::read_to_string(&jsonl)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    lifeline_testkit::assert_eventually!(
        done() >= 3 && hang.requests_total() >= 20,
        patience = Duration::from_secs(30),
        "the scan did not get going: {} results, {} hung",
        done(),
        hang.requests_total()
    );
    let t0 = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = tokio::time::timeout(RUN_PATIENCE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_exit(&out, 130);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stopping took {:?} (drain is 1s)",
        t0.elapsed()
    );

    let lines = read_jsonl(&jsonl);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["category"] == "healthy"));
    let summary = read_json(&out_dir.join("summary.json"));
    assert_eq!(summary["partial"], true);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["abandoned"], 20);
    assert!(
        stdout(&out).contains("PARTIAL REPORT: interrupted"),
        "{}",
        stdout(&out)
    );
    assert!(std::fs::read_to_string(out_dir.join("report.html"))
        .unwrap()
        .contains("Partial report (interrupted)"));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("scan.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
}

// ---------------------------------------------------------------- baseline diff

#[tokio::test(flavor = "multi_thread")]
async fn a_baseline_diff_shows_what_changed() {
    let stays = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let drifts = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let recovers = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let dies = FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .unwrap();
    let leaves = FakeServer::start(FakeKind::Html200).await.unwrap();
    let arrives = FakeServer::start(FakeKind::RpcError).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "first.txt",
        &[
            stays.url(),
            drifts.url(),
            recovers.url(),
            dies.url(),
            leaves.url(),
        ]
        .join("\n"),
    );
    let old = dir.path().join("old");
    let out = scan(&[
        &first,
        "--allow-private",
        "--out",
        old.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert_exit(&out, 0);

    // Make the baseline say what the past looked like: another tool schema for one, dead for another.
    let baseline: Vec<String> = read_jsonl(&old.join("scan.jsonl"))
        .into_iter()
        .map(|mut line| {
            if line["url"] == drifts.url() {
                line["schema_hash"] = json!("0".repeat(64));
            }
            if line["url"] == recovers.url() {
                line["category"] = json!("dead");
                line["reason"] = json!("connect_refused");
            }
            line.to_string()
        })
        .collect();
    let baseline_path = write(dir.path(), "baseline.jsonl", &(baseline.join("\n") + "\n"));
    let dies_url = dies.url();
    drop(dies);

    let second = write(
        dir.path(),
        "second.txt",
        &[
            stays.url(),
            drifts.url(),
            recovers.url(),
            dies_url.clone(),
            arrives.url(),
        ]
        .join("\n"),
    );
    let new = dir.path().join("new");
    let out = scan(&[
        &second,
        "--allow-private",
        "--out",
        new.to_str().unwrap(),
        "--baseline",
        &baseline_path,
    ])
    .await;
    assert_exit(&out, 0);
    let changes = by_url(&read_jsonl(&new.join("diff.jsonl")));
    let kind = |url: &str| {
        changes
            .get(url)
            .map(|c| c["kind"].as_str().unwrap().to_owned())
    };
    assert_eq!(kind(&stays.url()), None);
    assert_eq!(kind(&drifts.url()).as_deref(), Some("drifted"));
    assert_eq!(kind(&recovers.url()).as_deref(), Some("recovered"));
    assert_eq!(kind(&dies_url).as_deref(), Some("newly_dead"));
    assert_eq!(kind(&leaves.url()).as_deref(), Some("gone"));
    assert_eq!(kind(&arrives.url()).as_deref(), Some("new"));
    assert_eq!(changes.len(), 5);
    let text = stdout(&out);
    assert!(text.contains("changes since"), "{text}");
    assert!(
        text.contains(&format!("{dies_url}  healthy → dead")),
        "{text}"
    );
    let summary = read_json(&new.join("summary.json"));
    assert_eq!(summary["diff"]["counts"]["newly_dead"], 1);
    assert!(std::fs::read_to_string(new.join("report.html"))
        .unwrap()
        .contains("Changes since"));
}
