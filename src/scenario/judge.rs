//! From a recorded stream, the pattern's expected outcome and the mock's log to assertions.
//!
//! Every assertion here is derived: what the content must be, whether `[DONE]` must come,
//! whether an error must be reported, all come from the pattern's [`Expected`]. Messages say
//! what went wrong and what the daemon should do instead.

mod attribution;
mod log;

use std::time::Duration;

use attribution::{attribute_consequences, content_cause};
use log::{Delivery, delivery, forwarded, head_timing, relayed_incrementally, upstream_cancelled};

use super::data::Handoff;
use super::observe::{ClientClose, Observation};
use super::{Check, HeaderRule};
use crate::handoff::{HandoffError, HandoffFate};
use crate::http1;
use crate::mock::RequestRecord;
use crate::pattern::{Expected, ExpectedKind};
use crate::ring::EndReason;
use crate::transcript::SettledCause;
use crate::verdict::causes::known;
use crate::verdict::check;
use crate::verdict::{AssertionResult, Verdict};

/// Time limits a stream is judged by.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The per-stream deadline (`--timeout`).
    pub timeout: Duration,
    /// How long the daemon may keep a connection open after `[DONE]`.
    pub grace: Duration,
}

/// Everything one stream is judged on.
pub(super) struct Case<'a> {
    /// The scenario judged (its name), which decides whose requirement a finding about the
    /// upstream request is (`owners.rs`); `None` where the upstream request is not judged.
    pub scenario: Option<&'static str>,
    pub obs: &'a Observation,
    pub expected: &'a Expected,
    pub handoff: &'a Handoff,
    /// The mock's log for this handoff's nonce.
    pub requests: &'a [RequestRecord],
    /// Requests without any nonce the mock received while this stream ran: the evidence that
    /// the daemon lost the handoff's data and went on with defaults. Counted only where a
    /// check needs it (data used or refused, and no request carried the nonce).
    pub stray_requests: usize,
    pub limits: Limits,
}

fn fail(name: &str, message: impl Into<String>) -> AssertionResult {
    AssertionResult::new(name, Verdict::Fail, message)
}

/// Whether a check's outcome depends on the pattern the mock served (content, ending, timing):
/// such a check cannot be judged when the pattern never reached the mock.
fn needs_pattern(c: Check) -> bool {
    !matches!(
        c,
        Check::StatusLine
            | Check::Header { .. }
            | Check::ResponseHeadersEchoed
            | Check::ProcessedOrRejected
            | Check::UpstreamFailure
    )
}

/// The assertions of one stream scenario: response problems, each check, and (where the data
/// carries a nonce and the daemon is expected to call the upstream) what reached the upstream.
pub(super) fn judge(case: &Case<'_>, checks: &[Check]) -> Vec<AssertionResult> {
    if let Some(fate) = case.obs.not_taken() {
        // The daemon never had the client socket: nothing else can be judged, and advice
        // about the response would presume it had.
        return vec![
            fail(
                "handoff taken",
                not_taken_message(fate, case.obs, case.limits),
            )
            .with_cause(known::HANDOFF_NOT_TAKEN),
        ];
    }
    // Where the data may be refused, an empty answer gets its own, more specific message.
    let silence_reported = !checks.contains(&Check::ProcessedOrRejected);
    let mut out = response_problems(case.obs, case.limits, silence_reported);
    let calls_upstream = !checks
        .iter()
        .any(|c| matches!(c, Check::ProcessedOrRejected | Check::UpstreamFailure));
    let delivered = match case.scenario {
        Some(_) if calls_upstream => delivery(case),
        _ => Delivery::NotJudged,
    };
    let mut skipped = false;
    for c in checks {
        if delivered.lost() && needs_pattern(*c) {
            skipped = true;
            continue;
        }
        out.extend(one(case, *c));
    }
    if delivered != Delivery::NotJudged {
        out.extend(forwarded(case, &delivered, skipped));
    }
    attribute_consequences(&mut out);
    out
}

/// A handoff the daemon never took: the cause, not the silence that followed.
pub(super) fn not_taken_message(fate: HandoffFate, obs: &Observation, limits: Limits) -> String {
    let waited = match obs.end {
        EndReason::Timeout => format!(" within {}", check::format_duration(limits.timeout)),
        _ => String::new(),
    };
    let fix = match fate {
        HandoffFate::NeverAccepted => {
            "the handoff waited in its listen backlog and the browser got nothing; accept each \
             connection on the listening socket (is the accept loop running, or blocked?)"
        }
        _ => {
            "the browser got nothing; read the message (one recvmsg with SCM_RIGHTS) as soon as \
             the connection is accepted"
        }
    };
    format!("{}{waited}: {fix}", fate.describe())
}

/// A response that is not HTTP/1.x, or a body that is not an event stream.
fn response_problems(obs: &Observation, limits: Limits, silence: bool) -> Vec<AssertionResult> {
    let mut out = Vec::new();
    if obs.received_bytes() == 0 && obs.client_close.is_none() {
        if !silence {
            return out;
        }
        let message = match &obs.end {
            EndReason::Timeout => format!(
                "the daemon wrote nothing within {} and kept the connection open: the browser \
                 hangs with no answer",
                check::format_duration(limits.timeout)
            ),
            _ => "the daemon closed the connection without writing a byte: the browser gets an \
                  empty reply (and Apache still logs 200); write a response head, or an HTTP \
                  error"
                .to_owned(),
        };
        let cause = match &obs.end {
            EndReason::Timeout => known::SILENT_HANG,
            _ => known::EMPTY_REPLY,
        };
        out.push(fail("HTTP response", message).with_cause(cause));
        return out;
    }
    if let Some(e) = obs.http_error() {
        let too_large = matches!(obs.t.http.error, Some(http1::Error::HeadTooLarge { .. }));
        let message = if obs.head().is_none() && obs.received_bytes() > 0 && !too_large {
            format!(
                "the response does not start with an HTTP/1.x head ({e}): after the handoff the \
                 daemon owns the raw connection and must write the status line and headers itself"
            )
        } else {
            format!("the response is not valid HTTP/1.x: {e}")
        };
        out.push(fail("HTTP response", closing(obs, message)).with_cause(known::NOT_HTTP));
    }
    if let Some(e) = obs.sse_error() {
        let message = format!("the body is not a valid event stream: {e}");
        out.push(fail("event stream", closing(obs, message)).with_cause(known::NOT_EVENT_STREAM));
    }
    if let Some(cause) = &obs.t.settled
        && matches!(
            cause,
            SettledCause::TooManyBytes { .. } | SettledCause::TooManyEvents { .. }
        )
    {
        let message = format!(
            "{cause}; streamcheck stopped reading and closed the connection after {} bytes",
            obs.received_bytes()
        );
        out.push(fail("response size", message).with_cause(known::RESPONSE_TOO_LARGE));
    }
    out
}

/// `message`, saying where streamcheck stopped reading when this finding settled the stream.
fn closing(obs: &Observation, message: String) -> String {
    match &obs.t.settled {
        Some(SettledCause::Http(_) | SettledCause::Sse(_)) => format!(
            "{message}; streamcheck stopped reading there and closed the connection after {} \
             bytes",
            obs.received_bytes()
        ),
        _ => message,
    }
}

fn one(case: &Case<'_>, c: Check) -> Vec<AssertionResult> {
    let obs = case.obs;
    match c {
        Check::Outcome => {
            let mut v: Vec<_> = relay_status(case).into_iter().collect();
            v.extend(content(case));
            v.extend(ending(case));
            v
        }
        Check::Content => content(case),
        Check::Ending => ending(case),
        Check::ContentPieces { what, pieces } => vec![content_pieces(case, what, pieces)],
        Check::FinishReason => finish_reason(case).into_iter().collect(),
        Check::StatusLine => vec![status_line(obs)],
        Check::Header { name, rule, level } => vec![header(obs, name, rule, level)],
        Check::ResponseHeadersEchoed => {
            let headers = obs.headers();
            case.handoff
                .response_headers
                .iter()
                .map(|(name, value)| {
                    let mut a = check::header_equals(name, value, &headers, Verdict::Fail);
                    if a.verdict == Verdict::Fail {
                        a.message.push_str(
                            ": append each entry of the handoff's response_headers object to the \
                             response head",
                        );
                    }
                    a
                })
                .collect()
        }
        Check::HeadTiming => vec![head_timing(case)],
        Check::ProcessedOrRejected => processed_or_rejected(case),
        Check::UpstreamFailure => {
            let mut v = failure_reported(obs);
            v.push(closed(case));
            v
        }
        Check::UpstreamCancelled { within_ms } => {
            vec![upstream_cancelled(case, Duration::from_millis(within_ms))]
        }
        Check::RelayedIncrementally => vec![relayed_incrementally(case)],
    }
}

/// A status check where the outcome requires content to be relayed (status 200).
fn relay_status(case: &Case<'_>) -> Option<AssertionResult> {
    let e = case.expected;
    let relays = match e.kind {
        ExpectedKind::Complete | ExpectedKind::Truncated => true,
        ExpectedKind::Reset => !e.content.is_empty(),
        ExpectedKind::Stall { .. } => case.obs.done_at().is_some(),
        ExpectedKind::UpstreamError { .. } => false,
    };
    relays.then(|| check::status_is(200, case.obs.status()))
}

fn content(case: &Case<'_>) -> Vec<AssertionResult> {
    let obs = case.obs;
    if matches!(case.expected.kind, ExpectedKind::Stall { .. }) && obs.done_at().is_none() {
        // A daemon whose upstream timeout is shorter than the stall ends with an error
        // instead; what it relayed before is all there can be.
        return Vec::new();
    }
    let mut equal = check::content_equals(&case.expected.content, obs.content());
    let replaced = String::from_utf8_lossy(obs.content()).contains('\u{FFFD}');
    if equal.verdict == Verdict::Fail && replaced && !case.expected.content.contains('\u{FFFD}') {
        equal.message.push_str(
            "; U+FFFD stands where characters were: the relay decoded a read that ended inside a \
             multi-byte character; keep an incomplete sequence's bytes for the next read",
        );
    }
    if equal.verdict == Verdict::Fail {
        let cause = content_cause(case.expected.content.as_bytes(), obs.content(), replaced);
        equal = equal.with_cause(cause);
    }
    let mut out = vec![equal];
    let undecodable = obs.undecodable();
    if let Some((index, why)) = undecodable.first() {
        out.push(
            fail(
                "event payloads",
                format!(
                    "{} of {} events carry data a browser client cannot read; event {} is {why}: \
                 send `data: {{\"content\":\"…\"}}` (or the upstream's chunk verbatim)",
                    undecodable.len(),
                    obs.event_count(),
                    index + 1
                ),
            )
            .with_cause(known::EVENT_PAYLOADS),
        );
    }
    out
}

fn ending(case: &Case<'_>) -> Vec<AssertionResult> {
    let obs = case.obs;
    let events = obs.event_count();
    let mut out = Vec::new();
    match case.expected.kind {
        ExpectedKind::Complete => {
            out.push(check::done_present(obs.done_at(), events, Verdict::Fail));
            if let Some(e) = obs.error_event() {
                out.push(
                    fail(
                        "no error event",
                        format!(
                            "the daemon sent an error event ({}) although the upstream answered \
                             in full",
                            crate::verdict::escape_bytes(e.as_bytes())
                        ),
                    )
                    .with_cause(known::SPURIOUS_ERROR),
                );
            }
        }
        ExpectedKind::Truncated => {
            out.push(check::done_absent(obs.done_at(), Verdict::NonStrict));
            if obs.done_at().is_none() {
                let how = match obs.error_event() {
                    Some(e) => format!("with an error event ({e})"),
                    None => "by closing without [DONE]".to_owned(),
                };
                out.push(AssertionResult::pass(
                    "truncation reported",
                    format!("the client was told the answer is incomplete {how}"),
                ));
            }
        }
        ExpectedKind::Reset if closed_after_relaying(obs) => {
            // PROTOCOL.md §3: after an upstream that broke off, an error event or closing
            // without [DONE] tells the client the truth; both are correct.
            out.push(AssertionResult::pass(
                "truncation reported",
                "the client was told the answer is incomplete by closing without [DONE] after \
                 the relayed words",
            ));
        }
        ExpectedKind::Reset | ExpectedKind::UpstreamError { .. } => {
            out.extend(failure_reported(obs));
        }
        ExpectedKind::Stall { .. } => {
            if obs.done_at().is_some() {
                out.push(check::done_present(obs.done_at(), events, Verdict::Fail));
            } else {
                out.extend(failure_reported(obs));
            }
        }
    }
    out.push(closed(case));
    out
}

/// The upstream's `finish_reason` at the client. The simplified `{"content":…}` format that
/// PROTOCOL.md documents has no field for it: there `[DONE]` is what says the answer is
/// complete, so a stream of only simplified events is not faulted for lacking the field. Where
/// the stream uses OpenAI chunks (or carries a finish_reason at all), the value is judged.
fn finish_reason(case: &Case<'_>) -> Option<AssertionResult> {
    let expected = case.expected.finish_reason.as_deref()?;
    let obs = case.obs;
    let received = obs.finish_reason();
    let shapes = &obs.t.interpretation;
    let simplified_only = shapes.simplified_events > 0 && shapes.openai_events == 0;
    if received.is_some() || !simplified_only {
        return Some(check::finish_reason_is(
            expected,
            received,
            Verdict::NonStrict,
        ));
    }
    let name = "finish_reason";
    let format = "the simplified `{\"content\":…}` format has no finish_reason field";
    let result = match (expected, obs.done_at()) {
        ("stop", Some(_)) => AssertionResult::pass(
            name,
            format!("{format}; `data: [DONE]` tells the client the answer is complete"),
        ),
        ("stop", None) => AssertionResult::new(
            name,
            Verdict::Informational,
            format!(
                "not judged: {format}, and without `data: [DONE]` (see [DONE]) nothing says \
                     the answer is complete"
            ),
        ),
        (reason, _) => AssertionResult::new(
            name,
            Verdict::Informational,
            format!(
                "the upstream ended with \"{reason}\" but {format}, so the client cannot learn \
                 why the answer ended; to pass it on, relay the upstream's chunks verbatim (the \
                 OpenAI format)"
            ),
        ),
    };
    Some(result.with_expected(expected))
}

/// A 200 stream that relayed content and ended without `[DONE]` or an error event: the close
/// itself says the answer is incomplete (whether the close came in time is judged apart).
fn closed_after_relaying(obs: &Observation) -> bool {
    obs.end == EndReason::PeerClosed
        && obs.status() == Some(200)
        && !obs.content().is_empty()
        && obs.done_at().is_none()
        && obs.error_event().is_none()
}

/// After an upstream failure: an error reported, and no `[DONE]`. A 200 that ends with
/// `[DONE]` is one defect, the error relayed as a complete answer: both findings name it.
fn failure_reported(obs: &Observation) -> Vec<AssertionResult> {
    let mut reported = check::error_reported(obs.status(), obs.error_event());
    let mut done = check::done_absent(obs.done_at(), Verdict::Fail);
    if reported.verdict == Verdict::Fail && done.verdict == Verdict::Fail {
        reported = reported.with_cause(known::UPSTREAM_ERROR_AS_DONE);
        done = done.with_cause(known::UPSTREAM_ERROR_AS_DONE);
    }
    vec![reported, done]
}

/// The daemon closed the connection: promptly after `[DONE]`, or at all before the deadline.
pub(super) fn closed(case: &Case<'_>) -> AssertionResult {
    let obs = case.obs;
    let name = "connection closed";
    match (obs.client_close, &obs.end) {
        (Some(ClientClose::NotClosedAfterDone), _) => fail(
            name,
            format!(
                "the daemon sent data: [DONE] but kept the connection open for {} more: with no \
                 Content-Length the browser only knows the body is over when the connection \
                 closes; close it after [DONE]",
                check::format_duration(case.limits.grace)
            ),
        )
        .with_cause(known::OPEN_AFTER_DONE),
        (Some(ClientClose::AfterEvents { .. }), _) => {
            AssertionResult::pass(name, "the client closed it, as the scenario asks")
        }
        (Some(ClientClose::Settled), _) => AssertionResult::new(
            name,
            Verdict::Informational,
            "not judged: streamcheck closed the connection once the outcome was settled (see \
             the other assertions)",
        ),
        (None, EndReason::PeerClosed) => {
            let end = obs.end_ns;
            match (obs.done_ns(), obs.sent_ns()) {
                (Some(done), _) => check::closed_within(
                    case.limits.grace,
                    Some(Duration::from_nanos(end.saturating_sub(done))),
                ),
                (None, Some(sent)) => check::closed_within(
                    case.limits.timeout,
                    Some(Duration::from_nanos(end.saturating_sub(sent))),
                ),
                (None, None) => AssertionResult::pass(name, "the daemon closed the connection"),
            }
        }
        (None, EndReason::Timeout) => match obs.not_taken() {
            _ if obs.received_bytes() == 0 => fail(
                name,
                format!(
                    "the connection was still open when the client gave up {} after the \
                     handoff, and the daemon had written nothing",
                    check::format_duration(case.limits.timeout)
                ),
            )
            .with_cause(known::SILENT_HANG),
            None if obs.done_at().is_some() => fail(
                name,
                format!(
                    "the daemon sent data: [DONE] but the connection was still open when the \
                     client gave up {} after the handoff: close it after [DONE]",
                    check::format_duration(case.limits.timeout)
                ),
            )
            .with_cause(known::OPEN_AFTER_DONE),
            Some(fate) => fail(
                name,
                format!(
                    "the connection was still open when the client gave up {} after the \
                     handoff: {}",
                    check::format_duration(case.limits.timeout),
                    fate.describe()
                ),
            ),
            None => fail(
                name,
                format!(
                    "the connection was still open when the client gave up {} after the \
                     handoff, after {} bytes: the daemon neither finished the response nor \
                     closed it, and a browser would wait forever",
                    check::format_duration(case.limits.timeout),
                    obs.received_bytes()
                ),
            )
            .with_cause(known::NEVER_CLOSED),
        },
        (None, EndReason::Error(HandoffError::Receive { errno })) => fail(
            name,
            format!(
                "the connection ended with an error ({errno}) instead of a close: the daemon \
                 reset it (e.g. SO_LINGER 0, or closing with unread data), so a browser may lose \
                 what was still in flight"
            ),
        )
        .with_cause(known::CONNECTION_RESET),
        (None, other) => fail(name, format!("the stream ended abnormally: {other}")),
    }
}

fn content_pieces(case: &Case<'_>, what: &str, (from, to): (usize, usize)) -> AssertionResult {
    let pieces = &case.expected.pieces;
    let start: usize = pieces[..from.min(pieces.len())]
        .iter()
        .map(String::len)
        .sum();
    let expected: String = pieces[from.min(pieces.len())..to.min(pieces.len())].concat();
    let end = start + expected.len();
    let got = case.obs.content();
    let received = &got[start.min(got.len())..end.min(got.len())];
    let replaced = String::from_utf8_lossy(received).contains('\u{FFFD}');
    check::bytes_equal(
        "content",
        &format!("{what} (content bytes {start}..{end})"),
        expected.as_bytes(),
        received,
        Verdict::Fail,
    )
    .with_cause(content_cause(expected.as_bytes(), received, replaced))
}

fn status_line(obs: &Observation) -> AssertionResult {
    match obs.head() {
        Some(head) => {
            let mut a = check::status_is(200, Some(head.status));
            if a.verdict == Verdict::Pass {
                a.message = format!("HTTP/1.{} {} {}", head.version, head.status, head.reason);
            }
            a
        }
        None => check::status_is(200, None),
    }
}

fn header(obs: &Observation, name: &str, rule: HeaderRule, level: Verdict) -> AssertionResult {
    if obs.head().is_none() {
        return fail(
            &format!("header {name}"),
            "no response head arrived, so there is no header to check",
        )
        .with_cause(known::NO_STATUS);
    }
    let headers = obs.headers();
    match rule {
        HeaderRule::MediaType(t) => check::content_type_is(t, &headers, level),
        HeaderRule::Contains(token) => check::header_contains(name, token, &headers, level),
        HeaderRule::Present => check::header_present(name, &headers, level),
    }
}

fn unused(a: AssertionResult) -> AssertionResult {
    a.with_cause(known::HANDOFF_DATA_UNUSED)
}

fn unanswered(a: AssertionResult) -> AssertionResult {
    a.with_cause(known::HANDOFF_DATA_UNANSWERED)
}

fn processed_or_rejected(case: &Case<'_>) -> Vec<AssertionResult> {
    let obs = case.obs;
    let name = "data used or refused";
    let processed = match &case.handoff.nonce {
        Some(_) => !case.requests.is_empty(),
        // Without data there is no nonce: a 200 answer means the daemon went on with defaults.
        None => obs.status() == Some(200),
    };
    if processed {
        let why = match &case.handoff.nonce {
            Some(_) => "the data was used: the upstream received this handoff's nonce",
            None => "the daemon answered with its default request",
        };
        let mut out = vec![AssertionResult::pass(name, why)];
        let delivered = match case.scenario {
            Some(_) => delivery(case),
            None => Delivery::NotJudged,
        };
        if !delivered.lost() {
            out.extend(one(case, Check::Outcome));
        }
        if delivered != Delivery::NotJudged {
            out.extend(forwarded(case, &delivered, delivered.lost()));
        }
        attribute_consequences(&mut out);
        return out;
    }
    match (obs.head(), obs.received_bytes()) {
        (Some(head), _) if head.status >= 400 => vec![
            AssertionResult::pass(
                name,
                format!("refused with HTTP {} {}", head.status, head.reason),
            ),
            closed(case),
        ],
        (Some(head), _) if case.stray_requests > 0 => vec![unused(fail(
            name,
            format!(
                "the daemon answered {} and called the upstream without this handoff's prompt \
                 (the mock received {} request(s) without it while the stream ran): the data \
                 was dropped or cut and the daemon went on without it; read the whole message \
                 (one recvmsg with a buffer as large as the SEQPACKET limit, checking \
                 MSG_TRUNC) or refuse it with an HTTP error such as 400 or 413",
                head.status, case.stray_requests
            ),
        ))],
        (Some(head), _) => vec![unused(fail(
            name,
            format!(
                "the daemon answered {} but never called the upstream (the mock received no \
                 request while the stream ran): a daemon that uses the data sends its prompt \
                 upstream; one that refuses it answers with an HTTP error such as 400 or 413",
                head.status
            ),
        ))],
        (None, 0) if obs.end == EndReason::PeerClosed => vec![unanswered(fail(
            name,
            "the daemon closed the connection without writing a byte: the browser gets an empty \
             reply; answer with an HTTP error (400 for bad data, 413 for too much) instead",
        ))],
        (None, 0) => vec![unanswered(fail(
            name,
            format!(
                "the daemon wrote nothing within {} and did not close the connection: a browser \
                 would hang; answer with an HTTP error instead",
                check::format_duration(case.limits.timeout)
            ),
        ))],
        (None, n) => vec![unanswered(fail(
            name,
            format!("the daemon wrote {n} bytes that are not an HTTP response"),
        ))],
    }
}

#[cfg(test)]
mod tests;
