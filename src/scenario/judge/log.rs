//! The checks read from the mock's request log: what reached the upstream, when the head
//! went out relative to the upstream's answer, whether a client that left cancelled the
//! upstream request, and whether events were relayed as they came.

use std::time::Duration;

use super::{Case, fail};
use crate::mock::RequestEnd;
use crate::pattern;
use crate::scenario::observe::ClientClose;
use crate::scenario::owners::Requirement;
use crate::verdict::causes::known;
use crate::verdict::check::{self, format_ns};
use crate::verdict::{AssertionResult, Verdict};

/// Whether the pattern reached the mock, which decides whether the stream's content and ending
/// can be judged at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Delivery {
    /// What reached the upstream is not judged here (no nonce, or another stream judges it).
    NotJudged,
    /// The mock served the scenario's pattern.
    Served,
    /// No request carried this handoff's nonce: the mock served nothing for it.
    NoRequest,
    /// The request came, but the mock served another pattern (`None`: it refused the request).
    OtherPattern(Option<String>),
}

impl Delivery {
    /// Whether the pattern never reached the mock, so its outcome cannot be judged.
    pub(super) fn lost(&self) -> bool {
        matches!(self, Delivery::NoRequest | Delivery::OtherPattern(_))
    }
}

/// What the mock made of this handoff's request.
pub(super) fn delivery(case: &Case<'_>) -> Delivery {
    if case.handoff.nonce.is_none() {
        return Delivery::NotJudged;
    }
    let Some(first) = case.requests.first() else {
        return Delivery::NoRequest;
    };
    let wanted = pattern::parse(&case.handoff.pattern).map(|p| p.canonical());
    match (&first.pattern, wanted) {
        (Some(served), Ok(wanted)) if *served == wanted => Delivery::Served,
        // A spec the catalog cannot parse is the catalog's bug, caught by its own tests.
        (_, Err(_)) => Delivery::Served,
        (served, Ok(_)) => Delivery::OtherPattern(served.clone()),
    }
}

/// `finding` as the scenario judging it should report it: as is where `requirement` is the
/// scenario's own; elsewhere a note pointing to its owner, or, when the stream's own property
/// could not be judged for it (`blocks`), a failure that says so.
fn owned(
    case: &Case<'_>,
    requirement: Requirement,
    finding: AssertionResult,
    blocks: bool,
) -> AssertionResult {
    let mine = case.scenario.is_some_and(|s| requirement.owned_by(s));
    if mine || finding.verdict < Verdict::NonStrict {
        return finding;
    }
    let see = requirement.see();
    let mut note = finding;
    if blocks {
        note.message = format!(
            "not judged: {}; this scenario's own checks need it (the fix: see {see})",
            note.message
        );
        note.verdict = Verdict::Fail;
    } else {
        // A note, short: the owner carries the whole finding and its fix.
        let what = match &note.cause {
            Some(c) if *c == known::PATTERN_HEADER_MISSING => {
                "judged through the prompt's [[pattern:…]] directive: X-Test-Pattern missing".into()
            }
            Some(c) => c.text.clone(),
            None => note.message.clone().into(),
        };
        note.message = format!("{what}, see {see}");
        note.verdict = Verdict::Informational;
        note.cause = None;
        note.expected = None;
        note.received = None;
    }
    note
}

/// What reached the upstream: one request with this nonce, the pattern in X-Test-Pattern, and
/// the prompt exactly. Each is a requirement with an owning scenario (`owners.rs`): a finding
/// fails there and is a note elsewhere, unless the pattern never reached the mock, so this
/// scenario's checks that need it were `skipped`: then it says so, and fails.
pub(super) fn forwarded(
    case: &Case<'_>,
    delivered: &Delivery,
    skipped: bool,
) -> Vec<AssertionResult> {
    let Some(nonce) = &case.handoff.nonce else {
        return Vec::new();
    };
    let name = "upstream request";
    let first = match case.requests {
        // The advice below presumes the daemon acted on the handoff; say so only when it did.
        [] if case.obs.received_bytes() == 0 => {
            let finding = fail(
                name,
                format!(
                    "the mock never received a request carrying this handoff's [[nonce:{nonce}]], \
                     and the client got nothing either: the daemon did not act on the handoff"
                ),
            )
            .with_cause(known::UPSTREAM_NOT_CALLED);
            return vec![owned(case, Requirement::OneRequest, finding, skipped)];
        }
        [] => {
            let finding = fail(
                name,
                format!(
                    "the mock never received a request carrying this handoff's [[nonce:{nonce}]] \
                     although the daemon answered the client: the daemon did not forward the \
                     prompt to $OPENAI_API_BASE/chat/completions (check its upstream settings, \
                     and that the prompt goes out as the last user message)"
                ),
            )
            .with_cause(known::UPSTREAM_NOT_CALLED);
            return vec![owned(case, Requirement::OneRequest, finding, skipped)];
        }
        [first, ..] => first,
    };
    let once = if case.requests.len() == 1 {
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
        .with_cause(known::REQUEST_REPEATED)
    };
    let mut out = vec![owned(case, Requirement::OneRequest, once, false)];
    if let Some(pattern) = &case.handoff.test_pattern {
        let header = pattern_header(first.x_test_pattern.as_deref(), pattern, delivered);
        out.push(owned(case, Requirement::PatternHeader, header, false));
    }
    if let Delivery::OtherPattern(served) = delivered {
        out.push(not_delivered(case, served.as_deref(), skipped));
    }
    if let Some(prompt) = &case.handoff.prompt {
        let body = first.body.as_ref();
        let sent = body
            .and_then(|b| b.messages.iter().rev().find(|m| m.role == "user"))
            .map(|m| m.content.as_str())
            .or_else(|| body.and_then(|b| b.prompt.as_deref()));
        let finding = match sent {
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
        }
        .with_cause(known::PROMPT_ALTERED);
        out.push(owned(case, Requirement::Prompt, finding, false));
    }
    out
}

/// The X-Test-Pattern finding: the header copied verbatim from the handoff's test_pattern.
fn pattern_header(header: Option<&str>, pattern: &str, delivered: &Delivery) -> AssertionResult {
    let name = "X-Test-Pattern";
    match header {
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
        .with_expected(pattern.to_owned())
        .with_received(v.to_owned())
        .with_cause(known::PATTERN_HEADER_WRONG),
        None => {
            let fallback = if delivered.lost() {
                "the prompt's [[pattern:…]] directive did not reach the mock either"
            } else {
                "judged through the prompt's [[pattern:…]] directive, which the mock fell back to"
            };
            fail(
                name,
                format!(
                    "X-Test-Pattern missing: the upstream request had no X-Test-Pattern header; \
                     copy the handoff's test_pattern into it ({fallback})"
                ),
            )
            .with_expected(pattern.to_owned())
            .with_cause(known::PATTERN_HEADER_MISSING)
        }
    }
}

/// The request came but the mock served another pattern: neither the header nor the prompt's
/// directive carried this one, so the stream's content and ending could not be judged.
fn not_delivered(case: &Case<'_>, served: Option<&str>, skipped: bool) -> AssertionResult {
    let wanted = &case.handoff.pattern;
    let served = match served {
        Some(p) => format!("served pattern `{p}`"),
        None => "refused the request".to_owned(),
    };
    let why = format!(
        "the mock {served} instead of `{wanted}`: the upstream request carried neither \
         X-Test-Pattern: {wanted} nor the prompt's [[pattern:{wanted}]] directive (see {} and {})",
        Requirement::PatternHeader.see(),
        Requirement::Prompt.see()
    );
    let message = if skipped {
        format!("not judged: {why}; this scenario's content and ending checks need that pattern")
    } else {
        why
    };
    fail("pattern served", message).with_cause(known::PATTERN_NOT_DELIVERED)
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
    let result = match request.end {
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
    };
    result.with_cause(known::NOT_CANCELLED)
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
        .with_cause(known::BUFFERS_ANSWER)
    }
}
