//! The fast path of `rpc::summarize` (issue 17): one forward pass over the bytes that validates the JSON syntax
//! of the whole body (as `serde_json` does for the values it skips: structure, string escapes, control
//! characters, number and literal syntax; the body must be UTF-8) and keeps only the byte spans of the top-level
//! `method`, `id`, `result`, `error` and the `name`/`uri` members of `params`, allocating only for the id.
//!
//! It answers only when it is sure to give the verdict of the `serde_json` parse in `rpc.rs`: for anything
//! unusual (a key or a kept string with escapes, a duplicate of a kept key, a `params.name` that is not a string,
//! an id that is not a plain scalar, a number `serde_json` might refuse, invalid UTF-8, nesting deeper than 64,
//! malformed JSON) it returns `None` and the caller runs that parse, so duplicate keys and malformed bodies keep
//! exactly the same verdicts (`Kind::Invalid`). The property test in `rpc.rs` checks the two against each other.

use std::ops::Range;

use serde_json::Value;

/// What the scan read: spans into the body, the id already built.
pub(super) struct Scanned {
    /// The method's string content (no escapes), `None` for an absent or `null` method.
    pub(super) method: Option<Range<usize>>,
    /// The id, `None` for an absent or `null` id.
    pub(super) id: Option<Value>,
    /// A `result` / `error` member that is not `null`.
    pub(super) result: bool,
    pub(super) error: bool,
    /// `params.name` / `params.uri` string contents (no escapes).
    pub(super) name: Option<Range<usize>>,
    pub(super) uri: Option<Range<usize>>,
}

/// Scans `body` (a JSON object, not a batch); `None` when the `serde_json` parse must decide.
pub(super) fn scan(body: &[u8]) -> Option<Scanned> {
    // RFC 8259 §8.1: JSON text is UTF-8. Invalid UTF-8 only inside skipped strings is accepted by serde_json;
    // leaving every such body to it keeps its verdicts.
    std::str::from_utf8(body).ok()?;
    let mut s = Scanner { b: body, i: 0 };
    let mut out = Scanned {
        method: None,
        id: None,
        result: false,
        error: false,
        name: None,
        uri: None,
    };
    // Seen members (a duplicate of any of them is left to serde_json, which refuses it).
    let (mut method, mut id, mut result, mut error, mut params) =
        (false, false, false, false, false);
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if !s.eat_if(b'}') {
        loop {
            let key = s.key()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match &body[key] {
                b"method" => {
                    once(&mut method)?;
                    out.method = s.plain_string_or_null()?;
                }
                b"id" => {
                    once(&mut id)?;
                    out.id = s.scalar_id()?;
                }
                b"result" => {
                    once(&mut result)?;
                    out.result = !s.null_or_value()?;
                }
                b"error" => {
                    once(&mut error)?;
                    out.error = !s.null_or_value()?;
                }
                b"params" => {
                    once(&mut params)?;
                    s.params(&mut out)?;
                }
                _ => s.value()?,
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == body.len()).then_some(out)
}

/// The bytes a string's content holds as themselves (RFC 8259 §7): anything but `"`, `\` and the control
/// characters U+0000 to U+001F.
static PLAIN: [bool; 256] = {
    let mut plain = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        plain[c] = false;
        c += 1;
    }
    plain[b'"' as usize] = false;
    plain[b'\\' as usize] = false;
    plain
};

/// Marks a member seen; `None` when it was already.
fn once(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn eat_if(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    /// JSON whitespace (RFC 8259 §2), as serde_json reads it.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string opening here; its content's span, and whether it holds an escape.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // The run of bytes that need no decision, in one tight loop (a third of the instructions of the
            // match below per byte; issue 17). UTF-8 was validated for the whole body up front.
            let rest = &self.b[self.i..];
            self.i += rest
                .iter()
                .position(|&c| !PLAIN[usize::from(c)])
                .unwrap_or(rest.len());
            let c = self.next()?;
            match c {
                b'"' => return Some((start..self.i - 1, escaped)),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                if !self.next()?.is_ascii_hexdigit() {
                                    return None;
                                }
                            }
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// A key without escapes (one with escapes could spell a kept key: left to serde_json).
    fn key(&mut self) -> Option<Range<usize>> {
        match self.string()? {
            (span, false) => Some(span),
            (_, true) => None,
        }
    }

    /// A string without escapes, or `null`.
    fn plain_string_or_null(&mut self) -> Option<Option<Range<usize>>> {
        if self.literal_null() {
            return Some(None);
        }
        match self.string()? {
            (span, false) => Some(Some(span)),
            (_, true) => None,
        }
    }

    /// Consumes `null` when it is next.
    fn literal_null(&mut self) -> bool {
        let hit = self.b[self.i..].starts_with(b"null");
        if hit {
            self.i += 4;
        }
        hit
    }

    /// Any value; true when it was `null`.
    fn null_or_value(&mut self) -> Option<bool> {
        if self.literal_null() {
            return Some(true);
        }
        self.value().map(|()| false)
    }

    /// A JSON-RPC id: a string, a number or a literal (`null`: none). Objects and arrays are left to serde_json.
    fn scalar_id(&mut self) -> Option<Option<Value>> {
        if self.literal_null() {
            return Some(None);
        }
        let start = self.i;
        match self.peek()? {
            b'"' => {
                let (span, escaped) = self.string()?;
                if !escaped {
                    let text = std::str::from_utf8(&self.b[span]).ok()?;
                    return Some(Some(Value::String(text.to_owned())));
                }
            }
            b'{' | b'[' => return None,
            _ => {
                self.value()?;
                let text = &self.b[start..self.i];
                // The usual small counter, without the float machinery; the rest exactly as serde_json reads it.
                if text.len() <= 18 && text.iter().all(u8::is_ascii_digit) {
                    let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                    return Some(Some(Value::from(n)));
                }
            }
        }
        serde_json::from_slice(&self.b[start..self.i])
            .ok()
            .map(Some)
    }

    /// `params`: of an object, the `name` and `uri` strings; any other value is skipped (no name). A `name` or
    /// `uri` that is not a string without escapes, or repeats, is left to serde_json.
    fn params(&mut self, out: &mut Scanned) -> Option<()> {
        if !self.eat_if(b'{') {
            return match self.peek()? {
                // serde_json reads a number or string `params` (as f64, as text: it refuses some numbers and
                // lone surrogate escapes that it accepts in a skipped value): left to it.
                b'-' | b'0'..=b'9' => None,
                b'"' => self.plain_string().map(drop),
                _ => self.value(),
            };
        }
        self.ws();
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match &self.b[key] {
                b"name" if out.name.is_none() => out.name = Some(self.plain_string()?),
                b"uri" if out.uri.is_none() => out.uri = Some(self.plain_string()?),
                b"name" | b"uri" => return None,
                _ => self.value()?,
            }
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    fn plain_string(&mut self) -> Option<Range<usize>> {
        match self.string()? {
            (span, false) => Some(span),
            (_, true) => None,
        }
    }

    /// Skips one value, validating it; nesting deeper than 64 is left to serde_json.
    fn value(&mut self) -> Option<()> {
        // Bit d of `arrays`: whether nesting level d is an array (else an object).
        let mut arrays: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value.
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    let open = self.next()?;
                    if depth == 64 {
                        return None;
                    }
                    if open == b'[' {
                        arrays |= 1 << depth;
                    } else {
                        arrays &= !(1 << depth);
                    }
                    depth += 1;
                    self.ws();
                    let close = if open == b'[' { b']' } else { b'}' };
                    if !self.eat_if(close) {
                        if open == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                    depth -= 1;
                }
                b't' => self.ident(b"true")?,
                b'f' => self.ident(b"false")?,
                b'n' => self.ident(b"null")?,
                _ => self.number()?,
            }
            // After a value: the end, or a comma and the next member or element, or closing brackets.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let in_array = arrays & (1 << (depth - 1)) != 0;
                match self.next()? {
                    b',' => {
                        self.ws();
                        if !in_array {
                            self.member_key()?;
                        }
                        break;
                    }
                    b']' if in_array => depth -= 1,
                    b'}' if !in_array => depth -= 1,
                    _ => return None,
                }
            }
        }
    }

    /// `"key" :` of an object member, and the whitespace before its value.
    fn member_key(&mut self) -> Option<()> {
        self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    fn ident(&mut self, word: &[u8]) -> Option<()> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        self.eat_if(b'-');
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat_if(b'.') {
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }
}
