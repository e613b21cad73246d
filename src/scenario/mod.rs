//! The scenario catalog, one file per category, and the runner behind `streamcheck run`.
//!
//! A scenario is data: an id (`"4.1"`), a name (`abort_stream`), a category, one sentence on what
//! it checks, the pattern it drives ([`crate::pattern`]), the handoff data it sends ([`Data`]),
//! how the client behaves ([`Client`]), the checks it makes ([`Check`]) and how it is driven
//! ([`Drive`]). The expected outcome is never written here: [`Check::Outcome`] and the content
//! checks take it from the pattern's [`crate::pattern::Expected`], computed from the same piece
//! list the mock sends, so an expectation cannot drift from the upstream.
//!
//! Every handoff carries its pattern twice, `test_pattern` in the data (which a conforming daemon
//! copies into `X-Test-Pattern`) and `[[pattern:…]]` in the prompt beside a fresh
//! `[[nonce:…]]`, so a daemon that does not forward the header is still tested on every pattern.
//! Whether the header and the prompt reached the upstream is read from the mock's request log and
//! reported as assertions of their own: "content differs" never hides "pattern not forwarded".
//! Each such requirement has one owning scenario (`owners.rs`) where it fails; elsewhere it is a
//! note, and a scenario whose pattern never reached the mock says it could not be judged.
//!
//! [`run_suite`] runs a selection of the catalog against a daemon and returns a
//! [`crate::verdict::RunSummary`]; `streamcheck run` is a thin wrapper around it, and so is any
//! test that needs to run the suite (e.g. against every fault mode of the reference daemon).

mod abort;
mod basic;
mod chunks;
mod client;
mod concurrency;
mod daemon;
mod data;
mod drive;
mod finish;
mod handoff;
mod headers;
mod judge;
mod list;
mod live;
mod mockio;
pub mod mutation;
mod observe;
mod owners;
mod remote;
mod runner;
mod schedule;
mod slow;
mod splits;
mod unicode;
mod unresponsive;
mod upstream;
mod upstream_sse;

use std::sync::OnceLock;

use crate::verdict::Verdict;

// For `prop`, which drives the same daemon and mock its own way.
pub(crate) use daemon::{
    DaemonProcess, alive as process_alive, daemon_env, no_socket_message, substitute,
};
pub use list::{list_human, list_json};
pub(crate) use mockio::Mock;
pub(crate) use remote::{DAEMON_CMD_INSTEAD, Remote};
pub use runner::{
    DaemonCommand, MockOptions, SuiteConfig, SuiteError, SuiteRun, Target, run_suite,
    run_suite_with,
};

/// A scenario category, numbered as in reports (`4.1` is the first `abort` scenario).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// A plain answer relayed whole.
    Basic,
    /// Multi-byte characters relayed intact.
    Unicode,
    /// Very short and very long upstream chunks.
    Chunks,
    /// An upstream that stops without finishing its answer.
    Abort,
    /// The finish_reason of the upstream's last chunk.
    Finish,
    /// The response head the daemon writes.
    Headers,
    /// The handoff message: empty, invalid, large, escaped; the socket type.
    Handoff,
    /// An upstream that fails, is unreachable, stalls or resets.
    Upstream,
    /// A client that goes away or reads slowly.
    Client,
    /// Many streams at once.
    Concurrency,
    /// Upstream writes cut anywhere: inside characters, lines and escapes.
    Splits,
    /// Valid SSE variants the daemon must parse from its upstream.
    UpstreamSse,
}

impl Category {
    /// Every category, in catalog order.
    pub const ALL: [Category; 12] = [
        Category::Basic,
        Category::Unicode,
        Category::Chunks,
        Category::Abort,
        Category::Finish,
        Category::Headers,
        Category::Handoff,
        Category::Upstream,
        Category::Client,
        Category::Concurrency,
        Category::Splits,
        Category::UpstreamSse,
    ];

    /// The name used by `--category` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Category::Basic => "basic",
            Category::Unicode => "unicode",
            Category::Chunks => "chunks",
            Category::Abort => "abort",
            Category::Finish => "finish",
            Category::Headers => "headers",
            Category::Handoff => "handoff",
            Category::Upstream => "upstream",
            Category::Client => "client",
            Category::Concurrency => "concurrency",
            Category::Splits => "splits",
            Category::UpstreamSse => "upstream-sse",
        }
    }

    /// The category's number, the first part of its scenarios' ids.
    pub fn number(self) -> usize {
        Category::ALL.iter().position(|c| *c == self).unwrap_or(0) + 1
    }

    /// One line on what the category covers.
    pub fn summary(self) -> &'static str {
        match self {
            Category::Basic => "a plain answer relayed whole",
            Category::Unicode => "multi-byte characters relayed intact",
            Category::Chunks => "very short and very long upstream chunks",
            Category::Abort => "an upstream that stops without finishing its answer",
            Category::Finish => "the finish_reason of the upstream's last chunk",
            Category::Headers => "the response head the daemon writes",
            Category::Handoff => "the handoff message: empty, invalid, large, escaped; socket type",
            Category::Upstream => "an upstream that fails, is unreachable, stalls or resets",
            Category::Client => "a client that goes away or reads slowly",
            Category::Concurrency => "many streams at once, each with its own content",
            Category::Splits => "upstream writes cut inside characters, lines and escapes",
            Category::UpstreamSse => "valid SSE variants the daemon must parse from its upstream",
        }
    }

    /// The category called `name`.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The handoff data a scenario sends. Every form but [`Data::Empty`] carries the pattern twice
/// (`test_pattern` and `[[pattern:…]]`) and a fresh `[[nonce:…]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// `{"prompt":"… [[pattern:P]] [[nonce:N]]","user_id":1,"test_pattern":"P"}`.
    Standard,
    /// No data at all: Apache's single NUL byte.
    Empty,
    /// JSON cut off inside the prompt string (the directives are before the cut).
    InvalidJson,
    /// A message of `bytes` bytes: the prompt padded ahead of its directives, so a daemon that
    /// cuts the data loses the nonce.
    Padded {
        /// The size of the whole message.
        bytes: usize,
    },
    /// A prompt written with JSON escapes (`\u00e9`, `\n`, `\"`, `\\`, a surrogate pair) that
    /// must reach the upstream decoded, exactly.
    EscapedPrompt,
    /// The standard data plus `response_headers` the daemon must append to its response head.
    ResponseHeaders,
}

/// How the client (the browser the test plays) behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Reads everything until the daemon closes.
    ReadAll,
    /// Closes the connection once this many content events have arrived (a browser that
    /// navigates away).
    CloseAfterEvents(usize),
}

/// How a response header is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderRule {
    /// `Content-Type` names this media type (parameters ignored).
    MediaType(&'static str),
    /// The header contains this token (case-insensitive).
    Contains(&'static str),
    /// The header is present.
    Present,
}

/// One check a scenario makes. [`Check::Outcome`] expands into the assertions the pattern's
/// expected outcome calls for (see `judge.rs`); the others are single assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The pattern's expected outcome: [`Check::Content`] and [`Check::Ending`], with the status
    /// a relayed answer needs.
    Outcome,
    /// The content equals the pattern's, byte for byte.
    Content,
    /// The stream ends as the pattern's outcome requires: `[DONE]` after a complete answer, no
    /// `[DONE]` after a truncated one, an error report where the upstream failed, and the
    /// connection closed by the daemon.
    Ending,
    /// Only the content of pieces `pieces.0..pieces.1` of the pattern, at their offset, named
    /// `what` (e.g. the emoji of the unicode pattern).
    ContentPieces {
        /// What these pieces are, for messages.
        what: &'static str,
        /// Piece range, end exclusive.
        pieces: (usize, usize),
    },
    /// The finish_reason the upstream sent reaches the client (non-strict when the daemon uses
    /// the simplified format, which has none).
    FinishReason,
    /// The status line: `HTTP/1.x 200`.
    StatusLine,
    /// A response header, with the verdict given when the rule does not hold.
    Header {
        /// Header name.
        name: &'static str,
        /// What it must hold.
        rule: HeaderRule,
        /// Verdict when it does not.
        level: Verdict,
    },
    /// The handoff's `response_headers` appear in the response head.
    ResponseHeadersEchoed,
    /// When the head went out relative to the upstream's answer (informational).
    HeadTiming,
    /// Either the data was processed (the nonce reached the upstream, and the pattern's outcome
    /// holds) or the daemon answered with a clean HTTP error; never silence, never a stream
    /// that ignored the data.
    ProcessedOrRejected,
    /// The upstream could not be reached: an HTTP error or an SSE error event, no `[DONE]`, and
    /// a close (the pattern plays no part: no upstream answers).
    UpstreamFailure,
    /// After the client left, the upstream request was cancelled within this many ms.
    UpstreamCancelled {
        /// The limit, in ms.
        within_ms: u64,
    },
    /// The first content event reached the client before the upstream's last write: the daemon
    /// relays as it receives instead of buffering the answer.
    RelayedIncrementally,
}

/// How a scenario is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// One handoff.
    Single,
    /// One handoff over `SOCK_SEQPACKET` whatever `--socket-type` says: the conformance check
    /// that the daemon listens as Apache connects.
    SocketType,
    /// One handoff to a second daemon instance whose upstream is a closed port (needs
    /// `--daemon-cmd`; skipped otherwise).
    Unreachable,
    /// A stream whose client stops reading, and a second stream whose relay latency must not
    /// suffer. Runs alone.
    SlowReader,
    /// This many simultaneous handoffs with distinct nonces. Runs alone.
    Concurrent {
        /// Number of streams.
        streams: usize,
    },
}

impl Drive {
    /// Whether the scenario needs the daemon to itself (no other scenario runs meanwhile).
    pub fn exclusive(self) -> bool {
        matches!(self, Drive::SlowReader | Drive::Concurrent { .. })
    }
}

/// One scenario of the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// `"<category>.<case>"`, e.g. `"4.1"`.
    pub id: &'static str,
    /// Unique name, e.g. `abort_stream`.
    pub name: &'static str,
    /// Its category.
    pub category: Category,
    /// One sentence: what it checks.
    pub description: &'static str,
    /// The pattern spec the mock serves (`abort:5`).
    pub pattern: &'static str,
    /// The handoff data.
    pub data: Data,
    /// How the client behaves.
    pub client: Client,
    /// The checks made.
    pub checks: &'static [Check],
    /// How it is driven.
    pub drive: Drive,
}

impl Scenario {
    /// A single handoff of the standard data, read whole, judged by the pattern's outcome: the
    /// base the catalog's entries override.
    pub const BASE: Scenario = Scenario {
        id: "",
        name: "",
        category: Category::Basic,
        description: "",
        pattern: "default",
        data: Data::Standard,
        client: Client::ReadAll,
        checks: &[Check::Outcome],
        drive: Drive::Single,
    };
}

/// The whole catalog, in order.
pub fn catalog() -> &'static [Scenario] {
    static CATALOG: OnceLock<Vec<Scenario>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        [
            basic::SCENARIOS,
            unicode::SCENARIOS,
            chunks::SCENARIOS,
            abort::SCENARIOS,
            finish::SCENARIOS,
            headers::SCENARIOS,
            handoff::SCENARIOS,
            upstream::SCENARIOS,
            client::SCENARIOS,
            concurrency::SCENARIOS,
            splits::SCENARIOS,
            upstream_sse::SCENARIOS,
        ]
        .concat()
    })
}

/// A `--category` or `--scenario` value that names nothing in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No such category.
    #[error("unknown category `{0}`; categories: {names}", names = category_names())]
    Category(String),
    /// No scenario with this name or id.
    #[error(
        "unknown scenario `{0}`: give a name or an id that `streamcheck list` shows (e.g. basic_response or 1.1)"
    )]
    Scenario(String),
}

fn category_names() -> String {
    Category::ALL.map(Category::name).join(", ")
}

/// The scenarios in `categories` or named (by name or id) in `scenarios`, in catalog order; the
/// whole catalog when both are empty.
pub fn select(
    categories: &[String],
    scenarios: &[String],
) -> Result<Vec<&'static Scenario>, SelectError> {
    let mut cats = Vec::new();
    for c in categories {
        cats.push(Category::parse(c).ok_or_else(|| SelectError::Category(c.clone()))?);
    }
    for s in scenarios {
        if !catalog().iter().any(|sc| sc.name == s || sc.id == s) {
            return Err(SelectError::Scenario(s.clone()));
        }
    }
    let all = categories.is_empty() && scenarios.is_empty();
    Ok(catalog()
        .iter()
        .filter(|sc| {
            all || cats.contains(&sc.category)
                || scenarios.iter().any(|s| s == sc.name || s == sc.id)
        })
        .collect())
}

#[cfg(test)]
mod tests;
