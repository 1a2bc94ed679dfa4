//! Misbehaving (and two well-behaved) fake MCP servers for the prober's tests: one [`FakeKind`] per failure mode
//! that no real peer shows on demand. Each kind's variant documents exactly what it does on the wire and, after
//! the arrow (→), the verdict reason a correct prober reports against it.
//!
//! A [`FakeServer`] binds `127.0.0.1:0`, serves on tokio tasks (HTTP/1.1 via hyper, TLS via rustls when asked)
//! and stops when dropped: the listener closes and every open connection, including endless streams, is cut.
//! Certificates are generated at start with rcgen; none is checked in.
//!
//! Routes (per kind, `P` being the bound port):
//! - Streamable HTTP kinds: the MCP endpoint `/mcp`; any other path is 404 unless the kind says otherwise.
//! - [`FakeKind::AuthRequired`]: also `GET /.well-known/oauth-protected-resource/mcp` (RFC 9728 metadata).
//! - [`FakeKind::LegacySse`]: `GET /sse` (the event stream) and `POST /messages?sessionId=…` (the endpoint it
//!   announces).
//!
//! Must not: bind anything but loopback, read the environment, or outlive its [`FakeServer`] guard.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http::HeaderMap;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The path of a misbehaving stdio MCP server (Python, standard library only; run it with any Python 3). It
/// writes non-JSON lines to stdout, answers `tools/call whoami` with its pid, floods one 17 MiB line on
/// `tools/call flood`, and never answers `tools/call hang`; see the script's docstring.
pub fn stdio_fake_server() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/fakes/stdio_server.py")
}

mod failures;
mod http_util;
mod legacy;
mod legacy_sse;
mod modern;
mod rpc;
mod server;
mod tls;

pub use tls::{ca_signed_pem, PemMaterial};

/// What a [`FakeServer`] does. Every kind serves plain HTTP on `127.0.0.1` unless it says otherwise; "legacy"
/// means the Streamable HTTP transport of revisions 2025-03-26 … 2025-11-25, "modern" revision 2026-07-28.
///
/// A *modern request* is a POST whose `MCP-Protocol-Version` header is `2026-07-28` or later or whose
/// `params._meta` carries `io.modelcontextprotocol/protocolVersion` (spec 2026-07-28 `basic/transports/
/// streamable-http` §Request Metadata).
#[derive(Debug, Clone)]
pub enum FakeKind {
    /// Nothing listens: the port was bound, read and released, so connections are refused (a later bind by
    /// another process could in theory reuse it). → `connect_refused`.
    ClosedPort,
    /// Accepts TCP connections, reads and discards whatever arrives, and never writes a byte; connections stay
    /// open until the server is dropped. Each accepted connection counts as one request. → `timeout` (phase
    /// `first_byte`).
    AcceptThenHang,
    /// Every request, any path or method: `502 Bad Gateway`, `Content-Type: text/html`, an nginx-like error
    /// page. → `http_status` 502.
    BadGateway502,
    /// Every request, any path or method: `200 OK`, `Content-Type: text/html; charset=utf-8`, a small web page.
    /// → `not_mcp`.
    Html200,
    /// Every request, any path or method: `200 OK`, `Content-Type: application/json`, the truncated body
    /// `{"jsonrpc":"2.0","id":1,"result":`. → `protocol_error`.
    InvalidJson,
    /// Every JSON-RPC request (modern or `initialize` alike, any path): `200 OK` JSON
    /// `{"jsonrpc":"2.0","id":<same id>,"error":{"code":-32603,"message":"Internal error: database unavailable"}}`;
    /// a body that is not JSON gets the same error with `"id":null`; notifications get `202`. → `rpc_error`.
    RpcError,
    /// A modern-only server that speaks no version a client knows: a modern request (indeed any request but
    /// `initialize` and notifications) → `400` JSON
    /// `{"jsonrpc":"2.0","id":<id>,"error":{"code":-32022,"message":"Unsupported protocol version",
    /// "data":{"supported":["2099-01-01"],"requested":<requested version, else "2026-07-28">}}}`;
    /// `initialize` → `200` JSON result with `protocolVersion: "2099-01-01"` and no session; notifications
    /// → `202`. → `unsupported_version`.
    UnsupportedVersion,
    /// A legacy server (modern request → `400` with the plain-text body `Bad Request: No valid session ID
    /// provided`) whose `initialize` answer is sent only after `delay`; everything after that behaves as
    /// [`FakeKind::Healthy`] with default options. → `timeout` (phase `initialize`) when `delay` exceeds the
    /// prober's step timeout.
    SlowInitialize {
        /// How long `initialize` waits before answering.
        delay: Duration,
    },
    /// A legacy server (modern request → `400` plain text as above) that answers `initialize` with `200`,
    /// `Content-Type: text/event-stream` and `X-Accel-Buffering: no`, then sends nothing and holds the stream
    /// open until the client leaves or the server is dropped. No session is minted. → `timeout` (phase
    /// `initialize`).
    SseNeverSends,
    /// A legacy server (modern request → `400` plain text as above): `initialize` → `200` JSON with an
    /// `Mcp-Session-Id`; `notifications/initialized` → `202`, after which the server forgets the session, so
    /// every later request carrying it (POST or DELETE) → `404` with JSON-RPC error `-32001 Session not found`.
    /// [`FakeServer::sessions_open`] drops back to 0 when the session is forgotten. → `session_lost`.
    SessionLost,
    /// Every `/mcp` request without the configured token → `401` with
    /// `WWW-Authenticate: Bearer resource_metadata="http://127.0.0.1:P/.well-known/oauth-protected-resource/mcp"`
    /// (plus `, error="invalid_token"` when a wrong bearer token was sent) and a JSON body
    /// `{"error":"invalid_token",…}`. `GET` on that metadata URL (no auth) serves RFC 9728 JSON
    /// `{"resource":"http://127.0.0.1:P/mcp","authorization_servers":["http://127.0.0.1:P/oauth"],
    /// "bearer_methods_supported":["header"]}`. Requests with `Authorization: Bearer <token>` are served as
    /// [`FakeKind::Healthy`] with default options. → `auth_required` (and healthy with the token).
    AuthRequired {
        /// The bearer token that unlocks the server; `None` rejects every request.
        token: Option<String>,
    },
    /// A well-behaved legacy Streamable HTTP server; see [`HealthyOpts`] for the knobs and the exact behaviour.
    /// → `healthy` with default options.
    Healthy(HealthyOpts),
    /// A well-behaved modern-only (2026-07-28) server; see [`ModernOpts`]. → `healthy` for a modern or dual-era
    /// client.
    Modern(ModernOpts),
    /// A 2024-11-05 HTTP+SSE server. `GET /sse` opens an event stream (`text/event-stream`) whose first event is
    /// `event: endpoint` with data `/messages?sessionId=<id>`, then a `: keepalive` comment every 100 ms;
    /// JSON-RPC messages POSTed to that endpoint get `202 Accepted` and their answers arrive on the stream as
    /// `event: message` events (`initialize` answers `2024-11-05`; `tools/list` lists [`echo_tool`]; `ping`;
    /// `tools/call`). `POST /sse` → `405`; `/mcp` and every other path → `404`; a POST for an unknown session
    /// → `404`. The session ends when the GET stream closes. [`FakeServer::url`] is `http://127.0.0.1:P/sse`.
    /// → `healthy` over the HTTP+SSE transport.
    LegacySse,
}

/// Options of [`FakeKind::Healthy`], a well-behaved legacy Streamable HTTP server (spec 2025-11-25
/// `basic/transports` and `basic/lifecycle`) on `/mcp`:
///
/// - Origin: with `origin_check`, a request whose `Origin` header names another host:port than its `Host`
///   header → `403` (spec 2025-11-25 `basic/transports` §Security Warning).
/// - `POST` needs `Accept` listing both `application/json` and `text/event-stream` (else `406`) and
///   `Content-Type: application/json` (else `415`); a body that is not JSON → `400` error `-32700`.
/// - `initialize` → `200` with the client's `protocolVersion` if it is 2025-03-26, 2025-06-18 or 2025-11-25,
///   else 2025-11-25, capabilities `{"tools":{"listChanged":false}}`, serverInfo `lifeline-fake`, and a fresh
///   `Mcp-Session-Id` header.
/// - Any other POST without `Mcp-Session-Id` (so every modern request) → `400` with the SDK-like body
///   `{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}`,
///   which is not a recognised modern error. An unknown session → `404` with error `-32001`. An
///   `MCP-Protocol-Version` header naming no legacy version → `400`.
/// - Notifications and responses → `202`. `ping` → `{}`. `tools/list` pages `tools` by `page_size` with an
///   opaque `nextCursor` (a bad cursor → error `-32602`). `tools/call` of a listed tool → text content echoing
///   `arguments.message` (or the arguments as JSON) with `isError: tool_is_error`; an unknown tool → `-32602`.
///   Other methods → `-32601`.
/// - `DELETE` with a known session → `200` and the session is gone; unknown → `404`; none → `400`. `GET` →
///   `405` (no standalone stream).
#[derive(Debug, Clone)]
pub struct HealthyOpts {
    /// Tool definitions returned by `tools/list`, in order. Default: `[echo_tool()]`. Empty → `no_tools`.
    pub tools: Vec<Value>,
    /// Tools per `tools/list` page. Default: 100. Zero is treated as 1.
    pub page_size: usize,
    /// Whether `tools/call` results carry `isError: true` (→ `tool_error`). Default: false.
    pub tool_is_error: bool,
    /// Whether replies to requests are SSE-framed (`text/event-stream`, one `event: message` then end of
    /// stream) instead of `application/json`. Default: false.
    pub sse_replies: bool,
    /// Serve HTTPS with this certificate set-up instead of plain HTTP. Default: `None`.
    pub tls: Option<TlsKind>,
    /// Pad the `initialize` reply to exactly this many body bytes (the padding sits in a long `instructions`
    /// string), streamed in 64 KiB chunks without `Content-Length` and never held in memory; no session is
    /// minted. With 100 MB the prober must cut the reply off (→ `protocol_error`). Default: `None`.
    pub reply_bytes: Option<usize>,
    /// Answer `initialize` with an SSE stream that sends the comment `: keepalive\n\n` every 10 ms forever and
    /// never the response; no session is minted (→ `timeout`). Takes precedence over `reply_bytes`. Default:
    /// false.
    pub endless_sse: bool,
    /// Whether SSE responses carry `X-Accel-Buffering: no`. Default: true.
    pub x_accel_buffering: bool,
    /// Reject a foreign `Origin` with `403`. Default: true.
    pub origin_check: bool,
}

/// Options of [`FakeKind::Modern`], a well-behaved modern-only server (spec 2026-07-28) on `/mcp`:
///
/// - `GET` and `DELETE` → `405` with `Allow: POST`; `Mcp-Session-Id` is ignored and never minted.
/// - `initialize` → `400` with error `-32022` whose `data.supported` is `["2026-07-28"]` (spec 2026-07-28
///   `basic/versioning`: a modern-only server names its versions in any error to `initialize`).
/// - Notifications → `202`. Requests must carry `MCP-Protocol-Version` and `Mcp-Method` matching the body, and
///   `Mcp-Name` matching `params.name` on `tools/call` (Base64 sentinel decoded), else `400` `-32020`
///   HeaderMismatch; `params._meta` must carry `io.modelcontextprotocol/protocolVersion` and
///   `io.modelcontextprotocol/clientCapabilities`, else `400` `-32602`; a version other than 2026-07-28 →
///   `400` `-32022`.
/// - `server/discover` → `resultType: "complete"`, `supportedVersions: ["2026-07-28"]`, capabilities
///   `{"tools":{}}`, `_meta["io.modelcontextprotocol/serverInfo"]`. `tools/list` and `tools/call` as in
///   [`HealthyOpts`] (with `resultType`). Any other method → `404` with `-32601`.
#[derive(Debug, Clone)]
pub struct ModernOpts {
    /// Tool definitions returned by `tools/list`. Default: `[echo_tool()]`.
    pub tools: Vec<Value>,
    /// Tools per `tools/list` page. Default: 100. Zero is treated as 1.
    pub page_size: usize,
    /// Whether `tools/call` results carry `isError: true`. Default: false.
    pub tool_is_error: bool,
    /// Whether replies are SSE-framed instead of `application/json`. Default: false.
    pub sse_replies: bool,
}

/// How a TLS fake's certificate is made. All leaves name `localhost` (DNS SAN) and `127.0.0.1` (IP SAN), use
/// ECDSA P-256 and are generated at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsKind {
    /// A self-signed leaf valid from yesterday for 30 days; [`FakeServer::ca_pem`] returns the leaf itself, which
    /// a client can trust as its own anchor. Untrusted → `tls_failed`.
    SelfSigned,
    /// A leaf signed by a fresh CA (see [`FakeServer::ca_pem`]) whose `not_after` was yesterday (`not_before` 60
    /// days ago), so even a client trusting the CA sees only the expiry. → `tls_expired`.
    Expired,
    /// A leaf signed by a fresh per-server CA, valid from yesterday until `days_left` days from now (zero or
    /// negative means already expired). Trust it with [`FakeServer::ca_pem`] (`--ca-file`).
    CaSigned {
        /// Days from now until the leaf's `not_after`.
        days_left: i64,
    },
}

/// A running fake server; dropping it stops the server and cuts every connection.
///
/// Start one inside a tokio runtime with [`FakeServer::start`].
pub struct FakeServer {
    addr: SocketAddr,
    scheme: &'static str,
    endpoint_path: &'static str,
    stats: Arc<server::Stats>,
    ca: Option<(String, CertificateDer<'static>)>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Default for HealthyOpts {
    fn default() -> Self {
        HealthyOpts {
            tools: vec![echo_tool()],
            page_size: 100,
            tool_is_error: false,
            sse_replies: false,
            tls: None,
            reply_bytes: None,
            endless_sse: false,
            x_accel_buffering: true,
            origin_check: true,
        }
    }
}

impl Default for ModernOpts {
    fn default() -> Self {
        ModernOpts {
            tools: vec![echo_tool()],
            page_size: 100,
            tool_is_error: false,
            sse_replies: false,
        }
    }
}

/// The default tool of the healthy fakes: `echo`, taking a required string `message`, whose call returns that
/// message as text.
pub fn echo_tool() -> Value {
    json!({
        "name": "echo",
        "description": "Echoes the message back.",
        "inputSchema": {
            "type": "object",
            "properties": {"message": {"type": "string", "description": "Text to echo."}},
            "required": ["message"]
        }
    })
}

/// `count` distinct tool definitions named `tool_000`, `tool_001`, … (each taking an optional string
/// `message`), for pagination tests.
pub fn numbered_tools(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            json!({
                "name": format!("tool_{i:03}"),
                "description": format!("Numbered test tool {i}."),
                "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}
            })
        })
        .collect()
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and starts serving `kind` on tokio tasks of the current runtime.
    ///
    /// Errors: the bind fails, or certificate generation or the TLS set-up fails.
    pub async fn start(kind: FakeKind) -> anyhow::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0 for a fake MCP server")?;
        let addr = listener
            .local_addr()
            .context("reading the fake server's address")?;
        let stats = Arc::new(server::Stats::default());
        let endpoint_path = match kind {
            FakeKind::LegacySse => "/sse",
            _ => "/mcp",
        };

        if let FakeKind::ClosedPort = kind {
            drop(listener);
            return Ok(FakeServer::stopped(addr, "http", endpoint_path, stats));
        }

        let tls_material = match &kind {
            FakeKind::Healthy(HealthyOpts {
                tls: Some(tls_kind),
                ..
            }) => Some(tls::build(tls_kind)?),
            _ => None,
        };
        let scheme = if tls_material.is_some() {
            "https"
        } else {
            "http"
        };
        let base_url = format!("{scheme}://{addr}");
        let behaviour = server::Behaviour::new(kind, &base_url, Arc::clone(&stats));
        let ca = tls_material
            .as_ref()
            .map(|m| (m.ca_pem.clone(), m.ca_der.clone()));
        let acceptor = tls_material.map(|m| tokio_rustls::TlsAcceptor::from(m.server_config));

        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(server::accept_loop(
            listener,
            acceptor,
            Arc::new(behaviour),
            Arc::clone(&stats),
            shutdown_rx,
        ));
        Ok(FakeServer {
            addr,
            scheme,
            endpoint_path,
            stats,
            ca,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        })
    }

    fn stopped(
        addr: SocketAddr,
        scheme: &'static str,
        endpoint_path: &'static str,
        stats: Arc<server::Stats>,
    ) -> FakeServer {
        FakeServer {
            addr,
            scheme,
            endpoint_path,
            stats,
            ca: None,
            shutdown: None,
            task: None,
        }
    }

    /// The URL a client should be given: the MCP endpoint `http(s)://127.0.0.1:P/mcp`, or
    /// `http://127.0.0.1:P/sse` for [`FakeKind::LegacySse`].
    pub fn url(&self) -> String {
        format!("{}{}", self.base_url(), self.endpoint_path)
    }

    /// `http(s)://127.0.0.1:P`, without a path.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The bound address (`127.0.0.1:P`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// HTTP requests received so far, any path or method (accepted connections for
    /// [`FakeKind::AcceptThenHang`], always 0 for [`FakeKind::ClosedPort`]).
    pub fn requests_total(&self) -> u64 {
        self.stats.requests_total.load(Ordering::SeqCst)
    }

    /// Sessions currently held: minted by `initialize` (or opened by a `GET /sse` stream) minus those ended
    /// by `DELETE`, a closed stream, or a forgetful server. A prober that leaks sessions leaves this above 0.
    pub fn sessions_open(&self) -> u64 {
        self.stats.sessions_open.load(Ordering::SeqCst)
    }

    /// The headers of the most recent HTTP request, `None` before the first one.
    pub fn last_request_headers(&self) -> Option<HeaderMap> {
        self.stats.last_headers()
    }

    /// The JSON-RPC methods received, in arrival order (at most the last 1,024), e.g.
    /// `["server/discover", "initialize", "notifications/initialized", "tools/list"]`. HTTP-level requests
    /// without a JSON-RPC body (GET, DELETE) are recorded as `"HTTP GET"`, `"HTTP DELETE"`.
    pub fn rpc_methods(&self) -> Vec<String> {
        self.stats.rpc_methods()
    }

    /// PEM of the certificate a client must trust to verify this server (the CA, or the leaf itself for
    /// [`TlsKind::SelfSigned`]); `None` for plain-HTTP kinds. Write it to a file for `--ca-file`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// DER of the same certificate as [`FakeServer::ca_pem`], for building a rustls root store directly.
    pub fn ca_der(&self) -> Option<CertificateDer<'static>> {
        self.ca.as_ref().map(|(_, der)| der.clone())
    }

    /// Whether a TCP connection to [`FakeServer::addr`] currently succeeds (false for
    /// [`FakeKind::ClosedPort`] and after the server is dropped).
    pub async fn is_listening(&self) -> bool {
        TcpStream::connect(self.addr).await.is_ok()
    }
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("url", &self.url())
            .field("requests_total", &self.requests_total())
            .field("sessions_open", &self.sessions_open())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // The accept loop exits on the closed channel and drops its connection set, which aborts every
        // connection task; the abort covers a runtime that is no longer polling the loop.
        drop(self.shutdown.take());
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
