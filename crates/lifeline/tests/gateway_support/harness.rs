//! Shared helpers for the `gateway_*` integration tests (each includes this file with `#[path]`): start the built
//! `lifeline gateway` on ports the OS picks, signal it, talk to it with a tiny streaming HTTP/1.1 client that sees
//! SSE events as they arrive, and run the real clients (the Python SDK script in `tests/peers/clients/` and
//! `@modelcontextprotocol/inspector-cli`). Every wait is bounded.

#![allow(dead_code, unreachable_pub)]

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lifeline_testkit::peers::{self, raw_http};
use lifeline_testkit::process::ChildGuard;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a gateway may take to start listening.
pub const START_PATIENCE: Duration = Duration::from_secs(30);

/// A legacy `initialize` request.
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"gateway-test","version":"1"}}}"#;
/// The `notifications/initialized` notification.
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// A running `lifeline gateway` process (its own process group, killed on drop).
pub struct Gw {
    pub guard: ChildGuard,
    /// `http://127.0.0.1:P`
    pub base: String,
    /// `http://127.0.0.1:Q`
    pub admin: String,
}

impl Gw {
    /// Starts the gateway in front of `upstream` with `extra` flags, on `127.0.0.1:0` for both listeners.
    pub async fn start(upstream: &str, extra: &[&str]) -> Gw {
        let mut args = vec!["--upstream", upstream];
        args.extend_from_slice(extra);
        Gw::start_with(&args).await
    }

    /// Starts the gateway in front of the stdio server `program args…` (after `--`) with `extra` flags.
    pub async fn start_stdio(program: &str, args: &[&str], extra: &[&str]) -> Gw {
        let mut all: Vec<&str> = extra.to_vec();
        all.push("--");
        all.push(program);
        all.extend_from_slice(args);
        Gw::start_with(&all).await
    }

    /// Starts the gateway with `args` (which must name an upstream), on `127.0.0.1:0` for both listeners.
    pub async fn start_with(args: &[&str]) -> Gw {
        Gw::start_wrapped(&[], args).await
    }

    /// Like [`Gw::start_with`], with the gateway run by `wrapper` (e.g. `unshare --pid --fork` to make it PID 1).
    pub async fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Gw {
        let (flags, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => (&args[..i], &args[i..]),
            None => (args, &[][..]),
        };
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_lifeline"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_lifeline")),
        };
        cmd.arg("gateway")
            .args(flags)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(command)
            .env("LIFELINE_LOG", "info,lifeline_gateway=debug");
        let mut guard =
            ChildGuard::spawn("lifeline gateway", cmd).expect("the lifeline binary starts");
        let rest = guard
            .wait_for_output("\"message\":\"Gateway listening.\",", START_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Gw {
            base: format!("http://{}", json_field(&rest, "listen")),
            admin: format!("http://{}", json_field(&rest, "admin_listen")),
            guard,
        }
    }

    /// The client-side MCP endpoint.
    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// Sends `sig` to the gateway process.
    pub fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.guard.pid() as i32), sig)
            .expect("signal the gateway");
    }

    /// Waits for the process to exit, at most `patience`.
    pub async fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.guard.try_status() {
                return status;
            }
            assert!(
                start.elapsed() < patience,
                "the gateway did not exit within {patience:?}; output:\n{}",
                self.guard.output_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> raw_http::RawResponse {
        raw_http::request(
            "GET",
            &format!("{}{path}", self.admin),
            &[],
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The Prometheus text.
    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.text()
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&self, patience: Duration) {
        let start = Instant::now();
        loop {
            let r = self.admin_get("/ready").await;
            if r.status == 200 {
                return;
            }
            assert!(
                start.elapsed() < patience,
                "/ready still {} after {patience:?}: {}",
                r.status,
                r.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The gateway's captured output.
    pub fn logs(&self) -> String {
        self.guard.output_tail()
    }
}

/// The value of `"name":"value"` in a JSON log line's tail.
pub fn json_field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    let start = line
        .find(&key)
        .map(|i| i + key.len())
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

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
    pub status: u16,
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
    pub ok: bool,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl PyRun {
    pub fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }
}

/// Runs `tests/peers/clients/py_client.py` (official Python SDK 2.x) with `args`, bounded by 90 s.
pub async fn py_client(args: &[&str]) -> PyRun {
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
