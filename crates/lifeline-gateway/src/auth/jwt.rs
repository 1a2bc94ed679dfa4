//! JWT access tokens (RFC 9068) checked against the issuer's JWKS (RFC 7517), with `jsonwebtoken`:
//!
//! - the header must name a `kid` and an algorithm; `none` and any algorithm the key's type does not allow are
//!   refused before anything else (RFC 8725 §3.1–3.2: no `alg: none`, no HS256 "signed" with an RSA public key);
//!   `crit` is refused (RFC 7515 §4.1.11: we understand no extension);
//! - `iss` picks the trusted issuer and must equal it exactly (RFC 8414 §3.3, RFC 9207: no normalization);
//! - the signature must verify with that issuer's key `kid`, then `aud` must contain one of the issuer's
//!   audiences (RFC 8707 §2; 2026-07-28 `authorization` §Token Handling: "MUST validate that access tokens were
//!   issued specifically for them"), `exp` is required and `exp`/`nbf` are checked with `clock_skew`.
//!
//! Keys: from `jwks_url`, else the `jwks_uri` of the issuer's metadata, found as MCP clients find it (2026-07-28
//! `authorization-server-discovery` §Authorization Server Metadata Discovery: RFC 8414 path insertion, then
//! OpenID Connect Discovery with path insertion, then appended), whose `issuer` must equal the configured one.
//! The JWKS is cached for its `Cache-Control: max-age` (clamped to [`MIN_TTL`]..[`MAX_TTL`], [`DEFAULT_TTL`]
//! without one), refreshed on the first use after that, and refetched at once when a token names an unknown
//! `kid` (the key was rotated) — at most once per `jwks_refetch_interval`, so a flood of made-up `kid`s cannot
//! hammer the issuer. A refresh that fails keeps the old keys for up to [`MAX_STALE`]; with no usable keys the
//! answer is 503 (fail closed). One fetch at a time per issuer.
//!
//! Verified tokens are remembered (`token_cache`, by the token's SHA-256) for at most [`VERIFIED_TTL`] and never
//! past their `exp`, together with the key that verified them: a token is taken from the cache only while that
//! very key is still in the issuer's fresh key set, so a key dropped from the JWKS (or any refetch) makes its
//! tokens go through the whole check again. A signature check costs tens of microseconds (RSA-2048 with ring);
//! a cache hit costs a SHA-256 and a map lookup (issue 17's hot path).

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use url::Url;

use super::fetch::{Client, FetchError};
use super::token_cache::{TokenCache, TokenHash};
use super::{Failure, Principal, Reason, Source};
use crate::config::{AuthConfig, JwtIssuer};
use crate::metrics::Metrics;

/// JWKS lifetime when the response has no usable `Cache-Control`: 5 min.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Shortest JWKS lifetime honoured (a `max-age=0` or `no-store` becomes this): 30 s.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(30);
/// Longest JWKS lifetime honoured: 24 h.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long expired keys stay usable while refreshes fail: 1 h.
pub(crate) const MAX_STALE: Duration = Duration::from_secs(3600);
/// Longest a verified token is taken from the cache without a new signature check: 60 s.
pub(crate) const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// After a failed fetch, requests wait this long before causing another (an issuer that is down is not asked
/// once per request): 1 s.
pub(crate) const FAILED_FETCH_PAUSE: Duration = Duration::from_secs(1);

/// The trusted issuers and their key caches.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    issuers: Vec<IssuerKeys>,
    client: Client,
    metrics: Arc<Metrics>,
    skew: Duration,
    refetch_interval: Duration,
    verified: TokenCache<Verified>,
}

/// A token that passed every check: its principal and the key that verified it.
#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    /// The index of the issuer in [`JwtVerifier::issuers`].
    issuer: usize,
    kid: Arc<str>,
    key: Arc<Key>,
}

#[derive(Debug)]
struct IssuerKeys {
    cfg: JwtIssuer,
    state: Mutex<KeyState>,
    /// One fetch at a time; held across the fetch (a tokio mutex), never together with `state`.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct KeyState {
    keys: HashMap<String, Arc<Key>>,
    /// When the keys were fetched; `None` before the first success.
    fetched: Option<Instant>,
    /// Fresh until.
    fresh_until: Option<Instant>,
    /// The last refetch caused by an unknown `kid`.
    last_unknown_kid_refetch: Option<Instant>,
    /// The JWKS URL found by discovery (forgotten when a fetch from it fails).
    discovered: Option<Url>,
    /// The last failed fetch.
    failed: Option<Instant>,
}

struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why fresh keys could not be had.
#[derive(Debug)]
enum KeysError {
    Fetch(String),
}

/// The claims read from a verified token (the registered ones are checked by `jsonwebtoken`).
#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<u64>,
    client_id: Option<String>,
    azp: Option<String>,
    scope: Option<Value>,
    scp: Option<Value>,
    roles: Option<Value>,
}

/// Whether `token` has a JWS compact serialization's shape: three base64url parts, the first a JSON object.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    decode_part(h).is_some_and(|v| v.is_object())
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl JwtVerifier {
    pub(crate) fn new(cfg: &AuthConfig, client: Client, metrics: Arc<Metrics>) -> JwtVerifier {
        JwtVerifier {
            issuers: cfg
                .jwt
                .iter()
                .map(|j| IssuerKeys {
                    cfg: j.clone(),
                    state: Mutex::new(KeyState::default()),
                    fetching: tokio::sync::Mutex::new(()),
                })
                .collect(),
            client,
            metrics,
            skew: cfg.clock_skew,
            refetch_interval: cfg.jwks_refetch_interval,
            verified: TokenCache::new(VERIFIED_TTL),
        }
    }

    /// The principal of the token whose SHA-256 is `hash` (`token_cache::token_hash`), when it was verified
    /// before and the key that verified it is still fresh in its issuer's set; `None` otherwise (a stale entry is
    /// dropped).
    pub(crate) fn cached(&self, hash: &TokenHash) -> Option<Principal> {
        let hit = self.verified.get(hash)?;
        if self.issuers[hit.issuer].holds_fresh(&hit.kid, &hit.key) {
            return Some(hit.principal);
        }
        self.verified.remove(hash);
        None
    }

    /// Verifies `token`, whose SHA-256 is `hash`, by [`JwtVerifier::check`] (see the module docs), and caches
    /// the answer. The caller asks [`JwtVerifier::cached`] first (`Auth::verify`, before it decodes anything).
    pub(crate) async fn verify(&self, token: &str, hash: TokenHash) -> Result<Principal, Failure> {
        let (verified, exp) = self.check(token).await?;
        let principal = verified.principal.clone();
        self.verified.put(hash, verified, exp);
        Ok(principal)
    }

    /// The whole check of `token` (see the module docs), with its `exp`.
    async fn check(&self, token: &str) -> Result<(Verified, Option<u64>), Failure> {
        let invalid = Failure::Invalid;
        let mut parts = token.split('.');
        let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
            return Err(invalid(Reason::Malformed));
        };
        let header = decode_part(h).ok_or(invalid(Reason::Malformed))?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        if alg.eq_ignore_ascii_case("none") {
            return Err(invalid(Reason::BadSignature));
        }
        let alg = Algorithm::from_str(alg).map_err(|_| invalid(Reason::BadSignature))?;
        if header.get("crit").is_some() {
            return Err(invalid(Reason::Malformed));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(invalid(Reason::Malformed))?;
        let payload = decode_part(p).ok_or(invalid(Reason::Malformed))?;
        let iss = payload.get("iss").and_then(Value::as_str);
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| Some(i.cfg.issuer.as_str()) == iss)
            .ok_or(invalid(Reason::WrongIssuer))?;
        let key = self.key(issuer, kid).await?;
        if !key.algorithms.contains(&alg) {
            return Err(invalid(Reason::BadSignature));
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = self.skew.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.cfg.issuer]);
        validation.set_audience(&issuer.cfg.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| invalid(reason_of(e.kind())))?;
        let c = data.claims;
        let subject = c
            .sub
            .or(c.client_id)
            .or(c.azp)
            .ok_or(invalid(Reason::Malformed))?;
        let mut scopes = scope_list(c.scope.as_ref());
        if scopes.is_empty() {
            // Entra ID and Okta put delegated scopes in `scp` (a string or an array).
            scopes = scope_list(c.scp.as_ref());
        }
        if scopes.is_empty() {
            // Entra ID's app-only (client credentials) tokens carry the granted application permissions in
            // `roles` and no scope at all.
            scopes = scope_list(c.roles.as_ref());
        }
        let principal = Principal {
            subject,
            scopes,
            source: Source::Jwt,
        };
        let verified = Verified {
            principal,
            issuer: index,
            kid: Arc::from(kid),
            key,
        };
        Ok((verified, c.exp))
    }

    /// The key `kid` of `issuer`: from the cache when fresh, else after a (single-flight) fetch; an unknown
    /// `kid` causes one refetch per `refetch_interval`.
    async fn key(&self, issuer: &IssuerKeys, kid: &str) -> Result<Arc<Key>, Failure> {
        let now = Instant::now();
        let (known, fresh, usable) = {
            let s = issuer.lock();
            let fresh = s.fresh_until.is_some_and(|t| now < t);
            let usable = s.fresh_until.is_some_and(|t| now < t + MAX_STALE);
            (s.keys.get(kid).cloned(), fresh, usable)
        };
        match (known, fresh) {
            (Some(key), true) => return Ok(key),
            (Some(key), false) => {
                // Expired: refresh, but a failed refresh keeps the old keys for a while.
                return match self.refresh(issuer, "expired").await {
                    Ok(()) => issuer.cached(kid),
                    Err(_) if usable => Ok(key),
                    Err(_) => Err(Failure::Unavailable(Reason::JwksUnavailable)),
                };
            }
            (None, _) => {}
        }
        let never_fetched = issuer.lock().fetched.is_none();
        let trigger = if never_fetched || !fresh {
            "expired"
        } else {
            // A kid the fresh set lacks: rotation, or a made-up kid. Rate-limited.
            let mut s = issuer.lock();
            let allowed = s
                .last_unknown_kid_refetch
                .is_none_or(|t| now.duration_since(t) >= self.refetch_interval);
            if !allowed {
                drop(s);
                self.metrics.jwks_refresh("unknown_kid", "rate_limited");
                return Err(Failure::Invalid(Reason::UnknownKey));
            }
            s.last_unknown_kid_refetch = Some(now);
            "unknown_kid"
        };
        match self.refresh(issuer, trigger).await {
            Ok(()) => issuer.cached(kid),
            Err(_) => Err(Failure::Unavailable(Reason::JwksUnavailable)),
        }
    }

    /// Fetches the JWKS of `issuer` unless another task just did.
    async fn refresh(&self, issuer: &IssuerKeys, trigger: &'static str) -> Result<(), KeysError> {
        let before = issuer.lock().fetched;
        let _one = issuer.fetching.lock().await;
        {
            let s = issuer.lock();
            if s.fetched != before {
                return Ok(()); // fetched while this task waited
            }
            if s.failed.is_some_and(|t| t.elapsed() < FAILED_FETCH_PAUSE) {
                return Err(KeysError::Fetch("failed moments ago".to_owned()));
            }
        }
        let result = self.fetch(issuer).await;
        match &result {
            Ok(()) => self.metrics.jwks_refresh(trigger, "ok"),
            Err(KeysError::Fetch(e)) => {
                issuer.lock().failed = Some(Instant::now());
                self.metrics.jwks_refresh(trigger, "error");
                tracing::warn!(issuer = %issuer.cfg.issuer, error = %e, "JWKS fetch failed.");
            }
        }
        result
    }

    async fn fetch(&self, issuer: &IssuerKeys) -> Result<(), KeysError> {
        let url = match &issuer.cfg.jwks_url {
            Some(u) => u.clone(),
            None => {
                let known = issuer.lock().discovered.clone();
                match known {
                    Some(u) => u,
                    None => {
                        let u = self.discover(&issuer.cfg.issuer).await?;
                        issuer.lock().discovered = Some(u.clone());
                        u
                    }
                }
            }
        };
        let fetched = match self.client.get(&url).await {
            Ok(f) => f,
            Err(e) => {
                issuer.lock().discovered = None;
                return Err(KeysError::Fetch(format!("{url}: {e}")));
            }
        };
        let keys =
            parse_jwks(&fetched.body).map_err(|e| KeysError::Fetch(format!("{url}: {e}")))?;
        let ttl = cache_ttl(&fetched.headers);
        let now = Instant::now();
        let mut s = issuer.lock();
        tracing::debug!(issuer = %issuer.cfg.issuer, keys = keys.len(), ttl_s = ttl.as_secs(), "JWKS fetched.");
        s.keys = keys;
        s.fetched = Some(now);
        s.fresh_until = Some(now + ttl);
        Ok(())
    }

    /// The `jwks_uri` of `issuer`'s metadata, trying the well-known URLs in the MCP clients' order.
    async fn discover(&self, issuer: &str) -> Result<Url, KeysError> {
        let mut last = String::from("no metadata URL");
        for url in discovery_urls(issuer) {
            let doc = match self.client.get(&url).await {
                Ok(f) => f,
                Err(FetchError::Status(s)) => {
                    last = format!("{url}: HTTP {s}");
                    continue;
                }
                Err(e) => return Err(KeysError::Fetch(format!("{url}: {e}"))),
            };
            let Ok(doc) = serde_json::from_slice::<Value>(&doc.body) else {
                last = format!("{url}: not JSON");
                continue;
            };
            // RFC 8414 §3.3 / OIDC Discovery §4.3: the document's issuer must be the one asked about.
            if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
                last = format!("{url}: its issuer differs from {issuer}");
                tracing::warn!(url = %url, "Authorization server metadata names another issuer; ignored.");
                continue;
            }
            let jwks = doc
                .get("jwks_uri")
                .and_then(Value::as_str)
                .and_then(|u| Url::parse(u).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"));
            return jwks.ok_or_else(|| KeysError::Fetch(format!("{url}: no usable jwks_uri")));
        }
        Err(KeysError::Fetch(last))
    }
}

impl IssuerKeys {
    fn lock(&self) -> MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` is still the key `kid` of the current, fresh set (a refetch replaces every key).
    fn holds_fresh(&self, kid: &str, key: &Arc<Key>) -> bool {
        let s = self.lock();
        s.fresh_until.is_some_and(|t| Instant::now() < t)
            && s.keys.get(kid).is_some_and(|k| Arc::ptr_eq(k, key))
    }

    /// The key `kid` of the current set; `unknown_key` when the set lacks it.
    fn cached(&self, kid: &str) -> Result<Arc<Key>, Failure> {
        self.lock()
            .keys
            .get(kid)
            .cloned()
            .ok_or(Failure::Invalid(Reason::UnknownKey))
    }
}

/// 2026-07-28 `authorization-server-discovery` §Authorization Server Metadata Discovery, in order.
fn discovery_urls(issuer: &str) -> Vec<Url> {
    let Ok(url) = Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let candidates = if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    };
    candidates
        .iter()
        .filter_map(|u| Url::parse(u).ok())
        .collect()
}

/// The signing keys of a JWKS by `kid`; keys without a `kid`, for encryption, symmetric, or of a type this
/// build cannot verify are skipped (one odd key must not hide the others).
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut keys = HashMap::new();
    for raw in list {
        let Some(kid) = raw.get("kid").and_then(Value::as_str) else {
            continue;
        };
        if raw
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let Some(algorithms) = allowed_algorithms(raw) else {
            continue;
        };
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.insert(
            kid.to_owned(),
            Arc::new(Key {
                decoding,
                algorithms,
            }),
        );
    }
    Ok(keys)
}

/// The algorithms a JWK may verify: those of its key type (RFC 7518 §3), narrowed to its `alg` when it names
/// one. Symmetric (`oct`) keys: none, a public JWKS never holds a shared secret the gateway should trust.
fn allowed_algorithms(jwk: &Value) -> Option<Vec<Algorithm>> {
    use Algorithm::*;
    let by_type = match (
        jwk.get("kty").and_then(Value::as_str)?,
        jwk.get("crv").and_then(Value::as_str),
    ) {
        ("RSA", _) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        ("EC", Some("P-256")) => vec![ES256],
        ("EC", Some("P-384")) => vec![ES384],
        ("OKP", Some("Ed25519")) => vec![EdDSA],
        _ => return None,
    };
    match jwk.get("alg").and_then(Value::as_str) {
        None => Some(by_type),
        Some(named) => {
            let named = Algorithm::from_str(named).ok()?;
            by_type.contains(&named).then(|| vec![named])
        }
    }
}

/// The JWKS lifetime from `Cache-Control` (RFC 9111 §5.2.2): `max-age`, clamped; `no-store`/`no-cache` → the
/// minimum.
fn cache_ttl(headers: &http::HeaderMap) -> Duration {
    let mut ttl = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return MIN_TTL;
            }
            if let Some(secs) = lower.strip_prefix("max-age=") {
                if let Ok(secs) = secs.trim_matches('"').parse::<u64>() {
                    ttl = Some(Duration::from_secs(secs));
                }
            }
        }
    }
    ttl.unwrap_or(DEFAULT_TTL).clamp(MIN_TTL, MAX_TTL)
}

/// RFC 6749 §3.3 space-separated string, or an array of strings (`scp` as Okta sends it).
pub(crate) fn scope_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn reason_of(kind: &jsonwebtoken::errors::ErrorKind) -> Reason {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature | K::ImmatureSignature => Reason::Expired,
        K::InvalidIssuer => Reason::WrongIssuer,
        K::InvalidAudience => Reason::WrongAudience,
        // A token without `aud` was not issued for this resource either.
        K::MissingRequiredClaim(claim) if claim == "aud" => Reason::WrongAudience,
        K::InvalidSignature
        | K::InvalidAlgorithm
        | K::InvalidEcdsaKey
        | K::InvalidRsaKey(_)
        | K::Crypto(_) => Reason::BadSignature,
        _ => Reason::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::super::token_cache::token_hash;
    use super::*;
    use http::{HeaderMap, HeaderValue};

    /// A verifier for one issuer whose fresh key set is `kid` → an HS256 secret (a shape no JWKS may carry, but
    /// the cache does not care how the key was made), with an unreachable JWKS URL.
    fn verifier_with_key(kid: &str, secret: &[u8]) -> JwtVerifier {
        let cfg = JwtIssuer {
            issuer: "https://as.example.com".into(),
            jwks_url: Some(Url::parse("http://127.0.0.1:1/jwks").expect("url")),
            audiences: vec!["https://mcp.example.com/mcp".into()],
        };
        let keys = IssuerKeys {
            cfg,
            state: Mutex::new(KeyState::default()),
            fetching: tokio::sync::Mutex::new(()),
        };
        set_key(&keys, kid, secret);
        JwtVerifier {
            issuers: vec![keys],
            client: Client::new(Duration::from_secs(1)).expect("client"),
            metrics: Arc::new(Metrics::new()),
            skew: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(3600),
            verified: TokenCache::new(VERIFIED_TTL),
        }
    }

    /// Replaces the issuer's key set with `kid` → `secret`, fresh for an hour (what a refetch does).
    fn set_key(keys: &IssuerKeys, kid: &str, secret: &[u8]) {
        let mut s = keys.lock();
        s.keys = HashMap::from([(
            kid.to_owned(),
            Arc::new(Key {
                decoding: DecodingKey::from_secret(secret),
                algorithms: vec![Algorithm::HS256],
            }),
        )]);
        s.fetched = Some(Instant::now());
        s.fresh_until = Some(Instant::now() + Duration::from_secs(3600));
    }

    fn token(kid: &str, secret: &[u8]) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        let claims = serde_json::json!({
            "iss": "https://as.example.com",
            "aud": "https://mcp.example.com/mcp",
            "sub": "svc",
            "scope": "mcp:read",
            "exp": super::super::token_cache::unix_now() + 600,
        });
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("encode")
    }

    #[tokio::test]
    async fn a_cached_token_is_served_only_while_its_key_is_in_the_fresh_set() {
        let v = verifier_with_key("k1", b"first");
        let t = token("k1", b"first");
        let p = v.verify(&t, token_hash(&t)).await.expect("verified");
        assert_eq!((p.subject.as_str(), p.scopes.len()), ("svc", 1));
        let hash = token_hash(&t);
        assert!(
            v.verified.get(&hash).is_some(),
            "the verified token is cached"
        );
        assert_eq!(v.cached(&hash), Some(p.clone()), "a hit");

        // The key `k1` is replaced (a refetch brought another key under the same kid): the cached answer is
        // not used and is forgotten; the token is checked again, and fails.
        set_key(&v.issuers[0], "k1", b"second");
        assert_eq!(
            v.cached(&hash),
            None,
            "a token whose key left the set is no hit"
        );
        assert!(v.verified.get(&hash).is_none(), "and forgotten");
        assert!(
            matches!(
                v.verify(&t, token_hash(&t)).await,
                Err(Failure::Invalid(Reason::BadSignature))
            ),
            "a token whose key left the set is checked again"
        );

        // The key is dropped: no cached answer either (the refetch for the unknown kid fails: 503, fail closed).
        let t2 = token("k1", b"second");
        let hash2 = token_hash(&t2);
        assert!(v.verify(&t2, hash2).await.is_ok());
        assert!(v.cached(&hash2).is_some());
        set_key(&v.issuers[0], "k2", b"third");
        assert_eq!(
            v.cached(&hash2),
            None,
            "no hit for the dropped key's tokens"
        );
        assert!(
            v.verify(&t2, hash2).await.is_err(),
            "the dropped key's tokens are refused"
        );
    }

    #[test]
    fn key_types_allow_only_their_algorithms() {
        let rsa = serde_json::json!({"kty": "RSA"});
        let algs = allowed_algorithms(&rsa).expect("RSA");
        assert!(algs.contains(&Algorithm::RS256) && !algs.contains(&Algorithm::HS256));
        let named = serde_json::json!({"kty": "RSA", "alg": "PS256"});
        assert_eq!(allowed_algorithms(&named), Some(vec![Algorithm::PS256]));
        let confused = serde_json::json!({"kty": "RSA", "alg": "HS256"});
        assert_eq!(allowed_algorithms(&confused), None);
        assert_eq!(allowed_algorithms(&serde_json::json!({"kty": "oct"})), None);
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256"});
        assert_eq!(allowed_algorithms(&ec), Some(vec![Algorithm::ES256]));
    }

    #[test]
    fn cache_control_sets_the_jwks_lifetime_within_bounds() {
        let ttl = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(v));
            cache_ttl(&h)
        };
        assert_eq!(ttl("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(ttl("max-age=0"), MIN_TTL);
        assert_eq!(ttl("no-store"), MIN_TTL);
        assert_eq!(ttl("max-age=99999999"), MAX_TTL);
        assert_eq!(cache_ttl(&HeaderMap::new()), DEFAULT_TTL);
    }

    #[test]
    fn discovery_tries_path_insertion_first() {
        let urls: Vec<String> = discovery_urls("https://auth.example.com/tenant1")
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(discovery_urls("https://auth.example.com").len(), 2);
    }

    #[test]
    fn jwt_shape_and_scopes() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
        assert!(!looks_like_jwt("abc.def.ghi"));
        assert!(!looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.e30"));
        assert!(!looks_like_jwt("0123456789abcdef"));
        assert_eq!(
            scope_list(Some(&serde_json::json!("a  b"))),
            ["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(scope_list(Some(&serde_json::json!(["a", 1, "b"]))).len(), 2);
    }
}
