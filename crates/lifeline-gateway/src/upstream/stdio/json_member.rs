//! Finds where a top-level member's value sits in the text of a JSON object, without parsing the rest: pool mode
//! puts the client's id back into a child's response by splicing that span, so a large result (a `tools/list`
//! answer is kilobytes) is copied once instead of parsed into a tree and serialised again on every request.
//!
//! The input is a line the child wrote that already passed a JSON parse, so the scan only has to respect strings
//! (with their escapes) and nesting; anything unexpected yields `None` and the caller falls back to a full parse.

use std::ops::Range;

/// The byte range of the value of the top-level member named `key` in `json` (a JSON object), the first one if
/// the key repeats. `None` when `json` is not an object, the key is absent, or it is spelled with escapes.
pub(super) fn value_span(json: &[u8], key: &str) -> Option<Range<usize>> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    // Bounded: every turn moves `i` forward past one member.
    loop {
        i = skip_ws(json, i);
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, i)?;
        let name = &json[i + 1..key_end - 1];
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(json, i + 1);
        let end = value_end(json, i)?;
        if name == key.as_bytes() {
            return Some(i..end);
        }
        i = skip_ws(json, end);
        if json.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index just past the closing quote of the string opening at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while let Some(b) = json.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => string_end(json, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(b) = json.get(i) {
                match b {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        // A number, true, false or null: up to the next delimiter.
        _ => {
            let mut i = start;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_top_level_ids() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"jsonrpc":"2.0","id":"lifeline-7","result":{}}"#,
                Some(r#""lifeline-7""#),
            ),
            (
                r#"{"result":{"tools":[]},"jsonrpc":"2.0","id":12}"#,
                Some("12"),
            ),
            (r#" { "id" : null , "error" : {"code":-1} } "#, Some("null")),
            (r#"{"id":-1.5e3}"#, Some("-1.5e3")),
            // Nested ids are not the message's.
            (
                r#"{"result":{"id":"inner","x":[{"id":1}]},"id":"outer"}"#,
                Some(r#""outer""#),
            ),
            // Strings holding quotes, braces and backslashes.
            (
                r#"{"result":{"text":"a \"}\" {[ \\"},"id":"x\"y"}"#,
                Some(r#""x\"y""#),
            ),
            (r#"{"result":"id","jsonrpc":"2.0"}"#, None),
            (r#"{"\u0069d":1}"#, None),
            (r#"{}"#, None),
            (r#"[{"id":1}]"#, None),
            (r#"{"id":"#, None),
            (r#"{"result":{"#, None),
        ];
        for (json, want) in cases {
            let got = value_span(json.as_bytes(), "id").map(|r| &json[r]);
            assert_eq!(got, *want, "{json}");
        }
    }

    #[test]
    fn first_of_repeated_keys() {
        let json = r#"{"id":1,"id":2}"#;
        assert_eq!(
            value_span(json.as_bytes(), "id").map(|r| &json[r]),
            Some("1")
        );
    }

    mod props {
        //! Property tests with serde_json as the oracle: for any object the span of a member is exactly that
        //! member's value; for any bytes (truncated objects, invalid UTF-8) the scan never panics and any span it
        //! returns lies inside the input.

        use super::super::value_span;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => prop_oneof![Just("id"), Just("result"), Just("jsonrpc"), Just("error")].prop_map(String::from),
                1 => any::<String>(),
                1 => "[a-z\"\\\\{}\\[\\]:,]{0,6}",
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                // Binary fractions: serde_json's default float parsing does not round-trip every f64, and
                // the oracle must be exact: few significant digits.
                (any::<i16>(), 0..8i32).prop_map(|(m, e)| Value::from(f64::from(m) / 2f64.powi(e))),
                any::<String>().prop_map(Value::from),
                "[\"\\\\{}\\[\\]:, ]{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((key(), inner), 0..6)
                        .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        fn object() -> impl Strategy<Value = Map<String, Value>> {
            prop::collection::vec((key(), value()), 0..8).prop_map(|m| m.into_iter().collect())
        }

        proptest! {
            #[test]
            fn span_is_the_members_value(obj in object(), probe in key(), pretty in any::<bool>()) {
                let doc = Value::Object(obj.clone());
                let text = if pretty {
                    serde_json::to_string_pretty(&doc)
                } else {
                    serde_json::to_string(&doc)
                }
                .expect("serialise");
                // A key that JSON must escape is documented as not found.
                let plain = serde_json::to_string(&probe).expect("serialise") == format!("\"{probe}\"");
                let want = obj.get(&probe).filter(|_| plain);
                let got = value_span(text.as_bytes(), &probe);
                match (want, got) {
                    (None, None) => {}
                    (Some(want), Some(span)) => {
                        let at: Value = serde_json::from_slice(&text.as_bytes()[span.clone()])
                            .map_err(|e| TestCaseError::fail(format!("span {span:?} of {text}: {e}")))?;
                        prop_assert_eq!(&at, want, "{}", text);
                    }
                    (want, got) => prop_assert!(false, "{text}: key {probe:?} want {want:?} got {got:?}"),
                }
            }

            #[test]
            fn truncated_objects_never_panic(obj in object(), probe in key(), cut in any::<prop::sample::Index>()) {
                let text = serde_json::to_string(&Value::Object(obj)).expect("serialise");
                let cut = cut.index(text.len() + 1);
                let bytes = &text.as_bytes()[..cut];
                if let Some(span) = value_span(bytes, &probe) {
                    prop_assert!(span.start <= span.end && span.end <= bytes.len(), "{span:?} in {}", bytes.len());
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in prop::collection::vec(
                    prop_oneof![
                        4 => any::<u8>(),
                        1 => prop::sample::select(b"{}[]\":,\\ ".to_vec()),
                    ],
                    0..512,
                ),
                probe in key(),
            ) {
                if let Some(span) = value_span(&bytes, &probe) {
                    prop_assert!(span.start <= span.end && span.end <= bytes.len(), "{span:?} in {}", bytes.len());
                }
            }
        }
    }
}
