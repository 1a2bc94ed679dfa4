//! Credentials and MCP headers at the edge of the real `lifeline gateway` process: client tokens are not passed
//! through, configured upstream headers and MCP headers are, and the upstream secret never reaches the binary's
//! log (its start-up line logs the effective configuration, redacted). The other edge rules are tested in
//! process in `crates/lifeline-gateway/tests/it/edge.rs`.

use crate::gateway_harness as harness;

use std::time::Duration;

use harness::{post, GatewayUnderTest, Gw, INIT};
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts};

async fn healthy() -> FakeServer {
    FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .expect("fake upstream")
}

#[tokio::test]
async fn authorization_is_not_passed_through_and_mcp_headers_are() {
    let fake = healthy().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let header_file = dir.path().join("headers");
    std::fs::write(&header_file, "# upstream credentials\nX-From-File: f1\n").expect("write");
    let header_file = header_file.to_string_lossy().into_owned();
    let gw = Gw::start(
        &fake.url(),
        &[
            "--upstream-header",
            "X-Api-Key: k1",
            "--upstream-header-file",
            &header_file,
        ],
    )
    .await;
    gw.wait_ready(Duration::from_secs(10)).await;
    let r = post(
        &gw.mcp(),
        &[
            ("Authorization", "Bearer client-token"),
            ("Mcp-Method", "initialize"),
            ("Mcp-Param-Region", "us-west1"),
            ("Mcp-Name", "=?base64?SGVsbG8=?="),
        ],
        INIT,
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = fake.last_request_headers().expect("headers seen");
    assert!(
        seen.get("authorization").is_none(),
        "token passthrough: {seen:?}"
    );
    assert_eq!(
        seen.get("x-api-key").and_then(|v| v.to_str().ok()),
        Some("k1")
    );
    assert_eq!(
        seen.get("x-from-file").and_then(|v| v.to_str().ok()),
        Some("f1")
    );
    assert_eq!(
        seen.get("mcp-param-region").and_then(|v| v.to_str().ok()),
        Some("us-west1")
    );
    assert_eq!(
        seen.get("mcp-name").and_then(|v| v.to_str().ok()),
        Some("=?base64?SGVsbG8=?=")
    );
    assert_eq!(
        seen.get("mcp-method").and_then(|v| v.to_str().ok()),
        Some("initialize")
    );
    // The secret never reaches the logs.
    assert!(!gw.logs().contains("k1\""), "{}", gw.logs());

    let gw = Gw::start(&fake.url(), &["--forward-authorization"]).await;
    gw.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(
        post(&gw.mcp(), &[("Authorization", "Bearer client-token")], INIT)
            .await
            .status,
        200
    );
    let seen = fake.last_request_headers().expect("headers seen");
    assert_eq!(
        seen.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer client-token")
    );
}
