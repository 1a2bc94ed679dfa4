//! Filtering a `tools/list` answer to the tools the caller may call (2026-07-28 `server/tools` §Capabilities:
//! the set "MAY vary by the authorization presented on the request — for example, returning only the tools the
//! caller's granted scopes permit").
//!
//! Only the JSON-RPC response to the client's own `tools/list` request (same `id`) is touched, and only when a
//! tool is actually removed: every other message, and an answer that lists nothing the caller may not call, goes
//! out byte for byte. A rewritten answer keeps every other member (`nextCursor`, so pagination goes on; `ttlMs`;
//! `_meta`; the key order, `serde_json`'s `preserve_order`); a `cacheScope: "public"` becomes `"private"`,
//! because a list filtered for one caller must not be served to others by a shared cache (2026-07-28
//! `server/utilities/caching`). A page may come out empty with its `nextCursor`: the client pages on.
//!
//! Bounded: a JSON answer is buffered up to [`MAX_LIST_BYTES`] and an SSE event up to the same bound; a larger
//! answer is refused with a JSON-RPC error for the request (never buffered without limit, never passed through
//! unfiltered).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use super::Rules;
use crate::auth::Principal;
use crate::body::{self, Body};

/// The largest `tools/list` answer (a JSON body, or the SSE event carrying it) the gateway filters: 16 MiB, the
/// relay's bound on one SSE event. A larger answer is refused (see [`too_large`]).
pub(crate) const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// What the filter needs to rewrite one `tools/list` answer: the request's id and the caller's view of the rules.
#[derive(Clone)]
pub(crate) struct ListFilter {
    /// The client's request id: only the response carrying it is rewritten. `None` on a legacy standalone `GET`
    /// stream, which carries no answer of its own but may replay one (2025-11-25 `basic/transports`
    /// §Resumability and Redelivery: a `GET` with `Last-Event-ID` resumes a broken `POST` stream): there every
    /// response that lists tools is filtered.
    pub(crate) id: Option<Value>,
    pub(crate) rules: Arc<Rules>,
    /// The caller (its scopes decide).
    pub(crate) principal: Arc<Principal>,
}

impl std::fmt::Debug for ListFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListFilter")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ListFilter {
    /// The rewritten message when `message` is the answer to this request and lists a tool the caller may not
    /// call; `None` to forward `message` unchanged (another message, not JSON, an error, or nothing to remove).
    pub(crate) fn rewrite(&self, message: &[u8]) -> Option<Vec<u8>> {
        filter(message, self.id.as_ref(), |name| {
            self.rules.may_call(&self.principal.scopes, name)
        })
    }

    /// The JSON-RPC error that replaces an answer larger than [`MAX_LIST_BYTES`].
    pub(crate) fn too_large(&self) -> Bytes {
        too_large(self.id.as_ref())
    }
}

/// Filters a JSON (`application/json`) answer to this request: the body is read whole, up to
/// [`MAX_LIST_BYTES`], and rewritten when a tool goes (its `Content-Length` dropped so it is recomputed); an
/// unchanged body goes out as it came. A larger body is refused with 502 and a JSON-RPC error for the request; a
/// body that fails mid-read with 502 too (the upstream broke it). Non-2xx answers are not touched.
pub(crate) async fn filter_json(resp: Response<Body>, filter: &ListFilter) -> Response<Body> {
    if !resp.status().is_success() {
        return resp;
    }
    let (mut parts, mut upstream) = resp.into_parts();
    // Read by hand rather than through `http_body_util::Limited`, whose boxed error type does not fit this
    // future's `Send` bound.
    let mut buf: Vec<u8> = Vec::new();
    let mut failure: Option<bool> = None; // Some(true): over the bound; Some(false): the body failed.
    while let Some(frame) = upstream.frame().await {
        let Ok(frame) = frame else {
            failure = Some(false);
            break;
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_LIST_BYTES {
                failure = Some(true);
                break;
            }
            buf.extend_from_slice(&data);
        }
    }
    if let Some(over) = failure {
        tracing::warn!(over_bound = over, "Upstream tools/list answer refused.");
        let body = if over {
            filter.too_large()
        } else {
            Bytes::from(
                serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": filter.id,
                    "error": {
                        "code": body::code::SERVER_ERROR,
                        "message": "Bad Gateway: the upstream's tools/list answer could not be read",
                    },
                })
                .to_string(),
            )
        };
        let mut resp = Response::new(body::full(body));
        *resp.status_mut() = StatusCode::BAD_GATEWAY;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return resp;
    }
    let bytes = Bytes::from(buf);
    let bytes = match filter.rewrite(&bytes) {
        Some(rewritten) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Bytes::from(rewritten)
        }
        None => bytes,
    };
    Response::from_parts(parts, body::full(bytes))
}

/// See [`ListFilter::rewrite`]; `keep` says whether a tool name stays. A tool without a string `name` cannot be
/// called, so it goes too. `id: None` matches any response.
pub(crate) fn filter(
    message: &[u8],
    id: Option<&Value>,
    keep: impl Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let mut msg: Value = serde_json::from_slice(message).ok()?;
    let answers = match id {
        Some(id) => msg.get("id") == Some(id),
        None => msg.get("id").is_some(),
    };
    if !answers {
        return None;
    }
    let result = msg.get_mut("result")?.as_object_mut()?;
    let tools = result.get_mut("tools")?.as_array_mut()?;
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(&keep));
    if tools.len() == before {
        return None;
    }
    if let Some(scope) = result.get_mut("cacheScope") {
        if scope == "public" {
            *scope = Value::from("private");
        }
    }
    serde_json::to_vec(&msg).ok()
}

/// The error answer for a `tools/list` answer over [`MAX_LIST_BYTES`]: code -32000 (implementation-defined
/// server error), the request's id (none on a standalone stream).
pub(crate) fn too_large(id: Option<&Value>) -> Bytes {
    let mut body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {
            "code": crate::body::code::SERVER_ERROR,
            "message": format!(
                "Bad Gateway: the upstream's tools/list answer exceeds the gateway's {} MiB bound for filtering",
                MAX_LIST_BYTES >> 20
            ),
        },
    });
    if let (Some(id), Some(obj)) = (id, body.as_object_mut()) {
        obj.insert("id".to_owned(), id.clone());
    }
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keep_no_delete(name: &str) -> bool {
        !name.starts_with("delete")
    }

    #[test]
    fn only_the_answer_to_this_request_is_rewritten() {
        let id = json!(7);
        let page = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"delete_all"},{"name":"add"},{"title":"nameless"}],"nextCursor":"c2","ttlMs":1000,"cacheScope":"public"}}"#;
        let out = filter(page, Some(&id), keep_no_delete).expect("rewritten");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"add"}],"nextCursor":"c2","ttlMs":1000,"cacheScope":"private"}}"#
        );
        // Nothing to remove: unchanged (the caller forwards the original bytes).
        let clean = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"echo"}]}}"#;
        assert_eq!(filter(clean, Some(&id), keep_no_delete), None);
        // Another id (a string "7" is not 7), an error, a notification, not JSON, a result without tools.
        for other in [
            &br#"{"jsonrpc":"2.0","id":"7","result":{"tools":[{"name":"delete_all"}]}}"#[..],
            br#"{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"delete_all"}]}}"#,
            br#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"m"}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
            b"data",
            br#"{"jsonrpc":"2.0","id":7,"result":{"tools":"x"}}"#,
        ] {
            assert_eq!(filter(other, Some(&id), keep_no_delete), None);
        }
        // Any id (a standalone stream): every response that lists tools, never a notification.
        assert!(filter(page, None, keep_no_delete).is_some());
        assert!(filter(
            br#"{"jsonrpc":"2.0","method":"m","params":{"tools":[{"name":"delete_a"}]}}"#,
            None,
            keep_no_delete
        )
        .is_none());
        // Everything filtered: an empty page that still carries its cursor.
        let all = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"delete_a"}],"nextCursor":"c3"}}"#;
        let out = filter(all, Some(&id), keep_no_delete).expect("rewritten");
        assert_eq!(
            serde_json::from_slice::<Value>(&out).expect("json"),
            json!({"jsonrpc":"2.0","id":7,"result":{"tools":[],"nextCursor":"c3"}})
        );
    }

    fn filter_for(id: Value) -> ListFilter {
        ListFilter {
            id: Some(id),
            rules: Arc::new(Rules::new(vec![super::super::tests::rule(
                "delete_*",
                &["w"],
            )])),
            principal: Arc::new(Principal {
                subject: "p".to_owned(),
                scopes: Vec::new(),
                source: crate::auth::Source::ApiKey,
            }),
        }
    }

    fn json_answer(body: impl Into<Bytes>) -> Response<Body> {
        let body: Bytes = body.into();
        let mut resp = Response::new(body::full(body.clone()));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
        resp
    }

    async fn text(resp: Response<Body>) -> (u16, Option<String>, String) {
        let status = resp.status().as_u16();
        let len = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            len,
            String::from_utf8(bytes.to_vec()).expect("utf8"),
        )
    }

    #[tokio::test]
    async fn json_answers_are_filtered_within_the_bound() {
        let f = filter_for(json!(1));
        let page = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"delete_all"}]}}"#;
        let (status, len, body) = text(filter_json(json_answer(page), &f).await).await;
        assert_eq!((status, len), (200, None));
        assert_eq!(
            body,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#
        );
        // Nothing to remove: the same bytes and length.
        let clean = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#;
        let (_, len, body) = text(filter_json(json_answer(clean), &f).await).await;
        assert_eq!((len, body.as_str()), (Some(clean.len().to_string()), clean));
        // Over the bound: 502 with an error for the request, not the list.
        let mut huge = page.as_bytes().to_vec();
        huge.resize(MAX_LIST_BYTES + 1, b' ');
        let (status, _, body) = text(filter_json(json_answer(huge), &f).await).await;
        assert_eq!(status, 502);
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (v["id"].clone(), v["error"]["code"].clone()),
            (json!(1), json!(-32000))
        );
    }

    #[test]
    fn the_oversize_error_carries_the_id() {
        let v: Value = serde_json::from_slice(&too_large(Some(&json!("r-1")))).expect("json");
        assert_eq!(v["id"], "r-1");
        assert_eq!(v["error"]["code"], -32000);
        assert!(v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("16 MiB"));
    }
}
