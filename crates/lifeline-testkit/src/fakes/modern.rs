//! The modern-only (2026-07-28) Streamable HTTP server behind [`super::FakeKind::Modern`]: stateless POSTs,
//! request metadata in headers and `params._meta`, `server/discover` (spec 2026-07-28
//! `basic/transports/streamable-http`, `server/discover`, `basic/versioning`).
//!
//! Routes: `POST /mcp`; `GET`/`DELETE /mcp` → 405; other paths → 404.

use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use super::failures::UNSUPPORTED_PROTOCOL_VERSION;
use super::http_util::{
    self, accepted, header, json_response, rpc_error, rpc_reply, rpc_result, text_response, Body,
    Parsed, RpcMessage, META_VERSION, MODERN_VERSION, VERSION_HEADER,
};
use super::rpc::{self, RpcFailure};
use super::server::Stats;
use super::ModernOpts;

/// `-32020` HeaderMismatch (spec 2026-07-28 `basic/transports/streamable-http` §Server Validation).
const HEADER_MISMATCH: i64 = -32020;
/// `io.modelcontextprotocol/clientCapabilities`, required in every request's `_meta` (spec 2026-07-28
/// `basic/index` §Per-request protocol fields).
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// A modern-only server.
pub(crate) struct ModernServer {
    opts: ModernOpts,
    stats: Arc<Stats>,
}

/// A rejection: HTTP status plus JSON-RPC error.
struct Rejection {
    status: StatusCode,
    code: i64,
    message: String,
    data: Option<Value>,
}

impl ModernServer {
    pub(crate) fn new(opts: ModernOpts, stats: Arc<Stats>) -> ModernServer {
        ModernServer { opts, stats }
    }

    /// Serves one HTTP request.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() != "/mcp" {
            return text_response(StatusCode::NOT_FOUND, "Not Found");
        }
        if req.method() != Method::POST {
            // Spec 2026-07-28 `basic/transports/streamable-http` §Earlier Streamable HTTP Revisions: GET or
            // DELETE to the MCP endpoint → 405.
            self.stats.record_method(&format!("HTTP {}", req.method()));
            return http_util::method_not_allowed("POST");
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
        if !message.is_request() {
            // Spec 2026-07-28 §Sending Messages, item 5: an accepted notification gets 202 with no body.
            return accepted();
        }
        let outcome = validate(&parts.headers, &message).and_then(|()| self.dispatch(&message));
        match outcome {
            Ok(mut result) => {
                // Spec 2026-07-28 `basic/index`: every result carries `resultType`; servers SHOULD identify
                // themselves in each result's `_meta`.
                result.insert("resultType".into(), json!("complete"));
                result.insert(
                    "_meta".into(),
                    json!({"io.modelcontextprotocol/serverInfo": rpc::server_info()}),
                );
                let body = rpc_result(message.reply_id(), Value::Object(result));
                rpc_reply(StatusCode::OK, &body, self.opts.sse_replies, true)
            }
            Err(rejection) => json_response(
                rejection.status,
                &rpc_error(
                    message.reply_id(),
                    rejection.code,
                    &rejection.message,
                    rejection.data,
                ),
            ),
        }
    }

    fn dispatch(&self, message: &RpcMessage) -> Result<Map<String, Value>, Rejection> {
        let opts = &self.opts;
        let outcome = match message.method.as_deref().unwrap_or_default() {
            "server/discover" => {
                let mut result = Map::new();
                result.insert("supportedVersions".into(), json!([MODERN_VERSION]));
                result.insert("capabilities".into(), json!({"tools": {}}));
                Ok(result)
            }
            "tools/list" => rpc::tools_list(&opts.tools, opts.page_size, &message.params),
            "tools/call" => rpc::tools_call(&opts.tools, &message.params, opts.tool_is_error),
            other => {
                // Spec 2026-07-28 §Protocol Version Header: an unimplemented method → 404 with -32601.
                return Err(Rejection {
                    status: StatusCode::NOT_FOUND,
                    code: rpc::METHOD_NOT_FOUND,
                    message: format!("Method not found: {other}"),
                    data: None,
                });
            }
        };
        // Method-level errors (bad cursor, unknown tool) are ordinary JSON-RPC errors on a 200.
        outcome.map_err(|RpcFailure { code, message }| Rejection {
            status: StatusCode::OK,
            code,
            message,
            data: None,
        })
    }
}

/// The request checks of spec 2026-07-28, in the order a client is most helped by.
fn validate(headers: &HeaderMap, message: &RpcMessage) -> Result<(), Rejection> {
    let method = message.method.as_deref().unwrap_or_default();
    if method == "initialize" {
        // Spec 2026-07-28 `basic/versioning` §Backward Compatibility with Initialization-Based Versions: a
        // modern-only server SHOULD name its versions in any error it returns to `initialize`.
        let requested = message
            .params
            .get("protocolVersion")
            .cloned()
            .unwrap_or(Value::Null);
        return Err(Rejection {
            status: StatusCode::BAD_REQUEST,
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: format!(
                "Unsupported protocol version: this server speaks only {MODERN_VERSION}, which has no initialize"
            ),
            data: Some(json!({"supported": [MODERN_VERSION], "requested": requested})),
        });
    }
    let Some(header_version) = header(headers, VERSION_HEADER) else {
        return Err(mismatch(
            "Header mismatch: missing MCP-Protocol-Version header".to_owned(),
        ));
    };
    match header(headers, "mcp-method") {
        None => return Err(mismatch("Header mismatch: missing Mcp-Method header".to_owned())),
        Some(value) if value != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{value}' does not match body value '{method}'"
            )))
        }
        Some(_) => {}
    }
    let Some(meta_version) = message.meta(META_VERSION).and_then(Value::as_str) else {
        return Err(invalid_params(format!(
            "Missing required _meta field {META_VERSION}"
        )));
    };
    if message.meta(META_CAPABILITIES).is_none() {
        return Err(invalid_params(format!(
            "Missing required _meta field {META_CAPABILITIES}"
        )));
    }
    if header_version != meta_version {
        return Err(mismatch(format!(
            "Header mismatch: MCP-Protocol-Version header value '{header_version}' does not match body value \
             '{meta_version}'"
        )));
    }
    if meta_version != MODERN_VERSION {
        return Err(Rejection {
            status: StatusCode::BAD_REQUEST,
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".to_owned(),
            data: Some(json!({"supported": [MODERN_VERSION], "requested": meta_version})),
        });
    }
    if method == "tools/call" {
        // Spec 2026-07-28 §Standard Request Headers: `Mcp-Name` mirrors `params.name` on tools/call.
        let body_name = message
            .params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match header(headers, "mcp-name").map(rpc::decode_header_value) {
            None => {
                return Err(mismatch(
                    "Header mismatch: missing Mcp-Name header".to_owned(),
                ))
            }
            Some(Some(name)) if name == body_name => {}
            Some(_) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value does not match body value '{body_name}'"
                )))
            }
        }
    }
    Ok(())
}

fn mismatch(message: String) -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        code: HEADER_MISMATCH,
        message,
        data: None,
    }
}

fn invalid_params(message: String) -> Rejection {
    // Spec 2026-07-28 `basic/index` §Per-request protocol fields: -32602 with status 400.
    Rejection {
        status: StatusCode::BAD_REQUEST,
        code: rpc::INVALID_PARAMS,
        message,
        data: None,
    }
}
