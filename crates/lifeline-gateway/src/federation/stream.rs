//! A routed request's answer, streamed when its server sends notifications first: the request-scoped
//! notifications a server sends on the stream of one request (`notifications/progress`, `notifications/message`)
//! reach the client on that request's own response, in both eras and across the bridge.
//!
//! - 2025-11-25 `basic/transports` §Sending Messages to the Server 5–6: for a request the server answers either
//!   `application/json` or `text/event-stream`, and on the stream it "MAY send JSON-RPC _requests_ and
//!   _notifications_ before sending the JSON-RPC _response_", which "SHOULD relate to the originating client
//!   request"; after the response it "SHOULD terminate the SSE stream".
//! - 2026-07-28 `basic/transports/streamable-http` §Receiving Messages: the same choice; on the stream the server
//!   "MAY send JSON-RPC _notifications_ — for example, `notifications/progress` or `notifications/message` —
//!   before the final response. These notifications MUST relate to the originating client request"; it "MUST NOT
//!   send independent JSON-RPC _requests_" there; the final response "SHOULD terminate the stream", and the
//!   response stream carries `X-Accel-Buffering: no`. A log message goes only to a request that asked for it
//!   with `_meta`'s `io.modelcontextprotocol/logLevel`, at that level or above (`server/utilities/logging`
//!   §Per-request log level).
//!
//! The gateway picks the answer's form when it knows it: the upstream exchange runs until it gives either its
//! response (then the answer is JSON, as before: no cost for the common case) or a notification to pass on (then
//! the answer is an SSE stream: that notification, the ones that follow, and the response, after which the stream
//! ends). Between the upstream read and the client's stream sit at most [`RELAY_CAPACITY`] notifications: a client
//! that reads slowly slows the upstream read (within the exchange's `upstream_timeout`), nothing queues without
//! bound. A modern client's exchange runs inside the handler, then the response body: a client that closes its
//! connection or the stream ends the exchange (the 2026-07-28 cancellation signal, `streamable-http`
//! §Cancellation). A legacy client's runs in a task of its own, which its disconnect does not end (`detach`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Answer, ClientSession, Federation};
use crate::body::{self, Body};

/// Notifications held between the upstream read and the client's stream: 16.
pub(crate) const RELAY_CAPACITY: usize = 16;

/// `X-Accel-Buffering` (2026-07-28 `basic/transports/streamable-http` §Receiving Messages: "servers SHOULD include
/// the `X-Accel-Buffering: no` header" on an SSE stream).
const ACCEL_BUFFERING: http::HeaderName = http::HeaderName::from_static("x-accel-buffering");

/// The syslog severities of `notifications/message`, lowest first (2025-11-25 and 2026-07-28
/// `server/utilities/logging` §Log Levels, RFC 5424 §6.2.1).
pub(super) const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Which log messages a request's client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Logs {
    /// Every one its server sends (a legacy client: its session's `logging/setLevel` told the server).
    All,
    /// Those of this severity ([`LEVELS`] index) and above (a modern request with `logLevel` in `_meta`).
    AtLeast(usize),
    /// None (a modern request without `logLevel`).
    Off,
}

impl Logs {
    /// What a modern request's `_meta` `io.modelcontextprotocol/logLevel` asks for; an unknown level is taken as
    /// `debug` (every message: the client asked for logs).
    pub(super) fn asked(level: Option<&str>) -> Logs {
        match level {
            None => Logs::Off,
            Some(l) => Logs::AtLeast(LEVELS.iter().position(|x| *x == l).unwrap_or(0)),
        }
    }

    /// Whether the notification `n` goes to the client.
    fn keeps(self, n: &Value) -> bool {
        if n["method"] != "notifications/message" {
            return true;
        }
        match self {
            Logs::All => true,
            Logs::Off => false,
            Logs::AtLeast(min) => n["params"]["level"]
                .as_str()
                .and_then(|l| LEVELS.iter().position(|x| *x == l))
                .is_none_or(|rank| rank >= min),
        }
    }
}

/// Whether a request is routed to one server and so may be answered with a stream (the merged lists,
/// `logging/setLevel` and `ping` never are).
pub(super) fn streams(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "prompts/get" | "resources/read" | "completion/complete"
    )
}

/// The exchange of one routed request, as the answer's body drives it.
pub(super) type Work = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// What comes next for the client.
enum Next {
    /// A notification to pass on.
    Note(Value),
    /// The response (the last thing).
    Answer(Answer),
}

/// One request being answered: its exchange, the notifications it relays, and its response once it came.
struct Answering {
    work: Option<Work>,
    rx: mpsc::Receiver<Value>,
    answer: Option<Answer>,
    logs: Logs,
}

impl Answering {
    /// The next notification the client gets, else the response; `None` after the response.
    async fn next(&mut self) -> Option<Next> {
        loop {
            if let Some(work) = self.work.as_mut() {
                // The notifications first: every one sent before the response precedes it.
                let step = tokio::select! {
                    biased;
                    n = self.rx.recv() => Err(n),
                    a = &mut *work => Ok(a),
                };
                match step {
                    Err(Some(n)) => {
                        if self.logs.keeps(&n) {
                            return Some(Next::Note(n));
                        }
                    }
                    // Every sender is gone: the exchange is ending.
                    Err(None) => {
                        self.answer = Some(work.await);
                        self.work = None;
                    }
                    Ok(a) => {
                        self.answer = Some(a);
                        self.work = None;
                    }
                }
            } else {
                // The exchange ended: what it sent before its response, then the response.
                match self.rx.try_recv() {
                    Ok(n) if self.logs.keeps(&n) => return Some(Next::Note(n)),
                    Ok(_) => {}
                    Err(_) => return self.answer.take().map(Next::Answer),
                }
            }
        }
    }
}

impl Federation {
    /// Answers the routed request `method` of `sess` (see the module docs); `finish` amends the response (the
    /// modern result fields).
    pub(super) async fn answer(
        self: &Arc<Self>,
        sess: Arc<ClientSession>,
        method: &str,
        params: Value,
        id: Value,
        logs: Logs,
        finish: Option<fn(&str, &mut Answer)>,
    ) -> Response<Body> {
        let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
        let fed = Arc::clone(self);
        let legacy_client = (!sess.modern_clients).then(|| (method.to_owned(), id.clone()));
        let method = method.to_owned();
        let work: Work = Box::pin(async move {
            // `tx` lives as long as the exchange: its end closes the channel.
            let relay = tx;
            let mut answer = fed
                .dispatch(&sess, &method, params, &id, Some(&relay))
                .await;
            if let Some(finish) = finish {
                finish(&method, &mut answer);
            }
            answer
        });
        // A legacy client's disconnect is not a cancellation: its exchange runs on without it (`detach`).
        let work = match legacy_client {
            Some((method, id)) => self.detach(&method, &id, work),
            None => work,
        };
        let mut answering = Answering {
            work: Some(work),
            rx,
            answer: None,
            logs,
        };
        let first = match answering.next().await {
            Some(Next::Note(n)) => n,
            Some(Next::Answer(a)) => return a.into_response(),
            // `next` gives the response before it gives `None`.
            None => {
                return body::rpc_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body::code::SERVER_ERROR,
                    "Internal error",
                    None,
                )
            }
        };
        let frames = futures_util::stream::unfold(
            (Some(first), answering),
            |(pending, mut answering)| async move {
                let data = match pending {
                    Some(n) => event(&n),
                    None => match answering.next().await? {
                        Next::Note(n) => event(&n),
                        Next::Answer(a) => event_of(&a.to_bytes()),
                    },
                };
                Some((
                    Ok::<_, body::BoxError>(http_body::Frame::data(data)),
                    (None, answering),
                ))
            },
        );
        let mut resp = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
        resp
    }
}

/// One SSE event carrying `message` (serde_json writes no line breaks, so one `data:` line holds it).
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// One SSE event carrying the JSON text `json`: a relayed response keeps the server's own text, whose line breaks
/// (between tokens, never inside a string) split it into several `data:` lines, which the client joins with line
/// feeds again (WHATWG HTML §9.2.6 "Interpreting an event stream").
fn event_of(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\n");
    for line in json.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.push(b'\n');
    }
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(level: &str) -> Value {
        json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": level, "data": "x"}})
    }

    #[test]
    fn a_multi_line_response_is_one_event_of_several_data_lines() {
        assert_eq!(
            &event_of(b"{\"a\":\r\n 1}")[..],
            b"event: message\ndata: {\"a\":\ndata:  1}\n\n"
        );
        assert_eq!(&event_of(b"{}")[..], b"event: message\ndata: {}\n\n");
    }

    #[test]
    fn log_messages_go_only_where_asked_and_at_the_level_asked() {
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}});
        let cases = [
            (Logs::All, "debug", true),
            (Logs::Off, "emergency", false),
            (Logs::asked(Some("warning")), "info", false),
            (Logs::asked(Some("warning")), "warning", true),
            (Logs::asked(Some("warning")), "error", true),
            (Logs::asked(Some("no-such-level")), "debug", true),
            (Logs::asked(Some("error")), "no-such-level", true),
        ];
        for (logs, level, kept) in cases {
            assert_eq!(logs.keeps(&log(level)), kept, "{logs:?} {level}");
            assert!(logs.keeps(&progress), "progress always passes");
        }
        assert_eq!(Logs::asked(None), Logs::Off);
    }

    #[tokio::test]
    async fn notifications_sent_before_the_response_come_before_it_and_the_stream_ends() {
        let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
        let work: Work = Box::pin(async move {
            for l in ["debug", "info", "error"] {
                tx.send(log(l)).await.expect("open");
            }
            Answer::Built(json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
        });
        let mut a = Answering {
            work: Some(work),
            rx,
            answer: None,
            logs: Logs::asked(Some("info")),
        };
        let mut seen = Vec::new();
        for _ in 0..10 {
            match a.next().await {
                Some(Next::Note(n)) => seen.push(n["params"]["level"].as_str().map(str::to_owned)),
                Some(Next::Answer(r)) => {
                    assert_eq!(r.into_value()["id"], 1);
                    seen.push(None);
                }
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec![Some("info".to_owned()), Some("error".to_owned()), None]
        );
    }
}
