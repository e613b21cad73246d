//! Unit tests: escaping, script layout, the regression file, and each invariant passing and
//! failing on hand-made transcripts.

use std::time::Duration;

use super::build::{TAIL_EVENTS, TAIL_GAP, UpstreamEnd, inner_offsets, json_string};
use super::case::{Atom, Case, Chunk, Client, Cut, CutAt, Ending, Eol, Escape, Framing, Split};
use super::drive::{Limits, Observed};
use super::{judge, regressions};
use crate::mock::{HttpVersion, PatternChannel, RequestEnd, RequestRecord, Transport};
use crate::pattern::{self, Ending as MockEnding};
use crate::transcript::{
    Chunk as Read, EndKind, HandoffTimes, Recording, RecordingEnd, Transcript,
};
use crate::verdict::Verdict;

fn atom(text: &str, escape: Escape) -> Atom {
    Atom {
        text: text.to_owned(),
        escape,
        split: None,
    }
}

fn chunk(atoms: Vec<Atom>) -> Chunk {
    Chunk {
        atoms,
        cuts: Vec::new(),
    }
}

fn case(chunks: Vec<Chunk>, ending: Ending) -> Case {
    Case {
        chunks,
        framing: Framing::default(),
        ending,
        ending_cuts: Vec::new(),
        client: Client::Read,
    }
}

fn done() -> Ending {
    Ending::Done {
        finish: Some("stop".into()),
    }
}

#[test]
fn every_escape_style_decodes_to_the_text() {
    let text = "a\"\\/\u{8}\u{c}\n\r\t\0\u{1f}\u{7f}é€😀\u{2028}";
    for escape in [
        Escape::Raw,
        Escape::Short,
        Escape::Unicode,
        Escape::UnicodeUpper,
    ] {
        let mut body = String::new();
        json_string(text, escape, &mut body);
        let decoded: String = serde_json::from_str(&format!("\"{body}\"")).unwrap();
        assert_eq!(decoded, text, "{escape:?}: {body}");
    }
    let mut raw = String::new();
    json_string("é\"\0/\u{2028}", Escape::Raw, &mut raw);
    assert_eq!(raw, "é\\\"\\u0000/\u{2028}");
    let mut short = String::new();
    json_string("/\n", Escape::Short, &mut short);
    assert_eq!(short, "\\/\\n");
    let (mut lower, mut upper) = (String::new(), String::new());
    json_string("😀", Escape::Unicode, &mut lower);
    json_string("😀", Escape::UnicodeUpper, &mut upper);
    assert_eq!(
        (lower.as_str(), upper.as_str()),
        ("\\ud83d\\ude00", "\\uD83D\\uDE00")
    );
}

#[test]
fn raw_chunks_are_the_mocks_own_chunks() {
    let built = case(vec![chunk(vec![atom("Hello", Escape::Raw)])], done()).build();
    let body = built.plan.body();
    let expected = [
        pattern::chunk_event("Hello"),
        pattern::final_event("stop"),
        pattern::DONE_EVENT.to_vec(),
    ]
    .concat();
    assert_eq!(body, expected);
    assert_eq!(built.plan.writes.len(), 1);
    assert_eq!(built.expected.content, b"Hello");
    assert_eq!(built.expected.end, UpstreamEnd::Completed);
}

#[test]
fn inner_offsets_fall_inside_characters_and_escapes() {
    assert_eq!(inner_offsets("aé".as_bytes()), [2]);
    assert_eq!(inner_offsets("😀".as_bytes()), [1, 2, 3]);
    assert_eq!(inner_offsets(b"\\n"), [1]);
    assert_eq!(inner_offsets(b"x\\u00e9"), [2, 3, 4, 5, 6]);
    assert!(inner_offsets(b"abc").is_empty());
}

#[test]
fn an_atom_split_cuts_inside_its_character_with_its_delay() {
    let mut a = atom("€", Escape::Raw);
    a.split = Some(Split {
        sel: 1,
        delay_ms: 7,
    });
    let built = case(vec![chunk(vec![a])], done()).build();
    let w = &built.plan.writes;
    assert_eq!(w.len(), 2);
    assert!(w[0].bytes.ends_with(&[0xE2, 0x82]), "{:?}", w[0].bytes);
    assert!(w[1].bytes.starts_with(&[0xAC]));
    assert_eq!(w[1].delay_before, Duration::from_millis(7));
    assert_eq!(w[0].delay_before, Duration::ZERO);
}

#[test]
fn framing_cuts_land_in_data_fields_and_at_line_ends() {
    let mut c = chunk(vec![atom("x", Escape::Raw)]);
    c.cuts = vec![
        Cut {
            at: CutAt::Field(2),
            delay_ms: 0,
        },
        Cut {
            at: CutAt::LineEnd(1),
            delay_ms: 0,
        },
    ];
    let mut k = case(vec![c], Ending::Truncate { partial: None });
    k.framing.eol = Eol::Crlf;
    let built = k.build();
    let w: Vec<&[u8]> = built.plan.writes.iter().map(|w| &w.bytes[..]).collect();
    assert_eq!(w.len(), 3);
    assert_eq!(w[0], b"dat");
    // Candidates next to line ends: before the first CR (0), between CR and LF (1), …
    assert!(w[1].ends_with(b"\r"), "{:?}", String::from_utf8_lossy(w[1]));
    assert_eq!(w[2], b"\n\r\n");
}

#[test]
fn a_partial_last_chunk_never_completes_and_is_not_expected() {
    for sel in [0u16, 1, 50, 999, u16::MAX] {
        let k = case(
            vec![
                chunk(vec![atom("kept", Escape::Raw)]),
                chunk(vec![atom("lost", Escape::Raw)]),
            ],
            Ending::Reset { partial: Some(sel) },
        );
        let built = k.build();
        let body = built.plan.body();
        let first = pattern::chunk_event("kept");
        assert!(body.starts_with(&first));
        let rest = &body[first.len()..];
        let full = pattern::chunk_event("lost");
        let close = full.iter().rposition(|&b| b == b'}').unwrap();
        assert!(!rest.is_empty() && rest.len() <= close && full.starts_with(rest));
        assert_eq!(built.expected.content, b"kept");
        assert_eq!(built.expected.end, UpstreamEnd::Reset);
        assert_eq!(built.plan.ending, MockEnding::Reset);
    }
}

#[test]
fn an_aborting_client_gets_the_cancel_tail_before_the_ending() {
    let mut k = case(vec![chunk(vec![atom("a", Escape::Raw)])], done());
    k.client = Client::AbortAfterEvents { events: 1 };
    let built = k.build();
    assert_eq!(built.tail_start, Some(1));
    assert_eq!(built.generated_writes(), 2);
    let tail = &built.plan.writes[1..=TAIL_EVENTS];
    assert!(tail.iter().all(|w| w.delay_before == TAIL_GAP));
    assert_eq!(&tail[0].bytes[..], pattern::chunk_event("."));
    let expected: Vec<u8> = [b"a".to_vec(), vec![b'.'; TAIL_EVENTS]].concat();
    assert_eq!(built.expected.content, expected);
    assert_eq!(
        &built.plan.writes.last().unwrap().bytes[..],
        [pattern::final_event("stop"), pattern::DONE_EVENT.to_vec()].concat()
    );
}

#[test]
fn an_error_status_sends_an_error_object_and_expects_no_content() {
    let mut k = case(
        vec![chunk(vec![atom("never", Escape::Raw)])],
        Ending::Status { status: 429 },
    );
    k.framing.bom = true;
    k.client = Client::AbortAfterBytes { bytes: 3 };
    let built = k.build();
    assert_eq!(built.plan.status, 429);
    assert_eq!(built.tail_start, None);
    let body: serde_json::Value = serde_json::from_slice(&built.plan.body()).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_exceeded");
    assert!(built.expected.content.is_empty());
    assert_eq!(built.expected.end, UpstreamEnd::Status(429));
    let odd = case(Vec::new(), Ending::Status { status: 200 }).build();
    assert_eq!(
        odd.plan.status, 500,
        "a status outside 400..=599 is read as 500"
    );
}

#[test]
fn an_empty_truncated_stream_has_no_writes() {
    let built = case(Vec::new(), Ending::Truncate { partial: Some(3) }).build();
    assert!(built.plan.writes.is_empty());
    assert_eq!(built.expected.end, UpstreamEnd::Truncated);
}

#[test]
fn cases_round_trip_through_json_and_bad_json_says_what_to_give() {
    let mut k = case(vec![chunk(vec![atom("é\"", Escape::Short)])], done());
    k.client = Client::Pause {
        after_bytes: 10,
        ms: 5,
    };
    assert_eq!(Case::from_json(&k.to_json()).unwrap(), k);
    let e = Case::from_json("{\"chunks\":[]}").unwrap_err();
    assert!(e.contains("--replay"), "{e}");
}

#[test]
fn the_regression_file_skips_comments_and_names_a_bad_line() {
    let k = case(Vec::new(), done());
    let text = format!("# header\n\n{}\n  # note\n{}\n", k.to_json(), k.to_json());
    let cases = regressions::parse(&text).unwrap();
    assert_eq!(cases.iter().map(|p| p.line).collect::<Vec<_>>(), [3, 5]);
    let (line, why) = regressions::parse("# ok\nnot json\n").unwrap_err();
    assert_eq!(line, 2);
    assert!(why.contains("not a prop case"), "{why}");
}

#[test]
fn appending_creates_the_file_once_and_skips_a_case_it_holds() {
    let dir = std::env::temp_dir().join(format!("sc-prop-reg-{}", std::process::id()));
    let path = dir.join("sub").join("prop-test.txt");
    let k = case(Vec::new(), done());
    assert!(
        regressions::load(&path).unwrap().is_empty(),
        "missing file: no cases"
    );
    assert!(regressions::append(&path, &k, "content broke\nagainst x").unwrap());
    assert!(!regressions::append(&path, &k, "again").unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# streamcheck prop"));
    assert!(text.contains("# content broke against x\n"));
    assert_eq!(regressions::load(&path).unwrap()[0].case, k);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- invariants -----------------------------------------------------------------------------

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

fn transcript(bytes: &[u8], kind: EndKind) -> Transcript {
    Transcript::from_recording(&Recording {
        handoff: HandoffTimes::default(),
        chunks: vec![Read::new(1_000, bytes)],
        end: RecordingEnd { at_ns: 2_000, kind },
    })
}

fn request(end: RequestEnd, end_ns: u64) -> RequestRecord {
    RequestRecord {
        id: 1,
        arrival_ns: 0,
        http_version: HttpVersion::Http2,
        tls: true,
        transport: Transport::Tcp,
        peer: None,
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        headers: Vec::new(),
        x_test_pattern: None,
        authorization: None,
        pattern: Some("script:s1".into()),
        pattern_channel: PatternChannel::Header,
        body: None,
        nonce: Some("n".into()),
        status: 200,
        error: None,
        writes: Vec::new(),
        end,
        end_ns: Some(end_ns),
    }
}

fn observed(body: &[u8], kind: EndKind) -> Observed {
    Observed {
        transcript: transcript(&[HEAD, body].concat(), kind),
        raw: Vec::new(),
        client_closed_ns: None,
        kept_open_after_done: false,
        requests: vec![request(RequestEnd::Completed, 1_500)],
        fate: None,
    }
}

/// The verdict of the assertion called `name` (Pass when absent).
fn verdict_of(k: &Case, obs: &Observed, name: &str) -> Verdict {
    let results = judge::judge(&k.build(), obs, &Limits::default());
    Verdict::worst(results.iter().filter(|a| a.name == name).map(|a| a.verdict))
}

fn worst(k: &Case, obs: &Observed) -> Verdict {
    let results = judge::judge(&k.build(), obs, &Limits::default());
    Verdict::worst(results.iter().map(|a| a.verdict))
}

#[test]
fn a_faithful_relay_passes_every_invariant() {
    let k = case(vec![chunk(vec![atom("Hé", Escape::Unicode)])], done());
    let obs = observed(
        b"data: {\"content\":\"H\xC3\xA9\"}\n\ndata: [DONE]\n\n",
        EndKind::PeerClosed,
    );
    assert_eq!(worst(&k, &obs), Verdict::Pass);
}

#[test]
fn wrong_content_and_broken_utf8_fail() {
    let k = case(vec![chunk(vec![atom("é", Escape::Raw)])], done());
    let lossy = observed(
        "data: {\"content\":\"\u{FFFD}\u{FFFD}\"}\n\ndata: [DONE]\n\n".as_bytes(),
        EndKind::PeerClosed,
    );
    assert_eq!(verdict_of(&k, &lossy, "content"), Verdict::Fail);
    let cut = observed(
        b"data: {\"content\":\"\xC3\"}\n\ndata: {\"content\":\"\xA9\"}\n\ndata: [DONE]\n\n",
        EndKind::PeerClosed,
    );
    assert_eq!(verdict_of(&k, &cut, "valid UTF-8"), Verdict::Fail);
}

#[test]
fn done_must_follow_a_complete_answer_and_only_one() {
    let complete = case(vec![chunk(vec![atom("a", Escape::Raw)])], done());
    let missing = observed(b"data: {\"content\":\"a\"}\n\n", EndKind::PeerClosed);
    assert_eq!(verdict_of(&complete, &missing, "[DONE]"), Verdict::Fail);
    let truncated = case(
        vec![chunk(vec![atom("a", Escape::Raw)])],
        Ending::Truncate { partial: None },
    );
    let appended = observed(
        b"data: {\"content\":\"a\"}\n\ndata: [DONE]\n\n",
        EndKind::PeerClosed,
    );
    assert_eq!(
        verdict_of(&truncated, &appended, "no [DONE]"),
        Verdict::NonStrict
    );
    let reset = case(
        vec![chunk(vec![atom("a", Escape::Raw)])],
        Ending::Reset { partial: None },
    );
    assert_eq!(verdict_of(&reset, &appended, "no [DONE]"), Verdict::Fail);
}

#[test]
fn failures_upstream_must_be_reported() {
    let status = case(Vec::new(), Ending::Status { status: 503 });
    let silent = observed(b"", EndKind::PeerClosed);
    assert_eq!(
        verdict_of(&status, &silent, "error reported"),
        Verdict::Fail
    );
    let told = observed(
        b"data: {\"error\":\"upstream 503\"}\n\n",
        EndKind::PeerClosed,
    );
    assert_eq!(verdict_of(&status, &told, "error reported"), Verdict::Pass);
    let reset = case(
        vec![chunk(vec![atom("a", Escape::Raw)])],
        Ending::Reset { partial: None },
    );
    let closed = observed(b"data: {\"content\":\"a\"}\n\n", EndKind::PeerClosed);
    assert_eq!(verdict_of(&reset, &closed, "error reported"), Verdict::Pass);
    let empty = observed(b"", EndKind::PeerClosed);
    assert_eq!(
        verdict_of(&reset, &empty, "error reported"),
        Verdict::NonStrict
    );
    let complete = case(vec![chunk(vec![atom("a", Escape::Raw)])], done());
    let spurious = observed(
        b"data: {\"content\":\"a\"}\n\ndata: {\"error\":\"x\"}\n\ndata: [DONE]\n\n",
        EndKind::PeerClosed,
    );
    assert_eq!(
        verdict_of(&complete, &spurious, "no error event"),
        Verdict::Fail
    );
}

#[test]
fn the_connection_must_close_in_time() {
    let k = case(Vec::new(), done());
    let hung = observed(b"data: [DONE]\n\n", EndKind::Timeout);
    assert_eq!(verdict_of(&k, &hung, "connection closed"), Verdict::Fail);
    let mut kept = observed(b"data: [DONE]\n\n", EndKind::ClosedByClient);
    kept.kept_open_after_done = true;
    assert_eq!(verdict_of(&k, &kept, "connection closed"), Verdict::Fail);
    let reset = observed(b"data: [DONE]\n\n", EndKind::Error("ECONNRESET".into()));
    assert_eq!(verdict_of(&k, &reset, "connection closed"), Verdict::Fail);
}

#[test]
fn after_a_client_abort_content_is_a_prefix_and_the_upstream_is_cancelled() {
    let mut k = case(vec![chunk(vec![atom("abc", Escape::Raw)])], done());
    k.client = Client::AbortAfterEvents { events: 1 };
    let mut obs = observed(b"data: {\"content\":\"abc\"}\n\n", EndKind::ClosedByClient);
    obs.client_closed_ns = Some(10_000_000);
    obs.requests = vec![request(RequestEnd::Cancelled { at_write: 3 }, 20_000_000)];
    assert_eq!(worst(&k, &obs), Verdict::Pass);
    let late = 10_000_000 + 1_500_000_000;
    obs.requests = vec![request(RequestEnd::Completed, late)];
    assert_eq!(verdict_of(&k, &obs, "upstream cancelled"), Verdict::Fail);
    obs.requests = vec![request(RequestEnd::InProgress, 0)];
    obs.requests[0].end_ns = None;
    assert_eq!(verdict_of(&k, &obs, "upstream cancelled"), Verdict::Fail);
    let wrong = observed(b"data: {\"content\":\"abX\"}\n\n", EndKind::ClosedByClient);
    let wrong = Observed {
        client_closed_ns: Some(1),
        ..wrong
    };
    assert_eq!(verdict_of(&k, &wrong, "content"), Verdict::Fail);
}

#[test]
fn a_daemon_that_never_called_the_upstream_is_told_so() {
    let k = case(Vec::new(), done());
    let mut obs = observed(b"data: [DONE]\n\n", EndKind::PeerClosed);
    obs.requests.clear();
    assert_eq!(verdict_of(&k, &obs, "upstream request"), Verdict::Fail);
}

#[test]
fn a_handoff_never_taken_is_the_one_finding() {
    let k = case(Vec::new(), done());
    let obs = Observed {
        fate: Some(crate::handoff::HandoffFate::NotRead),
        ..observed(b"", EndKind::Timeout)
    };
    let results = judge::judge(&k.build(), &obs, &Limits::default());
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].name, "handoff taken");
    assert!(results[0].message.contains("never read the handoff"));
}

#[test]
fn comment_lines_and_two_line_events_carry_the_same_chunks() {
    let chunks = vec![
        chunk(vec![atom("é\"x", Escape::Short)]),
        chunk(vec![atom("yz", Escape::Unicode)]),
    ];
    let events_of = |framing: Framing| {
        let mut k = case(chunks.clone(), done());
        k.framing = framing;
        let body = k.build().plan.body();
        let mut parser = crate::sse::Parser::new();
        let mut events: Vec<crate::sse::Event> = Vec::new();
        parser.feed(&body, &mut events).unwrap();
        let data: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| e.data != b"[DONE]")
            .map(|e| serde_json::from_slice(&e.data).unwrap())
            .collect();
        (data, body)
    };
    for eol in [Eol::Lf, Eol::Crlf, Eol::Cr] {
        let plain = Framing {
            eol,
            ..Framing::default()
        };
        let odd = Framing {
            comments: true,
            multiline: true,
            ..plain
        };
        let (want, _) = events_of(plain);
        let (got, body) = events_of(odd);
        assert_eq!(got, want, "{eol:?}");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(": keep-alive").count(), 2, "{text}");
        assert_eq!(
            text.matches("data: ").count(),
            2 * 2 + 2,
            "two lines per chunk: {text}"
        );
    }
}
