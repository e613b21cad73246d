//! upstream-sse: valid text/event-stream variants from the upstream. Each is legal SSE that a
//! spec-following parser accepts; a relay that looks for exact text (`data: ` with a space, LF
//! line ends, compact JSON) fails them.

use super::{Category, Scenario};

pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "12.1",
        name: "sse_bom",
        category: Category::UpstreamSse,
        description: "A UTF-8 byte order mark before the first upstream event is skipped",
        pattern: "bom",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.2",
        name: "sse_crlf",
        category: Category::UpstreamSse,
        description: "Upstream lines ending in CRLF are parsed",
        pattern: "crlf",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.3",
        name: "sse_cr",
        category: Category::UpstreamSse,
        description: "Upstream lines ending in a lone CR are parsed",
        pattern: "cr",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.4",
        name: "sse_nospace",
        category: Category::UpstreamSse,
        description: "`data:` without the optional space after the colon is parsed",
        pattern: "nospace",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.5",
        name: "sse_comments",
        category: Category::UpstreamSse,
        description: "Keep-alive comment lines between upstream events are ignored",
        pattern: "comments",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.6",
        name: "sse_multiline",
        category: Category::UpstreamSse,
        description: "Upstream JSON spread over several data: lines is joined with LF and parsed",
        pattern: "multiline",
        ..Scenario::BASE
    },
    Scenario {
        id: "12.7",
        name: "sse_spaced",
        category: Category::UpstreamSse,
        description: "Upstream JSON with spaces after colons and commas is parsed",
        pattern: "spaced",
        ..Scenario::BASE
    },
];
