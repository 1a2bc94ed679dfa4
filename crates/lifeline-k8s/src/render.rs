//! Text renderings of a [`LintReport`]: for people, for machines (JSON), and for GitHub Actions
//! workflow annotations.

use std::fmt::Write as _;

use crate::report::{LintReport, Severity};

/// Human-readable report: one block per finding, then input errors, then a summary line.
///
/// ```text
/// deploy.yaml:12: warning[probe/liveness-tcp] Deployment/mcp spec.template.spec.containers[0].livenessProbe.tcpSocket
///   container mcp: livenessProbe only opens a TCP connection to port 3000
///   why: A TCP probe only proves the port is open. ...
///   fix: Use httpGet on a /live endpoint ...
/// ```
pub fn render_human(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let at = match f.line {
            Some(l) => format!("{}:{l}", f.file),
            None => f.file.clone(),
        };
        let _ = writeln!(
            out,
            "{at}: {}[{}] {} {}",
            f.severity, f.rule_id, f.object, f.field_path
        );
        let _ = writeln!(out, "  {}", f.message);
        let _ = writeln!(out, "  why: {}", f.why);
        let _ = writeln!(out, "  fix: {}", f.fix);
    }
    for e in &report.errors {
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", e.file),
            (Some(l), None) => format!("{}:{l}", e.file),
            _ => e.file.clone(),
        };
        let _ = writeln!(out, "{at}: input error: {}", e.message);
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} object(s) checked, {} skipped: {} error(s), {} warning(s), {} info, {} input error(s)",
        report.objects_checked,
        report.objects_skipped,
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        report.errors.len()
    );
    out
}

/// The report as pretty JSON: `{"findings": [...], "errors": [...], "objects_checked": n,
/// "objects_skipped": n}`, each finding with `rule_id`, `severity`, `object` {kind, namespace,
/// name}, `field_path`, `file`, `line`, `message`, `why`, `fix`.
pub fn render_json(report: &LintReport) -> String {
    // Serializing plain strings, numbers and vectors cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// GitHub Actions workflow commands, one per line:
/// `::warning file=deploy.yaml,line=12,title=probe/liveness-tcp::Deployment/mcp: <message>. Fix: <fix>`.
/// Errors map to `::error`, warnings to `::warning`, info to `::notice`; input errors are
/// `::error` with the title `input`.
pub fn render_github(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut props = format!("file={}", escape_property(&f.file));
        if let Some(l) = f.line {
            let _ = write!(props, ",line={l}");
        }
        let _ = write!(props, ",title={}", escape_property(f.rule_id));
        let text = format!("{}: {}. Fix: {}", f.object, f.message, f.fix);
        let _ = writeln!(out, "::{level} {props}::{}", escape_data(&text));
    }
    for e in &report.errors {
        let mut props = format!("file={}", escape_property(&e.file));
        if let Some(l) = e.line {
            let _ = write!(props, ",line={l}");
        }
        if let Some(c) = e.column {
            let _ = write!(props, ",col={c}");
        }
        let _ = writeln!(
            out,
            "::error {props},title=input::{}",
            escape_data(&e.message)
        );
    }
    out
}

/// Escaping for a workflow command's message (the part after `::`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a workflow command property value (`file=`, `title=`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, InputError, ObjectRef};

    fn report() -> LintReport {
        LintReport {
            findings: vec![Finding {
                rule_id: "image/tag",
                severity: Severity::Warning,
                object: ObjectRef {
                    kind: "Deployment".into(),
                    namespace: Some("prod".into()),
                    name: "mcp".into(),
                },
                field_path: "spec.template.spec.containers[0].image".into(),
                file: "a,b:c.yaml".into(),
                line: Some(7),
                message: "100% sure\nsecond line".into(),
                why: "w",
                fix: "f",
            }],
            errors: vec![InputError {
                file: "bad.yaml".into(),
                line: Some(3),
                column: Some(5),
                message: "oops".into(),
            }],
            objects_checked: 1,
            objects_skipped: 0,
        }
    }

    #[test]
    fn github_annotations_escape_properties_and_data() {
        assert_eq!(
            render_github(&report()),
            "::warning file=a%2Cb%3Ac.yaml,line=7,title=image/tag::Deployment/prod/mcp: 100%25 sure%0Asecond line. Fix: f\n\
             ::error file=bad.yaml,line=3,col=5,title=input::oops\n"
        );
    }

    #[test]
    fn human_output_names_file_line_rule_and_object() {
        let text = render_human(&report());
        assert!(text.starts_with("a,b:c.yaml:7: warning[image/tag] Deployment/prod/mcp spec.template.spec.containers[0].image\n"), "{text}");
        assert!(text.contains("bad.yaml:3:5: input error: oops"), "{text}");
        assert!(text.ends_with("1 object(s) checked, 0 skipped: 0 error(s), 1 warning(s), 0 info, 1 input error(s)\n"), "{text}");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&render_json(&report())).expect("valid json");
        assert_eq!(v["findings"][0]["rule_id"], "image/tag");
        assert_eq!(v["findings"][0]["severity"], "warning");
        assert_eq!(v["findings"][0]["object"]["namespace"], "prod");
        assert_eq!(v["findings"][0]["line"], 7);
        assert_eq!(v["errors"][0]["line"], 3);
    }
}
