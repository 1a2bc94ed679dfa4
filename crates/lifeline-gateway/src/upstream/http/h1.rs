//! The upstream HTTP/1.1 client: hyper's connection API (`hyper::client::conn::http1`) with a small pool of
//! idle keep-alive connections per upstream address, in place of hyper-util's general-purpose client (issue 17:
//! its pool key hashing, checkout futures and the task it spawns per request to wait for the connection to be
//! reusable were a measurable share of the gateway's cost per request).
//!
//! A connection goes back to the pool when its response body has been read to the end ([`Returning`]), so a
//! stream holds its connection and a body dropped early (a client that left) closes it, as HTTP/1.1 demands
//! (the rest of that response would otherwise be read as the next one). The most recently returned connection
//! is used first (it is the least likely to have been closed by the upstream's keep-alive timeout). A pooled
//! connection that turns out to be closed when a request is tried on it hands the request back unsent
//! (`try_send_request`), and the request goes to the next idle connection or a new one: nothing that left is
//! ever resent. At most [`MAX_IDLE`] idle connections are kept per address, and one idle for [`IDLE_TIMEOUT`]
//! is closed: by a reaper task that exists only while connections are idle, sleeps until the oldest one's
//! deadline (one wake-up per expiry, never a polling loop) and ends when the pool is empty or the client is
//! dropped; a checkout skips an expired connection the reaper has not reached yet.
//!
//! Requests go out in origin form (`/path?query`) with `Host` set to the upstream's authority when the request
//! has none (RFC 9112 §3.2, §7.2), as hyper-util's client did.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::{Body, BoxError};
use crate::upstream::UpstreamError;

/// Idle pooled connections are closed after this long: 90 s (hyper-util's client default; an upstream that closes
/// idle connections sooner is handled by the retry on a closed connection).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per upstream address; more are closed when they come back.
pub(crate) const MAX_IDLE: usize = 256;
/// Pooled connections tried for one request before a new one is made (each failed try closed one).
const MAX_STALE_TRIES: usize = 8;

type Sender = SendRequest<Full<Bytes>>;

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
    idle: Vec<(Sender, Instant)>,
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

    /// An idle connection to `authority` and its `Host` value (`None` connection when none is idle).
    fn checkout(&self, authority: &Authority) -> (Option<Sender>, HeaderValue) {
        let mut pool = self.lock();
        let hosts = &mut pool.hosts;
        let host = match hosts.iter().position(|h| h.authority == *authority) {
            Some(i) => &mut hosts[i],
            None => {
                let host_header = HeaderValue::from_str(authority.as_str())
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
        while let Some((sender, since)) = host.idle.pop() {
            if !sender.is_closed() && now.duration_since(since) < self.idle_timeout {
                return (Some(sender), host.host_header.clone());
            }
        }
        (None, host.host_header.clone())
    }

    /// Puts a connection whose last response has ended back in the pool, and starts the reaper when it is the
    /// only idle one.
    fn checkin(self: &Arc<Self>, authority: &Authority, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut pool = self.lock();
        let Some(host) = pool.hosts.iter_mut().find(|h| h.authority == *authority) else {
            return;
        };
        if host.idle.len() >= MAX_IDLE {
            host.idle.retain(|(s, _)| !s.is_closed());
            if host.idle.len() >= MAX_IDLE {
                return; // dropped: the connection closes
            }
        }
        host.idle.push((sender, Instant::now()));
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
            host.idle.retain(|(s, since)| {
                !s.is_closed() && now.duration_since(*since) < self.idle_timeout
            });
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

    /// Sends `req` (its URI absolute: `http://host:port/path`) and returns the response with its body boxed;
    /// the connection returns to the pool when that body ends.
    ///
    /// Errors: [`UpstreamError::Connect`] when no connection could be made (nothing was sent),
    /// [`UpstreamError::Protocol`] when the exchange failed after the request may have left. The caller bounds
    /// the whole call in time.
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Body>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        let authority =
            parts.uri.authority().cloned().ok_or_else(|| {
                UpstreamError::Protocol("the upstream URL has no host".to_owned())
            })?;
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
        let mut req = Request::from_parts(parts, body);
        let mut tries = 0;
        loop {
            let (idle, host_header) = self.checkout(&authority);
            if tries == 0 {
                req.headers_mut().entry(header::HOST).or_insert(host_header);
            }
            let (mut sender, reused) = match idle {
                Some(sender) if tries < MAX_STALE_TRIES => (sender, true),
                // Boxed: the connect and handshake state would otherwise sit in every request's future, which
                // is moved whole at each await above it (issue 17).
                _ => (Box::pin(self.connect(&authority)).await?, false),
            };
            tries += 1;
            if reused && sender.ready().await.is_err() {
                continue; // closed while idle: nothing was sent on it
            }
            match sender.try_send_request(req).await {
                // A body already complete (`Content-Length: 0`, a 202): the connection is free now.
                Ok(resp) if resp.body().is_end_stream() => {
                    self.checkin(&authority, sender);
                    return Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()));
                }
                Ok(resp) => {
                    let client = Arc::clone(self);
                    return Ok(resp.map(|incoming| {
                        Returning {
                            inner: incoming,
                            back: Some((client, authority, sender)),
                        }
                        .boxed_unsync()
                    }));
                }
                Err(mut err) => match err.take_message() {
                    // Not sent (the connection closed under us): try again on another connection.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(protocol(&err.into_error())),
                },
            }
        }
    }

    /// A new connection to `authority` (`TCP_NODELAY`), its connection task spawned.
    async fn connect(&self, authority: &Authority) -> Result<Sender, UpstreamError> {
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
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(format!("connecting to {authority}: {e}")))?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "Upstream connection ended with an error.");
            }
        });
        Ok(sender)
    }
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

/// The error and its sources, one line.
fn protocol(err: &hyper::Error) -> UpstreamError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    UpstreamError::Protocol(message)
}

pin_project_lite::pin_project! {
    /// A response body that gives its connection back to the pool when it has been read to the end.
    struct Returning {
        #[pin]
        inner: Incoming,
        back: Option<(Arc<Client>, Authority, Sender)>,
    }
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                if let Some((client, authority, sender)) = this.back.take() {
                    client.checkin(&authority, sender);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.back.take();
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                // hyper's server stops polling a body that says it has ended (`Content-Length` reached), so
                // the end is seen here, not only as a `None`.
                if this.inner.is_end_stream() {
                    if let Some((client, authority, sender)) = this.back.take() {
                        client.checkin(&authority, sender);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;
    use http::StatusCode;

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
                    let service = service_fn(|req: Request<Incoming>| async move {
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
}
