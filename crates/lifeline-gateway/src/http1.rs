//! HTTP/1.1 message syntax both directions share (RFC 9112): the gateway's server (`server/`) reads requests
//! and writes responses with it, its upstream client (`upstream/http/h1`) writes requests and reads responses.
//! One home for the limits, the chunked transfer coding's decoder, the `Content-Length` and `Connection` field
//! parsers and the decimal writer.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::body::BoxError;

/// Largest message head accepted: 64 KiB (the start line and every field line of one request or response).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one message head: 100 (hyper's default).
pub(crate) const MAX_HEADERS: usize = 100;
/// Longest chunk-size line accepted, chunk extensions included (RFC 9112 §7.1.1): 4 KiB.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Largest trailer section skipped (RFC 9112 §7.1.2): 64 KiB.
const MAX_TRAILERS: usize = 64 * 1024;

/// Reads what `stream` holds into the spare capacity of `buf` (reserve first): `Ok(0)` at end of stream,
/// `WouldBlock` when the runtime has seen no readiness since the socket was last found empty (nothing is read
/// then). Like `TcpStream::try_read_buf`, plus one rule: a read that fills less than the spare capacity drained
/// the socket's receive queue, so the socket is marked not readable in the runtime and the next wait goes to the
/// kernel's readiness, not to a `recv` answering `EAGAIN`. That second `recv` was one of the gateway's six
/// system calls per proxied request (nginx makes five). tokio's own `AsyncRead::poll_read` makes the same
/// inference on epoll (tokio-rs/tokio#5866); it clears only the readiness event it saw, so data arriving
/// meanwhile still wakes the reader.
pub(crate) fn read_some(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.capacity() - buf.len();
    let mut short = 0;
    let read = stream.try_io(Interest::READABLE, || {
        let n = stream.try_read_buf(buf)?;
        if 0 < n && n < spare {
            // Reported as "would block" so that `try_io` clears the readiness it saw; the bytes are in `buf`.
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match read {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(short),
        other => other,
    }
}

/// The chunked transfer coding's decoder (RFC 9112 §7.1): content bytes are handed out as they arrive, chunk
/// boundaries and extensions dropped; the trailer section is read and ignored (§7.1.2: a recipient may discard
/// it).
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    step: Step,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Expecting `chunk-size [ chunk-ext ] CRLF`.
    #[default]
    Size,
    /// This many bytes of the current chunk's data still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk (`0`): trailer field lines until an empty line.
    Trailers,
    Done,
}

impl Chunked {
    /// Consumes what it can of `buf`: `Ok(Some(data))` for content bytes (part of a chunk, as soon as any have
    /// arrived), `Ok(None)` when more input is needed or the message has ended ([`Chunked::is_done`]).
    ///
    /// Errors: a chunk-size line that is not `1*HEXDIG` (fitting in 64 bits) optionally followed by `;`
    /// extensions, or longer than 4 KiB; chunk data not followed by CRLF; a trailer section over 64 KiB.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
        loop {
            match self.step {
                Step::Size => {
                    let Some(lf) = line_end(buf, MAX_CHUNK_LINE)? else {
                        return Ok(None);
                    };
                    let size = chunk_size(&buf[..lf])?;
                    buf.advance(lf + 1);
                    self.step = if size == 0 {
                        Step::Trailers
                    } else {
                        Step::Data(size)
                    };
                }
                Step::Data(rest) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = buf.len().min(usize::try_from(rest).unwrap_or(usize::MAX));
                    self.step = match rest - n as u64 {
                        0 => Step::DataEnd,
                        left => Step::Data(left),
                    };
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                Step::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("the chunked body has no CRLF after a chunk's data"));
                    }
                    buf.advance(2);
                    self.step = Step::Size;
                }
                Step::Trailers => {
                    let room = MAX_TRAILERS.saturating_sub(self.trailer_bytes);
                    let Some(lf) = line_end(buf, room)? else {
                        return Ok(None);
                    };
                    if lf == 0 || buf[lf - 1] != b'\r' {
                        return Err(invalid("the chunked body has a trailer line without CRLF"));
                    }
                    self.trailer_bytes += lf + 1;
                    let blank = lf == 1;
                    buf.advance(lf + 1);
                    if blank {
                        self.step = Step::Done;
                        return Ok(None);
                    }
                }
                Step::Done => return Ok(None),
            }
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.step == Step::Done
    }
}

/// The index of the LF ending the line at the start of `buf`; `None` while it has not arrived. Errors when the
/// line is (or would be) longer than `max` bytes.
fn line_end(buf: &[u8], max: usize) -> Result<Option<usize>, BoxError> {
    match buf.iter().take(max).position(|&b| b == b'\n') {
        Some(lf) => Ok(Some(lf)),
        None if buf.len() >= max => Err(invalid(
            "the chunked body has a chunk-size or trailer line over its limit",
        )),
        None => Ok(None),
    }
}

/// The size of a chunk from its line, LF excluded: `chunk-size [ chunk-ext ] CR` (RFC 9112 §7.1, §7.1.1;
/// extensions are ignored, `BWS` before them allowed).
fn chunk_size(line: &[u8]) -> Result<u64, BoxError> {
    let bad = || invalid("the chunked body has an invalid chunk-size line");
    let line = line.strip_suffix(b"\r").ok_or_else(bad)?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad());
    }
    let size = line[..digits]
        .iter()
        .try_fold(0u64, |n, &d| {
            let v = (d as char).to_digit(16)?;
            n.checked_mul(16)?.checked_add(u64::from(v))
        })
        .ok_or_else(|| invalid("the chunked body has a chunk size over 64 bits"))?;
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(bad());
    }
    Ok(size)
}

/// An [`io::ErrorKind::InvalidData`] error: the peer's message is malformed.
pub(crate) fn invalid(message: &'static str) -> BoxError {
    Box::new(io::Error::new(io::ErrorKind::InvalidData, message))
}

/// Where a message body stands as it is read (RFC 9112 §6.3): the server's request bodies use the first, second
/// and last; the client's response bodies all four.
#[derive(Debug)]
pub(crate) enum BodyState {
    /// This many content bytes still to come (`Content-Length`, §6.3 item 6).
    Length(u64),
    /// The chunked transfer coding (§6.3 item 4, §7.1).
    Chunked(Chunked),
    /// Until the peer closes the connection (a response only, §6.3 item 8).
    Close,
    /// The message has ended.
    Done,
}

impl BodyState {
    /// The content bytes `buf` holds, taken out of it; `Ok(None)` when more input is needed or the body has ended
    /// (the state is then [`BodyState::Done`]). Errors: the chunked coding's (see [`Chunked::decode`]).
    pub(crate) fn take(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
        match self {
            BodyState::Length(rest) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = buf.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
                *rest -= n as u64;
                if *rest == 0 {
                    *self = BodyState::Done;
                }
                Ok(Some(buf.split_to(n).freeze()))
            }
            BodyState::Chunked(chunked) => {
                let data = chunked.decode(buf)?;
                if chunked.is_done() {
                    *self = BodyState::Done;
                }
                Ok(data)
            }
            BodyState::Close if buf.is_empty() => Ok(None),
            BodyState::Close => Ok(Some(buf.split().freeze())),
            BodyState::Done => Ok(None),
        }
    }
}

/// `Mcp-Session-Id` (2025-11-25 `basic/transports` §Session Management).
pub(crate) const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version` (2025-11-25 `basic/transports` §Protocol Version Header; 2026-07-28 on every request).
pub(crate) const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method` (2026-07-28 `basic/transports/streamable-http` §Standard Request Headers).
pub(crate) const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`: `params.name` or `params.uri` (same section).
pub(crate) const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
/// `Last-Event-ID` (the SSE resumption field, 2025-11-25 `basic/transports` §Resumability and Redelivery).
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The name of a field most messages carry (any case) as a static name, or `None`: `http`'s own lookup
/// (`HeaderName::from_bytes`) lowercases the name into a scratch buffer and matches it against every standard
/// name, about 150 instructions a field, and allocates for every name outside the standard ones; these few are
/// found by their length and first letter and one comparison. They are the request fields of the MCP transports
/// (`Mcp-*`, `MCP-Protocol-Version`, `Last-Event-ID`, plus `Host`, `Accept`, `Content-Type`, `Content-Length`,
/// `Authorization`, `Origin`, `User-Agent`) and the fields of a typical response (`Date`, `Server`, `Connection`).
fn known_name(name: &[u8]) -> Option<HeaderName> {
    let first = name.first()?.to_ascii_lowercase();
    let known = match (name.len(), first) {
        (4, b'h') => header::HOST,
        (4, b'd') => header::DATE,
        (6, b'a') => header::ACCEPT,
        (6, b'o') => header::ORIGIN,
        (6, b's') => header::SERVER,
        (8, b'm') => MCP_NAME,
        (10, b'c') => header::CONNECTION,
        (10, b'm') => MCP_METHOD,
        (10, b'u') => header::USER_AGENT,
        (12, b'c') => header::CONTENT_TYPE,
        (13, b'a') => header::AUTHORIZATION,
        (13, b'l') => LAST_EVENT_ID,
        (14, b'c') => header::CONTENT_LENGTH,
        (14, b'm') => MCP_SESSION_ID,
        (20, b'm') => MCP_PROTOCOL_VERSION,
        _ => return None,
    };
    is_lowercase_of(name, known.as_str().as_bytes()).then_some(known)
}

/// Whether the field name `name` (token characters only, as `httparse` checked them) is `lower` (lowercase
/// letters, digits and `-`) in any case. Setting bit 0x20 of every byte folds exactly the upper-case letters
/// among token characters: the bytes it maps onto a digit or `-` are control characters, never in a token.
/// Eight bytes at a time; `eq_ignore_ascii_case` went byte by byte and was a third of the map's building.
fn is_lowercase_of(name: &[u8], lower: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    // Exactly eight bytes: one load (a copy of a shorter tail would be a `memcpy` call).
    fn word(chunk: &[u8]) -> u64 {
        u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]))
    }
    if name.len() != lower.len() {
        return false;
    }
    let (words, lower_words) = (name.chunks_exact(8), lower.chunks_exact(8));
    let tails = words.remainder().iter().zip(lower_words.remainder());
    words
        .zip(lower_words)
        .all(|(a, b)| word(a) | FOLD == word(b) | FOLD)
        && tails.into_iter().all(|(&a, &b)| a | 0x20 == b | 0x20)
}

/// Fields of a head handled without an allocation; more take one.
const FEW_HEADERS: usize = 24;

/// A field's name and value as byte ranges of its head (a head is at most [`MAX_HEAD_BYTES`]).
type Span = ((u32, u32), (u32, u32));

/// Where each field of a parsed head sits in it: `httparse`'s slices borrow the read buffer, which the head is
/// then split off, so the fields are kept as offsets in between. On the stack for the usual few fields.
pub(crate) struct Spans {
    base: usize,
    len: usize,
    count: usize,
    few: [Span; FEW_HEADERS],
    many: Vec<Span>,
}

/// A field `httparse` accepted that `http` does not: an invalid name (shown lossily) or value.
#[derive(Debug)]
pub(crate) enum BadField {
    Name(String),
    Value(HeaderName),
}

impl Spans {
    /// The spans of `fields` within the first `len` bytes of `buf`; `None` when one lies outside them (never, for
    /// slices `httparse` took from `buf`).
    #[inline]
    pub(crate) fn new(buf: &[u8], len: usize, fields: &[httparse::Header<'_>]) -> Option<Spans> {
        let mut spans = Spans {
            base: buf.as_ptr() as usize,
            len: len.min(MAX_HEAD_BYTES),
            count: fields.len(),
            few: [((0, 0), (0, 0)); FEW_HEADERS],
            many: Vec::new(),
        };
        if fields.len() > FEW_HEADERS {
            spans.many.resize(fields.len(), ((0, 0), (0, 0)));
        }
        for (i, field) in fields.iter().enumerate() {
            let span = spans.of(field.name.as_bytes()).zip(spans.of(field.value))?;
            let slots = if spans.count <= FEW_HEADERS {
                &mut spans.few[..]
            } else {
                &mut spans.many[..]
            };
            slots[i] = (
                (span.0 .0 as u32, span.0 .1 as u32),
                (span.1 .0 as u32, span.1 .1 as u32),
            );
        }
        Some(spans)
    }

    /// The range of `part` (a slice of the same buffer) within the head.
    pub(crate) fn of(&self, part: &[u8]) -> Option<(usize, usize)> {
        if part.is_empty() {
            return Some((0, 0));
        }
        let start = (part.as_ptr() as usize).checked_sub(self.base)?;
        (start + part.len() <= self.len).then_some((start, start + part.len()))
    }

    /// The fields as a map over `head` (the split-off head these spans describe; values share its bytes, no copy
    /// per field), with room for `headroom` more: in `spare` (a map done with, cleared and reused with its
    /// allocation) when given. Errors: the first field `http` refuses (`httparse` accepts the same value bytes
    /// as `HeaderValue`, so in practice only names).
    ///
    /// With `connection`, the connection's own fields are consumed instead of mapped: every `Keep-Alive`, and
    /// each `Connection` whose options are only `close` and `keep-alive` (what nearly every message says); what
    /// they said goes into `connection`. A `Connection` naming other fields stays in the map, for the
    /// hop-by-hop strip that removes those fields (RFC 9110 §7.6.1).
    pub(crate) fn header_map(
        &self,
        head: &Bytes,
        headroom: usize,
        spare: Option<HeaderMap>,
        mut connection: Option<&mut ConnectionOptions>,
    ) -> Result<HeaderMap, BadField> {
        let wanted = self.count + headroom;
        let mut headers = match spare {
            Some(mut map) => {
                map.clear();
                map.reserve(wanted);
                map
            }
            None => HeaderMap::with_capacity(wanted),
        };
        let slots = if self.count <= FEW_HEADERS {
            &self.few[..self.count]
        } else {
            &self.many[..]
        };
        for &((ns, ne), (vs, ve)) in slots {
            let raw = &head[ns as usize..ne as usize];
            if let Some(options) = connection.as_deref_mut() {
                if is_lowercase_of(raw, b"keep-alive") {
                    continue;
                }
                if is_lowercase_of(raw, b"connection") {
                    if options.consume(&head[vs as usize..ve as usize]) {
                        continue;
                    }
                    options.kept = true;
                }
            }
            let name = match known_name(raw) {
                Some(name) => name,
                None => HeaderName::from_bytes(raw)
                    .map_err(|_| BadField::Name(String::from_utf8_lossy(raw).into_owned()))?,
            };
            let value = HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
                .map_err(|_| BadField::Value(name.clone()))?;
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// What the `Connection` fields [`Spans::header_map`] consumed said (RFC 9110 §7.6.1, RFC 9112 §9.6).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    /// A `close` option: the connection ends after this message.
    pub(crate) close: bool,
    /// A `Connection` field naming other fields was kept in the map (its `close`, if any, is not counted here).
    pub(crate) kept: bool,
}

impl ConnectionOptions {
    /// Whether `value` (one `Connection` field) holds only the options `close` and `keep-alive` (any case, empty
    /// list elements allowed, RFC 9110 §5.6.1); notes a `close` when it does.
    fn consume(&mut self, value: &[u8]) -> bool {
        let mut close = false;
        for option in value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            if option.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !option.is_empty() && !option.eq_ignore_ascii_case(b"keep-alive") {
                return false;
            }
        }
        self.close |= close;
        true
    }
}

/// `n` in decimal, written at the end of `scratch`.
pub(crate) fn itoa(mut n: usize, scratch: &mut [u8; 20]) -> &[u8] {
    let mut i = scratch.len();
    loop {
        i -= 1;
        scratch[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &scratch[i..];
        }
    }
}

/// `1*DIGIT` (RFC 9110 §8.6) as a number; `None` when empty, not digits, or over `u64`.
pub(crate) fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Why a message's `Content-Length` cannot frame it (RFC 9112 §6.3 item 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadLength {
    /// A value that is not `1*DIGIT` fitting in 64 bits.
    Invalid,
    /// Several values that differ.
    Conflicting,
}

/// The length every `Content-Length` field of `headers` gives (RFC 9110 §8.6: a list of identical values, `42,
/// 42`, may be taken as one); `Ok(None)` without the field. Both directions frame messages with it.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, BadLength> {
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii()).ok_or(BadLength::Invalid)?;
            if length.is_some_and(|l| l != n) {
                return Err(BadLength::Conflicting);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Whether the `Connection` field lists `token` (RFC 9110 §7.6.1: comma-separated, case-insensitive).
pub(crate) fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Decodes `input` fed in pieces split at `cuts`: the content, or the first error.
    fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool), BoxError> {
        let mut decoder = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        ends.push(input.len());
        ends.sort_unstable();
        for end in ends {
            buf.extend_from_slice(&input[at..end.max(at)]);
            at = end.max(at);
            while let Some(data) = decoder.decode(&mut buf)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, decoder.is_done() && buf.is_empty()))
    }

    #[test]
    fn known_field_names_are_the_names_http_parses_and_others_are_left_to_it() {
        for name in [
            "Host",
            "DATE",
            "accept",
            "Origin",
            "Server",
            "Mcp-Name",
            "Connection",
            "mcp-method",
            "User-Agent",
            "content-type",
            "Authorization",
            "Last-Event-ID",
            "Content-Length",
            "MCP-SESSION-ID",
            "MCP-Protocol-Version",
        ] {
            let known = known_name(name.as_bytes()).unwrap_or_else(|| panic!("{name} is known"));
            assert_eq!(
                known,
                HeaderName::from_bytes(name.as_bytes()).expect("valid"),
                "{name}"
            );
        }
        // Same length and first letter, another name; and names outside the list.
        for name in [
            "hots",
            "content-tipe",
            "content_type",
            "Content-Lengti",
            "mcp-sessionid",
            "acc3pt",
            "x-request-id",
            "MCP-Protocol-Versioo",
            "",
            "h",
        ] {
            assert_eq!(known_name(name.as_bytes()), None, "{name:?}");
        }
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", true),
            (
                b"5;a=1;b=\"x y\"\r\nhello\r\n6 ; z\r\n world\r\n0\r\nExpires: 0\r\nX: y\r\n\r\n",
                b"hello world",
                true,
            ),
            (b"A\r\n0123456789\r\n000\r\n\r\n", b"0123456789", true),
            (b"5\r\nhel", b"hel", false),
        ];
        for (input, want, done) in cases {
            let (got, ended) = decode_in_pieces(input, &[]).expect("valid");
            assert_eq!(
                (&got[..], ended),
                (*want, *done),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\n",
            b"5 x\r\n",
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"0\r\nbad trailer\n",
        ] {
            assert!(
                decode_in_pieces(bad, &[]).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!("5;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(
            decode_in_pieces(long.as_bytes(), &[]).is_err(),
            "chunk line bounded"
        );
        let trailers = format!("0\r\n{}", "x: y\r\n".repeat(MAX_TRAILERS / 6 + 1));
        assert!(
            decode_in_pieces(trailers.as_bytes(), &[]).is_err(),
            "trailers bounded"
        );
    }

    proptest! {
        /// However the stream is split across reads, the content is the same and ends at the last chunk.
        #[test]
        fn any_split_decodes_the_same(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut wire = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                wire.extend_from_slice(format!("{:x};i={i}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\nT: v\r\n\r\n");
            let (got, ended) = decode_in_pieces(&wire, &cuts).expect("valid");
            prop_assert_eq!(got, chunks.concat());
            prop_assert!(ended);
        }
    }
}
