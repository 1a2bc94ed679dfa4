//! Process facts from `/proc` for the stdio bench, included with `#[path]`: a process's parent, CPU time and start
//! time, and the descendants of a process (the stdio servers a proxy started).

use std::collections::HashMap;

/// The fields of `/proc/PID/stat` the bench needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    /// utime + stime, clock ticks.
    pub(crate) ticks: u64,
    /// Start time since boot, clock ticks (tells a PID apart from a later reuse).
    pub(crate) start: u64,
}

pub(crate) fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        pid,
        ppid: u32::try_from(num(1)?).ok()?,
        ticks: num(11)? + num(12)?,
        start: num(19)?,
    })
}

/// Every process below `root` (children, grandchildren, ...), from one pass over `/proc`.
pub(crate) fn descendants(root: u32) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<Proc> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    // Bounded: every process is visited at most once (a PID has one parent).
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(*p);
        }
        if found.len() > all.len() {
            break;
        }
    }
    found
}

pub(crate) fn ticks_by_pid(procs: &[Proc]) -> HashMap<u32, u64> {
    procs.iter().map(|p| (p.pid, p.ticks)).collect()
}
