//! What a transcript makes of event payloads: content from both shapes, error events, `[DONE]`
//! and what follows it, `finish_reason`, data of no known shape, invalid UTF-8, lone surrogates.

use serde_json::json;
use streamcheck::transcript::{
    Anomaly, Chunk, EndKind, EventKind, HandoffTimes, OtherReason, Recording, RecordingEnd, Shape,
    Transcript,
};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// The transcript of a daemon that sent `HEAD`, then `body` in the given pieces (one ms apart),
/// then closed.
fn transcript_in(pieces: &[&[u8]]) -> Transcript {
    let mut chunks = vec![Chunk::new(1_000_000, HEAD)];
    for (i, piece) in pieces.iter().enumerate() {
        chunks.push(Chunk::new(2_000_000 + i as u64 * 1_000_000, *piece));
    }
    Transcript::from_recording(&Recording {
        handoff: HandoffTimes {
            connect_start_ns: 0,
            connected_ns: 10,
            sent_ns: 100,
        },
        chunks,
        end: RecordingEnd {
            at_ns: 100_000_000,
            kind: EndKind::PeerClosed,
        },
    })
}

fn transcript(body: &[u8]) -> Transcript {
    transcript_in(&[body])
}

fn kinds(t: &Transcript) -> Vec<EventKind> {
    t.events.iter().map(|e| e.kind).collect()
}

fn pieces(t: &Transcript) -> Vec<&[u8]> {
    t.content_pieces().map(|(_, bytes)| bytes).collect()
}

#[test]
fn simplified_content_with_escapes_spacing_and_surrogate_pairs() {
    let t = transcript(
        b"data: {\"content\":\"Hello\"}\n\n\
          data: { \"content\" : \" w\\u00f6rld \\ud83d\\ude00 \\\"q\\\"\\n\" }\n\n\
          data:{\"content\":\"\xE4\xB8\xAD\"}\r\n\r\n",
    );
    assert_eq!(t.content_str(), "Hello wörld 😀 \"q\"\n中");
    assert_eq!(
        pieces(&t),
        [
            "Hello".as_bytes(),
            " wörld 😀 \"q\"\n".as_bytes(),
            "中".as_bytes()
        ]
    );
    assert_eq!(kinds(&t), [EventKind::Content; 3]);
    assert!(
        t.interpretation
            .pieces
            .iter()
            .all(|p| p.shape == Shape::Simplified)
    );
    assert_eq!(t.interpretation.simplified_events, 3);
    assert!(!t.done());
    assert!(t.is_valid_utf8() && t.content_is_valid_utf8());
    assert!(t.interpretation.anomalies.is_empty() && t.other_events().is_empty());
}

#[test]
fn openai_chunks_role_content_final_usage_and_done() {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":0,\
             \"model\":\"mock-model\",\"choices\":[{{\"index\":0,\"delta\":{delta},\
             \"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    // The role-only events come in one read, the rest in a later one.
    let roles = [
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chunk(r#"{"role":"assistant"}"#, "null"),
    ]
    .concat();
    let rest = [
        chunk(r#"{"content":"Hello"}"#, "null"),
        chunk(r#"{"content":" world"}"#, "null"),
        chunk("{}", r#""stop""#),
        "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n".to_owned(),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let t = transcript_in(&[roles.as_bytes(), rest.as_bytes()]);
    assert_eq!(
        kinds(&t),
        [
            EventKind::Content,
            EventKind::Control,
            EventKind::Content,
            EventKind::Content,
            EventKind::Control,
            EventKind::Control,
            EventKind::Done,
        ]
    );
    assert_eq!(t.content_str(), "Hello world");
    assert_eq!(pieces(&t), [&b""[..], b"Hello", b" world"]);
    assert_eq!(t.finish_reason(), Some("stop"));
    assert_eq!(t.interpretation.finish_reasons[0].event, 4);
    assert_eq!(t.interpretation.openai_events, 6);
    assert_eq!(t.done_index(), Some(6));
    assert!(t.events_after_done().is_empty());
    // The first content is the first non-empty piece (event 2, second read), not the empty
    // piece of event 0.
    assert_eq!(t.events[1].chunk, 1);
    assert_eq!(t.events[2].chunk, 2);
    assert_eq!(t.timings.first_event_ns, Some(2_000_000 - 100));
    assert_eq!(t.timings.first_content_ns, Some(3_000_000 - 100));
}

#[test]
fn error_events_in_every_form() {
    let t = transcript(
        b"data: {\"error\":\"upstream failed\"}\n\n\
          data: {\"error\":{\"message\":\"rate limited\",\"type\":\"rate_limit\",\"code\":429}}\n\n\
          data: {\"error\":{\"code\":1}}\n\n\
          event: error\ndata: boom\n\n\
          event: error\ndata: {\"detail\":\"x\"}\n\n\
          data: {\"error\":null,\"content\":\"ok\"}\n\n",
    );
    assert_eq!(
        kinds(&t),
        [
            EventKind::Error,
            EventKind::Error,
            EventKind::Error,
            EventKind::Error,
            EventKind::Error,
            EventKind::Content,
        ]
    );
    let messages: Vec<&str> = t
        .error_events()
        .iter()
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "upstream failed",
            "rate limited",
            r#"{"code":1}"#,
            "boom",
            r#"{"detail":"x"}"#,
        ]
    );
    assert_eq!(t.error_events()[1].error["code"], 429);
    assert_eq!(t.error_events()[3].error, serde_json::Value::Null);
    assert_eq!(t.error_events()[3].event, 3);
    assert_eq!(t.content_str(), "ok");
}

#[test]
fn events_after_done_are_reported_and_their_content_still_counted() {
    let t = transcript(
        b"data: {\"content\":\"a\"}\n\ndata: [DONE]\n\n\
          data: {\"content\":\"b\"}\n\ndata: [DONE]\n\n",
    );
    assert!(t.done());
    assert_eq!(t.done_index(), Some(1));
    assert_eq!(t.interpretation.done_count, 2);
    let after: Vec<EventKind> = t.events_after_done().iter().map(|e| e.kind).collect();
    assert_eq!(after, [EventKind::Content, EventKind::Done]);
    assert_eq!(t.content_str(), "ab");
    // Only exactly `[DONE]` is the marker.
    let t = transcript(b"data:  [DONE]\n\ndata: [DONE] \n\n");
    assert!(!t.done());
    assert_eq!(t.other_events().len(), 2);
}

#[test]
fn finish_reason_from_both_shapes_first_one_wins() {
    let t = transcript(
        b"data: {\"content\":\"x\",\"finish_reason\":null}\n\n\
          data: {\"finish_reason\":\"length\"}\n\n\
          data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
          data: {\"finish_reason\":7}\n\n",
    );
    assert_eq!(t.finish_reason(), Some("length"));
    let all: Vec<(usize, &str)> = t
        .interpretation
        .finish_reasons
        .iter()
        .map(|f| (f.event, f.reason.as_str()))
        .collect();
    assert_eq!(all, [(1, "length"), (2, "stop")]);
    assert_eq!(
        kinds(&t),
        [
            EventKind::Content,
            EventKind::Control,
            EventKind::Control,
            EventKind::Control
        ]
    );
    assert_eq!(
        t.interpretation.anomalies,
        [Anomaly::FinishReasonNotString { event: 3 }]
    );
    assert_eq!(
        transcript(b"data: {\"content\":\"x\"}\n\n").finish_reason(),
        None
    );
}

#[test]
fn a_character_split_across_events_keeps_its_bytes_and_is_flagged() {
    // "€" is E2 82 AC; the daemon cut it between two events, and the reads cut it again.
    let t = transcript_in(&[
        b"data: {\"content\":\"a\xE2",
        b"\x82\"}\n\ndata: {\"content\":\"\xAC",
        b"b\"}\n\n",
    ]);
    assert_eq!(t.content_bytes(), "a€b".as_bytes());
    assert_eq!(pieces(&t), [&b"a\xE2\x82"[..], b"\xACb"]);
    assert_eq!(t.browser_content(), "a\u{FFFD}\u{FFFD}b");
    assert!(!t.is_valid_utf8());
    assert!(t.content_is_valid_utf8());
    assert_eq!(t.sse.invalid_utf8_count, 2);
    assert_eq!(t.sse.invalid_utf8, [19, 43]);
    assert_eq!(t.events[0].invalid_utf8, Some(13));
    assert_eq!(kinds(&t), [EventKind::Content; 2]);

    // A character cut only by the reads is no problem at all.
    let t = transcript_in(&[b"data: {\"content\":\"\xE2\x82", b"\xAC\"}\n\n"]);
    assert_eq!(t.content_str(), "€");
    assert!(t.is_valid_utf8());
    assert_eq!(t.events[0].invalid_utf8, None);
}

#[test]
fn data_of_no_known_shape_is_counted_and_kept() {
    let t = transcript(
        b"data: hello\n\ndata: {\"foo\":1}\n\ndata: 42\n\ndata: [1,2]\n\n\
          data: {\"content\":1}\n\ndata: {\"choices\":{}}\n\ndata: {\"content\":\n\n",
    );
    let reasons: Vec<(usize, bool)> = t
        .other_events()
        .iter()
        .map(|o| (o.event, matches!(o.reason, OtherReason::NotJson { .. })))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, true),
            (1, false),
            (2, false),
            (3, false),
            (5, false),
            (6, true)
        ]
    );
    assert_eq!(t.events[0].data, b"hello");
    assert_eq!(t.events[4].kind, EventKind::Control);
    assert_eq!(
        t.interpretation.anomalies,
        [
            Anomaly::ContentNotString { event: 4 },
            Anomaly::ChoicesNotArray { event: 5 }
        ]
    );
    assert!(t.content_bytes().is_empty());
    let OtherReason::NotJson { message } = &t.other_events()[0].reason else {
        unreachable!("checked above")
    };
    assert!(message.contains("line 1 column 1"), "{message}");
}

#[test]
fn a_lone_surrogate_is_read_as_replacement_character_and_reported() {
    let t = transcript(
        b"data: {\"content\":\"a\\ud800b\"}\n\n\
          data: {\"content\":\"\\udc00\\ud83d\\ude00\"}\n\n",
    );
    assert_eq!(t.content_str(), "a\u{FFFD}b\u{FFFD}😀");
    assert_eq!(
        t.interpretation.anomalies,
        [
            Anomaly::LoneSurrogate {
                event: 0,
                offset: 13
            },
            Anomaly::LoneSurrogate {
                event: 1,
                offset: 12
            }
        ]
    );
    assert_eq!(kinds(&t), [EventKind::Content; 2]);
    // Lone surrogate and invalid UTF-8 in one event: the raw bytes are kept, the escape replaced.
    let t = transcript(b"data: {\"content\":\"\\ud800\xFF\"}\n\n");
    assert_eq!(t.content_bytes(), b"\xEF\xBF\xBD\xFF");
}

#[test]
fn event_types_other_than_message_are_interpreted_too() {
    let t = transcript(b"event: delta\ndata: {\"content\":\"x\"}\n\n");
    assert_eq!(t.events[0].event_type, "delta");
    assert_eq!(t.content_str(), "x");
}

#[test]
fn transcripts_serialise_with_bytes_as_text_or_hex() {
    let t = transcript(b"data: {\"content\":\"ok\"}\n\ndata: \xFF\n\n");
    let v = serde_json::to_value(&t).expect("serialisable");
    assert_eq!(v["events"][0]["data"], r#"{"content":"ok"}"#);
    assert_eq!(
        v["events"][1]["data"],
        json!({"hex": "ff", "text": "\u{FFFD}"})
    );
    assert_eq!(v["events"][1]["kind"], "other");
    assert_eq!(v["interpretation"]["content"], "ok");
    assert_eq!(v["http"]["head"]["status"], 200);
    assert_eq!(
        v["http"]["head"]["headers"],
        json!([["Content-Type", "text/event-stream"]])
    );
    assert_eq!(v["http"]["body"], "closed");
    assert_eq!(v["http"]["framing"], json!({"kind": "until_close"}));
    assert_eq!(
        v["end"],
        json!({"at_ns": 100_000_000, "kind": "peer_closed"})
    );
    assert_eq!(v["sse"]["invalid_utf8"], json!([30]));
}

#[test]
fn a_read_error_serialises_with_its_message() {
    let end = RecordingEnd {
        at_ns: 5,
        kind: EndKind::Error("connection reset by peer".to_owned()),
    };
    assert_eq!(
        serde_json::to_value(&end).expect("serialisable"),
        json!({"at_ns": 5, "kind": "error", "message": "connection reset by peer"})
    );
}
