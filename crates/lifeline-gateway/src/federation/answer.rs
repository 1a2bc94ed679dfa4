//! A federated request's JSON-RPC response to its client: one the gateway built (merged lists, its own answers,
//! errors), or one relayed from a server, whose `result` (or `error`) goes to the client as the server wrote it,
//! never parsed into a tree and written again (the bridged `tools/call` path: `docs/gateway-federation.md`
//! §Benchmark). Only the id is the client's, and a modern client's result gets `resultType` when the server gave
//! none (2026-07-28 `basic/patterns/mrtr`: every result carries it; a legacy server's never does).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::body::{self, Body};

/// A response for the client.
#[derive(Debug)]
pub(super) enum Answer {
    /// Built by the gateway.
    Built(Value),
    /// A server's `result` (`Ok`) or `error` (`Err`), as it wrote it, answered with the client's `id`.
    Relayed {
        id: Value,
        outcome: Result<Box<RawValue>, Box<RawValue>>,
        /// Add `"resultType": "complete"` to the result (a modern client, a result without one).
        complete: bool,
    },
}

impl Answer {
    /// The response as a tree (for the rare callers that change more than `resultType`).
    pub(super) fn into_value(self) -> Value {
        match self {
            Answer::Built(v) => v,
            relayed => serde_json::from_slice(&relayed.to_bytes()).unwrap_or(Value::Null),
        }
    }

    /// The response's JSON text.
    pub(super) fn to_bytes(&self) -> Bytes {
        match self {
            // Writing a `Value` into a `Vec` cannot fail: every key is a string.
            Answer::Built(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            Answer::Relayed {
                id,
                outcome,
                complete,
            } => {
                let (key, raw) = match outcome {
                    Ok(r) => (&br#","result":"#[..], r.get()),
                    Err(e) => (&br#","error":"#[..], e.get()),
                };
                let mut out = Vec::with_capacity(raw.len() + 64);
                out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
                // As above: an id is a string, a number or null.
                let _ = serde_json::to_writer(&mut out, id);
                out.extend_from_slice(key);
                match raw.trim_start().strip_prefix('{') {
                    Some(rest) if *complete && outcome.is_ok() => {
                        out.extend_from_slice(br#"{"resultType":"complete""#);
                        if !rest.trim_start().starts_with('}') {
                            out.push(b',');
                        }
                        out.extend_from_slice(rest.as_bytes());
                    }
                    _ => out.extend_from_slice(raw.as_bytes()),
                }
                out.push(b'}');
                Bytes::from(out)
            }
        }
    }

    /// The response as HTTP 200 `application/json`.
    pub(super) fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(body::full(self.to_bytes()));
        *resp.status_mut() = StatusCode::OK;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    /// Marks a relayed result to get `"resultType": "complete"` unless it has a `resultType` of its own.
    pub(super) fn complete_result_type(&mut self) {
        if let Answer::Relayed {
            outcome: Ok(raw),
            complete,
            ..
        } = self
        {
            *complete = !has_result_type(raw);
        }
    }
}

/// Whether a result object has a top-level `resultType` (its other members are skipped, not built).
fn has_result_type(raw: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Top {
        #[serde(rename = "resultType")]
        result_type: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Top>(raw.get()).map_or(true, |t| t.result_type.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("JSON")
    }

    #[test]
    fn a_relayed_result_keeps_its_text_and_takes_the_clients_id_and_result_type() {
        let cases = [
            (
                r#"{"content":[{"type":"text","text":"hi"}]}"#,
                true,
                json!({"resultType": "complete", "content": [{"type": "text", "text": "hi"}]}),
            ),
            (r#"{}"#, true, json!({"resultType": "complete"})),
            (r#" { } "#, true, json!({"resultType": "complete"})),
            (
                r#"{"resultType":"input_required","x":1}"#,
                true,
                json!({"resultType": "input_required", "x": 1}),
            ),
            (r#"{"content":[]}"#, false, json!({"content": []})),
        ];
        for (text, modern, want) in cases {
            let mut a = Answer::Relayed {
                id: json!("abc"),
                outcome: Ok(raw(text)),
                complete: false,
            };
            if modern {
                a.complete_result_type();
            }
            let v: Value = serde_json::from_slice(&a.to_bytes()).expect("valid JSON");
            assert_eq!(
                v,
                json!({"jsonrpc": "2.0", "id": "abc", "result": want}),
                "{text}"
            );
        }
        let mut e = Answer::Relayed {
            id: json!(7),
            outcome: Err(raw(r#"{"code":-32602,"message":"bad"}"#)),
            complete: false,
        };
        e.complete_result_type();
        assert_eq!(
            e.into_value(),
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "bad"}})
        );
    }
}
