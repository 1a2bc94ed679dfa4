//! The stdio upstream: the gateway runs the MCP server as a child process and serves it to HTTP clients as
//! Streamable HTTP (2025-11-25 `basic/transports` §Streamable HTTP), translating to and from its stdin/stdout
//! (§stdio).
//!
//! Files: `child` (one process: spawn, bounded stdout reader, stderr to the log, routing, shutdown), `stream` (the
//! SSE body a client receives, cancellation on disconnect), `pool` (`--stdio-mode pool`: shared children, ids
//! rewritten, restarts with backoff), `spare` (session mode's warm spare, which the readiness probe pings). This
//! file is session mode (the default) and the seam's entry points.
//!
//! Session mode: one child per legacy session, so no client ever sees another's messages, plus one warm spare.
//! - `POST` `initialize` without a session: take the warm spare (with the session id minted with it; a new child
//!   when there is none), start the next spare, relay the `initialize`, answer its `InitializeResult` (JSON) with
//!   `Mcp-Session-Id` (§Session Management 1). The proxy registers the session in its table, so
//!   `--max-sessions` bounds session children (the spare is one more process) and the idle TTL and the drain end
//!   them.
//! - `POST` a request with the session: written to the child; the answer is an SSE stream carrying the child's
//!   messages for that request (progress with the request's `progressToken`; unrelated ones while no `GET` stream
//!   is open) and ending with the response whose id matches (§Sending Messages 5), or the response alone as JSON
//!   when the client accepts only JSON. A client that leaves before its response makes the gateway send the child
//!   `notifications/cancelled` (2025-11-25 `basic/utilities/cancellation`).
//! - `POST` a notification or a response: written to the child, `202 Accepted` (§Sending Messages 4).
//! - `GET` with the session: the standalone stream of the child's unrelated messages (§Listening for Messages).
//! - `DELETE`, idle TTL, drain: the child is shut down in the `basic/lifecycle` §Shutdown order.
//! - A session whose child has ended (crash, overlong line) answers 404, so the client re-initializes
//!   (§Session Management 4).
//! - A request without a session that is not `initialize`: 400 (§Session Management 2); a modern (2026-07-28)
//!   one gets `UnsupportedProtocolVersion` listing the legacy versions, so clients fall back to `initialize`.
//!
//! Why our own code rather than the probe engine's stdio client (`lifeline_mcp::probe::stdio`): the probe runs a
//! fixed script against a child it owns for a few seconds; the proxy path relays arbitrary client messages both
//! ways for as long as the session lives, routes the child's output to concurrent HTTP responses, and must keep
//! every buffer bounded while doing so. The readiness probe still uses the probe engine.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use lifeline_mcp::probe::StdioCommand;
use lifeline_mcp::{ProbeOptions, ProbeReport, Target};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Endpoint, Forward, UpstreamError};
use crate::body::{self, code, Body};
use crate::config::{StdioConfig, StdioMode};
use crate::metrics::Metrics;
use crate::proxy::{session_id, SESSION_HEADER};
use crate::rpc::{self, Kind};

mod child;
mod generation;
mod json_member;
mod pool;
mod spare;
mod stream;

use child::{Child, RegisterError, Routed};
pub(crate) use generation::reload;
use generation::Pools;
use pool::Pool;
use spare::Spare;
use stream::{event_stream, response_of, CancelOnDrop};

/// Concurrent shutdowns when the gateway stops.
const CLOSE_CONCURRENCY: usize = 16;

/// An MCP server run as child processes: one per legacy session, or a shared pool (see `pool`).
#[derive(Debug)]
pub struct StdioUpstream {
    cfg: StdioConfig,
    timeout: Duration,
    /// Session mode: the child of each session.
    children: Mutex<HashMap<Box<str>, Arc<Child>>>,
    /// Session mode: the warm spare (`None` in pool mode).
    spare: Option<Spare>,
    /// Pool mode: the current generation and the old ones finishing their sessions (`generation`).
    pool: Option<Pools>,
    metrics: Arc<Metrics>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Session mode: what the last session child said of itself in its `initialize` result (the Server Card's
    /// facts, `discovery.rs`).
    facts: Mutex<Option<crate::discovery::Facts>>,
}

impl StdioUpstream {
    /// An upstream for `cfg`; `timeout` bounds the wait for a response when one must come before the HTTP
    /// answer's headers (`initialize`, JSON-only clients). Starts nothing yet (see [`StdioUpstream::start`]).
    pub(crate) fn new(cfg: StdioConfig, timeout: Duration, metrics: Arc<Metrics>) -> StdioUpstream {
        let pool = (cfg.mode == StdioMode::Pool)
            .then(|| Pools::new(Pool::new(cfg.clone(), timeout, Arc::clone(&metrics))));
        let spare = pool.is_none().then(|| Spare::new(cfg.clone()));
        StdioUpstream {
            cfg,
            timeout,
            children: Mutex::new(HashMap::new()),
            spare,
            pool,
            metrics,
            reloading: tokio::sync::Mutex::new(()),
            facts: Mutex::new(None),
        }
    }

    /// Session mode: the facts of the last `initialize` result a session child gave (see
    /// [`crate::upstream::Upstream::server_facts`]); `None` before the first session.
    pub(crate) fn server_facts(&self) -> Option<crate::discovery::Facts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Pool mode: starts the children and their supervisors (which restart them until [`StdioUpstream::close`]).
    /// Session mode: starts the warm spare (a failure is logged; the readiness probe retries and reports it).
    pub(crate) fn start(&self) {
        if let Some(pool) = &self.pool {
            pool.start();
        }
        if let Some(Err(err)) = self.spare.as_ref().map(Spare::refill) {
            tracing::warn!(error = %err, "Cannot start the stdio spare.");
        }
    }

    fn children(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Child>>> {
        // Every update is one insert/remove, so a poisoned lock still holds a consistent map.
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The probe engine's view of the command.
    fn command(&self) -> StdioCommand {
        StdioCommand {
            program: self.cfg.program.clone(),
            args: self.cfg.args.clone(),
            env: self.cfg.env.clone(),
            inherit_env: self.cfg.inherit_env,
            cwd: None,
        }
    }

    pub(crate) async fn forward(&self, req: Forward) -> Result<Response<Body>, UpstreamError> {
        if req.endpoint != Endpoint::Mcp {
            return Err(UpstreamError::NotServed("HTTP+SSE"));
        }
        if let Some(pool) = &self.pool {
            return pool.forward(req.method, req.headers, req.body).await;
        }
        let sid = session_id(&req.headers);
        match req.method {
            Method::POST => self.post(sid, req.headers, req.body).await,
            Method::GET => Ok(self.get(sid)),
            Method::DELETE => Ok(self.delete(sid).await),
            _ => Ok(body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method Not Allowed",
                None,
            )),
        }
    }

    /// The live child of `sid`; a dead one is forgotten.
    fn child(&self, sid: &str) -> Option<Arc<Child>> {
        let mut children = self.children();
        let child = children.get(sid)?;
        if child.is_alive() {
            return Some(Arc::clone(child));
        }
        children.remove(sid);
        None
    }

    async fn post(
        &self,
        sid: Option<String>,
        headers: HeaderMap,
        bytes: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let summary = rpc::summarize(&bytes);
        let id = summary.id.clone();
        if let Some(refusal) = refuse_unrelayable(summary.kind) {
            return Ok(refusal);
        }
        let message = single_line(&bytes);

        let Some(sid) = sid else {
            if summary.is_initialize() {
                return self.initialize(&message, id).await;
            }
            if is_modern(&summary, &headers) {
                // Session mode serves the legacy era only (a child per `initialize`): say so the way 2026-07-28
                // clients understand, so they fall back to `initialize` or report a clear error, never hang.
                let supported = lifeline_mcp::era::LEGACY_VERSIONS
                    .iter()
                    .map(|v| Value::from(*v))
                    .collect();
                return Ok(unsupported_version(id.as_ref(), supported));
            }
            return Ok(session_required(id.as_ref()));
        };
        let Some(child) = self.child(&sid) else {
            return Ok(session_not_found(id.as_ref()));
        };
        let Some(id) = id.filter(|_| summary.kind == Kind::Request) else {
            // A notification or a response to the child's request: no answer will come.
            child.send(&message).await?;
            let mut resp = Response::new(body::full(Bytes::new()));
            *resp.status_mut() = StatusCode::ACCEPTED;
            return Ok(resp);
        };
        let key = id.to_string();
        let token = serde_json::from_slice::<Value>(&message)
            .ok()
            .and_then(|v| v.pointer("/params/_meta/progressToken").cloned())
            .map(|t| t.to_string());
        let rx = match child.register(key.clone(), token) {
            Ok(rx) => rx,
            Err(RegisterError::Ended) => return Ok(session_not_found(Some(&id))),
            Err(RegisterError::Duplicate) => {
                return Ok(body::rpc_error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    "Bad Request: a request with this id is already in flight",
                    Some(&id),
                ))
            }
        };
        let mut guard = CancelOnDrop {
            child: Arc::clone(&child),
            key,
            id,
            done: false,
            on_drop: None,
        };
        if let Err(err) = child.send(&message).await {
            child.unregister(&guard.key);
            guard.done = true;
            return Err(err);
        }
        if accepts_event_stream(&headers) {
            return Ok(event_stream(rx, Some(guard), None));
        }
        self.json_answer(rx, guard).await
    }

    /// Waits for the response alone (the client accepts only JSON), bounded by the upstream timeout.
    async fn json_answer(
        &self,
        mut rx: mpsc::Receiver<Routed>,
        mut guard: CancelOnDrop,
    ) -> Result<Response<Body>, UpstreamError> {
        match tokio::time::timeout(self.timeout, response_of(&mut rx)).await {
            Ok(Some(response)) => {
                guard.done = true;
                Ok(json(StatusCode::OK, response))
            }
            Ok(None) => {
                guard.done = true;
                Err(UpstreamError::Protocol(
                    "the stdio server ended before answering".to_owned(),
                ))
            }
            // The guard cancels the request at the child as it drops.
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
        }
    }

    /// Starts a child for a new session and relays the `initialize`.
    async fn initialize(
        &self,
        message: &[u8],
        id: Option<Value>,
    ) -> Result<Response<Body>, UpstreamError> {
        let id = id.unwrap_or(Value::Null);
        let (sid, child) = match self.spare.as_ref().and_then(Spare::take) {
            Some(spare) => spare,
            None => {
                let sid = mint_session_id()?;
                let child = Child::spawn(&self.cfg, &sid, false)?;
                (sid, child)
            }
        };
        // If this future is dropped (the client left mid-initialize), the child must not be left running.
        let mut unclaimed = ShutdownUnlessClaimed(Some(Arc::clone(&child)));
        let outcome = async {
            let mut rx = child.register(id.to_string(), None).map_err(|_| {
                UpstreamError::Protocol("the stdio server ended at once".to_owned())
            })?;
            child.send(message).await?;
            match tokio::time::timeout(self.timeout, response_of(&mut rx)).await {
                Err(_) => Err(UpstreamError::Timeout(self.timeout)),
                Ok(None) => Err(UpstreamError::Protocol(format!(
                    "the stdio server ended before answering initialize: {}",
                    child.ended().unwrap_or_default()
                ))),
                Ok(Some(response)) => Ok(response),
            }
        }
        .await;
        let response = match outcome {
            Ok(r) => r,
            Err(err) => {
                // A child that exited at once, or never answered: tell the client now, end the child in the
                // background (bounded: three 2 s steps).
                unclaimed.0 = None;
                if child.is_alive() {
                    let child = Arc::clone(&child);
                    tokio::spawn(async move { child.shutdown().await });
                } else {
                    let _ = child.shutdown().await;
                }
                let err = match err {
                    UpstreamError::Protocol(_) | UpstreamError::Connect(_) if !child.is_alive() => {
                        UpstreamError::Connect(format!(
                            "the stdio server ended before answering initialize: {}",
                            child.ended().unwrap_or_default()
                        ))
                    }
                    other => other,
                };
                return Err(err);
            }
        };
        let result = serde_json::from_slice::<Value>(&response)
            .ok()
            .and_then(|mut v| v.get_mut("result").map(Value::take));
        let ok = result.is_some();
        if let Some(facts) = result
            .map(|r| crate::discovery::Facts::of_result(&r))
            .filter(|f| f.name.is_some())
        {
            *self.facts.lock().unwrap_or_else(|p| p.into_inner()) = Some(facts);
        }
        if !ok || !child.is_alive() {
            // The server refused initialize: relay its error, keep no session.
            unclaimed.0 = None;
            let _ = child.shutdown().await;
            return Ok(json(StatusCode::OK, response));
        }
        tracing::info!(session.id = %sid, child.pid = child.pid, "Stdio session started.");
        self.metrics.stdio_child(true);
        tokio::spawn({
            let (child, metrics) = (Arc::clone(&child), Arc::clone(&self.metrics));
            async move {
                child.wait_ended().await;
                metrics.stdio_child(false);
            }
        });
        unclaimed.0 = None;
        self.children().insert(sid.clone().into(), child);
        let mut resp = json(StatusCode::OK, response);
        if let Ok(v) = HeaderValue::from_str(&sid) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        Ok(resp)
    }

    fn get(&self, sid: Option<String>) -> Response<Body> {
        let Some(sid) = sid else {
            return session_required(None);
        };
        let Some(child) = self.child(&sid) else {
            return session_not_found(None);
        };
        match child.open_standalone() {
            Some(rx) => event_stream(rx, None, None),
            None => body::rpc_error(
                StatusCode::CONFLICT,
                code::INVALID_REQUEST,
                "Conflict: this session already has a GET stream open",
                None,
            ),
        }
    }

    async fn delete(&self, sid: Option<String>) -> Response<Body> {
        let Some(sid) = sid else {
            return session_required(None);
        };
        match self.end_session(&sid).await {
            Ok(StatusCode::OK) => Response::new(body::full(Bytes::new())),
            _ => session_not_found(None),
        }
    }

    /// Ends a session: forgets it and shuts its child down (bounded: three steps of 2 s at most). 200, or 404
    /// when the session was unknown.
    pub(crate) async fn end_session(&self, sid: &str) -> Result<StatusCode, UpstreamError> {
        if let Some(pool) = &self.pool {
            return Ok(pool.end_session(sid));
        }
        let Some(child) = self.children().remove(sid) else {
            return Ok(StatusCode::NOT_FOUND);
        };
        let how = child.shutdown().await;
        tracing::info!(session.id = %sid, child.pid = child.pid, exit = how.as_deref().unwrap_or("unknown"), "Stdio session ended.");
        Ok(StatusCode::OK)
    }

    /// Forwards `signal` to every child's process group (SIGHUP, SIGUSR1, SIGUSR2 received by the gateway).
    pub(crate) fn signal_children(&self, signal: nix::sys::signal::Signal) {
        if let Some(pool) = &self.pool {
            pool.signal(signal);
        }
        if let Some(spare) = &self.spare {
            spare.signal(signal);
        }
        let children: Vec<Arc<Child>> = self.children().values().cloned().collect();
        for child in children {
            child.signal(signal);
        }
    }

    /// Shuts every child down (the gateway is stopping), a bounded number at a time.
    pub(crate) async fn close(&self) {
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
        if let Some(spare) = &self.spare {
            spare.close().await;
        }
        let all: Vec<(Box<str>, Arc<Child>)> = self.children().drain().collect();
        let mut set = tokio::task::JoinSet::new();
        for (sid, child) in all {
            while set.len() >= CLOSE_CONCURRENCY {
                let _ = set.join_next().await;
            }
            set.spawn(async move {
                let how = child.shutdown().await;
                tracing::info!(session.id = %sid, child.pid = child.pid, exit = how.as_deref().unwrap_or("unknown"), "Stdio session ended.");
            });
        }
        while set.join_next().await.is_some() {}
    }

    /// The readiness probe.
    ///
    /// Session mode: a `ping` to the warm spare (see `spare`), bounded by `opts.timeouts.total`; no process is
    /// started for it unless the spare is missing or has exited.
    ///
    /// Pool mode: not ready while no pool child is running (whatever the probe says), so `/ready` is 503 while
    /// no child can start; else a real MCP probe that starts the command once with the probe engine's stdio
    /// target (era detection, handshake, `tools/list`, `ping`) and shuts it down.
    pub(crate) async fn probe(&self, opts: &ProbeOptions) -> ProbeReport {
        if let Some(spare) = &self.spare {
            return spare.probe(opts.timeouts.total, self.label()).await;
        }
        if let Some(report) = self.known_unavailable() {
            return report;
        }
        lifeline_mcp::probe(&Target::Stdio(self.command()), opts).await
    }

    /// Pool mode with no running child: unusable, known without a probe (see `Upstream::known_unavailable`).
    pub(crate) fn known_unavailable(&self) -> Option<ProbeReport> {
        let pool = self
            .pool
            .as_ref()
            .map(Pools::current)
            .filter(|p| p.running() == 0)?;
        let mut report = ProbeReport::failed(
            self.label(),
            lifeline_mcp::probe::Failure::new(
                lifeline_mcp::Reason::ConnectRefused,
                pool.unavailable().to_string(),
            ),
            lifeline_mcp::probe::Timings::default(),
            String::new(),
        );
        report.transport = Some(lifeline_mcp::TransportKind::Stdio);
        Some(report)
    }

    pub(crate) fn label(&self) -> String {
        Target::Stdio(self.command()).label()
    }
}

/// Shuts a child down in the background when dropped still holding it.
struct ShutdownUnlessClaimed(Option<Arc<Child>>);

impl Drop for ShutdownUnlessClaimed {
    fn drop(&mut self) {
        let Some(child) = self.0.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.shutdown().await;
            });
        }
    }
}

/// `message` on one line (§stdio: messages are newline-delimited and MUST NOT contain embedded newlines).
/// Outside strings a raw CR/LF in JSON can only be whitespace (inside strings they must be escaped), so blanking
/// them keeps the message identical.
fn single_line(message: &[u8]) -> Vec<u8> {
    message
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect()
}

fn json(status: StatusCode, message: Bytes) -> Response<Body> {
    let mut resp = Response::new(body::full(message));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// 400 for a session-mode request without `Mcp-Session-Id` (2025-11-25 `basic/transports` §Session Management 2:
/// after initialization every request carries it).
fn session_required(id: Option<&Value>) -> Response<Body> {
    body::rpc_error(
        StatusCode::BAD_REQUEST,
        code::INVALID_REQUEST,
        "Bad Request: Mcp-Session-Id header is required (send initialize first)",
        id,
    )
}

fn session_not_found(id: Option<&Value>) -> Response<Body> {
    body::rpc_error(
        StatusCode::NOT_FOUND,
        code::SESSION_NOT_FOUND,
        "Session not found",
        id,
    )
}

/// The 400 for a body that cannot go to a child as one message: a JSON-RPC batch (2025-03-26 only; a stdio
/// message is a single request, notification or response) or not JSON-RPC at all.
fn refuse_unrelayable(kind: Kind) -> Option<Response<Body>> {
    match kind {
        Kind::Batch => Some(body::rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "Bad Request: JSON-RPC batches are not supported",
            None,
        )),
        Kind::Invalid => Some(body::rpc_error(
            StatusCode::BAD_REQUEST,
            code::PARSE_ERROR,
            "Parse error: the body is not a JSON-RPC message",
            None,
        )),
        _ => None,
    }
}

/// Whether a request without a session is a modern (2026-07-28) one: `server/discover`, or an
/// `MCP-Protocol-Version: 2026-07-28` header (2026-07-28 `basic/transports/streamable-http`).
fn is_modern(summary: &rpc::Summary, headers: &HeaderMap) -> bool {
    summary.label == "server/discover"
        || headers
            .get("mcp-protocol-version")
            .is_some_and(|v| v.as_bytes() == lifeline_mcp::era::MODERN_VERSION.as_bytes())
}

/// `UnsupportedProtocolVersion` (-32022, 2026-07-28 `basic/lifecycle` §Version Negotiation) listing `supported`,
/// with 400.
fn unsupported_version(id: Option<&Value>, supported: Vec<Value>) -> Response<Body> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": lifeline_mcp::era::modern_error::UNSUPPORTED_PROTOCOL_VERSION,
            "message": "Unsupported protocol version: this server speaks only the versions listed",
            "data": {"supported": supported, "requested": lifeline_mcp::era::MODERN_VERSION},
        },
    });
    body::json_response(StatusCode::BAD_REQUEST, &body)
}

/// Whether the client accepts an SSE answer (2025-11-25 §Sending Messages 2: clients list both types; one that
/// lists only `application/json` gets JSON).
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// A new session id: 128 random bits from the OS, hex (2025-11-25 §Session Management 1: globally unique and
/// cryptographically secure; visible ASCII).
fn mint_session_id() -> Result<String, UpstreamError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| {
            UpstreamError::Protocol(format!("reading /dev/urandom for a session id: {e}"))
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::stream::Rewrite;
    use super::*;

    #[test]
    fn session_ids_are_random_hex() {
        let a = mint_session_id().expect("urandom");
        let b = mint_session_id().expect("urandom");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn pool_rewrites_are_restored() {
        let r = Rewrite {
            id: serde_json::json!("client-7"),
            progress_token: Some(serde_json::json!(42)),
        };
        let back = r.restore(br#"{"jsonrpc":"2.0","id":"lifeline-9","result":{"x":1}}"#);
        let v: Value = serde_json::from_slice(&back).expect("JSON");
        assert_eq!(v["id"], "client-7");
        assert_eq!(v["result"]["x"], 1);
        let back = r.restore(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"lifeline-p-9","progress":1}}"#);
        let v: Value = serde_json::from_slice(&back).expect("JSON");
        assert_eq!(v["params"]["progressToken"], 42);
        assert!(v.get("id").is_none());
    }

    #[test]
    fn messages_are_put_on_one_line() {
        let pretty = b"{\n  \"jsonrpc\": \"2.0\",\r\n  \"method\": \"a\\nb\"\n}";
        let line = single_line(pretty);
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        let v: Value = serde_json::from_slice(&line).expect("still JSON");
        assert_eq!(v["method"], "a\nb");
    }

    #[test]
    fn restored_response_equals_the_parsed_rewrite() {
        let r = Rewrite {
            id: serde_json::json!({"client": [1, "two"]}),
            progress_token: None,
        };
        for message in [
            r#"{"result":{"tools":[{"name":"echo","id":"lifeline-3"}]},"jsonrpc":"2.0","id":"lifeline-3"}"#,
            r#"{"jsonrpc":"2.0","id":"lifeline-4","error":{"code":-32601,"message":"nope \"id\""}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":null}"#,
        ] {
            let spliced: Value = serde_json::from_slice(&r.restore_response(message.as_bytes()))
                .expect("the spliced response is JSON");
            let parsed: Value =
                serde_json::from_slice(&r.restore(message.as_bytes())).expect("JSON");
            assert_eq!(spliced, parsed, "{message}");
            assert_eq!(spliced["id"], r.id);
        }
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts_event_stream(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_event_stream(&h));
    }
}
