//! Table-driven checks of every rule against the fixtures under `tests/fixtures/`: one bad
//! manifest per rule (`rules/`), the seed guides' manifests (`seeds/`), the clean baseline
//! (`good/`), and input handling (`inputs/`). Each case asserts the exact findings:
//! rule id, object, field path and line.

use std::path::{Path, PathBuf};

use lifeline_k8s::{lint_sources, rules, LintOptions, LintReport, Severity, Source};

/// (rule id, object as `Kind/name`, field path, line)
type Expected = (&'static str, &'static str, &'static str, usize);

const C0: &str = "spec.template.spec.containers[0]";

fn fixture(rel: &str) -> Source {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Source {
        name: rel.to_owned(),
        text,
    }
}

fn lint(rels: &[&str], opts: &LintOptions) -> LintReport {
    let sources: Vec<Source> = rels.iter().map(|r| fixture(r)).collect();
    lint_sources(&sources, opts)
}

fn actual(report: &LintReport) -> Vec<(String, String, String, usize)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.to_owned(),
                f.object.to_string(),
                f.field_path.clone(),
                f.line.unwrap_or(0),
            )
        })
        .collect()
}

fn expected(list: &[Expected]) -> Vec<(String, String, String, usize)> {
    list.iter()
        .map(|(r, o, p, l)| ((*r).to_owned(), (*o).to_owned(), p.replace("C0", C0), *l))
        .collect()
}

fn rule_cases() -> Vec<(&'static str, Vec<Expected>)> {
    vec![
        (
            "rules/rbac-wildcard.yaml",
            vec![
                ("rbac/wildcard", "Role/mcp-pods", "rules[0].verbs", 75),
                (
                    "rbac/wildcard",
                    "ClusterRole/mcp-reader",
                    "rules[1].resources",
                    94,
                ),
            ],
        ),
        (
            "rules/rbac-token-unused.yaml",
            vec![(
                "rbac/token-unused",
                "Deployment/mcp",
                "spec.template.spec.automountServiceAccountToken",
                17,
            )],
        ),
        (
            "rules/rbac-token-unused-other-account.yaml",
            vec![(
                "rbac/token-unused",
                "Deployment/mcp",
                "spec.template.spec.automountServiceAccountToken",
                17,
            )],
        ),
        (
            "rules/probe-liveness-tcp.yaml",
            vec![(
                "probe/liveness-tcp",
                "Deployment/mcp",
                "C0.livenessProbe.tcpSocket",
                38,
            )],
        ),
        (
            "rules/probe-shared-endpoint.yaml",
            vec![(
                "probe/shared-endpoint",
                "Deployment/mcp",
                "C0.livenessProbe",
                37,
            )],
        ),
        (
            "rules/probe-liveness-mcp.yaml",
            vec![(
                "probe/liveness-mcp",
                "Deployment/mcp",
                "C0.livenessProbe",
                37,
            )],
        ),
        (
            "rules/probe-readiness-not-mcp.yaml",
            vec![(
                "probe/readiness-not-mcp",
                "Deployment/mcp",
                "C0.readinessProbe",
                45,
            )],
        ),
        (
            "rules/probe-missing.yaml",
            vec![("probe/missing", "Deployment/mcp", "C0.readinessProbe", 22)],
        ),
        (
            "rules/probe-startup-missing.yaml",
            vec![(
                "probe/startup-missing",
                "Deployment/mcp",
                "C0.livenessProbe.initialDelaySeconds",
                35,
            )],
        ),
        (
            "rules/probe-port-not-exposed.yaml",
            vec![
                (
                    "probe/port-not-exposed",
                    "Deployment/mcp",
                    "C0.startupProbe.httpGet.port",
                    34,
                ),
                (
                    "probe/port-not-exposed",
                    "Deployment/mcp",
                    "C0.readinessProbe.httpGet.port",
                    42,
                ),
            ],
        ),
        (
            "rules/lifecycle-grace-period.yaml",
            vec![(
                "lifecycle/grace-period",
                "Deployment/mcp",
                "spec.template.spec.terminationGracePeriodSeconds",
                19,
            )],
        ),
        (
            // No gateway: the server's own DRAIN_TIMEOUT_MS sets the drain the grace period must fit.
            "rules/lifecycle-grace-period-server-drain.yaml",
            vec![(
                "lifecycle/grace-period",
                "Deployment/mcp",
                "spec.template.spec.terminationGracePeriodSeconds",
                20,
            )],
        ),
        (
            "rules/lifecycle-prestop-missing.yaml",
            vec![(
                "lifecycle/prestop-missing",
                "Deployment/mcp",
                "C0.lifecycle.preStop",
                22,
            )],
        ),
        (
            "rules/rollout-max-unavailable.yaml",
            vec![(
                "rollout/max-unavailable",
                "Deployment/mcp",
                "spec.strategy.rollingUpdate.maxUnavailable",
                11,
            )],
        ),
        (
            "rules/replicas-too-few.yaml",
            vec![("replicas/too-few", "Deployment/mcp", "spec.replicas", 8)],
        ),
        (
            "rules/pdb-missing.yaml",
            vec![("pdb/missing", "Deployment/mcp", "metadata.name", 6)],
        ),
        (
            "rules/pdb-blocks-drain.yaml",
            vec![(
                "pdb/blocks-drain",
                "PodDisruptionBudget/mcp",
                "spec.minAvailable",
                50,
            )],
        ),
        (
            "rules/hpa-pdb-missing.yaml",
            vec![(
                "hpa/pdb-missing",
                "HorizontalPodAutoscaler/mcp",
                "spec.scaleTargetRef",
                58,
            )],
        ),
        (
            "rules/hpa-scale-down-window.yaml",
            vec![(
                "hpa/scale-down-window",
                "HorizontalPodAutoscaler/mcp",
                "spec.behavior.scaleDown.stabilizationWindowSeconds",
                74,
            )],
        ),
        (
            "rules/image-tag.yaml",
            vec![
                (
                    "image/tag",
                    "Deployment/mcp",
                    "spec.template.spec.initContainers[0].image",
                    23,
                ),
                ("image/tag", "Deployment/mcp", "C0.image", 29),
            ],
        ),
        (
            "rules/resources-missing.yaml",
            vec![("resources/missing", "Deployment/mcp", "C0.resources", 26)],
        ),
        (
            "rules/security-root.yaml",
            vec![("security/root", "Deployment/mcp", "C0.securityContext", 28)],
        ),
        (
            "rules/secret-inline-env.yaml",
            vec![
                ("secret/inline-env", "Deployment/mcp", "C0.env[1].value", 28),
                ("secret/inline-env", "Deployment/mcp", "C0.env[4].value", 33),
            ],
        ),
        (
            "rules/secret-committed.yaml",
            vec![("secret/committed", "Secret/mcp-secrets", "stringData", 68)],
        ),
        (
            "rules/ingress-sse-timeouts.yaml",
            vec![
                (
                    "ingress/sse-timeouts",
                    "Ingress/mcp",
                    "metadata.annotations",
                    67,
                ),
                (
                    "ingress/sse-timeouts",
                    "Ingress/mcp",
                    "metadata.annotations[\"nginx.ingress.kubernetes.io/proxy-read-timeout\"]",
                    68,
                ),
                (
                    "ingress/sse-timeouts",
                    "Ingress/mcp",
                    "metadata.annotations[\"nginx.ingress.kubernetes.io/proxy-buffering\"]",
                    69,
                ),
            ],
        ),
        (
            "rules/affinity-missing.yaml",
            vec![("affinity/missing", "Deployment/mcp", "metadata.name", 6)],
        ),
        (
            "rules/service-nginx-annotations.yaml",
            vec![(
                "service/nginx-annotations",
                "Service/mcp",
                "metadata.annotations[\"nginx.ingress.kubernetes.io/affinity\"]",
                59,
            )],
        ),
        (
            "rules/service-no-endpoints.yaml",
            vec![("service/no-endpoints", "Service/mcp", "spec.selector", 59)],
        ),
    ]
}

#[test]
fn each_rule_fixture_yields_exactly_its_findings() {
    let mut failures = Vec::new();
    for (file, want) in rule_cases() {
        let report = lint(&[file], &LintOptions::default());
        assert!(report.errors.is_empty(), "{file}: {:?}", report.errors);
        if actual(&report) != expected(&want) {
            failures.push(format!(
                "{file}:\n  want {:?}\n  got  {:?}",
                expected(&want),
                actual(&report)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_fixture_named_after_it() {
    let cases = rule_cases();
    for r in rules() {
        let file = format!("rules/{}.yaml", r.id.replace('/', "-"));
        let case = cases.iter().find(|(f, _)| *f == file);
        let case = case.unwrap_or_else(|| panic!("no fixture case {file} for rule {}", r.id));
        assert!(
            case.1.iter().all(|(id, ..)| *id == r.id),
            "{file} must only break {}",
            r.id
        );
    }
    // Every case is a rule's fixture or one of its variants (`rules/<id>-<variant>.yaml`), and breaks only it.
    for (file, want) in &cases {
        let stem = file
            .strip_prefix("rules/")
            .and_then(|f| f.strip_suffix(".yaml"))
            .unwrap_or_else(|| panic!("{file} is not under rules/"));
        let owner = rules()
            .iter()
            .filter(|r| {
                let name = r.id.replace('/', "-");
                stem == name || stem.starts_with(&format!("{name}-"))
            })
            .max_by_key(|r| r.id.len())
            .unwrap_or_else(|| panic!("{file} is named after no rule"));
        assert!(
            want.iter().all(|(id, ..)| *id == owner.id),
            "{file} must only break {}",
            owner.id
        );
    }
}

#[test]
fn the_clean_baseline_has_no_findings() {
    let report = lint(&["good/minimal.yaml"], &LintOptions::default());
    assert_eq!(actual(&report), vec![]);
    assert!(report.errors.is_empty());
    assert_eq!((report.objects_checked, report.objects_skipped), (3, 0));
}

#[test]
fn a_narrow_role_bound_to_the_servers_account_is_clean() {
    let report = lint(&["good/rbac-least-privilege.yaml"], &LintOptions::default());
    assert_eq!(actual(&report), vec![]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.objects_checked, 6);
}

#[test]
fn the_token_opt_out_counts_on_the_service_account_and_the_pod_wins() {
    let unset = fixture("rules/rbac-token-unused.yaml").text;
    let with_account = |pod: &str, account: &str| {
        let text = unset.replace(
            "    spec:\n      terminationGracePeriodSeconds",
            &format!("    spec:\n      serviceAccountName: mcp\n{pod}      terminationGracePeriodSeconds"),
        );
        let text = format!(
            "{text}---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: mcp\n{account}"
        );
        let report = lint_sources(
            &[Source {
                name: "sa.yaml".into(),
                text,
            }],
            &LintOptions::default(),
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report
            .findings
            .iter()
            .map(|f| f.rule_id)
            .collect::<Vec<_>>()
    };
    let off = "automountServiceAccountToken: false\n";
    let on = "automountServiceAccountToken: true\n";
    // The ServiceAccount opts out: no token, nothing to flag.
    assert_eq!(with_account("", off), Vec::<&str>::new());
    // The pod's own setting overrides the ServiceAccount's, both ways.
    assert_eq!(
        with_account(&format!("      {on}"), off),
        vec!["rbac/token-unused"]
    );
    assert_eq!(
        with_account(&format!("      {off}"), on),
        Vec::<&str>::new()
    );
    // Neither says: Kubernetes mounts it.
    assert_eq!(with_account("", ""), vec!["rbac/token-unused"]);
}

#[test]
fn seed_guide_manifests_yield_the_expected_findings() {
    let cases: Vec<(&str, Vec<Expected>)> = vec![
        (
            // /healthz for all three probes and :latest.
            "seeds/k8s-guide-healthz-latest.yaml",
            vec![
                (
                    "rbac/token-unused",
                    "Deployment/mcp-server",
                    "spec.template.spec.automountServiceAccountToken",
                    18,
                ),
                (
                    "lifecycle/prestop-missing",
                    "Deployment/mcp-server",
                    "C0.lifecycle.preStop",
                    21,
                ),
                (
                    "security/root",
                    "Deployment/mcp-server",
                    "C0.securityContext",
                    21,
                ),
                ("image/tag", "Deployment/mcp-server", "C0.image", 22),
                (
                    "probe/shared-endpoint",
                    "Deployment/mcp-server",
                    "C0.livenessProbe",
                    48,
                ),
                (
                    "service/nginx-annotations",
                    "Service/mcp-server",
                    "metadata.annotations[\"nginx.ingress.kubernetes.io/affinity\"]",
                    72,
                ),
                (
                    "secret/committed",
                    "Secret/mcp-server-secrets",
                    "stringData",
                    87,
                ),
            ],
        ),
        (
            "seeds/liveness-guide.yaml",
            vec![
                ("pdb/missing", "Deployment/mcp-server", "metadata.name", 7),
                (
                    "rbac/token-unused",
                    "Deployment/mcp-server",
                    "spec.template.spec.automountServiceAccountToken",
                    17,
                ),
                (
                    "lifecycle/prestop-missing",
                    "Deployment/mcp-server",
                    "C0.lifecycle.preStop",
                    19,
                ),
                (
                    "security/root",
                    "Deployment/mcp-server",
                    "C0.securityContext",
                    19,
                ),
            ],
        ),
        (
            "seeds/52-percent-guide.yaml",
            vec![
                (
                    "rbac/token-unused",
                    "Deployment/my-mcp-server",
                    "spec.template.spec.automountServiceAccountToken",
                    20,
                ),
                (
                    "lifecycle/prestop-missing",
                    "Deployment/my-mcp-server",
                    "C0.lifecycle.preStop",
                    26,
                ),
                (
                    "probe/startup-missing",
                    "Deployment/my-mcp-server",
                    "C0.livenessProbe.initialDelaySeconds",
                    41,
                ),
                ("secret/committed", "Secret/mcp-secrets", "stringData", 97),
                (
                    "rbac/token-unused",
                    "CronJob/mcp-health-monitor",
                    "spec.jobTemplate.spec.template.spec.automountServiceAccountToken",
                    111,
                ),
                (
                    "resources/missing",
                    "CronJob/mcp-health-monitor",
                    "spec.jobTemplate.spec.template.spec.containers[0].resources",
                    113,
                ),
                (
                    "security/root",
                    "CronJob/mcp-health-monitor",
                    "spec.jobTemplate.spec.template.spec.containers[0].securityContext",
                    113,
                ),
                (
                    "image/tag",
                    "CronJob/mcp-health-monitor",
                    "spec.jobTemplate.spec.template.spec.containers[0].image",
                    114,
                ),
                (
                    "hpa/pdb-missing",
                    "HorizontalPodAutoscaler/mcp-server-hpa",
                    "spec.scaleTargetRef",
                    143,
                ),
            ],
        ),
        (
            "seeds/zero-downtime-guide.yaml",
            vec![
                ("pdb/missing", "Deployment/mcp-server", "metadata.name", 7),
                (
                    "rbac/token-unused",
                    "Deployment/mcp-server",
                    "spec.template.spec.automountServiceAccountToken",
                    16,
                ),
                (
                    "resources/missing",
                    "Deployment/mcp-server",
                    "C0.resources",
                    20,
                ),
                (
                    "security/root",
                    "Deployment/mcp-server",
                    "C0.securityContext",
                    20,
                ),
                (
                    "probe/port-not-exposed",
                    "Deployment/mcp-server",
                    "C0.readinessProbe.httpGet.port",
                    29,
                ),
                (
                    "probe/port-not-exposed",
                    "Deployment/mcp-server",
                    "C0.livenessProbe.httpGet.port",
                    37,
                ),
                (
                    "probe/startup-missing",
                    "Deployment/mcp-server",
                    "C0.livenessProbe.initialDelaySeconds",
                    38,
                ),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (file, want) in cases {
        let report = lint(&[file], &LintOptions::default());
        assert!(report.errors.is_empty(), "{file}: {:?}", report.errors);
        if actual(&report) != expected(&want) {
            failures.push(format!(
                "{file}:\n  want {:?}\n  got  {:?}",
                expected(&want),
                actual(&report)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_yaml_is_an_input_error_with_a_line_and_other_files_are_still_checked() {
    let report = lint(
        &["inputs/bad-yaml.yaml", "rules/image-tag.yaml"],
        &LintOptions::default(),
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let e = &report.errors[0];
    assert_eq!(e.file, "inputs/bad-yaml.yaml");
    // The parser notices the unclosed `[` where the next key starts.
    assert!(matches!(e.line, Some(7..=8)), "{e:?}");
    assert!(e.message.starts_with("invalid YAML:"), "{e:?}");
    assert_eq!(report.findings.len(), 2);
    assert!(report
        .findings
        .iter()
        .all(|f| f.file == "rules/image-tag.yaml" && f.rule_id == "image/tag"));
}

#[test]
fn allow_annotation_on_the_pod_template_silences_only_that_rule() {
    let report = lint(
        &["inputs/allowed-on-template.yaml"],
        &LintOptions::default(),
    );
    assert_eq!(actual(&report), vec![]);
}

#[test]
fn global_allow_accepts_ids_and_categories() {
    let opts = |allow: &[&str]| LintOptions {
        allow: allow.iter().map(|s| (*s).to_owned()).collect(),
    };
    let file = "seeds/k8s-guide-healthz-latest.yaml";
    let all = lint(&[file], &LintOptions::default()).findings.len();
    let without_tag = lint(&[file], &opts(&["image/tag"])).findings;
    assert_eq!(without_tag.len(), all - 1);
    assert!(without_tag.iter().all(|f| f.rule_id != "image/tag"));
    let without_lifecycle_and_security =
        lint(&[file], &opts(&["lifecycle/*", "security/*"])).findings;
    assert_eq!(without_lifecycle_and_security.len(), all - 2);
    assert!(lint(&[file], &opts(&["*"])).findings.is_empty());
}

#[test]
fn findings_across_files_see_each_other() {
    // The PDB lives in another source than the Deployment it protects.
    let base = fixture("good/minimal.yaml").text;
    let (deploy, rest) = base
        .split_once("---\n")
        .expect("baseline has several documents");
    let sources = vec![
        Source {
            name: "deploy.yaml".into(),
            text: deploy.into(),
        },
        Source {
            name: "pdb-and-service.yaml".into(),
            text: rest.into(),
        },
    ];
    let report = lint_sources(&sources, &LintOptions::default());
    assert_eq!(actual(&report), vec![]);
    assert_eq!(report.max_severity(), None);
}

#[test]
fn max_severity_is_the_worst_finding() {
    let report = lint(
        &["rules/secret-inline-env.yaml", "rules/image-tag.yaml"],
        &LintOptions::default(),
    );
    assert_eq!(report.max_severity(), Some(Severity::Error));
    let report = lint(&["rules/image-tag.yaml"], &LintOptions::default());
    assert_eq!(report.max_severity(), Some(Severity::Warning));
}

#[test]
fn docs_list_every_rule() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kubernetes.md");
    let docs = std::fs::read_to_string(&path).expect("docs/kubernetes.md exists");
    for r in rules() {
        assert!(
            docs.contains(&format!("| `{}` | {} |", r.id, r.severity)),
            "docs/kubernetes.md lacks a row for {}",
            r.id
        );
    }
}

#[test]
fn truncated_manifests_never_panic_and_errors_point_inside_the_text() {
    // Every fixture cut after every line: half-written documents, dangling keys, open flows.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for sub in ["rules", "seeds", "good", "inputs"] {
        for entry in std::fs::read_dir(dir.join(sub))
            .expect("fixture dir")
            .flatten()
        {
            files.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
        }
    }
    let mut runs = 0;
    for file in files {
        let text = fixture(&file).text;
        let lines: Vec<&str> = text.lines().collect();
        for n in 0..=lines.len() {
            let cut = lines[..n].join("\n");
            let report = lint_sources(
                &[Source {
                    name: file.clone(),
                    text: cut,
                }],
                &LintOptions::default(),
            );
            for e in &report.errors {
                assert!(
                    e.line.is_some_and(|l| l >= 1 && l <= n.max(1) + 1),
                    "{file} cut at {n}: {e:?}"
                );
            }
            for f in &report.findings {
                assert!(
                    f.line.is_some_and(|l| l >= 1 && l <= n),
                    "{file} cut at {n}: {f:?}"
                );
            }
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs}");
}

/// The edge tier (`docs/gateway-replicas.md`): a gateway with `--session-key-file` (sealed session ids) needs no
/// affinity, and neither do the stateful pods it reaches only through a headless Service. Built from the
/// affinity/missing fixture: its gateway Deployment `mcp` becomes the server tier behind a headless Service, and a
/// copy of it named `edge` the edge gateway.
#[test]
fn the_edge_tier_needs_no_affinity() {
    let base = fixture("rules/affinity-missing.yaml").text;
    let (server, rest) = base.split_once("\n---\n").expect("the fixture's documents");
    let edge_gateway = |sealed: bool| {
        let args = if sealed {
            "args: [gateway, --config, /etc/lifeline/gateway.yaml, --session-key-file, /etc/lifeline/keys/session-keys]"
        } else {
            "args: [gateway, --config, /etc/lifeline/gateway.yaml]"
        };
        server
            .replace("name: mcp", "name: edge")
            .replace("{app: mcp}", "{app: edge}")
            .replace(
                r#"args: [gateway, --upstream, "http://127.0.0.1:3000/mcp", --listen, "0.0.0.0:8080", --admin-listen, "0.0.0.0:9090"]"#,
                args,
            )
    };
    let edge_rest = rest
        .replace("name: mcp", "name: edge")
        .replace("{app: mcp}", "{app: edge}");
    let headless = rest.replace(
        "spec:\n  selector: {app: mcp}",
        "spec:\n  clusterIP: None\n  selector: {app: mcp}",
    );
    assert_ne!(headless, rest, "the fixture's Service became headless");
    let affinity = |parts: &[&str]| -> Vec<String> {
        let report = lint_sources(
            &[Source {
                name: "edge.yaml".to_owned(),
                text: parts.join("\n---\n"),
            }],
            &LintOptions::default(),
        );
        report
            .findings
            .iter()
            .filter(|f| f.rule_id == "affinity/missing")
            .map(|f| format!("{}/{}", f.object.kind, f.object.name))
            .collect()
    };
    let sealed = edge_gateway(true);
    let unsealed = edge_gateway(false);
    assert_eq!(
        affinity(&[&sealed, &edge_rest, server, &headless]),
        Vec::<String>::new(),
        "edge gateway with sealed ids in front of a headless Service"
    );
    assert_eq!(
        affinity(&[&unsealed, &edge_rest, server, &headless]),
        vec!["Deployment/edge".to_owned(), "Deployment/mcp".to_owned()],
        "without sealed ids it is no edge tier: its own sessions need affinity, and so do the pods behind it"
    );
    assert_eq!(
        affinity(&[server, &headless]),
        vec!["Deployment/mcp".to_owned()],
        "a headless Service alone is not the edge tier"
    );
    assert_eq!(
        affinity(&[&sealed, &edge_rest, server, rest]),
        vec!["Deployment/mcp".to_owned()],
        "a ClusterIP Service balances the server pods itself: affinity is needed there"
    );
}
