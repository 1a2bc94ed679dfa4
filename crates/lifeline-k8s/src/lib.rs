//! Kubernetes lint rules for MCP servers, behind `lifeline lint`.
//!
//! Owns: reading YAML manifests (many documents per source, `kind: List`) into typed
//! `k8s-openapi` objects with line numbers, the rule catalogue ([`rules`]), the
//! [`LintReport`] and its human, JSON and GitHub Actions renderings.
//!
//! Must not: read files, the environment or standard input, print, or choose exit codes. The
//! binary reads the sources, calls [`lint_sources`], renders, and maps
//! [`LintReport::max_severity`] and [`LintReport::has_input_errors`] to its exit code.
//!
//! The rules come from the operator guides in `shared/seeds/` (each [`RuleInfo`] names its
//! guide); `docs/kubernetes.md` lists them with their reasoning.
//!
//! ```
//! use lifeline_k8s::{lint_sources, LintOptions, Source};
//! let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
//! let report = lint_sources(&[Source { name: "s.yaml".into(), text: text.into() }], &LintOptions::default());
//! assert!(report.findings.is_empty() && report.errors.is_empty());
//! ```

mod lines;
mod model;
mod render;
mod report;
mod rules;
mod source;

pub use render::{render_github, render_human, render_json};
pub use report::{Finding, InputError, LintReport, ObjectRef, ParseSeverityError, Severity};
pub use rules::{rule, rules, RuleInfo};
pub use source::Source;

/// Options for one lint run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// Rule ids to skip everywhere: exact ids (`image/tag`), whole categories (`probe/*`), or
    /// `*`. Per object, the annotation `lifeline.dev/allow: "image/tag, probe/*"` on the object
    /// (or on a workload's pod template) does the same. Default: empty.
    pub allow: Vec<String>,
}

impl LintOptions {
    /// Whether `rule_id` is switched off by [`LintOptions::allow`].
    pub fn allows(&self, rule_id: &str) -> bool {
        self.allow.iter().any(|p| rules::list_allows(p, rule_id))
    }
}

/// Lints all sources together, so relations across files (a PDB in one file for a Deployment in
/// another) are seen. Never fails as a whole: unreadable sources and documents become
/// [`LintReport::errors`] with file and line, and everything else is still checked.
///
/// Findings are sorted by file, line, rule id. Objects of kinds the rules do not look at are
/// counted in [`LintReport::objects_skipped`].
pub fn lint_sources(inputs: &[Source], opts: &LintOptions) -> LintReport {
    let parsed = source::parse_sources(inputs);
    let mut findings = rules::Ctx::new(&parsed.objects, opts).run();
    // Keep the order of the sources as given, then line, then rule.
    let order = |file: &str| {
        inputs
            .iter()
            .position(|s| s.name == file)
            .unwrap_or(usize::MAX)
    };
    findings.sort_by(|a, b| {
        (order(&a.file), a.line, a.rule_id, &a.field_path).cmp(&(
            order(&b.file),
            b.line,
            b.rule_id,
            &b.field_path,
        ))
    });
    LintReport {
        findings,
        errors: parsed.errors,
        objects_checked: parsed.objects.len(),
        objects_skipped: parsed.skipped,
    }
}
