//! The prober's HTTP/1.1 client: one connection at a time to the target's origin, with DNS, connect, TLS and
//! first-byte timings, certificate inspection, and bounded reads of JSON and SSE replies.
//!
//! Our own (tokio + tokio-rustls + hyper's client connection) rather than reqwest because a probe must time each
//! connection phase and see the certificate even when verification fails; a pooled client hides both.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use lifeline_core::telemetry::context;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use url::Url;

use super::config::Secret;
use super::ctx::{ms, Ctx};
use super::oauth::OAuthClient;
use super::report::{Failure, Phase};
use crate::jsonrpc::{self, Message, RpcError};
use crate::sse;
use crate::tls::{self, TlsSetup};
use crate::verdict::{Reason, Warning};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One HTTP/1.1 connection; its driver task is aborted when the connection is dropped.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
    fresh: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// What a POSTed JSON-RPC message got back.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// A JSON-RPC response to our id (in a JSON body or on the SSE stream).
    Rpc {
        status: StatusCode,
        headers: HeaderMap,
        outcome: Result<Value, RpcError>,
    },
    /// Anything else: a status with a body that is not our response.
    Http {
        status: StatusCode,
        headers: HeaderMap,
        body: Body,
    },
}

/// A non-response body, classified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    Empty,
    Html,
    /// Valid JSON that is not a JSON-RPC response to our id (e.g. `{"status":"ok"}` or an error without id).
    Json(Value),
    /// Bytes that are neither JSON nor HTML; a short printable prefix is kept.
    Text(String),
}

impl Body {
    /// The JSON-RPC error inside a JSON body that carries one without our id (e.g. `"id": null`).
    pub(crate) fn rpc_error(&self) -> Option<RpcError> {
        match self {
            Body::Json(v) => match Message::parse(v.clone()) {
                Ok(Message::Response {
                    outcome: Err(e), ..
                }) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The failure for an HTTP answer that is neither a JSON-RPC response nor a status the step expects:
/// `http_status` with the status and what the body was (an HTML page, a JSON or text snippet, or nothing).
pub(crate) fn http_status_failure(status: StatusCode, body: &Body, phase: Phase) -> Failure {
    let detail = match body {
        Body::Html => " with an HTML page".to_owned(),
        Body::Json(v) => format!(" with {}", snippet(&v.to_string())),
        Body::Text(t) => format!(" with {}", snippet(t)),
        Body::Empty => String::new(),
    };
    Failure::new(
        Reason::HttpStatus,
        format!("HTTP {}{detail}", status.as_u16()),
    )
    .in_phase(phase)
    .with_status(status.as_u16())
}

pub(crate) struct HttpClient {
    pub(crate) url: Url,
    tls: Option<TlsSetup>,
    conn: Option<Conn>,
    extra_headers: HeaderMap,
    connected_once: bool,
    first_request_done: bool,
    /// The OAuth client whose token this client presents (`None` for anonymous clients).
    oauth: Option<Arc<OAuthClient>>,
    /// The target the token is for (the `resource`): the probed URL, also for the HTTP+SSE sibling.
    resource: Url,
    /// The OAuth token currently sent.
    token: Option<Secret>,
}

impl HttpClient {
    /// A client for `url`'s origin. Errors only for a bad `--ca-file` or a URL that is not http(s).
    pub(crate) fn new(url: Url, ctx: &Ctx<'_>) -> Result<HttpClient, Failure> {
        let tls = match url.scheme() {
            "https" => Some(
                TlsSetup::new(&ctx.opts.extra_roots_pem)
                    .map_err(|e| Failure::new(Reason::TlsFailed, e.to_string()))?,
            ),
            "http" => None,
            other => {
                return Err(Failure::new(
                    Reason::ProtocolError,
                    format!("unsupported URL scheme {other:?} (use http or https)"),
                ))
            }
        };
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &ctx.opts.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Failure::new(
                    Reason::ProtocolError,
                    format!("invalid header name {name:?}"),
                )
            })?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                Failure::new(
                    Reason::ProtocolError,
                    format!("invalid value for header {name}"),
                )
            })?;
            value.set_sensitive(true);
            extra_headers.append(name, value);
        }
        let oauth = ctx.opts.oauth.clone();
        if let Some(token) = ctx.opts.bearer_token.as_ref().filter(|_| oauth.is_none()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| Failure::new(Reason::ProtocolError, "invalid bearer token"))?;
            value.set_sensitive(true);
            extra_headers.insert(http::header::AUTHORIZATION, value);
        }
        Ok(HttpClient {
            resource: url.clone(),
            url,
            tls,
            conn: None,
            extra_headers,
            connected_once: false,
            first_request_done: false,
            oauth,
            token: None,
        })
    }

    /// Puts the OAuth token for the target on the client before its first request, when the cache has one or
    /// the token endpoint is known (see `OAuthClient::token`). Without an OAuth client, does nothing.
    pub(crate) async fn prime_token(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
        let Some(oauth) = self.oauth.clone() else {
            return Ok(());
        };
        if let Some(token) = oauth.token(ctx, &self.resource).await? {
            self.set_token(token)?;
        }
        Ok(())
    }

    fn set_token(&mut self, token: Secret) -> Result<(), Failure> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                Failure::new(
                    Reason::AuthServerError,
                    "the access token is not a valid header value",
                )
                .in_phase(Phase::Token)
            })?;
        value.set_sensitive(true);
        self.extra_headers
            .insert(http::header::AUTHORIZATION, value);
        self.token = Some(token);
        Ok(())
    }

    /// A client for another URL that sends none of the probe's credentials (for documents on other origins).
    pub(crate) fn anonymous(url: Url, ctx: &Ctx<'_>) -> Result<HttpClient, Failure> {
        let mut client = HttpClient::new(url, ctx)?;
        client.extra_headers.clear();
        client.oauth = None;
        client.connected_once = true;
        client.first_request_done = true;
        Ok(client)
    }

    /// A second client to the same origin with the same credentials, whose connections record no timings (the
    /// HTTP+SSE transport POSTs on one connection while its stream holds another).
    pub(crate) fn sibling(&self, url: Url) -> HttpClient {
        HttpClient {
            url,
            tls: self.tls.as_ref().map(TlsSetup::clone_config),
            conn: None,
            extra_headers: self.extra_headers.clone(),
            connected_once: true,
            first_request_done: true,
            oauth: self.oauth.clone(),
            resource: self.resource.clone(),
            token: self.token.clone(),
        }
    }

    /// Opens a new connection to the origin. The first one records DNS, connect and TLS timings and the
    /// certificate; later ones (a reconnect, the HTTP+SSE stream's second connection) do not.
    pub(crate) async fn connect(&mut self, ctx: &mut Ctx<'_>) -> Result<Conn, Failure> {
        let record = !self.connected_once;
        self.connected_once = true;
        let host = self
            .url
            .host_str()
            .ok_or_else(|| Failure::new(Reason::DnsFailed, "URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = self.url.port_or_known_default().unwrap_or(80);

        let t = ctx.clock(Phase::Dns);
        let addrs: Vec<_> = ctx
            .bounded(Phase::Dns, ctx.opts.timeouts.dns, async {
                tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map(|it| it.collect::<Vec<_>>())
                    .map_err(|e| {
                        Failure::new(Reason::DnsFailed, format!("cannot resolve {host}: {e}"))
                            .in_phase(Phase::Dns)
                    })
            })
            .await?;
        if record {
            ctx.time(Phase::Dns, t);
        }
        if addrs.is_empty() {
            return Err(
                Failure::new(Reason::DnsFailed, format!("{host} has no address"))
                    .in_phase(Phase::Dns),
            );
        }

        let t = ctx.clock(Phase::Connect);
        let tcp = ctx
            .bounded(Phase::Connect, ctx.opts.timeouts.connect, async {
                let mut last = None;
                for addr in &addrs {
                    match TcpStream::connect(addr).await {
                        Ok(s) => return Ok(s),
                        Err(e) => last = Some((addr, e)),
                    }
                }
                let (addr, e) = last.expect("addrs is not empty, so at least one attempt failed");
                Err(Failure::new(
                    Reason::ConnectRefused,
                    format!("cannot connect to {addr}: {e}"),
                )
                .in_phase(Phase::Connect))
            })
            .await?;
        let _ = tcp.set_nodelay(true);
        if record {
            ctx.time(Phase::Connect, t);
        }

        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let t = ctx.clock(Phase::Tls);
                let server_name =
                    rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                        Failure::new(
                            Reason::TlsFailed,
                            format!("{host} is not a valid TLS server name"),
                        )
                    })?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let result = ctx
                    .bounded(Phase::Tls, ctx.opts.timeouts.tls, async {
                        connector.connect(server_name, tcp).await.map_err(|e| {
                            Failure::new(Reason::TlsFailed, e.to_string()).in_phase(Phase::Tls)
                        })
                    })
                    .await;
                let now_unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let seen = tls.seen();
                if record {
                    ctx.time(Phase::Tls, t);
                    if let Some(seen) = &seen {
                        let mut info = tls::inspect(&seen.leaf, now_unix);
                        info.valid = seen.error.is_none();
                        info.error = seen.error.as_ref().map(tls::describe);
                        ctx.tls = Some(info);
                    }
                }
                match result {
                    Ok(stream) => {
                        if record {
                            if let (Some(info), Some(v)) =
                                (ctx.tls.as_mut(), stream.get_ref().1.protocol_version())
                            {
                                info.version = Some(format!("{v:?}"));
                            }
                        }
                        Box::new(stream)
                    }
                    Err(mut failure) => {
                        if failure.reason == Reason::TlsFailed {
                            let error = seen.as_ref().and_then(|s| s.error.as_ref());
                            failure.reason = tls::reason_for(error);
                            if let Some(e) = error {
                                failure.message = tls::describe(e);
                            }
                        }
                        return Err(failure);
                    }
                }
            }
        };

        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Failure::new(Reason::ProtocolError, format!("HTTP handshake: {e}")))?;
        // The driver lives exactly as long as the `Conn` (aborted in `Drop`).
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            driver,
            fresh: true,
        })
    }

    /// Builds a request to `url` with the probe's extra headers (`--header`, bearer token) and `headers`.
    pub(crate) fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Failure> {
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host);
        for (name, value) in &self.extra_headers {
            builder = builder.header(name, value);
        }
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        builder
            .body(Full::new(body))
            .map_err(|e| Failure::new(Reason::ProtocolError, format!("cannot build request: {e}")))
    }

    /// Sends a request on the current connection (opening one when needed) and waits for the response head.
    /// A reused connection the server has closed is reopened once.
    ///
    /// With an OAuth client, a 401 is answered once per probe as a spec client does (2025-11-25
    /// `basic/authorization` §Authorization Flow Steps): a token is obtained (discovery from the challenge, or a
    /// forced refresh of the token the server refused) and the request is sent again with it. A 401 to a token
    /// obtained during this probe is returned as is (the caller reports `auth_failed`).
    pub(crate) async fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        build: impl Fn(&Self) -> Result<Request<Full<Bytes>>, Failure>,
    ) -> Result<Response<Incoming>, Failure> {
        let resp = self.send_once(ctx, phase, &build).await?;
        if resp.status() != StatusCode::UNAUTHORIZED
            || ctx.auth_retried
            || (ctx.token_fetched && self.token.is_some())
        {
            return Ok(resp);
        }
        let Some(oauth) = self.oauth.clone() else {
            return Ok(resp);
        };
        ctx.auth_retried = true;
        let headers = resp.headers().clone();
        drop(resp);
        // The 401's body was not read: this connection cannot carry the retry.
        self.reset();
        let token = oauth
            .after_challenge(ctx, &self.resource, self.token.as_ref(), &headers)
            .await?;
        self.set_token(token)?;
        self.send_once(ctx, phase, &build).await
    }

    /// [`HttpClient::send`] without the OAuth retry: for the calls that obtain a token (discovery, the token
    /// request), which must not recurse into it.
    pub(crate) async fn send_once(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        build: &impl Fn(&Self) -> Result<Request<Full<Bytes>>, Failure>,
    ) -> Result<Response<Incoming>, Failure> {
        if self.extra_headers.contains_key(http::header::AUTHORIZATION) {
            ctx.credential_sent = true;
        }
        for attempt in 0..2 {
            let needs_new = match &mut self.conn {
                Some(conn) => conn.sender.ready().await.is_err(),
                None => true,
            };
            if needs_new {
                self.conn = None;
                let conn = self.connect(ctx).await?;
                self.conn = Some(conn);
            }
            let mut request = build(self)?;
            if let Some(w3c) = ctx.outgoing() {
                // The phase's span as the parent of whatever serves this request (W3C Trace Context headers).
                for (name, value) in [
                    (context::TRACEPARENT, &w3c.traceparent),
                    (context::TRACESTATE, &w3c.tracestate),
                ] {
                    if let (false, Ok(v)) = (value.is_empty(), HeaderValue::from_str(value)) {
                        request.headers_mut().insert(name, v);
                    }
                }
            }
            let first = !self.first_request_done;
            self.first_request_done = true;
            let conn = self
                .conn
                .as_mut()
                .expect("a connection was just ensured above");
            let fresh = std::mem::replace(&mut conn.fresh, false);
            let t = Instant::now();
            let timeout_phase = if first { Phase::FirstByte } else { phase };
            let result = ctx
                .bounded(timeout_phase, ctx.opts.timeouts.step, async {
                    conn.sender.send_request(request).await.map_err(|e| {
                        let what = if e.is_incomplete_message() || e.is_canceled() {
                            "the server closed the connection without a response".to_owned()
                        } else {
                            format!("HTTP error: {e}")
                        };
                        Failure::new(Reason::ProtocolError, what).in_phase(phase)
                    })
                })
                .await;
            if first {
                ctx.timings.add(Phase::FirstByte, ms(t.elapsed()));
            }
            match result {
                Ok(resp) => return Ok(resp),
                // A keep-alive connection the server closed between requests: reconnect once.
                Err(f) if !fresh && attempt == 0 && f.reason == Reason::ProtocolError => {
                    self.conn = None;
                }
                Err(f) => {
                    self.conn = None;
                    return Err(f);
                }
            }
        }
        Err(Failure::new(
            Reason::ProtocolError,
            "the server keeps closing the connection",
        )
        .in_phase(phase))
    }

    /// Drops the current connection (after an unfinished body, the connection cannot be reused).
    pub(crate) fn reset(&mut self) {
        self.conn = None;
    }

    /// POSTs one JSON-RPC message to `url` and classifies the reply. For a request (`id` is `Some`), reads a JSON
    /// body or an SSE stream until the response to `id`; for a notification, reads at most a short body.
    pub(crate) async fn post_rpc(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        url: &Url,
        headers: &[(&str, String)],
        body: Vec<u8>,
        id: Option<i64>,
    ) -> Result<Exchange, Failure> {
        let body = Bytes::from(ctx.traced(body));
        let mut all_headers: Vec<(&str, String)> = vec![
            ("content-type", "application/json".to_owned()),
            ("accept", "application/json, text/event-stream".to_owned()),
        ];
        all_headers.extend(headers.iter().cloned());
        let resp = self
            .send(ctx, phase, |c| {
                c.request(Method::POST, url, &all_headers, body.clone())
            })
            .await?;
        self.read_reply(ctx, phase, resp, id).await
    }

    /// Classifies a response: our JSON-RPC response (JSON or SSE), or a status with a classified body.
    pub(crate) async fn read_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        phase: Phase,
        resp: Response<Incoming>,
        id: Option<i64>,
    ) -> Result<Exchange, Failure> {
        let (parts, incoming) = resp.into_parts();
        let status = parts.status;
        let headers = parts.headers;
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let limit = ctx.opts.max_reply_bytes;

        if content_type.starts_with("text/event-stream") && status.is_success() {
            if !has_no_buffering(&headers) {
                ctx.warn(Warning::MissingXAccelBuffering);
            }
            let Some(id) = id else {
                // A notification answered with a stream: nothing to wait for.
                self.reset();
                return Ok(Exchange::Http {
                    status,
                    headers,
                    body: Body::Empty,
                });
            };
            let outcome = read_sse_response(ctx, phase, incoming, id, limit).await;
            // The stream may stay open after our response; this connection is done either way.
            self.reset();
            return outcome.map(|outcome| Exchange::Rpc {
                status,
                headers,
                outcome,
            });
        }

        let bytes = read_body(ctx, phase, incoming, limit)
            .await
            .inspect_err(|_| self.reset())?;
        let body = classify_body(&content_type, &bytes);
        if let (Some(id), Body::Json(value)) = (id, &body) {
            match Message::parse(value.clone()) {
                Ok(Message::Response { id: rid, outcome }) if jsonrpc::id_matches(&rid, id) => {
                    return Ok(Exchange::Rpc {
                        status,
                        headers,
                        outcome,
                    });
                }
                Err(jsonrpc::MessageError::Malformed(what)) if status.is_success() => {
                    return Err(Failure::new(
                        Reason::ProtocolError,
                        format!("malformed JSON-RPC reply: {what}"),
                    )
                    .in_phase(phase)
                    .with_status(status.as_u16()));
                }
                _ => {}
            }
        }
        if status.is_success() && id.is_some() {
            // A 2xx to a request must carry our response (JSON or SSE): say what it carried instead.
            return Err(match &body {
                Body::Html => Failure::new(
                    Reason::NotMcp,
                    "the server answered with an HTML page, not JSON-RPC",
                ),
                Body::Json(_) => Failure::new(
                    Reason::NotMcp,
                    "the server answered with JSON that is not a JSON-RPC response to the request",
                ),
                Body::Empty => Failure::new(
                    Reason::ProtocolError,
                    "the server answered a request with an empty body",
                ),
                Body::Text(t) if looks_like_json(t) => Failure::new(
                    Reason::ProtocolError,
                    format!("invalid JSON in the reply: {}", snippet(t)),
                ),
                Body::Text(t) => Failure::new(
                    Reason::NotMcp,
                    format!("the reply is not JSON-RPC: {}", snippet(t)),
                ),
            }
            .in_phase(phase)
            .with_status(status.as_u16()));
        }
        Ok(Exchange::Http {
            status,
            headers,
            body,
        })
    }
}

fn has_no_buffering(headers: &HeaderMap) -> bool {
    headers
        .get("x-accel-buffering")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("no"))
}

fn looks_like_json(t: &str) -> bool {
    let t = t.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

pub(crate) fn snippet(t: &str) -> String {
    let t: String = t.chars().filter(|c| !c.is_control()).take(80).collect();
    format!("{t:?}")
}

/// Reads a whole body, at most `limit` bytes; a larger one is a `protocol_error`, never buffered whole.
pub(crate) async fn read_body(
    ctx: &Ctx<'_>,
    phase: Phase,
    mut incoming: Incoming,
    limit: usize,
) -> Result<Bytes, Failure> {
    ctx.bounded(phase, ctx.opts.timeouts.step, async move {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| {
                Failure::new(Reason::ProtocolError, format!("reading the reply: {e}"))
                    .in_phase(phase)
            })?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > limit {
                    return Err(Failure::new(
                        Reason::ProtocolError,
                        format!("the reply is larger than {limit} bytes"),
                    )
                    .in_phase(phase));
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(buf.freeze())
    })
    .await
}

/// Classifies a non-streamed body by content type and content.
pub(crate) fn classify_body(content_type: &str, bytes: &[u8]) -> Body {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.is_empty() {
        return Body::Empty;
    }
    if content_type.starts_with("text/html")
        || trimmed.len() >= 5
            && (trimmed[..5].eq_ignore_ascii_case(b"<html")
                || trimmed[..5].eq_ignore_ascii_case(b"<!doc"))
    {
        return Body::Html;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Body::Json(v),
        Err(_) => Body::Text(String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned()),
    }
}

/// Reads SSE events until the JSON-RPC response to `id`, skipping notifications and server requests (the probe
/// declares no client capabilities, so it has nothing to answer them with), bounded by `limit` bytes in total.
pub(crate) async fn read_sse_response(
    ctx: &Ctx<'_>,
    phase: Phase,
    incoming: Incoming,
    id: i64,
    limit: usize,
) -> Result<Result<Value, RpcError>, Failure> {
    ctx.bounded(phase, ctx.opts.timeouts.step, async move {
        let mut reader = SseReader::new(incoming, limit);
        loop {
            let Some(event) = reader.next_event(limit, phase, too_large).await? else {
                return Err(Failure::new(
                    Reason::ProtocolError,
                    "the SSE stream ended without the response",
                )
                .in_phase(phase));
            };
            if let Some(outcome) = response_in_event(&event, id, phase)? {
                return Ok(outcome);
            }
        }
    })
    .await
}

/// An SSE response body read event by event through the plain [`sse::Parser`], counting what it reads.
pub(crate) struct SseReader {
    body: Incoming,
    parser: sse::Parser,
    /// Bytes read since the count was last reset; [`SseReader::next_event`] fails once they pass its `limit`.
    pub(crate) read: usize,
}

impl SseReader {
    /// A reader of `body` whose parser bounds one event to `max_event_bytes`.
    pub(crate) fn new(body: Incoming, max_event_bytes: usize) -> Self {
        SseReader {
            body,
            parser: sse::Parser::new(max_event_bytes),
            read: 0,
        }
    }

    /// The next event (comments are skipped), `Ok(None)` when the body ends first.
    ///
    /// Errors: `protocol_error` in `phase` when reading fails, or (built by `too_large`) when [`read`](Self::read)
    /// passes `limit` or one event passes the parser's bound.
    pub(crate) async fn next_event(
        &mut self,
        limit: usize,
        phase: Phase,
        too_large: fn(Phase, sse::TooLarge) -> Failure,
    ) -> Result<Option<sse::Event>, Failure> {
        loop {
            while let Some(item) = self.parser.next_item().map_err(|e| too_large(phase, e))? {
                if let sse::Item::Event(event) = item {
                    return Ok(Some(event));
                }
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| {
                Failure::new(
                    Reason::ProtocolError,
                    format!("reading the SSE stream: {e}"),
                )
                .in_phase(phase)
            })?;
            if let Some(data) = frame.data_ref() {
                self.read += data.len();
                if self.read > limit {
                    return Err(too_large(phase, sse::TooLarge(limit)));
                }
                self.parser.push(data).map_err(|e| too_large(phase, e))?;
            }
        }
    }
}

fn too_large(phase: Phase, e: sse::TooLarge) -> Failure {
    Failure::new(
        Reason::ProtocolError,
        format!("the SSE reply is too large: {e}"),
    )
    .in_phase(phase)
}

/// The response to `id` carried by one SSE event, if any. Non-`message` events and empty data (priming events
/// of 2025-11-25 `basic/transports` §Resumability) are skipped.
pub(crate) fn response_in_event(
    event: &sse::Event,
    id: i64,
    phase: Phase,
) -> Result<Option<Result<Value, RpcError>>, Failure> {
    if event.kind() != "message" || event.data.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(&event.data).map_err(|e| {
        Failure::new(
            Reason::ProtocolError,
            format!("SSE event data is not JSON: {e}"),
        )
        .in_phase(phase)
    })?;
    match Message::parse(value) {
        Ok(Message::Response { id: rid, outcome }) if jsonrpc::id_matches(&rid, id) => {
            Ok(Some(outcome))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            Err(Failure::new(Reason::ProtocolError, format!("SSE event: {e}")).in_phase(phase))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_bodies() {
        assert_eq!(classify_body("text/html", b"<h1>502</h1>"), Body::Html);
        assert_eq!(classify_body("", b"  <!DOCTYPE html><html>"), Body::Html);
        assert_eq!(classify_body("application/json", b""), Body::Empty);
        assert!(matches!(
            classify_body("application/json", b"{\"a\":1}"),
            Body::Json(_)
        ));
        assert!(matches!(
            classify_body("application/json", b"{\"a\":"),
            Body::Text(_)
        ));
    }
}
