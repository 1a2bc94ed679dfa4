//! An incremental, bounded Server-Sent Events parser (WHATWG HTML §9.2 "Server-sent events", the event stream
//! interpretation), used for SSE-framed MCP replies and the 2024-11-05 HTTP+SSE stream.
//!
//! Our own rather than a crate because the prober and the gateway both need a parser that is fed arbitrary byte
//! chunks, bounds every event (a server that streams a 100 MB line must not exhaust memory), and reports
//! comments (keep-alives) so the gateway can count them.

use bytes::{Buf, BytesMut};

/// Default bound on one event's accumulated `data` plus the current line: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event` field; `None` means the default type `message`.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The `id` field, when present.
    pub id: Option<String>,
    /// The `retry` field in milliseconds, when present and valid.
    pub retry_ms: Option<u64>,
}

impl Event {
    /// The event type: the `event` field or `message`.
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// What one step of the parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete event.
    Event(Event),
    /// A comment line (starts with `:`), e.g. a keep-alive.
    Comment,
}

/// An event or line grew past the parser's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SSE event larger than {0} bytes")]
pub struct TooLarge(pub usize);

/// Incremental SSE parser: [`push`](Parser::push) bytes as they arrive, then drain [`next`](Parser::next_item).
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    max_event_bytes: usize,
    current: Event,
    has_data: bool,
    data_bytes: usize,
    /// A `\r` ended the last line: a following `\n` belongs to it.
    skip_lf: bool,
    started: bool,
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
            max_event_bytes,
            current: Event::default(),
            has_data: false,
            data_bytes: 0,
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
        if self.buf.len() + self.data_bytes > self.max_event_bytes
            && !self.buf.iter().any(|b| *b == b'\n' || *b == b'\r')
        {
            return Err(TooLarge(self.max_event_bytes));
        }
        Ok(())
    }

    /// The next complete item from the bytes pushed so far, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<Item>, TooLarge> {
        loop {
            if !self.started {
                // A leading UTF-8 BOM is ignored (WHATWG: "One leading U+FEFF BYTE ORDER MARK").
                if self.buf.len() < 3
                    && b"\xEF\xBB\xBF".starts_with(&self.buf)
                    && !self.buf.is_empty()
                {
                    return Ok(None);
                }
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.advance(3);
                }
                if !self.buf.is_empty() {
                    self.started = true;
                }
            }
            if self.skip_lf && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    self.buf.advance(1);
                }
                self.skip_lf = false;
            }
            let Some(end) = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                if self.buf.len() + self.data_bytes > self.max_event_bytes {
                    return Err(TooLarge(self.max_event_bytes));
                }
                return Ok(None);
            };
            let line = self.buf.split_to(end);
            let terminator = self.buf[0];
            self.buf.advance(1);
            if terminator == b'\r' {
                self.skip_lf = true;
            }
            if let Some(item) = self.line(&line)? {
                return Ok(Some(item));
            }
        }
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Item>, TooLarge> {
        if line.is_empty() {
            return Ok(self.dispatch().map(Item::Event));
        }
        if line[0] == b':' {
            return Ok(Some(Item::Comment));
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
            b"retry" => {
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
}
