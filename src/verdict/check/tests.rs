//! Every helper in both outcomes: passing, and each way it can fail or be tolerated.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn assert_verdict(r: &AssertionResult, verdict: Verdict, needles: &[&str]) {
    assert_eq!(r.verdict, verdict, "{r:?}");
    for n in needles {
        assert!(r.message.contains(n), "message {:?} lacks {n:?}", r.message);
    }
}

// ---- content_equals / bytes_equal

#[test]
fn content_equal_passes() {
    let r = content_equals("héllo 🎉", "héllo 🎉".as_bytes());
    assert_verdict(&r, Verdict::Pass, &["11 bytes"]);
}

#[test]
fn content_difference_names_first_offset_and_context() {
    let r = content_equals("The quick brown fox", b"The quick brawn fox");
    assert_verdict(
        &r,
        Verdict::Fail,
        &[
            "differs at byte 12",
            "expected 19 bytes, received 19",
            "\"The quick brown fox\"",
            "\"The quick brawn fox\"",
        ],
    );
    assert_eq!(r.expected.as_deref(), Some("The quick brown fox"));
    assert_eq!(r.received.as_deref(), Some("The quick brawn fox"));
}

#[test]
fn content_context_is_cut_with_ellipses() {
    let expected = format!("{}X{}", "a".repeat(100), "b".repeat(100));
    let received = format!("{}Y{}", "a".repeat(100), "b".repeat(100));
    let r = content_equals(&expected, received.as_bytes());
    let context = format!("\"…{}X{}…\"", "a".repeat(CONTEXT), "b".repeat(CONTEXT - 1));
    assert_verdict(&r, Verdict::Fail, &["differs at byte 100", &context]);
}

#[test]
fn content_ending_early_says_what_is_missing() {
    let r = content_equals("Hello, world", b"Hello");
    assert_verdict(
        &r,
        Verdict::Fail,
        &[
            "ends early",
            "received 5 of 12 bytes",
            "missing from byte 5",
            "\"…, world\"",
        ],
    );
}

#[test]
fn content_running_on_shows_the_extra_bytes() {
    let r = content_equals("Hello", b"HelloHello");
    assert_verdict(
        &r,
        Verdict::Fail,
        &["runs on", "5 unexpected bytes", "from byte 5", "\"…Hello\""],
    );
}

#[test]
fn no_content_at_all() {
    let r = content_equals("Hello", b"");
    assert_verdict(
        &r,
        Verdict::Fail,
        &["no content received", "expected 5 bytes"],
    );
}

#[test]
fn invalid_utf8_is_shown_in_hex_and_named() {
    // 🎉 = f0 9f 8e 89; the daemon lost the last byte of the character.
    let r = content_equals("a🎉b", b"a\xf0\x9f\x8eb");
    assert_verdict(
        &r,
        Verdict::Fail,
        &[
            "differs at byte 4",
            "\"a\\xf0\\x9f\\x8eb\"",
            "not valid UTF-8 at byte 1",
            "split or altered",
        ],
    );
    assert_eq!(r.received.as_deref(), Some("a\\xf0\\x9f\\x8eb"));
}

#[test]
fn control_characters_are_escaped_in_messages() {
    let r = content_equals("line1\nline2", b"line1\r\nline2");
    assert_verdict(
        &r,
        Verdict::Fail,
        &["\"line1\\nline2\"", "\"line1\\r\\nline2\""],
    );
}

#[test]
fn long_values_are_bounded_around_the_difference() {
    let expected = "x".repeat(10_000);
    let mut received = expected.clone().into_bytes();
    received[6_000] = b'y';
    let r = content_equals(&expected, &received);
    let shown = r.received.unwrap();
    assert!(shown.len() < 2 * FIELD_LIMIT, "{}", shown.len());
    assert!(shown.starts_with("[5488 bytes omitted]"), "{shown}");
    assert!(shown.contains('y'));
}

#[test]
fn bytes_equal_uses_the_given_level_and_words() {
    let r = bytes_equal(
        "prompt",
        "prompt seen upstream",
        b"caf\xc3\xa9",
        b"cafe",
        Verdict::NonStrict,
    );
    assert_verdict(
        &r,
        Verdict::NonStrict,
        &["prompt seen upstream differs at byte 3"],
    );
    let ok = bytes_equal("prompt", "prompt seen upstream", b"x", b"x", Verdict::Fail);
    assert_verdict(&ok, Verdict::Pass, &["prompt seen upstream: 1 byte,"]);
}

// ---- text_equals

#[test]
fn text_equals_all_outcomes() {
    let what = "X-Test-Pattern seen by the upstream";
    assert_verdict(
        &text_equals("pattern", what, "split:3", Some("split:3"), Verdict::Fail),
        Verdict::Pass,
        &[],
    );
    assert_verdict(
        &text_equals("pattern", what, "split:3", Some("basic"), Verdict::Fail),
        Verdict::Fail,
        &["differs at byte 0", "\"split:3\"", "\"basic\""],
    );
    let missing = text_equals("pattern", what, "split:3", None, Verdict::NonStrict);
    assert_verdict(
        &missing,
        Verdict::NonStrict,
        &["no X-Test-Pattern seen by the upstream arrived"],
    );
    assert_eq!(missing.received, None);
}

// ---- status_is

#[test]
fn status_all_outcomes() {
    assert_verdict(&status_is(200, Some(200)), Verdict::Pass, &["status 200"]);
    let wrong = status_is(200, Some(502));
    assert_verdict(&wrong, Verdict::Fail, &["status 502, expected 200"]);
    assert_eq!(
        (wrong.expected.as_deref(), wrong.received.as_deref()),
        (Some("200"), Some("502"))
    );
    let none = status_is(200, None);
    assert_verdict(
        &none,
        Verdict::Fail,
        &["no HTTP status line", "status line included"],
    );
    assert_eq!(none.received.as_deref(), Some("nothing"));
}

// ---- headers

fn headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("content-type", b"text/event-stream; charset=utf-8"),
        ("Cache-Control", b"no-store"),
        ("Cache-Control", b"No-Cache"),
        ("X-Custom", b"  v1 "),
        ("X-Bin", b"\xff"),
    ]
}

#[test]
fn header_present_all_outcomes() {
    let h = headers();
    let r = header_present("X-CUSTOM", &h, Verdict::Fail);
    assert_verdict(&r, Verdict::Pass, &["X-CUSTOM:   v1 "]);
    assert_eq!(r.name, "header X-CUSTOM");
    assert_verdict(
        &header_present("X-Accel-Buffering", &h, Verdict::Informational),
        Verdict::Informational,
        &["no X-Accel-Buffering header"],
    );
}

#[test]
fn header_contains_all_outcomes() {
    let h = headers();
    // Name and value compared case-insensitively; any of the repeated headers may match.
    assert_verdict(
        &header_contains("cache-control", "no-cache", &h, Verdict::NonStrict),
        Verdict::Pass,
        &[],
    );
    let wrong = header_contains("Cache-Control", "no-transform", &h, Verdict::NonStrict);
    assert_verdict(
        &wrong,
        Verdict::NonStrict,
        &[
            "Cache-Control is \"no-store, No-Cache\"",
            "contain \"no-transform\"",
        ],
    );
    assert_eq!(wrong.received.as_deref(), Some("no-store, No-Cache"));
    let missing = header_contains("Connection", "keep-alive", &h, Verdict::Fail);
    assert_verdict(
        &missing,
        Verdict::Fail,
        &["no Connection header", "containing \"keep-alive\""],
    );
    assert_eq!(missing.received, None);
    // Non-UTF-8 values are shown in hex.
    assert_verdict(
        &header_contains("X-Bin", "a", &h, Verdict::Fail),
        Verdict::Fail,
        &["\"\\xff\""],
    );
}

#[test]
fn header_equals_all_outcomes() {
    let h = headers();
    assert_verdict(
        &header_equals("x-custom", "v1", &h, Verdict::Fail),
        Verdict::Pass,
        &[],
    );
    assert_verdict(
        &header_equals("X-Custom", "v2", &h, Verdict::Fail),
        Verdict::Fail,
        &["X-Custom is \"  v1 \", expected \"v2\""],
    );
    assert_verdict(
        &header_equals("X-Other", "v", &h, Verdict::NonStrict),
        Verdict::NonStrict,
        &["no X-Other header", "\"X-Other: v\""],
    );
}

#[test]
fn content_type_all_outcomes() {
    let ok = content_type_is("text/event-stream", &headers(), Verdict::Fail);
    assert_verdict(&ok, Verdict::Pass, &["text/event-stream; charset=utf-8"]);
    let upper = [("Content-Type", "Text/Event-Stream")];
    assert_verdict(
        &content_type_is("text/event-stream", &upper, Verdict::Fail),
        Verdict::Pass,
        &[],
    );
    // A longer media type that merely contains the expected one is wrong.
    let longer = [("Content-Type", "text/event-streamx")];
    assert_verdict(
        &content_type_is("text/event-stream", &longer, Verdict::Fail),
        Verdict::Fail,
        &["is \"text/event-streamx\"", "EventSource rejects"],
    );
    let none: [(&str, &str); 0] = [];
    assert_verdict(
        &content_type_is("text/event-stream", &none, Verdict::Fail),
        Verdict::Fail,
        &["no Content-Type header"],
    );
    let two = [
        ("Content-Type", "text/event-stream"),
        ("content-type", "text/plain"),
    ];
    assert_verdict(
        &content_type_is("text/event-stream", &two, Verdict::Fail),
        Verdict::Fail,
        &["2 Content-Type headers", "send exactly one"],
    );
}

// ---- [DONE]

#[test]
fn done_present_all_outcomes() {
    assert_verdict(
        &done_present(Some(4), 5, Verdict::Fail),
        Verdict::Pass,
        &["event 5 of 5"],
    );
    assert_verdict(
        &done_present(None, 5, Verdict::Fail),
        Verdict::Fail,
        &["no `data: [DONE]` event among the 5 events"],
    );
    assert_verdict(
        &done_present(None, 1, Verdict::Fail),
        Verdict::Fail,
        &["among the 1 event:"],
    );
    assert_verdict(
        &done_present(Some(2), 5, Verdict::NonStrict),
        Verdict::NonStrict,
        &["event 3 of 5", "2 events followed it"],
    );
    assert_verdict(
        &done_present(Some(3), 5, Verdict::Fail),
        Verdict::Fail,
        &["1 event followed it"],
    );
}

#[test]
fn done_absent_all_outcomes() {
    assert_verdict(
        &done_absent(None, Verdict::NonStrict),
        Verdict::Pass,
        &["as required"],
    );
    assert_verdict(
        &done_absent(Some(6), Verdict::NonStrict),
        Verdict::NonStrict,
        &["was sent (event 7)", "cut answer"],
    );
}

// ---- finish_reason

#[test]
fn finish_reason_all_outcomes() {
    assert_verdict(
        &finish_reason_is("stop", Some("stop"), Verdict::NonStrict),
        Verdict::Pass,
        &[],
    );
    let wrong = finish_reason_is("length", Some("stop"), Verdict::NonStrict);
    // A wrong value is always a failure; only a missing one is tolerable.
    assert_verdict(&wrong, Verdict::Fail, &["\"stop\", expected \"length\""]);
    assert_eq!(wrong.received.as_deref(), Some("stop"));
    let missing = finish_reason_is("length", None, Verdict::NonStrict);
    assert_verdict(
        &missing,
        Verdict::NonStrict,
        &["no finish_reason", "\"length\""],
    );
    assert_eq!(missing.received, None);
}

// ---- timing

#[test]
fn within_all_outcomes() {
    let event = "the upstream request was cancelled";
    let ok = within("cancel", event, ms(2000), Some(ms(40)), Verdict::Fail);
    assert_verdict(
        &ok,
        Verdict::Pass,
        &["cancelled after 40.0 ms (limit 2.00 s)"],
    );
    // The limit itself is still in time.
    assert_verdict(
        &within("cancel", event, ms(2000), Some(ms(2000)), Verdict::Fail),
        Verdict::Pass,
        &[],
    );
    let late = within("cancel", event, ms(2000), Some(ms(2500)), Verdict::Fail);
    assert_verdict(
        &late,
        Verdict::Fail,
        &["after 2.50 s, later than the 2.00 s allowed"],
    );
    let never = within("cancel", event, ms(2000), None, Verdict::NonStrict);
    assert_verdict(
        &never,
        Verdict::NonStrict,
        &["expected within 2.00 s", "did not happen"],
    );
    assert_eq!(never.received.as_deref(), Some("never"));
}

#[test]
fn closed_within_all_outcomes() {
    assert_verdict(
        &closed_within(ms(5000), Some(ms(1))),
        Verdict::Pass,
        &["closed the connection after 1.0 ms"],
    );
    assert_verdict(
        &closed_within(ms(5000), Some(ms(6000))),
        Verdict::Fail,
        &["later than the 5.00 s"],
    );
    assert_verdict(
        &closed_within(ms(5000), None),
        Verdict::Fail,
        &["did not happen"],
    );
}

// ---- upstream errors

#[test]
fn error_reported_all_outcomes() {
    assert_verdict(
        &error_reported(Some(502), None),
        Verdict::Pass,
        &["HTTP status 502"],
    );
    assert_verdict(&error_reported(Some(429), None), Verdict::Pass, &["429"]);
    assert_verdict(
        &error_reported(Some(200), Some(r#"{"error":"upstream 500"}"#)),
        Verdict::Pass,
        &["SSE error event"],
    );
    let silent = error_reported(Some(200), None);
    assert_verdict(
        &silent,
        Verdict::Fail,
        &["status 200 and no SSE error event"],
    );
    assert_eq!(
        silent.received.as_deref(),
        Some("status 200, no error event")
    );
    let nothing = error_reported(None, None);
    assert_verdict(&nothing, Verdict::Fail, &["no response head"]);
    assert_eq!(nothing.received.as_deref(), Some("nothing"));
    // A 3xx is no error report.
    assert_verdict(
        &error_reported(Some(302), None),
        Verdict::Fail,
        &["status 302"],
    );
}

// ---- generic

#[test]
fn count_is_all_outcomes() {
    let what = "upstream requests with this nonce";
    assert_verdict(
        &count_is("requests", what, 1, 1, Verdict::Fail),
        Verdict::Pass,
        &["1 upstream"],
    );
    let r = count_is("requests", what, 1, 0, Verdict::Fail);
    assert_verdict(
        &r,
        Verdict::Fail,
        &["0 upstream requests with this nonce, expected 1"],
    );
    assert_eq!(
        (r.expected.as_deref(), r.received.as_deref()),
        (Some("1"), Some("0"))
    );
}

#[test]
fn that_all_outcomes() {
    assert_verdict(
        &that("own content", true, Verdict::Fail, "mixed"),
        Verdict::Pass,
        &[],
    );
    assert_verdict(
        &that(
            "own content",
            false,
            Verdict::Fail,
            "stream 7 got stream 3's content",
        ),
        Verdict::Fail,
        &["stream 7 got stream 3's content"],
    );
}

#[test]
fn info_is_informational() {
    let r = info(
        "headers before upstream",
        "headers went out 2 ms before the upstream answered",
    );
    assert_verdict(&r, Verdict::Informational, &["2 ms before"]);
}

#[test]
fn durations_read_naturally() {
    assert_eq!(format_ns(850), "850 ns");
    assert_eq!(format_ns(12_340), "12.3 µs");
    assert_eq!(format_ns(4_500_000), "4.5 ms");
    assert_eq!(format_duration(ms(2000)), "2.00 s");
    // Rounding never shows a four-digit figure of the smaller unit.
    assert_eq!(format_ns(999_949), "999.9 µs");
    assert_eq!(format_ns(999_950), "1.0 ms");
    assert_eq!(format_ns(999_949_999), "999.9 ms");
    assert_eq!(format_ns(999_950_000), "1.00 s");
}
