//! The deprecated HTTP+SSE transport (spec 2024-11-05 `basic/transports` §HTTP with SSE) behind
//! [`super::FakeKind::LegacySse`].
//!
//! Routes: `GET /sse` (the event stream, first event `endpoint`), `POST /messages?sessionId=<id>` (client
//! messages, answered 202, replies on the stream); `POST /sse` → 405; everything else → 404.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::echo_tool;
use super::http_util::{self, rpc_error, rpc_result, sse_message, text_response, Body, Parsed};
use super::rpc::{self, RpcFailure};
use super::server::Stats;

/// The only protocol version of this transport.
const SSE_VERSION: &str = "2024-11-05";
/// Messages queued per stream before POSTs are refused with 503.
const QUEUE_CAPACITY: usize = 64;
/// Interval of the keep-alive comments that also reveal a closed client quickly.
const KEEPALIVE: Duration = Duration::from_millis(100);

/// An HTTP+SSE server with its open streams.
pub(crate) struct LegacySseServer {
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<Value>>>>,
    tools: Vec<Value>,
    stats: Arc<Stats>,
}

/// Ends a session when its stream is dropped (the client went away or the server stopped).
struct SessionGuard {
    id: String,
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<Value>>>>,
    stats: Arc<Stats>,
}

/// The state of one event stream.
struct StreamState {
    endpoint: Option<Bytes>,
    queue: mpsc::Receiver<Value>,
    _guard: SessionGuard,
}

impl LegacySseServer {
    pub(crate) fn new(stats: Arc<Stats>) -> LegacySseServer {
        LegacySseServer {
            sessions: Arc::new(Mutex::new(HashMap::new())),
            tools: vec![echo_tool()],
            stats,
        }
    }

    /// Serves one HTTP request.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/sse") => {
                self.stats.record_method("HTTP GET");
                self.open_stream()
            }
            (_, "/sse") => http_util::method_not_allowed("GET"),
            (&Method::POST, "/messages") => self.post(req).await,
            (_, "/messages") => http_util::method_not_allowed("POST"),
            _ => text_response(StatusCode::NOT_FOUND, "Not Found"),
        }
    }

    fn open_stream(&self) -> Response<Body> {
        let id = rpc::new_session_id();
        let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
        lock(&self.sessions).insert(id.clone(), sender);
        self.stats.session_opened();
        // Spec 2024-11-05 §HTTP with SSE: the first event is `endpoint`, its data the URI to POST to.
        let endpoint = Bytes::from(format!(
            "event: endpoint\ndata: /messages?sessionId={id}\n\n"
        ));
        let state = StreamState {
            endpoint: Some(endpoint),
            queue,
            _guard: SessionGuard {
                id,
                sessions: Arc::clone(&self.sessions),
                stats: Arc::clone(&self.stats),
            },
        };
        let events = stream::unfold(state, |mut state| async move {
            if let Some(endpoint) = state.endpoint.take() {
                return Some((endpoint, state));
            }
            tokio::select! {
                message = state.queue.recv() => {
                    let message = message?;
                    Some((sse_message(&message), state))
                }
                () = tokio::time::sleep(KEEPALIVE) => Some((Bytes::from_static(b": keepalive\n\n"), state)),
            }
        });
        http_util::sse_response(http_util::streamed(events), true)
    }

    async fn post(&self, req: Request<Incoming>) -> Response<Body> {
        let session = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .map(str::to_owned);
        let Some(sender) = session.and_then(|id| lock(&self.sessions).get(&id).cloned()) else {
            return text_response(StatusCode::NOT_FOUND, "Could not find session");
        };
        let (_parts, parsed) = http_util::read_message(req).await;
        let Parsed::Message(message) = parsed else {
            return text_response(StatusCode::BAD_REQUEST, "Invalid message");
        };
        if let Some(method) = &message.method {
            self.stats.record_method(method);
        }
        if message.is_request() {
            let outcome = match message.method.as_deref().unwrap_or_default() {
                "initialize" => Ok(json!({
                    "protocolVersion": SSE_VERSION,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": rpc::server_info(),
                })),
                "ping" => Ok(json!({})),
                "tools/list" => {
                    rpc::tools_list(&self.tools, usize::MAX, &message.params).map(Value::Object)
                }
                "tools/call" => {
                    rpc::tools_call(&self.tools, &message.params, false).map(Value::Object)
                }
                other => Err(RpcFailure {
                    code: rpc::METHOD_NOT_FOUND,
                    message: format!("Method not found: {other}"),
                }),
            };
            let reply = match outcome {
                Ok(result) => rpc_result(message.reply_id(), result),
                Err(failure) => rpc_error(message.reply_id(), failure.code, &failure.message, None),
            };
            if sender.try_send(reply).is_err() {
                return text_response(StatusCode::SERVICE_UNAVAILABLE, "Stream is not keeping up");
            }
        }
        http_util::response(
            StatusCode::ACCEPTED,
            Some("text/plain; charset=utf-8"),
            http_util::full("Accepted"),
        )
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if lock(&self.sessions).remove(&self.id).is_some() {
            self.stats.session_closed();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
