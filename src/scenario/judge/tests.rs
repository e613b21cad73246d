//! Every judgement in both outcomes, on recorded streams built by hand.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::handoff::HandoffError;
use crate::pattern::{self, MockSettings};
use crate::ring::HandoffTimings;
use crate::scenario::data::{self, Handoff};
use crate::scenario::{Data, HeaderRule};
use crate::transcript::{EndKind, HandoffTimes, RecordingEnd, TranscriptBuilder};
use crate::verdict::causes::known;
use crate::verdict::{Verdict, WireLimits, WireRecorder};

const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(5),
    grace: Duration::from_secs(2),
};

const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: \
                    no-cache\r\nConnection: close\r\n\r\n";

/// A stream whose reads arrive 10 µs apart from 10 µs after the handoff (at 3 µs).
fn observe(reads: &[&[u8]], end: EndReason, close: Option<ClientClose>) -> Observation {
    let handoff = HandoffTimings {
        connect_start_ns: 1_000,
        connected_ns: 2_000,
        sent_ns: 3_000,
        ..HandoffTimings::default()
    };
    let mut builder = TranscriptBuilder::new(HandoffTimes {
        connect_start_ns: 1_000,
        connected_ns: 2_000,
        sent_ns: 3_000,
    });
    let mut wire = WireRecorder::new(WireLimits::default());
    for (i, r) in reads.iter().enumerate() {
        let ts = 10_000 * (i as u64 + 1);
        builder.push(ts, r);
        wire.push(ts, r);
    }
    let end_ns = 10_000 * (reads.len() as u64 + 1);
    let kind = match (&end, close) {
        (_, Some(_)) | (EndReason::ClosedByClient, _) => EndKind::ClosedByClient,
        (EndReason::PeerClosed, _) => EndKind::PeerClosed,
        (EndReason::Timeout, _) => EndKind::Timeout,
        (EndReason::Error(e), _) => EndKind::Error(e.to_string()),
    };
    Observation {
        sent: b"{}".to_vec(),
        handoff: Some(handoff),
        wire,
        end,
        end_ns,
        fate: None,
        client_close: close,
        t: builder.finish(RecordingEnd {
            at_ns: end_ns,
            kind,
        }),
    }
}

fn closed(reads: &[&[u8]]) -> Observation {
    observe(reads, EndReason::PeerClosed, None)
}

/// `HEAD`, one event per content piece, then `tail`.
fn stream(pieces: &[&str], tail: &str) -> Vec<u8> {
    let mut s = HEAD.to_owned();
    for p in pieces {
        s.push_str(&format!("data: {}\n\n", json!({ "content": p })));
    }
    s.push_str(tail);
    s.into_bytes()
}

fn expected(spec: &str) -> Expected {
    pattern::resolve(spec, &MockSettings::default(), Some("n1"))
        .unwrap()
        .expected
}

fn handoff(spec: &str) -> Handoff {
    data::build(Data::Standard, spec, "n1")
}

/// A request record as the mock logs it, with `fields` overriding the defaults.
fn record(h: &Handoff, fields: serde_json::Value) -> RequestRecord {
    let mut base = json!({
        "id": 1, "arrival_ns": 5_000, "http_version": "HTTP/2", "tls": true,
        "transport": "tcp", "peer": null, "method": "POST", "path": "/v1/chat/completions",
        "headers": [], "x_test_pattern": h.test_pattern, "authorization": "Bearer k",
        "pattern": h.test_pattern, "pattern_channel": "header",
        "body": {"model": "m", "messages": [{"role": "user", "content": h.prompt}],
                 "stream": true, "prompt": null},
        "nonce": "n1", "status": 200, "error": null,
        "writes": [{"ts_ns": 6_000, "start": 0, "end": 10}, {"ts_ns": 40_000, "start": 10, "end": 20}],
        "end": {"kind": "completed"}, "end_ns": 41_000
    });
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// The relay judged alone: what reached the upstream is not judged.
fn run(
    obs: &Observation,
    spec: &str,
    requests: &[RequestRecord],
    checks: &[Check],
) -> Vec<AssertionResult> {
    run_with_strays(None, obs, spec, requests, 0, checks)
}

/// [`run`] in `scenario` (a name), which judges what reached the upstream too.
fn run_in(
    scenario: &'static str,
    obs: &Observation,
    spec: &str,
    requests: &[RequestRecord],
    checks: &[Check],
) -> Vec<AssertionResult> {
    run_with_strays(Some(scenario), obs, spec, requests, 0, checks)
}

/// [`run`], with `stray` requests without a nonce seen by the mock while the stream ran.
fn run_with_strays(
    scenario: Option<&'static str>,
    obs: &Observation,
    spec: &str,
    requests: &[RequestRecord],
    stray_requests: usize,
    checks: &[Check],
) -> Vec<AssertionResult> {
    let (e, h) = (expected(spec), handoff(spec));
    let case = Case {
        scenario,
        obs,
        expected: &e,
        handoff: &h,
        requests,
        stray_requests,
        limits: LIMITS,
    };
    judge(&case, checks)
}

fn verdict_of<'a>(results: &'a [AssertionResult], name: &str) -> &'a AssertionResult {
    results
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no assertion {name:?} in {results:#?}"))
}

const FINISH: [&str; 6] = [
    "Test",
    " response",
    " with",
    " custom",
    " finish_reason",
    ".",
];

fn good_finish_stream() -> Vec<u8> {
    stream(
        &FINISH,
        "data: {\"content\":\"\",\"finish_reason\":\"stop\"}\n\ndata: [DONE]\n\n",
    )
}

#[test]
fn a_correct_stream_passes_every_outcome_assertion() {
    let h = handoff("finish:stop");
    let obs = closed(&[&good_finish_stream()]);
    let results = run_in(
        "finish_stop",
        &obs,
        "finish:stop",
        &[record(&h, json!({}))],
        &[Check::Outcome, Check::FinishReason],
    );
    for a in &results {
        assert_eq!(a.verdict, Verdict::Pass, "{a:?}");
    }
    let names: Vec<&str> = results.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "status",
            "content",
            "[DONE]",
            "connection closed",
            "finish_reason",
            "upstream request",
            "X-Test-Pattern",
            "prompt forwarded"
        ]
    );
}

#[test]
fn wrong_content_missing_done_and_error_events_fail_a_complete_answer() {
    let bad = stream(&["Test", " respons"], "data: {\"error\":\"boom\"}\n\n");
    let results = run(&closed(&[&bad]), "finish:stop", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&results, "content").verdict, Verdict::Fail);
    assert_eq!(verdict_of(&results, "[DONE]").verdict, Verdict::Fail);
    let err = verdict_of(&results, "no error event");
    assert!(err.message.contains("boom"), "{}", err.message);
}

#[test]
fn done_after_a_truncated_answer_is_non_strict() {
    let cut = stream(&["Hello", " world"], "");
    let with_done = stream(&["Hello", " world"], "data: [DONE]\n\n");
    let ok = run(&closed(&[&cut]), "abort:2", &[], &[Check::Ending]);
    assert_eq!(verdict_of(&ok, "no [DONE]").verdict, Verdict::Pass);
    assert!(
        verdict_of(&ok, "truncation reported")
            .message
            .contains("without [DONE]")
    );
    let bad = run(&closed(&[&with_done]), "abort:2", &[], &[Check::Ending]);
    assert_eq!(verdict_of(&bad, "no [DONE]").verdict, Verdict::NonStrict);
}

#[test]
fn an_upstream_error_must_be_reported_and_never_end_in_done() {
    let silent = stream(&[], "");
    let r = run(&closed(&[&silent]), "error:500", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Fail);
    let as_done = stream(&[], "data: [DONE]\n\n");
    let r = run(&closed(&[&as_done]), "error:500", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "no [DONE]").verdict, Verdict::Fail);
    let event = stream(&[], "data: {\"error\":\"upstream 500\"}\n\n");
    let r = run(&closed(&[&event]), "error:500", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Pass);
    let status = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\n{}";
    let r = run(&closed(&[status]), "error:500", &[], &[Check::Outcome]);
    assert!(
        r.iter()
            .all(|a| a.name == "upstream request" || a.verdict == Verdict::Pass),
        "{r:#?}"
    );
}

#[test]
fn a_reset_upstream_may_be_reported_by_an_error_event_or_by_closing_without_done() {
    let words = expected("reset:3").pieces;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let closed_early = closed(&[&stream(&words, "")]);
    let r = run(&closed_early, "reset:3", &[], &[Check::Outcome]);
    assert!(
        r.iter()
            .all(|a| a.name == "upstream request" || a.verdict == Verdict::Pass),
        "{r:#?}"
    );
    assert!(
        verdict_of(&r, "truncation reported")
            .message
            .contains("without [DONE]")
    );
    let event = closed(&[&stream(&words, "data: {\"error\":\"reset\"}\n\n")]);
    let r = run(&event, "reset:3", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Pass);
    // Nothing relayed: an empty 200 answer cannot be told from a failure.
    let empty = closed(&[&stream(&[], "")]);
    let r = run(&empty, "reset:3", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Fail);
    // Left open: the missing close is the finding, not a report of the truncation.
    let open = observe(&[&stream(&words, "")], EndReason::Timeout, None);
    let r = run(&open, "reset:3", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Fail);
    assert_eq!(verdict_of(&r, "connection closed").verdict, Verdict::Fail);
}

#[test]
fn a_stalled_upstream_may_be_relayed_or_reported_but_not_left_open() {
    let words = expected("stall:100").pieces;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let whole = stream(&words, "data: [DONE]\n\n");
    let r = run(&closed(&[&whole]), "stall:100", &[], &[Check::Outcome]);
    assert!(
        r.iter()
            .filter(|a| a.name != "upstream request")
            .all(|a| a.verdict == Verdict::Pass),
        "{r:#?}"
    );
    let error = stream(&[], "data: {\"error\":\"upstream timed out\"}\n\n");
    let r = run(&closed(&[&error]), "stall:100", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Pass);
    let open = observe(&[HEAD.as_bytes()], EndReason::Timeout, None);
    let r = run(&open, "stall:100", &[], &[Check::Outcome]);
    assert!(
        verdict_of(&r, "connection closed")
            .message
            .contains("still open")
    );
    assert_eq!(verdict_of(&r, "error reported").verdict, Verdict::Fail);
}

#[test]
fn the_connection_must_close_and_close_cleanly() {
    let good = good_finish_stream();
    let kept_open = observe(
        &[&good],
        EndReason::ClosedByClient,
        Some(ClientClose::NotClosedAfterDone),
    );
    let r = run(&kept_open, "finish:stop", &[], &[Check::Ending]);
    let a = verdict_of(&r, "connection closed");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(
        a.message.contains("kept the connection open"),
        "{}",
        a.message
    );
    let reset = observe(
        &[&good],
        EndReason::Error(HandoffError::Receive {
            errno: rustix::io::Errno::CONNRESET,
        }),
        None,
    );
    let r = run(&reset, "finish:stop", &[], &[Check::Ending]);
    assert!(
        verdict_of(&r, "connection closed")
            .message
            .contains("reset")
    );
}

#[test]
fn silence_is_named_for_what_it_is() {
    let r = run(&closed(&[]), "finish:stop", &[], &[Check::Outcome]);
    assert!(
        verdict_of(&r, "HTTP response")
            .message
            .contains("without writing a byte")
    );
    let hung = observe(&[], EndReason::Timeout, None);
    let r = run(&hung, "finish:stop", &[], &[Check::Outcome]);
    assert!(
        verdict_of(&r, "HTTP response")
            .message
            .contains("kept the connection open")
    );
    let garbage = closed(&[b"data: {\"content\":\"x\"}\n\n"]);
    let r = run(&garbage, "finish:stop", &[], &[Check::Outcome]);
    assert!(
        verdict_of(&r, "HTTP response")
            .message
            .contains("HTTP/1.x head")
    );
}

#[test]
fn handoff_data_is_used_or_refused_cleanly() {
    let h = handoff("finish:stop");
    let check = [Check::ProcessedOrRejected];
    let used = run(
        &closed(&[&good_finish_stream()]),
        "finish:stop",
        &[record(&h, json!({}))],
        &check,
    );
    assert!(used.iter().all(|a| a.verdict == Verdict::Pass), "{used:#?}");
    let refused = closed(&[b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"]);
    let r = run(&refused, "finish:stop", &[], &check);
    assert!(r.iter().all(|a| a.verdict == Verdict::Pass), "{r:#?}");
    // Answered, and the mock saw a request without the prompt: the data was lost.
    let lost = run_with_strays(
        None,
        &closed(&[&good_finish_stream()]),
        "finish:stop",
        &[],
        1,
        &check,
    );
    let why = &verdict_of(&lost, "data used or refused").message;
    assert!(why.contains("dropped or cut"), "{why}");
    assert!(why.contains("1 request(s) without it"), "{why}");
    // Answered, and the mock saw nothing: no evidence the data was lost, so no such advice.
    let ignored = run(
        &closed(&[&good_finish_stream()]),
        "finish:stop",
        &[],
        &check,
    );
    let why = &verdict_of(&ignored, "data used or refused").message;
    assert!(why.contains("never called the upstream"), "{why}");
    assert!(!why.contains("dropped or cut"), "{why}");
    let empty = run(&closed(&[]), "finish:stop", &[], &check);
    assert_eq!(empty.len(), 1, "one message for an empty reply: {empty:#?}");
    assert!(empty[0].message.contains("without writing a byte"));
    let hung = run(
        &observe(&[], EndReason::Timeout, None),
        "finish:stop",
        &[],
        &check,
    );
    assert!(hung[0].message.contains("wrote nothing"));
}

#[test]
fn what_reaches_the_upstream_is_checked_on_its_own() {
    let h = handoff("finish:stop");
    let obs = closed(&[&good_finish_stream()]);
    let no_header = record(
        &h,
        json!({"x_test_pattern": null, "pattern_channel": "prompt"}),
    );
    let r = run_in(
        "basic_response",
        &obs,
        "finish:stop",
        &[no_header],
        &[Check::Content],
    );
    assert_eq!(verdict_of(&r, "content").verdict, Verdict::Pass);
    let a = verdict_of(&r, "X-Test-Pattern");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.message.contains("copy the handoff's test_pattern"));
    let cut = record(
        &h,
        json!({"body": {"messages": [{"role": "user", "content": "Answer"}]}}),
    );
    let r = run_in(
        "prompt_escapes",
        &obs,
        "finish:stop",
        &[cut],
        &[Check::Content],
    );
    assert_eq!(verdict_of(&r, "prompt forwarded").verdict, Verdict::Fail);
    let twice = [record(&h, json!({})), record(&h, json!({"id": 2}))];
    let r = run_in(
        "basic_response",
        &obs,
        "finish:stop",
        &twice,
        &[Check::Content],
    );
    assert_eq!(
        verdict_of(&r, "upstream request").verdict,
        Verdict::NonStrict
    );
}

#[test]
fn head_timing_is_a_fact_in_every_case() {
    let h = handoff("stall:200");
    let obs = closed(&[&good_finish_stream()]);
    // The head arrives at 10 µs; the request at 5 µs or 20 µs; the first write at 6 or 40 µs.
    for (arrival, first_write, words) in [
        (20_000, 40_000, "before the upstream request"),
        (5_000, 40_000, "before the upstream's first chunk"),
        (5_000, 6_000, "after the upstream's first chunk"),
    ] {
        let rec = record(
            &h,
            json!({"arrival_ns": arrival, "writes": [{"ts_ns": first_write, "start": 0, "end": 5}]}),
        );
        let r = run(&obs, "stall:200", &[rec], &[Check::HeadTiming]);
        let a = verdict_of(&r, "head timing");
        assert_eq!(a.verdict, Verdict::Informational);
        assert!(a.message.contains(words), "{}", a.message);
    }
    // Produced at 6 µs but held by the HTTP/2 window until 40 µs: the head did not wait for it.
    let rec = record(
        &h,
        json!({"arrival_ns": 5_000,
               "writes": [{"ts_ns": 6_000, "sent_ns": 40_000, "start": 0, "end": 5}]}),
    );
    let r = run(&obs, "stall:200", &[rec], &[Check::HeadTiming]);
    let a = verdict_of(&r, "head timing");
    assert!(
        a.message.contains("before the upstream's first chunk"),
        "{}",
        a.message
    );
}

#[test]
fn a_client_that_leaves_must_cancel_the_upstream() {
    let h = handoff("delay:250");
    let left = ClientClose::AfterEvents { at_ns: 20_000 };
    let obs = observe(
        &[&stream(&["Hello"], "")],
        EndReason::ClosedByClient,
        Some(left),
    );
    let check = [Check::UpstreamCancelled { within_ms: 2000 }];
    for (end, end_ns, verdict, words) in [
        (
            json!({"kind": "cancelled", "at_write": 2}),
            500_000_000u64,
            Verdict::Pass,
            "cancelled",
        ),
        (
            json!({"kind": "cancelled", "at_write": 9}),
            3_000_000_000,
            Verdict::Fail,
            "later than",
        ),
        (
            json!({"kind": "completed"}),
            2_500_000_000,
            Verdict::Fail,
            "ran to completion",
        ),
        (
            json!({"kind": "in_progress"}),
            0,
            Verdict::Fail,
            "still streaming",
        ),
    ] {
        let rec = record(&h, json!({"end": end, "end_ns": end_ns}));
        let r = run(&obs, "delay:250", &[rec], &check);
        let a = verdict_of(&r, "upstream cancelled");
        assert_eq!(a.verdict, verdict, "{}", a.message);
        assert!(a.message.contains(words), "{}", a.message);
    }
    let stayed = closed(&[&stream(&[], "")]);
    let r = run(&stayed, "delay:250", &[record(&h, json!({}))], &check);
    assert!(
        verdict_of(&r, "upstream cancelled")
            .message
            .contains("never received a content event")
    );
}

#[test]
fn events_must_be_relayed_before_the_upstream_is_done() {
    let h = handoff("delay:100");
    let obs = closed(&[&stream(&["Hello"], "")]);
    // The first content event arrives at 10 µs.
    let streaming = record(
        &h,
        json!({"writes": [{"ts_ns": 6_000, "start": 0, "end": 9}, {"ts_ns": 90_000, "start": 9, "end": 20}]}),
    );
    let r = run(
        &obs,
        "delay:100",
        &[streaming],
        &[Check::RelayedIncrementally],
    );
    assert_eq!(
        verdict_of(&r, "relayed as it arrives").verdict,
        Verdict::Pass
    );
    let buffered = record(
        &h,
        json!({"writes": [{"ts_ns": 1_000, "start": 0, "end": 9}, {"ts_ns": 8_000, "start": 9, "end": 20}]}),
    );
    let r = run(
        &obs,
        "delay:100",
        &[buffered],
        &[Check::RelayedIncrementally],
    );
    let a = verdict_of(&r, "relayed as it arrives");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.message.contains("buffers the answer"));
}

#[test]
fn content_pieces_compare_only_their_region() {
    let e = expected("unicode");
    let mut pieces: Vec<String> = e.pieces.clone();
    pieces[30] = "X".to_owned(); // outside the emoji, inside the mixed strings
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let obs = closed(&[&stream(&refs, "data: [DONE]\n\n")]);
    let emoji = Check::ContentPieces {
        what: "the emoji",
        pieces: (0, 9),
    };
    let r = run(&obs, "unicode", &[], &[emoji]);
    assert_eq!(verdict_of(&r, "content").verdict, Verdict::Pass);
    let mixed = Check::ContentPieces {
        what: "the mixed strings",
        pieces: (29, 35),
    };
    let r = run(&obs, "unicode", &[], &[mixed]);
    let a = verdict_of(&r, "content");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.message.contains("the mixed strings"), "{}", a.message);
}

/// `HEAD`, one OpenAI chunk per content piece, then `tail`.
fn openai_stream(pieces: &[&str], tail: &str) -> Vec<u8> {
    let mut s = HEAD.to_owned();
    for p in pieces {
        let chunk =
            json!({"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
        s.push_str(&format!("data: {chunk}\n\n"));
    }
    s.push_str(tail);
    s.into_bytes()
}

#[test]
fn a_wrong_finish_reason_is_a_failure_in_either_format() {
    let simplified = closed(&[&stream(
        &FINISH,
        "data: {\"content\":\"\",\"finish_reason\":\"stop\"}\n\ndata: [DONE]\n\n",
    )]);
    let r = run(&simplified, "finish:length", &[], &[Check::FinishReason]);
    assert_eq!(verdict_of(&r, "finish_reason").verdict, Verdict::Fail);
    let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let openai = closed(&[&openai_stream(
        &FINISH,
        &format!("data: {last}\n\ndata: [DONE]\n\n"),
    )]);
    let r = run(&openai, "finish:length", &[], &[Check::FinishReason]);
    assert_eq!(verdict_of(&r, "finish_reason").verdict, Verdict::Fail);
    let r = run(&openai, "finish:stop", &[], &[Check::FinishReason]);
    assert_eq!(verdict_of(&r, "finish_reason").verdict, Verdict::Pass);
}

#[test]
fn openai_chunks_that_drop_the_finish_reason_are_non_strict() {
    let openai = closed(&[&openai_stream(&FINISH, "data: [DONE]\n\n")]);
    let r = run(&openai, "finish:length", &[], &[Check::FinishReason]);
    assert_eq!(verdict_of(&r, "finish_reason").verdict, Verdict::NonStrict);
    let r = run(&openai, "finish:stop", &[], &[Check::FinishReason]);
    assert_eq!(verdict_of(&r, "finish_reason").verdict, Verdict::NonStrict);
}

#[test]
fn the_simplified_format_is_not_faulted_for_having_no_finish_reason() {
    let done = closed(&[&stream(&FINISH, "data: [DONE]\n\n")]);
    let r = run(
        &done,
        "finish:stop",
        &[],
        &[Check::Outcome, Check::FinishReason],
    );
    assert!(
        r.iter()
            .all(|a| a.name == "upstream request" || a.verdict == Verdict::Pass),
        "{r:#?}"
    );
    assert!(verdict_of(&r, "finish_reason").message.contains("[DONE]"));
    let r = run(&done, "finish:length", &[], &[Check::FinishReason]);
    let lost = verdict_of(&r, "finish_reason");
    assert_eq!(lost.verdict, Verdict::Informational);
    assert!(lost.message.contains("\"length\""), "{}", lost.message);
    // Without [DONE] the ending check fails; the finish_reason check does not judge it twice.
    let cut = closed(&[&stream(&FINISH, "")]);
    let r = run(
        &cut,
        "finish:stop",
        &[],
        &[Check::Outcome, Check::FinishReason],
    );
    assert_eq!(verdict_of(&r, "[DONE]").verdict, Verdict::Fail);
    assert_eq!(
        verdict_of(&r, "finish_reason").verdict,
        Verdict::Informational
    );
}

#[test]
fn headers_are_judged_at_their_own_level() {
    let obs = closed(&[&good_finish_stream()]);
    let accel = Check::Header {
        name: "X-Accel-Buffering",
        rule: HeaderRule::Contains("no"),
        level: Verdict::Informational,
    };
    let r = run(&obs, "finish:stop", &[], &[accel]);
    assert_eq!(
        verdict_of(&r, "header X-Accel-Buffering").verdict,
        Verdict::Informational
    );
    let ct = Check::Header {
        name: "Content-Type",
        rule: HeaderRule::MediaType("text/event-stream"),
        level: Verdict::Fail,
    };
    let r = run(&obs, "finish:stop", &[], &[ct, Check::StatusLine]);
    assert_eq!(verdict_of(&r, "header Content-Type").verdict, Verdict::Pass);
    assert_eq!(verdict_of(&r, "status").message, "HTTP/1.1 200 OK");
    let plain = closed(&[b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"]);
    let r = run(&plain, "finish:stop", &[], &[ct]);
    assert_eq!(verdict_of(&r, "header Content-Type").verdict, Verdict::Fail);
}

#[test]
fn response_headers_must_be_passed_through() {
    let h = data::build(Data::ResponseHeaders, "finish:stop", "n1");
    let e = expected("finish:stop");
    let with =
        "HTTP/1.1 200 OK\r\nX-Streamcheck-Nonce: n1\r\nX-Streamcheck-Echo: passed through\r\n\r\n";
    for (head, verdict) in [(with, Verdict::Pass), (HEAD, Verdict::Fail)] {
        let obs = closed(&[head.as_bytes()]);
        let case = Case {
            scenario: None,
            obs: &obs,
            expected: &e,
            handoff: &h,
            requests: &[],
            stray_requests: 0,
            limits: LIMITS,
        };
        let r = judge(&case, &[Check::ResponseHeadersEchoed]);
        let echoed: Vec<&AssertionResult> =
            r.iter().filter(|a| a.name.starts_with("header ")).collect();
        assert_eq!(echoed.len(), 2);
        assert!(echoed.iter().all(|a| a.verdict == verdict), "{echoed:#?}");
    }
}

#[test]
fn events_a_browser_cannot_read_are_named() {
    let odd = format!("{HEAD}data: hello\n\ndata: {{\"content\":\"x\"}}\n\n");
    let r = run(
        &closed(&[odd.as_bytes()]),
        "finish:stop",
        &[],
        &[Check::Content],
    );
    let a = verdict_of(&r, "event payloads");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.message.contains("event 1 is not JSON"), "{}", a.message);
}

#[test]
fn replacement_characters_point_at_decoding_per_read() {
    let lossy = stream(&["Test", " respons\u{FFFD}"], "data: [DONE]\n\n");
    let r = run(&closed(&[&lossy]), "finish:stop", &[], &[Check::Content]);
    let a = verdict_of(&r, "content");
    assert!(
        a.message.contains("decoded a read that ended inside"),
        "{}",
        a.message
    );
    let short = stream(&["Test"], "data: [DONE]\n\n");
    let r = run(&closed(&[&short]), "finish:stop", &[], &[Check::Content]);
    assert!(!verdict_of(&r, "content").message.contains("U+FFFD"));
}

#[test]
fn upstream_advice_needs_an_answer_to_the_client() {
    let check = [Check::Content];
    let silent = run_in("basic_response", &closed(&[]), "finish:stop", &[], &check);
    let why = &verdict_of(&silent, "upstream request").message;
    assert!(why.contains("did not act on the handoff"), "{why}");
    assert!(!why.contains("upstream settings"), "{why}");
    let answered = run_in(
        "basic_response",
        &closed(&[&good_finish_stream()]),
        "finish:stop",
        &[],
        &check,
    );
    let why = &verdict_of(&answered, "upstream request").message;
    assert!(why.contains("upstream settings"), "{why}");
}

#[test]
fn a_handoff_never_taken_is_named_not_blamed_on_silence() {
    for (fate, said) in [
        (
            crate::handoff::HandoffFate::NeverAccepted,
            "never accepted the connection",
        ),
        (
            crate::handoff::HandoffFate::NotRead,
            "accepted the connection but never read the handoff",
        ),
    ] {
        let mut obs = observe(&[], EndReason::Timeout, None);
        obs.fate = Some(fate);
        let r = run(&obs, "finish:stop", &[], &[Check::Outcome]);
        assert_eq!(r.len(), 1, "nothing else is judged: {r:#?}");
        let why = &verdict_of(&r, "handoff taken").message;
        assert!(why.contains(said), "{why}");
        assert!(!why.contains("wrote nothing"), "{why}");
    }
    // A handoff that was read and then met silence is still silence.
    let mut obs = observe(&[], EndReason::Timeout, None);
    obs.fate = Some(crate::handoff::HandoffFate::Read);
    let r = run(&obs, "finish:stop", &[], &[Check::Outcome]);
    assert!(
        verdict_of(&r, "HTTP response")
            .message
            .contains("wrote nothing")
    );
}

#[test]
fn a_missing_pattern_header_fails_its_owner_once_and_is_a_note_elsewhere() {
    let h = handoff("finish:stop");
    let obs = closed(&[&good_finish_stream()]);
    let no_header = record(
        &h,
        json!({"x_test_pattern": null, "pattern_channel": "prompt"}),
    );
    let owner = run_in(
        "basic_response",
        &obs,
        "finish:stop",
        std::slice::from_ref(&no_header),
        &[Check::Outcome],
    );
    let a = verdict_of(&owner, "X-Test-Pattern");
    assert_eq!(a.verdict, Verdict::Fail);
    assert_eq!(a.cause, Some(known::PATTERN_HEADER_MISSING));
    let other = run_in(
        "unicode_content",
        &obs,
        "finish:stop",
        &[no_header],
        &[Check::Outcome],
    );
    let note = verdict_of(&other, "X-Test-Pattern");
    assert_eq!(note.verdict, Verdict::Informational);
    assert_eq!(
        note.message,
        "judged through the prompt's [[pattern:…]] directive: X-Test-Pattern missing, see 1.1 \
         basic_response"
    );
    assert_eq!(note.cause, None);
    assert!(
        other.iter().all(|a| a.verdict <= Verdict::Informational),
        "the scenario's own property passes: {other:#?}"
    );
}

#[test]
fn a_pattern_that_never_reached_the_mock_leaves_the_scenario_not_judged_and_failed() {
    let h = handoff("unicode");
    let obs = closed(&[&good_finish_stream()]);
    let lost = record(
        &h,
        json!({"x_test_pattern": null, "pattern_channel": "none", "pattern": "default"}),
    );
    let r = run_in(
        "unicode_content",
        &obs,
        "unicode",
        &[lost],
        &[Check::Outcome],
    );
    assert!(
        r.iter().all(|a| a.name != "content"),
        "content is not judged against a pattern the mock never served: {r:#?}"
    );
    let a = verdict_of(&r, "pattern served");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(
        a.message
            .starts_with("not judged: the mock served pattern `default` instead of `unicode`"),
        "{}",
        a.message
    );
    assert_eq!(a.cause, Some(known::PATTERN_NOT_DELIVERED));
    // No request at all: the same, said of the request.
    let none = run_in("unicode_content", &obs, "unicode", &[], &[Check::Outcome]);
    let a = verdict_of(&none, "upstream request");
    assert_eq!(a.verdict, Verdict::Fail);
    assert!(a.message.starts_with("not judged: "), "{}", a.message);
    assert!(
        a.message.contains("see 1.1 basic_response"),
        "{}",
        a.message
    );
    assert!(none.iter().all(|a| a.name != "content"), "{none:#?}");
    // A scenario whose checks do not need the pattern only notes it.
    let header = [Check::StatusLine];
    let r = run_in("status_line", &obs, "unicode", &[], &header);
    assert_eq!(
        verdict_of(&r, "upstream request").verdict,
        Verdict::Informational
    );
}

#[test]
fn findings_that_follow_from_another_share_its_cause() {
    // An upstream error relayed as 200 + [DONE]: one defect, two findings.
    let as_done = stream(&[], "data: [DONE]\n\n");
    let r = run(&closed(&[&as_done]), "error:500", &[], &[Check::Outcome]);
    for name in ["error reported", "no [DONE]"] {
        assert_eq!(
            verdict_of(&r, name).cause,
            Some(known::UPSTREAM_ERROR_AS_DONE),
            "{name}"
        );
    }
    let hidden = stream(&[], "");
    let r = run(&closed(&[&hidden]), "error:500", &[], &[Check::Outcome]);
    assert_eq!(
        verdict_of(&r, "error reported").cause,
        Some(known::UPSTREAM_FAILURE_HIDDEN)
    );
    // Silence, then a timeout: every finding is the silence.
    let hung = run(
        &observe(&[], EndReason::Timeout, None),
        "error:500",
        &[],
        &[Check::Outcome],
    );
    let failing: Vec<_> = hung.iter().filter(|a| a.verdict == Verdict::Fail).collect();
    assert!(failing.len() > 1, "{hung:#?}");
    assert!(
        failing.iter().all(|a| a.cause == Some(known::SILENT_HANG)),
        "{hung:#?}"
    );
    // Content cut off mid-stream: the missing [DONE] is the content's cause.
    let cut = stream(&["Test"], "");
    let r = run(&closed(&[&cut]), "finish:stop", &[], &[Check::Outcome]);
    assert_eq!(verdict_of(&r, "content").cause, Some(known::CONTENT_SHORT));
    assert_eq!(verdict_of(&r, "[DONE]").cause, Some(known::CONTENT_SHORT));
}
