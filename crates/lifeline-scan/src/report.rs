//! Every output of a census, fed one record at a time: the summary, `scan.jsonl`, `scan.csv`, `report.html`,
//! the baseline diff (`diff.jsonl`) and the monitor config. [`Reports`] is the [`RecordSink`] the binary hands
//! to the scheduler; [`Reports::finish`] writes what can only be written at the end.
//!
//! Files in the output directory: `scan.jsonl` (one JSON object per endpoint, written and flushed line by line,
//! so an interrupted or killed scan leaves every finished result on disk), `scan.csv`, `report.html`,
//! `summary.json`, and `diff.jsonl` with `--baseline`.

use std::fs::{self, File};
use std::io::{self, BufWriter, LineWriter, Write};
use std::path::{Path, PathBuf};

use crate::baseline::{BaselineError, Diff};
use crate::engine::RecordSink;
use crate::input::Skipped;
use crate::record::ScanRecord;
use crate::summary::{RunFacts, Summary, SummaryReport};

mod chart;
mod csv;
mod html;
mod monitor;

pub use self::csv::COLUMNS as CSV_COLUMNS;

/// File name of the JSON Lines results.
pub const JSONL_FILE: &str = "scan.jsonl";
/// File name of the CSV results.
pub const CSV_FILE: &str = "scan.csv";
/// File name of the HTML report.
pub const HTML_FILE: &str = "report.html";
/// File name of the summary as JSON.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of the baseline changes.
pub const DIFF_FILE: &str = "diff.jsonl";

/// Which files to write into the output directory (`--format json,csv,html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// `scan.jsonl` and `summary.json`.
    pub json: bool,
    /// `scan.csv`.
    pub csv: bool,
    /// `report.html`.
    pub html: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            json: true,
            csv: true,
            html: true,
        }
    }
}

impl Formats {
    /// Parses a comma-separated list of `json`, `jsonl`, `csv`, `html`. Errors name the unknown entry.
    pub fn parse(list: &str) -> Result<Formats, String> {
        let mut f = Formats {
            json: false,
            csv: false,
            html: false,
        };
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "json" | "jsonl" => f.json = true,
                "csv" => f.csv = true,
                "html" => f.html = true,
                other => {
                    return Err(format!(
                        "unknown format `{other}` (expected json, csv, html)"
                    ))
                }
            }
        }
        if f == (Formats {
            json: false,
            csv: false,
            html: false,
        }) {
            return Err("no format given (expected json, csv, html)".to_owned());
        }
        Ok(f)
    }
}

/// Where and what to write.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The output directory (created if missing); `None` writes no file but the monitor config.
    pub out_dir: Option<PathBuf>,
    /// Which files.
    pub formats: Formats,
    /// An earlier `scan.jsonl` to compare with.
    pub baseline: Option<PathBuf>,
    /// Where to write the usable endpoints as a `lifeline monitor` config.
    pub monitor_config: Option<PathBuf>,
    /// Certificates expiring within this many days are listed.
    pub cert_window_days: i64,
}

/// Why the reports could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be created or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The baseline could not be used.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
}

/// The files written, for the closing message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written(pub Vec<PathBuf>);

/// The census outputs, as one [`RecordSink`].
pub struct Reports {
    options: ReportOptions,
    summary: Summary,
    jsonl: Option<LineWriter<File>>,
    csv: Option<csv::CsvWriter>,
    html: Option<html::HtmlWriter>,
    diff: Option<Diff>,
    monitor: Option<monitor::MonitorConfig>,
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ReportError + 'p {
    move |source| ReportError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

impl Reports {
    /// Creates the output directory and opens every file, and loads the baseline, before any probe runs, so a
    /// bad path fails fast.
    pub fn create(options: ReportOptions) -> Result<Reports, ReportError> {
        let mut diff = match &options.baseline {
            Some(path) => Some(Diff::load(path)?),
            None => None,
        };
        let (mut jsonl, mut csv_w, mut html_w) = (None, None, None);
        if let Some(dir) = &options.out_dir {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
            if options.formats.json {
                let path = dir.join(JSONL_FILE);
                jsonl = Some(LineWriter::new(
                    File::create(&path).map_err(io_err("creating", &path))?,
                ));
            }
            if options.formats.csv {
                let path = dir.join(CSV_FILE);
                let file = File::create(&path).map_err(io_err("creating", &path))?;
                csv_w = Some(csv::CsvWriter::create(file).map_err(io_err("writing", &path))?);
            }
            if options.formats.html {
                let path = dir.join(HTML_FILE);
                html_w = Some(html::HtmlWriter::create(&path).map_err(io_err("creating", &path))?);
            }
            if let Some(diff) = diff.as_mut() {
                let path = dir.join(DIFF_FILE);
                let file = File::create(&path).map_err(io_err("creating", &path))?;
                diff.write_changes_to(Box::new(BufWriter::new(file)));
            }
        }
        if let Some(path) = &options.monitor_config {
            // Fail now, not after an hour of probing, when the file cannot be written.
            File::create(path).map_err(io_err("creating", path))?;
        }
        Ok(Reports {
            summary: Summary::new(options.cert_window_days),
            monitor: options
                .monitor_config
                .as_ref()
                .map(|_| monitor::MonitorConfig::default()),
            options,
            jsonl,
            csv: csv_w,
            html: html_w,
            diff,
        })
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Finishes every output and returns the summary and the files written.
    pub fn finish(mut self, run: RunFacts) -> Result<(SummaryReport, Written), ReportError> {
        let mut written = Vec::new();
        let diff = match self.diff.take() {
            Some(d) => Some(d.finish(run.partial).map_err(|source| ReportError::Io {
                what: "writing",
                path: DIFF_FILE.to_owned(),
                source,
            })?),
            None => None,
        };
        let report = self.summary.finish(run, diff);
        let dir = self.options.out_dir.clone().unwrap_or_default();
        if let Some(mut w) = self.jsonl.take() {
            let path = dir.join(JSONL_FILE);
            w.flush().map_err(io_err("writing", &path))?;
            written.push(path);
            let path = dir.join(SUMMARY_FILE);
            let text = serde_json::to_string_pretty(&report)
                .map_err(io::Error::other)
                .map_err(io_err("writing", &path))?;
            fs::write(&path, text + "\n").map_err(io_err("writing", &path))?;
            written.push(path);
        }
        if let Some(w) = self.csv.take() {
            let path = dir.join(CSV_FILE);
            w.finish().map_err(io_err("writing", &path))?;
            written.push(path);
        }
        if let Some(w) = self.html.take() {
            let path = dir.join(HTML_FILE);
            w.finish(&report).map_err(io_err("writing", &path))?;
            written.push(path);
        }
        if report.diff.is_some() && self.options.out_dir.is_some() {
            written.push(dir.join(DIFF_FILE));
        }
        if let (Some(cfg), Some(path)) = (self.monitor.take(), self.options.monitor_config.clone())
        {
            let file = File::create(&path).map_err(io_err("creating", &path))?;
            let mut out = BufWriter::new(file);
            let note = format!(
                "{} usable of {} endpoints from {}",
                report.categories[0].count + report.categories[1].count,
                report.endpoints,
                report.run.input
            );
            cfg.write(&mut out, &note)
                .and_then(|()| out.flush())
                .map_err(io_err("writing", &path))?;
            written.push(path);
        }
        Ok((report, Written(written)))
    }
}

impl RecordSink for Reports {
    fn record(&mut self, record: &ScanRecord) -> io::Result<()> {
        self.summary.add(record);
        if let Some(w) = self.jsonl.as_mut() {
            let line = record.to_json_line().map_err(io::Error::other)?;
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        if let Some(w) = self.csv.as_mut() {
            w.write(record)?;
        }
        if let Some(w) = self.html.as_mut() {
            w.write(record)?;
        }
        if let Some(d) = self.diff.as_mut() {
            d.observe(record)?;
        }
        if let Some(m) = self.monitor.as_mut() {
            if record.category.is_usable() {
                m.add(&record.url);
            }
        }
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        self.summary.skip(skipped);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::{Reason, Verdict};

    use super::*;
    use crate::testutil::record;

    #[test]
    fn formats_parse() {
        assert_eq!(Formats::parse("json,csv,html").unwrap(), Formats::default());
        assert_eq!(
            Formats::parse("html").unwrap(),
            Formats {
                json: false,
                csv: false,
                html: true
            }
        );
        assert!(Formats::parse("json,pdf").unwrap_err().contains("pdf"));
        assert!(Formats::parse(",").is_err());
    }

    #[test]
    fn writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let monitor = dir.path().join("monitor.yaml");
        let mut reports = Reports::create(ReportOptions {
            out_dir: Some(out.clone()),
            monitor_config: Some(monitor.clone()),
            cert_window_days: 14,
            ..ReportOptions::default()
        })
        .unwrap();
        reports
            .record(&record("https://a.example/mcp", Verdict::Healthy, None))
            .unwrap();
        reports
            .record(&record(
                "https://b.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::Timeout),
            ))
            .unwrap();
        // The JSONL is on disk before the end (line-buffered).
        assert_eq!(
            fs::read_to_string(out.join(JSONL_FILE))
                .unwrap()
                .lines()
                .count(),
            2
        );
        let (summary, written) = reports.finish(RunFacts::default()).unwrap();
        assert_eq!(summary.endpoints, 2);
        assert_eq!(written.0.len(), 5);
        let csv = fs::read_to_string(out.join(CSV_FILE)).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.starts_with("url,name,category,"));
        let summary_json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join(SUMMARY_FILE)).unwrap()).unwrap();
        assert_eq!(summary_json["categories"][0]["count"], 1);
        assert!(fs::read_to_string(out.join(HTML_FILE))
            .unwrap()
            .contains("https://b.example/mcp"));
        assert!(fs::read_to_string(&monitor)
            .unwrap()
            .contains("url: \"https://a.example/mcp\""));
    }
}
