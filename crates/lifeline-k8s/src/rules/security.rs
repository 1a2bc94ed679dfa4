//! Supply and security rules: image tags, resource bounds, root containers, secrets in manifests.

use k8s_openapi::api::core::v1::{Container, PodSecurityContext};

use super::{Ctx, RuleInfo, SEED_52, SEED_K8S};
use crate::model::Workload;
use crate::report::Severity;
use crate::source::Body;

pub(crate) const IMAGE_TAG: RuleInfo = RuleInfo {
    id: "image/tag",
    severity: Severity::Warning,
    summary: "image without a tag, or tagged latest",
    why: "With :latest (or no tag) you cannot tell which build a pod runs, nodes with IfNotPresent keep serving an old cached image, and a rollback has nothing to roll back to.",
    fix: "Pin a version or commit tag (registry/app:v1.2.3, or a digest @sha256:...) and change it per deploy.",
    source: SEED_52,
};

pub(crate) const RESOURCES_MISSING: RuleInfo = RuleInfo {
    id: "resources/missing",
    severity: Severity::Warning,
    summary: "container without cpu/memory requests or a memory limit",
    why: "Without requests the scheduler packs pods onto busy nodes and the HPA has no baseline for utilization; without a memory limit a leak takes the node down, and OOM kills surface later as hard-to-debug restarts.",
    fix: "Set resources.requests.cpu, resources.requests.memory and resources.limits.memory (a CPU limit is optional: throttling slows the event loop).",
    source: SEED_52,
};

pub(crate) const ROOT: RuleInfo = RuleInfo {
    id: "security/root",
    severity: Severity::Warning,
    summary: "container may run as root or escalate privileges",
    why: "An MCP server runs tool code on behalf of remote agents; running it as root (or privileged, or able to gain privileges) turns any tool-level bug into control of the node.",
    fix: "Set runAsNonRoot: true (with a numeric USER in the image or runAsUser), allowPrivilegeEscalation: false, and never privileged: true.",
    source: SEED_52,
};

pub(crate) const SECRET_INLINE_ENV: RuleInfo = RuleInfo {
    id: "secret/inline-env",
    severity: Severity::Error,
    summary: "env var that looks like a secret has a literal value",
    why: "A key, token or password written into the manifest ends up in version control, kubectl history and every copy of the rendered YAML; rotating it needs a redeploy.",
    fix: "Move the value into a Secret (created with kubectl create secret or an external secrets manager) and reference it with valueFrom.secretKeyRef or envFrom.secretRef.",
    source: SEED_K8S,
};

pub(crate) const SECRET_COMMITTED: RuleInfo = RuleInfo {
    id: "secret/committed",
    severity: Severity::Warning,
    summary: "Secret with data or stringData in the manifest set",
    why: "A Secret whose values sit in the manifests is committed to version control along with them (base64 is not encryption).",
    fix: "Create the Secret out of band (kubectl create secret generic, External Secrets Operator, Vault, sealed-secrets) and keep only the reference in the manifests.",
    source: SEED_K8S,
};

/// Name words that mark an env var as secret-bearing.
const SECRET_WORDS: &[&str] = &[
    "KEY",
    "APIKEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "CREDENTIAL",
    "CREDENTIALS",
    "PRIVATE",
];
/// Name words that mean the value is about a secret, not the secret itself.
const NOT_SECRET_WORDS: &[&str] = &[
    "FILE", "PATH", "DIR", "URL", "URI", "NAME", "ID", "REF", "ENDPOINT", "HOST", "PORT", "TTL",
    "TIMEOUT", "EXPIRY", "LENGTH", "SIZE", "PUBLIC", "HEADER", "TYPE", "ENABLED", "REQUIRED",
];

pub(crate) fn check(ctx: &mut Ctx<'_>) {
    let workloads = ctx.workloads.clone();
    for w in &workloads {
        for (path, c) in w.containers(true) {
            image_tag(ctx, w, &path, c);
            resources(ctx, w, &path, c);
            root(ctx, w, &path, c);
            inline_env(ctx, w, &path, c);
        }
    }
    let objects = ctx.objects;
    for obj in objects {
        let Body::Secret(s) = &obj.body else { continue };
        let fields = [
            ("stringData", s.string_data.as_ref().map_or(0, |d| d.len())),
            ("data", s.data.as_ref().map_or(0, |d| d.len())),
        ];
        if let Some((field, n)) = fields.into_iter().find(|(_, n)| *n > 0) {
            ctx.emit(
                &SECRET_COMMITTED,
                obj,
                field,
                format!("Secret {} carries {n} value(s) in {field}", obj.name()),
            );
        }
    }
}

fn image_tag(ctx: &mut Ctx<'_>, w: &Workload<'_>, path: &str, c: &Container) {
    let Some(image) = c.image.as_deref() else {
        return;
    };
    if image.contains('@') {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let problem = match last.split_once(':') {
        None => "has no tag (means :latest)",
        Some((_, "latest")) => "is tagged :latest",
        Some(_) => return,
    };
    ctx.emit(
        &IMAGE_TAG,
        w.obj,
        &format!("{path}.image"),
        format!("container {}: image {image} {problem}", c.name),
    );
}

fn resources(ctx: &mut Ctx<'_>, w: &Workload<'_>, path: &str, c: &Container) {
    let r = c.resources.as_ref();
    let has = |limits: bool, key: &str| {
        r.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .is_some_and(|m| m.contains_key(key))
    };
    let missing: Vec<&str> = [
        (!has(false, "cpu")).then_some("requests.cpu"),
        (!has(false, "memory")).then_some("requests.memory"),
        (!has(true, "memory")).then_some("limits.memory"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        ctx.emit(
            &RESOURCES_MISSING,
            w.obj,
            &format!("{path}.resources"),
            format!("container {} has no {}", c.name, missing.join(", ")),
        );
    }
}

fn root(ctx: &mut Ctx<'_>, w: &Workload<'_>, path: &str, c: &Container) {
    let pod: Option<&PodSecurityContext> = w.spec.security_context.as_ref();
    let sc = c.security_context.as_ref();
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or(pod.and_then(|p| p.run_as_user));
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod.and_then(|p| p.run_as_non_root));
    let mut reasons = Vec::new();
    if sc.and_then(|s| s.privileged) == Some(true) {
        reasons.push("privileged: true");
    }
    if sc.and_then(|s| s.allow_privilege_escalation) == Some(true) {
        reasons.push("allowPrivilegeEscalation: true");
    }
    if run_as_user == Some(0) {
        reasons.push("runAsUser: 0");
    } else if run_as_user.is_none() && non_root != Some(true) {
        reasons.push("neither runAsNonRoot: true nor a non-zero runAsUser, so the image's user (often root) applies");
    }
    if !reasons.is_empty() {
        ctx.emit(
            &ROOT,
            w.obj,
            &format!("{path}.securityContext"),
            format!("container {}: {}", c.name, reasons.join("; ")),
        );
    }
}

fn inline_env(ctx: &mut Ctx<'_>, w: &Workload<'_>, path: &str, c: &Container) {
    for (i, e) in c.env.iter().flatten().enumerate() {
        let Some(value) = e.value.as_deref().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let why = if looks_secret_name(&e.name) {
            "a secret-like name"
        } else if has_url_password(value) {
            "a URL with a password in it"
        } else {
            continue;
        };
        // Never print the value itself.
        ctx.emit(
            &SECRET_INLINE_ENV,
            w.obj,
            &format!("{path}.env[{i}].value"),
            format!(
                "container {}: env {} has {why} and a literal value",
                c.name, e.name
            ),
        );
    }
}

/// `API_KEY`, `GITHUB_TOKEN`, `DB_PASSWORD` yes; `KEY_FILE`, `TOKEN_URL`, `KEYCLOAK_URL` no.
pub(crate) fn looks_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().any(|w| SECRET_WORDS.contains(w))
        && !words.iter().any(|w| NOT_SECRET_WORDS.contains(w))
}

/// `scheme://user:password@host` with a non-empty password that is not a `$(VAR)` reference.
pub(crate) fn has_url_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return false;
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return false;
    };
    !password.is_empty() && !password.starts_with("$(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for (name, want) in [
            ("API_KEY", true),
            ("MY_API_KEY", true),
            ("GITHUB_TOKEN", true),
            ("DB_PASSWORD", true),
            ("client-secret", true),
            ("KEY_FILE", false),
            ("TOKEN_URL", false),
            ("KEYCLOAK_URL", false),
            ("MONKEY", false),
            ("LOG_LEVEL", false),
        ] {
            assert_eq!(looks_secret_name(name), want, "{name}");
        }
    }

    #[test]
    fn url_passwords() {
        assert!(has_url_password("postgres://user:pass@host/db"));
        assert!(!has_url_password("postgres://user@host/db"));
        assert!(!has_url_password("postgres://user:$(DB_PASS)@host/db"));
        assert!(!has_url_password("http://host:8080/path"));
    }
}
