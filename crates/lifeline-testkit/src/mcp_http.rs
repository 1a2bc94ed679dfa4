//! The HTTP side of an MCP client for gateway tests, shared by the in-process gateway tests
//! (`lifeline-gateway/tests/it`) and the binary's process tests (`lifeline/tests/cli`): JSON-RPC posts and
//! legacy sessions over [`raw_http`], a tiny streaming HTTP/1.1 client ([`Streaming`]) that sees SSE events as
//! they arrive, Prometheus samples, and the real clients (the Python SDK 2.x script in `tests/peers/clients/` and
//! `@modelcontextprotocol/inspector-cli`) with the assertions the tests make on their runs. Every wait is
//! bounded; the helpers panic (failing the test) on anything unexpected.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::peers::{self, raw_http};

/// A legacy `initialize` request.
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"gateway-test","version":"1"}}}"#;
/// The `notifications/initialized` notification.
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The value of an unlabelled metric sample, or of a labelled one written in full (`name{a="b"}`).
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// `POST url` with a JSON body and the Streamable HTTP `Accept`.
pub async fn post(url: &str, extra: &[(&str, &str)], body: &str) -> raw_http::RawResponse {
    raw_http::post_json(url, extra, body)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// Opens a legacy session through `url`: `initialize` then `notifications/initialized`. Returns the session id.
pub async fn open_session(url: &str) -> String {
    let r = post(url, &[], INIT).await;
    assert_eq!(r.status, 200, "initialize: {}", r.text());
    let sid = r.header("mcp-session-id").expect("a session id").to_owned();
    let r = post(
        url,
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        INITIALIZED,
    )
    .await;
    assert_eq!(r.status, 202, "initialized: {}", r.text());
    sid
}

/// A response whose body is read as it arrives (HTTP/1.1, `Connection: close`, chunked or not).
pub struct Streaming {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers, names lowercased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    chunked: bool,
    chunk_left: usize,
    done: bool,
    buf: Vec<u8>,
}

impl Streaming {
    /// Sends a request and reads the status line and headers (within 10 s).
    pub async fn open(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Streaming {
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let fut = async {
            let mut stream = TcpStream::connect(authority).await.expect("connect");
            let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
                req.push_str(&format!("Host: {authority}\r\n"));
            }
            for (k, v) in headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            if let Some(b) = body {
                req.push_str(&format!("Content-Length: {}\r\n", b.len()));
            }
            req.push_str("\r\n");
            if let Some(b) = body {
                req.push_str(b);
            }
            stream.write_all(req.as_bytes()).await.expect("write");
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("status line");
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status");
            let mut headers = Vec::new();
            loop {
                line.clear();
                reader.read_line(&mut line).await.expect("header line");
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let chunked = headers.iter().any(|(k, v)| {
                k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked")
            });
            Streaming {
                status,
                headers,
                reader,
                chunked,
                chunk_left: 0,
                done: false,
                buf: Vec::new(),
            }
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: no response headers in 10 s"))
    }

    /// The first header named `name` (lowercase), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// More body bytes, `None` at the end of the body.
    async fn more(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        if !self.chunked {
            let mut buf = vec![0u8; 8192];
            let n = self.reader.read(&mut buf).await.ok()?;
            if n == 0 {
                self.done = true;
                return None;
            }
            buf.truncate(n);
            return Some(buf);
        }
        if self.chunk_left == 0 {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.ok()? == 0 {
                self.done = true;
                return None;
            }
            if line.trim().is_empty() {
                line.clear();
                if self.reader.read_line(&mut line).await.ok()? == 0 {
                    self.done = true;
                    return None;
                }
            }
            let size =
                usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).ok()?;
            if size == 0 {
                self.done = true;
                return None;
            }
            self.chunk_left = size;
        }
        let mut buf = vec![0u8; self.chunk_left.min(8192)];
        let n = self.reader.read(&mut buf).await.ok()?;
        if n == 0 {
            self.done = true;
            return None;
        }
        self.chunk_left -= n;
        buf.truncate(n);
        Some(buf)
    }

    /// The next SSE event (raw text, blank line excluded) within `patience`; `None` when the stream ended.
    pub async fn next_event(&mut self, patience: Duration) -> Option<String> {
        let fut = async {
            loop {
                let text = String::from_utf8_lossy(&self.buf).replace("\r\n", "\n");
                if let Some(end) = text.find("\n\n") {
                    let event = text[..end].to_owned();
                    let consumed = text[..end + 2].len();
                    // Re-encode what is left (line endings normalised; fine for tests).
                    self.buf = text.as_bytes()[consumed..].to_vec();
                    return Some(event);
                }
                match self.more().await {
                    Some(bytes) => self.buf.extend_from_slice(&bytes),
                    None => return None,
                }
            }
        };
        tokio::time::timeout(patience, fut)
            .await
            .unwrap_or_else(|_| panic!("no SSE event within {patience:?}"))
    }

    /// The message URL of a 2024-11-05 HTTP+SSE stream: the `data` of its first event (the `endpoint` event,
    /// 2024-11-05 `basic/transports` §HTTP with SSE), trimmed, within 10 s. Panics (the test fails) when the
    /// stream ends first or the event has no `data` line.
    pub async fn endpoint_path(&mut self) -> String {
        let event = self
            .next_event(Duration::from_secs(10))
            .await
            .expect("the endpoint event");
        event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("no data in {event}"))
            .trim()
            .to_owned()
    }

    /// The whole remaining body (within `patience`).
    pub async fn rest(&mut self, patience: Duration) -> String {
        let fut = async {
            let mut out = std::mem::take(&mut self.buf);
            while let Some(b) = self.more().await {
                out.extend_from_slice(&b);
            }
            String::from_utf8_lossy(&out).into_owned()
        };
        tokio::time::timeout(patience, fut)
            .await
            .expect("the body ends in time")
    }
}

/// The JSON of an SSE event's `data:` lines, when it is JSON.
pub fn event_json(event: &str) -> Option<Value> {
    let data: Vec<&str> = event
        .lines()
        .filter_map(|l| {
            l.strip_prefix("data:")
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
        })
        .collect();
    serde_json::from_str(&data.join("\n")).ok()
}

/// What the Python SDK client script printed.
pub struct PyRun {
    /// The script exited 0.
    pub ok: bool,
    /// Its JSON lines on stdout, one event each (`{"event": ..., "t": seconds, ...}`).
    pub events: Vec<Value>,
    /// Its stderr, for failure messages.
    pub stderr: String,
}

impl PyRun {
    /// The events whose `event` field is `event`, in order.
    pub fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }
}

/// Runs `tests/peers/clients/py_client.py` (official Python SDK 2.x) with `args`, bounded by 90 s.
pub async fn py_client(args: &[&str]) -> PyRun {
    py_client_with_env(args, &[]).await
}

/// [`py_client`] with extra environment variables (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`).
pub async fn py_client_with_env(args: &[&str], env: &[(&str, &str)]) -> PyRun {
    let script = peers::peers_sources().join("clients").join("py_client.py");
    let python = peers::peers_dir().join("py2/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/install-peers.sh",
        python.display()
    );
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script)
        .args(args)
        .args(["--timeout", "80"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("the Python client finishes within 90 s")
        .expect("the Python client runs");
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    PyRun {
        ok: out.status.success(),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `@modelcontextprotocol/inspector-cli` (from its `build/` directory, as it requires) on Node 22 with
/// `args`, bounded by 60 s. Returns (success, stdout + stderr).
pub async fn inspector(args: &[&str]) -> (bool, String) {
    let dir = peers::npm_package_dir("@modelcontextprotocol/inspector-cli").join("build");
    let mut cmd = tokio::process::Command::new(peers::node22());
    cmd.current_dir(&dir)
        .arg("index.js")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("inspector-cli finishes within 60 s")
        .expect("inspector-cli runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What inspector-cli does through the gateway in the tests: `tools/list` must name `listed`, then `tools/call`
/// of `tool` with `args` (`key=value` each) must answer with text containing `answer`.
pub struct InspectorCall<'a> {
    /// `http` (Streamable HTTP) or `sse` (2024-11-05 HTTP+SSE).
    pub transport: &'a str,
    /// A tool name the list must contain.
    pub listed: &'a str,
    /// The tool to call.
    pub tool: &'a str,
    /// Its arguments, `key=value`.
    pub args: &'a [&'a str],
    /// Text the call's output must contain.
    pub answer: &'a str,
}

/// server-everything's `get-sum` over Streamable HTTP: listed, and `a=2 b=3` answers "… is 5".
pub const EVERYTHING_GET_SUM: InspectorCall<'static> = InspectorCall {
    transport: "http",
    listed: "get-sum",
    tool: "get-sum",
    args: &["a=2", "b=3"],
    answer: "is 5",
};

/// Runs [`InspectorCall`]'s list and call against `url` with inspector-cli and asserts both.
pub async fn inspector_lists_and_calls(url: &str, c: InspectorCall<'_>) {
    let (ok, out) = inspector(&[url, "--transport", c.transport, "--method", "tools/list"]).await;
    assert!(ok && out.contains(c.listed), "{out}");
    let mut argv = vec![
        url,
        "--transport",
        c.transport,
        "--method",
        "tools/call",
        "--tool-name",
        c.tool,
    ];
    for a in c.args {
        argv.extend(["--tool-arg", a]);
    }
    let (ok, out) = inspector(&argv).await;
    assert!(ok && out.contains(c.answer), "{out}");
}

/// The Python SDK client calls server-everything's long-running tool (3 s, 5 steps) at `url`, with `extra`
/// client flags (e.g. `--transport sse`); its progress must arrive streamed. Returns the run for more checks.
pub async fn everything_long_call(url: &str, extra: &[&str]) -> PyRun {
    let mut argv = vec![url];
    argv.extend_from_slice(extra);
    argv.extend([
        "--call",
        "trigger-long-running-operation",
        "--args",
        r#"{"duration": 3, "steps": 5}"#,
    ]);
    let run = py_client(&argv).await;
    assert_streamed_progress(&run, 4);
    run
}

/// The run listed server-everything's tools (it has 13; at least 10 counts).
pub fn assert_listed_everything_tools(run: &PyRun) {
    assert!(
        run.of("tools")[0]["names"]
            .as_array()
            .is_some_and(|n| n.len() >= 10),
        "{:?}",
        run.events
    );
}

/// Asserts progress notifications arrived spread out before the result (streamed as they came, not buffered).
pub fn assert_streamed_progress(run: &PyRun, min_steps: usize) {
    assert!(run.ok, "client failed: {:?}\n{}", run.events, run.stderr);
    let progress = run.of("progress");
    let result = run.of("result");
    assert!(
        progress.len() >= min_steps,
        "expected ≥{min_steps} progress events: {:?}",
        run.events
    );
    assert_eq!(result.len(), 1, "{:?}", run.events);
    let first = progress[0]["t"].as_f64().expect("t");
    let done = result[0]["t"].as_f64().expect("t");
    assert!(
        done - first > 0.5,
        "progress must arrive while the tool runs, not all at once with the result: first {first:.3}s, result {done:.3}s"
    );
    assert_eq!(result[0]["is_error"], false, "{:?}", result[0]);
}

/// The Python of the installed Python SDK 2.x venv (`$LIFELINE_PEERS_DIR/py2/bin/python`), which runs the
/// testkit's stdio fake ([`crate::fakes::stdio_fake_server`]) and the Python SDK servers.
pub fn py2_python() -> String {
    peers::peers_dir()
        .join("py2/bin/python")
        .to_string_lossy()
        .into_owned()
}

/// The JSON-RPC message with `id` in a response body, SSE (`data:` lines) or JSON.
pub fn message_with_id(body: &str, id: i64) -> Option<Value> {
    let from_json = serde_json::from_str::<Value>(body.trim()).ok();
    from_json
        .into_iter()
        .chain(body.lines().filter_map(|l| {
            l.strip_prefix("data:")
                .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
        }))
        .find(|m| m["id"] == id)
}

/// A `tools/call` request with id `id` of the tool `name`, without arguments.
pub fn tools_call(id: i64, name: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
    )
}

/// A `tools/call` of `add` (2 + 3, the test servers' tool) with id 7 on session `sid` at `url` (protocol
/// 2025-11-25): the raw response (a test checks the status, and for the sum `"5"` in the text).
pub async fn call_add(url: &str, sid: &str) -> raw_http::RawResponse {
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}"#;
    post(
        url,
        &[
            ("Mcp-Session-Id", sid),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        body,
    )
    .await
}

/// Calls the stdio fake's `whoami` tool at `url` on session `sid`: the pid of the child serving the session.
/// Panics unless the answer is a 200 SSE stream carrying the pid.
pub async fn whoami(url: &str, sid: &str) -> u32 {
    let r = post(url, &[("Mcp-Session-Id", sid)], &tools_call(2, "whoami")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let m = message_with_id(&r.text(), 2).unwrap_or_else(|| panic!("no response: {}", r.text()));
    m["result"]["content"][0]["text"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {m}"))
}
