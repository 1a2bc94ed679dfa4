//! The MCP methods the healthy fakes implement the same way in every era: paged `tools/list`, `tools/call`,
//! plus session ids and the Base64 sentinel decoding of `Mcp-Name`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

/// `-32601` Method not found (JSON-RPC 2.0).
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// `-32602` Invalid params (JSON-RPC 2.0).
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// `-32600` Invalid request (JSON-RPC 2.0).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// `-32700` Parse error (JSON-RPC 2.0).
pub(crate) const PARSE_ERROR: i64 = -32700;

/// The `serverInfo` every fake reports.
pub(crate) fn server_info() -> Value {
    json!({"name": "lifeline-fake", "version": env!("CARGO_PKG_VERSION")})
}

/// A JSON-RPC error to be sent back: code and message.
pub(crate) struct RpcFailure {
    pub(crate) code: i64,
    pub(crate) message: String,
}

impl RpcFailure {
    fn invalid_params(message: impl Into<String>) -> RpcFailure {
        RpcFailure {
            code: INVALID_PARAMS,
            message: message.into(),
        }
    }
}

/// One page of `tools/list` (spec 2025-11-25 `server/utilities/pagination`): `{"tools": [...]}` plus
/// `nextCursor` when more remain. The cursor is `page:<offset>`, opaque to clients.
pub(crate) fn tools_list(
    tools: &[Value],
    page_size: usize,
    params: &Value,
) -> Result<Map<String, Value>, RpcFailure> {
    let offset = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(cursor)) => cursor
            .strip_prefix("page:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < tools.len())
            .ok_or_else(|| RpcFailure::invalid_params(format!("Invalid cursor: {cursor}")))?,
        Some(_) => return Err(RpcFailure::invalid_params("Invalid cursor: not a string")),
    };
    let end = offset.saturating_add(page_size.max(1)).min(tools.len());
    let mut result = Map::new();
    result.insert("tools".into(), Value::Array(tools[offset..end].to_vec()));
    if end < tools.len() {
        result.insert("nextCursor".into(), Value::String(format!("page:{end}")));
    }
    Ok(result)
}

/// `tools/call` of a listed tool: one text content echoing `arguments.message` (or the arguments as JSON), and
/// `isError` as configured (spec 2025-11-25 `server/tools` §Error Handling).
pub(crate) fn tools_call(
    tools: &[Value],
    params: &Value,
    is_error: bool,
) -> Result<Map<String, Value>, RpcFailure> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcFailure::invalid_params("Missing tool name"))?;
    if !tools
        .iter()
        .any(|tool| tool.get("name").and_then(Value::as_str) == Some(name))
    {
        return Err(RpcFailure::invalid_params(format!("Unknown tool: {name}")));
    }
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let text = if is_error {
        format!("Tool {name} failed: simulated failure")
    } else {
        match arguments.get("message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None => arguments.to_string(),
        }
    };
    let mut result = Map::new();
    result.insert("content".into(), json!([{"type": "text", "text": text}]));
    result.insert("isError".into(), Value::Bool(is_error));
    Ok(result)
}

/// A fresh session id: 32 hex digits, visible ASCII as spec 2025-11-25 `basic/transports` §Session Management
/// requires, unique per process (a counter) and not guessable across runs (a randomly keyed hash).
pub(crate) fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(n);
    format!("{:016x}{:016x}", hasher.finish(), n)
}

/// Decodes an `Mcp-Name` header value: the Base64 sentinel `=?base64?…?=` is decoded (spec 2026-07-28
/// `basic/transports/streamable-http` §Value Encoding), anything else is taken as is. `None` when the sentinel
/// holds invalid Base64 or UTF-8.
pub(crate) fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(base64_decode(encoded)?).ok(),
        None => Some(value.to_owned()),
    }
}

/// Standard Base64 with padding (RFC 4648 §4).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 {
            return None;
        }
        let mut group = 0_u32;
        for &c in &chunk[..4 - padding] {
            group = (group << 6) | sextet(c)?;
        }
        group <<= 6 * padding as u32;
        let decoded = group.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_sentinel_decodes_as_in_the_spec_table() {
        let cases = [
            ("us-west1", Some("us-west1")),
            ("=?base64?SGVsbG8sIOS4lueVjA==?=", Some("Hello, 世界")),
            ("=?base64?IHBhZGRlZCA=?=", Some(" padded ")),
            ("=?base64?bGluZTEKbGluZTI=?=", Some("line1\nline2")),
            (
                "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
                Some("=?base64?literal?="),
            ),
            ("=?base64?not base64?=", None),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_header_value(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn tools_list_pages_with_opaque_cursors() {
        let tools: Vec<Value> = (0..5).map(|i| json!({"name": format!("t{i}")})).collect();
        let first = tools_list(&tools, 2, &Value::Null)
            .ok()
            .expect("first page");
        assert_eq!(first["tools"].as_array().map(Vec::len), Some(2));
        let cursor = first["nextCursor"].clone();
        let second = tools_list(&tools, 2, &json!({ "cursor": cursor }))
            .ok()
            .expect("second page");
        assert_eq!(second["tools"][0]["name"], "t2");
        let third = tools_list(&tools, 2, &json!({"cursor": second["nextCursor"]}))
            .ok()
            .expect("third");
        assert_eq!(third["tools"].as_array().map(Vec::len), Some(1));
        assert!(third.get("nextCursor").is_none());
        assert!(tools_list(&tools, 2, &json!({"cursor": "bogus"})).is_err());
        let empty = tools_list(&[], 2, &Value::Null).ok().expect("empty list");
        assert_eq!(empty["tools"], json!([]));
    }

    #[test]
    fn session_ids_are_unique_visible_ascii() {
        let a = new_session_id();
        let b = new_session_id();
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }
}
