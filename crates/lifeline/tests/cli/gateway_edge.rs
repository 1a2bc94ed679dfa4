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
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-Host", "spoofed.example"),
        ],
        INIT,
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = fake.last_request_headers().expect("headers seen");
    // X-Forwarded-*: the peer appended to the client's list, the client's Host, the scheme; one field each.
    let one = |name: &str| {
        let all: Vec<_> = seen.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "{name}: {seen:?}");
        all[0].to_str().expect("ASCII").to_owned()
    };
    assert_eq!(one("x-forwarded-for"), "10.0.0.1, 127.0.0.1");
    assert_eq!(one("x-forwarded-proto"), "http");
    let authority = gw.mcp().split('/').nth(2).expect("authority").to_owned();
    assert_eq!(one("x-forwarded-host"), authority);
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

    // An operator's own X-Forwarded-Proto (TLS ends in front of the gateway) replaces the gateway's.
    let gw = Gw::start(
        &fake.url(),
        &[
            "--forward-authorization",
            "--upstream-header",
            "X-Forwarded-Proto: https",
        ],
    )
    .await;
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
    let protos: Vec<_> = seen.get_all("x-forwarded-proto").iter().collect();
    assert_eq!(protos, ["https"], "{seen:?}");
}
