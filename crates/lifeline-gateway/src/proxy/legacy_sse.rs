//! The deprecated 2024-11-05 HTTP+SSE transport (2024-11-05 `basic/transports` §HTTP with SSE; kept for old
//! clients per 2026-07-28 `streamable-http` §HTTP+SSE Transport (2024-11-05)): the client GETs the gateway's
//! `/sse`, the gateway opens the upstream's stream and relays it, replacing the `endpoint` event's URL with the
//! gateway's own message path and an opaque per-stream token (`/messages?sessionId=TOKEN`); POSTs there go to
//! the URL the upstream announced. The stream is the session: it holds a session slot while open.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::server::RequestBody;
use http::{Method, Request, Response, StatusCode, Uri};
use lifeline_core::Phase;

use super::{Ctx, Proxy};
use crate::body::{self, code, Body};
use crate::edge;
use crate::rpc::{self, Kind};
use crate::sse::{LegacyLink, ListRequests, Mode, Pending};
use crate::upstream::{Endpoint, EndpointRef, Forward, Route};

/// Bound on requests tracked as pending per stream.
const MAX_PENDING_PER_STREAM: usize = 1024;

/// Open 2024-11-05 streams by token.
#[derive(Debug, Default)]
pub(crate) struct Links {
    map: Mutex<HashMap<Box<str>, Arc<Link>>>,
    counter: AtomicU64,
    keys: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Link {
    /// The upstream message URL, once the upstream announced it, and the pool endpoint serving the stream.
    upstream: Mutex<Option<(Uri, Option<EndpointRef>)>>,
    pending: Arc<Pending>,
    /// `tools/list` requests whose answer on the stream is filtered for the principal that posted them.
    lists: Arc<ListRequests>,
}

/// Removes a link when its stream ends.
pub(crate) struct LinkGuard {
    links: Arc<Links>,
    token: Box<str>,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        self.links.lock().remove(&self.token);
    }
}

impl Links {
    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Link>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open streams.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A fresh unguessable token: 128 bits from SipHash keyed by the process's random `RandomState` keys over a
    /// counter, so tokens never repeat and cannot be predicted from earlier ones.
    fn mint(self: &Arc<Self>) -> (Box<str>, Arc<Link>, LinkGuard) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut a = self.keys.build_hasher();
        a.write_u64(n);
        let mut b = self.keys.build_hasher();
        b.write_u64(!n);
        b.write_u64(a.finish());
        let token: Box<str> = format!("{:016x}{:016x}", a.finish(), b.finish()).into();
        let link = Arc::new(Link::default());
        self.lock().insert(token.clone(), Arc::clone(&link));
        let guard = LinkGuard {
            links: Arc::clone(self),
            token: token.clone(),
        };
        (token, link, guard)
    }

    fn get(&self, token: &str) -> Option<Arc<Link>> {
        self.lock().get(token).cloned()
    }
}

impl Proxy {
    /// `GET /sse`.
    pub(super) async fn sse_stream(
        &self,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        ctx.method = "SSE";
        if let Err(r) = edge::check_host_and_origin(&self.cfg.edge, req.headers()) {
            return self.reject(r, None);
        }
        if req.method() != Method::GET {
            return body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method Not Allowed",
                None,
            );
        }
        if !self.upstream.serves_sse() {
            return body::rpc_error(
                StatusCode::NOT_FOUND,
                code::INVALID_REQUEST,
                "Not Found: the upstream serves no HTTP+SSE endpoint",
                None,
            );
        }
        if self.shutdown.phase() >= Phase::Refusing {
            return self.draining(None);
        }
        let Some(reservation) = self.sessions.reserve() else {
            return self.too_many_sessions(None);
        };
        let (token, link, guard) = self.links.mint();
        let resp = match self
            .forward_bodyless(
                Method::GET,
                Endpoint::Sse,
                req.into_parts().0.headers,
                peer,
                Route::Balanced,
            )
            .await
        {
            Ok(resp) => resp,
            Err(failed) => return failed,
        };
        if !resp.status().is_success() {
            return self.relay_response(resp, Mode::Response);
        }
        ctx.reservation = Some(reservation);
        ctx.link = Some(guard);
        let pending = Arc::clone(&link.pending);
        let lists = Arc::clone(&link.lists);
        let upstream = Arc::clone(&self.upstream);
        let messages_path = self.cfg.paths.messages.clone();
        let home = super::served_by(&resp);
        let rewrite_endpoint = Box::new(move |announced: &str| {
            let uri = upstream.resolve_message_endpoint(announced, home.as_ref())?;
            *link.upstream.lock().unwrap_or_else(|p| p.into_inner()) = Some((uri, home.clone()));
            Some(format!("{messages_path}?sessionId={token}"))
        });
        self.relay_response(
            resp,
            Mode::Legacy(LegacyLink {
                pending,
                rewrite_endpoint,
                lists,
            }),
        )
    }

    /// `POST /messages?sessionId=TOKEN`.
    pub(super) async fn sse_message(
        &self,
        req: Request<RequestBody>,
        peer: SocketAddr,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        if let Err(r) = edge::check_host_and_origin(&self.cfg.edge, req.headers()) {
            return self.reject(r, None);
        }
        if req.method() != Method::POST {
            return body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method Not Allowed",
                None,
            );
        }
        if let Err(r) = edge::check_content_type(req.headers()) {
            return self.reject(r, None);
        }
        let token = req
            .uri()
            .query()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "sessionId"))
            .map(|(_, v)| v.into_owned());
        let link = token.as_deref().and_then(|t| self.links.get(t));
        let target = link
            .as_ref()
            .and_then(|l| l.upstream.lock().unwrap_or_else(|p| p.into_inner()).clone());
        let (Some(link), Some((target, home))) = (link, target) else {
            return self.session_gone(None);
        };
        let (parts, incoming) = req.into_parts();
        let bytes = match self.read_body(incoming).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let summary = rpc::summarize(&bytes);
        ctx.method = summary.label;
        ctx.start_trace(&bytes, &parts.headers, peer);
        // No session id in the audit line: this transport's `sessionId` is the capability to post on the stream.
        if let Some(resp) = self.refusal(&summary, &parts.headers, None, ctx) {
            return resp;
        }
        if self.shutdown.phase() >= Phase::Refusing && link.pending.len() == 0 {
            // The stream is closing: the client must reconnect (elsewhere) and start over.
            return self.session_gone(summary.id.as_ref());
        }
        if let Some(filter) = self.list_filter(&summary, ctx) {
            // Its answer comes on the stream: filtered there for this poster (`sse`).
            if !link.lists.add(filter, MAX_PENDING_PER_STREAM) {
                return body::rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::SERVER_ERROR,
                    "Service Unavailable: too many tools/list requests awaiting their answer on this stream",
                    summary.id.as_ref(),
                );
            }
        }
        if let (Kind::Request, Some(id)) = (summary.kind, summary.id.as_ref()) {
            // Before forwarding: the response may reach the stream before this POST returns.
            link.pending.add(id, MAX_PENDING_PER_STREAM);
        }
        let (headers, forwarded) = self.upstream_headers(parts.headers, peer);
        let endpoint = Endpoint::Message(target);
        let (headers, bytes) = match &mut ctx.trace {
            Some(trace) => trace.attempt(&self.upstream, &endpoint, headers, bytes),
            None => (headers, bytes),
        };
        match self
            .upstream
            .forward(Forward {
                method: Method::POST,
                endpoint,
                headers,
                body: bytes,
                route: Route::to(home.as_ref()),
                forwarded,
            })
            .await
        {
            Ok(resp) => {
                if let Some(trace) = &ctx.trace {
                    trace.upstream_status(resp.status().as_u16());
                }
                if let (false, Some(id)) = (resp.status().is_success(), summary.id.as_ref()) {
                    // Refused: its response will never come on the stream.
                    link.pending.remove(id);
                    link.lists.remove(id);
                }
                self.relay_response(resp, Mode::Response)
            }
            Err(err) => {
                if let Some(trace) = &ctx.trace {
                    trace.upstream_failed(err.reason());
                }
                if let Some(id) = summary.id.as_ref() {
                    link.pending.remove(id);
                    link.lists.remove(id);
                }
                self.upstream_failed(&err, summary.id.as_ref())
            }
        }
    }
}
