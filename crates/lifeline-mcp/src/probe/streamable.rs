//! Probing over Streamable HTTP: era detection (modern `server/discover` first, then legacy `initialize`, then the
//! HTTP+SSE transport), the session's requests, and its end.
//!
//! Spec: 2026-07-28 `basic/transports/streamable-http` (§Request Metadata, §Backward Compatibility),
//! `basic/versioning`, `server/discover`; 2025-11-25 `basic/transports` §Streamable HTTP (sessions, DELETE) and
//! `basic/lifecycle` (initialize).

use std::time::Instant;

use http::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::auth;
use super::ctx::{Ctx, CLEANUP_GRACE};
use super::http::{http_status_failure, Body, Exchange, HttpClient};
use super::http_sse;
use super::report::{Failure, Phase};
use super::steps::{self, rpc_failure, server_info, Channel};
use crate::era::{self, modern_error, Era, EraHint, TransportKind, MODERN_VERSION};
use crate::jsonrpc::{self, RpcError};
use crate::verdict::{Reason, Warning};

/// The foreign origin sent by the origin check: `.invalid` never resolves (RFC 2606), so no server can mistake
/// it for its own.
const FOREIGN_ORIGIN: &str = "https://lifeline-origin-check.invalid";

/// Probes an HTTP(S) URL: detects the era, runs the steps, and always ends a legacy session.
pub(crate) async fn run(ctx: &mut Ctx<'_>, url: Url) -> Result<(), Failure> {
    let mut client = HttpClient::new(url.clone(), ctx)?;
    client.prime_token(ctx).await?;
    let hint = ctx.opts.era_hint;
    if hint == EraHint::Sse {
        return http_sse::run(ctx, client).await;
    }
    if matches!(hint, EraHint::Auto | EraHint::Modern) {
        match discover(ctx, &mut client).await? {
            Discovery::Modern => {
                let mut ch = StreamableChannel::new(client, true, MODERN_VERSION.to_owned(), None);
                return steps::after_handshake(&mut ch, ctx).await;
            }
            Discovery::Legacy if hint == EraHint::Modern => {
                return Err(Failure::new(
                    Reason::UnsupportedVersion,
                    "the server does not speak the modern era (2026-07-28)",
                )
                .in_phase(Phase::Discover));
            }
            Discovery::Legacy => {}
        }
    }

    let (version, session) = match initialize(ctx, &mut client).await? {
        Initialized::Session { version, session } => (version, session),
        Initialized::TrySse { status } => {
            let sse_client = client.sibling(url);
            return http_sse::run(ctx, sse_client).await.map_err(|f| {
                if f.reason == Reason::NotMcp && f.phase == Some(Phase::SseEndpoint) {
                    Failure::new(
                        Reason::HttpStatus,
                        format!(
                            "POST initialize answered HTTP {status}, and GET is not an MCP SSE stream either"
                        ),
                    )
                    .in_phase(Phase::Initialize)
                    .with_status(status)
                } else {
                    f
                }
            });
        }
    };
    let mut ch = StreamableChannel::new(client, false, version, session);
    let result = legacy_session(&mut ch, ctx).await;
    ch.close(ctx).await;
    result
}

async fn legacy_session(ch: &mut StreamableChannel, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    // 2025-11-25 `basic/lifecycle` §Initialization: the client MUST send `notifications/initialized` next.
    let t = ctx.clock(Phase::Initialized);
    let r = ch
        .notify(ctx, Phase::Initialized, "notifications/initialized")
        .await;
    ctx.time(Phase::Initialized, t);
    r?;
    steps::after_handshake(ch, ctx).await
}

enum Discovery {
    Modern,
    Legacy,
}

/// Sends `server/discover` as a modern request and decides the era from the answer
/// (2026-07-28 `streamable-http` §Backward Compatibility).
async fn discover(ctx: &mut Ctx<'_>, client: &mut HttpClient) -> Result<Discovery, Failure> {
    let id = ctx.next_id();
    let body = jsonrpc::request(
        id,
        "server/discover",
        era::modern_params(Value::Null, &ctx.opts.client_name, &ctx.opts.client_version),
    );
    let headers = modern_headers("server/discover", None);
    let url = client.url.clone();
    let t = ctx.clock(Phase::Discover);
    let ex = client
        .post_rpc(ctx, Phase::Discover, &url, &headers, body, Some(id))
        .await;
    ctx.time(Phase::Discover, t);
    match ex? {
        Exchange::Rpc {
            outcome: Ok(result),
            ..
        } => from_discover_result(ctx, result),
        Exchange::Rpc {
            outcome: Err(e), ..
        } => from_modern_error(e),
        Exchange::Http {
            status,
            headers,
            body,
        } => {
            if auth::is_auth_challenge(status, &headers) {
                return Err(
                    auth::auth_required(ctx, &url, status, &headers, Phase::Discover).await,
                );
            }
            if let Some(e) = body
                .rpc_error()
                .filter(|e| modern_error::is_recognized(e.code))
            {
                return from_modern_error(e);
            }
            match status.as_u16() {
                // Not a recognized modern error: a legacy server (or the HTTP+SSE transport) answers like this.
                400 | 404 | 405 | 406 | 415 => Ok(Discovery::Legacy),
                _ => Err(http_status_failure(status, &body, Phase::Discover)),
            }
        }
    }
}

fn from_discover_result(ctx: &mut Ctx<'_>, result: Value) -> Result<Discovery, Failure> {
    let supported: Vec<String> = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if supported.is_empty() {
        // A result without supportedVersions is not a DiscoverResult: a legacy server that answered anyway.
        return Ok(Discovery::Legacy);
    }
    if supported.iter().any(|v| v == MODERN_VERSION) {
        check_result_type(&result, Phase::Discover)?;
        ctx.era = Some(Era::Modern);
        ctx.transport = Some(TransportKind::StreamableHttp);
        ctx.protocol_version = Some(MODERN_VERSION.to_owned());
        ctx.server_info = result
            .get("_meta")
            .and_then(|m| m.get(era::META_SERVER_INFO))
            .map(server_info);
        ctx.capabilities = result.get("capabilities").cloned();
        return Ok(Discovery::Modern);
    }
    if supported.iter().any(|v| era::is_known_legacy(v)) {
        return Ok(Discovery::Legacy);
    }
    Err(Failure::new(
        Reason::UnsupportedVersion,
        format!(
            "the server supports {}; Lifeline speaks {MODERN_VERSION} and {}",
            supported.join(", "),
            era::LEGACY_VERSIONS.join(", ")
        ),
    )
    .in_phase(Phase::Discover))
}

/// A recognized modern error to `server/discover`: the server is modern. `UnsupportedProtocolVersion` listing a
/// legacy version we speak means a legacy handshake; otherwise there is no common version.
fn from_modern_error(e: RpcError) -> Result<Discovery, Failure> {
    if !modern_error::is_recognized(e.code) {
        // Any other JSON-RPC error identifies a legacy server (2026-07-28 `basic/versioning` §Backward
        // Compatibility: "Anything else identifies a legacy server").
        return Ok(Discovery::Legacy);
    }
    if e.code == modern_error::UNSUPPORTED_PROTOCOL_VERSION {
        let supported: Vec<String> = e
            .data
            .as_ref()
            .and_then(|d| d.get("supported"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if supported.iter().any(|v| era::is_known_legacy(v)) {
            return Ok(Discovery::Legacy);
        }
        let mut f = rpc_failure(Phase::Discover, "server/discover", e);
        f.message = format!(
            "no common protocol version: the server supports [{}]; Lifeline speaks {MODERN_VERSION} and {}",
            supported.join(", "),
            era::LEGACY_VERSIONS.join(", ")
        );
        return Err(f);
    }
    Err(rpc_failure(Phase::Discover, "server/discover", e))
}

enum Initialized {
    Session {
        version: String,
        session: Option<String>,
    },
    /// POST was refused in a way the HTTP+SSE transport would be (400/404/405): try GET.
    TrySse { status: u16 },
}

/// The legacy handshake (2025-11-25 `basic/lifecycle` §Initialization, §Version Negotiation).
async fn initialize(ctx: &mut Ctx<'_>, client: &mut HttpClient) -> Result<Initialized, Failure> {
    let id = ctx.next_id();
    let body = jsonrpc::request(
        id,
        "initialize",
        era::initialize_params(&ctx.opts.client_name, &ctx.opts.client_version),
    );
    let url = client.url.clone();
    let t = ctx.clock(Phase::Initialize);
    let ex = client
        .post_rpc(ctx, Phase::Initialize, &url, &[], body, Some(id))
        .await;
    ctx.time(Phase::Initialize, t);
    match ex? {
        Exchange::Rpc {
            outcome: Ok(result),
            headers,
            ..
        } => {
            let version = steps::accept_initialize(ctx, &result, Era::Legacy)?;
            ctx.transport = Some(TransportKind::StreamableHttp);
            let session = headers
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok(Initialized::Session { version, session })
        }
        Exchange::Rpc {
            outcome: Err(e), ..
        } => Err(rpc_failure(Phase::Initialize, "initialize", e)),
        Exchange::Http {
            status,
            headers,
            body,
        } => {
            if auth::is_auth_challenge(status, &headers) {
                return Err(
                    auth::auth_required(ctx, &url, status, &headers, Phase::Initialize).await,
                );
            }
            if let Some(e) = body.rpc_error() {
                if e.code == modern_error::UNSUPPORTED_PROTOCOL_VERSION
                    || status == StatusCode::BAD_REQUEST
                {
                    // A 400 with a JSON-RPC error is the server refusing initialize, not a missing endpoint.
                    return Err(rpc_failure(Phase::Initialize, "initialize", e));
                }
            }
            match status.as_u16() {
                400 | 404 | 405 if ctx.opts.era_hint == EraHint::Auto => Ok(Initialized::TrySse {
                    status: status.as_u16(),
                }),
                _ => Err(http_status_failure(status, &body, Phase::Initialize)),
            }
        }
    }
}

/// 2026-07-28 `basic/index` §ResultType: absent means `complete`; an unknown value is invalid. A probe has
/// nobody to ask for input, so `input_required` (`server/tools` §Input Required Tool Results) fails the step
/// with its own reason.
fn check_result_type(result: &Value, phase: Phase) -> Result<(), Failure> {
    match result.get("resultType").and_then(Value::as_str) {
        None | Some("complete") => Ok(()),
        Some("input_required") => Err(Failure::new(
            Reason::InputRequired,
            "the server answered resultType \"input_required\": it asks for input a probe cannot give",
        )
        .in_phase(phase)),
        Some(other) => Err(Failure::new(
            Reason::ProtocolError,
            format!("unexpected resultType {other:?}"),
        )
        .in_phase(phase)),
    }
}

/// Headers every modern POST carries (2026-07-28 `streamable-http` §Request Metadata).
fn modern_headers(method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("mcp-protocol-version", MODERN_VERSION.to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    if let Some(name) = name {
        h.push(("mcp-name", encode_header_value(name)));
    }
    h
}

/// 2026-07-28 `streamable-http` §Value Encoding: values that are not plain, trimmed, printable ASCII, or that
/// look like the sentinel, are sent as `=?base64?…?=`.
pub fn encode_header_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && v.trim() == v
        && !(v.starts_with("=?base64?") && v.ends_with("?="));
    if plain {
        v.to_owned()
    } else {
        format!("=?base64?{}?=", base64_encode(v.as_bytes()))
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct StreamableChannel {
    client: HttpClient,
    modern: bool,
    version: String,
    session: Option<String>,
}

impl StreamableChannel {
    fn new(client: HttpClient, modern: bool, version: String, session: Option<String>) -> Self {
        StreamableChannel {
            client,
            modern,
            version,
            session,
        }
    }

    /// Headers of a legacy request after initialize: the session id, and `MCP-Protocol-Version` from 2025-06-18 on
    /// (2025-11-25 `basic/transports` §Protocol Version Header).
    fn legacy_headers(&self) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        if let Some(s) = &self.session {
            h.push(("mcp-session-id", s.clone()));
        }
        if self.version.as_str() >= "2025-06-18" {
            h.push(("mcp-protocol-version", self.version.clone()));
        }
        h
    }

    async fn notify(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        method: &str,
    ) -> Result<(), Failure> {
        let body = jsonrpc::notification(method, Value::Null);
        let headers = self.legacy_headers();
        let url = self.client.url.clone();
        match self
            .client
            .post_rpc(ctx, phase, &url, &headers, body, None)
            .await?
        {
            Exchange::Http { status, .. } if status.is_success() => Ok(()),
            Exchange::Http {
                status,
                headers,
                body,
            } => Err(self.http_failure(ctx, status, &headers, &body, phase).await),
            Exchange::Rpc { .. } => Ok(()),
        }
    }

    async fn http_failure(
        &mut self,
        ctx: &mut Ctx<'_>,
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &Body,
        phase: Phase,
    ) -> Failure {
        if auth::is_auth_challenge(status, headers) {
            let url = self.client.url.clone();
            return auth::auth_required(ctx, &url, status, headers, phase).await;
        }
        if status == StatusCode::NOT_FOUND && self.session.is_some() {
            // 2025-11-25 `basic/transports` §Session Management: 404 means the session is gone.
            self.session = None;
            return Failure::new(
                Reason::SessionLost,
                "the server answered 404 for the live session",
            )
            .in_phase(phase)
            .with_status(404);
        }
        if let Some(e) = body.rpc_error() {
            let mut f = rpc_failure(phase, phase.as_str(), e);
            f.http_status = Some(status.as_u16());
            return f;
        }
        http_status_failure(status, body, phase)
    }

    /// Ends a legacy session with DELETE (2025-11-25 `basic/transports` §Session Management), even when the
    /// probe's deadline has passed (bounded by [`CLEANUP_GRACE`]).
    async fn close(&mut self, ctx: &mut Ctx<'_>) {
        let Some(session) = self.session.take() else {
            return;
        };
        let t = ctx.clock(Phase::Close);
        let saved = ctx.deadline;
        ctx.deadline = ctx.deadline.max(Instant::now() + CLEANUP_GRACE);
        let mut headers = vec![("mcp-session-id", session)];
        if self.version.as_str() >= "2025-06-18" {
            headers.push(("mcp-protocol-version", self.version.clone()));
        }
        let url = self.client.url.clone();
        let result = self
            .client
            .send(ctx, Phase::Close, |c| {
                c.request(Method::DELETE, &url, &headers, bytes::Bytes::new())
            })
            .await;
        ctx.deadline = saved;
        match result {
            Ok(resp) if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND => {}
            Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => {
                ctx.warn(Warning::SessionDeleteNotAllowed)
            }
            _ => ctx.warn(Warning::SessionNotClosed),
        }
        ctx.time(Phase::Close, t);
    }
}

impl Channel for StreamableChannel {
    async fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure> {
        let id = ctx.next_id();
        let (body, headers) = if self.modern {
            // 2026-07-28 `streamable-http` §Request Metadata: `Mcp-Name` carries `params.name` for
            // `tools/call` and `prompts/get`, `params.uri` for `resources/read`.
            let key = match method {
                "tools/call" | "prompts/get" => Some("name"),
                "resources/read" => Some("uri"),
                _ => None,
            };
            let name = key
                .and_then(|k| params.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let params =
                era::modern_params(params, &ctx.opts.client_name, &ctx.opts.client_version);
            (
                jsonrpc::request(id, method, params),
                modern_headers(method, name.as_deref()),
            )
        } else {
            (jsonrpc::request(id, method, params), self.legacy_headers())
        };
        let url = self.client.url.clone();
        match self
            .client
            .post_rpc(ctx, phase, &url, &headers, body, Some(id))
            .await?
        {
            Exchange::Rpc {
                outcome: Ok(result),
                ..
            } => {
                if self.modern {
                    check_result_type(&result, phase)?;
                }
                Ok(result)
            }
            Exchange::Rpc {
                outcome: Err(e), ..
            } => Err(rpc_failure(phase, method, e)),
            Exchange::Http {
                status,
                headers,
                body,
            } => Err(self.http_failure(ctx, status, &headers, &body, phase).await),
        }
    }

    fn is_modern(&self) -> bool {
        self.modern
    }

    /// One cheap request (`ping`, or `server/discover` in the modern era) with a foreign `Origin`. Servers MUST
    /// answer 403 to an invalid Origin (2025-11-25 `basic/transports` §Security Warning; 2026-07-28
    /// `streamable-http` §Security & Endpoint). A 2xx means the check is missing. Never changes the verdict.
    async fn origin_check(&mut self, ctx: &mut Ctx<'_>) {
        let id = ctx.next_id();
        let (body, mut headers) = if self.modern {
            let params =
                era::modern_params(Value::Null, &ctx.opts.client_name, &ctx.opts.client_version);
            (
                jsonrpc::request(id, "server/discover", params),
                modern_headers("server/discover", None),
            )
        } else {
            (
                jsonrpc::request(id, "ping", Value::Null),
                self.legacy_headers(),
            )
        };
        headers.push(("origin", FOREIGN_ORIGIN.to_owned()));
        let url = self.client.url.clone();
        let saved = ctx.deadline;
        ctx.deadline = ctx.deadline.min(Instant::now() + CLEANUP_GRACE);
        let served = match self
            .client
            .post_rpc(ctx, Phase::OriginCheck, &url, &headers, body, Some(id))
            .await
        {
            Ok(Exchange::Rpc { status, .. }) => status.is_success(),
            _ => false,
        };
        ctx.deadline = saved;
        if served {
            ctx.warn(Warning::NoOriginCheck);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_encoding() {
        assert_eq!(encode_header_value("get_weather"), "get_weather");
        assert_eq!(
            encode_header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(encode_header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(
            encode_header_value("line1\nline2"),
            "=?base64?bGluZTEKbGluZTI=?="
        );
        assert_eq!(
            encode_header_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
    }

    #[test]
    fn discover_result_selects_era() {
        let opts = crate::ProbeOptions::default();
        let mut ctx = Ctx::new(&opts);
        let r = serde_json::json!({"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}}});
        assert!(matches!(
            from_discover_result(&mut ctx, r),
            Ok(Discovery::Modern)
        ));
        assert_eq!(ctx.server_info.as_ref().unwrap().name.as_deref(), Some("s"));
        let r = serde_json::json!({"supportedVersions":["2025-11-25"]});
        assert!(matches!(
            from_discover_result(&mut ctx, r),
            Ok(Discovery::Legacy)
        ));
        let r = serde_json::json!({"supportedVersions":["2099-01-01"]});
        assert_eq!(
            from_discover_result(&mut ctx, r).err().unwrap().reason,
            Reason::UnsupportedVersion
        );
    }

    #[test]
    fn modern_errors() {
        let e = |code, data| RpcError {
            code,
            message: "m".into(),
            data,
        };
        assert!(matches!(
            from_modern_error(e(-32601, None)),
            Ok(Discovery::Legacy)
        ));
        assert!(matches!(
            from_modern_error(e(
                -32022,
                Some(serde_json::json!({"supported":["2025-06-18"]}))
            )),
            Ok(Discovery::Legacy)
        ));
        let f = from_modern_error(e(
            -32022,
            Some(serde_json::json!({"supported":["2099-01-01"]})),
        ))
        .err()
        .unwrap();
        assert_eq!(f.reason, Reason::UnsupportedVersion);
        assert_eq!(
            from_modern_error(e(-32020, None)).err().unwrap().reason,
            Reason::RpcError
        );
    }
}
