//! The rule catalogue and the context every rule reads.
//!
//! Each rule has a stable id `category/name`, one severity, a why and a fix, and the seed guide
//! it comes from. Rules live in one file per category under `rules/` and see all objects of
//! all sources at once, so cross-object rules (PDB for a Deployment, Service selecting nothing)
//! work across files.

use crate::model::{Scaler, Workload, ALLOW_ANNOTATION};
use crate::report::{Finding, Severity};
use crate::source::Object;
use crate::LintOptions;

mod availability;
mod network;
mod probes;
mod rbac;
mod security;

/// Static description of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable id, `category/name`.
    pub id: &'static str,
    /// Severity of every finding of this rule.
    pub severity: Severity,
    /// One line: what the rule flags.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
    /// Title of the guide under `shared/seeds/` the rule comes from.
    pub source: &'static str,
}

pub(crate) const SEED_LIVENESS: &str = "Kubernetes Liveness Probes for MCP Servers";
pub(crate) const SEED_K8S: &str = "MCP server on Kubernetes";
pub(crate) const SEED_52: &str = "MCP Server Kubernetes Deployment — Surviving the 52% Death Rate";
pub(crate) const SEED_ZERO: &str = "MCP server zero-downtime deployment";

/// Every rule, in the order they are documented.
pub fn rules() -> &'static [RuleInfo] {
    RULES
}

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

static RULES: &[RuleInfo] = &[
    probes::LIVENESS_TCP,
    probes::SHARED_ENDPOINT,
    probes::LIVENESS_MCP,
    probes::READINESS_NOT_MCP,
    probes::MISSING,
    probes::STARTUP_MISSING,
    probes::PORT_NOT_EXPOSED,
    availability::GRACE_PERIOD,
    availability::PRESTOP_MISSING,
    availability::MAX_UNAVAILABLE,
    availability::TOO_FEW_REPLICAS,
    availability::PDB_MISSING,
    availability::PDB_BLOCKS_DRAIN,
    availability::HPA_PDB_MISSING,
    availability::HPA_SCALE_DOWN,
    security::IMAGE_TAG,
    security::RESOURCES_MISSING,
    security::ROOT,
    security::SECRET_INLINE_ENV,
    security::SECRET_COMMITTED,
    rbac::WILDCARD,
    rbac::TOKEN_UNUSED,
    network::INGRESS_SSE_TIMEOUTS,
    network::AFFINITY_MISSING,
    network::SERVICE_NGINX_ANNOTATIONS,
    network::SERVICE_NO_ENDPOINTS,
];

/// Everything a rule can see, and the sink for its findings.
pub(crate) struct Ctx<'a> {
    pub(crate) objects: &'a [Object],
    pub(crate) workloads: Vec<Workload<'a>>,
    pub(crate) scalers: Vec<Scaler<'a>>,
    options: &'a LintOptions,
    findings: Vec<Finding>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(objects: &'a [Object], options: &'a LintOptions) -> Self {
        Ctx {
            objects,
            workloads: objects.iter().filter_map(Workload::of).collect(),
            scalers: objects.iter().filter_map(Scaler::of).collect(),
            options,
            findings: Vec::new(),
        }
    }

    /// Runs every rule and returns the findings that are not allowed.
    pub(crate) fn run(mut self) -> Vec<Finding> {
        probes::check(&mut self);
        availability::check(&mut self);
        security::check(&mut self);
        rbac::check(&mut self);
        network::check(&mut self);
        self.findings
    }

    /// The scaler aimed at a workload, if any.
    pub(crate) fn scaler_for(&self, w: &Workload<'_>) -> Option<Scaler<'a>> {
        self.scalers.iter().find(|s| s.targets(w)).copied()
    }

    /// (min, max) replicas of a replicated workload after its scaler; `None` for DaemonSets and
    /// bare Pods.
    pub(crate) fn replica_range(&self, w: &Workload<'_>) -> Option<(i32, i32)> {
        if !w.replicated {
            return None;
        }
        Some(match self.scaler_for(w) {
            Some(s) => (s.min, s.max.max(s.min)),
            None => {
                let r = w.replicas.unwrap_or(1);
                (r, r)
            }
        })
    }

    /// Records a finding unless the rule is allowed globally or on the object (or, for
    /// workloads, on its pod template).
    pub(crate) fn emit(&mut self, rule: &RuleInfo, obj: &Object, path: &str, message: String) {
        if self.options.allows(rule.id) || object_allows(obj, rule.id) {
            return;
        }
        self.findings.push(Finding {
            rule_id: rule.id,
            severity: rule.severity,
            object: obj.object_ref(),
            field_path: path.to_owned(),
            file: obj.file.to_string(),
            line: Some(obj.line_of(path)),
            message,
            why: rule.why,
            fix: rule.fix,
        });
    }
}

/// Whether `id` is listed in a `lifeline.dev/allow` annotation of the object or its template.
fn object_allows(obj: &Object, id: &str) -> bool {
    let template = Workload::of(obj).and_then(|w| w.template_annotations);
    obj.meta
        .annotations
        .iter()
        .chain(template)
        .filter_map(|a| a.get(ALLOW_ANNOTATION))
        .any(|list| list_allows(list, id))
}

/// Whether a comma- or whitespace-separated list of ids or `category/*` patterns covers `id`.
pub(crate) fn list_allows(list: &str, id: &str) -> bool {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|pat| pattern_matches(pat, id))
}

pub(crate) fn pattern_matches(pat: &str, id: &str) -> bool {
    match pat.strip_suffix("/*") {
        Some(category) => id.split('/').next() == Some(category),
        None => pat == "*" || pat == id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_well_formed() {
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        for id in &ids {
            let (cat, name) = id.split_once('/').expect("category/name");
            assert!(
                !cat.is_empty() && !name.is_empty() && !name.contains('/'),
                "{id}"
            );
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c == '/'),
                "{id}"
            );
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
    }

    #[test]
    fn allow_lists_accept_ids_categories_and_separators() {
        assert!(list_allows("probe/missing, image/tag", "image/tag"));
        assert!(list_allows("probe/*", "probe/liveness-tcp"));
        assert!(list_allows("a/b\nimage/tag", "image/tag"));
        assert!(!list_allows("probe/*", "pdb/missing"));
        assert!(!list_allows("image", "image/tag"));
    }
}
