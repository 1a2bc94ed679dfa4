//! Constructors for unit tests: probe reports and records without a probe.

use lifeline_mcp::probe::{Failure, Phase, Timings};
use lifeline_mcp::{ProbeReport, Reason, Verdict};
use url::Url;

use crate::record::ScanRecord;

/// A report with `verdict` and `reason` and nothing else of note (100 ms total).
pub(crate) fn report_with(verdict: Verdict, reason: Option<Reason>) -> ProbeReport {
    let mut timings = Timings::default();
    timings.add(Phase::Total, 100.0);
    ProbeReport {
        url: String::new(),
        verdict,
        reason,
        failure: reason.map(|r| Failure::new(r, format!("{r} happened"))),
        era: None,
        transport: None,
        protocol_version: None,
        server_info: None,
        capabilities: None,
        tools_count: None,
        schema_hash: None,
        timings_ms: timings,
        tls: None,
        auth: None,
        tool_call: None,
        credentials: Vec::new(),
        warnings: Vec::new(),
        started_at: "2026-11-01T00:00:00Z".into(),
        transactions: Vec::new(),
        tools: Vec::new(),
    }
}

/// A probed record for `url`.
pub(crate) fn record(url: &str, verdict: Verdict, reason: Option<Reason>) -> ScanRecord {
    let mut report = report_with(verdict, reason);
    let url = Url::parse(url).expect("test URLs are valid");
    report.url = url.to_string();
    ScanRecord::probed(url, None, 1, report)
}
