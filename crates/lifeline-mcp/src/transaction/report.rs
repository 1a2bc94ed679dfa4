//! What a transaction run found: [`TransactionReport`] with one [`StepReport`] per step, serialised into
//! `check --json` (`transactions`, docs/check-json.md) and the monitor's store.

use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

use crate::verdict::{Reason, Verdict};

/// One transaction's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionReport {
    /// The transaction's name.
    pub name: String,
    /// The worst step verdict (`healthy` when every step passed); `unhealthy` when it did not run.
    pub verdict: Verdict,
    /// The reason of the first step that was not healthy, or why the transaction did not run (`not_allowed`,
    /// or the probe's own reason when the handshake failed); `null` when healthy.
    pub reason: Option<Reason>,
    /// One sentence for `reason`; `null` when healthy.
    pub message: Option<String>,
    /// Milliseconds from the first request to the last answer (0 when nothing ran).
    pub duration_ms: f64,
    /// One entry per step, in order.
    pub steps: Vec<StepReport>,
}

impl TransactionReport {
    /// True when the transaction failed at the gate's level: `unhealthy` (a degraded step does not fail it).
    pub fn failed(&self) -> bool {
        !matches!(self.verdict, Verdict::Healthy | Verdict::Degraded)
    }
}

/// What became of one step.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Display,
    EnumString,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StepOutcome {
    /// Every check held within the latency bounds.
    Passed,
    /// Passed, but slower than `max_latency.degraded`.
    Degraded,
    /// A check did not hold (see the step's `reason`).
    Failed,
    /// Not run: an earlier step failed, or the transaction did not run at all.
    Skipped,
}

impl StepOutcome {
    /// The stable label, as serialised.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// `tool`, `resource` or `prompt`.
    pub kind: String,
    /// The tool or prompt name, or the resource URI as written in the file.
    pub target: String,
    /// What became of it.
    pub outcome: StepOutcome,
    /// Why it is not `passed`; `null` when passed or skipped.
    pub reason: Option<Reason>,
    /// One sentence for `reason` (for `assertion_failed`: the expression and the actual value).
    pub message: Option<String>,
    /// For `assertion_failed`: the expression that did not hold.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expression: Option<String>,
    /// For `assertion_failed`: the actual value as JSON text, truncated to 200 characters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actual: Option<String>,
    /// For `rpc_error`: the JSON-RPC error code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rpc_code: Option<i64>,
    /// Milliseconds from sending the request to its answer; `null` when skipped.
    pub latency_ms: Option<f64>,
}

impl StepReport {
    /// The verdict this step contributes: healthy when passed or skipped, degraded when degraded, unhealthy when
    /// failed.
    pub fn verdict(&self) -> Verdict {
        match self.outcome {
            StepOutcome::Passed | StepOutcome::Skipped => Verdict::Healthy,
            StepOutcome::Degraded => Verdict::Degraded,
            StepOutcome::Failed => Verdict::Unhealthy,
        }
    }
}
