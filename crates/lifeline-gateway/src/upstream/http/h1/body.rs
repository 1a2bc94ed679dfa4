//! The body of an upstream response: read from the connection by whoever polls it (the downstream connection's
//! task, as it writes the response), frame by frame as bytes arrive, then the connection goes back to the pool.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::uri::Authority;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::wire::Framing;
use super::{Client, Conn};
use crate::body::BoxError;

/// Bytes of free buffer space each read of the socket may fill: 16 KiB (a frame is at most that large).
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Longest chunk-size line accepted, chunk extensions included (RFC 9112 §7.1.1): 4 KiB.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Largest trailer section skipped (RFC 9112 §7.1.2): 64 KiB.
const MAX_TRAILERS: usize = 64 * 1024;

/// A response body read straight from its connection. The connection goes back to the pool when the body ended
/// exactly at the message's end and the response allowed reuse (`back`); it closes when the body is dropped
/// before its end (a client that left: the rest of the response would otherwise be read as the next one), was
/// delimited by the close, or failed.
pub(super) struct Incoming {
    conn: Option<Conn>,
    state: State,
    back: Option<(Arc<Client>, Authority)>,
}

#[derive(Debug)]
enum State {
    /// This many content bytes still to come (`Content-Length`).
    Length(u64),
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    Close,
    Done,
}

/// The chunked transfer coding's decoder (RFC 9112 §7.1): content bytes are handed out as they arrive, chunk
/// boundaries and extensions dropped; the trailer section is read and ignored (§7.1.2: a recipient may discard
/// it).
#[derive(Debug, Default)]
pub(super) struct Chunked {
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

impl Incoming {
    /// The body of a response delimited by `framing` ([`Framing::Empty`] gives an ended body), the rest of it
    /// to be read from `conn` (whose buffer may already hold its start). `back`: the pool to return the
    /// connection to at the end, `None` when it must close.
    pub(super) fn new(
        conn: Conn,
        framing: Framing,
        back: Option<(Arc<Client>, Authority)>,
    ) -> Incoming {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::default()),
            Framing::Close => State::Close,
        };
        Incoming {
            conn: Some(conn),
            state,
            back,
        }
    }

    /// The body ended at the message's end: the connection goes back when allowed and nothing follows it.
    fn finish(&mut self) {
        self.state = State::Done;
        if let (Some(conn), Some((client, authority))) = (self.conn.take(), self.back.take()) {
            if conn.buf.is_empty() {
                client.checkin(&authority, conn);
            }
        }
    }

    /// The body failed: the connection closes.
    fn fail(&mut self, err: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        self.conn = None;
        self.back = None;
        Poll::Ready(Some(Err(err)))
    }
}

impl HttpBody for Incoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        // Each turn either hands out a frame, ends, or reads from the socket (which returns Pending once drained).
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match take(&mut this.state, &mut conn.buf) {
                Err(err) => return this.fail(err),
                Ok(data) => {
                    let done = matches!(this.state, State::Done);
                    if done {
                        // Before the last frame is handed out: hyper's server stops polling a body that says it
                        // has ended.
                        this.finish();
                    }
                    if let Some(data) = data {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if done {
                        return Poll::Ready(None);
                    }
                }
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if let Err(err) = ready!(conn.stream.poll_read_ready(cx)) {
                return this.fail(read_error(&err));
            }
            conn.buf.reserve(READ_CHUNK);
            match conn.stream.try_read_buf(&mut conn.buf) {
                Ok(0) if matches!(this.state, State::Close) => {
                    // §6.3 item 8: the close ends the body; the connection cannot be reused.
                    this.state = State::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(invalid(
                        "the upstream closed the connection before the end of its response body",
                    ))
                }
                Ok(_) => {}
                // Readiness was stale; the next `poll_read_ready` waits for the socket.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return this.fail(read_error(&err)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// The content bytes `buf` holds for a body in `state`, taken out of it; `Ok(None)` when more input is needed
/// or the body has ended (`state` is then [`State::Done`]).
fn take(state: &mut State, buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
    match state {
        State::Length(rest) => {
            if buf.is_empty() {
                return Ok(None);
            }
            let n = buf.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
            *rest -= n as u64;
            if *rest == 0 {
                *state = State::Done;
            }
            Ok(Some(buf.split_to(n).freeze()))
        }
        State::Chunked(chunked) => {
            let data = chunked.decode(buf)?;
            if chunked.is_done() {
                *state = State::Done;
            }
            Ok(data)
        }
        State::Close if buf.is_empty() => Ok(None),
        State::Close => Ok(Some(buf.split().freeze())),
        State::Done => Ok(None),
    }
}

impl Chunked {
    /// Consumes what it can of `buf`: `Ok(Some(data))` for content bytes (part of a chunk, as soon as any have
    /// arrived), `Ok(None)` when more input is needed or the message has ended ([`Chunked::is_done`]).
    ///
    /// Errors: a chunk-size line that is not `1*HEXDIG` (fitting in 64 bits) optionally followed by `;`
    /// extensions, or longer than 4 KiB; chunk data not followed by CRLF; a trailer section over 64 KiB.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
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
                        return Err(invalid(
                            "the upstream's chunked body has no CRLF after a chunk's data",
                        ));
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
                        return Err(invalid(
                            "the upstream's chunked body has a trailer line without CRLF",
                        ));
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
    pub(super) fn is_done(&self) -> bool {
        self.step == Step::Done
    }
}

/// The index of the LF ending the line at the start of `buf`; `None` while it has not arrived. Errors when the
/// line is (or would be) longer than `max` bytes.
fn line_end(buf: &[u8], max: usize) -> Result<Option<usize>, BoxError> {
    match buf.iter().take(max).position(|&b| b == b'\n') {
        Some(lf) => Ok(Some(lf)),
        None if buf.len() >= max => Err(invalid(
            "the upstream's chunked body has a chunk-size or trailer line over its limit",
        )),
        None => Ok(None),
    }
}

/// The size of a chunk from its line, LF excluded: `chunk-size [ chunk-ext ] CR` (RFC 9112 §7.1, §7.1.1;
/// extensions are ignored, `BWS` before them allowed).
fn chunk_size(line: &[u8]) -> Result<u64, BoxError> {
    let bad = || invalid("the upstream's chunked body has an invalid chunk-size line");
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
        .ok_or_else(|| invalid("the upstream's chunked body has a chunk size over 64 bits"))?;
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(bad());
    }
    Ok(size)
}

fn invalid(message: &'static str) -> BoxError {
    Box::new(io::Error::new(io::ErrorKind::InvalidData, message))
}

fn read_error(err: &io::Error) -> BoxError {
    Box::new(io::Error::new(
        err.kind(),
        format!("reading the upstream's response body: {err}"),
    ))
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
