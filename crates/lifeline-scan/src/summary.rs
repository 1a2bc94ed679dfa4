//! The census summary: counters, histograms and a latency sketch fed one record at a time, so its size does not
//! depend on the number of endpoints; [`Summary::finish`] turns it into a [`SummaryReport`] for the terminal,
//! `summary.json` and the HTML report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use lifeline_mcp::{Era, Reason, Warning};
use serde::Serialize;
use strum::EnumCount;

use crate::baseline::DiffSummary;
use crate::category::Category;
use crate::input::{SkipReason, Skipped};
use crate::record::{now_rfc3339, ScanRecord};

/// Distinct protocol-version strings tracked; more are counted under `other` (a server chooses the string, so
/// the map must not grow with the input).
const MAX_VERSIONS: usize = 32;
/// Certificates listed by name in the summary (the soonest to expire).
const MAX_CERTS_LISTED: usize = 20;
/// Skipped input entries quoted in the summary (duplicates are only counted).
const MAX_SKIP_SAMPLES: usize = 10;
/// Latency sketch range: 1 ms … 1 h, 3 significant digits (about 200 KiB per histogram).
const LATENCY_MAX_MS: u64 = 3_600_000;
/// Upper bounds (exclusive, ms) of the latency distribution's bins; one more bin holds everything slower. Roughly
/// logarithmic: a census spans loopback milliseconds to timeouts of seconds.
pub const LATENCY_BIN_BOUNDS_MS: [u64; 10] =
    [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Accumulates the summary.
pub struct Summary {
    started_at: String,
    cert_window_days: i64,
    counts: [u64; Category::COUNT],
    reasons: [u64; Reason::ALL.len()],
    eras: BTreeMap<&'static str, u64>,
    transports: BTreeMap<&'static str, u64>,
    versions: BTreeMap<String, u64>,
    warnings: BTreeMap<Warning, u64>,
    latency_usable: Histogram<u64>,
    latency_probed: Histogram<u64>,
    /// Per bin of [`LATENCY_BIN_BOUNDS_MS`] (and the open one): `[usable, other probed]`.
    latency_bins: [[u64; 2]; LATENCY_BIN_BOUNDS_MS.len() + 1],
    certs_expiring: u64,
    certs: Vec<CertNote>,
    skipped: BTreeMap<&'static str, u64>,
    skip_samples: Vec<Skipped>,
}

/// A certificate that expires within the warning window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertNote {
    /// The endpoint.
    pub url: String,
    /// Whole days left (negative: expired).
    pub days_left: i64,
    /// The certificate's `notAfter`.
    pub not_after: Option<String>,
}

/// Facts about the run that the records do not carry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunFacts {
    /// The input file (`-` for standard input).
    pub input: String,
    /// Wall time in seconds.
    pub elapsed_s: f64,
    /// True when the census does not cover the whole input.
    pub partial: bool,
    /// True when a stop request (Ctrl-C) ended it.
    pub interrupted: bool,
    /// Probes abandoned in flight.
    pub abandoned: u64,
    /// Endpoints never probed because of the stop.
    pub not_started: u64,
    /// The input error that ended it, if any.
    pub input_error: Option<String>,
    /// Settings worth recording beside the figures.
    pub settings: Settings,
}

/// The settings of a run, as recorded in the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Global concurrency cap.
    pub concurrency: usize,
    /// Per-host cap.
    pub per_host: usize,
    /// Attempts per endpoint at most.
    pub attempts: u32,
    /// The probe's total timeout, seconds.
    pub timeout_s: f64,
    /// The latency bound (slower is `degraded`), seconds.
    pub latency_bound_s: f64,
    /// Whether private addresses were probed.
    pub allow_private: bool,
}

/// A count with its share of the whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The label.
    pub label: String,
    /// How many.
    pub count: u64,
    /// Percent of all endpoints with a result, one decimal.
    pub percent: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// One bin of the latency distribution (total probe time of probed endpoints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyBin {
    /// Lower bound, ms (inclusive).
    pub from_ms: u64,
    /// Upper bound, ms (exclusive); `None` for the last, open bin.
    pub to_ms: Option<u64>,
    /// Usable endpoints (healthy, degraded) in the bin.
    pub usable: u64,
    /// Other probed endpoints (auth-gated, broken, dead) in the bin.
    pub other: u64,
}

/// The finished summary (the shape of `summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SummaryReport {
    /// When the scan started, RFC 3339.
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Run facts.
    #[serde(flatten)]
    pub run: RunFacts,
    /// Endpoints with a result.
    pub endpoints: u64,
    /// Finished endpoints per second.
    pub probes_per_s: f64,
    /// Every category, best first, with zero counts kept.
    pub categories: Vec<Share>,
    /// Reasons of non-healthy results, most frequent first.
    pub reasons: Vec<Share>,
    /// Eras detected (`unknown` when the probe got no answer).
    pub eras: Vec<Share>,
    /// Transports used.
    pub transports: Vec<Share>,
    /// Protocol versions spoken.
    pub protocol_versions: Vec<Share>,
    /// Warnings, with the number of endpoints showing each.
    pub warnings: Vec<Share>,
    /// Total probe time of usable endpoints (healthy, degraded).
    pub latency_usable_ms: Option<Latency>,
    /// Total probe time of every probed endpoint.
    pub latency_probed_ms: Option<Latency>,
    /// The distribution of that time: one bin per bound of [`LATENCY_BIN_BOUNDS_MS`] and an open last one, all
    /// present (zero counts kept).
    pub latency_histogram: Vec<LatencyBin>,
    /// The certificate warning window in days.
    pub cert_window_days: i64,
    /// Certificates expiring within the window (or expired).
    pub certs_expiring: u64,
    /// The soonest of them (at most 20).
    pub certs: Vec<CertNote>,
    /// Skipped input entries by reason.
    pub skipped: BTreeMap<String, u64>,
    /// A few skipped entries (not duplicates).
    pub skip_samples: Vec<Skipped>,
    /// The baseline comparison, when one was given.
    pub diff: Option<DiffSummary>,
}

impl Summary {
    /// An empty summary; certificates expiring within `cert_window_days` are noted.
    pub fn new(cert_window_days: i64) -> Summary {
        Summary {
            started_at: now_rfc3339(),
            cert_window_days,
            counts: [0; Category::COUNT],
            reasons: [0; Reason::ALL.len()],
            eras: BTreeMap::new(),
            transports: BTreeMap::new(),
            versions: BTreeMap::new(),
            warnings: BTreeMap::new(),
            latency_usable: latency_histogram(),
            latency_probed: latency_histogram(),
            latency_bins: [[0; 2]; LATENCY_BIN_BOUNDS_MS.len() + 1],
            certs_expiring: 0,
            certs: Vec::new(),
            skipped: BTreeMap::new(),
            skip_samples: Vec::new(),
        }
    }

    /// Counts one result.
    pub fn add(&mut self, record: &ScanRecord) {
        self.counts[record.category.index()] += 1;
        let Some(report) = record.report() else {
            return;
        };
        if let Some(reason) = report.reason {
            if let Some(i) = Reason::ALL.iter().position(|r| *r == reason) {
                self.reasons[i] += 1;
            }
        }
        *self
            .eras
            .entry(report.era.map_or("unknown", Era::as_str))
            .or_default() += 1;
        if let Some(t) = report.transport {
            *self.transports.entry(t.as_str()).or_default() += 1;
        }
        if let Some(v) = &report.protocol_version {
            let key = if self.versions.contains_key(v) || self.versions.len() < MAX_VERSIONS {
                v.chars().take(40).collect()
            } else {
                "other".to_owned()
            };
            *self.versions.entry(key).or_default() += 1;
        }
        let mut seen = Vec::new();
        for w in &report.warnings {
            if !seen.contains(w) {
                seen.push(*w);
                *self.warnings.entry(*w).or_default() += 1;
            }
        }
        if let Some(ms) = record.total_ms() {
            let ms = (ms.round() as u64).clamp(1, LATENCY_MAX_MS);
            self.latency_probed.saturating_record(ms);
            let bin = LATENCY_BIN_BOUNDS_MS
                .iter()
                .position(|b| ms < *b)
                .unwrap_or(LATENCY_BIN_BOUNDS_MS.len());
            if record.category.is_usable() {
                self.latency_usable.saturating_record(ms);
                self.latency_bins[bin][0] += 1;
            } else {
                self.latency_bins[bin][1] += 1;
            }
        }
        if let Some(days) = report.tls.as_ref().and_then(|t| t.days_left) {
            if days <= self.cert_window_days {
                self.certs_expiring += 1;
                let note = CertNote {
                    url: record.url.to_string(),
                    days_left: days,
                    not_after: report.tls.as_ref().and_then(|t| t.not_after.clone()),
                };
                self.certs.push(note);
                self.certs.sort_by(|a, b| {
                    a.days_left
                        .cmp(&b.days_left)
                        .then_with(|| a.url.cmp(&b.url))
                });
                self.certs.truncate(MAX_CERTS_LISTED);
            }
        }
    }

    /// Counts one skipped input entry.
    pub fn skip(&mut self, skipped: &Skipped) {
        *self.skipped.entry(skip_label(&skipped.why)).or_default() += 1;
        if skipped.why != SkipReason::Duplicate && self.skip_samples.len() < MAX_SKIP_SAMPLES {
            self.skip_samples.push(skipped.clone());
        }
    }

    /// Endpoints counted so far.
    pub fn endpoints(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The count of one category.
    pub fn count(&self, category: Category) -> u64 {
        self.counts[category.index()]
    }

    /// The finished summary.
    pub fn finish(&self, run: RunFacts, diff: Option<DiffSummary>) -> SummaryReport {
        let total = self.endpoints();
        let share = |label: &str, count: u64| Share {
            label: label.to_owned(),
            count,
            percent: percent(count, total),
        };
        let categories = Category::ALL
            .iter()
            .map(|c| share(c.as_str(), self.counts[c.index()]))
            .collect();
        let mut reasons: Vec<Share> = Reason::ALL
            .iter()
            .zip(self.reasons)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| share(r.as_str(), n))
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
        let sorted = |map: Vec<(String, u64)>| {
            let mut v: Vec<Share> = map.into_iter().map(|(k, n)| share(&k, n)).collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
            v
        };
        let elapsed = run.elapsed_s;
        SummaryReport {
            started_at: self.started_at.clone(),
            finished_at: now_rfc3339(),
            endpoints: total,
            probes_per_s: if elapsed > 0.0 {
                total as f64 / elapsed
            } else {
                0.0
            },
            run,
            categories,
            reasons,
            eras: sorted(
                self.eras
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect(),
            ),
            transports: sorted(
                self.transports
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect(),
            ),
            protocol_versions: sorted(self.versions.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            warnings: sorted(
                self.warnings
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), *v))
                    .collect(),
            ),
            latency_usable_ms: latency(&self.latency_usable),
            latency_probed_ms: latency(&self.latency_probed),
            latency_histogram: self
                .latency_bins
                .iter()
                .enumerate()
                .map(|(i, [usable, other])| LatencyBin {
                    from_ms: i.checked_sub(1).map_or(0, |j| LATENCY_BIN_BOUNDS_MS[j]),
                    to_ms: LATENCY_BIN_BOUNDS_MS.get(i).copied(),
                    usable: *usable,
                    other: *other,
                })
                .collect(),
            cert_window_days: self.cert_window_days,
            certs_expiring: self.certs_expiring,
            certs: self.certs.clone(),
            skipped: self
                .skipped
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            skip_samples: self.skip_samples.clone(),
            diff,
        }
    }
}

impl SummaryReport {
    /// The terminal summary: plain text, aligned columns, no colour.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let elapsed = Duration::from_secs_f64(self.run.elapsed_s.max(0.0));
        let _ = writeln!(
            out,
            "lifeline scan: {} endpoints from {} in {:.1}s ({:.1}/s)",
            self.endpoints,
            self.run.input,
            elapsed.as_secs_f64(),
            self.probes_per_s
        );
        if self.run.partial {
            let _ = writeln!(
                out,
                "PARTIAL REPORT: {}{} probes abandoned in flight, {} endpoints not started",
                if self.run.interrupted {
                    "interrupted; "
                } else {
                    ""
                },
                self.run.abandoned,
                self.run.not_started
            );
        }
        if let Some(err) = &self.run.input_error {
            let _ = writeln!(out, "input error: {err}");
        }
        let _ = writeln!(out, "\n{:<18}{:>8}{:>9}", "category", "count", "%");
        for s in &self.categories {
            let _ = writeln!(out, "{:<18}{:>8}{:>8.1}%", s.label, s.count, s.percent);
        }
        if !self.reasons.is_empty() {
            let _ = writeln!(out, "\nreasons");
            let widest = self
                .reasons
                .iter()
                .map(|s| s.count)
                .max()
                .unwrap_or(1)
                .max(1);
            for s in &self.reasons {
                let bar = "#".repeat(((s.count * 30).div_ceil(widest)) as usize);
                let _ = writeln!(
                    out,
                    "  {:<20}{:>8}{:>8.1}%  {bar}",
                    s.label, s.count, s.percent
                );
            }
        }
        line_of_shares(&mut out, "eras", &self.eras);
        line_of_shares(&mut out, "transports", &self.transports);
        line_of_shares(&mut out, "protocol versions", &self.protocol_versions);
        line_of_shares(&mut out, "warnings", &self.warnings);
        for (label, l) in [
            ("usable", &self.latency_usable_ms),
            ("all probed", &self.latency_probed_ms),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    out,
                    "latency ({label}, n={}): p50 {}  p90 {}  p99 {}  max {}",
                    l.count,
                    ms(l.p50),
                    ms(l.p90),
                    ms(l.p99),
                    ms(l.max)
                );
            }
        }
        let _ = writeln!(
            out,
            "certificates expiring within {} days: {}",
            self.cert_window_days, self.certs_expiring
        );
        for c in &self.certs {
            let _ = writeln!(out, "  {:>4} days  {}", c.days_left, c.url);
        }
        if !self.skipped.is_empty() {
            let parts: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(out, "skipped input entries: {}", parts.join(", "));
            for s in &self.skip_samples {
                let _ = writeln!(
                    out,
                    "  {}: {} ({})",
                    s.location,
                    s.entry,
                    skip_detail(&s.why)
                );
            }
        }
        if let Some(diff) = &self.diff {
            out.push('\n');
            out.push_str(&diff.render_text());
        }
        out
    }
}

fn line_of_shares(out: &mut String, title: &str, shares: &[Share]) {
    if shares.is_empty() {
        return;
    }
    let parts: Vec<String> = shares
        .iter()
        .map(|s| format!("{} {}", s.label, s.count))
        .collect();
    let _ = writeln!(out, "{title}: {}", parts.join(", "));
}

fn ms(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1}s", v as f64 / 1000.0)
    } else {
        format!("{v}ms")
    }
}

fn percent(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (count as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_MS, 3)
        .expect("constant bounds are valid: 1 ≤ low < high/2, 3 sigfig")
}

fn latency(h: &Histogram<u64>) -> Option<Latency> {
    (!h.is_empty()).then(|| Latency {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    })
}

/// The stable label of a skip reason (the keys of `skipped`), derived from the enum: `invalid_url`,
/// `unsupported_scheme`, `credentials_in_url`, `url_template`, `duplicate`, `deleted`, `no_remote`, `not_a_url`.
pub fn skip_label(why: &SkipReason) -> &'static str {
    why.into()
}

fn skip_detail(why: &SkipReason) -> String {
    match why {
        SkipReason::InvalidUrl(m) => format!("invalid URL: {m}"),
        SkipReason::UnsupportedScheme(s) => format!("unsupported scheme {s}"),
        other => skip_label(other).replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::probe::TlsInfo;
    use lifeline_mcp::Verdict;

    use super::*;
    use crate::testutil::record;

    #[test]
    fn skip_labels_are_the_documented_words() {
        let cases = [
            (SkipReason::InvalidUrl("x".into()), "invalid_url"),
            (
                SkipReason::UnsupportedScheme("ftp".into()),
                "unsupported_scheme",
            ),
            (SkipReason::Credentials, "credentials_in_url"),
            (SkipReason::Template, "url_template"),
            (SkipReason::Duplicate, "duplicate"),
            (SkipReason::Deleted, "deleted"),
            (SkipReason::NoRemote, "no_remote"),
            (SkipReason::NotAUrl, "not_a_url"),
        ];
        for (why, label) in cases {
            assert_eq!(skip_label(&why), label);
        }
        assert_eq!(skip_detail(&SkipReason::NoRemote), "no remote");
        assert_eq!(
            serde_json::to_value(SkipReason::Credentials).unwrap(),
            serde_json::json!({"kind": "credentials"})
        );
    }

    #[test]
    fn counts_shares_and_histograms() {
        let mut s = Summary::new(14);
        for i in 0..9 {
            let mut r = record(&format!("https://h{i}.example/"), Verdict::Healthy, None);
            if let crate::record::Outcome::Probed(rep) = &mut r.outcome {
                rep.era = Some(Era::Legacy);
                rep.protocol_version = Some("2025-06-18".into());
                rep.warnings = vec![Warning::NoOriginCheck, Warning::NoOriginCheck];
            }
            s.add(&r);
        }
        s.add(&record(
            "https://d.example/",
            Verdict::Unhealthy,
            Some(Reason::Timeout),
        ));
        let mut expiring = record(
            "https://c.example/",
            Verdict::Degraded,
            Some(Reason::CertExpiring),
        );
        if let crate::record::Outcome::Probed(rep) = &mut expiring.outcome {
            rep.tls = Some(TlsInfo {
                days_left: Some(3),
                ..TlsInfo::default()
            });
        }
        s.add(&expiring);
        let report = s.finish(
            RunFacts {
                elapsed_s: 2.0,
                ..RunFacts::default()
            },
            None,
        );
        assert_eq!(report.endpoints, 11);
        assert_eq!(
            report.categories[0],
            Share {
                label: "healthy".into(),
                count: 9,
                percent: 81.8
            }
        );
        assert_eq!(report.reasons[0].label, "cert_expiring");
        assert_eq!(report.reasons.len(), 2);
        assert_eq!(
            report
                .eras
                .iter()
                .find(|e| e.label == "legacy")
                .unwrap()
                .count,
            9
        );
        assert_eq!(
            report.warnings[0].count, 9,
            "a warning counts once per endpoint"
        );
        assert_eq!(report.latency_usable_ms.as_ref().unwrap().count, 10);
        assert_eq!(report.latency_probed_ms.as_ref().unwrap().p50, 100);
        assert_eq!(report.certs_expiring, 1);
        assert_eq!(report.certs[0].days_left, 3);
        assert!((report.probes_per_s - 5.5).abs() < 1e-9);
        let text = report.render_text();
        assert!(
            text.lines()
                .any(|l| l.starts_with("healthy ") && l.ends_with(" 9    81.8%")),
            "{text}"
        );
        assert!(text.contains("certificates expiring within 14 days: 1"));
    }

    #[test]
    fn protocol_versions_are_bounded() {
        let mut s = Summary::new(14);
        for i in 0..100 {
            let mut r = record("https://x.example/", Verdict::Healthy, None);
            if let crate::record::Outcome::Probed(rep) = &mut r.outcome {
                rep.protocol_version = Some(format!("v{i}"));
            }
            s.add(&r);
        }
        let report = s.finish(RunFacts::default(), None);
        assert_eq!(report.protocol_versions.len(), MAX_VERSIONS + 1);
        assert_eq!(
            report.protocol_versions[0],
            Share {
                label: "other".into(),
                count: 68,
                percent: 68.0
            }
        );
    }

    #[test]
    fn latency_histogram_bins_usable_and_other_by_total_time() {
        let mut s = Summary::new(14);
        let timed = |url: &str, verdict, reason, ms: f64| {
            let mut r = record(url, verdict, reason);
            if let crate::record::Outcome::Probed(rep) = &mut r.outcome {
                rep.timings_ms =
                    lifeline_mcp::probe::Timings(vec![(lifeline_mcp::probe::Phase::Total, ms)]);
            }
            r
        };
        for r in [
            timed("https://a.example/mcp", Verdict::Healthy, None, 3.0),
            timed("https://b.example/mcp", Verdict::Healthy, None, 10.0),
            timed(
                "https://c.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::Timeout),
                10_000.0,
            ),
            timed(
                "https://d.example/mcp",
                Verdict::Unhealthy,
                Some(Reason::Timeout),
                99_999.0,
            ),
        ] {
            s.add(&r);
        }
        let h = s.finish(RunFacts::default(), None).latency_histogram;
        assert_eq!(h.len(), LATENCY_BIN_BOUNDS_MS.len() + 1);
        let counts: Vec<(u64, Option<u64>, u64, u64)> = h
            .iter()
            .filter(|b| b.usable + b.other > 0)
            .map(|b| (b.from_ms, b.to_ms, b.usable, b.other))
            .collect();
        // 10 ms is the first bin's exclusive bound; 10 s opens the last bin.
        assert_eq!(
            counts,
            vec![
                (0, Some(10), 1, 0),
                (10, Some(25), 1, 0),
                (10_000, None, 0, 2)
            ]
        );
    }
}
