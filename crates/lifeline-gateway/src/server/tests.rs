//! The server against raw loopback clients: what real clients do that their libraries hide (pipelining, a body
//! in pieces, `Expect: 100-continue`, a close mid-request) and the framing errors no client library sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::time::timeout;

use super::*;
use crate::body::{self as gw_body, Body};
use crate::http1::Chunked;

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

/// What the test handler saw, and what it lets tests control.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// Notified when `/hold` starts waiting.
    holding: Notify,
    /// Released by a test to let `/hold` answer.
    release: Notify,
    /// Dropped (the handler's future was dropped) while `/hold` waited.
    dropped: Notify,
}

/// Answers by path: `/echo` the method, target and body; `/refuse` a 413 without reading the body; `/hold`
/// waits for `release`; `/stream` a body of two frames of unknown length.
async fn handle(seen: Arc<Seen>, req: Request<RequestBody>) -> Response<Body> {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    match req.uri().path() {
        "/refuse" => {
            let mut resp = Response::new(gw_body::full("too large"));
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            resp
        }
        "/hold" => {
            struct OnDrop(Arc<Seen>, bool);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    if !self.1 {
                        self.0.dropped.notify_one();
                    }
                }
            }
            let mut guard = OnDrop(Arc::clone(&seen), false);
            let release = seen.release.notified();
            seen.holding.notify_one();
            release.await;
            guard.1 = true;
            Response::new(gw_body::full("held"))
        }
        "/stream" => {
            let frames = futures_util::stream::iter([
                Ok::<_, gw_body::BoxError>(http_body::Frame::data(Bytes::from_static(b"one,"))),
                Ok(http_body::Frame::data(Bytes::from_static(b"two"))),
            ]);
            Response::new(StreamBody::new(frames).boxed_unsync())
        }
        _ => {
            let head = format!("{} {} ", req.method(), req.uri());
            let body = req.into_body().collect().await;
            match body {
                Ok(body) => {
                    let mut text = head.into_bytes();
                    text.extend_from_slice(&body.to_bytes());
                    Response::new(gw_body::full(text))
                }
                Err(err) => {
                    let mut resp = Response::new(gw_body::full(err.to_string()));
                    *resp.status_mut() = StatusCode::BAD_REQUEST;
                    resp
                }
            }
        }
    }
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(header_timeout: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let handler = {
        let seen = Arc::clone(&seen);
        move |req, _peer| handle(Arc::clone(&seen), req)
    };
    let done = tokio::spawn(serve_with(
        "test",
        listener,
        handler,
        async move {
            let _ = stopped.await;
        },
        WAIT,
        conn::Options { header_timeout },
    ));
    Server {
        addr,
        seen,
        stop: Some(stop),
        done,
    }
}

/// A response as a raw client reads it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf8")
    }
}

/// Reads more into `buf`; errors at the end of the stream.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut) {
    let n = timeout(WAIT, stream.read_buf(buf))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(n > 0, "the server closed the connection early: {buf:?}");
}

/// Reads one response (its head, then its body by its framing) from `stream`, leaving what follows in `buf`.
async fn read_answer(stream: &mut TcpStream, buf: &mut BytesMut, head_request: bool) -> Answer {
    let (status, headers, len) = loop {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(len) = resp.parse(buf).expect("valid head") {
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            break (resp.code.expect("status"), headers, len);
        }
        fill(stream, buf).await;
    };
    let _ = buf.split_to(len);
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if head_request || status == 100 || status == 204 || status == 304 {
        return answer;
    }
    if let Some(n) = answer.header("content-length") {
        let n: usize = n.parse().expect("length");
        while buf.len() < n {
            fill(stream, buf).await;
        }
        answer.body = buf.split_to(n).to_vec();
    } else if answer.header("transfer-encoding") == Some("chunked") {
        let mut decoder = Chunked::default();
        loop {
            while let Some(data) = decoder.decode(buf).expect("valid chunked body") {
                answer.body.extend_from_slice(&data);
            }
            if decoder.is_done() {
                break;
            }
            fill(stream, buf).await;
        }
    } else {
        let _ = timeout(WAIT, stream.read_to_end(&mut answer.body)).await;
        answer.body.splice(0..0, buf.split().iter().copied());
    }
    answer
}

/// Waits for the server to close `stream` (what it sends first is discarded); panics on a timeout.
async fn closed(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    let read = timeout(WAIT, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the server kept the connection open");
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let server = start(WAIT).await;
    let mut s = connect(&server).await;
    s.write_all(
        b"POST /echo?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /echo HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .expect("write");
    let mut buf = BytesMut::new();
    let first = read_answer(&mut s, &mut buf, false).await;
    assert_eq!((first.status, first.text()), (200, "POST /echo?a=1 hello"));
    assert!(first.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(first.header("connection"), None, "kept alive");
    let second = read_answer(&mut s, &mut buf, false).await;
    assert_eq!(second.text(), "GET /echo ");
    let third = read_answer(&mut s, &mut buf, true).await;
    assert_eq!(
        (third.status, third.header("content-length")),
        (200, Some("11")),
        "HEAD announces the length and sends no body"
    );
    // The connection still serves a request written later.
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_answer(&mut s, &mut buf, false).await.text(),
        "GET /echo "
    );
    assert!(buf.is_empty(), "nothing after the answers: {buf:?}");
    assert_eq!(server.seen.requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_chunked_body_in_pieces_is_decoded_and_a_body_of_unknown_length_is_chunked() {
    let server = start(WAIT).await;
    let mut s = connect(&server).await;
    let mut buf = BytesMut::new();
    let pieces: [&[u8]; 4] = [
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        b"c\r\n",
        b"4;ext=1\r\ndefg\r\n0\r\n",
        b"\r\n",
    ];
    for piece in pieces {
        s.write_all(piece).await.expect("write");
        s.flush().await.expect("flush");
    }
    let echoed = read_answer(&mut s, &mut buf, false).await;
    assert_eq!(echoed.text(), "POST /echo abcdefg");
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let streamed = read_answer(&mut s, &mut buf, false).await;
    assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
    assert_eq!(streamed.text(), "one,two");
    // An HTTP/1.0 client gets the same body delimited by the close.
    let mut old = connect(&server).await;
    old.write_all(b"GET /stream HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let mut buf = BytesMut::new();
    let answer = read_answer(&mut old, &mut buf, false).await;
    assert_eq!(
        (
            answer.header("connection"),
            answer.header("transfer-encoding"),
            answer.text()
        ),
        (Some("close"), None, "one,two")
    );
}

#[tokio::test]
async fn continue_is_sent_when_the_handler_reads_the_body_and_never_when_it_refuses() {
    let server = start(WAIT).await;
    let mut s = connect(&server).await;
    let mut buf = BytesMut::new();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await
    .expect("write");
    let interim = read_answer(&mut s, &mut buf, false).await;
    assert_eq!(interim.status, 100);
    s.write_all(b"body").await.expect("write");
    let answer = read_answer(&mut s, &mut buf, false).await;
    assert_eq!((answer.status, answer.text()), (200, "POST /echo body"));

    s.write_all(
        b"POST /refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99\r\n\r\n",
    )
    .await
    .expect("write");
    let refused = read_answer(&mut s, &mut buf, false).await;
    assert_eq!(
        (refused.status, refused.header("connection")),
        (413, Some("close")),
        "answered at once, and the unread body closes the connection"
    );
    closed(&mut s).await;
}

#[tokio::test]
async fn malformed_heads_and_framing_get_400_or_431_and_close() {
    let server = start(WAIT).await;
    let cases: [(&[u8], u16); 5] = [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nbad\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ];
    for (raw, status) in cases {
        let mut s = connect(&server).await;
        s.write_all(raw).await.expect("write");
        let mut buf = BytesMut::new();
        let answer = read_answer(&mut s, &mut buf, false).await;
        assert_eq!(
            (answer.status, answer.header("connection")),
            (status, Some("close")),
            "{}: {}",
            String::from_utf8_lossy(raw),
            answer.text()
        );
        closed(&mut s).await;
    }
    let mut s = connect(&server).await;
    let big = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    s.write_all(big.as_bytes()).await.expect("write");
    let answer = read_answer(&mut s, &mut BytesMut::new(), false).await;
    assert_eq!(answer.status, 431);
    assert_eq!(
        server.seen.requests.load(Ordering::SeqCst),
        0,
        "no handler saw any"
    );
    // A bad chunked body reaches the handler as an error, and the connection closes after its answer.
    let mut s = connect(&server).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .await
        .expect("write");
    let answer = read_answer(&mut s, &mut BytesMut::new(), false).await;
    assert_eq!(
        (answer.status, answer.header("connection")),
        (400, Some("close"))
    );
    closed(&mut s).await;
}

#[tokio::test]
async fn a_client_that_closes_mid_request_drops_the_handlers_future() {
    let server = start(WAIT).await;
    let mut s = connect(&server).await;
    s.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    // Its future is dropped once the client leaves.
    let dropped = server.seen.dropped.notified();
    tokio::pin!(dropped);
    dropped.as_mut().enable();
    timeout(WAIT, server.seen.holding.notified())
        .await
        .expect("the handler holds");
    drop(s);
    timeout(WAIT, dropped)
        .await
        .expect("the handler's future was dropped");
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_closes_the_connection() {
    let server = start(Duration::from_millis(200)).await;
    let mut s = connect(&server).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost:")
        .await
        .expect("write");
    closed(&mut s).await;
    let mut idle = connect(&server).await;
    closed(&mut idle).await;
}

#[tokio::test]
async fn stopping_closes_idle_connections_and_finishes_the_request_in_flight() {
    let mut server = start(WAIT).await;
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut idle_buf = BytesMut::new();
    read_answer(&mut idle, &mut idle_buf, false).await;
    let mut busy = connect(&server).await;
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    timeout(WAIT, server.seen.holding.notified())
        .await
        .expect("the handler holds");
    server.stop.take().expect("once").send(()).expect("serving");
    closed(&mut idle).await;
    server.seen.release.notify_one();
    let answer = read_answer(&mut busy, &mut BytesMut::new(), false).await;
    assert_eq!(
        (answer.text(), answer.header("connection")),
        ("held", Some("close"))
    );
    closed(&mut busy).await;
    // Our close ends the server's lingering close on this connection.
    drop((busy, idle));
    timeout(WAIT, server.done)
        .await
        .expect("serve returned")
        .expect("no panic");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn a_refusal_before_a_large_body_reaches_the_client_whole() {
    // RFC 9112 §9.6: closing with the body unread would reset the connection, and the client could lose the 413.
    let server = start(WAIT).await;
    let s = connect(&server).await;
    let (mut rx, mut tx) = s.into_split();
    let body = vec![b'x'; 512 * 1024];
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = tx.write_all(head.as_bytes()).await;
        // The server may stop reading before the end: what matters is what the client reads.
        let _ = tx.write_all(&body).await;
        tx
    });
    let mut got = Vec::new();
    timeout(WAIT, rx.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .expect("no reset: the server lingered");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.ends_with("too large"), "{text}");
    drop(timeout(WAIT, writer).await);
}
