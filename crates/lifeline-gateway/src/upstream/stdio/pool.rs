//! Pool mode (`--stdio-mode pool`): `--pool-size` long-lived children, each initialized once by the gateway
//! (2025-11-25 `basic/lifecycle` §Initialization), shared by every client.
//!
//! - A legacy client's `initialize` is answered by the gateway with the `InitializeResult` its child gave, and a
//!   gateway-minted session pinned to the child with the fewest sessions (per-connection state such as a
//!   logging level stays with one child). When that child dies, the session answers 404 and the client
//!   re-initializes onto a live one (2025-11-25 `basic/transports` §Session Management 4).
//! - Every request gets a gateway-unique JSON-RPC id and progress token before it reaches the child, and the
//!   client's own are restored on the way back, so responses and progress reach only their client. The child's
//!   own requests (sampling, elicitation, roots) are refused and its other notifications dropped: on a shared
//!   child no single client owns them.
//! - A client that leaves mid-request makes the gateway send `notifications/cancelled` with the child's id; a
//!   client's own `notifications/cancelled` is forwarded with its `requestId` rewritten the same way.
//! - Modern (2026-07-28) requests: a stdio connection serves one era (a dual-era server refuses `initialize`
//!   after `server/discover`), so with `--pool-size` ≥ 2 every second child is started modern when the server
//!   answers `server/discover` with 2026-07-28 (2026-07-28 `basic/transports/stdio` §Backward Compatibility) and
//!   serves the modern, stateless requests; the others are initialized legacy. With no modern child, a modern
//!   client gets `UnsupportedProtocolVersion` (-32022) listing the version the children speak (2026-07-28
//!   `basic/lifecycle` §Version Negotiation), never a hang.
//! - A child that dies is restarted with exponential backoff (250 ms doubling to 30 s; reset once a child has
//!   lived 30 s); restarts are counted in `lifeline_gateway_stdio_restarts_total`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderValue;
use http::{HeaderMap, Method, Response, StatusCode};
use lifeline_mcp::era;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::child::{Child, RegisterError, Routed};
use super::stream::{event_stream, response_of, CancelOnDrop, Rewrite};
use super::{
    accepts_event_stream, is_modern, json, mint_session_id, refuse_unrelayable, session_not_found,
    session_required, single_line, unsupported_version,
};
use crate::body::{self, code, Body};
use crate::config::StdioConfig;
use crate::metrics::Metrics;
use crate::proxy::{session_id, SESSION_HEADER};
use crate::rpc::{self, Kind};
use crate::upstream::UpstreamError;

/// First wait before restarting a child that died.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest wait between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Bound on the gateway's own `initialize` of a pool child.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a child may stay silent on `server/discover` before it is taken as legacy (the probe engine's
/// default wait for the same question).
const DISCOVER_WAIT: Duration = Duration::from_secs(2);

type InflightMap = HashMap<(Box<str>, String), (Arc<Child>, Value)>;

/// The pool.
#[derive(Debug)]
pub(super) struct Pool {
    cfg: StdioConfig,
    timeout: Duration,
    slots: Vec<Mutex<Slot>>,
    /// Gateway-minted sessions → (slot, generation of the child they were pinned to).
    sessions: Mutex<HashMap<Box<str>, (usize, u64)>>,
    next_id: AtomicU64,
    /// Requests in flight by (session, client id as JSON text) → (child, the id the child knows), so a client's
    /// own `notifications/cancelled` reaches the right child under the right id. Entries live as long as the
    /// request's response stream.
    inflight: Arc<Mutex<InflightMap>>,
    closing: watch::Sender<bool>,
    /// Bumped whenever a session is pinned or unpinned and whenever a slot's child becomes ready: what a reload
    /// waits on ([`Pool::wait_until`]) instead of polling.
    changed: watch::Sender<u64>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct Slot {
    child: Option<Arc<Child>>,
    /// Bumped at every start, so sessions pinned to a dead child are recognised.
    generation: u64,
    /// The child's `InitializeResult` (legacy) or `DiscoverResult` (modern).
    init: Option<Value>,
    /// Whether the running child serves the modern era.
    modern: bool,
    last_error: Option<String>,
}

impl Pool {
    pub(super) fn new(cfg: StdioConfig, timeout: Duration, metrics: Arc<Metrics>) -> Pool {
        let slots = (0..cfg.pool_size)
            .map(|_| Mutex::new(Slot::default()))
            .collect();
        Pool {
            cfg,
            timeout,
            slots,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            inflight: Arc::new(Mutex::new(HashMap::new())),
            closing: watch::Sender::new(false),
            changed: watch::Sender::new(0),
            metrics,
        }
    }

    /// Wakes every [`Pool::wait_until`].
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Forgets session `sid`; whether it was pinned here.
    fn unpin(&self, sid: &str) -> bool {
        let was = self.sessions().remove(sid).is_some();
        if was {
            self.bump();
        }
        was
    }

    /// Waits until `done(self)` holds (checked again at every session pinned or unpinned and every child that
    /// becomes ready) or `deadline` passes; returns whether it holds.
    pub(super) async fn wait_until(
        &self,
        deadline: tokio::time::Instant,
        done: impl Fn(&Pool) -> bool,
    ) -> bool {
        // Subscribed before the first check: a change after it wakes the loop, so none is missed.
        let mut rx = self.changed.subscribe();
        loop {
            if done(self) {
                return true;
            }
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        return done(self);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return done(self),
            }
        }
    }

    fn slot(&self, i: usize) -> MutexGuard<'_, Slot> {
        // Every update is a few field writes, so a poisoned lock still holds a consistent slot.
        self.slots[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inflight(&self) -> MutexGuard<'_, InflightMap> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<Box<str>, (usize, u64)>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts one supervisor task per slot; they end when [`Pool::close`] is called.
    pub(super) fn start(self: &Arc<Self>) {
        for i in 0..self.slots.len() {
            tokio::spawn(Arc::clone(self).supervise(i));
        }
    }

    /// Slots (`--pool-size`).
    pub(super) fn size(&self) -> usize {
        self.slots.len()
    }

    /// Whether session `sid` is pinned to this pool (this generation).
    pub(super) fn has_session(&self, sid: &str) -> bool {
        self.sessions().contains_key(sid)
    }

    /// Sessions pinned to this pool.
    pub(super) fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Children running and initialized.
    pub(super) fn running(&self) -> usize {
        (0..self.slots.len())
            .filter(|i| {
                let slot = self.slot(*i);
                slot.init.is_some() && slot.child.as_ref().is_some_and(|c| c.is_alive())
            })
            .count()
    }

    /// Keeps slot `i` filled: start, initialize, wait for the child to end, back off, again.
    async fn supervise(self: Arc<Self>, i: usize) {
        let mut closing = self.closing.subscribe();
        let mut backoff = BACKOFF_START;
        let mut first = true;
        while !*closing.borrow() {
            if !first {
                self.metrics.stdio_restart();
            }
            first = false;
            let started = Instant::now();
            match self.start_child(i).await {
                Ok(child) => {
                    let era = if self.slot(i).modern {
                        "modern"
                    } else {
                        "legacy"
                    };
                    tracing::info!(
                        pool.slot = i,
                        child.pid = child.pid,
                        era,
                        "Pool child ready."
                    );
                    self.metrics.stdio_child(true);
                    let closed = tokio::select! {
                        _ = child.wait_ended() => false,
                        _ = closing.wait_for(|c| *c) => true,
                    };
                    self.metrics.stdio_child(false);
                    if closed {
                        return;
                    }
                    let why = child.ended().unwrap_or_default();
                    tracing::warn!(pool.slot = i, child.pid = child.pid, reason = %why, "Pool child ended; restarting.");
                    self.slot(i).last_error = Some(format!("the child ended: {why}"));
                }
                Err(err) => {
                    tracing::warn!(pool.slot = i, error = %err, "Pool child failed to start.");
                    self.slot(i).last_error = Some(err.to_string());
                }
            }
            if started.elapsed() >= STABLE_AFTER {
                backoff = BACKOFF_START;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = closing.wait_for(|c| *c) => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Spawns the child of slot `i` and gets it ready (see [`Pool::handshake`]), preferring the modern era on
    /// every second slot.
    async fn start_child(&self, i: usize) -> Result<Arc<Child>, UpstreamError> {
        let child = Child::spawn(&self.cfg, &format!("pool-{i}"), true)?;
        let prefer_modern = self.slots.len() >= 2 && i % 2 == 1;
        match self.handshake(&child, prefer_modern).await {
            Ok((result, modern)) => {
                let mut slot = self.slot(i);
                slot.generation += 1;
                slot.child = Some(Arc::clone(&child));
                slot.init = Some(result);
                slot.modern = modern;
                slot.last_error = None;
                drop(slot);
                self.bump();
                Ok(child)
            }
            Err(err) => {
                let _ = child.shutdown().await;
                Err(err)
            }
        }
    }

    /// Gets a fresh child ready, bounded by the upstream timeout (at most [`INIT_TIMEOUT`]); returns the
    /// `DiscoverResult` or `InitializeResult` and whether the child is modern.
    ///
    /// Preferring modern: `server/discover` first (2026-07-28 `basic/transports/stdio` §Backward
    /// Compatibility). A child silent for [`DISCOVER_WAIT`] (a legacy server that ignores requests before
    /// `initialize`, or one still starting) is also sent `initialize`, and whichever answer comes first decides
    /// (see [`Pool::race`]): a modern discover answer wins, and a refused `initialize` waits for the pending
    /// discover answer, since a modern-only server that was only slow to start may refuse the `initialize`
    /// before it answers the discover (the probe engine likewise lets a late modern answer win).
    /// Otherwise: `initialize`, then `notifications/initialized`.
    async fn handshake(
        &self,
        child: &Child,
        prefer_modern: bool,
    ) -> Result<(Value, bool), UpstreamError> {
        let wait = self.timeout.min(INIT_TIMEOUT);
        let deadline = tokio::time::Instant::now() + wait;
        let ended = || {
            UpstreamError::Connect(format!(
                "the stdio server ended before answering initialize: {}",
                child.ended().unwrap_or_default()
            ))
        };
        let mut pending_discover = None;
        if prefer_modern {
            match discover(child).await {
                Discovered::Modern(result) => return Ok((result, true)),
                Discovered::Legacy => {}
                Discovered::Silent(rx) => pending_discover = Some(rx),
            }
        }
        let id = json!("lifeline-init");
        let mut rx = child
            .register(id.to_string(), None)
            .map_err(|_| UpstreamError::Protocol("the stdio server ended at once".to_owned()))?;
        let request = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "initialize",
            "params": era::initialize_params("lifeline-gateway", env!("CARGO_PKG_VERSION")),
        });
        child.send(request.to_string().as_bytes()).await?;
        let timed_out = || {
            UpstreamError::Protocol(format!(
                "the stdio server did not answer initialize within {wait:?}"
            ))
        };
        if let Some(mut discover_rx) = pending_discover {
            let outcome = self.race(child, &mut discover_rx, &mut rx, deadline).await;
            child.unregister(&json!(DISCOVER_ID).to_string());
            match outcome {
                Race::Modern(result) => {
                    child.unregister(&id.to_string());
                    return Ok((result, true));
                }
                Race::Initialize(answer) => return self.initialized(child, &answer).await,
                Race::TimedOut => return Err(timed_out()),
                Race::Ended => return Err(ended()),
                Race::NotModern => {}
            }
        }
        let answer = tokio::time::timeout_at(deadline, response_of(&mut rx))
            .await
            .map_err(|_| timed_out())?
            .ok_or_else(ended)?;
        self.initialized(child, &answer).await
    }

    /// Waits for the first of a pending `server/discover` answer and an `initialize` answer (see
    /// [`Pool::handshake`]), until `deadline`.
    async fn race(
        &self,
        child: &Child,
        discover_rx: &mut mpsc::Receiver<Routed>,
        init_rx: &mut mpsc::Receiver<Routed>,
        deadline: tokio::time::Instant,
    ) -> Race {
        let first = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                answer = response_of(discover_rx) => (true, answer),
                answer = response_of(init_rx) => (false, answer),
            }
        })
        .await;
        match first {
            Err(_) => Race::TimedOut,
            Ok((_, None)) => Race::Ended,
            Ok((true, Some(answer))) => match modern_result(&answer) {
                Some(result) => Race::Modern(result),
                None => Race::NotModern,
            },
            // A modern-only server refuses the `initialize`, often before it answers the discover (its
            // requests run concurrently): then the discover answer decides.
            Ok((false, Some(answer))) if is_error(&answer) => {
                let late = tokio::time::timeout_at(deadline, response_of(discover_rx))
                    .await
                    .ok()
                    .flatten();
                match late.as_deref().and_then(modern_result) {
                    Some(result) => Race::Modern(result),
                    None if child.is_alive() => Race::Initialize(answer),
                    None => Race::Ended,
                }
            }
            Ok((false, Some(answer))) => Race::Initialize(answer),
        }
    }

    /// Accepts an `initialize` answer: its result, after `notifications/initialized` was sent.
    async fn initialized(
        &self,
        child: &Child,
        answer: &[u8],
    ) -> Result<(Value, bool), UpstreamError> {
        let value: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
        let result = value.get("result").cloned().ok_or_else(|| {
            UpstreamError::Protocol(format!("initialize was refused: {}", value["error"]))
        })?;
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        child.send(note.to_string().as_bytes()).await?;
        Ok((result, false))
    }

    /// The live legacy child of a slot with its generation and `InitializeResult`.
    fn live(&self, i: usize) -> Option<(Arc<Child>, u64, Value)> {
        let slot = self.slot(i);
        let child = slot
            .child
            .as_ref()
            .filter(|c| c.is_alive() && !slot.modern)?;
        Some((Arc::clone(child), slot.generation, slot.init.clone()?))
    }

    /// A live modern child, taking turns.
    fn modern_child(&self) -> Option<Arc<Child>> {
        let n = self.slots.len();
        let start = self.next_id.load(Ordering::Relaxed) as usize;
        (0..n).map(|k| (start + k) % n).find_map(|i| {
            let slot = self.slot(i);
            slot.child
                .as_ref()
                .filter(|c| slot.modern && c.is_alive())
                .map(Arc::clone)
        })
    }

    /// Why no child can serve, for the client's error and the log.
    pub(super) fn unavailable(&self) -> UpstreamError {
        let why = (0..self.slots.len())
            .find_map(|i| self.slot(i).last_error.clone())
            .unwrap_or_else(|| "no pool child has started yet".to_owned());
        UpstreamError::Connect(format!("no stdio server is running: {why}"))
    }

    pub(super) async fn forward(
        &self,
        method: Method,
        headers: HeaderMap,
        bytes: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let sid = session_id(&headers);
        match method {
            Method::POST => self.post(sid, headers, bytes).await,
            Method::DELETE => Ok(match sid {
                Some(sid) if self.unpin(&sid) => Response::new(body::full(Bytes::new())),
                _ => session_not_found(None),
            }),
            // No standalone stream: a shared child's unrelated messages belong to no one client (2025-11-25
            // §Listening for Messages: 405 when the server offers none).
            _ => Ok(body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method Not Allowed: this gateway offers no standalone stream in pool mode",
                None,
            )),
        }
    }

    async fn post(
        &self,
        sid: Option<String>,
        headers: HeaderMap,
        bytes: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let summary = rpc::summarize(&bytes);
        if let Some(refusal) = refuse_unrelayable(summary.kind) {
            return Ok(refusal);
        }
        let Some(sid) = sid else {
            if summary.is_initialize() {
                return self.initialize(summary.id.unwrap_or(Value::Null));
            }
            if is_modern(&summary, &headers) {
                return match (self.modern_child(), summary.kind, summary.id) {
                    (Some(child), Kind::Request, Some(id)) => {
                        self.relay(None, child, id, &bytes, &headers).await
                    }
                    // A modern notification (e.g. a cancellation): nothing to map it to on a shared child.
                    (Some(_), _, _) => {
                        let mut resp = Response::new(body::full(Bytes::new()));
                        *resp.status_mut() = StatusCode::ACCEPTED;
                        Ok(resp)
                    }
                    (None, _, id) => Ok(self.unsupported_version(id.as_ref())),
                };
            }
            return Ok(session_required(summary.id.as_ref()));
        };
        let pinned = self.sessions().get(sid.as_str()).copied();
        let live = pinned.and_then(|(i, generation)| {
            self.live(i)
                .filter(|(_, g, _)| *g == generation)
                .map(|(c, _, _)| c)
        });
        let Some(child) = live else {
            if pinned.is_some() {
                self.unpin(&sid);
                tracing::info!(session.id = %sid, "Pool session's child ended; 404 so the client re-initializes.");
            }
            return Ok(session_not_found(summary.id.as_ref()));
        };
        let (Kind::Request, Some(client_id)) = (summary.kind, summary.id) else {
            if summary.label == "notifications/cancelled" {
                self.forward_cancel(&sid, &bytes).await;
            }
            // notifications/initialized was the gateway's to send; responses answer requests the pool never
            // forwards; other notifications name state no shared child can map to this client.
            let mut resp = Response::new(body::full(Bytes::new()));
            *resp.status_mut() = StatusCode::ACCEPTED;
            return Ok(resp);
        };
        self.relay(Some(&sid), child, client_id, &bytes, &headers)
            .await
    }

    /// A client's `notifications/cancelled` (2025-11-25 `basic/utilities/cancellation`) for one of its requests
    /// in flight, sent to the child with the id the child knows; unknown ids are ignored, as the spec allows.
    async fn forward_cancel(&self, sid: &str, bytes: &[u8]) {
        let Ok(mut note) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let Some(request_id) = note.pointer("/params/requestId").map(Value::to_string) else {
            return;
        };
        let target = self
            .inflight()
            .get(&(Box::<str>::from(sid), request_id))
            .cloned();
        let Some((child, child_id)) = target else {
            return;
        };
        note["params"]["requestId"] = child_id;
        tracing::debug!(session.id = %sid, child.pid = child.pid, "Client cancellation forwarded.");
        let _ = child.send(&single_line(note.to_string().as_bytes())).await;
    }

    /// Sends one client request to `child` under a gateway-unique id and progress token, and answers with its
    /// stream (or its response alone, as JSON, for a client that accepts only JSON).
    async fn relay(
        &self,
        sid: Option<&str>,
        child: Arc<Child>,
        client_id: Value,
        bytes: &[u8],
        headers: &HeaderMap,
    ) -> Result<Response<Body>, UpstreamError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let child_id = json!(format!("lifeline-{n}"));
        let (line, client_token, child_token) = match splice_id(bytes, &child_id) {
            Some(line) => (line, None, None),
            None => {
                let Ok(mut message) = serde_json::from_slice::<Value>(bytes) else {
                    return Ok(body::rpc_error(
                        StatusCode::BAD_REQUEST,
                        code::PARSE_ERROR,
                        "Parse error",
                        None,
                    ));
                };
                message["id"] = child_id.clone();
                let client_token = message.pointer("/params/_meta/progressToken").cloned();
                let child_token = client_token
                    .as_ref()
                    .map(|_| json!(format!("lifeline-p-{n}")));
                if let (Some(token), Some(meta)) =
                    (&child_token, message.pointer_mut("/params/_meta"))
                {
                    meta["progressToken"] = token.clone();
                }
                (
                    single_line(message.to_string().as_bytes()),
                    client_token,
                    child_token,
                )
            }
        };
        let rx = match child.register(child_id.to_string(), child_token.map(|t| t.to_string())) {
            Ok(rx) => rx,
            Err(RegisterError::Ended | RegisterError::Duplicate) => {
                return Ok(session_not_found(Some(&client_id)))
            }
        };
        let on_drop = sid.map(|sid| {
            let key = (Box::<str>::from(sid), client_id.to_string());
            self.inflight()
                .insert(key.clone(), (Arc::clone(&child), child_id.clone()));
            let inflight = Arc::clone(&self.inflight);
            Box::new(move || {
                inflight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
            }) as Box<dyn FnOnce() + Send>
        });
        let mut guard = CancelOnDrop {
            child: Arc::clone(&child),
            key: child_id.to_string(),
            id: child_id,
            done: false,
            on_drop,
        };
        if let Err(err) = child.send(&line).await {
            child.unregister(&guard.key);
            guard.done = true;
            return Err(err);
        }
        let rewrite = Rewrite {
            id: client_id,
            progress_token: client_token,
        };
        if accepts_event_stream(headers) {
            return Ok(event_stream(rx, Some(guard), Some(rewrite)));
        }
        let mut rx = rx;
        match tokio::time::timeout(self.timeout, response_of(&mut rx)).await {
            Ok(Some(response)) => {
                guard.done = true;
                Ok(json(StatusCode::OK, rewrite.restore_response(&response)))
            }
            Ok(None) => {
                guard.done = true;
                Err(UpstreamError::Protocol(
                    "the stdio server ended before answering".to_owned(),
                ))
            }
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
        }
    }

    /// Answers a legacy `initialize` with a live child's `InitializeResult` and a session pinned to it.
    fn initialize(&self, id: Value) -> Result<Response<Body>, UpstreamError> {
        let counts = {
            let sessions = self.sessions();
            let mut counts = vec![0usize; self.slots.len()];
            for (slot, _) in sessions.values() {
                if let Some(c) = counts.get_mut(*slot) {
                    *c += 1;
                }
            }
            counts
        };
        let pick = (0..self.slots.len())
            .filter_map(|i| self.live(i).map(|(_, g, init)| (counts[i], i, g, init)))
            .min_by_key(|(count, i, _, _)| (*count, *i));
        let Some((_, i, generation, init)) = pick else {
            return Err(self.unavailable());
        };
        let sid = mint_session_id()?;
        self.sessions().insert(sid.clone().into(), (i, generation));
        self.bump();
        tracing::debug!(session.id = %sid, pool.slot = i, "Pool session started.");
        let body = json!({"jsonrpc": "2.0", "id": id, "result": init});
        let mut resp = json(StatusCode::OK, Bytes::from(body.to_string()));
        if let Ok(v) = HeaderValue::from_str(&sid) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        Ok(resp)
    }

    /// 2026-07-28: the children speak only the legacy version they were initialized with.
    fn unsupported_version(&self, id: Option<&Value>) -> Response<Body> {
        let supported: Vec<Value> = (0..self.slots.len())
            .find_map(|i| self.live(i))
            .and_then(|(_, _, init)| init.get("protocolVersion").cloned())
            .map_or_else(|| vec![json!(era::LATEST_LEGACY_VERSION)], |v| vec![v]);
        unsupported_version(id, supported)
    }

    /// Forgets a session (idle TTL, drain). The child stays: it is shared.
    pub(super) fn end_session(&self, sid: &str) -> StatusCode {
        if self.unpin(sid) {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        }
    }

    /// Sends `signal` to every pool child's process group.
    pub(super) fn signal(&self, signal: nix::sys::signal::Signal) {
        for i in 0..self.slots.len() {
            if let Some(child) = self.slot(i).child.as_ref() {
                child.signal(signal);
            }
        }
    }

    /// Stops the supervisors and shuts every child down.
    pub(super) async fn close(&self) {
        self.closing.send_replace(true);
        let children: Vec<Arc<Child>> = (0..self.slots.len())
            .filter_map(|i| self.slot(i).child.take())
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for child in children {
            set.spawn(async move { child.shutdown().await });
        }
        while set.join_next().await.is_some() {}
    }
}

/// The id of the gateway's own `server/discover` to a pool child.
const DISCOVER_ID: &str = "lifeline-discover";

/// How [`Pool::race`] ended.
enum Race {
    /// The discover answer came and lists 2026-07-28.
    Modern(Value),
    /// The discover answer came and does not: wait for the `initialize` answer.
    NotModern,
    /// The `initialize` answer came first (and the discover, if it came too, is not modern).
    Initialize(Bytes),
    /// Neither came before the deadline.
    TimedOut,
    /// The child ended.
    Ended,
}

/// What a fresh child said to `server/discover` within [`DISCOVER_WAIT`].
enum Discovered {
    /// A `DiscoverResult` listing 2026-07-28.
    Modern(Value),
    /// Anything else (an error, an older version, the child ended).
    Legacy,
    /// Nothing yet: the request is still registered, its answer may come on this receiver.
    Silent(mpsc::Receiver<Routed>),
}

/// Asks a fresh child `server/discover` (2026-07-28 `basic/lifecycle`).
async fn discover(child: &Child) -> Discovered {
    let key = json!(DISCOVER_ID).to_string();
    let Ok(mut rx) = child.register(key.clone(), None) else {
        return Discovered::Legacy;
    };
    let request = json!({
        "jsonrpc": "2.0",
        "id": DISCOVER_ID,
        "method": "server/discover",
        "params": era::modern_params(Value::Null, "lifeline-gateway", env!("CARGO_PKG_VERSION")),
    });
    if child.send(request.to_string().as_bytes()).await.is_err() {
        child.unregister(&key);
        return Discovered::Legacy;
    }
    let answer = match tokio::time::timeout(DISCOVER_WAIT, response_of(&mut rx)).await {
        Err(_) => return Discovered::Silent(rx),
        Ok(answer) => answer,
    };
    child.unregister(&key);
    match answer.as_deref().and_then(modern_result) {
        Some(result) => Discovered::Modern(result),
        None => Discovered::Legacy,
    }
}

/// Whether `answer` is a JSON-RPC error response.
fn is_error(answer: &[u8]) -> bool {
    serde_json::from_slice::<Value>(answer).is_ok_and(|v| v.get("error").is_some())
}

/// The `DiscoverResult` in `answer` when it lists 2026-07-28.
fn modern_result(answer: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(answer).ok()?;
    let result = value.get("result")?;
    let modern = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|v| v == era::MODERN_VERSION));
    modern.then(|| result.clone())
}

/// The client's request with `child_id` spliced over its top-level id, on one line (`stdio`: newline-delimited):
/// the usual request, copied once instead of parsed into a tree and serialised again (issue 17). `None` (the
/// caller rewrites the parsed message) when the body may carry a progress token, which must be replaced too, or
/// spells a key with escapes (`\u`), or the id's span is not found. The body already passed `rpc::summarize`
/// (one JSON-RPC request: valid JSON, a single `id` member).
fn splice_id(bytes: &[u8], child_id: &Value) -> Option<Vec<u8>> {
    if contains(bytes, b"progressToken") || contains(bytes, b"\\u") {
        return None;
    }
    let span = super::json_member::value_span(bytes, "id")?;
    let id = child_id.to_string();
    let mut line = Vec::with_capacity(bytes.len() + id.len());
    line.extend_from_slice(&bytes[..span.start]);
    line.extend_from_slice(id.as_bytes());
    line.extend_from_slice(&bytes[span.end..]);
    // A newline in JSON is whitespace outside strings (a raw one inside a string is not JSON).
    for b in &mut line {
        if matches!(*b, b'\n' | b'\r') {
            *b = b' ';
        }
    }
    Some(line)
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|&b| b == first) {
        let start = from + at + 1;
        if haystack[start..].starts_with(rest) {
            return true;
        }
        from = start;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spliced_request_is_the_parsed_rewrite() {
        let child_id = json!("lifeline-9");
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            "{\n  \"method\": \"tools/call\",\n  \"params\": {\"name\": \"echo\", \"arguments\": {\"id\": 7}},\n  \"id\": \"c-1\", \"jsonrpc\": \"2.0\"\n}",
            r#"{"jsonrpc":"2.0","id":{"deep":[1,"}"]},"method":"ping"}"#,
        ] {
            let line = splice_id(body.as_bytes(), &child_id).expect("spliced");
            assert!(!line.contains(&b'\n'), "one line");
            let mut want: Value = serde_json::from_str(body).expect("JSON");
            want["id"] = child_id.clone();
            let got: Value = serde_json::from_slice(&line).expect("still JSON");
            assert_eq!(got, want, "{body}");
        }
        // A progress token must be replaced too, and a key may hide behind escapes: the parsed rewrite does it.
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":5}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progress\u0054oken":5}}}"#,
        ] {
            assert_eq!(splice_id(body.as_bytes(), &child_id), None, "{body}");
        }
    }
}
