//! The probe sequence: era detection, handshake, `tools/list`, `ping`, the opt-in tool call and cleanup, with a
//! timing per phase and one verdict at the end.

pub mod config;
pub mod report;

pub use config::{ProbeOptions, Secret, StdioCommand, Target, Timeouts, ToolCall};
pub use report::{AuthInfo, Failure, Phase, ProbeReport, ServerInfo, Timings, TlsInfo, ToolCallOutcome};

/// Probes `target` once and reports what a client would see.
///
/// Never fails: every failure becomes a report with a verdict other than `healthy` and one [`crate::Reason`].
/// Takes at most `opts.timeouts.total` (plus the bounded stdio shutdown). Never leaves a legacy session open on
/// the server when the server allows ending it, and never opens a standalone GET stream on Streamable HTTP.
pub async fn probe(target: &Target, opts: &ProbeOptions) -> ProbeReport {
    let _ = (target, opts);
    unimplemented_report(target)
}

fn unimplemented_report(target: &Target) -> ProbeReport {
    ProbeReport {
        url: target.label(),
        verdict: crate::Verdict::Unhealthy,
        reason: Some(crate::Reason::ProtocolError),
        failure: Some(Failure::new(crate::Reason::ProtocolError, "not implemented yet")),
        era: None,
        transport: None,
        protocol_version: None,
        server_info: None,
        capabilities: None,
        tools_count: None,
        schema_hash: None,
        timings_ms: Timings::default(),
        tls: None,
        auth: None,
        tool_call: None,
        warnings: Vec::new(),
        started_at: String::new(),
        tools: Vec::new(),
    }
}
