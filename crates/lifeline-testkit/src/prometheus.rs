//! Prometheus and `promtool`, for the tests of the observability kit under `deploy/observability/`: the binaries
//! (Debian's `prometheus` package, 2.42; `scripts/test.sh` installs it), a real server on a loopback port with its
//! own storage directory that scrapes the given targets and evaluates the given rule files, and the bits of its
//! HTTP API the tests read (`/api/v1/...`, `prometheus.io/docs/prometheus/latest/querying/api/`).
//!
//! The binaries are found through `$LIFELINE_PROMETHEUS_BIN` (a directory holding `prometheus` and `promtool`),
//! else `PATH`. Without them the caller panics with install instructions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::peers::raw_http;
use crate::process::{free_port, wait_for_port, ChildGuard};

/// How long Prometheus may take to start serving: 60 s (its TSDB and rule loading on a loaded machine).
pub const START_PATIENCE: Duration = Duration::from_secs(60);
/// Bound on one API request: 10 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One target to scrape: `job` names its job (the `job` label; targets of one job share its metrics path), `addr`
/// is `host:port` on loopback, `path` the metrics path.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// The `job` label.
    pub job: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `/metrics`.
    pub path: String,
}

/// A running Prometheus server (its own process group, killed on drop; its storage directory removed).
#[derive(Debug)]
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The process; its output tail helps failure messages.
    pub guard: ChildGuard,
    _dir: TempDir,
}

/// A directory removed on drop (the testkit has no `tempfile`).
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of the binary `name` (`prometheus` or `promtool`).
///
/// # Panics
/// When it is not installed, with install instructions.
pub fn binary(name: &str) -> PathBuf {
    let found = match std::env::var_os("LIFELINE_PROMETHEUS_BIN") {
        Some(dir) => Some(PathBuf::from(dir).join(name)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        }),
    };
    found.unwrap_or_else(|| {
        panic!(
            "{name} not found: install Debian's prometheus package (scripts/test.sh does: \
             scripts/install-peers.sh --apt prometheus), or set LIFELINE_PROMETHEUS_BIN to a directory holding \
             prometheus and promtool"
        )
    })
}

/// Runs `promtool ARGS…` in `dir` and returns (success, stdout + stderr). Bounded by the caller's test timeout:
/// `promtool check/test rules` on a few files takes well under a second.
///
/// # Panics
/// When promtool is missing or cannot start.
pub fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run promtool {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port with a fresh storage directory, scraping `targets` and
    /// evaluating `rule_files` every `interval`, and waits (at most [`START_PATIENCE`]) until `/-/ready`
    /// answers 200.
    ///
    /// # Panics
    /// When the binary is missing, the config cannot be written, or the server does not get ready in time (the
    /// message carries its output tail).
    pub async fn start(
        targets: &[ScrapeTarget],
        rule_files: &[PathBuf],
        interval: Duration,
    ) -> Prometheus {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "lifeline-prometheus-{}-{}",
            std::process::id(),
            free_port()
        )));
        std::fs::create_dir_all(dir.0.join("data")).expect("create the Prometheus directory");
        let secs = interval.as_secs().max(1);
        let mut config = format!(
            "global:\n  scrape_interval: {secs}s\n  evaluation_interval: {secs}s\n  scrape_timeout: {secs}s\n"
        );
        config.push_str("rule_files:\n");
        for f in rule_files {
            config.push_str(&format!("  - {:?}\n", f.display().to_string()));
        }
        if rule_files.is_empty() {
            config.push_str("  []\n");
        }
        config.push_str("scrape_configs:\n");
        // One scrape config per job (Prometheus refuses two with one name), its targets listed together.
        let mut jobs: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        for t in targets {
            match jobs.iter_mut().find(|(j, _, _)| *j == t.job) {
                Some((_, path, addrs)) => {
                    assert_eq!(*path, t.path, "job {}: one metrics path per job", t.job);
                    addrs.push(&t.addr);
                }
                None => jobs.push((&t.job, &t.path, vec![&t.addr])),
            }
        }
        for (job, path, addrs) in jobs {
            config.push_str(&format!(
                "  - job_name: {job:?}\n    metrics_path: {path:?}\n    static_configs:\n      - targets: {addrs:?}\n"
            ));
        }
        let config_path = dir.0.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(binary("prometheus"));
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn");
        let mut guard = ChildGuard::spawn("prometheus", cmd).unwrap_or_else(|e| panic!("{e}"));
        let addr = listen.parse().expect("a loopback socket address");
        wait_for_port(&mut guard, addr, START_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let p = Prometheus {
            base: format!("http://{listen}"),
            guard,
            _dir: dir,
        };
        crate::assert_eventually!(
            raw_http::request(
                "GET",
                &format!("{}/-/ready", p.base),
                &[],
                None,
                REQUEST_TIMEOUT
            )
            .await
            .is_ok_and(|r| r.status == 200),
            patience = START_PATIENCE,
            "Prometheus not ready: {}",
            p.guard.output_tail()
        );
        p
    }

    /// `GET /api/v1/<path_and_query>`: the `data` of a `success` answer, or the error type and text.
    pub async fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/{path_and_query}", self.base);
        let r = raw_http::request("GET", &url, &[], None, REQUEST_TIMEOUT)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("GET {url}: {} is not JSON ({e}): {}", r.status, r.text()))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// An instant query (`/api/v1/query`): the result's `data`, or Prometheus's error (a parse error names the
    /// position).
    pub async fn query(&self, expr: &str) -> Result<Value, String> {
        self.api(&format!("query?query={}", encode(expr))).await
    }

    /// Every metric name Prometheus holds a series of (`/api/v1/label/__name__/values`).
    pub async fn metric_names(&self) -> Vec<String> {
        self.api("label/__name__/values")
            .await
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

/// Percent-encodes a query parameter value (RFC 3986: everything but the unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_leaves_only_unreserved_characters() {
        assert_eq!(
            encode(r#"sum(rate(x{a="b"}[5m])) / 2"#),
            "sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29%20%2F%202"
        );
    }
}
