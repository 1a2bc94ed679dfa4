//! `lifeline lint`: reads Kubernetes YAML from files, directories and standard input, runs the rules of
//! `lifeline-k8s`, prints the findings, and maps them to an exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use lifeline_k8s::{
    lint_sources, render_github, render_human, render_json, LintOptions, Severity, Source,
};

use crate::exit;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Readable findings with why and how to fix.
    Human,
    /// One JSON document: findings, input errors and counts.
    Json,
    /// GitHub Actions workflow commands (`::warning file=…,line=…::`), so findings annotate the pull request.
    Github,
}

/// Minimum severity that fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Fail on any finding.
    Info,
    /// Fail on warnings and errors (the default).
    Warning,
    /// Fail on errors only.
    Error,
    /// Never fail on findings (unreadable input still exits 2).
    Never,
}

/// Arguments of `lifeline lint`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    lifeline lint deploy/ k8s/*.yaml\n  \
    kubectl kustomize overlays/prod | lifeline lint -\n  \
    lifeline lint --format github rendered.yaml\n\n\
    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 unreadable input, 64 usage.\n\
    Disable a rule for one object with the annotation `lifeline.dev/allow: \"rule/id, category/*\"`.\n\
    The rules and their reasoning: docs/kubernetes.md.")]
pub(crate) struct Args {
    /// Manifest files or directories (searched recursively for *.yaml and *.yml), or `-` for standard input.
    #[arg(required_unless_present = "list_rules", value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,

    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Warning, env = "LIFELINE_LINT_FAIL_ON")]
    fail_on: FailOn,

    /// Disable a rule everywhere: an exact id (`image/tag`), a category (`probe/*`) or `*`. Repeatable.
    #[arg(long, value_name = "RULE")]
    allow: Vec<String>,

    /// Print every rule with its id, severity and the guide it comes from, then exit.
    #[arg(long)]
    list_rules: bool,
}

/// Runs `lifeline lint`; returns the exit code.
pub(crate) async fn run(args: Args) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    if args.list_rules {
        for rule in lifeline_k8s::rules() {
            writeln!(
                out,
                "{:32} {:8} {}",
                rule.id,
                rule.severity.as_str(),
                rule.why
            )?;
        }
        return Ok(exit::OK);
    }
    let mut sources = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.paths {
        collect(path, &mut sources, &mut unreadable)?;
    }
    for (path, err) in &unreadable {
        eprintln!("error: cannot read {}: {err:#}", path.display());
    }
    if sources.is_empty() && unreadable.is_empty() {
        return Err(exit::UsageError("no YAML files found in the given paths".into()).into());
    }
    let report = lint_sources(&sources, &LintOptions { allow: args.allow });
    let text = match args.format {
        Format::Human => render_human(&report),
        Format::Json => render_json(&report),
        Format::Github => render_github(&report),
    };
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') && !text.is_empty() {
        writeln!(out)?;
    }
    out.flush()?;
    if report.has_input_errors() || !unreadable.is_empty() {
        return Ok(exit::OPERATIONAL);
    }
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Never => None,
    };
    let failed = threshold.is_some_and(|min| report.findings_at_least(min).next().is_some());
    Ok(if failed { exit::FINDINGS } else { exit::OK })
}

/// Adds `path` (a file, a directory walked recursively in name order, or `-`) to `sources`.
fn collect(
    path: &Path,
    sources: &mut Vec<Source>,
    unreadable: &mut Vec<(PathBuf, anyhow::Error)>,
) -> anyhow::Result<()> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        sources.push(Source {
            name: "-".into(),
            text,
        });
        return Ok(());
    }
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                unreadable.push((path.to_owned(), e.into()));
                return Ok(());
            }
        };
        entries.sort();
        for entry in entries {
            let is_yaml = entry
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            if entry.is_dir() || is_yaml {
                collect(&entry, sources, unreadable)?;
            }
        }
        return Ok(());
    }
    match std::fs::read_to_string(path) {
        Ok(text) => sources.push(Source {
            name: path.display().to_string(),
            text,
        }),
        Err(e) => unreadable.push((path.to_owned(), e.into())),
    }
    Ok(())
}
