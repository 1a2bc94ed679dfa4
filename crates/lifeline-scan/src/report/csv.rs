//! `scan.csv`: one row per endpoint, the flat fields of the probe report (RFC 4180, header row first).

use std::fs::File;
use std::io;

use lifeline_mcp::probe::Phase;

use crate::record::{Outcome, ScanRecord};

/// The header row.
pub const COLUMNS: [&str; 24] = [
    "url",
    "name",
    "category",
    "verdict",
    "reason",
    "message",
    "phase",
    "http_status",
    "rpc_code",
    "era",
    "transport",
    "protocol_version",
    "server_name",
    "server_version",
    "tools_count",
    "schema_hash",
    "total_ms",
    "tls_valid",
    "tls_days_left",
    "tls_not_after",
    "warnings",
    "attempts",
    "started_at",
    "refused_range",
];

/// Writes `scan.csv`.
pub(crate) struct CsvWriter(csv::Writer<File>);

impl CsvWriter {
    pub(crate) fn create(file: File) -> io::Result<CsvWriter> {
        let mut w = csv::Writer::from_writer(file);
        w.write_record(COLUMNS).map_err(io::Error::other)?;
        Ok(CsvWriter(w))
    }

    pub(crate) fn write(&mut self, record: &ScanRecord) -> io::Result<()> {
        self.0.write_record(row(record)).map_err(io::Error::other)
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The row for one record, in [`COLUMNS`] order.
pub(crate) fn row(record: &ScanRecord) -> Vec<String> {
    let mut cells = vec![
        record.url.to_string(),
        record.name.clone().unwrap_or_default(),
        record.category.as_str().to_owned(),
    ];
    match &record.outcome {
        Outcome::Probed(r) => {
            let failure = r.failure.as_ref();
            let tls = r.tls.as_ref();
            let server = r.server_info.as_ref();
            cells.extend([
                r.verdict.as_str().to_owned(),
                opt(r.reason.map(|x| x.as_str())),
                opt(failure.map(|f| f.message.clone())),
                opt(failure.and_then(|f| f.phase).map(|p| p.as_str())),
                opt(failure.and_then(|f| f.http_status)),
                opt(failure.and_then(|f| f.rpc_code)),
                opt(r.era.map(|e| e.as_str())),
                opt(r.transport.map(|t| serde_label(&t))),
                opt(r.protocol_version.clone()),
                opt(server.and_then(|s| s.name.clone())),
                opt(server.and_then(|s| s.version.clone())),
                opt(r.tools_count),
                opt(r.schema_hash.clone()),
                opt(r.timings_ms.get(Phase::Total).map(|ms| format!("{ms:.1}"))),
                opt(tls.map(|t| t.valid)),
                opt(tls.and_then(|t| t.days_left)),
                opt(tls.and_then(|t| t.not_after.clone())),
                r.warnings
                    .iter()
                    .map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                record.attempts.to_string(),
                r.started_at.clone(),
                String::new(),
            ]);
        }
        Outcome::Refused {
            refusal,
            checked_at,
        } => {
            cells.extend(std::iter::repeat_n(String::new(), 18));
            cells.push(record.attempts.to_string());
            cells.push(checked_at.clone());
            cells.push(format!("{} ({})", refusal.range, refusal.refused));
        }
    }
    cells
}

fn serde_label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::{Reason, Verdict};
    use url::Url;

    use super::*;
    use crate::policy::Refusal;
    use crate::testutil::record;

    #[test]
    fn rows_have_every_column() {
        let probed = record(
            "https://a.example/mcp",
            Verdict::Unhealthy,
            Some(Reason::HttpStatus),
        );
        let r = row(&probed);
        assert_eq!(r.len(), COLUMNS.len());
        assert_eq!(r[2], "broken");
        assert_eq!(r[4], "http_status");
        assert_eq!(r[16], "100.0");
        let refused = ScanRecord::refused(
            Url::parse("http://10.0.0.1/").unwrap(),
            None,
            Refusal {
                addresses: vec![],
                refused: "10.0.0.1".parse().unwrap(),
                range: "private",
            },
        );
        let r = row(&refused);
        assert_eq!(r.len(), COLUMNS.len());
        assert_eq!(r[23], "private (10.0.0.1)");
    }
}
