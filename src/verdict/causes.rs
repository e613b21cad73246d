//! Causes: the kinds of defect a run found, each with the scenarios it affects.
//!
//! A finding carries a [`Cause`], a stable key and a short text, given where the finding is
//! made (the check helpers, the judges): "content arrives short" is one cause whether 3.2 or
//! 11.4 shows it. [`causes_of`] groups a run's findings by key, so a report opens with the few
//! things to fix instead of the many scenarios that show them. The keys are listed in
//! `docs/report.schema.json`'s description of `causes`; a finding without a cause is grouped
//! under `check:<assertion name>`.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{ScenarioResult, Strictness, Verdict};

/// The kind of defect a finding shows: a stable `key` (`upstream-failure-hidden`) and a short
/// text a daemon author reads (`upstream failure hidden (status 200, no SSE error event)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cause {
    /// Stable identifier, lower case words joined by `-`.
    pub key: Cow<'static, str>,
    /// What is wrong, in a few words.
    pub text: Cow<'static, str>,
}

impl Cause {
    /// A cause with a fixed key and text.
    pub const fn fixed(key: &'static str, text: &'static str) -> Cause {
        Cause {
            key: Cow::Borrowed(key),
            text: Cow::Borrowed(text),
        }
    }

    /// A cause built at run time.
    pub fn new(key: impl Into<String>, text: impl Into<String>) -> Cause {
        Cause {
            key: Cow::Owned(key.into()),
            text: Cow::Owned(text.into()),
        }
    }
}

/// One cause of a run, with every scenario it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseGroup {
    /// The cause's stable key.
    pub key: String,
    /// The cause's text.
    pub text: String,
    /// The worst verdict it gave a scenario, under the run's strictness: `FAILED` or
    /// `NON-STRICT`.
    pub verdict: Verdict,
    /// The ids of the scenarios it affects, in catalog order.
    pub scenarios: Vec<String>,
}

/// The distinct causes of the scenarios that ran and did not pass (`NON-STRICT` or `FAILED`),
/// most important first: the worst verdict first, then the cause that affects more
/// scenarios, then the one whose first scenario comes first in the catalog.
pub fn causes_of(scenarios: &[ScenarioResult], strictness: Strictness) -> Vec<CauseGroup> {
    let mut groups: Vec<CauseGroup> = Vec::new();
    for s in scenarios {
        if s.skipped.is_some() || s.verdict < Verdict::NonStrict {
            continue;
        }
        for a in s.assertions_at_least(Verdict::NonStrict) {
            let cause = a.cause_or_default();
            let verdict = a.verdict.under(strictness);
            let group = match groups.iter_mut().find(|g| g.key == cause.key) {
                Some(g) => g,
                None => {
                    groups.push(CauseGroup {
                        key: cause.key.into_owned(),
                        text: cause.text.into_owned(),
                        verdict,
                        scenarios: Vec::new(),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.verdict = group.verdict.max(verdict);
            if !group.scenarios.contains(&s.id) {
                group.scenarios.push(s.id.clone());
            }
        }
    }
    for g in &mut groups {
        g.scenarios.sort_by_key(|id| id_order(id));
    }
    groups.sort_by(|a, b| {
        b.verdict
            .cmp(&a.verdict)
            .then(b.scenarios.len().cmp(&a.scenarios.len()))
            .then_with(|| id_order(&a.scenarios[0]).cmp(&id_order(&b.scenarios[0])))
    });
    groups
}

/// `8.12` after `8.2`: ids compare by their numbers.
fn id_order(id: &str) -> Vec<u64> {
    id.split('.')
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect()
}

/// The opening line of a causes block: `3 causes across 17 failed scenarios`, or `None` when
/// every scenario passed.
pub fn headline(groups: &[CauseGroup]) -> Option<String> {
    if groups.is_empty() {
        return None;
    }
    let affected: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.scenarios.iter().map(String::as_str))
        .collect();
    let causes = if groups.len() == 1 {
        "1 cause".to_owned()
    } else {
        format!("{} causes", groups.len())
    };
    let failed = groups.iter().all(|g| g.verdict == Verdict::Fail);
    let what = match (affected.len(), failed) {
        (1, true) => "1 failed scenario".to_owned(),
        (n, true) => format!("{n} failed scenarios"),
        (1, false) => "1 scenario that did not pass".to_owned(),
        (n, false) => format!("{n} scenarios that did not pass"),
    };
    Some(format!("{causes} across {what}"))
}

/// The causes block as plain lines: the headline, then one line per cause with its verdict
/// (when not `FAILED`) and its scenarios. Empty when every scenario passed.
pub fn lines(groups: &[CauseGroup]) -> Vec<String> {
    let Some(head) = headline(groups) else {
        return Vec::new();
    };
    let width = groups
        .iter()
        .map(|g| label(g).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = vec![head];
    for g in groups {
        let label = label(g);
        let pad = width - label.chars().count();
        out.push(format!(
            "  {label}{}   {}",
            " ".repeat(pad),
            g.scenarios.join(" ")
        ));
    }
    out
}

fn label(g: &CauseGroup) -> String {
    match g.verdict {
        Verdict::Fail => g.text.clone(),
        v => format!("{} ({})", g.text, v.label()),
    }
}

/// The causes findings name, by where they arise. Keys are stable: reports and scripts may
/// match on them.
pub mod known {
    use super::Cause;

    // The response itself.
    /// No byte, and the connection left open.
    pub const SILENT_HANG: Cause = Cause::fixed(
        "silent-hang",
        "nothing written and the connection left open: the browser hangs",
    );
    /// Closed without a byte.
    pub const EMPTY_REPLY: Cause =
        Cause::fixed("empty-reply", "connection closed without a response");
    /// Not an HTTP/1.x response.
    pub const NOT_HTTP: Cause = Cause::fixed("not-http", "the response is not valid HTTP/1.x");
    /// Not an event stream.
    pub const NOT_EVENT_STREAM: Cause =
        Cause::fixed("not-event-stream", "the body is not a valid event stream");
    /// Past streamcheck's bounds.
    pub const RESPONSE_TOO_LARGE: Cause = Cause::fixed(
        "response-too-large",
        "the response exceeds streamcheck's bounds",
    );
    /// A status other than the one required.
    pub const WRONG_STATUS: Cause = Cause::fixed("wrong-status", "wrong response status");
    /// No status line at all.
    pub const NO_STATUS: Cause = Cause::fixed("no-status-line", "no HTTP status line");
    /// Content-Type not text/event-stream.
    pub const CONTENT_TYPE: Cause = Cause::fixed(
        "content-type-wrong",
        "Content-Type is not text/event-stream (EventSource rejects it)",
    );

    // The answer relayed.
    /// No content at all.
    pub const CONTENT_MISSING: Cause = Cause::fixed(
        "content-missing",
        "the upstream's content never reaches the client",
    );
    /// Content lost on the way.
    pub const CONTENT_SHORT: Cause = Cause::fixed(
        "content-short",
        "content arrives short: bytes lost in the relay",
    );
    /// Content changed on the way.
    pub const CONTENT_ALTERED: Cause = Cause::fixed("content-altered", "content arrives altered");
    /// Multi-byte characters cut across reads decoded to U+FFFD.
    pub const CONTENT_UTF8: Cause = Cause::fixed(
        "content-utf8-replaced",
        "characters split across reads become U+FFFD",
    );
    /// Events whose data a browser client cannot read.
    pub const EVENT_PAYLOADS: Cause = Cause::fixed(
        "event-payloads-unreadable",
        "events carry data clients cannot read",
    );
    /// No [DONE] after a complete answer.
    pub const DONE_MISSING: Cause =
        Cause::fixed("done-missing", "no `data: [DONE]` after a complete answer");
    /// [DONE] after an answer the upstream did not finish.
    pub const DONE_AFTER_INCOMPLETE: Cause = Cause::fixed(
        "done-after-incomplete",
        "`data: [DONE]` after an answer the upstream did not finish",
    );
    /// An error event after a complete answer.
    pub const SPURIOUS_ERROR: Cause = Cause::fixed(
        "error-event-spurious",
        "an SSE error event after a complete answer",
    );
    /// finish_reason lost or changed.
    pub const FINISH_REASON: Cause =
        Cause::fixed("finish-reason", "the upstream's finish_reason not relayed");
    /// Buffered instead of relayed.
    pub const BUFFERS_ANSWER: Cause = Cause::fixed(
        "buffers-answer",
        "the answer is buffered, not relayed as it arrives",
    );

    // Upstream failures.
    /// 200 and no error event.
    pub const UPSTREAM_FAILURE_HIDDEN: Cause = Cause::fixed(
        "upstream-failure-hidden",
        "upstream failure hidden (status 200, no SSE error event)",
    );
    /// 200 and [DONE] after an upstream error.
    pub const UPSTREAM_ERROR_AS_DONE: Cause = Cause::fixed(
        "upstream-error-as-done",
        "upstream error relayed as a complete answer (status 200, `data: [DONE]`)",
    );
    /// Neither head nor error event.
    pub const UPSTREAM_FAILURE_UNANSWERED: Cause = Cause::fixed(
        "upstream-failure-unanswered",
        "upstream failure answered with no response head and no SSE error event",
    );

    // The connection.
    /// Open after [DONE].
    pub const OPEN_AFTER_DONE: Cause = Cause::fixed(
        "open-after-done",
        "connection kept open after `data: [DONE]`",
    );
    /// Never ended.
    pub const NEVER_CLOSED: Cause = Cause::fixed(
        "never-closed",
        "the response never ends: the connection stays open",
    );
    /// Reset.
    pub const CONNECTION_RESET: Cause = Cause::fixed(
        "connection-reset",
        "the connection is reset instead of closed",
    );

    // The handoff.
    /// Never taken.
    pub const HANDOFF_NOT_TAKEN: Cause =
        Cause::fixed("handoff-not-taken", "handoffs not accepted or not read");
    /// Data neither used nor refused.
    pub const HANDOFF_DATA_UNUSED: Cause = Cause::fixed(
        "handoff-data-unused",
        "handoff data neither used nor refused (answered without its prompt)",
    );
    /// Bad or large data answered with nothing.
    pub const HANDOFF_DATA_UNANSWERED: Cause = Cause::fixed(
        "handoff-data-unanswered",
        "handoff data the daemon does not use gets no HTTP error",
    );

    // What reached the upstream.
    /// The nonce never reached the mock.
    pub const UPSTREAM_NOT_CALLED: Cause = Cause::fixed(
        "upstream-not-called",
        "the handoff's prompt never reaches the upstream",
    );
    /// Neither header nor directive reached the mock.
    pub const PATTERN_NOT_DELIVERED: Cause = Cause::fixed(
        "pattern-not-delivered",
        "the upstream request carries neither X-Test-Pattern nor the prompt's pattern",
    );
    /// X-Test-Pattern missing.
    pub const PATTERN_HEADER_MISSING: Cause = Cause::fixed(
        "pattern-header-missing",
        "test_pattern not copied into the upstream X-Test-Pattern header",
    );
    /// X-Test-Pattern wrong.
    pub const PATTERN_HEADER_WRONG: Cause = Cause::fixed(
        "pattern-header-wrong",
        "X-Test-Pattern differs from the handoff's test_pattern",
    );
    /// The prompt altered or missing.
    pub const PROMPT_ALTERED: Cause = Cause::fixed(
        "prompt-altered",
        "the prompt reaches the upstream altered or not at all",
    );
    /// More than one upstream request per handoff.
    pub const REQUEST_REPEATED: Cause = Cause::fixed(
        "upstream-request-repeated",
        "the upstream request is sent more than once",
    );
    /// Not cancelled after the client left.
    pub const NOT_CANCELLED: Cause = Cause::fixed(
        "upstream-not-cancelled",
        "the upstream request is not cancelled when the client leaves",
    );

    // Many streams, slow clients, the daemon.
    /// Another stream waits on a slow reader.
    pub const HEAD_OF_LINE: Cause = Cause::fixed(
        "head-of-line-blocking",
        "a slow reader delays another stream",
    );
    /// Another stream's upstream cannot send: a stalled stream holds the HTTP/2 window.
    pub const HTTP2_WINDOW_HELD: Cause = Cause::fixed(
        "http2-window-held",
        "a stalled stream holds the upstream's HTTP/2 window, so another stream cannot send",
    );
    /// Simultaneous streams not each intact (content mixed up between them, among others).
    pub const STREAMS_NOT_INTACT: Cause = Cause::fixed(
        "streams-not-intact",
        "simultaneous streams do not each get exactly their own content",
    );
    /// Client sockets not released.
    pub const FD_LEAK: Cause = Cause::fixed(
        "fd-leak",
        "client sockets are not closed when a stream ends",
    );
    /// SOCK_STREAM listener.
    pub const SOCKET_TYPE: Cause = Cause::fixed(
        "socket-type",
        "the daemon does not accept SOCK_SEQPACKET connections as Apache makes them",
    );
    /// The daemon died.
    pub const DAEMON_DIED: Cause = Cause::fixed("daemon-died", "the daemon died");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::AssertionResult;

    const HIDDEN: Cause = Cause::fixed("upstream-failure-hidden", "upstream failure hidden");
    const CUT: Cause = Cause::fixed("content-short", "content arrives short");

    fn scenario(id: &str, findings: &[(Verdict, Option<Cause>)]) -> ScenarioResult {
        let assertions = findings.iter().map(|(v, c)| {
            let a = AssertionResult::new("content", *v, "m");
            match c {
                Some(c) => a.with_cause(c.clone()),
                None => a,
            }
        });
        ScenarioResult::new(id, "n", "c", "d")
            .with_assertions(assertions)
            .judged(Strictness::Lenient)
    }

    #[test]
    fn findings_of_one_kind_form_one_group_with_every_scenario() {
        let runs = [
            scenario("8.2", &[(Verdict::Fail, Some(HIDDEN))]),
            scenario("11.4", &[(Verdict::Fail, Some(CUT))]),
            scenario("8.1", &[(Verdict::Fail, Some(HIDDEN))]),
            scenario("1.1", &[(Verdict::Pass, None)]),
        ];
        let groups = causes_of(&runs, Strictness::Lenient);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].key, "upstream-failure-hidden");
        assert_eq!(groups[0].scenarios, ["8.1", "8.2"]);
        assert_eq!(groups[1].scenarios, ["11.4"]);
    }

    #[test]
    fn failures_come_before_non_strict_findings_and_wider_causes_first() {
        let runs = [
            scenario("4.1", &[(Verdict::NonStrict, Some(CUT))]),
            scenario("4.2", &[(Verdict::NonStrict, Some(CUT))]),
            scenario("9.1", &[(Verdict::Fail, None)]),
        ];
        let groups = causes_of(&runs, Strictness::Lenient);
        assert_eq!(groups[0].key, "check:content");
        assert_eq!(groups[0].verdict, Verdict::Fail);
        assert_eq!(groups[1].verdict, Verdict::NonStrict);
        let strict = causes_of(&runs, Strictness::Strict);
        assert_eq!(
            strict[0].scenarios,
            ["4.1", "4.2"],
            "wider first among failures"
        );
        assert_eq!(strict[0].verdict, Verdict::Fail);
    }

    #[test]
    fn a_passing_check_carries_no_cause_and_informational_findings_no_group() {
        let a = AssertionResult::pass("x", "fine").with_cause(HIDDEN);
        assert_eq!(a.cause, None);
        let runs = [scenario("1.1", &[(Verdict::Informational, Some(HIDDEN))])];
        assert!(causes_of(&runs, Strictness::Lenient).is_empty());
    }

    #[test]
    fn the_block_opens_with_a_headline_and_aligns_the_scenarios() {
        let runs = [
            scenario("8.1", &[(Verdict::Fail, Some(HIDDEN))]),
            scenario("11.4", &[(Verdict::Fail, Some(CUT))]),
        ];
        let text = lines(&causes_of(&runs, Strictness::Lenient));
        assert_eq!(text[0], "2 causes across 2 failed scenarios");
        assert_eq!(text[1], "  upstream failure hidden   8.1");
        assert_eq!(text[2], "  content arrives short     11.4");
        assert!(lines(&[]).is_empty());
    }
}
