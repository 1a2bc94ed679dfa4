//! Authenticated probes against a real authorization server (oidc-provider, `peers::oidc::AuthServer`) and a real
//! resource server that checks its tokens (the Python SDK 2.x, `Peer::python_auth`): discovery from the server's
//! 401, the token cache (one token request per lifetime), refresh before expiry, the refresh-token grant with
//! rotation, `private_key_jwt`, and the `auth_failed` / `credential_expiring` verdicts.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lifeline_mcp::probe::{
    ClientAuth, CredentialExpiry, CredentialKind, OAuthClient, OAuthConfig, Phase, ProbeOptions,
    Secret, SecretSource, Target, Timeouts,
};
use lifeline_mcp::{probe, ProbeReport, Reason, Verdict};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, ClientKey, PyAuthConfig, ResourceConfig,
};
use lifeline_testkit::peers::Peer;

const SCOPE: &str = "mcp:read";

/// The AS with one `client_secret_basic` client `probe`/`s3cret` and JWT tokens for any loopback resource.
async fn auth_server(ttl: Option<Duration>, client: ClientConfig) -> AuthServer {
    let mut resource = ResourceConfig::any_loopback(SCOPE);
    if let Some(ttl) = ttl {
        resource = resource.with_ttl(ttl);
    }
    AuthServer::start(
        AuthServerConfig::default()
            .client(client)
            .resource(resource),
    )
    .await
}

fn basic_client() -> ClientConfig {
    ClientConfig::basic("probe", "s3cret", SCOPE)
}

fn options(oauth: Arc<OAuthClient>) -> ProbeOptions {
    ProbeOptions {
        timeouts: Timeouts {
            // Generous: the first probe discovers and logs in on a loaded 2-core machine.
            total: Duration::from_secs(20),
            ..Timeouts::default()
        },
        oauth: Some(oauth),
        check_origin: false,
        slow_after: Duration::from_secs(20),
        ..ProbeOptions::default()
    }
}

fn secret_config(secret: &str) -> OAuthConfig {
    OAuthConfig::client_secret("probe", SecretSource::Value(Secret::new(secret)))
}

async fn run(peer: &Peer, opts: &ProbeOptions) -> ProbeReport {
    probe(&Target::Http(peer.url.parse().expect("peer URL")), opts).await
}

fn healthy(r: &ProbeReport) {
    assert_eq!(r.verdict, Verdict::Healthy, "{:?}", r.failure);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Discovery starts from the real server's 401 (its `resource_metadata`, then the AS's metadata); the token is
/// then reused: five probes, one token request at the AS, one discovery.
#[tokio::test]
async fn discovers_from_a_real_401_and_reuses_the_token() {
    let auth = auth_server(None, basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let oauth = Arc::new(OAuthClient::new(secret_config("s3cret")));
    let opts = options(Arc::clone(&oauth));

    let first = run(&peer, &opts).await;
    healthy(&first);
    assert!(
        first.timings_ms.get(Phase::Token).is_some(),
        "the first probe logs in"
    );
    assert!(first.tools_count.unwrap_or(0) > 0);
    for _ in 0..4 {
        let r = run(&peer, &opts).await;
        healthy(&r);
        assert_eq!(
            r.timings_ms.get(Phase::Token),
            None,
            "later probes use the cache"
        );
    }
    assert_eq!(auth.stats().await.token_requests_of("probe"), 1);
    let stats = oauth.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.discoveries,
            stats.forced_refreshes
        ),
        (1, 1, 0)
    );
    let (verified, _) = peer.verifications().await.expect("verification counts");
    assert!(verified >= 5, "every probe presented the token: {verified}");
}

/// With a short lifetime the token is replaced before it expires: the probes never see a 401 (no forced
/// refresh) and the AS counts one token request per lifetime, not one per probe.
#[tokio::test]
async fn refreshes_before_expiry() {
    let auth = auth_server(Some(Duration::from_secs(3)), basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let mut config = secret_config("s3cret");
    config.token_url = Some(auth.token_url().parse().expect("token URL"));
    // Without discovery nothing suggests a scope.
    config.scope = Some(SCOPE.to_owned());
    let oauth = Arc::new(OAuthClient::new(config));
    let opts = options(Arc::clone(&oauth));

    let mut probes = 0u32;
    assert_eventually!(
        {
            let r = run(&peer, &opts).await;
            healthy(&r);
            probes += 1;
            oauth.stats().token_requests >= 3
        },
        patience = Duration::from_secs(60),
        "the token was not refreshed twice"
    );
    let stats = oauth.stats();
    assert_eq!(
        stats.forced_refreshes, 0,
        "a refresh came after a 401, not before expiry"
    );
    assert_eq!(
        stats.discoveries, 0,
        "a configured token endpoint skips discovery"
    );
    assert_eq!(
        auth.stats().await.token_requests_of("probe"),
        stats.token_requests
    );
    assert!(
        u64::from(probes) > stats.token_requests,
        "more probes ({probes}) than token requests ({})",
        stats.token_requests
    );
}

/// A rotated client secret: a probe that needs a token gets `invalid_client`, which is `auth_failed` in phase
/// `token`, not `auth_required`.
#[tokio::test]
async fn rotated_client_secret_is_auth_failed() {
    let auth = auth_server(None, basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    healthy(
        &run(
            &peer,
            &options(Arc::new(OAuthClient::new(secret_config("s3cret")))),
        )
        .await,
    );

    auth.set_client_secret("probe", "rotated").await;
    let r = run(
        &peer,
        &options(Arc::new(OAuthClient::new(secret_config("s3cret")))),
    )
    .await;
    assert_eq!(
        (r.verdict, r.reason),
        (Verdict::Unhealthy, Some(Reason::AuthFailed)),
        "{:?}",
        r.failure
    );
    let failure = r.failure.expect("a failure");
    assert_eq!(failure.phase, Some(Phase::Token));
    assert!(
        failure.message.contains("invalid_client"),
        "{}",
        failure.message
    );
    assert!(!failure.message.contains("s3cret"), "{}", failure.message);

    // Without a credential the same server is only auth_required.
    let anonymous = ProbeOptions {
        oauth: None,
        ..options(Arc::new(OAuthClient::new(secret_config("x"))))
    };
    assert_eq!(
        run(&peer, &anonymous).await.reason,
        Some(Reason::AuthRequired)
    );

    // The new secret, read from its file at the next token request, works again.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secret");
    std::fs::write(&file, "rotated\n").expect("write the secret");
    let from_file = OAuthConfig::client_secret("probe", SecretSource::File(file));
    healthy(&run(&peer, &options(Arc::new(OAuthClient::new(from_file)))).await);
}

/// A token the server refuses (it lacks the scope the server requires: 403 `insufficient_scope`) is
/// `auth_failed`, with the scope the server asked for.
#[tokio::test]
async fn insufficient_scope_is_auth_failed() {
    let auth = auth_server(None, basic_client()).await;
    let mut server = PyAuthConfig::jwt(auth.issuer());
    server.required_scopes = vec![SCOPE.to_owned(), "mcp:admin".to_owned()];
    let peer = Peer::python_auth(&server).await;
    let mut config = secret_config("s3cret");
    config.scope = Some(SCOPE.to_owned());
    let r = run(&peer, &options(Arc::new(OAuthClient::new(config)))).await;
    assert_eq!(
        (r.verdict, r.reason),
        (Verdict::Unhealthy, Some(Reason::AuthFailed)),
        "{:?}",
        r.failure
    );
    let failure = r.failure.expect("a failure");
    assert!(
        failure.message.contains("insufficient_scope"),
        "{}",
        failure.message
    );
}

/// A client secret that expires in three days: the probe is healthy at the server but `degraded` with
/// `credential_expiring` and the days left.
#[tokio::test]
async fn expiring_secret_is_degraded_with_days_left() {
    let expires = unix_now() + 3 * 86_400 + 3_600;
    let auth = auth_server(None, basic_client().expiring_at(expires)).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let mut opts = options(Arc::new(OAuthClient::new(secret_config("s3cret"))));
    opts.credential_expiry = vec![CredentialExpiry {
        kind: CredentialKind::ClientSecret,
        expires_at_unix: i64::try_from(expires).expect("fits"),
    }];
    let r = run(&peer, &opts).await;
    assert_eq!(
        (r.verdict, r.reason),
        (Verdict::Degraded, Some(Reason::CredentialExpiring)),
        "{:?}",
        r.failure
    );
    assert_eq!(r.credentials.len(), 1);
    assert_eq!(r.credentials[0].days_left, 3);
    let message = r.failure.expect("a failure").message;
    assert!(
        message.contains("the client secret expires in 3 days"),
        "{message}"
    );
    // Outside the window: healthy, the status still reported.
    opts.credential_warning_days = 2;
    let r = run(&peer, &opts).await;
    healthy(&r);
    assert_eq!(r.credentials[0].days_left, 3);
}

/// `private_key_jwt` (RFC 7523): the AS checks the assertion against the client's registered public key.
#[tokio::test]
async fn private_key_jwt_works() {
    let key = ClientKey::generate("probe-key-1");
    let auth = auth_server(
        None,
        ClientConfig::private_key_jwt("jwt-probe", key.public_jwk.clone(), SCOPE),
    )
    .await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let config = OAuthConfig {
        auth: ClientAuth::PrivateKeyJwt {
            key: SecretSource::Value(Secret::new(key.private_pem.clone())),
            key_id: Some(key.kid.clone()),
        },
        ..OAuthConfig::client_secret("jwt-probe", SecretSource::Value(Secret::new("")))
    };
    let r = run(&peer, &options(Arc::new(OAuthClient::new(config)))).await;
    healthy(&r);
    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("jwt-probe"), 1);
    assert_eq!(
        stats.auth_methods.get("private_key_jwt").copied(),
        Some(1),
        "{stats:?}"
    );
}

/// The refresh-token grant with rotation: every refresh returns a new refresh token and revokes the old one, so
/// a second refresh only works with the rotated token the client kept.
#[tokio::test]
async fn refresh_token_grant_keeps_the_rotated_token() {
    let auth = auth_server(Some(Duration::from_secs(2)), basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let refresh = auth
        .issue_refresh_token("probe", Some(&peer.url), None)
        .await;
    let mut config = secret_config("s3cret");
    config.refresh_token = Some(SecretSource::Value(Secret::new(refresh)));
    config.token_url = Some(auth.token_url().parse().expect("token URL"));
    let oauth = Arc::new(OAuthClient::new(config));
    let opts = options(Arc::clone(&oauth));
    assert_eventually!(
        {
            let r = run(&peer, &opts).await;
            healthy(&r);
            oauth.stats().token_requests >= 3
        },
        patience = Duration::from_secs(60),
        "the token was not refreshed twice"
    );
    let stats = auth.stats().await;
    assert_eq!(
        stats.grants.get("refresh_token").copied(),
        Some(oauth.stats().token_requests),
        "{stats:?}"
    );
}

/// Single flight: eight probes of one credential start together with an empty cache; one of them requests the
/// token while the others wait for it, so the AS sees one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_probes_share_one_token_request() {
    let auth = auth_server(None, basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let mut config = secret_config("s3cret");
    config.token_url = Some(auth.token_url().parse().expect("token URL"));
    config.scope = Some(SCOPE.to_owned());
    let oauth = Arc::new(OAuthClient::new(config));
    let opts = Arc::new(options(Arc::clone(&oauth)));
    let probes: Vec<_> = (0..8)
        .map(|_| {
            let opts = Arc::clone(&opts);
            let url = peer.url.clone();
            tokio::spawn(
                async move { probe(&Target::Http(url.parse().expect("URL")), &opts).await },
            )
        })
        .collect();
    for p in probes {
        healthy(&p.await.expect("the probe task"));
    }
    assert_eq!(oauth.stats().token_requests, 1);
    assert_eq!(auth.stats().await.token_requests_of("probe"), 1);
}

/// A `RefreshTokenStore` in memory (the monitor's seals into its database).
#[derive(Debug, Default)]
struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl lifeline_mcp::probe::RefreshTokenStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> lifeline_mcp::probe::oauth::BoxFuture<'a, Result<Option<Secret>, String>> {
        let v = self
            .0
            .lock()
            .expect("lock")
            .get(key)
            .cloned()
            .map(Secret::new);
        Box::pin(async move { Ok(v) })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a Secret,
    ) -> lifeline_mcp::probe::oauth::BoxFuture<'a, Result<(), String>> {
        self.0
            .lock()
            .expect("lock")
            .insert(key.to_owned(), token.expose().to_owned());
        Box::pin(async { Ok(()) })
    }
}

/// A rotated refresh token survives a "restart" (a new client) through the store: the configured token was
/// revoked by the rotation, the stored one works. Without the store, the restarted client presents the revoked
/// token: `auth_failed` (`invalid_grant`).
#[tokio::test]
async fn the_rotated_refresh_token_survives_a_restart_through_the_store() {
    let auth = auth_server(None, basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(auth.issuer())).await;
    let configured = auth
        .issue_refresh_token("probe", Some(&peer.url), None)
        .await;
    let config = || {
        let mut c = secret_config("s3cret");
        c.refresh_token = Some(SecretSource::Value(Secret::new(configured.clone())));
        c.token_url = Some(auth.token_url().parse().expect("token URL"));
        c
    };
    let store = Arc::new(MemoryStore::default());
    let first = Arc::new(OAuthClient::new(config()));
    assert!(first.set_refresh_store(store.clone()));
    healthy(&run(&peer, &options(first)).await);
    let stored = store.0.lock().expect("lock").values().next().cloned();
    assert!(
        stored.is_some_and(|t| t != configured),
        "the rotated token is stored"
    );

    let restarted = Arc::new(OAuthClient::new(config()));
    restarted.set_refresh_store(store.clone());
    healthy(&run(&peer, &options(restarted)).await);

    let forgetful = Arc::new(OAuthClient::new(config()));
    let r = run(&peer, &options(forgetful)).await;
    assert_eq!(r.reason, Some(Reason::AuthFailed), "{:?}", r.failure);
    assert!(r
        .failure
        .expect("a failure")
        .message
        .contains("invalid_grant"));
}

/// RFC 8414 §3.3: the resource server names its authorization server as `http://localhost:PORT`, whose metadata
/// states the issuer `http://127.0.0.1:PORT`. The same server by another name is still a mismatch: the probe
/// stops before any token request (`auth_server_error` in phase `token`).
#[tokio::test]
async fn an_issuer_mismatch_stops_discovery() {
    let auth = auth_server(None, basic_client()).await;
    let renamed = auth.issuer().replace("127.0.0.1", "localhost");
    let peer = Peer::python_auth(&PyAuthConfig::jwt(&renamed)).await;
    let oauth = Arc::new(OAuthClient::new(secret_config("s3cret")));
    let r = run(&peer, &options(Arc::clone(&oauth))).await;
    assert_eq!(
        (r.verdict, r.reason),
        (Verdict::Unhealthy, Some(Reason::AuthServerError)),
        "{:?}",
        r.failure
    );
    let failure = r.failure.expect("a failure");
    assert_eq!(failure.phase, Some(Phase::Token));
    assert!(
        failure.message.contains("RFC 8414 §3.3"),
        "{}",
        failure.message
    );
    assert_eq!(oauth.stats().token_requests, 0);
    assert_eq!(auth.stats().await.token_requests_of("probe"), 0);
}

/// A server that refuses every token this credential yields (it trusts another issuer): the first probe forces
/// one refresh, then the credential is paused ([`lifeline_mcp::probe::oauth::FIRST_PAUSE`]), so five probes cost
/// the authorization server two token requests, not one per probe; every probe is `auth_failed`.
#[tokio::test]
async fn a_server_refusing_every_token_costs_one_forced_refresh_then_a_pause() {
    let ours = auth_server(None, basic_client()).await;
    let theirs = auth_server(None, basic_client()).await;
    let peer = Peer::python_auth(&PyAuthConfig::jwt(theirs.issuer())).await;
    let mut config = secret_config("s3cret");
    config.token_url = Some(ours.token_url().parse().expect("token URL"));
    config.scope = Some(SCOPE.to_owned());
    let oauth = Arc::new(OAuthClient::new(config));
    let opts = options(Arc::clone(&oauth));

    let started = std::time::Instant::now();
    for _ in 0..5 {
        let r = run(&peer, &opts).await;
        assert_eq!(
            (r.verdict, r.reason),
            (Verdict::Unhealthy, Some(Reason::AuthFailed)),
            "{:?}",
            r.failure
        );
    }
    let requests = ours.stats().await.token_requests_of("probe");
    if started.elapsed() < lifeline_mcp::probe::oauth::FIRST_PAUSE {
        assert_eq!(requests, 2, "one token, one forced refresh, then the pause");
    } else {
        // A machine so loaded that five probes outlasted the first pause: one more forced refresh at most.
        assert!(requests <= 3, "{requests} token requests for 5 probes");
    }
    assert_eq!(oauth.stats().token_requests, requests);
}
