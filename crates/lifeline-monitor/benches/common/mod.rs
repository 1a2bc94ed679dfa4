//! What the monitor benchmarks share: knobs from the environment, the fake endpoints child process (the
//! testkit's modern fake, one listener per target, so the measuring process or the replicas are the monitor
//! alone) and the wall clock in ms.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The environment variable that makes the bench binary the endpoints child.
pub(crate) const ROLE: &str = "LIFELINE_BENCH_ROLE";

/// The knob `name` from the environment, or `default` when unset or not a number.
pub(crate) fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall clock, ms since the Unix epoch (the store's time base).
pub(crate) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0)
}

/// True when this process was started as the endpoints child.
pub(crate) fn is_endpoints_child() -> bool {
    std::env::var(ROLE).as_deref() == Ok("endpoints")
}

/// Child role: `BENCH_TARGETS` modern fake MCP servers; prints their URLs, then READY, then lives until stdin
/// closes.
pub(crate) async fn endpoints() {
    let n = knob("BENCH_TARGETS", 10_000);
    let mut servers = Vec::with_capacity(n as usize);
    let mut out = std::io::stdout().lock();
    for _ in 0..n {
        let s = lifeline_testkit::fakes::FakeServer::start(
            lifeline_testkit::fakes::FakeKind::Modern(Default::default()),
        )
        .await
        .expect("fake server");
        writeln!(out, "{}", s.url()).expect("stdout");
        servers.push(s);
    }
    writeln!(out, "READY").expect("stdout");
    drop(out);
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await;
    drop(servers);
}

/// A child process group, killed (SIGKILL to the group) on drop.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Starts this binary again as the endpoints child and returns it with the URLs of its servers.
pub(crate) fn spawn_endpoints() -> (Guard, Vec<String>) {
    let t = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, "endpoints")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("endpoint process");
    let stdout = child.stdout.take().expect("piped");
    let guard = Guard(child);
    let mut urls = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("endpoint output");
        if line == "READY" {
            break;
        }
        urls.push(line);
    }
    println!(
        "endpoints: {} fake MCP servers up in {:.1}s",
        urls.len(),
        t.elapsed().as_secs_f64()
    );
    (guard, urls)
}

/// Registers `targets` in `store` and seeds `days` days of hourly rollups for each through
/// `simulate::load_history` (the store's rollup path, seed 42). Returns the names with their display URLs,
/// the target ids (same order) and the rollup rows written.
pub(crate) async fn seed_history(
    store: &lifeline_monitor::Store,
    targets: &[lifeline_monitor::TargetConfig],
    days: i64,
) -> (Vec<(String, String)>, Vec<i64>, u64) {
    let names: Vec<(String, String)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.display_url()))
        .collect();
    let ids: Vec<i64> = store
        .sync_targets(&names, now_ms())
        .await
        .expect("targets")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let rows = lifeline_monitor::simulate::load_history(store, &ids, days, now_ms(), 42)
        .await
        .expect("history");
    (names, ids, rows)
}
