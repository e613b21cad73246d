//! What the parser hands out: owned [`Event`]s, borrowed [`EventRef`]s, and the [`Visitor`] that
//! receives them.

use std::borrow::Cow;

/// Data at least this large is moved out of the parser's buffer instead of copied when an
/// [`EventRef`] becomes an [`Event`]; smaller data is copied so the buffer keeps its capacity.
const MOVE_THRESHOLD: usize = 64 * 1024;

/// Index of the first byte of `bytes` that is not valid UTF-8, or `None` if all are valid.
/// The common all-valid case takes simdutf8's vectorised check; std locates an error.
pub(super) fn invalid_utf8(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 64 && bytes.is_ascii() {
        return None;
    }
    match simdutf8::basic::from_utf8(bytes) {
        Ok(_) => None,
        Err(_) => std::str::from_utf8(bytes).err().map(|e| e.valid_up_to()),
    }
}

/// A dispatched event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type: the last `event` field of the block, or `message` when it had none or an
    /// empty one. Decoded as the spec's UTF-8 decoder does (invalid bytes become U+FFFD).
    pub event_type: String,
    /// The data: the block's `data` values joined by LF, raw bytes as received.
    pub data: Vec<u8>,
    /// The last event ID string at dispatch: the latest `id` without NUL on this connection or an
    /// earlier one, or empty. Decoded like `event_type`.
    pub id: String,
    /// The reconnection time set by a valid `retry` field in this event's block, if any.
    pub retry: Option<u64>,
    /// Stream offset of the block's first line.
    pub start: u64,
    /// Stream offset just past the CR or LF that ended the blank line dispatching the event.
    pub end: u64,
    /// Index of the [`Parser::feed`](super::Parser::feed) call that completed the event, counted
    /// from 0 on each connection.
    pub feed_index: usize,
    /// Index in `data` of the first byte that is not valid UTF-8 (as
    /// [`std::str::Utf8Error::valid_up_to`]), or `None` when `data` is valid UTF-8.
    pub invalid_utf8: Option<usize>,
}

impl Event {
    /// The data as text, invalid UTF-8 replaced by U+FFFD as the spec's decoder does. Borrowed
    /// when the data is valid UTF-8.
    pub fn data_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// Where an [`EventRef`]'s data lives.
#[derive(Debug)]
pub(super) enum DataRef<'a> {
    /// Inside the chunk being fed (the zero-copy case).
    Chunk(&'a [u8]),
    /// In the parser's data buffer, which [`EventRef::into_event`] may take. `data[..checked]`
    /// is known valid UTF-8, ending at a character boundary, unless `invalid` says where it
    /// is not.
    Buffer {
        data: &'a mut Vec<u8>,
        checked: usize,
        invalid: Option<usize>,
    },
}

/// A dispatched event, borrowed from the parser and the chunk being fed; valid during the
/// [`Visitor::event`] call. [`EventRef::into_event`] makes it an owned [`Event`].
#[derive(Debug)]
pub struct EventRef<'a> {
    pub(super) event_type: &'a [u8],
    pub(super) data: DataRef<'a>,
    pub(super) id: &'a str,
    pub(super) retry: Option<u64>,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) feed_index: usize,
}

impl<'a> EventRef<'a> {
    /// The event type, `message` when the block had no `event` field or an empty one.
    pub fn event_type(&self) -> Cow<'a, str> {
        if self.event_type.is_empty() {
            Cow::Borrowed("message")
        } else {
            String::from_utf8_lossy(self.event_type)
        }
    }

    /// The raw bytes of the block's last `event` field, empty when there was none.
    pub fn event_type_bytes(&self) -> &'a [u8] {
        self.event_type
    }

    /// The data: the block's `data` values joined by LF, raw bytes.
    pub fn data(&self) -> &[u8] {
        match &self.data {
            DataRef::Chunk(data) => data,
            DataRef::Buffer { data, .. } => data,
        }
    }

    /// The data as text, if it is valid UTF-8 (checked with SIMD, not cached).
    pub fn data_str(&self) -> Option<&str> {
        simdutf8::basic::from_utf8(self.data()).ok()
    }

    /// Index in the data of the first byte that is not valid UTF-8, as [`Event::invalid_utf8`].
    /// Data the parser buffered was mostly checked as it arrived; only the rest is checked here.
    pub fn invalid_utf8(&self) -> Option<usize> {
        match &self.data {
            DataRef::Chunk(data) => invalid_utf8(data),
            DataRef::Buffer {
                invalid: Some(at), ..
            } => Some(*at),
            DataRef::Buffer {
                data,
                checked,
                invalid: None,
            } => invalid_utf8(&data[*checked..]).map(|at| checked + at),
        }
    }

    /// Whether [`EventRef::data`] borrows the chunk being fed (nothing was copied).
    pub fn data_is_borrowed(&self) -> bool {
        matches!(self.data, DataRef::Chunk(_))
    }

    /// The last event ID string at dispatch (see [`Event::id`]).
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The reconnection time set by a valid `retry` field in this event's block, if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Stream offset of the block's first line.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Stream offset just past the CR or LF that ended the dispatching blank line.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Index of the feed call that completed the event.
    pub fn feed_index(&self) -> usize {
        self.feed_index
    }

    /// The owned event. Large data is moved out of the parser's buffer rather than copied.
    pub fn into_event(self) -> Event {
        let event_type = self.event_type().into_owned();
        let invalid_utf8 = self.invalid_utf8();
        let data = match self.data {
            DataRef::Chunk(data) => data.to_vec(),
            DataRef::Buffer { data, .. } if data.len() >= MOVE_THRESHOLD => std::mem::take(data),
            DataRef::Buffer { data, .. } => data.as_slice().to_vec(),
        };
        Event {
            event_type,
            invalid_utf8,
            data,
            id: self.id.to_owned(),
            retry: self.retry,
            start: self.start,
            end: self.end,
            feed_index: self.feed_index,
        }
    }
}

/// Receives what [`Parser::feed`](super::Parser::feed) finds, as it finds it.
///
/// Only [`Visitor::event`] is required. `Vec<Event>` implements it by collecting owned events.
pub trait Visitor {
    /// An event was dispatched by a blank line.
    fn event(&mut self, event: EventRef<'_>);

    /// A comment line: `text` is everything after the colon, raw; `start` is the line's offset.
    fn comment(&mut self, text: &[u8], start: u64) {
        let _ = (text, start);
    }

    /// A `retry` field of ASCII digits set the reconnection time to `millis`; `start` is the
    /// line's offset. Reported when the line ends, whether or not its block dispatches an event.
    fn retry(&mut self, millis: u64, start: u64) {
        let _ = (millis, start);
    }
}

impl Visitor for Vec<Event> {
    fn event(&mut self, event: EventRef<'_>) {
        self.push(event.into_event());
    }
}

impl<V: Visitor + ?Sized> Visitor for &mut V {
    fn event(&mut self, event: EventRef<'_>) {
        (**self).event(event);
    }

    fn comment(&mut self, text: &[u8], start: u64) {
        (**self).comment(text, start);
    }

    fn retry(&mut self, millis: u64, start: u64) {
        (**self).retry(millis, start);
    }
}

/// A [`Visitor`] made of a closure that receives each event; see [`on_event`].
#[derive(Debug, Clone, Copy)]
pub struct OnEvent<F>(pub F);

/// Wraps a closure taking each [`EventRef`] into a [`Visitor`] (comments and `retry` are ignored).
pub fn on_event<F: FnMut(EventRef<'_>)>(f: F) -> OnEvent<F> {
    OnEvent(f)
}

impl<F: FnMut(EventRef<'_>)> Visitor for OnEvent<F> {
    fn event(&mut self, event: EventRef<'_>) {
        (self.0)(event);
    }
}

/// An event block the stream ended in: [`Parser::finish`](super::Parser::finish) reports it, and
/// the spec discards it ("If the file ends in the middle of an event, before the final empty
/// line, the incomplete event is not dispatched").
///
/// Reported when the block holds anything besides comment lines: a field line, or a line cut off
/// by the end of the stream. Comment-only tails (keep-alives) are not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    /// Stream offset of the block's first line.
    pub start: u64,
    /// Stream offset of the end of the stream.
    pub end: u64,
    /// Whether the stream ended inside a line (no CR or LF after the last byte).
    pub partial_line: bool,
}
