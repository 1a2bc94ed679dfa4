//! `/ready` that takes the path the tools take (issue 13): one read-only tool step with its assertions after
//! the handshake (`--ready-transaction`, the probe engine's transaction evaluator) and plain HTTP dependency
//! checks (`ready_dependencies`), each reported with its timing, against the real Python SDK 2.x server of
//! `tests/peers/py2_tools_server.py`; and the same checks in front of a pool of two such replicas (issue 15: one
//! healthy endpoint AND the dependencies; the watcher's probes run the step).

use lifeline_testkit::gateway::GatewayUnderTest as _;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

use crate::harness::TestGateway as Gw;

fn transaction(dir: &std::path::Path, name: &str, expect: &str) -> String {
    let path = dir.join(name);
    let text = format!(
        "allow_tools: [search]\ntransactions:\n  - name: canary\n    steps:\n      - tool: search\n        \
         arguments: {{ query: lifeline-canary }}\n        expect: ['{expect}']\n"
    );
    std::fs::write(&path, text).expect("writing the transaction file");
    path.to_string_lossy().into_owned()
}

fn body(r: &lifeline_testkit::peers::raw_http::RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("JSON ({e}): {}", r.text()))
}

fn check<'a>(body: &'a Value, name: &str) -> Vec<&'a Value> {
    body["checks"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["name"] == name).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn ready_runs_the_tool_step_and_the_dependencies_after_the_handshake() {
    let peer = Peer::python_tools(PyServer::Stateful).await;
    let dir = tempfile::tempdir().unwrap();

    // Passing step, one good dependency: ready, each check timed.
    let file = transaction(
        dir.path(),
        "ok.yaml",
        "size(result.structuredContent.items) == 2",
    );
    let health = format!("{}/health", peer.base);
    let deps = format!("ready_dependencies:\n  - url: {health}\n    timeout: 10s\n");
    let gw = Gw::start_with_file(
        &deps,
        &[
            "--upstream",
            &peer.url,
            "--ready-timeout",
            "20s",
            "--ready-transaction",
            &file,
        ],
    )
    .await;
    let r = gw.admin_get("/ready").await;
    let b = body(&r);
    assert_eq!(r.status, 200, "{b}");
    let step = check(&b, "transaction");
    assert_eq!(step.len(), 1, "{b}");
    assert_eq!(step[0]["ok"], true, "{b}");
    assert_eq!(step[0]["steps"][0]["outcome"], "passed", "{b}");
    assert!(step[0]["ms"].as_f64().is_some(), "{b}");
    let deps = check(&b, "dependency");
    assert_eq!(deps.len(), 1, "{b}");
    assert_eq!(
        (deps[0]["ok"].as_bool(), deps[0]["status"].as_u64()),
        (Some(true), Some(200)),
        "{b}"
    );
    assert!(deps[0]["ms"].as_f64().is_some(), "{b}");
    drop(gw);

    // The handshake is fine but the tool returns the wrong thing, and a dependency is down: not ready, and
    // the JSON says which check failed and why.
    let file = transaction(
        dir.path(),
        "bad.yaml",
        "size(result.structuredContent.items) > 5",
    );
    // Port 9 on loopback: nothing listens.
    let deps = format!(
        "ready_dependencies:\n  - url: {health}\n    expect_status: 204\n\
         \x20 - url: http://127.0.0.1:9/health?token=s3cret\n    timeout: 2s\n"
    );
    let gw = Gw::start_with_file(
        &deps,
        &[
            "--upstream",
            &peer.url,
            "--ready-timeout",
            "20s",
            "--ready-transaction",
            &file,
        ],
    )
    .await;
    let r = gw.admin_get("/ready").await;
    let b = body(&r);
    assert_eq!(r.status, 503, "{b}");
    assert_eq!(check(&b, "upstream_mcp")[0]["ok"], true, "{b}");
    let step = check(&b, "transaction");
    assert_eq!(step[0]["ok"], false, "{b}");
    assert_eq!(step[0]["reason"], "assertion_failed", "{b}");
    let deps = check(&b, "dependency");
    assert_eq!(
        (deps[0]["ok"].as_bool(), deps[0]["status"].as_u64()),
        (Some(false), Some(200)),
        "{b}"
    );
    assert_eq!(deps[1]["ok"], false, "{b}");
    assert_eq!(deps[1]["status"], Value::Null, "{b}");
    assert!(deps[1]["error"].as_str().is_some(), "{b}");
    assert_eq!(
        deps[1]["url"], "http://127.0.0.1:9/health",
        "the query may hold a secret: {b}"
    );
    assert!(!r.text().contains("s3cret"), "{b}");
}

/// In front of a pool the rule is the pool's (ready while one endpoint is healthy) AND the dependencies; the
/// watcher's probes run the tool step, so a replica whose step fails is not healthy.
#[tokio::test]
async fn a_pool_is_ready_with_a_healthy_endpoint_and_its_dependencies() {
    let (a, b) = tokio::join!(
        Peer::python_tools(PyServer::Stateful),
        Peer::python_tools(PyServer::Stateful)
    );
    let dir = tempfile::tempdir().unwrap();
    let patience = std::time::Duration::from_secs(60);
    let pool = |file: &str| -> Vec<String> {
        [
            "--upstream",
            &a.url,
            "--upstream",
            &b.url,
            "--upstream-health-interval",
            "300ms",
            "--ready-timeout",
            "20s",
            "--ready-ttl",
            "0s",
            "--ready-transaction",
            file,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let ok = transaction(
        dir.path(),
        "ok.yaml",
        "size(result.structuredContent.items) == 2",
    );
    let health = format!("{}/health", a.base);

    // Steps pass, the dependency answers: ready, with the pool and the dependency as checks.
    let args = pool(&ok);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let deps = format!("ready_dependencies:\n  - url: {health}\n");
    let gw = Gw::start_with_file(&deps, &args).await;
    gw.wait_ready(patience).await;
    // Ready needs one healthy endpoint; the second one's first probe may land later on a loaded machine.
    let last = std::cell::RefCell::new(Value::Null);
    lifeline_testkit::assert_eventually!(
        {
            let r = gw.admin_get("/ready").await;
            let b = body(&r);
            let done = r.status == 200
                && check(&b, "upstream_pool")[0]["healthy"] == 2
                && check(&b, "dependency")[0]["ok"] == true;
            last.replace(b);
            done
        },
        patience = patience,
        "a pool with two healthy endpoints and its dependency up: 200; last: {}",
        last.borrow()
    );
    drop(gw);

    // Healthy endpoints, a dependency down (port 9 on loopback: nothing listens): not ready, and why.
    let deps = "ready_dependencies:\n  - url: http://127.0.0.1:9/health\n    timeout: 2s\n";
    let gw = Gw::start_with_file(deps, &args).await;
    let last = std::cell::RefCell::new(Value::Null);
    lifeline_testkit::assert_eventually!(
        {
            let r = gw.admin_get("/ready").await;
            let b = body(&r);
            let done = r.status == 503
                && check(&b, "upstream_pool")[0]["healthy"] == 2
                && check(&b, "dependency")[0]["ok"] == false;
            last.replace(b);
            done
        },
        patience = patience,
        "a pool with two healthy endpoints and its dependency down: 503; last: {}",
        last.borrow()
    );
    drop(gw);

    // The tool step fails on every replica: no endpoint is healthy, each says why.
    let bad = transaction(
        dir.path(),
        "bad.yaml",
        "size(result.structuredContent.items) > 5",
    );
    let args = pool(&bad);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gw = Gw::start_with_file("ready_dependencies: []\n", &args).await;
    lifeline_testkit::assert_eventually!(
        {
            let r = gw.admin_get("/ready").await;
            let b = body(&r);
            let done = r.status == 503
                && b["endpoints"].as_array().is_some_and(|eps| {
                    eps.len() == 2
                        && eps.iter().all(|e| {
                            e["healthy"] == false && e["last_probe"]["reason"] == "assertion_failed"
                        })
                });
            last.replace(b);
            done
        },
        patience = patience,
        "a pool whose replicas fail the tool step: 503; last: {}",
        last.borrow()
    );
}
