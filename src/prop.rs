//! Proptest strategies for upstream streams and client behaviours.
//!
//! One section per subject; tests, the `prop` subcommand and the fuzz targets share them.
//!
//! - **SSE parser inputs**: byte streams shaped like text/event-stream (and deliberately not),
//!   split plans that cut them at the places parsers get wrong, and the split-invariance oracle
//!   [`sse_check_split`] that the property tests and the `sse_parser` fuzz target both assert.
//! - **Daemon cases** ([`daemon`]): upstream streams and client behaviours for `streamcheck
//!   prop`, with the mock script and expected outcome each one makes, the invariants, the
//!   runner that shrinks failures, and the regression file.

// ---- HTTP/1 responses -----------------------------------------------------------------------------
//
// Strategies, an encoder with its expected parse, and the incremental runner for the `http1`
// parser, shared by tests/http1_props.rs and the `http_response` fuzz target.
pub mod http1;

// ---- Daemon cases ---------------------------------------------------------------------------------
//
// Generated upstream streams and clients run through a daemon (`streamcheck prop`).
pub mod daemon;

// ---- SSE parser inputs ---------------------------------------------------------------------------

use proptest::prelude::*;
use proptest::sample::subsequence;

use crate::sse::{Error, Event, EventRef, Limits, Parser, Unterminated, Visitor};

/// Byte strings that make up field values: plain text, every UTF-8 width, invalid sequences,
/// NUL, characters that other splitters take for line ends, and JSON as daemons send it.
fn sse_value_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,12}".prop_map(String::into_bytes),
        2 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        2 => prop::sample::select(vec![
            "é", "€", "😀", "中文", "\u{2028}", "\u{2029}", "\u{85}", "\u{FEFF}", "\0", " ", ":",
            "{\"content\":\"Hello\"}", "[DONE]", "\t", "\u{B}", "\u{C}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        // Invalid UTF-8: lone continuation bytes, truncated sequences, bytes never valid.
        1 => prop::sample::select(vec![
            &b"\x80"[..], b"\xBF", b"\xC3", b"\xE2\x82", b"\xF0\x9F\x98", b"\xFF", b"\xFE",
            b"\xC0\xAF", b"\xED\xA0\x80",
        ])
        .prop_map(<[u8]>::to_vec),
        // Long runs: lines past common scanner limits.
        1 => (1usize..=2048, prop::sample::select(vec![b'x', b':', b' ']))
            .prop_map(|(n, b)| vec![b; n]),
    ]
}

fn sse_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(sse_value_piece(), 0..4).prop_map(|parts| parts.concat())
}

/// One line without its terminator.
fn sse_line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "data",
        "data",
        "data",
        "event",
        "id",
        "retry",
        "",
        "Data",
        "dat",
        "datax",
        "foo",
        "ev",
        "\u{FEFF}data",
    ]);
    let separator = prop::sample::select(vec![":", ": ", ":  ", ""]);
    let retry = prop::sample::select(vec![
        "0",
        "1000",
        "01500",
        "",
        "+5",
        "-1",
        "1e3",
        "12 ",
        "99999999999999999999999",
    ]);
    prop_oneof![
        6 => (name, separator, sse_value()).prop_map(|(n, s, v)| [n.as_bytes(), s.as_bytes(), &v].concat()),
        1 => retry.prop_map(|r| format!("retry:{r}").into_bytes()),
        1 => sse_value().prop_map(|v| [&b":"[..], &v].concat()),
        1 => sse_value(),
    ]
}

/// A line terminator: LF, CR or CRLF.
fn sse_eol() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![&b"\n"[..], b"\n", b"\r", b"\r\n"])
}

/// One block: field lines, then (usually) a blank line.
fn sse_block() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((sse_line(), sse_eol()), 0..5),
        prop::option::weighted(0.85, sse_eol()),
    )
        .prop_map(|(lines, blank)| {
            let mut out = Vec::new();
            for (line, eol) in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(eol);
            }
            if let Some(eol) = blank {
                out.extend_from_slice(eol);
            }
            out
        })
}

/// Byte streams for the SSE parser: mostly blocks of well- and ill-formed lines with mixed line
/// ends, after an optional BOM (whole, doubled, or a prefix of one), sometimes raw bytes, and
/// sometimes cut off mid-line at the end.
pub fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop::sample::select(vec![
        &b""[..],
        b"",
        b"",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF\xEF\xBB\xBF",
        b"\xEF",
        b"\xEF\xBB",
    ]);
    let body = prop::collection::vec(
        prop_oneof![
            16 => sse_block(),
            2 => prop::collection::vec(any::<u8>(), 0..32),
            2 => prop::collection::vec(prop::sample::select(b"\r\n:data \xEF\xBB\xBF".to_vec()), 0..16),
            // A line past the 64 KiB where fixed-size line scanners give up.
            1 => prop::sample::select(vec![&b"data: "[..], b":", b"data:", b"id: ", b"x-pad: "])
                .prop_map(|head| [head, &[b'y'; 70_000][..], b"\n\n"].concat()),
        ],
        0..8,
    );
    let tail = prop::option::weighted(0.3, sse_line());
    (prefix, body, tail).prop_map(|(prefix, body, tail)| {
        let mut out = prefix.to_vec();
        out.extend(body.concat());
        out.extend(tail.unwrap_or_default());
        out
    })
}

/// Cut points (nondecreasing offsets in `0..=len`) splitting a stream of `len` bytes into feeds.
/// Repeated offsets make empty feeds.
pub fn split_plan(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=len, 0..12).prop_map(|mut cuts| {
        cuts.sort_unstable();
        cuts
    })
}

/// The offsets where a cut tests something: inside a multi-byte UTF-8 sequence (at every inner
/// byte), between CR and LF, inside a BOM, before and after every line end.
pub fn sse_interesting_cuts(stream: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    for i in 1..stream.len() {
        let (before, at) = (stream[i - 1], stream[i]);
        let inner_utf8 = (0x80..0xC0).contains(&at) && before >= 0x80;
        let line_end = matches!(before, b'\r' | b'\n') || matches!(at, b'\r' | b'\n');
        if inner_utf8 || line_end || (i < 3 && before == 0xEF) || (i < 3 && stream[0] == 0xEF) {
            cuts.push(i);
        }
    }
    cuts
}

/// A stream and a split plan that favours [`sse_interesting_cuts`], mixed with random cuts and
/// sometimes with a stretch of one-byte feeds.
pub fn sse_case() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    sse_stream().prop_flat_map(|stream| {
        let len = stream.len();
        let interesting = sse_interesting_cuts(&stream);
        let most = interesting.len();
        (
            subsequence(interesting, 0..=most),
            split_plan(len),
            prop::option::weighted(0.2, (0..=len, 0usize..64)),
        )
            .prop_map(move |(a, b, bytewise)| {
                let mut cuts: Vec<usize> = a.into_iter().chain(b).collect();
                if let Some((from, n)) = bytewise {
                    cuts.extend(from..(from + n).min(len));
                }
                cuts.sort_unstable();
                cuts
            })
            .prop_map(move |cuts| (stream.clone(), cuts))
    })
}

/// Limits for the split-invariance property: usually the defaults, sometimes small enough for
/// the generated streams to cross them.
pub fn sse_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        3 => Just(Limits::default()),
        1 => (0usize..64, 0usize..256)
            .prop_map(|(line, event)| Limits::default().with_max_line(line).with_max_event(event)),
    ]
}

/// Everything the parser reports for one stream, with feed indexes cleared (they depend on the
/// split by design; [`sse_parse`] checks them separately).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseOutcome {
    /// The events, in order, `feed_index` set to 0.
    pub events: Vec<Event>,
    /// Comment texts with their line offsets.
    pub comments: Vec<(Vec<u8>, u64)>,
    /// Valid `retry` values with their line offsets.
    pub retries: Vec<(u64, u64)>,
    /// The error that stopped the stream, if any.
    pub error: Option<Error>,
    /// What [`Parser::finish`] reported.
    pub unterminated: Option<Unterminated>,
    /// The last event ID after `finish`.
    pub last_event_id: String,
}

impl Visitor for SseOutcome {
    fn event(&mut self, event: EventRef<'_>) {
        self.events.push(event.into_event());
    }

    fn comment(&mut self, text: &[u8], start: u64) {
        self.comments.push((text.to_vec(), start));
    }

    fn retry(&mut self, millis: u64, start: u64) {
        self.retries.push((millis, start));
    }
}

/// Parses `stream` in the feeds that `cuts` (nondecreasing offsets, each at most `stream.len()`)
/// make, stopping at the first error. Fails if an event's feed index is not the feed holding the
/// byte that completed it, or if a feed after an error does not repeat it.
pub fn sse_parse(stream: &[u8], cuts: &[usize], limits: Limits) -> Result<SseOutcome, String> {
    let mut parser = Parser::with_limits(limits);
    let mut out = SseOutcome::default();
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(0);
    bounds.extend(cuts.iter().map(|&c| c.min(stream.len())));
    bounds.push(stream.len());
    let mut feeds = Vec::with_capacity(bounds.len());
    for w in bounds.windows(2) {
        let (from, to) = (w[0], w[1].max(w[0]));
        feeds.push(from..to);
        if let Err(error) = parser.feed(&stream[from..to], &mut out) {
            if parser.feed(b"\n\n", &mut out).as_ref() != Err(&error) {
                return Err(format!("the error {error:?} did not stick"));
            }
            out.error = Some(error);
            break;
        }
    }
    for event in &mut out.events {
        let last = usize::try_from(event.end)
            .ok()
            .and_then(|e| e.checked_sub(1));
        let fed = feeds.get(event.feed_index);
        if !matches!((last, fed), (Some(last), Some(fed)) if fed.contains(&last)) {
            return Err(format!("event {event:?} reported in feed {fed:?}"));
        }
        event.feed_index = 0;
    }
    out.unterminated = parser.finish();
    out.last_event_id = parser.last_event_id().to_owned();
    Ok(out)
}

/// The split-invariance property: parsing `stream` in the feeds `cuts` make gives exactly what
/// parsing it in one piece gives (events with their offsets, comments, retries, error, the
/// unterminated report, the last event ID), and what it gives is well-formed.
pub fn sse_check_split(stream: &[u8], cuts: &[usize], limits: Limits) -> Result<(), String> {
    let whole = sse_parse(stream, &[], limits)?;
    let split = sse_parse(stream, cuts, limits)?;
    if whole != split {
        return Err(format!(
            "split at {cuts:?} differs from one piece:\n one piece: {whole:?}\n split:     {split:?}"
        ));
    }
    let mut previous_end = 0;
    for event in &whole.events {
        let well_formed = previous_end <= event.start
            && event.start < event.end
            && event.end <= stream.len() as u64
            && event.data.len() <= limits.max_event
            && event.invalid_utf8
                == std::str::from_utf8(&event.data)
                    .err()
                    .map(|e| e.valid_up_to())
            && !event.event_type.is_empty();
        if !well_formed {
            return Err(format!(
                "malformed event after offset {previous_end}: {event:?}"
            ));
        }
        previous_end = event.end;
    }
    Ok(())
}
