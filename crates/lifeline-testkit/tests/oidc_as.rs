//! The real authorization server fixture (`peers::oidc::AuthServer`, oidc-provider on Node 22) does what the auth
//! tests rely on: client-credentials tokens whose `aud` is the resource and whose signature verifies against the
//! published JWKS (checked here with ring, independently of the fixture), introspection of opaque tokens, secret
//! rotation, key rotation, negative tokens and the counters. Needs the peers installed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use lifeline_testkit::peers::oidc::{
    jwt_claims, jwt_header, AuthServer, AuthServerConfig, ClientConfig, ResourceConfig, Signing,
};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";
const OPAQUE_RESOURCE: &str = "http://127.0.0.1:9/opaque";

/// Whether `token` is an RS256 JWT whose signature verifies with the JWKS key named by its `kid`.
fn verifies_with(jwks: &Value, token: &str) -> bool {
    let Ok(header) = jwt_header(token) else {
        return false;
    };
    if header["alg"] != "RS256" {
        return false;
    }
    let Some(key) = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
    else {
        return false;
    };
    let b64 = |v: &Value| {
        URL_SAFE_NO_PAD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let public = ring::signature::RsaPublicKeyComponents {
        n: b64(&key["n"]),
        e: b64(&key["e"]),
    };
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .is_ok()
}

fn config() -> AuthServerConfig {
    AuthServerConfig {
        jwks_cache_control: Some("max-age=300".to_owned()),
        ..AuthServerConfig::default()
    }
    .client(ClientConfig::basic("probe", "s3cret", "mcp:read mcp:write"))
    .client(ClientConfig::post("poster", "p0st", "mcp:read"))
    .client(ClientConfig::basic("lifeline-gateway", "gw-secret", ""))
    .resource(ResourceConfig::jwt(RESOURCE, "mcp:read mcp:write"))
    .resource(ResourceConfig::opaque(OPAQUE_RESOURCE, "mcp:read"))
}

#[tokio::test]
async fn client_credentials_tokens_carry_the_resource_and_verify_against_the_jwks() {
    let auth = AuthServer::start(config()).await;
    let token = auth
        .client_credentials("probe", "s3cret", Some(RESOURCE), Some("mcp:read"))
        .await
        .expect("a token for the resource");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.scope.as_deref(), Some("mcp:read"));
    let claims = jwt_claims(&token.access_token).expect("a JWT access token");
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    assert_eq!(claims["iss"], auth.issuer(), "{claims}");
    assert_eq!(claims["client_id"], "probe", "{claims}");
    let jwks = auth.jwks().await;
    assert!(verifies_with(&jwks, &token.access_token), "{jwks}");
    let resp = lifeline_testkit::peers::raw_http::request(
        "GET",
        &auth.jwks_url(),
        &[],
        None,
        lifeline_testkit::peers::oidc::REQUEST_TIMEOUT,
    )
    .await
    .expect("the JWKS");
    assert_eq!(resp.header("cache-control"), Some("max-age=300"));

    // The discovery documents name the endpoints the launcher reports (RFC 8414 and OIDC).
    for url in [auth.oauth_metadata_url(), auth.openid_configuration_url()] {
        let resp = lifeline_testkit::peers::raw_http::request(
            "GET",
            &url,
            &[],
            None,
            lifeline_testkit::peers::oidc::REQUEST_TIMEOUT,
        )
        .await
        .expect("metadata");
        let meta: Value = serde_json::from_slice(&resp.body).expect("JSON metadata");
        assert_eq!(meta["issuer"], auth.issuer());
        assert_eq!(meta["token_endpoint"], auth.token_url());
        assert_eq!(meta["jwks_uri"], auth.jwks_url());
        assert_eq!(meta["introspection_endpoint"], auth.introspection_url());
    }

    // A client_secret_post client, and a scope the client may not have.
    auth.client_credentials("poster", "p0st", Some(RESOURCE), Some("mcp:read"))
        .await
        .expect("client_secret_post works");
    let err = auth
        .client_credentials("poster", "p0st", Some(RESOURCE), Some("mcp:write"))
        .await
        .expect_err("mcp:write is not the client's");
    assert!(err.contains("invalid_scope"), "{err}");
    let err = auth
        .client_credentials("probe", "s3cret", Some("http://example.com/mcp"), None)
        .await
        .expect_err("an unknown resource");
    assert!(err.contains("invalid_target"), "{err}");

    // Forged tokens: only the `Current` one verifies.
    let good = auth.mint(json!({"aud": RESOURCE}), Signing::Current).await;
    assert!(verifies_with(&jwks, &good));
    for signing in [
        Signing::UnknownKid,
        Signing::Foreign,
        Signing::Hs256WithPublicKey,
        Signing::None,
    ] {
        let bad = auth
            .mint(json!({"aud": RESOURCE, "exp": null}), signing)
            .await;
        assert!(!verifies_with(&jwks, &bad), "{signing:?} must not verify");
        assert_eq!(jwt_claims(&bad).expect("claims")["exp"], Value::Null);
    }

    // Key rotation: the new key signs and comes first; the old one stays until dropped.
    let kids = auth.rotate_keys().await;
    assert_eq!(kids.len(), 2);
    let rotated = auth
        .client_credentials("probe", "s3cret", Some(RESOURCE), None)
        .await
        .expect("a token after rotation");
    assert_eq!(
        jwt_header(&rotated.access_token).expect("header")["kid"],
        kids[0]
    );
    let jwks = auth.jwks().await;
    assert_eq!(jwks["keys"][0]["kid"], kids[0]);
    assert!(verifies_with(&jwks, &rotated.access_token));
    assert!(
        verifies_with(&jwks, &token.access_token),
        "the old key is still published"
    );
    assert_eq!(auth.drop_old_keys().await, vec![kids[0].clone()]);
    assert!(!verifies_with(&auth.jwks().await, &token.access_token));

    let stats = auth.stats().await;
    assert_eq!(stats.token_requests_of("probe"), 3, "{stats:?}");
    assert_eq!(stats.token_requests_of("poster"), 2, "{stats:?}");
    assert_eq!(stats.token_errors.get("poster"), Some(&1), "{stats:?}");
    assert_eq!(stats.jwks_fetches, 4, "{stats:?}");
    assert_eq!(stats.metadata_fetches, 2, "{stats:?}");
}

#[tokio::test]
async fn introspection_secret_rotation_and_refresh() {
    let auth = AuthServer::start(config()).await;
    let opaque = auth
        .client_credentials("probe", "s3cret", Some(OPAQUE_RESOURCE), Some("mcp:read"))
        .await
        .expect("an opaque token");
    assert!(jwt_claims(&opaque.access_token).is_err(), "opaque");
    let answer = auth
        .introspect("lifeline-gateway", "gw-secret", &opaque.access_token)
        .await
        .expect("introspection answers");
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["aud"], OPAQUE_RESOURCE, "{answer}");
    assert_eq!(answer["scope"], "mcp:read", "{answer}");
    let bogus = auth
        .introspect("lifeline-gateway", "gw-secret", "not-a-token")
        .await
        .expect("introspection answers");
    assert_eq!(bogus["active"], false, "{bogus}");
    assert!(auth
        .introspect("lifeline-gateway", "wrong", &opaque.access_token)
        .await
        .is_err());
    assert_eq!(auth.stats().await.introspection_calls, 3);

    // An introspection outage, then recovery.
    auth.set_fault("/token/introspection", std::time::Duration::ZERO, Some(503))
        .await;
    let err = auth
        .introspect("lifeline-gateway", "gw-secret", &opaque.access_token)
        .await
        .expect_err("the outage");
    assert!(err.contains("503"), "{err}");
    auth.clear_fault("/token/introspection").await;
    assert_eq!(
        auth.introspect("lifeline-gateway", "gw-secret", &opaque.access_token)
            .await
            .expect("introspection is back")["active"],
        true
    );

    // A secret past its client_secret_expires_at is refused.
    auth.set_client_secret_expiring("poster", "p0st", Some(1_000_000_000))
        .await;
    let err = auth
        .client_credentials("poster", "p0st", Some(RESOURCE), None)
        .await
        .expect_err("an expired secret");
    assert!(err.contains("invalid_client"), "{err}");

    // Secret rotation: the old secret stops working at once.
    auth.set_client_secret("probe", "n3w").await;
    let err = auth
        .client_credentials("probe", "s3cret", Some(RESOURCE), None)
        .await
        .expect_err("the old secret is refused");
    assert!(err.contains("invalid_client"), "{err}");
    auth.client_credentials("probe", "n3w", Some(RESOURCE), None)
        .await
        .expect("the new secret works");

    // Refresh tokens rotate; a reused one is refused.
    let refresh = auth
        .issue_refresh_token("probe", Some(RESOURCE), Some("mcp:read"))
        .await;
    let first = auth
        .refresh("probe", "n3w", &refresh, None)
        .await
        .expect("a refresh grant");
    assert_eq!(
        jwt_claims(&first.access_token).expect("JWT")["aud"],
        RESOURCE
    );
    let next = first.refresh_token.expect("a rotated refresh token");
    assert_ne!(next, refresh);
    let err = auth
        .refresh("probe", "n3w", &refresh, None)
        .await
        .expect_err("reuse");
    assert!(err.contains("invalid_grant"), "{err}");
    assert_eq!(auth.stats().await.grants.get("refresh_token"), Some(&2));
}

#[test]
fn client_keys_hold_one_consistent_p256_pair() {
    let key = lifeline_testkit::peers::oidc::ClientKey::generate("k1");
    assert_eq!(key.public_jwk["kid"], "k1");
    assert!(key.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let b64 = |v: &Value| {
        URL_SAFE_NO_PAD
            .decode(v.as_str().expect("a base64url member"))
            .expect("base64url")
    };
    let mut point = vec![0x04];
    point.extend(b64(&key.public_jwk["x"]));
    point.extend(b64(&key.public_jwk["y"]));
    let d = b64(&key.private_jwk["d"]);
    // ring checks that the private scalar and the public point belong together.
    assert!(
        ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &d,
            &point,
            &ring::rand::SystemRandom::new(),
        )
        .is_ok()
    );
}
