//! The load generator and measuring helpers of the stdio gateway bench (`stdio.rs`), included with
//! `#[path = "support/loadgen.rs"] mod loadgen;` (not a bench target of its own).
//!
//! [`load`] keeps `concurrency` HTTP/1.1 keep-alive connections busy with back-to-back `tools/list` POSTs for a
//! warm-up and then a measured period, and records the latency of every measured request (send to last body
//! byte). With [`Handshake::Initialize`] each connection first opens a legacy session (`initialize`, then
//! `notifications/initialized`, keeping `Mcp-Session-Id` and the negotiated `MCP-Protocol-Version`) and sends its
//! requests on it; the session is deleted at the end. A request counts as good when its status is 2xx and its
//! whole body (JSON or SSE-framed) contains the expected bytes; anything else is an error, after which the
//! connection is reopened (bounded: [`MAX_RECONNECTS`] per connection, every request bounded by
//! [`REQUEST_TIMEOUT`]).

// Each bench uses part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The request every bench measures.
pub(crate) const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
/// A 2025-11-25 `initialize`.
pub(crate) const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
/// The version sent when the server's `InitializeResult` names none.
const DEFAULT_VERSION: &str = "2025-11-25";

/// Bound on one request, from send to the end of its body.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the reconnections (after an error) of one load connection.
pub(crate) const MAX_RECONNECTS: u32 = 50;
/// Error messages printed per load connection; the rest are only counted.
const ERRORS_SHOWN: u32 = 2;

/// Whether load connections open a session first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Send `tools/list` without a session (an upstream that does not require one).
    None,
    /// `initialize` + `notifications/initialized` per connection, then `tools/list` on that session.
    Initialize,
}

/// One load run's settings.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) concurrency: usize,
    pub(crate) warmup: Duration,
    pub(crate) measured: Duration,
    pub(crate) handshake: Handshake,
    /// Bytes a good response body contains, e.g. `"tools"`.
    pub(crate) expect: Option<&'static str>,
}

/// What a load run measured.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) secs: f64,
    /// Latencies in nanoseconds, sorted.
    pub(crate) lat: Vec<u64>,
    /// The first error seen, for the report.
    pub(crate) first_error: Option<String>,
}

impl Run {
    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    /// The `p` quantile (0..=1) in microseconds; NaN without samples.
    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i] as f64 / 1000.0
    }
}

/// `name` from the environment parsed as `T`, else `default`.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Polls a TCP connect until `addr` listens; false after `patience`.
pub(crate) async fn wait_port(addr: SocketAddr, patience: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < patience {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// VmRSS of one process (children are separate processes and never included), in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One keep-alive connection, with its session once opened.
pub(crate) struct Conn {
    addr: SocketAddr,
    path: String,
    sender: SendRequest<Full<Bytes>>,
    session: Option<HeaderValue>,
    version: HeaderValue,
}

/// A response read to its end.
struct Answer {
    status: http::StatusCode,
    session: Option<HeaderValue>,
    body: Bytes,
}

impl Conn {
    /// Connects (bounded by [`REQUEST_TIMEOUT`]) and, with [`Handshake::Initialize`], opens a session.
    pub(crate) async fn open(
        addr: SocketAddr,
        path: &str,
        handshake: Handshake,
    ) -> Result<Conn, String> {
        let mut conn = Conn {
            addr,
            path: path.to_owned(),
            sender: connect(addr).await?,
            session: None,
            version: HeaderValue::from_static(DEFAULT_VERSION),
        };
        if handshake == Handshake::Initialize {
            conn.initialize().await?;
        }
        Ok(conn)
    }

    /// Makes sure the TCP connection can take a request: a server may close a keep-alive connection between
    /// requests (nginx after `keepalive_requests`, with `Connection: close` on the last answer). A new connection
    /// keeps the session; that is not an error.
    async fn ensure_open(&mut self) -> Result<(), String> {
        let ready = tokio::time::timeout(REQUEST_TIMEOUT, self.sender.ready()).await;
        if !matches!(ready, Ok(Ok(()))) {
            self.sender = connect(self.addr).await?;
        }
        Ok(())
    }

    /// `initialize` (keeping the session id and the negotiated version), then `notifications/initialized`.
    pub(crate) async fn initialize(&mut self) -> Result<(), String> {
        self.session = None;
        let init = self.post(INIT).await?;
        if !init.status.is_success() {
            return Err(format!(
                "initialize: HTTP {}: {}",
                init.status,
                shown(&init.body)
            ));
        }
        if let Some(v) = protocol_version(&init.body).and_then(|v| HeaderValue::from_str(&v).ok()) {
            self.version = v;
        }
        self.session = init.session;
        let note = self.post(INITIALIZED).await?;
        if !note.status.is_success() {
            return Err(format!(
                "notifications/initialized: HTTP {}: {}",
                note.status,
                shown(&note.body)
            ));
        }
        Ok(())
    }

    /// Whether a session was opened.
    pub(crate) fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// One POST, read to the end, bounded by [`REQUEST_TIMEOUT`].
    async fn post(&mut self, body: &'static str) -> Result<Answer, String> {
        self.ensure_open().await?;
        let mut req = Request::post(self.path.as_str())
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .map_err(|e| e.to_string())?;
        if let Some(sid) = &self.session {
            let h = req.headers_mut();
            h.insert("mcp-session-id", sid.clone());
            h.insert("mcp-protocol-version", self.version.clone());
        }
        let exchange = async {
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let session = resp.headers().get("mcp-session-id").cloned();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<Answer, String>(Answer {
                status,
                session,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no full answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// One request that must succeed with a body containing `expect`.
    pub(crate) async fn call(
        &mut self,
        body: &'static str,
        expect: Option<&str>,
    ) -> Result<(), String> {
        let answer = self.post(body).await?;
        if !answer.status.is_success() {
            return Err(format!("HTTP {}: {}", answer.status, shown(&answer.body)));
        }
        match expect {
            Some(e) if !contains(&answer.body, e.as_bytes()) => Err(format!(
                "HTTP {} without {e}: {}",
                answer.status,
                shown(&answer.body)
            )),
            _ => Ok(()),
        }
    }

    /// Ends the session, if any (bounded; the outcome is ignored).
    pub(crate) async fn close(mut self) {
        let Some(sid) = self.session.take() else {
            return;
        };
        if self.ensure_open().await.is_err() {
            return;
        }
        let Ok(req) = Request::delete(self.path.as_str())
            .header("host", self.addr.to_string())
            .header("mcp-session-id", sid)
            .header("mcp-protocol-version", self.version.clone())
            .body(Full::new(Bytes::new()))
        else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            if let Ok(resp) = self.sender.send_request(req).await {
                let _ = resp.into_body().collect().await;
            }
        })
        .await;
    }
}

/// A new HTTP/1.1 connection to `addr` (bounded by [`REQUEST_TIMEOUT`]).
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Runs `spec` and returns what it measured.
pub(crate) async fn load(spec: &Load) -> Run {
    let start = Instant::now();
    let warm_until = start + spec.warmup;
    let until = warm_until + spec.measured;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..spec.concurrency {
        set.spawn(one_connection(spec.clone(), until, warm_until));
    }
    let mut run = Run {
        secs: spec.measured.as_secs_f64(),
        ..Run::default()
    };
    while let Some(r) = set.join_next().await {
        match r {
            Ok(part) => {
                run.requests += part.requests;
                run.errors += part.errors;
                run.lat.extend(part.lat);
                if run.first_error.is_none() {
                    run.first_error = part.first_error;
                }
            }
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    run.lat.sort_unstable();
    run
}

async fn one_connection(spec: Load, until: Instant, warm_until: Instant) -> Run {
    let mut run = Run {
        lat: Vec::with_capacity(100_000),
        ..Run::default()
    };
    let mut conn: Option<Conn> = None;
    let mut reconnects = 0u32;
    let mut shown_errors = 0u32;
    let mut fail = |run: &mut Run, at: Instant, err: String| {
        if at >= warm_until {
            run.errors += 1;
            run.first_error.get_or_insert_with(|| err.clone());
        }
        if shown_errors < ERRORS_SHOWN {
            shown_errors += 1;
            eprintln!("  {}: {err}", spec.addr);
        }
    };
    while Instant::now() < until {
        let Some(c) = conn.as_mut() else {
            if reconnects > MAX_RECONNECTS {
                break;
            }
            reconnects += 1;
            let at = Instant::now();
            match Conn::open(spec.addr, &spec.path, spec.handshake).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(&mut run, at, e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        };
        // A keep-alive connection the server closed is replaced outside the timed request.
        if let Err(e) = c.ensure_open().await {
            fail(&mut run, Instant::now(), e);
            conn = None;
            continue;
        }
        let start = Instant::now();
        let outcome = c.call(TOOLS_LIST, spec.expect).await;
        let ns = start.elapsed().as_nanos() as u64;
        match outcome {
            Ok(()) if start >= warm_until => {
                run.requests += 1;
                run.lat.push(ns);
            }
            Ok(()) => {}
            Err(e) => {
                fail(&mut run, start, e);
                // A broken connection or a lost session: start over on a new connection.
                if let Some(c) = conn.take() {
                    c.close().await;
                }
            }
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
    run
}

/// Opens `count` sessions (bare `initialize`, left open) over `connections` keep-alive connections; returns how
/// many got an `Mcp-Session-Id`.
pub(crate) async fn open_sessions(addr: SocketAddr, count: usize, connections: usize) -> usize {
    let connections = connections.max(1);
    let done = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..connections {
        let done = Arc::clone(&done);
        let n = count / connections + usize::from(w < count % connections);
        set.spawn(async move {
            let Ok(mut conn) = Conn::open(addr, "/mcp", Handshake::None).await else {
                return;
            };
            for _ in 0..n {
                match conn.post(INIT).await {
                    Ok(a) if a.status.is_success() && a.session.is_some() => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    done.load(Ordering::Relaxed) as usize
}

/// The `protocolVersion` of an `InitializeResult`, in a JSON or SSE-framed body.
fn protocol_version(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let json = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s.trim())
            .ok()?
            .pointer("/result/protocolVersion")?
            .as_str()
            .map(str::to_owned)
    };
    json(text).or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(json)
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The start of a body, for error messages.
fn shown(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(160)])
        .replace('\n', " ")
        .trim()
        .to_owned()
}
