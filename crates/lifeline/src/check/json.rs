//! `--json`: a JSON array with one object per target, in input order. Each object is the serialised
//! `ProbeReport`, plus `drift` when `--snapshot` was given. The schema is documented field by field in
//! docs/check-json.md and is stable: fields are only ever added.

use serde::Serialize;
use serde_json::Value;

use super::snapshot::DriftOutcome;
use super::Outcome;
use lifeline_mcp::schema::Change;

/// The `drift` object.
#[derive(Debug, Serialize)]
struct DriftJson<'a> {
    /// The snapshot file, as given.
    snapshot: String,
    /// Whether the comparison ran (false when the probe listed no tools).
    compared: bool,
    /// The snapshot's schema hash.
    snapshot_hash: &'a str,
    /// The live schema hash, `null` when not compared.
    schema_hash: Option<&'a str>,
    /// True when a change is breaking: this fails the check.
    breaking: bool,
    /// Every change.
    changes: &'a [Change],
    /// Why it was not compared, or a caveat; `null` otherwise.
    note: Option<&'a str>,
}

/// The JSON text (pretty-printed, final newline).
pub(crate) fn render(outcomes: &[Outcome]) -> anyhow::Result<String> {
    let mut items = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let mut value = serde_json::to_value(&o.report)?;
        if let (Some(d), Value::Object(map)) = (&o.drift, &mut value) {
            map.insert("drift".to_owned(), serde_json::to_value(drift(d))?);
        }
        if let (Some(c), Value::Object(map)) = (&o.card, &mut value) {
            let mut card = serde_json::to_value(c)?;
            card["agrees"] = Value::Bool(c.agrees());
            map.insert("card".to_owned(), card);
        }
        items.push(value);
    }
    let mut text = serde_json::to_string_pretty(&Value::Array(items))?;
    text.push('\n');
    Ok(text)
}

fn drift(d: &DriftOutcome) -> DriftJson<'_> {
    DriftJson {
        snapshot: d.path.display().to_string(),
        compared: d.compared(),
        snapshot_hash: &d.snapshot_hash,
        schema_hash: d.schema_hash.as_deref(),
        breaking: d.is_breaking(),
        changes: &d.drift.changes,
        note: d.note.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sample_report;
    use lifeline_mcp::schema::{ChangeKind, Drift};
    use serde_json::json;

    fn outcome() -> Outcome {
        Outcome {
            report: sample_report(),
            drift: None,
            snapshot_update: None,
            verdict_fails: false,
            transactions_fail: false,
            fail_on_degraded: false,
            card: None,
        }
    }

    #[test]
    fn one_object_per_target_with_the_documented_keys() {
        let text = render(&[outcome(), outcome()]).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        let keys: Vec<&str> = arr[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // The order and set of keys docs/check-json.md documents; tools are never serialised.
        assert_eq!(
            keys,
            [
                "url",
                "verdict",
                "reason",
                "failure",
                "era",
                "transport",
                "protocol_version",
                "server_info",
                "capabilities",
                "tools_count",
                "schema_hash",
                "timings_ms",
                "tls",
                "auth",
                "tool_call",
                "warnings",
                "started_at"
            ]
        );
        assert_eq!(arr[0]["verdict"], "healthy");
        assert_eq!(arr[0]["reason"], Value::Null);
        assert_eq!(arr[0]["era"], "legacy");
        assert_eq!(arr[0]["transport"], "streamable_http");
        assert_eq!(arr[0]["timings_ms"]["total"], 6.3);
        assert_eq!(
            arr[0]["server_info"],
            json!({"name": "everything", "version": "2.0.0"})
        );
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn drift_is_added_when_a_snapshot_is_used() {
        let mut o = outcome();
        o.drift = Some(DriftOutcome {
            path: "s.json".into(),
            snapshot_hash: "a".repeat(64),
            schema_hash: Some("b".repeat(64)),
            drift: Drift {
                changes: vec![Change {
                    tool: "echo".into(),
                    path: String::new(),
                    kind: ChangeKind::Breaking,
                    description: "tool removed".into(),
                }],
            },
            note: None,
        });
        let v: Value = serde_json::from_str(&render(&[o]).unwrap()).unwrap();
        assert_eq!(
            v[0]["drift"],
            json!({
                "snapshot": "s.json",
                "compared": true,
                "snapshot_hash": "a".repeat(64),
                "schema_hash": "b".repeat(64),
                "breaking": true,
                "changes": [{"tool": "echo", "path": "", "kind": "breaking", "description": "tool removed"}],
                "note": null,
            })
        );
    }
}
