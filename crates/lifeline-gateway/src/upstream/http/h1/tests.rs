//! The upstream client against a hyper server (reuse, the idle reaper) and against a raw HTTP/1.1 upstream that
//! writes the framing failure modes no real peer shows on demand.

use std::sync::atomic::{AtomicUsize, Ordering};

use http_body::Body as _;
use hyper::body::Incoming as Received;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

/// No `X-Forwarded-*` fields.
const NONE: Forwarded = Forwarded {
    for_: None,
    host: None,
    proto: None,
};

/// A hyper server on loopback answering `ok` (`close` in the path: `Connection: close`); counts the
/// connections it accepted and those that ended.
async fn server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let ended = Arc::new(AtomicUsize::new(0));
    let ends = Arc::clone(&ended);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let ends = Arc::clone(&ends);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Received>| async move {
                    let host = req.headers().get(header::HOST).cloned();
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if let Some(h) = host {
                        resp.headers_mut().insert("x-seen-host", h);
                    }
                    if req.uri().path() == "/close" {
                        resp.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                });
                let _ = server::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                ends.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}"), accepted, ended)
}

async fn get(client: &Arc<Client>, url: &str) -> (StatusCode, String, Option<HeaderValue>) {
    let req = Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = client
        .request(req, &Forwarded::default())
        .await
        .expect("answered");
    let status = resp.status();
    let host = resp.headers().get("x-seen-host").cloned();
    // Read as hyper's server relays a body: frames until the body says it has ended, no final `None`.
    let mut body = resp.into_body();
    let mut text = String::new();
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.expect("frame").into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    (status, text, host)
}

#[tokio::test]
async fn a_connection_is_reused_once_its_body_is_read_and_replaced_once_closed() {
    let (base, accepted, _) = server().await;
    let client = Client::new(Duration::from_secs(10));
    for _ in 0..3 {
        let (status, body, host) = get(&client, &format!("{base}/mcp")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        // Origin form on the wire, Host from the URL.
        assert_eq!(
            host.as_ref().and_then(|h| h.to_str().ok()),
            base.strip_prefix("http://")
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "three requests, one connection"
    );
    // The upstream closes this one after answering: the next request gets a new connection, no error.
    let (status, _, _) = get(&client, &format!("{base}/close")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = get(&client, &format!("{base}/mcp")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_are_closed_when_their_idle_time_runs_out() {
    let (base, accepted, ended) = server().await;
    let client = Client::with_idle_timeout(Duration::from_secs(10), Duration::from_millis(300));
    let (status, _, _) = get(&client, &format!("{base}/mcp")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        client.lock().hosts[0].idle.len(),
        1,
        "pooled after its body"
    );
    assert!(client.lock().reaper);
    // Nobody uses the pool again: the reaper alone closes the connection, then ends.
    let start = Instant::now();
    lifeline_testkit::assert_eventually!(
        ended.load(Ordering::SeqCst) == 1,
        patience = Duration::from_secs(10),
        "the upstream saw the idle connection close"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "not before its idle time"
    );
    assert!(client.lock().hosts[0].idle.is_empty());
    assert!(!client.lock().reaper, "the reaper ended with nothing idle");
    // The pool still works, with a new connection and a new reaper.
    let (status, _, _) = get(&client, &format!("{base}/mcp")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert!(client.lock().reaper);
}

/// What the raw upstream does once it has read a request.
enum Act {
    /// Writes these bytes.
    Write(Vec<u8>),
    /// The response is complete: reads the next request on the same connection.
    Next,
    /// Closes the connection (and reports it on `closed`).
    Close,
}

/// A raw HTTP/1.1 upstream on loopback, for the framing failure modes no real peer shows on demand: it reads
/// each request whole (reported on `requests`), then follows the acts queued on `acts`, one connection at a
/// time.
struct Raw {
    url: String,
    acts: mpsc::UnboundedSender<Act>,
    requests: mpsc::UnboundedReceiver<String>,
    closed: mpsc::UnboundedReceiver<()>,
    accepted: Arc<AtomicUsize>,
}

impl Raw {
    async fn start() -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (acts, mut queued) = mpsc::unbounded_channel();
        let (report, requests) = mpsc::unbounded_channel();
        let (closing, closed) = mpsc::unbounded_channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                'requests: while let Some(request) = read_request(&mut stream).await {
                    let _ = report.send(request);
                    loop {
                        match queued.recv().await {
                            None => return,
                            Some(Act::Write(bytes)) => {
                                let _ = stream.write_all(&bytes).await;
                            }
                            Some(Act::Next) => continue 'requests,
                            Some(Act::Close) => {
                                drop(stream);
                                let _ = closing.send(());
                                break 'requests;
                            }
                        }
                    }
                }
            }
        });
        Raw {
            url: format!("http://{addr}/mcp"),
            acts,
            requests,
            closed,
            accepted,
        }
    }

    /// Queues acts for the next request.
    fn then(&self, acts: impl IntoIterator<Item = Act>) {
        for act in acts {
            self.acts.send(act).expect("the upstream runs");
        }
    }

    /// Queues `response` and then the next request.
    fn answer(&self, response: &str) {
        self.then([Act::Write(response.as_bytes().to_vec()), Act::Next]);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The requests received since the last call.
    fn received(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
    }
}

/// One request (head and `Content-Length` body) as text; `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `fut`, failing the test after 10 s (a hang is a failure, never a stuck run).
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("done within 10 s")
}

fn post(url: &str, body: &'static str) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(Bytes::from_static(body.as_bytes())));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = url.parse().expect("url");
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    req
}

/// The next data frame of `body`, `None` at its end.
async fn next_data(body: &mut Body) -> Option<Bytes> {
    loop {
        let frame = within(body.frame()).await?.expect("a good frame");
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// The rest of `body`, read as hyper's server relays one: frames until it says it has ended.
async fn rest(body: &mut Body) -> String {
    let mut text = String::new();
    for _ in 0..10_000 {
        if body.is_end_stream() {
            return text;
        }
        match next_data(body).await {
            Some(data) => text.push_str(&String::from_utf8_lossy(&data)),
            None => return text,
        }
    }
    panic!("a body of more than 10 000 frames");
}

#[tokio::test]
async fn content_length_bodies_reuse_one_connection_for_sequential_requests() {
    let mut up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    for _ in 0..3 {
        up.answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello");
        let resp = within(client.request(post(&up.url, "{}"), &NONE))
            .await
            .expect("answered");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-a"], "1");
        let mut body = resp.into_body();
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(rest(&mut body).await, "hello");
    }
    assert_eq!(up.accepted(), 1, "three requests, one connection");
    let port = up
        .url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp")
        .to_owned();
    let received = up.received();
    assert_eq!(received.len(), 3);
    for req in received {
        assert_eq!(
            req,
            format!(
                "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 2\r\n\r\n{{}}"
            )
        );
    }
}

#[tokio::test]
async fn chunked_bodies_are_relayed_as_they_arrive() {
    let mut up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    // The first chunk, split inside its data; its extension is ignored.
    up.then([Act::Write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nb;id=1\r\ndata: o"
            .to_vec(),
    )]);
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(resp.headers()[header::TRANSFER_ENCODING], "chunked");
    let mut body = resp.into_body();
    // Each piece arrives before the upstream sends the next: nothing waits for the end of the stream.
    assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"data: o"[..]));
    up.then([Act::Write(b"ne\n\n\r".to_vec())]);
    assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"ne\n\n"[..]));
    up.then([Act::Write(
        b"\nC ; last=\"yes\"\r\ndata: two!\n\n\r\n0\r\nX-T".to_vec(),
    )]);
    assert_eq!(
        next_data(&mut body).await.as_deref(),
        Some(&b"data: two!\n\n"[..])
    );
    up.then([Act::Write(b"railer: t\r\n\r\n".to_vec()), Act::Next]);
    assert_eq!(
        next_data(&mut body).await,
        None,
        "ends after the trailer section"
    );
    assert!(body.is_end_stream());
    // The connection went back: the next request uses it.
    up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    assert_eq!(up.accepted(), 1);
    assert_eq!(up.received().len(), 2);
}

#[tokio::test]
async fn close_delimited_and_connection_close_responses_are_not_reused() {
    let up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    // No length: the body runs to the close.
    up.then([
        Act::Write(b"HTTP/1.1 200 OK\r\n\r\npart one,".to_vec()),
        Act::Write(b"part two".to_vec()),
        Act::Close,
    ]);
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "part one,part two");
    assert!(client.lock().hosts[0].idle.is_empty());
    // `Connection: close` with a length: the upstream keeps the connection open, the client does not.
    up.answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    assert!(client.lock().hosts[0].idle.is_empty());
    up.answer("HTTP/1.1 204 No Content\r\n\r\n");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.body().is_end_stream());
    assert_eq!(up.accepted(), 3, "a new connection after each");
}

#[tokio::test]
async fn interim_responses_are_skipped_and_101_is_an_error() {
    let up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    up.answer(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("link").is_none(),
        "the interim head's fields are not the final one's"
    );
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    up.answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    let err = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect_err("101");
    assert_eq!(err.reason(), "protocol");
    assert!(err.to_string().contains("101 Switching Protocols"), "{err}");
}

#[tokio::test]
async fn an_oversized_response_head_is_an_error() {
    let up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    up.answer(&format!(
        "HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    ));
    let err = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect_err("too large");
    assert_eq!(
        err.to_string(),
        "upstream protocol error: the upstream's response head is larger than 64 KiB"
    );
    assert!(client.lock().hosts[0].idle.is_empty());
}

#[tokio::test]
async fn a_connection_closed_after_the_request_left_is_an_error_never_a_resend() {
    let mut up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    // A first exchange, so the second request goes out on a reused connection.
    up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    // The upstream reads the next request and closes without answering: it may have run it, so the client
    // must not send it again (a resend would reach the upstream as a second request on a new connection,
    // left unanswered: this test would time out).
    up.then([Act::Close]);
    let err = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect_err("no answer");
    assert_eq!(
        err.to_string(),
        "upstream protocol error: the upstream closed the connection before answering"
    );
    assert_eq!(up.received().len(), 2, "sent once");
    assert_eq!(up.accepted(), 1, "no new connection");
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_replaced_without_error() {
    let mut up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    // A keep-alive answer, then the upstream closes the idle connection (its keep-alive timeout).
    up.then([
        Act::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
        Act::Close,
    ]);
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    within(up.closed.recv()).await.expect("closed");
    assert_eq!(
        client.lock().hosts[0].idle.len(),
        1,
        "pooled before the close"
    );
    up.answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("no error");
    assert_eq!(rest(&mut resp.into_body()).await, "new");
    assert_eq!(up.accepted(), 2);
    assert_eq!(up.received().len(), 2, "each request sent once");
}

#[tokio::test]
async fn a_body_dropped_early_closes_its_connection() {
    let up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    up.answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    let mut body = resp.into_body();
    assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"hello"[..]));
    drop(body); // the client left: five bytes of this response are still due
    assert!(client.lock().hosts[0].idle.is_empty());
    up.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    assert_eq!(rest(&mut resp.into_body()).await, "ok");
    assert_eq!(up.accepted(), 2, "a new connection");
}

#[tokio::test]
async fn a_body_cut_short_is_an_error() {
    let up = Raw::start().await;
    let client = Client::new(Duration::from_secs(10));
    up.then([
        Act::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
        Act::Close,
    ]);
    let resp = within(client.request(post(&up.url, "{}"), &NONE))
        .await
        .expect("answered");
    let mut body = resp.into_body();
    assert_eq!(next_data(&mut body).await.as_deref(), Some(&b"hello"[..]));
    let err = within(body.frame())
        .await
        .expect("a frame")
        .expect_err("cut short");
    assert!(
        err.to_string()
            .contains("before the end of its response body"),
        "{err}"
    );
    assert!(client.lock().hosts[0].idle.is_empty());
}
