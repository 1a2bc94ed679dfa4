//! The upstream HTTP/1.1 client for plain-`http` upstreams: the exchange runs in the calling task, on pooled
//! `TcpStream`s, with the message syntax in [`wire`] and the response body in [`body`].
//!
//! This is the proxy path, the core the project writes itself (issue 17). hyper's client connection
//! (`hyper::client::conn::http1`, used here before) runs each connection as a task of its own, so every proxied
//! request crossed two tasks: request task → dispatch channel → connection task → oneshot → request task, two
//! wake-ups and a scheduler pass each way, plus a second header map, about 8–10k user-space instructions per
//! request. Those hops were the main reason the gateway's added p50 latency was 2.25–4.6× nginx's
//! (`docs/gateway.md` §The goals). Here the request task encodes the request head and body into one buffer,
//! writes it, reads and parses the response head (`httparse`), and the downstream connection's task reads the
//! body from the socket as it writes the response: no task, channel or oneshot in between.
//!
//! The rules of the exchange, each with its RFC 9112 section where it applies:
//! - Requests go out in origin form (`/path?query`, §3.2.1) with `Host` first: the request's own, else the
//!   upstream's authority (§3.2, RFC 9110 §7.2). The body is always sent whole with `Content-Length` (§6.2).
//! - Response heads are bounded ([`crate::http1::MAX_HEAD_BYTES`], [`crate::http1::MAX_HEADERS`]): more is an
//!   [`UpstreamError::Protocol`], never an unbounded buffer. Interim 1xx responses are skipped (§4: a client
//!   MUST be able to parse one or more before the final response); `101` is an error, as nothing asked for an
//!   upgrade.
//! - The body is delimited per §6.3 ([`wire::framing`]): none for 204, 304 and `HEAD`; chunked (§7.1, decoded,
//!   extensions and trailers dropped, content handed out as it arrives so event streams are never held back);
//!   `Content-Length`; else until the close.
//!
//! The pool: a connection goes back when its response body has been read exactly to the message's end and the
//! response allowed it (HTTP/1.1 without `Connection: close`, §9.3, nothing read past the end); a body dropped
//! early (a client that left) closes it, as the rest of that response would otherwise be read as the next one.
//! The most recently returned connection is used first (the least likely to have been closed by the upstream's
//! keep-alive timeout). Before a pooled connection is written to, a non-blocking `MSG_PEEK` checks it is still
//! open (would block: open; end of stream or unsolicited bytes: closed, dropped, the next one tried); only that
//! check failing moves the request to another connection, since HTTP/1.1 cannot tell "not received" from
//! "received and lost" once a byte has left (§9.3.1): any failure after the write is an error, and nothing that
//! left is ever resent. At most [`MAX_IDLE`] idle connections are kept per address, and one idle for
//! [`IDLE_TIMEOUT`] is closed: by a reaper task that exists only while connections are idle, sleeps until the
//! oldest one's deadline (one wake-up per expiry, never a polling loop) and ends when the pool is empty or the
//! client is dropped; a checkout skips an expired connection the reaper has not reached yet. New connections
//! have `TCP_NODELAY` (a request is written in one call) and must be made within the connect timeout.

use std::io;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::Body;
use crate::upstream::{Forwarded, UpstreamError};
use body::{Incoming, READ_CHUNK};
use wire::Framing;

mod body;
mod wire;

/// Idle pooled connections are closed after this long: 90 s (hyper-util's client default; an upstream that closes
/// idle connections sooner is caught by the check before a pooled connection is used).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per upstream address; more are closed when they come back.
pub(crate) const MAX_IDLE: usize = 256;
/// Pooled connections tried for one request before a new one is made (each failed check closed one).
const MAX_STALE_TRIES: usize = 8;
/// Interim (1xx) responses skipped before the final one; more is an error (each is bounded, their number too).
const MAX_INTERIM: usize = 16;
/// Request bodies up to this size are copied behind the head and written with it in one call; larger ones are
/// written from their own buffer in the same vectored write.
const COPY_BODY_MAX: usize = 16 * 1024;

/// A pooled HTTP/1.1 client for plain-`http` upstreams. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Client {
    connect_timeout: Duration,
    idle_timeout: Duration,
    pool: Mutex<Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    /// Per upstream address (few: one per pool endpoint): its `Host` value and idle connections, most recently
    /// returned last. A linear scan over a handful of entries, under a lock held for a push or a pop.
    hosts: Vec<Host>,
    /// Whether the reaper task (`reap`) is running: at most one, and only while connections are idle.
    reaper: bool,
}

#[derive(Debug)]
struct Host {
    authority: Authority,
    host_header: HeaderValue,
    idle: Vec<(Conn, Instant)>,
}

impl Host {
    /// Whether this entry is `authority`'s, compared byte for byte: `Authority`'s own comparison ignores case a
    /// byte at a time, on every checkout and checkin (issue 17), while the gateway asks with the same value each
    /// time (its configured URL's). A differently cased spelling gets an entry of its own, which is harmless.
    fn is(&self, authority: &Authority) -> bool {
        self.authority.as_str() == authority.as_str()
    }
}

/// An open connection and its read buffer, which holds nothing while the connection is idle (a reusable
/// connection has nothing read past its last response).
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Whether an idle connection can carry a request: a non-blocking `MSG_PEEK` of one byte would block. End
    /// of stream (the upstream closed it), bytes nobody asked for, or an error mean it cannot.
    ///
    /// A system call, not tokio's `try_read`: that answers "would block" without asking the kernel until the
    /// runtime's I/O driver has seen the close, which races with the upstream's keep-alive timeout.
    fn is_open(&self) -> bool {
        let mut probe = [MaybeUninit::<u8>::uninit()];
        matches!(
            socket2::SockRef::from(&self.stream).peek(&mut probe),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }
}

impl Client {
    /// A client whose new connections must be made within `connect_timeout`.
    pub(crate) fn new(connect_timeout: Duration) -> Arc<Client> {
        Client::with_idle_timeout(connect_timeout, IDLE_TIMEOUT)
    }

    /// [`Client::new`] whose idle connections are closed after `idle_timeout` instead of [`IDLE_TIMEOUT`].
    pub(crate) fn with_idle_timeout(
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Arc<Client> {
        Arc::new(Client {
            connect_timeout,
            idle_timeout,
            pool: Mutex::new(Pool::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A panic while the lock was held leaves only a list of idle connections behind: still usable.
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection to `authority` (not yet checked, `None` when none is idle) and its `Host` value.
    fn checkout(&self, authority: &Authority) -> (Option<Conn>, HeaderValue) {
        let mut pool = self.lock();
        let hosts = &mut pool.hosts;
        let host = match hosts.iter().position(|h| h.is(authority)) {
            Some(i) => &mut hosts[i],
            None => {
                // `Host` is the authority without userinfo (RFC 9112 §3.2).
                let hostport = authority.as_str().rsplit('@').next().unwrap_or_default();
                let host_header = HeaderValue::from_str(hostport)
                    .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
                hosts.push(Host {
                    authority: authority.clone(),
                    host_header,
                    idle: Vec::new(),
                });
                hosts.last_mut().expect("just pushed")
            }
        };
        let now = Instant::now();
        while let Some((conn, since)) = host.idle.pop() {
            if now.duration_since(since) < self.idle_timeout {
                return (Some(conn), host.host_header.clone());
            }
        }
        (None, host.host_header.clone())
    }

    /// Puts a connection whose last response has ended back in the pool, and starts the reaper when it is the
    /// only idle one.
    fn checkin(self: &Arc<Self>, authority: &Authority, conn: Conn) {
        let mut pool = self.lock();
        let Some(host) = pool.hosts.iter_mut().find(|h| h.is(authority)) else {
            return;
        };
        if host.idle.len() >= MAX_IDLE {
            // Rare (a burst left more than MAX_IDLE connections): make room from those the upstream closed.
            host.idle.retain(|(c, _)| c.is_open());
            if host.idle.len() >= MAX_IDLE {
                return; // dropped: the connection closes
            }
        }
        host.idle.push((conn, Instant::now()));
        if !pool.reaper {
            // Outside a runtime (never in the gateway) there is no reaper, and checkouts still skip expired ones.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                pool.reaper = true;
                rt.spawn(reap(Arc::downgrade(self)));
            }
        }
    }

    /// Closes the idle connections whose idle time has run out; the instant the oldest remaining one will, or
    /// `None` (the reaper ends) when none is left idle.
    fn expire(&self) -> Option<Instant> {
        let mut pool = self.lock();
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for host in &mut pool.hosts {
            host.idle
                .retain(|(_, since)| now.duration_since(*since) < self.idle_timeout);
            // Most recently returned last: the first one is the oldest.
            if let Some((_, since)) = host.idle.first() {
                let due = *since + self.idle_timeout;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        if next.is_none() {
            pool.reaper = false;
        }
        next
    }

    /// Sends `req` (its URI absolute: `http://host:port/path`) with `forwarded`'s fields: [`Client::send`] for a
    /// request built whole (the gateway's own requests, tests).
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
        forwarded: &Forwarded,
    ) -> Result<Response<Body>, UpstreamError> {
        let (mut parts, mut body) = req.into_parts();
        // `Full` yields its one frame at once.
        let body = match body.frame().await {
            Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        };
        self.send(
            &parts.method,
            &parts.uri,
            &mut parts.headers,
            &body,
            forwarded,
        )
        .await
    }

    /// Sends a `method` request for `uri` (absolute: `http://host:port/path`) with the fields `headers` and then
    /// `forwarded`'s, and `body`, and returns the response, whose body is read from the connection as it is
    /// polled; the connection returns to the pool when that body ends.
    ///
    /// `headers` are taken once the request has been written (left empty: their allocation holds the response's
    /// fields). On [`UpstreamError::Connect`] nothing was sent and they are left as they were, so the caller can
    /// send the same request elsewhere without having copied it first.
    ///
    /// Errors: [`UpstreamError::Connect`] when no connection could be made (nothing was sent),
    /// [`UpstreamError::Protocol`] when the exchange failed after the request may have left (a write or read
    /// error, the connection closed before a complete head, a head over its bounds, bad framing). The caller
    /// bounds the whole call in time; a call dropped midway closes its connection.
    pub(crate) async fn send(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        body: &Bytes,
        forwarded: &Forwarded,
    ) -> Result<Response<Body>, UpstreamError> {
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::Protocol("the upstream URL has no host".to_owned()))?;
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let copy_body = body.len() <= COPY_BODY_MAX;
        let mut out = BytesMut::new();
        let mut tries = 0;
        let mut conn = loop {
            let (idle, host_header) = self.checkout(&authority);
            if out.is_empty() {
                let host = headers.get(header::HOST).unwrap_or(&host_header);
                out.reserve(512 + if copy_body { body.len() } else { 0 });
                wire::encode_request(
                    &mut out,
                    method,
                    target,
                    host,
                    headers,
                    forwarded,
                    body.len(),
                );
                if copy_body {
                    out.extend_from_slice(body);
                }
            }
            match idle {
                Some(conn) if tries < MAX_STALE_TRIES => {
                    tries += 1;
                    if conn.is_open() {
                        break conn;
                    }
                    // Closed while idle, and nothing was written to it: dropped, the next one is tried.
                }
                // Boxed: the connect state would otherwise sit in every request's future, which is moved whole
                // at each await above it (issue 17).
                _ => break Box::pin(self.connect(&authority)).await?,
            }
        };
        // From the first byte written on, a failure may come after the upstream received the request: it is an
        // error, never a reason to send it again.
        let written = if copy_body {
            conn.stream.write_all(&out).await
        } else {
            conn.stream
                .write_all_buf(&mut Buf::chain(&out[..], &body[..]))
                .await
        };
        if let Err(err) = written {
            return Err(UpstreamError::Protocol(format!(
                "sending the request to {authority}: {err}"
            )));
        }
        // The request's map, done with once written, holds the response's fields (its allocation reused).
        let mut spare = Some(std::mem::take(headers));
        let (head, framing, reusable) =
            read_head(&mut conn, *method == Method::HEAD, &mut spare).await?;
        let mut resp = Response::new(());
        *resp.status_mut() = head.status;
        *resp.version_mut() = head.version;
        *resp.headers_mut() = head.headers;
        let body = if framing == Framing::Empty {
            if reusable && conn.buf.is_empty() {
                self.checkin(&authority, conn);
            }
            crate::body::full(Bytes::new())
        } else {
            let back = reusable.then(|| (Arc::clone(self), authority));
            Incoming::new(conn, framing, back).boxed_unsync()
        };
        Ok(resp.map(|()| body))
    }

    /// A new connection to `authority`, with `TCP_NODELAY`.
    async fn connect(&self, authority: &Authority) -> Result<Conn, UpstreamError> {
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().unwrap_or(80);
        let stream = match tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((host, port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => {
                return Err(UpstreamError::Connect(format!(
                    "connecting to {authority}: {err}"
                )))
            }
            Err(_) => {
                return Err(UpstreamError::Connect(format!(
                    "connecting to {authority}: no connection within {:?}",
                    self.connect_timeout
                )))
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        })
    }
}

/// Reads the final response head from `conn` (interim 1xx ones skipped, RFC 9112 §4) and how its body is
/// delimited; the body's first bytes stay in `conn.buf`. The first head's fields go into `spare` (cleared) when
/// given.
async fn read_head(
    conn: &mut Conn,
    head_request: bool,
    spare: &mut Option<HeaderMap>,
) -> Result<(wire::Head, Framing, bool), UpstreamError> {
    let mut interim = 0;
    let mut head = loop {
        if !conn.buf.is_empty() {
            if let Some(head) = wire::parse_head(&mut conn.buf, spare)? {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(UpstreamError::Protocol(
                        "the upstream answered 101 Switching Protocols to a request for no upgrade"
                            .to_owned(),
                    ));
                }
                if !head.status.is_informational() {
                    break head;
                }
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(UpstreamError::Protocol(format!(
                        "the upstream sent more than {MAX_INTERIM} interim (1xx) responses"
                    )));
                }
                continue;
            }
        }
        conn.buf.reserve(READ_CHUNK);
        let read = conn.stream.read_buf(&mut conn.buf).await;
        match read {
            Ok(0) if conn.buf.is_empty() && interim == 0 => {
                return Err(UpstreamError::Protocol(
                    "the upstream closed the connection before answering".to_owned(),
                ))
            }
            Ok(0) => {
                return Err(UpstreamError::Protocol(
                    "the upstream closed the connection in the middle of its response head"
                        .to_owned(),
                ))
            }
            Ok(_) => {}
            Err(err) => {
                return Err(UpstreamError::Protocol(format!(
                    "reading the upstream's response: {err}"
                )))
            }
        }
    };
    let (framing, reusable) = wire::framing(
        head.status,
        head.version,
        head.close,
        &mut head.headers,
        head_request,
    )?;
    Ok((head, framing, reusable))
}

/// The reaper: closes idle connections as their idle time runs out. Every turn either closes at least one
/// connection or sleeps until the next deadline (which is in the future, else that connection was closed); it
/// ends when nothing is idle or the client is gone (`Weak`: it never keeps the client alive).
async fn reap(client: Weak<Client>) {
    loop {
        let Some(next) = client.upgrade().and_then(|c| c.expire()) else {
            return;
        };
        tokio::time::sleep_until(next.into()).await;
    }
}

#[cfg(test)]
mod tests;
