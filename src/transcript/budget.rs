//! How much of one stream is worth reading, and why reading stopped early.
//!
//! A daemon under test may send anything: an endless stream, a gigabyte line, millions of tiny
//! events. A [`Budget`] bounds what a [`super::TranscriptBuilder`] keeps: bytes past it are
//! counted and not decoded, events past it are counted and not kept. Once the stream's verdict
//! cannot change any more ([`SettledCause`]: not HTTP, a head or line past its limit, broken
//! chunked framing, more bytes or events than the expected answer can hold), the client closes
//! the connection.
//!
//! Which cause settles a stream depends only on its bytes, never on how they were split into
//! reads: decoding stops at an exact byte (the budget's last) or where a parser stops itself.

use std::fmt;

use serde::Serialize;

use crate::{http1, sse};

/// The most a stream may send before it is settled as too large. Unlimited by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Received bytes (head included).
    pub max_bytes: u64,
    /// Dispatched events.
    pub max_events: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::UNLIMITED
    }
}

impl Budget {
    /// No bound but the parsers' own limits.
    pub const UNLIMITED: Budget = Budget {
        max_bytes: u64::MAX,
        max_events: u64::MAX,
    };

    /// Room for any correct relay of an upstream answer of `upstream_bytes` bytes in `pieces`
    /// content pieces: a daemon may pass the upstream's chunks through (about the same size),
    /// re-wrap them (smaller) or escape more of the text (bigger), and may add a role event, a
    /// final chunk, an error event and `[DONE]`. Four times the upstream's bytes plus 256 KiB,
    /// and four events per piece plus 1,024, hold all of that with room to spare while keeping
    /// a hostile stream's cost near the answer's own size.
    pub fn for_answer(upstream_bytes: u64, pieces: u64) -> Budget {
        Budget {
            max_bytes: upstream_bytes.saturating_mul(4).saturating_add(256 << 10),
            max_events: pieces.saturating_mul(4).saturating_add(1024),
        }
    }
}

/// Why a stream's outcome was settled before it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettledCause {
    /// The bytes are not a well-formed HTTP/1.x response (head too large, not HTTP, broken
    /// chunked framing).
    Http(http1::Error),
    /// The body crossed an SSE parser limit (a line or an event too large).
    Sse(sse::Error),
    /// More bytes than the expected answer can hold.
    TooManyBytes {
        /// The budget that was crossed.
        limit: u64,
    },
    /// More events than the expected answer can hold.
    TooManyEvents {
        /// The budget that was crossed.
        limit: u64,
    },
}

impl Serialize for SettledCause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for SettledCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettledCause::Http(e) => write!(f, "{e}"),
            SettledCause::Sse(e) => write!(f, "{e}"),
            SettledCause::TooManyBytes { limit } => write!(
                f,
                "the daemon sent more than {limit} bytes, more than any relay of the expected \
                 answer can hold (--max-response-bytes sets this bound)"
            ),
            SettledCause::TooManyEvents { limit } => write!(
                f,
                "the daemon sent more than {limit} events, more than any relay of the expected \
                 answer can hold (--max-events sets this bound)"
            ),
        }
    }
}

/// How a command reads streams, as its flags set it: the parsers' limits (`--max-head-bytes`,
/// `--max-line-bytes`, `--max-event-bytes`), the stream's budget (`--max-response-bytes`,
/// `--max-events`, derived from the expected answer when not given) and how much of the wire a
/// report keeps from each end (`--keep-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest response head.
    pub max_head_bytes: usize,
    /// Longest SSE line.
    pub max_line_bytes: usize,
    /// Largest SSE event data.
    pub max_event_bytes: usize,
    /// Most bytes one stream may send; `None`: [`Budget::for_answer`].
    pub max_response_bytes: Option<u64>,
    /// Most events one stream may send; `None`: [`Budget::for_answer`].
    pub max_events: Option<u64>,
    /// Received bytes a report keeps from each end of a stream.
    pub keep_bytes: usize,
}

impl Default for ReadLimits {
    /// A 64 KiB head, 16 MiB lines and events, the budget of the expected answer, 32 KiB kept
    /// of each end.
    fn default() -> Self {
        ReadLimits {
            max_head_bytes: 64 << 10,
            max_line_bytes: sse::Limits::DEFAULT_MAX_LINE,
            max_event_bytes: sse::Limits::DEFAULT_MAX_EVENT,
            max_response_bytes: None,
            max_events: None,
            keep_bytes: 32 << 10,
        }
    }
}

impl ReadLimits {
    /// The transcript options for a stream whose expected answer allows `answer`.
    pub fn options(&self, answer: Budget) -> super::TranscriptOptions {
        super::TranscriptOptions {
            sse_limits: sse::Limits::default()
                .with_max_line(self.max_line_bytes)
                .with_max_event(self.max_event_bytes),
            http: http1::Config::default().max_head_bytes(self.max_head_bytes),
            budget: Budget {
                max_bytes: self.max_response_bytes.unwrap_or(answer.max_bytes),
                max_events: self.max_events.unwrap_or(answer.max_events),
            },
        }
    }
}
