//! The federation's side of one upstream MCP session: `initialize` + `notifications/initialized` (2025-11-25
//! `basic/lifecycle` §Initialization), then requests on the session (`Mcp-Session-Id`, `MCP-Protocol-Version`:
//! 2025-11-25 `basic/transports` §Session Management and §Protocol Version Header), and `DELETE` at the end
//! (§Session Management 5). Every exchange goes through the [`Upstream`] seam, so an HTTP pool and a stdio
//! command are the same here.
//!
//! A reply is read whole, bounded ([`MAX_REPLY_BYTES`]) and within the exchange's timeout: `application/json`,
//! or an SSE stream (2025-11-25 `basic/transports` §Sending Messages to the Server 5) read until the response
//! with our id; the notifications that came before it are returned beside it (the federation passes on
//! `notifications/*/list_changed`), except the request-scoped ones (`notifications/progress`,
//! `notifications/message`), which go to the exchange's [`Relay`] as they arrive when it has one (the client's
//! own response stream, `federation/stream.rs`). A server-to-client request on that stream (sampling, elicitation, roots)
//! cannot reach a federated client over a JSON reply: it is answered with an error at once, never left hanging
//! (`docs/gateway-federation.md` §What is refused).
//!
//! An HTTP 404 on a request that carried a session id is [`ExchangeError::Expired`] (§Session Management 4: the
//! client "MUST start a new session"); the caller re-initializes that one server's session only.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http1::{MCP_METHOD, MCP_NAME, MCP_PROTOCOL_VERSION as PROTOCOL_VERSION_HEADER};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use lifeline_mcp::era;
use lifeline_mcp::sse::{Item, Parser, DEFAULT_MAX_EVENT_BYTES};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::proxy::SESSION_HEADER;
use crate::upstream::{Endpoint, EndpointRef, Forward, Forwarded, Route, Upstream, UpstreamError};

/// Largest upstream reply the federation reads (JSON body or SSE stream up to the response): 16 MiB.
pub(crate) const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// How much of an error answer's body is kept for the log: 512 bytes.
const ERROR_BODY_BYTES: usize = 512;
/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// Where the request-scoped notifications of one exchange go as they arrive (`notifications/progress`,
/// `notifications/message`: 2025-11-25 `basic/transports` §Sending Messages to the Server 6, 2026-07-28
/// `basic/transports/streamable-http` §Receiving Messages). Bounded: a client that reads slowly slows the
/// upstream read, within the exchange's timeout.
pub(crate) type Relay = tokio::sync::mpsc::Sender<Value>;

/// Whether `method` is a notification that belongs to the request whose stream carries it (and so is relayed to
/// that request's client, never broadcast).
pub(crate) fn request_scoped(method: &str) -> bool {
    matches!(method, "notifications/progress" | "notifications/message")
}

/// The ids of the federation's own requests upstream (one counter: they only need to be unique per session).
static NEXT_ID: AtomicI64 = AtomicI64::new(1);

/// One upstream session: its id (`None` for a stateless server, which gives none), the pool endpoint holding it,
/// and the protocol version agreed at `initialize`.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// `Mcp-Session-Id`, when the server issued one.
    pub(crate) session_id: Option<String>,
    /// The pool endpoint that answered `initialize` (pinned for the session's later requests).
    pub(crate) home: Option<EndpointRef>,
    /// The negotiated protocol version.
    pub(crate) version: String,
    /// The server's `initialize` result (`serverInfo`, `capabilities`, `instructions`), or its `DiscoverResult`
    /// on a modern link.
    pub(crate) init: Value,
    /// A modern (2026-07-28) link: no session; every request stateless with `_meta` and the mirrored headers
    /// (2026-07-28 `basic/transports/streamable-http` §Standard Request Headers).
    pub(crate) modern: bool,
    /// A legacy link: the lowest log level ([`super::stream::LEVELS`] index) sent to it with `logging/setLevel`
    /// for a modern client's request (`Federation::exchange_ready`); `None` before the first. Shared by the
    /// link's clones (the same upstream session).
    pub(crate) log_level: Arc<std::sync::Mutex<Option<usize>>>,
}

/// A reply: the JSON-RPC response's `result` or `error` as the server wrote them (JSON text, never parsed into
/// a tree unless a caller reads into them: a relayed result goes to the client as it came), and the notifications
/// the server sent before it on the same stream.
#[derive(Debug)]
pub(crate) struct Reply {
    /// `Ok(result)` or `Err(error)`.
    pub(crate) outcome: Result<Box<RawValue>, Box<RawValue>>,
    /// Server notifications seen before the response.
    pub(crate) notifications: Vec<Value>,
}

impl Reply {
    /// The result as a tree, `None` for an error (or a result that is not JSON, which the parse ruled out).
    pub(crate) fn result(&self) -> Option<Value> {
        self.outcome
            .as_ref()
            .ok()
            .and_then(|r| serde_json::from_str(r.get()).ok())
    }

    /// The error's JSON text, `None` for a result.
    pub(crate) fn error(&self) -> Option<&str> {
        self.outcome.as_ref().err().map(|e| e.get())
    }
}

/// A JSON-RPC message as read to find the response: its id and its `result` or `error` kept as text; every
/// other member is skipped unparsed.
#[derive(serde::Deserialize)]
struct Wire {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Box<RawValue>>,
}

impl Wire {
    /// The reply, when this is the response to `id`.
    fn response_to(self, id: i64) -> Option<Result<Box<RawValue>, Box<RawValue>>> {
        if !lifeline_mcp::jsonrpc::id_matches(&self.id, id) {
            return None;
        }
        match (self.result, self.error) {
            (Some(r), _) => Some(Ok(r)),
            (None, Some(e)) => Some(Err(e)),
            (None, None) => None,
        }
    }
}

/// Why an exchange gave no reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The upstream seam failed (connect, timeout, protocol).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// 404 to a request on a session: the server forgot the session.
    #[error("the upstream session expired")]
    Expired,
    /// Another HTTP error status, with the start of its body (at most [`ERROR_BODY_BYTES`], for the log and
    /// `GET /servers`).
    #[error("the upstream answered HTTP {0}: {1}")]
    Status(u16, String),
    /// No reply within the bound.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply was not a JSON-RPC response to the request (or too large).
    #[error("bad reply: {0}")]
    Protocol(String),
    /// `initialize` answered with a JSON-RPC error.
    #[error("initialize refused: {0}")]
    Refused(String),
}

impl ExchangeError {
    /// The bounded label for logs and `GET /servers`: `connect`, `timeout`, `protocol`, `expired`, `status`,
    /// `refused`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ExchangeError::Upstream(e) => e.reason(),
            ExchangeError::Expired => "expired",
            ExchangeError::Status(..) => "status",
            ExchangeError::Timeout(_) => "timeout",
            ExchangeError::Protocol(_) => "protocol",
            ExchangeError::Refused(_) => "refused",
        }
    }
}

/// Opens a session: `initialize` with the latest legacy version, then `notifications/initialized`.
///
/// Errors: [`ExchangeError`]; a JSON-RPC error to `initialize` is [`ExchangeError::Refused`].
pub(crate) async fn initialize(up: &Upstream, timeout: Duration) -> Result<Link, ExchangeError> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let params = era::initialize_params("lifeline-federation", env!("CARGO_PKG_VERSION"));
    let msg = Outgoing {
        jsonrpc: "2.0",
        id: Some(id),
        method: "initialize",
        params: &params,
    };
    let fresh = Link {
        session_id: None,
        home: None,
        version: era::LATEST_LEGACY_VERSION.to_owned(),
        init: Value::Null,
        modern: false,
        log_level: Default::default(),
    };
    let (reply, session_id, home) = send(up, &fresh, &msg, id, timeout, false, None).await?;
    if let Some(e) = reply.error() {
        return Err(ExchangeError::Refused(e.to_owned()));
    }
    let Some(result) = reply.result() else {
        return Err(ExchangeError::Protocol("initialize: no result".to_owned()));
    };
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .filter(|v| era::is_known_legacy(v))
        .unwrap_or(era::LATEST_LEGACY_VERSION)
        .to_owned();
    let link = Link {
        session_id,
        home,
        version,
        init: result,
        modern: false,
        log_level: Default::default(),
    };
    notify(up, &link, "notifications/initialized", json!({}), timeout).await?;
    Ok(link)
}

/// Opens a modern link: `server/discover` (2026-07-28 `server/discover`; `basic/versioning` §Protocol Version
/// Negotiation: "Servers MUST implement server/discover"), accepted when its `supportedVersions` lists 2026-07-28.
///
/// Errors: [`ExchangeError`]; a server that is not modern is [`ExchangeError::Refused`].
pub(crate) async fn discover(up: &Upstream, timeout: Duration) -> Result<Link, ExchangeError> {
    let mut link = Link {
        session_id: None,
        home: None,
        version: era::MODERN_VERSION.to_owned(),
        init: Value::Null,
        modern: true,
        log_level: Default::default(),
    };
    let reply = request(up, &link, "server/discover", &json!({}), timeout).await?;
    if let Some(e) = reply.error() {
        return Err(ExchangeError::Refused(e.to_owned()));
    }
    let Some(result) = reply.result() else {
        return Err(ExchangeError::Protocol(
            "server/discover: no result".to_owned(),
        ));
    };
    let modern = result["supportedVersions"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x == era::MODERN_VERSION));
    if !modern {
        return Err(ExchangeError::Refused(format!(
            "server/discover lists no {}",
            era::MODERN_VERSION
        )));
    }
    link.init = result;
    Ok(link)
}

/// The health check on `link`: `ping` on a legacy session (2025-11-25 `basic/utilities/ping`), `server/discover`
/// on a modern link (2026-07-28 has no `ping`).
///
/// Errors: [`ExchangeError`].
pub(crate) async fn check(
    up: &Upstream,
    link: &Link,
    timeout: Duration,
) -> Result<(), ExchangeError> {
    let method = if link.modern {
        "server/discover"
    } else {
        "ping"
    };
    let reply = request(up, link, method, &json!({}), timeout).await?;
    match reply.error() {
        Some(e) => Err(ExchangeError::Refused(e.to_owned())),
        None => Ok(()),
    }
}

/// Sends a request on `link` and reads its response.
///
/// Errors: [`ExchangeError`] (a JSON-RPC error from the server is a reply, not an error).
pub(crate) async fn request(
    up: &Upstream,
    link: &Link,
    method: &str,
    params: &Value,
    timeout: Duration,
) -> Result<Reply, ExchangeError> {
    request_relaying(up, link, method, params, timeout, None, None).await
}

/// A new upstream request id (unique in this process: one counter for every link).
pub(crate) fn next_id() -> i64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// [`request`], with the request-scoped notifications that come before the response sent to `relay` as they
/// arrive (instead of being returned in [`Reply::notifications`]).
///
/// Errors: [`ExchangeError`].
///
/// `id` is the upstream request id to use (from [`next_id`], when the caller must know it to cancel the request
/// later); `None` takes a new one.
pub(crate) async fn request_relaying(
    up: &Upstream,
    link: &Link,
    method: &str,
    params: &Value,
    timeout: Duration,
    relay: Option<&Relay>,
    id: Option<i64>,
) -> Result<Reply, ExchangeError> {
    let id = id.unwrap_or_else(next_id);
    // Borrowed into the message (serialized once, in `forward`); a modern request's params are a new tree.
    let modern;
    let params = if link.modern {
        modern = with_modern_meta(params.clone());
        &modern
    } else {
        params
    };
    let msg = Outgoing {
        jsonrpc: "2.0",
        id: Some(id),
        method,
        params,
    };
    send(up, link, &msg, id, timeout, true, relay)
        .await
        .map(|(r, _, _)| r)
}

/// Sends a notification on `link` (202 expected).
///
/// Errors: [`ExchangeError`].
pub(crate) async fn notify(
    up: &Upstream,
    link: &Link,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<(), ExchangeError> {
    let msg = Outgoing {
        jsonrpc: "2.0",
        id: None,
        method,
        params: &params,
    };
    let resp = tokio::time::timeout(timeout, up.forward(forward(link, &msg, true)))
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))??;
    match resp.status() {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND if link.session_id.is_some() => Err(ExchangeError::Expired),
        s => Err(ExchangeError::Status(s.as_u16(), String::new())),
    }
}

/// Opens the session's `GET` stream (2025-11-25 `basic/transports` §Listening for Messages from the Server) and
/// calls `on` with the method of every notification on it, until the stream ends. A server without one (405) or
/// any failure ends it at once: this is best effort, the health check's listing is the fallback.
pub(crate) async fn listen(up: &Upstream, link: &Link, mut on: impl FnMut(&str)) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    session_headers(&mut headers, link);
    let req = Forward {
        method: Method::GET,
        endpoint: Endpoint::Mcp,
        headers,
        body: Bytes::new(),
        route: Route::to(link.home.as_ref()),
        forwarded: Forwarded::default(),
    };
    let Ok(resp) = up.forward(req).await else {
        return;
    };
    if !resp.status().is_success() {
        return;
    }
    let mut body = resp.into_body();
    let mut parser = Parser::new(DEFAULT_MAX_EVENT_BYTES.min(MAX_REPLY_BYTES));
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if parser.push(&data).is_err() {
            return;
        }
        while let Ok(Some(item)) = parser.next_item() {
            let Item::Event(ev) = item else { continue };
            let Ok(message) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            if message.get("id").is_none() {
                if let Some(method) = message["method"].as_str() {
                    on(method);
                }
            }
        }
    }
}

/// Ends the session with `DELETE` (a stateless link has nothing to end). Failures are logged, never raised: the
/// server's own idle expiry is the fallback.
pub(crate) async fn end(up: &Upstream, link: &Link, server: &str) {
    let Some(sid) = &link.session_id else { return };
    if let Err(e) = up.end_session(sid, link.home.as_ref()).await {
        tracing::debug!(server, error = %e, "Cannot end an upstream session.");
    }
}

/// A request or notification to a server, borrowed from its parts and serialized once.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    method: &'a str,
    params: &'a Value,
}

fn forward(link: &Link, msg: &Outgoing<'_>, on_session: bool) -> Forward {
    // Serializing a `Value` (or a struct of them) into a `Vec` cannot fail: every key is a string.
    let body = serde_json::to_vec(msg).unwrap_or_default();
    post(
        link,
        Bytes::from(body),
        Some((msg.method, msg.params)),
        on_session,
    )
}

/// A `POST` of `body` on `link`; `mirror` is the method and params a modern request mirrors in its headers.
fn post(link: &Link, body: Bytes, mirror: Option<(&str, &Value)>, on_session: bool) -> Forward {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Some((method, params)) = mirror.filter(|_| link.modern) {
        // 2026-07-28 `basic/transports/streamable-http` §Standard Request Headers: the method, and the name or URI
        // a request acts on, mirrored from the body.
        if let Ok(method) = HeaderValue::from_str(method) {
            headers.insert(MCP_METHOD, method);
        }
        let name = params["name"].as_str().or_else(|| params["uri"].as_str());
        if let Some(v) = name.and_then(|n| HeaderValue::from_str(&era::encode_header_value(n)).ok())
        {
            headers.insert(MCP_NAME, v);
        }
    }
    if on_session || link.modern {
        session_headers(&mut headers, link);
    }
    Forward {
        method: Method::POST,
        endpoint: Endpoint::Mcp,
        headers,
        body,
        route: Route::to(link.home.as_ref()),
        forwarded: Forwarded::default(),
    }
}

/// `MCP-Protocol-Version` and, on a session, `Mcp-Session-Id` (2025-11-25 `basic/transports` §Protocol Version
/// Header, §Session Management 3).
fn session_headers(headers: &mut HeaderMap, link: &Link) {
    if let Ok(v) = HeaderValue::from_str(&link.version) {
        headers.insert(PROTOCOL_VERSION_HEADER, v);
    }
    if let Some(v) = link
        .session_id
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        headers.insert(SESSION_HEADER, v);
    }
}

/// One request and its reply, bounded by `timeout` as a whole. Returns the reply, the session id the answer
/// carried and the pool endpoint that answered.
async fn send(
    up: &Upstream,
    link: &Link,
    msg: &Outgoing<'_>,
    id: i64,
    timeout: Duration,
    on_session: bool,
    relay: Option<&Relay>,
) -> Result<(Reply, Option<String>, Option<EndpointRef>), ExchangeError> {
    let exchange = async {
        let resp = up.forward(forward(link, msg, on_session)).await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND && on_session && link.session_id.is_some() {
            return Err(ExchangeError::Expired);
        }
        if !status.is_success() {
            let mut body = resp.into_body();
            let mut start = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    start
                        .extend_from_slice(&data[..data.len().min(ERROR_BODY_BYTES - start.len())]);
                }
                if start.len() >= ERROR_BODY_BYTES {
                    break;
                }
            }
            return Err(ExchangeError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&start).into_owned(),
            ));
        }
        let sid = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let home = resp.extensions().get::<EndpointRef>().cloned();
        let sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
        let mut body = resp.into_body();
        let reply = if sse {
            read_sse(up, link, &mut body, id, timeout, relay).await?
        } else {
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| ExchangeError::Protocol(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > MAX_REPLY_BYTES {
                        return Err(ExchangeError::Protocol(format!(
                            "reply larger than {MAX_REPLY_BYTES} bytes"
                        )));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            let wire: Wire = serde_json::from_slice(&buf)
                .map_err(|e| ExchangeError::Protocol(format!("reply is not JSON: {e}")))?;
            let Some(outcome) = wire.response_to(id) else {
                return Err(ExchangeError::Protocol(
                    "not a response to the request".to_owned(),
                ));
            };
            Reply {
                outcome,
                notifications: Vec::new(),
            }
        };
        Ok((reply, sid, home))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))?
}

/// Reads an SSE reply up to the response to `id`; request-scoped notifications go to `relay` when given.
async fn read_sse(
    up: &Upstream,
    link: &Link,
    body: &mut crate::body::Body,
    id: i64,
    timeout: Duration,
    relay: Option<&Relay>,
) -> Result<Reply, ExchangeError> {
    let mut parser = Parser::new(DEFAULT_MAX_EVENT_BYTES.min(MAX_REPLY_BYTES));
    let mut notifications = Vec::new();
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ExchangeError::Protocol(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read += data.len();
        if read > MAX_REPLY_BYTES {
            return Err(ExchangeError::Protocol(format!(
                "reply stream longer than {MAX_REPLY_BYTES} bytes before the response"
            )));
        }
        parser
            .push(&data)
            .map_err(|e| ExchangeError::Protocol(e.to_string()))?;
        while let Some(item) = parser
            .next_item()
            .map_err(|e| ExchangeError::Protocol(e.to_string()))?
        {
            let Item::Event(ev) = item else { continue };
            if let Some(outcome) = serde_json::from_str::<Wire>(&ev.data)
                .ok()
                .and_then(|w| w.response_to(id))
            {
                return Ok(Reply {
                    outcome,
                    notifications,
                });
            }
            let Ok(message) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            match (message.get("method"), message.get("id")) {
                (Some(_), Some(req_id)) => {
                    // A server-to-client request (sampling, elicitation, roots): no federated client can answer
                    // it on this exchange, so it gets "method not found" now instead of waiting for nothing.
                    let answer = json!({"jsonrpc": "2.0", "id": req_id, "error": {"code": METHOD_NOT_FOUND,
                        "message": "lifeline federation: server-to-client requests are not relayed"}});
                    let answer = post(link, Bytes::from(answer.to_string()), None, true);
                    let _ = tokio::time::timeout(timeout, up.forward(answer)).await;
                }
                (Some(method), None) => match relay {
                    Some(relay) if method.as_str().is_some_and(request_scoped) => {
                        // A client gone (its stream closed) no longer wants them; the exchange goes on to
                        // its response.
                        let _ = relay.send(message).await;
                    }
                    _ if notifications.len() < 64 => notifications.push(message),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Err(ExchangeError::Protocol(
        "the stream ended before the response".to_owned(),
    ))
}

/// `params` with the `_meta` every modern request carries (2026-07-28 `basic/index` §`_meta`: its version, client
/// and capabilities), keeping the caller's own `_meta` keys (a `progressToken`).
fn with_modern_meta(params: Value) -> Value {
    let mut params = match params {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut meta = match params.remove("_meta") {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Value::Object(add) = era::modern_meta("lifeline-federation", env!("CARGO_PKG_VERSION")) {
        meta.extend(add);
    }
    params.insert("_meta".to_owned(), Value::Object(meta));
    Value::Object(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_requests_carry_the_envelope_and_keep_their_own_meta() {
        let p = with_modern_meta(json!({"name": "add", "_meta": {"progressToken": 7}}));
        assert_eq!(p["_meta"][era::META_PROTOCOL_VERSION], era::MODERN_VERSION);
        assert!(p["_meta"][era::META_CLIENT_CAPABILITIES].is_object());
        assert_eq!(p["_meta"]["progressToken"], 7);
        assert_eq!(p["name"], "add");
        assert!(with_modern_meta(Value::Null)["_meta"].is_object());
    }
}
