//! Authentication: the gateway as the OAuth 2.1 resource server of the MCP server behind it (2025-11-25
//! `basic/authorization`, 2026-07-28 `basic/authorization/index`). [`Auth::authenticate`] runs once per client
//! request to the MCP endpoint, `/sse` and `/messages`, at the top of `Proxy::handle`, before any other check
//! (clients treat any 401 as "my token is bad", so a 405 or 406 must never come first, and a GET used for
//! transport detection must get the challenge too). It yields the request's [`Principal`] or the answer:
//!
//! - no credential → 401 with `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` (RFC 6750 §3, RFC 9728
//!   §5.1; `challenge`);
//! - a credential that fails → 401 with `error="invalid_token"` as well;
//! - a token in the query string, or two `Authorization` headers → 400 `invalid_request` (2026-07-28
//!   `authorization` §Token Requirements: tokens "MUST NOT be included in the URI query string"; RFC 6750 §2.3);
//! - an authorization server that cannot be reached → 503 + `Retry-After`, never an open door.
//!
//! A bearer credential is checked as a JWT (`jwt`) when it has a JWT's shape and issuers are configured, else
//! against the API keys (`api_keys`), then by introspection (`introspection`). Every decision is counted in
//! `lifeline_gateway_auth_decisions_total{outcome,reason}`.
//!
//! What never crosses to the upstream when auth is on (2026-07-28 `authorization/security-considerations`
//! §Access Token Privilege Restriction, "MUST NOT pass through the token"): the client's `Authorization`, and any
//! `X-Lifeline-Subject` / `X-Lifeline-Scopes` a client sent; with `forward_identity` the gateway sets those two
//! from the verified principal. The admin listener and the protected resource metadata (`metadata`) are open.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use lifeline_core::{Phase, Shutdown};

use crate::body::Body;
use crate::config::{AuthConfig, Paths};
use crate::metrics::Metrics;

mod api_keys;
pub(crate) mod challenge;
mod fetch;
mod introspection;
mod jwt;
pub(crate) mod metadata;
mod token_cache;

use api_keys::ApiKeys;
use challenge::Challenger;
use introspection::Introspector;
use jwt::JwtVerifier;

/// The verified subject's name header sent upstream with `forward_identity`.
pub(crate) const X_LIFELINE_SUBJECT: HeaderName = HeaderName::from_static("x-lifeline-subject");
/// The verified scopes header (space-separated) sent upstream with `forward_identity`.
pub(crate) const X_LIFELINE_SCOPES: HeaderName = HeaderName::from_static("x-lifeline-scopes");

/// Who a request comes from, as verified by [`Auth::authenticate`]. Never holds token material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The subject: a JWT's or introspection answer's `sub` (else its `client_id`), or an API key's name.
    pub(crate) subject: String,
    /// Scopes granted: a JWT's `scope`, else `scp`, else `roles` (Entra ID app-only tokens); an introspection
    /// answer's `scope`; an API key's.
    pub(crate) scopes: Vec<String>,
    /// How the credential was verified.
    pub(crate) source: Source,
}

impl Principal {
    /// Whether every scope of `required` was granted.
    #[allow(dead_code)] // the policy layer's (branch gw-policy)
    pub(crate) fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.contains(r))
    }
}

/// How a [`Principal`] was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A signed JWT checked against its issuer's JWKS.
    Jwt,
    /// An opaque token an RFC 7662 endpoint called active.
    Introspection,
    /// A static API key.
    ApiKey,
}

/// The `outcome` label of `lifeline_gateway_auth_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// Let through.
    Allowed,
    /// Refused: 400, 401, 403 or 429.
    Denied,
    /// Could not decide: an authorization server was unreachable (503).
    Unavailable,
}

impl Outcome {
    /// The label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// The `reason` label of `lifeline_gateway_auth_decisions_total`, a bounded set (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// Allowed: a valid JWT.
    Jwt,
    /// Allowed: an active introspected token.
    Introspection,
    /// Allowed: a known API key.
    ApiKey,
    /// No credential (or not a Bearer one).
    Missing,
    /// Not a token (bad syntax, not a JWT though shaped like one, no `kid`, a token in the query string).
    Malformed,
    /// `exp` passed or `nbf` not reached (beyond the skew).
    Expired,
    /// The signature does not verify, or its algorithm is not one the key allows (`none`, HS* with a public key).
    BadSignature,
    /// `aud` does not name this resource.
    WrongAudience,
    /// `iss` is not a trusted issuer.
    WrongIssuer,
    /// The `kid` is not in the issuer's JWKS, even after a refetch.
    UnknownKey,
    /// Introspection says inactive, or an opaque credential nothing knows.
    Inactive,
    /// Valid, but lacking a scope the operation needs (403).
    InsufficientScope,
    /// Over the principal's rate limit (429).
    RateLimited,
    /// The issuer's JWKS (or discovery document) could not be fetched.
    JwksUnavailable,
    /// No introspection endpoint answered.
    IntrospectionUnavailable,
}

impl Reason {
    /// The label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Jwt => "jwt",
            Reason::Introspection => "introspection",
            Reason::ApiKey => "api_key",
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Expired => "expired",
            Reason::BadSignature => "bad_signature",
            Reason::WrongAudience => "wrong_audience",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::UnknownKey => "unknown_key",
            Reason::Inactive => "inactive",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::RateLimited => "rate_limited",
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::IntrospectionUnavailable => "introspection_unavailable",
        }
    }
}

/// Why a credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Invalid: 401 `invalid_token` with this reason.
    Invalid(Reason),
    /// Undecidable now: 503 + `Retry-After` with this reason.
    Unavailable(Reason),
}

/// The authentication layer: the verifiers built from [`AuthConfig`], the challenge builder and the metrics.
#[derive(Debug)]
pub(crate) struct Auth {
    cfg: Arc<AuthConfig>,
    challenger: Challenger,
    jwt: Option<JwtVerifier>,
    introspection: Option<Introspector>,
    api_keys: Option<Arc<ApiKeys>>,
    metrics: Arc<Metrics>,
    retry_after: std::time::Duration,
}

impl Auth {
    /// Builds the layer. `retry_after` is the gateway's `Retry-After` for 503 answers.
    ///
    /// Errors: the HTTP client for the authorization servers cannot be built (no TLS roots).
    pub(crate) fn new(
        cfg: &AuthConfig,
        paths: &Paths,
        metrics: Arc<Metrics>,
        retry_after: std::time::Duration,
    ) -> Result<Auth, fetch::FetchError> {
        let cfg = Arc::new(cfg.clone());
        let client = fetch::Client::new(cfg.fetch_timeout)?;
        let jwt = (!cfg.jwt.is_empty())
            .then(|| JwtVerifier::new(&cfg, client.clone(), Arc::clone(&metrics)));
        let introspection = (!cfg.introspection.is_empty())
            .then(|| Introspector::new(&cfg, client.clone(), Arc::clone(&metrics)));
        let api_keys = cfg.api_keys.as_ref().map(|k| Arc::new(ApiKeys::new(k)));
        metrics.auth_series(
            &initial_decisions(jwt.is_some(), introspection.is_some(), api_keys.is_some()),
            jwt.is_some(),
            introspection.is_some(),
            api_keys.is_some(),
        );
        Ok(Auth {
            challenger: Challenger::new(&cfg, paths),
            cfg,
            jwt,
            introspection,
            api_keys,
            metrics,
            retry_after,
        })
    }

    /// The challenge builder, for the policy layer's 403 `insufficient_scope`.
    #[allow(dead_code)] // the policy layer's (branch gw-policy)
    pub(crate) fn challenger(&self) -> &Challenger {
        &self.challenger
    }

    /// The validated `auth:` block (tools rules, rate limit).
    pub(crate) fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// Counts a decision in `lifeline_gateway_auth_decisions_total`.
    pub(crate) fn record(&self, outcome: Outcome, reason: Reason) {
        self.metrics.auth_decision(outcome, reason);
    }

    /// Starts the background work: re-reading the API key file until the drain forces the end.
    pub(crate) fn spawn_background(&self, shutdown: &Shutdown) {
        if let (Some(keys), Some(cfg)) = (&self.api_keys, &self.cfg.api_keys) {
            tokio::spawn(Arc::clone(keys).reload_loop(
                cfg.reload_interval,
                shutdown.reached_owned(Phase::Forcing),
                Arc::clone(&self.metrics),
            ));
        }
    }

    /// Authenticates a request to a protected path: its [`Principal`], with the request's headers made ready
    /// for the upstream (credentials and client-sent identity headers removed, the verified identity added with
    /// `forward_identity`), or the answer to send instead (400, 401, 503; already counted).
    pub(crate) async fn authenticate<B>(
        &self,
        req: &mut Request<B>,
    ) -> Result<Arc<Principal>, Response<Body>> {
        let result = match credential(req) {
            Err(Presented::InQuery) => Err(self.refuse_request(
                req.headers(),
                "access tokens must not be sent in the query string",
            )),
            Err(Presented::Ambiguous) => {
                Err(self.refuse_request(req.headers(), "more than one Authorization header"))
            }
            Err(Presented::Nothing) => {
                self.record(Outcome::Denied, Reason::Missing);
                Err(self.challenger.unauthorized(req.headers(), None))
            }
            Err(Presented::Malformed) => Err(self.invalid(req.headers(), Reason::Malformed)),
            Ok(token) => match self.verify(token).await {
                Ok(p) => Ok(p),
                Err(Failure::Invalid(reason)) => Err(self.invalid(req.headers(), reason)),
                Err(Failure::Unavailable(reason)) => {
                    self.record(Outcome::Unavailable, reason);
                    Err(challenge::unavailable(self.retry_after))
                }
            },
        };
        let principal = result?;
        self.record(
            Outcome::Allowed,
            match principal.source {
                Source::Jwt => Reason::Jwt,
                Source::Introspection => Reason::Introspection,
                Source::ApiKey => Reason::ApiKey,
            },
        );
        let principal = Arc::new(principal);
        upstream_identity(req.headers_mut(), &principal, self.cfg.forward_identity);
        Ok(principal)
    }

    fn invalid(&self, headers: &HeaderMap, reason: Reason) -> Response<Body> {
        self.record(Outcome::Denied, reason);
        self.challenger.unauthorized(headers, Some(reason))
    }

    fn refuse_request(&self, headers: &HeaderMap, description: &str) -> Response<Body> {
        self.record(Outcome::Denied, Reason::Malformed);
        self.challenger.invalid_request(headers, description)
    }

    /// Checks a bearer token: JWT when it looks like one and issuers are configured, else API key, else
    /// introspection.
    ///
    /// The token's SHA-256 is taken once and serves all three (the verified-JWT cache, the API keys, the
    /// introspection cache); a JWT verified before is answered from its cache before the `b64token` check and
    /// the shape test, which decodes the token's header (issue 12: those and a second hash were most of what a
    /// cached JWT cost). A token that is not a `b64token` is [`Reason::Malformed`].
    async fn verify(&self, token: &str) -> Result<Principal, Failure> {
        let hash = token_cache::token_hash(token);
        if let Some(jwt) = &self.jwt {
            if let Some(principal) = jwt.cached(&hash) {
                return Ok(principal);
            }
        }
        // RFC 6750 §2.1. After the cache: a token found there passed this check when it was verified (the cache
        // holds verified tokens only, by the SHA-256 of all their bytes), so a JWT is checked once, not on every
        // request (issue 12: a third of what a cached JWT cost besides its hash).
        if !is_b64token(token.as_bytes()) {
            return Err(Failure::Invalid(Reason::Malformed));
        }
        if let Some(jwt) = &self.jwt {
            if jwt::looks_like_jwt(token) {
                return jwt.verify(token, hash).await;
            }
        }
        if let Some(keys) = &self.api_keys {
            if let Some(p) = keys.lookup(&hash) {
                return Ok(p);
            }
        }
        if let Some(introspection) = &self.introspection {
            return introspection.verify(token, hash).await;
        }
        Err(Failure::Invalid(if self.api_keys.is_some() {
            Reason::Inactive
        } else {
            Reason::Malformed
        }))
    }
}

/// The decisions this configuration can make, for their series at zero (`Metrics::auth_series`).
fn initial_decisions(jwt: bool, introspection: bool, api_keys: bool) -> Vec<(Outcome, Reason)> {
    let mut out: Vec<(Outcome, Reason)> = [
        Reason::Missing,
        Reason::Malformed,
        Reason::Expired,
        Reason::BadSignature,
        Reason::WrongAudience,
        Reason::WrongIssuer,
        Reason::UnknownKey,
        Reason::Inactive,
        Reason::InsufficientScope,
        Reason::RateLimited,
    ]
    .into_iter()
    .map(|r| (Outcome::Denied, r))
    .collect();
    if jwt {
        out.push((Outcome::Allowed, Reason::Jwt));
        out.push((Outcome::Unavailable, Reason::JwksUnavailable));
    }
    if introspection {
        out.push((Outcome::Allowed, Reason::Introspection));
        out.push((Outcome::Unavailable, Reason::IntrospectionUnavailable));
    }
    if api_keys {
        out.push((Outcome::Allowed, Reason::ApiKey));
    }
    out
}

/// What a request presented instead of one usable bearer token.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    /// No `Authorization`, or a scheme other than Bearer (RFC 6750 §3.1: then no error code).
    Nothing,
    /// `access_token` in the query string.
    InQuery,
    /// More than one `Authorization` header.
    Ambiguous,
    /// `Bearer` followed by nothing, or by bytes that are not UTF-8 (a token that is not a b64token, RFC 6750
    /// §2.1, is refused by [`Auth::verify`], with the same answer).
    Malformed,
}

/// The request's bearer token (RFC 6750 §2.1, header only: `bearer_methods_supported: ["header"]`), not yet
/// checked as a `b64token`: [`Auth::verify`] does that after the verified-JWT cache, which holds only tokens
/// that passed it. Not valid UTF-8 is [`Presented::Malformed`].
fn credential<B>(req: &Request<B>) -> Result<&str, Presented> {
    if let Some(query) = req.uri().query() {
        let in_query =
            url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token");
        if in_query {
            return Err(Presented::InQuery);
        }
    }
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Presented::Nothing);
    };
    if values.next().is_some() {
        return Err(Presented::Ambiguous);
    }
    // Bytes, not `to_str`: the b64token check (`Auth::verify`) covers what `to_str` would, and a token near a
    // kilobyte is read once less (issue 12).
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Presented::Nothing);
    }
    match std::str::from_utf8(rest.trim_ascii()) {
        Ok(token) if !token.is_empty() => Ok(token),
        _ => Err(Presented::Malformed),
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Checked for every token not answered from the verified-JWT cache (issue 12): 32 bytes at a time with no
/// branch per byte, which the compiler can turn into vector compares (about 2 instructions a byte against the 6 of
/// the table lookup it replaced, which stopped at the first bad byte and so could not be).
fn is_b64token(token: &[u8]) -> bool {
    let end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let body = &token[..end];
    !body.is_empty()
        && body
            .chunks(32)
            .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & is_b64token_byte(b)))
}

/// Whether `b` is a `b64token` character (RFC 6750 §2.1: `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`),
/// without a branch.
#[inline(always)]
fn is_b64token_byte(b: u8) -> bool {
    let alpha = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    // `+`, `-`, `.`, `/` are 0x2b, 0x2d, 0x2e, 0x2f: 0x2b..=0x2f except `,` (0x2c).
    let sign = (b.wrapping_sub(b'+') < 5) & (b != b',');
    alpha | digit | sign | (b == b'_') | (b == b'~')
}

/// Removes the client's credential and identity headers, and adds the verified identity when `forward`.
fn upstream_identity(headers: &mut HeaderMap, principal: &Principal, forward: bool) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(&X_LIFELINE_SUBJECT);
    headers.remove(&X_LIFELINE_SCOPES);
    if !forward {
        return;
    }
    // A subject or scope that cannot be a header value (control characters) is left out rather than mangled.
    if let Ok(v) = HeaderValue::from_str(&principal.subject) {
        headers.insert(X_LIFELINE_SUBJECT, v);
    }
    if let Ok(v) = HeaderValue::from_str(&principal.scopes.join(" ")) {
        headers.insert(X_LIFELINE_SCOPES, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, auth: &[&str]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for a in auth {
            b = b.header(header::AUTHORIZATION, *a);
        }
        b.body(()).expect("a request")
    }

    #[test]
    fn the_b64token_check_takes_exactly_the_rfc_6750_characters() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token_byte(b), want, "byte {b:#04x}");
            // Every position of a 32-byte chunk, and the last short chunk.
            for at in [0, 17, 31, 32, 40] {
                let mut token = vec![b'a'; 41];
                token[at] = b;
                assert_eq!(
                    is_b64token(&token),
                    want || b == b'=' && at == 40,
                    "{b:#04x} at {at}"
                );
            }
        }
        assert!(is_b64token(b"abc=="));
        assert!(!is_b64token(b"=="), "padding alone");
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"ab=c"), "padding inside");
    }

    #[test]
    fn bearer_credentials_are_read_from_one_header_only() {
        let cases: &[(&str, &[&str], Result<&str, Presented>)] = &[
            ("/mcp", &[], Err(Presented::Nothing)),
            (
                "/mcp",
                &["Bearer abc.def-ghi_~+/=="],
                Ok("abc.def-ghi_~+/=="),
            ),
            ("/mcp", &["bearer abc"], Ok("abc")),
            ("/mcp", &["Basic dXNlcjpwYXNz"], Err(Presented::Nothing)),
            ("/mcp", &["Bearer"], Err(Presented::Malformed)),
            // Read as presented; `Auth::verify` refuses them as not b64tokens.
            ("/mcp", &["Bearer a b"], Ok("a b")),
            ("/mcp", &["Bearer a\"b"], Ok("a\"b")),
            ("/mcp", &["Bearer a", "Bearer b"], Err(Presented::Ambiguous)),
            ("/mcp?access_token=abc", &[], Err(Presented::InQuery)),
            (
                "/messages?sessionId=1&access_token=abc",
                &["Bearer a"],
                Err(Presented::InQuery),
            ),
            ("/messages?sessionId=1", &["Bearer a"], Ok("a")),
        ];
        for (uri, auth, want) in cases {
            let request = req(uri, auth);
            let got = credential(&request);
            assert_eq!(got.as_ref(), want.as_ref(), "{uri} {auth:?}");
        }
    }

    #[test]
    fn identity_headers_are_replaced_never_passed_through() {
        let p = Principal {
            subject: "svc-a".into(),
            scopes: vec!["mcp:read".into(), "mcp:write".into()],
            source: Source::ApiKey,
        };
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert(&X_LIFELINE_SUBJECT, HeaderValue::from_static("admin"));
        h.insert(&X_LIFELINE_SCOPES, HeaderValue::from_static("everything"));
        let mut off = h.clone();
        upstream_identity(&mut off, &p, false);
        assert!(off.is_empty(), "{off:?}");
        upstream_identity(&mut h, &p, true);
        assert_eq!(h.len(), 2);
        assert_eq!(h[&X_LIFELINE_SUBJECT], "svc-a");
        assert_eq!(h[&X_LIFELINE_SCOPES], "mcp:read mcp:write");
    }
}
