//! The push parser: lines out of chunks, fields out of lines, events out of blocks.
//!
//! A line that ends inside the chunk being fed is parsed straight from the chunk; a line cut by
//! the end of a chunk is carried over by [`partial`]. Every byte is looked at a bounded number of
//! times whatever the chunking (no buffered byte is rescanned for a line end), which keeps
//! parsing linear.

use memchr::memchr;

use super::event::{DataRef, EventRef, Unterminated, Visitor};
use super::scan::{find_eol, parse_retry, split_field};
use super::{Error, Limits};

mod partial;

/// "The UTF-8 decode algorithm strips one leading UTF-8 Byte Order Mark (BOM), if any."
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// `bom_seen` once the start of the stream has been decided (BOM stripped or absent).
const BOM_DECIDED: u8 = u8::MAX;

/// What is known about a line cut by the end of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Partial {
    /// No line in progress: the next byte starts one.
    None,
    /// `line_buf` holds the line so far: no colon yet, and a prefix of a field name the spec acts on.
    Name,
    /// `line_buf` holds the line so far: a comment, or an `event`, `id` or `retry` field.
    Field,
    /// A `data` line: its value goes straight into the data buffer. `strip_space` while the byte
    /// after the colon has not arrived yet.
    Data { strip_space: bool },
    /// A field the spec ignores: its bytes are only counted against the line limit.
    Skip,
}

/// An incremental text/event-stream parser for one stream (and its reconnections); see the
/// [module documentation](super) for the rules and the API.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    /// Bytes fed on this connection.
    offset: u64,
    /// Feed calls on this connection.
    feeds: usize,
    /// BOM bytes matched at the start of the stream, or [`BOM_DECIDED`].
    bom_seen: u8,
    /// The previous chunk ended with CR: an LF starting the next one belongs to it.
    skip_lf: bool,
    /// The error that stopped this connection's stream.
    error: Option<Error>,

    partial: Partial,
    line_start: u64,
    line_len: usize,
    pub(super) line_buf: Vec<u8>,

    /// Offset of the current block's first line.
    block_start: Option<u64>,
    /// The current block holds a line other than comments and blank lines.
    significant: bool,
    /// The current block has a data line (the spec's data buffer is not empty).
    has_data: bool,
    /// The block's only data value, still inside the chunk being fed: `chunk[.0...1]`.
    borrowed: Option<(usize, usize)>,
    /// The data buffer, without the spec's trailing LF.
    pub(super) data: Vec<u8>,
    /// `data[..data_checked]` is valid UTF-8 and ends at a character boundary.
    data_checked: usize,
    /// Index of the first invalid UTF-8 byte in `data`, once found.
    data_invalid: Option<usize>,
    event_type: Vec<u8>,
    block_retry: Option<u64>,
    /// The last event ID buffer, when set since the last dispatch; else it equals `last_id`.
    id_buf: String,
    id_pending: bool,
    last_id: String,
    reconnection_time: Option<u64>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given [`Limits`].
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            offset: 0,
            feeds: 0,
            bom_seen: 0,
            skip_lf: false,
            error: None,
            partial: Partial::None,
            line_start: 0,
            line_len: 0,
            line_buf: Vec::new(),
            block_start: None,
            significant: false,
            has_data: false,
            borrowed: None,
            data: Vec::new(),
            data_checked: 0,
            data_invalid: None,
            event_type: Vec::new(),
            block_retry: None,
            id_buf: String::new(),
            id_pending: false,
            last_id: String::new(),
            reconnection_time: None,
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last event ID string: the `id` of the last dispatch point, kept across reconnections.
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// The reconnection time in milliseconds set by the latest valid `retry` field, if any. Values
    /// beyond `u64::MAX` saturate.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Bytes fed on the current connection.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feed calls made on the current connection: the next feed's index.
    pub fn feed_count(&self) -> usize {
        self.feeds
    }

    /// Parses `chunk`, the next bytes of the stream, and hands every event it completes (and every
    /// comment and valid `retry`) to `visitor` before returning.
    ///
    /// # Errors
    ///
    /// [`Error::LineTooLong`] or [`Error::EventTooLarge`] when a limit is crossed. Everything
    /// before the offending line has been delivered; the stream stops there, and every later
    /// `feed` on this connection returns the same error.
    #[inline]
    pub fn feed<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        visitor: &mut V,
    ) -> Result<(), Error> {
        // The hot path, kept small: more of a line that earlier feeds cut, above all a data
        // value (long lines, small reads). Everything else, including finishing that line, is
        // `feed_general`. (A line in progress means no CR is pending and the BOM is decided.)
        if !matches!(self.partial, Partial::None) && self.error.is_none() {
            let eol = find_eol(chunk);
            if eol.is_none() && chunk.len() <= self.limits.max_line - self.line_len {
                self.feeds += 1;
                self.offset += chunk.len() as u64;
                self.line_len += chunk.len();
                if let Partial::Data { strip_space: false } = self.partial {
                    self.extend_data(false, chunk);
                    self.check_new_data();
                } else {
                    self.extend_other(chunk, chunk);
                }
                return Ok(());
            }
            return self.feed_general(chunk, visitor, Some(eol));
        }
        self.feed_general(chunk, visitor, None)
    }

    /// [`Parser::feed`]; `eol`, when known, is where the first line end in `chunk` is.
    fn feed_general<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        visitor: &mut V,
        eol: Option<Option<usize>>,
    ) -> Result<(), Error> {
        let feed = self.feeds;
        self.feeds += 1;
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let base = self.offset;
        self.offset += chunk.len() as u64;
        let result = self.parse(chunk, base, feed, visitor, eol);
        // The chunk is only lent for this call: keep a copy of a data value still pointing into it.
        if let Some((start, end)) = self.borrowed.take() {
            self.data.extend_from_slice(&chunk[start..end]);
        }
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    /// Ends the current connection's stream. Returns the event block the stream ended in, if any
    /// (the spec discards it: "any pending data must be discarded"), or `None` after an error.
    ///
    /// The parser is then ready for the next connection: offsets and feed indexes restart at 0
    /// and a BOM is stripped again; the last event ID and the reconnection time carry over, as in
    /// browsers, whose reconnection sends the last event ID and keeps it on later events.
    pub fn finish(&mut self) -> Option<Unterminated> {
        let report = self.unterminated();
        self.offset = 0;
        self.feeds = 0;
        self.bom_seen = 0;
        self.skip_lf = false;
        self.error = None;
        self.partial = Partial::None;
        self.line_len = 0;
        self.line_buf.clear();
        self.reset_block();
        self.id_pending = false;
        report
    }

    fn unterminated(&self) -> Option<Unterminated> {
        if self.error.is_some() {
            return None;
        }
        let end = self.offset;
        if self.bom_seen != BOM_DECIDED && self.bom_seen > 0 {
            // The stream ended inside what could still have been a BOM: an unfinished line.
            return Some(Unterminated {
                start: 0,
                end,
                partial_line: true,
            });
        }
        let partial_line = self.partial != Partial::None;
        let partial_comment =
            self.partial == Partial::Field && self.line_buf.first() == Some(&b':');
        if self.significant || (partial_line && !partial_comment) {
            let start = self.block_start.unwrap_or(self.line_start);
            return Some(Unterminated {
                start,
                end,
                partial_line,
            });
        }
        None
    }

    fn reset_block(&mut self) {
        self.block_start = None;
        self.significant = false;
        self.has_data = false;
        self.borrowed = None;
        self.data.clear();
        self.data_checked = 0;
        self.data_invalid = None;
        self.event_type.clear();
        self.block_retry = None;
    }

    #[inline(always)]
    fn parse<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        base: u64,
        feed: usize,
        visitor: &mut V,
        eol: Option<Option<usize>>,
    ) -> Result<(), Error> {
        let mut i = 0;
        if matches!(self.partial, Partial::None) && !chunk.is_empty() {
            if self.skip_lf {
                // "a single U+000D CARRIAGE RETURN (CR) character not followed by a U+000A LINE
                // FEED (LF) character": the line ended at the CR; this LF completes its CRLF.
                self.skip_lf = false;
                i = usize::from(chunk[0] == b'\n');
            } else if self.bom_seen != BOM_DECIDED {
                i = self.strip_bom(chunk)?;
            }
        }
        // (A line in progress means the BOM is decided and no CR is pending.)
        if !matches!(self.partial, Partial::None) {
            // `eol` is only known for a chunk continuing a line, where `i` is 0.
            match eol.unwrap_or_else(|| find_eol(&chunk[i..])) {
                Some(k) => {
                    self.finish_partial(chunk, i, i + k, visitor)?;
                    i = self.skip_eol(chunk, i + k);
                }
                None => return self.extend_partial(chunk, &chunk[i..]),
            }
        }
        self.lines(chunk, i, base, feed, visitor)
    }

    /// The lines of `chunk[i..]`, which starts a line.
    fn lines<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        base: u64,
        feed: usize,
        visitor: &mut V,
    ) -> Result<(), Error> {
        while i < chunk.len() {
            let first = chunk[i];
            if first == b'\n' || first == b'\r' {
                // "If the line is empty (a blank line): Dispatch the event."
                self.dispatch(chunk, base + i as u64, base + i as u64 + 1, feed, visitor);
                i = self.skip_eol(chunk, i);
                continue;
            }
            match find_eol(&chunk[i..]) {
                Some(k) => {
                    self.line(chunk, i, i + k, base, visitor)?;
                    i = self.skip_eol(chunk, i + k);
                }
                None => return self.begin_partial(chunk, i, base),
            }
        }
        Ok(())
    }

    /// Matches the stream's first bytes against the BOM; returns where parsing goes on in `chunk`.
    fn strip_bom(&mut self, chunk: &[u8]) -> Result<usize, Error> {
        let seen = usize::from(self.bom_seen);
        let want = &BOM[seen..];
        let same = chunk.iter().zip(want).take_while(|(a, b)| a == b).count();
        if same == want.len() {
            self.bom_seen = BOM_DECIDED;
            return Ok(same);
        }
        if same == chunk.len() {
            // Still a BOM prefix: decide with the next chunk.
            self.bom_seen += same as u8;
            return Ok(same);
        }
        self.bom_seen = BOM_DECIDED;
        let held = seen + same;
        if held > 0 {
            // Not a BOM: the bytes held back start the first line. 0xEF can begin neither a
            // comment nor a field name the spec acts on, so the line is an ignored field.
            self.line_start = 0;
            self.block_start = Some(0);
            self.line_len = held;
            self.partial = Partial::Skip;
            self.check_line_len()?;
        }
        Ok(same)
    }

    /// The end of the line terminator at `eol`; remembers a CR that ends the chunk.
    #[inline]
    fn skip_eol(&mut self, chunk: &[u8], eol: usize) -> usize {
        if chunk[eol] == b'\r' {
            match chunk.get(eol + 1) {
                Some(b'\n') => return eol + 2,
                Some(_) => {}
                None => self.skip_lf = true,
            }
        }
        eol + 1
    }

    #[inline(always)]
    fn check_line_len(&self) -> Result<(), Error> {
        if self.line_len > self.limits.max_line {
            return Err(self.line_too_long());
        }
        Ok(())
    }

    #[cold]
    fn line_too_long(&self) -> Error {
        Error::LineTooLong {
            start: self.line_start,
            limit: self.limits.max_line,
        }
    }

    /// A non-blank line that ends inside the chunk: `chunk[s..e]`.
    #[inline]
    fn line<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        s: usize,
        e: usize,
        base: u64,
        visitor: &mut V,
    ) -> Result<(), Error> {
        let start = base + s as u64;
        let line = &chunk[s..e];
        if line.len() > self.limits.max_line {
            return Err(Error::LineTooLong {
                start,
                limit: self.limits.max_line,
            });
        }
        self.block_start.get_or_insert(start);
        if line.starts_with(b"data:") {
            // The common case, kept zero-copy: the value stays in the chunk until dispatch.
            let value = s + 5 + usize::from(line.get(5) == Some(&b' '));
            self.significant = true;
            if self.has_data {
                return self.append_data(chunk, &chunk[value..e]);
            }
            self.has_data = true;
            self.borrowed = Some((value, e));
            return self.check_event_size(e - value);
        }
        self.field_line(chunk, line, start, visitor)
    }

    /// A complete non-blank line other than the `data:` fast path: comment or field.
    fn field_line<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        line: &[u8],
        start: u64,
        visitor: &mut V,
    ) -> Result<(), Error> {
        if line[0] == b':' {
            // "If the line starts with a U+003A COLON character (:): Ignore the line."
            visitor.comment(&line[1..], start);
            return Ok(());
        }
        self.significant = true;
        let (name, value) = split_field(line);
        // "Field names must be compared literally, with no case folding performed."
        match name {
            b"data" => self.append_data(chunk, value)?,
            // "Set the event type buffer to field value."
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            // "If the field value does not contain U+0000 NULL, then set the last event ID buffer
            // to the field value. Otherwise, ignore the field."
            b"id" if memchr(0, value).is_none() => {
                self.id_buf.clear();
                self.id_buf.push_str(&String::from_utf8_lossy(value));
                self.id_pending = true;
            }
            // "If the field value consists of only ASCII digits, then interpret the field value
            // as an integer in base ten, and set the event stream's reconnection time to that
            // integer. Otherwise, ignore the field."
            b"retry" => {
                if let Some(millis) = parse_retry(value) {
                    self.reconnection_time = Some(millis);
                    self.block_retry = Some(millis);
                    visitor.retry(millis, start);
                }
            }
            // "Otherwise: The field is ignored."
            _ => {}
        }
        Ok(())
    }

    /// "Append the field value to the data buffer, then append a single U+000A LINE FEED (LF)
    /// character to the data buffer." The buffer is kept without that last LF, which dispatch
    /// would remove anyway, so it is written as a separator before every value but the first.
    fn append_data(&mut self, chunk: &[u8], value: &[u8]) -> Result<(), Error> {
        self.start_data_line(chunk);
        self.data.extend_from_slice(value);
        self.check_event_size(self.data.len())
    }

    /// Readies the data buffer for one more value.
    fn start_data_line(&mut self, chunk: &[u8]) {
        if let Some((start, end)) = self.borrowed.take() {
            self.data.extend_from_slice(&chunk[start..end]);
        }
        if self.has_data {
            self.data.push(b'\n');
        }
        self.has_data = true;
    }

    #[inline]
    fn check_event_size(&self, size: usize) -> Result<(), Error> {
        if size > self.limits.max_event {
            let start = self.block_start.unwrap_or(self.line_start);
            return Err(Error::EventTooLarge {
                start,
                limit: self.limits.max_event,
            });
        }
        Ok(())
    }

    /// The dispatch steps for web browsers, run for a blank line ending at `eol`.
    fn dispatch<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        eol: u64,
        end: u64,
        feed: usize,
        visitor: &mut V,
    ) {
        // 1. "Set the last event ID string of the event source to the value of the last event ID
        // buffer. The buffer does not get reset."
        if self.id_pending {
            std::mem::swap(&mut self.last_id, &mut self.id_buf);
            self.id_pending = false;
        }
        // 2. "If the data buffer is an empty string, set the data buffer and the event type buffer
        // to the empty string and return." (3.: the trailing LF was never stored.)
        if self.has_data {
            let data = match self.borrowed.take() {
                Some((s, e)) => DataRef::Chunk(&chunk[s..e]),
                None => DataRef::Buffer {
                    data: &mut self.data,
                    checked: self.data_checked,
                    invalid: self.data_invalid,
                },
            };
            // 5., 6.: type "message" unless the event type buffer is not empty; lastEventId is
            // the last event ID string.
            visitor.event(EventRef {
                event_type: &self.event_type,
                data,
                id: &self.last_id,
                retry: self.block_retry,
                start: self.block_start.unwrap_or(eol),
                end,
                feed_index: feed,
            });
        }
        // 7. "Set the data buffer and the event type buffer to the empty string."
        self.reset_block();
    }
}
