//! Runs the official conformance suite's server scenarios (`conformance server --url URL -o DIR`) and reads back
//! the per-scenario results it writes: one directory `server-<scenario>-<ISO timestamp>` holding `checks.json` (an
//! array of checks, each with an `id` and a `status` of `SUCCESS`, `FAILURE`, `WARNING` or `INFO`).
//!
//! A scenario passes when none of its checks is a `FAILURE`: the rule the suite's own summary and exit code use.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{conformance_command, Conformance};

/// One scenario's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioResult {
    /// Check id → status (`SUCCESS`, `FAILURE`, `WARNING`, `INFO`). A scenario may repeat an id (the suite's
    /// `incoming-sse-event` INFO checks); the last one wins, which never hides a `FAILURE` because
    /// [`ScenarioResult::failures`] is kept separately.
    pub checks: BTreeMap<String, String>,
    /// `"<check id>: <errorMessage>"` for every failing check, in the suite's order.
    pub failures: Vec<String>,
}

impl ScenarioResult {
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The ids of the checks that succeeded.
    pub fn successes(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter(|(_, status)| *status == "SUCCESS")
            .map(|(id, _)| id.as_str())
    }
}

/// A whole `conformance server` run.
#[derive(Debug)]
pub struct ServerSuiteRun {
    /// Scenario name → result, for every scenario that wrote its `checks.json`.
    pub scenarios: BTreeMap<String, ScenarioResult>,
    /// How many scenarios the suite said it would run (`Running all suite (N scenarios)`), when it said so.
    pub announced: Option<usize>,
    /// The process exit code (`None` if killed by a signal).
    pub exit_code: Option<i32>,
    /// stdout and stderr, for failure messages.
    pub output: String,
}

impl ServerSuiteRun {
    /// The names of the scenarios that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|(_, r)| !r.passed())
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Runs `conformance server --url url -o out_dir` (the default, active suite; add `extra` arguments such as
/// `--scenario X`) on Node 22, killed if it takes longer than `patience`, and reads the results from `out_dir`,
/// which should be empty.
///
/// # Panics
/// If the suite is not installed, does not finish within `patience`, or writes a `checks.json` that does not parse.
pub async fn run_server_suite(
    which: Conformance,
    url: &str,
    out_dir: &Path,
    extra: &[&str],
    patience: Duration,
) -> ServerSuiteRun {
    let (node, args) = conformance_command(which);
    let child = tokio::process::Command::new(node)
        .args(args)
        .args(["server", "--url", url, "-o"])
        .arg(out_dir)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("the conformance suite starts");
    let out = tokio::time::timeout(patience, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("conformance server --url {url} did not finish within {patience:?}")
        })
        .expect("the conformance suite's output is collected");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ServerSuiteRun {
        scenarios: read_results(out_dir),
        announced: announced_count(&output),
        exit_code: out.status.code(),
        output,
    }
}

/// Reads every `server-<scenario>-<timestamp>/checks.json` under `dir`.
///
/// # Panics
/// If `dir` cannot be read or a `checks.json` is not an array of checks.
pub fn read_results(dir: &Path) -> BTreeMap<String, ScenarioResult> {
    let mut scenarios = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading conformance results in {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(scenario) = file_name.to_str().and_then(scenario_of_dir) else {
            continue;
        };
        let path = entry.path().join("checks.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let checks: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        scenarios.insert(scenario.to_owned(), parse_checks(&checks));
    }
    scenarios
}

/// The scenario name in a result directory name `server-<scenario>-YYYY-MM-DDTHH-MM-SS-mmmZ`.
pub fn scenario_of_dir(name: &str) -> Option<&str> {
    // The suite's timestamp: `new Date().toISOString()` with `:` and `.` replaced by `-`; 24 characters.
    const STAMP: usize = "2026-01-01T00-00-00-000Z".len();
    let rest = name.strip_prefix("server-")?;
    let split = rest.len().checked_sub(STAMP + 1)?;
    let (scenario, stamp) = (rest.get(..split)?, rest.get(split..)?);
    let stamp = stamp.strip_prefix('-')?;
    let shape_ok = stamp.ends_with('Z')
        && stamp.as_bytes().get(10) == Some(&b'T')
        && stamp
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'T' || b == b'Z');
    (shape_ok && !scenario.is_empty()).then_some(scenario)
}

/// One scenario's `checks.json` array.
///
/// # Panics
/// If `checks` is not an array of objects with string `id` and `status`.
pub fn parse_checks(checks: &serde_json::Value) -> ScenarioResult {
    let list = checks.as_array().expect("checks.json is an array");
    let mut result = ScenarioResult {
        checks: BTreeMap::new(),
        failures: Vec::new(),
    };
    for check in list {
        let id = check["id"].as_str().expect("a check has a string id");
        let status = check["status"]
            .as_str()
            .expect("a check has a string status");
        if status == "FAILURE" {
            let message = check["errorMessage"].as_str().unwrap_or("(no message)");
            result.failures.push(format!("{id}: {message}"));
        }
        result.checks.insert(id.to_owned(), status.to_owned());
    }
    result
}

/// `N` from the suite's `Running active suite (N scenarios) against URL` line (0.1.x), or `Running requirements
/// 2026-07-28 (N scenarios) against URL` (0.2.x).
fn announced_count(output: &str) -> Option<usize> {
    output.lines().find_map(|line| {
        let head = line.strip_prefix("Running ")?;
        let head = &head[..head.find(" scenarios)")?];
        head[head.rfind('(')? + 1..].parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_come_from_result_directories() {
        let cases = [
            ("server-ping-2026-11-30T19-48-18-459Z", Some("ping")),
            (
                "server-dns-rebinding-protection-2026-11-30T19-48-18-459Z",
                Some("dns-rebinding-protection"),
            ),
            ("server--2026-11-30T19-48-18-459Z", None),
            ("client-ping-2026-11-30T19-48-18-459Z", None),
            ("server-ping", None),
            ("server-ping-2026-11-30 19-48-18-459Z", None),
        ];
        for (dir, want) in cases {
            assert_eq!(scenario_of_dir(dir), want, "{dir}");
        }
    }

    #[test]
    fn a_scenario_fails_on_any_failure_check_only() {
        let checks = serde_json::json!([
            {"id": "a", "status": "SUCCESS"},
            {"id": "b", "status": "WARNING"},
            {"id": "c", "status": "INFO"},
        ]);
        let r = parse_checks(&checks);
        assert!(r.passed());
        assert_eq!(r.successes().collect::<Vec<_>>(), ["a"]);

        let checks = serde_json::json!([
            {"id": "a", "status": "SUCCESS"},
            {"id": "b", "status": "FAILURE", "errorMessage": "got 200"},
        ]);
        let r = parse_checks(&checks);
        assert!(!r.passed());
        assert_eq!(r.failures, ["b: got 200"]);
    }

    #[test]
    fn the_announced_scenario_count_is_read() {
        let out = "noise\nRunning active suite (30 scenarios) against http://127.0.0.1:1/mcp\n";
        assert_eq!(announced_count(out), Some(30));
        let out = "Running requirements 2026-07-28 (50 scenarios) against http://127.0.0.1:1/mcp\n";
        assert_eq!(announced_count(out), Some(50));
        assert_eq!(
            announced_count("Running client scenario 'ping' against server"),
            None
        );
    }
}
