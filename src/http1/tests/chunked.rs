//! Chunked transfer coding: grammar, extensions, trailers, every chunked error and truncation.

use super::*;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A chunked response with `body` after the head.
fn chunked(body: &[u8]) -> Vec<u8> {
    [HEAD, body].concat()
}

/// Stream offset of byte `i` of the chunked body.
fn at(i: usize) -> u64 {
    (HEAD.len() + i) as u64
}

#[test]
fn decodes_chunks_extensions_and_trailers() {
    let body = b"5;a=b;c=\"d\\\"e\" ;f\r\nhello\r\n0A\r\n0123456789\r\n000;last\r\nX-T: 1\r\nx-t: 2\r\n\r\n";
    let bytes = chunked(body);
    let outcome = parse(&bytes);
    assert_eq!(final_head(&outcome).1, Framing::Chunked);
    let runs: Vec<(u64, &[u8])> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Observed::Body(offset, b) => Some((*offset, b.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [(at(19), &b"hello"[..]), (at(30), b"0123456789")]);
    let Some(Observed::End(end)) = outcome.events.last() else {
        panic!("the body ends with an End event");
    };
    assert_eq!(end.offset, bytes.len() as u64);
    let trailers = &end.trailers;
    assert_eq!(trailers.raw(), b"X-T: 1\r\nx-t: 2\r\n\r\n");
    assert_eq!(
        (trailers.offset(), trailers.end()),
        (at(52), bytes.len() as u64)
    );
    let values: Vec<&[u8]> = trailers.get_all("X-t").map(|f| f.value()).collect();
    assert_eq!(values, [b"1", b"2"]);
    assert_eq!(trailers.get("x-t").unwrap().offset(), at(57));
    let f = finish(&outcome);
    assert_eq!(
        (f.framing, f.end, f.excess),
        (Framing::Chunked, bytes.len() as u64, None)
    );
}

#[test]
fn whitespace_is_allowed_where_the_grammar_has_bws() {
    let outcome = parse(&chunked(
        b"5 \t; a = b ;\tc = \"q\"\r\nhello\r\n0 ; z\r\n\r\n",
    ));
    assert_eq!(outcome.body(), b"hello");
}

#[test]
fn leading_zeros_never_overflow() {
    let outcome = parse(&chunked(
        b"00000000000000000000001\r\nx\r\n0000000000000000000\r\n\r\n",
    ));
    assert_eq!(outcome.body(), b"x");
}

#[test]
fn invalid_chunk_sizes() {
    for (body, i, byte) in [
        (&b"x\r\n"[..], 0, b'x'),
        (b"\r\n", 0, b'\r'),
        (b" 5\r\n", 0, b' '),
        (b"-5\r\n", 0, b'-'),
        (b"5 x\r\n", 2, b'x'),
        (b"5 \r\n", 2, b'\r'),
        (b"1\r\na\r\nz\r\n", 6, b'z'),
    ] {
        let offset = at(i);
        assert_eq!(
            error(&chunked(body)),
            Error::InvalidChunkSize { offset, byte },
            "{body:?}"
        );
    }
}

#[test]
fn chunk_size_overflow() {
    assert_eq!(
        error(&chunked(b"10000000000000000\r\n")),
        Error::ChunkSizeOverflow { offset: at(16) }
    );
    // The largest size is accepted; the stream just ends long before it.
    assert_eq!(
        error(&chunked(b"ffffffffffffffff\r\nabc")),
        Error::Truncated {
            offset: at(21),
            stage: Stage::ChunkData {
                remaining: u64::MAX - 3
            }
        }
    );
}

#[test]
fn invalid_chunk_extensions() {
    for (body, i, byte) in [
        (&b"5;\r\n"[..], 2, b'\r'),
        (b"5;=x\r\n", 2, b'='),
        (b"5;a=\r\n", 4, b'\r'),
        (b"5;a b\r\n", 4, b'b'),
        (b"5;a=b c\r\n", 6, b'c'),
        (b"5;a=b\"c\"\r\n", 5, b'"'),
        (b"5;a=\"b\"c\r\n", 7, b'c'),
        (b"5;a=\"x\r\n", 6, b'\r'),
        (b"5;a=\"\\\x01\"\r\n", 6, 0x01),
        (b"5;a=\"\x7f\"\r\n", 5, 0x7f),
    ] {
        let offset = at(i);
        assert_eq!(
            error(&chunked(body)),
            Error::InvalidChunkExtension { offset, byte },
            "{body:?}"
        );
    }
}

#[test]
fn chunk_data_longer_than_its_size() {
    assert_eq!(
        error(&chunked(b"3\r\nabcd\r\n0\r\n\r\n")),
        Error::ChunkDataNotTerminated {
            offset: at(6),
            byte: b'd'
        }
    );
}

#[test]
fn bare_cr_is_always_an_error() {
    let relaxed = Config::new().allow_bare_lf_in_chunked(true);
    for (body, i) in [
        (&b"5\rx"[..], 1),
        (b"5;a\rx", 3),
        (b"3\r\nabc\rx", 6),
        (b"0\r\nA: b\rc", 7),
        (b"0\r\n\rx", 3),
    ] {
        let e = Error::BareCr { offset: at(i) };
        assert_eq!(error(&chunked(body)), e, "{body:?}");
        assert_eq!(error_with(&relaxed, &chunked(body)), e, "{body:?} relaxed");
    }
}

#[test]
fn bare_lf_is_an_error_unless_allowed() {
    let relaxed = Config::new().allow_bare_lf_in_chunked(true);
    for (body, i, trailers) in [
        (&b"5\nhello\r\n0\r\n\r\n"[..], 1, 0),
        (b"5;a=b\nhello\r\n0\r\n\r\n", 5, 0),
        (b"5\r\nhello\n0\r\n\r\n", 8, 0),
        (b"0\n\r\n", 1, 0),
        (b"0\r\n\n", 3, 0),
        (b"0\r\nA: b\n\r\n", 7, 1),
        (b"0\r\nA: b\r\n\n", 9, 1),
    ] {
        assert_eq!(
            error(&chunked(body)),
            Error::BareLf { offset: at(i) },
            "{body:?}"
        );
        let outcome = parse_with(&relaxed, &chunked(body));
        let Some(Observed::End(end)) = outcome.events.last() else {
            panic!("{body:?} ends cleanly when bare LF is allowed");
        };
        assert_eq!(end.trailers.len(), trailers);
        assert_eq!(finish(&outcome).end, chunked(body).len() as u64);
    }
}

#[test]
fn malformed_trailers_name_the_rejected_byte() {
    for (body, i) in [
        (&b"0\r\nBad Name: x\r\n\r\n"[..], 6),
        (b"0\r\nA: b\r\n c\r\n\r\n", 9),
    ] {
        assert_eq!(
            error(&chunked(body)),
            Error::MalformedTrailers {
                offset: at(i),
                cause: httparse::Error::HeaderName
            },
            "{body:?}"
        );
    }
}

#[test]
fn trailer_limit_is_inclusive() {
    let config = Config::new().max_trailer_bytes(8);
    let outcome = parse_with(&config, &chunked(b"0\r\nA: b\r\n\r\n"));
    assert!(matches!(outcome.events.last(), Some(Observed::End(e)) if e.trailers.len() == 1));
    assert_eq!(
        error_with(&config, &chunked(b"0\r\nA: bcdef\r\n\r\n")),
        Error::TrailersTooLarge {
            offset: at(11),
            limit: 8
        }
    );
}

#[test]
fn a_close_inside_chunked_framing_is_truncation() {
    for (body, stage) in [
        (&b""[..], Stage::ChunkHeader),
        (b"5;a", Stage::ChunkHeader),
        (b"5\r", Stage::ChunkHeader),
        (b"5\r\nhe", Stage::ChunkData { remaining: 3 }),
        (b"5\r\nhello", Stage::ChunkDataEnd),
        (b"5\r\nhello\r", Stage::ChunkDataEnd),
        (b"5\r\nhello\r\n", Stage::ChunkHeader),
        (b"0\r\n", Stage::Trailers),
        (b"0\r\nA: b\r\n", Stage::Trailers),
        (b"0\r\n\r", Stage::Trailers),
    ] {
        let offset = at(body.len());
        assert_eq!(
            error(&chunked(body)),
            Error::Truncated { offset, stage },
            "{body:?}"
        );
    }
}

#[test]
fn bytes_after_the_last_chunk_are_excess() {
    let bytes = chunked(b"2\r\nok\r\n0\r\n\r\ndata: late\n\n");
    let outcome = parse(&bytes);
    let end = at(12);
    assert_eq!(
        outcome.events.last(),
        Some(&Observed::Excess(end, b"data: late\n\n".to_vec()))
    );
    let f = finish(&outcome);
    assert_eq!(
        f.excess,
        Some(Excess {
            offset: end,
            len: 12
        })
    );
}
