//! The seam between the scheduler and the probe engine: [`Prober`]. Production uses [`McpProber`], which calls
//! `lifeline_mcp::probe`; tests script outcomes with their own implementation.
//!
//! A transaction target (`TargetConfig::transaction`) is probed like its parent plus its one transaction, and
//! its report is folded by [`transaction_view`] so the rest of the monitor (evaluation, incidents, rollups,
//! alerts, the status page) judges the transaction's verdict with the machinery it has for targets.

use std::future::Future;
use std::pin::Pin;

use lifeline_mcp::probe::{Failure, Phase};
use lifeline_mcp::ProbeReport;

use crate::config::TargetConfig;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Probes one target once. Must never fail (a failure is a report with a verdict) and must respect
/// `target.timeout`; the scheduler adds a safety margin on top and reports `timeout` if it is overrun.
pub trait Prober: Send + Sync + 'static {
    /// Probes `target`.
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport>;
}

/// The real prober: `lifeline_mcp::probe` with the target's options.
#[derive(Debug, Clone, Copy, Default)]
pub struct McpProber;

impl Prober for McpProber {
    fn probe<'a>(&'a self, target: &'a TargetConfig) -> BoxFuture<'a, ProbeReport> {
        Box::pin(async move {
            let t = target.probe_target();
            let opts = target.probe_options();
            let report = lifeline_mcp::probe(&t, &opts).await;
            if target.transaction.is_some() {
                transaction_view(report)
            } else {
                report
            }
        })
    }
}

/// The report of a transaction target: the probe's facts (era, tools, timings, certificate) with the verdict,
/// reason and failure of its transaction (`report.transactions[0]`). A probe that was not usable keeps its own
/// verdict and reason: the transaction did not run, and the handshake is what failed. A healthy transaction on
/// a degraded probe (a slow handshake, an expiring certificate) is healthy: the parent target reports those.
pub fn transaction_view(mut report: ProbeReport) -> ProbeReport {
    if !report.is_usable() {
        return report;
    }
    let Some(t) = report.transactions.first() else {
        return report;
    };
    report.verdict = t.verdict;
    report.reason = t.reason;
    report.failure = t.reason.map(|reason| {
        Failure::new(reason, t.message.clone().unwrap_or_default()).in_phase(Phase::Transactions)
    });
    report
}

#[cfg(test)]
mod tests {
    use lifeline_mcp::transaction::{StepOutcome, StepReport, TransactionReport};
    use lifeline_mcp::{Reason, Verdict};

    use super::*;

    fn report(probe: Verdict, txn: Verdict, reason: Option<Reason>) -> ProbeReport {
        let mut r = ProbeReport::failed(
            "u".into(),
            Failure::new(Reason::ConnectRefused, "refused"),
            Default::default(),
            String::new(),
        );
        if probe != Verdict::Unhealthy {
            r.verdict = probe;
            r.reason = None;
            r.failure = None;
        }
        r.transactions = vec![TransactionReport {
            name: "t".into(),
            verdict: txn,
            reason,
            message: reason.map(|_| "step 1 (tool search): expected … but …".to_owned()),
            duration_ms: 3.0,
            steps: vec![StepReport {
                kind: "tool".into(),
                target: "search".into(),
                outcome: if reason.is_some() {
                    StepOutcome::Failed
                } else {
                    StepOutcome::Passed
                },
                reason,
                message: None,
                expression: None,
                actual: None,
                rpc_code: None,
                latency_ms: Some(3.0),
            }],
        }];
        r
    }

    #[test]
    fn the_transaction_decides_unless_the_probe_failed() {
        // (probe verdict, transaction verdict and reason, folded verdict and reason)
        let cases = [
            (
                Verdict::Healthy,
                Verdict::Healthy,
                None,
                Verdict::Healthy,
                None,
            ),
            (
                Verdict::Healthy,
                Verdict::Unhealthy,
                Some(Reason::AssertionFailed),
                Verdict::Unhealthy,
                Some(Reason::AssertionFailed),
            ),
            (
                Verdict::Degraded,
                Verdict::Healthy,
                None,
                Verdict::Healthy,
                None,
            ),
            (
                Verdict::Unhealthy,
                Verdict::Unhealthy,
                Some(Reason::ConnectRefused),
                Verdict::Unhealthy,
                Some(Reason::ConnectRefused),
            ),
        ];
        for (probe, txn, reason, want, want_reason) in cases {
            let r = transaction_view(report(probe, txn, reason));
            assert_eq!((r.verdict, r.reason), (want, want_reason), "{probe} {txn}");
            assert_eq!(r.failure.as_ref().map(|f| f.reason), want_reason);
        }
        let r = transaction_view(report(
            Verdict::Healthy,
            Verdict::Unhealthy,
            Some(Reason::AssertionFailed),
        ));
        assert_eq!(r.failure.unwrap().phase, Some(Phase::Transactions));
    }
}
