//! headers: the response head. The daemon writes it itself (Apache adds nothing after a
//! handoff), so every header a browser or proxy needs is the daemon's job.

use super::{Category, Check, Data, HeaderRule, Scenario};
use crate::verdict::Verdict;

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "6.1",
        name: "status_line",
        category: Category::Headers,
        description: "The response starts with a valid HTTP/1.x status line with status 200",
        pattern: "finish:stop",
        checks: &[Check::StatusLine],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.2",
        name: "content_type",
        category: Category::Headers,
        description: "Content-Type is text/event-stream, or EventSource refuses the stream",
        pattern: "finish:stop",
        checks: &[Check::Header {
            name: "Content-Type",
            rule: HeaderRule::MediaType("text/event-stream"),
            level: Verdict::Fail,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.3",
        name: "cache_control",
        category: Category::Headers,
        description: "Cache-Control: no-cache keeps caches from storing or replaying the stream",
        pattern: "finish:stop",
        checks: &[Check::Header {
            name: "Cache-Control",
            rule: HeaderRule::Contains("no-cache"),
            level: Verdict::NonStrict,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.4",
        name: "connection_close",
        category: Category::Headers,
        description: "Connection: close says the body ends when the connection does",
        pattern: "finish:stop",
        checks: &[Check::Header {
            name: "Connection",
            rule: HeaderRule::Contains("close"),
            level: Verdict::NonStrict,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.5",
        name: "accel_buffering",
        category: Category::Headers,
        description: "Whether X-Accel-Buffering: no asks a fronting nginx not to buffer the stream",
        pattern: "finish:stop",
        checks: &[Check::Header {
            name: "X-Accel-Buffering",
            rule: HeaderRule::Contains("no"),
            level: Verdict::Informational,
        }],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.6",
        name: "response_headers",
        category: Category::Headers,
        description: "The handoff's response_headers object is appended to the response head",
        pattern: "finish:stop",
        data: Data::ResponseHeaders,
        checks: &[Check::ResponseHeadersEchoed],
        ..Scenario::BASE
    },
    Scenario {
        id: "6.7",
        name: "head_timing",
        category: Category::Headers,
        description: "When the head goes out: before the upstream is asked, once it answers, or \
                      only with the first chunk (a fact, not a fault)",
        pattern: "stall:200",
        checks: &[Check::HeadTiming],
        ..Scenario::BASE
    },
];
