//! A deliberately tiny HTTP/1.1 client over a raw `TcpStream`, for talking to peers in tests without pulling a full
//! client into the testkit: one request per connection (`Connection: close`), `http://` only, bounded in time and
//! size, chunked bodies decoded. Not for streams that never end (a GET SSE stream): those hit the timeout.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response (head and body) [`request`] reads: 4 MiB.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `url` (`http://HOST:PORT/PATH?QUERY`) and reads the whole response, all within `timeout`.
/// `Host`, `Connection: close` and (with a body) `Content-Length` are added; `headers` are sent as given.
///
/// # Errors
/// `InvalidInput` for a URL that is not plain `http://`, `TimedOut` past `timeout`, `InvalidData` for a response
/// that is not HTTP/1.x or exceeds [`MAX_RESPONSE_BYTES`], and any socket error.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<RawResponse> {
    tokio::time::timeout(timeout, request_inner(method, url, headers, body))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{method} {url}: no full response in {timeout:?}"),
            )
        })?
}

/// How long [`post_json`] waits for a whole response: 30 s. A guard against a hang, not a latency bound. It is
/// this long because a request that opens a stdio session spawns a Python server first, and on a 2-core CI
/// machine with other tests running that spawn alone was seen to take over 10 s.
pub const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST url` with a JSON body and the `Accept` header MCP's Streamable HTTP requires
/// (`application/json, text/event-stream`), plus `extra` headers. Times out after [`POST_TIMEOUT`].
///
/// # Errors
/// As [`request`].
pub async fn post_json(url: &str, extra: &[(&str, &str)], json: &str) -> io::Result<RawResponse> {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    headers.extend_from_slice(extra);
    request("POST", url, &headers, Some(json.as_bytes()), POST_TIMEOUT).await
}

async fn request_inner(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<RawResponse> {
    let (authority, path) = split_url(url)?;
    let mut stream = TcpStream::connect(authority).await?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        stream.write_all(body).await?;
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_RESPONSE_BYTES {
            return Err(invalid(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        // A Content-Length response may be complete before the server closes.
        if let Some(done) = complete_len(&raw) {
            raw.truncate(done);
            break;
        }
    }
    parse(&raw)
}

fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an http:// URL: {url}"),
        )
    })?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Total length of a response whose head is in and which declares a `Content-Length`, once that much arrived.
fn complete_len(raw: &[u8]) -> Option<usize> {
    let end = head_end(raw)?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let len: usize = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    (raw.len() >= end + len).then_some(end + len)
}

fn parse(raw: &[u8]) -> io::Result<RawResponse> {
    let end = head_end(raw)
        .ok_or_else(|| invalid("connection closed before the response head ended".into()))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|e| invalid(format!("response head is not UTF-8: {e}")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line: {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(&raw[end..])?
    } else {
        raw[end..].to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size line".into()))?;
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| invalid("chunk size not UTF-8".into()))?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_hex:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(invalid("truncated chunk".into()));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_chunked_sse_response() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
                    6\r\nevent:\r\n7\r\n hello\n\r\n0\r\n\r\n";
        let r = parse(raw).expect("valid");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/event-stream"));
        assert_eq!(r.text(), "event: hello\n");
    }

    #[test]
    fn content_length_completes_before_close() {
        let raw = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nokEXTRA";
        assert_eq!(complete_len(raw), Some(raw.len() - 5));
        assert_eq!(complete_len(&raw[..raw.len() - 6]), None);
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(split_url("https://x/").is_err());
        assert_eq!(
            split_url("http://127.0.0.1:5/mcp").expect("ok"),
            ("127.0.0.1:5", "/mcp")
        );
        assert_eq!(
            split_url("http://127.0.0.1:5").expect("ok"),
            ("127.0.0.1:5", "/")
        );
    }
}
