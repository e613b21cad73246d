//! Incremental text/event-stream parser following the WHATWG HTML rules.
//!
//! This is the parser every streamcheck verdict rests on, so it implements the HTML Standard's
//! [server-sent events parsing][spec] exactly and reports what it cannot accept instead of
//! guessing. It is a push parser: no I/O, no clocks, bytes in and events out, for any way the
//! bytes were split into reads.
//!
//! - **Exact.** One leading BOM is stripped, also when it arrives split across feeds; lines end at
//!   CRLF, LF or CR, and a CRLF split across two feeds ends one line; comments, fields without a
//!   colon, the single space after the colon, `data` joined with LF, `event`, `id` (ignored when it
//!   contains NUL, persisting across events and reconnections), `retry` (ASCII digits only), unknown
//!   fields ignored, dispatch on a blank line, nothing dispatched for an empty data buffer. The
//!   parser passes the 93 conformance vectors in `tests/data/sse_vectors.json` under every split.
//! - **Prompt.** An event is delivered by the [`Parser::feed`] call that brings its blank line. A CR
//!   at the end of a feed ends the line at once; an LF starting the next feed is then skipped.
//! - **Traceable.** Every event carries the stream offsets of its block and the index of the feed
//!   that completed it, so a caller can attach receive timestamps to it.
//! - **Honest about bad bytes.** Invalid UTF-8 never panics and is never repaired in place: the event
//!   keeps the raw bytes and says where the first invalid one is. Data the parser has to buffer
//!   is checked (with simdutf8) as it arrives, while it is still in cache.
//! - **Bounded.** A line longer than [`Limits::max_line`] or event data larger than
//!   [`Limits::max_event`] stops the stream with an [`Error`]; memory stays below the sum of the two.
//! - **Linear.** Each byte is looked at a bounded number of times whatever the chunking, with no
//!   allocation per byte: a 4 MiB line fed one byte at a time costs what it costs in one piece.
//! - **Zero-copy when it can.** Through a [`Visitor`], an event whose data is one line inside the
//!   chunk being fed is handed over as a slice of that chunk.
//!
//! # API
//!
//! - [`Parser::new`] / [`Parser::with_limits`] make a parser for one stream; [`Limits`] is a
//!   builder (`Limits::default().with_max_line(…)`).
//! - [`Parser::feed`]`(chunk, &mut visitor) -> Result<(), Error>` parses one chunk and hands every
//!   event it completes to the visitor before returning. A `Vec<Event>` is a visitor that collects
//!   owned [`Event`]s; any type implementing [`Visitor`] (or a closure wrapped by [`on_event`])
//!   receives borrowed [`EventRef`]s instead, plus comments and `retry` values; an `EventRef`
//!   answers [`EventRef::invalid_utf8`] cheaply and becomes an `Event` with
//!   [`EventRef::into_event`]. On error, the events
//!   completed before the offending line have been delivered, and every later `feed` returns the
//!   same error.
//! - [`Parser::finish`] ends the stream: it reports an event left without its blank line
//!   ([`Unterminated`]), which the spec discards, and readies the parser for the next connection.
//!   The last event ID and the reconnection time carry over to it, as browsers do.
//! - [`Parser::last_event_id`], [`Parser::reconnection_time`], [`Parser::offset`] and
//!   [`Parser::feed_count`] expose the rest of the stream's state.
//!
//! Offsets count every byte fed on the current connection, the BOM included. An event's `start` is
//! the offset of the first line of its block (comments included), its `end` the offset just past
//! the CR or LF that ended its blank line: for a CRLF that is past the CR, because the event is
//! complete there, and the LF may only arrive with the next feed.
//!
//! ```
//! use streamcheck::sse::{Event, Parser};
//!
//! let mut parser = Parser::new();
//! let mut events: Vec<Event> = Vec::new();
//! parser.feed(b"\xEF\xBB\xBFevent: greeting\r\ndata: hel", &mut events)?;
//! assert!(events.is_empty());
//! parser.feed(b"lo\r", &mut events)?;
//! parser.feed(b"\ndata: world\n\r", &mut events)?; // delivered at the CR
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].event_type, "greeting");
//! assert_eq!(events[0].data_str(), "hello\nworld");
//! assert_eq!((events[0].start, events[0].end, events[0].feed_index), (3, 46, 2));
//!
//! parser.feed(b"\nid: 7\ndata: {\"content\":\"cut", &mut events)?;
//! let cut = parser.finish().expect("the last event has no blank line");
//! assert_eq!((cut.start, cut.end, cut.partial_line), (47, 74, true));
//! assert_eq!(parser.last_event_id(), ""); // `id: 7` was never dispatched
//! # Ok::<(), streamcheck::sse::Error>(())
//! ```
//!
//! The zero-copy path, for callers that only look at each event once:
//!
//! ```
//! use streamcheck::sse::{on_event, EventRef, Parser};
//!
//! let mut parser = Parser::new();
//! let mut bytes = 0;
//! let mut count = on_event(|event: EventRef<'_>| {
//!     assert!(event.data_is_borrowed());
//!     bytes += event.data().len();
//! });
//! parser.feed(b"data: {\"content\":\"Hello\"}\n\ndata: [DONE]\n\n", &mut count)?;
//! assert_eq!(bytes, 19 + 6);
//! # Ok::<(), streamcheck::sse::Error>(())
//! ```
//!
//! [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

#![deny(missing_docs)]

mod event;
mod parser;
mod scan;
#[cfg(test)]
mod tests;

pub use event::{Event, EventRef, OnEvent, Unterminated, Visitor, on_event};
pub use parser::Parser;

/// What stops a stream: each variant names the bound that was crossed and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line (terminator excluded) grew longer than [`Limits::max_line`].
    #[error(
        "line starting at byte {start} is longer than {limit} bytes; \
         raise --max-line-bytes if the daemon really sends such lines"
    )]
    LineTooLong {
        /// Stream offset of the line's first byte.
        start: u64,
        /// The limit that was crossed, in bytes.
        limit: usize,
    },
    /// An event's data (lines joined by LF) grew larger than [`Limits::max_event`].
    #[error(
        "event starting at byte {start} carries more than {limit} bytes of data; \
         raise --max-event-bytes if the daemon really sends such events"
    )]
    EventTooLarge {
        /// Stream offset of the event block's first line.
        start: u64,
        /// The limit that was crossed, in bytes.
        limit: usize,
    },
}

/// Memory bounds for one stream. The defaults are generous: daemons relay lines of 100 KiB and
/// more, and a test tool must see them; the bounds exist so that a runaway stream ends with an
/// error instead of exhausting memory.
///
/// The spec sets no limit. These are the only places where this parser refuses input the spec
/// would accept, and each refusal is an [`Error`] naming the limit, never a silent truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line in bytes, terminator excluded. Applies to every kind of line,
    /// comments and ignored fields included. Default 16 MiB.
    pub max_line: usize,
    /// Largest accepted event data in bytes, counted as dispatched (lines joined by LF). Checked
    /// when a data line ends. Default 16 MiB.
    pub max_event: usize,
}

impl Limits {
    /// The default line limit: 16 MiB.
    pub const DEFAULT_MAX_LINE: usize = 16 << 20;
    /// The default event data limit: 16 MiB.
    pub const DEFAULT_MAX_EVENT: usize = 16 << 20;

    /// Sets [`Limits::max_line`].
    #[must_use]
    pub const fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// Sets [`Limits::max_event`].
    #[must_use]
    pub const fn with_max_event(mut self, bytes: usize) -> Self {
        self.max_event = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: Self::DEFAULT_MAX_LINE,
            max_event: Self::DEFAULT_MAX_EVENT,
        }
    }
}
