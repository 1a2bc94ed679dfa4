//! Views over parsed objects that the rules share: workloads and their pod templates, replica
//! ranges after autoscalers, label selectors, and how a container runs Lifeline.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::source::{Body, Object};

/// The Lifeline gateway's default `--drain-delay` (kept in step with `lifeline gateway --help`).
pub(crate) const GATEWAY_DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// The Lifeline gateway's default `--drain-timeout`.
pub(crate) const GATEWAY_DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// Kubernetes' default `terminationGracePeriodSeconds`.
pub(crate) const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Annotation listing rule ids to skip for one object: `lifeline.dev/allow: "a/b, c/d"`.
pub(crate) const ALLOW_ANNOTATION: &str = "lifeline.dev/allow";
/// Annotation that marks a workload as keeping per-session state in memory (`"true"`) or not
/// (`"false"`; overrides the default for Lifeline gateways).
pub(crate) const STATEFUL_ANNOTATION: &str = "lifeline.dev/stateful";

/// A pod-owning object (Deployment, StatefulSet, DaemonSet, Job, CronJob, bare Pod) seen
/// through its pod spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload<'a> {
    pub(crate) obj: &'a Object,
    pub(crate) spec: &'a PodSpec,
    pub(crate) labels: Option<&'a BTreeMap<String, String>>,
    pub(crate) template_annotations: Option<&'a BTreeMap<String, String>>,
    /// Path of the pod spec inside the object: `spec.template.spec` or `spec`.
    pub(crate) spec_path: &'static str,
    /// `spec.replicas` as written (Deployment/StatefulSet only).
    pub(crate) replicas: Option<i32>,
    pub(crate) replicated: bool,
}

/// A scaler (HPA or KEDA ScaledObject) aimed at a workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scaler<'a> {
    pub(crate) obj: &'a Object,
    pub(crate) target_kind: &'a str,
    pub(crate) target_name: &'a str,
    pub(crate) min: i32,
    pub(crate) max: i32,
}

/// How a container runs the `lifeline` binary, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lifeline {
    Gateway {
        /// `-- <cmd>` given: the upstream is a stdio child inside the container.
        stdio: bool,
        drain_delay: Duration,
        drain_timeout: Duration,
        /// The edge tier (`docs/gateway-replicas.md`): `--session-key-file` given (or `LIFELINE_SESSION_KEY_FILE`
        /// set), so session ids are sealed and any replica serves any session: no affinity is needed in front of
        /// it, and the pool it fronts pins each session to its pod. The same holds for a federation (`servers:`,
        /// `docs/gateway-federation.md` §Sessions): its legacy clients' ids are sealed too.
        edge: bool,
    },
    Monitor,
}

impl<'a> Workload<'a> {
    pub(crate) fn of(obj: &'a Object) -> Option<Self> {
        let (spec, meta, spec_path, replicas, replicated) = match &obj.body {
            Body::Deployment(d) => {
                let s = &d.spec;
                (
                    s.template.spec.as_ref()?,
                    s.template.metadata.as_ref(),
                    "spec.template.spec",
                    s.replicas,
                    true,
                )
            }
            Body::StatefulSet(d) => {
                let s = &d.spec;
                (
                    s.template.spec.as_ref()?,
                    s.template.metadata.as_ref(),
                    "spec.template.spec",
                    s.replicas,
                    true,
                )
            }
            Body::DaemonSet(d) => {
                let s = &d.spec;
                (
                    s.template.spec.as_ref()?,
                    s.template.metadata.as_ref(),
                    "spec.template.spec",
                    None,
                    false,
                )
            }
            Body::Job(j) => {
                let t = &j.spec.as_ref()?.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref(),
                    "spec.template.spec",
                    None,
                    false,
                )
            }
            Body::CronJob(c) => {
                let t = &c.spec.job_template.spec.as_ref()?.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref(),
                    "spec.jobTemplate.spec.template.spec",
                    None,
                    false,
                )
            }
            Body::Pod(p) => (p.spec.as_ref()?, Some(&obj.meta), "spec", None, false),
            _ => return None,
        };
        Some(Workload {
            obj,
            spec,
            labels: meta.and_then(|m| m.labels.as_ref()),
            template_annotations: meta.and_then(|m| m.annotations.as_ref()),
            spec_path,
            replicas,
            replicated,
        })
    }

    /// Path of container `i` of `spec.containers`.
    pub(crate) fn container_path(&self, i: usize) -> String {
        format!("{}.containers[{i}]", self.spec_path)
    }

    /// Regular containers with their paths, then init containers (only if `with_init`).
    pub(crate) fn containers(&self, with_init: bool) -> Vec<(String, &'a Container)> {
        let mut out: Vec<_> = self
            .spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (self.container_path(i), c))
            .collect();
        if with_init {
            for (i, c) in self.spec.init_containers.iter().flatten().enumerate() {
                out.push((format!("{}.initContainers[{i}]", self.spec_path), c));
            }
        }
        out
    }

    /// Whether a label set on the pod template satisfies `selector` (a Service selector map).
    pub(crate) fn matches_map(&self, selector: &BTreeMap<String, String>) -> bool {
        let labels = self.labels;
        selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    }

    /// Whether the pod template matches a `LabelSelector` (PDB). An empty selector matches all.
    pub(crate) fn matches_selector(&self, selector: &LabelSelector) -> bool {
        let empty = BTreeMap::new();
        let labels = self.labels.unwrap_or(&empty);
        let labels_ok = selector
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let got = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => got.is_some_and(|g| values.contains(g)),
                "NotIn" => got.is_none_or(|g| !values.contains(g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                _ => false,
            }
        });
        labels_ok && exprs_ok
    }

    /// Annotation value on the object or on its pod template.
    pub(crate) fn annotation(&self, key: &str) -> Option<&'a str> {
        self.obj
            .meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .or_else(|| self.template_annotations.and_then(|a| a.get(key)))
            .map(String::as_str)
    }

    /// Whether a container is declared in any container's `ports` by number.
    pub(crate) fn declares_port_number(&self, n: i32) -> bool {
        self.spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten())
            .flat_map(|c| c.ports.iter().flatten())
            .any(|p| p.container_port == n)
    }
}

impl<'a> Scaler<'a> {
    pub(crate) fn of(obj: &'a Object) -> Option<Self> {
        match &obj.body {
            Body::Hpa(h) => {
                let s = &h.spec;
                Some(Scaler {
                    obj,
                    target_kind: &s.scale_target_ref.kind,
                    target_name: &s.scale_target_ref.name,
                    min: s.min_replicas.unwrap_or(1),
                    max: s.max_replicas,
                })
            }
            Body::ScaledObject(so) => Some(Scaler {
                obj,
                target_kind: so
                    .spec
                    .scale_target_ref
                    .kind
                    .as_deref()
                    .unwrap_or("Deployment"),
                target_name: &so.spec.scale_target_ref.name,
                min: so.spec.min_replica_count.unwrap_or(0),
                max: so.spec.max_replica_count.unwrap_or(100),
            }),
            _ => None,
        }
    }

    pub(crate) fn targets(&self, w: &Workload<'_>) -> bool {
        self.target_kind == w.obj.kind
            && self.target_name == w.obj.name()
            && self.obj.namespace() == w.obj.namespace()
    }
}

/// Resolves an IntOrString count against `total` the way the API server does for
/// `maxUnavailable` (percentages round down) or `minAvailable` (round up).
pub(crate) fn resolve_count(v: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match v {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => {
            let pct: i64 = s.trim().strip_suffix('%')?.trim().parse().ok()?;
            let scaled = pct * i64::from(total);
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).ok()
        }
    }
}

/// The command line of a container split into words (shell strings are split on whitespace).
pub(crate) fn words(c: &Container) -> Vec<&str> {
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .flat_map(|s| s.split_whitespace())
        .collect()
}

/// Repository name of an image reference: `ghcr.io/a/lifeline:1.0@sha256:..` → `lifeline`.
pub(crate) fn image_repo_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// Detects `lifeline gateway …` / `lifeline monitor …` in a container's command line, either
/// spelled out (`command: [lifeline, gateway]`, `sh -c "lifeline gateway …"`) or as the first
/// argument to an image whose entrypoint is `lifeline` (repository name containing `lifeline`).
pub(crate) fn lifeline_of(c: &Container) -> Option<Lifeline> {
    let w = words(c);
    let image_is_lifeline = c
        .image
        .as_deref()
        .is_some_and(|i| image_repo_name(i).contains("lifeline"));
    let first_arg_index = if c.command.as_ref().is_none_or(Vec::is_empty) {
        Some(0)
    } else {
        None
    };
    let pos = w.iter().enumerate().position(|(i, t)| {
        (*t == "gateway" || *t == "monitor")
            && match i.checked_sub(1) {
                Some(p) => w[p].rsplit('/').next() == Some("lifeline"),
                None => image_is_lifeline && first_arg_index == Some(0),
            }
    })?;
    if w[pos] == "monitor" {
        return Some(Lifeline::Monitor);
    }
    let rest = &w[pos + 1..];
    let flags_end = rest.iter().position(|t| *t == "--").unwrap_or(rest.len());
    let flags = &rest[..flags_end];
    let stdio = flags_end < rest.len() && rest.len() > flags_end + 1;
    let edge = flags
        .iter()
        .any(|t| *t == "--session-key-file" || t.starts_with("--session-key-file="))
        || c.env
            .iter()
            .flatten()
            .any(|e| e.name == "LIFELINE_SESSION_KEY_FILE");
    Some(Lifeline::Gateway {
        stdio,
        edge,
        drain_delay: flag_duration(flags, "--drain-delay").unwrap_or(GATEWAY_DEFAULT_DRAIN_DELAY),
        drain_timeout: flag_duration(flags, "--drain-timeout")
            .unwrap_or(GATEWAY_DEFAULT_DRAIN_TIMEOUT),
    })
}

fn flag_duration(flags: &[&str], name: &str) -> Option<Duration> {
    let eq = format!("{name}=");
    let value = flags.iter().enumerate().find_map(|(i, t)| {
        if *t == name {
            flags.get(i + 1).copied()
        } else {
            t.strip_prefix(eq.as_str())
        }
    })?;
    humantime::parse_duration(value).ok()
}

/// Environment variables servers commonly read their own drain deadline from (seed "MCP server zero-downtime
/// deployment": its drain handler reads `DRAIN_TIMEOUT_MS`, default 25000), with the unit each name implies:
/// `Some(unit)` for a bare number under a name that carries its unit, `None` for a unitless name, whose value
/// may carry a unit (`30s`, `25000ms`, `1m`) and is read as seconds when it is a bare number.
const SERVER_DRAIN_ENV: &[(&str, Option<Duration>)] = &[
    ("DRAIN_TIMEOUT_MS", Some(Duration::from_millis(1))),
    ("SHUTDOWN_TIMEOUT_MS", Some(Duration::from_millis(1))),
    (
        "GRACEFUL_SHUTDOWN_TIMEOUT_MS",
        Some(Duration::from_millis(1)),
    ),
    ("DRAIN_TIMEOUT_SECONDS", Some(Duration::from_secs(1))),
    ("SHUTDOWN_TIMEOUT_SECONDS", Some(Duration::from_secs(1))),
    (
        "GRACEFUL_SHUTDOWN_TIMEOUT_SECONDS",
        Some(Duration::from_secs(1)),
    ),
    ("DRAIN_TIMEOUT", None),
    ("SHUTDOWN_TIMEOUT", None),
    ("GRACEFUL_SHUTDOWN_TIMEOUT", None),
];

/// The longest drain a container's own server announces in a literal `env` value (`valueFrom` is not
/// followed), with the variable as written (`DRAIN_TIMEOUT_MS=25000`). Unparsable values are ignored.
pub(crate) fn server_drain(c: &Container) -> Option<(Duration, String)> {
    c.env
        .iter()
        .flatten()
        .filter_map(|e| {
            let (_, unit) = SERVER_DRAIN_ENV.iter().find(|(n, _)| *n == e.name)?;
            let value = e.value.as_deref()?.trim();
            let drain = match (value.parse::<u32>(), unit) {
                (Ok(n), Some(unit)) => unit.checked_mul(n)?,
                (Ok(n), None) => Duration::from_secs(u64::from(n)),
                (Err(_), Some(_)) => return None,
                (Err(_), None) => humantime::parse_duration(value).ok()?,
            };
            Some((drain, format!("{}={value}", e.name)))
        })
        .max_by_key(|(d, _)| *d)
}

/// Seconds a `preStop` hook waits: the `sleep` action, or the largest `sleep N` in an exec
/// command. `Some(0)` for a hook that does something else; `None` without a hook.
pub(crate) fn prestop_sleep_seconds(c: &Container) -> Option<i64> {
    let pre = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
    if let Some(s) = &pre.sleep {
        return Some(s.seconds);
    }
    let from_exec = pre.exec.as_ref().and_then(|e| {
        let w: Vec<&str> = e
            .command
            .iter()
            .flatten()
            .flat_map(|s| s.split(|ch: char| ch.is_whitespace() || ch == ';' || ch == '&'))
            .filter(|s| !s.is_empty())
            .collect();
        w.windows(2)
            .filter(|p| p[0] == "sleep" || p[0].ends_with("/sleep"))
            .filter_map(|p| p[1].trim_end_matches('s').parse::<f64>().ok())
            .map(|s| s.ceil() as i64)
            .max()
    });
    Some(from_exec.unwrap_or(0))
}

/// What a probe calls, normalised so two probes can be compared.
pub(crate) fn probe_endpoint(p: &Probe, c: &Container) -> Option<String> {
    let port = |v: &IntOrString| match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map_or_else(|| name.clone(), |p| p.container_port.to_string()),
    };
    if let Some(h) = &p.http_get {
        let path = h.path.as_deref().unwrap_or("/");
        return Some(format!("GET {path} on port {}", port(&h.port)));
    }
    if let Some(t) = &p.tcp_socket {
        return Some(format!("TCP connect to port {}", port(&t.port)));
    }
    if let Some(g) = &p.grpc {
        return Some(format!(
            "gRPC health {} on port {}",
            g.service.as_deref().unwrap_or(""),
            g.port
        ));
    }
    p.exec.as_ref().map(|e| {
        format!(
            "exec {}",
            e.command
                .iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: &[&str], args: &[&str]) -> Container {
        let v = |s: &[&str]| (!s.is_empty()).then(|| s.iter().map(|x| x.to_string()).collect());
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: v(command),
            args: v(args),
            ..Container::default()
        }
    }

    #[test]
    fn server_drain_reads_the_common_env_names_and_units() {
        let with_env = |vars: &[(&str, &str)]| Container {
            env: Some(
                vars.iter()
                    .map(|(n, v)| k8s_openapi::api::core::v1::EnvVar {
                        name: (*n).into(),
                        value: Some((*v).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..container("mcp:1", &[], &[])
        };
        let secs = |c: &Container| server_drain(c).map(|(d, var)| (d.as_millis(), var));
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<(u128, &'a str)>);
        let cases: &[Case<'_>] = &[
            (
                &[("DRAIN_TIMEOUT_MS", "25000")],
                Some((25_000, "DRAIN_TIMEOUT_MS=25000")),
            ),
            (
                &[("SHUTDOWN_TIMEOUT", "30")],
                Some((30_000, "SHUTDOWN_TIMEOUT=30")),
            ),
            (
                &[("SHUTDOWN_TIMEOUT", "30s")],
                Some((30_000, "SHUTDOWN_TIMEOUT=30s")),
            ),
            (
                &[("DRAIN_TIMEOUT", "1500ms")],
                Some((1_500, "DRAIN_TIMEOUT=1500ms")),
            ),
            (
                &[("GRACEFUL_SHUTDOWN_TIMEOUT", "1m")],
                Some((60_000, "GRACEFUL_SHUTDOWN_TIMEOUT=1m")),
            ),
            (
                &[("DRAIN_TIMEOUT_SECONDS", "40")],
                Some((40_000, "DRAIN_TIMEOUT_SECONDS=40")),
            ),
            // The longest wins.
            (
                &[("DRAIN_TIMEOUT_MS", "25000"), ("SHUTDOWN_TIMEOUT", "40s")],
                Some((40_000, "SHUTDOWN_TIMEOUT=40s")),
            ),
            // Units in a name that already has one, junk and unrelated names are not read.
            (&[("DRAIN_TIMEOUT_MS", "25s")], None),
            (&[("DRAIN_TIMEOUT", "soon")], None),
            (&[("DRAIN_TIMEOUT_MS", "-1")], None),
            (&[("REQUEST_TIMEOUT_MS", "25000")], None),
            (&[], None),
        ];
        for (vars, want) in cases {
            let got = secs(&with_env(vars));
            assert_eq!(
                got.as_ref().map(|(ms, v)| (*ms, v.as_str())),
                *want,
                "{vars:?}"
            );
        }
    }

    #[test]
    fn lifeline_invocations_are_recognised() {
        let gw = |stdio, d, t| Lifeline::Gateway {
            stdio,
            edge: false,
            drain_delay: Duration::from_secs(d),
            drain_timeout: Duration::from_secs(t),
        };
        let cases: Vec<(Container, Option<Lifeline>)> = vec![
            (
                container("r/lifeline:1", &[], &["gateway", "--upstream", "http://x"]),
                Some(gw(false, 5, 25)),
            ),
            (
                container(
                    "r/app:1",
                    &["/usr/bin/lifeline"],
                    &["gateway", "--drain-delay=2s", "--drain-timeout", "1m"],
                ),
                Some(gw(false, 2, 60)),
            ),
            (
                container(
                    "r/app:1",
                    &["sh", "-c", "exec lifeline gateway --listen :1 -- node s.js"],
                    &[],
                ),
                Some(gw(true, 5, 25)),
            ),
            (
                container("r/lifeline:1", &[], &["monitor", "--config", "/c.yaml"]),
                Some(Lifeline::Monitor),
            ),
            (container("r/app:1", &[], &["gateway"]), None),
            (container("r/lifeline:1", &["node"], &["gateway"]), None),
        ];
        for (c, want) in cases {
            assert_eq!(lifeline_of(&c), want, "{:?} {:?}", c.command, c.args);
        }
    }

    #[test]
    fn percentages_round_like_the_api_server() {
        let s = |v: &str| IntOrString::String(v.into());
        assert_eq!(resolve_count(&s("25%"), 2, false), Some(0));
        assert_eq!(resolve_count(&s("25%"), 2, true), Some(1));
        assert_eq!(resolve_count(&s("100%"), 3, false), Some(3));
        assert_eq!(resolve_count(&IntOrString::Int(1), 3, false), Some(1));
        assert_eq!(resolve_count(&s("half"), 3, false), None);
    }

    #[test]
    fn prestop_sleeps_are_read_from_the_sleep_action_and_exec_commands() {
        use k8s_openapi::api::core::v1::{ExecAction, Lifecycle, LifecycleHandler, SleepAction};
        let with = |pre: Option<LifecycleHandler>| Container {
            lifecycle: Some(Lifecycle {
                pre_stop: pre,
                ..Lifecycle::default()
            }),
            ..Container::default()
        };
        let exec = |cmd: &[&str]| LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
            }),
            ..LifecycleHandler::default()
        };
        let sleep = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 7 }),
            ..LifecycleHandler::default()
        };
        assert_eq!(prestop_sleep_seconds(&Container::default()), None);
        assert_eq!(prestop_sleep_seconds(&with(None)), None);
        assert_eq!(prestop_sleep_seconds(&with(Some(sleep))), Some(7));
        assert_eq!(
            prestop_sleep_seconds(&with(Some(exec(&["sleep", "5"])))),
            Some(5)
        );
        assert_eq!(
            prestop_sleep_seconds(&with(Some(exec(&[
                "/bin/sh",
                "-c",
                "kill -SIGTERM 1 && sleep 55"
            ])))),
            Some(55)
        );
        assert_eq!(
            prestop_sleep_seconds(&with(Some(exec(&["sh", "-c", "sleep 2.5s;nginx -s quit"])))),
            Some(3)
        );
        assert_eq!(
            prestop_sleep_seconds(&with(Some(exec(&["/drain.sh"])))),
            Some(0)
        );
    }

    #[test]
    fn image_repo_names() {
        for (image, want) in [
            ("lifeline", "lifeline"),
            ("ghcr.io/org/lifeline:0.1.0", "lifeline"),
            ("localhost:5000/lifeline-stdio@sha256:abc", "lifeline-stdio"),
        ] {
            assert_eq!(image_repo_name(image), want);
        }
    }
}
