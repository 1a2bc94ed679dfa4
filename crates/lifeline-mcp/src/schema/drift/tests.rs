//! Table-driven tests of the drift classification: one row per rule in the table of `super`.

use super::*;
use serde_json::json;

fn tool(input: Value) -> Value {
    json!({"name": "t", "description": "d", "inputSchema": input})
}

fn obj(props: Value, req: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": req})
}

/// (case, old tools, new tools, expected [(path, kind, description fragment)]).
type Case = (
    &'static str,
    Vec<Value>,
    Vec<Value>,
    Vec<(&'static str, ChangeKind, &'static str)>,
);

fn cases() -> Vec<Case> {
    use ChangeKind::{Additive as A, Breaking as B};
    let base = tool(obj(json!({"q": {"type": "string"}}), &["q"]));
    vec![
        ("identical", vec![base.clone()], vec![base.clone()], vec![]),
        (
            "new tool",
            vec![base.clone()],
            vec![base.clone(), json!({"name": "u"})],
            vec![("", A, "new tool")],
        ),
        (
            "removed tool",
            vec![base.clone(), json!({"name": "u"})],
            vec![base.clone()],
            vec![("", B, "tool removed")],
        ),
        (
            "new optional property",
            vec![base.clone()],
            vec![tool(obj(
                json!({"q": {"type": "string"}, "limit": {"type": "integer"}}),
                &["q"],
            ))],
            vec![(
                "/inputSchema/properties/limit",
                A,
                "new optional property `limit`",
            )],
        ),
        (
            "new required property",
            vec![base.clone()],
            vec![tool(obj(
                json!({"q": {"type": "string"}, "limit": {"type": "integer"}}),
                &["q", "limit"],
            ))],
            vec![(
                "/inputSchema/properties/limit",
                B,
                "new required property `limit`",
            )],
        ),
        (
            "existing property newly required",
            vec![tool(obj(
                json!({"q": {"type": "string"}, "l": {"type": "integer"}}),
                &["q"],
            ))],
            vec![tool(obj(
                json!({"q": {"type": "string"}, "l": {"type": "integer"}}),
                &["q", "l"],
            ))],
            vec![("/inputSchema/required", B, "`l` is now required")],
        ),
        (
            "property no longer required",
            vec![base.clone()],
            vec![tool(obj(json!({"q": {"type": "string"}}), &[]))],
            vec![("/inputSchema/required", A, "`q` is no longer required")],
        ),
        (
            "removed property",
            vec![tool(obj(
                json!({"q": {"type": "string"}, "l": {"type": "integer"}}),
                &["q"],
            ))],
            vec![base.clone()],
            vec![("/inputSchema/properties/l", B, "property `l` removed")],
        ),
        (
            "changed type",
            vec![base.clone()],
            vec![tool(obj(json!({"q": {"type": "integer"}}), &["q"]))],
            vec![(
                "/inputSchema/properties/q/type",
                B,
                "from string to integer",
            )],
        ),
        (
            "nested changed type",
            vec![tool(obj(
                json!({"f": {"type": "object", "properties": {"x": {"type": "string"}}}}),
                &[],
            ))],
            vec![tool(obj(
                json!({"f": {"type": "object", "properties": {"x": {"type": "boolean"}}}}),
                &[],
            ))],
            vec![(
                "/inputSchema/properties/f/properties/x/type",
                B,
                "from string to boolean",
            )],
        ),
        (
            "array items changed type",
            vec![tool(obj(
                json!({"ids": {"type": "array", "items": {"type": "string"}}}),
                &[],
            ))],
            vec![tool(obj(
                json!({"ids": {"type": "array", "items": {"type": "integer"}}}),
                &[],
            ))],
            vec![(
                "/inputSchema/properties/ids/items/type",
                B,
                "from string to integer",
            )],
        ),
        (
            "input type widened",
            vec![base.clone()],
            vec![tool(obj(
                json!({"q": {"type": ["string", "null"]}}),
                &["q"],
            ))],
            vec![(
                "/inputSchema/properties/q/type",
                A,
                "from string to null|string",
            )],
        ),
        (
            "enum values removed and added",
            vec![tool(obj(
                json!({"m": {"type": "string", "enum": ["a", "b"]}}),
                &[],
            ))],
            vec![tool(obj(
                json!({"m": {"type": "string", "enum": ["b", "c"]}}),
                &[],
            ))],
            vec![
                ("/inputSchema/properties/m/enum", B, "removed: \"a\""),
                ("/inputSchema/properties/m/enum", A, "added: \"c\""),
            ],
        ),
        (
            "enum introduced on input",
            vec![tool(obj(json!({"m": {"type": "string"}}), &[]))],
            vec![tool(obj(
                json!({"m": {"type": "string", "enum": ["x"]}}),
                &[],
            ))],
            vec![("/inputSchema/properties/m/enum", B, "enum introduced")],
        ),
        (
            "description and annotation changes",
            vec![json!({"name": "t", "description": "old", "annotations": {"readOnlyHint": true}})],
            vec![
                json!({"name": "t", "description": "new", "annotations": {"readOnlyHint": false, "title": "T"}}),
            ],
            vec![
                (
                    "/description",
                    A,
                    "description changed from \"old\" to \"new\"",
                ),
                ("/annotations/readOnlyHint", A, "changed from true to false"),
                ("/annotations/title", A, "added: \"T\""),
            ],
        ),
        (
            "property description change",
            vec![base.clone()],
            vec![tool(obj(
                json!({"q": {"type": "string", "description": "The query."}}),
                &["q"],
            ))],
            vec![("/inputSchema/properties/q/description", A, "added")],
        ),
        (
            "input bound tightened and loosened",
            vec![tool(obj(
                json!({"q": {"type": "string", "maxLength": 100, "minLength": 2}}),
                &[],
            ))],
            vec![tool(obj(
                json!({"q": {"type": "string", "maxLength": 50, "minLength": 1}}),
                &[],
            ))],
            vec![
                ("/inputSchema/properties/q/maxLength", B, "from 100 to 50"),
                ("/inputSchema/properties/q/minLength", A, "from 2 to 1"),
            ],
        ),
        (
            "unclassified keyword",
            vec![tool(obj(json!({"q": {"type": "string"}}), &[]))],
            vec![tool(obj(
                json!({"q": {"type": "string", "pattern": "^a"}}),
                &[],
            ))],
            vec![("/inputSchema/properties/q/pattern", A, "review it")],
        ),
        (
            "additionalProperties closed",
            vec![tool(obj(json!({}), &[]))],
            vec![tool(
                json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
            )],
            vec![("/inputSchema/additionalProperties", B, "no longer accepted")],
        ),
        (
            "outputSchema property removed and type changed",
            vec![
                json!({"name": "t", "outputSchema": obj(json!({"a": {"type": "number"}, "b": {"type": "string"}}), &[])}),
            ],
            vec![
                json!({"name": "t", "outputSchema": obj(json!({"a": {"type": "string"}, "c": {"type": "string"}}), &[])}),
            ],
            vec![
                (
                    "/outputSchema/properties/a/type",
                    B,
                    "from number to string",
                ),
                ("/outputSchema/properties/b", B, "property `b` removed"),
                ("/outputSchema/properties/c", A, "new property `c`"),
            ],
        ),
        (
            "outputSchema no longer guarantees a property",
            vec![
                json!({"name": "t", "outputSchema": obj(json!({"a": {"type": "number"}}), &["a"])}),
            ],
            vec![json!({"name": "t", "outputSchema": obj(json!({"a": {"type": "number"}}), &[])})],
            vec![("/outputSchema/required", B, "no longer guaranteed")],
        ),
        (
            "outputSchema added",
            vec![json!({"name": "t"})],
            vec![json!({"name": "t", "outputSchema": {"type": "object"}})],
            vec![("/outputSchema", A, "outputSchema added")],
        ),
        (
            "outputSchema removed",
            vec![json!({"name": "t", "outputSchema": {"type": "object"}})],
            vec![json!({"name": "t"})],
            vec![("/outputSchema", B, "outputSchema removed")],
        ),
        (
            "output type narrowed",
            vec![json!({"name": "t", "outputSchema": {"type": ["string", "null"]}})],
            vec![json!({"name": "t", "outputSchema": {"type": "string"}})],
            vec![("/outputSchema/type", A, "from null|string to string")],
        ),
        (
            "property name needing pointer escapes",
            vec![tool(obj(json!({"a/b~c": {"type": "string"}}), &[]))],
            vec![tool(obj(json!({}), &[]))],
            vec![("/inputSchema/properties/a~1b~0c", B, "removed")],
        ),
    ]
}

#[test]
fn classifies_every_documented_change() {
    for (case, old, new, expected) in cases() {
        let drift = diff(&old, &new);
        let got: Vec<(&str, ChangeKind, &str)> = drift
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.kind, c.description.as_str()))
            .collect();
        assert_eq!(got.len(), expected.len(), "{case}: {got:#?}");
        for ((path, kind, desc), (epath, ekind, efrag)) in got.iter().zip(&expected) {
            assert_eq!((path, kind), (epath, ekind), "{case}: {got:#?}");
            assert!(desc.contains(efrag), "{case}: {desc:?} lacks {efrag:?}");
        }
        let expect_breaking = expected.iter().any(|(_, k, _)| *k == ChangeKind::Breaking);
        assert_eq!(drift.is_breaking(), expect_breaking, "{case}");
        assert!(
            drift.changes.iter().all(|c| c.tool == "t" || c.tool == "u"),
            "{case}"
        );
    }
}

#[test]
fn order_and_key_order_do_not_matter() {
    let a = [
        json!({"name": "a", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}),
        json!({"name": "b"}),
    ];
    let b = [
        json!({"name": "b"}),
        json!({"inputSchema": {"properties": {"x": {"type": "string"}}, "type": "object"}, "name": "a"}),
    ];
    assert_eq!(diff(&a, &b), Drift::default());
}

#[test]
fn changes_are_ordered_by_tool_name() {
    let drift = diff(
        &[json!({"name": "z"}), json!({"name": "b"})],
        &[json!({"name": "a"})],
    );
    let tools: Vec<&str> = drift.changes.iter().map(|c| c.tool.as_str()).collect();
    assert_eq!(tools, ["a", "b", "z"]);
    assert_eq!(
        (
            drift.count(ChangeKind::Breaking),
            drift.count(ChangeKind::Additive)
        ),
        (2, 1)
    );
}

#[test]
fn drift_serialises_with_stable_labels() {
    let drift = diff(&[], &[json!({"name": "a"})]);
    assert_eq!(
        serde_json::to_value(&drift).unwrap(),
        json!({"changes": [{"tool": "a", "path": "", "kind": "additive", "description": "new tool"}]})
    );
}
