//! Availability rules: shutdown timing, rollouts, replica counts, disruption budgets and
//! autoscalers, i.e. everything that decides whether sessions survive a deploy or a node drain.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, RuleInfo, SEED_52, SEED_K8S, SEED_ZERO};
use crate::model::{
    lifeline_of, prestop_sleep_seconds, resolve_count, server_drain, Lifeline, Workload,
    DEFAULT_GRACE_SECONDS,
};
use crate::report::Severity;
use crate::source::{Body, Object};

/// Seconds the grace period must exceed the planned shutdown by. Seed "Kubernetes Liveness
/// Probes": the grace period "must exceed the preStop sleep by a few seconds".
pub(crate) const GRACE_MARGIN_SECONDS: i64 = 5;
/// Minimum HPA scale-down stabilization. Seed "52% Death Rate": "scale down slow (MCP
/// responses can run long)" with 300 s.
pub(crate) const MIN_SCALE_DOWN_WINDOW_SECONDS: i32 = 300;

pub(crate) const GRACE_PERIOD: RuleInfo = RuleInfo {
    id: "lifecycle/grace-period",
    severity: Severity::Warning,
    summary: "terminationGracePeriodSeconds shorter than preStop + gateway or server drain + 5 s",
    why: "Kubernetes sends SIGKILL when the grace period ends, counted from the start of the preStop hook. If the preStop sleep plus the drain does not fit, open SSE streams and in-flight tool calls are cut instead of drained. The drain is the gateway's --drain-timeout (the whole drain's deadline from SIGTERM, --drain-delay included) or, without a gateway, the server's own setting in env (DRAIN_TIMEOUT_MS, SHUTDOWN_TIMEOUT, GRACEFUL_SHUTDOWN_TIMEOUT and their _MS/_SECONDS forms).",
    fix: "Raise terminationGracePeriodSeconds to at least preStop sleep + drain + 5 s (35 s for the gateway defaults with a 5 s preStop sleep; the kit uses 45 s; 35 s for a server with DRAIN_TIMEOUT_MS=25000 and a 5 s preStop sleep), or shorten the drain.",
    source: SEED_ZERO,
};

pub(crate) const PRESTOP_MISSING: RuleInfo = RuleInfo {
    id: "lifecycle/prestop-missing",
    severity: Severity::Warning,
    summary: "serving container without a preStop delay",
    why: "Kubernetes sends SIGTERM and removes the pod from Service endpoints at the same time; load balancers keep sending new sessions for a few seconds to a pod that is already shutting down. A short preStop sleep closes that race. (A Lifeline gateway's --drain-delay does the same and satisfies this rule.)",
    fix: "Add lifecycle.preStop.sleep.seconds: 5 (Kubernetes 1.30+), or exec [\"sleep\", \"5\"] in images with a sleep binary.",
    source: SEED_ZERO,
};

pub(crate) const MAX_UNAVAILABLE: RuleInfo = RuleInfo {
    id: "rollout/max-unavailable",
    severity: Severity::Error,
    summary: "RollingUpdate maxUnavailable lets every replica go at once",
    why: "With maxUnavailable >= replicas (or 100%), or any maxUnavailable with two replicas or fewer, a rollout can take all serving pods down before the new ones pass readiness: every session drops and clients see an outage even though the deploy 'succeeds'.",
    fix: "Set strategy.rollingUpdate.maxUnavailable: 0 and maxSurge: 1, so a new pod is ready before an old one stops.",
    source: SEED_ZERO,
};

pub(crate) const TOO_FEW_REPLICAS: RuleInfo = RuleInfo {
    id: "replicas/too-few",
    severity: Severity::Warning,
    summary: "fewer than 2 replicas (after any autoscaler's minimum)",
    why: "One replica means a pod crash, node drain or rollout is a complete outage for every session.",
    fix: "Run at least 2 replicas (3 with a PDB of minAvailable: 2 is a better production start), or set the HPA's minReplicas to 2. Single-writer workloads can opt out with the lifeline.dev/allow annotation and a comment saying why.",
    source: SEED_K8S,
};

pub(crate) const PDB_MISSING: RuleInfo = RuleInfo {
    id: "pdb/missing",
    severity: Severity::Warning,
    summary: "replicated workload with no PodDisruptionBudget selecting its pods",
    why: "Without a PDB a node upgrade or cluster-autoscaler scale-down may evict every replica at once, a complete outage that no rollout setting prevents.",
    fix: "Add a policy/v1 PodDisruptionBudget with maxUnavailable: 1 (or minAvailable: 1 for 2-3 replicas) selecting the pod labels.",
    source: SEED_K8S,
};

pub(crate) const PDB_BLOCKS_DRAIN: RuleInfo = RuleInfo {
    id: "pdb/blocks-drain",
    severity: Severity::Warning,
    summary: "PodDisruptionBudget that can never allow an eviction",
    why: "A PDB whose minAvailable is at least the replica count (e.g. minAvailable: 1 with 1 replica) or whose maxUnavailable is 0 blocks every voluntary eviction: node drains and cluster upgrades hang until someone deletes the PDB.",
    fix: "Use maxUnavailable: 1, or keep minAvailable below the minimum replica count (2 replicas with minAvailable: 1).",
    source: SEED_K8S,
};

pub(crate) const HPA_PDB_MISSING: RuleInfo = RuleInfo {
    id: "hpa/pdb-missing",
    severity: Severity::Warning,
    summary: "autoscaled workload (HPA or KEDA) with no PodDisruptionBudget",
    why: "An autoscaler adds and removes replicas but does nothing to keep them during node drains; without a PDB the drain can take the whole set down.",
    fix: "Add a PodDisruptionBudget (maxUnavailable: 1) next to the HPA, selecting the same pods.",
    source: SEED_K8S,
};

pub(crate) const HPA_SCALE_DOWN: RuleInfo = RuleInfo {
    id: "hpa/scale-down-window",
    severity: Severity::Warning,
    summary: "HPA scale-down stabilization window shorter than 300 s",
    why: "MCP tool calls and SSE streams can run for minutes; scaling down quickly after a burst terminates pods that are still serving long sessions.",
    fix: "Set behavior.scaleDown.stabilizationWindowSeconds: 300 (the Kubernetes default) or more.",
    source: SEED_52,
};

pub(crate) fn check(ctx: &mut Ctx<'_>) {
    let workloads = ctx.workloads.clone();
    for w in &workloads {
        grace_period(ctx, w);
        prestop(ctx, w);
        rollout(ctx, w);
        replicas_and_pdb(ctx, w);
    }
    let objects = ctx.objects;
    for obj in objects {
        match &obj.body {
            Body::Pdb(_) => pdb_blocks(ctx, obj, &workloads),
            Body::Hpa(_) | Body::ScaledObject(_) => scaler_rules(ctx, obj, &workloads),
            _ => {}
        }
    }
}

fn grace_period(ctx: &mut Ctx<'_>, w: &Workload<'_>) {
    let grace = w
        .spec
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let mut worst: Option<(i64, String)> = None;
    for (_, c) in w.containers(false) {
        let sleep = prestop_sleep_seconds(c).unwrap_or(0);
        let (needed, how) = match lifeline_of(c) {
            Some(Lifeline::Gateway {
                drain_delay,
                drain_timeout,
                ..
            }) => {
                // --drain-timeout is the deadline of the whole drain counted from SIGTERM, and
                // --drain-delay runs inside it (`lifeline gateway --help`); SIGTERM is sent
                // after the preStop hook returns.
                let drain = drain_delay.max(drain_timeout).as_secs_f64().ceil() as i64;
                (
                    sleep + drain + GRACE_MARGIN_SECONDS,
                    format!(
                        "preStop {sleep}s + gateway drain {drain}s (--drain-timeout, from SIGTERM) \
                         + {GRACE_MARGIN_SECONDS}s margin"
                    ),
                )
            }
            _ => match server_drain(c) {
                // The server drains on SIGTERM (after the preStop hook) for as long as it says.
                Some((drain, var)) => {
                    let drain =
                        i64::try_from(drain.as_secs_f64().ceil() as u64).unwrap_or(i64::MAX);
                    (
                        sleep
                            .saturating_add(drain)
                            .saturating_add(GRACE_MARGIN_SECONDS),
                        format!(
                            "preStop {sleep}s + server drain {drain}s ({var}, from SIGTERM) \
                             + {GRACE_MARGIN_SECONDS}s margin"
                        ),
                    )
                }
                None => (
                    sleep + GRACE_MARGIN_SECONDS,
                    format!("preStop {sleep}s + {GRACE_MARGIN_SECONDS}s margin"),
                ),
            },
        };
        if grace < needed && worst.as_ref().is_none_or(|(n, _)| needed > *n) {
            worst = Some((
                needed,
                format!("container {} needs {needed}s ({how})", c.name),
            ));
        }
    }
    if let Some((_, why)) = worst {
        let shown = w
            .spec
            .termination_grace_period_seconds
            .map_or_else(|| format!("{grace}s (the default)"), |g| format!("{g}s"));
        ctx.emit(
            &GRACE_PERIOD,
            w.obj,
            &format!("{}.terminationGracePeriodSeconds", w.spec_path),
            format!("terminationGracePeriodSeconds is {shown} but {why}"),
        );
    }
}

fn prestop(ctx: &mut Ctx<'_>, w: &Workload<'_>) {
    if !w.replicated {
        return;
    }
    for (path, c) in w.containers(false) {
        let serving = c.ports.as_ref().is_some_and(|p| !p.is_empty());
        let gateway_delays = matches!(lifeline_of(c), Some(Lifeline::Gateway { drain_delay, .. }) if !drain_delay.is_zero());
        if serving && !gateway_delays && prestop_sleep_seconds(c).is_none() {
            ctx.emit(
                &PRESTOP_MISSING,
                w.obj,
                &format!("{path}.lifecycle.preStop"),
                format!("container {} serves ports but has no preStop hook", c.name),
            );
        }
    }
}

fn rollout(ctx: &mut Ctx<'_>, w: &Workload<'_>) {
    let Body::Deployment(d) = &w.obj.body else {
        return;
    };
    let Some(strategy) = d.spec.strategy.as_ref() else {
        return;
    };
    if strategy
        .type_
        .as_deref()
        .is_some_and(|t| t != "RollingUpdate")
    {
        return;
    }
    let Some(mu) = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.max_unavailable.as_ref())
    else {
        return;
    };
    let Some((replicas, _)) = ctx.replica_range(w) else {
        return;
    };
    let resolved = resolve_count(mu, replicas, false);
    let all = matches!(mu, IntOrString::String(s) if s.trim() == "100%");
    let bad = all || resolved.is_some_and(|n| n >= replicas || (n > 0 && replicas <= 2));
    if bad {
        let shown = match mu {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        ctx.emit(&MAX_UNAVAILABLE, w.obj, "spec.strategy.rollingUpdate.maxUnavailable",
            format!("maxUnavailable {shown} with {replicas} replica(s) lets every serving pod stop before its replacement is ready"));
    }
}

fn replicas_and_pdb(ctx: &mut Ctx<'_>, w: &Workload<'_>) {
    let Some((min, _)) = ctx.replica_range(w) else {
        return;
    };
    let scaler = ctx.scaler_for(w);
    if min < 2 {
        let msg = match scaler {
            Some(s) => format!(
                "{} {} keeps as few as {min} replica(s)",
                s.obj.kind,
                s.obj.name()
            ),
            None if w.replicas.is_none() => {
                "spec.replicas is not set, so 1 replica runs".to_owned()
            }
            None => format!("spec.replicas is {min}"),
        };
        ctx.emit(&TOO_FEW_REPLICAS, w.obj, "spec.replicas", msg);
    }
    // Autoscaled workloads are reported once, by hpa/pdb-missing.
    if min >= 2 && scaler.is_none() && !has_pdb(ctx.objects, w) {
        ctx.emit(
            &PDB_MISSING,
            w.obj,
            "metadata.name",
            format!(
                "{} {} runs {min} replicas and no PodDisruptionBudget selects its pods",
                w.obj.kind,
                w.obj.name()
            ),
        );
    }
}

fn has_pdb(objects: &[Object], w: &Workload<'_>) -> bool {
    objects.iter().any(|o| match &o.body {
        Body::Pdb(p) => {
            o.namespace() == w.obj.namespace()
                && p.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| w.matches_selector(s))
        }
        _ => false,
    })
}

fn pdb_blocks(ctx: &mut Ctx<'_>, obj: &Object, workloads: &[Workload<'_>]) {
    let Body::Pdb(p) = &obj.body else { return };
    let Some(spec) = p.spec.as_ref() else { return };
    let Some(selector) = spec.selector.as_ref() else {
        return;
    };
    for w in workloads
        .iter()
        .filter(|w| w.obj.namespace() == obj.namespace() && w.matches_selector(selector))
    {
        let Some((replicas, _)) = ctx.replica_range(w) else {
            continue;
        };
        let target = format!("{} {}", w.obj.kind, w.obj.name());
        if let Some(ma) = &spec.min_available {
            if resolve_count(ma, replicas, true).is_some_and(|n| n >= replicas) {
                let shown = match ma {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => s.clone(),
                };
                ctx.emit(&PDB_BLOCKS_DRAIN, obj, "spec.minAvailable",
                    format!("minAvailable {shown} with {replicas} replica(s) of {target}: no pod may ever be evicted"));
                return;
            }
        }
        if let Some(mu) = &spec.max_unavailable {
            if resolve_count(mu, replicas, false) == Some(0) {
                ctx.emit(
                    &PDB_BLOCKS_DRAIN,
                    obj,
                    "spec.maxUnavailable",
                    format!("maxUnavailable 0 for {target}: no pod may ever be evicted"),
                );
                return;
            }
        }
    }
}

fn scaler_rules(ctx: &mut Ctx<'_>, obj: &Object, workloads: &[Workload<'_>]) {
    let Some(scaler) = ctx
        .scalers
        .iter()
        .find(|s| std::ptr::eq(s.obj, obj))
        .copied()
    else {
        return;
    };
    if let Some(w) = workloads.iter().find(|w| scaler.targets(w)) {
        if !has_pdb(ctx.objects, w) {
            ctx.emit(
                &HPA_PDB_MISSING,
                obj,
                "spec.scaleTargetRef",
                format!(
                    "{} {} scales {} {} but no PodDisruptionBudget selects its pods",
                    obj.kind,
                    obj.name(),
                    w.obj.kind,
                    w.obj.name()
                ),
            );
        }
    }
    let (window, path) = match &obj.body {
        Body::Hpa(h) => (
            h.spec.behavior.as_ref().and_then(|b| b.scale_down.as_ref())
                .and_then(|d| d.stabilization_window_seconds),
            "spec.behavior.scaleDown.stabilizationWindowSeconds",
        ),
        Body::ScaledObject(so) => (
            so.spec.advanced.as_ref()
                .and_then(|a| a.pointer("/horizontalPodAutoscalerConfig/behavior/scaleDown/stabilizationWindowSeconds"))
                .and_then(serde_json::Value::as_i64)
                .and_then(|n| i32::try_from(n).ok()),
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
        ),
        _ => (None, ""),
    };
    if let Some(n) = window.filter(|n| *n < MIN_SCALE_DOWN_WINDOW_SECONDS) {
        ctx.emit(&HPA_SCALE_DOWN, obj, path,
            format!("scale-down stabilization window is {n}s; pods serving long sessions may be removed"));
    }
}
