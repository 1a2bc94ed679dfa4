//! Probing from several regions (issue 14, "Regions", `docs/monitor-ha.md`): the per-target `regions:` and
//! `quorum:` keys and the top-level `agents:` list, their serde forms and their validation.
//!
//! ```yaml
//! agents:
//!   - name: eu-1
//!     region: eu-west
//!     token_files: [/etc/lifeline/agents/eu-1.sha256, /etc/lifeline/agents/eu-1.next.sha256]
//! targets:
//!   - name: api
//!     url: https://mcp.example.com/mcp
//!     regions: [eu-west, us-east, ap-south]
//!     quorum: { min_failing: 2, min_reporting: 2, page_regional: false }
//! ```
//!
//! A token file holds the lowercase hex SHA-256 (64 characters, FIPS 180-4) of the agent's bearer token, never
//! the token. The files are read when an agent authenticates, so removing one revokes that token without a
//! restart; two files per agent let a new token overlap the old one during a rotation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent::quorum::Quorum;

use super::validate::Validator;

/// Most token files per agent: 2 (the current token and the next one, for a rotation overlap).
pub const MAX_AGENT_TOKENS: usize = 2;

/// A target's `quorum:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuorum {
    pub(crate) min_failing: Option<usize>,
    pub(crate) min_reporting: Option<usize>,
    pub(crate) page_regional: Option<bool>,
}

/// One entry of `agents:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub(crate) name: String,
    pub(crate) region: String,
    #[serde(default)]
    pub(crate) token_files: Vec<String>,
}

/// A probe agent declared centrally (`agents:`): it runs `lifeline monitor agent --region R` elsewhere and
/// authenticates with a bearer token whose SHA-256 is in one of its `token_files`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    /// Unique name: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// The region it probes from (same character set); targets whose `regions` include it are assigned to it.
    pub region: String,
    /// 1 to [`MAX_AGENT_TOKENS`] files, each holding the hex SHA-256 of one accepted token. Read per
    /// authentication: a removed or unreadable file accepts nothing.
    pub token_files: Vec<PathBuf>,
}

/// A target's regions and quorum rule, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetRegions {
    /// The regions probing the target, unique, in the order written.
    pub regions: Vec<String>,
    /// The rule; default [`Quorum::default_for`] the number of regions (2 of 3).
    pub quorum: QuorumConfig,
}

/// The serialized form of [`Quorum`] in the effective configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuorumConfig {
    /// Failing regions (final retries) for `down`.
    pub min_failing: usize,
    /// Reporting regions below which the round is `unknown`.
    pub min_reporting: usize,
    /// `quorum.page_regional`: when true a `regional` round (some regions failing, fewer than `min_failing`)
    /// counts as a failed round and can open an incident and page like `down`. Default false: `regional` is
    /// shown (page, API, `lifeline_monitor_region_verdict`), not paged.
    pub page_regional: bool,
}

impl From<QuorumConfig> for Quorum {
    fn from(q: QuorumConfig) -> Quorum {
        Quorum {
            min_failing: q.min_failing,
            min_reporting: q.min_reporting,
        }
    }
}

/// True for 1–64 characters of `A-Z a-z 0-9 . _ -` (target, agent and region names).
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Validator<'_> {
    /// Validates a target's `regions:` and `quorum:`; `None` when it writes no regions (probed locally only).
    /// A `quorum:` without `regions:` is an error.
    pub(super) fn target_regions(
        &mut self,
        path: &str,
        regions: Vec<String>,
        quorum: Option<RawQuorum>,
    ) -> Option<TargetRegions> {
        if regions.is_empty() {
            if quorum.is_some() {
                self.err(format!("{path}.quorum"), "needs regions:");
            }
            return None;
        }
        let mut out: Vec<String> = Vec::with_capacity(regions.len());
        for (j, r) in regions.into_iter().enumerate() {
            if !is_name(&r) {
                self.err(
                    format!("{path}.regions[{j}]"),
                    "must be 1-64 characters of A-Z a-z 0-9 . _ -",
                );
            } else if out.contains(&r) {
                self.err(
                    format!("{path}.regions[{j}]"),
                    format!("`{r}` is listed twice"),
                );
            } else {
                out.push(r);
            }
        }
        let default = Quorum::default_for(out.len());
        let q = quorum.unwrap_or_default();
        let rule = Quorum {
            min_failing: q.min_failing.unwrap_or(default.min_failing),
            min_reporting: q
                .min_reporting
                .unwrap_or(default.min_reporting)
                .max(q.min_failing.unwrap_or(0)),
        };
        if let Err(e) = rule.validate(out.len()) {
            let text = e.to_string();
            let (field, message) = text.split_once(": ").unwrap_or(("quorum", &text));
            self.err(format!("{path}.{field}"), message);
        }
        Some(TargetRegions {
            regions: out,
            quorum: QuorumConfig {
                min_failing: rule.min_failing,
                min_reporting: rule.min_reporting,
                page_regional: q.page_regional.unwrap_or(false),
            },
        })
    }

    /// Validates `agents:`: unique names, a region each, 1–2 token files (existence is checked at
    /// authentication, so a removed file revokes, it does not break the configuration).
    pub(super) fn agents(&mut self, raw: Vec<RawAgent>) -> Vec<AgentConfig> {
        let mut out: Vec<AgentConfig> = Vec::with_capacity(raw.len());
        for (i, a) in raw.into_iter().enumerate() {
            let path = format!("agents[{i}]");
            if !is_name(&a.name) {
                self.err(
                    format!("{path}.name"),
                    "must be 1-64 characters of A-Z a-z 0-9 . _ -",
                );
            } else if out.iter().any(|o| o.name == a.name) {
                self.err(
                    format!("{path}.name"),
                    format!("`{}` is used by another agent", a.name),
                );
            }
            if !is_name(&a.region) {
                self.err(
                    format!("{path}.region"),
                    "must be 1-64 characters of A-Z a-z 0-9 . _ -",
                );
            }
            if a.token_files.is_empty() || a.token_files.len() > MAX_AGENT_TOKENS {
                self.err(
                    format!("{path}.token_files"),
                    format!(
                        "give 1 to {MAX_AGENT_TOKENS} files (two overlap during a rotation), not {}",
                        a.token_files.len()
                    ),
                );
            }
            let mut files = Vec::new();
            for (j, f) in a.token_files.iter().enumerate() {
                if let Some(f) = self.string(&format!("{path}.token_files[{j}]"), f) {
                    files.push(PathBuf::from(f));
                }
            }
            out.push(AgentConfig {
                name: a.name,
                region: a.region,
                token_files: files,
            });
        }
        out
    }

    /// Every region target `path` names must have at least one declared agent, and its credentials must be
    /// ones the agents can be given (`agent::api::credentials`): not a refresh token (agents and the central
    /// side would rotate one token family and revoke it, OAuth 2.0 Security BCP §4.14.2) and not a private
    /// key (kept on the central side only).
    pub(super) fn regions_have_agents(
        &mut self,
        path: &str,
        target: &super::TargetConfig,
        agents: &[AgentConfig],
    ) {
        for (j, r) in target.regions.iter().flat_map(|r| &r.regions).enumerate() {
            if !agents.iter().any(|a| &a.region == r) {
                self.err(
                    format!("{path}.regions[{j}]"),
                    format!("no agent in agents: probes from region `{r}`"),
                );
            }
        }
        if target.regions.is_none() {
            return;
        }
        if let Some(c) = target.auth.as_ref().and_then(|a| a.oauth.as_ref()) {
            let c = c.config();
            if c.refresh_token.is_some() {
                self.err(
                    format!("{path}.auth.refresh_token"),
                    "cannot be used with regions: (the agents would share one rotating refresh token)",
                );
            }
            if matches!(
                c.auth,
                lifeline_mcp::probe::ClientAuth::PrivateKeyJwt { .. }
            ) {
                self.err(
                    format!("{path}.auth.private_key_file"),
                    "cannot be used with regions: (the private key is not given to agents; use a client secret)",
                );
            }
        }
    }
}
