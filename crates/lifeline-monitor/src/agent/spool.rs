//! The agent's disk spool (issue 14, "Regions"): results the central side has not acknowledged yet, kept in a
//! JSON-lines file (one [`AgentResult`] a line) so a partition or an agent restart loses nothing recent. It
//! is bounded: beyond `max` results the **oldest** are dropped and counted ([`Spool::dropped`]); never an
//! unbounded buffer. Results keep their probe time, so late ones land in the round they were probed in.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::result::AgentResult;

/// Default most results spooled: 100,000 (about 28 h of 1 target at 1 s, or 70 days of 1 target at 60 s).
pub const DEFAULT_SPOOL_MAX: usize = 100_000;

/// The spool: in memory, mirrored to its file after every change.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    max: usize,
    items: VecDeque<AgentResult>,
    dropped: u64,
}

impl Spool {
    /// Opens the spool at `path`, loading what a previous run left (its newest `max` results; a line that is
    /// not a result is skipped and logged). A missing file is an empty spool.
    ///
    /// Errors: the file exists but cannot be read.
    pub fn open(path: &Path, max: usize) -> std::io::Result<Spool> {
        let max = max.max(1);
        let mut spool = Spool {
            path: path.to_owned(),
            max,
            items: VecDeque::new(),
            dropped: 0,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(spool),
            Err(e) => return Err(e),
        };
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<AgentResult>(line) {
                Ok(r) => spool.items.push_back(r),
                Err(e) => {
                    tracing::warn!(file = %path.display(), line = n + 1, error = %e, "Skipping a spool line that is not a result.");
                }
            }
        }
        spool.trim();
        Ok(spool)
    }

    fn trim(&mut self) {
        while self.items.len() > self.max {
            self.items.pop_front();
            self.dropped += 1;
        }
    }

    /// Appends results (dropping the oldest beyond the bound) and writes them: appended to the file, or the
    /// whole file rewritten when old results were dropped.
    ///
    /// Errors: the file cannot be written (the results stay in memory).
    pub fn push(&mut self, results: impl IntoIterator<Item = AgentResult>) -> std::io::Result<()> {
        let before = self.dropped;
        let start = self.items.len();
        self.items.extend(results);
        self.trim();
        if self.dropped != before {
            return self.persist();
        }
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        for r in self.items.range(start..) {
            serde_json::to_writer(&mut f, r)?;
            f.write_all(b"\n")?;
        }
        f.flush()
    }

    /// The oldest `n` results, to send.
    pub fn peek(&self, n: usize) -> Vec<AgentResult> {
        self.items.iter().take(n).cloned().collect()
    }

    /// Removes the oldest `n` results (the central side acknowledged them) and writes the file.
    ///
    /// Errors: the file cannot be written.
    pub fn ack(&mut self, n: usize) -> std::io::Result<()> {
        let n = n.min(self.items.len());
        self.items.drain(..n);
        self.persist()
    }

    /// Results waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Results dropped (oldest first) because the spool was full, since it was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes the whole spool to a temporary file and renames it over the spool file (atomic on POSIX).
    fn persist(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for r in &self.items {
                serde_json::to_writer(&mut f, r)?;
                f.write_all(b"\n")?;
            }
            f.flush()?;
        }
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: i64) -> AgentResult {
        AgentResult {
            target: "t".into(),
            probed_at_ms: i,
            attempt: 0,
            up: true,
            latency_ms: 1,
            error: None,
            reason: None,
            schema_hash: None,
        }
    }

    #[test]
    fn bounded_oldest_dropped_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let mut s = Spool::open(&path, 3).unwrap();
        s.push((0..5).map(r)).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.peek(1)[0].probed_at_ms, 2);
        s.ack(1).unwrap();
        let mut s = Spool::open(&path, 3).unwrap();
        assert_eq!(
            s.peek(10)
                .iter()
                .map(|r| r.probed_at_ms)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        // Appended without a drop, then read back after a "restart".
        s.push([r(5)]).unwrap();
        let s = Spool::open(&path, 3).unwrap();
        assert_eq!(s.dropped(), 0);
        assert_eq!(
            s.peek(10)
                .iter()
                .map(|r| r.probed_at_ms)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }
}
