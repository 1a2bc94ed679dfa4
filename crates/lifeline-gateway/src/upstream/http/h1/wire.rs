//! HTTP/1.1 message syntax for the upstream client (RFC 9112): the request head it writes, the response head it
//! reads (`httparse`, bounded in size and field count) and how the response body is delimited (§6.3).

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::http1::{
    content_length, has_token, itoa, BadField, BadLength, ConnectionOptions, Spans, MAX_HEADERS,
    MAX_HEAD_BYTES,
};
use crate::upstream::{Forwarded, UpstreamError};

/// Room left in a response's header map for the fields the proxy adds on the way down (`X-Accel-Buffering`,
/// `Connection: close` while draining): a map that grows rehashes every field (about a thousand instructions).
const HEADROOM: usize = 2;

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: 1xx, 204, 304, or the answer to `HEAD` (§6.3 item 1).
    Empty,
    /// Exactly this many bytes (`Content-Length`, §6.3 item 6).
    Length(u64),
    /// The chunked transfer coding (§6.3 item 4, §7.1).
    Chunked,
    /// Until the upstream closes the connection (§6.3 items 4 and 8): the connection ends with the body.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    /// The fields, without the `Connection` and `Keep-Alive` fields that only said `close` or `keep-alive`.
    pub(super) headers: HeaderMap,
    /// A `Connection: close` (RFC 9112 §9.6): the connection ends with this response.
    pub(super) close: bool,
}

/// Appends the request head to `out`: request line with `target` in origin form (RFC 9112 §3, §3.2.1), `host`
/// as the first field line (RFC 9110 §7.2: a user agent SHOULD send it first), the other fields of `headers`
/// except those that frame the message and those `forwarded` replaces, then `forwarded`'s fields, then
/// `Content-Length: body_len` when there is a body, the method is `POST` or the request carried a `Content-Length`
/// (§6.2, §6.3 item 7: a request has no body without one of the two framing fields, and the gateway always sends
/// whole bodies, never chunked ones; RFC 9110 §8.6: a `POST` without a body SHOULD say `Content-Length: 0`).
///
/// `HeaderValue` holds no CR, LF or NUL, so no field can end the head early or add a line (§5).
pub(super) fn encode_request(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    host: &HeaderValue,
    headers: &HeaderMap,
    forwarded: &Forwarded,
    body_len: usize,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut had_length = false;
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::HOST
            || name == header::TRANSFER_ENCODING
            || (!forwarded.is_empty() && forwarded.replaces(name.as_str()))
        {
            continue;
        }
        field(out, name.as_str(), value);
    }
    for (name, value) in forwarded.fields() {
        field(out, name, value);
    }
    if body_len > 0 || had_length || method == Method::POST {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa(body_len, &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// One field line: `name: value` and CRLF.
fn field(out: &mut BytesMut, name: &str, value: &HeaderValue) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Parses the response head at the start of `buf` (RFC 9112 §2.1, §4, §5) and splits it off: `Ok(None)`, `buf`
/// untouched, while it is incomplete and under [`MAX_HEAD_BYTES`]. The field values share the head's bytes
/// (one buffer, no copy per field).
///
/// Errors ([`UpstreamError::Protocol`]): a head larger than [`MAX_HEAD_BYTES`], more than [`MAX_HEADERS`]
/// fields, or anything `httparse` rejects (a bad status line, a field line without a colon, a control
/// character in a value).
pub(super) fn parse_head(
    buf: &mut BytesMut,
    spare: &mut Option<HeaderMap>,
) -> Result<Option<Head>, UpstreamError> {
    // Uninitialised: a `[httparse::EMPTY_HEADER; 100]` costs a loop of 400 stores per parse.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD_BYTES => return Ok(None),
        Ok(_) => return Err(too_large()),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(UpstreamError::Protocol(format!(
                "the upstream's response head has more than {MAX_HEADERS} header fields"
            )))
        }
        Err(e) => {
            return Err(UpstreamError::Protocol(format!(
                "the upstream's response head is not valid HTTP/1.1: {e}"
            )))
        }
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| {
            UpstreamError::Protocol("the upstream's status code is not valid".to_owned())
        })?;
    let version = match resp.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let spans = Spans::new(buf, len, resp.headers)
        .ok_or_else(|| UpstreamError::Protocol("a header field outside the head".to_owned()))?;
    let head = buf.split_to(len).freeze();
    // `Connection: keep-alive` and `Keep-Alive` are the client's business, not the response's: consumed here,
    // so neither the map nor the relay's hop-by-hop strip handles them on every response (issue 17).
    let mut connection = ConnectionOptions::default();
    let headers = spans
        .header_map(&head, HEADROOM, spare.take(), Some(&mut connection))
        .map_err(|bad| match bad {
            BadField::Name(name) => UpstreamError::Protocol(format!(
                "the upstream sent a header field with an invalid name: {name:?}"
            )),
            BadField::Value(name) => UpstreamError::Protocol(format!(
                "the upstream's {name} header field has an invalid value"
            )),
        })?;
    let close = connection.close || (connection.kept && has_token(&headers, "close"));
    Ok(Some(Head {
        status,
        version,
        headers,
        close,
    }))
}

/// The error for a head over [`MAX_HEAD_BYTES`].
pub(super) fn too_large() -> UpstreamError {
    UpstreamError::Protocol(format!(
        "the upstream's response head is larger than {} KiB",
        MAX_HEAD_BYTES / 1024
    ))
}

/// How the body of a final response with `head`'s status and fields is delimited (RFC 9112 §6.3), and whether
/// the connection can carry another request once it has been read (§9.3: HTTP/1.1 without `Connection: close`;
/// never after a body delimited by the close, nor after a response that carried both framing fields, which
/// §6.3 item 3 says "ought to be handled as an error"). `close`: the head said `Connection: close`
/// ([`Head::close`]).
///
/// Removes `Content-Length` when `Transfer-Encoding` is present (§6.3 item 3: an intermediary "MUST first
/// remove the received Content-Length field" before forwarding).
///
/// Errors: a `Content-Length` that is not one non-negative decimal number, or several that differ (§6.3 item 5,
/// RFC 9110 §8.6): the framing is unknown, so the response is unusable.
pub(super) fn framing(
    status: StatusCode,
    version: Version,
    close: bool,
    headers: &mut HeaderMap,
    head_request: bool,
) -> Result<(Framing, bool), UpstreamError> {
    let mut reusable = version == Version::HTTP_11 && !close;
    // §6.3 item 1: no content whatever the fields say.
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, reusable));
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if headers.remove(header::CONTENT_LENGTH).is_some() {
            reusable = false;
        }
        // §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; read to the close. §6.3 item 4:
        // chunked must be the final coding, else the body runs to the close.
        let chunked_last = version == Version::HTTP_11
            && headers
                .get_all(header::TRANSFER_ENCODING)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked_last {
            (Framing::Chunked, reusable)
        } else {
            (Framing::Close, false)
        });
    }
    let length = content_length(headers).map_err(|bad| match bad {
        BadLength::Invalid => UpstreamError::Protocol(format!(
            "the upstream's Content-Length is not valid: {:?}",
            headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
        )),
        BadLength::Conflicting => UpstreamError::Protocol(
            "the upstream sent conflicting Content-Length values".to_owned(),
        ),
    })?;
    Ok(match length {
        Some(0) => (Framing::Empty, reusable),
        Some(n) => (Framing::Length(n), reusable),
        None => (Framing::Close, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<Head>, UpstreamError> {
        parse_head(&mut BytesMut::from(raw), &mut None)
    }

    fn head(raw: &str) -> Head {
        parse(raw.as_bytes()).expect("valid").expect("complete")
    }

    #[test]
    fn the_connections_own_fields_are_consumed_unless_they_name_others() {
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\n",
        );
        assert!(!h.close);
        assert_eq!(h.headers.len(), 1, "{:?}", h.headers);
        let h = head("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, , CLOSE\r\n\r\n");
        assert!(h.close && h.headers.is_empty(), "{h:?}");
        // A `Connection` naming a field stays, so the relay's strip removes that field too.
        let h = head("HTTP/1.1 200 OK\r\nConnection: X-A, close\r\nX-A: 1\r\n\r\n");
        assert!(h.close);
        assert_eq!(
            h.headers.get(header::CONNECTION).map(|v| v.as_bytes()),
            Some(&b"X-A, close"[..])
        );
        let h = head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-A\r\n\r\n");
        assert!(!h.close);
        assert_eq!(h.headers.get_all(header::CONNECTION).iter().count(), 1);
    }

    fn framed(raw: &str, head_request: bool) -> Result<(Framing, bool), UpstreamError> {
        let mut h = head(raw);
        framing(h.status, h.version, h.close, &mut h.headers, head_request)
    }

    #[test]
    fn the_request_head_is_origin_form_host_first_with_the_body_length() {
        let mut headers = HeaderMap::new();
        headers.insert("mcp-session-id", HeaderValue::from_static("abc"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("client.example"));
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            &Method::POST,
            "/mcp?x=1",
            &HeaderValue::from_static("127.0.0.1:8080"),
            &headers,
            &Forwarded::default(),
            12,
        );
        assert_eq!(
            &out[..],
            b"POST /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nmcp-session-id: abc\r\ncontent-length: 12\r\n\r\n"
        );
        // No body, no Content-Length field: none sent (a GET, a DELETE).
        out.clear();
        encode_request(
            &mut out,
            &Method::GET,
            "/",
            &HeaderValue::from_static("h"),
            &HeaderMap::new(),
            &Forwarded::default(),
            0,
        );
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
        // A POST without a body says so (RFC 9110 §8.6).
        out.clear();
        let (method, host, none) = (
            Method::POST,
            HeaderValue::from_static("h"),
            HeaderMap::new(),
        );
        encode_request(
            &mut out,
            &method,
            "/",
            &host,
            &none,
            &Forwarded::default(),
            0,
        );
        assert_eq!(
            &out[..],
            b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(
            itoa(usize::MAX, &mut [0; 20]),
            usize::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn the_gateways_forwarded_fields_replace_the_clients_after_its_other_fields() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("spoofed.example"),
        );
        headers.insert("mcp-method", HeaderValue::from_static("tools/list"));
        let mut forwarded = Forwarded {
            for_: Some(HeaderValue::from_static("10.0.0.1, 127.0.0.1")),
            host: None,
            proto: Some(HeaderValue::from_static("http")),
        };
        let mut out = BytesMut::new();
        let (method, host) = (Method::GET, HeaderValue::from_static("h"));
        encode_request(&mut out, &method, "/", &host, &headers, &forwarded, 0);
        // The client's Host-less request keeps its own X-Forwarded-Host; the two the gateway sets replace the
        // client's, once each, after the client's other fields.
        assert_eq!(
            std::str::from_utf8(&out).expect("ASCII"),
            "GET / HTTP/1.1\r\nhost: h\r\nx-forwarded-host: spoofed.example\r\nmcp-method: tools/list\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\r\n"
        );
        // An operator's `--upstream-header X-Forwarded-Proto: https` clears the gateway's.
        forwarded.clear("x-forwarded-proto");
        out.clear();
        encode_request(&mut out, &method, "/", &host, &headers, &forwarded, 0);
        let text = std::str::from_utf8(&out).expect("ASCII");
        assert!(text.contains("x-forwarded-proto: https\r\n"), "{text}");
        assert!(!text.contains("x-forwarded-proto: http\r\n"), "{text}");
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        use Framing::*;
        let cases: &[(&str, bool, (Framing, bool))] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                (Length(5), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                false,
                (Length(5), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                (Empty, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                (Empty, true),
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false,
                (Empty, true),
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", false, (Empty, true)),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                (Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                false,
                (Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                false,
                (Close, false),
            ),
            // Both framing fields: chunked wins, the connection is not reused.
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                (Chunked, false),
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                (Close, false),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, (Close, false)),
            (
                "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n",
                false,
                (Length(2), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
                false,
                (Length(2), false),
            ),
        ];
        for (raw, head_request, want) in cases {
            let got = framed(raw, *head_request).expect(raw);
            assert_eq!(got, *want, "{raw}");
        }
        let mut h =
            head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        framing(h.status, h.version, h.close, &mut h.headers, false).expect("framed");
        assert!(
            !h.headers.contains_key(header::CONTENT_LENGTH),
            "removed before relaying"
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        ] {
            let err = framed(bad, false).expect_err(bad);
            assert_eq!(err.reason(), "protocol", "{bad}");
        }
    }

    #[test]
    fn heads_are_bounded_in_size_and_field_count() {
        // Incomplete: more is needed.
        assert!(parse(b"HTTP/1.1 200 OK\r\nA: b\r\n")
            .expect("partial")
            .is_none());
        let big = format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let err = parse(big.as_bytes()).expect_err("too large while partial");
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        let err = parse(format!("{big}\r\n").as_bytes()).expect_err("too large when complete");
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let err = parse(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes())
            .expect_err("too many fields");
        assert!(
            err.to_string().contains("more than 100 header fields"),
            "{err}"
        );
        let err = parse(b"SMTP ready\r\n\r\n").expect_err("not HTTP");
        assert_eq!(err.reason(), "protocol");
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\nX-Empty:\r\n\r\nbody"[..],
        );
        let h = parse_head(&mut buf, &mut None)
            .expect("valid")
            .expect("complete");
        assert_eq!(h.status, StatusCode::CREATED);
        let values: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(h.headers["x-empty"], "");
        assert_eq!(&buf[..], b"body", "the head is split off, the body stays");
        // More fields than fit the stack array.
        let thirty: String = (0..30).map(|i| format!("x-{i}: v{i}\r\n")).collect();
        let h = head(&format!("HTTP/1.1 200 OK\r\n{thirty}\r\n"));
        assert_eq!(h.headers.len(), 30);
        assert_eq!(h.headers["x-29"], "v29");
    }
}
