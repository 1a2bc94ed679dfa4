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

mod scan;

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
///
/// One pass over the bytes (`scan`) reads the usual message; whatever it is not sure about (duplicate keys,
/// escapes in keys, malformed JSON, …) is read by the `serde_json` parse below, so the verdicts are that parse's.
pub(crate) fn summarize(body: &[u8]) -> Summary {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Summary::other(Kind::Batch, "batch");
    }
    let Some(s) = scan::scan(body) else {
        return summarize_parsed(body);
    };
    // The spans are UTF-8: `scan` read a body that is.
    let text = |r: std::ops::Range<usize>| std::str::from_utf8(&body[r]).unwrap_or_default();
    let parts = Parts {
        method: s.method.map(|r| Cow::Borrowed(text(r))),
        id: s.id,
        response: s.result || s.error,
        name: s.name.map(|r| Cow::Borrowed(text(r))),
        uri: s.uri.map(|r| Cow::Borrowed(text(r))),
    };
    parts.summary()
}

/// The id of a JSON-RPC response in `body` (an object with an `id`, a `result` or `error` that is not `null`, and no
/// `method`), read by [`summarize`]'s one pass; `None` for anything else, and whenever that pass is not sure (an id
/// that is an object or an array, duplicate or escaped keys, malformed JSON, …): the caller then parses the
/// message whole. For the stdio upstream's replies, whose `result` (a `tools/list` answer is kilobytes) is only
/// skipped over (issue 17).
pub(crate) fn response_id(body: &[u8]) -> Option<Value> {
    let s = scan::scan(body)?;
    if s.method.is_some() || !(s.result || s.error) {
        return None;
    }
    s.id
}

/// [`summarize`] by a `serde_json` parse (a borrowed one, skipping what is not kept).
fn summarize_parsed(body: &[u8]) -> Summary {
    let Ok(msg) = serde_json::from_slice::<Message<'_>>(body) else {
        return Summary::other(Kind::Invalid, "invalid");
    };
    Parts {
        method: msg.method,
        id: msg.id,
        response: msg.result.is_some() || msg.error.is_some(),
        name: msg.params.name,
        uri: msg.params.uri,
    }
    .summary()
}

/// The members a summary is made of, however they were read.
struct Parts<'a> {
    method: Option<Cow<'a, str>>,
    id: Option<Value>,
    /// A `result` or `error` member (not `null`).
    response: bool,
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
}

impl Parts<'_> {
    fn summary(self) -> Summary {
        let (kind, id) = match (&self.method, self.id) {
            (Some(_), Some(id)) => (Kind::Request, Some(id)),
            (Some(_), None) => (Kind::Notification, None),
            (None, Some(_)) if self.response => return Summary::other(Kind::Response, "response"),
            _ => return Summary::other(Kind::Invalid, "invalid"),
        };
        let method = self.method.unwrap_or_default();
        let label = method_label(&method);
        let name = match label {
            "tools/call" | "prompts/get" => self.name,
            "resources/read" => self.uri,
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
    fn response_ids_from_the_one_pass_or_none() {
        let id = |m: &str| response_id(m.as_bytes());
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"id":5}]}}"#),
            Some(json!(7))
        );
        assert_eq!(
            id(r#"{"error":{"code":1,"message":"x"},"id":"a"}"#),
            Some(json!("a"))
        );
        // Not a response: a request, no id, a null result, a result beside a method.
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#), None);
        assert_eq!(id(r#"{"jsonrpc":"2.0","result":{}}"#), None);
        assert_eq!(id(r#"{"jsonrpc":"2.0","id":3,"result":null}"#), None);
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":3,"method":"x","result":{}}"#),
            None
        );
        // Not sure: left to the full parse.
        assert_eq!(id(r#"{"id":{"a":1},"result":{}}"#), None);
        assert_eq!(id(r#"{"id":1,"id":2,"result":{}}"#), None);
        assert_eq!(id(r#"{"id":1,"result":{}"#), None);
    }

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

    /// The bodies the gateway sees most (the bench's, an SDK's `tools/call`) are read by the one-pass scan.
    #[test]
    fn usual_messages_take_the_fast_path() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"}}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"method":"tools/call","params":{"name":"echo","arguments":{"text":"a \"quoted\" \u00e9 line\n","n":-1.5e3,"ok":[true,false,null]}},"jsonrpc":"2.0","id":"c-7"}"#,
            r#" { "jsonrpc" : "2.0" , "method" : "notifications/initialized" } "#,
            r#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#,
        ] {
            assert!(scan::scan(body.as_bytes()).is_some(), "{body}");
            assert_ne!(summarize(body.as_bytes()).kind, Kind::Invalid, "{body}");
        }
    }

    mod props {
        //! The one-pass scan against the `serde_json` parse: the same summary for any body, including duplicate
        //! keys, escapes, odd numbers and bytes cut or inserted anywhere.
        use super::super::*;
        use proptest::prelude::*;

        fn string() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(r#""tools/call""#.to_owned()),
                Just(r#""tools/list""#.to_owned()),
                Just(r#""resources/read""#.to_owned()),
                Just(r#""notifications/x""#.to_owned()),
                Just(r#""echo""#.to_owned()),
                Just(r#""t\u006fols/call""#.to_owned()),
                Just(r#""\ud800""#.to_owned()),
                Just(r#""a\"b\\c\/\n""#.to_owned()),
                Just("\"\u{e9}\u{1f600}\"".to_owned()),
                Just("\"tab\there\"".to_owned()),
                Just(r#""\x""#.to_owned()),
                "[a-z/_]{0,6}".prop_map(|s| format!("\"{s}\"")),
            ]
        }

        fn scalar() -> impl Strategy<Value = String> {
            prop_oneof![
                string(),
                prop_oneof![
                    Just("0"),
                    Just("-0"),
                    Just("7"),
                    Just("-12"),
                    Just("1.5"),
                    Just("2e3"),
                    Just("1E-2"),
                    Just("1e400"),
                    Just("01"),
                    Just("1."),
                    Just("123456789012345678"),
                    Just("12345678901234567890123"),
                    Just("true"),
                    Just("false"),
                    Just("null"),
                    Just("nul"),
                ]
                .prop_map(str::to_owned),
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("jsonrpc"),
                Just("id"),
                Just("method"),
                Just("params"),
                Just("result"),
                Just("error"),
                Just("name"),
                Just("uri"),
                Just("arguments"),
                Just(r"\u006dethod"),
                Just(r"na\u006de"),
                Just("x"),
            ]
            .prop_map(|k| format!("\"{k}\""))
        }

        fn value() -> impl Strategy<Value = String> {
            scalar().prop_recursive(4, 24, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((key(), inner), 0..5).prop_map(|m| {
                        let members: Vec<String> =
                            m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", members.join(","))
                    }),
                ]
            })
        }

        fn message() -> impl Strategy<Value = String> {
            (
                prop::collection::vec((key(), value()), 0..6),
                prop_oneof![Just(""), Just(" "), Just("\n\t")],
            )
                .prop_map(|(m, ws)| {
                    let members: Vec<String> = m
                        .into_iter()
                        .map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}"))
                        .collect();
                    format!("{ws}{{{}{ws}}}{ws}", members.join(","))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn the_scan_agrees_with_serde_json(
                body in message(),
                cut in any::<prop::sample::Index>(),
                byte in prop::sample::select(b"{}[],:\"\\ 0-e\x01\xffn".to_vec()),
                how in 0..4u8,
            ) {
                let mut bytes = body.into_bytes();
                let at = cut.index(bytes.len() + 1);
                match how {
                    0 => {}
                    1 => bytes.insert(at, byte),
                    2 if at < bytes.len() => { bytes.remove(at); }
                    _ => bytes.truncate(at),
                }
                // `summarize` answers a batch before either reads the body.
                let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
                let want = if batch { Summary::other(Kind::Batch, "batch") } else { summarize_parsed(&bytes) };
                prop_assert_eq!(summarize(&bytes), want, "{}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
