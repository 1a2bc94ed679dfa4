//! Tool-schema canonical form, hash, snapshot file and drift.
//!
//! A server's tool list is reduced to the fields a client depends on (2025-11-25 `server/tools` §Tool:
//! `name`, `description`, `inputSchema`, `outputSchema`, `annotations`; `title`, `icons`, `execution` and
//! `_meta` are left out), written as *canonical JSON* and hashed:
//!
//! - object keys sorted by Unicode code point (byte order of their UTF-8), recursively; arrays keep their order;
//! - a field that is absent or `null` is omitted;
//! - a number with an integral value that fits 2^53 is written as an integer (`1.0` → `1`), so SDKs that print
//!   numbers differently hash alike;
//! - compact output (no whitespace), UTF-8.
//!
//! [`schema_hash`] is the lowercase hex SHA-256 of the canonical JSON array of the tools, sorted by name. It does
//! not depend on the order the server lists its tools or the order of keys in its JSON.
//!
//! A [`Snapshot`] is that canonical list written to a file (`lifeline check --update-snapshot`); [`diff`]
//! compares two tool lists and classifies every change as additive or breaking (see `drift`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

mod drift;

pub use drift::{diff, Change, ChangeKind, Drift};

/// The snapshot file format this version writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The tool fields that take part in the canonical form, the hash and the drift.
pub const CANONICAL_FIELDS: [&str; 5] = [
    "name",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// A tool-schema snapshot: the file `--update-snapshot` writes and `--snapshot` reads.
///
/// JSON shape: `{"format": 1, "schema_hash": "<64 hex>", "tools": [<canonical tool>, …]}` with the tools sorted by
/// name. `tools` is authoritative: [`Snapshot::parse`] recomputes `schema_hash` from it, so a hand-edited file
/// never carries a stale hash into a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: u32,
    /// [`schema_hash`] of `tools`.
    pub schema_hash: String,
    /// The canonical tools (see [`canonical_tool`]), sorted by name.
    pub tools: Vec<Value>,
}

/// Why a snapshot file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON, or not the snapshot shape.
    #[error("not a Lifeline tool snapshot: {0}")]
    Invalid(String),
    /// A `format` this version does not know (written by a newer Lifeline).
    #[error("snapshot format {0} is not supported (this Lifeline reads format {SNAPSHOT_FORMAT})")]
    UnsupportedFormat(u64),
}

impl SnapshotError {
    /// A bounded label for logs and metrics: `invalid` or `unsupported_format`.
    pub fn reason(&self) -> &'static str {
        match self {
            SnapshotError::Invalid(_) => "invalid",
            SnapshotError::UnsupportedFormat(_) => "unsupported_format",
        }
    }
}

impl Snapshot {
    /// The snapshot of `tools` (as listed by `tools/list`, any order).
    pub fn from_tools(tools: &[Value]) -> Snapshot {
        let tools = canonical_tools(tools);
        Snapshot {
            format: SNAPSHOT_FORMAT,
            schema_hash: hash_canonical(&tools),
            tools,
        }
    }

    /// Parses a snapshot file's text.
    ///
    /// Errors: [`SnapshotError::UnsupportedFormat`] when `format` is not [`SNAPSHOT_FORMAT`] (checked first, so a
    /// newer file says so instead of failing on a field it adds); [`SnapshotError::Invalid`] for anything else
    /// that is not the documented shape, including a tool without a string `name` or two tools with one name.
    pub fn parse(text: &str) -> Result<Snapshot, SnapshotError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SnapshotError::Invalid(e.to_string()))?;
        let format = value
            .get("format")
            .and_then(Value::as_u64)
            .ok_or_else(|| SnapshotError::Invalid("missing numeric `format`".to_owned()))?;
        if format != u64::from(SNAPSHOT_FORMAT) {
            return Err(SnapshotError::UnsupportedFormat(format));
        }
        let raw: Snapshot =
            serde_json::from_value(value).map_err(|e| SnapshotError::Invalid(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, tool) in raw.tools.iter().enumerate() {
            let name = tool.get("name").and_then(Value::as_str).ok_or_else(|| {
                SnapshotError::Invalid(format!("tools[{i}] has no string `name`"))
            })?;
            if !seen.insert(name) {
                return Err(SnapshotError::Invalid(format!(
                    "tools[{i}]: tool `{name}` appears twice"
                )));
            }
        }
        Ok(Snapshot::from_tools(&raw.tools))
    }

    /// The file text: pretty-printed JSON (two-space indent, sorted tool keys, so a `git diff` of two snapshots
    /// reads well) with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| {
            // Unreachable: a struct of a number, a string and JSON values always serialises.
            String::from("{}")
        });
        text.push('\n');
        text
    }
}

/// `value` in canonical form: object keys sorted recursively, integral floats written as integers.
pub fn canonical_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            // The workspace enables serde_json's `preserve_order`, so insertion order is the output order.
            let mut out = Map::with_capacity(map.len());
            for key in keys {
                out.insert(key.clone(), canonical_value(&map[key.as_str()]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        Value::Number(n) => Value::Number(canonical_number(n)),
        other => other.clone(),
    }
}

/// One tool in canonical form: only [`CANONICAL_FIELDS`], absent and `null` fields omitted, keys sorted.
/// A value that is not an object is canonicalised as is.
pub fn canonical_tool(tool: &Value) -> Value {
    let Some(map) = tool.as_object() else {
        return canonical_value(tool);
    };
    let mut kept = Map::new();
    for field in CANONICAL_FIELDS {
        match map.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => {
                kept.insert(field.to_owned(), v.clone());
            }
        }
    }
    canonical_value(&Value::Object(kept))
}

/// The canonical tools, sorted by name (ties, which a correct server never sends, by their canonical JSON).
pub fn canonical_tools(tools: &[Value]) -> Vec<Value> {
    let mut keyed: Vec<(String, String, Value)> = tools
        .iter()
        .map(|tool| {
            let canon = canonical_tool(tool);
            (tool_name(&canon).to_owned(), canon.to_string(), canon)
        })
        .collect();
    keyed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    keyed.into_iter().map(|(_, _, canon)| canon).collect()
}

/// Lowercase hex SHA-256 of the canonical JSON array of `tools` sorted by name (64 characters). The empty list
/// hashes `[]`.
pub fn schema_hash(tools: &[Value]) -> String {
    hash_canonical(&canonical_tools(tools))
}

/// A tool's `name`, or `""` when it has none.
pub(crate) fn tool_name(tool: &Value) -> &str {
    tool.get("name").and_then(Value::as_str).unwrap_or("")
}

fn hash_canonical(canonical: &[Value]) -> String {
    let mut hasher = Sha256::new();
    // `Value`'s Display is compact JSON; the elements are already canonical.
    hasher.update(Value::Array(canonical.to_vec()).to_string().as_bytes());
    hex::encode(hasher.finalize())
}

fn canonical_number(n: &Number) -> Number {
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match n.as_f64() {
        Some(f) if (n.is_f64()) && f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_EXACT => {
            // Exact: |f| <= 2^53 and integral, so the cast loses nothing.
            Number::from(f as i64)
        }
        _ => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn canonical_tool_keeps_only_the_contract_fields_sorted() {
        let tool = json!({
            "name": "search",
            "title": "Search",
            "_meta": {"x": 1},
            "outputSchema": null,
            "inputSchema": {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}},
            "description": "Finds things.",
        });
        assert_eq!(
            canonical_tool(&tool).to_string(),
            r#"{"description":"Finds things.","inputSchema":{"properties":{"q":{"type":"string"}},"required":["q"],"type":"object"},"name":"search"}"#
        );
    }

    #[test]
    fn integral_floats_hash_like_integers() {
        let a = json!([{"name": "t", "inputSchema": {"type": "number", "minimum": 1.0}}]);
        let b = json!([{"name": "t", "inputSchema": {"type": "number", "minimum": 1}}]);
        let c = json!([{"name": "t", "inputSchema": {"type": "number", "minimum": 1.5}}]);
        let (a, b, c) = (
            a.as_array().unwrap(),
            b.as_array().unwrap(),
            c.as_array().unwrap(),
        );
        assert_eq!(schema_hash(a), schema_hash(b));
        assert_ne!(schema_hash(a), schema_hash(c));
    }

    #[test]
    fn hash_of_known_input_is_stable() {
        // Pinned: changing the canonical form changes every user's snapshot hash, which must be deliberate.
        assert_eq!(schema_hash(&[]), hex::encode(Sha256::digest(b"[]")));
        let tools = [
            json!({"name": "b"}),
            json!({"name": "a", "description": "x"}),
        ];
        let expected = hex::encode(Sha256::digest(
            br#"[{"description":"x","name":"a"},{"name":"b"}]"#,
        ));
        assert_eq!(schema_hash(&tools), expected);
        assert_eq!(schema_hash(&tools).len(), 64);
    }

    #[test]
    fn hash_ignores_fields_outside_the_contract() {
        let a = [json!({"name": "a", "title": "One", "inputSchema": {"type": "object"}})];
        let b =
            [json!({"name": "a", "title": "Two", "inputSchema": {"type": "object"}, "_meta": {}})];
        assert_eq!(schema_hash(&a), schema_hash(&b));
    }

    #[test]
    fn snapshot_round_trips_and_recomputes_a_stale_hash() {
        let tools = [
            json!({"name": "z"}),
            json!({"name": "a", "inputSchema": {"type": "object"}}),
        ];
        let snap = Snapshot::from_tools(&tools);
        assert_eq!(snap.format, SNAPSHOT_FORMAT);
        assert_eq!(snap.schema_hash, schema_hash(&tools));
        assert_eq!(tool_name(&snap.tools[0]), "a");
        let text = snap.to_json();
        assert!(
            text.starts_with("{\n  \"format\": 1,\n  \"schema_hash\": "),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert_eq!(Snapshot::parse(&text).unwrap(), snap);

        let stale = text.replace(&snap.schema_hash, &"0".repeat(64));
        assert_eq!(
            Snapshot::parse(&stale).unwrap().schema_hash,
            snap.schema_hash
        );
    }

    #[test]
    fn snapshot_parse_rejects_what_is_not_a_snapshot() {
        let cases: [(&str, &str); 7] = [
            ("", "invalid"),
            ("[]", "invalid"),
            (r#"{"format": 2, "whatever": true}"#, "unsupported_format"),
            (r#"{"format": 1, "schema_hash": "x"}"#, "invalid"),
            (
                r#"{"format": 1, "schema_hash": "x", "tools": [{"description": "no name"}]}"#,
                "invalid",
            ),
            (
                r#"{"format": 1, "schema_hash": "x", "tools": [{"name": "a"}, {"name": "a"}]}"#,
                "invalid",
            ),
            (
                r#"{"format": 1, "schema_hash": "x", "tools": [], "extra": 1}"#,
                "invalid",
            ),
        ];
        for (text, reason) in cases {
            let err = Snapshot::parse(text).expect_err(text);
            assert_eq!(err.reason(), reason, "{text}: {err}");
        }
    }

    /// Arbitrary JSON with a bounded depth and width.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_]{1,5}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `value` with every object's keys reinserted in an order drawn from `seed`.
    fn reorder_keys(value: &Value, seed: &mut u64) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                // A small deterministic shuffle (xorshift) so the proptest stays reproducible.
                for i in (1..entries.len()).rev() {
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    entries.swap(i, (*seed % (i as u64 + 1)) as usize);
                }
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), reorder_keys(v, seed)))
                        .collect(),
                )
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| reorder_keys(v, seed)).collect())
            }
            other => other.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn hash_is_invariant_under_key_order_and_tool_order(
            schemas in prop::collection::vec((arb_json(), arb_json(), "[a-z ]{0,12}"), 0..6),
            seed in 1u64..u64::MAX,
            rotate in 0usize..6,
        ) {
            let tools: Vec<Value> = schemas
                .into_iter()
                .enumerate()
                .map(|(i, (input, annotations, description))| json!({
                    "name": format!("tool{i}"),
                    "description": description,
                    "inputSchema": input,
                    "annotations": annotations,
                }))
                .collect();
            let mut seed = seed;
            let mut shuffled: Vec<Value> = tools.iter().map(|t| reorder_keys(t, &mut seed)).collect();
            if !shuffled.is_empty() {
                let by = rotate % shuffled.len();
                shuffled.rotate_left(by);
                shuffled.reverse();
            }
            prop_assert_eq!(schema_hash(&tools), schema_hash(&shuffled));
            prop_assert_eq!(Snapshot::from_tools(&tools), Snapshot::from_tools(&shuffled));
            prop_assert!(diff(&tools, &shuffled).changes.is_empty());
        }
    }
}
