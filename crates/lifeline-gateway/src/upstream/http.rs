//! The HTTP upstream: a pooled hyper client (HTTP/1.1, keep-alive, `TCP_NODELAY`) in front of one MCP server's
//! Streamable HTTP endpoint and/or its 2024-11-05 HTTP+SSE endpoints.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lifeline_mcp::{ProbeOptions, ProbeReport, Target};
use url::Url;

use super::{Endpoint, Forward, UpstreamError};
use crate::body::{Body, BoxError};
use crate::config::UpstreamConfig;

/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on the `DELETE` the gateway sends for an abandoned session.
const END_SESSION_TIMEOUT: Duration = Duration::from_secs(5);

/// An MCP server reached over plain HTTP.
#[derive(Debug)]
pub struct HttpUpstream {
    client: Client<HttpConnector, Full<Bytes>>,
    mcp: Option<(Url, Uri)>,
    sse: Option<(Url, Uri)>,
    timeout: Duration,
    extra_headers: HeaderMap,
}

impl HttpUpstream {
    /// A client for `cfg`. Makes no connection yet. Must be called inside a tokio runtime.
    pub fn new(cfg: &UpstreamConfig) -> HttpUpstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        connector.set_connect_timeout(Some(cfg.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let pair = |u: &Url| -> Option<(Url, Uri)> {
            u.as_str().parse::<Uri>().ok().map(|uri| (u.clone(), uri))
        };
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            extra_headers.append(name.clone(), value.clone());
        }
        HttpUpstream {
            client,
            mcp: cfg.mcp_url.as_ref().and_then(pair),
            sse: cfg.sse_url.as_ref().and_then(pair),
            timeout: cfg.timeout,
            extra_headers,
        }
    }

    pub(crate) async fn forward(&self, req: Forward) -> Result<Response<Body>, UpstreamError> {
        let uri = match req.endpoint {
            Endpoint::Mcp => self
                .mcp
                .as_ref()
                .ok_or(UpstreamError::NotServed("Streamable HTTP"))?
                .1
                .clone(),
            Endpoint::Sse => self
                .sse
                .as_ref()
                .ok_or(UpstreamError::NotServed("HTTP+SSE"))?
                .1
                .clone(),
            Endpoint::Message(uri) => uri,
        };
        let mut headers = req.headers;
        for (name, value) in &self.extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        if !req.body.is_empty() || req.method == Method::POST {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(req.body.len()));
        }
        let mut builder = Request::builder().method(req.method).uri(uri);
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        let request = builder
            .body(Full::new(req.body))
            .map_err(|e| UpstreamError::Protocol(format!("building the upstream request: {e}")))?;
        self.send(request, self.timeout).await
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(timeout)),
            Ok(Err(err)) => Err(classify(&err)),
            Ok(Ok(resp)) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())),
        }
    }

    pub(crate) async fn end_session(&self, session_id: &str) -> Result<StatusCode, UpstreamError> {
        let (_, uri) = self
            .mcp
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

    pub(crate) async fn probe(&self, opts: &ProbeOptions) -> ProbeReport {
        let url = self
            .mcp
            .as_ref()
            .or(self.sse.as_ref())
            .map(|(u, _)| u.clone())
            .unwrap_or_else(|| Url::parse("http://127.0.0.1/").expect("a constant URL parses"));
        lifeline_mcp::probe(&Target::Http(url), opts).await
    }

    pub(crate) fn resolve_message_endpoint(&self, announced: &str) -> Option<Uri> {
        let (sse_url, _) = self.sse.as_ref()?;
        let resolved = sse_url.join(announced.trim()).ok()?;
        if resolved.origin() != sse_url.origin() {
            return None;
        }
        resolved.as_str().parse().ok()
    }

    /// The host and port a request for `endpoint` goes to (`server.address`/`server.port` of its span).
    pub(crate) fn authority(&self, endpoint: &Endpoint) -> (Option<String>, Option<u16>) {
        let uri = match endpoint {
            Endpoint::Mcp => self.mcp.as_ref().map(|(_, u)| u),
            Endpoint::Sse => self.sse.as_ref().map(|(_, u)| u),
            Endpoint::Message(u) => Some(u),
        };
        (
            uri.and_then(Uri::host).map(str::to_owned),
            uri.and_then(Uri::port_u16),
        )
    }

    pub(crate) fn serves_mcp(&self) -> bool {
        self.mcp.is_some()
    }

    pub(crate) fn serves_sse(&self) -> bool {
        self.sse.is_some()
    }

    pub(crate) fn label(&self) -> String {
        match (&self.mcp, &self.sse) {
            (Some((m, _)), Some((s, _))) => format!("{m} (+ {s})"),
            (Some((m, _)), None) => m.to_string(),
            (None, Some((s, _))) => s.to_string(),
            (None, None) => "(none)".to_owned(),
        }
    }
}

fn classify(err: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_connect() {
        UpstreamError::Connect(message)
    } else {
        UpstreamError::Protocol(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(mcp: Option<&str>, sse: Option<&str>) -> HttpUpstream {
        HttpUpstream::new(&UpstreamConfig {
            mcp_url: mcp.map(|u| Url::parse(u).expect("url")),
            sse_url: sse.map(|u| Url::parse(u).expect("url")),
            timeout: Duration::from_secs(1),
            headers: Vec::new(),
        })
    }

    #[tokio::test]
    async fn message_endpoints_resolve_only_to_the_upstream_origin() {
        let u = upstream(None, Some("http://127.0.0.1:3001/sse"));
        assert_eq!(
            u.resolve_message_endpoint("/message?sessionId=abc")
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://127.0.0.1:3001/message?sessionId=abc")
        );
        assert_eq!(
            u.resolve_message_endpoint("http://127.0.0.1:3001/messages/?session_id=1")
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://127.0.0.1:3001/messages/?session_id=1")
        );
        assert!(u
            .resolve_message_endpoint("http://evil.example.com/x")
            .is_none());
        assert!(upstream(Some("http://127.0.0.1:1/mcp"), None)
            .resolve_message_endpoint("/m")
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
            })
            .await
            .expect_err("nothing listens");
        assert_eq!(err.reason(), "connect", "{err}");
        assert!(err.is_retryable());
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    }
}
