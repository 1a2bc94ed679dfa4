//! Opaque tokens, checked by OAuth 2.0 Token Introspection (RFC 7662) at each configured endpoint in turn:
//!
//! - the gateway authenticates itself (RFC 7662 §2.1) with `client_secret_basic` (id and secret form-encoded,
//!   then Basic, RFC 6749 §2.3.1) or `client_secret_post`, and sends `token` with `token_type_hint=access_token`;
//! - the answer must say `"active": true` (§2.2), its `exp` (when present) must not have passed (with the
//!   skew), its `aud` must contain one of the endpoint's audiences (RFC 8707 §2; absent `aud` fails), and its
//!   `iss` must equal the endpoint's `issuer` when both are known;
//! - the principal is `sub`, else `client_id`, else `username`; scopes from `scope`.
//!
//! Answers are cached (`token_cache`: by the SHA-256 of the token, bounded) for at most
//! `introspection_cache_ttl` and never past the token's `exp`; inactive answers too, so a flood of garbage
//! tokens costs the authorization server one call each at most once per TTL. An endpoint that cannot be reached (or answers other than 200) makes the request a
//! 503 unless another endpoint calls the token active: never an open door. Each call's latency is recorded in
//! `lifeline_gateway_auth_introspection_duration_seconds{result}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::Value;

use super::fetch::Client;
use super::jwt::scope_list;
use super::token_cache::{unix_now, TokenCache, TokenHash};
use super::{Failure, Principal, Reason, Source};
use crate::config::{AuthConfig, ClientAuthMethod, IntrospectionEndpoint};
use crate::metrics::Metrics;

/// The endpoints and the answer cache.
#[derive(Debug)]
pub(crate) struct Introspector {
    endpoints: Vec<IntrospectionEndpoint>,
    client: Client,
    metrics: Arc<Metrics>,
    skew: Duration,
    cache: TokenCache<Result<Principal, Reason>>,
}

/// One endpoint's verdict.
enum Verdict {
    Active(Principal, Option<u64>),
    Refused(Reason),
}

impl Introspector {
    pub(crate) fn new(cfg: &AuthConfig, client: Client, metrics: Arc<Metrics>) -> Introspector {
        Introspector {
            endpoints: cfg.introspection.clone(),
            client,
            metrics,
            skew: cfg.clock_skew,
            cache: TokenCache::new(cfg.introspection_cache_ttl),
        }
    }

    /// Checks `token`, whose SHA-256 (`token_cache::token_hash`) is `key`, the cache's key (see the module docs).
    pub(crate) async fn verify(&self, token: &str, key: TokenHash) -> Result<Principal, Failure> {
        if let Some(hit) = self.cache.get(&key) {
            return hit.map_err(Failure::Invalid);
        }
        let mut refused = Reason::Inactive;
        let mut unreachable = false;
        for endpoint in &self.endpoints {
            let started = Instant::now();
            let verdict = self.ask(endpoint, token).await;
            let result = match &verdict {
                Ok(Verdict::Active(..)) => "active",
                Ok(Verdict::Refused(..)) => "inactive",
                Err(_) => "error",
            };
            self.metrics.introspection(result, started.elapsed());
            match verdict {
                Ok(Verdict::Active(p, exp)) => {
                    self.cache.put(key, Ok(p.clone()), exp);
                    return Ok(p);
                }
                Ok(Verdict::Refused(reason)) => refused = reason,
                Err(e) => {
                    unreachable = true;
                    tracing::warn!(url = %endpoint.url, error = %e, "Token introspection failed.");
                }
            }
        }
        if unreachable {
            return Err(Failure::Unavailable(Reason::IntrospectionUnavailable));
        }
        self.cache.put(key, Err(refused), None);
        Err(Failure::Invalid(refused))
    }

    async fn ask(&self, endpoint: &IntrospectionEndpoint, token: &str) -> Result<Verdict, String> {
        let (headers, form) = form_and_headers(endpoint, token)?;
        let fetched = self
            .client
            .post_form(&endpoint.url, headers, form)
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value =
            serde_json::from_slice(&fetched.body).map_err(|e| format!("not JSON: {e}"))?;
        Ok(self.judge(endpoint, &answer))
    }

    /// RFC 7662 §2.2 answer → verdict.
    fn judge(&self, endpoint: &IntrospectionEndpoint, answer: &Value) -> Verdict {
        let exp = answer.get("exp").and_then(Value::as_u64);
        if answer.get("active").and_then(Value::as_bool) != Some(true) {
            return Verdict::Refused(Reason::Inactive);
        }
        let now = unix_now();
        if exp.is_some_and(|exp| exp.saturating_add(self.skew.as_secs()) <= now) {
            return Verdict::Refused(Reason::Expired);
        }
        if answer
            .get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|nbf| nbf > now.saturating_add(self.skew.as_secs()))
        {
            return Verdict::Refused(Reason::Expired);
        }
        if let (Some(want), Some(got)) = (
            endpoint.issuer.as_deref(),
            answer.get("iss").and_then(Value::as_str),
        ) {
            if want != got {
                return Verdict::Refused(Reason::WrongIssuer);
            }
        }
        let audiences = scope_list(answer.get("aud"));
        // `aud` is a string or an array (RFC 7519 §4.1.3); split_whitespace is harmless on URIs.
        if !audiences.iter().any(|a| endpoint.audiences.contains(a)) {
            return Verdict::Refused(Reason::WrongAudience);
        }
        let subject = ["sub", "client_id", "username"]
            .iter()
            .find_map(|k| answer.get(*k).and_then(Value::as_str));
        let Some(subject) = subject else {
            return Verdict::Refused(Reason::Malformed);
        };
        Verdict::Active(
            Principal {
                subject: subject.to_owned(),
                scopes: scope_list(answer.get("scope")),
                source: Source::Introspection,
            },
            exp,
        )
    }
}

/// The request's form body and client authentication (the serializer is not `Send`: built and dropped here).
fn form_and_headers(
    endpoint: &IntrospectionEndpoint,
    token: &str,
) -> Result<(HeaderMap, String), String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token);
    form.append_pair("token_type_hint", "access_token");
    let mut headers = HeaderMap::new();
    let secret = endpoint.client_secret.expose();
    match endpoint.auth_method {
        ClientAuthMethod::ClientSecretBasic => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&endpoint.client_id), enc(secret));
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut value = HeaderValue::from_str(&format!("Basic {b64}"))
                .map_err(|_| "the client credentials cannot form a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        ClientAuthMethod::ClientSecretPost => {
            form.append_pair("client_id", &endpoint.client_id);
            form.append_pair("client_secret", secret);
        }
    }
    Ok((headers, form.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_core::secret::Secret;
    use serde_json::json;

    fn introspector() -> (Introspector, IntrospectionEndpoint) {
        let endpoint = IntrospectionEndpoint {
            url: url::Url::parse("http://127.0.0.1:1/introspect").expect("url"),
            client_id: "gw".into(),
            client_secret: Secret::new("s"),
            auth_method: ClientAuthMethod::ClientSecretBasic,
            audiences: vec!["https://mcp.example.com/mcp".into()],
            issuer: Some("https://as.example.com".into()),
        };
        let i = Introspector {
            endpoints: vec![endpoint.clone()],
            client: Client::new(Duration::from_secs(1)).expect("client"),
            metrics: Arc::new(Metrics::new()),
            skew: Duration::from_secs(30),
            cache: TokenCache::new(Duration::from_secs(60)),
        };
        (i, endpoint)
    }

    #[test]
    fn answers_are_judged_like_a_jwt() {
        let (i, e) = introspector();
        let later = unix_now() + 600;
        let good = json!({"active": true, "sub": "svc", "scope": "mcp:read", "aud": "https://mcp.example.com/mcp", "exp": later, "iss": "https://as.example.com"});
        assert!(
            matches!(i.judge(&e, &good), Verdict::Active(ref p, _) if p.subject == "svc" && p.scopes == ["mcp:read"])
        );
        let reason = |v: Value| match i.judge(&e, &v) {
            Verdict::Refused(r) => Some(r),
            Verdict::Active(..) => None,
        };
        assert_eq!(reason(json!({"active": false})), Some(Reason::Inactive));
        assert_eq!(reason(json!({"sub": "svc"})), Some(Reason::Inactive));
        let mut v = good.clone();
        v["aud"] = json!(["https://other.example.com"]);
        assert_eq!(reason(v), Some(Reason::WrongAudience));
        let mut v = good.clone();
        v.as_object_mut().expect("object").remove("aud");
        assert_eq!(reason(v), Some(Reason::WrongAudience));
        let mut v = good.clone();
        v["exp"] = json!(unix_now() - 600);
        assert_eq!(reason(v), Some(Reason::Expired));
        let mut v = good.clone();
        v["iss"] = json!("https://evil.example.com");
        assert_eq!(reason(v), Some(Reason::WrongIssuer));
    }
}
