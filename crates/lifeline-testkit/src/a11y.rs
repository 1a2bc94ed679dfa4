//! Accessibility checks with the axe-core checker (npm `axe-core`, pinned in `tests/peers/package.json`) run in
//! the installed headless Chromium by `tests/peers/axe_check.cjs` on the pinned Node 22 (the DevTools protocol
//! over Node's own WebSocket: no puppeteer and no browser download). The rules are axe's WCAG 2.0/2.1 A and AA
//! set: colour contrast, labels and names of links, images (`role="img"` SVGs included), tables, language.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::peers::{node22, npm_package_dir, peers_sources};

/// One failed axe rule on a page.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    /// The rule (`color-contrast`, `label`, …).
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// What the rule asks for.
    pub help: String,
    /// The failing elements: `{"target": [CSS selector], "summary": "why"}`.
    pub nodes: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct PageResult {
    url: String,
    violations: Vec<Violation>,
}

/// Runs axe on each of `urls` (loaded in `chromium`, 1280 px wide) and returns `(url, violations)` in order.
/// Bounded by the script's own 60 s deadline; the script's process group is killed afterwards, so no browser
/// outlives the call.
///
/// # Panics
/// If Node 22 or axe-core is not installed ("run scripts/install-peers.sh"), or a page could not be checked.
pub fn axe_violations(chromium: &Path, urls: &[String]) -> Vec<(String, Vec<Violation>)> {
    let axe = npm_package_dir("axe-core").join("axe.min.js");
    let child = Command::new(node22())
        .arg(peers_sources().join("axe_check.cjs"))
        .arg(chromium)
        .arg(&axe)
        .args(urls)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start node axe_check.cjs");
    let pgid = child.id();
    let out = child.wait_with_output().expect("wait for axe_check.cjs");
    // Whatever the script left (it kills its Chromium itself; this is for a script that was killed).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    assert!(
        out.status.success(),
        "axe_check.cjs failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<PageResult> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("axe output {l:?}: {e}")))
        .collect();
    assert_eq!(results.len(), urls.len(), "one result per page");
    results.into_iter().map(|r| (r.url, r.violations)).collect()
}

/// `violations` as lines for an assertion message: rule, impact, help and each failing element with why.
pub fn describe(violations: &[Violation]) -> String {
    let mut out = String::new();
    for v in violations {
        out.push_str(&format!(
            "- {} ({}): {}\n",
            v.id,
            v.impact.as_deref().unwrap_or("?"),
            v.help
        ));
        for n in v.nodes.iter().take(5) {
            out.push_str(&format!("    {} {}\n", n["target"], n["summary"]));
        }
    }
    out
}
