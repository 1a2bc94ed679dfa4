//! Synthetic transactions: scripted `tools/call`, `resources/read` and `prompts/get` steps with assertions, run
//! over a probe's session after the handshake, so `lifeline check --transaction` (a CI gate) and `lifeline
//! monitor` (on a schedule) judge the same script the same way. The one evaluator for both.
//!
//! The model ([`TransactionSet`], [`Transaction`], [`Step`]) is parsed from YAML raw types ([`RawTransactionSet`],
//! [`RawTransaction`]) by [`TransactionSet::validate`], which collects every problem with its field path
//! (`transactions[0].steps[1].expect[0]: ...`), compiles every CEL expression and applies the static half of the
//! safety gate. [`ProbeOptions::transactions`](crate::ProbeOptions::transactions) hands a set to the probe, which
//! runs it after `tools/list` on every transport and in both eras, and reports one [`TransactionReport`] per
//! transaction in [`ProbeReport::transactions`](crate::ProbeReport::transactions).
//!
//! Step semantics, in order (the first that applies is the step's reason):
//! 1. the request fails: the probe's vocabulary (`rpc_error`, `timeout`, `session_lost`, …); a request still
//!    unanswered at `max_latency.unhealthy` is `slow` (unhealthy);
//! 2. `resultType: "input_required"` (2026-07-28 `server/tools` §Input Required Tool Results, `basic/patterns/mrtr`):
//!    `input_required` (a probe has nobody to ask);
//! 3. a tool result with `isError: true` (2025-11-25 `server/tools` §Error Handling): `tool_error`;
//! 4. `structuredContent` that does not validate against the tool's `outputSchema` from `tools/list`, or is
//!    missing although one is declared (2025-11-25 `server/tools` §Output Schema: servers MUST conform, clients
//!    SHOULD validate): `schema_violation`;
//! 5. an `expect` expression (CEL, `result` bound to the JSON-RPC result, saved values by name) that is not
//!    `true`: `assertion_failed`, with the expression and the actual value (truncated);
//! 6. a `save` expression that fails to evaluate: `assertion_failed`;
//! 7. the step took longer than `max_latency.unhealthy` (unhealthy) or `max_latency.degraded` (degraded): `slow`.
//!
//! A step that fails (unhealthy) ends the transaction: the later steps are `skipped`. A degraded step does not.
//!
//! Safety gate (issue 13; 2025-11-25 `server/tools` §Tool: annotations are untrusted unless from trusted servers):
//! a tool is called only if the operator lists it in `allow_tools`, and one whose `tools/list` entry does not
//! declare `annotations.readOnlyHint: true` also needs `allow_side_effects: true`. The first half is checked by
//! [`TransactionSet::validate`]; the second once the tool list is known, before the transaction's first step runs:
//! a refused transaction calls nothing and reports `not_allowed`.

use std::collections::BTreeSet;
use std::time::Duration;

use lifeline_core::config::FieldErrors;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod expr;
mod report;
mod run;
mod template;

pub use expr::Expr;
pub use report::{StepOutcome, StepReport, TransactionReport};
pub(crate) use run::{not_run, run_all};

/// Default bound on one whole transaction (all its steps): 30 s.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the steps of one transaction: 32.
pub const MAX_STEPS: usize = 32;
/// Bound on the characters of an actual value quoted in an `assertion_failed` message: 200.
pub const MAX_ACTUAL_CHARS: usize = 200;

/// The transactions of one target and the operator's permissions for them.
///
/// In `check --transaction FILE` the whole file is one set; in the monitor each target carries one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TransactionSet {
    /// The tools a transaction may call (exact names). A `tool` step naming another one is a config error.
    pub allow_tools: Vec<String>,
    /// When true, tools that do not declare `readOnlyHint: true` may be called too. Default false.
    pub allow_side_effects: bool,
    /// The transactions, run in order.
    pub transactions: Vec<Transaction>,
}

/// One named script of steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transaction {
    /// Unique within the target: `[A-Za-z0-9_.-]`, 1 to 64 characters (it is a metric label and a URL segment).
    pub name: String,
    /// How often the monitor runs it; `None` means the target's interval. `check` ignores it.
    #[serde(serialize_with = "lifeline_core::config::ser::duration_or_off")]
    pub interval: Option<Duration>,
    /// Bound on the whole transaction. Default [`DEFAULT_TRANSACTION_TIMEOUT`].
    #[serde(serialize_with = "lifeline_core::config::ser::duration")]
    pub timeout: Duration,
    /// The steps, 1 to [`MAX_STEPS`].
    pub steps: Vec<Step>,
}

/// One request and what must hold of its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// What to send.
    #[serde(flatten)]
    pub action: Action,
    /// CEL expressions over `result` (and saved values) that must each evaluate to `true`, in order.
    pub expect: Vec<Expr>,
    /// Latency bounds for this step.
    pub max_latency: LatencyBounds,
    /// Values to keep for later steps: name → CEL expression over `result`. Used as `${name}` in later
    /// arguments and URIs, and as a variable in later expressions.
    pub save: Vec<(String, Expr)>,
}

/// The request a step sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `tools/call` (2025-11-25 / 2026-07-28 `server/tools` §Calling Tools).
    Tool {
        /// The tool's name.
        name: String,
        /// The `arguments` object; strings may hold `${var}`.
        arguments: Value,
    },
    /// `resources/read` (`server/resources` §Reading Resources).
    Resource {
        /// The URI; may hold `${var}`.
        uri: String,
    },
    /// `prompts/get` (`server/prompts` §Getting a Prompt).
    Prompt {
        /// The prompt's name.
        name: String,
        /// The `arguments` object (string values per the spec); strings may hold `${var}`.
        arguments: Value,
    },
}

impl Action {
    /// `tool`, `resource` or `prompt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Tool { .. } => "tool",
            Action::Resource { .. } => "resource",
            Action::Prompt { .. } => "prompt",
        }
    }

    /// The tool or prompt name, or the resource URI as written (before substitution).
    pub fn target(&self) -> &str {
        match self {
            Action::Tool { name, .. } | Action::Prompt { name, .. } => name,
            Action::Resource { uri } => uri,
        }
    }

    /// The JSON-RPC method.
    pub fn method(&self) -> &'static str {
        match self {
            Action::Tool { .. } => "tools/call",
            Action::Resource { .. } => "resources/read",
            Action::Prompt { .. } => "prompts/get",
        }
    }
}

/// A step's latency bounds; either may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyBounds {
    /// Over this, the step is `slow` and degraded.
    #[serde(serialize_with = "lifeline_core::config::ser::duration_or_off")]
    pub degraded: Option<Duration>,
    /// Over this, the step is `slow` and unhealthy; the request is abandoned at this bound.
    #[serde(serialize_with = "lifeline_core::config::ser::duration_or_off")]
    pub unhealthy: Option<Duration>,
}

/// The YAML form of a [`TransactionSet`] (`check --transaction FILE`): `allow_tools`, `allow_side_effects`,
/// `transactions`. The monitor embeds the same three keys in a target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransactionSet {
    /// See [`TransactionSet::allow_tools`].
    #[serde(default)]
    pub allow_tools: Vec<String>,
    /// See [`TransactionSet::allow_side_effects`].
    #[serde(default)]
    pub allow_side_effects: bool,
    /// See [`TransactionSet::transactions`].
    #[serde(default)]
    pub transactions: Vec<RawTransaction>,
}

/// The YAML form of a [`Transaction`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransaction {
    /// See [`Transaction::name`].
    pub name: String,
    /// A duration with a unit (`5m`).
    #[serde(default)]
    pub interval: Option<String>,
    /// A duration with a unit (`30s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// The steps.
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

/// The YAML form of a [`Step`]: exactly one of `tool`, `resource`, `prompt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// A tool's name.
    #[serde(default)]
    pub tool: Option<String>,
    /// A resource URI.
    #[serde(default)]
    pub resource: Option<String>,
    /// A prompt's name.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The arguments object (tools and prompts).
    #[serde(default)]
    pub arguments: Option<Value>,
    /// CEL expressions.
    #[serde(default)]
    pub expect: Vec<String>,
    /// `{degraded: 800ms, unhealthy: 5s}`.
    #[serde(default)]
    pub max_latency: Option<RawLatency>,
    /// name → CEL expression.
    #[serde(default)]
    pub save: indexmap_lite::OrderedMap,
}

/// The YAML form of [`LatencyBounds`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    /// A duration with a unit.
    #[serde(default)]
    pub degraded: Option<String>,
    /// A duration with a unit.
    #[serde(default)]
    pub unhealthy: Option<String>,
}

/// An order-keeping string map for `save` (YAML mappings keep their order; so do the saved values).
mod indexmap_lite {
    use serde::Deserialize;

    /// `name: expression` pairs in file order; a repeated name is rejected by validation.
    #[derive(Debug, Clone, Default)]
    pub struct OrderedMap(pub Vec<(String, String)>);

    impl<'de> Deserialize<'de> for OrderedMap {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            // serde_json's `preserve_order` map keeps file order.
            let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) => out.push((k, s)),
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "save.{k}: must be a CEL expression string, not {other}"
                        )))
                    }
                }
            }
            Ok(OrderedMap(out))
        }
    }
}

/// Why a transaction file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TransactionFileError {
    /// Not YAML of the documented shape (unknown key, wrong type); the message names the place.
    #[error("{0}")]
    Syntax(String),
    /// Valid YAML, invalid content: every problem with its field path.
    #[error("{0}")]
    Invalid(#[from] lifeline_core::ConfigError),
}

impl TransactionSet {
    /// Parses and validates a transaction file (YAML; see `docs/transactions.md`).
    ///
    /// Errors: [`TransactionFileError::Syntax`] for YAML that does not fit the raw types,
    /// [`TransactionFileError::Invalid`] with every problem found by [`TransactionSet::validate`].
    pub fn from_yaml(text: &str) -> Result<TransactionSet, TransactionFileError> {
        let raw: RawTransactionSet = serde_yaml_ng::from_str(text)
            .map_err(|e| TransactionFileError::Syntax(e.to_string()))?;
        let mut errors = FieldErrors::new();
        let set = TransactionSet::validate(&raw, "", &mut errors);
        Ok(errors.finish(|| set)?)
    }

    /// Validates `raw` into a set, recording every problem in `errors` under `prefix` (`""` or
    /// `targets[2].`): names, durations, step shapes, CEL syntax, `${var}` references to values saved by an
    /// earlier step, and the static safety gate (every `tool` step names a tool in `allow_tools`). The
    /// returned set is meaningful only when `errors` stayed empty.
    pub fn validate(
        raw: &RawTransactionSet,
        prefix: &str,
        errors: &mut FieldErrors,
    ) -> TransactionSet {
        let mut names = BTreeSet::new();
        for (i, tool) in raw.allow_tools.iter().enumerate() {
            if tool.trim().is_empty() {
                errors.push(format!("{prefix}allow_tools[{i}]"), "must not be empty");
            }
        }
        let mut transactions = Vec::with_capacity(raw.transactions.len());
        for (i, t) in raw.transactions.iter().enumerate() {
            let path = format!("{prefix}transactions[{i}]");
            if !names.insert(t.name.as_str()) {
                errors.push(
                    format!("{path}.name"),
                    format!("{:?} is used twice", t.name),
                );
            }
            if let Some(t) = validate_transaction(t, &path, &raw.allow_tools, errors) {
                transactions.push(t);
            }
        }
        TransactionSet {
            allow_tools: raw.allow_tools.clone(),
            allow_side_effects: raw.allow_side_effects,
            transactions,
        }
    }

    /// The longest the set can take: the sum of the transactions' timeouts.
    pub fn budget(&self) -> Duration {
        self.transactions.iter().map(|t| t.timeout).sum()
    }

    /// The dynamic half of the safety gate for `t`, given the tools as listed: `Err` names the first tool step
    /// that may not run (not in `allow_tools`, or not declaring `readOnlyHint: true` without
    /// `allow_side_effects`).
    pub fn gate(&self, t: &Transaction, tools: &[Value]) -> Result<(), String> {
        for (i, step) in t.steps.iter().enumerate() {
            let Action::Tool { name, .. } = &step.action else {
                continue;
            };
            if !self.allow_tools.iter().any(|a| a == name) {
                return Err(format!(
                    "step {} calls the tool {name:?}, which allow_tools does not list",
                    i + 1
                ));
            }
            if self.allow_side_effects {
                continue;
            }
            let read_only = tools
                .iter()
                .find(|tool| tool.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|tool| tool.get("annotations"))
                .and_then(|a| a.get("readOnlyHint"))
                .and_then(Value::as_bool)
                == Some(true);
            if !read_only {
                return Err(format!(
                    "step {} calls the tool {name:?}, which does not declare readOnlyHint: true; set \
                     allow_side_effects: true to call it anyway",
                    i + 1
                ));
            }
        }
        Ok(())
    }
}

fn validate_transaction(
    raw: &RawTransaction,
    path: &str,
    allow_tools: &[String],
    errors: &mut FieldErrors,
) -> Option<Transaction> {
    let before = errors.len();
    let name_ok = !raw.name.is_empty()
        && raw.name.len() <= 64
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !name_ok {
        errors.push(
            format!("{path}.name"),
            format!("{:?} must be 1 to 64 of A-Z a-z 0-9 _ . -", raw.name),
        );
    }
    let interval = raw.interval.as_deref().and_then(|d| {
        let d = errors.check(
            &format!("{path}.interval"),
            lifeline_core::config::parse_duration(d),
        )?;
        if d < Duration::from_secs(1) {
            errors.push(format!("{path}.interval"), "must be at least 1s");
        }
        Some(d)
    });
    let timeout = match raw.timeout.as_deref() {
        None => DEFAULT_TRANSACTION_TIMEOUT,
        Some(d) => errors
            .check(
                &format!("{path}.timeout"),
                lifeline_core::config::parse_duration(d).and_then(positive),
            )
            .unwrap_or(DEFAULT_TRANSACTION_TIMEOUT),
    };
    if raw.steps.is_empty() || raw.steps.len() > MAX_STEPS {
        errors.push(
            format!("{path}.steps"),
            format!("must hold 1 to {MAX_STEPS} steps, not {}", raw.steps.len()),
        );
    }
    let mut saved: Vec<String> = Vec::new();
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (i, s) in raw.steps.iter().enumerate() {
        let spath = format!("{path}.steps[{i}]");
        if let Some(step) = validate_step(s, &spath, allow_tools, &mut saved, errors) {
            steps.push(step);
        }
    }
    (errors.len() == before).then(|| Transaction {
        name: raw.name.clone(),
        interval,
        timeout,
        steps,
    })
}

fn positive(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be more than zero".to_owned())
    } else {
        Ok(d)
    }
}

fn validate_step(
    raw: &RawStep,
    path: &str,
    allow_tools: &[String],
    saved: &mut Vec<String>,
    errors: &mut FieldErrors,
) -> Option<Step> {
    let before = errors.len();
    let arguments = raw
        .arguments
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let action = match (&raw.tool, &raw.resource, &raw.prompt) {
        (Some(name), None, None) => {
            if !allow_tools.iter().any(|a| a == name) {
                errors.push(
                    format!("{path}.tool"),
                    format!(
                        "the safety gate refuses {name:?}: list it in allow_tools (and set allow_side_effects: true \
                         unless the tool declares readOnlyHint: true)"
                    ),
                );
            }
            Some(Action::Tool {
                name: name.clone(),
                arguments,
            })
        }
        (None, Some(uri), None) => {
            if raw.arguments.is_some() {
                errors.push(
                    format!("{path}.arguments"),
                    "a resource step takes no arguments",
                );
            }
            Some(Action::Resource { uri: uri.clone() })
        }
        (None, None, Some(name)) => Some(Action::Prompt {
            name: name.clone(),
            arguments,
        }),
        _ => {
            errors.push(
                path.to_owned(),
                "must have exactly one of tool, resource, prompt",
            );
            None
        }
    };
    if let Some(action) = &action {
        match action {
            Action::Tool { arguments, .. } | Action::Prompt { arguments, .. } => {
                if !arguments.is_object() {
                    errors.push(format!("{path}.arguments"), "must be a mapping");
                }
                template::check(arguments, saved, &format!("{path}.arguments"), errors);
            }
            Action::Resource { uri } => {
                if uri.trim().is_empty() {
                    errors.push(format!("{path}.resource"), "must not be empty");
                }
                template::check(
                    &Value::String(uri.clone()),
                    saved,
                    &format!("{path}.resource"),
                    errors,
                );
            }
        }
    }
    let mut expect = Vec::with_capacity(raw.expect.len());
    for (i, source) in raw.expect.iter().enumerate() {
        if let Some(e) = errors.check(&format!("{path}.expect[{i}]"), Expr::compile(source)) {
            expect.push(e);
        }
    }
    let mut max_latency = LatencyBounds::default();
    if let Some(l) = &raw.max_latency {
        let mut bound = |field: &str, raw: &Option<String>| {
            raw.as_deref().and_then(|d| {
                errors.check(
                    &format!("{path}.max_latency.{field}"),
                    lifeline_core::config::parse_duration(d).and_then(positive),
                )
            })
        };
        max_latency.degraded = bound("degraded", &l.degraded);
        max_latency.unhealthy = bound("unhealthy", &l.unhealthy);
        if let (Some(d), Some(u)) = (max_latency.degraded, max_latency.unhealthy) {
            if d > u {
                errors.push(
                    format!("{path}.max_latency"),
                    "degraded must not exceed unhealthy",
                );
            }
        }
    }
    let mut save = Vec::with_capacity(raw.save.0.len());
    for (name, source) in &raw.save.0 {
        let field = format!("{path}.save.{name}");
        if let Err(m) = expr::check_variable_name(name) {
            errors.push(field.clone(), m);
        } else if saved.iter().any(|s| s == name)
            || save.iter().any(|(s, _): &(String, Expr)| s == name)
        {
            errors.push(field.clone(), "is saved twice in this transaction");
        }
        if let Some(e) = errors.check(&field, Expr::compile(source)) {
            save.push((name.clone(), e));
        }
    }
    saved.extend(save.iter().map(|(n, _)| n.clone()));
    if errors.len() != before {
        return None;
    }
    Some(Step {
        action: action?,
        expect,
        max_latency,
        save,
    })
}

#[cfg(test)]
mod tests;
