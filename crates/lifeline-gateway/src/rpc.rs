//! What the gateway reads from a client's JSON-RPC body: the method (as a bounded metric label), whether the
//! message is a request, a notification or a response, and the request id. Everything else passes through
//! untouched; the gateway never re-serialises a client's message.

use serde::Deserialize;
use serde_json::Value;

/// The kind of a JSON-RPC message (2025-11-25 `basic/index` §Messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `result` or `error` and an `id` (a client answering a server's request).
    Response,
    /// A JSON array (JSON-RPC batching, allowed by 2025-03-26 only).
    Batch,
    /// Not a JSON-RPC message.
    Invalid,
}

/// The summary of one message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) kind: Kind,
    /// The method as a bounded label (see [`method_label`]); `response`, `batch` or `invalid` for the others.
    pub(crate) label: &'static str,
    /// The request id, for requests.
    pub(crate) id: Option<Value>,
}

impl Summary {
    /// True for `initialize` requests.
    pub(crate) fn is_initialize(&self) -> bool {
        self.kind == Kind::Request && self.label == "initialize"
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// Reads the summary of `body`. Never fails: what is not a JSON-RPC object is [`Kind::Invalid`].
pub(crate) fn summarize(body: &[u8]) -> Summary {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Summary {
            kind: Kind::Batch,
            label: "batch",
            id: None,
        };
    }
    let Ok(msg) = serde_json::from_slice::<Message<'_>>(body) else {
        return Summary {
            kind: Kind::Invalid,
            label: "invalid",
            id: None,
        };
    };
    match (msg.method, msg.id) {
        (Some(method), Some(id)) => Summary {
            kind: Kind::Request,
            label: method_label(&method),
            id: Some(id),
        },
        (Some(method), None) => Summary {
            kind: Kind::Notification,
            label: method_label(&method),
            id: None,
        },
        (None, Some(_)) if msg.result.is_some() || msg.error.is_some() => Summary {
            kind: Kind::Response,
            label: "response",
            id: None,
        },
        _ => Summary {
            kind: Kind::Invalid,
            label: "invalid",
            id: None,
        },
    }
}

/// Every MCP method of the 2024-11-05 … 2026-07-28 revisions that a client sends, as a `'static` label; any
/// other method is `other`, any other notification `notification`, so the metric label set stays bounded.
pub(crate) fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    ];
    if let Some(known) = KNOWN.iter().find(|k| **k == method) {
        return known;
    }
    if method.starts_with("notifications/") {
        "notification"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries() {
        let cases: &[(&str, Kind, &str)] = &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
                Kind::Request,
                "initialize",
            ),
            (
                r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}"#,
                Kind::Request,
                "tools/call",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Kind::Notification,
                "notifications/initialized",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/weird"}"#,
                Kind::Notification,
                "notification",
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"x/y"}"#,
                Kind::Request,
                "other",
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
                Kind::Response,
                "response",
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}"#,
                Kind::Response,
                "response",
            ),
            (
                r#" [{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                Kind::Batch,
                "batch",
            ),
            ("not json", Kind::Invalid, "invalid"),
            (r#"{"jsonrpc":"2.0"}"#, Kind::Invalid, "invalid"),
            (
                r#"{"method":"tools\/list","id":1}"#,
                Kind::Request,
                "tools/list",
            ),
        ];
        for (body, kind, label) in cases {
            let s = summarize(body.as_bytes());
            assert_eq!((s.kind, s.label), (*kind, *label), "{body}");
        }
        let s = summarize(br#"{"jsonrpc":"2.0","id":7,"method":"initialize"}"#);
        assert!(s.is_initialize());
        assert_eq!(s.id, Some(json!(7)));
    }
}
