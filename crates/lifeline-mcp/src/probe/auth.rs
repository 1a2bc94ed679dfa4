//! What a 401/403 tells a client: the `WWW-Authenticate` challenge and the RFC 9728 protected resource metadata it
//! points to (MCP 2025-11-25 `basic/authorization` §Protected Resource Metadata Discovery).

use http::header::{HeaderMap, WWW_AUTHENTICATE};
use http::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::ctx::Ctx;
use super::http::{read_body, HttpClient};
use super::report::{AuthInfo, Failure, Phase};
use crate::verdict::Reason;

/// Bound on the metadata document: 1 MiB.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// True when a status with these headers is the `auth_required` verdict: any 401, and a 403 that carries a
/// `WWW-Authenticate` challenge (e.g. `insufficient_scope`).
pub(crate) fn is_auth_challenge(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN && headers.contains_key(WWW_AUTHENTICATE)
}

/// Builds the `auth_required` failure (no credential was presented) or the `auth_failed` one (a credential was
/// presented and rejected: RFC 6750 §3.1 `invalid_token` on a 401, `insufficient_scope` on a 403, whose step-up a
/// client-credentials client "MAY … abort", 2026-07-28 `basic/authorization` §Step-Up Authorization Flow), and
/// records what the server advertised in `ctx.auth`, fetching the resource metadata document (from
/// `resource_metadata`, else the RFC 9728 §3.1 well-known URIs). Never sends the probe's credentials to the
/// metadata URL.
pub(crate) async fn auth_required(
    ctx: &mut Ctx<'_>,
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    phase: Phase,
) -> Failure {
    let www = headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut info = AuthInfo {
        status: status.as_u16(),
        www_authenticate: www.clone(),
        ..AuthInfo::default()
    };
    let advertised = www
        .as_deref()
        .and_then(|w| challenge_param(w, "resource_metadata"));
    let candidates: Vec<Url> = match &advertised {
        Some(u) => url.join(u).into_iter().collect(),
        None => well_known_candidates(url),
    };
    for candidate in candidates {
        if ctx.remaining().is_zero() {
            break;
        }
        if let Some(doc) = fetch_json(ctx, &candidate).await {
            info.authorization_servers = doc
                .get("authorization_servers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            info.resource_metadata_url = Some(candidate.to_string());
            info.resource_metadata = Some(doc);
            break;
        }
    }
    if info.resource_metadata_url.is_none() {
        info.resource_metadata_url = advertised;
    }
    let mut message = if ctx.credential_sent {
        let error = www
            .as_deref()
            .and_then(|w| challenge_param(w, "error"))
            .map(|e| {
                let description = www
                    .as_deref()
                    .and_then(|w| challenge_param(w, "error_description"))
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                let scope = www
                    .as_deref()
                    .filter(|_| e == "insufficient_scope")
                    .and_then(|w| challenge_param(w, "scope"))
                    .map(|s| format!(" (scope needed: {s})"))
                    .unwrap_or_default();
                format!(", {e}{description}{scope}")
            })
            .unwrap_or_default();
        let which = if ctx.token_fetched {
            "an access token obtained during this probe"
        } else if ctx.opts.oauth.is_some() {
            "the access token"
        } else {
            "the configured credential"
        };
        format!(
            "the server rejected {which} (HTTP {}{error})",
            status.as_u16()
        )
    } else {
        format!(
            "the server requires authorization (HTTP {})",
            status.as_u16()
        )
    };
    if !info.authorization_servers.is_empty() {
        message.push_str(&format!(
            "; authorization servers: {}",
            info.authorization_servers.join(", ")
        ));
    }
    ctx.auth = Some(info);
    let reason = if ctx.credential_sent {
        Reason::AuthFailed
    } else {
        Reason::AuthRequired
    };
    Failure::new(reason, message)
        .in_phase(phase)
        .with_status(status.as_u16())
}

/// RFC 9728 §3.1: insert `/.well-known/oauth-protected-resource` between host and path, then at the root.
pub(crate) fn well_known_candidates(url: &Url) -> Vec<Url> {
    let mut out = Vec::new();
    let path = url.path().trim_end_matches('/');
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    if !path.is_empty() {
        let mut u = base.clone();
        u.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
        out.push(u);
    }
    let mut u = base;
    u.set_path("/.well-known/oauth-protected-resource");
    out.push(u);
    out
}

async fn fetch_json(ctx: &mut Ctx<'_>, url: &Url) -> Option<Value> {
    // No --header, no bearer token: the metadata may live on another origin.
    let mut client = HttpClient::anonymous(url.clone(), ctx).ok()?;
    let resp = client
        .send(ctx, Phase::FirstByte, |c| {
            c.request(
                Method::GET,
                url,
                &[("accept", "application/json".to_owned())],
                bytes::Bytes::new(),
            )
        })
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = read_body(ctx, Phase::FirstByte, resp.into_body(), MAX_METADATA_BYTES)
        .await
        .ok()?;
    serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
}

/// A parameter of a `WWW-Authenticate` challenge (RFC 9110 §11.6.1: `auth-param = token "=" ( token /
/// quoted-string )`).
pub(crate) fn challenge_param(header: &str, name: &str) -> Option<String> {
    let mut rest = header;
    while let Some(pos) = find_ci(rest, name) {
        let before_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b' ' | b',' | b'\t');
        let after = rest[pos + name.len()..].trim_start();
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                if let Some(quoted) = value.strip_prefix('"') {
                    let mut out = String::new();
                    let mut chars = quoted.chars();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => out.extend(chars.next()),
                            '"' => return Some(out),
                            c => out.push(c),
                        }
                    }
                    return None;
                }
                let end = value.find([',', ' ', '\t']).unwrap_or(value.len());
                return Some(value[..end].to_owned());
            }
        }
        rest = &rest[pos + name.len()..];
    }
    None
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenge_params() {
        let h = r#"Bearer realm="mcp", resource_metadata="https://x.example/.well-known/oauth-protected-resource/mcp", scope="a b""#;
        assert_eq!(
            challenge_param(h, "resource_metadata").as_deref(),
            Some("https://x.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenge_param(h, "scope").as_deref(), Some("a b"));
        assert_eq!(
            challenge_param("Bearer error=invalid_token", "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(challenge_param("Bearer", "resource_metadata"), None);
    }

    #[test]
    fn well_known_uris() {
        let u = Url::parse("https://h.example/api/mcp?x=1").unwrap();
        let c: Vec<String> = well_known_candidates(&u)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            c,
            vec![
                "https://h.example/.well-known/oauth-protected-resource/api/mcp",
                "https://h.example/.well-known/oauth-protected-resource",
            ]
        );
    }
}
