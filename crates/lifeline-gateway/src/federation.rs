//! The federation (issue 16; `docs/gateway-federation.md`): the named servers of `servers:` served together on
//! the MCP endpoint and each alone on `/servers/NAME/mcp`. The gateway is the MCP server its clients see there
//! (Streamable HTTP, legacy era: it answers `initialize` itself and issues its own `Mcp-Session-Id`), and a client
//! of each federated server. Routes (client listener):
//!
//! - `POST|GET|DELETE {mcp_path}`: every server, merged;
//! - `POST|GET|DELETE /servers/NAME/mcp`: server NAME alone, names as it gives them.
//!
//! Both are behind the client listener's layers (auth, edge rules, body limit, policy, metrics:
//! `proxy/federated.rs`), which hand each request over as a [`Call`]; and on the admin listener `GET /servers` (the servers, their state, names and collisions) and `GET /ready`
//! (503 while a `health: required` server is not ready; `health`).
//!
//! A client session maps to one upstream session per server, made lazily on the first request that needs that
//! server; one server's session expiring (a 404) re-creates that session alone, and one server failing gives an
//! error for its own tools only, never breaking the client's session (the half-alive-session bug of issue 16).
//! With `session_key_file` a legacy client's session id is a sealed token any replica serves (`sealed`). A
//! request routed to one server is answered as a stream when that server sends it progress or log notifications
//! before its response (`stream`).
//! Lists (`tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`: 2025-11-25 `server/tools`,
//! `server/prompts`, `server/resources`) ask every ready server at once and merge, names per `naming`, with one
//! opaque cursor holding each server's position (2025-11-25 `server/utilities/pagination`). Calls
//! (`tools/call`, `prompts/get`, `resources/read`, `completion/complete`, ...) go to the owning server with the
//! original name. `notifications/*/list_changed` from a server, and the federation's own when a server leaves or
//! returns, reach clients on their `GET` stream (2025-11-25 `basic/transports` §Listening for Messages from the
//! Server).
//!
//! Must not: hold a lock across an upstream exchange (per-server session creation is serialized by an async
//! mutex of that server's slot only), keep more than `max_sessions` client sessions, or buffer without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use lifeline_core::{Phase, Shutdown};
use lifeline_mcp::era;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::body::{self, code, Body};
use crate::config::federation::{FederationConfig, ServerConfig, ServerEra, ServerTarget};
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::proxy::SESSION_HEADER;
use crate::sessions::seal::Sealer;
use crate::upstream::{HttpUpstream, StdioUpstream, Upstream};

mod answer;
mod card;
mod client;
mod detach;
mod health;
mod modern;
mod naming;
mod route;
mod sealed;
mod stream;

use answer::Answer;
use client::{ExchangeError, Link, Relay, Reply};
pub(crate) use modern::PROTOCOL_VERSION_HEADER;
use naming::Names;
use route::List;

/// Capacity of each client session's notification channel: a client that falls further behind misses the
/// oldest (list_changed notifications repeat the same news, so nothing is lost that a re-list does not restore).
const NOTIFY_CAPACITY: usize = 64;
/// Keep-alive comment interval on a client's `GET` stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i64 = -32602;
/// Resource not found (2025-11-25 `server/resources` §Error Handling).
const RESOURCE_NOT_FOUND: i64 = -32002;
/// Most resource URIs remembered per server for routing `resources/read`.
const MAX_URIS: usize = 10_000;

/// The federation: servers, client sessions and the naming tables.
#[derive(Debug)]
pub(crate) struct Federation {
    servers: Vec<Arc<Server>>,
    sessions: Mutex<HashMap<String, Arc<ClientSession>>>,
    /// The implicit sessions of modern (stateless) clients, one per endpoint and verified principal (per client
    /// address when auth is off; `modern`). Bounded by `max_sessions`, like the legacy ones.
    modern: Mutex<HashMap<(View, Implicit), Arc<ClientSession>>>,
    tools: RwLock<Arc<Names>>,
    prompts: RwLock<Arc<Names>>,
    mcp_path: String,
    max_sessions: usize,
    idle_ttl: Duration,
    timeout: Duration,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    /// Seals legacy clients' session ids with `session_key_file` (`sealed`); `None` without one.
    sealer: Option<Sealer>,
    /// Sealed ids ended here with `DELETE` (`sealed`).
    ended: Mutex<sealed::Ended>,
    /// Room for the exchanges that run on after their legacy client left (`detach`): `max_sessions` permits.
    orphans: Arc<tokio::sync::Semaphore>,
}

/// One federated server.
#[derive(Debug)]
pub(crate) struct Server {
    cfg: ServerConfig,
    upstream: Upstream,
    health: Mutex<health::Health>,
    catalog: Mutex<Catalog>,
}

/// What a server offered at its last full listing.
#[derive(Debug, Default)]
struct Catalog {
    tools: Vec<String>,
    prompts: Vec<String>,
    uris: std::collections::HashSet<String>,
    /// A `list_changed` came: list again at the next health check.
    stale: bool,
}

/// Which servers an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum View {
    /// The merged endpoint.
    All,
    /// `/servers/NAME/mcp`.
    One(usize),
}

/// A client's session on a federated endpoint.
#[derive(Debug)]
struct ClientSession {
    view: View,
    /// The verified subject that made it, when auth is on: the only one that may use it.
    principal: Option<Arc<str>>,
    /// One slot per server: its upstream session, made on first use.
    links: Vec<tokio::sync::Mutex<Option<Arc<Link>>>>,
    notify: broadcast::Sender<Bytes>,
    last_used: Mutex<Instant>,
    /// The level a legacy client set with `logging/setLevel` (2025-11-25 `server/utilities/logging` §Setting Log
    /// Level): legacy servers were told; modern ones get it on every request as `_meta`'s
    /// `io.modelcontextprotocol/logLevel` (2026-07-28 `server/utilities/logging` §Per-request log level).
    log_level: Mutex<Option<String>>,
    /// The requests routed to one server and not answered yet, by the client's request id (its JSON text): what
    /// a `notifications/cancelled` needs (`route.rs` `relay`, [`Federation::cancel`]). One entry per request the
    /// client has open, so bounded by its connections.
    inflight: Mutex<HashMap<String, InFlight>>,
    /// The implicit session of modern (2026-07-28) clients: a request whose stream the client closes is cancelled
    /// (`route.rs` `Open`), where a legacy client's disconnect is not (2025-11-25 `basic/transports`): its request
    /// runs on without it (`detach`).
    modern_clients: bool,
}

/// A request routed to one server, until it is answered or cancelled.
#[derive(Debug)]
struct InFlight {
    server: usize,
    /// The id the gateway sent it upstream under.
    upstream_id: i64,
    /// Ends the gateway's wait for the answer (the exchange is dropped).
    cancel: tokio::sync::oneshot::Sender<()>,
}

/// One client request to a federated endpoint, as the client listener's layers pass it on (`proxy/federated.rs`:
/// authenticated, past the edge rules, its body read within `max_body_bytes`).
#[derive(Debug)]
pub(crate) struct Call {
    /// `POST`, `GET` or `DELETE` (anything else is 405).
    pub(crate) method: Method,
    /// The request path: `mcp_path` or `/servers/NAME/mcp`.
    pub(crate) path: String,
    /// `Mcp-Session-Id`, when present and visible ASCII.
    pub(crate) session: Option<String>,
    /// `MCP-Protocol-Version`, when present.
    pub(crate) protocol_version: Option<String>,
    /// The body of a `POST` (empty otherwise).
    pub(crate) body: Bytes,
    /// The verified subject (`auth::Principal::subject`) when auth is on.
    pub(crate) principal: Option<Arc<str>>,
    /// The client's address (the TCP peer).
    pub(crate) client: std::net::IpAddr,
    /// Which mirrored headers the request carries.
    pub(crate) mirrored: Mirrored,
}

/// Whether a request carries the 2026-07-28 mirrored headers (their values were checked against the body by
/// `edge::check_mirrored_headers`; a modern request must carry them, see `modern`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mirrored {
    /// `Mcp-Method` is present.
    pub(crate) method: bool,
    /// `Mcp-Name` is present.
    pub(crate) name: bool,
}

impl Call {
    /// Whose implicit session a modern request of this call runs on: the verified principal's when auth is on,
    /// else the client address's (issue 16 §Era bridging: "per verified principal (or per client when auth is
    /// off)"; a stateless request has nothing else that names its client).
    fn implicit_key(&self) -> Implicit {
        match &self.principal {
            Some(p) => Implicit::Principal(Arc::clone(p)),
            None => Implicit::Client(self.client),
        }
    }
}

/// The owner of an implicit session (see [`Call::implicit_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Implicit {
    Principal(Arc<str>),
    Client(std::net::IpAddr),
}

/// Why a request for one server failed, as the client's JSON-RPC error.
#[derive(Debug)]
struct Refusal {
    code: i64,
    message: String,
    data: Value,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Federation {
    /// The federation of `fed`, with the gateway-wide bounds of `cfg`. Starts nothing (see [`Federation::start`]).
    pub(crate) fn new(
        fed: &FederationConfig,
        cfg: &GatewayConfig,
        metrics: &Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Federation {
        let servers = fed
            .servers
            .iter()
            .map(|s| {
                let upstream = match &s.target {
                    ServerTarget::Http(up) => {
                        Upstream::Http(HttpUpstream::with_metrics(up, Arc::clone(metrics)))
                    }
                    ServerTarget::Stdio(stdio) => Upstream::Stdio(StdioUpstream::new(
                        stdio.clone(),
                        cfg.upstream.timeout,
                        Arc::clone(metrics),
                    )),
                };
                Arc::new(Server {
                    cfg: s.clone(),
                    upstream,
                    health: Mutex::new(health::Health::default()),
                    catalog: Mutex::new(Catalog::default()),
                })
            })
            .collect();
        Federation {
            servers,
            sessions: Mutex::new(HashMap::new()),
            modern: Mutex::new(HashMap::new()),
            tools: RwLock::new(Arc::new(Names::default())),
            prompts: RwLock::new(Arc::new(Names::default())),
            mcp_path: cfg.paths.mcp.clone(),
            max_sessions: cfg.sessions.max_sessions,
            idle_ttl: cfg.sessions.idle_ttl,
            timeout: cfg.upstream.timeout,
            shutdown,
            metrics: Arc::clone(metrics),
            sealer: cfg.sessions.keys.as_ref().map(Sealer::new),
            ended: Mutex::new(sealed::Ended::default()),
            orphans: Arc::new(tokio::sync::Semaphore::new(
                cfg.sessions
                    .max_sessions
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Starts each server's children (stdio) and health watch, and the idle-session sweep; all end with the drain.
    pub(crate) fn start(self: &Arc<Self>) {
        for (i, s) in self.servers.iter().enumerate() {
            s.upstream.start();
            tokio::spawn(health::watch(Arc::clone(self), i));
        }
        tokio::spawn(Arc::clone(self).sweep());
    }

    /// Whether `path` is a federated endpoint (asked by `Proxy::handle`, which then routes it to `proxy/federated.rs`).
    pub(crate) fn serves(&self, path: &str) -> bool {
        self.view(path).is_some()
    }

    fn view(&self, path: &str) -> Option<View> {
        if path == self.mcp_path {
            return Some(View::All);
        }
        let name = path.strip_prefix("/servers/")?.strip_suffix("/mcp")?;
        self.servers
            .iter()
            .position(|s| s.cfg.name == name)
            .map(View::One)
    }

    fn in_view(view: View, i: usize) -> bool {
        matches!(view, View::All) || view == View::One(i)
    }

    /// Handles one client request to a federated endpoint, once it has passed the client listener's layers
    /// (`proxy/federated.rs`: authentication, the edge rules, the body limit, the policy point).
    pub(crate) async fn handle(self: Arc<Self>, call: Call) -> Response<Body> {
        let Some(view) = self.view(&call.path) else {
            return body::rpc_error(
                StatusCode::NOT_FOUND,
                code::INVALID_REQUEST,
                "Not Found",
                None,
            );
        };
        let sid = call.session.as_deref();
        match call.method {
            Method::POST => self.post(view, &call).await,
            Method::GET => self.stream(view, sid, call.principal.as_deref()),
            Method::DELETE => self.delete(view, sid, call.principal.as_deref()).await,
            _ => body::rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "Method Not Allowed",
                None,
            ),
        }
    }

    // The error is the answer itself, returned at once by every caller (as in `proxy.rs`).
    #[allow(clippy::result_large_err)]
    fn session(
        &self,
        view: View,
        sid: Option<&str>,
        principal: Option<&str>,
    ) -> Result<Arc<ClientSession>, Response<Body>> {
        let Some(sid) = sid else {
            return Err(body::rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "Bad Request: Mcp-Session-Id header is required",
                None,
            ));
        };
        let known = lock(&self.sessions).get(sid).cloned();
        // A sealed id this replica does not hold: any replica serves it (`sealed`).
        let found = match known {
            Some(s) => Some(s),
            None => self.adopt(view, sid, principal),
        };
        match found {
            // With auth on, a session is its creator's alone: another principal's request gets the same 404 as
            // an unknown id (as `sessions::Sessions::usable_by` does for the proxied upstream).
            Some(s) if s.view == view && s.principal.as_deref() == principal => {
                *lock(&s.last_used) = Instant::now();
                Ok(s)
            }
            _ => Err(body::rpc_error(
                StatusCode::NOT_FOUND,
                code::SESSION_NOT_FOUND,
                "Session not found",
                None,
            )),
        }
    }

    /// `notifications/cancelled` from a legacy client session (2025-11-25 `basic/utilities/cancellation`): the
    /// request it names, if the gateway routed it to one server and it is still open, is cancelled there too. A
    /// legacy server gets `notifications/cancelled` with the id the gateway sent the request under (a dropped
    /// connection is not a cancellation in that era: `basic/transports` §Sending Messages to the Server,
    /// "Disconnection SHOULD NOT be interpreted as the client cancelling its request"); for a modern server,
    /// closing the request's stream is the cancellation (2026-07-28 `basic/patterns/cancellation`
    /// §Transport-Specific Cancellation: "Closing the SSE response stream is the cancellation signal"), which
    /// dropping the exchange does. Either way the gateway stops waiting, and the client's request is answered with an error it will
    /// ignore (2025-11-25 §Behavior Requirements 6: "SHOULD ignore any response to the request that arrives
    /// afterward"). An unknown, finished or foreign request id is ignored (§Behavior Requirements 5).
    async fn cancel(&self, view: View, call: &Call, params: Option<&Value>) {
        let Some(request) = params.and_then(|p| p.get("requestId")) else {
            return;
        };
        let Ok(sess) = self.session(view, call.session.as_deref(), call.principal.as_deref())
        else {
            return;
        };
        let Some(entry) = lock(&sess.inflight).remove(&request.to_string()) else {
            return;
        };
        let server = &self.servers[entry.server];
        let link = sess.links[entry.server].lock().await.clone();
        if let Some(link) = link.filter(|l| !l.modern) {
            let mut note = json!({"requestId": entry.upstream_id});
            if let Some(reason) = params.and_then(|p| p.get("reason")) {
                note["reason"] = reason.clone();
            }
            if let Err(e) = client::notify(
                &server.upstream,
                &link,
                "notifications/cancelled",
                note,
                self.timeout,
            )
            .await
            {
                tracing::warn!(server = %server.cfg.name, error = %e, "Passing a cancellation on failed.");
            }
        }
        let _ = entry.cancel.send(());
    }

    async fn post(self: Arc<Self>, view: View, call: &Call) -> Response<Body> {
        let Ok(mut msg) = serde_json::from_slice::<Value>(&call.body) else {
            return body::rpc_error(
                StatusCode::BAD_REQUEST,
                code::PARSE_ERROR,
                "Parse error",
                None,
            );
        };
        // Taken out of the message, not copied: the params go on to the server.
        let (method, id, params) = match msg.as_object_mut() {
            Some(m) => (
                m.remove("method"),
                m.remove("id").filter(|v| !v.is_null()),
                m.remove("params"),
            ),
            None => (None, None, None),
        };
        let cancelling =
            matches!(&method, Some(Value::String(m)) if m == "notifications/cancelled");
        let (Some(Value::String(method)), Some(id)) = (method, id) else {
            // Notifications and responses from the client: accepted (2025-11-25 `basic/transports` §Sending
            // Messages to the Server 4). Server-to-client requests are never relayed, so no response is awaited.
            if msg.is_object() {
                if cancelling {
                    Box::pin(self.cancel(view, call, params.as_ref())).await;
                }
                return accepted();
            }
            return body::rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "Invalid Request: one JSON-RPC message per POST (2025-06-18 removed batching)",
                None,
            );
        };
        let method = method.as_str();
        let params = params.unwrap_or_else(|| json!({}));
        let modern_version = call
            .session
            .is_none()
            .then(|| modern::version(&params, call.protocol_version.as_deref()))
            .flatten();
        if let Some(version) = modern_version {
            return self.modern(view, call, version, method, params, &id).await;
        }
        if method == "initialize" {
            return self.initialize(view, &id, &params, call.principal.clone());
        }
        if self.shutdown.phase() >= Phase::Refusing {
            return body::rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SERVER_ERROR,
                "Service Unavailable: this instance is shutting down; retry on another",
                Some(&id),
            );
        }
        let sess = match self.session(view, call.session.as_deref(), call.principal.as_deref()) {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        if stream::streams(method) {
            // Its notifications (progress, log messages) may come before the response: streamed.
            return self
                .answer(sess, method, params, id, stream::Logs::All, None)
                .await;
        }
        self.dispatch(&sess, method, params, &id, None)
            .await
            .into_response()
    }

    /// Answers one request of a client session (legacy, or the implicit session of modern clients); the
    /// request-scoped notifications of a request routed to one server go to `relay` when given.
    async fn dispatch(
        &self,
        sess: &ClientSession,
        method: &str,
        params: Value,
        id: &Value,
        relay: Option<&Relay>,
    ) -> Answer {
        let built = match method {
            "ping" => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            "tools/list" => self.list(sess, List::Tools, &params, id).await,
            "prompts/list" => self.list(sess, List::Prompts, &params, id).await,
            "resources/list" => self.list(sess, List::Resources, &params, id).await,
            "resources/templates/list" => self.list(sess, List::Templates, &params, id).await,
            "tools/call" => return self.by_name(sess, method, params, id, true, relay).await,
            "prompts/get" => return self.by_name(sess, method, params, id, false, relay).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                return self.by_uri(sess, method, params, id, relay).await
            }
            "completion/complete" => return self.complete(sess, params, id, relay).await,
            "logging/setLevel" => self.set_level(sess, params, id).await,
            other => error(
                id,
                METHOD_NOT_FOUND,
                &format!("Method not found: {other}"),
                Value::Null,
            ),
        };
        Answer::Built(built)
    }

    /// `initialize` (2025-11-25 `basic/lifecycle` §Initialization): answered by the gateway, which offers what
    /// the federation serves; the version is the client's when the gateway knows it, else the latest legacy one
    /// (§Version Negotiation).
    fn initialize(
        &self,
        view: View,
        id: &Value,
        params: &Value,
        principal: Option<Arc<str>>,
    ) -> Response<Body> {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = asked
            .filter(|v| era::is_known_legacy(v))
            .unwrap_or(era::LATEST_LEGACY_VERSION)
            .to_owned();
        let sid = match self.new_session_id(view, params, principal.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Cannot mint a session id.");
                return body::rpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::SERVER_ERROR,
                    "Internal error",
                    Some(id),
                );
            }
        };
        {
            let mut sessions = lock(&self.sessions);
            if sessions.len() >= self.max_sessions {
                return body::rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::SERVER_ERROR,
                    "Service Unavailable: too many sessions on this instance",
                    Some(id),
                );
            }
            sessions.insert(sid.clone(), self.new_session(view, principal, false));
        }
        let result = json!({
            "protocolVersion": version,
            "capabilities": capabilities(),
            "serverInfo": self.server_info(view),
        });
        let mut resp = body::json_response(
            StatusCode::OK,
            &json!({"jsonrpc": "2.0", "id": id, "result": result}),
        );
        if let Ok(v) = HeaderValue::from_str(&sid) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        resp
    }

    /// A client session on `view`: a legacy client's, or (`modern_clients`) the implicit one of modern clients.
    fn new_session(
        &self,
        view: View,
        principal: Option<Arc<str>>,
        modern_clients: bool,
    ) -> Arc<ClientSession> {
        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        Arc::new(ClientSession {
            view,
            principal,
            links: self
                .servers
                .iter()
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            notify,
            last_used: Mutex::new(Instant::now()),
            log_level: Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
            modern_clients,
        })
    }

    /// The endpoint's `serverInfo`.
    fn server_info(&self, view: View) -> Value {
        let name = match view {
            View::All => "lifeline-federation".to_owned(),
            View::One(i) => format!("lifeline-federation/{}", self.servers[i].cfg.name),
        };
        json!({"name": name, "version": env!("CARGO_PKG_VERSION")})
    }

    /// The upstream session of `sess` with server `i`, made now if it has none.
    /// Shared, not copied: a request holds its link for the exchange only.
    async fn link(&self, sess: &ClientSession, i: usize) -> Result<Arc<Link>, Refusal> {
        let mut slot = sess.links[i].lock().await;
        if let Some(link) = slot.as_ref() {
            return Ok(Arc::clone(link));
        }
        match self.connect(i).await {
            Ok(link) => {
                let link = Arc::new(link);
                *slot = Some(Arc::clone(&link));
                if link.session_id.is_some() {
                    // The server's own notifications for this session (2025-11-25 `basic/transports` §Listening for
                    // Messages from the Server): its `list_changed` reach this client. The task ends with the
                    // upstream session (DELETE ends the stream) or the drain.
                    tokio::spawn(listen(
                        Arc::clone(&self.servers[i]),
                        Arc::clone(&link),
                        sess.notify.clone(),
                        self.shutdown.clone(),
                    ));
                }
                Ok(link)
            }
            Err(e) => Err(self.unreachable(i, &e)),
        }
    }

    /// A new link to server `i` in its era (`era: auto|legacy|modern`).
    pub(crate) async fn connect(&self, i: usize) -> Result<Link, ExchangeError> {
        let up = &self.servers[i].upstream;
        match self.servers[i].cfg.era {
            ServerEra::Legacy => client::initialize(up, self.timeout).await,
            ServerEra::Modern => client::discover(up, self.timeout).await,
            ServerEra::Auto => match client::initialize(up, self.timeout).await {
                // A modern-only server rejects `initialize` with a JSON-RPC error or a 4xx (2026-07-28
                // `basic/versioning` §Compatibility Matrix, Legacy/Modern).
                Err(ExchangeError::Refused(_)) | Err(ExchangeError::Status(400..=499, _)) => {
                    client::discover(up, self.timeout).await
                }
                other => other,
            },
        }
    }

    /// One request to server `i` on `sess`'s session with it; an expired upstream session is made again once.
    async fn exchange(
        &self,
        sess: &ClientSession,
        i: usize,
        method: &str,
        params: &Value,
        relay: Option<&Relay>,
        upstream_id: Option<i64>,
    ) -> Result<Reply, Refusal> {
        let server = &self.servers[i];
        if let Some(refusal) = self.not_ready(i) {
            self.metrics
                .federation
                .request(&server.cfg.name, "unavailable");
            return Err(refusal);
        }
        let result = self
            .exchange_ready(sess, i, method, params, relay, upstream_id)
            .await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics.federation.request(&server.cfg.name, label);
        result
    }

    /// A modern client asked for the log messages of `level` and above (2026-07-28 `server/utilities/logging`
    /// §Per-request log level) from the legacy server `i`, which learns a level only per session (2025-11-25
    /// `server/utilities/logging` §Setting Log Level): sends `logging/setLevel` on `link` when `level` is below the
    /// lowest it was set to (never raised again: the session is shared by the principal's requests, and each
    /// request's messages are filtered at its own level, `stream::Logs`). Skipped for a server without the
    /// `logging` capability; a failure is logged and the request goes on (its messages may be fewer).
    async fn lower_level(&self, i: usize, link: &Link, level: &str) {
        let Some(rank) = stream::LEVELS.iter().position(|l| *l == level) else {
            return; // not a level: the request's filter takes it as `debug`, the server is not told
        };
        if link.init["capabilities"]["logging"].is_null()
            || lock(&link.log_level).is_some_and(|set| set <= rank)
        {
            return;
        }
        let server = &self.servers[i];
        let params = json!({"level": level});
        match client::request_relaying(
            &server.upstream,
            link,
            "logging/setLevel",
            &params,
            self.timeout,
            None,
            None,
        )
        .await
        {
            Ok(reply) if reply.outcome.is_ok() => {
                let mut set = lock(&link.log_level);
                *set = Some(set.map_or(rank, |s| s.min(rank)));
            }
            Ok(_) | Err(_) => {
                tracing::warn!(server = %server.cfg.name, level, "logging/setLevel for a modern client's request failed; its log messages may be fewer.");
            }
        }
    }

    async fn exchange_ready(
        &self,
        sess: &ClientSession,
        i: usize,
        method: &str,
        params: &Value,
        relay: Option<&Relay>,
        upstream_id: Option<i64>,
    ) -> Result<Reply, Refusal> {
        let server = &self.servers[i];
        let asked = params["_meta"][era::META_LOG_LEVEL].as_str();
        for attempt in 0..2 {
            let link = self.link(sess, i).await?;
            let adjusted;
            let params = match (link.modern, asked) {
                // A modern client's level goes to a modern server as it came.
                (true, Some(_)) => params,
                // A legacy client's session level, remembered from its `logging/setLevel`.
                (true, None) => match lock(&sess.log_level).clone() {
                    Some(level) => {
                        adjusted = with_log_level(params.clone(), level);
                        &adjusted
                    }
                    None => params,
                },
                // A modern client's level to a legacy server: `logging/setLevel` on the link first (when it
                // asks for more than the link was set to), the `_meta` key taken out.
                (false, Some(level)) => {
                    self.lower_level(i, &link, level).await;
                    adjusted = without_log_level(params.clone());
                    &adjusted
                }
                (false, None) => params,
            };
            match client::request_relaying(
                &server.upstream,
                &link,
                method,
                params,
                self.timeout,
                relay,
                upstream_id,
            )
            .await
            {
                Ok(reply) => {
                    self.seen(i, &reply.notifications);
                    return Ok(reply);
                }
                Err(ExchangeError::Expired) if attempt == 0 => {
                    tracing::info!(server = %server.cfg.name, "Upstream session expired; opening a new one.");
                    let mut slot = sess.links[i].lock().await;
                    if slot.as_ref().map(|l| &l.session_id) == Some(&link.session_id) {
                        *slot = None;
                    }
                }
                Err(e) => return Err(self.unreachable(i, &e)),
            }
        }
        Err(Refusal {
            code: code::SERVER_ERROR,
            message: format!(
                "server {}: its session expired twice in a row",
                server.cfg.name
            ),
            data: json!({"server": server.cfg.name}),
        })
    }

    /// Notifications a server sent on a reply: `list_changed` ones go to every client of that server and mark its
    /// catalog for a new listing.
    fn seen(&self, i: usize, notifications: &[Value]) {
        for n in notifications {
            let Some(method) = n.get("method").and_then(Value::as_str) else {
                continue;
            };
            if method.ends_with("/list_changed") {
                lock(&self.servers[i].catalog).stale = true;
                self.broadcast(i, method);
            }
        }
    }

    /// Sends the notification `method` to every client session whose endpoint serves server `i`.
    pub(crate) fn broadcast(&self, i: usize, method: &str) {
        let frame = notification_frame(method);
        for s in lock(&self.sessions).values() {
            if Self::in_view(s.view, i) {
                let _ = s.notify.send(frame.clone());
            }
        }
    }

    fn not_ready(&self, i: usize) -> Option<Refusal> {
        let server = &self.servers[i];
        let h = lock(&server.health);
        (h.state != health::State::Ready).then(|| Refusal {
            code: code::SERVER_ERROR,
            message: format!(
                "server {} is {}{}",
                server.cfg.name,
                h.state.as_str(),
                h.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            data: json!({"server": server.cfg.name, "state": h.state.as_str()}),
        })
    }

    fn unreachable(&self, i: usize, e: &ExchangeError) -> Refusal {
        let name = &self.servers[i].cfg.name;
        tracing::warn!(server = %name, error = %e, "Federated server failed a request.");
        Refusal {
            code: code::SERVER_ERROR,
            message: format!("server {name} failed: {e}"),
            data: json!({"server": name, "reason": e.reason()}),
        }
    }

    fn ready_servers(&self, view: View) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| {
                Self::in_view(view, i)
                    && lock(&self.servers[i].health).state == health::State::Ready
            })
            .collect()
    }

    /// `GET`: the client's stream of server messages (the `list_changed` notifications), with keep-alives.
    fn stream(&self, view: View, sid: Option<&str>, principal: Option<&str>) -> Response<Body> {
        let sess = match self.session(view, sid, principal) {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        let rx = sess.notify.subscribe();
        let stop = self.shutdown.clone();
        let frames = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
            let next = tokio::select! {
                r = rx.recv() => match r {
                    Ok(b) => Some(b),
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(Bytes::from_static(b": lagged\n\n")),
                    Err(broadcast::error::RecvError::Closed) => None,
                },
                _ = tokio::time::sleep(KEEPALIVE) => Some(Bytes::from_static(b": keep-alive\n\n")),
                _ = stop.reached(Phase::Refusing) => None,
            };
            next.map(|b| {
                (
                    Ok::<_, body::BoxError>(http_body::Frame::data(b)),
                    (rx, stop),
                )
            })
        });
        let mut resp = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }

    /// `DELETE`: ends the client's session and its upstream sessions.
    async fn delete(
        &self,
        view: View,
        sid: Option<&str>,
        principal: Option<&str>,
    ) -> Response<Body> {
        let sess = match self.session(view, sid, principal) {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        if let Some(sid) = sid {
            lock(&self.sessions).remove(sid);
            if self.sealer.is_some() {
                lock(&self.ended).insert(sid.to_owned(), self.idle_ttl, self.max_sessions);
            }
        }
        self.end_links(&sess).await;
        let mut resp = Response::new(body::full(Bytes::new()));
        *resp.status_mut() = StatusCode::OK;
        resp
    }

    async fn end_links(&self, sess: &ClientSession) {
        let ends = self.servers.iter().enumerate().map(|(i, s)| async move {
            let link = sess.links[i].lock().await.take();
            if let Some(link) = link {
                client::end(&s.upstream, &link, &s.cfg.name).await;
            }
        });
        let _ = tokio::time::timeout(self.timeout, futures_util::future::join_all(ends)).await;
    }

    /// Ends client sessions idle for longer than `session_idle_ttl`, until the drain.
    async fn sweep(self: Arc<Self>) {
        let every = (self.idle_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let stop = self.shutdown.reached(Phase::Refusing);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            let idle: Vec<Arc<ClientSession>> = {
                let mut sessions = lock(&self.sessions);
                let expired: Vec<String> = sessions
                    .iter()
                    .filter(|(_, s)| lock(&s.last_used).elapsed() > self.idle_ttl)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut idle: Vec<Arc<ClientSession>> =
                    expired.iter().filter_map(|k| sessions.remove(k)).collect();
                let mut modern = lock(&self.modern);
                let keys: Vec<(View, Implicit)> = modern
                    .iter()
                    .filter(|(_, s)| lock(&s.last_used).elapsed() > self.idle_ttl)
                    .map(|(k, _)| k.clone())
                    .collect();
                idle.extend(keys.iter().filter_map(|k| modern.remove(k)));
                lock(&self.ended).prune(self.idle_ttl);
                idle
            };
            for sess in idle {
                self.end_links(&sess).await;
            }
        }
    }

    /// Ends every session (client and the health checks') and stops the stdio children; bounded. Called after
    /// the drain.
    pub(crate) async fn close(&self) {
        let mut all: Vec<Arc<ClientSession>> =
            lock(&self.sessions).drain().map(|(_, s)| s).collect();
        all.extend(lock(&self.modern).drain().map(|(_, s)| s));
        for sess in &all {
            self.end_links(sess).await;
        }
        for s in &self.servers {
            let control = lock(&s.health).control.take();
            if let Some(link) = control {
                client::end(&s.upstream, &link, &s.cfg.name).await;
            }
            s.upstream.close().await;
        }
    }
}

/// Reads the upstream `GET` stream of `link` and passes its `notifications/*/list_changed` to `notify` (the client
/// session's stream), marking the server's catalog for a new listing. Ends when the stream ends (the session was
/// ended, the server went away), on a server without a `GET` stream (405), or at the drain.
async fn listen(
    server: Arc<Server>,
    link: Arc<Link>,
    notify: broadcast::Sender<Bytes>,
    shutdown: Shutdown,
) {
    let stop = shutdown.reached(Phase::Refusing);
    tokio::pin!(stop);
    let stream = client::listen(&server.upstream, &link, |method| {
        if method.ends_with("/list_changed") {
            lock(&server.catalog).stale = true;
            let _ = notify.send(notification_frame(method));
        }
    });
    tokio::select! {
        () = stream => {}
        _ = &mut stop => {}
    }
}

/// One SSE event carrying the notification `method`.
fn notification_frame(method: &str) -> Bytes {
    Bytes::from(format!(
        "event: message\ndata: {}\n\n",
        json!({"jsonrpc": "2.0", "method": method})
    ))
}

/// What a federated endpoint offers (either era): tools, prompts, resources with change notifications,
/// completions, logging.
fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "prompts": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": true},
        "completions": {},
        "logging": {},
    })
}

/// `params` without `_meta`'s `io.modelcontextprotocol/logLevel` (and without `_meta` when nothing else is left).
fn without_log_level(mut params: Value) -> Value {
    if let Some(p) = params.as_object_mut() {
        if let Some(Value::Object(meta)) = p.get_mut("_meta") {
            meta.remove(era::META_LOG_LEVEL);
            if meta.is_empty() {
                p.remove("_meta");
            }
        }
    }
    params
}

/// `params` asking a modern server for the log messages of `level` and above (2026-07-28
/// `server/utilities/logging` §Per-request log level); the caller's own `_meta` keys are kept.
fn with_log_level(mut params: Value, level: String) -> Value {
    if !params.is_object() {
        params = json!({});
    }
    let meta = params
        .as_object_mut()
        .map(|p| p.entry("_meta").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        meta.insert(era::META_LOG_LEVEL.to_owned(), Value::String(level));
    }
    params
}

fn error(id: &Value, code: i64, message: &str, data: Value) -> Value {
    let mut err = json!({"code": code, "message": message});
    if !data.is_null() {
        err["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

fn accepted() -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp
}

/// 128 random bits from the OS, hex: a session id without a key file, the identity inside a sealed one (2025-11-25
/// `basic/transports` §Session Management 1: globally unique and cryptographically secure).
fn mint_session_id() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}
