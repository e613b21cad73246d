//! Unit tests: every error variant provoked, every framing decision, the head rules.
//!
//! Every helper parses its input whole, split at every offset, and one byte at a time, and
//! insists on the same outcome, so each test here is also a split test.

use super::*;
use crate::prop::http1::{Observed, Outcome, pieces, run};

mod chunked;

pub(super) fn parse_with(config: &Config, bytes: &[u8]) -> Outcome {
    let whole = run(config, &[bytes]);
    for cut in 0..=bytes.len() {
        assert_eq!(run(config, &pieces(bytes, &[cut])), whole, "split at {cut}");
    }
    let one_byte: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(config, &one_byte), whole, "one byte at a time");
    whole
}

pub(super) fn parse(bytes: &[u8]) -> Outcome {
    parse_with(&Config::default(), bytes)
}

pub(super) fn error_with(config: &Config, bytes: &[u8]) -> Error {
    match parse_with(config, bytes).result {
        Err(e) => e,
        Ok(finish) => panic!("expected an error, got {finish:?}"),
    }
}

pub(super) fn error(bytes: &[u8]) -> Error {
    error_with(&Config::default(), bytes)
}

pub(super) fn finish(outcome: &Outcome) -> Finish {
    match &outcome.result {
        Ok(f) => *f,
        Err(e) => panic!("expected a clean finish, got {e}"),
    }
}

/// The final head and its framing.
pub(super) fn final_head(outcome: &Outcome) -> (&Head, Framing) {
    let mut heads = outcome.events.iter().filter_map(|e| match e {
        Observed::Head(h, f) => Some((h, *f)),
        _ => None,
    });
    let head = heads.next().expect("a final head");
    assert!(heads.next().is_none(), "one final head");
    head
}

fn framing_of(bytes: &[u8]) -> Framing {
    final_head(&parse(bytes)).1
}

const SSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
    Content-Type: text/event-stream\r\n\
    Cache-Control: no-cache\r\n\
    Connection: close\r\n\
    X-Accel-Buffering: no\r\n\
    \r\n\
    data: {\"content\":\"Hello\"}\n\n\
    data: [DONE]\n\n";

#[test]
fn sse_response_runs_until_close() {
    let outcome = parse(SSE);
    let (head, framing) = final_head(&outcome);
    let head_len = SSE.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(framing, Framing::UntilClose);
    assert_eq!(
        (head.version(), head.status(), head.reason()),
        (1, 200, "OK")
    );
    assert_eq!(head.raw(), &SSE[..head_len]);
    assert_eq!((head.offset(), head.end()), (0, head_len as u64));
    let names: Vec<&str> = head.headers().iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "Cache-Control",
            "Connection",
            "X-Accel-Buffering"
        ]
    );
    let ct = head.headers().get("CONTENT-type").unwrap();
    assert_eq!(ct.value_str(), Some("text/event-stream"));
    assert_eq!(&SSE[ct.offset() as usize..][..17], b"text/event-stream");
    assert_eq!(outcome.body(), &SSE[head_len..]);
    assert!(!outcome.events.iter().any(|e| matches!(e, Observed::End(_))));
    let f = finish(&outcome);
    assert_eq!(
        (f.framing, f.end, f.excess),
        (Framing::UntilClose, SSE.len() as u64, None)
    );
}

#[test]
fn duplicate_headers_keep_order_and_raw_values() {
    let bytes = b"HTTP/1.1 200 OK\r\nX-A: 1\r\nOther: z\r\nx-a:  two \r\nX-Bin: \xffok\r\n\r\n";
    let outcome = parse(bytes);
    let headers = final_head(&outcome).0.headers();
    assert_eq!(headers.len(), 4);
    let all: Vec<&[u8]> = headers.get_all("x-A").map(|f| f.value()).collect();
    assert_eq!(all, [&b"1"[..], b"two"]);
    assert_eq!(headers.get("X-A").unwrap().value(), b"1");
    assert!(headers.get("missing").is_none());
    let bin = headers.get("x-bin").unwrap();
    assert_eq!((bin.value(), bin.value_str()), (&b"\xffok"[..], None));
    assert_eq!(bin.offset(), 54);
}

#[test]
fn interim_heads_come_before_the_final_one() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
        HTTP/1.1 200 OK\r\n\r\nbody";
    let outcome = parse(bytes);
    let interim: Vec<(u16, u64, u64)> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Observed::Interim(h) => Some((h.status(), h.offset(), h.end())),
            _ => None,
        })
        .collect();
    assert_eq!(interim, [(100, 0, 25), (103, 25, 86)]);
    let Observed::Interim(hints) = &outcome.events[1] else {
        panic!("second event is the 103 head");
    };
    assert!(hints.is_interim());
    assert_eq!(
        hints.headers().get("link").unwrap().value(),
        b"</style.css>; rel=preload"
    );
    let (head, framing) = final_head(&outcome);
    assert_eq!(
        (head.status(), head.offset(), framing),
        (200, 86, Framing::UntilClose)
    );
    assert!(!head.is_interim());
    assert_eq!(outcome.body(), b"body");
}

#[test]
fn interim_heads_count_toward_the_head_limit() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    let config = Config::new().max_head_bytes(40);
    assert_eq!(
        error_with(&config, bytes),
        Error::HeadTooLarge {
            offset: 40,
            limit: 40
        }
    );
    let config = Config::new().max_head_bytes(bytes.len());
    assert_eq!(finish(&parse_with(&config, bytes)).end, bytes.len() as u64);
}

#[test]
fn switching_protocols_ends_the_message_at_its_head() {
    let bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    let outcome = parse(bytes);
    let (head, framing) = final_head(&outcome);
    assert_eq!((head.status(), framing), (101, Framing::NoBody));
    assert!(!head.is_interim());
    let head_end = head.end();
    assert_eq!(
        outcome.events[1..],
        [
            Observed::End(End {
                offset: head_end,
                trailers: Fields::default()
            }),
            Observed::Excess(head_end, b"\x81\x05hello".to_vec()),
        ]
    );
    let excess = Excess {
        offset: head_end,
        len: 7,
    };
    assert_eq!(finish(&outcome).excess, Some(excess));
}

#[test]
fn no_body_statuses_ignore_framing_headers() {
    for bytes in [
        &b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ] {
        let outcome = parse(bytes);
        assert_eq!(final_head(&outcome).1, Framing::NoBody);
        assert!(outcome.body().is_empty());
        let f = finish(&outcome);
        assert_eq!(f.excess.map(|e| e.offset + e.len), Some(bytes.len() as u64));
    }
}

#[test]
fn empty_lines_before_the_status_line_are_skipped() {
    let bytes = b"\r\n\nHTTP/1.1 200 OK\r\n\r\nx";
    let outcome = parse(bytes);
    let head = final_head(&outcome).0;
    assert_eq!((head.offset(), head.raw()), (0, &bytes[..22]));
    assert_eq!(outcome.body(), b"x");
}

#[test]
fn bare_lf_ends_head_lines() {
    let outcome = parse(b"HTTP/1.0 200 OK\nA: b\n\nbody");
    let head = final_head(&outcome).0;
    assert_eq!((head.version(), head.end()), (0, 22));
    assert_eq!(head.headers().get("a").unwrap().value(), b"b");
    assert_eq!(outcome.body(), b"body");
}

#[test]
fn missing_reason_phrase_is_empty() {
    let outcome = parse(b"HTTP/1.1 200\r\n\r\n");
    assert_eq!(final_head(&outcome).0.reason(), "");
}

#[test]
fn a_stream_without_a_head_fails_at_its_first_line() {
    // The daemon forgot the head and went straight to events: rejected at the first LF,
    // without waiting for a blank line or the close.
    let mut parser = Parser::new();
    let events: Vec<_> = parser.feed(b"data: hello\n").collect();
    let expected = Error::MalformedHead {
        offset: 0,
        cause: httparse::Error::Version,
    };
    assert_eq!(events, [Err(expected.clone())]);
    assert_eq!(error(b"data: hello\n\n"), expected);
}

#[test]
fn malformed_heads_name_the_rejected_byte() {
    let cases: [(&[u8], u64, httparse::Error); 5] = [
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            20,
            httparse::Error::HeaderName,
        ),
        (b"HTTP/1.1 20 OK\r\n\r\n", 11, httparse::Error::Status),
        (b"HTTP/2 200 OK\r\n\r\n", 5, httparse::Error::Version),
        (
            b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
            23,
            httparse::Error::HeaderName,
        ),
        (
            b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n",
            21,
            httparse::Error::HeaderValue,
        ),
    ];
    for (bytes, offset, cause) in cases {
        assert_eq!(
            error(bytes),
            Error::MalformedHead { offset, cause },
            "{bytes:?}"
        );
    }
}

#[test]
fn a_close_inside_the_head_is_truncation_or_malformation() {
    let truncated = |offset| Error::Truncated {
        offset,
        stage: Stage::Head,
    };
    assert_eq!(error(b""), truncated(0));
    assert_eq!(error(b"HTTP/1.1 200 OK\r\nA: b"), truncated(21));
    assert_eq!(error(b"HTTP/1.1 100 Continue\r\n\r\n"), truncated(25));
    assert_eq!(
        error(b"garbage"),
        Error::MalformedHead {
            offset: 0,
            cause: httparse::Error::Version
        }
    );
}

#[test]
fn head_limit_is_inclusive() {
    let bytes = b"HTTP/1.1 200 OK\r\n\r\n";
    let exact = Config::new().max_head_bytes(bytes.len());
    assert_eq!(final_head(&parse_with(&exact, bytes)).0.end(), 19);
    let under = Config::new().max_head_bytes(bytes.len() - 1);
    assert_eq!(
        error_with(&under, bytes),
        Error::HeadTooLarge {
            offset: 18,
            limit: 18
        }
    );
}

#[test]
fn content_length_delimits_the_body_and_reports_excess() {
    let outcome = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
    assert_eq!(final_head(&outcome).1, Framing::ContentLength(5));
    assert_eq!(outcome.body(), b"hello");
    assert!(outcome.events.contains(&Observed::End(End {
        offset: 43,
        trailers: Fields::default()
    })));
    assert_eq!(
        outcome.events.last(),
        Some(&Observed::Excess(43, b"EXTRA".to_vec()))
    );
    let f = finish(&outcome);
    assert_eq!((f.end, f.excess), (43, Some(Excess { offset: 43, len: 5 })));
}

#[test]
fn content_length_zero_ends_at_the_head() {
    let outcome = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(final_head(&outcome).1, Framing::ContentLength(0));
    assert!(matches!(outcome.events.last(), Some(Observed::End(e)) if e.offset == 38));
}

#[test]
fn identical_content_lengths_are_one() {
    for bytes in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2,\r\n\r\nok",
    ] {
        assert_eq!(framing_of(bytes), Framing::ContentLength(2));
    }
}

#[test]
fn invalid_content_length_names_the_element() {
    for (value, at) in [
        (&b"abc"[..], 0),
        (b"-1", 0),
        (b"+1", 0),
        (b"1 2", 0),
        (b"0x10", 0),
        (b"5, x", 3),
        (b"18446744073709551616", 0),
        (b"", 0),
        (b", ,", 0),
    ] {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: ".to_vec();
        let value_at = bytes.len() as u64;
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n\r\n");
        let offset = value_at + at;
        assert_eq!(
            error(&bytes),
            Error::InvalidContentLength { offset },
            "{value:?}"
        );
    }
}

#[test]
fn conflicting_content_lengths_are_an_error() {
    let offset = 36;
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"),
        Error::ConflictingContentLength { offset }
    );
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        Error::ConflictingContentLength { offset: 52 }
    );
}

#[test]
fn a_close_inside_a_content_length_body_is_truncation() {
    assert_eq!(
        error(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"),
        Error::Truncated {
            offset: 41,
            stage: Stage::ContentLength { remaining: 2 }
        }
    );
}

fn with_te(te: &[u8]) -> Vec<u8> {
    let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ".to_vec();
    bytes.extend_from_slice(te);
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes
}

#[test]
fn chunked_must_be_the_final_coding() {
    let cases: [(&[u8], Framing); 6] = [
        (b"chunked", Framing::Chunked),
        (b"CHUNKED", Framing::Chunked),
        (b"gzip, chunked", Framing::Chunked),
        (b"gzip;q=\"a,b\\\"\" , chunked", Framing::Chunked),
        (b"chunked, gzip", Framing::UntilClose),
        (b"gzip", Framing::UntilClose),
    ];
    for (te, framing) in cases {
        let mut bytes = with_te(te);
        if framing == Framing::Chunked {
            bytes.extend_from_slice(b"0\r\n\r\n");
        }
        assert_eq!(framing_of(&bytes), framing, "{te:?}");
    }
    let split = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(framing_of(split), Framing::Chunked);
}

#[test]
fn invalid_transfer_encoding_names_the_element() {
    let value_at = 36;
    for (te, at) in [
        (&b"chunked, chunked"[..], 9),
        (b"", 0),
        (b", ,", 0),
        (b"gzip deflate", 0),
        (b"gzip;", 0),
        (b"gzip;q", 0),
        (b"gzip;q=", 0),
        (b"x, gzip;q=\"open", 3),
        (b"\"chunked\"", 0),
    ] {
        let offset = value_at + at;
        assert_eq!(
            error(&with_te(te)),
            Error::InvalidTransferEncoding { offset },
            "{te:?}"
        );
    }
}

#[test]
fn transfer_encoding_in_http10_is_faulty_framing() {
    assert_eq!(
        error(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Error::TransferEncodingInHttp10 { offset: 36 }
    );
}

#[test]
fn content_length_with_transfer_encoding_is_an_error_unless_allowed() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    assert_eq!(
        error(bytes),
        Error::ContentLengthWithTransferEncoding { offset: 33 }
    );
    let relaxed = Config::new().allow_content_length_with_transfer_encoding(true);
    let outcome = parse_with(&relaxed, bytes);
    assert_eq!(final_head(&outcome).1, Framing::Chunked);
    assert_eq!(outcome.body(), b"ok");
}

#[test]
fn errors_are_sticky() {
    let mut parser = Parser::new();
    let e = Error::MalformedHead {
        offset: 0,
        cause: httparse::Error::Version,
    };
    assert_eq!(parser.feed(b"nope\n").collect::<Vec<_>>(), [Err(e.clone())]);
    assert_eq!(
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n").collect::<Vec<_>>(),
        [Err(e.clone())]
    );
    assert_eq!(parser.finish(), Err(e));
}

#[test]
fn a_dropped_feed_consumes_only_what_it_reached() {
    let mut parser = Parser::new();
    let mut feed = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert!(matches!(feed.next(), Some(Ok(Event::Head { .. }))));
    assert_eq!(feed.remaining(), b"ok");
    drop(feed);
    assert_eq!(
        (parser.offset(), parser.framing()),
        (38, Some(Framing::ContentLength(2)))
    );
    assert!(!parser.is_complete());
    let events: Vec<_> = parser.feed(b"ok").map(Result::unwrap).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0],
        Event::Body(Data {
            offset: 38,
            bytes: b"ok"
        })
    );
    assert!(parser.is_complete());
    assert_eq!(parser.excess(), None);
    assert_eq!(parser.feed(b"!").count(), 1);
    assert_eq!(parser.excess(), Some(Excess { offset: 40, len: 1 }));
}

#[test]
fn errors_report_their_offset() {
    let e = error(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n");
    assert_eq!(e.offset(), 36);
    assert!(e.to_string().contains("at byte 36"), "{e}");
    let t = error(b"");
    assert_eq!(
        t.to_string(),
        "the stream ended at byte 0 before the response head was complete"
    );
}

#[test]
fn media_type_drops_parameters_and_whitespace() {
    assert_eq!(
        fields::media_type(b" Text/Event-Stream ; charset=utf-8"),
        b"Text/Event-Stream"
    );
    assert_eq!(
        fields::media_type(b"text/event-stream"),
        b"text/event-stream"
    );
    assert_eq!(fields::media_type(b";x"), b"");
    assert_eq!(fields::media_type(b""), b"");
}
