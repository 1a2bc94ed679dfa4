"""OpenTelemetry for the Python peers (`py2_server.py`, `clients/py_client.py`), off unless asked for.

When `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, `configure()` installs the
official SDK's tracer provider (`opentelemetry-sdk`, service name from `OTEL_SERVICE_NAME`) with the OTLP/HTTP
protobuf exporter (`opentelemetry-exporter-otlp-proto-http`, endpoint from the same variables), exporting each
span when it ends, so nothing is lost when a test stops the process. The MCP Python SDK 2.x (mcp 2.3.0) then
emits its own spans through it: a CLIENT span `MCP send {method} [{name}]` per request with the context injected
into `params._meta` (mcp/shared/jsonrpc_dispatcher.py, SEP-414), and a SERVER span `{method} [{name}]` per inbound
message whose parent is extracted from `params._meta` (mcp/server/_otel.py, `OpenTelemetryMiddleware`).
"""

from __future__ import annotations

import os


def configure() -> bool:
    """Installs the exporter when an OTLP endpoint is configured; returns whether it did."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
