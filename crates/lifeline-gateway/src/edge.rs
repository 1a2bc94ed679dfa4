//! The transport rules the gateway enforces itself, before anything reaches the upstream: `Host` and `Origin`
//! (DNS rebinding), `Accept` and `Content-Type`, the 2026-07-28 mirrored headers (`Mcp-Method`, `Mcp-Name`)
//! against the body, and which client headers may cross to the upstream.

use http::header::{self, HeaderMap, HeaderName};
use http::StatusCode;

use crate::body::code;
use crate::config::{normalize_origin, EdgeConfig};
use crate::http1::{MCP_METHOD, MCP_NAME};
use crate::rpc::{Kind, Summary};

/// Why the edge refused a request: the HTTP status, a JSON-RPC code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) status: StatusCode,
    pub(crate) code: i64,
    pub(crate) message: &'static str,
    /// The metric label of the refusal.
    pub(crate) reason: &'static str,
}

impl Reject {
    const fn new(status: StatusCode, message: &'static str, reason: &'static str) -> Reject {
        Reject {
            status,
            code: code::INVALID_REQUEST,
            message,
            reason,
        }
    }
}

/// Checks `Host` against the allowed hosts, then `Origin` against the request's own host and the allowed
/// origins.
///
/// 2025-11-25 `basic/transports` §Security Warning and 2026-07-28 `basic/transports/streamable-http`
/// §Security & Endpoint: servers MUST validate `Origin`; when it is present and invalid the answer MUST be
/// 403, whose body MAY be a JSON-RPC error without an id. A request without `Origin` (a non-browser client)
/// passes. Checking `Host` too is what actually defeats DNS rebinding: a rebound page sends its own host in
/// both headers, so "Origin matches Host" alone would let it through.
pub(crate) fn check_host_and_origin(cfg: &EdgeConfig, headers: &HeaderMap) -> Result<(), Reject> {
    // Compared case-insensitively below (the allowed hosts are lowercased at start-up): no copy per request.
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next().and_then(|h| h.to_str().ok());
    // Two Host headers make the request ambiguous (RFC 9112 §3.2): refuse rather than pick one.
    let single_host = hosts.next().is_none();
    if let Some(allowed) = &cfg.allowed_hosts {
        let ok = single_host && host.is_some_and(|h| host_allowed(allowed, h));
        if !ok {
            return Err(Reject::new(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header not allowed",
                "host",
            ));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if cfg.any_origin {
        return Ok(());
    }
    let forbidden = Reject::new(
        StatusCode::FORBIDDEN,
        "Forbidden: Origin not allowed",
        "origin",
    );
    let origin = origin
        .to_str()
        .ok()
        .and_then(normalize_origin)
        .ok_or(forbidden.clone())?;
    if cfg.allowed_origins.contains(&origin) {
        return Ok(());
    }
    // Same origin: the Origin's authority is the authority the request was sent to.
    let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
    match host {
        Some(h) if strip_default_port(h, &origin).eq_ignore_ascii_case(authority) => Ok(()),
        _ => Err(forbidden),
    }
}

/// `allowed` holds lowercase names; `host` is the header as sent.
fn host_allowed(allowed: &[String], host: &str) -> bool {
    let name = host_name(host);
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || (a.eq_ignore_ascii_case(name) && !has_port(a)))
}

/// The host name of a `Host` value, without the port (`[::1]:8080` → `[::1]`). Byte searches: `str`'s
/// `split_once` sets up a searcher that cost more than these short values (issue 17).
fn host_name(host: &str) -> &str {
    let bytes = host.as_bytes();
    let end = if bytes.first() == Some(&b'[') {
        bytes
            .iter()
            .position(|&b| b == b']')
            .map_or(host.len(), |i| i + 1)
    } else {
        bytes.iter().rposition(|&b| b == b':').unwrap_or(host.len())
    };
    &host[..end]
}

fn has_port(host: &str) -> bool {
    host_name(host).len() != host.len()
}

/// `Host: a:80` with origin `http://a` compares as `a`.
fn strip_default_port<'h>(host: &'h str, origin: &str) -> &'h str {
    let default = if origin.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    host.strip_suffix(default).unwrap_or(host)
}

/// Whether `media` (one `Accept` item or a `Content-Type`, parameters included) names `range`, ignoring case,
/// parameters and surrounding whitespace.
fn media_is(media: &[u8], range: &str) -> bool {
    media_type(media).eq_ignore_ascii_case(range.as_bytes())
}

/// The media type of a media type or range, without its parameters and the optional whitespace around it
/// (RFC 9110 §5.6.3: OWS is spaces and tabs, so an ASCII trim).
fn media_type(media: &[u8]) -> &[u8] {
    // Bytes, not `str::split`: its searcher's set-up costs more than these short values (issue 17).
    let end = media.iter().position(|&b| b == b';').unwrap_or(media.len());
    media[..end].trim_ascii()
}

/// 2025-11-25 `basic/transports` §Sending Messages 2 and 2026-07-28 `streamable-http` §Sending Messages 2: a
/// POST's `Accept` MUST list both `application/json` and `text/event-stream` (wildcards count).
pub(crate) fn check_post_accept(headers: &HeaderMap) -> Result<(), Reject> {
    let (json, sse) = accepts(headers);
    if json && sse {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must list both application/json and text/event-stream",
            "accept",
        ))
    }
}

/// 2025-11-25 `basic/transports` §Listening for Messages from the Server 2: a GET's `Accept` MUST list
/// `text/event-stream`.
pub(crate) fn check_get_accept(headers: &HeaderMap) -> Result<(), Reject> {
    if accepts(headers).1 {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must list text/event-stream",
            "accept",
        ))
    }
}

fn accepts(headers: &HeaderMap) -> (bool, bool) {
    let mut json = false;
    let mut sse = false;
    for value in headers.get_all(header::ACCEPT) {
        let value = value.as_bytes();
        // What the official SDKs send, in one comparison (issue 17).
        if value == b"application/json, text/event-stream" {
            return (true, true);
        }
        // A value with obs-text is skipped whole, as `to_str` refused it before.
        if !value.is_ascii() {
            continue;
        }
        for item in value.split(|&b| b == b',') {
            let media = media_type(item);
            let is = |range: &str| media.eq_ignore_ascii_case(range.as_bytes());
            if is("*/*") {
                json = true;
                sse = true;
            } else if is("application/json") || is("application/*") {
                json = true;
            } else if is("text/event-stream") || is("text/*") {
                sse = true;
            }
        }
    }
    (json, sse)
}

/// The body of a POST is one JSON-RPC message (2025-11-25 `basic/transports` §Sending Messages 3), so its
/// `Content-Type` must be `application/json` (parameters such as `charset` allowed).
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), Reject> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().is_ascii() && media_is(v.as_bytes(), "application/json"));
    if ok {
        Ok(())
    } else {
        Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
            "content_type",
        ))
    }
}

/// Checks the mirrored headers of a JSON-RPC request or notification against its body (`summary`, the one parse of
/// the body): `Mcp-Method` against `method`, and for `tools/call`, `prompts/get` and `resources/read`, `Mcp-Name`
/// against `params.name` / `params.uri`, after decoding the `=?base64?…?=` sentinel.
///
/// 2026-07-28 `basic/transports/streamable-http` §Server Validation: "Servers that process the request body
/// **MUST** reject requests where the values specified in the headers do not match the corresponding values in
/// the request body", with 400 and `HeaderMismatch` (-32020); §Value Encoding: encoded values are decoded before
/// the comparison; §Case Sensitivity: values compare case-sensitively. The gateway decides policy on the body (the
/// tool it authorizes is the tool the upstream runs), so a header that says otherwise is exactly the split
/// "different components rely on different sources of truth" the section forbids; the check runs in every era
/// (legacy clients send no such headers, so only a forged one can fail it). A *missing* header is left to the
/// upstream, which owns the era rules; a header on a method that mirrors no name is ignored.
pub(crate) fn check_mirrored_headers(summary: &Summary, headers: &HeaderMap) -> Result<(), Reject> {
    if !matches!(summary.kind, Kind::Request | Kind::Notification) {
        return Ok(());
    }
    let mismatch = |message| Reject {
        status: StatusCode::BAD_REQUEST,
        code: lifeline_mcp::era::modern_error::HEADER_MISMATCH,
        message,
        reason: "header_mismatch",
    };
    if let Some(sent) = single(headers, &MCP_METHOD)? {
        if Some(sent.as_bytes()) != summary.method().map(str::as_bytes) {
            return Err(mismatch(
                "Header mismatch: the Mcp-Method header does not match the body's method",
            ));
        }
    }
    if !matches!(
        summary.label,
        "tools/call" | "prompts/get" | "resources/read"
    ) {
        return Ok(());
    }
    if let Some(sent) = single(headers, &MCP_NAME)? {
        let decoded = decode_sentinel(sent.as_bytes()).ok_or(mismatch(
            "Header mismatch: the Mcp-Name header is not valid (bad =?base64?…?= encoding)",
        ))?;
        if Some(&*decoded) != summary.name.as_deref().map(str::as_bytes) {
            return Err(mismatch(
                "Header mismatch: the Mcp-Name header does not match the body's params.name or params.uri",
            ));
        }
    }
    Ok(())
}

/// The one value of `name`: `Ok(None)` when absent; a repeated header, or one that is not visible ASCII plus
/// space and tab (RFC 9110 §5.5, 2026-07-28 §Value Encoding), is a mismatch.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h http::HeaderValue>, Reject> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    let bad = first
        .as_bytes()
        .iter()
        .any(|&b| !(b == b'\t' || (0x20..=0x7e).contains(&b)));
    if all.next().is_some() || bad {
        return Err(Reject {
            status: StatusCode::BAD_REQUEST,
            code: lifeline_mcp::era::modern_error::HEADER_MISMATCH,
            message:
                "Header mismatch: a mirrored Mcp-* header is repeated or holds invalid characters",
            reason: "header_mismatch",
        });
    }
    Ok(Some(first))
}

/// The value of a mirrored header: `=?base64?B64?=` (markers case-sensitive) is the UTF-8 text `B64` encodes
/// (standard alphabet, padded), anything else is itself. `None` when the sentinel holds bad Base64 or bad UTF-8.
fn decode_sentinel(value: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use base64::Engine as _;
    let Some(inner) = value
        .strip_prefix(b"=?base64?")
        .and_then(|v| v.strip_suffix(b"?="))
    else {
        return Some(std::borrow::Cow::Borrowed(value));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(inner)
        .ok()?;
    std::str::from_utf8(&bytes).ok()?;
    Some(std::borrow::Cow::Owned(bytes))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1; bits 0–7 of [`STRIPPED`]), then the request headers the gateway replaces
/// or drops on the way upstream (bits 8–11, see [`upstream_request_headers`]); never copied across. A `static`:
/// a `const` array is built and dropped at every use (two per request, issue 17).
static STRIPPED: [HeaderName; 12] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::ORIGIN,
    header::AUTHORIZATION,
];
/// The hop-by-hop bits of [`STRIPPED`].
const HOP_BY_HOP: u32 = 0xff;

/// The bit of `name` in [`STRIPPED`], 0 for any other name: one string match (a `HeaderName` comparison
/// against each of the twelve cost several times more, on every header of every request and response).
fn stripped_bit(name: &HeaderName) -> u32 {
    let i = match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "te" => 4,
        "trailer" => 5,
        "transfer-encoding" => 6,
        "upgrade" => 7,
        "host" => 8,
        "content-length" => 9,
        "origin" => 10,
        "authorization" => 11,
        _ => return 0,
    };
    1 << i
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
///
/// Runs on every request and every response, which rarely carry more than `Connection: keep-alive`: one pass
/// over the names finds which are present, and only those are removed (a `remove` per candidate hashes the
/// name each time).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, HOP_BY_HOP);
}

/// Removes every header of [`STRIPPED`] whose bit is in `wanted` (which includes [`HOP_BY_HOP`]), and the
/// names the `Connection` header lists.
fn strip(headers: &mut HeaderMap, wanted: u32) {
    let mut present = 0u32;
    for name in headers.keys() {
        present |= stripped_bit(name);
    }
    let present = present & wanted;
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        // `Connection` (the first of STRIPPED): the names it lists go too. `close` and `keep-alive` are the
        // options nearly every message carries: not a header to look for (`Keep-Alive` is in the list anyway).
        // Plain loops over the bytes: the iterator chain this was (`str::split`, `flat_map`, `collect`) cost a
        // thousand instructions for a lone `keep-alive` on every response (issue 17). A token that is not a field
        // name (obs-text included) names nothing to remove.
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.is_empty()
                    || token.eq_ignore_ascii_case(b"close")
                    || token.eq_ignore_ascii_case(b"keep-alive")
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token) {
                    named.push(name);
                }
            }
        }
        for name in &named {
            headers.remove(name);
        }
    }
    for (i, name) in STRIPPED.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// Turns the client's request headers into the headers sent upstream, in place.
///
/// - Hop-by-hop headers go; `Host` becomes the upstream's (set by the client pool); `Content-Length` is
///   recomputed from the buffered body.
/// - `Authorization` goes unless `forward_authorization`: 2025-11-25 `basic/authorization` §Access Token
///   Privilege Restriction says an MCP server "MUST NOT pass through the token it received from the MCP client";
///   credentials for the upstream come from `--upstream-header` instead.
/// - `Origin` goes: the gateway validated it, and the upstream (typically bound to loopback with its own DNS
///   rebinding check) would otherwise reject browser origins the operator allowed here.
/// - Everything else, notably `Mcp-Session-Id`, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and every
///   `Mcp-Param-*` (2026-07-28 `streamable-http` §Server Behavior for Custom Headers: intermediaries MUST
///   forward them), passes untouched.
pub(crate) fn upstream_request_headers(headers: &mut HeaderMap, forward_authorization: bool) {
    // Bits 8–10 of STRIPPED: Host, Content-Length, Origin; 11: Authorization.
    let also = if forward_authorization { 0x700 } else { 0xf00 };
    strip(headers, HOP_BY_HOP | also);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_host_name_of_a_host_value_drops_the_port_only() {
        for (host, name) in [
            ("a.example:8080", "a.example"),
            ("a.example", "a.example"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("[::1", "[::1"),
            ("a:b:c", "a:b"),
            ("", ""),
        ] {
            assert_eq!(host_name(host), name, "{host:?}");
        }
        assert!(has_port("localhost:80") && !has_port("localhost") && !has_port("[::1]"));
    }

    fn cfg(hosts: Option<&[&str]>, origins: &[&str]) -> EdgeConfig {
        EdgeConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            any_origin: false,
            allowed_hosts: hosts.map(|h| h.iter().map(|s| s.to_string()).collect()),
            max_body_bytes: 1024,
            forward_authorization: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("test header"));
        }
        h
    }

    #[test]
    fn origin_rules() {
        let loopback = cfg(
            Some(&["localhost", "127.0.0.1", "[::1]"]),
            &["https://app.example.com"],
        );
        let open = cfg(None, &[]);
        // (config, request headers, the rejection's reason or None when it passes)
        type Case<'a> = (
            &'a EdgeConfig,
            &'a [(&'static str, &'a str)],
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            // No Origin passes (when Host is fine).
            (&loopback, &[("host", "127.0.0.1:8080")], None),
            (&open, &[("host", "mcp.internal")], None),
            // Same origin passes.
            (
                &loopback,
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:8080"),
                ],
                None,
            ),
            (
                &open,
                &[
                    ("host", "mcp.example.com"),
                    ("origin", "https://mcp.example.com"),
                ],
                None,
            ),
            (&open, &[("host", "a:80"), ("origin", "http://a")], None),
            // An allowed origin passes.
            (
                &loopback,
                &[
                    ("host", "localhost:1"),
                    ("origin", "https://app.example.com"),
                ],
                None,
            ),
            // A foreign origin fails.
            (
                &loopback,
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://evil.example.com"),
                ],
                Some("origin"),
            ),
            (
                &open,
                &[("host", "mcp.example.com"), ("origin", "null")],
                Some("origin"),
            ),
            (
                &loopback,
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:9999"),
                ],
                Some("origin"),
            ),
            // DNS rebinding: Host and Origin both name the attacker's domain.
            (
                &loopback,
                &[
                    ("host", "evil.example.com"),
                    ("origin", "http://evil.example.com"),
                ],
                Some("host"),
            ),
            (
                &loopback,
                &[("host", "evil.example.com:8080")],
                Some("host"),
            ),
            (&loopback, &[], Some("host")),
            (&loopback, &[("host", "[::1]:8080")], None),
            (
                &loopback,
                &[("host", "127.0.0.1:8080"), ("host", "evil.example.com")],
                Some("host"),
            ),
        ];
        for (cfg, hs, want) in cases {
            let got = check_host_and_origin(cfg, &headers(hs))
                .err()
                .map(|r| r.reason);
            assert_eq!(got, *want, "{hs:?}");
        }
    }

    #[test]
    fn accept_and_content_type() {
        assert!(check_post_accept(&headers(&[(
            "accept",
            "application/json, text/event-stream"
        )]))
        .is_ok());
        assert!(check_post_accept(&headers(&[
            ("accept", "application/json"),
            ("accept", "text/event-stream")
        ]))
        .is_ok());
        assert!(check_post_accept(&headers(&[("accept", "*/*")])).is_ok());
        assert_eq!(
            check_post_accept(&headers(&[("accept", "application/json")]))
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert!(check_post_accept(&headers(&[])).is_err());
        assert!(check_get_accept(&headers(&[("accept", "text/event-stream")])).is_ok());
        assert!(check_get_accept(&headers(&[("accept", "application/json")])).is_err());
        assert!(check_content_type(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )]))
        .is_ok());
        assert_eq!(
            check_content_type(&headers(&[("content-type", "text/plain")]))
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert!(check_content_type(&headers(&[])).is_err());
    }

    #[test]
    fn mirrored_headers_must_match_the_body() {
        use crate::rpc::summarize;
        let call = summarize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}"#,
        );
        let unicode = summarize(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"Hello, \u{4e16}\u{754c}\"}}"
                .as_bytes(),
        );
        let read = summarize(
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a.json"}}"#,
        );
        let list = summarize(br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
        let odd = summarize(br#"{"jsonrpc":"2.0","id":4,"method":"x/custom"}"#);
        // (summary, headers, passes)
        type Case<'a> = (&'a Summary, &'a [(&'static str, &'a str)], bool);
        let cases: &[Case<'_>] = &[
            (&call, &[], true),
            (
                &call,
                &[("mcp-method", "tools/call"), ("mcp-name", "get_weather")],
                true,
            ),
            (&call, &[("mcp-name", "delete_all")], false),
            // Values are case-sensitive (§Case Sensitivity).
            (&call, &[("mcp-name", "Get_Weather")], false),
            (&call, &[("mcp-method", "tools/list")], false),
            (
                &call,
                &[("mcp-name", "get_weather"), ("mcp-name", "get_weather")],
                false,
            ),
            // The Base64 sentinel (§Value Encoding): decoded before comparing.
            (
                &unicode,
                &[("mcp-name", "=?base64?SGVsbG8sIOS4lueVjA==?=")],
                true,
            ),
            (&unicode, &[("mcp-name", "=?base64?SGVsbG8=?=")], false),
            (&call, &[("mcp-name", "=?base64?not base64?=")], false),
            (&call, &[("mcp-name", "=?base64?Z2V0X3dlYXRoZXI=?=")], true),
            (&read, &[("mcp-name", "file:///a.json")], true),
            (&read, &[("mcp-name", "file:///b.json")], false),
            // Methods that mirror no name: Mcp-Name is ignored, Mcp-Method still checked.
            (&list, &[("mcp-name", "anything")], true),
            (&list, &[("mcp-method", "tools/list")], true),
            (&odd, &[("mcp-method", "x/custom")], true),
            (&odd, &[("mcp-method", "other")], false),
        ];
        for (summary, hs, passes) in cases {
            let got = check_mirrored_headers(summary, &headers(hs));
            assert_eq!(got.is_ok(), *passes, "{hs:?}: {got:?}");
            if let Err(r) = got {
                assert_eq!((r.status.as_u16(), r.code), (400, -32020));
            }
        }
    }

    #[test]
    fn upstream_headers_drop_credentials_and_hop_by_hop_but_keep_mcp_headers() {
        let mut h = headers(&[
            ("host", "gw"),
            ("authorization", "Bearer t"),
            ("origin", "http://gw"),
            ("connection", "keep-alive, x-drop"),
            ("x-drop", "1"),
            ("content-length", "3"),
            ("mcp-session-id", "s"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
            ("mcp-param-region", "us"),
            ("mcp-protocol-version", "2026-07-28"),
        ]);
        upstream_request_headers(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "mcp-method",
                "mcp-name",
                "mcp-param-region",
                "mcp-protocol-version",
                "mcp-session-id"
            ]
        );
        let mut h = headers(&[("authorization", "Bearer t")]);
        upstream_request_headers(&mut h, true);
        assert!(h.contains_key("authorization"));
    }
}
