//! The one table: for every fault mode, the scenarios that must catch it, the assertion that
//! names its bug, and why. The match has no wildcard arm, so a new fault mode does not compile
//! until it is given its catchers here.

use crate::refdaemon::Fault;
use crate::verdict::Verdict;

/// One scenario that must catch a fault mode, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Catcher {
    /// The scenario's name (names stay stable when ids are renumbered).
    pub scenario: &'static str,
    /// The assertion of that scenario that names the bug.
    pub assertion: &'static str,
    /// The verdict that assertion must give.
    pub verdict: Verdict,
}

/// What catches one fault mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The scenarios that must catch it, in catalog order.
    pub catchers: &'static [Catcher],
    /// Why they catch it, in a few words: what the bug does to what they observe.
    pub reason: &'static str,
}

/// `scenario` fails on `assertion`.
const fn fails(scenario: &'static str, assertion: &'static str) -> Catcher {
    Catcher {
        scenario,
        assertion,
        verdict: Verdict::Fail,
    }
}

/// `scenario` finds `assertion` non-strict: a deviation clients tolerate, a failure under
/// `--strict`.
const fn tolerated(scenario: &'static str, assertion: &'static str) -> Catcher {
    Catcher {
        scenario,
        assertion,
        verdict: Verdict::NonStrict,
    }
}

/// The scenarios that must catch `fault`, for the reason its name gives.
pub fn expectation(fault: Fault) -> Expectation {
    // `const` blocks make each list a `'static` slice.
    let (catchers, reason): (&'static [Catcher], &'static str) = match fault {
        Fault::IgnoreTestPattern => (
            const { &[fails("basic_response", "X-Test-Pattern")] },
            "the mock's log shows the upstream request without the X-Test-Pattern header \
             the handoff's test_pattern asks for",
        ),
        Fault::DoneAfterAbort => (
            const {
                &[
                    tolerated("abort_stream", "no [DONE]"),
                    tolerated("abort_early", "no [DONE]"),
                ]
            },
            "`data: [DONE]` follows an upstream that stopped mid-answer (non-strict: a client \
             takes the cut answer for a whole one; `--strict` fails it)",
        ),
        Fault::LossyUtf8 => (
            const { &[fails("split_1", "content"), fails("split_3", "content")] },
            "upstream writes cut inside multi-byte characters come out as U+FFFD",
        ),
        Fault::TruncateHandoff4k => (
            const {
                &[
                    fails("payload_5k", "data used or refused"),
                    fails("payload_70k", "data used or refused"),
                    fails("payload_150k", "data used or refused"),
                ]
            },
            "handoff data over 4 KiB never reaches the upstream, yet the daemon answers 200",
        ),
        Fault::HeadersOnlyOnUpstreamError => (
            const {
                &[
                    fails("error_500", "error reported"),
                    fails("error_429", "error reported"),
                    fails("unreachable_backend", "error reported"),
                ]
            },
            "a failed upstream gives the client status 200 and no SSE error event",
        ),
        Fault::HangOnUpstreamError => (
            const {
                &[
                    fails("error_500", "HTTP response"),
                    fails("unreachable_backend", "HTTP response"),
                ]
            },
            "a failed upstream leaves the client without a byte on an open connection until \
             it gives up",
        ),
        Fault::LineLimit64k => (
            const { &[fails("huge_line", "content")] },
            "a 100 KiB upstream data: line ends the stream with an error and no content",
        ),
        Fault::NoUpstreamCancel => (
            const { &[fails("downstream_abort", "upstream cancelled")] },
            "the mock's log shows the upstream request still streaming 2 s after the client \
             closed",
        ),
        Fault::HeadOfLineBlocking => (
            const { &[fails("slow_reader", "relay latency beside a slow reader")] },
            "while one client does not read, another stream's events wait more than 1 s",
        ),
        // Not the `crosstalk` assertion: it needs a stream's first piece (the one with its
        // nonce) to land on another client, and when the handoffs reach the daemon spread out
        // (a busy machine), only later pieces cross. Any crossing breaks some stream's content.
        Fault::Crosstalk => (
            const { &[fails("concurrent_streams", "streams intact")] },
            "of 50 simultaneous streams, not every one gets exactly its own content: output \
             goes to the latest handoff's client",
        ),
        Fault::BufferWholeResponse => (
            const { &[fails("streaming_relay", "relayed as it arrives")] },
            "the first event reaches the client only after the upstream's last write",
        ),
        Fault::WrongContentType => (
            const { &[fails("content_type", "header Content-Type")] },
            "Content-Type is text/plain, which EventSource rejects",
        ),
        Fault::LeakFd => (
            const { &[fails("concurrent_streams", "client sockets released")] },
            "after 50 streams have ended, the daemon holds 50 more client sockets than before",
        ),
        Fault::NoClose => (
            const { &[fails("basic_response", "connection closed")] },
            "the connection stays open 2 s past `data: [DONE]`",
        ),
        Fault::StreamSocket => (
            const { &[fails("socket_type", "socket type")] },
            "a SOCK_SEQPACKET connect, as Apache makes it, fails with EPROTOTYPE",
        ),
        Fault::NaiveUpstreamParser => (
            const {
                &[
                    fails("sse_cr", "content"),
                    fails("sse_nospace", "content"),
                    fails("sse_spaced", "content"),
                ]
            },
            "valid upstream SSE with CR line ends, `data:` without its space, or spaced JSON \
             yields no content",
        ),
        Fault::EscapePassthrough => (
            const { &[fails("escapes", "content")] },
            "`\\n`, `\\\"` and `\\u00e9` in the upstream's JSON reach the client as literal \
             escapes",
        ),
        Fault::Cut4k => (
            const {
                &[
                    fails("long_chunks", "content"),
                    fails("huge_line", "content"),
                ]
            },
            "content pieces over 4 KiB arrive short",
        ),
        Fault::ErrorAsDone => (
            const {
                &[
                    fails("error_500", "no [DONE]"),
                    fails("error_429", "no [DONE]"),
                ]
            },
            "an upstream error status becomes a 200 stream that ends with `data: [DONE]`",
        ),
        // Resource abuse, not a bug to catch: `mutation` runs only `Fault::bugs()`; their own
        // tests (tests/hostile_daemon.rs, tests/suite_unresponsive.rs) hold them.
        Fault::EndlessStream | Fault::GiantLine | Fault::EventFlood | Fault::HugeHead => (
            const { &[] },
            "resource abuse: streamcheck must stay bounded and name the cause",
        ),
        Fault::Silent => (
            const { &[] },
            "resource abuse: the runner must judge it unresponsive in seconds",
        ),
        Fault::NeverAccept | Fault::NeverReadHandoff | Fault::ExitAfterHandoffs => (
            const { &[] },
            "resource abuse: streamcheck must name what happened to the handoff or the daemon",
        ),
    };
    Expectation { catchers, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::catalog;

    fn position(name: &str) -> Option<usize> {
        catalog().iter().position(|s| s.name == name)
    }

    #[test]
    fn every_catcher_is_a_scenario_of_the_catalog_listed_in_catalog_order() {
        for fault in Fault::bugs() {
            let e = expectation(fault);
            assert!(!e.catchers.is_empty(), "{fault} has no catcher");
            let at: Vec<Option<usize>> = e.catchers.iter().map(|c| position(c.scenario)).collect();
            assert!(at.iter().all(Option::is_some), "{fault}: {:?}", e.catchers);
            assert!(at.is_sorted(), "{fault}: catchers out of catalog order");
        }
    }

    #[test]
    fn a_catcher_gives_a_verdict_that_catches() {
        for fault in Fault::bugs() {
            for c in expectation(fault).catchers {
                assert!(c.verdict >= Verdict::NonStrict, "{fault}: {c:?}");
            }
        }
    }

    #[test]
    fn a_scenario_is_named_once_per_mode() {
        for fault in Fault::bugs() {
            let names: Vec<&str> = expectation(fault)
                .catchers
                .iter()
                .map(|c| c.scenario)
                .collect();
            let mut unique = names.clone();
            unique.dedup();
            assert_eq!(unique, names, "{fault}");
        }
    }

    #[test]
    fn every_reason_is_one_line() {
        for fault in Fault::bugs() {
            let r = expectation(fault).reason;
            assert!(
                !r.is_empty() && !r.contains('\n') && !r.contains("  "),
                "{fault}: {r}"
            );
        }
    }
}
