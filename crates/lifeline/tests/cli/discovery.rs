//! Discovery (issue 16 §Discovery) as a user runs it: the built `lifeline gateway` serves a Server Card (one field
//! set in its config file, `card.version`, so the card disagrees with the live server), `lifeline check` reports
//! the card and the disagreement as a warning without changing the verdict or the exit code, and reports a server
//! without a card; `lifeline scan` takes the gateway's AI Catalog URL and two domains without a catalog (a 404 and
//! a bare host that does not speak TLS), and gives one census row each, the catalog's endpoint scanned under the
//! card's name. Real peers: server-everything behind the gateway.

use std::time::Duration;

use lifeline_testkit::cli::{assert_exit, stdout};
use lifeline_testkit::peers::{EverythingTransport, Peer};
use serde_json::Value;

use crate::gateway_harness::{GatewayUnderTest, Gw};

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");
const READY_PATIENCE: Duration = Duration::from_secs(60);

async fn lifeline(args: &[&str]) -> std::process::Output {
    crate::check_peers::run(BIN, args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_the_card_and_scan_discovers_endpoints_through_the_catalog() {
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        "card: {version: 9.9.9, description: The reference server.}\n",
    )
    .expect("writing the config");
    let gw = Gw::start_with(&[
        "--upstream",
        &everything.url,
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    gw.wait_ready(READY_PATIENCE).await;

    // check: the card is there, its version disagrees (a warning), the verdict and exit code do not change.
    let out = lifeline(&["check", &gw.mcp(), "--json"]).await;
    assert_exit(&out, 0);
    let reports: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let r = &reports[0];
    assert_eq!(r["verdict"], "healthy", "{r}");
    assert_eq!(r["card"]["present"], true, "{r}");
    assert_eq!(r["card"]["agrees"], false, "{r}");
    assert_eq!(r["card"]["url"], format!("{}/server-card", gw.mcp()));
    let d = &r["card"]["disagreements"];
    assert_eq!(d.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(
        (&d[0]["field"], &d[0]["card"], &d[0]["server"]),
        (
            &Value::from("version"),
            &Value::from("9.9.9"),
            &Value::from("2.0.0")
        ),
        "{r}"
    );
    assert_eq!(r["card"]["problems"], serde_json::json!([]), "{r}");
    let human = lifeline(&["check", &gw.mcp()]).await;
    assert_exit(&human, 0);
    let text = stdout(&human);
    assert!(text.contains("disagrees with the server"), "{text}");
    assert!(
        text.contains(
            "warning    card_mismatch: version: the card says \"9.9.9\", the server says \"2.0.0\""
        ),
        "{text}"
    );
    // A server without a card: reported, nothing else changes.
    let out = lifeline(&["check", &everything.url, "--json"]).await;
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r[0]["card"]["present"], false, "{r}");
    assert!(
        r[0]["card"]["status"].as_u64().is_some_and(|s| s >= 400),
        "{r}"
    );

    // --no-card: no card request, so no card finding (the same target has one without the flag, above).
    let out = lifeline(&["check", &gw.mcp(), "--json", "--no-card"]).await;
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r[0]["verdict"], "healthy", "{r}");
    assert!(r[0]["card"].is_null(), "{r}");

    // scan: the gateway's catalog gives its one endpoint; the two domains without a catalog are rows.
    let everything_host = everything
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "{}/.well-known/ai-catalog.json\nhttp://{everything_host}/.well-known/ai-catalog.json\n{everything_host}\n",
            gw.base
        ),
    )
    .expect("writing the list");
    let out_dir = dir.path().join("out");
    let out = lifeline(&[
        "scan",
        list.to_str().unwrap(),
        "--allow-private",
        "--per-host",
        "8",
        "--timeout",
        "10s",
        "--out",
        out_dir.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = std::fs::read_to_string(out_dir.join("scan.jsonl"))
        .expect("scan.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let row = |url: &str| {
        lines
            .iter()
            .find(|l| l["url"] == url)
            .unwrap_or_else(|| panic!("no row for {url}: {lines:?}"))
            .clone()
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    let endpoint = row(&gw.mcp());
    assert_eq!(endpoint["category"], "healthy", "{endpoint}");
    assert_eq!(
        endpoint["name"], "mcp-servers/everything",
        "the card's name"
    );
    let missing = row(&format!(
        "http://{everything_host}/.well-known/ai-catalog.json"
    ));
    assert_eq!(missing["category"], "broken", "{missing}");
    assert!(
        missing["failure"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no AI Catalog")),
        "{missing}"
    );
    let bare = row(&format!(
        "https://{everything_host}/.well-known/ai-catalog.json"
    ));
    // A bare host means https: this plain-HTTP server fails the TLS handshake, a row like any unreachable one.
    assert_ne!(bare["category"], "healthy", "{bare}");
    assert!(bare["failure"]["message"].is_string(), "{bare}");
}
