//! Child processes: the one home for how Lifeline starts, reads and stops a program it runs (the prober's and the
//! gateway's stdio MCP servers, the testkit's peers).
//!
//! - [`spawn`]: stdin, stdout and stderr piped, its own process group (so signals reach what it starts, e.g.
//!   `npx` → `node`), killed if dropped, and an explicit environment unless told to inherit.
//! - [`read_line`]: one newline-delimited message from stdout, bounded (2025-11-25 `basic/transports` §stdio:
//!   messages are delimited by newlines and MUST NOT contain embedded newlines), so a child that never ends its
//!   line cannot make the reader buffer without bound.
//! - [`stop`] / [`stop_blocking`]: the staged close of 2025-11-25 `basic/lifecycle` §Shutdown (stdio): close the
//!   child's stdin, wait; SIGTERM, wait; SIGKILL. Signals go to the whole process group, and the group is
//!   SIGKILLed at the end in every case, so grandchildren never outlive the child.
//!
//! Must not: spawn tasks (callers read stdout and stderr in tasks of their own), read the environment beyond the
//! `PATH` and `HOME` it passes through.

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// The variables a child with an explicit environment still gets from ours: where to find programs and its home.
const PASSED_THROUGH: [&str; 2] = ["PATH", "HOME"];
/// Longest pause between two polls in [`stop_blocking`].
const MAX_POLL: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// The program, looked up on `PATH` when it has no slash.
    pub program: &'a str,
    /// Its arguments.
    pub args: &'a [String],
    /// Variables set for it (after the inherited or passed-through ones).
    pub env: &'a [(String, String)],
    /// Inherit this process's whole environment; when false only `PATH` and `HOME` pass through.
    pub inherit_env: bool,
    /// Working directory; `None` is ours.
    pub cwd: Option<&'a Path>,
}

/// A started child with its pipes.
#[derive(Debug)]
pub struct Spawned {
    /// The process (killed when dropped).
    pub process: Child,
    /// Its pid, which is also its process group's id.
    pub group: ProcessGroup,
    /// Its stdin.
    pub stdin: ChildStdin,
    /// Its stdout.
    pub stdout: ChildStdout,
    /// Its stderr.
    pub stderr: ChildStderr,
}

/// A child's process group (its pid: [`spawn`] makes every child a group leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup(pub u32);

/// How a bounded [`read_line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A line of this many bytes (its newline included, when there was one) is in the buffer.
    Line(usize),
    /// The stream ended (the child closed its stdout).
    Eof,
    /// The line is longer than the bound; the buffer holds its first `max + 1` bytes and the rest is unread.
    TooLong,
}

/// Starts `spec` with piped stdio in a new process group (see the module docs).
///
/// Errors: the OS error of the spawn (program missing, not executable, …), or [`io::ErrorKind::Other`] when the
/// pipes or the pid are missing after a successful spawn (not seen on Linux).
pub fn spawn(spec: &Spec<'_>) -> io::Result<Spawned> {
    let mut command = Command::new(spec.program);
    command
        .args(spec.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if !spec.inherit_env {
        command.env_clear();
        for key in PASSED_THROUGH {
            if let Some(v) = std::env::var_os(key) {
                command.env(key, v);
            }
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = spec.cwd {
        command.current_dir(dir);
    }
    let mut process = command.spawn()?;
    match (
        process.id(),
        process.stdin.take(),
        process.stdout.take(),
        process.stderr.take(),
    ) {
        (Some(pid), Some(stdin), Some(stdout), Some(stderr)) => Ok(Spawned {
            process,
            group: ProcessGroup(pid),
            stdin,
            stdout,
            stderr,
        }),
        _ => Err(io::Error::other("the child's pipes could not be opened")),
    }
}

impl ProcessGroup {
    /// Sends `signal` to every process in the group. A group that is already gone is not an error; any other
    /// failure is logged (there is nothing better to do with it).
    pub fn signal(self, signal: Signal) {
        match killpg(Pid::from_raw(self.0 as i32), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = self.0, %signal, error = %e, "Could not signal a process group.")
            }
        }
    }
}

/// Reads one line into `buf` (cleared first), at most `max` bytes before its newline would be reached.
///
/// Errors: the reader's I/O error.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let n = reader.take(max as u64 + 1).read_until(b'\n', buf).await?;
    Ok(if n == 0 {
        LineRead::Eof
    } else if buf.len() > max {
        LineRead::TooLong
    } else {
        LineRead::Line(n)
    })
}

/// Stops `process` in stages, each bounded by `step`: (its stdin must be closed already: drop the
/// [`ChildStdin`]) wait; SIGTERM the group, wait; SIGKILL the group, wait; then SIGKILL the group once more for
/// grandchildren that outlived the child. Returns the exit status, `None` if it did not exit even after SIGKILL
/// (takes at most three `step`s).
pub async fn stop(process: &mut Child, group: ProcessGroup, step: Duration) -> Option<ExitStatus> {
    let mut status = tokio::time::timeout(step, process.wait()).await;
    if status.is_err() {
        group.signal(Signal::SIGTERM);
        status = tokio::time::timeout(step, process.wait()).await;
    }
    if status.is_err() {
        group.signal(Signal::SIGKILL);
        let _ = process.start_kill();
        status = tokio::time::timeout(step, process.wait()).await;
    }
    group.signal(Signal::SIGKILL);
    status.ok().and_then(Result::ok)
}

/// The blocking form of [`stop`] for synchronous callers (drop handlers): SIGTERM the group, poll for the exit up
/// to `grace`, SIGKILL the group (always, for grandchildren), reap the child. Idempotent.
pub fn stop_blocking(process: &mut std::process::Child, group: ProcessGroup, grace: Duration) {
    if process.try_wait().ok().flatten().is_none() {
        group.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        let mut delay = Duration::from_millis(5);
        while Instant::now() < deadline {
            if process.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(delay.min(deadline.saturating_duration_since(Instant::now())));
            delay = (delay * 2).min(MAX_POLL);
        }
    }
    group.signal(Signal::SIGKILL);
    let _ = process.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, BufReader};

    fn sh(script: &str) -> Spawned {
        let args = ["-c".to_owned(), script.to_owned()];
        spawn(&Spec {
            program: "sh",
            args: &args,
            env: &[("LIFELINE_CHILD_TEST".to_owned(), "yes".to_owned())],
            inherit_env: false,
            cwd: None,
        })
        .expect("sh starts")
    }

    #[tokio::test]
    async fn lines_are_bounded_and_the_environment_is_explicit() {
        let mut child = sh("printf 'short\\n'; printf '%s\\n' \"$LIFELINE_CHILD_TEST\" \"${CARGO:-none}\"; printf 'xxxxxxxxxxxxxxxxxxxx\\n'");
        let mut out = BufReader::new(child.stdout);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut out, &mut buf, 8).await.unwrap(),
            LineRead::Line(6)
        );
        assert_eq!(buf, b"short\n");
        read_line(&mut out, &mut buf, 8).await.unwrap();
        assert_eq!(buf, b"yes\n", "the variable given is set");
        read_line(&mut out, &mut buf, 8).await.unwrap();
        assert_eq!(buf, b"none\n", "nothing else is inherited");
        assert_eq!(
            read_line(&mut out, &mut buf, 8).await.unwrap(),
            LineRead::TooLong
        );
        assert_eq!(buf.len(), 9);
        let mut rest = Vec::new();
        assert_eq!(
            read_line(&mut out, &mut rest, 64).await.unwrap(),
            LineRead::Line(12)
        );
        assert_eq!(
            read_line(&mut out, &mut rest, 64).await.unwrap(),
            LineRead::Eof
        );
        let status = stop(&mut child.process, child.group, Duration::from_secs(2)).await;
        assert!(status.is_some_and(|s| s.success()));
    }

    #[tokio::test]
    async fn closing_stdin_is_enough_for_a_child_that_reads_it() {
        let mut child = sh("cat >/dev/null");
        child.stdin.write_all(b"bye\n").await.unwrap();
        drop(child.stdin);
        let start = Instant::now();
        let status = stop(&mut child.process, child.group, Duration::from_secs(5)).await;
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no signal was needed"
        );
    }

    #[tokio::test]
    async fn a_child_that_ignores_stdin_and_sigterm_is_killed() {
        // The shell ignores SIGTERM and starts a grandchild in the same group.
        let mut child = sh("trap '' TERM; sleep 300 & wait");
        drop(child.stdin);
        let status = stop(&mut child.process, child.group, Duration::from_millis(200)).await;
        let status = status.expect("SIGKILL ends it");
        assert!(!status.success());
    }
}
