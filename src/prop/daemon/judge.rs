//! The invariants every case is checked against, as assertions with verdicts.
//!
//! - **content**: the decoded content equals what the upstream sent, byte for byte; after a
//!   client abort, it is a prefix of it (the client saw the stream up to where it left).
//! - **valid UTF-8**: every event's data, and the content, is valid UTF-8.
//! - **[DONE]**: present after a completed upstream (unless the client left first); absent
//!   after a truncated one (non-strict, as in the suite), a reset, a stall or an error status
//!   (fail).
//! - **error reported**: after an error status, an HTTP error status or an error event; after
//!   a reset, an error event (a clean close without `[DONE]` is non-strict); none after a
//!   complete answer.
//! - **connection closed**: by the daemon, cleanly, before the deadline and within the grace
//!   after `[DONE]`.
//! - **upstream cancelled**: after a client abort, the upstream request ended within the limit.
//! - **upstream request**: the mock received the case's request (else nothing above means
//!   anything).

use crate::mock::RequestEnd;
use crate::transcript::{BodyEnd, EndKind};
use crate::verdict::check::{self, format_duration};
use crate::verdict::{AssertionResult, Verdict, escape_bytes};

use super::build::{Built, UpstreamEnd};
use super::drive::{Limits, Observed};

fn fail(name: &str, message: impl Into<String>) -> AssertionResult {
    AssertionResult::new(name, Verdict::Fail, message)
}

/// Judges one case run.
pub fn judge(built: &Built, obs: &Observed, limits: &Limits) -> Vec<AssertionResult> {
    let t = &obs.transcript;
    let aborted = obs.client_closed_ns.is_some();
    let end = built.expected.end;
    let mut out = Vec::new();

    if let Some(fate) = obs.fate.filter(|f| f.not_taken()) {
        // Nothing below means anything when the daemon never had the client socket.
        out.push(fail(
            "handoff taken",
            format!("{}: the stream got nothing", fate.describe()),
        ));
        return out;
    }
    out.push(upstream_request(obs, aborted));
    if let Some(e) = &t.http.error
        && t.http.body != BodyEnd::Unfinished
    {
        out.push(fail(
            "HTTP response",
            format!("the response is not valid HTTP/1.x: {e}"),
        ));
    }
    let relays = match end {
        UpstreamEnd::Completed | UpstreamEnd::Truncated | UpstreamEnd::Stalled => true,
        UpstreamEnd::Reset => !built.expected.content.is_empty(),
        UpstreamEnd::Status(_) => false,
    };
    if relays && !aborted {
        out.push(check::status_is(200, t.status()));
    }
    out.push(content(built, obs, aborted));
    out.push(utf8(obs));
    out.extend(done(end, obs, aborted));
    out.extend(error(end, obs, aborted));
    out.push(closed(end, obs, limits));
    if let Some(at) = obs.client_closed_ns {
        out.push(cancelled(obs, at, limits));
    }
    out
}

fn upstream_request(obs: &Observed, aborted: bool) -> AssertionResult {
    let name = "upstream request";
    match obs.requests.len() {
        0 if aborted => AssertionResult::pass(
            name,
            "the client left before the daemon called the upstream",
        ),
        0 => fail(
            name,
            "the mock received no request carrying the case's nonce: the daemon must send the \
             handoff's prompt (which selects the case's script) to OPENAI_API_BASE",
        ),
        1 => AssertionResult::pass(name, "one upstream request"),
        n => AssertionResult::new(
            name,
            Verdict::Informational,
            format!("{n} upstream requests for one handoff; the last one is judged"),
        ),
    }
}

fn content(built: &Built, obs: &Observed, aborted: bool) -> AssertionResult {
    let expected = &built.expected.content;
    let got = obs.transcript.content_bytes();
    if aborted && !obs.transcript.done() {
        let name = "content";
        return if expected.starts_with(got) {
            AssertionResult::pass(
                name,
                format!(
                    "the client left after {} of {} content bytes; they match the upstream's",
                    got.len(),
                    expected.len()
                ),
            )
        } else {
            let at = expected.iter().zip(got).take_while(|(e, g)| e == g).count();
            let upto = got.len().min(expected.len());
            fail(
                name,
                format!(
                    "the content the client saw before leaving is not what the upstream sent: \
                     they differ from byte {at}"
                ),
            )
            .with_expected(escape_bytes(&expected[..upto]))
            .with_received(escape_bytes(got))
        };
    }
    check::bytes_equal("content", "content", expected, got, Verdict::Fail)
}

fn utf8(obs: &Observed) -> AssertionResult {
    let name = "valid UTF-8";
    let t = &obs.transcript;
    let bad = t
        .events
        .iter()
        .enumerate()
        .find_map(|(i, e)| Some((i, e, e.invalid_utf8?)));
    if let Some((i, event, at)) = bad {
        return fail(
            name,
            format!(
                "event {} carries invalid UTF-8 at byte {at} of its data: a character was cut \
                 or mangled; decode the upstream as one byte stream, not read by read",
                i + 1
            ),
        )
        .with_received(escape_bytes(&event.data));
    }
    match std::str::from_utf8(t.content_bytes()) {
        Ok(_) => AssertionResult::pass(name, "every event and the content are valid UTF-8"),
        Err(e) => fail(
            name,
            format!(
                "the content is not valid UTF-8 from byte {}: a character was cut",
                e.valid_up_to()
            ),
        ),
    }
}

fn done(end: UpstreamEnd, obs: &Observed, aborted: bool) -> Option<AssertionResult> {
    let t = &obs.transcript;
    match end {
        UpstreamEnd::Completed if aborted && !t.done() => None,
        UpstreamEnd::Completed => Some(check::done_present(
            t.done_index(),
            t.events.len(),
            Verdict::Fail,
        )),
        UpstreamEnd::Truncated => Some(check::done_absent(t.done_index(), Verdict::NonStrict)),
        UpstreamEnd::Reset | UpstreamEnd::Status(_) | UpstreamEnd::Stalled => {
            Some(check::done_absent(t.done_index(), Verdict::Fail))
        }
    }
}

fn error(end: UpstreamEnd, obs: &Observed, aborted: bool) -> Option<AssertionResult> {
    let t = &obs.transcript;
    let first = t.error_events().first().map(|e| e.message.as_str());
    if aborted {
        return None;
    }
    match end {
        UpstreamEnd::Completed => Some(match first {
            Some(e) => fail(
                "no error event",
                format!(
                    "the daemon sent an error event ({}) although the upstream answered in full",
                    escape_bytes(e.as_bytes())
                ),
            ),
            None => AssertionResult::pass("no error event", "no error event"),
        }),
        // Whether and when a daemon gives up on a silent upstream is its own timeout's call.
        UpstreamEnd::Truncated | UpstreamEnd::Stalled => None,
        UpstreamEnd::Status(_) => Some(check::error_reported(t.status(), first)),
        UpstreamEnd::Reset => {
            let reported = check::error_reported(t.status(), first);
            let clean = t.end.kind == EndKind::PeerClosed && t.body_ended_cleanly();
            if reported.verdict != Verdict::Fail || !clean || t.status() != Some(200) {
                return Some(reported);
            }
            // PROTOCOL.md §3: after a broken-off upstream, closing without [DONE] tells the
            // truth, as an error event does. With nothing relayed, the client sees an empty
            // answer instead.
            Some(if t.content_bytes().is_empty() {
                AssertionResult::new(
                    "error reported",
                    Verdict::NonStrict,
                    "the upstream was reset before any content; the daemon closed without \
                     [DONE] or an error event, so the client sees an empty answer",
                )
            } else {
                AssertionResult::pass(
                    "error reported",
                    "the upstream was reset; the daemon closed without [DONE] after the relayed \
                     content, which tells the client the answer is incomplete",
                )
            })
        }
    }
}

fn closed(end: UpstreamEnd, obs: &Observed, limits: &Limits) -> AssertionResult {
    let name = "connection closed";
    let t = &obs.transcript;
    if obs.kept_open_after_done {
        return fail(
            name,
            format!(
                "the daemon sent data: [DONE] but kept the connection open for {} more: close \
                 it after [DONE], the browser only knows the body is over when it closes",
                format_duration(limits.done_grace)
            ),
        );
    }
    match &t.end.kind {
        EndKind::PeerClosed => AssertionResult::pass(name, "the daemon closed the connection"),
        EndKind::ClosedByClient => AssertionResult::pass(name, "the client left, as the case asks"),
        EndKind::Timeout if end == UpstreamEnd::Stalled => AssertionResult::new(
            name,
            Verdict::Informational,
            format!(
                "the upstream went silent and the connection was still open {} after the \
                 handoff: the daemon waits on its upstream longer than this case's deadline",
                format_duration(limits.timeout)
            ),
        ),
        EndKind::Timeout => fail(
            name,
            format!(
                "the connection was still open {} after the handoff, after {} bytes: the daemon \
                 neither finished the response nor closed it",
                format_duration(limits.timeout),
                t.received_bytes
            ),
        ),
        EndKind::Error(e) => fail(
            name,
            format!("the connection ended with an error instead of a close: {e}"),
        ),
    }
}

fn cancelled(obs: &Observed, at: u64, limits: &Limits) -> AssertionResult {
    let name = "upstream cancelled";
    let Some(request) = obs.requests.last() else {
        return AssertionResult::pass(name, "no upstream request was made");
    };
    let limit_ns = u64::try_from(limits.cancel_within.as_nanos()).unwrap_or(u64::MAX);
    let after = |ns: u64| format_duration(std::time::Duration::from_nanos(ns.saturating_sub(at)));
    match (request.end, request.end_ns) {
        (RequestEnd::InProgress, _) | (_, None) => fail(
            name,
            format!(
                "the upstream request was still open {} after the client left: cancel it when \
                 the client goes away",
                format_duration(limits.cancel_within)
            ),
        ),
        (end, Some(ns)) if ns > at.saturating_add(limit_ns) => fail(
            name,
            format!(
                "the upstream request ended ({}) only {} after the client left, {} writes in: \
                 the daemon kept reading an answer nobody will see; cancel the upstream request \
                 when the client goes away",
                end_words(end),
                after(ns),
                request.writes.len()
            ),
        ),
        (end, Some(ns)) if ns <= at => AssertionResult::pass(
            name,
            format!(
                "the upstream request had ended ({}) before the client left",
                end_words(end)
            ),
        ),
        (end, Some(ns)) => AssertionResult::pass(
            name,
            format!(
                "the upstream request ended ({}) {} after the client left",
                end_words(end),
                after(ns)
            ),
        ),
    }
}

fn end_words(end: RequestEnd) -> String {
    match end {
        RequestEnd::InProgress => "in progress".to_owned(),
        RequestEnd::Completed => "completed".to_owned(),
        RequestEnd::Cancelled { at_write } => format!("cancelled at write {at_write}"),
        RequestEnd::Reset => "reset by the mock".to_owned(),
        RequestEnd::ShutDown => "cut by the mock's shutdown".to_owned(),
    }
}
