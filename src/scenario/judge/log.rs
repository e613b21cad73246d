//! The checks read from the mock's request log: what reached the upstream, when the head
//! went out relative to the upstream's answer, whether a client that left cancelled the
//! upstream request, and whether events were relayed as they came.

use std::time::Duration;

use super::{Case, fail};
use crate::mock::RequestEnd;
use crate::scenario::observe::ClientClose;
use crate::verdict::check::{self, format_ns};
use crate::verdict::{AssertionResult, Verdict};

/// What reached the upstream: one request with this nonce, the pattern in X-Test-Pattern, and
/// the prompt exactly.
pub(super) fn forwarded(case: &Case<'_>) -> Vec<AssertionResult> {
    let Some(nonce) = &case.handoff.nonce else {
        return Vec::new();
    };
    let name = "upstream request";
    let first = match case.requests {
        // The advice below presumes the daemon acted on the handoff; say so only when it did.
        [] if case.obs.received_bytes() == 0 => {
            return vec![fail(
                name,
                format!(
                    "the mock never received a request carrying this handoff's [[nonce:{nonce}]], \
                     and the client got nothing either: the daemon did not act on the handoff"
                ),
            )];
        }
        [] => {
            return vec![fail(
                name,
                format!(
                    "the mock never received a request carrying this handoff's [[nonce:{nonce}]] \
                     although the daemon answered the client: the daemon did not forward the \
                     prompt to $OPENAI_API_BASE/chat/completions (check its upstream settings, \
                     and that the prompt goes out as the last user message)"
                ),
            )];
        }
        [first, ..] => first,
    };
    let mut out = vec![if case.requests.len() == 1 {
        AssertionResult::pass(name, "one upstream request carried this handoff's nonce")
    } else {
        AssertionResult::new(
            name,
            Verdict::NonStrict,
            format!(
                "{} upstream requests carried this handoff's nonce: the daemon repeated the \
                 request; ask for a streamed answer once",
                case.requests.len()
            ),
        )
    }];
    if let Some(pattern) = &case.handoff.test_pattern {
        let name = "X-Test-Pattern";
        out.push(match &first.x_test_pattern {
            Some(v) if v == pattern => AssertionResult::pass(
                name,
                format!("the upstream request carried X-Test-Pattern: {v}"),
            ),
            Some(v) => fail(
                name,
                format!(
                    "the upstream request carried X-Test-Pattern: {v}, but the handoff's \
                     test_pattern was {pattern}: copy the field verbatim"
                ),
            )
            .with_expected(pattern.clone())
            .with_received(v.clone()),
            None => fail(
                name,
                "the upstream request had no X-Test-Pattern header: copy the handoff's \
                 test_pattern into it (the mock fell back to the [[pattern:…]] directive in the \
                 prompt, so the rest of this scenario still ran)",
            )
            .with_expected(pattern.clone()),
        });
    }
    if let Some(prompt) = &case.handoff.prompt {
        let body = first.body.as_ref();
        let sent = body
            .and_then(|b| b.messages.iter().rev().find(|m| m.role == "user"))
            .map(|m| m.content.as_str())
            .or_else(|| body.and_then(|b| b.prompt.as_deref()));
        out.push(match sent {
            Some(s) => check::bytes_equal(
                "prompt forwarded",
                "the prompt the upstream received",
                prompt.as_bytes(),
                s.as_bytes(),
                Verdict::Fail,
            ),
            None => fail(
                "prompt forwarded",
                "the upstream request carried no user message: send the handoff's prompt as \
                 {\"role\":\"user\",\"content\":…}",
            ),
        });
    }
    out
}

pub(super) fn head_timing(case: &Case<'_>) -> AssertionResult {
    let name = "head timing";
    let Some(head_ns) = case.obs.head_ns() else {
        return check::info(name, "no response head arrived");
    };
    let Some(request) = case.requests.first() else {
        return check::info(name, "the upstream request was not found in the mock's log");
    };
    // When the first chunk could leave the mock: on HTTP/2 a closed flow-control window holds
    // it back, and a head that goes out meanwhile did not wait for it.
    let first_write = request
        .writes
        .iter()
        .find(|w| w.end > w.start)
        .map(|w| w.sent_ns.unwrap_or(w.ts_ns));
    let fact = if head_ns < request.arrival_ns {
        format!(
            "the head reached the client {} before the upstream request reached the mock: the \
             daemon answers 200 before it knows the upstream will (an upstream failure must then \
             be an SSE error event)",
            format_ns(request.arrival_ns - head_ns)
        )
    } else if first_write.is_none_or(|w| head_ns < w) {
        format!(
            "the head went out {} after the upstream request reached the mock and before the \
             upstream's first chunk: the daemon answers once the upstream has answered",
            format_ns(head_ns - request.arrival_ns)
        )
    } else {
        format!(
            "the head went out {} after the upstream's first chunk was written: the daemon waits \
             for content before answering",
            format_ns(head_ns - first_write.unwrap_or(head_ns))
        )
    };
    check::info(name, fact)
}

pub(super) fn upstream_cancelled(case: &Case<'_>, limit: Duration) -> AssertionResult {
    let name = "upstream cancelled";
    let Some(ClientClose::AfterEvents { at_ns }) = case.obs.client_close else {
        return fail(
            name,
            format!(
                "the client never received a content event to close after ({} events in all), so \
                 the daemon's reaction to a client leaving could not be tested",
                case.obs.event_count()
            ),
        );
    };
    let Some(request) = case.requests.last() else {
        return fail(name, "the mock never received the upstream request");
    };
    let after = |ns: Option<u64>| Duration::from_nanos(ns.unwrap_or(at_ns).saturating_sub(at_ns));
    match request.end {
        RequestEnd::Cancelled { .. } => check::within(
            name,
            "the upstream request was cancelled after the client left",
            limit,
            Some(after(request.end_ns)),
            Verdict::Fail,
        ),
        RequestEnd::Completed => fail(
            name,
            format!(
                "the upstream request ran to completion ({} writes, {} after the client had \
                 left): the daemon keeps reading, and paying for, an answer nobody will see; \
                 cancel the upstream request when the client closes or a write to it fails",
                request.writes.len(),
                check::format_duration(after(request.end_ns))
            ),
        ),
        RequestEnd::InProgress => fail(
            name,
            format!(
                "the upstream request was still streaming {} after the client left: cancel it \
                 when the client closes or a write to it fails",
                check::format_duration(limit)
            ),
        ),
        RequestEnd::Reset | RequestEnd::ShutDown => fail(
            name,
            format!(
                "the upstream request ended as {:?}, not cancelled by the daemon",
                request.end
            ),
        ),
    }
}

pub(super) fn relayed_incrementally(case: &Case<'_>) -> AssertionResult {
    let name = "relayed as it arrives";
    let Some(request) = case.requests.first() else {
        return fail(name, "the upstream request was not found in the mock's log");
    };
    let writes: Vec<u64> = request
        .writes
        .iter()
        .filter(|w| w.end > w.start)
        .map(|w| w.ts_ns)
        .collect();
    let (Some(&first), Some(&last)) = (writes.first(), writes.last()) else {
        return fail(name, "the upstream wrote nothing");
    };
    let Some(&arrived) = case.obs.content_times().first() else {
        return fail(name, "no content event reached the client");
    };
    if arrived < last {
        AssertionResult::pass(
            name,
            format!(
                "the first event reached the client {} after the upstream wrote it, {} before \
                 the upstream's last write",
                format_ns(arrived.saturating_sub(first)),
                format_ns(last - arrived)
            ),
        )
    } else {
        fail(
            name,
            format!(
                "the first event reached the client only {} after the upstream's last write \
                 ({} after its first): the daemon buffers the answer instead of relaying each \
                 chunk as it arrives; write and flush every event at once",
                format_ns(arrived - last),
                format_ns(arrived.saturating_sub(first))
            ),
        )
    }
}
