use super::*;
use serde_json::json;

const ISSUE_EXAMPLE: &str = r#"
allow_tools: [search, fetch]
transactions:
  - name: search-roundtrip
    interval: 5m
    steps:
      - tool: search
        arguments: { query: "lifeline-canary" }
        expect:
          - 'result.isError == false'
          - 'size(result.structuredContent.items) > 0'
        max_latency: { degraded: 800ms, unhealthy: 5s }
        save: { first_id: 'result.structuredContent.items[0].id' }
      - tool: fetch
        arguments: { id: '${first_id}' }
      - resource: 'file:///status'
      - prompt: greet
        arguments: { name: '${first_id}' }
"#;

#[test]
fn the_issue_example_parses_into_the_model() {
    let set = TransactionSet::from_yaml(ISSUE_EXAMPLE).unwrap();
    assert_eq!(set.allow_tools, ["search", "fetch"]);
    assert!(!set.allow_side_effects);
    let t = &set.transactions[0];
    assert_eq!(t.name, "search-roundtrip");
    assert_eq!(t.interval, Some(Duration::from_secs(300)));
    assert_eq!(t.timeout, DEFAULT_TRANSACTION_TIMEOUT);
    assert_eq!(t.steps.len(), 4);
    let s = &t.steps[0];
    assert_eq!(
        s.action,
        Action::Tool {
            name: "search".into(),
            arguments: json!({"query": "lifeline-canary"})
        }
    );
    assert_eq!(s.expect.len(), 2);
    assert_eq!(
        s.expect[1].source(),
        "size(result.structuredContent.items) > 0"
    );
    assert_eq!(s.max_latency.degraded, Some(Duration::from_millis(800)));
    assert_eq!(s.max_latency.unhealthy, Some(Duration::from_secs(5)));
    assert_eq!(s.save[0].0, "first_id");
    assert_eq!(t.steps[2].action.method(), "resources/read");
    assert_eq!(t.steps[3].action.method(), "prompts/get");
    assert_eq!(set.budget(), DEFAULT_TRANSACTION_TIMEOUT);
    // The effective config serialises expressions as their source and durations with units.
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["transactions"][0]["interval"], "5m");
    assert_eq!(
        v["transactions"][0]["steps"][0]["expect"][0],
        "result.isError == false"
    );
    assert_eq!(v["transactions"][0]["steps"][0]["tool"]["name"], "search");
}

#[test]
fn every_problem_is_reported_with_its_field_path() {
    // (file, the expected error lines)
    let cases: &[(&str, &[&str])] = &[
        (
            "transactions: [{name: t, steps: [{tool: delete_all}]}]",
            &["transactions[0].steps[0].tool: the safety gate refuses \"delete_all\": list it in allow_tools (and set \
               allow_side_effects: true unless the tool declares readOnlyHint: true)"],
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: t, steps: [{tool: a, resource: 'x://y'}]}]",
            &["transactions[0].steps[0]: must have exactly one of tool, resource, prompt"],
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: t, steps: [{tool: a, arguments: {id: '${later}'}}, {tool: a, save: {later: 'result'}}]}]",
            &["transactions[0].steps[0].arguments.id: ${later} is not saved by an earlier step of this transaction"],
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: 'bad name', timeout: soon, steps: []}]",
            &[
                "transactions[0].name: \"bad name\" must be 1 to 64 of A-Z a-z 0-9 _ . -",
                "transactions[0].timeout: \"soon\" is not a duration such as 30s: expected number at 0",
                "transactions[0].steps: must hold 1 to 32 steps, not 0",
            ],
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: t, steps: [{tool: a, expect: ['result.('], max_latency: {degraded: 2s, unhealthy: 1s}, save: {result: 'x'}}]}]",
            &[
                "transactions[0].steps[0].expect[0]: \"result.(\" is not a CEL expression",
                "transactions[0].steps[0].max_latency: degraded must not exceed unhealthy",
                "transactions[0].steps[0].save.result: \"result\" is reserved",
            ],
        ),
        (
            "allow_tools: [a]\ntransactions: [{name: t, steps: [{tool: a}]}, {name: t, steps: [{resource: 'u', arguments: {}}]}]",
            &[
                "transactions[1].name: \"t\" is used twice",
                "transactions[1].steps[0].arguments: a resource step takes no arguments",
            ],
        ),
    ];
    for (file, want) in cases {
        let err = TransactionSet::from_yaml(file).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), want.len(), "{file}: {err}");
        for (got, want) in lines.iter().zip(want.iter()) {
            assert!(got.starts_with(want), "{file}:\n got {got}\nwant {want}");
        }
    }
}

#[test]
fn unknown_keys_are_syntax_errors() {
    let err = TransactionSet::from_yaml("transactions: [{name: t, stepz: []}]").unwrap_err();
    assert!(matches!(err, TransactionFileError::Syntax(_)), "{err}");
    assert!(err.to_string().contains("stepz"), "{err}");
}

#[test]
fn the_gate_needs_both_the_list_and_a_read_only_hint_or_side_effects() {
    let file = "allow_tools: [lookup, write]\ntransactions: [{name: r, steps: [{tool: lookup}]}, {name: w, steps: [{tool: write}]}]";
    let mut set = TransactionSet::from_yaml(file).unwrap();
    let tools = [
        json!({"name": "lookup", "annotations": {"readOnlyHint": true}}),
        json!({"name": "write", "annotations": {"readOnlyHint": false}}),
    ];
    assert_eq!(set.gate(&set.transactions[0], &tools), Ok(()));
    let refused = set.gate(&set.transactions[1], &tools).unwrap_err();
    assert!(
        refused.contains("does not declare readOnlyHint: true"),
        "{refused}"
    );
    // A tool that is not listed at all has no hint either.
    assert!(set.gate(&set.transactions[0], &[]).is_err());
    set.allow_side_effects = true;
    assert_eq!(set.gate(&set.transactions[1], &tools), Ok(()));
    // The list is checked again at run time (a set built in code without validate).
    set.allow_tools.retain(|t| t != "write");
    assert!(set
        .gate(&set.transactions[1], &tools)
        .unwrap_err()
        .contains("allow_tools"));
}
