//! The body of a request the server hands to a handler: already whole (the common case, a small JSON-RPC message
//! that arrived with its head), or read from the connection by whoever polls it, frame by frame.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::conn::{Io, Reader, READ_CHUNK};
use crate::body::BoxError;
use crate::http1::{self, BodyState};

/// The interim response a client that sent `Expect: 100-continue` waits for (RFC 9110 §15.2.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request body (`http_body::Body`, `Bytes` frames, errors [`BoxError`]).
///
/// A streamed body reads from its connection as it is polled; the first poll sends `100 Continue` when the client
/// asked for it (RFC 9110 §10.1.1), so a handler that answers without reading the body (a 413 on the declared
/// length) never invites it. Errors: the client closed the connection or sent a malformed chunked body; the
/// connection then closes after the response. A body dropped before its end also closes the connection (the
/// rest would be read as the next request).
pub(crate) struct RequestBody {
    inner: Inner,
}

enum Inner {
    Full(Option<Bytes>),
    Stream(Arc<Io>),
}

impl RequestBody {
    /// A body that is all of `bytes` (none when empty).
    pub(super) fn full(bytes: Bytes) -> RequestBody {
        RequestBody {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A body still on the connection: `io`'s reader holds its state.
    pub(super) fn stream(io: Arc<Io>) -> RequestBody {
        RequestBody {
            inner: Inner::Stream(io),
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let io = match &mut self.get_mut().inner {
            Inner::Full(bytes) => return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(io) => Arc::clone(io),
        };
        let mut guard = io.lock();
        let r = &mut *guard;
        // Each turn hands out a frame, ends, or reads from the socket (Pending once drained).
        loop {
            if let Some(sent) = r.owe_continue {
                match io.stream.try_write(&CONTINUE[sent..]) {
                    Ok(n) if sent + n == CONTINUE.len() => r.owe_continue = None,
                    Ok(n) => r.owe_continue = Some(sent + n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(err) = ready!(io.stream.poll_write_ready(cx)) {
                            return r.fail(err);
                        }
                    }
                    Err(err) => return r.fail(err),
                }
                continue;
            }
            match r.body.take(&mut r.buf) {
                Err(err) => {
                    r.body = BodyState::Done;
                    r.broken = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) if matches!(r.body, BodyState::Done) => return Poll::Ready(None),
                Ok(None) => {}
            }
            if r.eof {
                return r.fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed the connection before the end of its request body",
                ));
            }
            if let Err(err) = ready!(io.stream.poll_read_ready(cx)) {
                return r.fail(err);
            }
            r.buf.reserve(READ_CHUNK);
            match http1::read_some(&io.stream, &mut r.buf) {
                Ok(0) => r.eof = true,
                Ok(_) => {}
                // Readiness was stale; the next `poll_read_ready` waits for the socket.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return r.fail(err),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Stream(io) => matches!(io.lock().body, BodyState::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Stream(io) => match io.lock().body {
                BodyState::Length(n) => SizeHint::with_exact(n),
                BodyState::Done => SizeHint::with_exact(0),
                _ => SizeHint::default(),
            },
        }
    }
}

impl Reader {
    /// The body failed with `err`: it has ended, and the connection closes after the response.
    fn fail(&mut self, err: io::Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.body = BodyState::Done;
        self.broken = true;
        self.owe_continue = None;
        Poll::Ready(Some(Err(Box::new(err))))
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Inner::Stream(io) = &self.inner {
            let mut r = io.lock();
            if !matches!(r.body, BodyState::Done) {
                // The rest of the body is still on the wire: the connection cannot carry another request.
                r.broken = true;
                r.body = BodyState::Done;
                r.owe_continue = None;
            }
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Full(bytes) => f
                .debug_struct("RequestBody")
                .field("len", &bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Inner::Stream(_) => f
                .debug_struct("RequestBody")
                .field("streamed", &true)
                .finish(),
        }
    }
}
