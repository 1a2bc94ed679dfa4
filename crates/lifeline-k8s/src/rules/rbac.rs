//! RBAC rules: what the ServiceAccount an MCP server's pods run as may do in the cluster (seed "52% Death
//! Rate" §RBAC — Least Privilege: "a ServiceAccount with a minimal Role").
//!
//! Bindings are matched to a workload by the ServiceAccount subject (`spec.serviceAccountName`, `default`
//! when unset) and namespace (unset means `default`), and roles to bindings by `roleRef`. Only the objects
//! in the linted sources are seen: a binding made elsewhere in the cluster is unknown here, so
//! `rbac/token-unused` says "no binding in the manifests" and can be allowed per workload.

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};

use super::{Ctx, RuleInfo, SEED_52};
use crate::model::Workload;
use crate::report::Severity;
use crate::source::{Body, Object};

pub(crate) const WILDCARD: RuleInfo = RuleInfo {
    id: "rbac/wildcard",
    severity: Severity::Error,
    summary: "Role or ClusterRole bound to the server's ServiceAccount grants * verbs or resources",
    why: "An MCP server runs tool code on behalf of remote agents; with a wildcard the first tool-level bug or prompt injection can do anything the role reaches (read every Secret, delete workloads), in the namespace or, for a ClusterRole, the whole cluster.",
    fix: "List only the verbs and resources the server uses (e.g. get, list on pods; get on configmaps) in a namespaced Role bound to a dedicated ServiceAccount.",
    source: SEED_52,
};

pub(crate) const TOKEN_UNUSED: RuleInfo = RuleInfo {
    id: "rbac/token-unused",
    severity: Severity::Warning,
    summary: "pod mounts a ServiceAccount token that no Role in the manifests is bound to",
    why: "Kubernetes mounts the ServiceAccount's API token into every container unless told not to; a server that needs no API access then carries a credential it never uses, and anyone who gets code execution through a tool can talk to the API server with it.",
    fix: "Set automountServiceAccountToken: false in the pod spec (or on the ServiceAccount), or bind the Role the server needs to its ServiceAccount.",
    source: SEED_52,
};

pub(crate) fn check(ctx: &mut Ctx<'_>) {
    let workloads = ctx.workloads.clone();
    let objects = ctx.objects;
    // A role bound to several workloads' accounts is reported once, at the first.
    let mut flagged_roles = std::collections::HashSet::new();
    for w in &workloads {
        let account = service_account(w);
        let namespace = w.obj.namespace();
        let bindings: Vec<(&Object, &RoleRef)> = objects
            .iter()
            .filter_map(|o| binding_for(o, account, namespace))
            .collect();
        for (binding, role_ref) in &bindings {
            for (index, role) in objects.iter().enumerate() {
                if is_role(role, binding, role_ref) && flagged_roles.insert(index) {
                    wildcards(ctx, role, account, w);
                }
            }
        }
        if bindings.is_empty() && mounts_token(w, objects, account, namespace) {
            ctx.emit(
                &TOKEN_UNUSED,
                w.obj,
                &format!("{}.automountServiceAccountToken", w.spec_path),
                format!(
                    "pods run as ServiceAccount {account} and mount its token, but no RoleBinding or \
                     ClusterRoleBinding in the manifests grants it anything"
                ),
            );
        }
    }
}

/// The ServiceAccount the workload's pods run as.
fn service_account<'a>(w: &Workload<'a>) -> &'a str {
    w.spec
        .service_account_name
        .as_deref()
        .or(w.spec.service_account.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

/// Whether the pods get the token: the pod's `automountServiceAccountToken` wins, then the ServiceAccount's
/// (when it is in the manifests), else Kubernetes' default, true.
fn mounts_token(w: &Workload<'_>, objects: &[Object], account: &str, namespace: &str) -> bool {
    if let Some(pod) = w.spec.automount_service_account_token {
        return pod;
    }
    objects
        .iter()
        .find_map(|o| match &o.body {
            Body::ServiceAccount(sa) if o.name() == account && o.namespace() == namespace => {
                sa.automount_service_account_token
            }
            _ => None,
        })
        .unwrap_or(true)
}

/// The `roleRef` of a RoleBinding or ClusterRoleBinding that has the ServiceAccount among its subjects.
fn binding_for<'a>(
    o: &'a Object,
    account: &str,
    namespace: &str,
) -> Option<(&'a Object, &'a RoleRef)> {
    let (subjects, role_ref, binding_ns) = match &o.body {
        Body::RoleBinding(b) if o.namespace() == namespace => {
            (&b.subjects, &b.role_ref, Some(o.namespace()))
        }
        Body::ClusterRoleBinding(b) => (&b.subjects, &b.role_ref, None),
        _ => return None,
    };
    let names_account = |s: &Subject| {
        s.kind == "ServiceAccount"
            && s.name == account
            && s.namespace.as_deref().or(binding_ns).unwrap_or("default") == namespace
    };
    subjects
        .iter()
        .flatten()
        .any(names_account)
        .then_some((o, role_ref))
}

/// Whether `o` is the role a binding refers to (a Role in the binding's namespace, or a ClusterRole).
fn is_role(o: &Object, binding: &Object, role_ref: &RoleRef) -> bool {
    o.name() == role_ref.name
        && match &o.body {
            Body::Role(_) => role_ref.kind == "Role" && o.namespace() == binding.namespace(),
            Body::ClusterRole(_) => role_ref.kind == "ClusterRole",
            _ => false,
        }
}

fn wildcards(ctx: &mut Ctx<'_>, role: &Object, account: &str, w: &Workload<'_>) {
    let rules: &[PolicyRule] = match &role.body {
        Body::Role(r) => r.rules.as_deref().unwrap_or_default(),
        Body::ClusterRole(r) => r.rules.as_deref().unwrap_or_default(),
        _ => return,
    };
    let star = |list: &Option<Vec<String>>| list.iter().flatten().any(|v| v == "*");
    for (i, rule) in rules.iter().enumerate() {
        for (field, wild) in [
            ("verbs", rule.verbs.iter().any(|v| v == "*")),
            ("resources", star(&rule.resources)),
        ] {
            if wild {
                ctx.emit(
                    &WILDCARD,
                    role,
                    &format!("rules[{i}].{field}"),
                    format!(
                        "{} {} is bound to ServiceAccount {account} of {} and grants every {} (\"*\")",
                        role.kind,
                        role.name(),
                        w.obj.object_ref(),
                        if field == "verbs" { "verb" } else { "resource" },
                    ),
                );
            }
        }
    }
}
