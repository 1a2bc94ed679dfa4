//! `${name}` in a step's arguments and resource URI: replaced by a value saved by an earlier step.
//!
//! A string that is exactly `${name}` becomes the saved JSON value itself (a number stays a number); `${name}`
//! inside a longer string is replaced by the value's text (a string as is, anything else as compact JSON). `$${`
//! writes a literal `${`. Only string values are scanned (not object keys). A reference to a name no earlier step
//! saves is a config error, found by [`check`] before anything runs.

use lifeline_core::config::FieldErrors;
use serde_json::Value;

/// Records at `path` every `${name}` in `v` that no earlier step saves, and every unterminated `${`.
pub(super) fn check(v: &Value, saved: &[String], path: &str, errors: &mut FieldErrors) {
    match v {
        Value::String(s) => {
            for part in parse(s) {
                match part {
                    Part::Var(name) if !saved.iter().any(|n| n == name) => errors.push(
                        path.to_owned(),
                        format!("${{{name}}} is not saved by an earlier step of this transaction"),
                    ),
                    Part::Unterminated => {
                        errors.push(path.to_owned(), "has a ${ without its closing }".to_owned())
                    }
                    _ => {}
                }
            }
        }
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                check(item, saved, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(o) => {
            for (k, item) in o {
                check(item, saved, &format!("{path}.{k}"), errors);
            }
        }
        _ => {}
    }
}

/// `v` with every `${name}` replaced from `saved` (validated beforehand, so every name is there; a missing one
/// is left as written).
pub(super) fn substitute(v: &Value, saved: &[(String, Value)]) -> Value {
    match v {
        Value::String(s) => {
            let parts = parse(s);
            if let [Part::Var(name)] = parts.as_slice() {
                if let Some((_, value)) = saved.iter().find(|(n, _)| n == name) {
                    return value.clone();
                }
            }
            let mut out = String::with_capacity(s.len());
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Dollar => out.push_str("${"),
                    Part::Var(name) => match saved.iter().find(|(n, _)| n == name) {
                        Some((_, Value::String(text))) => out.push_str(text),
                        Some((_, other)) => out.push_str(&other.to_string()),
                        None => {
                            out.push_str("${");
                            out.push_str(name);
                            out.push('}');
                        }
                    },
                    Part::Unterminated => {}
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|i| substitute(i, saved)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, i)| (k.clone(), substitute(i, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Debug, PartialEq)]
enum Part<'a> {
    Text(&'a str),
    /// `$${`: a literal `${`.
    Dollar,
    Var(&'a str),
    Unterminated,
}

fn parse(s: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest[..at].ends_with('$') {
            if at > 1 {
                parts.push(Part::Text(&rest[..at - 1]));
            }
            parts.push(Part::Dollar);
            rest = &rest[at + 2..];
            continue;
        }
        if at > 0 {
            parts.push(Part::Text(&rest[..at]));
        }
        let after = &rest[at + 2..];
        match after.find('}') {
            Some(end) => {
                parts.push(Part::Var(after[..end].trim()));
                rest = &after[end + 1..];
            }
            None => {
                parts.push(Part::Unterminated);
                return parts;
            }
        }
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_strings_keep_the_type_and_embedded_ones_become_text() {
        let saved = vec![
            ("id".to_owned(), json!(42)),
            ("name".to_owned(), json!("a b")),
        ];
        let args = json!({"id": "${id}", "q": "name=${name}&id=${id}", "lit": "$${id}", "n": [ "${ name }" ], "k": 1});
        assert_eq!(
            substitute(&args, &saved),
            json!({"id": 42, "q": "name=a b&id=42", "lit": "${id}", "n": ["a b"], "k": 1})
        );
    }

    #[test]
    fn unknown_and_unterminated_references_are_config_errors() {
        let mut errors = FieldErrors::new();
        check(
            &json!({"a": "${nope}", "b": ["x ${id"], "c": "${id}", "d": "$${free}"}),
            &["id".to_owned()],
            "steps[1].arguments",
            &mut errors,
        );
        let text = errors.finish(|| ()).unwrap_err().to_string();
        assert_eq!(
            text,
            "steps[1].arguments.a: ${nope} is not saved by an earlier step of this transaction\n\
             steps[1].arguments.b[0]: has a ${ without its closing }"
        );
    }
}
