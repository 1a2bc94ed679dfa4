//! Synthetic transactions against a real server: the official Python SDK 2.x (`tests/peers/py2_tools_server.py`)
//! whose tools declare `outputSchema`, some honest and some not. One set of transactions reaches every step
//! reason; it runs over Streamable HTTP in the legacy era, over Streamable HTTP in the modern era (2026-07-28) and
//! over stdio, through the probe engine's own session.

use std::sync::Arc;
use std::time::Duration;

use lifeline_mcp::probe::{ProbeOptions, StdioCommand, Target, Timeouts};
use lifeline_mcp::transaction::{StepOutcome, TransactionReport, TransactionSet};
use lifeline_mcp::{probe, Era, EraHint, ProbeReport, Reason, Verdict};
use lifeline_testkit::peers::{Peer, PyServer};

/// One transaction per step reason, plus the `${var}` chain across steps, a resource and a prompt.
const SET: &str = r#"
allow_tools: [search, fetch, failing, wrong_shape, no_structure, slow, ask, write_note]
transactions:
  - name: roundtrip
    steps:
      - tool: search
        arguments: { query: lifeline-canary }
        expect:
          - 'result.isError == false'
          - 'size(result.structuredContent.items) > 0'
        save: { first_id: 'result.structuredContent.items[0].id' }
      - tool: fetch
        arguments: { id: '${first_id}' }
        expect:
          - 'result.structuredContent.id == first_id'
          - 'result.structuredContent.body.contains("first")'
      - resource: 'status://health'
        expect: ['result.contents[0].text.contains("ok")']
      - prompt: greet
        arguments: { name: 'doc ${first_id}' }
        expect: ['result.messages[0].content.text == "Hello, doc doc-1!"']
  - name: tool-error
    steps:
      - tool: failing
      - tool: search
        arguments: { query: never-reached }
  - name: wrong-shape
    steps: [{ tool: wrong_shape }]
  - name: no-structure
    steps: [{ tool: no_structure }]
  - name: assertion
    steps:
      - tool: search
        arguments: { query: lifeline-canary }
        expect: ['size(result.structuredContent.items) > 5']
  - name: rpc-error
    steps: [{ resource: 'file:///missing' }]
  - name: slow-degraded
    steps:
      - tool: slow
        arguments: { delay_ms: 300 }
        max_latency: { degraded: 50ms, unhealthy: 20s }
        expect: ['result.structuredContent.slept_ms == 300']
  - name: side-effect
    steps: [{ tool: write_note, arguments: { text: hi } }]
  - name: input
    steps: [{ tool: ask }]
  - name: slow-unhealthy
    steps:
      - tool: slow
        arguments: { delay_ms: 5000 }
        max_latency: { unhealthy: 500ms }
"#;

fn options(era: EraHint) -> ProbeOptions {
    ProbeOptions {
        // Judge findings, not speed: a Python server on a loaded 2-core machine is slow to answer.
        timeouts: Timeouts {
            total: Duration::from_secs(60),
            ..Timeouts::default()
        },
        slow_after: Duration::from_secs(60),
        check_origin: false,
        era_hint: era,
        transactions: Some(Arc::new(
            TransactionSet::from_yaml(SET).expect("the set is valid"),
        )),
        ..ProbeOptions::default()
    }
}

fn find<'a>(report: &'a ProbeReport, name: &str) -> &'a TransactionReport {
    report
        .transactions
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no transaction {name}"))
}

/// Every reason, as the real server provokes it; `era` decides what `ask` gives.
#[track_caller]
fn assert_every_reason(report: &ProbeReport, era: Era) {
    let pretty = serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report.verdict, Verdict::Healthy, "{pretty}");
    assert_eq!(report.era, Some(era), "{pretty}");
    assert_eq!(report.transactions.len(), 10, "{pretty}");

    let ok = find(report, "roundtrip");
    assert_eq!(
        (ok.verdict, ok.reason),
        (Verdict::Healthy, None),
        "{pretty}"
    );
    assert!(
        ok.steps
            .iter()
            .all(|s| s.outcome == StepOutcome::Passed && s.latency_ms.is_some()),
        "{pretty}"
    );

    // (transaction, reason, outcome of step 1, what the message must say)
    let cases = [
        (
            "tool-error",
            Reason::ToolError,
            "the upstream API answered 500",
        ),
        (
            "wrong-shape",
            Reason::SchemaViolation,
            "does not match its outputSchema at /items",
        ),
        (
            "no-structure",
            Reason::SchemaViolation,
            "returned no structuredContent",
        ),
        (
            "assertion",
            Reason::AssertionFailed,
            "expected size(result.structuredContent.items) > 5",
        ),
        ("rpc-error", Reason::RpcError, "Unknown resource"),
        (
            "side-effect",
            Reason::NotAllowed,
            "does not declare readOnlyHint: true",
        ),
        (
            "slow-unhealthy",
            Reason::Slow,
            "no answer within max_latency.unhealthy (500 ms)",
        ),
    ];
    for (name, reason, says) in cases {
        let t = find(report, name);
        assert_eq!(
            (t.verdict, t.reason),
            (Verdict::Unhealthy, Some(reason)),
            "{name}: {pretty}"
        );
        assert!(
            t.message.as_deref().unwrap_or_default().contains(says),
            "{name}: {pretty}"
        );
        assert!(t.failed(), "{name}");
    }
    // A failing step ends the transaction; the gate refuses before anything is called.
    assert_eq!(
        find(report, "tool-error").steps[1].outcome,
        StepOutcome::Skipped
    );
    let refused = find(report, "side-effect");
    assert_eq!(refused.steps[0].outcome, StepOutcome::Skipped, "{pretty}");
    assert_eq!(
        refused.steps[0].latency_ms, None,
        "nothing was sent: {pretty}"
    );
    // The assertion names the expression and the actual value.
    let step = &find(report, "assertion").steps[0];
    assert_eq!(
        step.expression.as_deref(),
        Some("size(result.structuredContent.items) > 5")
    );
    assert_eq!(step.actual.as_deref(), Some("2"), "{pretty}");
    assert_eq!(
        find(report, "rpc-error").steps[0].rpc_code,
        Some(-32602),
        "{pretty}"
    );
    // Slower than `degraded` but within `unhealthy`: degraded, not failed.
    let slow = find(report, "slow-degraded");
    assert_eq!(
        (slow.verdict, slow.reason),
        (Verdict::Degraded, Some(Reason::Slow)),
        "{pretty}"
    );
    assert!(!slow.failed());
    assert_eq!(slow.steps[0].outcome, StepOutcome::Degraded);

    let input = find(report, "input");
    match era {
        // 2026-07-28: the SDK answers `resultType: "input_required"`.
        Era::Modern => assert_eq!(input.reason, Some(Reason::InputRequired), "{pretty}"),
        // A handshake-era session has no InputRequiredResult: mcp 2.3.0 answers an internal error.
        _ => assert_eq!(input.reason, Some(Reason::RpcError), "{pretty}"),
    }
}

#[tokio::test]
async fn every_reason_over_streamable_http_in_the_legacy_era() {
    let peer = Peer::python_tools(PyServer::Stateful).await;
    let target = Target::Http(peer.url.parse().unwrap());
    let report = probe(&target, &options(EraHint::Legacy)).await;
    assert_every_reason(&report, Era::Legacy);
}

#[tokio::test]
async fn every_reason_over_streamable_http_in_the_modern_era() {
    let peer = Peer::python_tools(PyServer::Stateless).await;
    let target = Target::Http(peer.url.parse().unwrap());
    let report = probe(&target, &options(EraHint::Modern)).await;
    assert_every_reason(&report, Era::Modern);
}

#[tokio::test]
async fn every_reason_over_stdio() {
    let (program, args) = Peer::python_tools_stdio_command();
    let target = Target::Stdio(StdioCommand {
        program: program.to_string_lossy().into_owned(),
        args,
        ..StdioCommand::default()
    });
    let report = probe(&target, &options(EraHint::Legacy)).await;
    assert_every_reason(&report, Era::Legacy);
}

#[tokio::test]
async fn a_failed_handshake_reports_every_transaction_as_not_run() {
    // Nothing listens on port 9 of loopback (discard): the probe fails before any transaction.
    let target = Target::Http("http://127.0.0.1:9/mcp".parse().unwrap());
    let mut opts = options(EraHint::Auto);
    opts.timeouts.total = Duration::from_secs(5);
    let report = probe(&target, &opts).await;
    assert_eq!(report.verdict, Verdict::Unhealthy);
    assert_eq!(report.transactions.len(), 10);
    for t in &report.transactions {
        assert_eq!(t.reason, report.reason, "{}", t.name);
        assert!(t.steps.iter().all(|s| s.outcome == StepOutcome::Skipped));
    }
}
