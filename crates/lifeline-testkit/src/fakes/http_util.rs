//! Response bodies and builders, request-body reading, and the small JSON-RPC vocabulary the fakes share.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};

/// Every response body of the fakes: fixed or streamed, never failing.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body a fake reads; larger ones are treated as unparsable.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// `Mcp-Session-Id` (spec 2025-11-25 `basic/transports` §Session Management).
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
/// `MCP-Protocol-Version` (spec 2025-11-25 `basic/transports` §Protocol Version Header).
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
/// `io.modelcontextprotocol/protocolVersion` in `params._meta` (spec 2026-07-28 `basic/index` §_meta).
pub(crate) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The modern protocol revision.
pub(crate) const MODERN_VERSION: &str = "2026-07-28";

/// A parsed request body.
pub(crate) enum Parsed {
    /// A JSON object: a request, notification or response.
    Message(RpcMessage),
    /// Valid JSON that is not an object (a batch, a string…).
    NotObject,
    /// Not JSON at all, or over the size bound.
    NotJson,
}

/// The parts of a JSON-RPC message the fakes look at.
pub(crate) struct RpcMessage {
    /// `id`, absent for notifications.
    pub(crate) id: Option<Value>,
    /// `method`, absent for responses.
    pub(crate) method: Option<String>,
    /// `params`, `Value::Null` when absent.
    pub(crate) params: Value,
}

impl RpcMessage {
    /// A request has both an id and a method.
    pub(crate) fn is_request(&self) -> bool {
        self.id.is_some() && self.method.is_some()
    }

    /// `params._meta[key]`.
    pub(crate) fn meta(&self, key: &str) -> Option<&Value> {
        self.params.get("_meta").and_then(|meta| meta.get(key))
    }

    /// The id to echo in a reply (`null` when absent).
    pub(crate) fn reply_id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }
}

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A fixed body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streamed body: each item becomes one data frame (one HTTP/1.1 chunk) as soon as it is produced.
pub(crate) fn streamed<S>(chunks: S) -> Body
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    StreamBody::new(chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)))).boxed_unsync()
}

/// A response with `status`, an optional `Content-Type`, and `body`.
pub(crate) fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// `status` with a JSON body.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    response(status, Some("application/json"), full(value.to_string()))
}

/// `status` with a `text/plain` body.
pub(crate) fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    response(status, Some("text/plain; charset=utf-8"), full(text))
}

/// `202 Accepted` with no body: the answer to a notification or response (spec 2025-11-25 `basic/transports`
/// §Sending Messages to the Server, item 4).
pub(crate) fn accepted() -> Response<Body> {
    response(StatusCode::ACCEPTED, None, empty())
}

/// `405 Method Not Allowed` naming the allowed methods.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// One SSE `message` event carrying `value` (spec 2025-11-25 `basic/transports` §Sending Messages to the
/// Server: server messages are SSE events whose data is the JSON-RPC message).
pub(crate) fn sse_message(value: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {value}\n\n"))
}

/// Headers every SSE response of the fakes carries, plus `X-Accel-Buffering: no` when asked (spec 2026-07-28
/// `basic/transports/streamable-http` §Receiving Messages: servers SHOULD send it).
pub(crate) fn sse_response(body: Body, x_accel_buffering: bool) -> Response<Body> {
    let mut response = response(StatusCode::OK, Some("text/event-stream"), body);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    if x_accel_buffering {
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
    }
    response
}

/// A reply to a JSON-RPC request, JSON or SSE-framed (one event, then the stream ends).
pub(crate) fn rpc_reply(
    status: StatusCode,
    value: &Value,
    sse: bool,
    x_accel_buffering: bool,
) -> Response<Body> {
    if sse && status == StatusCode::OK {
        sse_response(full(sse_message(value)), x_accel_buffering)
    } else {
        json_response(status, value)
    }
}

/// A JSON-RPC success response.
pub(crate) fn rpc_result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A JSON-RPC error response, with `data` when given.
pub(crate) fn rpc_error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// Reads and parses the request body (at most [`MAX_REQUEST_BYTES`]).
pub(crate) async fn read_message(req: Request<Incoming>) -> (http::request::Parts, Parsed) {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return (parts, Parsed::NotJson),
    };
    (parts, parse_message(&bytes))
}

/// Parses one JSON-RPC message.
pub(crate) fn parse_message(bytes: &[u8]) -> Parsed {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(_) => return Parsed::NotJson,
    };
    let Value::Object(mut object) = value else {
        return Parsed::NotObject;
    };
    Parsed::Message(RpcMessage {
        id: object.remove("id"),
        method: object
            .remove("method")
            .and_then(|m| m.as_str().map(str::to_owned)),
        params: object.remove("params").unwrap_or(Value::Null),
    })
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The protocol version a request asks for: the `MCP-Protocol-Version` header, else `params._meta`.
pub(crate) fn requested_version(
    headers: &HeaderMap,
    message: Option<&RpcMessage>,
) -> Option<String> {
    header(headers, VERSION_HEADER)
        .map(str::to_owned)
        .or_else(|| {
            message
                .and_then(|m| m.meta(META_VERSION))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

/// The `Authority` part of an `Origin` value (`scheme://host[:port]`), if it has that shape.
pub(crate) fn origin_authority(origin: &str) -> Option<&str> {
    let (_scheme, rest) = origin.split_once("://")?;
    Some(rest.trim_end_matches('/'))
}

/// Whether the request carries an `Origin` naming another authority than its `Host` (the DNS-rebinding
/// check of spec 2025-11-25 `basic/transports` §Security Warning). `Origin: null` counts as foreign.
pub(crate) fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = header(headers, "origin") else {
        return headers.contains_key("origin");
    };
    let host = header(headers, "host").unwrap_or_default();
    match origin_authority(origin) {
        Some(authority) => !authority.eq_ignore_ascii_case(host),
        None => true,
    }
}
