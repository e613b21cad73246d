//! When things arrived and how streams ended: arrival times mapped through HTTP framing,
//! timings, body endings (clean, truncated, unfinished, no head), and the relay-latency join.

mod transcript_support;

use streamcheck::http1;
use streamcheck::transcript::{
    BodyEnd, BodyFraming, EndKind, HandoffTimes, Recording, RecordingEnd, Transcript,
    TranscriptBuilder, UpstreamMark, upstream_marks,
};
use transcript_support::{chunked_body, reads};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
const HANDOFF: HandoffTimes = HandoffTimes {
    connect_start_ns: 1_000,
    connected_ns: 1_400,
    sent_ns: 2_000,
};

/// `bytes` cut at `cuts`, the k-th piece received at `10_000 * (k + 1)`.
fn recording(bytes: &[u8], cuts: &[usize], kind: EndKind) -> Recording {
    let (chunks, _) = reads(bytes, cuts, 10_000);
    Recording {
        handoff: HANDOFF,
        chunks,
        end: RecordingEnd {
            at_ns: 1_000_000,
            kind,
        },
    }
}

fn closed(bytes: &[u8], cuts: &[usize]) -> Transcript {
    Transcript::from_recording(&recording(bytes, cuts, EndKind::PeerClosed))
}

/// A chunked response whose HTTP chunks cut across the events.
fn chunked_sse() -> Vec<u8> {
    let body: &[u8] =
        b"data: {\"content\":\"Hel\"}\n\ndata: {\"content\":\"lo\"}\r\n\r\ndata: [DONE]\n\n";
    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    out.extend(chunked_body(body, &[9]));
    out
}

#[test]
fn arrival_times_map_through_chunked_framing_for_every_split() {
    let bytes = chunked_sse();
    let whole = closed(&bytes, &[]);
    assert_eq!(whole.content_str(), "Hello");
    assert!(whole.done());
    assert_eq!(whole.http.framing, Some(BodyFraming::Chunked));
    assert_eq!(whole.http.body, BodyEnd::Complete);
    for cut in 1..bytes.len() {
        let t = closed(&bytes, &[cut]);
        assert_eq!(t.events.len(), 3);
        for (i, event) in t.events.iter().enumerate() {
            let last = event.wire_end as usize - 1;
            // The byte completing an event is the CR or LF of its blank line, on the wire.
            assert!(matches!(bytes[last], b'\r' | b'\n'), "event {i}, cut {cut}");
            let chunk = usize::from(last >= cut);
            assert_eq!(event.chunk, chunk, "event {i}, cut {cut}");
            assert_eq!(event.received_ns, 10_000 * (chunk as u64 + 1));
            // Offsets do not depend on the split.
            assert_eq!(event.wire_start, whole.events[i].wire_start);
            assert_eq!(event.wire_end, whole.events[i].wire_end);
        }
        // The head arrives with the chunk holding its last byte.
        let head = t.head().expect("a head");
        assert_eq!(head.chunk, usize::from(head.end as usize > cut));
    }
}

#[test]
fn event_offsets_on_the_wire_skip_chunk_framing() {
    let bytes = chunked_sse();
    let t = closed(&bytes, &[]);
    let first = &t.events[0];
    // The first event's block starts at the first chunk's data, after "9\r\n".
    let head_len = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".len() as u64;
    assert_eq!((first.start, first.end), (0, 25));
    assert_eq!(first.wire_start, head_len + 3);
    // 25 body bytes span chunks of 9: two full chunks (9 + 5 framing bytes each), then 7 more.
    assert_eq!(first.wire_end, head_len + 3 + 9 + 5 + 9 + 5 + 7);
    assert_eq!(bytes[first.wire_end as usize - 1], b'\n');
}

#[test]
fn a_crlf_blank_line_completes_the_event_at_the_cr() {
    let body = b"data: x\r\n\r\n";
    let bytes = [HEAD, &body[..]].concat();
    // The blank line's CR ends the first read, its LF starts the second.
    let cut = bytes.len() - 1;
    let t = closed(&bytes, &[HEAD.len(), cut]);
    assert_eq!(t.events[0].chunk, 1);
    assert_eq!(t.events[0].received_ns, 20_000);
    assert_eq!(t.events[0].end, 10);
}

#[test]
fn timings_run_from_sendmsg_done() {
    let body = b"data: {\"content\":\"a\"}\n\n: keep-alive\n\ndata: {\"content\":\"b\"}\n\ndata: [DONE]\n\n";
    let bytes = [HEAD, &body[..]].concat();
    // Reads: part of the head, the rest of it, the first event, the comment and the second
    // event, then [DONE].
    let first = HEAD.len() + 23;
    let t = closed(&bytes, &[10, HEAD.len(), first, first + 14 + 23]);
    let timings = &t.timings;
    assert_eq!(timings.handoff_ns, 1_000);
    assert_eq!(timings.connect_ns, 400);
    assert_eq!(timings.first_byte_ns, Some(8_000));
    assert_eq!(timings.head_ns, Some(18_000));
    assert_eq!(timings.first_event_ns, Some(28_000));
    assert_eq!(timings.first_content_ns, Some(28_000));
    assert_eq!(timings.done_ns, Some(48_000));
    assert_eq!(timings.gaps_ns, [10_000, 10_000]);
    assert_eq!(timings.max_gap_ns(), Some(10_000));
    assert_eq!(timings.total_ns, 998_000);
    assert_eq!(t.sse.comments, 1);
    assert_eq!(t.chunks, 5);
    assert_eq!(t.received_bytes, bytes.len() as u64);

    let verdict = t.verdict_timings(None);
    assert_eq!(verdict.handoff_ns, Some(1_000));
    assert_eq!(verdict.first_event_ns, Some(28_000));
    assert_eq!(verdict.gaps.map(|g| g.max_ns), Some(10_000));
    assert_eq!(verdict.relay_latency, None);
}

#[test]
fn a_timeout_with_partial_data_keeps_what_came() {
    let bytes = [
        HEAD,
        b"data: {\"content\":\"Hel\"}\n\ndata: {\"content\":\"lo",
    ]
    .concat();
    let t = Transcript::from_recording(&recording(&bytes, &[HEAD.len()], EndKind::Timeout));
    assert_eq!(t.content_str(), "Hel");
    assert_eq!(t.http.body, BodyEnd::Unfinished);
    assert!(!t.body_ended_cleanly());
    assert_eq!(t.http.error, None);
    let cut = t.sse.unterminated.expect("an event was cut");
    assert_eq!((cut.start, cut.end, cut.partial_line), (25, 45, true));
    assert!(!t.done());
    assert_eq!(t.timings.total_ns, 998_000);
}

#[test]
fn a_head_only_stream() {
    let t = closed(HEAD, &[]);
    assert_eq!(t.status(), Some(200));
    assert_eq!(
        t.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert!(t.head().expect("head").is_event_stream());
    assert_eq!(t.http.body, BodyEnd::Closed);
    assert!(t.body_ended_cleanly());
    assert!(t.events.is_empty());
    assert_eq!(t.timings.head_ns, Some(8_000));
    assert_eq!(t.timings.first_event_ns, None);
    assert!(t.timings.gaps_ns.is_empty());

    // The same head, but the daemon never closes.
    let t = Transcript::from_recording(&recording(HEAD, &[], EndKind::Timeout));
    assert_eq!(t.http.body, BodyEnd::Unfinished);
}

#[test]
fn a_zero_byte_stream() {
    let t = Transcript::from_recording(&Recording {
        handoff: HANDOFF,
        chunks: Vec::new(),
        end: RecordingEnd {
            at_ns: 3_000,
            kind: EndKind::PeerClosed,
        },
    });
    assert_eq!(t.head(), None);
    assert_eq!(t.http.body, BodyEnd::NoHead);
    assert_eq!(
        t.http.error,
        Some(http1::Error::Truncated {
            offset: 0,
            stage: http1::Stage::Head
        })
    );
    assert_eq!(t.received_bytes, 0);
    assert_eq!(t.timings.first_byte_ns, None);
    assert_eq!(t.timings.total_ns, 1_000);
    assert!(t.content_bytes().is_empty() && !t.done());

    // Nothing, and the connection left open: no error, since nothing ended.
    let t = Transcript::from_recording(&Recording {
        handoff: HANDOFF,
        chunks: Vec::new(),
        end: RecordingEnd {
            at_ns: 3_000,
            kind: EndKind::Timeout,
        },
    });
    assert_eq!((t.http.body, t.http.error.clone()), (BodyEnd::NoHead, None));
}

#[test]
fn framed_bodies_complete_truncate_and_overrun() {
    let body = b"data: {\"content\":\"x\"}\n\n";
    let cl = |n: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();

    // Complete by Content-Length, even though the daemon then left the connection open.
    let bytes = [cl(body.len()), body.to_vec()].concat();
    let t = Transcript::from_recording(&recording(&bytes, &[], EndKind::Timeout));
    assert_eq!(t.http.body, BodyEnd::Complete);
    assert_eq!(t.http.framing, Some(BodyFraming::ContentLength(23)));
    assert_eq!(t.http.body_bytes, 23);

    // Closed short of the Content-Length.
    let bytes = [cl(100), body.to_vec()].concat();
    let t = closed(&bytes, &[]);
    assert_eq!(t.http.body, BodyEnd::Truncated);
    assert!(matches!(
        t.http.error,
        Some(http1::Error::Truncated {
            stage: http1::Stage::ContentLength { remaining: 77 },
            ..
        })
    ));
    assert_eq!(t.content_str(), "x");

    // Chunked, closed inside a chunk.
    let bytes = chunked_sse();
    let t = closed(&bytes[..bytes.len() - 12], &[]);
    assert_eq!(t.http.body, BodyEnd::Truncated);

    // More bytes than the Content-Length.
    let message_len = cl(body.len()).len() + body.len();
    let bytes = [cl(body.len()), body.to_vec(), b"data: late\n\n".to_vec()].concat();
    let t = closed(&bytes, &[40, message_len + 3]);
    let excess = t.http.excess.as_ref().expect("excess bytes");
    assert_eq!((excess.offset, excess.len), (message_len as u64, 12));
    assert_eq!(excess.first, b"data: late\n\n");
    assert_eq!(t.http.body, BodyEnd::Complete);
    assert_eq!(t.events.len(), 1);
}

#[test]
fn a_malformed_head_and_a_read_error() {
    let t = closed(b"data: {\"content\":\"x\"}\n\n", &[]);
    assert_eq!(t.http.body, BodyEnd::Malformed);
    assert!(matches!(
        t.http.error,
        Some(http1::Error::MalformedHead { offset: 0, .. })
    ));
    assert!(t.events.is_empty());

    let bytes = [HEAD, b"data: {\"content\":\"x\"}\n\n"].concat();
    let t = Transcript::from_recording(&recording(
        &bytes,
        &[],
        EndKind::Error("connection reset by peer".into()),
    ));
    assert_eq!(t.http.body, BodyEnd::Unfinished);
    assert_eq!(t.content_str(), "x");
}

#[test]
fn a_builder_fed_chunk_by_chunk_equals_from_recording() {
    let bytes = chunked_sse();
    let rec = recording(&bytes, &[7, 50, 51, 90], EndKind::PeerClosed);
    let mut builder = TranscriptBuilder::new(rec.handoff);
    for chunk in &rec.chunks {
        builder.push(chunk.ts_ns, &chunk.bytes);
    }
    assert_eq!(builder.received_bytes(), bytes.len() as u64);
    assert_eq!(builder.events().len(), 3);
    assert_eq!(
        builder.finish(rec.end.clone()),
        Transcript::from_recording(&rec)
    );
}

// ---- relay latency --------------------------------------------------------------------------------

fn openai(content: &str) -> String {
    format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
        serde_json::to_string(content).expect("a string")
    )
}

#[test]
fn upstream_marks_count_content_of_completed_events() {
    let upstream = [openai("Hel"), openai("lo"), "data: [DONE]\n\n".to_owned()].concat();
    let first_end = openai("Hel").len() as u64;
    // Writes: half of the first event, the rest of it and all of the second, then [DONE].
    let writes = [
        (100, first_end / 2),
        (200, upstream.len() as u64 - 14),
        (300, upstream.len() as u64),
    ];
    let up = upstream_marks(upstream.as_bytes(), writes);
    assert_eq!(up.content, b"Hello");
    assert_eq!(
        up.marks,
        [
            UpstreamMark {
                ts_ns: 100,
                content_bytes: 0
            },
            UpstreamMark {
                ts_ns: 200,
                content_bytes: 5
            },
            UpstreamMark {
                ts_ns: 300,
                content_bytes: 5
            },
        ]
    );
}

#[test]
fn relay_latency_joins_every_content_byte_once() {
    // Upstream wrote "He" at 1000, "llo" at 2000, " wor" at 3000, "ld" at 4000.
    let marks = [(1_000, 2), (2_000, 5), (3_000, 9), (3_500, 9), (4_000, 11)].map(
        |(ts_ns, content_bytes)| UpstreamMark {
            ts_ns,
            content_bytes,
        },
    );
    // The daemon coalesced the first two writes, then split the third across two events, and
    // sent the last one twice over (content the upstream never sent).
    let body = [
        "data: {\"content\":\"Hello\"}\n\n",
        "data: {\"content\":\" w\"}\n\n",
        "data: {\"content\":\"or\"}\n\n",
        "data: {\"content\":\"ldld\"}\n\n",
    ];
    let mut bytes = HEAD.to_vec();
    let mut cuts = vec![];
    for piece in body {
        cuts.push(bytes.len());
        bytes.extend(piece.as_bytes());
    }
    // Reads at 10_000, 20_000, …: one per event (the head in the first).
    let t = closed(&bytes, &cuts[1..]);
    assert_eq!(t.content_str(), "Hello worldld");
    let relay = t.relay_latency(&marks);
    let got: Vec<(usize, usize, u64, u64, i64)> = relay
        .samples
        .iter()
        .map(|s| (s.event, s.write, s.start, s.end, s.latency_ns))
        .collect();
    assert_eq!(
        got,
        [
            (0, 0, 0, 2, 9_000),
            (0, 1, 2, 5, 8_000),
            (1, 2, 5, 7, 17_000),
            (2, 2, 7, 9, 27_000),
            (3, 4, 9, 11, 36_000),
        ]
    );
    assert_eq!(relay.unmatched_bytes, 2);
    assert_eq!(relay.undelivered_bytes, 0);
    assert_eq!(relay.event_latency_ns(0), Some(9_000));
    assert_eq!(relay.latencies_ns().count(), 5);

    let verdict = t.verdict_timings(Some(&relay));
    let spread = verdict.relay_latency.expect("samples");
    assert_eq!(
        (spread.count, spread.min_ns, spread.max_ns),
        (5, 8_000, 36_000)
    );
}

#[test]
fn relay_latency_reports_what_never_arrived_and_negative_latency() {
    let marks = [UpstreamMark {
        ts_ns: 50_000,
        content_bytes: 10,
    }];
    let bytes = [HEAD, b"data: {\"content\":\"abc\"}\n\n"].concat();
    let t = closed(&bytes, &[]);
    let relay = t.relay_latency(&marks);
    assert_eq!(relay.undelivered_bytes, 7);
    assert_eq!(relay.samples.len(), 1);
    // Received at 10_000, "written" at 50_000: the contents cannot correspond.
    assert_eq!(relay.samples[0].latency_ns, -40_000);
    assert_eq!(
        t.verdict_timings(Some(&relay))
            .relay_latency
            .map(|s| s.max_ns),
        Some(0)
    );
    assert_eq!(t.relay_latency(&[]).unmatched_bytes, 3);
}

#[test]
fn an_sse_limit_stops_the_event_stream_and_is_reported() {
    use streamcheck::sse;
    use streamcheck::transcript::TranscriptOptions;
    let bytes = [
        HEAD,
        b"data: {\"content\":\"a\"}\n\ndata: {\"content\":\"far too long\"}\n\n\xFF",
    ]
    .concat();
    let options = TranscriptOptions {
        sse_limits: sse::Limits::default().with_max_line(24),
        ..TranscriptOptions::default()
    };
    let rec = recording(&bytes, &[HEAD.len() + 3], EndKind::PeerClosed);
    let t = Transcript::from_recording_with(&rec, &options);
    assert_eq!(t.content_str(), "a");
    assert_eq!(
        t.sse.error,
        Some(sse::Error::LineTooLong {
            start: 23,
            limit: 24
        })
    );
    // The UTF-8 scan still covers the whole body, and the body itself ended cleanly.
    assert_eq!(t.sse.invalid_utf8, [57]);
    assert_eq!(t.http.body, BodyEnd::Closed);
    assert_eq!(t.sse.unterminated, None);
}

#[test]
fn interim_heads_come_before_the_final_one() {
    let bytes = [
        &b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"[..],
        HEAD,
        b"data: {\"content\":\"x\"}\n\n",
    ]
    .concat();
    let t = closed(&bytes, &[20]);
    assert_eq!(t.http.interim.len(), 1);
    assert_eq!(t.http.interim[0].status, 103);
    assert_eq!(t.http.interim[0].chunk, 1);
    assert_eq!(t.status(), Some(200));
    assert_eq!(t.head().map(|h| h.offset), Some(48));
    assert_eq!(t.content_str(), "x");
}
