//! What a lint run returns: findings, input errors, and the severity scale.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How bad a finding is. Ordered `Info < Warning < Error`; the binary maps the highest
/// severity present (see [`LintReport::max_severity`]) to its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Advice; never fails a build on its own.
    Info,
    /// A setting that is known to cause outages or dropped sessions under some conditions.
    Warning,
    /// A setting that breaks the deployment or leaks a secret.
    Error,
}

/// The error returned by `Severity::from_str` for anything but `info`, `warning`, `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected info, warning or error")]
pub struct ParseSeverityError(pub String);

/// Which object a finding is about, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectRef {
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace`, if the manifest sets one.
    pub namespace: Option<String>,
    /// `metadata.name` (empty if the manifest has none, e.g. `generateName`).
    pub name: String,
}

/// One problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id, `category/name` (e.g. `probe/liveness-tcp`). Used by `allow` lists and
    /// the `lifeline.dev/allow` annotation.
    pub rule_id: &'static str,
    /// The rule's severity.
    pub severity: Severity,
    /// The object the finding is about.
    pub object: ObjectRef,
    /// Path of the offending field inside the object, e.g.
    /// `spec.template.spec.containers[0].livenessProbe.tcpSocket`. Annotation keys that contain
    /// dots are quoted: `metadata.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]`.
    pub field_path: String,
    /// The source name the object came from (a path, or `-` for standard input).
    pub file: String,
    /// 1-based line of the field (or of its nearest existing parent) in `file`, if known.
    pub line: Option<usize>,
    /// What was found, about this object specifically.
    pub message: String,
    /// Why the rule exists (the same for every finding of the rule).
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

/// A source that could not be read as Kubernetes manifests: bad YAML, or a document of a known
/// kind that does not match its schema. Other sources and documents are still checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// The source name.
    pub file: String,
    /// 1-based line of the error (or of the document that failed), if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// What went wrong, e.g. `did not find expected ',' or ']'` or
    /// `Deployment: missing field `containers``.
    pub message: String,
}

/// The result of [`crate::lint_sources`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Findings, sorted by file, line, rule id.
    pub findings: Vec<Finding>,
    /// Sources or documents that could not be parsed.
    pub errors: Vec<InputError>,
    /// Number of objects checked (documents of a known kind, plus `List` items).
    pub objects_checked: usize,
    /// Number of documents skipped because their kind is not one the rules look at
    /// (ConfigMap, Role, custom resources other than KEDA `ScaledObject`, ...).
    pub objects_skipped: usize,
}

impl Severity {
    /// Lower-case name as used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "note" | "notice" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            _ => Err(ParseSeverityError(s.to_owned())),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl LintReport {
    /// Highest severity among the findings; `None` when there are none. Input errors are not
    /// findings: check [`LintReport::has_input_errors`] separately.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Whether any source or document could not be parsed.
    pub fn has_input_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Findings at or above `min`.
    pub fn findings_at_least(&self, min: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity >= min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Error);
        for (s, want) in [
            ("info", Severity::Info),
            ("WARNING", Severity::Warning),
            ("warn", Severity::Warning),
            ("error", Severity::Error),
        ] {
            assert_eq!(s.parse::<Severity>(), Ok(want));
        }
        assert!("fatal".parse::<Severity>().is_err());
    }
}
