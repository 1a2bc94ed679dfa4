//! The raw client the fake-server tests speak with: hyper's HTTP/1 client connection over a fresh TCP (or TLS)
//! stream per request, JSON-RPC message builders, and bounded waits.

use std::ops::Deref;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lifeline_testkit::fakes::{FakeKind, FakeServer};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Patience for anything that should happen.
pub(crate) const STEP: Duration = Duration::from_secs(10);
/// How long we watch for something that should not happen.
pub(crate) const QUIET: Duration = Duration::from_millis(300);
/// The legacy version the tests speak.
pub(crate) const V: &str = "2025-11-25";

/// A started fake plus a raw client for it.
pub(crate) struct Fake(pub(crate) FakeServer);

/// A fully read reply.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Deref for Fake {
    type Target = FakeServer;
    fn deref(&self) -> &FakeServer {
        &self.0
    }
}

impl Fake {
    pub(crate) async fn start(kind: FakeKind) -> Fake {
        Fake(FakeServer::start(kind).await.expect("fake server starts"))
    }

    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr().to_string());
        if body.is_some() {
            builder = builder
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        builder.body(Full::new(bytes)).expect("valid request")
    }

    /// Sends `req` on a fresh connection and returns the response with its body unread.
    pub(crate) async fn open(&self, req: Request<Full<Bytes>>) -> Response<Incoming> {
        open_on(TcpStream::connect(self.addr()).await.expect("connect"), req).await
    }

    pub(crate) async fn open_post(
        &self,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Response<Incoming> {
        self.open(self.request(Method::POST, "/mcp", headers, Some(body)))
            .await
    }

    /// POSTs a JSON-RPC message to `/mcp`.
    pub(crate) async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Reply {
        read(self.open_post(body, headers).await).await
    }

    /// POSTs a JSON-RPC message to another path.
    pub(crate) async fn post_to(&self, path: &str, body: &Value) -> Reply {
        read(
            self.open(self.request(Method::POST, path, &[], Some(body)))
                .await,
        )
        .await
    }

    /// A request without a body.
    pub(crate) async fn http(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        read(self.open(self.request(method, path, headers, None)).await).await
    }

    /// Runs the legacy handshake and returns the session id.
    pub(crate) async fn session(&self, extra: &[(&str, &str)]) -> String {
        let reply = self.post(&initialize(1, V), extra).await;
        assert_eq!(reply.status, StatusCode::OK, "initialize: {:?}", reply.body);
        let session = reply
            .header("mcp-session-id")
            .expect("session id")
            .to_owned();
        let mut headers = vec![
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", V),
        ];
        headers.extend_from_slice(extra);
        let reply = self
            .post(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &headers,
            )
            .await;
        assert_eq!((reply.status, reply.body.len()), (StatusCode::ACCEPTED, 0));
        session
    }
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON of the first `data:` line of an SSE body.
    pub(crate) fn sse_json(&self) -> Value {
        sse_data(std::str::from_utf8(&self.body).expect("SSE body is UTF-8"))
    }

    /// `(status, error.code)`.
    pub(crate) fn error_code(&self) -> (StatusCode, Value) {
        (self.status, self.json()["error"]["code"].clone())
    }
}

pub(crate) fn sse_data(text: &str) -> Value {
    let data = text.lines().find_map(|line| line.strip_prefix("data: "));
    serde_json::from_str(data.unwrap_or_else(|| panic!("no data line in {text:?}")))
        .expect("SSE data is JSON")
}

pub(crate) async fn open_on<S>(io: S, req: Request<Full<Bytes>>) -> Response<Incoming>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(connection);
    let head = tokio::time::timeout(STEP, sender.send_request(req))
        .await
        .expect("response head in time");
    head.expect("response head")
}

pub(crate) async fn read(response: Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(STEP, body.collect())
        .await
        .expect("body in time")
        .expect("body");
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.to_bytes(),
    }
}

/// The next data frame within `within`; `None` on timeout, `Some(None)` at the end of the body.
pub(crate) async fn next_chunk(body: &mut Incoming, within: Duration) -> Option<Option<Bytes>> {
    loop {
        match tokio::time::timeout(within, body.frame()).await {
            Err(_elapsed) => return None,
            Ok(None) | Ok(Some(Err(_))) => return Some(None),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Some(data));
                }
            }
        }
    }
}

pub(crate) fn initialize(id: i64, version: &str) -> Value {
    let params = json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}});
    rpc(id, "initialize", params)
}

pub(crate) fn rpc(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A modern request: `params._meta` carries version, client info and capabilities.
pub(crate) fn modern(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    rpc(id, method, params)
}

/// The request metadata headers of a modern request for `method`.
pub(crate) fn modern_headers(method: &str) -> [(&str, &str); 2] {
    [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ]
}

/// A modern `server/discover` POST, the first thing a dual-era client sends.
pub(crate) async fn discover(server: &Fake) -> Reply {
    server
        .post(
            &modern(1, "server/discover", json!({})),
            &modern_headers("server/discover"),
        )
        .await
}
