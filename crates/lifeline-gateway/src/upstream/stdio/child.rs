//! One stdio child: spawned in its own process group, its stdout read line by line with a bound, its stderr sent
//! to the log, messages routed to the HTTP requests waiting for them, and shut down in the spec's order.
//!
//! Spec: 2025-11-25 `basic/transports` §stdio (newline-delimited messages without embedded newlines; the server
//! MUST NOT write anything to stdout that is not a valid MCP message; stderr is logging the client MAY capture) and
//! `basic/lifecycle` §Shutdown (stdio: close the child's stdin, wait for it to exit, SIGTERM if it does not within
//! a reasonable time, SIGKILL if it still does not).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use lifeline_core::child::{LineRead, ProcessGroup};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child as Process, ChildStdin};
use tokio::sync::mpsc;

use crate::config::StdioConfig;
use crate::upstream::UpstreamError;

/// Each shutdown step's wait (after closing stdin, after SIGTERM, after SIGKILL): 2 s.
pub(super) const SHUTDOWN_STEP: Duration = Duration::from_secs(2);
/// Bound on one write to the child's stdin: a child that stops reading cannot stall a request for ever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on handing one message to a waiting HTTP response; a client that stops reading loses its stream
/// rather than stalling the child's other traffic.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued per waiting HTTP response.
pub(super) const STREAM_QUEUE: usize = 64;
/// Line buffer capacity kept between messages; a larger one is released after its message.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;
/// Longest stderr line logged; the rest of the line is dropped.
const STDERR_LINE_BYTES: usize = 4096;

/// A running child and what is waiting on it.
#[derive(Debug)]
pub(super) struct Child {
    /// The child's pid (and process-group id), for logs and signals.
    pub(super) pid: u32,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    process: tokio::sync::Mutex<Option<Process>>,
    routes: Mutex<Routes>,
    alive: AtomicBool,
    /// Shared by many clients (pool mode): only messages tied to a request (its response, progress with its
    /// token) are routed; the child's own requests are refused and its other notifications dropped, so no
    /// client ever sees another's traffic.
    shared: bool,
    ended_tx: tokio::sync::watch::Sender<bool>,
}

/// One message routed to a waiting HTTP response; `last` marks the response that ends a request's stream.
#[derive(Debug)]
pub(super) struct Routed {
    /// The message's JSON text (one line, no newline).
    pub(super) message: Bytes,
    /// True for the response to the request the stream waits on.
    pub(super) last: bool,
}

/// Where the child's messages go.
#[derive(Debug, Default)]
struct Routes {
    /// Requests waiting for their response, by JSON-RPC id (its JSON text).
    pending: HashMap<String, Waiter>,
    /// The session's standalone GET stream, when open.
    standalone: Option<mpsc::Sender<Routed>>,
    /// Why the child ended, once it has.
    ended: Option<String>,
}

#[derive(Debug)]
struct Waiter {
    tx: mpsc::Sender<Routed>,
    progress_token: Option<String>,
    /// Registration order: unrelated server messages go to the oldest waiter when no GET stream is open.
    seq: u64,
}

/// Why a waiter could not be registered.
#[derive(Debug)]
pub(super) enum RegisterError {
    /// A request with this id is already waiting.
    Duplicate,
    /// The child has ended.
    Ended,
}

/// The key of the waiter a response goes to (the JSON text of its id, as in [`Child::register`]), read without
/// building the message's JSON tree (`rpc::response_id`: one pass that skips the `result`); `None` when the
/// message is not a response or that pass is not sure, and the full parse in [`Child::route`] decides.
fn response_key(line: &[u8]) -> Option<String> {
    if line.first() != Some(&b'{') {
        return None;
    }
    crate::rpc::response_id(line).map(|id| id.to_string())
}

impl Child {
    /// Starts `cfg`'s command in its own process group (so the shutdown signals reach what it starts, such as
    /// npx → node), killed on drop, with the explicit environment. Spawns the stdout and stderr readers, which end
    /// with the child.
    ///
    /// Errors: [`UpstreamError::Connect`] when the program cannot be started.
    pub(super) fn spawn(
        cfg: &StdioConfig,
        label: &str,
        shared: bool,
    ) -> Result<Arc<Child>, UpstreamError> {
        let spawned = lifeline_core::child::spawn(&lifeline_core::child::Spec {
            program: &cfg.program,
            args: &cfg.args,
            env: &cfg.env,
            inherit_env: cfg.inherit_env,
            cwd: None,
        })
        .map_err(|e| {
            UpstreamError::Connect(format!(
                "cannot start the stdio server {:?}: {e}",
                cfg.program
            ))
        })?;
        let (process, pid, stdin, stdout, stderr) = (
            spawned.process,
            spawned.group.0,
            spawned.stdin,
            spawned.stdout,
            spawned.stderr,
        );
        let child = Arc::new(Child {
            pid,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            process: tokio::sync::Mutex::new(Some(process)),
            routes: Mutex::new(Routes::default()),
            alive: AtomicBool::new(true),
            shared,
            ended_tx: tokio::sync::watch::Sender::new(false),
        });
        tracing::debug!(child.pid = pid, session.id = label, "Stdio server started.");
        tokio::spawn(read_stdout(
            Arc::clone(&child),
            stdout,
            cfg.max_line_bytes,
            label.to_owned(),
        ));
        tokio::spawn(log_stderr(stderr, pid, label.to_owned()));
        Ok(child)
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Every update is one insert/remove, so a poisoned lock still holds a consistent map.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the child is still running (its stdout is open).
    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Resolves once the child has ended.
    pub(super) async fn wait_ended(&self) {
        let mut rx = self.ended_tx.subscribe();
        let _ = rx.wait_for(|ended| *ended).await;
    }

    /// Why the child ended, once it has.
    pub(super) fn ended(&self) -> Option<String> {
        self.routes().ended.clone()
    }

    /// Registers a request waiting for the response with `id` (the JSON text of the id). Its stream receives
    /// that response last, progress notifications carrying `progress_token`, and the child's unrelated
    /// messages while no GET stream is open.
    pub(super) fn register(
        &self,
        id: String,
        progress_token: Option<String>,
    ) -> Result<mpsc::Receiver<Routed>, RegisterError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let mut routes = self.routes();
        if routes.ended.is_some() {
            return Err(RegisterError::Ended);
        }
        if routes.pending.contains_key(&id) {
            return Err(RegisterError::Duplicate);
        }
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        routes.pending.insert(
            id,
            Waiter {
                tx,
                progress_token,
                seq,
            },
        );
        Ok(rx)
    }

    /// Forgets a waiter (its response came, or its client left). Returns whether it was still waiting.
    pub(super) fn unregister(&self, id: &str) -> bool {
        self.routes().pending.remove(id).is_some()
    }

    /// Opens the session's standalone stream (a GET); `None` when one is already open or the child ended.
    pub(super) fn open_standalone(&self) -> Option<mpsc::Receiver<Routed>> {
        let mut routes = self.routes();
        if routes.ended.is_some() || routes.standalone.as_ref().is_some_and(|t| !t.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        routes.standalone = Some(tx);
        Some(rx)
    }

    /// Writes one message (a JSON text without raw newlines) to the child's stdin, newline-terminated.
    ///
    /// Errors: [`UpstreamError::Protocol`] when the child's stdin is closed or the write breaks or stalls.
    pub(super) async fn send(&self, message: &[u8]) -> Result<(), UpstreamError> {
        let mut framed = Vec::with_capacity(message.len() + 1);
        framed.extend_from_slice(message);
        framed.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let pipe = stdin.as_mut().ok_or_else(|| {
            UpstreamError::Protocol("the stdio server's stdin is closed".to_owned())
        })?;
        let write = async {
            pipe.write_all(&framed).await?;
            pipe.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(UpstreamError::Protocol(format!(
                "writing to the stdio server (pid {}): {e}",
                self.pid
            ))),
            Err(_) => Err(UpstreamError::Protocol(format!(
                "the stdio server (pid {}) did not read its stdin within {WRITE_TIMEOUT:?}",
                self.pid
            ))),
        }
    }

    /// Routes one message from the child's stdout.
    async fn route(self: &Arc<Self>, line: &[u8], value: &Value, label: &str) {
        let is_response = value.get("method").is_none()
            && (value.get("result").is_some() || value.get("error").is_some());
        if self.shared && !is_response && value.get("id").is_some() {
            // A request from a shared child (sampling, elicitation, roots): no single client can answer it.
            let refusal = serde_json::json!({
                "jsonrpc": "2.0",
                "id": value.get("id"),
                "error": {"code": -32601, "message": "Not supported: this server is shared by several clients through lifeline gateway's pool"},
            });
            // Written from another task: this reader must keep draining stdout, or a child blocked writing to it
            // and a writer blocked on its full stdin would wait on each other.
            let child = Arc::clone(self);
            tokio::spawn(async move {
                let _ = child.send(refusal.to_string().as_bytes()).await;
            });
            return;
        }
        if is_response {
            let key = value.get("id").map(Value::to_string).unwrap_or_default();
            return self.route_response(line, &key, label).await;
        }
        let target = {
            let routes = self.routes();
            let token = value
                .get("params")
                .and_then(|p| p.get("progressToken"))
                .map(Value::to_string);
            let by_token = token.and_then(|t| {
                routes
                    .pending
                    .values()
                    .find(|w| w.progress_token.as_deref() == Some(t.as_str()))
                    .map(|w| w.tx.clone())
            });
            if self.shared {
                by_token
            } else {
                by_token
                    .or_else(|| routes.standalone.clone().filter(|t| !t.is_closed()))
                    .or_else(|| {
                        routes
                            .pending
                            .values()
                            .min_by_key(|w| w.seq)
                            .map(|w| w.tx.clone())
                    })
            }
        };
        self.deliver(target, line, false, label).await;
    }

    /// Routes a response to the request waiting for it (`key`: the JSON text of its id). The response is the
    /// last message of its stream: removing the waiter drops its sender once the message is queued, which ends
    /// the stream.
    async fn route_response(&self, line: &[u8], key: &str, label: &str) {
        let target = self.routes().pending.remove(key).map(|w| w.tx);
        self.deliver(target, line, true, label).await;
    }

    /// Hands one message to a waiting HTTP response, bounded by [`ROUTE_TIMEOUT`].
    /// Queues a message on its client's stream (bounded by [`ROUTE_TIMEOUT`] for a client that stops reading);
    /// with no stream to receive it (`target` is `None`), drops it.
    async fn deliver(
        &self,
        target: Option<mpsc::Sender<Routed>>,
        line: &[u8],
        last: bool,
        label: &str,
    ) {
        let Some(tx) = target else {
            tracing::debug!(
                child.pid = self.pid,
                session.id = label,
                "Stdio server message with no one to receive it dropped."
            );
            return;
        };
        let routed = Routed {
            message: Bytes::copy_from_slice(line),
            last,
        };
        if tokio::time::timeout(ROUTE_TIMEOUT, tx.send(routed))
            .await
            .is_err()
        {
            tracing::warn!(
                child.pid = self.pid,
                session.id = label,
                "Client stream not reading; message dropped."
            );
        }
    }

    /// Marks the child ended and releases every waiter: their streams end without a response (the HTTP side
    /// then answers with an error for their id).
    fn end(&self, why: String) {
        self.alive.store(false, Ordering::Release);
        let (pending, standalone) = {
            let mut routes = self.routes();
            routes.ended.get_or_insert(why);
            (
                std::mem::take(&mut routes.pending),
                routes.standalone.take(),
            )
        };
        drop((pending, standalone));
        self.ended_tx.send_replace(true);
    }

    /// 2025-11-25 `basic/lifecycle` §Shutdown (stdio): close stdin, wait; SIGTERM the process group, wait;
    /// SIGKILL it, wait. Each step is bounded by [`SHUTDOWN_STEP`]. Returns how the child ended.
    pub(super) async fn shutdown(&self) -> Option<String> {
        self.stdin.lock().await.take();
        let mut process = self.process.lock().await;
        let process = process.as_mut()?;
        let how = lifeline_core::child::stop(process, self.group(), SHUTDOWN_STEP)
            .await
            .map(|s| s.to_string());
        self.end(format!(
            "shut down ({})",
            how.as_deref().unwrap_or("did not exit")
        ));
        how
    }

    /// Sends `signal` to the child's process group (a signal the gateway forwards, e.g. SIGHUP).
    pub(super) fn signal(&self, signal: Signal) {
        if self.is_alive() {
            self.group().signal(signal);
        }
    }

    /// Kills the process group at once (a protocol violation such as an overlong line).
    fn kill(&self) {
        self.group().signal(Signal::SIGKILL);
    }

    fn group(&self) -> ProcessGroup {
        ProcessGroup(self.pid)
    }

    /// How the process exited, when it has (without waiting).
    async fn exit_status(&self) -> Option<String> {
        let mut process = self.process.lock().await;
        let p = process.as_mut()?;
        match tokio::time::timeout(Duration::from_millis(500), p.wait()).await {
            Ok(Ok(s)) => Some(s.to_string()),
            _ => None,
        }
    }
}

/// Reads the child's stdout until it closes: one message a line, each at most `max_line` bytes (a longer line
/// kills the child: buffering it would be unbounded). A line that is not JSON is logged and skipped, never
/// forwarded (2025-11-25 `basic/transports` §stdio: the server MUST NOT write anything else to stdout).
async fn read_stdout(
    child: Arc<Child>,
    stdout: impl AsyncRead + Unpin,
    max_line: usize,
    label: String,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let why = loop {
        match lifeline_core::child::read_line(&mut reader, &mut line, max_line).await {
            Err(e) => break format!("reading its stdout failed: {e}"),
            Ok(LineRead::Eof) => break "it closed its stdout".to_owned(),
            Ok(LineRead::TooLong) => {
                tracing::warn!(child.pid = child.pid, session.id = %label, max_line_bytes = max_line, "Stdio server wrote an overlong stdout line; ending it.");
                child.kill();
                break format!("it wrote a stdout line longer than {max_line} bytes");
            }
            Ok(LineRead::Line(_)) => {}
        }
        let text = line.trim_ascii();
        if !text.is_empty() {
            // Responses, the bulk of the traffic, are routed from a light parse; other messages (small) get a
            // full one, and so does a response the light parse is not sure of (duplicate keys, say).
            if let Some(key) = response_key(text) {
                child.route_response(text, &key, &label).await;
            } else {
                match serde_json::from_slice::<Value>(text) {
                    Ok(value) if value.is_object() => child.route(text, &value, &label).await,
                    _ => {
                        let shown: String =
                            String::from_utf8_lossy(text).chars().take(200).collect();
                        tracing::warn!(child.pid = child.pid, session.id = %label, line = %shown, "Stdio server wrote a non-JSON-RPC line to stdout; skipped.");
                    }
                }
            }
        }
        if line.capacity() > KEEP_LINE_CAPACITY {
            // One large message must not pin its buffer for the child's whole life.
            line = Vec::new();
        }
    };
    let status = child.exit_status().await;
    let why = match status {
        Some(s) => format!("{why} ({s})"),
        None => why,
    };
    if child.is_alive() {
        tracing::info!(child.pid = child.pid, session.id = %label, reason = %why, "Stdio server ended.");
    }
    child.end(why);
}

/// Sends the child's stderr to the log, a line at a time (each cut at [`STDERR_LINE_BYTES`]).
async fn log_stderr(stderr: impl AsyncRead + Unpin, pid: u32, label: String) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(STDERR_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(line.trim_ascii());
        if !text.is_empty() {
            tracing::info!(child.pid = pid, session.id = %label, stderr = %text, "Stdio server stderr.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the light parse routes as a response, the full parse in `Child::route` routes the same way; the usual
    /// responses are routed by the light parse.
    #[test]
    fn the_light_parse_agrees_with_the_full_parse() {
        let messages = [
            r#"{"jsonrpc":"2.0","id":"lifeline-1","result":{"tools":[{"id":5}]}}"#,
            r#"{"result":{},"jsonrpc":"2.0","id":7}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
            r#"{"jsonrpc":"2.0","id":{"a":[1, 2]},"result":null}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"x","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":3}"#,
        ];
        for m in messages {
            let value: Value = serde_json::from_str(m).expect("JSON");
            let full = (value.get("method").is_none()
                && (value.get("result").is_some() || value.get("error").is_some()))
            .then(|| value.get("id").map(Value::to_string).unwrap_or_default());
            if let Some(light) = response_key(m.as_bytes()) {
                assert_eq!(Some(light), full, "{m}");
            }
        }
        for usual in &messages[..2] {
            assert!(response_key(usual.as_bytes()).is_some(), "{usual}");
        }
        assert_eq!(
            response_key(messages[0].as_bytes()).as_deref(),
            Some(r#""lifeline-1""#)
        );
        assert_eq!(response_key(messages[1].as_bytes()).as_deref(), Some("7"));
    }

    fn cfg(script: &str) -> StdioConfig {
        StdioConfig {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: Vec::new(),
            inherit_env: false,
            mode: crate::config::StdioMode::Session,
            pool_size: 1,
            max_line_bytes: 1024,
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Routed>) -> Option<Routed> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a message or the end in time")
    }

    #[tokio::test]
    async fn messages_route_by_id_and_progress_token_and_junk_is_skipped() {
        // Emits: junk, progress for token "b", the response to id 2, then the response to id 1.
        let child = Child::spawn(
            &cfg(r#"read x; echo 'not json'; echo '{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"b","progress":1}}'; echo '{"jsonrpc":"2.0","id":2,"result":{}}'; echo '{"jsonrpc":"2.0","id":1,"result":{}}'; read y"#),
            "t",
            true,
        )
        .expect("sh starts");
        let mut a = child.register("1".into(), Some("\"a\"".into())).expect("a");
        let mut b = child.register("2".into(), Some("\"b\"".into())).expect("b");
        assert!(matches!(
            child.register("1".into(), None),
            Err(RegisterError::Duplicate)
        ));
        child.send(b"{}").await.expect("write");
        let m = next(&mut b).await.expect("progress");
        assert!(!m.last && m.message.starts_with(b"{\"jsonrpc\":\"2.0\",\"method\""));
        assert!(next(&mut b).await.expect("response").last);
        assert!(
            next(&mut b).await.is_none(),
            "the stream ends after its response"
        );
        let m = next(&mut a).await.expect("response");
        assert!(m.last, "a got only its own response");
        assert!(next(&mut a).await.is_none());
        child.shutdown().await;
        assert!(!child.is_alive());
    }

    #[tokio::test]
    async fn an_overlong_line_ends_the_child_and_releases_its_waiters() {
        let child = Child::spawn(
            &cfg("head -c 5000 /dev/zero | tr '\\0' x; echo; sleep 30"),
            "t",
            false,
        )
        .expect("sh starts");
        let mut rx = child.register("1".into(), None).expect("register");
        assert!(next(&mut rx).await.is_none(), "released without a response");
        assert!(!child.is_alive());
        assert!(
            child
                .ended()
                .is_some_and(|w| w.contains("longer than 1024 bytes")),
            "{:?}",
            child.ended()
        );
        assert!(matches!(
            child.register("2".into(), None),
            Err(RegisterError::Ended)
        ));
    }

    #[tokio::test]
    async fn shutdown_escalates_to_sigterm_for_a_child_that_ignores_stdin() {
        let child = Child::spawn(&cfg("sleep 60"), "t", false).expect("sh starts");
        let started = std::time::Instant::now();
        let how = child.shutdown().await.expect("it exits");
        assert!(how.contains("signal"), "{how}");
        assert!(started.elapsed() < SHUTDOWN_STEP * 3);
    }
}
