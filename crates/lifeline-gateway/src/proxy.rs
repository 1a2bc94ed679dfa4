//! The client side (`--listen`). Routes:
//!
//! - `POST|GET|DELETE {mcp_path}` (default `/mcp`): Streamable HTTP, both eras, passed through to the upstream.
//! - `GET {sse_path}` (default `/sse`): the 2024-11-05 HTTP+SSE stream, relayed with its `endpoint` rewritten.
//! - `POST {messages_path}?sessionId=…` (default `/messages`): that transport's message endpoint.
//! - anything else: 404.
//!
//! With auth on, `GET|HEAD|OPTIONS /.well-known/oauth-protected-resource[/{mcp_path}]` serve the RFC 9728
//! metadata (`auth::metadata`), and every request to the three MCP routes is authenticated first, before any
//! other check (`auth`); its principal rides along in [`Ctx::principal`].
//!
//! Every request passes the edge rules (`edge`), is counted in flight until its response body ends, and is
//! subject to the drain: once refusing, new sessions and new stateless requests get 503 + `Retry-After`, and
//! idle sessions are ended (404 to their next request, so clients re-initialize elsewhere).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::server::RequestBody;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use lifeline_core::{InFlight, InFlightGuard, Phase, Shutdown};
use serde_json::Value;

use crate::auth::{self, Auth, Outcome as AuthOutcome, Principal, Reason};
use crate::body::{self, code, Body, EndObserver, Guarded};
use crate::config::GatewayConfig;
use crate::edge::{self, Reject};
use crate::metrics::Metrics;
use crate::policy::list::{self as tool_list, ListFilter};
use crate::policy::{self, Audit, Policy};
use crate::rpc::{self, Kind, Summary};
use crate::sessions::{self, Activity, Reservation, Sessions};
use crate::sse::{self, Mode, RelayOpts};
use crate::trace::{ErrorReason, RequestTrace};
use crate::upstream::{Endpoint, EndpointRef, Forward, Forwarded, Route, Upstream, UpstreamError};

mod federated;
mod legacy_sse;

pub(crate) use legacy_sse::Links;

pub(crate) use crate::http1::MCP_SESSION_ID as SESSION_HEADER;
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Everything the client-side handlers share.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) cfg: Arc<GatewayConfig>,
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) links: Arc<Links>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) inflight: InFlight,
    pub(crate) shutdown: Shutdown,
    /// The authentication layer; `None` without an `auth:` block.
    pub(crate) auth: Option<Arc<Auth>>,
    /// The policy point (per-tool rules, rate limits); `None` without rules or a limit.
    pub(crate) policy: Option<Arc<Policy>>,
    /// The federated endpoints (`servers:`, `proxy/federated.rs`); `None` without.
    pub(crate) federation: Option<Arc<crate::federation::Federation>>,
}

/// A request's bookkeeping, held until its response body ends: in-flight count, session activity, the session
/// slot of a stream, and the metrics recorded at the end.
pub(crate) struct Ctx {
    metrics: Arc<Metrics>,
    start: Instant,
    method: &'static str,
    status: u16,
    _inflight: InFlightGuard,
    activity: Option<Activity>,
    reservation: Option<Reservation>,
    link: Option<legacy_sse::LinkGuard>,
    /// The audit record of a `tools/call` when auth is on (`policy::Audit`), written when this is dropped.
    audit: Option<Box<Audit>>,
    /// The message's spans, only when traces are on (see `trace`); they end when this is dropped. Boxed, so the
    /// bookkeeping of every request stays small when traces are off.
    trace: Option<Box<RequestTrace>>,
    /// Who sent the request, when auth is on and it passed (`auth::Auth::authenticate`).
    pub(crate) principal: Option<Arc<Principal>>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some(audit) = &self.audit {
            audit.emit(self.status, self.start.elapsed());
        }
        let trace_id = self.trace.as_ref().and_then(|t| t.sampled_trace_id());
        self.metrics
            .request_done(self.method, self.status, self.start.elapsed(), trace_id);
    }
}

impl Ctx {
    /// Opens the spans of the client message `body` (already summarized into `self.method`), only when traces
    /// are on.
    fn start_trace(&mut self, body: &[u8], headers: &HeaderMap, peer: SocketAddr) {
        if lifeline_core::telemetry::traces_enabled() {
            self.trace = Some(RequestTrace::start(body, headers, self.method, peer));
        }
    }
}

impl EndObserver for Ctx {
    fn body_failed(&mut self) {
        self.metrics.upstream_error("body");
        if let Some(audit) = self.audit.as_mut() {
            audit.outcome = crate::policy::Outcome::Failed;
        }
    }
}

impl Proxy {
    /// Handles one client request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        mut req: Request<RequestBody>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let mut ctx = Ctx {
            metrics: Arc::clone(&self.metrics),
            start: Instant::now(),
            method: "other",
            status: 0,
            _inflight: self.inflight.enter(),
            activity: None,
            reservation: None,
            link: None,
            audit: None,
            trace: None,
            principal: None,
        };
        let path = req.uri().path();
        let federated = self.federation.as_ref().filter(|f| f.serves(path)).cloned();
        let protected = path == self.cfg.paths.mcp
            || path == self.cfg.paths.sse
            || path == self.cfg.paths.messages
            || federated.is_some();
        if let Some(auth) = &self.auth {
            if protected {
                // Before any other check: a client takes any 401 as "my token is bad", and GETs its endpoint to
                // detect the transport (issue 12 §Challenge).
                match Box::pin(auth.authenticate(&mut req)).await {
                    Ok(principal) => ctx.principal = Some(principal),
                    Err(resp) => return self.finish(resp, ctx),
                }
            } else if auth::metadata::is_metadata_path(auth.config(), &self.cfg.paths, path) {
                let resp = auth::metadata::serve(
                    auth.config(),
                    &self.cfg.paths,
                    req.method(),
                    req.headers(),
                );
                return self.finish(resp, ctx);
            }
        }
        let path = req.uri().path();
        // Every branch but the Streamable HTTP endpoint is boxed: an async fn's future is as large as its
        // largest branch and is moved whole (into the server's connection task, and at each await on the way down), so the rare branches
        // (federation alone is kilobytes) must not size the common one (issue 17).
        let resp = if let Some(fed) = federated {
            Box::pin(self.federated(fed, req, peer, &mut ctx)).await
        } else if path == self.cfg.paths.mcp {
            self.mcp(req, peer, &mut ctx).await
        } else if path == self.cfg.paths.sse {
            Box::pin(self.sse_stream(req, peer, &mut ctx)).await
        } else if path == self.cfg.paths.messages {
            Box::pin(self.sse_message(req, peer, &mut ctx)).await
        } else {
            body::rpc_error(
                StatusCode::NOT_FOUND,
                code::INVALID_REQUEST,
                "Not Found",
                None,
            )
        };
        self.finish(resp, ctx)
    }

    /// Attaches the bookkeeping to the response body and applies the drain's `Connection: close`.
    fn finish(&self, resp: Response<Body>, mut ctx: Ctx) -> Response<Body> {
        ctx.status = resp.status().as_u16();
        if let Some(trace) = &ctx.trace {
            trace.finish(ctx.status, resp.extensions().get::<ErrorReason>().copied());
        }
        let (mut parts, body) = resp.into_parts();
        // Draining: shed persistent connections so clients and load balancers reconnect to other instances
        // (RFC 9112 §9.6). (A request body left unread closes the connection too, with the same field: the
        // server does that, `server/conn.rs`.)
        if self.shutdown.phase() >= Phase::Draining {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let body = Guarded::new(body, ctx);
        Response::from_parts(parts, http_body_util::BodyExt::boxed_unsync(body))
    }

    fn reject(&self, r: Reject, id: Option<&Value>) -> Response<Body> {
        self.metrics.rejected(r.reason);
        with_reason(body::rpc_error(r.status, r.code, r.message, id), r.reason)
    }

    fn draining(&self, id: Option<&Value>) -> Response<Body> {
        self.metrics.rejected("draining");
        with_reason(
            body::with_retry_after(
                body::rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::SERVER_ERROR,
                    "Service Unavailable: this instance is shutting down; retry on another",
                    id,
                ),
                self.cfg.retry_after,
            ),
            "draining",
        )
    }

    /// `--max-sessions` reached: 503 + `Retry-After`, so the client retries (on another instance).
    fn too_many_sessions(&self, id: Option<&Value>) -> Response<Body> {
        self.metrics.rejected("max_sessions");
        with_reason(
            body::with_retry_after(
                body::rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::SERVER_ERROR,
                    "Service Unavailable: too many sessions on this instance",
                    id,
                ),
                self.cfg.retry_after,
            ),
            "max_sessions",
        )
    }

    /// Forwards a request without a body (GET, DELETE) to `endpoint`; an upstream failure becomes the client's
    /// error response.
    async fn forward_bodyless(
        &self,
        method: Method,
        endpoint: Endpoint,
        client_headers: HeaderMap,
        peer: SocketAddr,
        route: Route,
    ) -> Result<Response<Body>, Response<Body>> {
        let (headers, forwarded) = self.upstream_headers(client_headers, peer);
        self.upstream
            .forward(Forward {
                method,
                endpoint,
                headers,
                body: Bytes::new(),
                route,
                forwarded,
            })
            .await
            .map_err(|err| self.upstream_failed(&err, None))
    }

    fn session_gone(&self, id: Option<&Value>) -> Response<Body> {
        body::rpc_error(
            StatusCode::NOT_FOUND,
            code::SESSION_NOT_FOUND,
            "Session not found",
            id,
        )
    }

    fn upstream_failed(&self, err: &UpstreamError, id: Option<&Value>) -> Response<Body> {
        self.metrics.upstream_error(err.reason());
        tracing::warn!(upstream = %self.upstream.label(), reason = err.reason(), error = %err, "Upstream request failed.");
        let message = match err {
            UpstreamError::Timeout(_) => {
                "Gateway Timeout: the upstream MCP server did not answer in time"
            }
            UpstreamError::NotServed(_) => "Not Found: the upstream serves no such endpoint",
            _ => "Bad Gateway: the upstream MCP server is unavailable",
        };
        with_reason(
            body::rpc_error(err.status(), code::SERVER_ERROR, message, id),
            err.reason(),
        )
    }

    /// The Streamable HTTP endpoint.
    async fn mcp(
        &self,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        if let Err(r) = edge::check_host_and_origin(&self.cfg.edge, req.headers()) {
            return self.reject(r, None);
        }
        if !self.upstream.serves_mcp() {
            return body::rpc_error(
                StatusCode::NOT_FOUND,
                code::INVALID_REQUEST,
                "Not Found: use the SSE endpoint",
                None,
            );
        }
        match *req.method() {
            Method::POST => self.mcp_post(req, peer, ctx).await,
            // Boxed: a standalone stream or a session's end is rare next to POSTs (see `handle`).
            Method::GET => Box::pin(self.mcp_get(req, peer, ctx)).await,
            Method::DELETE => Box::pin(self.mcp_delete(req, peer, ctx)).await,
            _ => method_not_allowed(),
        }
    }

    async fn mcp_post(
        &self,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        if let Err(r) = edge::check_post_accept(req.headers())
            .and_then(|()| edge::check_content_type(req.headers()))
        {
            return self.reject(r, None);
        }
        let (mut parts, incoming) = req.into_parts();
        let bytes = match self.read_body(incoming).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let summary = rpc::summarize(&bytes);
        ctx.method = summary.label;
        ctx.start_trace(&bytes, &parts.headers, peer);
        let id = summary.id.as_ref();
        // sealed session ids (sessions.rs): the token becomes the upstream's id here, and goes back on the answer.
        let Ok(unsealed) = self.sessions.unseal(&mut parts.headers, subject(ctx)) else {
            return self.session_gone(id);
        };
        let init_params = self.sessions.init_params(summary.is_initialize(), &bytes);
        let session = session_id(&parts.headers);
        if let Some(resp) = self.refusal(&summary, &parts.headers, session.as_deref(), ctx) {
            return resp;
        }
        let list = self.list_filter(&summary, ctx);
        let refusing = self.shutdown.phase() >= Phase::Refusing;

        match &session {
            Some(sid) => {
                if !self.sessions.usable_by(sid, subject(ctx)) {
                    return self.session_gone(id);
                }
                // A sealed session is every gateway replica's (`sessions.rs`): a draining edge keeps serving it
                // until the drain ends, its client moves on with the `Connection: close` (never a 404).
                if refusing && unsealed.is_none() && !self.session_busy(sid) {
                    self.end_session_now(sid);
                    return self.session_gone(id);
                }
                ctx.activity = self.sessions.activity(sid);
            }
            None if summary.is_initialize() => {
                if refusing {
                    return self.draining(id);
                }
                match self.sessions.reserve() {
                    Some(r) => ctx.reservation = Some(r),
                    None => return self.too_many_sessions(id),
                }
            }
            // A stateless request: modern (2026-07-28), or legacy against a server that mints no session.
            None if refusing && summary.kind != Kind::Response => return self.draining(id),
            None => {}
        }

        let (headers, forwarded) = self.upstream_headers(parts.headers, peer);
        let (headers, bytes) = match &mut ctx.trace {
            Some(trace) => trace.attempt(&self.upstream, &Endpoint::Mcp, headers, bytes),
            None => (headers, bytes),
        };
        // pools: a known session goes to the endpoint that holds it (table, else sealed id); the rest is balanced.
        let home = ctx.activity.as_ref().and_then(Activity::home);
        let route = self.sessions.route(home, unsealed.as_ref(), &self.upstream);
        let fwd = Forward {
            method: Method::POST,
            endpoint: Endpoint::Mcp,
            headers,
            body: bytes,
            route,
            forwarded,
        };
        // A session whose upstream is gone is recovered on another endpoint (sessions/recover.rs). Boxed: the
        // upstream call's future is most of this one's size, and every future above it is moved whole (by
        // the server, and at each await on the way down); one allocation costs less than those copies (issue 17).
        let forwarded = Box::pin(sessions::forward(
            &self.sessions,
            &self.upstream,
            fwd,
            unsealed.as_ref(),
            subject(ctx),
        ));
        let mut resp = match forwarded.await {
            Ok(resp) => resp,
            Err(err) => {
                if let Some(trace) = &ctx.trace {
                    trace.upstream_failed(err.reason());
                }
                return self.upstream_failed(&err, id);
            }
        };

        let status = resp.status();
        if let Some(trace) = &ctx.trace {
            trace.upstream_status(status.as_u16());
        }
        if let Some(reservation) = ctx.reservation.take() {
            // 2025-11-25 `basic/transports` §Session Management 1: the session id arrives on the response
            // carrying the InitializeResult.
            if let (true, Some(minted)) = (status.is_success(), session_id(resp.headers())) {
                if let Some(trace) = &ctx.trace {
                    trace.session(&minted);
                }
                if reservation.commit(&minted, served_by(&resp), subject(ctx)) {
                    tracing::debug!(session.id = %minted, "Session opened.");
                }
            }
        }
        if let Some(sid) = &session {
            self.after_session_response(sid, status, served_by(&resp), ctx);
        }
        let served = served_by(&resp);
        self.sessions.seal_response(
            resp.headers_mut(),
            unsealed.as_ref(),
            init_params,
            served.as_ref(),
            subject(ctx),
        );
        match list {
            // A JSON answer to a filtered tools/list: read (bounded) and rewritten before it is relayed.
            Some(filter) if !is_event_stream(resp.headers()) => {
                let resp = tool_list::filter_json(resp, &filter).await;
                self.relay_response(resp, Mode::Response)
            }
            list => self.relay_response_with(resp, Mode::Response, list),
        }
    }

    /// The checks every parsed client message passes before it is forwarded (`/mcp` and `/messages`); `Some`
    /// answer when one refuses it. In order:
    /// the mirrored headers against the body (`edge::check_mirrored_headers`, every era), then, for an
    /// authenticated principal under a policy: no batches, the per-tool rules for a `tools/call` (403
    /// `insufficient_scope`), the principal's rate limit for a request (429). Starts the audit record of a
    /// `tools/call` (`policy::Audit`) and marks it with a refusal's reason.
    fn refusal(
        &self,
        summary: &Summary,
        headers: &HeaderMap,
        session: Option<&str>,
        ctx: &mut Ctx,
    ) -> Option<Response<Body>> {
        let id = summary.id.as_ref();
        let is_call = summary.kind == Kind::Request && summary.label == "tools/call";
        if let (true, Some(principal)) = (is_call, &ctx.principal) {
            ctx.audit = Some(Box::new(Audit {
                principal: Arc::clone(principal),
                tool: summary.name.clone().unwrap_or_default(),
                request_id: id.map_or_else(String::new, Value::to_string),
                session: session.map(str::to_owned),
                outcome: policy::Outcome::Forwarded,
            }));
        }
        let deny = |ctx: &mut Ctx, reason: &'static str| {
            if let Some(audit) = ctx.audit.as_mut() {
                audit.outcome = policy::Outcome::Denied(reason);
            }
        };
        if let Err(r) = edge::check_mirrored_headers(summary, headers) {
            deny(ctx, r.reason);
            return Some(self.reject(r, id));
        }
        let (Some(auth), Some(policy), Some(principal)) =
            (&self.auth, &self.policy, &ctx.principal)
        else {
            return None;
        };
        // Fail closed on what the one parse could not read as a single message: a batch (2025-03-26 only) would
        // carry calls past the rules and the limiter, and a body this parser refuses (a duplicate `method` or
        // `params` key, say) may still be read by the upstream's parser, which often takes the last duplicate.
        let unreadable = match summary.kind {
            Kind::Batch => Some((
                "batch_with_auth",
                "Bad Request: JSON-RPC batches are not accepted by this gateway's policy; send one message per request",
            )),
            Kind::Invalid => Some((
                "invalid_with_auth",
                "Bad Request: the body is not one well-formed JSON-RPC message (no duplicate keys)",
            )),
            _ => None,
        };
        if let Some((reason, message)) = unreadable {
            self.metrics.rejected(reason);
            deny(ctx, reason);
            return Some(with_reason(
                body::rpc_error(
                    StatusCode::BAD_REQUEST,
                    code::INVALID_REQUEST,
                    message,
                    None,
                ),
                reason,
            ));
        }
        if let Some(tool) = summary.tool() {
            if let Err(required) = policy.rules.check(&principal.scopes, tool) {
                auth.record(AuthOutcome::Denied, Reason::InsufficientScope);
                deny(ctx, "insufficient_scope");
                return Some(with_reason(
                    auth.challenger().insufficient_scope(headers, required, id),
                    "insufficient_scope",
                ));
            }
        }
        if let (Kind::Request, Some(limiter)) = (summary.kind, &policy.limiter) {
            let subject: Arc<str> = Arc::from(principal.subject.as_str());
            if let Err(wait) = limiter.check(&subject, summary.tool()) {
                auth.record(AuthOutcome::Denied, Reason::RateLimited);
                deny(ctx, "rate_limited");
                return Some(with_reason(policy::rate_limited(id, wait), "rate_limited"));
            }
        }
        None
    }

    /// The filter for the answer to a `tools/list` request of a principal the per-tool rules restrict; `None`
    /// for anything else (the answer is relayed untouched).
    fn list_filter(&self, summary: &Summary, ctx: &Ctx) -> Option<ListFilter> {
        let (Some(policy), Some(principal), Some(id)) = (&self.policy, &ctx.principal, &summary.id)
        else {
            return None;
        };
        (summary.kind == Kind::Request && summary.label == "tools/list" && !policy.rules.is_empty())
            .then(|| ListFilter {
                id: Some(id.clone()),
                rules: Arc::clone(&policy.rules),
                principal: Arc::clone(principal),
            })
    }

    async fn mcp_get(
        &self,
        mut req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        ctx.method = "GET";
        if let Err(r) = edge::check_get_accept(req.headers()) {
            return self.reject(r, None);
        }
        let Ok(unsealed) = self.sessions.unseal(req.headers_mut(), subject(ctx)) else {
            return self.session_gone(None);
        };
        let session = session_id(req.headers());
        if session
            .as_deref()
            .is_some_and(|sid| !self.sessions.usable_by(sid, subject(ctx)))
        {
            return self.session_gone(None);
        }
        if self.shutdown.phase() >= Phase::Refusing {
            // A new standalone stream while draining: move the client on.
            return match &session {
                Some(sid) if unsealed.is_some() || self.session_busy(sid) => self.draining(None),
                Some(sid) => {
                    self.end_session_now(sid);
                    self.session_gone(None)
                }
                None => self.draining(None),
            };
        }
        if let Some(sid) = &session {
            ctx.activity = self.sessions.activity(sid);
        }
        let home = ctx.activity.as_ref().and_then(Activity::home);
        let route = self.sessions.route(home, unsealed.as_ref(), &self.upstream);
        let mut resp = match self
            .forward_bodyless(
                Method::GET,
                Endpoint::Mcp,
                req.into_parts().0.headers,
                peer,
                route,
            )
            .await
        {
            Ok(resp) => resp,
            Err(failed) => return failed,
        };
        if let Some(sid) = &session {
            self.after_session_response(sid, resp.status(), served_by(&resp), ctx);
        }
        let served = served_by(&resp);
        self.sessions.seal_response(
            resp.headers_mut(),
            unsealed.as_ref(),
            None,
            served.as_ref(),
            subject(ctx),
        );
        // A resumed POST stream (`Last-Event-ID`) may replay a tools/list answer here: filter any.
        let list = match (&self.policy, &ctx.principal) {
            (Some(policy), Some(principal)) if !policy.rules.is_empty() => Some(ListFilter {
                id: None,
                rules: Arc::clone(&policy.rules),
                principal: Arc::clone(principal),
            }),
            _ => None,
        };
        self.relay_response_with(resp, Mode::Standalone, list)
    }

    async fn mcp_delete(
        &self,
        mut req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        ctx.method = "DELETE";
        let Ok(unsealed) = self.sessions.unseal(req.headers_mut(), subject(ctx)) else {
            return self.session_gone(None);
        };
        let session = session_id(req.headers());
        if session
            .as_deref()
            .is_some_and(|sid| !self.sessions.usable_by(sid, subject(ctx)))
        {
            return self.session_gone(None);
        }
        let home = session.as_deref().and_then(|sid| self.sessions.home(sid));
        let resp = match self
            .forward_bodyless(
                Method::DELETE,
                Endpoint::Mcp,
                req.into_parts().0.headers,
                peer,
                self.sessions
                    .route(home.as_ref(), unsealed.as_ref(), &self.upstream),
            )
            .await
        {
            Ok(resp) => resp,
            Err(failed) => return failed,
        };
        if let Some(sid) = &session {
            if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
                self.sessions.forget(sid);
            }
        }
        self.relay_response(resp, Mode::Response)
    }

    /// Session bookkeeping after the upstream endpoint `served` answered a request that carried `sid`.
    fn after_session_response(
        &self,
        sid: &str,
        status: StatusCode,
        served: Option<EndpointRef>,
        ctx: &mut Ctx,
    ) {
        if status == StatusCode::NOT_FOUND {
            // 2025-11-25 `basic/transports` §Session Management 3–4: the upstream ended the session; its 404
            // goes to the client unchanged, which then re-initializes. Forget it here too.
            ctx.activity = None;
            if self.sessions.forget(sid).is_some() {
                tracing::debug!(session.id = %sid, "Session ended by the upstream.");
            }
        } else if status.is_success()
            && ctx.activity.is_none()
            && self.sessions.adopt(sid, served, subject(ctx))
        {
            // A session the gateway did not see created (e.g. minted before a gateway restart).
            ctx.activity = self.sessions.activity(sid);
        }
    }

    /// Whether `sid` has requests in flight through this gateway.
    fn session_busy(&self, sid: &str) -> bool {
        self.sessions.active_count(sid).is_some_and(|n| n > 0)
    }

    /// Forgets `sid` and sends the upstream its `DELETE` in the background (bounded by the DELETE timeout).
    fn end_session_now(&self, sid: &str) {
        if let Some(ended) = self.sessions.forget(sid) {
            let upstream = Arc::clone(&self.upstream);
            tokio::spawn(async move {
                let _ = upstream.end_session(&ended.id, ended.home.as_ref()).await;
            });
        }
    }

    /// Reads the request body, bounded by `max_body_bytes` (413 beyond, answered at once: a client that asked for
    /// `Expect: 100-continue` is never invited to send it, and one that sends its whole body before reading, as
    /// Python's `urllib` does, still reads the 413, because the server closes such a connection gracefully,
    /// reading and discarding the rest: `server/conn.rs`, `linger`).
    async fn read_body(&self, mut incoming: RequestBody) -> Result<Bytes, Response<Body>> {
        let limit = self.cfg.edge.max_body_bytes;
        let too_large = || {
            self.metrics.rejected("body_too_large");
            body::rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                "Payload Too Large: the request body exceeds the gateway's limit",
                None,
            )
        };
        // The declared `Content-Length`, as the server framed the body.
        let declared = http_body::Body::size_hint(&incoming).exact();
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // Most bodies arrive in one frame: keep it as it is, and copy only when a second one comes.
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        let mut len = 0usize;
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                return Err(body::rpc_error(
                    StatusCode::BAD_REQUEST,
                    code::PARSE_ERROR,
                    "Bad Request: the request body could not be read",
                    None,
                ));
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            len = len.saturating_add(data.len());
            if len > limit {
                return Err(too_large());
            }
            match first.take() {
                None if rest.is_empty() => first = Some(data),
                earlier => {
                    if let Some(earlier) = earlier {
                        rest.extend_from_slice(&earlier);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| Bytes::from(rest)))
    }

    /// The client's headers as sent upstream (see `edge::upstream_request_headers`), and the `X-Forwarded-*`
    /// fields that go with them ([`Forwarded`]: the peer appended to the client's `X-Forwarded-For`, `http`, the
    /// client's `Host`).
    fn upstream_headers(&self, mut headers: HeaderMap, peer: SocketAddr) -> (HeaderMap, Forwarded) {
        let host = headers.get(header::HOST).cloned();
        // Never the client's token with auth on (the layer removed it already; validation refuses the combination).
        let forward_authorization = self.cfg.edge.forward_authorization && self.auth.is_none();
        edge::upstream_request_headers(&mut headers, forward_authorization);
        let for_ = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            // The string becomes the value without a copy (`from_str` would copy it).
            Some(prior) => {
                HeaderValue::from_maybe_shared(Bytes::from(format!("{prior}, {}", peer.ip()))).ok()
            }
            None => peer_address(peer.ip()),
        };
        let forwarded = Forwarded {
            for_,
            host,
            proto: Some(HeaderValue::from_static("http")),
        };
        (headers, forwarded)
    }

    /// Prepares an upstream response for the client: hop-by-hop headers out; SSE relayed through the
    /// keep-alive/drain relay with `X-Accel-Buffering: no` (2026-07-28 `streamable-http` §Receiving Messages:
    /// servers SHOULD send it so reverse proxies don't buffer the stream).
    fn relay_response(&self, resp: Response<Body>, mode: Mode) -> Response<Body> {
        self.relay_response_with(resp, mode, None)
    }

    /// [`relay_response`](Self::relay_response), rewriting the SSE answer to a `tools/list` request with `list`.
    fn relay_response_with(
        &self,
        resp: Response<Body>,
        mode: Mode,
        list: Option<ListFilter>,
    ) -> Response<Body> {
        let (mut parts, upstream_body) = resp.into_parts();
        edge::strip_hop_by_hop(&mut parts.headers);
        if !is_event_stream(&parts.headers) {
            return Response::from_parts(parts, upstream_body);
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        parts
            .headers
            .insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
        let body = sse::relay(
            upstream_body,
            RelayOpts {
                keepalive: self.cfg.sse_keepalive,
                retry: self.cfg.sse_retry,
                shutdown: self.shutdown.clone(),
                mode,
                list,
            },
        );
        Response::from_parts(parts, body)
    }
}

/// The `Mcp-Session-Id` of a request or response, when present and visible ASCII (2025-11-25
/// `basic/transports` §Session Management 1: "MUST only contain visible ASCII characters").
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(&SESSION_HEADER)?.to_str().ok()?;
    (!v.is_empty() && v.bytes().all(|b| (0x21..=0x7e).contains(&b))).then(|| v.to_owned())
}

/// `ip` as a header value, for `X-Forwarded-For`. The last address seen is kept per thread: a sidecar's
/// clients are few (often one: the pod's own traffic through its Service), so most requests clone a shared
/// value instead of formatting and allocating one.
fn peer_address(ip: IpAddr) -> Option<HeaderValue> {
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((seen, value)) = last.as_ref() {
            if *seen == ip {
                return Some(value.clone());
            }
        }
        let value = HeaderValue::from_maybe_shared(Bytes::from(ip.to_string())).ok()?;
        *last = Some((ip, value.clone()));
        Some(value)
    })
}

/// The pool endpoint that answered `resp` (set by the HTTP upstream), for the session table.
pub(crate) fn served_by(resp: &Response<Body>) -> Option<EndpointRef> {
    resp.extensions().get::<EndpointRef>().cloned()
}

/// The verified subject of the request, when auth is on: the owner of the sessions it creates, and the only
/// principal that may use them.
fn subject(ctx: &Ctx) -> Option<&str> {
    ctx.principal.as_deref().map(|p| p.subject.as_str())
}

/// 405 with `Allow: GET, POST, DELETE`, for a Streamable HTTP endpoint (2025-11-25 `basic/transports`).
fn method_not_allowed() -> Response<Body> {
    let mut resp = body::rpc_error(
        StatusCode::METHOD_NOT_ALLOWED,
        code::INVALID_REQUEST,
        "Method Not Allowed",
        None,
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    resp
}

/// Marks a response the proxy made itself with its bounded reason, for the request's span (`trace`); only when
/// traces are on, so the error paths allocate nothing more when they are off.
fn with_reason(mut resp: Response<Body>, reason: &'static str) -> Response<Body> {
    if lifeline_core::telemetry::traces_enabled() {
        resp.extensions_mut().insert(ErrorReason(reason));
    }
    resp
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    const SSE: &[u8] = b"text/event-stream";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes().trim_ascii_start();
        v.get(..SSE.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SSE))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_must_be_visible_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(session_id(&h), None);
        h.insert(&SESSION_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(session_id(&h).as_deref(), Some("abc-123"));
        h.insert(&SESSION_HEADER, HeaderValue::from_static("a b"));
        assert_eq!(session_id(&h), None);
    }

    #[test]
    fn event_streams_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Text/Event-Stream; charset=utf-8"),
        );
        assert!(is_event_stream(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_event_stream(&h));
    }

    /// The size of `f`'s future, without calling it (`f` only names the async fn and its argument types).
    fn future_size<A, R>(_: fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Regression guard (issue 17): an async fn's future is as large as its largest branch, and every request
    /// moves the futures of the hot path whole (the server moves the handler's, and each await moves its callee's
    /// into its caller's), so when the rare branches (federation, auth, the legacy SSE endpoints, a pool's
    /// retry, a session's recovery) sized them they cost tens of kilobytes of `memcpy` per request. Those
    /// branches are boxed; these bounds (debug build, 1.95; about 20 % above the sizes measured then) catch one
    /// that creeps back.
    #[cfg(debug_assertions)]
    #[test]
    fn hot_path_futures_stay_small() {
        type CtxRef = &'static mut Ctx;
        let sizes = [
            (
                "Proxy::handle",
                future_size(
                    |(p, r, a): (Arc<Proxy>, Request<RequestBody>, SocketAddr)| p.handle(r, a),
                ),
                4096,
            ),
            (
                "Proxy::mcp_post",
                future_size(
                    |(p, r, a, c): (&'static Proxy, Request<RequestBody>, SocketAddr, CtxRef)| {
                        p.mcp_post(r, a, c)
                    },
                ),
                2560,
            ),
            (
                "Upstream::forward",
                future_size(|(u, f): (&'static Upstream, Forward)| u.forward(f)),
                3584,
            ),
        ];
        for (name, size, bound) in sizes {
            assert!(
                size <= bound,
                "{name}'s future is {size} bytes (bound {bound})"
            );
        }
    }
}
