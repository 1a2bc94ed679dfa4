//! Runs `scripts/zero-downtime.sh` (two gateways behind a real HAProxy that health-checks `/ready`, both rolled
//! under modern and legacy load) with a bound on its time, and requires its verdict: no modern request and no
//! legacy call in flight at a SIGTERM failed. Needs `scripts/install-peers.sh` (and installs HAProxy if missing).

use std::process::{Command, Stdio};
use std::time::Duration;

use lifeline_testkit::peers::workspace_root;

#[test]
fn rolling_both_gateways_behind_haproxy_loses_nothing() {
    let script = workspace_root().join("scripts/zero-downtime.sh");
    let child = Command::new("bash")
        .arg(&script)
        .env("LIFELINE_BIN", env!("CARGO_BIN_EXE_lifeline"))
        .env("ZD_DURATION", "30")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the script");
    let pid = child.id();
    let limit = Duration::from_secs(240);
    let (tx, rx) = std::sync::mpsc::channel();
    // Read both pipes to the end on a thread, so a chatty install step can never block the script.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            // The script's EXIT trap kills what it started.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            panic!("zero-downtime.sh did not finish within {limit:?}");
        }
    };
    let status = out.status;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.success(),
        "zero-downtime.sh failed:\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary in:\n{stdout}"));
    assert_eq!(summary["modern"]["failed"], 0, "{summary}");
    assert_eq!(
        summary["legacy_in_flight_at_sigterm_failed"], 0,
        "{summary}"
    );
    assert_eq!(summary["sigterms"], 2, "{summary}");
    assert!(
        summary["modern"]["completed"].as_u64().unwrap_or_default() > 100,
        "{summary}"
    );
    assert!(
        summary["legacy"]["completed"].as_u64().unwrap_or_default() > 10,
        "{summary}"
    );
    assert!(
        summary["legacy_in_flight_at_sigterm"]
            .as_u64()
            .unwrap_or_default()
            > 0,
        "{summary}"
    );
}
