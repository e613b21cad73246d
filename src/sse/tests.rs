//! Unit tests for the SSE parser: one behaviour each. The conformance vectors and the property
//! tests (tests/sse_*.rs) cover the same rules under every chunking.

use super::*;

/// Everything a connection reports.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<Event>,
    comments: Vec<(Vec<u8>, u64)>,
    retries: Vec<(u64, u64)>,
    borrowed: Vec<bool>,
}

impl Visitor for Seen {
    fn event(&mut self, event: EventRef<'_>) {
        self.borrowed.push(event.data_is_borrowed());
        self.events.push(event.into_event());
    }
    fn comment(&mut self, text: &[u8], start: u64) {
        self.comments.push((text.to_vec(), start));
    }
    fn retry(&mut self, millis: u64, start: u64) {
        self.retries.push((millis, start));
    }
}

fn feed_all(parser: &mut Parser, chunks: &[&[u8]]) -> Seen {
    let mut seen = Seen::default();
    for chunk in chunks {
        parser.feed(chunk, &mut seen).expect("within limits");
    }
    seen
}

fn events(chunks: &[&[u8]]) -> Vec<Event> {
    feed_all(&mut Parser::new(), chunks).events
}

fn datas(chunks: &[&[u8]]) -> Vec<String> {
    events(chunks)
        .iter()
        .map(|e| e.data_str().into_owned())
        .collect()
}

#[test]
fn a_leading_bom_is_stripped() {
    assert_eq!(datas(&[b"\xEF\xBB\xBFdata: a\n\n"]), ["a"]);
}

#[test]
fn a_bom_split_across_feeds_is_stripped() {
    assert_eq!(datas(&[b"\xEF", b"\xBB", b"\xBF", b"data: a\n\n"]), ["a"]);
    assert_eq!(datas(&[b"\xEF\xBB", b"\xBFdata: a\n\n"]), ["a"]);
    assert_eq!(datas(&[b"\xEF", b"", b"\xBB\xBFdata: a\n\n"]), ["a"]);
}

#[test]
fn only_one_bom_is_stripped() {
    // The second BOM becomes part of the first line's field name: an unknown field.
    assert_eq!(
        datas(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"]),
        ["b"]
    );
}

#[test]
fn a_bom_prefix_that_is_not_a_bom_starts_the_first_line() {
    assert_eq!(datas(&[b"\xEF", b"\xBBdata: a\n\ndata: b\n\n"]), ["b"]);
    let mut parser = Parser::new();
    assert!(
        feed_all(&mut parser, &[b"\xEF\xBB", b"x\n"])
            .events
            .is_empty()
    );
    let cut = parser.finish().expect("the ignored field line is pending");
    assert_eq!((cut.start, cut.end, cut.partial_line), (0, 4, false));
}

#[test]
fn a_stream_ending_inside_a_possible_bom_is_an_unterminated_line() {
    let mut parser = Parser::new();
    feed_all(&mut parser, &[b"\xEF\xBB"]);
    assert_eq!(
        parser.finish(),
        Some(Unterminated {
            start: 0,
            end: 2,
            partial_line: true
        })
    );
}

#[test]
fn lf_cr_and_crlf_all_end_lines() {
    assert_eq!(
        datas(&[b"data: a\n\ndata: b\r\rdata: c\r\n\r\n"]),
        ["a", "b", "c"]
    );
}

#[test]
fn a_crlf_split_across_feeds_ends_one_line() {
    // Were the LF a second line end, it would be a blank line dispatching "a" alone.
    assert_eq!(datas(&[b"data: a\r", b"\ndata: b\n\n"]), ["a\nb"]);
    assert_eq!(datas(&[b"data: a\r", b"", b"\ndata: b\n\n"]), ["a\nb"]);
}

#[test]
fn a_cr_ending_a_feed_dispatches_at_once() {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    parser.feed(b"data: a\r\r", &mut out).expect("ok");
    assert_eq!(out.len(), 1, "not held back waiting for a possible LF");
    parser.feed(b"\ndata: b\r\n\r\n", &mut out).expect("ok");
    assert_eq!(
        out.iter()
            .map(|e| e.data_str().into_owned())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn comments_are_reported_and_ignored() {
    let mut parser = Parser::new();
    let seen = feed_all(&mut parser, &[b": hello\n:: x\r:\ndata: a\n\n"]);
    assert_eq!(
        seen.comments,
        [
            (b" hello".to_vec(), 0),
            (b": x".to_vec(), 8),
            (Vec::new(), 13)
        ]
    );
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0].start, 0, "a block's comments belong to it");
}

#[test]
fn a_comment_cut_across_feeds_is_reported_whole() {
    let seen = feed_all(&mut Parser::new(), &[b":ke", b"ep-al", b"ive\n"]);
    assert_eq!(seen.comments, [(b"keep-alive".to_vec(), 0)]);
}

#[test]
fn a_field_without_colon_has_an_empty_value() {
    assert_eq!(datas(&[b"data\n\n"]), [""]);
    assert_eq!(datas(&[b"data: a\ndata\ndata\n\n"]), ["a\n\n"]);
    assert_eq!(datas(&[b"da", b"ta\n\n"]), [""]);
}

#[test]
fn exactly_one_space_after_the_colon_is_stripped() {
    assert_eq!(
        datas(&[b"data:a\n\ndata: a\n\ndata:  a\n\ndata:\ta\n\n"]),
        ["a", "a", " a", "\ta"]
    );
    assert_eq!(datas(&[b"data:", b" ", b" a\n\n"]), [" a"]);
    assert_eq!(datas(&[b"data:", b"  a\n\n"]), [" a"]);
    assert_eq!(datas(&[b"data", b":", b"a\n\n"]), ["a"]);
}

#[test]
fn data_lines_are_joined_with_lf() {
    assert_eq!(
        datas(&[b"data: a\ndata: b\ndata:\ndata: c\n\n"]),
        ["a\nb\n\nc"]
    );
    assert_eq!(
        datas(&[b"data: a\ndata: b", b"b\ndata: c\n", b"\n"]),
        ["a\nbb\nc"]
    );
}

#[test]
fn the_event_field_sets_the_type_for_one_event() {
    let got = events(&[b"event: add\ndata: 1\n\ndata: 2\n\nevent\ndata: 3\n\nevent:\ndata: 4\n\n"]);
    let types: Vec<&str> = got.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["add", "message", "message", "message"]);
}

#[test]
fn field_names_are_case_sensitive_and_unknown_ones_ignored() {
    assert_eq!(
        datas(&[b"Data: x\nDATA: y\ndata : z\nfoo: bar\ndata: a\n\n"]),
        ["a"]
    );
}

#[test]
fn a_block_without_data_dispatches_nothing() {
    let mut parser = Parser::new();
    let seen = feed_all(
        &mut parser,
        &[b"event: e\n\nid: 1\n\n: c\n\nretry: 5\n\nfoo\n\n"],
    );
    assert!(seen.events.is_empty());
    assert_eq!(
        parser.last_event_id(),
        "1",
        "the blank line still commits the id"
    );
    // The event type buffer was reset by the data-less dispatch.
    assert_eq!(
        events(&[b"event: e\n\ndata: x\n\n"])[0].event_type,
        "message"
    );
}

#[test]
fn the_last_event_id_persists_across_events() {
    let got = events(&[b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"]);
    let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1", "1", ""]);
}

#[test]
fn an_id_containing_nul_is_ignored() {
    let got = events(&[b"id: 1\n\nid: 2\x00\ndata: a\n\nid: \x00\ndata: b\n\n"]);
    assert_eq!(got[0].id, "1");
    assert_eq!(got[1].id, "1");
}

#[test]
fn an_id_in_an_unterminated_block_is_never_committed() {
    let mut parser = Parser::new();
    feed_all(&mut parser, &[b"id: 1\ndata: a\n\nid: 2\ndata: b\n"]);
    assert!(parser.finish().is_some());
    assert_eq!(parser.last_event_id(), "1");
    // The next connection starts from the committed id.
    let seen = feed_all(&mut parser, &[b"data: c\n\n"]);
    assert_eq!(seen.events[0].id, "1");
}

#[test]
fn retry_takes_ascii_digits_only() {
    let mut parser = Parser::new();
    let seen = feed_all(
        &mut parser,
        &[b"retry: 100\nretry:+5\nretry: 1e3\nretry:\nretry: 0200\nretry: -1\nretry: 7 \n\n"],
    );
    assert_eq!(seen.retries, [(100, 0), (200, 38)]);
    assert_eq!(parser.reconnection_time(), Some(200));
}

#[test]
fn retry_saturates_instead_of_overflowing() {
    let mut parser = Parser::new();
    let seen = feed_all(&mut parser, &[b"retry: 99999999999999999999999\n"]);
    assert_eq!(seen.retries, [(u64::MAX, 0)]);
}

#[test]
fn retry_belongs_to_its_block_and_survives_reconnection() {
    let mut parser = Parser::new();
    let seen = feed_all(
        &mut parser,
        &[b"retry: 5\ndata: a\n\ndata: b\n\nretry: 6\n\n"],
    );
    assert_eq!(
        seen.events.iter().map(|e| e.retry).collect::<Vec<_>>(),
        [Some(5), None]
    );
    assert_eq!(
        seen.retries.len(),
        2,
        "a retry-only block still reports its value"
    );
    parser.finish();
    assert_eq!(parser.reconnection_time(), Some(6));
}

#[test]
fn offsets_span_the_block_and_end_after_the_dispatching_line_end() {
    let got = events(&[b"\n: c\ndata: a\r\n\r\ndata: b\n\n"]);
    assert_eq!(
        (got[0].start, got[0].end),
        (1, 15),
        "ends past the CR of the CRLF"
    );
    assert_eq!((got[1].start, got[1].end), (16, 25));
}

#[test]
fn feed_index_names_the_feed_that_completed_the_event() {
    let got = events(&[b"data: a\n", b"\ndata: b", b"\n", b"", b"\n"]);
    assert_eq!(got.iter().map(|e| e.feed_index).collect::<Vec<_>>(), [1, 4]);
}

#[test]
fn invalid_utf8_is_kept_raw_and_located() {
    let got = events(&[b"event: \xFFx\ndata: ab\xC3\ndata: \xE2\x82\xAC\n\n"]);
    assert_eq!(got[0].data, b"ab\xC3\n\xE2\x82\xAC");
    assert_eq!(got[0].invalid_utf8, Some(2));
    assert_eq!(got[0].data_str(), "ab\u{FFFD}\n\u{20AC}");
    assert_eq!(
        got[0].event_type, "\u{FFFD}x",
        "decoded as the spec's UTF-8 decoder does"
    );
    assert_eq!(
        events(&[b"data: \xE2\x82", b"\xAC\n\n"])[0].invalid_utf8,
        None
    );
}

#[test]
fn unicode_line_separators_do_not_end_lines() {
    assert_eq!(
        datas(&[b"data: a\xE2\x80\xA8b\xC2\x85c\x0Bd\x0Ce\n\n"]),
        ["a\u{2028}b\u{85}c\u{B}d\u{C}e"]
    );
}

#[test]
fn an_unterminated_event_is_discarded_and_reported() {
    let mut parser = Parser::new();
    let seen = feed_all(&mut parser, &[b"data: a\n\ndata: b\n"]);
    assert_eq!(seen.events.len(), 1);
    assert_eq!(
        parser.finish(),
        Some(Unterminated {
            start: 9,
            end: 17,
            partial_line: false
        })
    );

    let mut parser = Parser::new();
    feed_all(&mut parser, &[b"data: a\n\ndata: {\"content\":\"Hel"]);
    assert_eq!(
        parser.finish(),
        Some(Unterminated {
            start: 9,
            end: 30,
            partial_line: true
        })
    );
}

#[test]
fn a_trailing_comment_or_blank_line_is_not_an_unterminated_event() {
    for tail in [&b": ping\n"[..], b": pi", b"\n", b"\r", b""] {
        let mut parser = Parser::new();
        feed_all(&mut parser, &[b"data: a\n\n", tail]);
        assert_eq!(parser.finish(), None, "{tail:?}");
    }
}

#[test]
fn finish_readies_the_parser_for_the_next_connection() {
    let mut parser = Parser::new();
    feed_all(&mut parser, &[b"id: 9\n\ndata: x"]);
    parser.finish();
    let seen = feed_all(&mut parser, &[b"\xEF\xBB\xBFdata: y\n\n"]);
    let event = &seen.events[0];
    assert_eq!((event.data_str().as_ref(), event.id.as_str()), ("y", "9"));
    assert_eq!((event.start, event.end, event.feed_index), (3, 12, 0));
}

#[test]
fn single_line_data_inside_a_chunk_is_borrowed() {
    let seen = feed_all(
        &mut Parser::new(),
        &[b"data: a\n\ndata: b\ndata: c\n\ndata: d", b"\n\n"],
    );
    assert_eq!(seen.borrowed, [true, false, false]);
    assert_eq!(seen.events[2].data, b"d");
}

#[test]
fn large_data_is_moved_out_of_the_parser_not_copied() {
    let mut parser = Parser::new();
    let big = vec![b'x'; 1 << 17];
    let mut out = Vec::new();
    parser.feed(b"data: ", &mut out).expect("ok");
    parser.feed(&big, &mut out).expect("ok");
    parser.feed(b"\n\n", &mut out).expect("ok");
    assert_eq!(out[0].data.len(), big.len());
    assert_eq!(parser.data.capacity(), 0, "the buffer went to the event");
}

#[test]
fn a_line_at_the_limit_passes_and_one_byte_more_stops_the_stream() {
    let limits = Limits::default().with_max_line(8);
    let mut parser = Parser::with_limits(limits);
    let mut out = Vec::new();
    parser
        .feed(b"data: 12\n\n", &mut out)
        .expect("8 bytes is within the limit");
    let err = parser
        .feed(b"data: ok\n\ndata: 123\n\n", &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        Error::LineTooLong {
            start: 20,
            limit: 8
        }
    );
    assert_eq!(out.len(), 2, "the event before the long line was delivered");
    assert_eq!(
        parser.feed(b"data: x\n\n", &mut out),
        Err(err.clone()),
        "the error sticks"
    );
    assert_eq!(parser.finish(), None);
    parser
        .feed(b"data: x\n\n", &mut out)
        .expect("a new connection parses again");
}

#[test]
fn a_long_line_is_refused_before_its_end_arrives() {
    let mut parser = Parser::with_limits(Limits::default().with_max_line(8));
    let mut out = Vec::new();
    parser.feed(b"data: 12", &mut out).expect("8 bytes so far");
    assert_eq!(
        parser.feed(b"3", &mut out),
        Err(Error::LineTooLong { start: 0, limit: 8 })
    );
    let mut parser = Parser::with_limits(Limits::default().with_max_line(8));
    assert_eq!(
        parser.feed(b": comment", &mut out),
        Err(Error::LineTooLong { start: 0, limit: 8 })
    );
}

#[test]
fn event_data_past_the_limit_stops_the_stream() {
    let mut parser = Parser::with_limits(Limits::default().with_max_event(5));
    let mut out = Vec::new();
    parser
        .feed(b": c\ndata: ab\ndata: cd\n\n", &mut out)
        .expect("5 bytes: ab LF cd");
    assert_eq!(out[0].data, b"ab\ncd");
    let err = parser
        .feed(b"data: ab\ndata: cde\n\n", &mut out)
        .unwrap_err();
    assert_eq!(
        err,
        Error::EventTooLarge {
            start: 23,
            limit: 5
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("--max-event-bytes"),
        "the message names the fix: {message}"
    );
}

#[test]
fn a_huge_data_line_fed_one_byte_at_a_time_is_never_buffered_twice() {
    let mut stream = b"data: ".to_vec();
    stream.resize(4 << 20, b'x');
    stream.extend_from_slice(b"\n\n");
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for byte in stream.chunks(1) {
        parser.feed(byte, &mut out).expect("within limits");
        // The value goes straight to the data buffer: no line buffer to rescan or copy.
        assert!(parser.line_buf.capacity() <= 8);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data.len(), (4 << 20) - 6);
}

#[test]
fn an_ignored_field_is_counted_not_buffered() {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    parser.feed(b"x-padding: ", &mut out).expect("ok");
    parser.feed(&[b'p'; 100_000], &mut out).expect("ok");
    assert!(parser.line_buf.capacity() <= 8);
    parser.feed(b"\ndata: a\n\n", &mut out).expect("ok");
    assert_eq!(out[0].data, b"a");
}

/// Feeds `data: <value>\n\n` in pieces of `piece` bytes and returns the event's UTF-8 verdicts:
/// from the owned event and from `EventRef::invalid_utf8`.
fn utf8_verdicts(value: &[u8], piece: usize) -> (Option<usize>, Option<usize>) {
    #[derive(Default)]
    struct Both(Vec<Option<usize>>, Vec<Event>);
    impl Visitor for Both {
        fn event(&mut self, event: EventRef<'_>) {
            self.0.push(event.invalid_utf8());
            self.1.push(event.into_event());
        }
    }
    let stream = [&b"data: "[..], value, b"\n\n"].concat();
    let mut both = Both::default();
    let mut parser = Parser::new();
    for chunk in stream.chunks(piece) {
        parser.feed(chunk, &mut both).expect("ok");
    }
    assert_eq!(both.1.len(), 1);
    (both.1[0].invalid_utf8, both.0[0])
}

#[test]
fn utf8_checked_as_data_arrives_agrees_with_std_at_every_boundary() {
    let mut value = "é€😀a".repeat(1500).into_bytes();
    for piece in [4097, 4098, 4099, 5000, 8191] {
        assert_eq!(
            utf8_verdicts(&value, piece),
            (None, None),
            "valid, pieces of {piece}"
        );
    }
    value[9001] = 0xFF;
    let want = std::str::from_utf8(&value).unwrap_err().valid_up_to();
    for piece in [4097, 4098, 4099, 5000, 8191, 1 << 20] {
        assert_eq!(
            utf8_verdicts(&value, piece),
            (Some(want), Some(want)),
            "pieces of {piece}"
        );
    }
    // A sequence cut by the end of the data is invalid, wherever the feeds were cut.
    let mut cut = "é€😀a".repeat(1500).into_bytes();
    cut.extend_from_slice(b"\xF0\x9F\x98");
    let want = cut.len() - 3;
    for piece in [4097, 4099, 8191] {
        assert_eq!(
            utf8_verdicts(&cut, piece),
            (Some(want), Some(want)),
            "pieces of {piece}"
        );
    }
}
