//! The legacy Streamable HTTP server (spec 2025-03-26 … 2025-11-25 `basic/transports` §Streamable HTTP) behind
//! [`super::FakeKind::Healthy`], and, with one defect switched on, behind `SlowInitialize`, `SseNeverSends`,
//! `SessionLost` and the unlocked `AuthRequired`.
//!
//! Routes: `POST /mcp` (JSON-RPC), `DELETE /mcp` (end a session), `GET /mcp` → 405; other paths → 404.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt as _};
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::http_util::{
    self, accepted, header, json_response, rpc_error, rpc_reply, rpc_result, sse_response,
    text_response, Body, Parsed, RpcMessage, SESSION_HEADER, VERSION_HEADER,
};
use super::rpc::{self, RpcFailure};
use super::server::Stats;
use super::HealthyOpts;

/// Legacy revisions this server negotiates, oldest first (spec 2025-11-25 `basic/lifecycle` §Version
/// Negotiation: answer the client's version if supported, else the latest supported).
const LEGACY_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
/// The version offered when the client's is not supported.
const LATEST_LEGACY: &str = "2025-11-25";
/// Size of one padding chunk of an oversized reply.
const PAD_CHUNK: usize = 64 * 1024;
/// Interval of the endless keep-alive comments.
const ENDLESS_KEEPALIVE: Duration = Duration::from_millis(10);
/// The padding bytes, shared by every chunk so a 100 MB reply costs no memory.
static PADDING: [u8; PAD_CHUNK] = [b'x'; PAD_CHUNK];

/// What a legacy server answers to a POST without a session (which includes every modern request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModernReject {
    /// `400` with the TypeScript SDK's JSON-RPC body (code `-32000`, not a modern error).
    SdkJson,
    /// `400` with a plain-text body.
    PlainText,
}

/// A legacy server's behaviour: the healthy options plus the defects of the misbehaving kinds.
pub(crate) struct LegacyConfig {
    pub(crate) opts: HealthyOpts,
    pub(crate) modern_reject: ModernReject,
    /// Wait this long before answering `initialize`.
    pub(crate) init_delay: Option<Duration>,
    /// Answer `initialize` with SSE headers and then nothing.
    pub(crate) init_never_sends: bool,
    /// Forget a session once `notifications/initialized` is acknowledged.
    pub(crate) lose_sessions: bool,
}

/// A legacy Streamable HTTP server with its live sessions.
pub(crate) struct LegacyServer {
    config: LegacyConfig,
    sessions: Mutex<HashSet<String>>,
    stats: Arc<Stats>,
}

impl LegacyConfig {
    /// The healthy behaviour with `opts`.
    pub(crate) fn healthy(opts: HealthyOpts) -> LegacyConfig {
        LegacyConfig {
            opts,
            modern_reject: ModernReject::SdkJson,
            init_delay: None,
            init_never_sends: false,
            lose_sessions: false,
        }
    }
}

impl LegacyServer {
    pub(crate) fn new(config: LegacyConfig, stats: Arc<Stats>) -> LegacyServer {
        LegacyServer {
            config,
            sessions: Mutex::new(HashSet::new()),
            stats,
        }
    }

    /// Serves one HTTP request.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() != "/mcp" {
            return text_response(StatusCode::NOT_FOUND, "Not Found");
        }
        if self.config.opts.origin_check && http_util::foreign_origin(req.headers()) {
            // Spec 2025-11-25 `basic/transports` §Security Warning: validate Origin; 403 when invalid.
            return json_response(
                StatusCode::FORBIDDEN,
                &rpc_error(Value::Null, -32000, "Forbidden: Origin not allowed", None),
            );
        }
        match *req.method() {
            Method::POST => self.post(req).await,
            Method::DELETE => {
                self.stats.record_method("HTTP DELETE");
                self.delete(req.headers())
            }
            Method::GET => {
                // Spec 2025-11-25 `basic/transports` §Listening for Messages from the Server, item 3: 405
                // when the server offers no standalone stream.
                self.stats.record_method("HTTP GET");
                http_util::method_not_allowed("POST, DELETE")
            }
            _ => http_util::method_not_allowed("POST, DELETE"),
        }
    }

    fn delete(&self, headers: &HeaderMap) -> Response<Body> {
        let Some(session) = header(headers, SESSION_HEADER) else {
            return self.no_session();
        };
        if self.lock_sessions().remove(session) {
            self.stats.session_closed();
            http_util::response(StatusCode::OK, None, http_util::empty())
        } else {
            session_not_found()
        }
    }

    async fn post(&self, req: Request<Incoming>) -> Response<Body> {
        // Spec 2025-11-25 `basic/transports` §Sending Messages to the Server, item 2: the client MUST accept both.
        let accept = header(req.headers(), ACCEPT.as_str()).unwrap_or_default();
        if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
            return json_response(
                StatusCode::NOT_ACCEPTABLE,
                &rpc_error(
                    Value::Null,
                    -32000,
                    "Not Acceptable: Client must accept both application/json and text/event-stream",
                    None,
                ),
            );
        }
        let content_type = header(req.headers(), CONTENT_TYPE.as_str()).unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return json_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &rpc_error(
                    Value::Null,
                    -32000,
                    "Unsupported Media Type: Content-Type must be application/json",
                    None,
                ),
            );
        }
        let (parts, parsed) = http_util::read_message(req).await;
        let message = match parsed {
            Parsed::Message(message) => message,
            Parsed::NotJson => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &rpc_error(Value::Null, rpc::PARSE_ERROR, "Parse error", None),
                )
            }
            Parsed::NotObject => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &rpc_error(Value::Null, rpc::INVALID_REQUEST, "Invalid Request", None),
                )
            }
        };
        if let Some(method) = &message.method {
            self.stats.record_method(method);
        }
        if message.method.as_deref() == Some("initialize") && message.id.is_some() {
            return self.initialize(&message).await;
        }

        let Some(session) = header(&parts.headers, SESSION_HEADER) else {
            return self.no_session();
        };
        if !self.lock_sessions().contains(session) {
            return session_not_found();
        }
        if let Some(version) = header(&parts.headers, VERSION_HEADER) {
            // Spec 2025-11-25 `basic/transports` §Protocol Version Header: an unsupported version MUST get 400.
            if !LEGACY_VERSIONS.contains(&version) {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &rpc_error(
                        Value::Null,
                        -32000,
                        &format!("Bad Request: Unsupported protocol version: {version}"),
                        None,
                    ),
                );
            }
        }

        if !message.is_request() {
            let initialized = message.method.as_deref() == Some("notifications/initialized");
            if initialized && self.config.lose_sessions && self.lock_sessions().remove(session) {
                self.stats.session_closed();
            }
            return accepted();
        }
        self.request(&message)
    }

    fn request(&self, message: &RpcMessage) -> Response<Body> {
        let opts = &self.config.opts;
        let outcome = match message.method.as_deref().unwrap_or_default() {
            "ping" => Ok(serde_json::Map::new()),
            "tools/list" => rpc::tools_list(&opts.tools, opts.page_size, &message.params),
            "tools/call" => rpc::tools_call(&opts.tools, &message.params, opts.tool_is_error),
            other => Err(RpcFailure {
                code: rpc::METHOD_NOT_FOUND,
                message: format!("Method not found: {other}"),
            }),
        };
        let body = match outcome {
            Ok(result) => rpc_result(message.reply_id(), Value::Object(result)),
            Err(failure) => rpc_error(message.reply_id(), failure.code, &failure.message, None),
        };
        rpc_reply(
            StatusCode::OK,
            &body,
            opts.sse_replies,
            opts.x_accel_buffering,
        )
    }

    async fn initialize(&self, message: &RpcMessage) -> Response<Body> {
        let opts = &self.config.opts;
        if let Some(delay) = self.config.init_delay {
            tokio::time::sleep(delay).await;
        }
        if self.config.init_never_sends {
            return sse_response(http_util::streamed(stream::pending::<Bytes>()), true);
        }
        if opts.endless_sse {
            return sse_response(
                http_util::streamed(endless_keepalive()),
                opts.x_accel_buffering,
            );
        }
        let requested = message
            .params
            .get("protocolVersion")
            .and_then(Value::as_str);
        let version = requested
            .filter(|v| LEGACY_VERSIONS.contains(v))
            .unwrap_or(LATEST_LEGACY);
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": rpc::server_info(),
        });
        if let Some(total) = opts.reply_bytes {
            return padded_reply(
                message.reply_id(),
                result,
                total,
                opts.sse_replies,
                opts.x_accel_buffering,
            );
        }
        let session = rpc::new_session_id();
        self.lock_sessions().insert(session.clone());
        self.stats.session_opened();
        let mut response = rpc_reply(
            StatusCode::OK,
            &rpc_result(message.reply_id(), result),
            opts.sse_replies,
            opts.x_accel_buffering,
        );
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        response
    }

    fn no_session(&self) -> Response<Body> {
        // Spec 2025-11-25 `basic/transports` §Session Management, item 2: 400 without a session id.
        match self.config.modern_reject {
            ModernReject::SdkJson => json_response(
                StatusCode::BAD_REQUEST,
                &rpc_error(
                    Value::Null,
                    -32000,
                    "Bad Request: No valid session ID provided",
                    None,
                ),
            ),
            ModernReject::PlainText => text_response(
                StatusCode::BAD_REQUEST,
                "Bad Request: No valid session ID provided",
            ),
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `404` for an unknown or forgotten session (spec 2025-11-25 `basic/transports` §Session Management, item 3).
fn session_not_found() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &rpc_error(Value::Null, -32001, "Session not found", None),
    )
}

/// `: keepalive` comments every [`ENDLESS_KEEPALIVE`], forever (the first at once).
fn endless_keepalive() -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    stream::unfold(true, |first| async move {
        if !first {
            tokio::time::sleep(ENDLESS_KEEPALIVE).await;
        }
        Some((Bytes::from_static(b": keepalive\n\n"), false))
    })
}

/// The `initialize` answer padded with `x`s inside `result.instructions` to exactly `total` body bytes (or the
/// unpadded answer, if that is already longer), streamed in [`PAD_CHUNK`] chunks without `Content-Length`.
fn padded_reply(
    id: Value,
    mut result: Value,
    total: usize,
    sse: bool,
    x_accel_buffering: bool,
) -> Response<Body> {
    // Split the serialised message around a marker to get the text before and after the padding.
    const MARKER: &str = "__LIFELINE_PADDING__";
    result["instructions"] = Value::String(MARKER.to_owned());
    let whole = rpc_result(id, result).to_string();
    let (before, after) = whole.split_once(MARKER).unwrap_or((whole.as_str(), ""));
    let (prefix, suffix) = if sse {
        (
            format!("event: message\ndata: {before}"),
            format!("{after}\n\n"),
        )
    } else {
        (before.to_owned(), after.to_owned())
    };
    let mut remaining = total.saturating_sub(prefix.len() + suffix.len());
    let padding = stream::iter(std::iter::from_fn(move || {
        if remaining == 0 {
            return None;
        }
        let n = remaining.min(PAD_CHUNK);
        remaining -= n;
        Some(Bytes::from_static(&PADDING[..n]))
    }));
    let chunks = stream::iter([Bytes::from(prefix)])
        .chain(padding)
        .chain(stream::iter([Bytes::from(suffix)]));
    let body = http_util::streamed(chunks);
    if sse {
        sse_response(body, x_accel_buffering)
    } else {
        http_util::response(StatusCode::OK, Some("application/json"), body)
    }
}
