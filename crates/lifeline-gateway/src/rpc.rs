//! What the gateway reads from a client's JSON-RPC body, in one parse per request (issue 12: "parse them once per
//! request and hand them on, never twice"): the method (as a bounded metric label, plus its text when the label
//! is not the method itself), whether the message is a request, a notification or a response, the request id,
//! and the name the request acts on (`params.name` of `tools/call` and `prompts/get`, `params.uri` of
//! `resources/read`: the body values the 2026-07-28 `Mcp-Name` header mirrors, `streamable-http` §Standard
//! Request Headers). Every other field, `arguments` included, is skipped by the parser without being kept.
//! Everything passes through untouched; the gateway never re-serialises a client's message.

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
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
    /// The method as sent, only when [`label`](Summary::label) is not it (`other`, `notification`); see
    /// [`Summary::method`].
    method_text: Option<Box<str>>,
    /// The name the request acts on: `params.name` of `tools/call` and `prompts/get`, `params.uri` of
    /// `resources/read`, when it is a JSON string; `None` for other methods. Bounded by the request body limit
    /// (`max_body_bytes`), never truncated: policy decides on the exact name the upstream will run.
    pub(crate) name: Option<Box<str>>,
}

impl Summary {
    /// True for `initialize` requests.
    pub(crate) fn is_initialize(&self) -> bool {
        self.kind == Kind::Request && self.label == "initialize"
    }

    /// The method as sent (for requests and notifications); `None` for responses, batches and invalid bodies.
    pub(crate) fn method(&self) -> Option<&str> {
        match self.kind {
            Kind::Request | Kind::Notification => {
                Some(self.method_text.as_deref().unwrap_or(self.label))
            }
            _ => None,
        }
    }

    /// The tool a `tools/call` request names (`params.name`), `None` for anything else.
    pub(crate) fn tool(&self) -> Option<&str> {
        (self.kind == Kind::Request && self.label == "tools/call")
            .then_some(self.name.as_deref())
            .flatten()
    }

    fn other(kind: Kind, label: &'static str) -> Summary {
        Summary {
            kind,
            label,
            id: None,
            method_text: None,
            name: None,
        }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    /// Only `name` and `uri` are kept; `arguments` and the rest are skipped without being stored.
    #[serde(borrow, default)]
    params: Params<'a>,
}

/// `params.name` and `params.uri` when they are strings. A `params` that is not an object, or a name that is
/// not a string, reads as absent (the upstream judges malformed params), never as an unreadable message.
#[derive(Default)]
struct Params<'a> {
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Params<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Params<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'a>, A::Error> {
                let mut p = Params::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        // A duplicate makes the message unreadable (`Kind::Invalid`, refused under a policy):
                        // parsers disagree on which copy counts.
                        "name" if p.name.is_some() => {
                            return Err(serde::de::Error::duplicate_field("name"))
                        }
                        "uri" if p.uri.is_some() => {
                            return Err(serde::de::Error::duplicate_field("uri"))
                        }
                        "name" => p.name = map.next_value::<MaybeStr<'de>>()?.0,
                        "uri" => p.uri = map.next_value::<MaybeStr<'de>>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Params::default())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Params<'a>, E> {
                Ok(Params::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A JSON string, or `None` for any other value (skipped without being stored).
struct MaybeStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MaybeStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeStr<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeStr<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Reads the summary of `body`. Never fails: what is not a JSON-RPC object is [`Kind::Invalid`].
pub(crate) fn summarize(body: &[u8]) -> Summary {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Summary::other(Kind::Batch, "batch");
    }
    let Ok(msg) = serde_json::from_slice::<Message<'_>>(body) else {
        return Summary::other(Kind::Invalid, "invalid");
    };
    let (kind, id) = match (&msg.method, msg.id) {
        (Some(_), Some(id)) => (Kind::Request, Some(id)),
        (Some(_), None) => (Kind::Notification, None),
        (None, Some(_)) if msg.result.is_some() || msg.error.is_some() => {
            return Summary::other(Kind::Response, "response")
        }
        _ => return Summary::other(Kind::Invalid, "invalid"),
    };
    let method = msg.method.unwrap_or_default();
    let label = method_label(&method);
    let params = msg.params;
    let name = match label {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    };
    Summary {
        kind,
        label,
        id,
        method_text: (label != method).then(|| method.into()),
        name: name.map(|n| n.into()),
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

    #[test]
    fn names_and_methods_come_from_the_same_parse() {
        // (body, method(), name, tool())
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"name":"decoy"},"name":"echo"}}"#,
                Some("tools/call"),
                Some("echo"),
                Some("echo"),
            ),
            // Escapes are decoded (the name the upstream will see).
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"del\u0065te_all"}}"#,
                Some("tools/call"),
                Some("delete_all"),
                Some("delete_all"),
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}"#,
                Some("prompts/get"),
                Some("p"),
                None,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a","name":"x"}}"#,
                Some("resources/read"),
                Some("file:///a"),
                None,
            ),
            // A name that is not a string, params that are not an object: no name, the message still reads.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
                Some("tools/call"),
                None,
                None,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}"#,
                Some("tools/call"),
                None,
                None,
            ),
            // Unknown methods keep their text beside the bounded label.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x/y","params":{"name":"n"}}"#,
                Some("x/y"),
                None,
                None,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/z"}"#,
                Some("notifications/z"),
                None,
                None,
            ),
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, None, None, None),
        ];
        // Duplicate keys: unreadable, whichever copy a parser would keep.
        for dup in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_all"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"params":{"name":"y"}}"#,
        ] {
            assert_eq!(summarize(dup.as_bytes()).kind, Kind::Invalid, "{dup}");
        }
        for (body, method, name, tool) in cases {
            let s = summarize(body.as_bytes());
            assert_eq!(s.method(), *method, "{body}");
            assert_eq!(s.name.as_deref(), *name, "{body}");
            assert_eq!(s.tool(), *tool, "{body}");
        }
    }
}
