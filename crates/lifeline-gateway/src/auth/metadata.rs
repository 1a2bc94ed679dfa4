//! OAuth 2.0 Protected Resource Metadata (RFC 9728), served on the client listener when auth is on and names
//! at least one authorization server (2026-07-28 `authorization/authorization-server-discovery` §Authorization
//! Server Location: the document "MUST include the `authorization_servers` field"). Routes:
//!
//! - `GET|HEAD /.well-known/oauth-protected-resource` (the root form), and the path-inserted forms for the
//!   MCP path and for the configured resource's path (RFC 9728 §3.1; `/.well-known/oauth-protected-resource/mcp`),
//!   which clients try first;
//! - `OPTIONS` on them: the CORS preflight (204).
//!
//! The document: `resource`, `authorization_servers` (the JWT issuers, then the introspection endpoints'
//! issuers), `scopes_supported` when set, `bearer_methods_supported: ["header"]` (RFC 6750 §2.1 only: tokens
//! in the query string are refused). `Access-Control-Allow-Origin: *` (browser-based clients fetch it across
//! origins) and `Cache-Control: public, max-age=3600`. The gateway never serves, proxies or rewrites the
//! authorization server's own metadata: clients must find its `issuer` identical to the URL they built
//! (RFC 8414 §3.3, RFC 9207), so they fetch it from the authorization server itself.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::json;

use super::challenge::{request_origin, WELL_KNOWN_PRM};
use crate::body::{self, Body};
use crate::config::{AuthConfig, Paths};

/// How long clients and caches may reuse the document: 1 h.
const MAX_AGE_SECS: u64 = 3600;

/// The authorization servers named in the document: the JWT issuers, then the introspection endpoints'
/// issuers, each once.
pub(crate) fn authorization_servers(cfg: &AuthConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let issuers = cfg
        .jwt
        .iter()
        .map(|j| j.issuer.clone())
        .chain(cfg.introspection.iter().filter_map(|i| i.issuer.clone()));
    for issuer in issuers {
        if !out.contains(&issuer) {
            out.push(issuer);
        }
    }
    out
}

/// Whether `path` is one of the metadata routes.
pub(crate) fn is_metadata_path(cfg: &AuthConfig, paths: &Paths, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(WELL_KNOWN_PRM) else {
        return false;
    };
    if rest.is_empty() || rest == "/" || rest == paths.mcp {
        return true;
    }
    cfg.resource
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
        .is_some_and(|u| u.path() != "/" && rest == u.path())
}

/// Answers a request to a metadata route; 404 when there is no authorization server to name.
pub(crate) fn serve(
    cfg: &AuthConfig,
    paths: &Paths,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let servers = authorization_servers(cfg);
    if servers.is_empty() {
        return body::rpc_error(
            StatusCode::NOT_FOUND,
            body::code::INVALID_REQUEST,
            "Not Found: this gateway names no authorization server",
            None,
        );
    }
    let mut resp = match *method {
        Method::GET | Method::HEAD => {
            let resource = cfg
                .resource
                .clone()
                .or_else(|| request_origin(headers).map(|origin| format!("{origin}{}", paths.mcp)));
            let mut doc = json!({
                "resource": resource,
                "authorization_servers": servers,
                "bearer_methods_supported": ["header"],
            });
            if !cfg.scopes_supported.is_empty() {
                doc["scopes_supported"] = json!(cfg.scopes_supported);
            }
            let mut resp = body::json_response(StatusCode::OK, &doc);
            if *method == Method::HEAD {
                *resp.body_mut() = body::full(bytes::Bytes::new());
            }
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}"))
                    .unwrap_or(HeaderValue::from_static("public")),
            );
            resp
        }
        Method::OPTIONS => {
            let mut resp = Response::new(body::full(bytes::Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            resp.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("*"),
            );
            resp.headers_mut().insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECS),
            );
            resp
        }
        _ => {
            let mut resp = body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                body::code::INVALID_REQUEST,
                "Method Not Allowed",
                None,
            );
            resp.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            resp
        }
    };
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}
