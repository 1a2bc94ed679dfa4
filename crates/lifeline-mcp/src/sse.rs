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
mod tests;
