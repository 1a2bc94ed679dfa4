//! What an agent pushes and what the central side stores of it (issue 14, "Regions"): one probe attempt
//! ([`AgentResult`], the body of `POST /api/v1/agent/results`) and a stored region result ([`RegionResult`],
//! a row of `region_results`).

use serde::{Deserialize, Serialize};

/// One probe attempt of one agent, as pushed to `POST /api/v1/agent/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    /// The target's configured name.
    pub target: String,
    /// When the probe started, Unix milliseconds (the agent's clock); kept when the result arrives late.
    pub probed_at_ms: i64,
    /// The attempt within the round: 0 first, retries after. Only a region's last attempt counts.
    #[serde(default)]
    pub attempt: u32,
    /// True when the probe counted as up.
    pub up: bool,
    /// The probe's duration in milliseconds.
    pub latency_ms: u64,
    /// The failure's one-line cause, if it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The failure's reason label (`connect_refused`, `timeout`, … of `docs/check-json.md`), if it failed;
    /// absent from older agents (a `down` verdict then says `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<lifeline_mcp::Reason>,
    /// The SHA-256 (hex) of the canonical tool list the probe saw, if it got that far; compared across
    /// regions (a divergence is its own event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_hash: Option<String>,
}

/// A stored region result: the agent's result and who sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionResult {
    /// The agent's region.
    pub region: String,
    /// The agent's name.
    pub agent: String,
    /// When the central side received it, Unix milliseconds.
    pub received_ms: i64,
    /// The result.
    #[serde(flatten)]
    pub result: AgentResult,
}
