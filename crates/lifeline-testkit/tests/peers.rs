//! Starts every HTTP peer `scripts/install-peers.sh` installs and checks it answers a raw `initialize` with 200.
//! Needs the peers installed (the launchers panic with "run scripts/install-peers.sh" otherwise).

use std::time::Duration;

use lifeline_testkit::assert_eventually;
use lifeline_testkit::peers::raw_http::{self, RawResponse};
use lifeline_testkit::peers::{
    conformance_command, Conformance, EverythingTransport, Peer, Py1Mode, PyServer,
};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"lifeline-testkit","version":"0"}}}"#;

const DISCOVER: &str = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"lifeline-testkit","version":"0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

const PATIENCE: Duration = Duration::from_secs(10);

/// POSTs `initialize` to a Streamable HTTP peer and checks the 200 and the JSON-RPC result inside.
async fn initialize(peer: &Peer) -> RawResponse {
    let resp = raw_http::post_json(&peer.url, &[], INITIALIZE)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: initialize failed: {e}\n{}",
                peer.url,
                peer.guard.output_tail()
            )
        });
    assert_eq!(resp.status, 200, "{}: {}", peer.url, resp.text());
    assert!(
        resp.text().contains(r#""protocolVersion":"2025-11-25""#),
        "{}",
        resp.text()
    );
    resp
}

async fn delete_session(peer: &Peer, session: &str) -> u16 {
    let headers = [
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    raw_http::request("DELETE", &peer.url, &headers, None, PATIENCE)
        .await
        .expect("DELETE answers")
        .status
}

#[tokio::test]
async fn everything_streamable_http_answers_initialize() {
    let peer = Peer::everything(EverythingTransport::StreamableHttp).await;
    assert!(peer.url.ends_with("/mcp"), "{}", peer.url);
    let resp = initialize(&peer).await;
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let session = resp
        .header("mcp-session-id")
        .expect("stateful: a session id")
        .to_owned();
    // server-everything never expires sessions: always end them.
    assert_eq!(delete_session(&peer, &session).await, 200);
    assert_eq!(
        peer.sessions_active().await,
        None,
        "server-everything has no /debug/sessions"
    );
}

#[tokio::test]
async fn everything_sse_serves_the_event_stream() {
    let peer = Peer::everything(EverythingTransport::Sse).await;
    assert!(peer.url.ends_with("/sse"), "{}", peer.url);
    // The stream never ends: read its head only, bounded by the timeout.
    let (_stream, head) = open_sse(peer.addr, "/sse").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("event: endpoint") && head.contains("/message?sessionId="),
        "{head}"
    );
}

#[tokio::test]
async fn python_stateful_counts_and_ends_sessions() {
    let peer = Peer::python(PyServer::Stateful).await;
    assert_eq!(peer.sessions_active().await, Some(0));
    let resp = initialize(&peer).await;
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let session = resp
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    assert_eq!(peer.sessions_active().await, Some(1));
    assert_eq!(delete_session(&peer, &session).await, 200);
    assert_eventually!(peer.sessions_active().await == Some(0), patience = PATIENCE);
}

#[tokio::test]
async fn python_stateless_answers_initialize_and_server_discover() {
    let peer = Peer::python(PyServer::Stateless).await;
    let resp = initialize(&peer).await;
    assert_eq!(resp.header("mcp-session-id"), None);
    let modern = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "server/discover"),
    ];
    let resp = raw_http::post_json(&peer.url, &modern, DISCOVER)
        .await
        .expect("discover answers");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert!(
        resp.text()
            .contains(r#""supportedVersions":["2026-07-28"]"#),
        "{}",
        resp.text()
    );
    assert_eq!(peer.sessions_active().await, Some(0));
}

#[tokio::test]
async fn python_json_replies_with_plain_json() {
    let peer = Peer::python(PyServer::Json).await;
    let resp = initialize(&peer).await;
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let session = resp
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    assert_eq!(delete_session(&peer, &session).await, 200);
    assert_eventually!(peer.sessions_active().await == Some(0), patience = PATIENCE);
}

#[tokio::test]
async fn python_legacy_stateful_and_stateless_answer_initialize() {
    let stateful = Peer::python_legacy(Py1Mode::Stateful).await;
    let resp = initialize(&stateful).await;
    let session = resp
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    assert_eq!(stateful.sessions_active().await, Some(1));
    assert_eq!(delete_session(&stateful, &session).await, 200);
    assert_eventually!(
        stateful.sessions_active().await == Some(0),
        patience = PATIENCE
    );

    let stateless = Peer::python_legacy(Py1Mode::Stateless).await;
    let resp = initialize(&stateless).await;
    assert_eq!(resp.header("mcp-session-id"), None);
    // Legacy only: a 2026-07-28 request is refused.
    let modern = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "server/discover"),
    ];
    let resp = raw_http::post_json(&stateless.url, &modern, DISCOVER)
        .await
        .expect("answers");
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("Unsupported protocol version"),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn python_legacy_sse_counts_open_streams() {
    let peer = Peer::python_legacy(Py1Mode::Sse).await;
    assert!(peer.url.ends_with("/sse"), "{}", peer.url);
    assert_eq!(peer.sessions_active().await, Some(0));
    let (stream, head) = open_sse(peer.addr, "/sse").await;
    assert!(
        head.contains("event: endpoint") && head.contains("/messages/?session_id="),
        "{head}"
    );
    assert_eq!(peer.sessions_active().await, Some(1));
    drop(stream);
    assert_eventually!(peer.sessions_active().await == Some(0), patience = PATIENCE);
}

#[test]
fn conformance_suites_run_on_node_22() {
    for which in [Conformance::Stable, Conformance::Next] {
        let (program, args) = conformance_command(which);
        let out = std::process::Command::new(program)
            .args(args)
            .args(["list", "--client"])
            .output()
            .expect("node 22 runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("- initialize"),
            "{which:?}: {text}"
        );
    }
}

#[test]
fn stdio_commands_point_at_installed_files() {
    for (program, args) in [
        Peer::everything_stdio_command(),
        Peer::python_stdio_command(),
    ] {
        assert!(program.exists(), "{}", program.display());
        assert_eq!(args.last().map(String::as_str), Some("stdio"));
    }
}

/// Opens `GET path` as an SSE stream; returns the open stream and what arrived until the `endpoint` event's data
/// line was complete (bounded by [`PATIENCE`]).
async fn open_sse(addr: std::net::SocketAddr, path: &str) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("writes");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // Until the endpoint event's `data:` line (which names the session) is complete.
    let complete = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        text.find("session")
            .is_some_and(|at| text[at..].contains('\n'))
    };
    while !complete(&got) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the endpoint event arrives in time")
            .expect("reads");
        assert!(
            n > 0,
            "stream closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    (stream, String::from_utf8_lossy(&got).into_owned())
}
