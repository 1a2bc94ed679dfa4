"""A minimal OTLP trace receiver on the official protobuf definitions and gRPC stubs (`opentelemetry-proto` and
`grpcio`, pinned in requirements-py2.txt), for Lifeline's trace tests: what a collector would receive, decoded and
shown as JSON. It listens for OTLP/HTTP and for OTLP/gRPC, on two loopback ports, and stores the spans of both alike.

OTLP/HTTP routes (127.0.0.1 only, port from argv[1], default 0 = the OS picks), also serving the spans; OTLP/gRPC
(127.0.0.1 only, port from argv[2], default 0) serves `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
Once both are bound, one line is printed: `otlp-receiver: listening on 127.0.0.1:PORT grpc 127.0.0.1:GRPC_PORT`.

  POST /v1/traces   an `ExportTraceServiceRequest` (application/x-protobuf, gzip accepted), answered with an empty
                    `ExportTraceServiceResponse`; bodies over 16 MiB get 413, undecodable ones 400
  GET  /spans       every span received so far, oldest first, as a JSON array of
                    {"service", "scope", "name", "kind" ("server", "client", "internal", ...), "trace_id",
                     "span_id", "parent_span_id" ("" for a root), "attributes" {key: value}, "status"
                     ("unset", "ok", "error"), "links" [{"trace_id", "span_id"}], "start_ns", "end_ns"}
  GET  /requests    how many export requests arrived (both transports): {"count": N}

The gRPC Export answers an empty `ExportTraceServiceResponse`; messages over 16 MiB are refused by gRPC itself
(RESOURCE_EXHAUSTED).

Usage: python otlp_receiver.py [PORT [GRPC_PORT]]
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MAX_BODY_BYTES = 16 * 1024 * 1024

_lock = threading.Lock()
_spans: list[dict] = []
_requests = 0


def _value(v) -> object:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def _attributes(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


def _kind(k: int) -> str:
    return Span.SpanKind.Name(k).removeprefix("SPAN_KIND_").lower()


def _status(code: int) -> str:
    return Status.StatusCode.Name(code).removeprefix("STATUS_CODE_").lower()


def decode(body: bytes) -> list[dict]:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    return spans_of(req)


def spans_of(req: ExportTraceServiceRequest) -> list[dict]:
    out = []
    for rs in req.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "service": resource.get("service.name", ""),
                        "resource": resource,
                        "scope": ss.scope.name,
                        "name": s.name,
                        "kind": _kind(s.kind),
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "attributes": _attributes(s.attributes),
                        "status": _status(s.status.code),
                        "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()} for l in s.links],
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                    }
                )
    return out


def store(spans: list[dict]) -> None:
    global _requests
    with _lock:
        _spans.extend(spans)
        _requests += 1


class TraceService(TraceServiceServicer):
    """OTLP/gRPC: the same spans as OTLP/HTTP, from the request gRPC already decoded."""

    def Export(self, request, context):  # noqa: N802 (the service definition's naming)
        store(spans_of(request))
        return ExportTraceServiceResponse()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # quiet: the tests read stdout for the port only
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/v1/traces":
            self.rfile.read(min(length, MAX_BODY_BYTES))
            self._send(404, b"not found", "text/plain")
            return
        if length > MAX_BODY_BYTES:
            self._send(413, b"too large", "text/plain")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        try:
            if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                body = gzip.decompress(body)
            spans = decode(body)
        except Exception as e:  # noqa: BLE001 (any decode failure is the sender's)
            self._send(400, f"cannot decode ExportTraceServiceRequest: {e}".encode(), "text/plain")
            return
        store(spans)
        self._send(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def do_GET(self) -> None:  # noqa: N802
        with _lock:
            if self.path == "/spans":
                body = json.dumps(_spans).encode()
            elif self.path == "/requests":
                body = json.dumps({"count": _requests}).encode()
            else:
                self._send(404, b"not found", "text/plain")
                return
        self._send(200, body, "application/json")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    grpc_port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    rpc = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", MAX_BODY_BYTES)],
    )
    add_TraceServiceServicer_to_server(TraceService(), rpc)
    grpc_bound = rpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
    if grpc_bound == 0:
        sys.exit(f"otlp-receiver: cannot bind gRPC to 127.0.0.1:{grpc_port}")
    rpc.start()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(
        f"otlp-receiver: listening on 127.0.0.1:{server.server_address[1]} grpc 127.0.0.1:{grpc_bound}",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
