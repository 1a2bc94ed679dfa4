//! The monitor's authenticated probes: a target's `auth:` block, validated by the config recipe, drives the real
//! prober against a real authorization server (oidc-provider) and a resource server that checks its tokens (the
//! Python SDK 2.x). The token cache lives in the configuration, so every probe of the target reuses one token.

use lifeline_mcp::{Reason, Verdict};
use lifeline_monitor::{Config, McpProber, Prober};
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, PyAuthConfig, ResourceConfig,
};
use lifeline_testkit::peers::Peer;

#[tokio::test]
async fn an_auth_block_logs_in_once_for_many_probes() {
    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::post(
                "monitor-probe",
                "m0nitor-secret",
                "mcp:read",
            ))
            .resource(ResourceConfig::any_loopback("mcp:read")),
    )
    .await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "m0nitor-secret\n").expect("write the secret");
    let yaml = format!(
        "targets:\n  - name: search\n    url: {}\n    timeout: 30s\n    slow_after: 30s\n    auth:\n      \
         client_id: monitor-probe\n      client_secret_file: {}\n      auth_method: client_secret_post\n      \
         scope: mcp:read\n",
        peer.url,
        secret.display()
    );
    let config = Config::from_yaml(&yaml, &|_| None).expect("the config validates");
    let target = &config.targets[0];
    for _ in 0..3 {
        let r = McpProber.probe(target).await;
        assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.failure);
    }
    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("monitor-probe"), 1, "{stats:?}");
    assert_eq!(
        stats.auth_methods.get("client_secret_post").copied(),
        Some(1),
        "{stats:?}"
    );

    // The secret rotated at the AS but not in the file: a new configuration (an empty cache) fails as
    // auth_failed, which is an outage, not auth_required.
    auth.set_client_secret("monitor-probe", "rotated").await;
    let fresh = Config::from_yaml(&yaml, &|_| None).expect("the config validates");
    let r = McpProber.probe(&fresh.targets[0]).await;
    assert_eq!(
        (r.verdict, r.reason),
        (Verdict::Unhealthy, Some(Reason::AuthFailed)),
        "{:?}",
        r.failure
    );
    // The file is updated (a rotated Kubernetes Secret): the next token request reads it, no restart.
    std::fs::write(&secret, "rotated\n").expect("write the secret");
    let r = McpProber.probe(&fresh.targets[0]).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.failure);
}

/// A refresh token rotated by the authorization server survives a monitor restart: sealed into the database
/// (`sealed_secrets`, SQLite file), it is what the restarted configuration uses, not the configured one that the
/// rotation revoked. The database holds no plaintext token.
#[tokio::test]
async fn a_rotated_refresh_token_is_sealed_and_survives_a_restart() {
    use std::sync::Arc;

    use lifeline_monitor::seal::{SealKey, SealedRefreshTokens};
    use lifeline_monitor::Store;

    let auth = AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic("rt-probe", "rt-secret", "mcp:read"))
            .resource(ResourceConfig::any_loopback("mcp:read")),
    )
    .await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let configured = auth
        .issue_refresh_token("rt-probe", Some(&peer.url), None)
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("monitor.db").display());
    let yaml = format!(
        "targets:\n  - name: r\n    url: {}\n    timeout: 30s\n    slow_after: 30s\n    auth:\n      \
         client_id: rt-probe\n      client_secret: rt-secret\n      refresh_token: {configured}\n      \
         token_url: {}\n",
        peer.url,
        auth.token_url()
    );
    let key = Arc::new(SealKey::parse(&"ab".repeat(32)).expect("a key"));
    for run in 0..2 {
        // Each pass is a fresh process as far as the token is concerned: a new configuration, a new store.
        let config = Config::from_yaml(&yaml, &|_| None).expect("the config validates");
        let store = Store::connect(&db).await.expect("the database");
        let client = config.targets[0]
            .auth
            .as_ref()
            .and_then(|a| a.oauth.clone())
            .expect("a client");
        assert!(client.set_refresh_store(Arc::new(SealedRefreshTokens::new(
            store.clone(),
            Arc::clone(&key)
        ))));
        let r = McpProber.probe(&config.targets[0]).await;
        assert_eq!(r.verdict, Verdict::Healthy, "pass {run}: {:?}", r.failure);
        let key_name =
            client.refresh_store_key(&lifeline_mcp::probe::Secret::new(configured.clone()));
        let sealed = store
            .sealed_get(&key_name)
            .await
            .expect("read")
            .expect("sealed row");
        assert!(!sealed
            .windows(configured.len().min(16))
            .any(|w| configured.as_bytes().starts_with(w)));
        store.close().await;
    }
    assert_eq!(
        auth.stats().await.grants.get("refresh_token").copied(),
        Some(2)
    );
}
