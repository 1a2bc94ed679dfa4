//! `--snapshot FILE` (compare the tools with a recorded snapshot) and `--update-snapshot FILE` (record them,
//! atomically). The file format and the drift rules live in `lifeline_mcp::schema`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lifeline_mcp::schema::{self, Drift, Snapshot};
use lifeline_mcp::{ProbeReport, Warning};

/// The result of comparing a target's tools with `--snapshot`.
#[derive(Debug, Clone)]
pub(crate) struct DriftOutcome {
    /// The snapshot file, as given.
    pub(crate) path: PathBuf,
    /// The snapshot's schema hash.
    pub(crate) snapshot_hash: String,
    /// The live tools' schema hash; `None` when the probe listed no tools.
    pub(crate) schema_hash: Option<String>,
    /// The changes; empty when not compared.
    pub(crate) drift: Drift,
    /// Why there was no comparison, or a caveat about it.
    pub(crate) note: Option<String>,
}

impl DriftOutcome {
    /// True when the comparison ran.
    pub(crate) fn compared(&self) -> bool {
        self.schema_hash.is_some()
    }

    /// True when a change is breaking (this fails the check).
    pub(crate) fn is_breaking(&self) -> bool {
        self.drift.is_breaking()
    }
}

/// What `--update-snapshot` did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UpdateOutcome {
    /// The file was written.
    Written {
        /// The file.
        path: PathBuf,
        /// How many tools it holds.
        tools: usize,
        /// Their schema hash.
        schema_hash: String,
    },
    /// Not written because the probe did not list the tools (the check fails on the verdict anyway).
    Skipped {
        /// The file, left untouched.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Writing failed, or writing would record an incomplete list: an operational error (exit 2).
    Failed(String),
}

/// Reads and parses a snapshot file. Errors (missing, unreadable, not a snapshot) are operational.
pub(crate) fn load(path: &Path) -> anyhow::Result<Snapshot> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the snapshot {} (create it with --update-snapshot {})",
            path.display(),
            path.display()
        )
    })?;
    Snapshot::parse(&text).with_context(|| format!("cannot use the snapshot {}", path.display()))
}

/// Compares `report`'s tools with `snapshot`.
pub(crate) fn compare(path: &Path, snapshot: &Snapshot, report: &ProbeReport) -> DriftOutcome {
    let mut out = DriftOutcome {
        path: path.to_owned(),
        snapshot_hash: snapshot.schema_hash.clone(),
        schema_hash: None,
        drift: Drift::default(),
        note: None,
    };
    if report.tools_count.is_none() {
        out.note = Some(format!(
            "not compared: the probe did not list the tools (verdict {})",
            report.verdict
        ));
        return out;
    }
    out.schema_hash = Some(schema::schema_hash(&report.tools));
    out.drift = schema::diff(&snapshot.tools, &report.tools);
    if report.warnings.contains(&Warning::ToolListTruncated) {
        out.note = Some(
            "the tool list was cut at --max-tool-pages, so tools past it count as removed; raise the bound"
                .to_owned(),
        );
    }
    out
}

/// Writes `report`'s tools to `path` as a snapshot, atomically (a temporary file in the same directory, synced,
/// then renamed over `path`).
pub(crate) fn update(path: &Path, report: &ProbeReport) -> UpdateOutcome {
    if report.tools_count.is_none() || !report.is_usable() {
        return UpdateOutcome::Skipped {
            path: path.to_owned(),
            why: format!(
                "the probe did not list the tools (verdict {})",
                report.verdict
            ),
        };
    }
    if report.warnings.contains(&Warning::ToolListTruncated) {
        return UpdateOutcome::Failed(format!(
            "not writing the snapshot {}: the tool list was cut at --max-tool-pages; raise the bound",
            path.display()
        ));
    }
    let snapshot = Snapshot::from_tools(&report.tools);
    match write_atomically(path, snapshot.to_json().as_bytes()) {
        Ok(()) => UpdateOutcome::Written {
            path: path.to_owned(),
            tools: snapshot.tools.len(),
            schema_hash: snapshot.schema_hash,
        },
        Err(err) => UpdateOutcome::Failed(format!("{err:#}")),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("the snapshot path {} names no file", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write the snapshot {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_mcp::Verdict;
    use serde_json::json;

    #[test]
    fn update_then_compare_round_trips_and_detects_breaking_drift() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tools.snapshot.json");
        let report = crate::check::sample_report();
        let written = update(&path, &report);
        assert!(
            matches!(written, UpdateOutcome::Written { tools: 1, .. }),
            "{written:?}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");

        let snap = load(&path).unwrap();
        let same = compare(&path, &snap, &report);
        assert!(same.compared() && same.drift.changes.is_empty() && !same.is_breaking());
        assert_eq!(same.schema_hash.as_deref(), Some(snap.schema_hash.as_str()));

        let mut changed = report.clone();
        changed.tools = vec![json!({"name": "other"})];
        let drift = compare(&path, &snap, &changed);
        assert!(drift.is_breaking(), "{drift:?}");
    }

    #[test]
    fn an_unhealthy_probe_neither_compares_nor_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut report = crate::check::sample_report();
        report.verdict = Verdict::Unhealthy;
        report.tools_count = None;
        assert!(matches!(
            update(&path, &report),
            UpdateOutcome::Skipped { .. }
        ));
        assert!(!path.exists());
        let snap = Snapshot::from_tools(&[]);
        let out = compare(&path, &snap, &report);
        assert!(!out.compared() && !out.is_breaking() && out.note.is_some());
    }

    #[test]
    fn unreadable_or_foreign_snapshots_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(format!("{:#}", load(&missing).unwrap_err()).contains("--update-snapshot"));
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, "{\"hash\": 1}").unwrap();
        assert!(
            format!("{:#}", load(&garbage).unwrap_err()).contains("not a Lifeline tool snapshot")
        );
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/s.json");
        let out = update(&path, &crate::check::sample_report());
        assert!(
            matches!(&out, UpdateOutcome::Failed(m) if m.contains("cannot write the snapshot")),
            "{out:?}"
        );
    }
}
