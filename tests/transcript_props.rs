//! Property tests for transcripts: for any bytes and any way of splitting them into reads, the
//! transcript is the same except for arrival times, and each event's arrival time is that of the
//! read holding the byte that completed it. For generated well-formed streams, the content,
//! `[DONE]`, `finish_reason` and error events are exactly what was encoded, under any HTTP
//! framing.
//!
//! `streamcheck parse` output is likewise the same for every feed size, on the same inputs.
//!
//! Failures persist in proptest-regressions/transcript.txt and are replayed first on every run.

mod transcript_support;

use std::num::NonZeroUsize;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use streamcheck::transcript::inspect::{InspectOptions, inspect_bytes};
use streamcheck::transcript::{
    Budget, EndKind, HandoffTimes, Recording, RecordingEnd, Timings, Transcript, TranscriptOptions,
};
use transcript_support::{chunked_body, reads};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/transcript.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// One event (or comment) a daemon may send.
#[derive(Debug, Clone)]
enum Item {
    /// `{"content":…}`, the string as serde_json writes it or all-ASCII with `\u` escapes.
    Simplified(String, bool),
    /// An OpenAI chunk with `delta.content`.
    OpenAi(String, bool),
    /// An OpenAI chunk with only a role.
    Role,
    /// An OpenAI final chunk with a finish_reason.
    Final(String),
    /// `{"error":…}`.
    Error(String),
    /// `[DONE]`.
    Done,
    /// A comment line.
    Comment,
    /// Data that is not JSON.
    Text(String),
}

/// JSON string literal of `s` with every non-ASCII or special character as a `\u` escape
/// (surrogate pairs for astral characters).
fn escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.push('"');
    out
}

fn literal(s: &str, escape: bool) -> String {
    if escape {
        escaped(s)
    } else {
        serde_json::to_string(s).expect("a string")
    }
}

impl Item {
    fn data(&self) -> Option<String> {
        Some(match self {
            Item::Simplified(s, e) => format!("{{\"content\":{}}}", literal(s, *e)),
            Item::OpenAi(s, e) => format!(
                "{{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\
                 \"finish_reason\":null}}]}}",
                literal(s, *e)
            ),
            Item::Role => r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#.to_owned(),
            Item::Final(r) => format!(
                "{{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":{}}}]}}",
                literal(r, false)
            ),
            Item::Error(m) => format!("{{\"error\":{{\"message\":{}}}}}", literal(m, false)),
            Item::Done => "[DONE]".to_owned(),
            Item::Text(t) => t.clone(),
            Item::Comment => return None,
        })
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z !.,]{0,8}",
        prop::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect()),
        prop::sample::select(vec!["é", "😀", "中文", "\u{2028}", "\"\\", "\n", "a\u{0}b"])
            .prop_map(str::to_owned),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (text(), any::<bool>()).prop_map(|(s, e)| Item::Simplified(s, e)),
        6 => (text(), any::<bool>()).prop_map(|(s, e)| Item::OpenAi(s, e)),
        1 => Just(Item::Role),
        1 => "[a-z_]{1,8}".prop_map(Item::Final),
        1 => text().prop_map(Item::Error),
        2 => Just(Item::Done),
        1 => Just(Item::Comment),
        // Not JSON: starts with a letter, one line.
        1 => "[a-z][a-z ]{0,8}".prop_map(Item::Text),
    ]
}

/// The items as an event stream, each line ended by one of LF, CR, CRLF.
fn encode(items: &[Item], line_ends: &[&str]) -> Vec<u8> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let eol = line_ends[i % line_ends.len()];
        match item.data() {
            Some(data) => out.push_str(&format!("data: {data}{eol}{eol}")),
            None => out.push_str(&format!(": keep-alive{eol}")),
        }
    }
    out.into_bytes()
}

/// How the body is framed on the wire.
#[derive(Debug, Clone)]
enum Framing {
    UntilClose,
    ContentLength,
    Chunked(Vec<usize>),
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::UntilClose),
        Just(Framing::ContentLength),
        prop::collection::vec(1usize..40, 1..6).prop_map(Framing::Chunked),
    ]
}

fn response(body: &[u8], framing: &Framing) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n".to_vec();
    match framing {
        Framing::UntilClose => {
            out.extend(b"\r\n");
            out.extend(body);
        }
        Framing::ContentLength => {
            out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend(body);
        }
        Framing::Chunked(sizes) => {
            out.extend(b"Transfer-Encoding: chunked\r\n\r\n");
            out.extend(chunked_body(body, sizes));
        }
    }
    out
}

/// `bytes` received in the reads that `cuts` make, read `k` at `1000 * (k + 1)`.
fn record(bytes: &[u8], cuts: &[usize], kind: EndKind) -> (Recording, Vec<usize>) {
    let (chunks, bounds) = reads(bytes, cuts, 1_000);
    let recording = Recording {
        handoff: HandoffTimes {
            connect_start_ns: 0,
            connected_ns: 1,
            sent_ns: 2,
        },
        chunks,
        end: RecordingEnd {
            at_ns: u64::MAX,
            kind,
        },
    };
    (recording, bounds)
}

/// The transcript without anything that depends on how the bytes were split into reads.
fn without_arrival(mut t: Transcript) -> Transcript {
    for event in &mut t.events {
        event.chunk = 0;
        event.received_ns = 0;
    }
    for head in t.http.head.iter_mut().chain(t.http.interim.iter_mut()) {
        head.chunk = 0;
        head.received_ns = 0;
    }
    t.timings = Timings::default();
    t.chunks = 0;
    t
}

/// Checks split invariance for `bytes` cut at `cuts`, and that every event's read is the one
/// holding its last byte. Returns the one-read transcript.
fn check_split(bytes: &[u8], cuts: &[usize], kind: EndKind) -> Result<Transcript, TestCaseError> {
    check_split_with(bytes, cuts, kind, &TranscriptOptions::default())
}

/// [`check_split`] with `options` (limits and a budget).
fn check_split_with(
    bytes: &[u8],
    cuts: &[usize],
    kind: EndKind,
    options: &TranscriptOptions,
) -> Result<Transcript, TestCaseError> {
    let (whole, _) = record(bytes, &[], kind.clone());
    let whole = Transcript::from_recording_with(&whole, options);
    let (split, bounds) = record(bytes, cuts, kind);
    let split = Transcript::from_recording_with(&split, options);
    for event in &split.events {
        let last = event.wire_end as usize - 1;
        prop_assert!(matches!(bytes.get(last), Some(b'\r' | b'\n')), "{event:?}");
        let chunk = bounds.partition_point(|&b| b <= last) - 1;
        prop_assert_eq!(event.chunk, chunk);
        prop_assert_eq!(event.received_ns, 1_000 * (chunk as u64 + 1));
    }
    let whole_meaning = without_arrival(whole.clone());
    prop_assert_eq!(without_arrival(split), whole_meaning);
    Ok(whole)
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => prop::collection::vec(0..=len, 0..16),
        1 => Just((1..len).collect()),
    ]
}

/// Well-formed streams, with the framing and the split.
fn case() -> impl Strategy<Value = (Vec<Item>, Vec<u8>, Vec<usize>)> {
    (
        prop::collection::vec(item(), 0..12),
        prop::collection::vec(prop::sample::select(vec!["\n", "\r", "\r\n"]), 1..4),
        framing(),
    )
        .prop_flat_map(|(items, line_ends, framing)| {
            let bytes = response(&encode(&items, &line_ends), &framing);
            let len = bytes.len();
            (Just(items), Just(bytes), cuts(len))
        })
}

/// Any bytes: a valid head and framing around an arbitrary event stream, with some bytes
/// overwritten (so heads and chunk framing break too), or no head at all.
fn wild_case() -> impl Strategy<Value = (Vec<u8>, Vec<usize>, bool)> {
    (
        streamcheck::prop::sse_stream(),
        framing(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(body, framing, edits, with_head, timeout)| {
            let mut bytes = if with_head {
                response(&body, &framing)
            } else {
                body
            };
            if !bytes.is_empty() {
                for (at, byte) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            let len = bytes.len();
            (Just(bytes), cuts(len), Just(timeout))
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn well_formed_streams_mean_what_was_encoded((items, bytes, cuts) in case()) {
        let t = check_split(&bytes, &cuts, EndKind::PeerClosed)?;
        let events: Vec<&Item> = items.iter().filter(|i| !matches!(i, Item::Comment)).collect();
        prop_assert_eq!(t.events.len(), events.len());
        let content: String = events
            .iter()
            .filter_map(|i| match i {
                Item::Simplified(s, _) | Item::OpenAi(s, _) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(t.content_str(), content);
        prop_assert!(t.is_valid_utf8());
        prop_assert_eq!(t.done_index(), events.iter().position(|i| matches!(i, Item::Done)));
        let first_finish = events.iter().find_map(|i| match i {
            Item::Final(r) => Some(r.as_str()),
            _ => None,
        });
        prop_assert_eq!(t.finish_reason(), first_finish);
        let errors: Vec<&str> = events
            .iter()
            .filter_map(|i| match i {
                Item::Error(m) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        let got: Vec<&str> = t.error_events().iter().map(|e| e.message.as_str()).collect();
        prop_assert_eq!(got, errors);
        let texts = events.iter().filter(|i| matches!(i, Item::Text(_))).count();
        prop_assert_eq!(t.other_events().len(), texts);
        prop_assert!(t.interpretation.anomalies.is_empty());
        prop_assert!(t.body_ended_cleanly(), "{:?}", t.http);
    }

    #[test]
    fn any_bytes_give_the_same_transcript_for_any_split((bytes, cuts, timeout) in wild_case()) {
        let kind = if timeout { EndKind::Timeout } else { EndKind::PeerClosed };
        check_split(&bytes, &cuts, kind)?;
    }

    // A budget cuts every split at the same byte and the same event, and settles the stream
    // for the same cause.
    #[test]
    fn a_budget_settles_every_split_the_same_way(
        (bytes, cuts, timeout) in wild_case(),
        max_bytes in 0u64..400,
        max_events in 0u64..6,
    ) {
        let kind = if timeout { EndKind::Timeout } else { EndKind::PeerClosed };
        let options = TranscriptOptions {
            budget: Budget { max_bytes, max_events },
            ..TranscriptOptions::default()
        };
        let t = check_split_with(&bytes, &cuts, kind, &options)?;
        prop_assert!(t.events.len() as u64 <= max_events);
        prop_assert_eq!(t.received_bytes, bytes.len() as u64);
        if bytes.len() as u64 > max_bytes {
            prop_assert!(t.settled.is_some(), "{} bytes over a budget of {}", bytes.len(), max_bytes);
        }
    }

    // The case's last value, any bool, picks whether the input is read as an HTTP response.
    #[test]
    fn parse_output_is_the_same_for_every_feed_size(
        (bytes, _, http) in wild_case(),
        sizes in prop::collection::vec(1usize..300, 1..4),
    ) {
        let options = |feed_size: Option<usize>| InspectOptions {
            http,
            feed_size: feed_size.and_then(NonZeroUsize::new),
            ..InspectOptions::default()
        };
        let whole = inspect_bytes(&bytes, &options(None)).expect("writing to a Vec");
        for size in sizes.into_iter().chain([1]) {
            let split = inspect_bytes(&bytes, &options(Some(size))).expect("writing to a Vec");
            prop_assert_eq!(
                String::from_utf8_lossy(&split),
                String::from_utf8_lossy(&whole),
                "--feed-size {}",
                size
            );
        }
    }
}
