//! Reaping orphans when Lifeline is a container's PID 1. The kernel re-parents every orphaned process to PID 1,
//! and nobody else will `wait` for them: without a reaper their zombies pile up (a stdio MCP server that
//! starts helpers and exits leaves them behind, and `npx` → `node` chains make that common).
//!
//! Only processes that do not lead their own process group are reaped: every child Lifeline spawns itself (stdio
//! servers, probe children) leads its own group and is reaped by the tokio task that owns it, so the reaper
//! never steals an exit status someone is waiting for. An orphan that made itself a group leader (`setsid`) is
//! left alone; run under `tini` when that matters.

use std::future::Future;
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// How often the reaper scans `/proc`.
pub const REAP_EVERY: Duration = Duration::from_secs(1);
/// Bound on the `/proc` entries scanned per pass.
const MAX_SCAN: usize = 65_536;

/// What the reaper reads from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: i32,
    /// State letter (`Z` for a zombie).
    pub state: char,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
}

/// Parses a `/proc/<pid>/stat` line (`pid (comm) state ppid pgrp …`; `comm` may hold spaces and parentheses, so
/// the fields after it are found from the last `)`). `None` for anything else.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line.get(..open)?.trim().parse().ok()?;
    let mut rest = line.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Whether this process is PID 1 (a container's entrypoint, or `unshare --pid`).
pub fn is_init() -> bool {
    std::process::id() == 1
}

/// One pass: reaps the zombies that are this process's children and do not lead their own process group.
/// Returns how many were reaped.
pub fn reap_orphans_once() -> usize {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for entry in dir.flatten().take(MAX_SCAN) {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(stat) = parse_stat(&text) else {
            continue;
        };
        let orphan = stat.state == 'Z' && stat.ppid == me && stat.pgrp != stat.pid;
        if orphan && waitpid(Pid::from_raw(stat.pid), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    reaped
}

/// Reaps orphans every [`REAP_EVERY`] until `stop` resolves. The caller spawns it, only when [`is_init`].
pub async fn reap_orphans(stop: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return,
        }
        let n = tokio::task::spawn_blocking(reap_orphans_once)
            .await
            .unwrap_or(0);
        if n > 0 {
            tracing::debug!(count = n, "Reaped orphaned processes.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        type Fields = (i32, char, i32, i32);
        let cases: &[(&str, Option<Fields>)] = &[
            (
                "1234 (sleep) Z 1 1200 1200 0 -1 4194560",
                Some((1234, 'Z', 1, 1200)),
            ),
            ("77 (my (odd) name) S 5 77 77 0", Some((77, 'S', 5, 77))),
            ("garbage", None),
            ("12 (x) R", None),
        ];
        for (line, want) in cases {
            let got = parse_stat(line).map(|s| (s.pid, s.state, s.ppid, s.pgrp));
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn our_own_stat_parses() {
        let text = std::fs::read_to_string("/proc/self/stat").expect("procfs");
        let stat = parse_stat(&text).expect("parses");
        assert_eq!(stat.pid, std::process::id() as i32);
    }
}
