//! Interim text/event-stream parser for the reader, used only until the crate's `sse` module
//! lands; it keeps the shape of that module's contract (`feed` returning owned events with raw
//! `data`) so the switch touches only `reader.rs`. WHATWG rules it implements: lines end at CRLF,
//! LF or CR (a CRLF split across reads included); a leading BOM is dropped; `:` starts a comment;
//! the field name ends at the first colon and one leading space of the value is dropped; `data`
//! lines are joined by LF; a blank line dispatches; an event with empty data is not dispatched.

use std::fmt;

/// One dispatched event.
pub(crate) struct Event {
    pub(crate) event_type: String,
    pub(crate) data: Vec<u8>,
}

/// A line or an event's data grew past the parser's limit.
#[derive(Debug)]
pub(crate) struct TooLong {
    limit: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a line or event exceeds {} bytes", self.limit)
    }
}

pub(crate) struct Parser {
    limit: usize,
    line: Vec<u8>,
    first_line: bool,
    after_cr: bool,
    event_type: String,
    data: Vec<u8>,
}

impl Parser {
    pub(crate) fn with_limit(limit: usize) -> Self {
        Parser {
            limit,
            line: Vec::new(),
            first_line: true,
            after_cr: false,
            event_type: String::new(),
            data: Vec::new(),
        }
    }

    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<Event>, TooLong> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(pos) = memchr::memchr2(b'\r', b'\n', bytes) {
            self.push(&bytes[..pos])?;
            self.line_done(&mut events)?;
            let step = match (bytes[pos], bytes.get(pos + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => {
                    self.after_cr = true;
                    1
                }
                _ => 1,
            };
            bytes = &bytes[pos + step..];
        }
        self.push(bytes)?;
        Ok(events)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(TooLong { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, events: &mut Vec<Event>) -> Result<(), TooLong> {
        let mut line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.first_line) && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        if line.is_empty() {
            if !self.data.is_empty() {
                self.data.pop();
                let event_type = std::mem::take(&mut self.event_type);
                events.push(Event {
                    event_type: if event_type.is_empty() {
                        "message".into()
                    } else {
                        event_type
                    },
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event_type.clear();
        } else if line[0] != b':' {
            let (name, value) = match memchr::memchr(b':', &line) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &b""[..]),
            };
            match name {
                b"data" => {
                    if self.data.len() + value.len() + 1 > self.limit {
                        return Err(TooLong { limit: self.limit });
                    }
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                }
                b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
                _ => {}
            }
        }
        // Reuse the line's allocation for the next line.
        line.clear();
        self.line = line;
        Ok(())
    }
}
