//! upstream: the LLM API fails. Whatever happens upstream, the browser must learn it within a
//! deadline: an HTTP error status, or an SSE error event after a 200 head. A head followed by
//! a silent close, or a connection left open, leaves the user staring at a spinner.

use super::{Category, Check, Drive, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "8.1",
        name: "error_500",
        category: Category::Upstream,
        description: "The upstream answers 500: the client gets an HTTP error or an SSE error \
                      event, no [DONE], and a close",
        pattern: "error:500",
        ..Scenario::BASE
    },
    Scenario {
        id: "8.2",
        name: "error_429",
        category: Category::Upstream,
        description: "The upstream answers 429 (rate limited): the client gets an HTTP error or \
                      an SSE error event, no [DONE], and a close",
        pattern: "error:429",
        ..Scenario::BASE
    },
    Scenario {
        id: "8.3",
        name: "unreachable_backend",
        category: Category::Upstream,
        description: "The upstream's port is closed: the client gets an HTTP error or an SSE \
                      error event and a close (needs --daemon-cmd to start a second instance)",
        pattern: "default",
        checks: &[Check::UpstreamFailure],
        drive: Drive::Unreachable,
        ..Scenario::BASE
    },
    Scenario {
        id: "8.4",
        name: "stall",
        category: Category::Upstream,
        description: "The upstream sends its head, then nothing for 1 s: the daemon relays the \
                      answer when it comes, or ends the stream with an error, never hangs",
        pattern: "stall:1000",
        ..Scenario::BASE
    },
    Scenario {
        id: "8.5",
        name: "reset",
        category: Category::Upstream,
        description: "The upstream connection is reset after 3 words: those words arrive, then an \
                      error report or a close, never [DONE]",
        pattern: "reset:3",
        ..Scenario::BASE
    },
];
