//! The body of an upstream response: read from the connection by whoever polls it (the downstream connection's
//! task, as it writes the response), frame by frame as bytes arrive, then the connection goes back to the pool.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::uri::Authority;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::wire::Framing;
use super::{Client, Conn};
use crate::body::BoxError;
use crate::http1::{self, invalid, BodyState, Chunked};

/// Bytes of free buffer space each read of the socket may fill: 16 KiB (a frame is at most that large).
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// A response body read straight from its connection. The connection goes back to the pool when the body ended
/// exactly at the message's end and the response allowed reuse (`back`); it closes when the body is dropped
/// before its end (a client that left: the rest of the response would otherwise be read as the next one), was
/// delimited by the close, or failed.
pub(super) struct Incoming {
    conn: Option<Conn>,
    state: BodyState,
    back: Option<(Arc<Client>, Authority)>,
}

impl Incoming {
    /// The body of a response delimited by `framing` ([`Framing::Empty`] gives an ended body), the rest of it
    /// to be read from `conn` (whose buffer may already hold its start). `back`: the pool to return the
    /// connection to at the end, `None` when it must close.
    pub(super) fn new(
        conn: Conn,
        framing: Framing,
        back: Option<(Arc<Client>, Authority)>,
    ) -> Incoming {
        let state = match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunked::default()),
            Framing::Close => BodyState::Close,
        };
        Incoming {
            conn: Some(conn),
            state,
            back,
        }
    }

    /// The body ended at the message's end: the connection goes back when allowed and nothing follows it.
    fn finish(&mut self) {
        self.state = BodyState::Done;
        if let (Some(conn), Some((client, authority))) = (self.conn.take(), self.back.take()) {
            if conn.buf.is_empty() {
                client.checkin(&authority, conn);
            }
        }
    }

    /// The body failed: the connection closes.
    fn fail(&mut self, err: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = BodyState::Done;
        self.conn = None;
        self.back = None;
        Poll::Ready(Some(Err(err)))
    }
}

impl HttpBody for Incoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // Each turn either hands out a frame, ends, or reads from the socket (which returns Pending once drained).
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.state.take(&mut conn.buf) {
                Err(err) => return this.fail(err),
                Ok(data) => {
                    let done = matches!(this.state, BodyState::Done);
                    if done {
                        // Before the last frame is handed out: a server may stop polling a body that says it
                        // has ended (hyper's did).
                        this.finish();
                    }
                    if let Some(data) = data {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if done {
                        return Poll::Ready(None);
                    }
                }
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if let Err(err) = ready!(conn.stream.poll_read_ready(cx)) {
                return this.fail(read_error(&err));
            }
            conn.buf.reserve(READ_CHUNK);
            match http1::read_some(&conn.stream, &mut conn.buf) {
                Ok(0) if matches!(this.state, BodyState::Close) => {
                    // §6.3 item 8: the close ends the body; the connection cannot be reused.
                    this.state = BodyState::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(invalid(
                        "the upstream closed the connection before the end of its response body",
                    ))
                }
                Ok(_) => {}
                // Readiness was stale; the next `poll_read_ready` waits for the socket.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return this.fail(read_error(&err)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Length(n) => SizeHint::with_exact(n),
            BodyState::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

fn read_error(err: &io::Error) -> BoxError {
    Box::new(io::Error::new(
        err.kind(),
        format!("reading the upstream's response body: {err}"),
    ))
}
