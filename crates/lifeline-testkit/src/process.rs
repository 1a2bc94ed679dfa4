//! Child processes for tests: [`ChildGuard`] runs a command in its own process group, keeps a bounded copy of its
//! output for failure messages, and kills the whole group when dropped. Plus [`free_port`] and [`wait_for_port`].
//!
//! Everything here is bounded: output buffers (first [`HEAD_BYTES`] and last [`TAIL_BYTES`]), every wait (a
//! patience or grace period), and polling intervals.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lifeline_core::child::ProcessGroup;

/// How many bytes of a child's earliest output are kept (start-up banners such as uvicorn's
/// `Uvicorn running on http://127.0.0.1:PORT` live there).
pub const HEAD_BYTES: usize = 8 * 1024;

/// How many bytes of a child's latest output are kept for failure messages.
pub const TAIL_BYTES: usize = 64 * 1024;

/// Default time between SIGTERM to the process group and SIGKILL when a [`ChildGuard`] is dropped: 3 s, a little more
/// than the `--timeout-graceful-shutdown 2` the uvicorn peers are started with.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// Longest pause between two polls in [`wait_for_port`], [`ChildGuard::wait_for_output`] and the drop path.
const MAX_POLL: Duration = Duration::from_millis(50);

/// Why a child process did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The process could not be started at all (missing binary, permissions).
    #[error("failed to start {name} ({program}): {source}")]
    Spawn {
        /// The guard's name.
        name: String,
        /// The program that was run.
        program: String,
        /// The OS error.
        source: io::Error,
    },
    /// The process exited while we were waiting for it to become ready.
    #[error("{name} exited with {status} before it was ready (waiting for {waiting_for}); output tail:\n{tail}")]
    Exited {
        /// The guard's name.
        name: String,
        /// Its exit status.
        status: ExitStatus,
        /// What readiness signal was awaited.
        waiting_for: String,
        /// The last output it wrote (stderr and captured stdout).
        tail: String,
    },
    /// The patience ran out.
    #[error(
        "{name} was not ready after {waited:?} (waiting for {waiting_for}); output tail:\n{tail}"
    )]
    Timeout {
        /// The guard's name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// What readiness signal was awaited.
        waiting_for: String,
        /// The last output it wrote.
        tail: String,
    },
}

impl ProcessError {
    /// A bounded label for the failure: `spawn`, `exited` or `timeout`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProcessError::Spawn { .. } => "spawn",
            ProcessError::Exited { .. } => "exited",
            ProcessError::Timeout { .. } => "timeout",
        }
    }
}

/// A child process in its own process group, killed with its whole group on drop.
///
/// Drop sends SIGTERM to the group, waits up to the grace period (default [`DEFAULT_GRACE`]) for the leader to
/// exit, then sends SIGKILL to the group (which also catches grandchildren that ignored SIGTERM) and reaps the
/// leader. Output (stderr, and stdout unless piped to the caller) is copied by background threads into a bounded
/// buffer: see [`ChildGuard::output_tail`].
pub struct ChildGuard {
    name: String,
    child: Child,
    group: ProcessGroup,
    output: Arc<Mutex<OutputBuffer>>,
    grace: Duration,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

#[derive(Default)]
struct OutputBuffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group (pgid = its pid) with stdin from `/dev/null` and stdout and stderr
    /// captured into the bounded output buffer. `name` labels failure messages.
    ///
    /// # Errors
    /// [`ProcessError::Spawn`] when the OS refuses to start the program.
    pub fn spawn(name: impl Into<String>, cmd: Command) -> Result<ChildGuard, ProcessError> {
        Self::spawn_inner(name.into(), cmd, false)
    }

    /// Like [`ChildGuard::spawn`] but with stdin and stdout piped to the caller (take them with
    /// [`ChildGuard::take_stdin`] / [`ChildGuard::take_stdout`]), for stdio MCP servers. stderr is still captured.
    ///
    /// # Errors
    /// [`ProcessError::Spawn`] when the OS refuses to start the program.
    pub fn spawn_piped(name: impl Into<String>, cmd: Command) -> Result<ChildGuard, ProcessError> {
        Self::spawn_inner(name.into(), cmd, true)
    }

    fn spawn_inner(
        name: String,
        mut cmd: Command,
        piped: bool,
    ) -> Result<ChildGuard, ProcessError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        cmd.process_group(0)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped());
        cmd.stdin(if piped { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: name.clone(),
            program,
            source,
        })?;
        // The pid of a just-spawned child always fits in pid_t; a failure here would be a kernel/ABI mismatch.
        let pid = i32::try_from(child.id()).expect("a child pid fits in pid_t");
        let output = Arc::new(Mutex::new(OutputBuffer::default()));
        if let Some(stderr) = child.stderr.take() {
            spawn_copier(&name, "stderr", stderr, Arc::clone(&output));
        }
        let mut stdout = child.stdout.take();
        if !piped {
            if let Some(out) = stdout.take() {
                spawn_copier(&name, "stdout", out, Arc::clone(&output));
            }
        }
        let stdin = child.stdin.take();
        Ok(ChildGuard {
            name,
            child,
            group: ProcessGroup(pid as u32),
            output,
            grace: DEFAULT_GRACE,
            stdin,
            stdout,
        })
    }

    /// Sets the time between SIGTERM and SIGKILL on drop (default [`DEFAULT_GRACE`]). Use a short one for peers
    /// known to ignore SIGTERM (mcp-proxy).
    pub fn with_grace(mut self, grace: Duration) -> ChildGuard {
        self.grace = grace;
        self
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The piped stdin (only after [`ChildGuard::spawn_piped`]; `None` once taken).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// The piped stdout (only after [`ChildGuard::spawn_piped`]; `None` once taken).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// The exit status if the leader has exited (reaping it), `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The captured output so far, as lossy UTF-8: the first [`HEAD_BYTES`], a `[... N bytes dropped ...]` marker
    /// if anything was dropped, and the last [`TAIL_BYTES`].
    pub fn output_tail(&self) -> String {
        lock(&self.output).render()
    }

    /// Waits until the captured output contains `marker` and returns the rest of that line (trimmed), e.g.
    /// `wait_for_output("Uvicorn running on http://127.0.0.1:", ..)` yields `"PORT (Press CTRL+C to quit)"`.
    ///
    /// # Errors
    /// [`ProcessError::Exited`] if the process exits first, [`ProcessError::Timeout`] after `patience`.
    pub async fn wait_for_output(
        &mut self,
        marker: &str,
        patience: Duration,
    ) -> Result<String, ProcessError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            if let Some(rest) = lock(&self.output).find_line_after(marker) {
                return Ok(rest);
            }
            self.check_alive(start, patience, &format!("output {marker:?}"))?;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// `Ok` while running and within patience; the matching error otherwise.
    fn check_alive(
        &mut self,
        start: Instant,
        patience: Duration,
        waiting_for: &str,
    ) -> Result<(), ProcessError> {
        if let Some(status) = self.try_status() {
            // Give the copier threads a moment to drain the last words of a crashed process; bounded.
            std::thread::sleep(Duration::from_millis(20));
            return Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
                waiting_for: waiting_for.to_owned(),
                tail: self.output_tail(),
            });
        }
        if start.elapsed() >= patience {
            return Err(ProcessError::Timeout {
                name: self.name.clone(),
                waited: start.elapsed(),
                waiting_for: waiting_for.to_owned(),
                tail: self.output_tail(),
            });
        }
        Ok(())
    }

    /// Kills the process group now (SIGTERM, grace, SIGKILL) and reaps the leader. Idempotent; also run by drop.
    pub fn shutdown(&mut self) {
        lifeline_core::child::stop_blocking(&mut self.child, self.group, self.grace);
    }
}

impl fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildGuard")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl OutputBuffer {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }

    fn render(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        let kept = (self.head.len() + self.tail.len()) as u64;
        if self.total > kept {
            out.push_str(&format!(
                "\n[... {} bytes dropped ...]\n",
                self.total - kept
            ));
        }
        let (a, b) = self.tail.as_slices();
        out.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        out
    }

    fn find_line_after(&self, marker: &str) -> Option<String> {
        let text = self.render();
        let at = text.find(marker)? + marker.len();
        let rest = &text[at..];
        // Only a complete line counts: the writer may be mid-line.
        let end = rest.find('\n')?;
        Some(rest[..end].trim().to_owned())
    }
}

fn lock(m: &Mutex<OutputBuffer>) -> MutexGuard<'_, OutputBuffer> {
    // A copier thread cannot panic while holding the lock (push does not panic), but stay usable regardless.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spawn_copier(
    name: &str,
    stream: &str,
    mut src: impl Read + Send + 'static,
    dst: Arc<Mutex<OutputBuffer>>,
) {
    let thread_name = format!("{name}-{stream}");
    let spawned = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lock(&dst).push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "Could not start an output copier thread; child output will not be captured.");
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind `127.0.0.1:0`, read the port, close).
///
/// Racy by nature: another process may take it before you bind. Prefer letting the server bind port 0 and reading
/// the port back (the peer launchers do that); use this only for programs that cannot.
///
/// # Panics
/// If binding a loopback socket fails, which means the machine has no usable loopback.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 must work on a test machine");
    listener
        .local_addr()
        .expect("a bound listener has a local address")
        .port()
}

/// Polls a TCP connect to `addr` until it succeeds, the child exits, or `patience` runs out. Each attempt is bounded
/// by the remaining patience; polls back off from 5 ms to 50 ms.
///
/// # Errors
/// [`ProcessError::Exited`] naming the child and its output tail if it dies first, [`ProcessError::Timeout`] after
/// `patience`.
pub async fn wait_for_port(
    child: &mut ChildGuard,
    addr: SocketAddr,
    patience: Duration,
) -> Result<(), ProcessError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    let waiting_for = format!("a TCP listener on {addr}");
    loop {
        let remaining = patience
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        if let Ok(Ok(_stream)) =
            tokio::time::timeout(remaining, tokio::net::TcpStream::connect(addr)).await
        {
            return Ok(());
        }
        child.check_alive(start, patience, &waiting_for)?;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_buffer_keeps_head_and_tail_and_counts_dropped_bytes() {
        let mut b = OutputBuffer::default();
        b.push(&vec![b'h'; HEAD_BYTES]);
        b.push(&vec![b'x'; TAIL_BYTES]);
        b.push(b"last line\n");
        let text = b.render();
        assert!(text.starts_with("hhhh"));
        assert!(text.contains("[... 10 bytes dropped ...]"));
        assert!(text.ends_with("last line\n"));
        assert_eq!(b.tail.len(), TAIL_BYTES);
    }

    #[test]
    fn find_line_after_needs_a_complete_line() {
        let mut b = OutputBuffer::default();
        b.push(b"INFO: Uvicorn running on http://127.0.0.1:4321 (Press");
        assert_eq!(b.find_line_after("127.0.0.1:"), None);
        b.push(b" CTRL+C to quit)\n");
        assert_eq!(
            b.find_line_after("127.0.0.1:").as_deref(),
            Some("4321 (Press CTRL+C to quit)")
        );
    }

    #[tokio::test]
    async fn drop_kills_the_whole_group_including_grandchildren() {
        let mut cmd = Command::new("sh");
        // The grandchild ignores SIGTERM; only the group SIGKILL ends it.
        cmd.args([
            "-c",
            "sh -c 'trap \"\" TERM; echo grandchild $$; sleep 30' & wait",
        ]);
        let mut guard = ChildGuard::spawn("group-test", cmd)
            .expect("sh exists")
            .with_grace(Duration::from_millis(200));
        let line = guard
            .wait_for_output("grandchild ", Duration::from_secs(5))
            .await
            .expect("grandchild starts");
        let grandchild: i32 = line.parse().expect("a pid");
        drop(guard);
        // Orphans are reaped by whatever init the machine has, maybe late: a zombie counts as gone.
        let gone = || {
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            matches!(state, None | Some('Z' | 'X'))
        };
        crate::assert_eventually!(
            blocking gone(),
            patience = Duration::from_secs(5),
            "grandchild {grandchild} survived the guard"
        );
    }

    /// A loopback port that refuses connections for as long as the socket lives: bound, never listening.
    ///
    /// Regression (a port race under parallel tests): with a port from `free_port()` another test could bind it
    /// during the wait, and "nothing listens" failed.
    fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
        let held = tokio::net::TcpSocket::new_v4().expect("socket");
        held.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = held.local_addr().expect("bound address");
        (held, addr)
    }

    #[tokio::test]
    async fn wait_for_port_reports_an_early_exit_with_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let mut guard = ChildGuard::spawn("early-exit", cmd).expect("sh exists");
        let (_held, addr) = refusing_port();
        let err = wait_for_port(&mut guard, addr, Duration::from_secs(5))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.reason(), "exited");
        let msg = err.to_string();
        assert!(msg.contains("early-exit") && msg.contains("boom"), "{msg}");
    }

    #[tokio::test]
    async fn wait_for_port_times_out_naming_the_process() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut guard = ChildGuard::spawn("sleeper", cmd)
            .expect("sleep exists")
            .with_grace(Duration::from_millis(200));
        let (_held, addr) = refusing_port();
        let err = wait_for_port(&mut guard, addr, Duration::from_millis(150))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.reason(), "timeout");
        assert!(err.to_string().contains("sleeper"));
    }
}
