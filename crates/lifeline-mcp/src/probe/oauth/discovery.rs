//! Finding the token endpoint from the MCP server, as a spec client does (MCP 2025-11-25 `basic/authorization`
//! §Authorization Server Discovery; 2026-07-28 `basic/authorization/authorization-server-discovery`):
//!
//! 1. The protected resource metadata (RFC 9728): the URL in the 401's `resource_metadata` (RFC 9728 §5.1), else
//!    the well-known URI with the target's path inserted, then at the root (RFC 9728 §3.1). Its `resource` must be
//!    the target (RFC 9728 §3.3: otherwise the client "MUST NOT use" it).
//! 2. The first of its `authorization_servers`, whose metadata is tried in the spec's priority order: RFC 8414
//!    path-inserted, OpenID Connect path-inserted, OpenID Connect path-appended for an issuer with a path; RFC 8414
//!    then OpenID Connect at the root otherwise.
//! 3. The metadata's `issuer` must equal the issuer URL exactly, by simple string comparison (RFC 8414 §3.3;
//!    OpenID Connect Discovery §4.3; the recorded issuer RFC 9207 §2.4 compares against): a mismatch stops here.

use serde_json::Value;
use url::Url;

use super::super::auth::{challenge_param, well_known_candidates};
use super::super::ctx::Ctx;
use super::super::http::{read_body, HttpClient};
use super::super::report::{Failure, Phase};
use crate::verdict::Reason;

/// Bound on a metadata document: 1 MiB.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// What discovery found.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `token_endpoint` from the authorization server's metadata.
    pub(crate) token_url: Url,
    /// The authorization server's issuer identifier, as its metadata states it (checked, RFC 8414 §3.3): the
    /// `aud` of a `private_key_jwt` assertion. `None` when the token endpoint was configured, not discovered.
    pub(crate) issuer: Option<String>,
    /// `scopes_supported` of the protected resource, space-joined: the scope to request when neither the config
    /// nor the challenge names one (2026-07-28 `basic/authorization` §Scope Selection Strategy).
    pub(crate) scope_hint: Option<String>,
}

/// Runs discovery for `resource`, starting from the `WWW-Authenticate` value of the server's 401 when there is
/// one. Errors are `auth_server_error` in phase `token`, naming the URLs tried.
pub(crate) async fn discover(
    ctx: &mut Ctx<'_>,
    resource: &Url,
    challenge: Option<&str>,
) -> Result<Endpoint, Failure> {
    let advertised = challenge.and_then(|c| challenge_param(c, "resource_metadata"));
    let candidates: Vec<Url> = match &advertised {
        Some(u) => resource.join(u).into_iter().collect(),
        None => well_known_candidates(resource),
    };
    let mut prm = None;
    for candidate in &candidates {
        if let Some(doc) = fetch_json(ctx, candidate).await? {
            prm = Some((candidate.clone(), doc));
            break;
        }
    }
    let Some((prm_url, prm)) = prm else {
        return Err(fail(format!(
            "no protected resource metadata (RFC 9728) at {}",
            list(&candidates)
        )));
    };
    let named = prm.get("resource").and_then(Value::as_str).unwrap_or("");
    if !same_resource(named, resource) {
        return Err(fail(format!(
            "the protected resource metadata at {prm_url} is for resource {named:?}, not {resource} (RFC 9728 §3.3)"
        )));
    }
    let Some(issuer) = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find_map(Value::as_str))
        .map(str::to_owned)
    else {
        return Err(fail(format!(
            "the protected resource metadata at {prm_url} names no authorization_servers"
        )));
    };
    let scope_hint = prm
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty());
    let issuer_url = Url::parse(&issuer).map_err(|e| {
        fail(format!(
            "the authorization server {issuer:?} is not a URL: {e}"
        ))
    })?;
    let candidates = metadata_candidates(&issuer_url);
    for candidate in &candidates {
        let Some(doc) = fetch_json(ctx, candidate).await? else {
            continue;
        };
        let stated = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if stated != issuer {
            return Err(fail(format!(
                "the authorization server metadata at {candidate} states issuer {stated:?}, not {issuer:?} \
                 (RFC 8414 §3.3)"
            )));
        }
        let token_url = doc
            .get("token_endpoint")
            .and_then(Value::as_str)
            .and_then(|t| Url::parse(t).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                fail(format!(
                    "the authorization server metadata at {candidate} has no usable token_endpoint"
                ))
            })?;
        return Ok(Endpoint {
            token_url,
            issuer: Some(issuer),
            scope_hint,
        });
    }
    Err(fail(format!(
        "no authorization server metadata (RFC 8414 / OpenID Connect Discovery) for {issuer} at {}",
        list(&candidates)
    )))
}

/// The metadata URLs of an issuer, in the MCP spec's priority order.
pub(crate) fn metadata_candidates(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.set_path(&p);
        u
    };
    if path.is_empty() {
        vec![
            at("/.well-known/oauth-authorization-server".to_owned()),
            at("/.well-known/openid-configuration".to_owned()),
        ]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// RFC 9728 §3.3: the metadata's `resource` is the resource's identifier. Compared as URLs (the `url` crate
/// lowercases scheme and host), forgiving only a trailing slash (2026-07-28 `basic/authorization` §Canonical
/// Server URI: both forms are valid).
fn same_resource(named: &str, resource: &Url) -> bool {
    let Ok(named) = Url::parse(named) else {
        return false;
    };
    let trim = |u: &Url| u.as_str().trim_end_matches('/').to_owned();
    trim(&named) == trim(resource)
}

/// GETs a JSON object without any of the probe's credentials. `Ok(None)` for a status other than 2xx or a body
/// that is not a JSON object (the next candidate is tried); `Err` when the probe's deadline ran out.
async fn fetch_json(ctx: &mut Ctx<'_>, url: &Url) -> Result<Option<Value>, Failure> {
    let mut client = HttpClient::anonymous(url.clone(), ctx)?;
    let resp = client
        .send_once(ctx, Phase::Token, &|c: &HttpClient| {
            c.request(
                http::Method::GET,
                url,
                &[("accept", "application/json".to_owned())],
                bytes::Bytes::new(),
            )
        })
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(f) if ctx.remaining().is_zero() => return Err(f),
        Err(_) => return Ok(None),
    };
    if !resp.status().is_success() {
        return Ok(None);
    }
    let Ok(body) = read_body(ctx, Phase::Token, resp.into_body(), MAX_METADATA_BYTES).await else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object))
}

fn fail(message: String) -> Failure {
    Failure::new(Reason::AuthServerError, message).in_phase(Phase::Token)
}

fn list(urls: &[Url]) -> String {
    urls.iter().map(Url::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn metadata_urls_follow_the_spec_order() {
        let root = Url::parse("https://auth.example.com").unwrap();
        assert_eq!(
            strs(metadata_candidates(&root)),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration"
            ]
        );
        let tenant = Url::parse("https://auth.example.com/tenant1").unwrap();
        assert_eq!(
            strs(metadata_candidates(&tenant)),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn resource_must_match_the_target() {
        let r = Url::parse("https://mcp.example.com/mcp").unwrap();
        assert!(same_resource("https://mcp.example.com/mcp", &r));
        assert!(same_resource("https://MCP.example.com/mcp/", &r));
        assert!(!same_resource("https://mcp.example.com/other", &r));
        assert!(!same_resource("https://evil.example/mcp", &r));
        assert!(!same_resource("", &r));
    }
}
