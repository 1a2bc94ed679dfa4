//! `--junit FILE`: one JUnit testsuite `lifeline check` with one testcase per target (name = the target's URL or
//! stdio command, classname `lifeline.check`, time = the probe's total). A target that fails the gate is a
//! `<failure>` whose `type` is the reason (or `breaking_drift`) and whose message is reason and message; the
//! full text block goes into `system-out`.
//!
//! With `--transaction`, one more testcase per transaction step, after its target's: name `<transaction> step
//! <n>: <kind> <target>`, classname `lifeline.check.transaction.<transaction>`, time = the step's latency. A
//! failed step (or a degraded one with `--fail-on degraded`) is a `<failure>` typed by its reason; a step that
//! did not run is `<skipped>` with the reason it did not.

use std::time::Duration;

use lifeline_mcp::probe::Phase;
use lifeline_mcp::schema::ChangeKind;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use lifeline_mcp::transaction::{StepOutcome, StepReport, TransactionReport};

use super::Outcome;

/// The XML text.
pub(crate) fn render(outcomes: &[Outcome]) -> anyhow::Result<String> {
    let mut suite = TestSuite::new("lifeline check");
    let mut total = Duration::ZERO;
    for o in outcomes {
        let r = &o.report;
        let status = if o.target_failed() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let breaking = o.drift.as_ref().filter(|d| d.is_breaking());
            let drift_message = breaking.map(|d| {
                format!(
                    "breaking tool-schema drift vs {}: {} breaking change(s)",
                    d.path.display(),
                    d.drift.count(ChangeKind::Breaking)
                )
            });
            let (ty, message) = match (&r.failure, drift_message) {
                (Some(f), drift) if o.verdict_fails => {
                    let mut message = format!("{} {}: {}", r.verdict, f.reason, f.message);
                    if let Some(d) = drift {
                        message = format!("{message}; and {d}");
                    }
                    (f.reason.as_str().to_owned(), message)
                }
                (_, Some(d)) => ("breaking_drift".to_owned(), d),
                // A failing verdict always carries a failure; keep a message if an engine ever omits it.
                (_, None) => (r.verdict.as_str().to_owned(), r.verdict.as_str().to_owned()),
            };
            status.set_type(ty).set_message(message);
            status
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(r.url.clone(), status);
        case.set_classname("lifeline.check");
        let ms = r.timings_ms.get(Phase::Total).unwrap_or_default().max(0.0);
        let time = Duration::from_secs_f64(ms / 1000.0);
        total += time;
        case.set_time(time);
        case.set_system_out(super::human::render(std::slice::from_ref(o), false));
        suite.add_test_case(case);
        for t in &r.transactions {
            for (i, step) in t.steps.iter().enumerate() {
                let case = step_case(t, i, step, o.fail_on_degraded);
                total += case.time.unwrap_or_default();
                suite.add_test_case(case);
            }
        }
    }
    suite.set_time(total);
    let mut report = Report::new("lifeline");
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

/// The testcase of step `i` of `t`.
fn step_case(
    t: &TransactionReport,
    i: usize,
    step: &StepReport,
    fail_on_degraded: bool,
) -> TestCase {
    let fails = match step.outcome {
        StepOutcome::Failed => true,
        StepOutcome::Degraded => fail_on_degraded,
        StepOutcome::Passed | StepOutcome::Skipped => false,
    };
    let status = if fails {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        let reason = step.reason.map_or("failed", |r| r.as_str());
        let mut message = format!("{reason}: {}", step.message.as_deref().unwrap_or_default());
        if let Some(actual) = &step.actual {
            if !message.contains(actual.as_str()) {
                let _ =
                    std::fmt::Write::write_fmt(&mut message, format_args!(" (actual {actual})"));
            }
        }
        status.set_type(reason).set_message(message);
        status
    } else if step.outcome == StepOutcome::Skipped {
        let mut status = TestCaseStatus::skipped();
        let why = match t.steps[..i]
            .iter()
            .position(|s| s.outcome == StepOutcome::Failed)
        {
            Some(failed) => format!("step {} failed", failed + 1),
            None => t
                .message
                .clone()
                .unwrap_or_else(|| "the transaction did not run".to_owned()),
        };
        status.set_message(why);
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(
        format!("{} step {}: {} {}", t.name, i + 1, step.kind, step.target),
        status,
    );
    case.set_classname(format!("lifeline.check.transaction.{}", t.name));
    if let Some(ms) = step.latency_ms {
        case.set_time(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sample_report;
    use lifeline_mcp::probe::Failure;
    use lifeline_mcp::{Reason, Verdict};

    #[test]
    fn one_testcase_per_target_and_failures_carry_the_reason() {
        let ok = Outcome {
            report: sample_report(),
            drift: None,
            snapshot_update: None,
            verdict_fails: false,
            transactions_fail: false,
            fail_on_degraded: false,
            card: None,
        };
        let mut bad = sample_report();
        bad.url = "http://127.0.0.1:9/mcp".to_owned();
        bad.verdict = Verdict::Unhealthy;
        bad.reason = Some(Reason::ConnectRefused);
        bad.failure = Some(Failure::new(
            Reason::ConnectRefused,
            "connection refused by 127.0.0.1:9",
        ));
        let bad = Outcome {
            report: bad,
            drift: None,
            snapshot_update: None,
            verdict_fails: true,
            transactions_fail: false,
            fail_on_degraded: false,
            card: None,
        };
        let xml = render(&[ok, bad]).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
        assert!(
            xml.contains(r#"tests="2""#) && xml.contains(r#"failures="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"name="http://127.0.0.1:8080/mcp""#), "{xml}");
        assert!(
            xml.contains(
                r#"message="unhealthy connect_refused: connection refused by 127.0.0.1:9""#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"type="connect_refused""#), "{xml}");
        assert!(xml.contains(r#"time="0.006"#), "{xml}");
    }
}
