//! Running a [`TransactionSet`] over a probe's open session: the safety gate, each step's request through the
//! probe's [`Channel`] (so every transport and both eras), and the checks of the module doc in their order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::expr::{truncate, Scope};
use super::report::{StepOutcome, StepReport, TransactionReport};
use super::{template, Action, Step, Transaction, TransactionSet};
use crate::probe::ctx::{ms, Ctx};
use crate::probe::steps::Channel;
use crate::probe::{Failure, Phase};
use crate::verdict::{Reason, Verdict};

/// Runs every transaction of `set` in order on the session `ch`, each bounded by its own timeout (the probe's
/// deadline is set aside meanwhile and restored after). Records the time spent as the `transactions` phase.
pub(crate) async fn run_all<C: Channel>(
    ch: &mut C,
    ctx: &mut Ctx<'_>,
    set: &TransactionSet,
) -> Vec<TransactionReport> {
    let t = ctx.clock(Phase::Transactions);
    let saved_deadline = ctx.deadline;
    let tools = ctx.tools.clone().unwrap_or_default();
    let mut schemas = Schemas::default();
    let mut reports = Vec::with_capacity(set.transactions.len());
    for transaction in &set.transactions {
        reports.push(run_one(ch, ctx, set, transaction, &tools, &mut schemas).await);
    }
    ctx.deadline = saved_deadline;
    ctx.time(Phase::Transactions, t);
    reports
}

/// The reports of a set that did not run because the probe failed first: every transaction unhealthy with the
/// probe's reason, every step skipped.
pub(crate) fn not_run(set: &TransactionSet, failure: &Failure) -> Vec<TransactionReport> {
    set.transactions
        .iter()
        .map(|t| {
            refused(
                t,
                failure.reason,
                format!(
                    "the probe failed before the transaction ran: {}",
                    failure.message
                ),
            )
        })
        .collect()
}

async fn run_one<C: Channel>(
    ch: &mut C,
    ctx: &mut Ctx<'_>,
    set: &TransactionSet,
    transaction: &Transaction,
    tools: &[Value],
    schemas: &mut Schemas,
) -> TransactionReport {
    if let Err(why) = set.gate(transaction, tools) {
        return refused(
            transaction,
            Reason::NotAllowed,
            format!("the safety gate refused it: {why}"),
        );
    }
    let started = Instant::now();
    let deadline = started + transaction.timeout;
    let mut saved: Vec<(String, Value)> = Vec::new();
    let mut steps = Vec::with_capacity(transaction.steps.len());
    let mut failed = false;
    for step in &transaction.steps {
        if failed {
            steps.push(skipped(step));
            continue;
        }
        let report = run_step(ch, ctx, step, deadline, tools, schemas, &mut saved).await;
        failed = report.outcome == StepOutcome::Failed;
        steps.push(report);
    }
    summarise(&transaction.name, steps, ms(started.elapsed()))
}

async fn run_step<C: Channel>(
    ch: &mut C,
    ctx: &mut Ctx<'_>,
    step: &Step,
    transaction_deadline: Instant,
    tools: &[Value],
    schemas: &mut Schemas,
    saved: &mut Vec<(String, Value)>,
) -> StepReport {
    let params = match &step.action {
        Action::Tool { name, arguments } | Action::Prompt { name, arguments } => {
            json!({ "name": name, "arguments": template::substitute(arguments, saved) })
        }
        Action::Resource { uri } => {
            let uri = match template::substitute(&Value::String(uri.clone()), saved) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            json!({ "uri": uri })
        }
    };
    let sent = Instant::now();
    let abandon_at = step
        .max_latency
        .unhealthy
        .map(|bound| sent + bound)
        .filter(|at| *at < transaction_deadline);
    ctx.deadline = abandon_at.unwrap_or(transaction_deadline);
    let answer = ch
        .call(ctx, Phase::Transactions, step.action.method(), params)
        .await;
    let latency = sent.elapsed();
    let mut report = StepReport {
        outcome: StepOutcome::Passed,
        latency_ms: Some(ms(latency)),
        ..skipped(step)
    };
    let result = match answer {
        Ok(result) => result,
        Err(f) => {
            let abandoned = abandon_at.is_some() && f.reason == Reason::Timeout;
            if abandoned {
                let bound = step.max_latency.unhealthy.unwrap_or_default();
                return fail(
                    report,
                    Reason::Slow,
                    format!(
                        "no answer within max_latency.unhealthy ({} ms)",
                        bound.as_millis()
                    ),
                );
            }
            report.rpc_code = f.rpc_code;
            return fail(report, f.reason, f.message);
        }
    };
    if let Some(reason) = check_result(step, &result, tools, schemas) {
        return fail(report, reason.0, reason.1);
    }
    let scope = Scope::new(&result, saved);
    for e in &step.expect {
        if let Err(unmet) = scope.assert(e) {
            report.expression = Some(e.source().to_owned());
            report.actual = unmet.actual;
            return fail(report, Reason::AssertionFailed, unmet.message);
        }
    }
    for (name, e) in &step.save {
        match scope.value(e) {
            Ok(v) => saved.push((name.clone(), v)),
            Err(message) => {
                report.expression = Some(e.source().to_owned());
                return fail(
                    report,
                    Reason::AssertionFailed,
                    format!("save {name}: {message}"),
                );
            }
        }
    }
    if let Some(bound) = step.max_latency.unhealthy.filter(|b| latency > *b) {
        return fail(report, Reason::Slow, slower(latency, "unhealthy", bound));
    }
    if let Some(bound) = step.max_latency.degraded.filter(|b| latency > *b) {
        report.outcome = StepOutcome::Degraded;
        report.reason = Some(Reason::Slow);
        report.message = Some(slower(latency, "degraded", bound));
    }
    report
}

/// The protocol-level checks of a result, before the assertions: `input_required`, `tool_error`,
/// `schema_violation`.
fn check_result(
    step: &Step,
    result: &Value,
    tools: &[Value],
    schemas: &mut Schemas,
) -> Option<(Reason, String)> {
    // 2026-07-28 `server/tools` §Input Required Tool Results; `basic/patterns/mrtr` §InputRequiredResult. Over
    // Streamable HTTP the channel already turned this into a failure; stdio hands the result through.
    if result.get("resultType").and_then(Value::as_str) == Some("input_required") {
        return Some((
            Reason::InputRequired,
            input_required_message(step.action.method()),
        ));
    }
    let Action::Tool { name, .. } = &step.action else {
        return None;
    };
    // 2025-11-25 `server/tools` §Error Handling: tool execution errors are results with `isError: true`.
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = result
            .get("content")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find_map(|item| item.get("text").and_then(Value::as_str))
            })
            .map(|t| format!(": {}", truncate(t)))
            .unwrap_or_default();
        return Some((
            Reason::ToolError,
            format!("tools/call {name} returned isError: true{text}"),
        ));
    }
    let schema = tools
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|t| t.get("outputSchema"))?;
    // 2025-11-25 `server/tools` §Output Schema: "Servers MUST provide structured results that conform to this
    // schema. Clients SHOULD validate structured results against this schema."
    let Some(structured) = result.get("structuredContent") else {
        return Some((
            Reason::SchemaViolation,
            format!("tools/call {name} declares an outputSchema but returned no structuredContent"),
        ));
    };
    let validator = match schemas.get(name, schema) {
        Ok(v) => v,
        Err(e) => {
            return Some((
                Reason::SchemaViolation,
                format!("the outputSchema of {name} is not a usable JSON Schema: {e}"),
            ))
        }
    };
    let mut errors = validator.iter_errors(structured);
    let first = errors.next()?;
    let more = errors.count();
    let at = first.instance_path().to_string();
    let at = if at.is_empty() { "/".to_owned() } else { at };
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    Some((
        Reason::SchemaViolation,
        format!(
            "structuredContent of {name} does not match its outputSchema at {at}: {}{tail}",
            truncate(&first.to_string())
        ),
    ))
}

fn input_required_message(method: &str) -> String {
    format!("{method} answered resultType \"input_required\": the server asks for input a probe cannot give")
}

/// The compiled output schemas of one probe's run, by tool name.
#[derive(Default)]
struct Schemas(HashMap<String, Result<jsonschema::Validator, String>>);

impl Schemas {
    fn get(&mut self, name: &str, schema: &Value) -> Result<&jsonschema::Validator, String> {
        self.0
            .entry(name.to_owned())
            // No retriever is compiled in (default features off), so a remote or file `$ref` fails here
            // instead of making the prober fetch what a server points it at.
            .or_insert_with(|| {
                jsonschema::validator_for(schema).map_err(|e| truncate(&e.to_string()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn slower(latency: Duration, level: &str, bound: Duration) -> String {
    format!(
        "took {} ms, over max_latency.{level} ({} ms)",
        latency.as_millis(),
        bound.as_millis()
    )
}

fn fail(mut report: StepReport, reason: Reason, message: String) -> StepReport {
    report.outcome = StepOutcome::Failed;
    report.reason = Some(reason);
    report.message = Some(message);
    report
}

fn skipped(step: &Step) -> StepReport {
    StepReport {
        kind: step.action.kind().to_owned(),
        target: step.action.target().to_owned(),
        outcome: StepOutcome::Skipped,
        reason: None,
        message: None,
        expression: None,
        actual: None,
        rpc_code: None,
        latency_ms: None,
    }
}

fn refused(t: &Transaction, reason: Reason, message: String) -> TransactionReport {
    TransactionReport {
        name: t.name.clone(),
        verdict: Verdict::Unhealthy,
        reason: Some(reason),
        message: Some(message),
        duration_ms: 0.0,
        steps: t.steps.iter().map(skipped).collect(),
    }
}

/// The transaction's verdict is its worst step's; its reason and message the first step's that was not
/// passed.
fn summarise(name: &str, steps: Vec<StepReport>, duration_ms: f64) -> TransactionReport {
    let verdict = if steps.iter().any(|s| s.outcome == StepOutcome::Failed) {
        Verdict::Unhealthy
    } else if steps.iter().any(|s| s.outcome == StepOutcome::Degraded) {
        Verdict::Degraded
    } else {
        Verdict::Healthy
    };
    let first = steps
        .iter()
        .enumerate()
        .find(|(_, s)| matches!(s.outcome, StepOutcome::Failed | StepOutcome::Degraded));
    TransactionReport {
        name: name.to_owned(),
        verdict,
        reason: first.and_then(|(_, s)| s.reason),
        message: first.map(|(i, s)| {
            format!(
                "step {} ({} {}): {}",
                i + 1,
                s.kind,
                s.target,
                s.message.as_deref().unwrap_or_default()
            )
        }),
        duration_ms,
        steps,
    }
}
