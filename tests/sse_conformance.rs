//! The SSE parser against the 93 conformance vectors in `tests/data/sse_vectors.json`
//! (web-platform-tests, the eventsource-parser suite, the WHATWG spec's examples, and probes;
//! see tests/data/README.md): every vector whole, one byte at a time, split at every offset,
//! split at every pair of offsets (short bodies), and in its upstream test's own chunks.
//! Every chunking must give exactly what the whole body gives, offsets included, and that must
//! match the vector's expected events, retry values, comment count and final last event ID.

use std::ops::Range;

use serde_json::Value;
use streamcheck::sse::{Event, EventRef, Parser, Unterminated, Visitor};

/// Bodies up to this length are also split at every pair of offsets.
const PAIR_SPLIT_MAX: usize = 160;

struct Vector {
    id: String,
    content_type: String,
    bodies: Vec<Vec<u8>>,
    upstream_chunks: Vec<Option<Vec<Vec<u8>>>>,
    expected: Value,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sse_vectors.json"
    ))
    .expect("tests/data/sse_vectors.json is readable");
    let root: Value = serde_json::from_str(&text).expect("vectors are JSON");
    assert_eq!(root["schema"], "sse_vectors/1");
    let list = root["vectors"].as_array().expect("vectors array");
    assert_eq!(list.len() as u64, root["count"].as_u64().expect("count"));
    list.iter()
        .map(|v| {
            let connections = v["connections"].as_array().expect("connections");
            Vector {
                id: v["id"].as_str().expect("id").to_owned(),
                content_type: v["content_type"].as_str().expect("content_type").to_owned(),
                bodies: connections
                    .iter()
                    .map(|c| hex(c["body_hex"].as_str().expect("body_hex")))
                    .collect(),
                upstream_chunks: connections
                    .iter()
                    .map(|c| {
                        c["chunks_hex"].as_array().map(|chunks| {
                            chunks
                                .iter()
                                .map(|h| hex(h.as_str().expect("chunk hex")))
                                .collect()
                        })
                    })
                    .collect(),
                expected: v["expected"].clone(),
            }
        })
        .collect()
}

/// "text/event-stream" is the MIME type's essence: parameters (after `;`) do not matter.
fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("");
    essence
        .trim_matches([' ', '\t', '\r', '\n'])
        .eq_ignore_ascii_case("text/event-stream")
}

/// Everything the parser reports for one connection.
#[derive(Debug, Default, PartialEq)]
struct Connection {
    events: Vec<Event>,
    comments: Vec<(Vec<u8>, u64)>,
    retries: Vec<(u64, u64)>,
    unterminated: Option<Unterminated>,
    last_event_id: String,
}

impl Visitor for Connection {
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

/// How a test cuts connection `c`'s body into feeds.
type Plan<'a> = &'a dyn Fn(usize, &[u8]) -> Vec<Range<usize>>;

/// Parses each body in the pieces `plan` gives for it, reconnecting in between; checks that
/// each event's feed index is the feed holding the byte that completed it, then clears the
/// feed indexes so that different chunkings compare equal.
fn run(vector: &Vector, plan: Plan<'_>) -> Vec<Connection> {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for (c, body) in vector.bodies.iter().enumerate() {
        let pieces = plan(c, body);
        assert_eq!(
            pieces.iter().map(|r| r.len()).sum::<usize>(),
            body.len(),
            "{}: bad plan",
            vector.id
        );
        let mut conn = Connection::default();
        for piece in &pieces {
            parser
                .feed(&body[piece.clone()], &mut conn)
                .expect("default limits suffice");
        }
        for event in &mut conn.events {
            let last = usize::try_from(event.end - 1).expect("offset fits");
            assert!(
                pieces[event.feed_index].contains(&last),
                "{}: event ending at {} reported in feed {} ({:?})",
                vector.id,
                event.end,
                event.feed_index,
                pieces[event.feed_index]
            );
            event.feed_index = 0;
        }
        conn.unterminated = parser.finish();
        conn.last_event_id = parser.last_event_id().to_owned();
        out.push(conn);
    }
    out
}

fn whole(_: usize, body: &[u8]) -> Vec<Range<usize>> {
    cuts(body.len(), &[])
}

fn bytewise(_: usize, body: &[u8]) -> Vec<Range<usize>> {
    (0..body.len()).map(|i| i..i + 1).collect()
}

fn cuts(len: usize, at: &[usize]) -> Vec<Range<usize>> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(at);
    bounds.push(len);
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// The vector's expectations against what the whole bodies gave.
fn check_expected(vector: &Vector, got: &[Connection]) {
    let id = &vector.id;
    let expected = &vector.expected;
    let events: Vec<&Event> = got.iter().flat_map(|c| &c.events).collect();
    let want = expected["events"].as_array().expect("events");
    assert_eq!(
        events.len(),
        want.len(),
        "{id}: event count; got {events:#?}"
    );
    for (i, (event, want)) in events.iter().zip(want).enumerate() {
        assert_eq!(
            event.event_type,
            want["type"].as_str().expect("type"),
            "{id}: event {i} type"
        );
        assert_eq!(
            event.data_str(),
            want["data"].as_str().expect("data"),
            "{id}: event {i} data"
        );
        assert_eq!(
            event.id,
            want["lastEventId"].as_str().expect("lastEventId"),
            "{id}: event {i} id"
        );
        assert_eq!(
            event.invalid_utf8.is_some(),
            std::str::from_utf8(&event.data).is_err(),
            "{id}: event {i}"
        );
    }
    if let Some(retries) = expected["retry_values"].as_array() {
        let want: Vec<u64> = retries
            .iter()
            .map(|r| r.as_u64().expect("retry value"))
            .collect();
        let got_retries: Vec<u64> = got
            .iter()
            .flat_map(|c| c.retries.iter().map(|r| r.0))
            .collect();
        assert_eq!(got_retries, want, "{id}: retry values");
    }
    if let Some(count) = expected["comments_count"].as_u64() {
        let got_comments: usize = got.iter().map(|c| c.comments.len()).sum();
        assert_eq!(got_comments as u64, count, "{id}: comment count");
    }
    if let Some(last) = expected["final_last_event_id"].as_str() {
        assert_eq!(
            got.last().expect("a connection").last_event_id,
            last,
            "{id}: final last event ID"
        );
    }
}

#[test]
fn vectors_are_all_there() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 93);
    let mut ids: Vec<&str> = vectors.iter().map(|v| v.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 93, "vector ids are unique");
}

#[test]
fn non_event_stream_mime_types_dispatch_nothing() {
    let mut rejected = 0;
    for vector in vectors() {
        if is_event_stream(&vector.content_type) {
            continue;
        }
        rejected += 1;
        // "fail the connection": the parser never sees the body.
        let want = vector.expected["events"].as_array().expect("events");
        assert!(
            want.is_empty(),
            "{}: a failed connection dispatches nothing",
            vector.id
        );
    }
    assert_eq!(rejected, 2, "x bogus and text/x-bogus");
    assert!(is_event_stream("text/event-stream;charset=windows-1252"));
    assert!(is_event_stream("text/event-stream;"));
    assert!(is_event_stream("Text/Event-Stream"));
}

#[test]
fn whole_bodies_match_the_expected_results() {
    for vector in vectors()
        .iter()
        .filter(|v| is_event_stream(&v.content_type))
    {
        check_expected(vector, &run(vector, &whole));
    }
}

#[test]
fn one_byte_feeds_match_whole_bodies() {
    for vector in vectors()
        .iter()
        .filter(|v| is_event_stream(&v.content_type))
    {
        assert_eq!(run(vector, &bytewise), run(vector, &whole), "{}", vector.id);
    }
}

#[test]
fn upstream_chunkings_match_whole_bodies() {
    let mut tested = 0;
    for vector in vectors()
        .iter()
        .filter(|v| v.upstream_chunks.iter().any(Option::is_some))
    {
        tested += 1;
        let plan = |c: usize, body: &[u8]| match &vector.upstream_chunks[c] {
            Some(chunks) => {
                let mut at = 0;
                let pieces: Vec<Range<usize>> = chunks
                    .iter()
                    .map(|chunk| {
                        assert_eq!(
                            &body[at..at + chunk.len()],
                            chunk.as_slice(),
                            "{}: chunks",
                            vector.id
                        );
                        at += chunk.len();
                        at - chunk.len()..at
                    })
                    .collect();
                pieces
            }
            None => whole(c, body),
        };
        assert_eq!(run(vector, &plan), run(vector, &whole), "{}", vector.id);
    }
    assert!(tested >= 30, "vectors with upstream chunks: {tested}");
}

#[test]
fn every_split_offset_matches_whole_bodies() {
    for vector in vectors()
        .iter()
        .filter(|v| is_event_stream(&v.content_type))
    {
        let reference = run(vector, &whole);
        for target in 0..vector.bodies.len() {
            for k in 1..vector.bodies[target].len() {
                let plan = |c: usize, body: &[u8]| {
                    if c == target {
                        cuts(body.len(), &[k])
                    } else {
                        whole(c, body)
                    }
                };
                assert_eq!(
                    run(vector, &plan),
                    reference,
                    "{}: body {target} split at {k}",
                    vector.id
                );
            }
        }
    }
}

#[test]
fn every_pair_of_split_offsets_matches_whole_bodies_for_short_bodies() {
    let mut tested = 0;
    for vector in vectors()
        .iter()
        .filter(|v| is_event_stream(&v.content_type))
    {
        let reference = run(vector, &whole);
        for target in 0..vector.bodies.len() {
            let len = vector.bodies[target].len();
            if len > PAIR_SPLIT_MAX {
                continue;
            }
            tested += 1;
            for a in 1..len {
                for b in a..len {
                    // a == b gives an empty feed between the two pieces.
                    let plan = |c: usize, body: &[u8]| {
                        if c == target {
                            cuts(body.len(), &[a, b])
                        } else {
                            whole(c, body)
                        }
                    };
                    assert_eq!(
                        run(vector, &plan),
                        reference,
                        "{}: body {target} split at {a}, {b}",
                        vector.id
                    );
                }
            }
        }
    }
    assert!(tested >= 80, "short bodies: {tested}");
}
