//! Server Cards and the AI Catalog (issue 16 §Discovery; experimental-ext-server-card `docs/discovery.md`) over
//! real servers on loopback: one server-everything in front of a single-upstream gateway (its card carries the
//! name, version and protocol version the readiness probe learned) and of a federation with the Python SDK server
//! in stateless mode (cards for the merged endpoint and each `/servers/NAME/mcp`, a server's `card:` fields
//! winning, the catalog listing all three). Headers: CORS, `Cache-Control`, `ETag` and a 304 for `If-None-Match`,
//! the preflight, 405 for other methods. A pool's card comes from its endpoints' probes, and a stdio upstream's in
//! session mode from its first session's `initialize` (the spare is only pinged).

use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http::{self, RawResponse};
use lifeline_testkit::peers::{EverythingTransport, Peer, PyServer};
use serde_json::Value;

use crate::harness::{
    open_session, GatewayUnderTest, TestGateway as Gw, STDIO_READY_FLAGS, STDIO_READY_PATIENCE,
};

/// Starting the servers on a loaded 2-core machine.
const READY_PATIENCE: Duration = Duration::from_secs(60);

async fn get(method: &str, url: &str, headers: &[(&str, &str)]) -> RawResponse {
    raw_http::request(method, url, headers, None, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn json(r: &RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// The extension's CORS and caching headers (§CORS Requirements, §Caching).
fn assert_public_headers(r: &RawResponse) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type, If-None-Match")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert!(
        r.header("etag").is_some_and(|e| e.starts_with('"')),
        "{:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_serves_server_cards_and_an_ai_catalog_for_what_it_fronts() {
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;

    // A single upstream: the card comes from the readiness probe's report.
    let single = Gw::start(&everything.url, &[]).await;
    single.wait_ready(READY_PATIENCE).await;
    let card_url = format!("{}/server-card", single.mcp());
    let r = get(
        "GET",
        &card_url,
        &[("Accept", "application/mcp-server-card+json")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/mcp-server-card+json")
    );
    assert_public_headers(&r);
    let card = json(&r);
    assert_eq!(
        card["$schema"],
        "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json"
    );
    assert_eq!(card["name"], "mcp-servers/everything", "{card}");
    assert_eq!(card["version"], "2.0.0", "{card}");
    assert_eq!(card["remotes"][0]["type"], "streamable-http");
    assert_eq!(
        card["remotes"][0]["url"],
        single.mcp(),
        "the request's Host without card.public_url"
    );
    assert_eq!(
        card["remotes"][0]["supportedProtocolVersions"],
        serde_json::json!(["2025-11-25"])
    );
    // Revalidation: the same ETag gives 304 without a body; HEAD has the headers only.
    let etag = r.header("etag").expect("an ETag").to_owned();
    let again = get("GET", &card_url, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let head = get("HEAD", &card_url, &[]).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    let pre = get(
        "OPTIONS",
        &card_url,
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    let post = get("POST", &card_url, &[]).await;
    assert_eq!(post.status, 405);
    let catalog = get(
        "GET",
        &format!("{}/.well-known/ai-catalog.json", single.base),
        &[],
    )
    .await;
    assert_eq!(
        catalog.header("content-type"),
        Some("application/ai-catalog+json")
    );
    let entries = json(&catalog)["entries"].clone();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    assert_eq!(entries[0]["url"], card_url);
    drop(single);

    // A federation: cards for the merged endpoint and each server, one server's `card:` fields winning.
    let modern = Peer::python(PyServer::Stateless).await;
    let yaml = format!(
        "card: {{public_url: 'https://mcp.example.com'}}\n\
         servers:\n\
         - {{name: everything, url: {}, health_interval: 300ms}}\n\
         - name: modern\n  url: {}\n  era: modern\n  health_interval: 300ms\n  card: {{name: com.example/adder, description: Adds numbers.}}\n",
        everything.url, modern.url
    );
    let fed = Gw::start_with_file(&yaml, &[]).await;
    fed.wait_ready(READY_PATIENCE).await;
    let catalog = json(
        &get(
            "GET",
            &format!("{}/.well-known/ai-catalog.json", fed.base),
            &[],
        )
        .await,
    );
    let urls: Vec<&str> = catalog["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://mcp.example.com/mcp/server-card",
            "https://mcp.example.com/servers/everything/mcp/server-card",
            "https://mcp.example.com/servers/modern/mcp/server-card"
        ],
        "{catalog}"
    );
    assert_eq!(
        catalog["entries"][1]["identifier"],
        "urn:air:mcp.example.com:mcp:servers.everything.mcp"
    );
    let card = |path: &'static str| {
        let url = format!("{}{path}/server-card", fed.base);
        async move { get("GET", &url, &[]).await }
    };
    let merged = card("/mcp").await;
    assert_public_headers(&merged);
    let merged = json(&merged);
    assert_eq!(
        merged["name"], "com.example.mcp/lifeline-federation",
        "{merged}"
    );
    assert_eq!(merged["remotes"][0]["url"], "https://mcp.example.com/mcp");
    let versions = merged["remotes"][0]["supportedProtocolVersions"].to_string();
    assert!(
        versions.contains("2026-07-28") && versions.contains("2025-11-25"),
        "{merged}"
    );
    // The server's own description arrives with the health check's session (no request of its own).
    assert_eventually!(
        json(&card("/servers/everything/mcp").await)["description"]
            .as_str()
            .is_some_and(|d| d.contains("federated as everything")),
        patience = READY_PATIENCE,
        "{}",
        card("/servers/everything/mcp").await.text()
    );
    let one = json(&card("/servers/everything/mcp").await);
    assert_eq!(one["name"], "lifeline-federation/everything", "{one}");
    let adder = json(&card("/servers/modern/mcp").await);
    assert_eq!(adder["name"], "com.example/adder", "{adder}");
    assert_eq!(adder["description"], "Adds numbers.", "{adder}");
    assert_eq!(
        adder["version"], one["version"],
        "the gateway's version: it answers there"
    );
    // A path that is no endpoint is not a card: it goes on to the proxy/federation (404 there).
    assert_ne!(card("/servers/nope/mcp").await.status, 200);
}

/// The card's name, or the status and body when it is not 200.
async fn card_name_at(url: &str) -> Result<String, String> {
    let r = get("GET", url, &[]).await;
    match r.status {
        200 => Ok(json(&r)["name"].as_str().unwrap_or_default().to_owned()),
        s => Err(format!(
            "{s} (Retry-After {:?}): {}",
            r.header("retry-after"),
            r.text()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_and_stdio_sessions_have_cards_from_what_the_gateway_saw() {
    // A pool (the watcher probes, `/ready` never runs a probe of its own): the card comes from the newest
    // passing endpoint probe; an endpoint that never answered gives nothing.
    let everything = Peer::everything(EverythingTransport::StreamableHttp).await;
    let yaml = format!(
        "upstreams:\n  - url: {}\n  - url: http://127.0.0.1:9/mcp\n",
        everything.url
    );
    let pool = Gw::start_with_file(&yaml, &["--upstream-health-interval", "300ms"]).await;
    pool.wait_ready(READY_PATIENCE).await;
    let card_url = format!("{}/server-card", pool.mcp());
    assert_eventually!(
        card_name_at(&card_url).await.as_deref() == Ok("mcp-servers/everything"),
        patience = READY_PATIENCE,
        "{:?}",
        card_name_at(&card_url).await
    );
    let card = json(&get("GET", &card_url, &[]).await);
    assert_eq!(card["version"], "2.0.0", "{card}");
    assert_eq!(
        card["remotes"][0]["supportedProtocolVersions"],
        serde_json::json!(["2025-11-25"]),
        "{card}"
    );
    // Each endpoint's last probe in /healthz shows what it found.
    let healthz: Value = serde_json::from_slice(&pool.admin_get("/healthz").await.body).unwrap();
    let listed = healthz["upstream_endpoints"].as_array().expect("endpoints");
    let of = |url: &str| {
        listed
            .iter()
            .find(|e| e["endpoint"] == url)
            .map(|e| e["last_probe"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        of(&everything.url)["server_info"]["name"],
        "mcp-servers/everything",
        "{healthz}"
    );
    assert!(
        of("http://127.0.0.1:9/mcp")["server_info"].is_null(),
        "{healthz}"
    );
    drop(pool);

    // Stdio session mode: the ready spare is only pinged, so no card until a client's session has begun; then
    // the card carries what that session's `initialize` result said.
    let (node, args) = Peer::everything_stdio_command();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdio = Gw::start_stdio(&node.to_string_lossy(), &args, STDIO_READY_FLAGS).await;
    stdio.wait_ready(STDIO_READY_PATIENCE).await;
    let card_url = format!("{}/server-card", stdio.mcp());
    let before = get("GET", &card_url, &[]).await;
    assert_eq!(
        (before.status, before.header("retry-after")),
        (503, Some("5")),
        "{}",
        before.text()
    );
    let sid = open_session(&stdio.mcp()).await;
    assert!(!sid.is_empty());
    assert_eq!(
        card_name_at(&card_url).await.as_deref(),
        Ok("mcp-servers/everything")
    );
}
