//! Lines cut by the end of a chunk: carried over in the smallest form that still lets them be
//! finished. A data value goes straight into the data buffer (and has its UTF-8 checked while it
//! is in cache), an ignored field is only counted, and only `event`, `id`, `retry` and comment
//! lines, and at most five bytes of a field name still being read, are buffered.

use super::{Error, Parser, Partial, Visitor};
use crate::sse::event::invalid_utf8;
use crate::sse::scan::{MAX_NAME, is_name_prefix, utf8_boundary};

/// Data appended by small feeds is checked for UTF-8 once this much has gathered.
const UTF8_CHECK_MIN: usize = 4096;

impl Parser {
    /// A line that the end of the chunk cuts: `chunk[i..]`, not empty, no CR or LF.
    pub(super) fn begin_partial(&mut self, chunk: &[u8], i: usize, base: u64) -> Result<(), Error> {
        self.line_start = base + i as u64;
        self.line_len = 0;
        self.line_buf.clear();
        self.block_start.get_or_insert(self.line_start);
        self.partial = if chunk[i] == b':' {
            Partial::Field
        } else {
            Partial::Name
        };
        self.extend_partial(chunk, &chunk[i..])
    }

    /// More bytes of the cut line, with no line end among them.
    #[inline(always)]
    pub(super) fn extend_partial(&mut self, chunk: &[u8], bytes: &[u8]) -> Result<(), Error> {
        self.line_len += bytes.len();
        self.check_line_len()?;
        match self.partial {
            // A long data line, or small feeds: the value goes on.
            Partial::Data { strip_space: false } => self.extend_data(false, bytes),
            _ => self.extend_other(chunk, bytes),
        }
        Ok(())
    }

    /// [`Parser::extend_partial`] for every line but a data value going on.
    pub(super) fn extend_other(&mut self, chunk: &[u8], bytes: &[u8]) {
        match self.partial {
            Partial::Field => self.line_buf.extend_from_slice(bytes),
            Partial::Skip | Partial::None => {}
            Partial::Data { strip_space } => self.extend_data(strip_space, bytes),
            Partial::Name => self.classify(chunk, bytes),
        }
    }

    /// Appends bytes of a cut data line's value.
    #[inline]
    pub(super) fn extend_data(&mut self, strip_space: bool, bytes: &[u8]) {
        let mut value = bytes;
        if strip_space && !bytes.is_empty() {
            value = bytes.strip_prefix(b" ").unwrap_or(bytes);
            self.partial = Partial::Data { strip_space: false };
        }
        match value {
            // One-byte feeds: a push, not a memcpy call.
            [byte] => self.data.push(*byte),
            _ => self.data.extend_from_slice(value),
        }
    }

    /// Checks the UTF-8 of data appended since the last check while it is still in cache, up to
    /// its last complete character; dispatch leaves the rest to whoever asks. Small appends (small
    /// feeds) wait until enough has gathered.
    #[inline]
    pub(super) fn check_new_data(&mut self) {
        if self.data_invalid.is_some() || self.data.len() - self.data_checked < UTF8_CHECK_MIN {
            return;
        }
        let end = utf8_boundary(&self.data);
        match invalid_utf8(&self.data[self.data_checked..end]) {
            None => self.data_checked = end,
            Some(at) => self.data_invalid = Some(self.data_checked + at),
        }
    }

    /// Decides what a cut line is once its field name is known: `line_buf` holds the name so far,
    /// `bytes` follow it.
    fn classify(&mut self, chunk: &[u8], bytes: &[u8]) {
        let have = self.line_buf.len();
        let window = &bytes[..bytes.len().min(MAX_NAME + 1 - have)];
        let Some(colon) = window.iter().position(|&b| b == b':') else {
            window.iter().for_each(|&b| self.line_buf.push(b));
            if bytes.len() > window.len() || !is_name_prefix(&self.line_buf) {
                self.line_buf.clear();
                self.partial = Partial::Skip;
            }
            return;
        };
        window[..colon].iter().for_each(|&b| self.line_buf.push(b));
        match self.line_buf.as_slice() {
            b"data" => {
                self.line_buf.clear();
                self.significant = true;
                self.start_data_line(chunk);
                self.partial = Partial::Data { strip_space: true };
                self.extend_data(true, &bytes[colon + 1..]);
            }
            b"event" | b"id" | b"retry" => {
                self.line_buf.truncate(have);
                self.line_buf.extend_from_slice(bytes);
                self.partial = Partial::Field;
            }
            _ => {
                self.line_buf.clear();
                self.partial = Partial::Skip;
            }
        }
    }

    /// The cut line ends at `chunk[e]`; `chunk[s..e]` are its last bytes.
    pub(super) fn finish_partial<V: Visitor + ?Sized>(
        &mut self,
        chunk: &[u8],
        s: usize,
        e: usize,
        visitor: &mut V,
    ) -> Result<(), Error> {
        let bytes = &chunk[s..e];
        self.line_len += bytes.len();
        self.check_line_len()?;
        let partial = std::mem::replace(&mut self.partial, Partial::None);
        match partial {
            Partial::None => Ok(()),
            Partial::Data { strip_space } => {
                self.extend_data(strip_space, bytes);
                self.partial = Partial::None;
                self.check_event_size(self.data.len())
            }
            Partial::Skip => {
                self.significant = true;
                Ok(())
            }
            Partial::Name | Partial::Field => {
                let mut line = std::mem::take(&mut self.line_buf);
                line.extend_from_slice(bytes);
                let result = self.field_line(chunk, &line, self.line_start, visitor);
                line.clear();
                self.line_buf = line;
                result
            }
        }
    }
}
