//! OpenTelemetry traces end to end against a real OTLP/HTTP receiver (`tests/peers/otlp_receiver.py`, on the
//! official `opentelemetry-proto` definitions): the Python SDK 2.x client → `lifeline gateway` → the Python SDK
//! 2.x server, each exporting to the receiver, must form one trace (client span → gateway SERVER span → gateway
//! upstream-attempt CLIENT span → server span), with the MCP semantic-convention names and attributes; the
//! gateway's duration histogram must carry that trace's id as an exemplar; `lifeline check --otlp-endpoint` must
//! export its probe spans and its requests must parent the gateway's spans (W3C headers).

use std::process::Command;
use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::otlp::OtlpReceiver;
use lifeline_testkit::peers::{Peer, PyServer};
use serde_json::Value;

use crate::gateway_harness::*;

/// Generous: three processes export over loopback on a loaded 2-core machine.
const SPANS_PATIENCE: Duration = Duration::from_secs(60);

/// The first span of `service` named `name`, if any.
fn find<'a>(spans: &'a [Value], service: &str, name: &str) -> Option<&'a Value> {
    spans
        .iter()
        .find(|s| s["service"] == service && s["name"] == name)
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
    let spans = std::cell::RefCell::new(Vec::new());
    assert_eventually!(
        {
            let got = receiver.spans().await;
            let done = find(&got, "py-server", name).is_some()
                && find(&got, "lifeline-gateway", name).is_some()
                && got
                    .iter()
                    .filter(|s| s["service"] == "lifeline-gateway" && s["name"] == name)
                    .count()
                    >= 2
                && find(&got, "py-client", &format!("MCP send {name}")).is_some();
            spans.replace(got);
            done
        },
        patience = SPANS_PATIENCE,
        "spans so far:\n{}\ngateway log:\n{}",
        listing(&spans.borrow()),
        gw.logs()
    );
    let spans = spans.into_inner();
    let client = find(&spans, "py-client", &format!("MCP send {name}")).expect("client span");
    let gateway = |kind: &str| {
        spans
            .iter()
            .find(|s| s["service"] == "lifeline-gateway" && s["name"] == name && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no gateway {kind} span:\n{}", listing(&spans)))
    };
    let (gw_server, gw_attempt) = (gateway("server"), gateway("client"));
    let upstream = find(&spans, "py-server", name).expect("server span");
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
    let init = spans
        .iter()
        .find(|s| {
            s["service"] == "lifeline-gateway" && s["name"] == "initialize" && s["kind"] == "server"
        })
        .unwrap_or_else(|| panic!("no gateway initialize span:\n{}", listing(&spans)));
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
    let probe = find(&spans, "lifeline-check", "lifeline.probe")
        .unwrap_or_else(|| panic!("no probe span after check exited:\n{}", listing(&spans)));
    assert_eq!(attr(probe, "lifeline.probe.verdict"), "healthy");
    let list = find(&spans, "lifeline-check", "tools/list").expect("a tools/list phase span");
    assert_eq!(list["kind"], "client");
    assert_eq!(list["parent_span_id"], probe["span_id"]);
    assert_eq!(attr(list, "mcp.method.name"), "tools/list");
    assert!(
        find(&spans, "lifeline-check", "connect").is_some(),
        "{}",
        listing(&spans)
    );

    // The gateway continues the probe's trace from the `traceparent` header of each request.
    let served = std::cell::RefCell::new(Vec::new());
    assert_eventually!(
        {
            let got = receiver.spans().await;
            let done = got.iter().any(|s| {
                s["service"] == "lifeline"
                    && s["name"] == "tools/list"
                    && s["kind"] == "server"
                    && s["parent_span_id"] == list["span_id"]
            });
            served.replace(got);
            done
        },
        patience = SPANS_PATIENCE,
        "no gateway tools/list span under the probe's:\n{}",
        listing(&served.borrow())
    );
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
    let spans = std::cell::RefCell::new(Vec::new());
    assert_eventually!(
        {
            let got = receiver.spans().await;
            let done = find(&got, "py-stdio", name).is_some()
                && got.iter().any(|s| {
                    s["service"] == "lifeline" && s["name"] == name && s["kind"] == "client"
                });
            spans.replace(got);
            done
        },
        patience = SPANS_PATIENCE,
        "spans so far:\n{}\ngateway log:\n{}",
        listing(&spans.borrow()),
        gw.logs()
    );
    let spans = spans.into_inner();
    let attempt = spans
        .iter()
        .find(|s| s["service"] == "lifeline" && s["name"] == name && s["kind"] == "client")
        .expect("attempt span");
    let child = find(&spans, "py-stdio", name).expect("child span");
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
    let server = spans
        .iter()
        .find(|s| s["service"] == "lifeline" && s["name"] == name && s["kind"] == "server")
        .expect("gateway server span");
    assert_eq!(
        server["parent_span_id"], "",
        "the gateway's span is the root"
    );
}
