//! Opaque tokens, checked by OAuth 2.0 Token Introspection (RFC 7662) at each configured endpoint in turn:
//!
//! - the gateway authenticates itself (RFC 7662 §2.1) with `client_secret_basic` (id and secret form-encoded,
//!   then Basic, RFC 6749 §2.3.1) or `client_secret_post`, and sends `token` with `token_type_hint=access_token`;
//! - the answer must say `"active": true` (§2.2), its `exp` (when present) must not have passed (with the
//!   skew), its `aud` must contain one of the endpoint's audiences (RFC 8707 §2; absent `aud` fails), and its
//!   `iss` must equal the endpoint's `issuer` when both are known;
//! - the principal is `sub`, else `client_id`, else `username`; scopes from `scope`.
//!
//! Answers are cached by the SHA-256 of the token (the token itself is never kept) for at most
//! `introspection_cache_ttl` and never past the token's `exp`; inactive answers too, so a flood of garbage
//! tokens costs the authorization server one call each at most once per TTL. The cache holds at most
//! [`MAX_CACHE_ENTRIES`]. An endpoint that cannot be reached (or answers other than 200) makes the request a
//! 503 unless another endpoint calls the token active: never an open door. Each call's latency is recorded in
//! `lifeline_gateway_auth_introspection_duration_seconds{result}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::fetch::Client;
use super::jwt::scope_list;
use super::{Failure, Principal, Reason, Source};
use crate::config::{AuthConfig, ClientAuthMethod, IntrospectionEndpoint};
use crate::metrics::Metrics;

/// Most cached answers.
pub(crate) const MAX_CACHE_ENTRIES: usize = 10_000;

/// The endpoints and the answer cache.
#[derive(Debug)]
pub(crate) struct Introspector {
    endpoints: Vec<IntrospectionEndpoint>,
    client: Client,
    metrics: Arc<Metrics>,
    skew: Duration,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    until: Instant,
    answer: Result<Principal, Reason>,
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
            ttl: cfg.introspection_cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `token` (see the module docs).
    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, Failure> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&key) {
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
                    self.store(key, Ok(p.clone()), exp);
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
        self.store(key, Err(refused), None);
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

    fn cached(&self, key: &[u8; 32]) -> Option<Result<Principal, Reason>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(key) {
            Some(c) if Instant::now() < c.until => Some(c.answer.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn store(&self, key: [u8; 32], answer: Result<Principal, Reason>, exp: Option<u64>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut ttl = self.ttl;
        if let Some(exp) = exp {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(unix_now())));
        }
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHE_ENTRIES {
            cache.retain(|_, c| now < c.until);
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                until: now + ttl,
                answer,
            },
        );
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
            ttl: Duration::from_secs(60),
            cache: Mutex::new(HashMap::new()),
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

    #[test]
    fn the_cache_never_outlives_the_token() {
        let (i, _) = introspector();
        let p = Principal {
            subject: "s".into(),
            scopes: vec![],
            source: Source::Introspection,
        };
        i.store([1; 32], Ok(p.clone()), Some(unix_now() + 3600));
        assert!(i.cached(&[1; 32]).is_some());
        i.store([2; 32], Ok(p), Some(unix_now().saturating_sub(1)));
        assert!(
            i.cached(&[2; 32]).is_none(),
            "an expired token is not cached"
        );
    }
}
