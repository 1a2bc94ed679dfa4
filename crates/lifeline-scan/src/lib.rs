//! The census engine behind `lifeline scan`: reading endpoint lists (text, JSON arrays, MCP registry exports),
//! refusing non-public addresses, probing thousands of endpoints under a global and a per-host concurrency cap
//! with bounded memory, sorting each into a census [`Category`], and writing the summary, JSON Lines, CSV and
//! HTML reports, the diff against a baseline and a `lifeline monitor` config.
//!
//! Every endpoint gets the probe of `lifeline check` ([`lifeline_mcp::probe()`]) with its verdicts and reasons;
//! the categories are defined over those and nothing else.
//!
//! This crate never reads the process environment, never installs signal handlers and never exits the process:
//! the binary owns the terminal (progress bar), Ctrl-C (it walks the [`lifeline_core::Shutdown`] given to [`scan`]) and exit codes. The probe
//! tasks it spawns all end before [`scan`] returns.

pub mod baseline;
pub mod category;
pub mod engine;
pub mod input;
pub mod policy;
pub mod record;
pub mod report;
pub mod summary;

#[cfg(test)]
mod testutil;

pub use category::Category;
pub use engine::{
    scan, scan_events, EngineProber, Prober, Progress, ProgressSnapshot, RecordSink, ScanError,
    ScanOptions, ScanRun,
};
pub use input::{Endpoint, InputSource};
pub use record::ScanRecord;
pub use report::{Formats, ReportOptions, Reports};
pub use summary::{RunFacts, Settings, SummaryReport};
