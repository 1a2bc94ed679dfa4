//! Drift between two tool lists: every change, classified additive or breaking from the point of view of a client
//! that was written against the old list.
//!
//! The rule of thumb: a change is *breaking* when a call that worked before can now fail (input side), or when a
//! field a client read before can now be missing or of another type (output side). Everything else is
//! *additive*, including edits to descriptions and annotations, which change what a model sees but not what it
//! may send.
//!
//! | Change | Kind |
//! |---|---|
//! | new tool | additive |
//! | tool removed | breaking |
//! | `description`, `title`, `examples`, `default`, `deprecated`, `$comment` changed | additive |
//! | annotation added, removed or changed | additive |
//! | input: new optional property | additive |
//! | input: new required property, or an existing property newly required | breaking |
//! | input: property no longer required | additive |
//! | input or output: property removed | breaking |
//! | input or output: `type` changed (any depth, array `items` too) | breaking |
//! | input: `type` widened (new set ⊇ old, or the constraint dropped) | additive |
//! | output: `type` narrowed (new set ⊆ old) | additive |
//! | enum values removed / added | breaking / additive |
//! | input: `enum` introduced / dropped | breaking / additive |
//! | input: `minimum`, `maxLength`, … tightened / loosened or dropped | breaking / additive |
//! | input: `additionalProperties` becomes `false` | breaking |
//! | `outputSchema` added / removed | additive / breaking |
//! | output: property removed from `required` | breaking |
//! | any other keyword changed (`pattern`, `format`, `anyOf`, `$ref`, …) | additive, described as "review" |
//!
//! Paths are JSON Pointers (RFC 6901) from the tool object, e.g. `/inputSchema/properties/query/type`; a change
//! to a whole tool has the empty path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

use super::{canonical_tools, tool_name};

/// Whether a change can break an existing client. Serialised `additive` / `breaking`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ChangeKind {
    /// Existing clients keep working.
    Additive,
    /// A call or a read that worked before can now fail.
    Breaking,
}

impl ChangeKind {
    /// The stable label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One difference between the old and the new tool list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The tool's name.
    pub tool: String,
    /// JSON Pointer (RFC 6901) inside the tool, `""` for the whole tool.
    pub path: String,
    /// Additive or breaking.
    pub kind: ChangeKind,
    /// One human sentence, e.g. "type changed from string to integer".
    pub description: String,
}

/// Every change between two tool lists, ordered by tool name and then by position in the tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The changes; empty when the lists are equivalent (same [`super::schema_hash`]).
    pub changes: Vec<Change>,
}

impl Drift {
    /// True when at least one change is breaking.
    pub fn is_breaking(&self) -> bool {
        self.changes.iter().any(|c| c.kind == ChangeKind::Breaking)
    }

    /// How many changes are of `kind`.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }
}

/// Compares `old` (e.g. a snapshot's tools) with `new` (what the server lists now). Both are raw or canonical
/// tool objects in any order; fields outside the canonical ones are ignored.
pub fn diff(old: &[Value], new: &[Value]) -> Drift {
    let old = by_name(old);
    let new = by_name(new);
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Walk::default();
    for name in names {
        out.tool = name.clone();
        match (old.get(name), new.get(name)) {
            (Some(_), None) => out.push("", ChangeKind::Breaking, "tool removed".to_owned()),
            (None, Some(_)) => out.push("", ChangeKind::Additive, "new tool".to_owned()),
            (Some(o), Some(n)) if o != n => diff_tool(o, n, &mut out),
            _ => {}
        }
    }
    Drift {
        changes: out.changes,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `inputSchema`: what the client sends.
    Input,
    /// `outputSchema`: what the client reads.
    Output,
}

#[derive(Default)]
struct Walk {
    tool: String,
    changes: Vec<Change>,
}

impl Walk {
    fn push(&mut self, path: &str, kind: ChangeKind, description: String) {
        self.changes.push(Change {
            tool: self.tool.clone(),
            path: path.to_owned(),
            kind,
            description,
        });
    }
}

/// Keywords whose changes only affect what a reader is told.
const DOC_KEYWORDS: [&str; 6] = [
    "description",
    "title",
    "examples",
    "default",
    "deprecated",
    "$comment",
];
/// Lower bounds: raising one tightens an input.
const LOWER_BOUNDS: [&str; 6] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "minContains",
];
/// Upper bounds: lowering one tightens an input.
const UPPER_BOUNDS: [&str; 6] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "maxContains",
];
/// Keywords the walk handles itself.
const STRUCTURAL: [&str; 8] = [
    "type",
    "enum",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "$defs",
    "definitions",
];

/// The canonical tools by name. Canonicalising drops fields outside the contract and sorts keys, so equal
/// tools compare equal whatever their key order. A duplicate name (which a correct server never sends) keeps
/// its first definition in canonical order.
fn by_name(tools: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for tool in canonical_tools(tools) {
        out.entry(tool_name(&tool).to_owned()).or_insert(tool);
    }
    out
}

fn diff_tool(old: &Value, new: &Value, out: &mut Walk) {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);

    if o.get("description") != n.get("description") {
        out.push(
            "/description",
            ChangeKind::Additive,
            describe_change("description", o.get("description"), n.get("description")),
        );
    }
    diff_annotations(o.get("annotations"), n.get("annotations"), out);

    let empty_schema = Value::Object(Map::new());
    diff_schema(
        o.get("inputSchema").unwrap_or(&empty_schema),
        n.get("inputSchema").unwrap_or(&empty_schema),
        "/inputSchema",
        Side::Input,
        out,
    );
    match (o.get("outputSchema"), n.get("outputSchema")) {
        (None, Some(_)) => out.push(
            "/outputSchema",
            ChangeKind::Additive,
            "outputSchema added".to_owned(),
        ),
        (Some(_), None) => out.push(
            "/outputSchema",
            ChangeKind::Breaking,
            "outputSchema removed: clients reading structuredContent lose its contract".to_owned(),
        ),
        (Some(a), Some(b)) => diff_schema(a, b, "/outputSchema", Side::Output, out),
        (None, None) => {}
    }
}

fn diff_annotations(old: Option<&Value>, new: Option<&Value>, out: &mut Walk) {
    if old == new {
        return;
    }
    match (
        old.and_then(Value::as_object),
        new.and_then(Value::as_object),
    ) {
        (Some(o), Some(n)) => {
            let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for key in keys {
                if o.get(key) != n.get(key) {
                    let path = format!("/annotations/{}", escape(key));
                    out.push(
                        &path,
                        ChangeKind::Additive,
                        describe_change(&format!("annotation `{key}`"), o.get(key), n.get(key)),
                    );
                }
            }
        }
        _ => out.push(
            "/annotations",
            ChangeKind::Additive,
            describe_change("annotations", old, new),
        ),
    }
}

fn diff_schema(old: &Value, new: &Value, path: &str, side: Side, out: &mut Walk) {
    if old == new {
        return;
    }
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        // Boolean schemas (`true`/`false`) or garbage: no finer classification is honest.
        out.push(
            path,
            ChangeKind::Breaking,
            format!("schema changed from {} to {}", short(old), short(new)),
        );
        return;
    };

    diff_type(o, n, path, side, out);
    diff_enum(o, n, path, side, out);
    diff_properties(o, n, path, side, out);
    diff_items(
        o.get("items"),
        n.get("items"),
        &format!("{path}/items"),
        side,
        out,
    );
    diff_additional(
        o.get("additionalProperties"),
        n.get("additionalProperties"),
        path,
        side,
        out,
    );
    for defs in ["$defs", "definitions"] {
        if let (Some(od), Some(nd)) = (
            o.get(defs).and_then(Value::as_object),
            n.get(defs).and_then(Value::as_object),
        ) {
            let keys: BTreeSet<&String> = od.keys().chain(nd.keys()).collect();
            for key in keys {
                let p = format!("{path}/{defs}/{}", escape(key));
                match (od.get(key), nd.get(key)) {
                    (Some(a), Some(b)) => diff_schema(a, b, &p, side, out),
                    (a, b) => out.push(
                        &p,
                        ChangeKind::Additive,
                        describe_change("definition", a, b),
                    ),
                }
            }
        } else if o.get(defs) != n.get(defs) {
            out.push(
                &format!("{path}/{defs}"),
                ChangeKind::Additive,
                describe_change(&format!("`{defs}`"), o.get(defs), n.get(defs)),
            );
        }
    }

    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for key in keys {
        let (a, b) = (o.get(key), n.get(key));
        if a == b || STRUCTURAL.contains(&key.as_str()) {
            continue;
        }
        let p = format!("{path}/{}", escape(key));
        let kind = if DOC_KEYWORDS.contains(&key.as_str()) || side == Side::Output {
            ChangeKind::Additive
        } else if LOWER_BOUNDS.contains(&key.as_str()) {
            bound_kind(a, b, |old, new| new > old)
        } else if UPPER_BOUNDS.contains(&key.as_str()) {
            bound_kind(a, b, |old, new| new < old)
        } else {
            ChangeKind::Additive
        };
        let mut description = describe_change(&format!("`{key}`"), a, b);
        if !DOC_KEYWORDS.contains(&key.as_str())
            && !LOWER_BOUNDS.contains(&key.as_str())
            && !UPPER_BOUNDS.contains(&key.as_str())
        {
            description.push_str(" (not classified; review it)");
        }
        out.push(&p, kind, description);
    }
}

/// Input bound change: breaking when newly present or tightened (`tighter(old, new)`), additive otherwise.
fn bound_kind(
    old: Option<&Value>,
    new: Option<&Value>,
    tighter: impl Fn(f64, f64) -> bool,
) -> ChangeKind {
    match (old.and_then(Value::as_f64), new.and_then(Value::as_f64)) {
        (_, None) => ChangeKind::Additive,
        (None, Some(_)) => ChangeKind::Breaking,
        (Some(a), Some(b)) if tighter(a, b) => ChangeKind::Breaking,
        _ => ChangeKind::Additive,
    }
}

fn diff_type(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    path: &str,
    side: Side,
    out: &mut Walk,
) {
    let (a, b) = (types(o.get("type")), types(n.get("type")));
    if a == b {
        return;
    }
    let kind = match (side, &a, &b) {
        (Side::Input, _, None) => ChangeKind::Additive,
        (Side::Input, Some(a), Some(b)) if b.is_superset(a) => ChangeKind::Additive,
        (Side::Output, None, Some(_)) => ChangeKind::Additive,
        (Side::Output, Some(a), Some(b)) if b.is_subset(a) => ChangeKind::Additive,
        _ => ChangeKind::Breaking,
    };
    let show = |t: &Option<BTreeSet<String>>| match t {
        Some(set) => set.iter().cloned().collect::<Vec<_>>().join("|"),
        None => "any".to_owned(),
    };
    out.push(
        &format!("{path}/type"),
        kind,
        format!("type changed from {} to {}", show(&a), show(&b)),
    );
}

fn types(t: Option<&Value>) -> Option<BTreeSet<String>> {
    match t? {
        Value::String(s) => Some(BTreeSet::from([s.clone()])),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
        ),
        other => Some(BTreeSet::from([other.to_string()])),
    }
}

fn diff_enum(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    path: &str,
    side: Side,
    out: &mut Walk,
) {
    let p = format!("{path}/enum");
    match (
        o.get("enum").and_then(Value::as_array),
        n.get("enum").and_then(Value::as_array),
    ) {
        (Some(a), Some(b)) => {
            let a: BTreeSet<String> = a.iter().map(Value::to_string).collect();
            let b: BTreeSet<String> = b.iter().map(Value::to_string).collect();
            let removed: Vec<&str> = a.difference(&b).map(String::as_str).collect();
            let added: Vec<&str> = b.difference(&a).map(String::as_str).collect();
            if !removed.is_empty() {
                out.push(
                    &p,
                    ChangeKind::Breaking,
                    format!("enum values removed: {}", removed.join(", ")),
                );
            }
            if !added.is_empty() {
                out.push(
                    &p,
                    ChangeKind::Additive,
                    format!("enum values added: {}", added.join(", ")),
                );
            }
        }
        (None, Some(_)) if o.get("enum").is_none() => {
            let kind = if side == Side::Input {
                ChangeKind::Breaking
            } else {
                ChangeKind::Additive
            };
            out.push(
                &p,
                kind,
                "enum introduced: values are now restricted".to_owned(),
            );
        }
        (Some(_), None) => out.push(
            &p,
            ChangeKind::Additive,
            "enum dropped: any value of the type is allowed".to_owned(),
        ),
        _ if o.get("enum") != n.get("enum") => {
            out.push(
                &p,
                ChangeKind::Additive,
                describe_change("`enum`", o.get("enum"), n.get("enum"))
                    + " (not classified; review it)",
            );
        }
        _ => {}
    }
}

fn diff_properties(
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    path: &str,
    side: Side,
    out: &mut Walk,
) {
    let empty = Map::new();
    let op = o
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let np = n
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let oreq = required(o);
    let nreq = required(n);
    let names: BTreeSet<&str> = op
        .keys()
        .chain(np.keys())
        .map(String::as_str)
        .chain(oreq.iter().copied())
        .chain(nreq.iter().copied())
        .collect();
    for name in names {
        let p = format!("{path}/properties/{}", escape(name));
        let (was_req, is_req) = (oreq.contains(name), nreq.contains(name));
        match (op.get(name), np.get(name)) {
            (Some(_), None) => out.push(
                &p,
                ChangeKind::Breaking,
                format!("property `{name}` removed"),
            ),
            (None, Some(_)) => match side {
                Side::Input if is_req && !was_req => {
                    out.push(
                        &p,
                        ChangeKind::Breaking,
                        format!("new required property `{name}`"),
                    );
                }
                Side::Input if is_req => {}
                Side::Input => out.push(
                    &p,
                    ChangeKind::Additive,
                    format!("new optional property `{name}`"),
                ),
                Side::Output => {
                    out.push(&p, ChangeKind::Additive, format!("new property `{name}`"))
                }
            },
            (a, b) => {
                if let (Some(a), Some(b)) = (a, b) {
                    diff_schema(a, b, &p, side, out);
                }
                let rp = format!("{path}/required");
                match (side, was_req, is_req) {
                    (Side::Input, false, true) => out.push(
                        &rp,
                        ChangeKind::Breaking,
                        format!("property `{name}` is now required"),
                    ),
                    (Side::Input, true, false) => out.push(
                        &rp,
                        ChangeKind::Additive,
                        format!("property `{name}` is no longer required"),
                    ),
                    (Side::Output, true, false) => out.push(
                        &rp,
                        ChangeKind::Breaking,
                        format!(
                            "property `{name}` is no longer guaranteed (removed from required)"
                        ),
                    ),
                    (Side::Output, false, true) => out.push(
                        &rp,
                        ChangeKind::Additive,
                        format!("property `{name}` is now always present"),
                    ),
                    _ => {}
                }
            }
        }
    }
}

fn required(schema: &Map<String, Value>) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn diff_items(old: Option<&Value>, new: Option<&Value>, path: &str, side: Side, out: &mut Walk) {
    if old == new {
        return;
    }
    match (old, new) {
        (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) => {
            diff_schema(a, b, path, side, out)
        }
        (Some(_), None) => {
            let kind = if side == Side::Input {
                ChangeKind::Additive
            } else {
                ChangeKind::Breaking
            };
            out.push(
                path,
                kind,
                "item schema dropped: items may be anything".to_owned(),
            );
        }
        (None, Some(_)) => {
            let kind = if side == Side::Input {
                ChangeKind::Breaking
            } else {
                ChangeKind::Additive
            };
            out.push(path, kind, "item schema introduced".to_owned());
        }
        (a, b) => out.push(
            path,
            ChangeKind::Breaking,
            describe_change("item schema", a, b),
        ),
    }
}

fn diff_additional(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &str,
    side: Side,
    out: &mut Walk,
) {
    if old == new {
        return;
    }
    let p = format!("{path}/additionalProperties");
    match (old, new) {
        (Some(a @ Value::Object(_)), Some(b @ Value::Object(_))) => {
            diff_schema(a, b, &p, side, out)
        }
        (_, Some(Value::Bool(false))) if side == Side::Input => {
            out.push(
                &p,
                ChangeKind::Breaking,
                "additional properties are no longer accepted".to_owned(),
            );
        }
        (a, b) => out.push(
            &p,
            ChangeKind::Additive,
            describe_change("`additionalProperties`", a, b),
        ),
    }
}

/// "X added: v" / "X removed (was v)" / "X changed from a to b", values shortened.
fn describe_change(what: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    match (old, new) {
        (None, Some(b)) => format!("{what} added: {}", short(b)),
        (Some(a), None) => format!("{what} removed (was {})", short(a)),
        (Some(a), Some(b)) => format!("{what} changed from {} to {}", short(a), short(b)),
        (None, None) => format!("{what} unchanged"),
    }
}

/// A value for a sentence: compact JSON cut at 60 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 60 {
        s
    } else {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;
