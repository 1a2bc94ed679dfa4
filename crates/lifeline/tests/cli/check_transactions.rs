//! `lifeline check --transaction FILE` as a CI job runs it, against the real Python SDK 2.x server of
//! `tests/peers/py2_tools_server.py`: the exit code, the `transactions` array of `--json`, one JUnit testcase per
//! step, and the safety gate refusing up front (exit 64) before anything is called.

use lifeline_testkit::cli::{assert_exit, stderr, stdout};
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

use super::check_cli::{check, json_reports, write};

const PASSING: &str = r#"
allow_tools: [search, fetch]
transactions:
  - name: roundtrip
    steps:
      - tool: search
        arguments: { query: lifeline-canary }
        expect: ['size(result.structuredContent.items) == 2']
        save: { first_id: 'result.structuredContent.items[0].id' }
      - tool: fetch
        arguments: { id: '${first_id}' }
        expect: ['result.structuredContent.id == first_id']
      - resource: 'status://health'
"#;

const FAILING: &str = r#"
allow_tools: [search, failing]
transactions:
  - name: roundtrip
    steps:
      - tool: search
        arguments: { query: lifeline-canary }
  - name: broken
    steps:
      - tool: search
        arguments: { query: lifeline-canary }
        expect: ['result.structuredContent.items[0].title == "nope"']
      - tool: failing
"#;

/// Generous bounds: these tests judge findings, not speed, on a loaded 2-core machine.
const SLACK: [&str; 4] = ["--timeout", "60s", "--slow", "60s"];

#[tokio::test]
async fn transactions_against_a_real_server_pass_fail_and_are_gated() {
    let peer = Peer::python_tools(PyServer::Stateful).await;
    let dir = tempfile::tempdir().unwrap();

    // Passing: exit 0, and --json carries the steps with their timings.
    let file = write(dir.path(), "pass.yaml", PASSING);
    let mut args = vec![
        "--json",
        "--no-origin-check",
        "--transaction",
        &file,
        &peer.url,
    ];
    args.extend(SLACK);
    let out = check(&args).await;
    assert_exit(&out, 0);
    let reports = json_reports(&out);
    let t = &reports[0]["transactions"][0];
    let pretty = serde_json::to_string_pretty(&reports).unwrap();
    assert_eq!(t["name"], "roundtrip", "{pretty}");
    assert_eq!(t["verdict"], "healthy", "{pretty}");
    assert!(t["duration_ms"].as_f64().unwrap() > 0.0, "{pretty}");
    let steps = t["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{pretty}");
    for (step, (kind, target)) in steps.iter().zip([
        ("tool", "search"),
        ("tool", "fetch"),
        ("resource", "status://health"),
    ]) {
        assert_eq!(
            (step["kind"].as_str(), step["target"].as_str()),
            (Some(kind), Some(target))
        );
        assert_eq!(step["outcome"], "passed", "{pretty}");
        assert!(step["latency_ms"].as_f64().is_some(), "{pretty}");
    }
    assert!(
        reports[0]["timings_ms"]["transactions"].as_f64().is_some(),
        "{pretty}"
    );

    // Failing: exit 1; JUnit has the target's testcase plus one per step (3 steps), the failed assertion typed
    // by its reason with the expression and the actual value, and the step after it skipped.
    let file = write(dir.path(), "fail.yaml", FAILING);
    let junit = dir.path().join("report.xml").to_string_lossy().into_owned();
    let mut args = vec![
        "--no-origin-check",
        "--transaction",
        &file,
        "--junit",
        &junit,
        &peer.url,
    ];
    args.extend(SLACK);
    let out = check(&args).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("transaction broken unhealthy"), "{text}");
    assert!(text.contains("1 tool search  failed"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert!(
        xml.contains(r#"tests="4""#) && xml.contains(r#"failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"name="broken step 1: tool search""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"classname="lifeline.check.transaction.broken""#),
        "{xml}"
    );
    assert!(xml.contains(r#"type="assertion_failed""#), "{xml}");
    assert!(
        xml.contains("expected result.structuredContent.items[0].title == &quot;nope&quot; but the left side was &quot;first canary document&quot;"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<skipped message="step 1 failed"/>"#),
        "{xml}"
    );

    // The gate, once the tools are listed: write_note declares no readOnlyHint and the file does not allow side
    // effects, so it is refused (exit 64), and the server stored nothing (it was never called).
    let file = write(
        dir.path(),
        "side-effect.yaml",
        "allow_tools: [write_note]\ntransactions: [{name: note, steps: [{tool: write_note, arguments: {text: x}}]}]",
    );
    let mut args = vec![
        "--json",
        "--no-origin-check",
        "--transaction",
        &file,
        &peer.url,
    ];
    args.extend(SLACK);
    let out = check(&args).await;
    assert_exit(&out, 64);
    let err = stderr(&out);
    assert!(
        err.contains("transaction note: the safety gate refused it"),
        "{err}"
    );
    assert!(err.contains("does not declare readOnlyHint: true"), "{err}");
    let reports = json_reports(&out);
    assert_eq!(reports[0]["transactions"][0]["reason"], "not_allowed");
    assert_eq!(
        reports[0]["transactions"][0]["steps"][0]["latency_ms"],
        Value::Null
    );
}

#[tokio::test]
async fn a_bad_transaction_file_is_a_usage_error_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    // (file, what stderr names)
    let cases = [
        (
            "transactions: [{name: t, steps: [{tool: delete_everything}]}]",
            "transactions[0].steps[0].tool: the safety gate refuses \"delete_everything\": list it in allow_tools",
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: t, steps: [{tool: a, expect: ['size(']}]}]",
            "transactions[0].steps[0].expect[0]: \"size(\" is not a CEL expression",
        ),
        ("allow_tools: [a]\ntransactions: [{name: t, stepz: []}]", "unknown field `stepz`"),
        ("allow_tools: [a]\n", "the file holds no transaction"),
    ];
    for (i, (text, says)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("t{i}.yaml"), text);
        // Port 9 on loopback: nothing listens, and nothing must try.
        let out = check(&["--transaction", &file, "http://127.0.0.1:9/mcp"]).await;
        assert_exit(&out, 64);
        let err = stderr(&out);
        assert!(err.contains(says), "{text}: {err}");
        assert!(err.contains(&file), "the file is named: {err}");
        assert!(stdout(&out).is_empty(), "no probe ran: {}", stdout(&out));
    }
    let out = check(&[
        "--transaction",
        "/nonexistent/t.yaml",
        "http://127.0.0.1:9/mcp",
    ])
    .await;
    assert_exit(&out, 2);
}

#[tokio::test]
async fn the_example_transaction_file_is_valid() {
    // Nothing listens on port 9: a valid file gets as far as the probe (exit 1), an invalid one stops at 64.
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/transactions.yaml"
    );
    let out = check(&["--json", "--transaction", file, "http://127.0.0.1:9/mcp"]).await;
    assert_exit(&out, 1);
    let reports = json_reports(&out);
    let t = &reports[0]["transactions"][0];
    assert_eq!(t["name"], "search-roundtrip");
    assert_eq!(t["reason"], "connect_refused", "{t}");
    assert_eq!(t["steps"].as_array().map(Vec::len), Some(4));
}
