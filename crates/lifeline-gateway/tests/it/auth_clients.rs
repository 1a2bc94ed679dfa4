//! Real clients through the gateway with tokens from the real authorization server (issue 12, "Real peers"),
//! beyond the basic flow `auth.rs` covers (`real_sdk_clients_discover_the_server_log_in_and_call_tools_through_the_
//! gateway`: a fixed port, `auth.resource` and `aud` = that resource, client_secret_basic): here the gateway derives
//! its resource from the request and the identity provider names the API with a fixed audience (the Auth0/Entra
//! style of `docs/gateway-auth.md`'s recipes), and the official SDK clients (`lifeline_testkit::peers::
//! oauth_client`) log in with client_secret_post (Python, 2026-07-28) and private_key_jwt (TypeScript), keep working
//! across a signing key rotation at the AS, and pass with opaque tokens the gateway introspects once each (RFC 7662).
//! The Python client without a credential is refused before anything reaches the upstream.

use std::time::Duration;

use crate::auth::decisions;
use crate::harness::{metric, GatewayUnderTest as _, TestGateway as Gw};
use lifeline_testkit::peers::oauth_client::OAuthClient;
use lifeline_testkit::peers::oidc::{
    jwt_header, AuthServer, AuthServerConfig, ClientConfig, ClientKey, ResourceConfig,
};
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::json;

/// The audience the AS puts in the gateway's tokens.
const AUDIENCE: &str = "api://lifeline-mcp";

/// How long the gateway may take to become ready in front of the Python server on a loaded machine.
const READY_PATIENCE: Duration = Duration::from_secs(40);

#[tokio::test]
async fn sdk_clients_with_post_and_private_key_jwt_credentials_survive_a_key_rotation() {
    let key = ClientKey::generate("keyed-1");
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("probe", "s3cret", "mcp:read mcp:write"))
            .client(ClientConfig::private_key_jwt(
                "keyed",
                key.public_jwk.clone(),
                "mcp:read",
            ))
            // The gateway's port is not known before it starts (port 0), so neither its resource URI: the AS
            // serves any loopback resource and names the API with a fixed audience, as some identity providers do.
            .resource(ResourceConfig::any_loopback("mcp:read mcp:write").with_audience(AUDIENCE)),
    )
    .await;
    let upstream = Peer::python(PyServer::Stateful).await;
    // No `resource:`: derived from the request (http://127.0.0.1:PORT/mcp), which is what the clients check the
    // metadata against and ask the AS for; the tokens' audience is the fixed one.
    let yaml = format!(
        "upstream: {}\nauth:\n  jwt:\n    - issuer: {}\n      audiences: [{AUDIENCE}]\n  scopes_supported: [mcp:read]\n",
        upstream.url,
        auth.issuer()
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    let mcp = gw.mcp();

    // Without a credential the Python client is refused at the gateway; nothing reaches the upstream.
    let sessions = upstream.sessions_active().await;
    let run = OAuthClient::python(&mcp).run().await;
    assert!(!run.ok, "{run:?}");
    assert!(run.tools().is_empty(), "{run:?}");
    assert!(decisions(&gw, "denied", "missing").await >= 1.0);
    assert_eq!(upstream.sessions_active().await, sessions);
    assert_eq!(auth.stats().await.token_requests_of("probe"), 0);

    // Python SDK, 2026-07-28 (stateless requests, server/discover), client_secret_post: 401 → RFC 9728 metadata at
    // the gateway → the AS → token → tools.
    let run = OAuthClient::python(&mcp)
        .secret_post("probe", "s3cret")
        .mode("2026-07-28")
        .issuer(auth.issuer())
        .call("add", json!({"a": 2, "b": 40}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", gw.logs());
    assert_eq!(run.outcome["protocol_version"], "2026-07-28", "{run:?}");
    assert!(run.tools().contains(&"echo".to_owned()), "{run:?}");
    assert_eq!(run.call()["text"], "42", "{run:?}");
    assert_eq!(run.tokens_obtained(), 1, "{run:?}");

    // TypeScript SDK, private_key_jwt (RFC 7523).
    let run = OAuthClient::typescript(&mcp)
        .private_key("keyed", &key)
        .scope("mcp:read")
        .issuer(auth.issuer())
        .call("echo", json!({"message": "keyed"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", gw.logs());
    assert_eq!(run.call()["text"], "keyed", "{run:?}");

    // Key rotation at the AS: the next client's token is signed by a kid the gateway has not seen; it refetches
    // the JWKS and lets it through, no restart.
    let kids = auth.rotate_keys().await;
    auth.drop_old_keys().await;
    let run = OAuthClient::typescript(&mcp)
        .secret("probe", "s3cret")
        .scope("mcp:read")
        .issuer(auth.issuer())
        .call("echo", json!({"message": "rotated"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", gw.logs());
    let refetched = metric(
        &gw.metrics().await,
        "lifeline_gateway_auth_jwks_refreshes_total{trigger=\"unknown_kid\",result=\"ok\"}",
    );
    assert_eq!(refetched, Some(1.0), "one refetch for the new kid");
    let fresh = auth
        .client_credentials("probe", "s3cret", Some(&mcp), Some("mcp:read"))
        .await
        .expect("a token");
    assert_eq!(
        jwt_header(&fresh.access_token).expect("a JWT")["kid"],
        kids[0]
    );

    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("probe"), 3, "{stats:?}");
    assert_eq!(stats.token_requests_of("keyed"), 1, "{stats:?}");
    assert_eq!(
        stats.auth_methods.get("client_secret_post"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(
        stats.auth_methods.get("private_key_jwt"),
        Some(&1),
        "{stats:?}"
    );
    assert!(stats.token_errors.is_empty(), "{stats:?}");
    assert!(decisions(&gw, "allowed", "jwt").await >= 3.0);
}

#[tokio::test]
async fn sdk_clients_pass_with_opaque_tokens_the_gateway_introspects() {
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("probe", "s3cret", "mcp:read"))
            .client(ClientConfig::basic("lifeline-gateway", "gw-secret", ""))
            .resource(ResourceConfig::opaque("*", "mcp:read").with_audience(AUDIENCE)),
    )
    .await;
    let upstream = Peer::python(PyServer::Stateless).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("introspection-secret");
    std::fs::write(&secret, "gw-secret\n").expect("the secret file");
    let yaml = format!(
        "upstream: {}\nauth:\n  introspection:\n    - url: {}\n      client_id: lifeline-gateway\n      \
         client_secret_file: {}\n      issuer: {}\n      audiences: [{AUDIENCE}]\n  scopes_supported: [mcp:read]\n",
        upstream.url,
        auth.introspection_url(),
        secret.display(),
        auth.issuer()
    );
    let gw = Gw::start_with_file(&yaml, &[]).await;
    gw.wait_ready(READY_PATIENCE).await;
    let mcp = gw.mcp();

    let run = OAuthClient::typescript(&mcp)
        .secret("probe", "s3cret")
        .scope("mcp:read")
        .issuer(auth.issuer())
        .call("echo", json!({"message": "opaque"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", gw.logs());
    assert_eq!(run.call()["text"], "opaque", "{run:?}");
    let run = OAuthClient::python(&mcp)
        .secret("probe", "s3cret")
        .mode("2026-07-28")
        .call("add", json!({"a": 1, "b": 1}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", gw.logs());
    assert_eq!(run.call()["text"], "2", "{run:?}");

    // Introspected once per token at most (the gateway caches answers), never per request.
    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("probe"), 2, "{stats:?}");
    assert!((1..=2).contains(&stats.introspection_calls), "{stats:?}");
    assert!(decisions(&gw, "allowed", "introspection").await >= 4.0);
}
