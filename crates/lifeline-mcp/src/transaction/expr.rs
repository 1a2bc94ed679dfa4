//! CEL (the Common Expression Language, <https://cel.dev>) for `expect` and `save`, with the `cel` crate: a
//! compiled [`Expr`], the JSON → CEL value mapping, and the evaluation that names the actual value when an
//! assertion fails.
//!
//! Bindings: `result` is the step's JSON-RPC `result` object; every value saved by an earlier step is a variable
//! of its name. JSON maps to CEL as: object → map (string keys), array → list, integer → `int` (or `uint` above
//! `i64::MAX`), other numbers → `double`, string, bool, null. A missing key is an evaluation error (so
//! `result.structuredContent.items` fails when there is no `items`); test with `has(...)` first.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::Expr as Ast;
use cel::{Context, Program, Value as Cel};
use serde_json::Value;

use super::MAX_ACTUAL_CHARS;

/// CEL's reserved words (cel-spec `langdef.md` §Syntax): never a saved value's name.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "false",
    "for",
    "function",
    "if",
    "import",
    "in",
    "let",
    "loop",
    "package",
    "namespace",
    "null",
    "return",
    "true",
    "var",
    "void",
    "while",
    "result",
];

/// Bound on the characters of one expression: 4096.
const MAX_SOURCE_CHARS: usize = 4096;

/// A compiled CEL expression and its source. Equal when the sources are equal; serialised as the source.
#[derive(Clone)]
pub struct Expr {
    source: String,
    program: Arc<Program>,
}

impl Expr {
    /// Compiles `source`.
    ///
    /// Errors: the parser's message (empty, too long, or not CEL), to put after a field path.
    pub fn compile(source: &str) -> Result<Expr, String> {
        if source.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if source.chars().count() > MAX_SOURCE_CHARS {
            return Err(format!("is longer than {MAX_SOURCE_CHARS} characters"));
        }
        let program = Program::compile(source).map_err(|e| {
            format!(
                "{source:?} is not a CEL expression: {}",
                one_line(&e.to_string())
            )
        })?;
        Ok(Expr {
            source: source.to_owned(),
            program: Arc::new(program),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Why an assertion did not hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unmet {
    /// One sentence: what was expected and what was found.
    pub(crate) message: String,
    /// The actual value, as JSON text, truncated to [`MAX_ACTUAL_CHARS`] (`None` when evaluation failed).
    pub(crate) actual: Option<String>,
}

/// The variables one step's expressions see: `result` and the saved values.
pub(crate) struct Scope {
    context: Context<'static, 'static>,
}

impl Scope {
    /// A scope binding `result` and every saved value.
    pub(crate) fn new(result: &Value, saved: &[(String, Value)]) -> Scope {
        let mut context = Context::default();
        context.add_variable_from_value("result", to_cel(result));
        for (name, value) in saved {
            context.add_variable_from_value(name.clone(), to_cel(value));
        }
        Scope { context }
    }

    /// Evaluates an `expect` expression: `Ok` when it is `true`; otherwise what it was (for a comparison, the
    /// left operand's value, which is the interesting one in `size(x) > 0` or `x.status == "ok"`).
    pub(crate) fn assert(&self, e: &Expr) -> Result<(), Unmet> {
        match e.program.execute(&self.context) {
            Ok(Cel::Bool(true)) => Ok(()),
            Ok(Cel::Bool(false)) => {
                let actual = self.left_operand(e).unwrap_or(Cel::Bool(false));
                let text = truncate(&json_text(&actual));
                Err(Unmet {
                    message: format!("expected {} but {} was {text}", e.source, self.subject(e)),
                    actual: Some(text),
                })
            }
            Ok(other) => {
                let text = truncate(&json_text(&other));
                Err(Unmet {
                    message: format!("{} evaluated to {text}, not a bool", e.source),
                    actual: Some(text),
                })
            }
            Err(err) => Err(Unmet {
                message: format!(
                    "{} could not be evaluated: {}",
                    e.source,
                    one_line(&err.to_string())
                ),
                actual: None,
            }),
        }
    }

    /// Evaluates a `save` expression into JSON.
    pub(crate) fn value(&self, e: &Expr) -> Result<Value, String> {
        let v = e.program.execute(&self.context).map_err(|err| {
            format!(
                "{} could not be evaluated: {}",
                e.source,
                one_line(&err.to_string())
            )
        })?;
        v.json().map_err(|err| {
            format!(
                "{} is not a JSON value: {}",
                e.source,
                one_line(&err.to_string())
            )
        })
    }

    /// For a relation (`_==_`, `_<_`, …) at the top, its left operand's value.
    fn left_operand(&self, e: &Expr) -> Option<Cel> {
        let Ast::Call(call) = &e.program.expression().expr else {
            return None;
        };
        if !is_relation(&call.func_name) || call.args.len() != 2 || call.target.is_some() {
            return None;
        }
        Cel::resolve(&call.args[0], &self.context).ok()
    }

    /// What [`Scope::left_operand`] names in the message: the left operand, or the whole expression.
    fn subject(&self, e: &Expr) -> &'static str {
        if self.left_operand(e).is_some() {
            "the left side"
        } else {
            "it"
        }
    }
}

fn is_relation(func: &str) -> bool {
    matches!(
        func,
        "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "@in"
    )
}

/// Checks a `save` name: a CEL identifier that is not reserved (nor `result`).
///
/// Errors: the message to put after the field path.
pub(crate) fn check_variable_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!(
            "{name:?} must be an identifier: a letter or _, then letters, digits, _"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("{name:?} is reserved"));
    }
    Ok(())
}

/// JSON → CEL (see the module doc for the mapping).
pub(crate) fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<String, Cel> = o.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            Cel::from(map)
        }
    }
}

/// A CEL value as compact JSON text (a function or other non-JSON value by its debug form).
fn json_text(v: &Cel) -> String {
    match v.json() {
        Ok(j) => j.to_string(),
        Err(_) => format!("{v:?}"),
    }
}

/// `s` cut to [`MAX_ACTUAL_CHARS`] characters, with `…` when cut.
pub(crate) fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_ACTUAL_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_ACTUAL_CHARS).collect();
    out.push('…');
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope::new(
            &json!({"isError": false, "structuredContent": {"items": [{"id": "a1"}], "count": 1, "ratio": 0.5},
                    "content": [{"type": "text", "text": "lifeline-canary found"}]}),
            &[("first_id".to_owned(), json!("a1"))],
        )
    }

    #[test]
    fn assertions_hold_or_name_the_actual_value() {
        let s = scope();
        // (expression, holds, actual on failure)
        let cases = [
            ("result.isError == false", true, None),
            ("size(result.structuredContent.items) > 0", true, None),
            (
                "result.structuredContent.items[0].id == first_id",
                true,
                None,
            ),
            ("result.structuredContent.count == 1", true, None),
            ("result.structuredContent.ratio < 1.0", true, None),
            ("result.content[0].text.matches('canary')", true, None),
            ("has(result.structuredContent.items)", true, None),
            (
                "result.structuredContent.items.all(i, i.id.startsWith('a'))",
                true,
                None,
            ),
            ("size(result.structuredContent.items) > 1", false, Some("1")),
            (
                "result.structuredContent.items[0].id == 'zz'",
                false,
                Some("\"a1\""),
            ),
            ("result.isError", false, Some("false")),
            ("result.structuredContent.count", false, Some("1")),
        ];
        for (source, holds, actual) in cases {
            let e = Expr::compile(source).unwrap();
            let got = s.assert(&e);
            assert_eq!(got.is_ok(), holds, "{source}: {got:?}");
            if let Err(u) = got {
                assert_eq!(u.actual.as_deref(), actual, "{source}");
                assert!(u.message.contains(source), "{source}: {}", u.message);
            }
        }
    }

    #[test]
    fn a_missing_key_is_an_unmet_assertion_not_a_panic() {
        let e = Expr::compile("size(result.structuredContent.nope) > 0").unwrap();
        let u = scope().assert(&e).unwrap_err();
        assert_eq!(u.actual, None);
        assert!(
            u.message.contains("could not be evaluated"),
            "{}",
            u.message
        );
    }

    #[test]
    fn saved_values_come_back_as_json_and_actual_values_are_truncated() {
        let s = scope();
        let e = Expr::compile("result.structuredContent.items[0]").unwrap();
        assert_eq!(s.value(&e), Ok(json!({"id": "a1"})));
        let long = Scope::new(&json!({"s": "x".repeat(1000)}), &[]);
        let u = long
            .assert(&Expr::compile("result.s == 'y'").unwrap())
            .unwrap_err();
        let actual = u.actual.unwrap();
        assert_eq!(actual.chars().count(), MAX_ACTUAL_CHARS + 1);
        assert!(actual.ends_with('…'));
    }

    #[test]
    fn compile_errors_and_names() {
        assert!(Expr::compile("").is_err());
        assert!(Expr::compile("result.(")
            .unwrap_err()
            .contains("not a CEL expression"));
        assert!(check_variable_name("first_id").is_ok());
        assert!(check_variable_name("result").is_err());
        assert!(check_variable_name("in").is_err());
        assert!(check_variable_name("9x").is_err());
        assert!(check_variable_name("a-b").is_err());
    }
}
