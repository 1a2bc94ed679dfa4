//! The HTTP upstream: a pooled HTTP/1.1 client (`h1`: our own, keep-alive, `TCP_NODELAY`) in
//! front of a pool of MCP server endpoints (`pool.rs`; one for a single `--upstream`), each serving Streamable
//! HTTP or the 2024-11-05 HTTP+SSE transport.
//!
//! A request follows its [`Route`]: pinned to the endpoint that holds its session, or balanced. A balanced
//! request whose connection could not be made is sent once more to another endpoint: a connect failure means
//! not one byte of it left, so even a non-idempotent request is safe to resend (a timeout or a broken
//! connection after the send is never retried: the request may have run). In a pool every response carries
//! the [`EndpointRef`] that answered in its extensions, for the session table (a single endpoint needs none:
//! a session without a home goes to the only endpoint there is).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use lifeline_mcp::{ProbeOptions, ProbeReport, Target};
use url::Url;

use super::pool::{EndpointRef, Outcome, Pool};
use super::{Endpoint, Forward, Forwarded, Route, UpstreamError};
use crate::body::{Body, Guarded};
use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::timer::Timers;

mod h1;

/// Bound on the `DELETE` the gateway sends for an abandoned session.
const END_SESSION_TIMEOUT: Duration = Duration::from_secs(5);

/// MCP server endpoints reached over plain HTTP.
#[derive(Debug)]
pub struct HttpUpstream {
    client: Arc<h1::Client>,
    pool: Arc<Pool>,
    /// Whether the pool has more than one entry or a DNS entry: only then are outstanding requests counted
    /// (the balancer's input) and failed connects retried.
    multi: bool,
    timeout: Duration,
    /// Reused timers for the per-request timeout (`timer.rs`).
    timers: Arc<Timers>,
    extra_headers: HeaderMap,
}

impl HttpUpstream {
    /// A client for `cfg`, with metrics of its own (not exported). Makes no connection yet. Must be called
    /// inside a tokio runtime.
    pub fn new(cfg: &UpstreamConfig) -> HttpUpstream {
        HttpUpstream::with_metrics(cfg, Arc::new(Metrics::new()))
    }

    /// A client for `cfg` whose per-endpoint series go to `metrics`.
    pub(crate) fn with_metrics(cfg: &UpstreamConfig, metrics: Arc<Metrics>) -> HttpUpstream {
        let client = h1::Client::new(cfg.timeout);
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            extra_headers.append(name.clone(), value.clone());
        }
        // A single upstream serving both transports (`upstream` + `upstream_sse`): one endpoint, two URLs.
        let extra_sse = cfg.mcp_url.as_ref().and(cfg.sse_url.as_ref());
        let pool = Pool::new(&cfg.pool, extra_sse, metrics);
        HttpUpstream {
            client,
            multi: cfg.pool.is_pool(),
            pool: Arc::new(pool),
            timeout: cfg.timeout,
            timers: Timers::new(),
            extra_headers,
        }
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Whether this is a pool in the full sense (`PoolConfig::is_pool`).
    pub(crate) fn is_pool(&self) -> bool {
        self.multi
    }

    pub(crate) async fn forward(&self, mut req: Forward) -> Result<Response<Body>, UpstreamError> {
        let first = match &req.route {
            Route::Pinned(ep) => ep.clone(),
            Route::Balanced => self.pool.pick(None).ok_or_else(|| {
                UpstreamError::Connect("the upstream pool has no endpoint".to_owned())
            })?,
        };
        match self.send_to(&first, &mut req).await {
            // A balanced request in a pool whose connection could not be made: not one byte of it left, so it
            // goes once more to another endpoint. `send_to` left the request whole for this, so nothing is
            // copied up front for a retry that is rare (the copy, a boxed future and its moves cost the pool's
            // balanced requests about 3,000 instructions each: issue 15).
            Err(UpstreamError::Connect(msg))
                if self.multi && matches!(req.route, Route::Balanced) =>
            {
                match self.pool.pick(Some(&first)) {
                    Some(second) => {
                        tracing::debug!(failed = %first.label(), retry = %second.label(), "Connect failed; sending to another endpoint.");
                        self.send_to(&second, &mut req).await
                    }
                    None => Err(UpstreamError::Connect(msg)),
                }
            }
            other => other,
        }
    }

    /// Sends `req` to `ep`, recording the outcome for the endpoint's health. On [`UpstreamError::Connect`] the
    /// request is left whole (nothing was sent), for [`forward`](Self::forward)'s retry; otherwise its fields
    /// are taken (`h1::Client::send`).
    async fn send_to(
        &self,
        ep: &EndpointRef,
        req: &mut Forward,
    ) -> Result<Response<Body>, UpstreamError> {
        let uri = match &req.endpoint {
            Endpoint::Mcp => {
                &ep.0
                    .mcp
                    .as_ref()
                    .ok_or(UpstreamError::NotServed("Streamable HTTP"))?
                    .1
            }
            Endpoint::Sse => {
                &ep.0
                    .sse
                    .as_ref()
                    .ok_or(UpstreamError::NotServed("HTTP+SSE"))?
                    .1
            }
            Endpoint::Message(uri) => uri,
        };
        for (name, value) in &self.extra_headers {
            req.headers.insert(name.clone(), value.clone());
            // The operator's field (`--upstream-header`) wins over the gateway's `X-Forwarded-*` of that name.
            req.forwarded.clear(name.as_str());
        }
        // A single endpoint needs no load figure and no handle in the response (no allocation on the hot path).
        let outstanding = if self.multi {
            Some(ep.0.start())
        } else {
            ep.0.metrics.requests.inc();
            None
        };
        // Not through `Self::send`: one async layer less in a future every request moves (issue 17).
        let sent = self.client.send(
            &req.method,
            uri,
            &mut req.headers,
            &req.body,
            &req.forwarded,
        );
        let result = self
            .timers
            .timeout(self.timeout, sent)
            .await
            .unwrap_or(Err(UpstreamError::Timeout(self.timeout)));
        self.pool.record(
            &ep.0,
            match &result {
                Ok(resp) => Outcome::Status(resp.status().as_u16()),
                Err(err) => Outcome::Failed(err.reason()),
            },
        );
        let mut resp = result?;
        let Some(outstanding) = outstanding else {
            return Ok(resp);
        };
        resp.extensions_mut().insert(ep.clone());
        // Outstanding until the response body ends: a stream is load.
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            parts,
            Guarded::new(body, outstanding).boxed_unsync(),
        ))
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        match self
            .timers
            .timeout(timeout, self.client.request(request, &Forwarded::default()))
            .await
        {
            Err(_) => Err(UpstreamError::Timeout(timeout)),
            Ok(result) => result,
        }
    }

    /// Sends the `DELETE` that ends `session_id` to `home` (the endpoint that holds it; the first endpoint
    /// when unknown).
    pub(crate) async fn end_session(
        &self,
        session_id: &str,
        home: Option<&EndpointRef>,
    ) -> Result<StatusCode, UpstreamError> {
        let ep = match home {
            Some(ep) => ep.clone(),
            None => self
                .pool
                .members()
                .first()
                .map(|e| EndpointRef(Arc::clone(e)))
                .ok_or_else(|| {
                    UpstreamError::Connect("the upstream pool has no endpoint".to_owned())
                })?,
        };
        let (_, uri) =
            ep.0.mcp
                .as_ref()
                .ok_or(UpstreamError::NotServed("Streamable HTTP"))?;
        let mut request = Request::builder()
            .method(Method::DELETE)
            .uri(uri.clone())
            .header("mcp-session-id", session_id)
            .body(Full::new(Bytes::new()))
            .map_err(|e| UpstreamError::Protocol(format!("building the DELETE: {e}")))?;
        for (name, value) in &self.extra_headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let resp = self
            .send(request, END_SESSION_TIMEOUT.min(self.timeout))
            .await?;
        let status = resp.status();
        // Drain the (small) body so the connection goes back to the pool.
        let _ = tokio::time::timeout(END_SESSION_TIMEOUT, resp.into_body().collect()).await;
        Ok(status)
    }

    /// Probes the first endpoint (the readiness probe of a single upstream; a pool's endpoints are probed by
    /// the pool's watcher).
    pub(crate) async fn probe(&self, opts: &ProbeOptions) -> ProbeReport {
        let members = self.pool.members();
        let url = members
            .first()
            .and_then(|ep| ep.mcp.as_ref().or(ep.sse.as_ref()))
            .map(|(u, _)| u.clone())
            .unwrap_or_else(|| Url::parse("http://127.0.0.1/").expect("a constant URL parses"));
        lifeline_mcp::probe(&Target::Http(url), opts).await
    }

    /// Resolves the message endpoint announced on the SSE stream `home` serves; `None` when it does not resolve
    /// to that endpoint's own origin.
    pub(crate) fn resolve_message_endpoint(
        &self,
        announced: &str,
        home: Option<&EndpointRef>,
    ) -> Option<Uri> {
        let members;
        let ep = match home {
            Some(ep) => &ep.0,
            None => {
                members = self.pool.members();
                members.first()?
            }
        };
        let (sse_url, _) = ep.sse.as_ref()?;
        let resolved = sse_url.join(announced.trim()).ok()?;
        if resolved.origin() != sse_url.origin() {
            return None;
        }
        resolved.as_str().parse().ok()
    }

    /// The host and port a request for `endpoint` goes to (`server.address`/`server.port` of its span): the
    /// first endpoint's for a pool (the span does not know the balancer's choice yet).
    pub(crate) fn authority(&self, endpoint: &Endpoint) -> (Option<String>, Option<u16>) {
        let members = self.pool.members();
        let first = members.first();
        let uri = match endpoint {
            Endpoint::Mcp => first.and_then(|e| e.mcp.as_ref()).map(|(_, u)| u),
            Endpoint::Sse => first.and_then(|e| e.sse.as_ref()).map(|(_, u)| u),
            Endpoint::Message(u) => Some(u),
        };
        (
            uri.and_then(Uri::host).map(str::to_owned),
            uri.and_then(Uri::port_u16),
        )
    }

    pub(crate) fn serves_mcp(&self) -> bool {
        self.pool
            .config()
            .endpoints
            .first()
            .is_some_and(|e| !e.url.path().trim_end_matches('/').ends_with("/sse"))
    }

    pub(crate) fn serves_sse(&self) -> bool {
        self.pool.members().first().is_some_and(|e| e.sse.is_some())
            || self
                .pool
                .config()
                .endpoints
                .first()
                .is_some_and(|e| e.url.path().trim_end_matches('/').ends_with("/sse"))
    }

    pub(crate) fn label(&self) -> String {
        let members = self.pool.members();
        let one = |ep: &super::pool::PoolEndpoint| match (&ep.mcp, &ep.sse) {
            (Some((m, _)), Some((s, _))) => format!("{m} (+ {s})"),
            (Some((m, _)), None) => m.to_string(),
            (None, Some((s, _))) => s.to_string(),
            (None, None) => "(none)".to_owned(),
        };
        match (self.multi, members.first()) {
            (false, Some(ep)) => one(ep),
            (_, None) if !self.multi => "(none)".to_owned(),
            _ => {
                let entries: Vec<&str> = self
                    .pool
                    .config()
                    .endpoints
                    .iter()
                    .map(|e| e.url.as_str())
                    .collect();
                format!(
                    "pool of {} endpoints ({})",
                    members.len(),
                    entries.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(mcp: Option<&str>, sse: Option<&str>) -> HttpUpstream {
        let raw = crate::config::RawConfig {
            upstream: mcp.or(sse).map(|u| vec![u.to_owned()]),
            upstream_sse: sse.filter(|_| mcp.is_some()).map(str::to_owned),
            upstream_timeout: Some("1s".to_owned()),
            ..crate::config::RawConfig::default()
        };
        let cfg = raw
            .validate(&|_| Err(std::io::ErrorKind::NotFound.into()))
            .expect("valid");
        HttpUpstream::new(&cfg.upstream)
    }

    #[tokio::test]
    async fn message_endpoints_resolve_only_to_the_upstream_origin() {
        let u = upstream(None, Some("http://127.0.0.1:3001/sse"));
        assert_eq!(
            u.resolve_message_endpoint("/message?sessionId=abc", None)
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://127.0.0.1:3001/message?sessionId=abc")
        );
        assert_eq!(
            u.resolve_message_endpoint("http://127.0.0.1:3001/messages/?session_id=1", None)
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://127.0.0.1:3001/messages/?session_id=1")
        );
        assert!(u
            .resolve_message_endpoint("http://evil.example.com/x", None)
            .is_none());
        assert!(upstream(Some("http://127.0.0.1:1/mcp"), None)
            .resolve_message_endpoint("/m", None)
            .is_none());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let u = upstream(Some(&format!("http://127.0.0.1:{port}/mcp")), None);
        let err = u
            .forward(Forward {
                method: Method::POST,
                endpoint: Endpoint::Mcp,
                headers: HeaderMap::new(),
                body: Bytes::from_static(b"{}"),
                route: Route::Balanced,
                forwarded: Forwarded::default(),
            })
            .await
            .expect_err("nothing listens");
        assert_eq!(err.reason(), "connect", "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    }
}
