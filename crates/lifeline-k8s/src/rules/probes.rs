//! Probe rules: what liveness, readiness and startup probes call, and on which port.
//!
//! Lifeline's gateway serves `/live` (process and event loop alive; never calls the upstream)
//! and `/ready` (a real MCP handshake with the upstream succeeded recently; 503 while draining).
//! The MCP handshake is `initialize` (spec 2025-06-18 basic/lifecycle#initialization) or
//! `server/discover` (2026-07-28); only readiness may depend on it.

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, RuleInfo, SEED_52, SEED_K8S, SEED_LIVENESS, SEED_ZERO};
use crate::model::{lifeline_of, probe_endpoint, Lifeline, Workload};
use crate::report::Severity;

/// Liveness `initialDelaySeconds` below which a container needs a startupProbe. Seed
/// "Kubernetes Liveness Probes": 30 s is its recommendation for a server with a connection
/// pool; anything slower than "minimal" should use a startupProbe instead of guessing.
pub(crate) const MIN_LIVENESS_DELAY_WITHOUT_STARTUP: i32 = 30;

pub(crate) const LIVENESS_TCP: RuleInfo = RuleInfo {
    id: "probe/liveness-tcp",
    severity: Severity::Warning,
    summary: "livenessProbe is a tcpSocket check",
    why: "A TCP probe only proves the port is open. A hung event loop, a deadlocked async queue or a saturated connection pool keeps the port open while every MCP message goes unanswered, so the pod is never restarted.",
    fix: "Use httpGet on a /live endpoint that must run on the event loop to answer (Lifeline's gateway serves /live on its admin port).",
    source: SEED_LIVENESS,
};

pub(crate) const SHARED_ENDPOINT: RuleInfo = RuleInfo {
    id: "probe/shared-endpoint",
    severity: Severity::Warning,
    summary: "livenessProbe and readinessProbe call the same endpoint",
    why: "Liveness answers 'restart me?', readiness answers 'send me traffic?'. Sharing one endpoint turns a temporary overload or a dependency outage into restarts, removing capacity exactly when it is needed; a trivial shared endpoint (/health, /healthz) also hides hangs.",
    fix: "Point livenessProbe at /live (cheap, no dependencies) and readinessProbe at /ready (exercises MCP).",
    source: SEED_LIVENESS,
};

pub(crate) const LIVENESS_MCP: RuleInfo = RuleInfo {
    id: "probe/liveness-mcp",
    severity: Severity::Warning,
    summary: "livenessProbe runs the MCP handshake (exec curl initialize, or GET /mcp)",
    why: "A protocol handshake is slow, spawns processes and depends on the upstream: under load it times out and Kubernetes kills healthy pods. The handshake belongs in the readiness probe and in external monitoring.",
    fix: "Use httpGet /live for liveness; move the MCP handshake to readinessProbe (/ready on the Lifeline gateway).",
    source: SEED_LIVENESS,
};

pub(crate) const READINESS_NOT_MCP: RuleInfo = RuleInfo {
    id: "probe/readiness-not-mcp",
    severity: Severity::Warning,
    summary: "Lifeline gateway container whose readinessProbe is not GET /ready",
    why: "A readiness probe that does not complete the MCP handshake passes while the protocol layer is broken, so the pod receives sessions it cannot serve. The gateway's /ready is the endpoint that checks the upstream over MCP and turns 503 while draining.",
    fix: "Set readinessProbe.httpGet.path: /ready on the gateway's admin port.",
    source: SEED_K8S,
};

pub(crate) const MISSING: RuleInfo = RuleInfo {
    id: "probe/missing",
    severity: Severity::Warning,
    summary: "serving container without a livenessProbe or readinessProbe",
    why: "Without readiness, Kubernetes routes sessions to a pod before it can serve and keeps routing to a draining pod; without liveness, a hung server is never restarted.",
    fix: "Add readinessProbe (GET /ready) and livenessProbe (GET /live); see deploy/kubernetes/base/deployment.yaml.",
    source: SEED_ZERO,
};

pub(crate) const STARTUP_MISSING: RuleInfo = RuleInfo {
    id: "probe/startup-missing",
    severity: Severity::Warning,
    summary: "livenessProbe without startupProbe and with initialDelaySeconds < 30",
    why: "With a short initial delay the liveness probe fires while the server is still starting (compiling, migrating, warming a pool, pulling an image) and Kubernetes restarts it in a loop.",
    fix: "Add a startupProbe on /live (e.g. periodSeconds: 10, failureThreshold: 30 for five minutes of start-up budget) and drop initialDelaySeconds from the liveness probe.",
    source: SEED_LIVENESS,
};

pub(crate) const PORT_NOT_EXPOSED: RuleInfo = RuleInfo {
    id: "probe/port-not-exposed",
    severity: Severity::Error,
    summary: "probe targets a port the container does not declare",
    why: "A named port that the container does not declare makes the probe fail forever; a numeric port that no container in the pod declares is usually a typo (3000 vs 8080), and the probe then fails or checks the wrong listener.",
    fix: "Declare the port under the container's ports (with a name) and refer to it by that name in the probe.",
    source: SEED_52,
};

pub(crate) fn check(ctx: &mut Ctx<'_>) {
    let workloads = ctx.workloads.clone();
    for w in &workloads {
        for (path, c) in w.containers(false) {
            check_container(ctx, w, &path, c);
        }
    }
}

fn check_container(ctx: &mut Ctx<'_>, w: &Workload<'_>, path: &str, c: &Container) {
    let obj = w.obj;
    let lifeline = lifeline_of(c);
    let liveness = c.liveness_probe.as_ref();
    let readiness = c.readiness_probe.as_ref();
    let name = &c.name;

    if let Some(p) = liveness.filter(|p| p.tcp_socket.is_some()) {
        let port = p
            .tcp_socket
            .as_ref()
            .map(|t| port_text(&t.port))
            .unwrap_or_default();
        ctx.emit(
            &LIVENESS_TCP,
            obj,
            &format!("{path}.livenessProbe.tcpSocket"),
            format!("container {name}: livenessProbe only opens a TCP connection to port {port}"),
        );
    }

    if let (Some(l), Some(r)) = (liveness, readiness) {
        let (le, re) = (probe_endpoint(l, c), probe_endpoint(r, c));
        if le.is_some() && le == re {
            ctx.emit(
                &SHARED_ENDPOINT,
                obj,
                &format!("{path}.livenessProbe"),
                format!(
                    "container {name}: livenessProbe and readinessProbe both call {}",
                    le.unwrap_or_default()
                ),
            );
        }
    }

    if let Some(l) = liveness {
        if let Some(what) = mcp_handshake(l) {
            ctx.emit(
                &LIVENESS_MCP,
                obj,
                &format!("{path}.livenessProbe"),
                format!("container {name}: livenessProbe {what}"),
            );
        }
    }

    if matches!(lifeline, Some(Lifeline::Gateway { .. })) {
        if let Some(r) = readiness {
            let http_path = r
                .http_get
                .as_ref()
                .map(|h| h.path.as_deref().unwrap_or("/"));
            if http_path != Some("/ready") {
                let got = probe_endpoint(r, c).unwrap_or_default();
                ctx.emit(&READINESS_NOT_MCP, obj, &format!("{path}.readinessProbe"),
                    format!("container {name} runs the Lifeline gateway but its readinessProbe calls {got}, not GET /ready"));
            }
        }
    }

    let serving = c.ports.as_ref().is_some_and(|p| !p.is_empty()) || lifeline.is_some();
    if serving {
        if readiness.is_none() {
            ctx.emit(
                &MISSING,
                obj,
                &format!("{path}.readinessProbe"),
                format!("container {name} serves ports but has no readinessProbe"),
            );
        }
        if liveness.is_none() {
            ctx.emit(
                &MISSING,
                obj,
                &format!("{path}.livenessProbe"),
                format!("container {name} serves ports but has no livenessProbe"),
            );
        }
    }

    if let Some(l) = liveness {
        let delay = l.initial_delay_seconds.unwrap_or(0);
        if c.startup_probe.is_none() && delay < MIN_LIVENESS_DELAY_WITHOUT_STARTUP {
            ctx.emit(&STARTUP_MISSING, obj, &format!("{path}.livenessProbe.initialDelaySeconds"),
                format!("container {name}: no startupProbe and livenessProbe starts after only {delay}s"));
        }
    }

    for (field, probe) in [
        ("startupProbe", c.startup_probe.as_ref()),
        ("livenessProbe", liveness),
        ("readinessProbe", readiness),
    ] {
        let Some(probe) = probe else { continue };
        let Some((sub, port)) = probe_port(probe) else {
            continue;
        };
        let declared = match &port {
            IntOrString::String(n) => c
                .ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some(n.as_str())),
            IntOrString::Int(n) => w.declares_port_number(*n),
        };
        if !declared {
            let what = match &port {
                IntOrString::String(n) => {
                    format!("named port {n:?}, which container {name} does not declare")
                }
                IntOrString::Int(n) => format!("port {n}, which no container in the pod declares"),
            };
            ctx.emit(
                &PORT_NOT_EXPOSED,
                obj,
                &format!("{path}.{field}.{sub}.port"),
                format!("container {name}: {field} targets {what}"),
            );
        }
    }
}

/// Describes how a liveness probe runs the MCP handshake, if it does.
fn mcp_handshake(p: &Probe) -> Option<String> {
    if let Some(h) = &p.http_get {
        let path = h.path.as_deref().unwrap_or("/").to_ascii_lowercase();
        let first = path
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap_or("");
        if first == "mcp" || first == "sse" {
            return Some(format!(
                "calls GET {}, the MCP endpoint itself",
                h.path.as_deref().unwrap_or("/")
            ));
        }
    }
    let cmd = p
        .exec
        .as_ref()?
        .command
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let lower = cmd.to_ascii_lowercase();
    let protocol = ["initialize", "tools/list", "server/discover", "jsonrpc"]
        .iter()
        .find(|m| lower.contains(*m));
    protocol.map(|m| format!("runs an exec command that sends MCP {m}"))
}

fn probe_port(p: &Probe) -> Option<(&'static str, IntOrString)> {
    if let Some(h) = &p.http_get {
        return Some(("httpGet", h.port.clone()));
    }
    if let Some(t) = &p.tcp_socket {
        return Some(("tcpSocket", t.port.clone()));
    }
    p.grpc.as_ref().map(|g| ("grpc", IntOrString::Int(g.port)))
}

fn port_text(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction};

    use super::*;

    fn http(path: &str) -> Probe {
        Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.to_owned()),
                port: IntOrString::Int(3000),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        }
    }

    fn exec(cmd: &[&str]) -> Probe {
        Probe {
            exec: Some(ExecAction {
                command: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
            }),
            ..Probe::default()
        }
    }

    #[test]
    fn mcp_handshakes_in_liveness_probes_are_recognised() {
        let cases = [
            (http("/mcp"), true),
            (http("/MCP/"), true),
            (http("/sse?x=1"), true),
            (http("/live"), false),
            (http("/mcp-health"), false),
            (
                exec(&[
                    "sh",
                    "-c",
                    "curl -d '{\"method\":\"initialize\"}' localhost:3000/mcp",
                ]),
                true,
            ),
            (exec(&["mcp-check", "--method", "tools/list"]), true),
            (exec(&["cat", "/tmp/healthy"]), false),
        ];
        for (probe, want) in cases {
            assert_eq!(mcp_handshake(&probe).is_some(), want, "{probe:?}");
        }
    }
}
