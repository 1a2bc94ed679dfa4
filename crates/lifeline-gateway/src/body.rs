//! Response bodies: the boxed body type every handler returns, small constructors, the JSON-RPC error answer the
//! gateway writes itself (the one place gateway errors become HTTP), and [`Guarded`], which keeps a request's
//! bookkeeping alive until its body has been sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// The error type of relayed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the gateway sends and of every upstream response it relays.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body of `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// JSON-RPC error codes the gateway uses in its own answers.
pub(crate) mod code {
    /// Parse error (JSON-RPC 2.0).
    pub(crate) const PARSE_ERROR: i64 = -32700;
    /// Invalid request (JSON-RPC 2.0): bad headers, bad media type, too large.
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    /// Implementation-defined server error: upstream unavailable, draining, too many sessions.
    pub(crate) const SERVER_ERROR: i64 = -32000;
    /// Session not found (the code the official SDKs use with HTTP 404).
    pub(crate) const SESSION_NOT_FOUND: i64 = -32001;
}

/// An answer the gateway gives on its own: an HTTP status with a JSON-RPC error body. `id` is the client's
/// request id when known; without it the body has no `id`, as 2025-11-25 `basic/transports` §Security Warning
/// and §Sending Messages allow for transport-level errors.
pub(crate) fn rpc_error(
    status: StatusCode,
    code: i64,
    message: &str,
    id: Option<&Value>,
) -> Response<Body> {
    let body = match id {
        Some(id) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
        None => json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}}),
    };
    json_response(status, &body)
}

/// Adds `Retry-After` (whole seconds, at least 1) to a response.
pub(crate) fn with_retry_after(
    mut resp: Response<Body>,
    after: std::time::Duration,
) -> Response<Body> {
    let secs = after.as_secs().max(1);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

pin_project_lite::pin_project! {
    /// A body that holds `guard` until the inner body ends (or errors, or is dropped by a client that left), so
    /// in-flight counts, session activity and request metrics cover the whole response, streams included.
    pub(crate) struct Guarded<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> Guarded<B, G> {
    pub(crate) fn new(inner: B, guard: G) -> Guarded<B, G> {
        Guarded {
            inner,
            guard: Some(guard),
        }
    }
}

/// Told how a guarded body ended.
pub(crate) trait EndObserver {
    /// The body ended with an error (for example the upstream cut the stream).
    fn body_failed(&mut self);
}

impl<B, G> HttpBody for Guarded<B, G>
where
    B: HttpBody<Data = Bytes, Error = BoxError>,
    G: EndObserver,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(None) => drop(this.guard.take()),
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut g) = this.guard.take() {
                    g.body_failed();
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
