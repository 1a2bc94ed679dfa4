//! Unit and property tests of the SSE parser, both modes.

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
        let field = |name: &'static str| value().prop_map(move |v| [name.as_bytes(), &v].concat());
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
