//! The upstream seam: what the proxy handlers need from "the MCP server behind the gateway", whatever carries
//! it: an HTTP server ([`HttpUpstream`]) or a stdio server run as child processes ([`StdioUpstream`], one per
//! legacy session), with the same four operations: forward one client request, end a session, probe
//! readiness, and say which client endpoints it can serve.
//!
//! The proxy buffers a request body (it is bounded) and hands the upstream a [`Forward`]; the upstream answers
//! with a streaming [`Body`], never buffered, so SSE passes through as it arrives.
//!
//! An HTTP upstream is a pool of endpoints (`pool.rs`): a [`Forward`]'s [`Route`] says whether the request may
//! go to any endpoint (balanced) or must go to the one holding its session ([`EndpointRef`], which the
//! session table keeps); the response says which endpoint answered (an [`EndpointRef`] in its extensions).

use std::time::Duration;

use ::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use lifeline_mcp::{ProbeOptions, ProbeReport};

use crate::body::Body;

mod http;
mod pool;
mod stdio;

pub use http::HttpUpstream;
pub use pool::EndpointRef;
pub(crate) use pool::{resolve_dns_entries, watch_pool, Pool, ProbeSummary};
pub(crate) use stdio::reload;
pub use stdio::StdioUpstream;

/// The MCP server behind the gateway.
// One value per gateway, behind an `Arc`: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Upstream {
    /// A Streamable HTTP and/or 2024-11-05 HTTP+SSE server reached over HTTP.
    Http(HttpUpstream),
    /// A stdio server the gateway runs itself (2025-11-25 `basic/transports` §stdio).
    Stdio(StdioUpstream),
}

/// Which upstream endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The Streamable HTTP MCP endpoint (POST, GET, DELETE).
    Mcp,
    /// The 2024-11-05 HTTP+SSE stream (GET).
    Sse,
    /// A 2024-11-05 message endpoint the upstream announced on an SSE stream (POST), already resolved with
    /// [`Upstream::resolve_message_endpoint`].
    Message(Uri),
}

/// One client request, as the proxy hands it to the upstream: headers already filtered at the edge (see
/// `edge::upstream_request_headers`), the body buffered and bounded.
#[derive(Debug)]
pub struct Forward {
    /// HTTP method.
    pub method: Method,
    /// Target endpoint.
    pub endpoint: Endpoint,
    /// Headers to send (the upstream adds its own credentials and `Host`).
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// Which endpoint of an HTTP pool may take it (a stdio upstream ignores it).
    pub route: Route,
    /// The `X-Forwarded-*` fields for an HTTP upstream; empty for the gateway's own requests.
    pub forwarded: Forwarded,
}

/// The `X-Forwarded-For`, `-Host` and `-Proto` fields the gateway adds to a client's request on its way to an HTTP
/// upstream (the de-facto proxy fields; RFC 7239 §1 standardises the same facts as `Forwarded`). Each one set
/// replaces the field of that name the client sent. Kept beside [`Forward::headers`], not in them: the HTTP client
/// writes them after the client's fields, where three inserts into the client's header map cost hashing and, often,
/// a rehash on every request (issue 17). Empty (the default) for requests the gateway makes itself.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// `X-Forwarded-For`: the client's value with the peer's address appended, else the peer's address.
    pub for_: Option<HeaderValue>,
    /// `X-Forwarded-Host`: the `Host` the client sent.
    pub host: Option<HeaderValue>,
    /// `X-Forwarded-Proto`: the scheme the client used (`http`: the gateway serves no TLS itself).
    pub proto: Option<HeaderValue>,
}

impl Forwarded {
    /// Whether the client's field `name` (lowercase, as `HeaderName::as_str` gives it) is replaced by one of these.
    pub(crate) fn replaces(&self, name: &str) -> bool {
        match name {
            "x-forwarded-for" => self.for_.is_some(),
            "x-forwarded-host" => self.host.is_some(),
            "x-forwarded-proto" => self.proto.is_some(),
            _ => false,
        }
    }

    /// The fields to write, as (lowercase name, value).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&'static str, &HeaderValue)> {
        [
            ("x-forwarded-for", self.for_.as_ref()),
            ("x-forwarded-proto", self.proto.as_ref()),
            ("x-forwarded-host", self.host.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// Unsets the field `name` (lowercase), if it is one of these.
    pub(crate) fn clear(&mut self, name: &str) {
        match name {
            "x-forwarded-for" => self.for_ = None,
            "x-forwarded-host" => self.host = None,
            "x-forwarded-proto" => self.proto = None,
            _ => {}
        }
    }

    /// Whether none is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.for_.is_none() && self.host.is_none() && self.proto.is_none()
    }
}

/// Which pool endpoint a request goes to.
#[derive(Debug, Clone, Default)]
pub enum Route {
    /// The balancer's choice (power of two choices among the endpoints taking new work): stateless requests,
    /// new sessions, and sessions the gateway does not know. Sent once more to another endpoint when the
    /// connection could not be made (nothing was sent).
    #[default]
    Balanced,
    /// The endpoint that holds the request's session, whatever its health; never retried elsewhere.
    Pinned(EndpointRef),
}

impl Route {
    /// [`Route::Pinned`] to `home` when known, else [`Route::Balanced`].
    pub fn to(home: Option<&EndpointRef>) -> Route {
        home.map_or(Route::Balanced, |ep| Route::Pinned(ep.clone()))
    }
}

/// Why the upstream gave no response. Kept apart from client errors: these map to 502/504 and count in
/// `lifeline_gateway_upstream_errors_total{reason}`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, reset before a response, DNS).
    #[error("upstream unreachable: {0}")]
    Connect(String),
    /// No response headers within the upstream timeout.
    #[error("upstream sent no response headers within {0:?}")]
    Timeout(Duration),
    /// The connection broke or the upstream spoke broken HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// The upstream serves no such endpoint (for example `/sse` in front of a Streamable-HTTP-only server).
    #[error("the upstream serves no {0} endpoint")]
    NotServed(&'static str),
}

impl UpstreamError {
    /// The bounded metric label: `connect`, `timeout`, `protocol`, `not_served`.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Protocol(_) => "protocol",
            UpstreamError::NotServed(_) => "not_served",
        }
    }

    /// Whether another attempt (on another instance) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, UpstreamError::Connect(_) | UpstreamError::Timeout(_))
    }

    /// The HTTP status the client gets: 504 for a timeout, 404 for an endpoint not served, else 502.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::NotServed(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

impl Upstream {
    /// Sends one request and returns the response as soon as its headers arrive; the body streams.
    ///
    /// Errors: [`UpstreamError`]; HTTP error statuses from the upstream are responses, not errors.
    pub async fn forward(&self, req: Forward) -> Result<Response<Body>, UpstreamError> {
        match self {
            Upstream::Http(http) => http.forward(req).await,
            Upstream::Stdio(stdio) => stdio.forward(req).await,
        }
    }

    /// Ends a legacy session the client abandoned (idle TTL, drain): the `DELETE` of 2025-11-25
    /// `basic/transports` §Session Management 5. Returns the upstream's status (405 means it does not allow
    /// ending sessions; 404 that it had already forgotten it).
    ///
    /// Errors: [`UpstreamError`] when no answer came.
    /// `home` is the pool endpoint that holds the session (the first endpoint when `None`).
    pub async fn end_session(
        &self,
        session_id: &str,
        home: Option<&EndpointRef>,
    ) -> Result<StatusCode, UpstreamError> {
        match self {
            Upstream::Http(http) => http.end_session(session_id, home).await,
            Upstream::Stdio(stdio) => stdio.end_session(session_id).await,
        }
    }

    /// Runs the readiness probe (a real MCP exchange, era-appropriate) against the upstream.
    pub async fn probe(&self, opts: &ProbeOptions) -> ProbeReport {
        match self {
            Upstream::Http(http) => http.probe(opts).await,
            Upstream::Stdio(stdio) => stdio.probe(opts).await,
        }
    }

    /// What the gateway already knows makes the upstream unusable, without asking it: a stdio pool with no
    /// running child. `/ready` answers this at once and never caches it, so the first `/ready` after the pool's
    /// children come up probes again instead of repeating a failure from before they started. `None` for an HTTP
    /// upstream and whenever a real probe is needed to tell.
    pub fn known_unavailable(&self) -> Option<ProbeReport> {
        match self {
            Upstream::Http(_) => None,
            Upstream::Stdio(stdio) => stdio.known_unavailable(),
        }
    }

    /// Resolves the message endpoint an HTTP+SSE upstream announced in its `endpoint` event on the stream that
    /// the pool endpoint `home` serves; `None` when it does not resolve to that endpoint's own origin.
    pub fn resolve_message_endpoint(
        &self,
        announced: &str,
        home: Option<&EndpointRef>,
    ) -> Option<Uri> {
        match self {
            Upstream::Http(http) => http.resolve_message_endpoint(announced, home),
            Upstream::Stdio(_) => None,
        }
    }

    /// Whether clients can use the Streamable HTTP endpoint.
    pub fn serves_mcp(&self) -> bool {
        match self {
            Upstream::Http(http) => http.serves_mcp(),
            Upstream::Stdio(_) => true,
        }
    }

    /// Whether clients can use the 2024-11-05 HTTP+SSE endpoints.
    pub fn serves_sse(&self) -> bool {
        match self {
            Upstream::Http(http) => http.serves_sse(),
            Upstream::Stdio(_) => false,
        }
    }

    /// A label for logs (the upstream URL, or `stdio:` and the command line).
    pub fn label(&self) -> String {
        match self {
            Upstream::Http(http) => http.label(),
            Upstream::Stdio(stdio) => stdio.label(),
        }
    }

    /// Starts what the upstream runs on its own (the stdio pool's children); call once, inside the runtime.
    pub(crate) fn start(&self) {
        match self {
            Upstream::Http(_) => {}
            Upstream::Stdio(stdio) => stdio.start(),
        }
    }

    /// The endpoint pool of an HTTP upstream.
    pub(crate) fn pool(&self) -> Option<&std::sync::Arc<Pool>> {
        match self {
            Upstream::Http(http) => Some(http.pool()),
            Upstream::Stdio(_) => None,
        }
    }

    /// What the upstream said of itself outside the readiness probe's last report, for its Server Card
    /// (`discovery.rs`, issue 16 §Discovery): for HTTP, the newest passing probe of an endpoint that takes new
    /// work (the pool watcher's or the readiness probe's); for stdio session mode, the `serverInfo` of the last
    /// `initialize` a client's session child answered (the spare is only pinged, `stdio/spare.rs`). `None`
    /// until one is known.
    pub(crate) fn server_facts(&self) -> Option<crate::discovery::Facts> {
        match self {
            Upstream::Http(http) => {
                http.pool()
                    .server_info()
                    .map(|(info, version)| crate::discovery::Facts {
                        name: info.name,
                        version: info.version,
                        versions: version.into_iter().collect(),
                        ..Default::default()
                    })
            }
            Upstream::Stdio(stdio) => stdio.server_facts(),
        }
    }

    /// Whether the upstream is a pool in the full sense (several endpoints or DNS discovery): then the pool's
    /// watcher probes every endpoint and `/ready` reads their health.
    pub(crate) fn is_pool(&self) -> bool {
        matches!(self, Upstream::Http(http) if http.is_pool())
    }

    /// Whether the upstream runs child processes (a stdio command).
    pub fn has_children(&self) -> bool {
        matches!(self, Upstream::Stdio(_))
    }

    /// Forwards `signal` to the upstream's child processes, if any.
    pub fn signal_children(&self, signal: nix::sys::signal::Signal) {
        if let Upstream::Stdio(stdio) = self {
            stdio.signal_children(signal);
        }
    }

    /// Releases what the upstream holds when the gateway stops: every stdio child is shut down (bounded).
    pub async fn close(&self) {
        match self {
            Upstream::Http(_) => {}
            Upstream::Stdio(stdio) => stdio.close().await,
        }
    }
}
