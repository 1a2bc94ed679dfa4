//! What a client receives from a stdio child: the SSE body of a request's messages (ending with its response, or
//! with an error for its id when the child ends first), the pool's id/progress-token restoration, and the
//! cancellation sent to the child when the client leaves early.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::child::{Child, Routed};
use crate::body::{code, Body, BoxError};

/// Sends the child `notifications/cancelled` (2025-11-25 `basic/utilities/cancellation`) for a request whose
/// client left before its response; the response, if it still comes, is dropped.
///
/// 2025-11-25 `basic/transports` §Sending Messages 6 says a disconnection SHOULD NOT be taken as a cancellation,
/// because a server may make its streams resumable. This gateway's streams carry no event ids, so they cannot
/// be resumed: the response could never reach anyone, and cancelling stops the child spending work on it.
pub(super) struct CancelOnDrop {
    pub(super) child: Arc<Child>,
    pub(super) key: String,
    pub(super) id: Value,
    pub(super) done: bool,
    /// Run first when dropped, whatever happened (pool mode: forget the id mapping).
    pub(super) on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
        if self.done || !self.child.unregister(&self.key) || !self.child.is_alive() {
            return;
        }
        let child = Arc::clone(&self.child);
        let note = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": self.id, "reason": "The client disconnected."},
        });
        tracing::debug!(child.pid = child.pid, request.id = %self.key, "Client left mid-request; cancelling it.");
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.send(note.to_string().as_bytes()).await;
            });
        }
    }
}

/// An SSE body of the child's messages (each one `event: message` with the JSON as `data`), ending when the
/// sender side is dropped: after the response for a request's stream, when the child ends for a GET stream.
struct MessageStream {
    rx: mpsc::Receiver<Routed>,
    guard: Option<CancelOnDrop>,
    rewrite: Option<Rewrite>,
}

/// What pool mode changed in a client's request, restored on the way back: the client's own id and progress
/// token (the child saw gateway-unique ones, so clients sharing a child never collide).
#[derive(Debug, Clone)]
pub(super) struct Rewrite {
    pub(super) id: Value,
    pub(super) progress_token: Option<Value>,
}

impl Rewrite {
    /// The child's message as the client must see it: its id and progress token put back.
    pub(super) fn restore(&self, message: &[u8]) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<Value>(message) else {
            return Bytes::copy_from_slice(message);
        };
        if v.get("method").is_none() && v.get("id").is_some() {
            v["id"] = self.id.clone();
        }
        if let (Some(token), Some(params)) = (&self.progress_token, v.get_mut("params")) {
            if params.get("progressToken").is_some() {
                params["progressToken"] = token.clone();
            }
        }
        Bytes::from(v.to_string())
    }

    /// A response as the client must see it: the client's id spliced over the child's, the rest of the message
    /// (often a large result) copied as the child wrote it rather than parsed and serialised again.
    pub(super) fn restore_response(&self, message: &[u8]) -> Bytes {
        self.restore_response_framed(message, b"", b"")
    }

    /// [`restore_response`](Self::restore_response) between `prefix` and `suffix` (an SSE event's framing), in
    /// one buffer.
    fn restore_response_framed(&self, message: &[u8], prefix: &[u8], suffix: &[u8]) -> Bytes {
        let Some(span) = super::json_member::value_span(message, "id") else {
            let restored = self.restore(message);
            return [prefix, &restored, suffix].concat().into();
        };
        let id = self.id.to_string();
        let mut out = Vec::with_capacity(prefix.len() + message.len() + id.len() + suffix.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(&message[..span.start]);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&message[span.end..]);
        out.extend_from_slice(suffix);
        Bytes::from(out)
    }
}

impl http_body::Body for MessageStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(routed)) => {
                if routed.last {
                    if let Some(g) = self.guard.as_mut() {
                        g.done = true;
                    }
                }
                let event = match &self.rewrite {
                    // The response, the bulk of the traffic: spliced straight into its event.
                    Some(r) if routed.last => {
                        r.restore_response_framed(&routed.message, SSE_PREFIX, SSE_SUFFIX)
                    }
                    Some(r) => sse_event(&r.restore(&routed.message)),
                    None => sse_event(&routed.message),
                };
                Poll::Ready(Some(Ok(Frame::data(event))))
            }
            Poll::Ready(None) => match self.guard.as_mut() {
                // The child ended before answering: the stream still ends with a response for the request's
                // id, so the client is not left waiting.
                Some(g) if !g.done => {
                    g.done = true;
                    let id = g.id.clone();
                    let id = self.rewrite.as_ref().map_or(id, |r| r.id.clone());
                    let error = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "error": {"code": code::SERVER_ERROR, "message": "Bad Gateway: the MCP server process ended before answering"},
                    });
                    Poll::Ready(Some(Ok(Frame::data(sse_event(
                        error.to_string().as_bytes(),
                    )))))
                }
                _ => Poll::Ready(None),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The response at the end of a request's stream (other messages skipped); `None` when the stream ended
/// without one (the child ended).
pub(super) async fn response_of(rx: &mut mpsc::Receiver<Routed>) -> Option<Bytes> {
    while let Some(routed) = rx.recv().await {
        if routed.last {
            return Some(routed.message);
        }
    }
    None
}

pub(super) fn event_stream(
    rx: mpsc::Receiver<Routed>,
    guard: Option<CancelOnDrop>,
    rewrite: Option<Rewrite>,
) -> Response<Body> {
    let mut resp = Response::new(MessageStream { rx, guard, rewrite }.boxed_unsync());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// An SSE event's framing around one message.
const SSE_PREFIX: &[u8] = b"event: message\ndata: ";
const SSE_SUFFIX: &[u8] = b"\n\n";

fn sse_event(message: &[u8]) -> Bytes {
    [SSE_PREFIX, message, SSE_SUFFIX].concat().into()
}
