//! JSON-RPC 2.0 messages as MCP uses them (2025-11-25 `basic/index` §Messages; JSON-RPC 2.0 specification).
//!
//! Messages are kept as `serde_json::Value` where Lifeline only forwards or inspects a field or two: the probe
//! reads `result`/`error` and a handful of result fields, and the gateway passes bodies through untouched.

use serde_json::{json, Map, Value};

/// A JSON-RPC request id: MCP allows a string or an integer, never null (2025-11-25 `basic/index` §Requests).
pub type Id = Value;

/// Standard JSON-RPC error codes.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// `code`.
    pub code: i64,
    /// `message`.
    pub message: String,
    /// `data`, when present.
    pub data: Option<Value>,
}

/// What one received JSON value is.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request (has `method` and `id`).
    Request {
        /// `id`.
        id: Id,
        /// `method`.
        method: String,
        /// `params`, `Null` when absent.
        params: Value,
    },
    /// A notification (has `method`, no `id`).
    Notification {
        /// `method`.
        method: String,
        /// `params`, `Null` when absent.
        params: Value,
    },
    /// A response (has `id` and exactly one of `result` / `error`).
    Response {
        /// `id` (may be `Null` for an error about an unparseable request).
        id: Id,
        /// `Ok(result)` or `Err(error)`.
        outcome: Result<Value, RpcError>,
    },
}

/// Why a JSON value is not a JSON-RPC 2.0 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not an object, or no `"jsonrpc": "2.0"`.
    #[error("not a JSON-RPC 2.0 message (no \"jsonrpc\": \"2.0\" member)")]
    NotJsonRpc,
    /// A JSON-RPC object that breaks the rules (e.g. both `result` and `error`).
    #[error("malformed JSON-RPC message: {0}")]
    Malformed(&'static str),
}

impl Message {
    /// Classifies `value` as a JSON-RPC message.
    ///
    /// Errors: [`MessageError::NotJsonRpc`] for anything without `"jsonrpc": "2.0"` (e.g. `{"status":"ok"}`),
    /// [`MessageError::Malformed`] for a JSON-RPC object that breaks the rules.
    pub fn parse(value: Value) -> Result<Message, MessageError> {
        let Value::Object(mut map) = value else {
            return Err(MessageError::NotJsonRpc);
        };
        if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(MessageError::NotJsonRpc);
        }
        let id = map.remove("id");
        if let Some(method) = map.remove("method") {
            let Value::String(method) = method else {
                return Err(MessageError::Malformed("method is not a string"));
            };
            let params = map.remove("params").unwrap_or(Value::Null);
            return Ok(match id {
                Some(id) if !id.is_null() => Message::Request { id, method, params },
                _ => Message::Notification { method, params },
            });
        }
        let id = id.ok_or(MessageError::Malformed("response without id"))?;
        match (map.remove("result"), map.remove("error")) {
            (Some(result), None) => Ok(Message::Response {
                id,
                outcome: Ok(result),
            }),
            (None, Some(error)) => Ok(Message::Response {
                id,
                outcome: Err(parse_error_object(error)?),
            }),
            (Some(_), Some(_)) => Err(MessageError::Malformed("both result and error")),
            (None, None) => Err(MessageError::Malformed("neither result nor error")),
        }
    }
}

fn parse_error_object(error: Value) -> Result<RpcError, MessageError> {
    let Value::Object(mut e) = error else {
        return Err(MessageError::Malformed("error is not an object"));
    };
    let code = e
        .get("code")
        .and_then(Value::as_i64)
        .ok_or(MessageError::Malformed("error.code is not an integer"))?;
    let message = match e.remove("message") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    Ok(RpcError {
        code,
        message,
        data: e.remove("data"),
    })
}

/// Serialises a request. `params` is omitted when `Null`.
pub fn request(id: i64, method: &str, params: Value) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("jsonrpc".into(), json!("2.0"));
    map.insert("id".into(), json!(id));
    map.insert("method".into(), json!(method));
    if !params.is_null() {
        map.insert("params".into(), params);
    }
    serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
}

/// Sets W3C trace context in a request's or notification's `params._meta`: `traceparent`, and `tracestate`
/// (removed when `tracestate` is empty), replacing what was there; `params` and `_meta` are created when absent.
/// Returns false, leaving `message` as it was, when it has no `method` or when `params` or `_meta` is present but
/// not an object.
///
/// Sources: MCP 2026-07-28 `basic/index` §General fields `_meta`, "OpenTelemetry trace context" (the keys
/// `traceparent`, `tracestate`, `baggage` are reserved for it, values in W3C formats); OpenTelemetry semantic
/// conventions `gen-ai/mcp.md` §Context propagation (inject into `params._meta`).
pub fn set_trace_context(message: &mut Value, traceparent: &str, tracestate: &str) -> bool {
    let Some(msg) = message.as_object_mut() else {
        return false;
    };
    if !msg.get("method").is_some_and(Value::is_string) {
        return false;
    }
    let params = msg
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(params) = params.as_object_mut() else {
        return false;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return false;
    };
    meta.insert("traceparent".to_owned(), Value::from(traceparent));
    if tracestate.is_empty() {
        meta.remove("tracestate");
    } else {
        meta.insert("tracestate".to_owned(), Value::from(tracestate));
    }
    true
}

/// Serialises a notification. `params` is omitted when `Null`.
pub fn notification(method: &str, params: Value) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("jsonrpc".into(), json!("2.0"));
    map.insert("method".into(), json!(method));
    if !params.is_null() {
        map.insert("params".into(), params);
    }
    serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
}

/// Serialises an error response.
pub fn error_response(id: &Id, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    }))
    .unwrap_or_default()
}

/// True when `id` (as received) is the integer `expected`. Servers must echo the id unchanged, but some echo an
/// integer as a float or a string; those count as the same id.
pub fn id_matches(id: &Id, expected: i64) -> bool {
    match id {
        Value::Number(n) => {
            n.as_i64() == Some(expected) || n.as_f64().is_some_and(|f| f == expected as f64)
        }
        Value::String(s) => s.parse::<i64>().ok() == Some(expected),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let cases = [
            (json!({"jsonrpc":"2.0","id":1,"result":{}}), "response"),
            (
                json!({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"nope"}}),
                "error",
            ),
            (
                json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}}),
                "notification",
            ),
            (
                json!({"jsonrpc":"2.0","id":7,"method":"roots/list"}),
                "request",
            ),
        ];
        for (value, kind) in cases {
            let got = Message::parse(value.clone()).unwrap();
            let actual = match got {
                Message::Response { outcome: Ok(_), .. } => "response",
                Message::Response {
                    outcome: Err(_), ..
                } => "error",
                Message::Notification { .. } => "notification",
                Message::Request { .. } => "request",
            };
            assert_eq!(actual, kind, "{value}");
        }
    }

    #[test]
    fn rejects_non_jsonrpc() {
        assert_eq!(
            Message::parse(json!({"status":"ok"})),
            Err(MessageError::NotJsonRpc)
        );
        assert_eq!(Message::parse(json!([1, 2])), Err(MessageError::NotJsonRpc));
        assert!(matches!(
            Message::parse(json!({"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}})),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            Message::parse(json!({"jsonrpc":"2.0","id":1,"error":{"message":"x"}})),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn id_matching_is_lenient_on_representation() {
        assert!(id_matches(&json!(3), 3));
        assert!(id_matches(&json!(3.0), 3));
        assert!(id_matches(&json!("3"), 3));
        assert!(!id_matches(&json!(4), 3));
        assert!(!id_matches(&Value::Null, 3));
    }

    #[test]
    fn serialises_without_null_params() {
        let bytes = request(1, "ping", Value::Null);
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"jsonrpc":"2.0","id":1,"method":"ping"})
        );
    }

    #[test]
    fn trace_context_goes_into_the_meta_of_requests_and_notifications_only() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut m = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
        assert!(set_trace_context(&mut m, tp, ""));
        assert_eq!(m["params"]["_meta"]["traceparent"], tp);
        let mut m = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
            "params":{"name":"echo","_meta":{"progressToken":7,"traceparent":"old","tracestate":"a=b"}}});
        assert!(set_trace_context(&mut m, tp, "c=d"));
        assert_eq!(
            m["params"]["_meta"],
            json!({"progressToken":7,"traceparent":tp,"tracestate":"c=d"})
        );
        let mut m = json!({"jsonrpc":"2.0","method":"notifications/initialized","params":{"_meta":{"tracestate":"x=y"}}});
        assert!(set_trace_context(&mut m, tp, ""));
        assert_eq!(m["params"]["_meta"], json!({"traceparent":tp}));
        for untouched in [
            json!({"jsonrpc":"2.0","id":1,"result":{}}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":"odd"}}),
            json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]),
        ] {
            let mut m = untouched.clone();
            assert!(!set_trace_context(&mut m, tp, ""), "{untouched}");
            assert_eq!(m, untouched);
        }
    }
}
