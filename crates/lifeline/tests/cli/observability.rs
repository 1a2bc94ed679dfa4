//! The observability kit under `deploy/observability/`, checked by the real tools:
//!
//! - the alerting rules pass `promtool check rules`, their unit tests (`promtool test rules`) pass and cover
//!   every alert both firing and held back, a broken rule fails them, and the `PrometheusRule` holds the same
//!   groups as the plain rules file;
//! - the Grafana dashboards type-check against Grafana's own published schema (`@grafana/schema`, generated
//!   from Grafana's CUE kinds: the classic dashboard model and each panel plugin's options) with the TypeScript
//!   compiler, and keep the invariants Grafana does not type (unique ids and queries, a datasource variable);
//! - a real Prometheus on loopback scrapes a real `lifeline gateway` (in front of server-everything), a second
//!   one in front of nothing, and a real `lifeline monitor`, with the rules loaded: every metric name any file
//!   of the kit mentions exists (found by scanning the files, so a new panel or rule is checked without a
//!   list to update), every dashboard and rule query runs, every rule evaluates, and every alert but
//!   `LifelineMonitorNotProbing` fires (or is pending, for those with a `for` of minutes) on the real series:
//!   a gateway not ready and failing upstream, one at its `--max-sessions` and then drained with a call that
//!   outlasts the deadline, one with auth whose authorization server is unreachable (its auth series exist
//!   from the start), alert sends refused, a certificate 2 days from expiry;
//! - `kubectl kustomize deploy/observability` renders the PrometheusRule and the dashboard ConfigMaps.
//!
//! Needs Debian's `prometheus` (`promtool` and the server), the pinned `tests/peers/grafana` packages and
//! server-everything (`scripts/install-peers.sh`), and kubectl.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts, TlsKind};
use lifeline_testkit::peers::{peers_dir, raw_http, workspace_root, EverythingTransport, Peer};
use lifeline_testkit::process::{free_port, wait_for_port, ChildGuard};
use lifeline_testkit::prometheus::{promtool, Prometheus, ScrapeTarget};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::gateway_harness::{open_session, GatewayUnderTest, Gw, Streaming, INIT};
use nix::sys::signal::Signal;

/// How long the real stack may take to show every metric and fire the alerts: a monitor probe interval (5 s),
/// an incident, an alert send, a scrape and a rule evaluation, on a loaded machine.
const STACK_PATIENCE: Duration = Duration::from_secs(120);

fn kit() -> PathBuf {
    workspace_root().join("deploy/observability")
}

fn rules_dir() -> PathBuf {
    kit().join("prometheus")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboards() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(kit().join("dashboards"))
        .expect("deploy/observability/dashboards exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_owned();
            let v = serde_json::from_str(&read(&p)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel, the ones nested in collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// (where, PromQL) of every dashboard query, with Grafana's variables replaced by what an "All" selection and
/// a 1 m rate interval give.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                let expr = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$job", ".*")
                    .replace("$instance", ".*")
                    .replace("$target", ".*");
                out.push((format!("{name}: panel {:?}", p["title"]), expr));
            }
        }
    }
    out
}

/// (alert, PromQL) of every rule in the plain rules file.
fn rule_queries() -> Vec<(String, String)> {
    let rules = yaml(&rules_dir().join("lifeline-rules.yaml"));
    let mut out = Vec::new();
    for g in rules["groups"].as_sequence().into_iter().flatten() {
        for r in g["rules"].as_sequence().into_iter().flatten() {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or("?");
            out.push((
                name.to_owned(),
                r["expr"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// Every `.json` and `.yaml` file under `deploy/observability`, sorted.
fn kit_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json" || x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&kit(), &mut files);
    files.sort();
    files
}

/// Every `lifeline_…` identifier in the kit's files (dashboards, rules and their tests, KEDA, the adapter):
/// the metric names something there queries or documents.
fn kit_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in kit_files() {
        let text = read(&f);
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("lifeline_") {
            let start = i + at;
            let boundary = start == 0 || {
                let c = bytes[start - 1];
                !(c.is_ascii_alphanumeric() || c == b'_')
            };
            let end = start
                + text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(text.len() - start);
            if boundary {
                names.insert(text[start..end].to_owned());
            }
            i = end;
        }
    }
    names
}

#[test]
fn rules_pass_promtool_and_their_unit_tests_cover_every_alert() {
    let dir = rules_dir();
    let (ok, out) = promtool(&dir, &["check", "rules", "lifeline-rules.yaml"]);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&dir, &["test", "rules", "lifeline-rules.test.yaml"]);
    assert!(ok, "promtool test rules:\n{out}");

    // Every alert has a case where it fires and one where it is expected silent.
    let tests = yaml(&dir.join("lifeline-rules.test.yaml"));
    let mut fires: HashMap<String, (bool, bool)> = HashMap::new();
    for t in tests["tests"].as_sequence().into_iter().flatten() {
        for case in t["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap_or_default().to_owned();
            let firing = case["exp_alerts"]
                .as_sequence()
                .is_some_and(|a| !a.is_empty());
            let e = fires.entry(name).or_default();
            if firing {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
    }
    let alerts: BTreeSet<String> = rule_queries().into_iter().map(|(n, _)| n).collect();
    assert!(alerts.len() >= 7, "{alerts:?}");
    for a in &alerts {
        assert_eq!(
            fires.get(a),
            Some(&(true, true)),
            "{a}: needs a unit test where it fires and one where it stays silent"
        );
    }

    // The tests can fail: the same tests against a rules file with one threshold moved do.
    let tmp = tempfile::tempdir().expect("tempdir");
    let broken = read(&dir.join("lifeline-rules.yaml")).replace("> 0.05", "> 0.5");
    std::fs::write(tmp.path().join("lifeline-rules.yaml"), broken).expect("write");
    std::fs::copy(
        dir.join("lifeline-rules.test.yaml"),
        tmp.path().join("lifeline-rules.test.yaml"),
    )
    .expect("copy");
    let (ok, out) = promtool(tmp.path(), &["test", "rules", "lifeline-rules.test.yaml"]);
    assert!(
        !ok && out.contains("LifelineGatewayUpstreamErrors"),
        "{out}"
    );
}

#[test]
fn the_prometheus_rule_holds_the_plain_rules_word_for_word() {
    let plain = yaml(&rules_dir().join("lifeline-rules.yaml"));
    let crd = yaml(&kit().join("prometheusrule.yaml"));
    assert_eq!(crd["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(crd["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    assert_eq!(crd["spec"]["groups"], plain["groups"]);
}

#[test]
fn dashboards_type_check_against_grafanas_published_schema() {
    let schema = peers_dir().join("grafana/node_modules/@grafana/schema/dist/types");
    let tsc = peers_dir().join("grafana/node_modules/typescript/bin/tsc");
    assert!(
        tsc.is_file() && schema.is_dir(),
        "{} missing: run scripts/install-peers.sh (it installs tests/peers/grafana)",
        tsc.display()
    );
    let boards = dashboards();
    assert_eq!(
        boards.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["lifeline-gateway", "lifeline-monitor"]
    );

    // The invariants the schema does not type.
    let mut uids = BTreeSet::new();
    for (name, d) in &boards {
        assert!(
            uids.insert(d["uid"].as_str().unwrap_or_default().to_owned()),
            "{name}: uid"
        );
        let vars = d["templating"]["list"].as_array().expect("templating.list");
        assert!(
            vars.iter().any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
            "{name}: a Prometheus datasource variable named datasource"
        );
        let mut ids = BTreeSet::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{name}: duplicate panel id {}",
                p["id"]
            );
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().unwrap_or(99), g["w"].as_u64().unwrap_or(99));
            assert!(
                x + w <= 24 && w > 0 && g["h"].as_u64().unwrap_or(0) > 0,
                "{name}/{title}: gridPos {g}"
            );
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}/{title}");
            assert!(
                !title.is_empty() && p["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}/{title}: title and description"
            );
            let targets = p["targets"]
                .as_array()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| panic!("{name}/{title}: no targets"));
            let mut refs = BTreeSet::new();
            for t in targets {
                assert!(
                    refs.insert(t["refId"].as_str().unwrap_or_default()),
                    "{name}/{title}: refId"
                );
                assert!(
                    t["expr"].as_str().is_some_and(|e| e.contains("lifeline_")),
                    "{name}/{title}: expr {t}"
                );
            }
        }
    }

    // The schema check: each dashboard is a `Dashboard`, and each panel's options (and time series field
    // config) the options type of its plugin. Grafana's string enums are compared by value (`Json<T>`), as the
    // JSON holds them. `mutant.ts` is the gateway dashboard with one misspelt key: it must fail, so the check
    // can fail.
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = schema.display();
    let mut header = format!(
        "import type {{ Dashboard }} from \"{s}/index\";\n\
         type Json<T> = T extends string ? `${{T}}` : T extends number | boolean | null | undefined ? T\n\
         \x20 : T extends Array<infer U> ? Array<Json<U>> : T extends object ? {{ [K in keyof T]: Json<T[K]> }} : T;\n"
    );
    let plugins: BTreeSet<String> = boards
        .iter()
        .flat_map(|(_, d)| {
            panels(d)
                .into_iter()
                .filter_map(|p| p["type"].as_str().map(str::to_owned))
        })
        .filter(|t| t != "row")
        .collect();
    for t in &plugins {
        let file = schema.join(format!("raw/composable/{t}/panelcfg/x/types.gen.d.ts"));
        let types = read(&file);
        // Plugins without custom field options (stat, bargauge) have no FieldConfig type.
        let field_config = if types.contains("export interface FieldConfig ") {
            format!(", FieldConfig as {t}FieldConfig")
        } else {
            String::new()
        };
        header.push_str(&format!(
            "import type {{ Options as {t}Options{field_config} }} from \"{s}/raw/composable/{t}/panelcfg/x/types.gen\";\n"
        ));
    }
    let mut check = header.clone();
    for (name, d) in &boards {
        let v = name.replace('-', "_");
        check.push_str(&format!("export const {v}: Json<Dashboard> = {d};\n"));
        for p in panels(d).into_iter().filter(|p| p["type"] != "row") {
            let (t, id) = (p["type"].as_str().unwrap_or_default(), &p["id"]);
            check.push_str(&format!(
                "export const {v}_{id}: Json<{t}Options> = {};\n",
                p["options"]
            ));
            let custom = &p["fieldConfig"]["defaults"]["custom"];
            if !custom.is_null() {
                check.push_str(&format!(
                    "export const {v}_{id}_custom: Json<{t}FieldConfig> = {custom};\n"
                ));
            }
        }
    }
    std::fs::write(tmp.path().join("check.ts"), check).expect("write check.ts");
    let gateway = boards[0]
        .1
        .to_string()
        .replacen("\"gridPos\"", "\"gridPosition\"", 1);
    std::fs::write(
        tmp.path().join("mutant.ts"),
        format!("{header}export const mutant: Json<Dashboard> = {gateway};\n"),
    )
    .expect("write mutant.ts");
    let out = Command::new("node")
        .arg(&tsc)
        .args([
            "--noEmit", "--strict", "--target", "es2020", "--module", "esnext",
        ])
        .args(["--moduleResolution", "bundler", "check.ts", "mutant.ts"])
        .current_dir(tmp.path())
        .output()
        .expect("run node tsc");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("error TS")).collect();
    let (mutant, real): (Vec<&str>, Vec<&str>) =
        errors.iter().partition(|l| l.starts_with("mutant.ts"));
    assert!(
        real.is_empty(),
        "the dashboards do not fit Grafana's schema:\n{}",
        real.join("\n")
    );
    assert!(
        mutant.iter().any(|l| l.contains("gridPosition")),
        "the misspelt key was not caught: {text}"
    );
}

#[test]
fn the_kit_renders_with_kubectl_kustomize() {
    let Some(kubectl) = lifeline_testkit::kube::kubectl_or_skip() else {
        return;
    };
    let rendered = lifeline_testkit::kube::kustomize(&kubectl, &kit());
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .collect();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["ConfigMap", "PrometheusRule"]));
    for (name, board) in dashboards() {
        let cm = docs
            .iter()
            .find(|d| d["metadata"]["name"].as_str() == Some(&format!("{name}-dashboard")))
            .unwrap_or_else(|| panic!("no ConfigMap for {name}"));
        assert_eq!(
            cm["metadata"]["labels"]["grafana_dashboard"].as_str(),
            Some("1")
        );
        let text = cm["data"][format!("{name}.json").as_str()]
            .as_str()
            .expect("the JSON");
        assert_eq!(serde_json::from_str::<Value>(text).expect("JSON"), board);
    }
    // `lifeline lint` finds nothing in the rendered kit, nor in its files as they are (`lifeline lint
    // deploy/observability`: the patches and the non-Kubernetes YAML must not be input errors).
    let mut sources = vec![lifeline_k8s::Source {
        name: "observability".to_owned(),
        text: rendered,
    }];
    for f in kit_files() {
        sources.push(lifeline_k8s::Source {
            name: f.display().to_string(),
            text: read(&f),
        });
    }
    let report = lifeline_k8s::lint_sources(&sources, &lifeline_k8s::LintOptions::default());
    assert!(
        report.findings.is_empty() && report.errors.is_empty(),
        "{}",
        lifeline_k8s::render_human(&report)
    );
}

/// A webhook receiver on loopback that refuses every alert with 400 (no retry helps), counting the posts.
async fn refusing_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let posts = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&posts);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                // Read the head and the announced body (bounded), then answer.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let read = async {
                    loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 || buf.len() > 1 << 20 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf);
                        if let Some(head_end) = text.find("\r\n\r\n") {
                            let len = text[..head_end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= head_end + 4 + len {
                                break;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
                count.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, posts)
}

/// The `lifeline monitor` process with `config`, on a free loopback port; returns the guard and `host:port`.
async fn start_monitor(dir: &Path, targets: &str, webhook: &str) -> (ChildGuard, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "listen: {addr}\n\
         defaults: {{ interval: 5s, timeout: 4s, failure_threshold: 1, success_threshold: 1 }}\n\
         targets:\n{targets}\
         alerts:\n  - {{ type: webhook, url: \"{webhook}\", retries: 0, timeout: 2s }}\n"
    );
    let path = dir.join("monitor.yaml");
    std::fs::write(&path, config).expect("write monitor.yaml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    cmd.arg("monitor")
        .arg("--config")
        .arg(&path)
        .current_dir(dir)
        .env("LIFELINE_LOG", "info");
    let mut guard = ChildGuard::spawn("lifeline monitor", cmd).expect("the lifeline binary starts");
    wait_for_port(
        &mut guard,
        addr.parse().expect("addr"),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (guard, addr)
}

/// `http://host:port` → `host:port`.
fn host_port(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_finds_every_metric_the_kit_queries_and_the_rules_fire() {
    let names = kit_metric_names();
    for must in [
        "lifeline_gateway_requests_total",
        "lifeline_gateway_upstream_ready",
        "lifeline_gateway_sessions_max",
        "lifeline_gateway_drain_deadline_timestamp_seconds",
        "lifeline_monitor_probe_phase_duration_seconds_bucket",
        "lifeline_monitor_alert_sends_total",
        "lifeline_monitor_target_tls_days_left",
        // The gateway dashboard's Auth row and the LifelineGatewayAuthUnavailable rule (issue 12).
        "lifeline_gateway_auth_decisions_total",
        "lifeline_gateway_auth_jwks_refreshes_total",
        "lifeline_gateway_auth_api_keys_reloads_total",
        "lifeline_gateway_auth_introspection_duration_seconds_bucket",
    ] {
        assert!(names.contains(must), "the scan missed {must}: {names:?}");
    }
    let (_, gateway_dashboard) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "lifeline-gateway")
        .expect("the gateway dashboard");
    let auth_panels: Vec<String> = panels(&gateway_dashboard)
        .into_iter()
        .filter(|p| p.to_string().contains("lifeline_gateway_auth_"))
        .filter_map(|p| p["title"].as_str().map(str::to_owned))
        .collect();
    assert!(
        auth_panels.len() >= 3,
        "the gateway dashboard's Auth panels: {auth_panels:?}"
    );

    // A gateway in front of a real MCP server, one in front of nothing, and a monitor watching the first and
    // a TLS server it cannot trust whose certificate expires in 2 days (an incident, whose alert the receiver
    // refuses).
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    let good = Gw::start(&peer.url, &["--max-sessions", "100"]).await;
    good.wait_ready(Duration::from_secs(30)).await;
    let dead_port = free_port();
    let dead = Gw::start(&format!("http://127.0.0.1:{dead_port}/mcp"), &[]).await;
    // A third one, full with one session, drained at the end with a call that outlasts its 20 s drain.
    let draining = Gw::start(
        &peer.url,
        &[
            "--drain-delay",
            "1s",
            "--drain-timeout",
            "20s",
            "--max-sessions",
            "1",
        ],
    )
    .await;
    draining.wait_ready(Duration::from_secs(30)).await;
    // A fourth one with auth (JWT, introspection and API keys), whose authorization server does not answer:
    // its auth series exist from the start, and a JWT of its issuer is a 503 (LifelineGatewayAuthUnavailable).
    let auth_dir = tempfile::tempdir().expect("tempdir");
    let auth_dead = free_port();
    let keys_file = auth_dir.path().join("api-keys");
    let secret_file = auth_dir.path().join("introspection-secret");
    std::fs::write(&keys_file, "").expect("write");
    std::fs::write(&secret_file, "s3cret").expect("write");
    let auth_config = auth_dir.path().join("gateway.yaml");
    std::fs::write(
        &auth_config,
        format!(
            "auth:\n  resource: https://mcp.example.com/mcp\n  jwt:\n    - issuer: https://login.example.com\n      jwks_url: http://127.0.0.1:{auth_dead}/jwks\n  introspection:\n    - url: http://127.0.0.1:{auth_dead}/introspect\n      client_id: lifeline-gateway\n      client_secret_file: {}\n  api_keys_file: {}\n",
            secret_file.display(),
            keys_file.display()
        ),
    )
    .expect("write");
    let authed = Gw::start(&peer.url, &["--config", &auth_config.to_string_lossy()]).await;
    // `{"alg":"RS256","kid":"k1"}.{"iss":"https://login.example.com","aud":…,"sub":"kit"}.sig`: never verified,
    // since the keys cannot be fetched.
    const UNCHECKABLE_JWT: &str = "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tIiwiYXVkIjoiaHR0cHM6Ly9tY3AuZXhhbXBsZS5jb20vbWNwIiwic3ViIjoia2l0In0.c2ln";
    let r = raw_http::post_json(&authed.mcp(), &[("Authorization", UNCHECKABLE_JWT)], INIT)
        .await
        .expect("initialize");
    assert_eq!(r.status, 503, "{}", r.text());
    let tls = FakeServer::start(FakeKind::Healthy(HealthyOpts {
        tls: Some(TlsKind::CaSigned { days_left: 2 }),
        ..HealthyOpts::default()
    }))
    .await
    .expect("TLS fake");
    let (webhook, posts) = refusing_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let targets = format!(
        "  - {{ name: everything, url: \"{}\" }}\n  - {{ name: untrusted, url: \"{}\" }}\n",
        good.mcp(),
        tls.url()
    );
    let (monitor, monitor_addr) = start_monitor(dir.path(), &targets, &webhook).await;

    // Traffic: a session through the good gateway, a request its edge refuses, one the dead upstream fails.
    let r = raw_http::post_json(&good.mcp(), &[], INIT)
        .await
        .expect("initialize");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = raw_http::request(
        "POST",
        &good.mcp(),
        &[
            ("Content-Type", "text/plain"),
            ("Accept", "application/json, text/event-stream"),
        ],
        Some(INIT.as_bytes()),
        Duration::from_secs(10),
    )
    .await
    .expect("refused request");
    assert_eq!(r.status, 415, "{}", r.text());
    let r = raw_http::post_json(&dead.mcp(), &[], INIT)
        .await
        .expect("initialize");
    assert!(r.status >= 500, "{} {}", r.status, r.text());

    let sid = open_session(&draining.mcp()).await;

    let prom = Prometheus::start(
        &[
            ScrapeTarget {
                job: "gateway".into(),
                addr: host_port(&good.admin),
                path: "/metrics".into(),
            },
            ScrapeTarget {
                job: "gateway".into(),
                addr: host_port(&dead.admin),
                path: "/metrics".into(),
            },
            ScrapeTarget {
                job: "gateway".into(),
                addr: host_port(&draining.admin),
                path: "/metrics".into(),
            },
            ScrapeTarget {
                job: "gateway".into(),
                addr: host_port(&authed.admin),
                path: "/metrics".into(),
            },
            ScrapeTarget {
                job: "monitor".into(),
                addr: monitor_addr.clone(),
                path: "/metrics".into(),
            },
        ],
        &[rules_dir().join("lifeline-rules.yaml")],
        Duration::from_secs(1),
    )
    .await;

    // Every metric name the kit mentions is a series Prometheus scraped.
    let missing = std::cell::RefCell::new(Vec::new());
    assert_eventually!(
        {
            let have: BTreeSet<String> = prom.metric_names().await.into_iter().collect();
            missing.replace(
                names
                    .iter()
                    .filter(|n| !have.contains(*n))
                    .cloned()
                    .collect(),
            );
            missing.borrow().is_empty()
        },
        patience = STACK_PATIENCE,
        "metrics the kit queries but nobody exports: {:?}\nmonitor: {}\nwebhook posts: {}",
        missing.borrow(),
        monitor.output_tail(),
        posts.load(Ordering::SeqCst)
    );

    // Every dashboard and rule query is PromQL this Prometheus runs.
    let mut failures = Vec::new();
    for (at, expr) in dashboard_queries().into_iter().chain(rule_queries()) {
        if let Err(e) = prom.query(&expr).await {
            failures.push(format!("{at}: {e}\n  {expr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "queries Prometheus refuses:\n{}",
        failures.join("\n")
    );

    // A second upstream failure, now that Prometheus holds the first: the error rate is above zero; the same
    // for the credential the auth gateway cannot check.
    let r = raw_http::post_json(&dead.mcp(), &[], INIT)
        .await
        .expect("initialize");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let r = raw_http::post_json(&authed.mcp(), &[("Authorization", UNCHECKABLE_JWT)], INIT)
        .await
        .expect("initialize");
    assert_eq!(r.status, 503, "{}", r.text());

    // The rules evaluate on the real series without error, and fire on them: the refused alert sends are
    // failing (no `for`: firing); pending (their `for` is minutes): the gateway in front of nothing is not ready
    // and fails every request upstream, the full one is near its --max-sessions, the 2-day certificate expires.
    let alerts = std::cell::RefCell::new(Value::Null);
    let rules_seen = std::cell::RefCell::new(Value::Null);
    assert_eventually!(
        {
            let rules = prom.api("rules").await.unwrap_or_default();
            rules_seen.replace(rules.clone());
            let all: Vec<&Value> = rules["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            let evaluated = all.len() == rule_queries().len()
                && all.iter().all(|r| {
                    r["health"] == "ok"
                        && r["lastEvaluation"]
                            .as_str()
                            .is_some_and(|t| !t.starts_with("0001"))
                });
            alerts.replace(prom.api("alerts").await.unwrap_or_default());
            let list = alerts.borrow()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let has = |name: &str, state: &str, instance: &str| {
                list.iter().any(|a| {
                    a["labels"]["alertname"] == name
                        && a["state"] == state
                        && a["labels"]["instance"]
                            .as_str()
                            .is_some_and(|i| i.contains(instance))
                })
            };
            evaluated
                && has(
                    "LifelineGatewayNotReady",
                    "pending",
                    &host_port(&dead.admin),
                )
                && !has(
                    "LifelineGatewayNotReady",
                    "pending",
                    &host_port(&good.admin),
                )
                && has(
                    "LifelineMonitorAlertDeliveryFailing",
                    "firing",
                    &monitor_addr,
                )
                && has(
                    "LifelineGatewayUpstreamErrors",
                    "pending",
                    &host_port(&dead.admin),
                )
                && has(
                    "LifelineGatewaySessionsNearLimit",
                    "pending",
                    &host_port(&draining.admin),
                )
                && !has(
                    "LifelineGatewaySessionsNearLimit",
                    "pending",
                    &host_port(&good.admin),
                )
                && has("LifelineCertificateExpiring", "pending", &monitor_addr)
                && has(
                    "LifelineGatewayAuthUnavailable",
                    "pending",
                    &host_port(&authed.admin),
                )
                && !has(
                    "LifelineGatewayAuthUnavailable",
                    "pending",
                    &host_port(&good.admin),
                )
        },
        patience = STACK_PATIENCE,
        "rules not evaluated or alerts not as expected: {}\nrules: {}",
        alerts.borrow(),
        rules_seen.borrow()
    );
    assert!(posts.load(Ordering::SeqCst) >= 1);

    // A drain that will be forced: a 60 s tool call in flight, SIGTERM, a 20 s deadline. The rule sees the
    // work in flight less than 15 s before the deadline and fires (no `for`), for that gateway only.
    let call_body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":60,"steps":60},"_meta":{"progressToken":"p7"}}}"#;
    let mut call = Streaming::open(
        "POST",
        &draining.mcp(),
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        Some(call_body),
    )
    .await;
    assert_eq!(call.status, 200);
    assert!(
        call.next_event(Duration::from_secs(10)).await.is_some(),
        "the call streams"
    );
    draining.signal(Signal::SIGTERM);
    let alerts = std::cell::RefCell::new(Value::Null);
    assert_eventually!(
        {
            alerts.replace(prom.api("alerts").await.unwrap_or_default());
            let list = alerts.borrow()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let firing_for = |instance: &str| {
                list.iter().any(|a| {
                    a["labels"]["alertname"] == "LifelineGatewayDrainForced"
                        && a["state"] == "firing"
                        && a["labels"]["instance"] == instance
                })
            };
            assert!(!firing_for(&host_port(&good.admin)), "{}", alerts.borrow());
            firing_for(&host_port(&draining.admin))
        },
        patience = Duration::from_secs(60),
        "LifelineGatewayDrainForced did not fire: {}",
        alerts.borrow()
    );
    drop(call);
    drop(monitor);
}
