//! The gateway as the OAuth resource server (issue 12, the `auth` module): the 401 challenge on every method and
//! path before any other check, RFC 9728 metadata, API keys (accepted, refused, reloaded without a restart), JWTs
//! and introspection against the real authorization server (`lifeline_testkit::peers::oidc::AuthServer`,
//! oidc-provider), and no token passthrough. Every rejection asserts that the upstream (a testkit fake with a hit
//! counter) saw nothing, and its `lifeline_gateway_auth_decisions_total` reason.

use std::path::Path;
use std::time::Duration;

use crate::harness::{
    event_json, metric, post, GatewayUnderTest as _, Streaming, TestGateway as Gw, INIT,
};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::fakes::{FakeKind, FakeServer, HealthyOpts};
use lifeline_testkit::peers::oauth_client::OAuthClient;
use lifeline_testkit::peers::oidc::{
    AuthServer, AuthServerConfig, ClientConfig, ResourceConfig, Signing,
};
use lifeline_testkit::peers::raw_http::{self, RawResponse};
use lifeline_testkit::peers::{Peer, PyServer};
use lifeline_testkit::process::free_port;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// How long a test waits for a reload or a metric.
const PATIENCE: Duration = Duration::from_secs(20);

async fn healthy() -> FakeServer {
    FakeServer::start(FakeKind::Healthy(HealthyOpts::default()))
        .await
        .expect("fake upstream")
}

/// One request with `headers` and an optional body, bounded.
async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> RawResponse {
    raw_http::request(
        method,
        url,
        headers,
        body.map(str::as_bytes),
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// `name sha256:HEX scopes…`, the API key file line of `key`.
fn key_line(name: &str, key: &str, scopes: &str) -> String {
    format!(
        "{name} sha256:{} {scopes}\n",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// Starts the gateway with the config file `yaml` and waits until its readiness warm-up has probed the
/// upstream, so that from then on every upstream hit counted by `fake` is a client request the gateway let
/// through. Returns the gateway and that baseline.
async fn start_settled(yaml: &str, fake: &FakeServer) -> (Gw, u64) {
    let gw = Gw::start_with_file(yaml, &[]).await;
    gw.wait_ready(PATIENCE).await;
    (gw, fake.requests_total())
}

/// A settled gateway whose `api_keys_file` holds `lines`, in front of a healthy fake upstream; with the temp dir
/// that keeps the file and the upstream's request count once settled.
async fn behind_api_keys(lines: &str) -> (FakeServer, tempfile::TempDir, Gw, u64) {
    let fake = healthy().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, lines).expect("keys");
    let (gw, hits) = start_settled(&api_key_config(&fake.url(), &keys, ""), &fake).await;
    (fake, dir, gw, hits)
}

/// The value of `lifeline_gateway_auth_decisions_total{outcome,reason}` (0 when absent).
pub(crate) async fn decisions(gw: &Gw, outcome: &str, reason: &str) -> f64 {
    let text = gw.metrics().await;
    let sample = format!(
        "lifeline_gateway_auth_decisions_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}"
    );
    metric(&text, &sample).unwrap_or(0.0)
}

fn www_authenticate(r: &RawResponse) -> &str {
    r.header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}: {}", r.status, r.text()))
}

/// Writes `text` to `file` the way a Kubernetes Secret volume updates: a new directory, then an atomic swap
/// of the `..data` symlink that `file` resolves through.
fn swap_secret(dir: &Path, name: &str, text: &str, generation: u32) {
    let data = dir.join(format!("..gen{generation}"));
    std::fs::create_dir(&data).expect("a generation directory");
    std::fs::write(data.join(name), text).expect("the secret file");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(data.file_name().expect("a name"), &tmp).expect("a symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("the atomic swap");
    let link = dir.join(name);
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("the file link");
    }
}

/// The config of a gateway with API keys from `keys_file` (re-read every 100 ms) and a trusted issuer that is
/// never contacted (these tests send no JWT), so the metadata has an authorization server to name.
fn api_key_config(upstream: &str, keys_file: &Path, extra: &str) -> String {
    format!(
        r#"
upstream: {upstream}
auth:
  resource: http://127.0.0.1/mcp
  jwt:
    - issuer: https://login.example.com
      jwks_url: http://127.0.0.1:9/jwks
  api_keys_file: {}
  api_keys_reload_interval: 100ms
  scopes_supported: [mcp:read, mcp:write]
{extra}"#,
        keys_file.display()
    )
}

#[tokio::test]
async fn every_method_and_path_is_challenged_before_any_other_check() {
    let (fake, _dir, gw, hits) = behind_api_keys(&key_line("ci", "good-key", "mcp:read")).await;
    let mcp = gw.mcp();
    let sse = format!("{}/sse", gw.base);
    let messages = format!("{}/messages?sessionId=abc", gw.base);
    let want_metadata =
        r#"resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp""#;

    // No credential: 401 with the metadata URL and the scopes, no error code (RFC 6750 §3.1), on every method
    // and path — before the 405 (PUT), the 406 (no Accept) and the upstream's lack of an SSE endpoint.
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("POST", &mcp, Some(INIT)),
        ("GET", &mcp, None),
        ("DELETE", &mcp, None),
        ("PUT", &mcp, Some("{}")),
        ("GET", &sse, None),
        ("POST", &messages, Some(INIT)),
    ];
    for (method, url, body) in cases {
        let r = send(method, url, &[("Content-Type", "application/json")], *body).await;
        assert_eq!(r.status, 401, "{method} {url}: {}", r.text());
        let challenge = www_authenticate(&r);
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(challenge.contains(want_metadata), "{challenge}");
        assert!(
            challenge.contains(r#"scope="mcp:read mcp:write""#),
            "{challenge}"
        );
        assert!(!challenge.contains("error="), "{challenge}");
        let json: Value = serde_json::from_slice(&r.body).expect("a JSON-RPC error body");
        assert!(json["error"]["code"].is_i64(), "{json}");
    }
    assert_eq!(
        decisions(&gw, "denied", "missing").await,
        cases.len() as f64
    );

    // A credential that is not a key: 401 invalid_token. Another scheme counts as none.
    for (method, url) in [("POST", &mcp), ("GET", &sse)] {
        let r = send(
            method,
            url,
            &[("Authorization", "Bearer not-a-key")],
            Some(INIT),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(www_authenticate(&r).contains(r#"error="invalid_token""#));
    }
    assert_eq!(decisions(&gw, "denied", "inactive").await, 2.0);
    let r = post(&mcp, &[("Authorization", "Basic Y2k6Z29vZC1rZXk=")], INIT).await;
    assert_eq!(r.status, 401);
    assert!(!www_authenticate(&r).contains("error="));

    // Tokens in the query string are refused even when valid (2026-07-28 authorization §Token Requirements), and
    // so are two Authorization headers.
    let r = post(&format!("{mcp}?access_token=good-key"), &[], INIT).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(www_authenticate(&r).contains(r#"error="invalid_request""#));
    let r = post(
        &mcp,
        &[
            ("Authorization", "Bearer good-key"),
            ("Authorization", "Bearer good-key"),
        ],
        INIT,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Not a b64token (RFC 6750 §2.1): refused as invalid, and never looked up.
    let r = post(&mcp, &[("Authorization", "Bearer good\"key")], INIT).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(www_authenticate(&r).contains(r#"error="invalid_token""#));
    assert_eq!(decisions(&gw, "denied", "malformed").await, 3.0);

    assert_eq!(
        fake.requests_total(),
        hits,
        "a rejected request reached the upstream"
    );
}

/// A 401 made before the request's body arrived says `Connection: close`: hyper closes such a connection after
/// the answer, and a client that reused it in the meantime saw "server disconnected without sending a response"
/// (the Python SDK client, under load, when its body left in a second TCP segment).
#[tokio::test]
async fn a_refusal_made_before_the_body_arrived_tells_the_client_to_close() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let (fake, _dir, gw, hits) = behind_api_keys(&key_line("ci", "good-key", "mcp:read")).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // The headers only: the 64-byte body is never sent.
    let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Accept: application/json, text/event-stream\r\nContent-Length: 64\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    let read_head = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
            let n = stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), read_head)
        .await
        .expect("an answer within 30 s");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert_eq!(fake.requests_total(), hits, "the upstream saw the request");
}

#[tokio::test]
async fn protected_resource_metadata_is_served_cacheable_to_any_origin() {
    let (fake, _dir, gw, hits) = behind_api_keys(&key_line("ci", "k", "")).await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = send(
            "GET",
            &format!("{}{path}", gw.base),
            &[("Origin", "https://app.example")],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(
            r.header("cache-control")
                .is_some_and(|c| c.contains("max-age=")),
            "{:?}",
            r.headers
        );
        let doc: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(doc["resource"], "http://127.0.0.1/mcp");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://login.example.com"])
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["mcp:read", "mcp:write"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }
    let url = format!("{}/.well-known/oauth-protected-resource/mcp", gw.base);
    let preflight = send("OPTIONS", &url, &[("Origin", "https://app.example")], None).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(send("POST", &url, &[], Some("{}")).await.status, 405);
    // The authorization server's own metadata is never served or proxied here.
    let as_meta = format!("{}/.well-known/oauth-authorization-server", gw.base);
    assert_eq!(send("GET", &as_meta, &[], None).await.status, 404);
    assert_eq!(fake.requests_total(), hits);
}

#[tokio::test]
async fn api_keys_pass_without_their_token_and_rotate_without_a_restart() {
    let fake = healthy().await;
    let dir = tempfile::tempdir().expect("tempdir");
    swap_secret(
        dir.path(),
        "keys",
        &key_line("ci", "key-one", "mcp:read"),
        1,
    );
    let cfg = api_key_config(
        &fake.url(),
        &dir.path().join("keys"),
        "  forward_identity: true\n",
    );
    let (gw, _) = start_settled(&cfg, &fake).await;
    let mcp = gw.mcp();

    // A known key passes; the upstream gets the verified identity, never the key or a client's claim.
    let r = post(
        &mcp,
        &[
            ("Authorization", "Bearer key-one"),
            ("X-Lifeline-Subject", "admin"),
            ("X-Lifeline-Scopes", "everything"),
        ],
        INIT,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = fake
        .last_request_headers()
        .expect("the upstream saw the request");
    assert!(
        seen.get("authorization").is_none(),
        "token passed through: {seen:?}"
    );
    assert_eq!(
        seen.get("x-lifeline-subject").map(|v| v.as_bytes()),
        Some(&b"ci"[..])
    );
    assert_eq!(
        seen.get("x-lifeline-scopes").map(|v| v.as_bytes()),
        Some(&b"mcp:read"[..])
    );
    assert_eq!(decisions(&gw, "allowed", "api_key").await, 1.0);

    // Rotation as Kubernetes does it (a symlink swap): the new key works and the old one stops, no restart.
    swap_secret(
        dir.path(),
        "keys",
        &key_line("ci", "key-two", "mcp:read"),
        2,
    );
    let hits = fake.requests_total();
    assert_eventually!(
        post(&mcp, &[("Authorization", "Bearer key-two")], INIT)
            .await
            .status
            == 200,
        patience = PATIENCE,
        "the rotated key is accepted"
    );
    let r = post(&mcp, &[("Authorization", "Bearer key-one")], INIT).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        fake.requests_total(),
        hits + 1,
        "only the accepted request went upstream"
    );

    // A broken file keeps the keys in force.
    swap_secret(dir.path(), "keys", "ci sha256:not-hex\n", 3);
    let text_has_error = || async {
        let text = gw.metrics().await;
        metric(
            &text,
            "lifeline_gateway_auth_api_keys_reloads_total{result=\"error\"}",
        ) == Some(1.0)
    };
    assert_eventually!(
        text_has_error().await,
        patience = PATIENCE,
        "the bad file is counted"
    );
    assert_eq!(
        post(&mcp, &[("Authorization", "Bearer key-two")], INIT)
            .await
            .status,
        200
    );
}

/// The canonical resource URI of the gateway in the OAuth tests (the tokens' `aud`); any string works, the
/// gateway compares it exactly.
const RESOURCE: &str = "https://mcp.example.com/mcp";
/// Another resource the same authorization server issues tokens for.
const OTHER_RESOURCE: &str = "https://other.example.com/mcp";

/// The real authorization server: a client for tokens (`agent`), the gateway's introspection client, JWT
/// tokens for [`RESOURCE`] and [`OTHER_RESOURCE`], opaque ones for `{RESOURCE}/opaque`.
async fn authorization_server() -> AuthServer {
    AuthServer::start(
        AuthServerConfig::default()
            .client(ClientConfig::basic(
                "agent",
                "agent-secret",
                "mcp:read mcp:write",
            ))
            .client(ClientConfig::basic("lifeline-gateway", "gw-secret", ""))
            .resource(ResourceConfig::jwt(RESOURCE, "mcp:read mcp:write"))
            .resource(ResourceConfig::jwt(OTHER_RESOURCE, "mcp:read"))
            .resource(ResourceConfig::opaque(
                &format!("{RESOURCE}/opaque"),
                "mcp:read",
            )),
    )
    .await
}

/// A gateway trusting `auth` for JWTs (keys by discovery) with `extra` lines in its `auth:` block.
fn jwt_config(upstream: &str, auth: &AuthServer, extra: &str) -> String {
    format!(
        r#"
upstream: {upstream}
auth:
  resource: {RESOURCE}
  jwt:
    - issuer: {}
  scopes_supported: [mcp:read, mcp:write]
{extra}"#,
        auth.issuer()
    )
}

async fn agent_token(auth: &AuthServer, resource: &str) -> String {
    auth.client_credentials("agent", "agent-secret", Some(resource), Some("mcp:read"))
        .await
        .unwrap_or_else(|e| panic!("a token for {resource}: {e}"))
        .access_token
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn jwts_from_the_real_authorization_server_pass_and_every_bad_one_is_a_401_with_its_reason() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let cfg = jwt_config(&fake.url(), &auth, "  jwks_refetch_interval: 1h\n");
    let (gw, mut hits) = start_settled(&cfg, &fake).await;
    let mcp = gw.mcp();

    let token = agent_token(&auth, RESOURCE).await;
    let r = post(&mcp, &[("Authorization", &bearer(&token))], INIT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    hits += 1;
    assert_eq!(fake.requests_total(), hits);
    let seen = fake
        .last_request_headers()
        .expect("the upstream saw the request");
    assert!(
        seen.get("authorization").is_none(),
        "token passed through: {seen:?}"
    );
    assert_eq!(decisions(&gw, "allowed", "jwt").await, 1.0);

    let claims = |extra: Value| {
        let mut c =
            json!({"aud": RESOURCE, "sub": "agent", "client_id": "agent", "scope": "mcp:read"});
        for (k, v) in extra.as_object().expect("an object") {
            c[k] = v.clone();
        }
        c
    };
    let t = now();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a token for another resource",
            agent_token(&auth, OTHER_RESOURCE).await,
            "wrong_audience",
        ),
        (
            "expired",
            auth.mint(
                claims(json!({"iat": t - 900, "exp": t - 600})),
                Signing::Current,
            )
            .await,
            "expired",
        ),
        (
            "not yet valid",
            auth.mint(
                claims(json!({"nbf": t + 600, "exp": t + 900})),
                Signing::Current,
            )
            .await,
            "expired",
        ),
        (
            "no expiry",
            auth.mint(claims(json!({"exp": null})), Signing::Current)
                .await,
            "malformed",
        ),
        (
            "no audience",
            auth.mint(claims(json!({"aud": null})), Signing::Current)
                .await,
            "wrong_audience",
        ),
        (
            "wrong aud",
            auth.mint(claims(json!({"aud": OTHER_RESOURCE})), Signing::Current)
                .await,
            "wrong_audience",
        ),
        (
            "wrong iss",
            auth.mint(
                claims(json!({"iss": "https://evil.example.com"})),
                Signing::Current,
            )
            .await,
            "wrong_issuer",
        ),
        (
            "alg none",
            auth.mint(claims(json!({})), Signing::None).await,
            "bad_signature",
        ),
        (
            "HS256 keyed with the public key",
            auth.mint(claims(json!({})), Signing::Hs256WithPublicKey)
                .await,
            "bad_signature",
        ),
        (
            "a foreign key under a known kid",
            auth.mint(claims(json!({})), Signing::Foreign).await,
            "bad_signature",
        ),
        (
            "an unknown kid",
            auth.mint(claims(json!({})), Signing::UnknownKid).await,
            "unknown_key",
        ),
        (
            "not a JWT at all",
            "opaque-but-unknown".to_owned(),
            "malformed",
        ),
    ];
    for (what, token, reason) in &cases {
        let before = decisions(&gw, "denied", reason).await;
        let r = post(&mcp, &[("Authorization", &bearer(token))], INIT).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        let challenge = www_authenticate(&r);
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{what}: {challenge}"
        );
        assert!(
            challenge.contains(
                r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
            ),
            "{what}: {challenge}"
        );
        assert_eq!(
            decisions(&gw, "denied", reason).await,
            before + 1.0,
            "{what}"
        );
        assert_eq!(fake.requests_total(), hits, "{what} reached the upstream");
    }
}

#[tokio::test]
async fn key_rotation_works_without_a_restart_and_unknown_kids_refetch_at_most_once_per_interval() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let cfg = jwt_config(&fake.url(), &auth, "  jwks_refetch_interval: 1h\n");
    let (gw, _) = start_settled(&cfg, &fake).await;
    let mcp = gw.mcp();

    let first = agent_token(&auth, RESOURCE).await;
    assert_eq!(
        post(&mcp, &[("Authorization", &bearer(&first))], INIT)
            .await
            .status,
        200
    );
    let fetches = auth.stats().await.jwks_fetches;
    assert_eq!(fetches, 1, "the first token fetched the JWKS once");

    // The AS rotates: its new tokens carry a kid the cached set lacks; one refetch finds it.
    auth.rotate_keys().await;
    let rotated = agent_token(&auth, RESOURCE).await;
    let r = post(&mcp, &[("Authorization", &bearer(&rotated))], INIT).await;
    assert_eq!(
        r.status,
        200,
        "a rotated key is accepted without a restart: {}",
        r.text()
    );
    assert_eq!(auth.stats().await.jwks_fetches, fetches + 1);
    // Tokens of the old key still pass (it is still published, and cached).
    assert_eq!(
        post(&mcp, &[("Authorization", &bearer(&first))], INIT)
            .await
            .status,
        200
    );

    // A flood of made-up kids within the interval costs the issuer nothing more.
    let hits = fake.requests_total();
    for _ in 0..5 {
        let bogus = auth
            .mint(json!({"aud": RESOURCE, "sub": "x"}), Signing::UnknownKid)
            .await;
        let r = post(&mcp, &[("Authorization", &bearer(&bogus))], INIT).await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    assert_eq!(
        auth.stats().await.jwks_fetches,
        fetches + 1,
        "refetches are rate-limited"
    );
    assert_eq!(fake.requests_total(), hits);
    let text = gw.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"lifeline_gateway_auth_jwks_refreshes_total{trigger="unknown_kid",result="rate_limited"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(decisions(&gw, "denied", "unknown_key").await, 5.0);
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_503_with_retry_after_never_an_open_door() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let (gw, hits) = start_settled(&jwt_config(&fake.url(), &auth, ""), &fake).await;
    let mcp = gw.mcp();
    let token = agent_token(&auth, RESOURCE).await;

    auth.set_fault("/jwks", Duration::ZERO, Some(503)).await;
    let r = post(&mcp, &[("Authorization", &bearer(&token))], INIT).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert_eq!(decisions(&gw, "unavailable", "jwks_unavailable").await, 1.0);
    assert_eq!(fake.requests_total(), hits, "nothing reached the upstream");

    auth.clear_fault("/jwks").await;
    assert_eventually!(
        post(&mcp, &[("Authorization", &bearer(&token))], INIT)
            .await
            .status
            == 200,
        patience = PATIENCE,
        "the gateway recovers once the JWKS answers again"
    );
}

#[tokio::test]
async fn opaque_tokens_are_introspected_cached_and_an_unreachable_endpoint_is_a_503() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("introspection-secret");
    std::fs::write(&secret, "gw-secret\n").expect("secret");
    let opaque_resource = format!("{RESOURCE}/opaque");
    let cfg = format!(
        r#"
upstream: {}
auth:
  resource: {opaque_resource}
  introspection:
    - url: {}
      client_id: lifeline-gateway
      client_secret_file: {}
      issuer: {}
"#,
        fake.url(),
        auth.introspection_url(),
        secret.display(),
        auth.issuer()
    );
    let (gw, mut hits) = start_settled(&cfg, &fake).await;
    let mcp = gw.mcp();
    let token = agent_token(&auth, &opaque_resource).await;
    assert!(!token.contains('.'), "an opaque token: {token}");

    // Active: passes; the second use comes from the cache.
    auth.reset_stats().await;
    for _ in 0..2 {
        let r = post(&mcp, &[("Authorization", &bearer(&token))], INIT).await;
        assert_eq!(r.status, 200, "{}", r.text());
        hits += 1;
    }
    assert_eq!(
        auth.stats().await.introspection_calls,
        1,
        "cached by the token's hash"
    );
    assert_eq!(decisions(&gw, "allowed", "introspection").await, 2.0);
    let text = gw.metrics().await;
    assert!(
        text.contains(
            r#"lifeline_gateway_auth_introspection_duration_seconds_count{result="active"} 1"#
        ),
        "{text}"
    );

    // Unknown to the AS: inactive.
    let r = post(
        &mcp,
        &[("Authorization", "Bearer made-up-opaque-token")],
        INIT,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(www_authenticate(&r).contains(r#"error="invalid_token""#));
    assert_eq!(decisions(&gw, "denied", "inactive").await, 1.0);

    // The endpoint fails: 503 + Retry-After for a token not in the cache.
    auth.set_fault("/token/introspection", Duration::ZERO, Some(503))
        .await;
    let fresh = agent_token(&auth, &opaque_resource).await;
    let r = post(&mcp, &[("Authorization", &bearer(&fresh))], INIT).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        decisions(&gw, "unavailable", "introspection_unavailable").await,
        1.0
    );
    assert_eq!(
        fake.requests_total(),
        hits,
        "rejections reached the upstream"
    );
}

#[tokio::test]
async fn the_clients_token_never_reaches_the_upstream_which_gets_its_own_credentials() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let cfg = jwt_config(&fake.url(), &auth, "");
    // The upstream's own credential comes from the gateway's configuration (--upstream-header).
    let gw = Gw::start_with_file(
        &cfg,
        &["--upstream-header", "Authorization: Bearer upstream-own"],
    )
    .await;
    gw.wait_ready(PATIENCE).await;
    let token = agent_token(&auth, RESOURCE).await;
    let r = post(
        &gw.mcp(),
        &[
            ("Authorization", &bearer(&token)),
            ("X-Lifeline-Subject", "admin"),
        ],
        INIT,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = fake
        .last_request_headers()
        .expect("the upstream saw the request");
    let auth_values: Vec<&[u8]> = seen
        .get_all("authorization")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    assert_eq!(auth_values, [&b"Bearer upstream-own"[..]], "{seen:?}");
    assert!(
        seen.get("x-lifeline-subject").is_none(),
        "a client's identity claim passed: {seen:?}"
    );
    // The admin port is not behind auth.
    assert_eq!(gw.admin_get("/ready").await.status, 200);
}

#[tokio::test]
async fn real_sdk_clients_discover_the_server_log_in_and_call_tools_through_the_gateway() {
    // The upstream: the Python SDK server (both eras), with no auth code at all.
    let upstream = Peer::python(PyServer::Stateless).await;
    let auth = authorization_server().await;
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    auth.add_resource(ResourceConfig::jwt(&resource, "mcp:read mcp:write"))
        .await;
    let cfg = format!(
        r#"
upstream: {}
auth:
  resource: {resource}
  jwt:
    - issuer: {}
  scopes_supported: [mcp:read, mcp:write]
"#,
        upstream.url,
        auth.issuer()
    );
    let listen = format!("127.0.0.1:{port}");
    let gw = Gw::start_with_file(&cfg, &["--listen", &listen]).await;
    assert_eq!(gw.mcp(), resource);

    // Each SDK follows the 401 to the metadata, then to the AS (issuer pinned: the gateway never rewrites its
    // metadata), gets a token for this resource, lists and calls.
    let runs = [
        (
            "Python, handshake era",
            OAuthClient::python(&resource).secret("agent", "agent-secret"),
        ),
        (
            "Python, 2026-07-28",
            OAuthClient::python(&resource)
                .secret("agent", "agent-secret")
                .mode("2026-07-28"),
        ),
        (
            "TypeScript",
            OAuthClient::typescript(&resource)
                .secret("agent", "agent-secret")
                .scope("mcp:read"),
        ),
    ];
    for (what, client) in runs {
        let run = client
            .issuer(auth.issuer())
            .call("echo", json!({"message": "through the gateway"}))
            .run()
            .await;
        assert!(run.ok, "{what}: {run:?}");
        assert!(run.tools().contains(&"echo".to_owned()), "{what}: {run:?}");
        assert_eq!(run.call()["text"], "through the gateway", "{what}: {run:?}");
        assert_eq!(run.tokens_obtained(), 1, "{what}: {run:?}");
    }
    assert!(decisions(&gw, "allowed", "jwt").await >= 3.0);

    // Without a credential the client is refused and nothing is forwarded.
    let forwarded = |text: &str| {
        text.lines()
            .filter(|l| {
                // Requests the gateway answered itself (401s, the metadata) are not forwarded ones.
                l.starts_with("lifeline_gateway_requests_total{")
                    && !l.contains("status=\"401\"")
                    && !l.contains("method=\"other\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = forwarded(&gw.metrics().await);
    let run = OAuthClient::typescript(&resource).run().await;
    assert!(!run.ok, "{run:?}");
    assert_eq!(
        forwarded(&gw.metrics().await),
        before,
        "a refused client's request went upstream"
    );
    assert!(decisions(&gw, "denied", "missing").await >= 1.0);
}

#[tokio::test]
async fn the_legacy_sse_transport_works_with_a_credential_on_both_of_its_routes() {
    let fake = FakeServer::start(FakeKind::LegacySse)
        .await
        .expect("fake HTTP+SSE upstream");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::write(&keys, key_line("ci", "sse-key", "mcp:read")).expect("keys");
    let (gw, _) = start_settled(&api_key_config(&fake.url(), &keys, ""), &fake).await;
    let auth = ("Authorization", "Bearer sse-key");

    let mut stream = Streaming::open(
        "GET",
        &format!("{}/sse", gw.base),
        &[("Accept", "text/event-stream"), auth],
        None,
    )
    .await;
    assert_eq!(stream.status, 200);
    let path = stream.endpoint_path().await;
    let messages = format!("{}{path}", gw.base);
    // The message endpoint wants the credential too; with it the answer arrives on the stream.
    assert_eq!(post(&messages, &[], INIT).await.status, 401);
    let r = post(&messages, &[auth], INIT).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let answer = loop {
        let ev = stream
            .next_event(Duration::from_secs(10))
            .await
            .expect("the initialize answer on the stream");
        if let Some(j) = event_json(&ev).filter(|j| j["id"] == 1) {
            break j;
        }
    };
    assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
    let seen = fake
        .last_request_headers()
        .expect("the upstream saw requests");
    assert!(
        seen.get("authorization").is_none(),
        "token passed through: {seen:?}"
    );
}

#[tokio::test]
async fn a_configured_jwks_url_is_used_without_discovery_and_cached() {
    let fake = healthy().await;
    let auth = authorization_server().await;
    let cfg = format!(
        "upstream: {}\nauth:\n  resource: {RESOURCE}\n  jwt:\n    - issuer: {}\n      jwks_url: {}\n",
        fake.url(),
        auth.issuer(),
        auth.jwks_url()
    );
    let (gw, _) = start_settled(&cfg, &fake).await;
    auth.reset_stats().await;
    let token = agent_token(&auth, RESOURCE).await;
    for _ in 0..3 {
        let r = post(&gw.mcp(), &[("Authorization", &bearer(&token))], INIT).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let stats = auth.stats().await;
    assert_eq!(stats.metadata_fetches, 0, "no discovery: {stats:?}");
    assert_eq!(
        stats.jwks_fetches, 1,
        "one fetch, then the cache: {stats:?}"
    );
}

/// 2025-11-25 security best practices §Session Hijacking: a session is bound to the principal that opened it.
#[tokio::test]
async fn a_session_is_usable_only_by_the_principal_that_opened_it() {
    let (fake, _dir, gw, _) = behind_api_keys(
        &(key_line("alice", "alice-key", "") + &key_line("mallory", "mallory-key", "")),
    )
    .await;
    let mcp = gw.mcp();
    let alice = ("Authorization", "Bearer alice-key");
    let mallory = ("Authorization", "Bearer mallory-key");

    let r = post(&mcp, &[alice], INIT).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("a session").to_owned();
    let session = ("Mcp-Session-Id", sid.as_str());
    let version = ("MCP-Protocol-Version", "2025-11-25");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let r = post(&mcp, &[alice, session, version], list).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Another principal with a valid key of its own is told the session does not exist, for every method.
    let hits = fake.requests_total();
    let r = post(&mcp, &[mallory, session, version], list).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send(
        "GET",
        &mcp,
        &[mallory, session, ("Accept", "text/event-stream")],
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = send("DELETE", &mcp, &[mallory, session], None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        fake.requests_total(),
        hits,
        "the upstream saw the other principal's use"
    );
    assert_eq!(fake.sessions_open(), 1, "the session survives");
    // Its owner still uses it.
    let r = post(&mcp, &[alice, session, version], list).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
