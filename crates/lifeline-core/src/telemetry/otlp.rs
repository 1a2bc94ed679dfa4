//! The OTLP trace exporter: its typed settings ([`TracesConfig`], [`OtlpProtocol`], [`TraceSampler`],
//! [`traces_url`]) and the tracer provider. Two transports, as `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` names them:
//! `http/protobuf`, sent with the workspace's `reqwest` run on the caller's tokio runtime (the SDK's batch
//! processor exports from its own thread with a blocking executor), and `grpc`, the official exporter's tonic
//! client (HTTP/2; a lazily connected channel whose I/O runs on the caller's tokio runtime too; `https://`
//! endpoints use rustls with the webpki roots).
//!
//! Sources: OpenTelemetry specification, `protocol/exporter.md` §Configuration Options (Endpoint (OTLP/HTTP): a
//! base endpoint gets `v1/traces` appended, a signal-specific one is used as is; Endpoint (OTLP/gRPC): a URL with
//! an `http` or `https` scheme, used as is, since a gRPC call's path comes from the service definition,
//! `/opentelemetry.proto.collector.trace.v1.TraceService/Export`; `https` means TLS; the default ports are 4318
//! for OTLP/HTTP and 4317 for OTLP/gRPC; §Specify Protocol: `grpc`, `http/protobuf`, `http/json`) and
//! `configuration/sdk-environment-variables.md` (`OTEL_TRACES_SAMPLER` values and `OTEL_TRACES_SAMPLER_ARG`).

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use url::Url;

use super::TelemetryError;

/// Bound on one export request (the collector answering a batch): 10 s, the OTLP exporter's default.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a collector's answer body we read (an `ExportTraceServiceResponse`, or an error status): 64 KiB.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The OTLP transport, as `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` spells it (OpenTelemetry `protocol/exporter.md`
/// §Specify Protocol). `http/json` is not built in. The default is [`OtlpProtocol::HttpProtobuf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// `http/protobuf`: POST an `ExportTraceServiceRequest` to the traces URL (collector port 4318).
    #[default]
    HttpProtobuf,
    /// `grpc`: the `TraceService/Export` RPC over HTTP/2 (collector port 4317).
    Grpc,
}

impl OtlpProtocol {
    /// Parses a protocol variable's value (`grpc`, `http/protobuf`).
    ///
    /// Errors: the message to put after the variable's name (`http/json`, which this build does not have, or
    /// an unknown value).
    pub fn parse(value: &str) -> Result<OtlpProtocol, String> {
        match value.trim() {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/json" => Err(
                "\"http/json\" is not built in; use http/protobuf (port 4318) or grpc (port 4317)"
                    .to_owned(),
            ),
            other => Err(format!("{other:?} is not one of grpc, http/protobuf")),
        }
    }

    /// The spelling of the variable: `grpc` or `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::Grpc => "grpc",
        }
    }
}

/// Where and how traces are exported. Built by the binary from `--otlp-endpoint` and the standard `OTEL_*`
/// variables; see `docs/observability.md` §Traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesConfig {
    /// For [`OtlpProtocol::HttpProtobuf`], the URL batches are POSTed to, e.g.
    /// `http://otel-collector:4318/v1/traces`; for [`OtlpProtocol::Grpc`], the collector's gRPC URL, e.g.
    /// `http://otel-collector:4317` (see [`traces_url`]).
    pub endpoint: Url,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`; the binary's default is `lifeline`).
    pub service_name: String,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`), in order; `service.name` among them is overridden
    /// by [`TracesConfig::service_name`].
    pub resource: Vec<(String, String)>,
    /// Which traces are recorded.
    pub sampler: TraceSampler,
}

/// The sampler, as named by `OTEL_TRACES_SAMPLER` (OpenTelemetry SDK environment variables). The default is
/// [`TraceSampler::ParentBasedAlwaysOn`]: follow the caller's `sampled` flag, sample every new trace.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum TraceSampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with the ratio in `[0, 1]` (`OTEL_TRACES_SAMPLER_ARG`, default 1).
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default).
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with the ratio for new traces.
    ParentBasedTraceIdRatio(f64),
}

impl TraceSampler {
    /// Parses `OTEL_TRACES_SAMPLER` (`name`) with `OTEL_TRACES_SAMPLER_ARG` (`arg`, only read by the ratio
    /// samplers; default 1.0). Unlike the SDK, which falls back to the default on a bad value, this is an error,
    /// so a typo does not silently sample everything.
    ///
    /// Errors: the message to put after the variable's name (unknown sampler, ratio not a number in `[0, 1]`,
    /// or a sampler this build does not have: `jaeger_remote`, `parentbased_jaeger_remote`, `xray`).
    pub fn parse(name: &str, arg: Option<&str>) -> Result<TraceSampler, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(format!(
                        "OTEL_TRACES_SAMPLER_ARG {a:?} is not a ratio between 0 and 1"
                    )),
                },
            }
        };
        match name.trim() {
            "always_on" => Ok(TraceSampler::AlwaysOn),
            "always_off" => Ok(TraceSampler::AlwaysOff),
            "traceidratio" => ratio().map(TraceSampler::TraceIdRatio),
            "parentbased_always_on" => Ok(TraceSampler::ParentBasedAlwaysOn),
            "parentbased_always_off" => Ok(TraceSampler::ParentBasedAlwaysOff),
            "parentbased_traceidratio" => ratio().map(TraceSampler::ParentBasedTraceIdRatio),
            other => Err(format!(
                "{other:?} is not one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio"
            )),
        }
    }

    fn sdk(self) -> Sampler {
        match self {
            TraceSampler::AlwaysOn => Sampler::AlwaysOn,
            TraceSampler::AlwaysOff => Sampler::AlwaysOff,
            TraceSampler::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            TraceSampler::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            TraceSampler::ParentBasedAlwaysOff => {
                Sampler::ParentBased(Box::new(Sampler::AlwaysOff))
            }
            TraceSampler::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// The export URL for an endpoint setting. For OTLP/HTTP, `signal_specific` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
/// is used as is and a base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `--otlp-endpoint`) gets `v1/traces` appended
/// to its path (OpenTelemetry `protocol/exporter.md` §Configuration Options, Endpoint (OTLP/HTTP)):
/// `http://c:4318` and `http://c:4318/` → `http://c:4318/v1/traces`, `http://c:4318/otlp` →
/// `http://c:4318/otlp/v1/traces`. For OTLP/gRPC every endpoint is used as is (Endpoint (OTLP/gRPC): the RPC's
/// path comes from the service definition), e.g. `http://c:4317`.
///
/// Errors: the message for a value that is not an absolute `http` or `https` URL (the spec's gRPC endpoint form
/// without a scheme, `c:4317`, is refused too: the scheme says whether TLS is used).
pub fn traces_url(
    value: &str,
    signal_specific: bool,
    protocol: OtlpProtocol,
) -> Result<Url, String> {
    let mut url =
        Url::parse(value.trim()).map_err(|e| format!("{value:?} is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!("{value:?} is not an http:// or https:// URL"));
    }
    if !signal_specific && protocol == OtlpProtocol::HttpProtobuf {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{path}/v1/traces"));
    }
    Ok(url)
}

/// The tracer provider exporting to `cfg.endpoint` in batches over `cfg.protocol`. Must run inside a tokio
/// runtime (the HTTP client and the gRPC channel both do their I/O on it).
pub(super) fn provider(cfg: &TracesConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let failed = |message: String| TelemetryError::Exporter {
        endpoint: cfg.endpoint.to_string(),
        message,
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| failed("no tokio runtime to send from".to_owned()))?;
    let exporter = match cfg.protocol {
        OtlpProtocol::HttpProtobuf => {
            let client = reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|e| failed(e.to_string()))?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(cfg.endpoint.as_str())
                .with_timeout(EXPORT_TIMEOUT)
                .with_http_client(OnRuntime { client, runtime })
                .build()
        }
        // The exporter builds a lazily connected tonic channel; connecting and every request run on the
        // runtime entered here (the batch thread only awaits the answer).
        OtlpProtocol::Grpc => {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_endpoint(grpc_endpoint(&cfg.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .build()
        }
    }
    .map_err(|e| failed(e.to_string()))?;
    let mut attributes: Vec<KeyValue> = cfg
        .resource
        .iter()
        .filter(|(k, _)| k != "service.name")
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    attributes.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    let resource = Resource::builder_empty()
        .with_service_name(cfg.service_name.clone())
        .with_attributes(attributes)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(cfg.sampler.sdk())
        .with_resource(resource)
        .build())
}

/// The gRPC endpoint as tonic takes it: `url` without the `/` the URL parser adds to an empty path (tonic's
/// `Endpoint` keeps a path as the prefix of every RPC's path).
fn grpc_endpoint(url: &Url) -> String {
    let s = url.as_str();
    if url.path() == "/" && url.query().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

/// The exporter's HTTP client: `reqwest` on the runtime the exporter was built in. The SDK's batch thread awaits
/// the spawned request's `JoinHandle`, which any executor can poll.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let send = async move {
            let (parts, body) = request.into_parts();
            let mut req = client
                .request(parts.method, parts.uri.to_string())
                .body(body);
            for (name, value) in &parts.headers {
                req = req.header(name, value);
            }
            let mut resp = req.send().await?;
            let mut out = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                out = out.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::from(format!(
                        "the collector's answer exceeds {MAX_RESPONSE_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(out.body(Bytes::from(body))?)
        };
        self.runtime
            .spawn(send)
            .await
            .map_err(|e| HttpError::from(format!("the export task ended: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_endpoints_get_the_traces_path() {
        for (base, want) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            (
                "https://c.example/otlp/",
                "https://c.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(
                traces_url(base, false, OtlpProtocol::HttpProtobuf)
                    .expect(base)
                    .as_str(),
                want
            );
        }
        assert_eq!(
            traces_url("http://c:4318/custom", true, OtlpProtocol::HttpProtobuf)
                .expect("signal")
                .as_str(),
            "http://c:4318/custom"
        );
        assert!(traces_url("c:4317", false, OtlpProtocol::HttpProtobuf).is_err());
        assert!(traces_url("not a url", false, OtlpProtocol::HttpProtobuf).is_err());
    }

    #[test]
    fn grpc_endpoints_are_used_as_is() {
        for signal_specific in [false, true] {
            let url = traces_url("http://127.0.0.1:4317", signal_specific, OtlpProtocol::Grpc)
                .expect("grpc");
            assert_eq!(grpc_endpoint(&url), "http://127.0.0.1:4317");
        }
        let url = traces_url("https://c.example:443/", false, OtlpProtocol::Grpc).expect("https");
        assert_eq!(grpc_endpoint(&url), "https://c.example");
        assert!(traces_url("c:4317", false, OtlpProtocol::Grpc).is_err());
        assert_eq!(OtlpProtocol::parse(" grpc "), Ok(OtlpProtocol::Grpc));
        assert_eq!(
            OtlpProtocol::parse("http/protobuf"),
            Ok(OtlpProtocol::HttpProtobuf)
        );
        assert!(OtlpProtocol::parse("http/json")
            .expect_err("json")
            .contains("not built in"));
        assert!(OtlpProtocol::parse("grpc/json").is_err());
    }

    #[test]
    fn samplers_parse_like_the_sdk_variables() {
        let cases: &[(&str, Option<&str>, Option<TraceSampler>)] = &[
            ("always_on", None, Some(TraceSampler::AlwaysOn)),
            ("always_off", Some("0.5"), Some(TraceSampler::AlwaysOff)),
            (
                "traceidratio",
                Some("0.25"),
                Some(TraceSampler::TraceIdRatio(0.25)),
            ),
            ("traceidratio", None, Some(TraceSampler::TraceIdRatio(1.0))),
            (
                "parentbased_always_on",
                None,
                Some(TraceSampler::ParentBasedAlwaysOn),
            ),
            (
                "parentbased_always_off",
                None,
                Some(TraceSampler::ParentBasedAlwaysOff),
            ),
            (
                "parentbased_traceidratio",
                Some("0"),
                Some(TraceSampler::ParentBasedTraceIdRatio(0.0)),
            ),
            ("traceidratio", Some("1.5"), None),
            ("traceidratio", Some("half"), None),
            ("jaeger_remote", None, None),
            ("sometimes", None, None),
        ];
        for (name, arg, want) in cases {
            assert_eq!(
                TraceSampler::parse(name, *arg).ok(),
                *want,
                "{name} {arg:?}"
            );
        }
    }
}
