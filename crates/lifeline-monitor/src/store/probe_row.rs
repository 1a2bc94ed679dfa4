//! The one shape of a stored probe result: [`ProbeRow`] is built from a [`ProbeReport`] in
//! [`ProbeRow::from_report`], written with the binds of [`ProbeRow::push_binds`] under the column list
//! [`ProbeRow::COLUMNS`], and read back by name (`sqlx::FromRow`) from the same list. A new stored field is a
//! field here, its column in the list and its bind beside it, plus one migration per dialect.

use lifeline_mcp::probe::{Phase, ProbeReport};
use lifeline_mcp::{Era, Reason, Verdict};
use serde::Serialize;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Type};
use time::format_description::well_known::Rfc3339;

use super::label::{Flag, Label};

/// One raw probe result (a row of `results`, without its id and target).
///
/// The target's carried state ([`super::TargetState`]) is a different thing: it keeps the last *seen* era,
/// versions and hash across failed probes, where a result row records only what this probe saw.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ProbeRow {
    /// Probe start, Unix ms.
    pub ts_ms: i64,
    /// The verdict.
    pub verdict: Label<Verdict>,
    /// Counted as up (healthy or degraded, or `auth_required` where accepted). Stored as 0/1.
    #[sqlx(try_from = "Flag")]
    pub up: bool,
    /// Inside a maintenance window. Stored as 0/1.
    #[sqlx(try_from = "Flag")]
    pub maintenance: bool,
    /// Why it was not healthy.
    pub reason: Option<Label<Reason>>,
    /// The failure message.
    pub message: Option<String>,
    /// The era this probe spoke.
    pub era: Option<Label<Era>>,
    /// The negotiated protocol version.
    pub protocol_version: Option<String>,
    /// `serverInfo.version`.
    pub server_version: Option<String>,
    /// Tools listed.
    pub tools_count: Option<i64>,
    /// Tool-schema hash.
    pub schema_hash: Option<String>,
    /// Total time, ms.
    pub latency_ms: Option<f64>,
    /// Phase timings: the JSON object of the report's `timings_ms`, `None` when it has none.
    pub timings: Option<String>,
    /// Days left on the certificate.
    pub tls_days_left: Option<i64>,
    /// The certificate's `notAfter`, Unix ms.
    pub tls_not_after_ms: Option<i64>,
    /// A transaction target's steps: the JSON array of `lifeline_mcp::transaction::StepReport` (kind, target,
    /// outcome, reason, message, latency_ms, …) of its transaction; `None` for other targets.
    pub steps: Option<String>,
}

/// The name the status page reads results by (the same row: reads and writes do not differ).
pub type ResultRow = ProbeRow;

impl ProbeRow {
    /// The stored columns, in the order of [`ProbeRow::push_binds`] (after `target_id`).
    pub const COLUMNS: [&'static str; 16] = [
        "ts_ms",
        "verdict",
        "up",
        "maintenance",
        "reason",
        "message",
        "era",
        "protocol_version",
        "server_version",
        "tools_count",
        "schema_hash",
        "latency_ms",
        "timings",
        "tls_days_left",
        "tls_not_after_ms",
        "steps",
    ];

    /// The result row of `report`, a probe started at `ts_ms` (Unix ms). `up` and `maintenance` are the
    /// evaluator's judgement (they depend on the target's settings and windows, not on the report alone).
    pub fn from_report(report: &ProbeReport, ts_ms: i64, up: bool, maintenance: bool) -> ProbeRow {
        ProbeRow {
            ts_ms,
            verdict: report.verdict.into(),
            up,
            maintenance,
            reason: report.reason.map(Label),
            message: report.failure.as_ref().map(|f| f.message.clone()),
            era: report.era.map(Label),
            protocol_version: report.protocol_version.clone(),
            server_version: report.server_info.as_ref().and_then(|i| i.version.clone()),
            tools_count: report
                .tools_count
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            schema_hash: report.schema_hash.clone(),
            latency_ms: report.timings_ms.get(Phase::Total),
            timings: (!report.timings_ms.0.is_empty())
                .then(|| serde_json::to_string(&report.timings_ms).unwrap_or_default()),
            tls_days_left: report.tls.as_ref().and_then(|t| t.days_left),
            tls_not_after_ms: report
                .tls
                .as_ref()
                .and_then(|t| t.not_after.as_deref())
                .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
                .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)),
            steps: report
                .transactions
                .first()
                .and_then(|t| serde_json::to_string(&t.steps).ok()),
        }
    }

    /// A row with only a time and a verdict (everything else empty, not up, no maintenance): a base for
    /// hand-made rows (`..ProbeRow::new(ts_ms, verdict)`).
    pub fn new(ts_ms: i64, verdict: Verdict) -> ProbeRow {
        ProbeRow {
            ts_ms,
            verdict: verdict.into(),
            up: false,
            maintenance: false,
            reason: None,
            message: None,
            era: None,
            protocol_version: None,
            server_version: None,
            tools_count: None,
            schema_hash: None,
            latency_ms: None,
            timings: None,
            tls_days_left: None,
            tls_not_after_ms: None,
            steps: None,
        }
    }

    /// Pushes this row's values, in [`ProbeRow::COLUMNS`] order, onto one `VALUES` tuple.
    pub fn push_binds<DB>(&self, b: &mut Separated<'_, DB, &'static str>)
    where
        DB: Database,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
        for<'q> Option<i64>: Encode<'q, DB>,
        for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
        for<'q> Label<Verdict>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<Label<Reason>>: Encode<'q, DB> + Type<DB>,
        for<'q> Option<Label<Era>>: Encode<'q, DB> + Type<DB>,
    {
        b.push_bind(self.ts_ms)
            .push_bind(self.verdict)
            .push_bind(i64::from(self.up))
            .push_bind(i64::from(self.maintenance))
            .push_bind(self.reason)
            .push_bind(self.message.clone())
            .push_bind(self.era)
            .push_bind(self.protocol_version.clone())
            .push_bind(self.server_version.clone())
            .push_bind(self.tools_count)
            .push_bind(self.schema_hash.clone())
            .push_bind(self.latency_ms)
            .push_bind(self.timings.clone())
            .push_bind(self.tls_days_left)
            .push_bind(self.tls_not_after_ms)
            .push_bind(self.steps.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bind_per_column() {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO results (");
        q.push(ProbeRow::COLUMNS.join(", ")).push(") ");
        q.push_values([ProbeRow::new(1, Verdict::Healthy)], |mut b, r| {
            r.push_binds(&mut b)
        });
        let sql = q.into_string();
        assert_eq!(sql.matches('$').count(), ProbeRow::COLUMNS.len(), "{sql}");
    }
}
