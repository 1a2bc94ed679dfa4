//! OpenTelemetry spans of the request path, only when traces are on (`lifeline_core::telemetry::traces_enabled`;
//! when off the proxy never calls in here: no span, no attribute, no second parse, no `_meta` rewrite).
//!
//! Integer attributes are recorded as `i64`: `tracing-opentelemetry` 0.34 turns unsigned values into strings.
//!
//! Span model (OpenTelemetry semantic conventions `docs/gen-ai/mcp.md`, status Development, read 2026-12):
//! - one SERVER span per client JSON-RPC message (`POST` to the MCP or the 2024-11-05 message endpoint), named
//!   `{mcp.method.name} {target}` with the target the tool (`tools/call`) or prompt (`prompts/get`) name, else
//!   `{mcp.method.name}`; attributes `mcp.method.name`, `jsonrpc.request.id` (requests only), `mcp.session.id`,
//!   `mcp.protocol.version`, `gen_ai.tool.name` + `gen_ai.operation.name = execute_tool`, `gen_ai.prompt.name`,
//!   `network.transport = tcp`, `network.protocol.name = http`, `client.address`,
//!   `http.response.status_code`, and on failure `error.type` with the gateway's bounded reason (`connect`,
//!   `timeout`, `protocol`, `not_served`, `body`, `draining`, `max_sessions`, …, the metrics' labels) or the
//!   HTTP status code, and status ERROR. It ends when the response body ends (streams included).
//! - one CLIENT span per upstream attempt, its child, with the same name and MCP attributes plus
//!   `lifeline.upstream.endpoint` (`mcp`, `sse`, `message`), `lifeline.upstream.attempt` (1: the gateway does
//!   not retry a client's message today), `network.transport` (`tcp`, or `pipe` for a stdio upstream) and
//!   `server.address`/`server.port` for HTTP.
//!
//! Context propagation (semconv §Context propagation; MCP 2026-07-28 `basic/index` §`_meta`, "OpenTelemetry
//! trace context": `traceparent`, `tracestate`, `baggage` are reserved keys; 2025-11-25 `basic/index` §`_meta`
//! allows unprefixed key names): the server span's parent is the `params._meta` context when valid, else the
//! HTTP `traceparent`/`tracestate` headers; when both are present and differ, the header's becomes a link (the
//! transport context). The forwarded message gets the attempt span's context in `params._meta.traceparent` (and
//! `tracestate`), replacing the client's, so a stdio child or an HTTP server that reads `_meta` continues the
//! trace under the gateway; an HTTP upstream also gets the same pair as headers. Batches (2025-03-26) and bodies
//! that are not one JSON object pass through untouched.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use lifeline_core::telemetry::context::{self, RemoteContext, TRACEPARENT, TRACESTATE};
use lifeline_mcp::jsonrpc::set_trace_context;
use serde_json::Value;
use tracing::field::Empty;
use tracing::Span;

use crate::upstream::{Endpoint, Upstream};

/// The `MCP-Protocol-Version` header (2025-11-25 `basic/transports` §Protocol Version Header).
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// The per-request protocol version in `_meta` (2026-07-28 `basic/index` §Per-request protocol fields).
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The reason a response carries for the span's `error.type`: set by the proxy on the responses it makes
/// itself (a rejection, an upstream failure), read when the request ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorReason(pub(crate) &'static str);

/// One client message's spans. Dropping it ends them, the attempt first.
#[derive(Debug)]
pub(crate) struct RequestTrace {
    // Declared first so it is dropped (ended) before its parent.
    attempt: Option<Span>,
    server: Span,
    /// The client's message, parsed once here, rewritten with `_meta` for the upstream.
    message: Option<Value>,
    name: String,
    method: String,
    attempts: u32,
}

impl RequestTrace {
    /// Starts the server span for the message `body` (already summarized as `label`) that arrived with
    /// `headers` from `peer`. Boxed: the request's bookkeeping holds it behind one pointer.
    pub(crate) fn start(
        body: &[u8],
        headers: &HeaderMap,
        label: &'static str,
        peer: SocketAddr,
    ) -> Box<RequestTrace> {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object);
        let fields = Fields::read(message.as_ref(), headers, label);
        let server = tracing::info_span!(
            target: "lifeline_gateway::trace",
            parent: None,
            "mcp.server",
            otel.name = %fields.name,
            otel.kind = "server",
            otel.status_code = Empty,
            mcp.method.name = %fields.method,
            mcp.session.id = Empty,
            mcp.protocol.version = Empty,
            jsonrpc.request.id = Empty,
            gen_ai.tool.name = Empty,
            gen_ai.operation.name = Empty,
            gen_ai.prompt.name = Empty,
            network.transport = "tcp",
            network.protocol.name = "http",
            client.address = %peer.ip(),
            http.response.status_code = Empty,
            error.type = Empty,
        );
        fields.record(&server);
        let from_header = header(headers, TRACEPARENT)
            .and_then(|tp| RemoteContext::parse(tp, header(headers, TRACESTATE)));
        match (&fields.meta_parent, &from_header) {
            (Some(meta), Some(http)) => {
                context::set_parent(&server, meta);
                if meta != http {
                    context::add_link(&server, http);
                }
            }
            (Some(parent), None) | (None, Some(parent)) => context::set_parent(&server, parent),
            (None, None) => {}
        }
        Box::new(RequestTrace {
            attempt: None,
            server,
            message,
            name: fields.name,
            method: fields.method,
            attempts: 0,
        })
    }

    /// Starts the CLIENT span of one upstream attempt and returns what to send: `body` with the attempt's
    /// context in `params._meta` (unchanged when the message cannot carry it) and `headers` with the same context
    /// as `traceparent`/`tracestate`.
    pub(crate) fn attempt(
        &mut self,
        upstream: &Upstream,
        endpoint: &Endpoint,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> (HeaderMap, Bytes) {
        self.attempts += 1;
        let (transport, address, port) = match upstream {
            Upstream::Http(http) => {
                let (host, port) = http.authority(endpoint);
                ("tcp", host, port)
            }
            Upstream::Stdio(_) => ("pipe", None, None),
        };
        let span = tracing::info_span!(
            target: "lifeline_gateway::trace",
            parent: &self.server,
            "mcp.upstream",
            otel.name = %self.name,
            otel.kind = "client",
            otel.status_code = Empty,
            mcp.method.name = %self.method,
            lifeline.upstream.endpoint = endpoint_label(endpoint),
            lifeline.upstream.attempt = i64::from(self.attempts),
            network.transport = transport,
            server.address = address.as_deref(),
            server.port = port.map(i64::from),
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let Some(w3c) = context::outgoing(&span) else {
            self.attempt = Some(span);
            return (headers, body);
        };
        for (name, value) in [
            (TRACEPARENT, &w3c.traceparent),
            (TRACESTATE, &w3c.tracestate),
        ] {
            let name = HeaderName::from_static(name);
            match HeaderValue::from_str(value) {
                Ok(v) if !value.is_empty() => {
                    headers.insert(name, v);
                }
                _ => {
                    headers.remove(name);
                }
            }
        }
        let body = match self.message.as_mut() {
            Some(msg) => {
                if set_trace_context(msg, &w3c.traceparent, &w3c.tracestate) {
                    serde_json::to_vec(msg).map(Bytes::from).unwrap_or(body)
                } else {
                    body
                }
            }
            None => body,
        };
        self.attempt = Some(span);
        (headers, body)
    }

    /// The upstream gave no answer (`reason` is `UpstreamError::reason`).
    pub(crate) fn upstream_failed(&self, reason: &'static str) {
        if let Some(attempt) = &self.attempt {
            fail(attempt, reason);
        }
    }

    /// The upstream answered with `status`.
    pub(crate) fn upstream_status(&self, status: u16) {
        if let Some(attempt) = &self.attempt {
            attempt.record("http.response.status_code", i64::from(status));
            if status >= 400 {
                // `error.type`: the status code as text (the semantic conventions' `500` example).
                fail(attempt, &status.to_string());
            }
        }
    }

    /// The session the message belongs to (from the request, or minted on the `initialize` response).
    pub(crate) fn session(&self, id: &str) {
        self.server.record("mcp.session.id", id);
    }

    /// The response status the client gets, and the proxy's own reason when it made the response itself.
    pub(crate) fn finish(&self, status: u16, reason: Option<ErrorReason>) {
        self.server
            .record("http.response.status_code", i64::from(status));
        match reason {
            Some(ErrorReason(r)) => fail(&self.server, r),
            None if status >= 400 => fail(&self.server, &status.to_string()),
            None => {}
        }
    }

    /// The trace id for an exemplar, when this trace is sampled.
    pub(crate) fn sampled_trace_id(&self) -> Option<String> {
        context::sampled_trace_id(&self.server)
    }
}

/// What the spans record about one message.
struct Fields<'a> {
    name: String,
    method: String,
    request_id: Option<String>,
    session: Option<&'a str>,
    protocol_version: Option<String>,
    tool: Option<String>,
    prompt: Option<String>,
    meta_parent: Option<RemoteContext>,
}

impl<'a> Fields<'a> {
    fn read(message: Option<&Value>, headers: &'a HeaderMap, label: &'static str) -> Fields<'a> {
        let method = message
            .and_then(|m| m.get("method"))
            .and_then(Value::as_str)
            .map_or_else(|| label.to_owned(), str::to_owned);
        let params = message.and_then(|m| m.get("params"));
        let name_param = || {
            params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let tool = (method == "tools/call").then(name_param).flatten();
        let prompt = (method == "prompts/get").then(name_param).flatten();
        let meta = params.and_then(|p| p.get("_meta"));
        let meta_str = |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str);
        let meta_parent =
            meta_str(TRACEPARENT).and_then(|tp| RemoteContext::parse(tp, meta_str(TRACESTATE)));
        let protocol_version = meta_str(META_PROTOCOL_VERSION)
            .or_else(|| header(headers, PROTOCOL_VERSION_HEADER))
            .or_else(|| {
                (method == "initialize")
                    .then(|| params.and_then(|p| p.get("protocolVersion")))
                    .flatten()
                    .and_then(Value::as_str)
            })
            .map(str::to_owned);
        // semconv: not captured when the id is null or absent.
        let request_id = message.and_then(|m| m.get("id")).and_then(|id| match id {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let target = tool.as_deref().or(prompt.as_deref());
        let name = match target {
            Some(t) => format!("{method} {t}"),
            None => method.clone(),
        };
        Fields {
            name,
            method,
            request_id,
            session: header(headers, "mcp-session-id"),
            protocol_version,
            tool,
            prompt,
            meta_parent,
        }
    }

    fn record(&self, span: &Span) {
        if let Some(id) = &self.request_id {
            span.record("jsonrpc.request.id", id.as_str());
        }
        if let Some(s) = self.session {
            span.record("mcp.session.id", s);
        }
        if let Some(v) = &self.protocol_version {
            span.record("mcp.protocol.version", v.as_str());
        }
        if let Some(t) = &self.tool {
            span.record("gen_ai.tool.name", t.as_str());
            span.record("gen_ai.operation.name", "execute_tool");
        }
        if let Some(p) = &self.prompt {
            span.record("gen_ai.prompt.name", p.as_str());
        }
    }
}

fn fail(span: &Span, reason: &str) {
    span.record("error.type", reason);
    span.record("otel.status_code", "error");
}

fn endpoint_label(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Mcp => "mcp",
        Endpoint::Sse => "sse",
        Endpoint::Message(_) => "message",
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_follow_the_semantic_conventions() {
        let mut h = HeaderMap::new();
        h.insert("mcp-session-id", HeaderValue::from_static("s-1"));
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        let call = json!({"jsonrpc":"2.0","id":"r-7","method":"tools/call","params":{"name":"echo",
            "_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}});
        let f = Fields::read(Some(&call), &h, "tools/call");
        assert_eq!(f.name, "tools/call echo");
        assert_eq!(f.request_id.as_deref(), Some("r-7"));
        assert_eq!(f.session, Some("s-1"));
        assert_eq!(f.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(f.tool.as_deref(), Some("echo"));
        assert_eq!(
            f.meta_parent.map(|p| p.trace_id()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let modern = json!({"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p",
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}});
        let none = HeaderMap::new();
        let f = Fields::read(Some(&modern), &none, "prompts/get");
        assert_eq!(f.name, "prompts/get p");
        assert_eq!(f.request_id.as_deref(), Some("3"));
        assert_eq!(f.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(f.prompt.as_deref(), Some("p"));
        let init = json!({"jsonrpc":"2.0","id":null,"method":"initialize","params":{"protocolVersion":"2025-06-18"}});
        let f = Fields::read(Some(&init), &none, "initialize");
        assert_eq!(f.name, "initialize");
        assert_eq!(f.request_id, None);
        assert_eq!(f.protocol_version.as_deref(), Some("2025-06-18"));
        let f = Fields::read(None, &none, "batch");
        assert_eq!((f.name.as_str(), f.method.as_str()), ("batch", "batch"));
    }
}
