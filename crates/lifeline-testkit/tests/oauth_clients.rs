//! The real OAuth clients (Python SDK 2.x and TypeScript SDK) log in with client credentials against the real
//! authorization server (oidc-provider) and use a Python SDK server that checks the tokens itself: discovery from the
//! server's 401, a token for the right audience, tools listed and called; without a credential they are refused.
//! Needs the peers installed.

use serde_json::json;

use lifeline_testkit::peers::oauth_client::OAuthClient;
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, ClientKey, PyAuthConfig, ResourceConfig, TokenCheck,
};
use lifeline_testkit::peers::{Peer, PyServer};

const SCOPE: &str = "mcp:read";

#[tokio::test]
async fn sdk_clients_log_in_and_call_tools_on_a_server_checking_jwts() {
    let key = ClientKey::generate("probe-key-1");
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("probe", "s3cret", "mcp:read mcp:write"))
            .client(ClientConfig::private_key_jwt(
                "keyed",
                key.public_jwk.clone(),
                SCOPE,
            ))
            .resource(ResourceConfig::any_loopback("mcp:read mcp:write")),
    )
    .await;
    let server = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;

    // Python SDK, secret (Basic), handshake era: discovery, token, list, call with structuredContent.
    let run = OAuthClient::python(&server.url)
        .secret("probe", "s3cret")
        .issuer(auth.issuer())
        .call("search", json!({"query": "canary"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", server.guard.output_tail());
    assert!(run.tools().contains(&"whoami".to_owned()), "{run:?}");
    assert_eq!(
        run.call()["structured"]["items"][0]["id"],
        "doc-1",
        "{run:?}"
    );
    assert_eq!(run.tokens_obtained(), 1, "{run:?}");

    // Python SDK, client_secret_post, 2026-07-28: the token names this server as its resource.
    let run = OAuthClient::python(&server.url)
        .secret_post("probe", "s3cret")
        .mode("2026-07-28")
        .call("whoami", json!({}))
        .run()
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.outcome["protocol_version"], "2026-07-28", "{run:?}");
    assert_eq!(run.call()["structured"]["client_id"], "probe", "{run:?}");
    assert_eq!(
        run.call()["structured"]["resource"],
        server.url.as_str(),
        "{run:?}"
    );
    assert_eq!(
        run.call()["structured"]["scopes"],
        json!([SCOPE]),
        "{run:?}"
    );

    // TypeScript SDK, secret (Basic) and private_key_jwt.
    let run = OAuthClient::typescript(&server.url)
        .secret("probe", "s3cret")
        .scope(SCOPE)
        .issuer(auth.issuer())
        .call("add", json!({"a": 2, "b": 3}))
        .run()
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.call()["structured"], json!({"result": 5}), "{run:?}");
    let run = OAuthClient::typescript(&server.url)
        .private_key("keyed", &key)
        .scope(SCOPE)
        .issuer(auth.issuer())
        .call("whoami", json!({}))
        .run()
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.call()["structured"]["client_id"], "keyed", "{run:?}");

    // Python SDK, private_key_jwt.
    let run = OAuthClient::python(&server.url)
        .private_key("keyed", &key)
        .issuer(auth.issuer())
        .call("echo", json!({"message": "keyed"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.call()["text"], "keyed", "{run:?}");

    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("probe"), 3, "{stats:?}");
    assert_eq!(stats.token_requests_of("keyed"), 2, "{stats:?}");
    assert_eq!(
        stats.auth_methods.get("client_secret_post"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(
        stats.auth_methods.get("private_key_jwt"),
        Some(&2),
        "{stats:?}"
    );
    assert!(stats.token_errors.is_empty(), "{stats:?}");

    // Without a credential both clients are refused and nothing is listed; a wrong secret never gets a token (the
    // TypeScript client, which starts in a second where the Python one takes several on a busy machine).
    let (verified_before, _) = server.verifications().await.expect("verification counts");
    for client in [
        OAuthClient::python(&server.url),
        OAuthClient::typescript(&server.url),
    ] {
        let run = client.run().await;
        assert!(!run.ok, "{run:?}");
        assert!(run.tools().is_empty(), "{run:?}");
    }
    let run = OAuthClient::typescript(&server.url)
        .secret("probe", "wrong")
        .scope(SCOPE)
        .run()
        .await;
    assert!(!run.ok, "{run:?}");
    assert!(
        run.error().contains("client authentication failed"),
        "{run:?}"
    );
    assert_eq!(run.tokens_obtained(), 0, "{run:?}");
    assert_eq!(
        server.verifications().await.expect("counts").0,
        verified_before
    );
}

#[tokio::test]
async fn a_server_checking_opaque_tokens_by_introspection() {
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("probe", "s3cret", SCOPE))
            .client(ClientConfig::basic("introspector", "i-secret", "")),
    )
    .await;
    let server = Peer::python_auth(&PyAuthConfig {
        check: TokenCheck::Introspection {
            client_id: "introspector".to_owned(),
            client_secret: "i-secret".to_owned(),
        },
        mode: PyServer::Stateless,
        ..PyAuthConfig::jwt(auth.issuer())
    })
    .await;
    auth.add_resource(ResourceConfig::opaque(&server.url, SCOPE))
        .await;

    let run = OAuthClient::python(&server.url)
        .secret("probe", "s3cret")
        .call("fetch", json!({"id": "doc-2"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}\n{}", server.guard.output_tail());
    assert_eq!(
        run.call()["structured"]["title"],
        "Second document",
        "{run:?}"
    );
    let run = OAuthClient::python(&server.url)
        .secret("probe", "s3cret")
        .call("fetch", json!({"id": "nope"}))
        .run()
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.call()["is_error"], true, "{run:?}");
    assert!(auth.stats().await.introspection_calls >= 2);

    // A token for another resource is refused even though it is active.
    let other = auth
        .client_credentials("probe", "s3cret", None, Some(SCOPE))
        .await
        .expect("an audience-less token");
    let resp = lifeline_testkit::peers::raw_http::post_json(
        &server.url,
        &[("Authorization", &format!("Bearer {}", other.access_token))],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
    )
    .await
    .expect("the server answers");
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.header("www-authenticate")
            .is_some_and(|v| v.contains("resource_metadata=")),
        "{:?}",
        resp.headers
    );
}
