//! HTTP/1.1 message syntax for the gateway's server (RFC 9112): the request head it reads (`httparse`, bounded in
//! size and field count), how the request body is delimited (§6.3) and the response head it writes.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri, Version};

use crate::http1::{
    content_length, has_token, itoa, BadField, BadLength, Spans, MAX_HEADERS, MAX_HEAD_BYTES,
};

/// Room left in a request's header map for the fields handlers add (`X-Lifeline-*`, `traceparent`): 4.
const HEADROOM: usize = 4;

/// A request head the server refuses, answered with `status` and `reason` (a short text body) before the
/// connection closes: the framing of what follows is unknown, so nothing more is read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) reason: String,
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
}

/// How a request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Exactly this many bytes: `Content-Length` (§6.3 item 6), 0 without either framing field (item 7).
    Length(u64),
    /// The chunked transfer coding (§6.3 item 4, §7.1).
    Chunked,
}

/// Parses the request head at the start of `buf` (RFC 9112 §2.1, §3, §5) and splits it off: `Ok(None)`, `buf`
/// untouched, while it is incomplete and under [`MAX_HEAD_BYTES`]. Field values share the head's bytes; the
/// fields go into `spare` (the previous response's map, cleared: one allocation fewer) when it is given.
///
/// Refusals: 431 for a head over [`MAX_HEAD_BYTES`] or with more than [`MAX_HEADERS`] fields (RFC 6585 §5);
/// 400 for anything `httparse`, `http` or §3.2 rejects (a bad request line, a field line without a colon, a
/// control character in a value, an HTTP/1.1 request without exactly one `Host`).
pub(super) fn parse_head(
    buf: &mut BytesMut,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, Refusal> {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut fields,
    );
    let too_large = || Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        reason: format!(
            "the request head is larger than {} KiB or has more than {MAX_HEADERS} header fields",
            MAX_HEAD_BYTES / 1024
        ),
    };
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(too_large()),
        Err(e) => {
            return Err(Refusal::bad(format!(
                "the request head is not valid HTTP/1.1: {e}"
            )))
        }
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::bad("the request method is not a valid token"))?;
    let version = match req.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let spans = Spans::new(buf, len, req.headers);
    let target = spans
        .as_ref()
        .and_then(|s| s.of(req.path.unwrap_or_default().as_bytes()));
    let (Some(spans), Some((ts, te))) = (spans, target) else {
        return Err(Refusal::bad("a part of the request head lies outside it"));
    };
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(ts..te))
        .map_err(|_| Refusal::bad("the request target is not a valid URI"))?;
    let headers = spans
        .header_map(&head, HEADROOM, spare.take(), None)
        .map_err(|bad| match bad {
            BadField::Name(name) => Refusal::bad(format!("invalid header field name {name:?}")),
            BadField::Value(name) => {
                Refusal::bad(format!("the {name} header field has an invalid value"))
            }
        })?;
    // §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that
    // lacks a Host header field and to any request message that contains more than one Host header field".
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(_), None) => true,
        (None, None) => version == Version::HTTP_10,
        _ => false,
    };
    if !host_ok {
        return Err(Refusal::bad(
            "an HTTP/1.1 request needs exactly one Host header field (RFC 9112 §3.2)",
        ));
    }
    Ok(Some(Head {
        method,
        uri,
        version,
        headers,
    }))
}

/// How the body of a request with these fields is delimited (RFC 9112 §6.3), and whether the connection must
/// close after the response: HTTP/1.0 (the gateway keeps only HTTP/1.1 connections alive), or `Connection:
/// close` (§9.6).
///
/// Refusals (400; the connection closes, as the framing is unknown): `Transfer-Encoding` in an HTTP/1.0 request
/// (§6.1: faulty framing), with `Content-Length` beside it (§6.3 item 3 allows rejecting; such a message is the
/// request-smuggling shape), or whose final coding is not `chunked` (§6.3 item 4: the server "MUST respond with
/// the 400"); a `Content-Length` that is not one non-negative decimal number, or several that differ (item 5).
pub(super) fn framing(version: Version, headers: &HeaderMap) -> Result<(Framing, bool), Refusal> {
    let close = version != Version::HTTP_11 || has_token(headers, "close");
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if version != Version::HTTP_11 {
            return Err(Refusal::bad(
                "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)",
            ));
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(Refusal::bad(
                "both Transfer-Encoding and Content-Length (RFC 9112 §6.3)",
            ));
        }
        let chunked_last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if !chunked_last {
            return Err(Refusal::bad(
                "a Transfer-Encoding whose final coding is not chunked (RFC 9112 §6.3)",
            ));
        }
        return Ok((Framing::Chunked, close));
    }
    let length = content_length(headers).map_err(|bad| match bad {
        BadLength::Invalid => Refusal::bad("the Content-Length is not a non-negative integer"),
        BadLength::Conflicting => Refusal::bad("conflicting Content-Length values"),
    })?;
    Ok((Framing::Length(length.unwrap_or(0)), close))
}

/// Whether the client waits for `100 Continue` before it sends the body (RFC 9110 §10.1.1; ignored in an
/// HTTP/1.0 request, as that section says).
pub(super) fn expects_continue(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    /// No body: 1xx, 204, 304, or the answer to `HEAD` (RFC 9112 §6.3 item 1).
    Empty,
    /// Exactly this many bytes, `Content-Length`.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Until the server closes the connection (an HTTP/1.0 client, a stream of unknown length).
    Close,
}

/// Appends the response head to `out`: the status line (always HTTP/1.1, RFC 9110 §2.5), the fields of
/// `headers` except the framing ones and `Connection`, then `Date` when the handler set none (RFC 9110 §6.6.1: an
/// origin server with a clock MUST send it), `connection: close` when `close`, and the framing field `body` calls
/// for (`length`: the `Content-Length` to announce for [`Out::Empty`] on a `HEAD` answer, from the body's size).
pub(super) fn encode_response(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    body: Out,
    head_length: Option<u64>,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut dated = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        dated |= name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        date(out);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let length = match body {
        Out::Length(n) => Some(n),
        Out::Empty => head_length,
        Out::Chunked | Out::Close => None,
    };
    if let Some(n) = length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa(usize::try_from(n).unwrap_or(usize::MAX), &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
    }
    if body == Out::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the current time as an IMF-fixdate (RFC 9110 §5.6.7), formatted at most once a second per thread.
fn date(out: &mut BytesMut) {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            *cache = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<Head>, Refusal> {
        parse_head(&mut BytesMut::from(raw.as_bytes()), &mut None)
    }

    fn framed(raw: &str) -> Result<(Framing, bool), Refusal> {
        let head = parse(raw).expect("valid").expect("complete");
        framing(head.version, &head.headers)
    }

    #[test]
    fn a_request_head_is_split_off_with_its_fields() {
        let mut buf = BytesMut::from(
            &b"POST /mcp?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody"[..],
        );
        let mut spare = Some(HeaderMap::with_capacity(1));
        let head = parse_head(&mut buf, &mut spare)
            .expect("valid")
            .expect("complete");
        assert!(spare.is_none(), "the spare map was used");
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri, "/mcp?x=1");
        assert_eq!(head.version, Version::HTTP_11);
        let xs: Vec<_> = head.headers.get_all("x-a").iter().collect();
        assert_eq!(xs, ["1", "2"]);
        assert_eq!(&buf[..], b"body", "the body's start stays");
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
        assert!(parse_head(&mut partial, &mut None)
            .expect("valid")
            .is_none());
        assert_eq!(partial.len(), 25, "untouched while incomplete");
    }

    #[test]
    fn bad_heads_are_refused_with_400_or_431() {
        for (raw, status) in [
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nbad line\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
            ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400),
        ] {
            let got = parse(raw).expect_err(raw);
            assert_eq!(got.status.as_u16(), status, "{raw:?}: {}", got.reason);
        }
        assert!(parse("GET / HTTP/1.0\r\n\r\n")
            .expect("1.0 needs no Host")
            .is_some());
        let big = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big).expect_err("big").status, 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(parse(&many).expect_err("many").status, 431);
    }

    #[test]
    fn request_framing_follows_rfc_9112_section_6_3() {
        use Framing::*;
        let ok = [
            ("POST / HTTP/1.1\r\nHost: a\r\n\r\n", (Length(0), false)),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                (Length(5), false),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
                (Length(5), false),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                (Chunked, false),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n",
                (Length(0), true),
            ),
            (
                "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n",
                (Length(2), true),
            ),
        ];
        for (raw, want) in ok {
            assert_eq!(framed(raw).expect(raw), want, "{raw:?}");
        }
        for raw in [
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(framed(raw).expect_err(raw).status, 400, "{raw:?}");
        }
    }

    #[test]
    fn the_response_head_carries_date_close_and_one_framing_field() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().expect("v"));
        headers.insert(header::CONTENT_LENGTH, "999".parse().expect("v"));
        headers.insert(header::CONNECTION, "keep-alive".parse().expect("v"));
        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            StatusCode::OK,
            &headers,
            Out::Length(2),
            None,
            true,
        );
        let text = String::from_utf8(out.to_vec()).expect("utf8");
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ndate: "),
            "{text}"
        );
        assert!(
            text.ends_with(" GMT\r\nconnection: close\r\ncontent-length: 2\r\n\r\n"),
            "{text}"
        );
        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            StatusCode::ACCEPTED,
            &HeaderMap::new(),
            Out::Chunked,
            None,
            false,
        );
        let text = String::from_utf8(out.to_vec()).expect("utf8");
        assert!(
            text.ends_with("GMT\r\ntransfer-encoding: chunked\r\n\r\n"),
            "{text}"
        );
        let mut out = BytesMut::new();
        encode_response(
            &mut out,
            StatusCode::OK,
            &HeaderMap::new(),
            Out::Empty,
            Some(7),
            false,
        );
        assert!(out.ends_with(b"GMT\r\ncontent-length: 7\r\n\r\n"));
    }
}
