//! `--baseline old.jsonl`: what changed since an earlier scan. The baseline is loaded into a compact map (URL →
//! category, reason, schema hash); each new result is compared as it arrives and every change is streamed to
//! `diff.jsonl`; the endpoints left over at the end are the ones that are gone from the list.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use strum::{Display, EnumCount, EnumString, IntoStaticStr, VariantArray};

use crate::category::Category;
use crate::input::normalise;
use crate::record::ScanRecord;

/// Changes quoted per kind in the summary; `diff.jsonl` has them all.
const MAX_SAMPLES: usize = 20;

/// How an endpoint changed. Serialised in `snake_case`. One kind per endpoint, the first that applies in this
/// order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Display,
    EnumString,
    IntoStaticStr,
    EnumCount,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ChangeKind {
    /// Dead now, not dead before.
    NewlyDead,
    /// Usable (healthy or degraded) now, not usable before.
    Recovered,
    /// Usable before and now, but the tool-schema hash differs.
    Drifted,
    /// Any other change of category (e.g. healthy → auth-gated, dead → broken).
    Changed,
    /// Not in the baseline.
    New,
    /// In the baseline, not in this scan (not reported for a partial scan).
    Gone,
}

impl ChangeKind {
    /// Every kind, in report order. Derived from the enum (`strum::VariantArray`), so it cannot miss a variant.
    pub const ALL: [ChangeKind; ChangeKind::COUNT] = match ChangeKind::VARIANTS.first_chunk() {
        Some(all) => *all,
        None => panic!("VARIANTS holds COUNT variants"),
    };

    /// The stable label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One change: a line of `diff.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The kind.
    pub kind: ChangeKind,
    /// The endpoint.
    pub url: String,
    /// Category in the baseline.
    pub before: Option<Category>,
    /// Category now.
    pub after: Option<Category>,
    /// Reason in the baseline.
    pub before_reason: Option<String>,
    /// Reason now.
    pub after_reason: Option<String>,
    /// Schema hash in the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_schema_hash: Option<String>,
    /// Schema hash now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_schema_hash: Option<String>,
}

/// The comparison as it appears in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DiffSummary {
    /// The baseline file.
    pub baseline: String,
    /// Endpoints in the baseline.
    pub baseline_endpoints: u64,
    /// Lines of the baseline that could not be read.
    pub unreadable_lines: u64,
    /// Count per kind (every kind present, zero included).
    pub counts: BTreeMap<String, u64>,
    /// A few changes per kind.
    pub samples: Vec<Change>,
    /// True when `gone` was not computed because this scan is partial.
    pub gone_not_computed: bool,
}

/// Why the baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Reading failed.
    #[error("reading baseline {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Not one line was a scan result.
    #[error("baseline {path} holds no scan results (expected the JSON Lines written by `lifeline scan`)")]
    Empty {
        /// The file.
        path: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    category: Category,
    reason: Option<String>,
    schema_hash: Option<String>,
}

#[derive(Deserialize)]
struct BaselineLine {
    url: String,
    category: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    schema_hash: Option<String>,
}

/// A loaded baseline, consumed as the new scan's results arrive.
pub struct Diff {
    path: String,
    entries: HashMap<String, Entry>,
    baseline_endpoints: u64,
    unreadable_lines: u64,
    counts: BTreeMap<ChangeKind, u64>,
    samples: Vec<Change>,
    out: Option<Box<dyn Write + Send>>,
}

impl Diff {
    /// Loads `path` (the `scan.jsonl` of an earlier scan). Lines that are not scan results are counted, not
    /// fatal; a file with no result at all is an error.
    pub fn load(path: &Path) -> Result<Diff, BaselineError> {
        let name = path.display().to_string();
        let io_err = |source| BaselineError::Io {
            path: name.clone(),
            source,
        };
        let reader = BufReader::new(File::open(path).map_err(io_err)?);
        let mut entries = HashMap::new();
        let mut unreadable = 0u64;
        for line in reader.lines() {
            let line = line.map_err(io_err)?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<BaselineLine>(&line)
                .ok()
                .and_then(|l| {
                    let category = Category::from_label(&l.category)?;
                    let url = normalise(&l.url).ok()?;
                    Some((
                        url.to_string(),
                        Entry {
                            category,
                            reason: l.reason,
                            schema_hash: l.schema_hash,
                        },
                    ))
                });
            match parsed {
                Some((url, entry)) => {
                    entries.insert(url, entry);
                }
                None => unreadable += 1,
            }
        }
        if entries.is_empty() {
            return Err(BaselineError::Empty { path: name });
        }
        Ok(Diff {
            path: name,
            baseline_endpoints: entries.len() as u64,
            entries,
            unreadable_lines: unreadable,
            counts: BTreeMap::new(),
            samples: Vec::new(),
            out: None,
        })
    }

    /// Streams every change to `out` as a JSON line (`diff.jsonl`).
    pub fn write_changes_to(&mut self, out: Box<dyn Write + Send>) {
        self.out = Some(out);
    }

    /// Compares one new result with the baseline.
    pub fn observe(&mut self, record: &ScanRecord) -> io::Result<()> {
        let url = record.url.to_string();
        let report = record.report();
        let after_reason = report.and_then(|r| r.reason).map(|r| r.as_str().to_owned());
        let after_hash = report.and_then(|r| r.schema_hash.clone());
        let before = self.entries.remove(&url);
        let kind = match &before {
            None => Some(ChangeKind::New),
            Some(b) => classify(b, record.category, after_hash.as_deref()),
        };
        let Some(kind) = kind else { return Ok(()) };
        let change = Change {
            kind,
            url,
            before: before.as_ref().map(|b| b.category),
            after: Some(record.category),
            before_reason: before.as_ref().and_then(|b| b.reason.clone()),
            after_reason,
            before_schema_hash: before.and_then(|b| b.schema_hash),
            after_schema_hash: after_hash,
        };
        self.emit(change)
    }

    /// Ends the comparison: the baseline endpoints not seen are `gone` (skipped when `partial`, since an
    /// interrupted scan did not look at them). Flushes `diff.jsonl`.
    pub fn finish(mut self, partial: bool) -> io::Result<DiffSummary> {
        if !partial {
            let mut gone: Vec<(String, Entry)> =
                std::mem::take(&mut self.entries).into_iter().collect();
            gone.sort_by(|a, b| a.0.cmp(&b.0));
            for (url, entry) in gone {
                self.emit(Change {
                    kind: ChangeKind::Gone,
                    url,
                    before: Some(entry.category),
                    after: None,
                    before_reason: entry.reason,
                    after_reason: None,
                    before_schema_hash: entry.schema_hash,
                    after_schema_hash: None,
                })?;
            }
        }
        if let Some(out) = self.out.as_mut() {
            out.flush()?;
        }
        let counts = ChangeKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_owned(),
                    self.counts.get(k).copied().unwrap_or(0),
                )
            })
            .collect();
        Ok(DiffSummary {
            baseline: self.path,
            baseline_endpoints: self.baseline_endpoints,
            unreadable_lines: self.unreadable_lines,
            counts,
            samples: self.samples,
            gone_not_computed: partial,
        })
    }

    fn emit(&mut self, change: Change) -> io::Result<()> {
        let n = self.counts.entry(change.kind).or_default();
        *n += 1;
        if *n as usize <= MAX_SAMPLES {
            self.samples.push(change.clone());
        }
        if let Some(out) = self.out.as_mut() {
            serde_json::to_writer(&mut *out, &change).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn classify(before: &Entry, after: Category, after_hash: Option<&str>) -> Option<ChangeKind> {
    if after == Category::Dead && before.category != Category::Dead {
        return Some(ChangeKind::NewlyDead);
    }
    if after.is_usable() && !before.category.is_usable() {
        return Some(ChangeKind::Recovered);
    }
    if let (Some(b), Some(a)) = (before.schema_hash.as_deref(), after_hash) {
        if before.category.is_usable() && after.is_usable() && a != b {
            return Some(ChangeKind::Drifted);
        }
    }
    (after != before.category).then_some(ChangeKind::Changed)
}

impl DiffSummary {
    /// The terminal section.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "changes since {} ({} endpoints):",
            self.baseline, self.baseline_endpoints
        );
        for kind in ChangeKind::ALL {
            let n = self.counts.get(kind.as_str()).copied().unwrap_or(0);
            if kind == ChangeKind::Gone && self.gone_not_computed {
                let _ = writeln!(out, "  {:<12} not computed (partial scan)", kind.as_str());
                continue;
            }
            let _ = writeln!(out, "  {:<12}{:>6}", kind.as_str(), n);
            for c in self.samples.iter().filter(|c| c.kind == kind) {
                let arrow = format!(
                    "{} → {}",
                    c.before.map_or("-", Category::as_str),
                    c.after.map_or("-", Category::as_str)
                );
                let _ = writeln!(out, "      {}  {arrow}", c.url);
            }
        }
        if self.unreadable_lines > 0 {
            let _ = writeln!(
                out,
                "  ({} baseline lines were not scan results)",
                self.unreadable_lines
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use lifeline_mcp::{Reason, Verdict};

    use super::*;
    use crate::testutil::record;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn with_hash(mut r: ScanRecord, hash: &str) -> ScanRecord {
        if let crate::record::Outcome::Probed(rep) = &mut r.outcome {
            rep.schema_hash = Some(hash.into());
        }
        r
    }

    #[test]
    fn every_kind_of_change() {
        let old = [
            with_hash(
                record("https://a.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
            record(
                "https://b.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::ConnectRefused),
            ),
            with_hash(
                record("https://c.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
            with_hash(
                record("https://d.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
            record(
                "https://e.example/mcp",
                Verdict::AuthRequired,
                Some(Reason::AuthRequired),
            ),
            record("https://gone.example/mcp", Verdict::Healthy, None),
            with_hash(
                record("https://same.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        let mut text: String = old
            .iter()
            .map(|r| r.to_json_line().unwrap() + "\n")
            .collect();
        text.push_str("not json\n{\"url\": \"https://x.example/\", \"category\": \"nonsense\"}\n");
        std::fs::write(&path, text).unwrap();

        let mut diff = Diff::load(&path).unwrap();
        let buf = Arc::new(Mutex::new(Vec::new()));
        diff.write_changes_to(Box::new(Shared(Arc::clone(&buf))));
        let new = [
            record(
                "https://a.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::Timeout),
            ),
            with_hash(
                record("https://b.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
            with_hash(
                record("https://c.example/mcp", Verdict::Healthy, None),
                "h2",
            ),
            record(
                "https://d.example/mcp",
                Verdict::AuthRequired,
                Some(Reason::AuthRequired),
            ),
            record(
                "https://e.example/mcp",
                Verdict::AuthRequired,
                Some(Reason::AuthRequired),
            ),
            record("https://new.example/mcp", Verdict::Healthy, None),
            with_hash(
                record("https://same.example/mcp", Verdict::Healthy, None),
                "h1",
            ),
        ];
        for r in &new {
            diff.observe(r).unwrap();
        }
        let summary = diff.finish(false).unwrap();
        let count = |k: ChangeKind| summary.counts[k.as_str()];
        assert_eq!(count(ChangeKind::NewlyDead), 1);
        assert_eq!(count(ChangeKind::Recovered), 1);
        assert_eq!(count(ChangeKind::Drifted), 1);
        assert_eq!(count(ChangeKind::Changed), 1);
        assert_eq!(count(ChangeKind::New), 1);
        assert_eq!(count(ChangeKind::Gone), 1);
        assert_eq!(summary.unreadable_lines, 2);
        assert_eq!(summary.baseline_endpoints, 7);
        let lines = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(lines.lines().count(), 6);
        assert!(
            lines.contains(r#""kind":"drifted","url":"https://c.example/mcp""#),
            "{lines}"
        );
        let text = summary.render_text();
        assert!(text.contains("newly_dead       1"), "{text}");
        assert!(
            text.contains("https://a.example/mcp  healthy → dead"),
            "{text}"
        );
    }

    #[test]
    fn partial_scan_does_not_report_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        std::fs::write(
            &path,
            record("https://a.example/", Verdict::Healthy, None)
                .to_json_line()
                .unwrap(),
        )
        .unwrap();
        let summary = Diff::load(&path).unwrap().finish(true).unwrap();
        assert_eq!(summary.counts["gone"], 0);
        assert!(summary.gone_not_computed);
    }

    #[test]
    fn empty_baseline_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.jsonl");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            Diff::load(&path),
            Err(BaselineError::Empty { .. })
        ));
    }
}
