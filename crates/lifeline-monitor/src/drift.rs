//! Tool-list drift between two probes, summarised for events and alerts. The classification itself is
//! `lifeline_mcp::schema::diff` (shared with `lifeline check --snapshot`); this module groups its changes by tool:
//! added, removed, changed, and whether any change is breaking.

use std::collections::BTreeSet;

use lifeline_mcp::schema::{self, Change, ChangeKind};
use serde::Serialize;
use serde_json::Value;

/// The difference between two tool lists, names sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolDiff {
    /// Tools only in the new list.
    pub added: Vec<String>,
    /// Tools only in the old list.
    pub removed: Vec<String>,
    /// Tools in both whose definition differs.
    pub changed: Vec<String>,
    /// True when a client written against the old list may fail against the new one.
    pub breaking: bool,
    /// Every change, as `lifeline_mcp::schema::diff` reports it.
    pub changes: Vec<Change>,
}

impl ToolDiff {
    /// `breaking` or `additive`.
    pub fn classification(&self) -> &'static str {
        if self.breaking {
            ChangeKind::Breaking.as_str()
        } else {
            ChangeKind::Additive.as_str()
        }
    }
}

/// Compares two tool lists (each a `tools/list` `tools` array).
pub fn diff_tools(old: &[Value], new: &[Value]) -> ToolDiff {
    let drift = schema::diff(old, new);
    let mut d = ToolDiff {
        breaking: drift.is_breaking(),
        ..ToolDiff::default()
    };
    let mut changed = BTreeSet::new();
    for c in &drift.changes {
        match (c.path.as_str(), c.kind) {
            ("", ChangeKind::Breaking) if c.description == "tool removed" => {
                d.removed.push(c.tool.clone())
            }
            ("", ChangeKind::Additive) if c.description == "new tool" => {
                d.added.push(c.tool.clone())
            }
            _ => {
                changed.insert(c.tool.clone());
            }
        }
    }
    d.changed = changed.into_iter().collect();
    d.changes = drift.changes;
    d
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(name: &str, props: Value, req: &[&str]) -> Value {
        json!({"name": name, "description": "d", "inputSchema": {"type": "object", "properties": props, "required": req}})
    }

    #[test]
    fn table() {
        let echo = tool("echo", json!({"message": {"type": "string"}}), &["message"]);
        // (name, old, new, added, removed, changed, breaking)
        type Case = (
            &'static str,
            Vec<Value>,
            Vec<Value>,
            Vec<&'static str>,
            Vec<&'static str>,
            Vec<&'static str>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "same",
                vec![echo.clone()],
                vec![echo.clone()],
                vec![],
                vec![],
                vec![],
                false,
            ),
            (
                "tool added",
                vec![echo.clone()],
                vec![echo.clone(), tool("sum", json!({}), &[])],
                vec!["sum"],
                vec![],
                vec![],
                false,
            ),
            (
                "tool removed",
                vec![echo.clone()],
                vec![],
                vec![],
                vec!["echo"],
                vec![],
                true,
            ),
            (
                "optional property added",
                vec![echo.clone()],
                vec![tool(
                    "echo",
                    json!({"message": {"type": "string"}, "loud": {"type": "boolean"}}),
                    &["message"],
                )],
                vec![],
                vec![],
                vec!["echo"],
                false,
            ),
            (
                "property retyped",
                vec![echo.clone()],
                vec![tool(
                    "echo",
                    json!({"message": {"type": "number"}}),
                    &["message"],
                )],
                vec![],
                vec![],
                vec!["echo"],
                true,
            ),
            (
                "new required property",
                vec![echo.clone()],
                vec![tool(
                    "echo",
                    json!({"message": {"type": "string"}, "to": {"type": "string"}}),
                    &["message", "to"],
                )],
                vec![],
                vec![],
                vec!["echo"],
                true,
            ),
        ];
        for (name, old, new, added, removed, changed, breaking) in cases {
            let d = diff_tools(&old, &new);
            assert_eq!(
                (
                    d.added.iter().map(String::as_str).collect::<Vec<_>>(),
                    d.removed.iter().map(String::as_str).collect::<Vec<_>>(),
                    d.changed.iter().map(String::as_str).collect::<Vec<_>>(),
                    d.breaking
                ),
                (added, removed, changed, breaking),
                "{name}"
            );
        }
    }
}
