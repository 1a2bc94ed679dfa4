//! The container command lines in the Kubernetes kit are ones the real binary accepts: every overlay under
//! `deploy/kubernetes/overlays` is rendered with the real `kubectl kustomize`, and each `lifeline` container's
//! args run through this binary with `--check-config` (the argument parser plus the subcommand's whole
//! configuration validation), with the overlay's ConfigMap files where the pod would mount them and its
//! environment variables set (Secret values replaced by placeholders of the right shape). A file under a Secret
//! created out of band (the auth overlay's API key file) is an empty placeholder, which `--check-config` reads and
//! parses (an API key file may hold no key).
//!
//! Regression: the monitor overlays once shipped a config with a `store:` section the monitor does not know, which
//! only a run of the real parser over the rendered manifests shows.

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeline_testkit::kube::{
    kubectl_or_skip, kustomize, lifeline_containers, overlays, LifelineContainer,
};

/// A value of the right shape for a variable the pod gets from a Secret.
fn placeholder(name: &str) -> String {
    if name.contains("DATABASE_URL") {
        "postgres://lifeline:secret@127.0.0.1:5432/lifeline".to_owned()
    } else {
        "placeholder".to_owned()
    }
}

/// The text of a file under a Secret created out of band, of the shape its flag requires: a session key file
/// holds one key of 64 hex digits, an admin token file a token of at least 16 bytes; any other (an API key file)
/// is empty.
fn secret_file_placeholder(path: &str) -> String {
    if path.contains("session-keys") {
        "ab".repeat(32)
    } else if path.contains("admin-token") {
        "placeholder-admin-token-of-32-by".to_owned()
    } else {
        String::new()
    }
}

/// The args with `--check-config` added before a stdio command's `--` (after it, it would be the child's), and
/// every mounted config path moved into `root`, where the ConfigMap files are written.
fn check_args(c: &LifelineContainer, root: &Path) -> Vec<String> {
    let mut args: Vec<String> = c
        .args
        .iter()
        .map(|a| {
            c.config_mounts
                .iter()
                .find_map(|(mount, _)| {
                    let rest = a.strip_prefix(mount.as_str())?;
                    Some(format!("{}{rest}", mount_dir(root, mount).display()))
                })
                .unwrap_or_else(|| a.clone())
        })
        .collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.insert(at, "--check-config".to_owned());
    args
}

fn mount_dir(root: &Path, mount: &str) -> PathBuf {
    root.join(mount.trim_start_matches('/'))
}

#[test]
fn every_overlay_container_command_is_accepted_by_the_binary() {
    let Some(kubectl) = kubectl_or_skip() else {
        return;
    };
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for dir in overlays() {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let found = lifeline_containers(&kustomize(&kubectl, &dir));
        assert!(!found.is_empty(), "overlay {name}: no lifeline container");
        for c in found {
            let root = tempfile::tempdir().expect("tempdir");
            for (mount, files) in &c.config_mounts {
                let d = mount_dir(root.path(), mount);
                std::fs::create_dir_all(&d).expect("mount dir");
                for (file, text) in files {
                    std::fs::write(d.join(file), text).expect("write ConfigMap file");
                }
            }
            let args = check_args(&c, root.path());
            for (mount, _) in c.config_mounts.iter().filter(|(_, f)| f.is_empty()) {
                let dir = mount_dir(root.path(), mount);
                for arg in args
                    .iter()
                    .filter(|a| a.starts_with(&*dir.to_string_lossy()))
                {
                    std::fs::write(arg, secret_file_placeholder(arg))
                        .expect("write a placeholder Secret file");
                }
            }
            let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(
                    c.env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| placeholder(k)))),
                )
                .output()
                .expect("run lifeline");
            if !out.status.success() {
                failures.push(format!(
                    "overlay {name}: `lifeline {}` exited {:?}:\n{}{}",
                    args.join(" "),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            checked.push(format!(
                "{name}: {}",
                c.args.first().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Each variant's subcommand was exercised: the gateway (sidecar, stdio) and the monitor.
    for want in [
        "sidecar: gateway",
        "auth: gateway",
        "stdio: gateway",
        "edge: gateway",
        "monitor: monitor",
        "monitor-postgres: monitor",
    ] {
        assert!(
            checked.iter().any(|c| c == want),
            "{want} not checked: {checked:?}"
        );
    }
}

/// The parser really rejects what is wrong: a misspelt flag in a kit-shaped command line fails.
#[test]
fn a_misspelt_flag_in_a_container_command_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args([
            "gateway",
            "--upstream",
            "http://127.0.0.1:3000/mcp",
            "--drain-timout",
            "25s",
            "--check-config",
        ])
        .output()
        .expect("run lifeline");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}
