//! `--otlp-endpoint` (on every subcommand) and the standard OpenTelemetry variables → the typed
//! [`TracesConfig`] that `lifeline_core::telemetry` takes. This file is the one place that reads them.
//!
//! Traces are off unless `--otlp-endpoint`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set (in that order of precedence); an empty variable counts as unset (OpenTelemetry
//! `configuration/sdk-environment-variables.md`). Also read: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`; `http/json` is a usage error that
//! says it is not built in; for `grpc` no `/v1/traces` is appended to a base endpoint), `OTEL_SERVICE_NAME` (default `lifeline`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`, and `OTEL_SDK_DISABLED=true` (everything off). See docs/observability.md §Traces.

use lifeline_core::telemetry::{traces_url, OtlpProtocol, TraceSampler, TracesConfig};

use crate::exit::UsageError;

/// The `service.name` when `OTEL_SERVICE_NAME` is not set.
const DEFAULT_SERVICE_NAME: &str = "lifeline";

/// The flag shared by every subcommand (a global flag of the top-level command).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct OtelArgs {
    /// Export traces (OpenTelemetry, OTLP) to this collector, e.g. http://127.0.0.1:4318 (`/v1/traces` is
    /// appended), or http://127.0.0.1:4317 with OTEL_EXPORTER_OTLP_PROTOCOL=grpc (used as is). Overrides
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_ENDPOINT, which turn traces on too.
    /// [default: off]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) otlp_endpoint: Option<String>,
}

/// The traces configuration from `args` and the variables `env` answers; `None` when traces are off.
///
/// Errors: a [`UsageError`] naming the flag or variable whose value is wrong.
pub(crate) fn traces_config(
    args: &OtelArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TracesConfig>, UsageError> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    // The signal-specific protocol wins over the general one.
    let mut protocol = OtlpProtocol::default();
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(value) = var(name) {
            protocol =
                OtlpProtocol::parse(&value).map_err(|e| UsageError(format!("{name}: {e}")))?;
            break;
        }
    }
    let endpoint = match (
        args.otlp_endpoint.as_deref(),
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(flag), _, _) => traces_url(flag, false, protocol)
            .map_err(|e| UsageError(format!("--otlp-endpoint: {e}")))?,
        (None, Some(signal), _) => traces_url(&signal, true, protocol)
            .map_err(|e| UsageError(format!("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {e}")))?,
        (None, None, Some(base)) => traces_url(&base, false, protocol)
            .map_err(|e| UsageError(format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}")))?,
        (None, None, None) => return Ok(None),
    };
    let sampler = match var("OTEL_TRACES_SAMPLER") {
        None => TraceSampler::default(),
        Some(name) => TraceSampler::parse(&name, var("OTEL_TRACES_SAMPLER_ARG").as_deref())
            .map_err(|e| UsageError(format!("OTEL_TRACES_SAMPLER: {e}")))?,
    };
    let resource = match var("OTEL_RESOURCE_ATTRIBUTES") {
        None => Vec::new(),
        Some(list) => resource_attributes(&list)
            .map_err(|e| UsageError(format!("OTEL_RESOURCE_ATTRIBUTES: {e}")))?,
    };
    let service_name = var("OTEL_SERVICE_NAME")
        .map(|s| s.trim().to_owned())
        .or_else(|| {
            resource
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    Ok(Some(TracesConfig {
        endpoint,
        protocol,
        service_name,
        resource,
        sampler,
    }))
}

/// `key1=value1,key2=value2` (W3C Baggage octets, values percent-decoded), as the specification defines
/// `OTEL_RESOURCE_ATTRIBUTES`.
fn resource_attributes(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("{item:?} is not key=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("{item:?} has an empty key"));
        }
        let value = percent_decode(v).ok_or_else(|| format!("{item:?}: bad percent-encoding"))?;
        out.push((k.to_owned(), value));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<TracesConfig>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = OtelArgs {
            otlp_endpoint: flag.map(str::to_owned),
        };
        traces_config(&args, &|k| map.get(k).cloned()).map_err(|e| e.0)
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert_eq!(config(None, &[]), Ok(None));
        assert_eq!(
            config(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]),
            Ok(None)
        );
        assert_eq!(
            config(
                None,
                &[
                    ("OTEL_SERVICE_NAME", "x"),
                    ("OTEL_TRACES_SAMPLER", "always_on")
                ]
            ),
            Ok(None)
        );
        assert_eq!(
            config(
                Some("http://127.0.0.1:4318"),
                &[("OTEL_SDK_DISABLED", "true")]
            ),
            Ok(None)
        );
    }

    #[test]
    fn endpoint_precedence_and_paths() {
        let base = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")];
        let c = config(None, &base).expect("ok").expect("on");
        assert_eq!(c.endpoint.as_str(), "http://base:4318/v1/traces");
        assert_eq!(c.service_name, "lifeline");
        assert_eq!(c.sampler, TraceSampler::ParentBasedAlwaysOn);
        let both = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://sig:4318/t"),
        ];
        let c = config(None, &both).expect("ok").expect("on");
        assert_eq!(c.endpoint.as_str(), "http://sig:4318/t");
        let c = config(Some("http://flag:4318/"), &both)
            .expect("ok")
            .expect("on");
        assert_eq!(c.endpoint.as_str(), "http://flag:4318/v1/traces");
    }

    #[test]
    fn protocols_and_their_endpoints() {
        // gRPC: every endpoint is used as is, no `/v1/traces`.
        for vars in [
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ][..],
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
            ][..],
        ] {
            let c = config(None, vars).expect("ok").expect("on");
            assert_eq!(c.protocol, OtlpProtocol::Grpc, "{vars:?}");
            assert_eq!(c.endpoint.as_str(), "http://c:4317/", "{vars:?}");
        }
        let c = config(
            Some("http://c:4317"),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        )
        .expect("ok")
        .expect("on");
        assert_eq!(
            (c.protocol, c.endpoint.as_str()),
            (OtlpProtocol::Grpc, "http://c:4317/")
        );
        // The signal-specific protocol wins over the general one.
        let c = config(
            Some("http://c:4318"),
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        )
        .expect("ok")
        .expect("on");
        assert_eq!(
            (c.protocol, c.endpoint.as_str()),
            (OtlpProtocol::HttpProtobuf, "http://c:4318/v1/traces")
        );
        // A protocol alone does not turn traces on.
        assert_eq!(
            config(None, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            Ok(None)
        );
        for value in ["http/json", "thrift"] {
            let err = config(
                Some("http://c:4318"),
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", value)],
            )
            .expect_err(value);
            assert!(err.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL"), "{err}");
        }
    }

    #[test]
    fn service_name_sampler_and_resource() {
        let c = config(
            Some("http://c:4318"),
            &[
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.name=from-res,k8s.pod.name=p%2D1",
                ),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ],
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.service_name, "from-res");
        assert_eq!(c.sampler, TraceSampler::ParentBasedTraceIdRatio(0.1));
        assert!(c
            .resource
            .contains(&("k8s.pod.name".to_owned(), "p-1".to_owned())));
        let c = config(
            Some("http://c:4318"),
            &[
                ("OTEL_SERVICE_NAME", "gw"),
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-res"),
            ],
        )
        .expect("ok")
        .expect("on");
        assert_eq!(c.service_name, "gw");
        for (k, v) in [
            ("OTEL_TRACES_SAMPLER", "often"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k=%zz"),
        ] {
            let err = config(Some("http://c:4318"), &[(k, v)]).expect_err(v);
            assert!(err.starts_with(k), "{err}");
        }
        let err = config(Some("c:4318"), &[]).expect_err("not a URL");
        assert!(err.starts_with("--otlp-endpoint"), "{err}");
    }
}
