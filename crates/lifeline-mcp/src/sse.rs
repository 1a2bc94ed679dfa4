//! The one incremental, bounded Server-Sent Events parser of the workspace (WHATWG HTML §9.2 "Server-sent
//! events", §9.2.6 "Interpreting an event stream"). Two modes over the same line and field rules:
//!
//! - [`Parser`] (plain): the prober reads SSE-framed MCP replies and the 2024-11-05 HTTP+SSE stream as
//!   [`Item`]s: dispatched events and comment lines (keep-alives).
//! - [`RawParser`] (raw bytes): the gateway relays a 2024-11-05 stream block by block: each [`Block`] carries
//!   the bytes exactly as received up to and including the blank line that ends it, beside the event those bytes
//!   dispatch, so the relay forwards unchanged bytes and rewrites only what it must (the `endpoint` event).
//!
//! Our own rather than a crate (`eventsource-stream`, `sse-stream`) because both callers are fed arbitrary byte
//! chunks, must bound every event (a server that streams a 100 MB line must not exhaust memory), count comments,
//! and the relay needs the raw bytes. Bytes that are not UTF-8 are decoded lossily (U+FFFD), never an error.
//!
//! Must not: buffer more than the bound plus one pushed chunk, or panic on any input.

use bytes::{Buf, Bytes, BytesMut};

/// Default bound on one event's accumulated `data` plus the current line (plain mode), or on one block's raw
/// bytes (raw mode): 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event` field; `None` means the default type `message`.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The `id` field, when present (an id containing NUL is ignored, WHATWG).
    pub id: Option<String>,
    /// The `retry` field in milliseconds, when present and a number.
    pub retry_ms: Option<u64>,
}

impl Event {
    /// The event type: the `event` field or `message`.
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// What one step of the plain parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete event.
    Event(Event),
    /// A comment line (starts with `:`), e.g. a keep-alive.
    Comment,
}

/// One block of a stream read by the [`RawParser`]: everything from the end of the previous block up to and
/// including the blank line that ends this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The bytes exactly as received (a leading BOM, comments, ids, unknown fields and line endings included).
    pub raw: Bytes,
    /// The event these bytes dispatch; `None` for a block that dispatches nothing (comments only, a stray blank
    /// line, fields without `data` or `retry`).
    pub event: Option<Event>,
    /// How many comment lines (keep-alives) the block holds.
    pub comments: usize,
}

/// An event, block or line grew past the parser's bound (the bound in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SSE event larger than {0} bytes")]
pub struct TooLarge(pub usize);

/// Incremental plain-mode SSE parser: [`push`](Parser::push) bytes as they arrive, then drain
/// [`next_item`](Parser::next_item) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Parser {
    /// Received bytes; `buf[..pos]` is parsed already (raw mode keeps it until its block is taken).
    buf: BytesMut,
    pos: usize,
    /// No line terminator lies in `buf[pos..scan_from]`: where the next search resumes, so that a long line fed
    /// in small chunks is scanned once, not once per chunk.
    scan_from: usize,
    /// Raw mode: keep parsed bytes, and read a `\r` only once the byte after it is known.
    keep_raw: bool,
    fields: Fields,
    /// Plain mode: a `\r` ended the last line, so a following `\n` belongs to it.
    skip_lf: bool,
    started: bool,
}

/// The event being assembled from field lines.
#[derive(Debug)]
struct Fields {
    max_event_bytes: usize,
    current: Event,
    has_data: bool,
    data_bytes: usize,
}

/// What one line meant.
enum Step {
    /// A blank line: the event so far, if it dispatches.
    Dispatch(Option<Event>),
    Comment,
}

/// Incremental raw-bytes SSE parser: [`push`](RawParser::push) bytes as they arrive, then drain
/// [`next_block`](RawParser::next_block) until it returns `Ok(None)`. The same line and field rules as
/// [`Parser`]; the bound applies to one block's raw bytes.
#[derive(Debug)]
pub struct RawParser {
    inner: Parser,
    comments: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl Parser {
    /// A parser bounding each event (data plus the pending line) to `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            buf: BytesMut::new(),
            pos: 0,
            scan_from: 0,
            keep_raw: false,
            fields: Fields {
                max_event_bytes,
                current: Event::default(),
                has_data: false,
                data_bytes: 0,
            },
            skip_lf: false,
            started: false,
        }
    }

    /// Appends received bytes.
    ///
    /// Errors with [`TooLarge`] when the unparsed line plus the event so far exceed the bound; the parser must
    /// then be dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        self.buf.extend_from_slice(chunk);
        if self.held_bytes() > self.fields.max_event_bytes && self.find_terminator().is_none() {
            return Err(TooLarge(self.fields.max_event_bytes));
        }
        Ok(())
    }

    /// The next complete item from the bytes pushed so far, `Ok(None)` when more bytes are needed.
    ///
    /// Errors with [`TooLarge`] as [`push`](Parser::push) does, or when an event's data exceeds the bound.
    pub fn next_item(&mut self) -> Result<Option<Item>, TooLarge> {
        loop {
            match self.step()? {
                None => return Ok(None),
                Some(Step::Comment) => return Ok(Some(Item::Comment)),
                Some(Step::Dispatch(Some(event))) => return Ok(Some(Item::Event(event))),
                Some(Step::Dispatch(None)) => {}
            }
        }
    }

    /// The bytes the bound applies to: in plain mode the unparsed bytes plus the event's data so far, in raw
    /// mode every byte of the current block (its data is part of them).
    fn held_bytes(&self) -> usize {
        if self.keep_raw {
            self.buf.len()
        } else {
            self.buf.len() + self.fields.data_bytes
        }
    }

    fn check_bound(&self) -> Result<(), TooLarge> {
        if self.held_bytes() > self.fields.max_event_bytes {
            return Err(TooLarge(self.fields.max_event_bytes));
        }
        Ok(())
    }

    /// The index in `buf` of the next `\r` or `\n` at or after `pos`.
    fn find_terminator(&mut self) -> Option<usize> {
        let from = self.scan_from.max(self.pos);
        match self.buf[from..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
        {
            Some(i) => Some(from + i),
            None => {
                self.scan_from = self.buf.len();
                None
            }
        }
    }

    /// Marks `n` more bytes as parsed: dropped in plain mode, kept for the block in raw mode.
    fn consume(&mut self, n: usize) {
        if self.keep_raw {
            self.pos += n;
        } else {
            self.buf.advance(n);
        }
        self.scan_from = self.pos;
    }

    /// Reads lines until one means something, `Ok(None)` when more bytes are needed.
    fn step(&mut self) -> Result<Option<Step>, TooLarge> {
        loop {
            if !self.started {
                // A leading UTF-8 BOM is ignored (WHATWG: "One leading U+FEFF BYTE ORDER MARK").
                let rest = &self.buf[self.pos..];
                if !rest.is_empty() && rest.len() < 3 && b"\xEF\xBB\xBF".starts_with(rest) {
                    return Ok(None);
                }
                if rest.starts_with(b"\xEF\xBB\xBF") {
                    self.consume(3);
                }
                if self.pos < self.buf.len() {
                    self.started = true;
                }
            }
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.consume(1);
                }
                self.skip_lf = false;
            }
            let Some(end) = self.find_terminator() else {
                self.check_bound()?;
                return Ok(None);
            };
            let mut terminator_len = 1;
            if self.buf[end] == b'\r' {
                if !self.keep_raw {
                    self.skip_lf = true;
                } else if end + 1 == self.buf.len() {
                    // Raw mode: wait for the next byte, so that a `\r\n` split across chunks stays in one
                    // block (a relayed event then ends where the upstream ended it).
                    self.check_bound()?;
                    return Ok(None);
                } else if self.buf[end + 1] == b'\n' {
                    terminator_len = 2;
                }
            }
            let step = self.fields.line(&self.buf[self.pos..end])?;
            self.consume(end - self.pos + terminator_len);
            if let Some(step) = step {
                return Ok(Some(step));
            }
        }
    }
}

impl Fields {
    fn line(&mut self, line: &[u8]) -> Result<Option<Step>, TooLarge> {
        if line.is_empty() {
            return Ok(Some(Step::Dispatch(self.dispatch())));
        }
        if line[0] == b':' {
            return Ok(Some(Step::Comment));
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.current.event = Some(value.into_owned()),
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
                self.data_bytes = self.current.data.len();
                if self.data_bytes > self.max_event_bytes {
                    return Err(TooLarge(self.max_event_bytes));
                }
            }
            // An id containing NUL is ignored (WHATWG).
            b"id" if !value.contains('\0') => self.current.id = Some(value.into_owned()),
            // WHATWG: only a value of ASCII digits sets the reconnection time (`parse` alone takes a `+`).
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.current.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.current);
        let had_data = std::mem::replace(&mut self.has_data, false);
        self.data_bytes = 0;
        // WHATWG: an event with an empty data buffer is not dispatched; a retry-only block still matters to
        // the gateway (it tells clients when to reconnect), so keep it when it carries a retry.
        if had_data || event.retry_ms.is_some() {
            Some(event)
        } else {
            None
        }
    }
}

impl Default for RawParser {
    fn default() -> Self {
        RawParser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl RawParser {
    /// A raw-bytes parser bounding each block's raw bytes to `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        let mut inner = Parser::new(max_event_bytes);
        inner.keep_raw = true;
        RawParser { inner, comments: 0 }
    }

    /// Appends received bytes.
    ///
    /// Errors with [`TooLarge`] when the block so far exceeds the bound without a complete line to parse; the
    /// parser must then be dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        self.inner.push(chunk)
    }

    /// The next complete block from the bytes pushed so far, `Ok(None)` when more bytes are needed.
    ///
    /// Errors with [`TooLarge`] when the block exceeds the bound.
    pub fn next_block(&mut self) -> Result<Option<Block>, TooLarge> {
        loop {
            match self.inner.step()? {
                None => return Ok(None),
                Some(Step::Comment) => self.comments += 1,
                Some(Step::Dispatch(event)) => {
                    let raw = self.inner.buf.split_to(self.inner.pos).freeze();
                    self.inner.pos = 0;
                    self.inner.scan_from = 0;
                    return Ok(Some(Block {
                        raw,
                        event,
                        comments: std::mem::take(&mut self.comments),
                    }));
                }
            }
        }
    }

    /// True when no byte of an unfinished block is held: a writer may insert a whole block (a keep-alive
    /// comment) here without splitting an event.
    pub fn at_boundary(&self) -> bool {
        self.inner.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(parser: &mut Parser) -> Vec<Item> {
        let mut out = Vec::new();
        while let Some(item) = parser.next_item().unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn parses_events_split_anywhere() {
        let stream =
            b"event: message\r\ndata: {\"a\":1}\r\n\r\n: keepalive\n\ndata: x\ndata: y\nid: 7\n\n";
        for split in 0..stream.len() {
            let mut p = Parser::default();
            p.push(&stream[..split]).unwrap();
            let mut items = collect(&mut p);
            p.push(&stream[split..]).unwrap();
            items.extend(collect(&mut p));
            assert_eq!(items.len(), 3, "split at {split}: {items:?}");
            assert_eq!(
                items[0],
                Item::Event(Event {
                    event: Some("message".into()),
                    data: "{\"a\":1}".into(),
                    ..Event::default()
                })
            );
            assert_eq!(items[1], Item::Comment);
            assert_eq!(
                items[2],
                Item::Event(Event {
                    data: "x\ny".into(),
                    id: Some("7".into()),
                    ..Event::default()
                })
            );
        }
    }

    #[test]
    fn endpoint_event() {
        let mut p = Parser::default();
        p.push(b"event: endpoint\ndata: /messages?sessionId=abc\n\n")
            .unwrap();
        let items = collect(&mut p);
        let Item::Event(e) = &items[0] else { panic!() };
        assert_eq!(e.kind(), "endpoint");
        assert_eq!(e.data, "/messages?sessionId=abc");
    }

    #[test]
    fn retry_only_block_is_kept() {
        let mut p = Parser::default();
        p.push(b"retry: 3000\n\n").unwrap();
        let items = collect(&mut p);
        assert_eq!(
            items,
            vec![Item::Event(Event {
                retry_ms: Some(3000),
                ..Event::default()
            })]
        );
    }

    #[test]
    fn bounds_an_endless_line() {
        let mut p = Parser::new(1024);
        let chunk = [b'a'; 512];
        let mut result = Ok(());
        for _ in 0..4 {
            result = p.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err() || p.next_item().is_err());
    }

    #[test]
    fn bounds_many_data_lines() {
        let mut p = Parser::new(1024);
        let mut failed = false;
        for _ in 0..100 {
            p.push(b"data: 0123456789012345678901234567890123456789\n")
                .unwrap();
            if p.next_item().is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn retry_needs_ascii_digits() {
        // Regression: `u64::from_str` accepts a leading `+`, WHATWG takes only ASCII digits.
        let mut p = Parser::default();
        p.push(b"retry: +5\ndata: x\n\n").unwrap();
        let items = collect(&mut p);
        assert_eq!(
            items,
            vec![Item::Event(Event {
                data: "x".into(),
                ..Event::default()
            })]
        );
    }

    fn blocks(parser: &mut RawParser) -> Vec<Block> {
        let mut out = Vec::new();
        while let Some(block) = parser.next_block().unwrap() {
            out.push(block);
        }
        out
    }

    #[test]
    fn raw_blocks_keep_bytes_comments_and_ids() {
        // Was the gateway's `events_parse` test of its own parser.
        let mut p = RawParser::default();
        p.push(b": c\nevent: x\ndata: a\ndata:b\nid: 1\n\n")
            .unwrap();
        let got = blocks(&mut p);
        assert_eq!(got.len(), 1);
        assert_eq!(
            &got[0].raw[..],
            b": c\nevent: x\ndata: a\ndata:b\nid: 1\n\n"
        );
        assert_eq!(got[0].comments, 1);
        let e = got[0].event.as_ref().expect("an event");
        assert_eq!(e.event.as_deref(), Some("x"));
        assert_eq!(e.data, "a\nb");
        assert_eq!(e.id.as_deref(), Some("1"));
        assert!(p.at_boundary());
    }

    #[test]
    fn raw_blocks_without_events_pass_through() {
        let mut p = RawParser::default();
        p.push(b"\xEF\xBB\xBF\n: keepalive\n\nevent: endpoint\n\ndata: x\r\n")
            .unwrap();
        let got = blocks(&mut p);
        let raws: Vec<&[u8]> = got.iter().map(|b| &b.raw[..]).collect();
        assert_eq!(
            raws,
            vec![
                &b"\xEF\xBB\xBF\n"[..],
                &b": keepalive\n\n"[..],
                &b"event: endpoint\n\n"[..]
            ]
        );
        assert!(got.iter().all(|b| b.event.is_none()));
        assert_eq!(got[1].comments, 1);
        assert!(!p.at_boundary(), "`data: x` is held until its blank line");
    }

    #[test]
    fn raw_crlf_split_after_the_cr_stays_in_one_block() {
        let mut p = RawParser::default();
        p.push(b"data: x\r\n\r").unwrap();
        assert_eq!(blocks(&mut p), vec![]);
        assert!(!p.at_boundary());
        p.push(b"\ndata: y\r\r").unwrap();
        let got = blocks(&mut p);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].raw[..], b"data: x\r\n\r\n");
        p.push(b"x").unwrap();
        let got = blocks(&mut p);
        assert_eq!(&got[0].raw[..], b"data: y\r\r");
        assert_eq!(got[0].event.as_ref().map(|e| e.data.as_str()), Some("y"));
    }

    #[test]
    fn raw_bounds_a_block() {
        let mut p = RawParser::new(64);
        let mut failed = false;
        for _ in 0..100 {
            if p.push(b": 0123456789\n").is_err() || p.next_block().is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a block of endless comment lines is bounded");
    }

    mod props {
        //! Property tests: the parser against a whole-input reference written from WHATWG §9.2.6, for any
        //! chunking; and arbitrary bytes never panic and stay within the bound.

        use super::super::*;
        use proptest::prelude::*;

        /// What the reference reads from one line.
        #[derive(Debug, Clone, PartialEq, Eq)]
        enum RefStep {
            Comment,
            Dispatch(Option<Event>),
        }

        /// WHATWG §9.2.6 over a whole input, literally: lines end at CRLF, LF or CR; an unterminated last line
        /// is not read (nor, in `raw` mode, a line whose CR is the last byte: a LF may still follow).
        fn reference(input: &[u8], raw: bool) -> Vec<RefStep> {
            let mut input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            let mut out = Vec::new();
            let (mut data, mut event, mut id, mut retry) = (String::new(), None, None, None);
            loop {
                let Some(end) = input.iter().position(|b| *b == b'\r' || *b == b'\n') else {
                    return out;
                };
                let skip = match (input[end], input.get(end + 1)) {
                    (b'\r', Some(b'\n')) => 2,
                    (b'\r', None) if raw => return out,
                    _ => 1,
                };
                let line = &input[..end];
                input = &input[end + skip..];
                if line.is_empty() {
                    let dispatch = !data.is_empty() || retry.is_some();
                    if data.ends_with('\n') {
                        data.pop();
                    }
                    let e = Event {
                        event: event.take(),
                        data: std::mem::take(&mut data),
                        id: id.take(),
                        retry_ms: retry.take(),
                    };
                    out.push(RefStep::Dispatch(dispatch.then_some(e)));
                    continue;
                }
                if line[0] == b':' {
                    out.push(RefStep::Comment);
                    continue;
                }
                let (name, value) = match line.iter().position(|b| *b == b':') {
                    Some(i) if line.get(i + 1) == Some(&b' ') => (&line[..i], &line[i + 2..]),
                    Some(i) => (&line[..i], &line[i + 1..]),
                    None => (line, &b""[..]),
                };
                let value = String::from_utf8_lossy(value).into_owned();
                match name {
                    b"event" => event = Some(value),
                    b"data" => {
                        data.push_str(&value);
                        data.push('\n');
                    }
                    b"id" if !value.contains('\0') => id = Some(value),
                    b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                        retry = value.parse().ok().or(retry);
                    }
                    _ => {}
                }
            }
        }

        /// Bytes of a field value: anything but CR and LF, often not UTF-8.
        fn value() -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(
                any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
                0..12,
            )
        }

        fn line() -> impl Strategy<Value = Vec<u8>> {
            let field =
                |name: &'static str| value().prop_map(move |v| [name.as_bytes(), &v].concat());
            prop_oneof![
                3 => field("data: "),
                1 => field("data:"),
                1 => Just(b"data".to_vec()),
                1 => field("event: "),
                1 => field("id: "),
                1 => "[0-9+]{0,4}".prop_map(|v| format!("retry: {v}").into_bytes()),
                1 => field(":"),
                3 => Just(Vec::new()),
                1 => value(),
            ]
        }

        /// A stream: an optional BOM, then lines with mixed endings.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let ending = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
            (
                any::<bool>(),
                prop::collection::vec((line(), ending), 0..24),
                value(),
            )
                .prop_map(|(bom, lines, tail)| {
                    let mut out = if bom {
                        b"\xEF\xBB\xBF".to_vec()
                    } else {
                        Vec::new()
                    };
                    for (line, end) in lines {
                        out.extend_from_slice(&line);
                        out.extend_from_slice(end);
                    }
                    out.extend_from_slice(&tail);
                    out
                })
        }

        /// Splits `input` into chunks of the given sizes, cycled.
        fn chunks<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
            let mut out = Vec::new();
            let mut rest = input;
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at((*size).min(rest.len()));
                out.push(head);
                rest = tail;
            }
            out
        }

        fn sizes() -> impl Strategy<Value = Vec<usize>> {
            prop::collection::vec(1usize..40, 1..6)
        }

        proptest! {
            #[test]
            fn plain_matches_the_reference_for_any_chunking(input in stream(), sizes in sizes()) {
                let mut p = Parser::default();
                let mut got = Vec::new();
                for chunk in chunks(&input, &sizes) {
                    p.push(chunk).unwrap();
                    while let Some(item) = p.next_item().unwrap() {
                        got.push(item);
                    }
                }
                let want: Vec<Item> = reference(&input, false)
                    .into_iter()
                    .filter_map(|s| match s {
                        RefStep::Comment => Some(Item::Comment),
                        RefStep::Dispatch(e) => e.map(Item::Event),
                    })
                    .collect();
                prop_assert_eq!(got, want);
            }

            #[test]
            fn raw_matches_the_reference_and_keeps_every_byte(input in stream(), sizes in sizes()) {
                let mut p = RawParser::default();
                let mut got = Vec::new();
                for chunk in chunks(&input, &sizes) {
                    p.push(chunk).unwrap();
                    while let Some(block) = p.next_block().unwrap() {
                        got.push(block);
                    }
                }
                // Byte for byte: the blocks and the held rest are the input, in order.
                let mut joined: Vec<u8> = got.iter().flat_map(|b| b.raw.iter().copied()).collect();
                joined.extend_from_slice(&p.inner.buf);
                prop_assert_eq!(&joined, &input);
                prop_assert_eq!(p.at_boundary(), joined.len() == got.iter().map(|b| b.raw.len()).sum::<usize>());
                // Each block is what the reference dispatches, with the comments read since the last one.
                let mut want = Vec::new();
                let mut comments = 0;
                for step in reference(&input, true) {
                    match step {
                        RefStep::Comment => comments += 1,
                        RefStep::Dispatch(e) => want.push((std::mem::take(&mut comments), e)),
                    }
                }
                let got: Vec<(usize, Option<Event>)> =
                    got.into_iter().map(|b| (b.comments, b.event)).collect();
                prop_assert_eq!(got, want);
            }

            #[test]
            fn raw_block_boundaries_do_not_depend_on_chunking(input in stream(), sizes in sizes()) {
                let whole = {
                    let mut p = RawParser::default();
                    p.push(&input).unwrap();
                    let mut out = Vec::new();
                    while let Some(b) = p.next_block().unwrap() {
                        out.push(b.raw);
                    }
                    out
                };
                let mut p = RawParser::default();
                let mut got = Vec::new();
                for chunk in chunks(&input, &sizes) {
                    p.push(chunk).unwrap();
                    while let Some(b) = p.next_block().unwrap() {
                        got.push(b.raw);
                    }
                }
                prop_assert_eq!(got, whole);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_stay_bounded(
                input in prop::collection::vec(
                    prop_oneof![4 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r'), 1 => Just(b':')],
                    0..2048,
                ),
                sizes in sizes(),
                max in 1usize..256,
                raw in any::<bool>(),
            ) {
                let mut plain = Parser::new(max);
                let mut rawp = RawParser::new(max);
                for chunk in chunks(&input, &sizes) {
                    let held = if raw {
                        if rawp.push(chunk).is_err() {
                            break;
                        }
                        match std::iter::from_fn(|| rawp.next_block().transpose()).find(Result::is_err) {
                            Some(_) => break,
                            None => rawp.inner.held_bytes(),
                        }
                    } else {
                        if plain.push(chunk).is_err() {
                            break;
                        }
                        match std::iter::from_fn(|| plain.next_item().transpose()).find(Result::is_err) {
                            Some(_) => break,
                            None => plain.held_bytes(),
                        }
                    };
                    prop_assert!(held <= max, "held {held} > bound {max}");
                }
            }

            #[test]
            fn a_line_over_the_bound_fails(
                prefix in stream(),
                filler in any::<u8>().prop_filter("no line end", |b| *b != b'\r' && *b != b'\n'),
                sizes in sizes(),
                raw in any::<bool>(),
            ) {
                let max = 512;
                let mut input = prefix;
                input.extend_from_slice(b"\n\ndata: ");
                input.extend(std::iter::repeat_n(filler, max + 1));
                let mut plain = Parser::new(max);
                let mut rawp = RawParser::new(max);
                let mut failed = false;
                for chunk in chunks(&input, &sizes) {
                    failed = if raw {
                        rawp.push(chunk).is_err()
                            || std::iter::from_fn(|| rawp.next_block().transpose()).any(|r| r.is_err())
                    } else {
                        plain.push(chunk).is_err()
                            || std::iter::from_fn(|| plain.next_item().transpose()).any(|r| r.is_err())
                    };
                    if failed {
                        break;
                    }
                }
                prop_assert!(failed, "a {}-byte line passed a {max}-byte bound", max + 1);
            }
        }
    }
}
