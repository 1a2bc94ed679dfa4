//! Traffic rules: ingress timeouts for SSE, session affinity for stateful servers, and Services
//! that route nowhere.
//!
//! Streamable HTTP responses and the GET stream are Server-Sent Events that stay open for the
//! length of a tool call or a session (spec 2025-06-18 basic/transports#streamable-http), so a
//! proxy timeout or buffering in between cuts or stalls them.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;

use super::{Ctx, RuleInfo, SEED_52, SEED_K8S};
use crate::model::{lifeline_of, Lifeline, Workload, STATEFUL_ANNOTATION};
use crate::report::Severity;
use crate::source::{Body, Object};

/// Minimum nginx proxy read/send timeout in seconds. Seed "52% Death Rate": raise the 60 s
/// default to 300 so long responses are not cut mid-stream.
pub(crate) const MIN_NGINX_TIMEOUT_SECONDS: u64 = 300;
const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";

pub(crate) const INGRESS_SSE_TIMEOUTS: RuleInfo = RuleInfo {
    id: "ingress/sse-timeouts",
    severity: Severity::Warning,
    summary: "nginx Ingress that cuts or buffers SSE streams",
    why: "ingress-nginx closes a proxied connection after 60 s without data by default, which cuts SSE streams and long tool calls mid-response; proxy-buffering on holds events back until a buffer fills.",
    fix: "Annotate the Ingress with nginx.ingress.kubernetes.io/proxy-read-timeout and proxy-send-timeout of at least \"300\" (\"3600\" for long sessions) and proxy-buffering: \"off\".",
    source: SEED_52,
};

pub(crate) const AFFINITY_MISSING: RuleInfo = RuleInfo {
    id: "affinity/missing",
    severity: Severity::Warning,
    summary: "stateful MCP server with more than one replica and no session affinity",
    why: "A stateful server (a Lifeline gateway, whose sessions live in one pod, or a workload annotated lifeline.dev/stateful: \"true\") breaks sessions whenever a request lands on another replica than the one that ran initialize.",
    fix: "Add nginx cookie affinity on the Ingress (nginx.ingress.kubernetes.io/affinity: cookie) and/or sessionAffinity: ClientIP on the Service; or make the server stateless and annotate the workload lifeline.dev/stateful: \"false\"; or put the edge tier in front (a gateway with --session-key-file reaching the pods through a headless Service: the edge overlay), which needs no affinity at all; a Lifeline gateway itself (a pool, or a federation of servers: the federation overlay) needs none with --session-key-file.",
    source: SEED_K8S,
};

pub(crate) const SERVICE_NGINX_ANNOTATIONS: RuleInfo = RuleInfo {
    id: "service/nginx-annotations",
    severity: Severity::Warning,
    summary: "nginx.ingress.kubernetes.io annotations on a Service",
    why: "ingress-nginx reads its annotations from Ingress objects; on a Service they do nothing, so the affinity or timeout you think you configured is not in effect.",
    fix: "Move the nginx.ingress.kubernetes.io/* annotations to the Ingress that routes to this Service.",
    source: SEED_K8S,
};

pub(crate) const SERVICE_NO_ENDPOINTS: RuleInfo = RuleInfo {
    id: "service/no-endpoints",
    severity: Severity::Warning,
    summary: "Service whose selector matches no workload in the input",
    why: "A selector that matches no pod template (a label typo, a renamed app) gives the Service no endpoints: every connection is refused while the pods themselves look healthy.",
    fix: "Make spec.selector a subset of the pod template labels of the intended Deployment/StatefulSet/DaemonSet.",
    source: SEED_K8S,
};

pub(crate) fn check(ctx: &mut Ctx<'_>) {
    let objects = ctx.objects;
    let any_workload = !ctx.workloads.is_empty();
    for obj in objects {
        match &obj.body {
            Body::Ingress(i) => ingress_timeouts(ctx, obj, i),
            Body::Service(s) => {
                if let Some((key, _)) = obj
                    .meta
                    .annotations
                    .iter()
                    .flatten()
                    .find(|(k, _)| k.starts_with(NGINX_PREFIX))
                {
                    ctx.emit(
                        &SERVICE_NGINX_ANNOTATIONS,
                        obj,
                        &format!("metadata.annotations[\"{key}\"]"),
                        format!(
                            "Service {} has {key}, which ingress-nginx ignores on a Service",
                            obj.name()
                        ),
                    );
                }
                let spec = s.spec.as_ref();
                let selector = spec
                    .and_then(|s| s.selector.as_ref())
                    .filter(|s| !s.is_empty());
                let external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
                if let (Some(sel), false, true) = (selector, external, any_workload) {
                    let matched = ctx
                        .workloads
                        .iter()
                        .any(|w| w.obj.namespace() == obj.namespace() && w.matches_map(sel));
                    if !matched {
                        ctx.emit(
                            &SERVICE_NO_ENDPOINTS,
                            obj,
                            "spec.selector",
                            format!(
                                "selector {} matches no pod template in the input",
                                show_map(sel)
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let workloads = ctx.workloads.clone();
    for w in &workloads {
        affinity(ctx, w);
    }
}

fn is_nginx(obj: &Object, ing: &Ingress) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let annotations = obj.meta.annotations.as_ref();
    let legacy_class = annotations
        .and_then(|a| a.get("kubernetes.io/ingress.class"))
        .map(String::as_str);
    class.is_some_and(|c| c.contains("nginx"))
        || legacy_class.is_some_and(|c| c.contains("nginx"))
        || annotations.is_some_and(|a| a.keys().any(|k| k.starts_with(NGINX_PREFIX)))
}

fn ingress_timeouts(ctx: &mut Ctx<'_>, obj: &Object, ing: &Ingress) {
    if !is_nginx(obj, ing) {
        return;
    }
    let annotations = obj.meta.annotations.clone().unwrap_or_default();
    for name in ["proxy-read-timeout", "proxy-send-timeout"] {
        let key = format!("{NGINX_PREFIX}{name}");
        match annotations.get(&key) {
            None => ctx.emit(
                &INGRESS_SSE_TIMEOUTS,
                obj,
                "metadata.annotations",
                format!(
                    "Ingress {} has no {key}: nginx's 60s default cuts SSE streams",
                    obj.name()
                ),
            ),
            Some(v) => {
                let secs: Option<u64> = v.trim().trim_end_matches('s').parse().ok();
                if secs.is_none_or(|s| s < MIN_NGINX_TIMEOUT_SECONDS) {
                    ctx.emit(
                        &INGRESS_SSE_TIMEOUTS,
                        obj,
                        &format!("metadata.annotations[\"{key}\"]"),
                        format!(
                            "Ingress {}: {key} is {v:?}, below {MIN_NGINX_TIMEOUT_SECONDS}s",
                            obj.name()
                        ),
                    );
                }
            }
        }
    }
    let key = format!("{NGINX_PREFIX}proxy-buffering");
    if annotations
        .get(&key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("on"))
    {
        ctx.emit(
            &INGRESS_SSE_TIMEOUTS,
            obj,
            &format!("metadata.annotations[\"{key}\"]"),
            format!(
                "Ingress {}: proxy-buffering is on, so SSE events are held in nginx buffers",
                obj.name()
            ),
        );
    }
}

/// Whether the workload keeps per-session state in one pod. An edge-tier gateway does not: its session ids are
/// sealed, so any replica serves any session.
fn stateful(w: &Workload<'_>) -> bool {
    match w.annotation(STATEFUL_ANNOTATION).map(str::trim) {
        Some("true") => true,
        Some("false") => false,
        _ => w
            .containers(false)
            .iter()
            .any(|(_, c)| matches!(lifeline_of(c), Some(Lifeline::Gateway { edge: false, .. }))),
    }
}

/// Whether `w` runs an edge-tier gateway (`--session-key-file`: sealed session ids).
fn edge_gateway(w: &Workload<'_>) -> bool {
    w.containers(false)
        .iter()
        .any(|(_, c)| matches!(lifeline_of(c), Some(Lifeline::Gateway { edge: true, .. })))
}

/// Whether a Service is headless (`clusterIP: None`): DNS answers one record per ready pod and no proxy
/// balances it, so a Service affinity means nothing there.
fn headless(s: &k8s_openapi::api::core::v1::Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip.eq_ignore_ascii_case("none"))
}

fn affinity(ctx: &mut Ctx<'_>, w: &Workload<'_>) {
    let Some((_, max)) = ctx.replica_range(w) else {
        return;
    };
    if max <= 1 || !stateful(w) {
        return;
    }
    let services: Vec<&Object> = ctx
        .objects
        .iter()
        .filter(|o| o.namespace() == w.obj.namespace())
        .filter(|o| match &o.body {
            Body::Service(s) => s
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| !sel.is_empty() && w.matches_map(sel)),
            _ => false,
        })
        .collect();
    // Behind the edge tier: the workload is reached only through headless Services (one endpoint per pod) and
    // an edge gateway runs in the same namespace. That gateway pins each session to the pod that minted it, so
    // nothing in front of these pods needs affinity (`docs/gateway-replicas.md` §The edge overlay).
    let behind_edge = !services.is_empty()
        && services
            .iter()
            .all(|o| matches!(&o.body, Body::Service(s) if headless(s)))
        && !ingress_routes_to(ctx.objects, w, &services)
        && ctx
            .workloads
            .iter()
            .any(|e| e.obj.namespace() == w.obj.namespace() && edge_gateway(e));
    if behind_edge {
        return;
    }
    let client_ip = services.iter().any(|o| match &o.body {
        Body::Service(s) => {
            s.spec.as_ref().and_then(|s| s.session_affinity.as_deref()) == Some("ClientIP")
        }
        _ => false,
    });
    let cookie = ctx.objects.iter().any(|o| match &o.body {
        Body::Ingress(i) => {
            o.namespace() == w.obj.namespace()
                && o.meta
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(&format!("{NGINX_PREFIX}affinity")))
                    .is_some_and(|v| v.trim() == "cookie")
                && ingress_backends(i)
                    .iter()
                    .any(|b| services.iter().any(|s| s.name() == *b))
        }
        _ => false,
    });
    if !client_ip && !cookie {
        let why = match w.annotation(STATEFUL_ANNOTATION) {
            Some(_) => "is annotated lifeline.dev/stateful: \"true\"".to_owned(),
            None => "runs the Lifeline gateway (sessions live in one pod)".to_owned(),
        };
        ctx.emit(&AFFINITY_MISSING, w.obj, "metadata.name",
            format!("{} {} {why}, may run {max} replicas, and neither a Service with sessionAffinity: ClientIP nor an nginx Ingress with cookie affinity routes to it",
                w.obj.kind, w.obj.name()));
    }
}

/// Whether an Ingress in `w`'s namespace routes to one of `services`.
fn ingress_routes_to(objects: &[Object], w: &Workload<'_>, services: &[&Object]) -> bool {
    objects.iter().any(|o| match &o.body {
        Body::Ingress(i) => {
            o.namespace() == w.obj.namespace()
                && ingress_backends(i)
                    .iter()
                    .any(|b| services.iter().any(|s| s.name() == *b))
        }
        _ => false,
    })
}

/// Names of the Services an Ingress sends traffic to.
fn ingress_backends(i: &Ingress) -> Vec<&str> {
    let Some(spec) = i.spec.as_ref() else {
        return Vec::new();
    };
    let default = spec
        .default_backend
        .as_ref()
        .and_then(|b| b.service.as_ref())
        .map(|s| s.name.as_str());
    let paths = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .filter_map(|p| p.backend.service.as_ref().map(|s| s.name.as_str()));
    default.into_iter().chain(paths).collect()
}

fn show_map(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}
