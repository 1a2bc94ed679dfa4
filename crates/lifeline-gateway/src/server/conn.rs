//! One client connection: request heads read and parsed in turn, each request handed to the handler in this
//! task, its response written, until the client or the server closes the connection.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as HttpBody;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::body::RequestBody;
use super::wire::{self, Framing, Head, Out, Refusal};
use crate::body::Body;
use crate::http1::{self, has_token, parse_length, BodyState, Chunked, MAX_HEAD_BYTES};

/// Bytes of free buffer space each read of the socket may fill: 16 KiB.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Most bytes read ahead of the request being answered (pipelined requests, or while watching for the client's
/// close): one head's worth; beyond it the socket is left alone, and TCP pushes back on the client.
const MAX_READ_AHEAD: usize = MAX_HEAD_BYTES;
/// Response bytes gathered before they are written: 64 KiB (a write also goes out whenever the body waits).
const WRITE_BATCH: usize = 64 * 1024;
/// Most of what a client still sends after the server's last response that is read and discarded: 64 MiB (a
/// request body the handler refused, such as a 413's, sent whole before the client reads).
const LINGER_BYTES: usize = 64 * 1024 * 1024;
/// How long the server waits for the client's close after its last response: 5 s (nginx's `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(5);

/// What a connection needs to be told.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    /// Bound on the wait for a request head, from the end of the previous response (or the connection's start)
    /// to the head's last byte: slow-loris heads and idle keep-alive connections both close when it runs out.
    pub(super) header_timeout: Duration,
}

/// The connection's socket, shared by the connection's task (heads, responses) and a streamed request body.
pub(super) struct Io {
    pub(super) stream: TcpStream,
    read: Mutex<Reader>,
}

/// The read side: what has arrived and not been consumed, and where the current request body stands.
pub(super) struct Reader {
    pub(super) buf: BytesMut,
    /// The current request's body still on the wire; [`BodyState::Done`] between requests.
    pub(super) body: BodyState,
    /// `100 Continue` owed to the client, and how many of its bytes have been written.
    pub(super) owe_continue: Option<usize>,
    /// The client closed its side.
    pub(super) eof: bool,
    /// The request body failed or was dropped before its end: the connection closes after the response.
    pub(super) broken: bool,
}

impl Io {
    /// The read side. Never contended for long: its users hold it only between two awaits.
    pub(super) fn lock(&self) -> MutexGuard<'_, Reader> {
        self.read.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves requests on `stream` until the client closes it, a response calls for the close, the header wait runs
/// out, or `stopping` turns true (then an idle connection closes at once, and one mid-request after its response,
/// which says `connection: close`).
///
/// Per RFC 9112: requests are answered in order (§9.3.2, pipelining); a request's body is read as the handler
/// reads it; a client that closes its side while its request is being handled or its response streamed ends the
/// connection and drops the handler's future (the gateway's cancellation: the upstream request is abandoned);
/// only HTTP/1.1 connections are kept alive (§9.3).
pub(super) async fn run<H, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: H,
    mut stopping: watch::Receiver<bool>,
    opts: Options,
) where
    H: Fn(Request<RequestBody>, SocketAddr) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let io = Arc::new(Io {
        stream,
        read: Mutex::new(Reader {
            buf: BytesMut::with_capacity(READ_CHUNK),
            body: BodyState::Done,
            owe_continue: None,
            eof: false,
            broken: false,
        }),
    });
    let mut out = BytesMut::new();
    // The last response's header map, cleared and reused for the next request's fields.
    let mut spare: Option<HeaderMap> = None;
    let mut timer = pin!(tokio::time::sleep(opts.header_timeout));
    loop {
        timer.as_mut().reset(Instant::now() + opts.header_timeout);
        let head = match next_head(&io, &mut stopping, timer.as_mut(), &mut spare).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => return refuse(&io, &mut out, refusal).await,
        };
        let Head {
            method,
            uri,
            version,
            headers,
        } = head;
        let (framing, close) = match wire::framing(version, &headers) {
            Ok(framing) => framing,
            Err(refusal) => return refuse(&io, &mut out, refusal).await,
        };
        let body = {
            let mut r = io.lock();
            match framing {
                Framing::Length(n) if r.buf.len() as u64 >= n => {
                    // The whole body arrived with the head: no reads, no state.
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    RequestBody::full(r.buf.split_to(n).freeze())
                }
                Framing::Length(_) | Framing::Chunked => {
                    r.body = match framing {
                        Framing::Length(n) => BodyState::Length(n),
                        Framing::Chunked => BodyState::Chunked(Chunked::default()),
                    };
                    r.owe_continue = (wire::expects_continue(version, &headers)
                        && r.buf.is_empty())
                    .then_some(0);
                    RequestBody::stream(Arc::clone(&io))
                }
            }
        };
        let head_request = method == Method::HEAD;
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = version;
        *req.headers_mut() = headers;
        // Pinned where it is made: the handler's future is kilobytes, and every move of it is a copy.
        let Some(resp) = answer(&io, pin!(handler(req, peer))).await else {
            tracing::debug!(%peer, "The client closed the connection before its answer.");
            return;
        };
        let close = close || *stopping.borrow();
        let (parts, body) = resp.into_parts();
        match write_response(&io, &mut out, &parts, body, head_request, version, close).await {
            After::KeepAlive => spare = Some(parts.headers),
            After::Close => return linger(&io).await,
            After::Abort => return,
        }
    }
}

/// The next request head: `Ok(None)` when the connection should close quietly (the client closed it, the header
/// wait ran out, or the server is stopping and the connection is idle).
async fn next_head(
    io: &Io,
    stopping: &mut watch::Receiver<bool>,
    mut timer: Pin<&mut Sleep>,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, Refusal> {
    loop {
        let idle = {
            let mut r = io.lock();
            if !r.buf.is_empty() {
                if let Some(head) = wire::parse_head(&mut r.buf, spare)? {
                    return Ok(Some(head));
                }
            }
            if r.eof {
                return Ok(None);
            }
            let idle = r.buf.is_empty();
            if idle && *stopping.borrow() {
                return Ok(None);
            }
            r.buf.reserve(READ_CHUNK);
            match http1::read_some(&io.stream, &mut r.buf) {
                Ok(0) => return Ok(None),
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => idle,
                Err(_) => return Ok(None),
            }
        };
        tokio::select! {
            biased;
            ready = io.stream.readable() => {
                if ready.is_err() {
                    return Ok(None);
                }
            }
            () = timer.as_mut() => {
                tracing::debug!(idle, "No request head within the header timeout; closing the connection.");
                return Ok(None);
            }
            _ = stopping.changed(), if idle => {}
        }
    }
}

/// The handler's response, or `None` when the client closed the connection first (its future is then dropped).
async fn answer<F: Future<Output = Response<Body>>>(
    io: &Io,
    mut fut: Pin<&mut F>,
) -> Option<Response<Body>> {
    poll_fn(|cx| {
        if let Poll::Ready(resp) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(resp));
        }
        if client_closed(io, cx) {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Whether the client has closed the connection (end of stream or a socket error), reading what it sent ahead
/// into the buffer (at most [`MAX_READ_AHEAD`]); registers `cx` for the socket's next readiness otherwise. Not
/// while the request body is still being read: the body owns the socket's reads until its end.
fn client_closed(io: &Io, cx: &mut Context<'_>) -> bool {
    let mut r = io.lock();
    if !matches!(r.body, BodyState::Done) {
        return false;
    }
    loop {
        if r.eof {
            return true;
        }
        if r.buf.len() >= MAX_READ_AHEAD {
            return false;
        }
        match io.stream.poll_read_ready(cx) {
            Poll::Pending => return false,
            Poll::Ready(Err(_)) => return true,
            Poll::Ready(Ok(())) => {}
        }
        r.buf.reserve(READ_CHUNK);
        match http1::read_some(&io.stream, &mut r.buf) {
            Ok(0) => r.eof = true,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
}

/// What becomes of a connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// It carries the next request.
    KeepAlive,
    /// It closes, gracefully ([`linger`]).
    Close,
    /// It is dropped at once: the client left, a write failed, or the response broke off.
    Abort,
}

impl After {
    /// After a response whose last write succeeded (`written`) and that did or did not call for the close.
    fn of(written: bool, close: bool) -> After {
        match (written, close) {
            (false, _) => After::Abort,
            (true, true) => After::Close,
            (true, false) => After::KeepAlive,
        }
    }
}

/// Closes the connection after the server's last response as RFC 9112 §9.6 asks ("a server SHOULD initiate a
/// close by first closing the sending side ... then waiting to receive the client's close"): closing with unread
/// input would send a reset that can destroy the response before the client reads it (a request body the handler
/// refused, a pipelined request, a malformed head). Reads and discards at most [`LINGER_BYTES`] within
/// [`LINGER_TIME`] (nginx's lingering close), then drops the socket.
async fn linger(io: &Io) {
    let _ = socket2::SockRef::from(&io.stream).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut seen = 0usize;
        loop {
            if io.stream.readable().await.is_err() {
                return;
            }
            let mut r = io.lock();
            r.buf.clear();
            r.buf.reserve(READ_CHUNK);
            match http1::read_some(&io.stream, &mut r.buf) {
                Ok(0) => return,
                Ok(n) => {
                    seen += n;
                    if seen > LINGER_BYTES {
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// One turn of writing a response body.
enum Step {
    /// Gathered bytes to write; more to come.
    Flush,
    /// The body ended.
    End,
    /// The body failed (an upstream that died mid-response), or gave more than its `Content-Length`.
    Failed,
    /// The client closed the connection.
    Gone,
}

/// Writes the response of `parts` and `body` (RFC 9112 §6: `Content-Length` when the handler set one or the body's size is known, chunked
/// otherwise for an HTTP/1.1 client, the close for an HTTP/1.0 one; no body for `HEAD`, 1xx, 204 and 304).
/// Returns what becomes of the connection.
async fn write_response(
    io: &Io,
    out: &mut BytesMut,
    parts: &http::response::Parts,
    body: Body,
    head_request: bool,
    version: Version,
    mut close: bool,
) -> After {
    close |= has_token(&parts.headers, "close");
    {
        let mut r = io.lock();
        // A body the handler left unread (or that failed): the rest of it would be read as the next request.
        if r.broken || !matches!(r.body, BodyState::Done) {
            close = true;
            r.owe_continue = None;
        }
    }
    let status = parts.status;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| parse_length(v.as_bytes()));
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless || head_request {
        Out::Empty
    } else if let Some(n) = declared {
        Out::Length(n)
    } else if body.is_end_stream() {
        Out::Length(0)
    } else if let Some(n) = body.size_hint().exact() {
        Out::Length(n)
    } else if version == Version::HTTP_11 {
        Out::Chunked
    } else {
        close = true;
        Out::Close
    };
    let head_length = (head_request && !bodiless)
        .then(|| declared.or(body.size_hint().exact()))
        .flatten();
    out.clear();
    wire::encode_response(out, status, &parts.headers, framing, head_length, close);
    if framing == Out::Empty {
        drop(body);
        return After::of(write_all(io, out).await.is_ok(), close);
    }
    let mut left = match framing {
        Out::Length(n) => n,
        _ => u64::MAX,
    };
    let mut body = pin!(body);
    loop {
        let step = poll_fn(|cx| loop {
            match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: not sent
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let len = data.len() as u64;
                    if len > left {
                        tracing::warn!(
                            status = status.as_u16(),
                            "A response body is longer than its Content-Length; closing the connection."
                        );
                        return Poll::Ready(Step::Failed);
                    }
                    left -= len;
                    if framing == Out::Chunked {
                        chunk_size(out, data.len());
                        out.extend_from_slice(&data);
                        out.extend_from_slice(b"\r\n");
                    } else {
                        out.extend_from_slice(&data);
                    }
                    if out.len() >= WRITE_BATCH {
                        return Poll::Ready(Step::Flush);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::debug!(error = %err, "A response body failed; closing the connection.");
                    return Poll::Ready(Step::Failed);
                }
                Poll::Ready(None) => return Poll::Ready(Step::End),
                Poll::Pending if !out.is_empty() => return Poll::Ready(Step::Flush),
                Poll::Pending if client_closed(io, cx) => return Poll::Ready(Step::Gone),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await;
        match step {
            Step::Flush => {
                if write_all(io, out).await.is_err() {
                    return After::Abort;
                }
                out.clear();
            }
            Step::End => {
                let complete = match framing {
                    Out::Chunked => {
                        out.extend_from_slice(b"0\r\n\r\n");
                        true
                    }
                    Out::Length(_) => left == 0,
                    _ => true,
                };
                if !complete {
                    tracing::warn!(
                        status = status.as_u16(),
                        "A response body is shorter than its Content-Length; closing the connection."
                    );
                }
                return After::of(write_all(io, out).await.is_ok(), close || !complete);
            }
            Step::Failed => {
                // What was gathered goes out; the close (no last chunk, or short of the length) tells the client
                // the response is incomplete (RFC 9112 §8).
                let _ = write_all(io, out).await;
                return After::Abort;
            }
            Step::Gone => return After::Abort,
        }
    }
}

/// A chunk's size line: hexadecimal digits and CRLF (RFC 9112 §7.1).
fn chunk_size(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Writes all of `buf`, waiting for the socket when its send buffer is full.
async fn write_all(io: &Io, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match io.stream.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => io.stream.writable().await?,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Answers a refused request head with its status and reason, and closes.
async fn refuse(io: &Io, out: &mut BytesMut, refusal: Refusal) {
    tracing::debug!(
        status = refusal.status.as_u16(),
        reason = %refusal.reason,
        "Request refused before any handler."
    );
    let text = format!("{}\n", refusal.reason);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out.clear();
    wire::encode_response(
        out,
        refusal.status,
        &headers,
        Out::Length(text.len() as u64),
        None,
        true,
    );
    out.extend_from_slice(text.as_bytes());
    if write_all(io, out).await.is_ok() {
        linger(io).await;
    }
}
