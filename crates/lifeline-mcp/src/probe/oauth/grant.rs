//! One token request (RFC 6749 §4.4.2 client credentials, §6 refresh) and its answer (§5.1 success, §5.2
//! error), with the client authentication of [`ClientAuth`] and the RFC 8707 §2 `resource` parameter, which MCP
//! clients "MUST send … regardless of whether authorization servers support it" (2026-07-28
//! `basic/authorization` §Resource Parameter Implementation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use url::form_urlencoded;
use url::Url;

use super::super::config::Secret;
use super::super::ctx::Ctx;
use super::super::http::{read_body, snippet, HttpClient};
use super::super::report::{Failure, Phase};
use super::discovery::Endpoint;
use super::{ClientAuth, OAuthConfig};
use crate::verdict::Reason;

/// Reads a PEM private key of one family.
type KeyLoader = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;

/// Bound on a token response: 64 KiB.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// Lifetime of a `private_key_jwt` assertion: 60 s (RFC 7523 §3 leaves it to the client; short limits replay).
const ASSERTION_LIFETIME_SECS: u64 = 60;
/// RFC 7523 §2.2.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A successful token response (RFC 6749 §5.1).
pub(super) struct Granted {
    pub(super) access_token: Secret,
    /// `expires_in`, else the JWT access token's `exp`; `None` when neither says.
    pub(super) lifetime: Option<Duration>,
    /// A (rotated) refresh token, when the authorization server sent one.
    pub(super) refresh_token: Option<Secret>,
}

/// Requests a token from `endpoint` for `resource`. Errors in phase `token`: `auth_failed` when the
/// authorization server refused the request (RFC 6749 §5.2) or the credential could not be presented;
/// `auth_server_error` when it could not be reached or did not answer with a token response; `timeout` when the
/// probe's deadline ran out.
pub(super) async fn request(
    ctx: &mut Ctx<'_>,
    config: &OAuthConfig,
    endpoint: &Endpoint,
    resource: &Url,
    scope: Option<&str>,
    refresh_token: Option<&Secret>,
) -> Result<Granted, Failure> {
    let token_url = &endpoint.token_url;
    // The secrets first (reading a file awaits); the form is built without an await in between (the
    // serializer is not `Send`).
    let secret = match &config.auth {
        ClientAuth::SecretBasic(source) | ClientAuth::SecretPost(source) => Some(
            source
                .read()
                .await
                .map_err(|e| local("the client secret", &e))?,
        ),
        ClientAuth::PrivateKeyJwt { key, key_id } => {
            let pem = key.read().await.map_err(|e| local("the private key", &e))?;
            Some(Secret::new(
                assertion(
                    &config.client_id,
                    endpoint.issuer.as_deref().unwrap_or(token_url.as_str()),
                    pem.expose(),
                    key_id.as_deref(),
                )
                .map_err(|e| local("the private key", &e))?,
            ))
        }
        ClientAuth::None => None,
    };
    let mut headers = vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept", "application/json".to_owned()),
    ];
    if let (ClientAuth::SecretBasic(_), Some(secret)) = (&config.auth, &secret) {
        headers.push(("authorization", basic(&config.client_id, secret.expose())));
    }
    let body = bytes::Bytes::from(form(
        config,
        resource,
        scope,
        refresh_token,
        secret.as_ref(),
    ));

    let mut client = HttpClient::anonymous(token_url.clone(), ctx)?;
    let resp = client
        .send_once(ctx, Phase::Token, &|c: &HttpClient| {
            c.request(Method::POST, token_url, &headers, body.clone())
        })
        .await
        .map_err(|f| unreachable(token_url, f))?;
    let status = resp.status();
    let bytes = read_body(
        ctx,
        Phase::Token,
        resp.into_body(),
        MAX_TOKEN_RESPONSE_BYTES,
    )
    .await
    .map_err(|f| unreachable(token_url, f))?;
    let json = serde_json::from_slice::<Value>(&bytes).ok();
    if status.is_success() {
        return granted(json.as_ref()).map_err(|what| {
            server_error(format!(
                "the token endpoint {token_url} answered HTTP {} without a usable token response: {what}",
                status.as_u16()
            ))
        });
    }
    // RFC 6749 §5.2: 400 (or 401 for a failed client authentication) with a JSON `error`.
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str)
        .filter(|_| status.is_client_error());
    match error {
        Some(code) => {
            let description = json
                .as_ref()
                .and_then(|j| j.get("error_description"))
                .and_then(Value::as_str)
                .map(|d| format!(" ({})", snippet(d)))
                .unwrap_or_default();
            let grant = if refresh_token.is_some() {
                "refresh-token"
            } else {
                "client-credentials"
            };
            Err(Failure::new(
                Reason::AuthFailed,
                format!(
                    "the authorization server refused the {grant} request with {code}{description} \
                     (client {}, {})",
                    config.client_id,
                    config.auth.method_name()
                ),
            )
            .in_phase(Phase::Token)
            .with_status(status.as_u16()))
        }
        None => Err(server_error(format!(
            "the token endpoint {token_url} answered HTTP {}",
            status.as_u16()
        ))
        .with_status(status.as_u16())),
    }
}

/// The `application/x-www-form-urlencoded` body (RFC 6749 §4.4.2, §6; RFC 8707 §2; RFC 7523 §2.2).
/// `secret` is the client secret or the signed assertion, per [`ClientAuth`].
fn form(
    config: &OAuthConfig,
    resource: &Url,
    scope: Option<&str>,
    refresh_token: Option<&Secret>,
    secret: Option<&Secret>,
) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    match refresh_token {
        Some(rt) => {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", rt.expose());
        }
        None => {
            form.append_pair("grant_type", "client_credentials");
        }
    }
    if let Some(scope) = scope.filter(|s| !s.trim().is_empty()) {
        form.append_pair("scope", scope);
    }
    form.append_pair("resource", resource.as_str());
    match (&config.auth, secret) {
        (ClientAuth::SecretPost(_), Some(secret)) => {
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_secret", secret.expose());
        }
        (ClientAuth::PrivateKeyJwt { .. }, Some(assertion)) => {
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION);
            form.append_pair("client_assertion", assertion.expose());
        }
        // Basic carries the id in the header.
        (ClientAuth::SecretBasic(_), _) => {}
        _ => {
            form.append_pair("client_id", &config.client_id);
        }
    }
    form.finish()
}

/// RFC 6749 §5.1: `access_token` and `token_type` are required; the type must be `Bearer` (RFC 6750), the only
/// one the probe can present.
fn granted(json: Option<&Value>) -> Result<Granted, &'static str> {
    let json = json.ok_or("the body is not JSON")?;
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or("no usable access_token")?;
    let kind = json.get("token_type").and_then(Value::as_str).unwrap_or("");
    if !kind.eq_ignore_ascii_case("bearer") {
        return Err("token_type is not Bearer");
    }
    // `expires_in` is a number of seconds; some servers send it as a string.
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let lifetime = expires_in
        .map(Duration::from_secs)
        .or_else(|| jwt_lifetime(token));
    let refresh_token = json
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    Ok(Granted {
        access_token: Secret::new(token),
        lifetime,
        refresh_token,
    })
}

/// Without `expires_in`, a JWT access token's own `exp` (read, not verified: the probe only schedules its
/// refresh by it). Uptime Kuma's #3902 is what happens otherwise.
fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()?;
    Some(Duration::from_secs(exp.saturating_sub(unix_now())))
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined and base64-encoded.
fn basic(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A `private_key_jwt` client assertion (RFC 7523 §3): `iss` = `sub` = the client id, `aud` = `audience`, `iat`,
/// `exp` a minute later, and a `jti` unique per assertion. The algorithm follows the key: RS256, ES256, ES384 or
/// EdDSA. The audience is the authorization server's issuer identifier when discovery found it (RFC 7523bis
/// §4 makes it the one value every server accepts, closing the audience-injection attack on the token endpoint
/// URL; the MCP conformance suite's `auth/client-credentials-jwt` requires it), else the configured token
/// endpoint URL (RFC 7523 §3; OpenID Connect Core §9).
pub(super) fn assertion(
    client_id: &str,
    audience: &str,
    pem: &str,
    key_id: Option<&str>,
) -> Result<String, String> {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": jti(now),
    });
    let pem = pem.as_bytes();
    let keys: [(Algorithm, KeyLoader); 4] = [
        (Algorithm::RS256, EncodingKey::from_rsa_pem),
        (Algorithm::ES256, EncodingKey::from_ec_pem),
        (Algorithm::ES384, EncodingKey::from_ec_pem),
        (Algorithm::EdDSA, EncodingKey::from_ed_pem),
    ];
    for (alg, load) in keys {
        let Ok(key) = load(pem) else { continue };
        let mut header = Header::new(alg);
        header.kid = key_id.map(str::to_owned);
        if let Ok(jwt) = jsonwebtoken::encode(&header, &claims, &key) {
            return Ok(jwt);
        }
    }
    Err("not a PEM RSA, P-256, P-384 or Ed25519 private key".to_owned())
}

/// Unique per assertion within this process and across processes (time, process id, counter); RFC 7523 §3
/// needs uniqueness for replay detection, not secrecy.
fn jti(now: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{now:x}-{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn local(what: &str, e: &str) -> Failure {
    Failure::new(Reason::AuthFailed, format!("{what}: {e}")).in_phase(Phase::Token)
}

fn server_error(message: String) -> Failure {
    Failure::new(Reason::AuthServerError, message).in_phase(Phase::Token)
}

/// A transport failure talking to the token endpoint. The probe's own timeout stays `timeout`; anything else
/// (refused, TLS, a broken reply) is the authorization server's problem, not the MCP server's.
fn unreachable(token_url: &Url, f: Failure) -> Failure {
    if matches!(f.reason, Reason::Timeout | Reason::ConnectTimeout) {
        return f;
    }
    server_error(format!(
        "the token endpoint {token_url} could not be used: {}",
        f.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        // RFC 6749 §2.3.1 / Appendix B: "a:b" with a space → "a%3Ab", "+".
        let h = basic("id:1", "s p");
        let b64 = h.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1:s+p");
    }

    #[test]
    fn token_responses() {
        let ok = granted(Some(
            &json!({"access_token":"abc","token_type":"bearer","expires_in":300}),
        ))
        .unwrap();
        assert_eq!(ok.access_token.expose(), "abc");
        assert_eq!(ok.lifetime, Some(Duration::from_secs(300)));
        let s = granted(Some(&json!({"access_token":"abc","token_type":"Bearer","expires_in":"60","refresh_token":"r2"}))).unwrap();
        assert_eq!(s.lifetime, Some(Duration::from_secs(60)));
        assert_eq!(s.refresh_token.unwrap().expose(), "r2");
        assert!(granted(Some(&json!({"access_token":"abc","token_type":"DPoP"}))).is_err());
        assert!(granted(Some(&json!({"token_type":"Bearer"}))).is_err());
        assert!(granted(Some(&json!({"access_token":"a b","token_type":"Bearer"}))).is_err());
        assert!(granted(None).is_err());
        // No expires_in: the JWT's exp.
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"exp": unix_now() + 120}).to_string());
        let jwt = format!("e30.{payload}.sig");
        let t = granted(Some(&json!({"access_token": jwt, "token_type":"Bearer"}))).unwrap();
        let life = t.lifetime.unwrap();
        assert!(
            life <= Duration::from_secs(120) && life >= Duration::from_secs(110),
            "{life:?}"
        );
        let opaque = granted(Some(
            &json!({"access_token":"opaque","token_type":"Bearer"}),
        ))
        .unwrap();
        assert_eq!(opaque.lifetime, None);
    }

    #[test]
    fn assertions_are_signed_by_the_key_type() {
        let key = rcgen::KeyPair::generate().unwrap();
        let url = Url::parse("https://as.example/token").unwrap();
        let jwt = assertion("probe", url.as_str(), &key.serialize_pem(), Some("k1")).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        let decoding = jsonwebtoken::DecodingKey::from_ec_der(key.public_key_raw());
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.set_audience(&["https://as.example/token"]);
        v.set_issuer(&["probe"]);
        let claims = jsonwebtoken::decode::<Value>(&jwt, &decoding, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "probe");
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let other = assertion("probe", url.as_str(), &key.serialize_pem(), None).unwrap();
        let jti2 = jsonwebtoken::decode::<Value>(&other, &decoding, &v)
            .unwrap()
            .claims["jti"]
            .clone();
        assert_ne!(claims["jti"], jti2);
        assert!(assertion("probe", url.as_str(), "not a key", None).is_err());
    }
}
