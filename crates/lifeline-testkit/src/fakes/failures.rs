//! The simple misbehaving kinds: fixed replies (`BadGateway502`, `Html200`, `InvalidJson`), the JSON-RPC error
//! answerers (`RpcError`, `UnsupportedVersion`) and the bearer-token gate of `AuthRequired`.

use http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::http_util::{
    self, accepted, full, json_response, response, rpc_error as rpc_error_body, rpc_result, Body,
    Parsed,
};
use super::rpc;
use super::server::Stats;

/// The body of [`super::FakeKind::BadGateway502`].
const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n";

/// The body of [`super::FakeKind::Html200`].
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n\
<head><meta charset=\"utf-8\"><title>Welcome</title></head>\n\
<body><h1>Welcome to our site</h1><p>This is a web page, not an MCP server.</p></body>\n</html>\n";

/// The body of [`super::FakeKind::InvalidJson`]: a JSON-RPC response cut off mid-way.
const TRUNCATED_JSON: &str = r#"{"jsonrpc":"2.0","id":1,"result":"#;

/// The versions [`super::FakeKind::UnsupportedVersion`] claims to speak.
const FUTURE_VERSION: &str = "2099-01-01";

/// `-32022` UnsupportedProtocolVersion (spec 2026-07-28 `basic/index` §Error Codes).
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Which fixed reply a static kind sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaticReply {
    BadGateway,
    Html,
    TruncatedJson,
}

/// The bearer-token gate of [`super::FakeKind::AuthRequired`] (spec 2025-11-25 `basic/authorization`
/// §Protected Resource Metadata Discovery Requirements; RFC 9728 §5.1 for `resource_metadata`).
pub(crate) struct AuthGate {
    token: Option<String>,
    metadata_url: String,
    metadata: Value,
}

/// The answer of a static kind.
pub(crate) fn static_reply(kind: StaticReply) -> Response<Body> {
    match kind {
        StaticReply::BadGateway => {
            response(StatusCode::BAD_GATEWAY, Some("text/html"), full(NGINX_502))
        }
        StaticReply::Html => response(
            StatusCode::OK,
            Some("text/html; charset=utf-8"),
            full(HTML_PAGE),
        ),
        StaticReply::TruncatedJson => response(
            StatusCode::OK,
            Some("application/json"),
            full(TRUNCATED_JSON),
        ),
    }
}

/// [`super::FakeKind::RpcError`]: `-32603` for every request, `202` for notifications.
pub(crate) async fn rpc_error(req: Request<Incoming>, stats: &Stats) -> Response<Body> {
    let (_parts, parsed) = http_util::read_message(req).await;
    let id = match parsed {
        Parsed::Message(message) => {
            if let Some(method) = &message.method {
                stats.record_method(method);
            }
            if !message.is_request() {
                return accepted();
            }
            message.reply_id()
        }
        Parsed::NotJson | Parsed::NotObject => Value::Null,
    };
    json_response(
        StatusCode::OK,
        &rpc_error_body(id, -32603, "Internal error: database unavailable", None),
    )
}

/// [`super::FakeKind::UnsupportedVersion`]: `initialize` answers [`FUTURE_VERSION`], every other request gets
/// `-32022` with status 400 (spec 2026-07-28 `basic/versioning` §Protocol Version Negotiation).
pub(crate) async fn unsupported_version(req: Request<Incoming>, stats: &Stats) -> Response<Body> {
    let (parts, parsed) = http_util::read_message(req).await;
    let message = match parsed {
        Parsed::Message(message) => message,
        Parsed::NotJson | Parsed::NotObject => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &rpc_error_body(Value::Null, rpc::PARSE_ERROR, "Parse error", None),
            )
        }
    };
    if let Some(method) = &message.method {
        stats.record_method(method);
    }
    if !message.is_request() {
        return accepted();
    }
    if message.method.as_deref() == Some("initialize") {
        let result = json!({
            "protocolVersion": FUTURE_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": rpc::server_info(),
        });
        return json_response(StatusCode::OK, &rpc_result(message.reply_id(), result));
    }
    let requested = http_util::requested_version(&parts.headers, Some(&message))
        .unwrap_or_else(|| http_util::MODERN_VERSION.to_owned());
    json_response(
        StatusCode::BAD_REQUEST,
        &rpc_error_body(
            message.reply_id(),
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            Some(json!({"supported": [FUTURE_VERSION], "requested": requested})),
        ),
    )
}

impl AuthGate {
    /// A gate for a server at `base_url` whose MCP endpoint is `/mcp`; `token` unlocks it.
    pub(crate) fn new(base_url: &str, token: Option<String>) -> AuthGate {
        AuthGate {
            token,
            metadata_url: format!("{base_url}/.well-known/oauth-protected-resource/mcp"),
            metadata: json!({
                "resource": format!("{base_url}/mcp"),
                "authorization_servers": [format!("{base_url}/oauth")],
                "bearer_methods_supported": ["header"],
            }),
        }
    }

    /// `None` when the request may pass to the MCP server; otherwise the answer: the metadata document, a
    /// `401` challenge, or `404` for other paths.
    pub(crate) fn check(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        let path = req.uri().path();
        if path == "/.well-known/oauth-protected-resource/mcp" {
            // RFC 9728 §3: the metadata is fetched with GET and needs no authorization.
            return Some(if req.method() == Method::GET {
                json_response(StatusCode::OK, &self.metadata)
            } else {
                http_util::method_not_allowed("GET")
            });
        }
        if path != "/mcp" {
            return Some(http_util::text_response(StatusCode::NOT_FOUND, "Not Found"));
        }
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match (presented, self.token.as_deref()) {
            (Some(presented), Some(expected)) if presented == expected => None,
            (presented, _) => Some(self.challenge(presented.is_some())),
        }
    }

    /// `401` with `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 6750 §3, RFC 9728 §5.1).
    fn challenge(&self, token_was_sent: bool) -> Response<Body> {
        let mut challenge = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        if token_was_sent {
            challenge.push_str(", error=\"invalid_token\"");
        }
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_token", "error_description": "Missing or invalid access token"}),
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}
