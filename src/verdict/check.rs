//! The assertion toolkit scenarios judge streams with.
//!
//! Each helper takes plain values (bytes, status codes, header pairs, durations), compares them
//! exactly and returns one [`AssertionResult`] whose message says what differs and where, in
//! words a daemon author can act on. Helpers whose finding can be tolerated take the verdict
//! to give on mismatch (`level`), so one helper serves a must (`Verdict::Fail`), a should
//! (`Verdict::NonStrict`) and a fact (`Verdict::Informational`).

use std::time::Duration;

use super::causes::{Cause, known};
use super::render::{bounded, escape_bytes, excerpt, window};
use super::{AssertionResult, Verdict};
use crate::http1::media_type;

/// Bytes of context shown on each side of a difference in a message.
const CONTEXT: usize = 24;
/// Bytes of a value kept in `expected` / `received` (around the difference when longer).
const FIELD_LIMIT: usize = 1024;

/// The decoded content must equal the pattern's content byte for byte (fails otherwise).
///
/// On mismatch the message names the first differing byte offset and shows the bytes around
/// it in both (escaped text, `\xNN` where the received bytes are not valid UTF-8), and says
/// whether the content stopped early, ran on, or broke UTF-8.
pub fn content_equals(expected: &str, received: &[u8]) -> AssertionResult {
    bytes_equal(
        "content",
        "content",
        expected.as_bytes(),
        received,
        Verdict::Fail,
    )
}

/// Generic exact comparison of two byte strings; `what` names the value in the message
/// (e.g. "prompt seen by the upstream"), `level` is the verdict on mismatch.
pub fn bytes_equal(
    name: &str,
    what: &str,
    expected: &[u8],
    received: &[u8],
    level: Verdict,
) -> AssertionResult {
    if expected == received {
        return AssertionResult::pass(
            name,
            format!("{what}: {}, as expected", plural(expected.len(), "byte")),
        );
    }
    let at = expected
        .iter()
        .zip(received)
        .take_while(|(e, r)| e == r)
        .count();
    let mut message = if received.is_empty() {
        format!("no {what} received; expected {} bytes", expected.len())
    } else if at == received.len() {
        format!(
            "{what} ends early: received {} of {} bytes; missing from byte {at}: \"{}\"",
            received.len(),
            expected.len(),
            excerpt(expected, window(expected, at, 0, CONTEXT)),
        )
    } else if at == expected.len() {
        format!(
            "{what} runs on: {} unexpected bytes after the expected {}, from byte {at}: \"{}\"",
            received.len() - expected.len(),
            expected.len(),
            excerpt(received, window(received, at, 0, CONTEXT)),
        )
    } else {
        format!(
            "{what} differs at byte {at} (expected {} bytes, received {}): expected \"{}\", received \"{}\"",
            expected.len(),
            received.len(),
            excerpt(expected, window(expected, at, CONTEXT, CONTEXT)),
            excerpt(received, window(received, at, CONTEXT, CONTEXT)),
        )
    };
    if let Err(e) = std::str::from_utf8(received) {
        message.push_str(&format!(
            "; the received bytes are not valid UTF-8 at byte {}: a multi-byte character was split or altered on the way",
            e.valid_up_to()
        ));
    }
    AssertionResult::new(name, level, message)
        .with_expected(bounded(expected, at, FIELD_LIMIT))
        .with_received(bounded(received, at, FIELD_LIMIT))
}

/// An optional text value (a header seen upstream, a model name) must equal `expected`;
/// `None` means the value never arrived.
pub fn text_equals(
    name: &str,
    what: &str,
    expected: &str,
    received: Option<&str>,
    level: Verdict,
) -> AssertionResult {
    match received {
        Some(r) => bytes_equal(name, what, expected.as_bytes(), r.as_bytes(), level),
        None => AssertionResult::new(
            name,
            level,
            format!(
                "no {what} arrived; expected \"{}\"",
                escape_bytes(expected.as_bytes())
            ),
        )
        .with_expected(escape_bytes(expected.as_bytes())),
    }
}

/// The response status must be `expected`; `None` means no status line was received.
pub fn status_is(expected: u16, received: Option<u16>) -> AssertionResult {
    let name = "status";
    let result = match received {
        Some(s) if s == expected => AssertionResult::pass(name, format!("status {s}")),
        Some(s) => AssertionResult::new(
            name,
            Verdict::Fail,
            format!("status {s}, expected {expected}"),
        ),
        None => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "no HTTP status line received; expected status {expected} (the daemon owns the \
                 client socket and must write the whole response, status line included)"
            ),
        ),
    };
    let cause = match received {
        Some(_) => known::WRONG_STATUS,
        None => known::NO_STATUS,
    };
    result
        .with_expected(expected.to_string())
        .with_received(received.map_or_else(|| "nothing".to_string(), |s| s.to_string()))
        .with_cause(cause)
}

/// The cause of a finding about response header `name`.
fn header_cause(name: &str) -> Cause {
    let key = format!("header-{}", name.to_ascii_lowercase());
    Cause::new(key, format!("{name} header missing or wrong"))
}

/// Values of every header called `name` (ASCII case-insensitive), in order.
fn values_of<'h, N, V>(name: &str, headers: &'h [(N, V)]) -> Vec<&'h [u8]>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    headers
        .iter()
        .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
        .collect()
}

fn joined(values: &[&[u8]]) -> String {
    values
        .iter()
        .map(|v| escape_bytes(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Attaches the header values found as `received`, unless there were none.
fn with_values(result: AssertionResult, values: &[&[u8]]) -> AssertionResult {
    if values.is_empty() {
        result
    } else {
        result.with_received(joined(values))
    }
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A header `name` (case-insensitive) must be present; `level` is the verdict when it is not.
pub fn header_present<N, V>(name: &str, headers: &[(N, V)], level: Verdict) -> AssertionResult
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let values = values_of(name, headers);
    let label = format!("header {name}");
    if values.is_empty() {
        AssertionResult::new(label, level, format!("no {name} header in the response"))
            .with_cause(header_cause(name))
    } else {
        AssertionResult::pass(label, format!("{name}: {}", joined(&values)))
            .with_received(joined(&values))
    }
}

/// A header `name` (case-insensitive) must contain `needle` (ASCII case-insensitive, as header
/// tokens such as `no-cache` are); with repeated headers one match suffices. `level` is the
/// verdict when the header is missing or does not contain it.
pub fn header_contains<N, V>(
    name: &str,
    needle: &str,
    headers: &[(N, V)],
    level: Verdict,
) -> AssertionResult
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let values = values_of(name, headers);
    let label = format!("header {name}");
    let result = if values.is_empty() {
        AssertionResult::new(
            label,
            level,
            format!("no {name} header in the response; expected one containing \"{needle}\""),
        )
    } else if values
        .iter()
        .any(|v| contains_ignore_ascii_case(v, needle.as_bytes()))
    {
        AssertionResult::pass(label, format!("{name}: {}", joined(&values)))
    } else {
        AssertionResult::new(
            label,
            level,
            format!(
                "{name} is \"{}\", expected it to contain \"{needle}\"",
                joined(&values)
            ),
        )
    };
    with_values(
        result
            .with_expected(format!("{name} containing {needle}"))
            .with_cause(header_cause(name)),
        &values,
    )
}

/// A header `name` must be present with exactly `expected` as its value (surrounding spaces
/// and tabs ignored, as HTTP does); `level` is the verdict otherwise.
pub fn header_equals<N, V>(
    name: &str,
    expected: &str,
    headers: &[(N, V)],
    level: Verdict,
) -> AssertionResult
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let values = values_of(name, headers);
    let label = format!("header {name}");
    let result = if values.is_empty() {
        AssertionResult::new(
            label,
            level,
            format!("no {name} header in the response; expected \"{name}: {expected}\""),
        )
    } else if values.iter().any(|v| v.trim_ascii() == expected.as_bytes()) {
        AssertionResult::pass(label, format!("{name}: {expected}"))
    } else {
        AssertionResult::new(
            label,
            level,
            format!("{name} is \"{}\", expected \"{expected}\"", joined(&values)),
        )
    };
    with_values(
        result
            .with_expected(expected)
            .with_cause(header_cause(name)),
        &values,
    )
}

/// `Content-Type` must name the media type `expected` (e.g. `text/event-stream`), compared
/// case-insensitively and ignoring parameters such as `; charset=utf-8`.
pub fn content_type_is<N, V>(expected: &str, headers: &[(N, V)], level: Verdict) -> AssertionResult
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let values = values_of("Content-Type", headers);
    let label = "header Content-Type";
    let result = match values.as_slice() {
        [] => AssertionResult::new(
            label,
            level,
            format!("no Content-Type header; a browser's EventSource requires {expected}"),
        ),
        [one] if media_type(one).eq_ignore_ascii_case(expected.as_bytes()) => {
            AssertionResult::pass(label, format!("Content-Type: {}", escape_bytes(one)))
        }
        [one] => AssertionResult::new(
            label,
            level,
            format!(
                "Content-Type is \"{}\", expected {expected}; a browser's EventSource rejects \
                 any other media type",
                escape_bytes(one)
            ),
        ),
        many => AssertionResult::new(
            label,
            level,
            format!(
                "{} Content-Type headers ({}); send exactly one",
                many.len(),
                joined(many)
            ),
        ),
    };
    with_values(
        result
            .with_expected(expected)
            .with_cause(known::CONTENT_TYPE),
        &values,
    )
}

/// The stream must end with a `data: [DONE]` event: `done_at` is the index of the `[DONE]`
/// event among `events` dispatched events (`None`: there was none). Events after `[DONE]`
/// count as a mismatch too. `level` is the verdict on mismatch.
pub fn done_present(done_at: Option<usize>, events: usize, level: Verdict) -> AssertionResult {
    let name = "[DONE]";
    let result = match done_at {
        None => AssertionResult::new(
            name,
            level,
            format!(
                "no `data: [DONE]` event among the {}: OpenAI clients wait for it to know the \
                 answer is complete",
                plural(events, "event")
            ),
        ),
        Some(i) if i + 1 < events => AssertionResult::new(
            name,
            level,
            format!(
                "`data: [DONE]` was event {} of {events}: {} followed it, which clients never \
                 read",
                i + 1,
                plural(events - i - 1, "event")
            ),
        ),
        Some(i) => AssertionResult::pass(
            name,
            format!(
                "`data: [DONE]` ended the stream (event {} of {events})",
                i + 1
            ),
        ),
    };
    result
        .with_expected("`data: [DONE]` as the last event")
        .with_cause(known::DONE_MISSING)
}

/// The stream must not carry `data: [DONE]` (e.g. after the upstream broke off): `done_at` is
/// the index of the `[DONE]` event if one came. `level` is the verdict when it did.
pub fn done_absent(done_at: Option<usize>, level: Verdict) -> AssertionResult {
    let name = "no [DONE]";
    let result = match done_at {
        None => AssertionResult::pass(name, "no `data: [DONE]` event, as required"),
        Some(i) => AssertionResult::new(
            name,
            level,
            format!(
                "`data: [DONE]` was sent (event {}) although the answer was not complete: a \
                 client takes the cut answer for a whole one",
                i + 1
            ),
        ),
    };
    result
        .with_expected("no `data: [DONE]` event")
        .with_cause(known::DONE_AFTER_INCOMPLETE)
}

/// The stream's `finish_reason` must be `expected`. A different value fails; a missing one
/// (`None`) gets `missing_level`, since the simplified `{"content"}` format carries none.
pub fn finish_reason_is(
    expected: &str,
    received: Option<&str>,
    missing_level: Verdict,
) -> AssertionResult {
    let name = "finish_reason";
    let result = match received {
        Some(r) if r == expected => AssertionResult::pass(name, format!("finish_reason \"{r}\"")),
        Some(r) => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "finish_reason \"{}\", expected \"{expected}\" as the upstream sent it",
                escape_bytes(r.as_bytes())
            ),
        ),
        None => AssertionResult::new(
            name,
            missing_level,
            format!(
                "no finish_reason in the stream; the upstream ended with \"{expected}\" and a \
                 client cannot tell a complete answer from a truncated one without it"
            ),
        ),
    };
    let result = result
        .with_expected(expected)
        .with_cause(known::FINISH_REASON);
    match received {
        Some(r) => result.with_received(escape_bytes(r.as_bytes())),
        None => result,
    }
}

/// Something (`event`, e.g. "the upstream request was cancelled") must happen within `limit`;
/// `measured` is when it happened, `None` if it never did. `level` is the verdict otherwise.
pub fn within(
    name: &str,
    event: &str,
    limit: Duration,
    measured: Option<Duration>,
    level: Verdict,
) -> AssertionResult {
    let limit_text = format_duration(limit);
    let result = match measured {
        Some(d) if d <= limit => AssertionResult::pass(
            name,
            format!("{event} after {} (limit {limit_text})", format_duration(d)),
        ),
        Some(d) => AssertionResult::new(
            name,
            level,
            format!(
                "{event} after {}, later than the {limit_text} allowed",
                format_duration(d)
            ),
        ),
        None => AssertionResult::new(
            name,
            level,
            format!("expected within {limit_text}: {event}; it did not happen"),
        ),
    };
    result
        .with_expected(format!("within {limit_text}"))
        .with_received(measured.map_or_else(|| "never".to_string(), format_duration))
}

/// The daemon must close the connection within `limit` (fails otherwise); `closed_after` is
/// when it closed, `None` if it was still open when the client gave up.
pub fn closed_within(limit: Duration, closed_after: Option<Duration>) -> AssertionResult {
    within(
        "connection closed",
        "the daemon closed the connection",
        limit,
        closed_after,
        Verdict::Fail,
    )
    .with_cause(known::NEVER_CLOSED)
}

/// After an upstream failure the response must say so: an HTTP error status (4xx/5xx) or an
/// SSE error event (fails otherwise). `status` is the response status (`None`: no head),
/// `error_event` the text of the first SSE error event, if any.
pub fn error_reported(status: Option<u16>, error_event: Option<&str>) -> AssertionResult {
    let name = "error reported";
    let expected = "an HTTP error status (4xx/5xx) or an SSE error event";
    let result = match (status, error_event) {
        (Some(s), _) if s >= 400 => AssertionResult::pass(name, format!("HTTP status {s}")),
        (_, Some(e)) => AssertionResult::pass(
            name,
            format!("SSE error event: {}", escape_bytes(e.as_bytes())),
        ),
        (Some(s), None) => AssertionResult::new(
            name,
            Verdict::Fail,
            format!(
                "the upstream failed but the response gave status {s} and no SSE error event: \
                 a client cannot tell the failure from an empty answer"
            ),
        ),
        (None, None) => AssertionResult::new(
            name,
            Verdict::Fail,
            "the upstream failed but the daemon sent no response head and no SSE error event",
        ),
    };
    let received = match (status, error_event) {
        (_, Some(e)) => format!("error event {}", escape_bytes(e.as_bytes())),
        (Some(s), None) => format!("status {s}, no error event"),
        (None, None) => "nothing".to_string(),
    };
    let cause = match (status, error_event) {
        (Some(_), _) => known::UPSTREAM_FAILURE_HIDDEN,
        _ => known::UPSTREAM_FAILURE_UNANSWERED,
    };
    result
        .with_expected(expected)
        .with_received(received)
        .with_cause(cause)
}

/// A count must be exact: `expected` of `what` (e.g. "upstream requests for this nonce").
pub fn count_is(
    name: &str,
    what: &str,
    expected: usize,
    received: usize,
    level: Verdict,
) -> AssertionResult {
    let result = if expected == received {
        AssertionResult::pass(name, format!("{received} {what}"))
    } else {
        AssertionResult::new(
            name,
            level,
            format!("{received} {what}, expected {expected}"),
        )
    };
    result
        .with_expected(expected.to_string())
        .with_received(received.to_string())
}

/// A condition the scenario evaluated itself: passes when `holds`, otherwise gets `level` with
/// `message_if_not` (which should say what went wrong and what to change).
pub fn that(name: &str, holds: bool, level: Verdict, message_if_not: &str) -> AssertionResult {
    if holds {
        AssertionResult::pass(name, "as required")
    } else {
        AssertionResult::new(name, level, message_if_not)
    }
}

/// A fact reported without judging it (verdict `INFORMATIONAL`), e.g. "headers went out
/// 2 ms before the upstream answered".
pub fn info(name: &str, fact: impl Into<String>) -> AssertionResult {
    AssertionResult::new(name, Verdict::Informational, fact)
}

/// `1 event`, `3 events`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A duration for a message: `850 ns`, `12.3 µs`, `4.5 ms`, `2.00 s`.
pub fn format_duration(d: Duration) -> String {
    format_ns(super::duration_ns(d))
}

/// Nanoseconds for a message, as [`format_duration`] does. A value that would round up to the
/// next unit is written in it (`1.0 ms`, never `1000.0 µs`).
pub fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..999_950 => format!("{:.1} µs", ns as f64 / 1e3),
        999_950..999_950_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests;
