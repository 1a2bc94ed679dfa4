//! OpenTelemetry traces end to end against a real OTLP receiver (`tests/peers/otlp_receiver.py`, on the
//! official `opentelemetry-proto` definitions and `grpcio`; OTLP/HTTP unless said otherwise): the Python SDK 2.x client → `lifeline gateway` → the Python SDK
//! 2.x server, each exporting to the receiver, must form one trace (client span → gateway SERVER span → gateway
//! upstream-attempt CLIENT span → server span), with the MCP semantic-convention names and attributes; the
//! gateway's duration histogram must carry that trace's id as an exemplar; `lifeline check --otlp-endpoint` must
//! export its probe spans and its requests must parent the gateway's spans (W3C headers); with
//! `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` it must export them over OTLP/gRPC.

use std::process::Command;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::otlp::OtlpReceiver;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

use crate::gateway_harness::*;

/// Generous: three processes export over loopback on a loaded 2-core machine.
const SPANS_PATIENCE: Duration = Duration::from_secs(60);

/// The span of `service` named `name` of `kind`; panics with the listing when there is none.
fn span<'a>(spans: &'a [Value], service: &str, name: &str, kind: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["service"] == service && s["name"] == name && s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {service} {kind} span {name:?}:\n{}", listing(spans)))
}

/// Whether `spans` has a span of `service` named `name` of `kind`.
fn has(spans: &[Value], service: &str, name: &str, kind: &str) -> bool {
    spans
        .iter()
        .any(|s| s["service"] == service && s["name"] == name && s["kind"] == kind)
}

/// Polls the receiver until `done` holds for its spans (bounded by [`SPANS_PATIENCE`]); returns them.
async fn wait_for(
    receiver: &OtlpReceiver,
    logs: impl Fn() -> String,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let spans = std::cell::RefCell::new(Vec::new());
    assert_eventually!(
        {
            let got = receiver.spans().await;
            let ok = done(&got);
            spans.replace(got);
            ok
        },
        patience = SPANS_PATIENCE,
        "spans so far:\n{}\nlog:\n{}",
        listing(&spans.borrow()),
        logs()
    );
    spans.into_inner()
}

/// Runs `lifeline check` as `cmd` says, asserts it exits 0 and returns what it printed (stdout then stderr).
fn check_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("lifeline check runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    said
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

/// Spans as one line each, for failure messages.
fn listing(spans: &[Value]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} {:?} trace={} span={} parent={}",
                s["service"],
                s["kind"],
                s["name"],
                s["trace_id"],
                s["span_id"],
                s["parent_span_id"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn one_trace_runs_from_the_python_client_through_the_gateway_to_the_python_server() {
    let receiver = OtlpReceiver::start().await;
    let otlp = receiver.base.as_str();
    let server = Peer::python_with_env(
        PyServer::Stateful,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("OTEL_SERVICE_NAME", "py-server"),
        ],
    )
    .await;
    // A short batch delay so the gateway's spans arrive while it runs (the flush at exit is tested by `check`).
    let gw = Gw::start_wrapped(
        &[
            "env",
            "OTEL_BSP_SCHEDULE_DELAY=100",
            "OTEL_SERVICE_NAME=lifeline-gateway",
        ],
        &["--upstream", &server.url, "--otlp-endpoint", otlp],
    )
    .await;
    let run = py_client_with_env(
        &[
            &gw.mcp(),
            "--call",
            "echo",
            "--args",
            r#"{"message":"traced"}"#,
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            ("OTEL_SERVICE_NAME", "py-client"),
        ],
    )
    .await;
    assert!(run.ok, "the client failed: {}\n{}", run.stderr, gw.logs());
    assert_eq!(run.of("result")[0]["text"], "traced");

    let name = "tools/call echo";
    let send = format!("MCP send {name}");
    let spans = wait_for(
        &receiver,
        || gw.logs(),
        |got| {
            has(got, "py-server", name, "server")
                && has(got, "lifeline-gateway", name, "server")
                && has(got, "lifeline-gateway", name, "client")
                && has(got, "py-client", &send, "client")
        },
    )
    .await;
    let client = span(&spans, "py-client", &send, "client");
    let gw_server = span(&spans, "lifeline-gateway", name, "server");
    let gw_attempt = span(&spans, "lifeline-gateway", name, "client");
    let upstream = span(&spans, "py-server", name, "server");
    let trace = &client["trace_id"];
    for s in [gw_server, gw_attempt, upstream] {
        assert_eq!(&s["trace_id"], trace, "one trace:\n{}", listing(&spans));
    }
    // client → gateway (from `params._meta`) → attempt → upstream (from the `_meta` the gateway injected).
    assert_eq!(
        gw_server["parent_span_id"],
        client["span_id"],
        "{}",
        listing(&spans)
    );
    assert_eq!(gw_attempt["parent_span_id"], gw_server["span_id"]);
    assert_eq!(upstream["parent_span_id"], gw_attempt["span_id"]);
    assert_eq!(upstream["kind"], "server");

    // The semantic conventions' attributes (docs/gen-ai/mcp.md).
    assert_eq!(attr(gw_server, "mcp.method.name"), "tools/call");
    assert_eq!(attr(gw_server, "gen_ai.tool.name"), "echo");
    assert_eq!(attr(gw_server, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(
        attr(gw_server, "jsonrpc.request.id"),
        attr(client, "jsonrpc.request.id")
    );
    assert_eq!(attr(gw_server, "mcp.protocol.version"), "2025-11-25");
    assert!(
        attr(gw_server, "mcp.session.id")
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{gw_server}"
    );
    assert_eq!(attr(gw_server, "network.transport"), "tcp");
    assert_eq!(attr(gw_server, "http.response.status_code"), 200);
    assert_eq!(gw_server["status"], "unset");
    assert_eq!(attr(gw_attempt, "lifeline.upstream.endpoint"), "mcp");
    assert_eq!(attr(gw_attempt, "lifeline.upstream.attempt"), 1);
    assert_eq!(attr(gw_attempt, "server.address"), "127.0.0.1");
    assert_eq!(
        attr(gw_attempt, "server.port"),
        &Value::from(server.addr.port())
    );
    // The session the gateway saw minted is on the initialize span too.
    let init = span(&spans, "lifeline-gateway", "initialize", "server");
    assert_eq!(
        attr(init, "mcp.session.id"),
        attr(gw_server, "mcp.session.id")
    );

    // Exemplars: the tools/call bucket links to this trace.
    let metrics = gw.metrics().await;
    let exemplar = format!("# {{trace_id=\"{}\"}}", trace.as_str().expect("hex"));
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("method=\"tools/call\"") && l.contains(&exemplar)),
        "no exemplar {exemplar} on a tools/call bucket:\n{metrics}"
    );
}

#[tokio::test]
async fn check_exports_its_probe_and_parents_the_gateways_spans() {
    let receiver = OtlpReceiver::start().await;
    let server = Peer::python(PyServer::Stateless).await;
    let gw = Gw::start_wrapped(
        &["env", "OTEL_BSP_SCHEDULE_DELAY=100"],
        &["--upstream", &server.url, "--otlp-endpoint", &receiver.base],
    )
    .await;
    // `check` flushes its spans before it exits: no batch-delay tuning here.
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(["check", &gw.mcp(), "--otlp-endpoint", &receiver.base])
        .env("OTEL_SERVICE_NAME", "lifeline-check")
        .output()
        .expect("lifeline check runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = receiver.spans().await;
    let probe = span(&spans, "lifeline-check", "lifeline.probe", "internal");
    assert_eq!(attr(probe, "lifeline.probe.verdict"), "healthy");
    let list = span(&spans, "lifeline-check", "tools/list", "client");
    assert_eq!(list["parent_span_id"], probe["span_id"]);
    assert_eq!(attr(list, "mcp.method.name"), "tools/list");
    assert!(
        has(&spans, "lifeline-check", "connect", "internal"),
        "{}",
        listing(&spans)
    );

    // The gateway continues the probe's trace from the `traceparent` header of each request.
    let spans = wait_for(
        &receiver,
        || gw.logs(),
        |got| has(got, "lifeline", "tools/list", "server"),
    )
    .await;
    let served = span(&spans, "lifeline", "tools/list", "server");
    assert_eq!(
        served["parent_span_id"],
        list["span_id"],
        "{}",
        listing(&spans)
    );
    assert_eq!(served["trace_id"], list["trace_id"]);
}

#[tokio::test]
async fn check_exports_its_probe_over_otlp_grpc() {
    let receiver = OtlpReceiver::start().await;
    let server = Peer::python(PyServer::Stateless).await;
    // The gRPC endpoint as the variables give it: used as is (no `/v1/traces`); `check` flushes before it exits.
    let said = check_ok(
        Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .args(["check", &server.url])
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc)
            .env("OTEL_SERVICE_NAME", "lifeline-check-grpc"),
    );
    let spans = wait_for(
        &receiver,
        || said.clone(),
        |got| has(got, "lifeline-check-grpc", "tools/list", "client"),
    )
    .await;
    let probe = span(&spans, "lifeline-check-grpc", "lifeline.probe", "internal");
    assert_eq!(attr(probe, "lifeline.probe.verdict"), "healthy");
    let list = span(&spans, "lifeline-check-grpc", "tools/list", "client");
    assert_eq!(list["parent_span_id"], probe["span_id"]);
    assert_eq!(list["trace_id"], probe["trace_id"]);
}

#[tokio::test]
async fn a_stdio_child_continues_the_trace_from_the_meta_the_gateway_injects() {
    let receiver = OtlpReceiver::start().await;
    let (python, args) = Peer::python_stdio_command();
    let python = python.to_string_lossy().into_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let endpoint_env = format!("OTEL_EXPORTER_OTLP_ENDPOINT={}", receiver.base);
    let gw = Gw::start_wrapped(
        &["env", "OTEL_BSP_SCHEDULE_DELAY=100"],
        &[
            &[
                "--otlp-endpoint",
                &receiver.base,
                "--env",
                &endpoint_env,
                "--env",
            ],
            &["OTEL_SERVICE_NAME=py-stdio", "--", &python][..],
            &args[..],
        ]
        .concat(),
    )
    .await;
    // A client without traces of its own: the gateway's SERVER span is the root.
    let run = py_client(&[
        &gw.mcp(),
        "--call",
        "echo",
        "--args",
        r#"{"message":"piped"}"#,
    ])
    .await;
    assert!(run.ok, "the client failed: {}\n{}", run.stderr, gw.logs());

    let name = "tools/call echo";
    let spans = wait_for(
        &receiver,
        || gw.logs(),
        |got| has(got, "py-stdio", name, "server") && has(got, "lifeline", name, "client"),
    )
    .await;
    let attempt = span(&spans, "lifeline", name, "client");
    let child = span(&spans, "py-stdio", name, "server");
    assert_eq!(attr(attempt, "network.transport"), "pipe");
    assert_eq!(
        child["trace_id"],
        attempt["trace_id"],
        "{}",
        listing(&spans)
    );
    assert_eq!(
        child["parent_span_id"],
        attempt["span_id"],
        "{}",
        listing(&spans)
    );
    let server = span(&spans, "lifeline", name, "server");
    assert_eq!(
        server["parent_span_id"], "",
        "the gateway's span is the root"
    );
}

#[tokio::test]
async fn a_probed_stdio_server_continues_the_probes_trace_from_meta() {
    let receiver = OtlpReceiver::start().await;
    let (python, args) = Peer::python_stdio_command();
    let said = check_ok(
        Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .args(["check", "--otlp-endpoint", &receiver.base])
            .arg("--env")
            .arg(format!("OTEL_EXPORTER_OTLP_ENDPOINT={}", receiver.base))
            .args(["--env", "OTEL_SERVICE_NAME=py-probed", "--stdio", "--"])
            .arg(python)
            .args(args),
    );
    // The child exports each span as it ends, before the probe stops it.
    let spans = wait_for(
        &receiver,
        || said.clone(),
        |got| has(got, "py-probed", "tools/list", "server"),
    )
    .await;
    let phase = span(&spans, "lifeline", "tools/list", "client");
    let served = span(&spans, "py-probed", "tools/list", "server");
    assert_eq!(served["trace_id"], phase["trace_id"], "{}", listing(&spans));
    assert_eq!(
        served["parent_span_id"],
        phase["span_id"],
        "{}",
        listing(&spans)
    );
}
