//! Proves each fake MCP server behaves exactly as its `FakeKind` variant documents, using a raw hyper HTTP/1
//! client (and tokio-rustls for TLS) so nothing of Lifeline's own prober is involved. Every wait is bounded.

#[path = "fakes/support.rs"]
mod support;
#[path = "fakes/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use lifeline_testkit::assert_eventually;
use lifeline_testkit::fakes::{echo_tool, numbered_tools, FakeKind, HealthyOpts, ModernOpts};
use serde_json::{json, Value};
use tokio::net::TcpStream;

use support::{
    discover, initialize, modern, modern_headers, next_chunk, read, rpc, sse_data, Fake, QUIET,
    STEP, V,
};

#[tokio::test]
async fn closed_port_refuses_connections() {
    let server = Fake::start(FakeKind::ClosedPort).await;
    assert!(server.url().ends_with("/mcp"));
    let error = TcpStream::connect(server.addr())
        .await
        .expect_err("nothing listens");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(!server.is_listening().await);
}

#[tokio::test]
async fn accept_then_hang_reads_but_never_writes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Fake::start(FakeKind::AcceptThenHang).await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("accepts");
    let request = b"POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
    stream
        .write_all(request)
        .await
        .expect("it reads what we send");
    let read = tokio::time::timeout(QUIET, stream.read(&mut [0_u8; 1])).await;
    assert!(read.is_err(), "the fake wrote or closed: {read:?}");
    assert_eventually!(
        server.requests_total() == 1,
        patience = STEP,
        "not within {STEP:?}: the connection is counted"
    );
}

#[tokio::test]
async fn bad_gateway_502_answers_nginx_html() {
    let server = Fake::start(FakeKind::BadGateway502).await;
    let reply = server.post(&initialize(1, V), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert!(String::from_utf8_lossy(&reply.body).contains("<center>nginx"));
    assert_eq!(
        server.http(Method::GET, "/anything", &[]).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(server.requests_total(), 2);
}

#[tokio::test]
async fn html_200_answers_a_web_page() {
    let server = Fake::start(FakeKind::Html200).await;
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/html")));
    assert!(String::from_utf8_lossy(&reply.body).starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn invalid_json_answers_a_truncated_body() {
    let server = Fake::start(FakeKind::InvalidJson).await;
    let reply = server.post(&initialize(1, V), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(&reply.body[..], br#"{"jsonrpc":"2.0","id":1,"result":"#);
}

#[tokio::test]
async fn rpc_error_answers_every_request_with_internal_error() {
    let server = Fake::start(FakeKind::RpcError).await;
    let error = json!({"code": -32603, "message": "Internal error: database unavailable"});
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 1, "error": error})
    );
    let reply = server.post(&initialize(8, V), &[]).await;
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 8, "error": error})
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(server.post(&note, &[]).await.status, StatusCode::ACCEPTED);
    assert_eq!(
        server.rpc_methods(),
        ["server/discover", "initialize", "notifications/initialized"]
    );
}

#[tokio::test]
async fn unsupported_version_rejects_modern_and_offers_2099_to_initialize() {
    let server = Fake::start(FakeKind::UnsupportedVersion).await;
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let data = json!({"supported": ["2099-01-01"], "requested": "2026-07-28"});
    let error = json!({"code": -32022, "message": "Unsupported protocol version", "data": data});
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 1, "error": error})
    );
    let reply = server.post(&initialize(4, V), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["result"]["protocolVersion"], "2099-01-01");
    assert!(reply.header("mcp-session-id").is_none());
}

#[tokio::test]
async fn slow_initialize_answers_only_after_the_delay() {
    let delay = Duration::from_millis(600);
    let server = Fake::start(FakeKind::SlowInitialize { delay }).await;
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        serde_json::from_slice::<Value>(&reply.body).is_err(),
        "a plain body, not JSON"
    );

    // A client with a shorter step timeout gives up.
    let early = tokio::time::timeout(
        Duration::from_millis(200),
        server.post(&initialize(2, V), &[]),
    )
    .await;
    assert!(early.is_err(), "initialize answered before its delay");

    let started = Instant::now();
    let reply = server.post(&initialize(3, V), &[]).await;
    assert!(
        started.elapsed() >= delay,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("mcp-session-id").is_some());
}

#[tokio::test]
async fn sse_never_sends_holds_the_initialize_stream_open() {
    let server = Fake::start(FakeKind::SseNeverSends).await;
    assert_eq!(discover(&server).await.status, StatusCode::BAD_REQUEST);
    let response = server.open_post(&initialize(2, V), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body();
    assert_eq!(
        next_chunk(&mut body, QUIET).await,
        None,
        "the stream sent or ended"
    );
    assert_eq!(server.sessions_open(), 0);
}

#[tokio::test]
async fn session_lost_answers_404_after_initialized() {
    let server = Fake::start(FakeKind::SessionLost).await;
    assert_eq!(discover(&server).await.status, StatusCode::BAD_REQUEST);
    let session = server.session(&[]).await;
    assert_eq!(server.sessions_open(), 0, "the session is forgotten");
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", V),
    ];
    let reply = server
        .post(&rpc(2, "tools/list", json!({})), &headers)
        .await;
    assert_eq!(reply.error_code(), (StatusCode::NOT_FOUND, json!(-32001)));
    assert_eq!(
        server.http(Method::DELETE, "/mcp", &headers).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn auth_required_challenges_and_serves_metadata_and_accepts_the_token() {
    let server = Fake::start(FakeKind::AuthRequired {
        token: Some("s3cret".into()),
    })
    .await;
    let base = server.base_url();
    let reply = server.post(&initialize(1, V), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge =
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    assert_eq!(reply.header("www-authenticate"), Some(challenge.as_str()));
    let reply = server
        .post(&initialize(1, V), &[("authorization", "Bearer wrong")])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|v| v.ends_with("error=\"invalid_token\"")));

    let reply = server
        .http(
            Method::GET,
            "/.well-known/oauth-protected-resource/mcp",
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let metadata = json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/oauth")],
                          "bearer_methods_supported": ["header"]});
    assert_eq!(reply.json(), metadata);

    let session = server.session(&[("authorization", "Bearer s3cret")]).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("authorization", "Bearer s3cret"),
    ];
    let reply = server
        .post(&rpc(2, "tools/list", json!({})), &headers)
        .await;
    assert_eq!(reply.json()["result"]["tools"][0]["name"], "echo");
    assert_eq!(
        server.last_request_headers().expect("headers")["authorization"],
        "Bearer s3cret"
    );
}

#[tokio::test]
async fn healthy_serves_the_legacy_lifecycle() {
    let opts = HealthyOpts {
        tools: numbered_tools(5),
        page_size: 2,
        ..HealthyOpts::default()
    };
    let server = Fake::start(FakeKind::Healthy(opts)).await;

    // A modern request gets a 4xx whose body is not a recognised modern error, so a dual-era client falls back.
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let code = reply.json()["error"]["code"].as_i64().expect("a code");
    assert!(
        !(-32022..=-32020).contains(&code),
        "modern error code {code}"
    );

    // Version negotiation: a known legacy version is echoed, an unknown one gets the latest.
    let reply = server.post(&initialize(2, "2025-06-18"), &[]).await;
    assert_eq!(reply.json()["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        reply.json()["result"]["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    let reply = server.post(&initialize(3, "2099-01-01"), &[]).await;
    assert_eq!(reply.json()["result"]["protocolVersion"], V);
    assert_eq!(server.sessions_open(), 2);

    let session = server.session(&[]).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", V),
    ];
    let mut names = Vec::new();
    let mut params = json!({});
    for page in 0..10 {
        let reply = server
            .post(&rpc(10 + page, "tools/list", params.clone()), &headers)
            .await;
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let result = reply.json()["result"].clone();
        names.extend(
            result["tools"]
                .as_array()
                .expect("tools")
                .iter()
                .map(|t| t["name"].clone()),
        );
        match result.get("nextCursor") {
            Some(cursor) => params = json!({ "cursor": cursor }),
            None => break,
        }
    }
    assert_eq!(
        names,
        ["tool_000", "tool_001", "tool_002", "tool_003", "tool_004"]
    );

    let reply = server.post(&rpc(30, "ping", json!({})), &headers).await;
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 30, "result": {}})
    );
    let call = rpc(
        31,
        "tools/call",
        json!({"name": "tool_001", "arguments": {"message": "hi"}}),
    );
    let reply = server.post(&call, &headers).await;
    assert_eq!(
        reply.json()["result"],
        json!({"content": [{"type": "text", "text": "hi"}], "isError": false})
    );
    let call = rpc(32, "tools/call", json!({"name": "nope", "arguments": {}}));
    assert_eq!(
        server.post(&call, &headers).await.error_code(),
        (StatusCode::OK, json!(-32602))
    );
    assert_eq!(
        server.last_request_headers().expect("headers")["mcp-session-id"],
        session.as_str()
    );

    let list = rpc(33, "tools/list", json!({}));
    assert_eq!(
        server
            .post(&list, &[("mcp-session-id", "nope")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .post(&list, &[("mcp-protocol-version", V)])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let wrong_version = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
    ];
    assert_eq!(
        server.post(&list, &wrong_version).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        server.http(Method::GET, "/mcp", &headers).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        server.http(Method::GET, "/other", &headers).await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(server.sessions_open(), 3);
    assert_eq!(
        server.http(Method::DELETE, "/mcp", &headers).await.status,
        StatusCode::OK
    );
    assert_eq!(server.sessions_open(), 2);
    assert_eq!(
        server.http(Method::DELETE, "/mcp", &headers).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .rpc_methods()
            .iter()
            .filter(|m| *m == "initialize")
            .count(),
        3
    );
}

#[tokio::test]
async fn healthy_rejects_missing_accept_and_foreign_origin() {
    let server = Fake::start(FakeKind::Healthy(HealthyOpts::default())).await;
    let mut req = server.request(Method::POST, "/mcp", &[], Some(&initialize(1, V)));
    req.headers_mut()
        .insert("accept", "application/json".parse().expect("header"));
    assert_eq!(
        read(server.open(req).await).await.status,
        StatusCode::NOT_ACCEPTABLE
    );

    let evil = [("origin", "http://evil.example")];
    assert_eq!(
        server.post(&initialize(1, V), &evil).await.status,
        StatusCode::FORBIDDEN
    );
    let own = format!("http://{}", server.addr());
    assert_eq!(
        server
            .post(&initialize(1, V), &[("origin", own.as_str())])
            .await
            .status,
        StatusCode::OK
    );

    let lax = Fake::start(FakeKind::Healthy(HealthyOpts {
        origin_check: false,
        ..HealthyOpts::default()
    }))
    .await;
    assert_eq!(
        lax.post(&initialize(1, V), &evil).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn healthy_sse_replies_tool_errors_and_empty_tools() {
    let opts = HealthyOpts {
        sse_replies: true,
        tool_is_error: true,
        ..HealthyOpts::default()
    };
    let server = Fake::start(FakeKind::Healthy(opts)).await;
    let reply = server.post(&initialize(1, V), &[]).await;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("x-accel-buffering"), Some("no"));
    assert!(reply.body.starts_with(b"event: message\ndata: {") && reply.body.ends_with(b"}\n\n"));
    assert_eq!(
        reply.sse_json()["result"]["serverInfo"]["name"],
        "lifeline-fake"
    );
    let session = reply.header("mcp-session-id").expect("session").to_owned();
    let call = rpc(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    let reply = server
        .post(&call, &[("mcp-session-id", session.as_str())])
        .await;
    assert_eq!(reply.sse_json()["result"]["isError"], true);

    let opts = HealthyOpts {
        tools: Vec::new(),
        sse_replies: true,
        x_accel_buffering: false,
        ..HealthyOpts::default()
    };
    let server = Fake::start(FakeKind::Healthy(opts)).await;
    let session = server.session(&[]).await;
    let reply = server
        .post(
            &rpc(2, "tools/list", json!({})),
            &[("mcp-session-id", session.as_str())],
        )
        .await;
    assert!(reply.header("x-accel-buffering").is_none());
    assert_eq!(reply.sse_json()["result"], json!({"tools": []}));
}

#[tokio::test]
async fn healthy_reply_bytes_streams_an_exact_padded_reply() {
    for sse in [false, true] {
        let opts = HealthyOpts {
            reply_bytes: Some(200_000),
            sse_replies: sse,
            ..HealthyOpts::default()
        };
        let server = Fake::start(FakeKind::Healthy(opts)).await;
        let reply = server.post(&initialize(5, V), &[]).await;
        assert_eq!(reply.body.len(), 200_000, "sse={sse}");
        assert!(
            reply.header("content-length").is_none(),
            "streamed without a length"
        );
        let message = if sse { reply.sse_json() } else { reply.json() };
        assert_eq!(
            (
                message["id"].clone(),
                message["result"]["protocolVersion"].clone()
            ),
            (json!(5), json!(V))
        );
        assert!(reply.header("mcp-session-id").is_none());
        assert_eq!(server.sessions_open(), 0);
    }
}

#[tokio::test]
async fn healthy_reply_bytes_100mb_is_generated_chunk_by_chunk() {
    let opts = HealthyOpts {
        reply_bytes: Some(100_000_000),
        ..HealthyOpts::default()
    };
    let server = Fake::start(FakeKind::Healthy(opts)).await;
    let response = server.open_post(&initialize(1, V), &[]).await;
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while seen.len() < 4 * 1024 * 1024 {
        let chunk = next_chunk(&mut body, STEP)
            .await
            .expect("chunk in time")
            .expect("more body");
        assert!(
            chunk.len() <= 64 * 1024 + 256,
            "chunk of {} bytes",
            chunk.len()
        );
        seen.extend_from_slice(&chunk);
    }
    assert!(seen.starts_with(br#"{"jsonrpc":"2.0","id":1,"result":{"#) && seen.ends_with(b"xxxx"));
    // Dropping the body cuts the connection; the server must not mind.
    drop(body);
    assert!(server.is_listening().await);
}

#[tokio::test]
async fn healthy_endless_sse_sends_only_keepalives() {
    let server = Fake::start(FakeKind::Healthy(HealthyOpts {
        endless_sse: true,
        ..HealthyOpts::default()
    }))
    .await;
    let response = server.open_post(&initialize(1, V), &[]).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.len() < 10 * ": keepalive\n\n".len() {
        seen.extend_from_slice(
            &next_chunk(&mut body, STEP)
                .await
                .expect("in time")
                .expect("stream open"),
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "keepalives too fast: {:?}",
        started.elapsed()
    );
    let text = String::from_utf8(seen).expect("UTF-8");
    assert!(
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .all(|e| e == ": keepalive"),
        "{text:?}"
    );
}

#[tokio::test]
async fn modern_serves_discover_and_validates_metadata() {
    let server = Fake::start(FakeKind::Modern(ModernOpts {
        tools: numbered_tools(3),
        page_size: 2,
        ..ModernOpts::default()
    }))
    .await;
    let reply = discover(&server).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("mcp-session-id").is_none());
    let result = reply.json()["result"].clone();
    assert_eq!(
        (
            result["resultType"].clone(),
            result["supportedVersions"].clone()
        ),
        (json!("complete"), json!(["2026-07-28"]))
    );
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "lifeline-fake"
    );

    let list = modern_headers("tools/list");
    let reply = server
        .post(&modern(2, "tools/list", json!({})), &list)
        .await;
    let cursor = reply.json()["result"]["nextCursor"].clone();
    let reply = server
        .post(&modern(3, "tools/list", json!({ "cursor": cursor })), &list)
        .await;
    assert_eq!(reply.json()["result"]["tools"][0]["name"], "tool_002");

    let call = modern(
        4,
        "tools/call",
        json!({"name": "tool_000", "arguments": {"message": "hey"}}),
    );
    let [version, method] = modern_headers("tools/call");
    let reply = server
        .post(
            &call,
            &[version, method, ("mcp-name", "=?base64?dG9vbF8wMDA=?=")],
        )
        .await;
    assert_eq!(reply.json()["result"]["content"][0]["text"], "hey");
    assert_eq!(
        server.post(&call, &[version, method]).await.error_code(),
        (StatusCode::BAD_REQUEST, json!(-32020))
    );
    let wrong_name = [version, method, ("mcp-name", "tool_001")];
    assert_eq!(
        server.post(&call, &wrong_name).await.error_code(),
        (StatusCode::BAD_REQUEST, json!(-32020))
    );

    let discover_body = modern(5, "server/discover", json!({}));
    assert_eq!(
        server.post(&discover_body, &[]).await.error_code(),
        (StatusCode::BAD_REQUEST, json!(-32020))
    );
    let mismatched = modern_headers("tools/list");
    assert_eq!(
        server.post(&discover_body, &mismatched).await.error_code(),
        (StatusCode::BAD_REQUEST, json!(-32020))
    );
    let mut future = discover_body.clone();
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2027-01-01");
    let reply = server
        .post(
            &future,
            &[
                ("mcp-protocol-version", "2027-01-01"),
                ("mcp-method", "server/discover"),
            ],
        )
        .await;
    assert_eq!(reply.error_code(), (StatusCode::BAD_REQUEST, json!(-32022)));
    assert_eq!(
        reply.json()["error"]["data"]["supported"],
        json!(["2026-07-28"])
    );
    let no_meta = rpc(7, "server/discover", json!({}));
    let reply = server
        .post(&no_meta, &modern_headers("server/discover"))
        .await;
    assert_eq!(reply.error_code(), (StatusCode::BAD_REQUEST, json!(-32602)));
    let reply = server
        .post(&modern(8, "ping", json!({})), &modern_headers("ping"))
        .await;
    assert_eq!(reply.error_code(), (StatusCode::NOT_FOUND, json!(-32601)));

    let reply = server.post(&initialize(9, V), &[]).await;
    assert_eq!(reply.error_code(), (StatusCode::BAD_REQUEST, json!(-32022)));
    assert_eq!(
        reply.json()["error"]["data"]["supported"],
        json!(["2026-07-28"])
    );
    for method in [Method::GET, Method::DELETE] {
        let reply = server.http(method, "/mcp", &[]).await;
        assert_eq!(
            (reply.status, reply.header("allow")),
            (StatusCode::METHOD_NOT_ALLOWED, Some("POST"))
        );
    }
    assert_eq!(server.sessions_open(), 0);
}

#[tokio::test]
async fn modern_sse_replies_are_framed() {
    let opts = ModernOpts {
        sse_replies: true,
        tool_is_error: true,
        tools: vec![echo_tool()],
        ..ModernOpts::default()
    };
    let server = Fake::start(FakeKind::Modern(opts)).await;
    let call = modern(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    );
    let [version, method] = modern_headers("tools/call");
    let reply = server
        .post(&call, &[version, method, ("mcp-name", "echo")])
        .await;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.sse_json()["result"]["isError"], true);
}

#[tokio::test]
async fn legacy_sse_announces_an_endpoint_and_answers_on_the_stream() {
    let server = Fake::start(FakeKind::LegacySse).await;
    assert!(server.url().ends_with("/sse"));
    assert_eq!(
        server.post(&initialize(1, V), &[]).await.status,
        StatusCode::NOT_FOUND,
        "no /mcp"
    );
    assert_eq!(
        server.post_to("/sse", &initialize(1, V)).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        server.http(Method::GET, "/", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    let response = server
        .open(server.request(
            Method::GET,
            "/sse",
            &[("accept", "text/event-stream")],
            None,
        ))
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = next_chunk(&mut body, STEP)
        .await
        .expect("endpoint in time")
        .expect("stream open");
    let first = String::from_utf8(first.to_vec()).expect("UTF-8");
    let endpoint = first
        .strip_prefix("event: endpoint\ndata: ")
        .and_then(|rest| rest.strip_suffix("\n\n"));
    let endpoint = endpoint
        .unwrap_or_else(|| panic!("first event {first:?}"))
        .to_owned();
    assert!(endpoint.starts_with("/messages?sessionId="));
    assert_eq!(server.sessions_open(), 1);

    assert_eq!(
        server
            .post_to(&endpoint, &initialize(2, "2024-11-05"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let mut text = String::new();
    while !text.contains("event: message\n") {
        let chunk = next_chunk(&mut body, STEP)
            .await
            .expect("reply in time")
            .expect("stream open");
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
    let message = sse_data(&text);
    assert_eq!(
        (
            message["id"].clone(),
            message["result"]["protocolVersion"].clone()
        ),
        (json!(2), json!("2024-11-05"))
    );

    let unknown = server
        .post_to("/messages?sessionId=unknown", &initialize(3, "2024-11-05"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    drop(body);
    assert_eventually!(
        server.sessions_open() == 0,
        patience = STEP,
        "not within {STEP:?}: the session ends with its stream"
    );
    assert_eq!(
        server
            .post_to(&endpoint, &initialize(4, "2024-11-05"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn dropping_the_server_cuts_streams_and_closes_the_port() {
    let server = Fake::start(FakeKind::SseNeverSends).await;
    let addr = server.addr();
    let mut body = server.open_post(&initialize(1, V), &[]).await.into_body();
    drop(server);
    assert_eq!(
        next_chunk(&mut body, STEP).await,
        Some(None),
        "the stream ends when the server goes"
    );
    assert_eventually!(
        TcpStream::connect(addr).await.is_err(),
        patience = STEP,
        "not within {STEP:?}: the port closes"
    );
}
