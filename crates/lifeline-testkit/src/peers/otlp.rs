//! A real OTLP trace receiver for the trace tests: `tests/peers/otlp_receiver.py`, built on the official
//! protobuf definitions and gRPC stubs (`opentelemetry-proto`, `grpcio`, in the py2 venv), serving OTLP/HTTP and
//! OTLP/gRPC on two 127.0.0.1 ports the OS picks. It decodes every `ExportTraceServiceRequest` from either and
//! shows the spans as JSON ([`OtlpReceiver::spans`]).
//!
//! No OpenTelemetry Collector installs from the registries this project can use (no Debian, PyPI or npm package
//! ships `otelcol`), so the receiver is the next best real peer: the wire format is the official one.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::raw_http;
use super::{peers_sources, venv_python, STARTUP_PATIENCE};
use crate::process::ChildGuard;

/// The line the receiver prints once bound.
const ANNOUNCE: &str = "otlp-receiver: listening on 127.0.0.1:";

/// A running receiver. Dropping it kills the process.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// `http://127.0.0.1:PORT`: the base to give an OTLP/HTTP exporter (`/v1/traces` is where spans go).
    pub base: String,
    /// `http://127.0.0.1:PORT`: the endpoint to give an OTLP/gRPC exporter (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
    pub grpc: String,
    /// The process.
    pub guard: ChildGuard,
}

impl OtlpReceiver {
    /// Starts the receiver.
    ///
    /// # Panics
    /// If the py2 venv is not installed, or the receiver does not listen within [`STARTUP_PATIENCE`].
    pub async fn start() -> OtlpReceiver {
        let mut cmd = Command::new(venv_python("py2"));
        cmd.arg(peers_sources().join("otlp_receiver.py"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut guard = ChildGuard::spawn("otlp_receiver", cmd).unwrap_or_else(|e| panic!("{e}"));
        let rest = guard
            .wait_for_output(ANNOUNCE, STARTUP_PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // `PORT grpc 127.0.0.1:GRPC_PORT`
        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let grpc_port = rest
            .split_once(" grpc 127.0.0.1:")
            .map(|(_, p)| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| panic!("otlp_receiver announced no gRPC port: {rest:?}"));
        OtlpReceiver {
            base: format!("http://127.0.0.1:{port}"),
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            guard,
        }
    }

    /// Every span received so far, oldest first (the shape is in `otlp_receiver.py`'s docstring: `service`,
    /// `name`, `kind`, `trace_id`, `span_id`, `parent_span_id`, `attributes`, `status`, `links`, …). Empty when
    /// the receiver does not answer.
    pub async fn spans(&self) -> Vec<Value> {
        let url = format!("{}/spans", self.base);
        match raw_http::request("GET", &url, &[], None, Duration::from_secs(10)).await {
            Ok(resp) if resp.status == 200 => {
                serde_json::from_slice::<Vec<Value>>(&resp.body).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}
