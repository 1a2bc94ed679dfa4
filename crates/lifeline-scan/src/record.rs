//! One scanned endpoint's result, [`ScanRecord`], and its JSON Lines form: the full probe report (the schema of
//! `docs/check-json.md`) with `category`, `attempts` and the registry `name` added in front.

use lifeline_mcp::probe::{Failure, Phase, Timings};
use lifeline_mcp::{ProbeReport, Reason};
use serde::Serialize;
use url::Url;

use crate::category::Category;
use crate::policy::Refusal;

/// The result kept for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRecord {
    /// The normalised URL.
    pub url: Url,
    /// The registry's server name, when the input had one.
    pub name: Option<String>,
    /// The census category (of the best attempt).
    pub category: Category,
    /// How many probes were made (0 when refused before probing).
    pub attempts: u32,
    /// What happened.
    pub outcome: Outcome,
}

/// A probe's report, or why there was none.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The best of the probes made.
    Probed(Box<ProbeReport>),
    /// Not probed: the host resolves to a non-public address.
    Refused {
        /// The addresses and the range that refused them.
        refusal: Refusal,
        /// When the check ran, RFC 3339 UTC.
        checked_at: String,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    category: Category,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(flatten)]
    report: Option<&'a ProbeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<&'a Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<&'a str>,
}

impl ScanRecord {
    /// A record for a probed endpoint, categorised from its report.
    pub fn probed(
        url: Url,
        name: Option<String>,
        attempts: u32,
        report: ProbeReport,
    ) -> ScanRecord {
        ScanRecord {
            url,
            name,
            category: Category::of(&report),
            attempts,
            outcome: Outcome::Probed(Box::new(report)),
        }
    }

    /// A record for an endpoint refused by the address policy.
    pub fn refused(url: Url, name: Option<String>, refusal: Refusal) -> ScanRecord {
        ScanRecord {
            url,
            name,
            category: Category::RefusedPrivate,
            attempts: 0,
            outcome: Outcome::Refused {
                refusal,
                checked_at: now_rfc3339(),
            },
        }
    }

    /// The probe report, when the endpoint was probed.
    pub fn report(&self) -> Option<&ProbeReport> {
        match &self.outcome {
            Outcome::Probed(report) => Some(report),
            Outcome::Refused { .. } => None,
        }
    }

    /// The one-line JSON form (no trailing newline): `category`, `attempts`, `name` (when known), then every
    /// field of the probe report; a refused endpoint has `url`, `refused` (`addresses`, `refused`, `range`) and
    /// `started_at` instead of a report.
    pub fn to_json_line(&self) -> serde_json::Result<String> {
        let line = match &self.outcome {
            Outcome::Probed(report) => Line {
                category: self.category,
                attempts: self.attempts,
                name: self.name.as_deref(),
                report: Some(report),
                url: None,
                refused: None,
                started_at: None,
            },
            Outcome::Refused {
                refusal,
                checked_at,
            } => Line {
                category: self.category,
                attempts: self.attempts,
                name: self.name.as_deref(),
                report: None,
                url: Some(self.url.as_str()),
                refused: Some(refusal),
                started_at: Some(checked_at),
            },
        };
        serde_json::to_string(&line)
    }

    /// Total probe time in milliseconds (`timings_ms.total`), when probed.
    pub fn total_ms(&self) -> Option<f64> {
        self.report().and_then(|r| r.timings_ms.get(Phase::Total))
    }
}

/// Keeps the better of two attempts: the lower category rank; on a tie, the later one.
pub fn better(earlier: ScanRecord, later: ScanRecord) -> ScanRecord {
    if earlier.category.rank() < later.category.rank() {
        earlier
    } else {
        later
    }
}

/// The report of an endpoint whose host did not resolve during the address check, in the probe's own words
/// (`dns_failed`, phase `dns`), so the census counts it as dead exactly as a probe would.
pub fn dns_failed_report(
    url: &Url,
    message: String,
    started_at: String,
    elapsed_ms: f64,
) -> ProbeReport {
    let mut timings = Timings::default();
    timings.add(Phase::Dns, elapsed_ms);
    timings.add(Phase::Total, elapsed_ms);
    ProbeReport::failed(
        url.to_string(),
        Failure::new(Reason::DnsFailed, message).in_phase(Phase::Dns),
        timings,
        started_at,
    )
}

/// The report of a probe that did not return within its bound (a prober bug): unhealthy, `timeout` in phase
/// `total`.
pub fn overdue_report(url: &Url, after: std::time::Duration) -> ProbeReport {
    let message =
        format!("the probe did not return within {after:?} (a Lifeline bug: please report it)");
    let mut timings = Timings::default();
    timings.add(Phase::Total, after.as_secs_f64() * 1000.0);
    ProbeReport::failed(
        url.to_string(),
        Failure::new(Reason::Timeout, message).in_phase(Phase::Total),
        timings,
        String::new(),
    )
}

/// The current time, RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::testutil::{record, report_with};
    use lifeline_mcp::Verdict;

    #[test]
    fn jsonl_of_a_probed_endpoint_is_the_report_plus_category() {
        let mut report = report_with(Verdict::AuthRequired, Some(Reason::AuthRequired));
        report.url = "https://a.example/mcp".into();
        let rec = ScanRecord::probed(
            Url::parse("https://a.example/mcp").unwrap(),
            Some("io.a/x".into()),
            2,
            report.clone(),
        );
        let line: Value = serde_json::from_str(&rec.to_json_line().unwrap()).unwrap();
        assert_eq!(line["category"], "auth_gated");
        assert_eq!(line["attempts"], 2);
        assert_eq!(line["name"], "io.a/x");
        assert_eq!(line["verdict"], "auth_required");
        assert_eq!(line["url"], "https://a.example/mcp");
        // Every report field is there and reads back into a ProbeReport.
        let back: ProbeReport = serde_json::from_value(line).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn jsonl_of_a_refused_endpoint() {
        let refusal = Refusal {
            addresses: vec!["127.0.0.1".parse().unwrap()],
            refused: "127.0.0.1".parse().unwrap(),
            range: "loopback",
        };
        let rec = ScanRecord::refused(Url::parse("http://localhost:1/mcp").unwrap(), None, refusal);
        let line: Value = serde_json::from_str(&rec.to_json_line().unwrap()).unwrap();
        assert_eq!(line["category"], "refused_private");
        assert_eq!(line["attempts"], 0);
        assert_eq!(line["url"], "http://localhost:1/mcp");
        assert_eq!(line["refused"]["range"], "loopback");
        assert_eq!(line["refused"]["addresses"][0], "127.0.0.1");
        assert!(line.get("verdict").is_none());
        assert!(line.get("name").is_none());
    }

    #[test]
    fn better_prefers_lower_rank_then_later() {
        let dead = record(
            "https://a.example/",
            Verdict::Unhealthy,
            Some(Reason::Timeout),
        );
        let healthy = record("https://a.example/", Verdict::Healthy, None);
        assert_eq!(
            better(dead.clone(), healthy.clone()).category,
            Category::Healthy
        );
        assert_eq!(
            better(healthy.clone(), dead.clone()).category,
            Category::Healthy
        );
        let mut dead2 = dead.clone();
        dead2.attempts = 2;
        assert_eq!(better(dead, dead2).attempts, 2);
    }

    #[test]
    fn dns_failed_report_is_dead() {
        let url = Url::parse("https://x.invalid/").unwrap();
        let report = dns_failed_report(&url, "no".into(), now_rfc3339(), 3.0);
        assert_eq!(Category::of(&report), Category::Dead);
        assert_eq!(report.timings_ms.get(Phase::Total), Some(3.0));
    }
}
