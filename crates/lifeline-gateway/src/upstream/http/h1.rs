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
//! - Response heads are bounded ([`wire::MAX_HEAD_BYTES`], [`wire::MAX_HEADERS`]): more is an
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
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::Body;
use crate::upstream::UpstreamError;
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
        let host = match hosts.iter().position(|h| h.authority == *authority) {
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
        let Some(host) = pool.hosts.iter_mut().find(|h| h.authority == *authority) else {
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

    /// Sends `req` (its URI absolute: `http://host:port/path`) and returns the response, whose body is read
    /// from the connection as it is polled; the connection returns to the pool when that body ends.
    ///
    /// Errors: [`UpstreamError::Connect`] when no connection could be made (nothing was sent),
    /// [`UpstreamError::Protocol`] when the exchange failed after the request may have left (a write or read
    /// error, the connection closed before a complete head, a head over its bounds, bad framing). The caller
    /// bounds the whole call in time; a call dropped midway closes its connection.
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Body>, UpstreamError> {
        let (parts, mut body) = req.into_parts();
        let authority =
            parts.uri.authority().cloned().ok_or_else(|| {
                UpstreamError::Protocol("the upstream URL has no host".to_owned())
            })?;
        // `Full` yields its one frame at once.
        let body = match body.frame().await {
            Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        };
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let copy_body = body.len() <= COPY_BODY_MAX;
        let mut out = BytesMut::new();
        let mut tries = 0;
        let mut conn = loop {
            let (idle, host_header) = self.checkout(&authority);
            if out.is_empty() {
                let host = parts.headers.get(header::HOST).unwrap_or(&host_header);
                out.reserve(512 + if copy_body { body.len() } else { 0 });
                wire::encode_request(
                    &mut out,
                    &parts.method,
                    target,
                    host,
                    &parts.headers,
                    body.len(),
                );
                if copy_body {
                    out.extend_from_slice(&body);
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
        let (head, framing, reusable) = read_head(&mut conn, parts.method == Method::HEAD).await?;
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
/// delimited; the body's first bytes stay in `conn.buf`.
async fn read_head(
    conn: &mut Conn,
    head_request: bool,
) -> Result<(wire::Head, Framing, bool), UpstreamError> {
    let mut interim = 0;
    let mut head = loop {
        if !conn.buf.is_empty() {
            if let Some(head) = wire::parse_head(&mut conn.buf)? {
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
    let (framing, reusable) =
        wire::framing(head.status, head.version, &mut head.headers, head_request)?;
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
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body::Body as _;
    use hyper::body::Incoming as Received;
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A hyper server on loopback answering `ok` (`close` in the path: `Connection: close`); counts the
    /// connections it accepted and those that ended.
    async fn server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let ended = Arc::new(AtomicUsize::new(0));
        let ends = Arc::clone(&ended);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let ends = Arc::clone(&ends);
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Received>| async move {
                        let host = req.headers().get(header::HOST).cloned();
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                        if let Some(h) = host {
                            resp.headers_mut().insert("x-seen-host", h);
                        }
                        if req.uri().path() == "/close" {
                            resp.headers_mut()
                                .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = server::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    ends.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (format!("http://{addr}"), accepted, ended)
    }

    async fn get(client: &Arc<Client>, url: &str) -> (StatusCode, String, Option<HeaderValue>) {
        let req = Request::builder()
            .uri(url)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = client.request(req).await.expect("answered");
        let status = resp.status();
        let host = resp.headers().get("x-seen-host").cloned();
        // Read as hyper's server relays a body: frames until the body says it has ended, no final `None`.
        let mut body = resp.into_body();
        let mut text = String::new();
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else {
                break;
            };
            if let Ok(data) = frame.expect("frame").into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
        (status, text, host)
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_is_read_and_replaced_once_closed() {
        let (base, accepted, _) = server().await;
        let client = Client::new(Duration::from_secs(10));
        for _ in 0..3 {
            let (status, body, host) = get(&client, &format!("{base}/mcp")).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
            // Origin form on the wire, Host from the URL.
            assert_eq!(
                host.as_ref().and_then(|h| h.to_str().ok()),
                base.strip_prefix("http://")
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "three requests, one connection"
        );
        // The upstream closes this one after answering: the next request gets a new connection, no error.
        let (status, _, _) = get(&client, &format!("{base}/close")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body, _) = get(&client, &format!("{base}/mcp")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_when_their_idle_time_runs_out() {
        let (base, accepted, ended) = server().await;
        let client = Client::with_idle_timeout(Duration::from_secs(10), Duration::from_millis(300));
        let (status, _, _) = get(&client, &format!("{base}/mcp")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            client.lock().hosts[0].idle.len(),
            1,
            "pooled after its body"
        );
        assert!(client.lock().reaper);
        // Nobody uses the pool again: the reaper alone closes the connection, then ends.
        let start = Instant::now();
        while ended.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            ended.load(Ordering::SeqCst),
            1,
            "the upstream saw the idle connection close"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "not before its idle time"
        );
        assert!(client.lock().hosts[0].idle.is_empty());
        assert!(!client.lock().reaper, "the reaper ended with nothing idle");
        // The pool still works, with a new connection and a new reaper.
        let (status, _, _) = get(&client, &format!("{base}/mcp")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert!(client.lock().reaper);
    }

    /// What the raw upstream does once it has read a request.
    enum Act {
        /// Writes these bytes.
        Write(Vec<u8>),
        /// The response is complete: reads the next request on the same connection.
        Next,
        /// Closes the connection (and reports it on `closed`).
        Close,
    }

    /// A raw HTTP/1.1 upstream on loopback, for the framing failure modes no real peer shows on demand: it reads
    /// each request whole (reported on `requests`), then follows the acts queued on `acts`, one connection at a
    /// time.
    struct Raw {
        url: String,
        acts: mpsc::UnboundedSender<Act>,
        requests: mpsc::UnboundedReceiver<String>,
        closed: mpsc::UnboundedReceiver<()>,
        accepted: Arc<AtomicUsize>,
    }

    impl Raw {
        async fn start() -> Raw {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (acts, mut queued) = mpsc::unbounded_channel();
            let (report, requests) = mpsc::unbounded_channel();
            let (closing, closed) = mpsc::unbounded_channel();
            let accepted = Arc::new(AtomicUsize::new(0));
            let count = Arc::clone(&accepted);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    'requests: while let Some(request) = read_request(&mut stream).await {
                        let _ = report.send(request);
                        loop {
                            match queued.recv().await {
                                None => return,
                                Some(Act::Write(bytes)) => {
                                    let _ = stream.write_all(&bytes).await;
                                }
                                Some(Act::Next) => continue 'requests,
                                Some(Act::Close) => {
                                    drop(stream);
                                    let _ = closing.send(());
                                    break 'requests;
                                }
                            }
                        }
                    }
                }
            });
            Raw {
                url: format!("http://{addr}/mcp"),
                acts,
                requests,
                closed,
                accepted,
            }
        }

        /// Queues acts for the next request.
        fn then(&self, acts: impl IntoIterator<Item = Act>) {
            for act in acts {
                self.acts.send(act).expect("the upstream runs");
            }
        }

        /// Queues `response` and then the next request.
        fn answer(&self, response: &str) {
            self.then([Act::Write(response.as_bytes().to_vec()), Act::Next]);
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        /// The requests received since the last call.
        fn received(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
        }
    }

    /// One request (head and `Content-Length` body) as text; `None` at end of stream.
    async fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 1 << 20 {
                return None;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    /// `fut`, failing the test after 10 s (a hang is a failure, never a stuck run).
    async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("done within 10 s")
    }

    fn post(url: &str, body: &'static str) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from_static(body.as_bytes())));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = url.parse().expect("url");
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        req
    }

    /// The next data frame of `body`, `None` at its end.
    async fn next_data(body: &mut Body) -> Option<Bytes> {
        loop {
            let frame = within(body.frame()).await?.expect("a good frame");
            if let Ok(data) = frame.into_data() {
                return Some(data);
            }
        }
    }

    /// The rest of `body`, read as hyper's server relays one: frames until it says it has ended.
    async fn rest(body: &mut Body) -> String {
        let mut text = String::new();
        for _ in 0..10_000 {
            if body.is_end_stream() {
                return text;
            }
            match next_data(body).await {
                Some(data) => text.push_str(&String::from_utf8_lossy(&data)),
                None => return text,
            }
        }
        panic!("a body of more than 10 000 frames");
    }

    #[tokio::test]
    async fn content_length_bodies_reuse_one_connection_for_sequential_requests() {
        let mut up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        for _ in 0..3 {
            up.answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello");
            let resp = within(client.request(post(&up.url, "{}")))
                .await
                .expect("answered");
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["x-a"], "1");
            let mut body = resp.into_body();
            assert_eq!(body.size_hint().exact(), Some(5));
            assert_eq!(rest(&mut body).await, "hello");
        }
        assert_eq!(up.accepted(), 1, "three requests, one connection");
        let port = up
            .url
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/mcp")
            .to_owned();
        let received = up.received();
        assert_eq!(received.len(), 3);
        for req in received {
            assert_eq!(
                req,
                format!(
                    "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 2\r\n\r\n{{}}"
                )
            );
        }
    }

    #[tokio::test]
    async fn chunked_bodies_are_relayed_as_they_arrive() {
        let mut up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        // The first chunk, split inside its data; its extension is ignored.
        up.then([Act::Write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nb;id=1\r\ndata: o"
                .to_vec(),
        )]);
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(resp.headers()[header::TRANSFER_ENCODING], "chunked");
        let mut body = resp.into_body();
        // Each piece arrives before the upstream sends the next: nothing waits for the end of the stream.
        assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"data: o"[..]));
        up.then([Act::Write(b"ne\n\n\r".to_vec())]);
        assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"ne\n\n"[..]));
        up.then([Act::Write(
            b"\nC ; last=\"yes\"\r\ndata: two!\n\n\r\n0\r\nX-T".to_vec(),
        )]);
        assert_eq!(
            next_data(&mut body).await.as_deref(),
            Some(&b"data: two!\n\n"[..])
        );
        up.then([Act::Write(b"railer: t\r\n\r\n".to_vec()), Act::Next]);
        assert_eq!(
            next_data(&mut body).await,
            None,
            "ends after the trailer section"
        );
        assert!(body.is_end_stream());
        // The connection went back: the next request uses it.
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        assert_eq!(up.accepted(), 1);
        assert_eq!(up.received().len(), 2);
    }

    #[tokio::test]
    async fn close_delimited_and_connection_close_responses_are_not_reused() {
        let up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        // No length: the body runs to the close.
        up.then([
            Act::Write(b"HTTP/1.1 200 OK\r\n\r\npart one,".to_vec()),
            Act::Write(b"part two".to_vec()),
            Act::Close,
        ]);
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "part one,part two");
        assert!(client.lock().hosts[0].idle.is_empty());
        // `Connection: close` with a length: the upstream keeps the connection open, the client does not.
        up.answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        assert!(client.lock().hosts[0].idle.is_empty());
        up.answer("HTTP/1.1 204 No Content\r\n\r\n");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(resp.body().is_end_stream());
        assert_eq!(up.accepted(), 3, "a new connection after each");
    }

    #[tokio::test]
    async fn interim_responses_are_skipped_and_101_is_an_error() {
        let up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        up.answer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        );
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers().get("link").is_none(),
            "the interim head's fields are not the final one's"
        );
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        up.answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
        let err = within(client.request(post(&up.url, "{}")))
            .await
            .expect_err("101");
        assert_eq!(err.reason(), "protocol");
        assert!(err.to_string().contains("101 Switching Protocols"), "{err}");
    }

    #[tokio::test]
    async fn an_oversized_response_head_is_an_error() {
        let up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        up.answer(&format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n",
            "a".repeat(70 * 1024)
        ));
        let err = within(client.request(post(&up.url, "{}")))
            .await
            .expect_err("too large");
        assert_eq!(
            err.to_string(),
            "upstream protocol error: the upstream's response head is larger than 64 KiB"
        );
        assert!(client.lock().hosts[0].idle.is_empty());
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_left_is_an_error_never_a_resend() {
        let mut up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        // A first exchange, so the second request goes out on a reused connection.
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        // The upstream reads the next request and closes without answering: it may have run it, so the client
        // must not send it again (a resend would reach the upstream as a second request on a new connection,
        // left unanswered: this test would time out).
        up.then([Act::Close]);
        let err = within(client.request(post(&up.url, "{}")))
            .await
            .expect_err("no answer");
        assert_eq!(
            err.to_string(),
            "upstream protocol error: the upstream closed the connection before answering"
        );
        assert_eq!(up.received().len(), 2, "sent once");
        assert_eq!(up.accepted(), 1, "no new connection");
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced_without_error() {
        let mut up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        // A keep-alive answer, then the upstream closes the idle connection (its keep-alive timeout).
        up.then([
            Act::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            Act::Close,
        ]);
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        within(up.closed.recv()).await.expect("closed");
        assert_eq!(
            client.lock().hosts[0].idle.len(),
            1,
            "pooled before the close"
        );
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("no error");
        assert_eq!(rest(&mut resp.into_body()).await, "new");
        assert_eq!(up.accepted(), 2);
        assert_eq!(up.received().len(), 2, "each request sent once");
    }

    #[tokio::test]
    async fn a_body_dropped_early_closes_its_connection() {
        let up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        let mut body = resp.into_body();
        assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"hello"[..]));
        drop(body); // the client left: five bytes of this response are still due
        assert!(client.lock().hosts[0].idle.is_empty());
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        assert_eq!(rest(&mut resp.into_body()).await, "ok");
        assert_eq!(up.accepted(), 2, "a new connection");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let up = Raw::start().await;
        let client = Client::new(Duration::from_secs(10));
        up.then([
            Act::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
            Act::Close,
        ]);
        let resp = within(client.request(post(&up.url, "{}")))
            .await
            .expect("answered");
        let mut body = resp.into_body();
        assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"hello"[..]));
        let err = within(body.frame())
            .await
            .expect("a frame")
            .expect_err("cut short");
        assert!(
            err.to_string()
                .contains("before the end of its response body"),
            "{err}"
        );
        assert!(client.lock().hosts[0].idle.is_empty());
    }
}
