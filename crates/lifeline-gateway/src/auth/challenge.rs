//! The one home of the `WWW-Authenticate` challenges and the auth answers (RFC 6750 §3, RFC 9728 §5.1,
//! 2026-07-28 `basic/authorization/index` §Error Handling and §Scope Challenge Handling):
//!
//! | status | when | `WWW-Authenticate` |
//! |---|---|---|
//! | 401 | no credential | `Bearer resource_metadata="…", scope="…"` |
//! | 401 | a credential that failed | the same plus `error="invalid_token", error_description="…"` |
//! | 403 | valid but lacking scopes | `Bearer error="insufficient_scope", scope="<every scope needed>", resource_metadata="…"` |
//! | 400 | token in the query string, two `Authorization` headers | `Bearer error="invalid_request", …` |
//! | 503 | an authorization server is unreachable | none; `Retry-After` |
//!
//! `resource_metadata` is the RFC 9728 §3.1 URL of the resource's metadata: the configured resource with
//! `/.well-known/oauth-protected-resource` inserted before its path, else the URL the request came to (from
//! `X-Forwarded-Proto`/`X-Forwarded-Host` or `Host`) with the MCP path. It is left out when the gateway has no
//! authorization server to name (API keys only). Bodies are JSON-RPC errors without an id (the body was not
//! read), or with the request's id for the 403 the policy layer builds.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;

use super::Reason;
use crate::body::{self, code, Body};
use crate::config::{AuthConfig, Paths};

/// RFC 9728 §3: the well-known path prefix of protected resource metadata.
pub(crate) const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

/// JSON-RPC code of the gateway's auth answers (the code the TypeScript SDK examples use for 401/403).
const AUTH_ERROR: i64 = -32001;

/// Builds challenges for one configuration.
#[derive(Debug, Clone)]
pub(crate) struct Challenger {
    /// The metadata URL when the resource is configured; `None`: derived per request.
    fixed_metadata_url: Option<String>,
    /// Whether there is an authorization server to point at (else no `resource_metadata`).
    has_authorization_server: bool,
    /// `scopes_supported`, space-separated; `None` when empty.
    scope: Option<String>,
    /// The MCP path, for a derived metadata URL.
    mcp_path: String,
}

impl Challenger {
    pub(crate) fn new(cfg: &AuthConfig, paths: &Paths) -> Challenger {
        Challenger {
            fixed_metadata_url: cfg.resource.as_deref().and_then(metadata_url_for),
            has_authorization_server: !super::metadata::authorization_servers(cfg).is_empty(),
            scope: (!cfg.scopes_supported.is_empty()).then(|| cfg.scopes_supported.join(" ")),
            mcp_path: paths.mcp.clone(),
        }
    }

    /// The `resource_metadata` URL for a request with `headers`; `None` without an authorization server.
    pub(crate) fn metadata_url(&self, headers: &HeaderMap) -> Option<String> {
        if !self.has_authorization_server {
            return None;
        }
        if let Some(url) = &self.fixed_metadata_url {
            return Some(url.clone());
        }
        let origin = request_origin(headers)?;
        Some(format!("{origin}{WELL_KNOWN_PRM}{}", self.mcp_path))
    }

    /// 401: no credential (`failed` is `None`), or one that failed for `failed`'s reason (`invalid_token`).
    pub(crate) fn unauthorized(
        &self,
        headers: &HeaderMap,
        failed: Option<Reason>,
    ) -> Response<Body> {
        let mut params = Vec::new();
        if let Some(url) = self.metadata_url(headers) {
            params.push(("resource_metadata", url));
        }
        if let Some(scope) = &self.scope {
            params.push(("scope", scope.clone()));
        }
        if let Some(reason) = failed {
            params.push(("error", "invalid_token".to_owned()));
            params.push(("error_description", description(reason).to_owned()));
        }
        let message = match failed {
            None => "Unauthorized: a bearer token is required",
            Some(_) => "Unauthorized: the bearer token is not valid for this server",
        };
        answer(StatusCode::UNAUTHORIZED, &params, message, None)
    }

    /// 403 `insufficient_scope` naming every scope in `required` (2026-07-28 `authorization` §Runtime
    /// Insufficient Scope Errors: "include all scopes required for the current operation in a single
    /// challenge"), with the JSON-RPC request's `id` when known.
    #[allow(dead_code)] // the policy layer's (branch gw-policy)
    pub(crate) fn insufficient_scope(
        &self,
        headers: &HeaderMap,
        required: &[String],
        id: Option<&Value>,
    ) -> Response<Body> {
        let mut params = vec![
            ("error", "insufficient_scope".to_owned()),
            ("scope", required.join(" ")),
        ];
        if let Some(url) = self.metadata_url(headers) {
            params.push(("resource_metadata", url));
        }
        params.push((
            "error_description",
            "the token lacks a scope this operation needs".to_owned(),
        ));
        answer(
            StatusCode::FORBIDDEN,
            &params,
            "Forbidden: insufficient scope",
            id,
        )
    }

    /// 400 `invalid_request` (RFC 6750 §3.1).
    pub(crate) fn invalid_request(&self, headers: &HeaderMap, description: &str) -> Response<Body> {
        let mut params = vec![
            ("error", "invalid_request".to_owned()),
            ("error_description", description.to_owned()),
        ];
        if let Some(url) = self.metadata_url(headers) {
            params.push(("resource_metadata", url));
        }
        let message = format!("Bad Request: {description}");
        answer(StatusCode::BAD_REQUEST, &params, &message, None)
    }
}

/// 503 + `Retry-After`: the credential could not be checked now (fail closed).
pub(crate) fn unavailable(retry_after: std::time::Duration) -> Response<Body> {
    body::with_retry_after(
        body::rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::SERVER_ERROR,
            "Service Unavailable: the credential cannot be checked right now; retry later",
            None,
        ),
        retry_after,
    )
}

/// The RFC 9728 §3.1 metadata URL of `resource`: the well-known segment inserted between the authority and the
/// path (a path of `/` counts as none).
pub(crate) fn metadata_url_for(resource: &str) -> Option<String> {
    let url = url::Url::parse(resource).ok()?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Some(format!("{origin}{WELL_KNOWN_PRM}{path}"))
}

/// `scheme://host[:port]` the request was sent to, from `X-Forwarded-Proto`/`X-Forwarded-Host` (the first
/// value, as set by the ingress in front) or `Host`.
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<String> {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = match first("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = first("x-forwarded-host").or_else(|| first(header::HOST.as_str()))?;
    // A Host with characters no authority has is not echoed into a URL.
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    ok.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn description(reason: Reason) -> &'static str {
    match reason {
        Reason::Expired => "the token has expired or is not valid yet",
        Reason::WrongAudience => "the token was not issued for this resource",
        Reason::WrongIssuer => "the token's issuer is not trusted here",
        Reason::UnknownKey => "the token is signed with an unknown key",
        Reason::BadSignature => "the token's signature does not verify",
        Reason::Inactive => "the token is not active",
        _ => "the token is malformed",
    }
}

/// `Bearer k="v", …` with `"` and `\` escaped (RFC 9110 §5.6.4 quoted-string).
fn www_authenticate(params: &[(&str, String)]) -> HeaderValue {
    let mut out = String::from("Bearer");
    for (i, (k, v)) in params.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars().filter(|c| !c.is_control()) {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn answer(
    status: StatusCode,
    params: &[(&str, String)],
    message: &str,
    id: Option<&Value>,
) -> Response<Body> {
    let mut resp = body::rpc_error(status, AUTH_ERROR, message, id);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, www_authenticate(params));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_segment_before_the_path() {
        let cases = [
            (
                "https://mcp.example.com/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://mcp.example.com",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://mcp.example.com/",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "http://127.0.0.1:8080/public/mcp",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/public/mcp",
            ),
        ];
        for (resource, want) in cases {
            assert_eq!(
                metadata_url_for(resource).as_deref(),
                Some(want),
                "{resource}"
            );
        }
    }

    #[test]
    fn challenge_values_are_quoted_strings() {
        let v = www_authenticate(&[
            ("resource_metadata", "https://a/x".to_owned()),
            ("scope", "a b".to_owned()),
            ("error_description", "say \"no\" \\ now".to_owned()),
        ]);
        assert_eq!(
            v,
            r#"Bearer resource_metadata="https://a/x", scope="a b", error_description="say \"no\" \\ now""#
        );
    }

    #[test]
    fn request_origin_prefers_the_forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("10.0.0.7:8080"));
        assert_eq!(request_origin(&h).as_deref(), Some("http://10.0.0.7:8080"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("MCP.example.com"),
        );
        assert_eq!(
            request_origin(&h).as_deref(),
            Some("https://mcp.example.com")
        );
        h.insert("x-forwarded-host", HeaderValue::from_static("evil\"x"));
        assert_eq!(request_origin(&h), None);
    }
}
