//! Turning named YAML texts into typed Kubernetes objects, one document at a time.
//!
//! Each source is read twice: once by `saphyr-parser` for line numbers (see [`crate::lines`])
//! and once per document by `serde_yaml_ng` into a YAML value, which is then deserialized into
//! the `k8s-openapi` type named by its `apiVersion` and `kind`. A syntax error skips the whole
//! source; a schema error skips one document. Both become [`InputError`]s.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::lines::{index_documents, DocLines};
use crate::report::{InputError, ObjectRef};

/// One named manifest text: a file, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Shown in findings and errors: a path, or `-` for standard input.
    pub name: String,
    /// The YAML text; may hold many documents separated by `---`, and `kind: List` documents.
    pub text: String,
}

/// A parsed object together with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub(crate) file: Arc<str>,
    pub(crate) lines: Arc<DocLines>,
    /// Path prefix of this object inside its document: empty, or `items[3].` for List items.
    pub(crate) prefix: String,
    pub(crate) meta: ObjectMeta,
    pub(crate) kind: String,
    pub(crate) body: Body,
}

/// The kinds the rules look at.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
    Job(Box<Job>),
    CronJob(Box<CronJob>),
    Pod(Box<Pod>),
    Service(Box<Service>),
    Ingress(Box<Ingress>),
    Pdb(Box<PodDisruptionBudget>),
    Hpa(Box<HorizontalPodAutoscaler>),
    Secret(Box<Secret>),
    ScaledObject(Box<ScaledObject>),
    ServiceAccount(Box<ServiceAccount>),
    Role(Box<Role>),
    ClusterRole(Box<ClusterRole>),
    RoleBinding(Box<RoleBinding>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
}

/// The part of a KEDA `ScaledObject` (keda.sh/v1alpha1) the rules read. KEDA is not in
/// `k8s-openapi`, so this is a small hand-written view; unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScaledObject {
    #[serde(default)]
    pub(crate) spec: ScaledObjectSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScaledObjectSpec {
    #[serde(default)]
    pub(crate) scale_target_ref: ScaleTargetRef,
    /// KEDA default: 0.
    pub(crate) min_replica_count: Option<i32>,
    /// KEDA default: 100.
    pub(crate) max_replica_count: Option<i32>,
    pub(crate) advanced: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScaleTargetRef {
    #[serde(default)]
    pub(crate) name: String,
    /// KEDA default: Deployment.
    pub(crate) kind: Option<String>,
}

/// Everything read from all sources.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) objects: Vec<Object>,
    pub(crate) errors: Vec<InputError>,
    pub(crate) skipped: usize,
}

impl Object {
    pub(crate) fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind.clone(),
            namespace: self.meta.namespace.clone(),
            name: self.meta.name.clone().unwrap_or_default(),
        }
    }

    /// Namespace for matching objects to each other: unset means `default`.
    pub(crate) fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("default")
    }

    pub(crate) fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or("")
    }

    /// 1-based line of `path` (relative to this object) in its source.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        self.lines.line_of(&format!("{}{}", self.prefix, path))
    }
}

/// Parses every source; never fails as a whole.
pub(crate) fn parse_sources(sources: &[Source]) -> Parsed {
    let mut out = Parsed::default();
    for source in sources {
        parse_source(source, &mut out);
    }
    out
}

fn parse_source(source: &Source, out: &mut Parsed) {
    let file: Arc<str> = Arc::from(source.name.as_str());
    let docs = match index_documents(&source.text) {
        Ok(docs) => docs,
        Err(e) => {
            out.errors.push(InputError {
                file: source.name.clone(),
                line: Some(e.line),
                column: Some(e.column),
                message: format!("invalid YAML: {}", e.message),
            });
            return;
        }
    };
    let line_starts = line_starts(&source.text);
    for doc in docs {
        let start = doc.start_line;
        let slice = slice_lines(&source.text, &line_starts, start, doc.end_line);
        let value: Value = match serde_yaml_ng::from_str(slice) {
            Ok(v) => v,
            Err(e) => {
                let loc = e.location();
                out.errors.push(InputError {
                    file: source.name.clone(),
                    line: Some(loc.as_ref().map_or(start, |l| start + l.line() - 1)),
                    column: loc.map(|l| l.column()),
                    message: format!("invalid YAML: {e}"),
                });
                continue;
            }
        };
        let lines = Arc::new(doc);
        add_value(&file, &lines, String::new(), value, out);
    }
}

fn add_value(
    file: &Arc<str>,
    lines: &Arc<DocLines>,
    prefix: String,
    value: Value,
    out: &mut Parsed,
) {
    let map = match &value {
        Value::Null => return,
        Value::Mapping(m) => m,
        _ => {
            out.errors.push(InputError {
                file: file.to_string(),
                line: Some(lines.line_of(&prefix)),
                column: None,
                message: "document is not a mapping, so not a Kubernetes object".to_owned(),
            });
            return;
        }
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind.ends_with("List") {
        if let Some(Value::Sequence(items)) = map.get("items") {
            for (i, item) in items.clone().into_iter().enumerate() {
                add_value(file, lines, format!("{prefix}items[{i}]."), item, out);
            }
            return;
        }
    }
    let body = match (api_version, kind.as_str()) {
        ("apps/v1", "Deployment") => typed(&value).map(|v| Body::Deployment(Box::new(v))),
        ("apps/v1", "StatefulSet") => typed(&value).map(|v| Body::StatefulSet(Box::new(v))),
        ("apps/v1", "DaemonSet") => typed(&value).map(|v| Body::DaemonSet(Box::new(v))),
        ("batch/v1", "Job") => typed(&value).map(|v| Body::Job(Box::new(v))),
        ("batch/v1", "CronJob") => typed(&value).map(|v| Body::CronJob(Box::new(v))),
        ("v1", "Pod") => typed(&value).map(|v| Body::Pod(Box::new(v))),
        ("v1", "Service") => typed(&value).map(|v| Body::Service(Box::new(v))),
        ("v1", "Secret") => typed(&value).map(|v| Body::Secret(Box::new(v))),
        ("v1", "ServiceAccount") => typed(&value).map(|v| Body::ServiceAccount(Box::new(v))),
        ("rbac.authorization.k8s.io/v1", "Role") => typed(&value).map(|v| Body::Role(Box::new(v))),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            typed(&value).map(|v| Body::ClusterRole(Box::new(v)))
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            typed(&value).map(|v| Body::RoleBinding(Box::new(v)))
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            typed(&value).map(|v| Body::ClusterRoleBinding(Box::new(v)))
        }
        ("networking.k8s.io/v1", "Ingress") => typed(&value).map(|v| Body::Ingress(Box::new(v))),
        ("policy/v1", "PodDisruptionBudget") => typed(&value).map(|v| Body::Pdb(Box::new(v))),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            typed(&value).map(|v| Body::Hpa(Box::new(v)))
        }
        (api, "ScaledObject") if api.starts_with("keda.sh/") => {
            typed(&value).map(|v| Body::ScaledObject(Box::new(v)))
        }
        _ => {
            out.skipped += 1;
            return;
        }
    };
    let meta: ObjectMeta = map
        .get("metadata")
        .cloned()
        .and_then(|m| serde_yaml_ng::from_value(m).ok())
        .unwrap_or_default();
    match body {
        Ok(body) => out.objects.push(Object {
            file: Arc::clone(file),
            lines: Arc::clone(lines),
            prefix,
            meta,
            kind,
            body,
        }),
        Err(e) => {
            let at = if e.path == "." { String::new() } else { e.path };
            out.errors.push(InputError {
                file: file.to_string(),
                line: Some(lines.line_of(&format!("{prefix}{at}"))),
                column: None,
                message: format!(
                    "{kind}/{}: {}: {} (schema {api_version})",
                    meta.name.as_deref().unwrap_or(""),
                    if at.is_empty() {
                        "document"
                    } else {
                        at.as_str()
                    },
                    e.message
                ),
            });
        }
    }
}

/// Why a document does not fit its kind's schema, and at which field path.
#[derive(Debug)]
struct SchemaError {
    path: String,
    message: String,
}

fn typed<T: DeserializeOwned>(value: &Value) -> Result<T, SchemaError> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| SchemaError {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Byte offset of the start of each line (index 0 is line 1).
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Lines `first..=last` (1-based, `last` clamped to the text) as one slice.
fn slice_lines<'t>(text: &'t str, starts: &[usize], first: usize, last: usize) -> &'t str {
    let from = starts
        .get(first.saturating_sub(1))
        .copied()
        .unwrap_or(text.len());
    let to = starts.get(last).copied().unwrap_or(text.len());
    text.get(from..to.max(from)).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Vec<Source> {
        vec![Source {
            name: "in.yaml".to_owned(),
            text: text.to_owned(),
        }]
    }

    #[test]
    fn multi_document_sources_keep_per_document_lines() {
        let parsed = parse_sources(&src("\
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {selector: {app: a}}
---
# a comment
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: b
"));
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.skipped, 1);
        let names: Vec<_> = parsed
            .objects
            .iter()
            .map(|o| (o.name(), o.line_of("metadata.name")))
            .collect();
        assert_eq!(names, vec![("a", 3), ("b", 17)]);
    }

    #[test]
    fn schema_errors_name_the_document_and_do_not_stop_the_rest() {
        let parsed = parse_sources(&src("\
apiVersion: v1
kind: Service
metadata: {name: ok}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {app: x}}
  template:
    spec: {containers: nope}
"));
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.errors.len(), 1);
        let e = &parsed.errors[0];
        assert_eq!(e.line, Some(11), "{e:?}");
        assert_eq!(
            e.message,
            "Deployment/broken: spec.template.spec.containers: invalid type: string \"nope\", \
             expected a sequence (schema apps/v1)"
        );
    }

    #[test]
    fn syntax_errors_skip_the_source_with_a_line() {
        let parsed = parse_sources(&src(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n",
        ));
        assert!(parsed.objects.is_empty());
        assert_eq!(parsed.errors.len(), 1);
        assert!(
            parsed.errors[0].line.is_some_and(|l| l >= 4),
            "{:?}",
            parsed.errors
        );
    }
}
