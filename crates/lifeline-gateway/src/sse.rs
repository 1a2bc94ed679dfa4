//! Relaying an upstream SSE stream to the client as it arrives, never buffered whole, while:
//!
//! - injecting a keep-alive comment (`: keepalive`) after each quiet interval, only between events, so load
//!   balancers don't cut idle streams (2026-07-28 `basic/transports/streamable-http` §Receiving Messages
//!   recommends comment keep-alives on long-lived streams);
//! - ending the stream with a `retry:` field when the drain says so (2025-11-25 `basic/transports` §Sending
//!   Messages 6 and §Listening for Messages 4: a server that closes the connection before the stream ends SHOULD
//!   send a `retry` field first), so clients reconnect, through the load balancer, to another instance;
//! - for a 2024-11-05 HTTP+SSE stream, rewriting the `endpoint` event to the gateway's message path and
//!   tracking which requests still await their response on this stream, so a drain closes it only once none
//!   does. That stream is split into blocks by [`lifeline_mcp::sse::RawParser`] (the workspace's one SSE
//!   parser, in its raw-bytes mode): every block is forwarded byte for byte (comments, ids and line endings
//!   included) except the rewritten `endpoint` event;
//! - for the SSE answer to a `tools/list` request of a caller the per-tool policy restricts
//!   ([`RelayOpts::list`]), parsing the stream the same way and rewriting only the response event carrying that
//!   request's id to list the tools the caller may call (`policy::list`); every other block goes out byte for
//!   byte, and an event over [`list::MAX_LIST_BYTES`] ends the stream with a JSON-RPC error for the request.
//!
//! Other streams are forwarded chunk by chunk, unparsed.

use std::collections::HashSet;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use lifeline_core::{Phase, Shutdown};
use lifeline_mcp::sse::{Event, RawParser};
use serde_json::Value;

use crate::body::{Body, BoxError};
use crate::policy::list::{self, ListFilter};

/// Bound on one event of a 2024-11-05 stream held while it is parsed; a larger event fails the stream.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// What kind of stream is relayed, which decides when the drain closes it.
pub(crate) enum Mode {
    /// The SSE reply to a POST: carries that request's response, so it runs until it ends or the drain deadline.
    Response,
    /// A standalone GET stream (2025-03-26 … 2025-11-25): server-initiated messages only, closed (with `retry`)
    /// as soon as the drain refuses new work.
    Standalone,
    /// A 2024-11-05 HTTP+SSE stream.
    Legacy(LegacyLink),
}

/// The parts of a 2024-11-05 stream the relay needs from the proxy.
pub(crate) struct LegacyLink {
    /// Requests posted on this session whose response has not come back on the stream yet.
    pub(crate) pending: std::sync::Arc<Pending>,
    /// Called with the URL the upstream announced in its `endpoint` event; returns the URL the client must use
    /// instead, or `None` when the announced one is unusable (the stream then fails).
    pub(crate) rewrite_endpoint: RewriteEndpoint,
    /// `tools/list` requests posted on this session whose answer (on this stream) must be filtered.
    pub(crate) lists: std::sync::Arc<ListRequests>,
}

/// Maps the upstream's announced `endpoint` URL to the one the client must use (`None`: unusable).
pub(crate) type RewriteEndpoint = Box<dyn FnMut(&str) -> Option<String> + Send>;

/// Request ids awaiting a response on one 2024-11-05 stream (ids as their JSON text).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    ids: Mutex<HashSet<String>>,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a request posted on the session. The set is bounded by `cap`; beyond it the id is not tracked.
    pub(crate) fn add(&self, id: &Value, cap: usize) {
        let mut ids = self.lock();
        if ids.len() < cap {
            ids.insert(id.to_string());
        }
    }

    /// Forgets a request (its response arrived, or never will).
    pub(crate) fn remove(&self, id: &Value) {
        self.lock().remove(&id.to_string());
    }

    /// Requests still awaiting their response.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// `tools/list` requests awaiting their answer on one 2024-11-05 stream, each with the filter of the principal
/// that posted it (ids as their JSON text). Bounded like [`Pending`].
#[derive(Debug, Default)]
pub(crate) struct ListRequests {
    filters: Mutex<std::collections::HashMap<String, ListFilter>>,
}

impl ListRequests {
    fn lock(&self) -> MutexGuard<'_, std::collections::HashMap<String, ListFilter>> {
        self.filters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a `tools/list` request to filter; `false` when `cap` requests are already waiting (the caller
    /// must then refuse the request rather than let its answer through unfiltered).
    pub(crate) fn add(&self, filter: ListFilter, cap: usize) -> bool {
        let Some(id) = &filter.id else {
            return false; // Only a request's own answer is tracked here.
        };
        let key = id.to_string();
        let mut filters = self.lock();
        if filters.len() >= cap && !filters.contains_key(&key) {
            return false;
        }
        filters.insert(key, filter);
        true
    }

    /// Forgets a request (its POST was refused: no answer will come).
    pub(crate) fn remove(&self, id: &Value) {
        self.lock().remove(&id.to_string());
    }

    fn take(&self, id: &Value) -> Option<ListFilter> {
        let mut filters = self.lock();
        if filters.is_empty() {
            return None;
        }
        filters.remove(&id.to_string())
    }
}

/// How to relay one stream.
pub(crate) struct RelayOpts {
    pub(crate) keepalive: Option<Duration>,
    pub(crate) retry: Duration,
    pub(crate) shutdown: Shutdown,
    pub(crate) mode: Mode,
    /// Rewrite the answer to this `tools/list` request ([`Mode::Response`]), or every answer listing tools
    /// ([`Mode::Standalone`], `id: None`).
    pub(crate) list: Option<ListFilter>,
}

/// Wraps an upstream SSE body into the relayed body.
pub(crate) fn relay(upstream: Body, opts: RelayOpts) -> Body {
    // The phase that closes the stream before the drain deadline: none for the answer to a POST.
    let close_at = match opts.mode {
        Mode::Response => None,
        Mode::Standalone | Mode::Legacy(_) => Some(Phase::Refusing),
    };
    let (legacy, parser) = match opts.mode {
        Mode::Legacy(link) => (Some(link), Some(RawParser::new(MAX_EVENT_BYTES))),
        _ if opts.list.is_some() => (None, Some(RawParser::new(list::MAX_LIST_BYTES))),
        _ => (None, None),
    };
    Relay {
        body: upstream,
        keepalive_every: opts.keepalive,
        keepalive: None,
        keepalive_armed: false,
        retry_ms: opts.retry.as_millis() as u64,
        shutdown: opts.shutdown,
        close_at,
        phase_wait: None,
        close_requested: false,
        forced: false,
        tail: Tail::default(),
        legacy,
        list: opts.list,
        parser,
        out: VecDeque::new(),
        done: false,
    }
    .boxed_unsync()
}

/// The relayed body. Each poll reads the drain's phase (a `watch` read) and polls the upstream body first; the
/// futures that wait, for the drain's next phase and for the keep-alive timer, are made (or re-armed) only when
/// the upstream has nothing to hand out. The usual SSE answer to a POST, whose one event is read with the
/// response head, so costs no timer and no waiter: about 3,300 instructions less than a `select!` over boxed
/// futures made up front (issue 17).
struct Relay {
    body: Body,
    keepalive_every: Option<Duration>,
    /// Made at the first quiet poll, reused after.
    keepalive: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether `keepalive` runs for the current quiet spell: cleared by data and by a keep-alive sent, so it
    /// fires `keepalive_every` after the stream last went quiet.
    keepalive_armed: bool,
    retry_ms: u64,
    shutdown: Shutdown,
    /// [`Phase::Refusing`] for streams the drain closes early, `None` for the answer to a POST.
    close_at: Option<Phase>,
    /// Resolves when the phase this relay waits for next is reached; made at a quiet poll, dropped once ready.
    phase_wait: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    close_requested: bool,
    forced: bool,
    tail: Tail,
    legacy: Option<LegacyLink>,
    list: Option<ListFilter>,
    parser: Option<RawParser>,
    out: VecDeque<Bytes>,
    done: bool,
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            // The drain first, as a `biased` select would: a forced close wins over data that is ready.
            let phase = this.shutdown.phase();
            this.forced |= phase >= Phase::Forcing;
            this.close_requested |= this.close_at.is_some_and(|at| phase >= at);
            if this.should_close() {
                this.done = true;
                if this.at_event_boundary() {
                    this.out
                        .push_back(Bytes::from(format!("retry: {}\n\n", this.retry_ms)));
                }
                continue;
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if let Err(err) = this.accept(data) {
                            this.done = true;
                            return Poll::Ready(Some(Err(err)));
                        }
                        this.keepalive_armed = false;
                    }
                }
                Poll::Pending => {
                    // Quiet: the upstream will wake us; so will the drain and the keep-alive timer.
                    if this.poll_phase(cx).is_ready() {
                        continue;
                    }
                    if this.poll_keepalive(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if this.at_event_boundary() {
                        let ka = Bytes::from_static(b": keepalive\n\n");
                        this.tail.update(&ka);
                        this.out.push_back(ka);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.out.is_empty()
    }
}

impl Relay {
    /// Polls the wait for the next phase this relay acts on (its early close, else the forced close), made now
    /// when there is none. Ready means the phase was reached: the caller reads it again.
    fn poll_phase(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let next = match self.close_at {
            Some(at) if !self.close_requested => at,
            _ => Phase::Forcing,
        };
        let wait = self
            .phase_wait
            .get_or_insert_with(|| Box::pin(self.shutdown.reached_owned(next)));
        let reached = wait.as_mut().poll(cx);
        if reached.is_ready() {
            self.phase_wait = None;
        }
        reached
    }

    /// Polls the keep-alive timer, arming it `keepalive_every` from now when it is not running; never ready
    /// without a keep-alive interval. Ready disarms it.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(every) = self.keepalive_every else {
            return Poll::Pending;
        };
        let sleep = match self.keepalive.as_mut() {
            Some(sleep) => {
                if !self.keepalive_armed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + every);
                }
                sleep
            }
            None => self.keepalive.insert(Box::pin(tokio::time::sleep(every))),
        };
        self.keepalive_armed = true;
        let fired = sleep.as_mut().poll(cx);
        if fired.is_ready() {
            self.keepalive_armed = false;
        }
        fired
    }

    fn should_close(&self) -> bool {
        if self.forced {
            return true;
        }
        if !self.close_requested {
            return false;
        }
        match &self.legacy {
            Some(link) => link.pending.len() == 0,
            None => true,
        }
    }

    fn at_event_boundary(&self) -> bool {
        match &self.parser {
            Some(p) => p.at_boundary(),
            None => self.tail.at_event_boundary(),
        }
    }

    fn accept(&mut self, data: Bytes) -> Result<(), BoxError> {
        let Relay {
            parser,
            legacy,
            list,
            out,
            tail,
            done,
            ..
        } = self;
        let Some(parser) = parser.as_mut() else {
            tail.update(&data);
            out.push_back(data);
            return Ok(());
        };
        // An event over the bound: a filtered `tools/list` answer is refused for the request; a 2024-11-05 stream
        // fails.
        let too_large =
            |list: &Option<ListFilter>, out: &mut VecDeque<Bytes>, done: &mut bool| match list {
                Some(filter) => {
                    out.push_back(message_event(None, &filter.too_large()));
                    *done = true;
                    Ok(())
                }
                None => Err(BoxError::from("an upstream SSE event exceeds 16 MiB")),
            };
        if parser.push(&data).is_err() {
            return too_large(list, out, done);
        }
        loop {
            let block = match parser.next_block() {
                Ok(Some(block)) => block,
                Ok(None) => return Ok(()),
                Err(_) => return too_large(list, out, done),
            };
            match (block.event, legacy.as_mut()) {
                (Some(event), Some(link)) if event.kind() == "endpoint" => {
                    let client_url =
                        (link.rewrite_endpoint)(event.data.trim()).ok_or_else(|| {
                            BoxError::from("the upstream announced an unusable message endpoint")
                        })?;
                    out.push_back(Bytes::from(format!(
                        "event: endpoint\ndata: {client_url}\n\n"
                    )));
                }
                (Some(event), link) if event.kind() == "message" => {
                    let mut legacy_list = None;
                    if let Some(link) = link {
                        if let Ok(msg) = serde_json::from_str::<Value>(&event.data) {
                            let is_response =
                                msg.get("result").is_some() || msg.get("error").is_some();
                            if let (true, Some(id)) = (is_response, msg.get("id")) {
                                link.pending.remove(id);
                                legacy_list = link.lists.take(id);
                            }
                        }
                    }
                    let filter = legacy_list.as_ref().or(list.as_ref());
                    match filter.and_then(|f| f.rewrite(event.data.as_bytes())) {
                        Some(rewritten) => {
                            out.push_back(message_event(Some(&event), &rewritten));
                            if legacy_list.is_none()
                                && list.as_ref().is_some_and(|f| f.id.is_some())
                            {
                                // One answer per request: the rest of the stream is only relayed.
                                *list = None;
                            }
                        }
                        None => out.push_back(block.raw),
                    }
                }
                // Other events, and blocks that dispatch nothing (comments, stray blank lines).
                _ => out.push_back(block.raw),
            }
        }
    }
}

/// An SSE event carrying `data` (one line of JSON), keeping the `id`, `event` and `retry` fields of `like`.
fn message_event(like: Option<&Event>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 64);
    if let Some(like) = like {
        if let Some(id) = &like.id {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.push(b'\n');
        }
        if let Some(kind) = &like.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(kind.as_bytes());
            out.push(b'\n');
        }
        if let Some(ms) = like.retry_ms {
            out.extend_from_slice(format!("retry: {ms}\n").as_bytes());
        }
    } else {
        out.extend_from_slice(b"event: message\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The last bytes written, to know whether the client's parser sits between events.
#[derive(Default)]
struct Tail {
    last: [u8; 3],
    len: usize,
}

impl Tail {
    fn update(&mut self, data: &[u8]) {
        for &b in data.iter().skip(data.len().saturating_sub(3)) {
            self.last = [self.last[1], self.last[2], b];
        }
        self.len = self.len.saturating_add(data.len());
    }

    /// True before anything was sent and after an empty line (`\n\n` or `\r\n\r\n`).
    fn at_event_boundary(&self) -> bool {
        self.len == 0 || self.last[1..] == *b"\n\n" || self.last == *b"\n\r\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    /// An upstream body fed from a channel.
    fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, BoxError>(Frame::data(b)), rx))
        });
        (tx, StreamBody::new(stream).boxed_unsync())
    }

    async fn next_chunk(body: &mut Body) -> Option<String> {
        let frame = tokio::time::timeout(Duration::from_secs(60), body.frame())
            .await
            .expect("a frame in time")?
            .expect("no error");
        Some(String::from_utf8(frame.into_data().expect("data").to_vec()).expect("utf8"))
    }

    #[tokio::test(start_paused = true)]
    async fn keepalives_only_between_events_and_retry_on_refusing() {
        let shutdown = Shutdown::new();
        let (tx, up) = channel_body();
        let mut body = relay(
            up,
            RelayOpts {
                keepalive: Some(Duration::from_secs(15)),
                retry: Duration::from_millis(1500),
                shutdown: shutdown.clone(),
                mode: Mode::Standalone,
                list: None,
            },
        );
        tx.send(Bytes::from_static(b"event: message\ndata: {}\n\n"))
            .await
            .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("event: message\ndata: {}\n\n")
        );
        // Quiet for 15 s: a keep-alive comment.
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some(": keepalive\n\n")
        );
        // Mid-event: no keep-alive until the event completes.
        tx.send(Bytes::from_static(b"data: {\"a\":"))
            .await
            .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("data: {\"a\":")
        );
        let pending = tokio::time::timeout(Duration::from_secs(40), body.frame()).await;
        assert!(pending.is_err(), "no keep-alive injected mid-event");
        tx.send(Bytes::from_static(b"1}\n\n")).await.expect("send");
        assert_eq!(next_chunk(&mut body).await.as_deref(), Some("1}\n\n"));
        shutdown.advance(Phase::Refusing);
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("retry: 1500\n\n")
        );
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[tokio::test]
    async fn response_streams_survive_refusing_and_end_at_forcing() {
        let shutdown = Shutdown::new();
        let (tx, up) = channel_body();
        let mut body = relay(
            up,
            RelayOpts {
                keepalive: None,
                retry: Duration::from_secs(1),
                shutdown: shutdown.clone(),
                mode: Mode::Response,
                list: None,
            },
        );
        shutdown.advance(Phase::Refusing);
        tx.send(Bytes::from_static(b"data: 1\n\n"))
            .await
            .expect("send");
        assert_eq!(next_chunk(&mut body).await.as_deref(), Some("data: 1\n\n"));
        shutdown.advance(Phase::Forcing);
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("retry: 1000\n\n")
        );
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[tokio::test]
    async fn legacy_streams_rewrite_the_endpoint_and_close_once_nothing_is_pending() {
        let shutdown = Shutdown::new();
        let (tx, up) = channel_body();
        let pending = Arc::new(Pending::default());
        let announced = Arc::new(Mutex::new(String::new()));
        let seen = Arc::clone(&announced);
        let mut body = relay(
            up,
            RelayOpts {
                keepalive: None,
                retry: Duration::from_secs(2),
                shutdown: shutdown.clone(),
                mode: Mode::Legacy(LegacyLink {
                    pending: Arc::clone(&pending),
                    rewrite_endpoint: Box::new(move |url| {
                        *seen.lock().expect("lock") = url.to_owned();
                        Some("/messages?sessionId=tok".to_owned())
                    }),
                    lists: Arc::default(),
                }),
                list: None,
            },
        );
        tx.send(Bytes::from_static(
            b"event: endpoint\r\ndata: /message?sessionId=up\r\n\r\n",
        ))
        .await
        .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("event: endpoint\ndata: /messages?sessionId=tok\n\n")
        );
        assert_eq!(
            announced.lock().expect("lock").as_str(),
            "/message?sessionId=up"
        );
        pending.add(&serde_json::json!(7), 10);
        shutdown.advance(Phase::Refusing);
        // Split across chunks: the event is relayed whole once complete.
        tx.send(Bytes::from_static(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",",
        ))
        .await
        .expect("send");
        tx.send(Bytes::from_static(b"\"id\":7,\"result\":{}}\n\n"))
            .await
            .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n")
        );
        assert_eq!(pending.len(), 0);
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("retry: 2000\n\n")
        );
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn legacy_streams_forward_blocks_byte_for_byte() {
        let shutdown = Shutdown::new();
        let (tx, up) = channel_body();
        let mut body = relay(
            up,
            RelayOpts {
                keepalive: Some(Duration::from_secs(15)),
                retry: Duration::from_secs(1),
                shutdown: shutdown.clone(),
                mode: Mode::Legacy(LegacyLink {
                    pending: Arc::new(Pending::default()),
                    rewrite_endpoint: Box::new(|_| Some("/messages?sessionId=tok".to_owned())),
                    lists: Arc::default(),
                }),
                list: None,
            },
        );
        // Comments, ids and CRLF endings pass unchanged; a CRLF split after its CR stays in one block.
        tx.send(Bytes::from_static(
            b": ping\r\nid: 3\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\r\n\r",
        ))
        .await
        .expect("send");
        let pending = tokio::time::timeout(Duration::from_secs(40), body.frame()).await;
        assert!(pending.is_err(), "no keep-alive and no output mid-block");
        tx.send(Bytes::from_static(b"\n")).await.expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some(": ping\r\nid: 3\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\r\n\r\n")
        );
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some(": keepalive\n\n")
        );
    }

    fn list_filter(id: Value) -> ListFilter {
        let rules = crate::policy::Rules::new(vec![crate::config::ToolRule {
            pattern: crate::config::ToolPattern::new("delete_*"),
            require_scopes: vec!["mcp:write".to_owned()],
        }]);
        ListFilter {
            id: Some(id),
            rules: Arc::new(rules),
            principal: Arc::new(crate::auth::Principal {
                subject: "reader".to_owned(),
                scopes: vec!["mcp:read".to_owned()],
                source: crate::auth::Source::ApiKey,
            }),
        }
    }

    /// A relay without keep-alives or a drain, in `mode`, filtering with `list`.
    fn relay_in(up: Body, mode: Mode, list: Option<ListFilter>) -> Body {
        relay(
            up,
            RelayOpts {
                keepalive: None,
                retry: Duration::from_secs(1),
                shutdown: Shutdown::new(),
                mode,
                list,
            },
        )
    }

    fn response_relay(up: Body, filter: ListFilter) -> Body {
        relay_in(up, Mode::Response, Some(filter))
    }

    #[tokio::test]
    async fn only_the_tools_list_answer_is_rewritten_in_a_response_stream() {
        let (tx, up) = channel_body();
        let mut body = response_relay(up, list_filter(serde_json::json!(5)));
        // A progress notification, CRLF endings, split mid-line: byte for byte.
        tx.send(Bytes::from_static(
            b": hi\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",",
        ))
        .await
        .expect("send");
        tx.send(Bytes::from_static(b"\"params\":{}}\r\n\r\n"))
            .await
            .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some(": hi\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n")
        );
        // The answer to another id is not touched.
        let other = "data: {\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{\"tools\":[{\"name\":\"delete_x\"}]}}\n\n";
        tx.send(Bytes::from(other)).await.expect("send");
        assert_eq!(next_chunk(&mut body).await.as_deref(), Some(other));
        // The answer to this request: filtered, its event id kept, its cursor kept.
        tx.send(Bytes::from_static(
            b"id: 42\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"delete_all\"}],\"nextCursor\":\"n\"}}\n\n",
        ))
        .await
        .expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("id: 42\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[{\"name\":\"echo\"}],\"nextCursor\":\"n\"}}\n\n")
        );
        drop(tx);
        assert_eq!(next_chunk(&mut body).await, None);
    }

    #[tokio::test]
    async fn legacy_streams_filter_the_answers_to_recorded_tools_list_requests() {
        let (tx, up) = channel_body();
        let lists = Arc::new(ListRequests::default());
        assert!(lists.add(list_filter(serde_json::json!(3)), 1));
        assert!(!lists.add(list_filter(serde_json::json!(4)), 1), "bounded");
        let mut body = relay_in(
            up,
            Mode::Legacy(LegacyLink {
                pending: Arc::new(Pending::default()),
                rewrite_endpoint: Box::new(|_| Some("/messages?sessionId=tok".to_owned())),
                lists: Arc::clone(&lists),
            }),
            None,
        );
        let listed = |id: u32| {
            format!("event: message\ndata: {{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"tools\":[{{\"name\":\"delete_all\"}},{{\"name\":\"echo\"}}]}}}}\n\n")
        };
        // Not recorded: byte for byte.
        tx.send(Bytes::from(listed(9))).await.expect("send");
        assert_eq!(next_chunk(&mut body).await, Some(listed(9)));
        tx.send(Bytes::from(listed(3))).await.expect("send");
        assert_eq!(
            next_chunk(&mut body).await.as_deref(),
            Some("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"echo\"}]}}\n\n")
        );
        // Taken once: a second answer with that id is not the request's.
        tx.send(Bytes::from(listed(3))).await.expect("send");
        assert_eq!(next_chunk(&mut body).await, Some(listed(3)));
    }

    #[tokio::test]
    async fn a_standalone_stream_filters_every_replayed_tools_list_answer() {
        let (tx, up) = channel_body();
        let mut filter = list_filter(serde_json::json!(0));
        filter.id = None;
        let mut body = relay_in(up, Mode::Standalone, Some(filter));
        for id in [1, 2] {
            tx.send(Bytes::from(format!(
                "data: {{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"tools\":[{{\"name\":\"delete_x\"}}]}}}}\n\n"
            )))
            .await
            .expect("send");
            assert_eq!(
                next_chunk(&mut body).await,
                Some(format!(
                    "data: {{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"tools\":[]}}}}\n\n"
                ))
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_tools_list_answer_is_refused_with_an_error_for_the_request() {
        let (tx, up) = channel_body();
        let mut body = response_relay(up, list_filter(serde_json::json!("big")));
        let mut huge =
            b"data: {\"jsonrpc\":\"2.0\",\"id\":\"big\",\"result\":{\"tools\":[".to_vec();
        huge.resize(list::MAX_LIST_BYTES + 1024, b' ');
        tx.send(Bytes::from(huge)).await.expect("send");
        let event = next_chunk(&mut body).await.expect("an error event");
        let data = event
            .strip_prefix("event: message\ndata: ")
            .and_then(|d| d.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("one message event: {event}"));
        let err: Value = serde_json::from_str(data).expect("JSON");
        assert_eq!(err["id"], "big");
        assert!(err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("16 MiB"));
        assert_eq!(next_chunk(&mut body).await, None, "the stream ends");
    }

    // The block parsing this test also covered lives in `lifeline_mcp::sse` (`raw_blocks_keep_bytes_comments_and_ids`).
    #[test]
    fn tail_tracks_event_boundaries() {
        let mut t = Tail::default();
        assert!(t.at_event_boundary());
        t.update(b"data: x\r\n\r\n");
        assert!(t.at_event_boundary());
        t.update(b"data: y\n");
        assert!(!t.at_event_boundary());
        t.update(b"\n");
        assert!(t.at_event_boundary());
    }
}
