//! `streamcheck parse`: a captured stream as JSON lines, one per event, for a person to read.
//!
//! The input is an event stream, or with [`InspectOptions::http`] a whole HTTP/1 response whose
//! body framing (Content-Length, chunked, until close) is decoded before SSE parsing. Output, one
//! JSON object per line:
//!
//! - with `http`, first the response head: `{"status":200,"reason":"OK","headers":[["Content-Type",
//!   "text/event-stream"],…]}` (1xx heads before it likewise, with `"interim":true`);
//! - each dispatched event: `{"type":"message","data":"…","id":"…","retry":null,"offset":N}`:
//!   `type` is `message` unless an `event` field said otherwise, `id` is the last event ID at
//!   dispatch, `retry` the reconnection time set in the event's block (else `null`), `offset` the
//!   event-stream offset of the block's first line (after HTTP decoding, a BOM counted). Data that
//!   is not valid UTF-8 is shown with U+FFFD, as a browser decodes it, and the exact bytes follow
//!   in `"data_hex"`;
//! - after a chunked body, its trailer fields if any: `{"trailers":[[name,value],…]}`;
//! - each problem as `{"warning":"…","offset":N}` (an event-stream offset) or
//!   `{"warning":"…","http_offset":N}` (an offset in the response bytes): invalid UTF-8 anywhere in
//!   the event stream (one warning per invalid sequence, printed before the first event that ends
//!   after it), a parser limit, an event left without its blank line (discarded, as the spec
//!   says), a malformed or truncated response, bytes after the end of the response, a header
//!   value that is not UTF-8, a status other than 200 or a Content-Type other than
//!   text/event-stream (either makes a browser's EventSource fail the connection).
//!
//! The output depends only on the input bytes, never on how they were split into feeds: no line
//! carries a feed index, and every warning is placed by its offset. `--feed-size N` exists to
//! show exactly that.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;

use serde::Serialize;

use super::decode::{Decoder, Sink};
use crate::{http1, sse};

/// What `streamcheck parse` does with its input.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// The input is an HTTP/1 response, not a bare event stream.
    pub http: bool,
    /// Feed the parser pieces of exactly this many bytes (the last one shorter); by default each
    /// read is fed as it comes.
    pub feed_size: Option<NonZeroUsize>,
    /// The last event ID carried over from an earlier connection (what a browser sends as
    /// Last-Event-ID when it reconnects); events without an `id` field show it.
    pub last_event_id: Option<String>,
    /// Limits of the SSE parser.
    pub limits: sse::Limits,
    /// Limits of the HTTP/1 parser (with [`InspectOptions::http`]).
    pub http_config: http1::Config,
}

/// Why inspecting a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The last event ID cannot be one: it holds NUL, CR or LF.
    #[error(
        "the last event ID {0:?} holds NUL, CR or LF, which no `id` field can carry; \
         pass the ID exactly as the stream's `id:` line gave it"
    )]
    InvalidLastEventId(String),
    /// Reading the input failed.
    #[error("cannot read the input: {0}")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[source] io::Error),
}

/// Inspects a stream pushed in pieces. See the [module docs](self).
#[derive(Debug)]
pub struct Inspector<W: Write> {
    decoder: Decoder,
    printer: Printer<W>,
}

impl<W: Write> Inspector<W> {
    /// An inspector writing JSON lines to `out` (`feed_size` is for [`inspect`]; ignored here).
    pub fn new(options: &InspectOptions, out: W) -> Result<Inspector<W>, InspectError> {
        let mut sse = sse::Parser::with_limits(options.limits);
        if let Some(id) = &options.last_event_id {
            if id.contains(['\0', '\r', '\n']) {
                return Err(InspectError::InvalidLastEventId(id.clone()));
            }
            // The parser keeps the last event ID across connections: set it on a first one made
            // of nothing but that ID ("id: " strips exactly the one space it adds).
            let mut none: Vec<sse::Event> = Vec::new();
            let primed = sse.feed(format!("id: {id}\n\n").as_bytes(), &mut none);
            sse.finish();
            if primed.is_err() || sse.last_event_id() != id {
                return Err(InspectError::InvalidLastEventId(id.clone()));
            }
        }
        let http = options.http.then(|| options.http_config.clone());
        Ok(Inspector {
            decoder: Decoder::new(http, sse),
            printer: Printer {
                out,
                error: None,
                pending_utf8: Vec::new(),
                next_utf8: 0,
                sse_error: None,
                unterminated: None,
                http_error: None,
                excess: None,
                chunked_from: None,
                malformed: false,
            },
        })
    }

    /// Parses the next piece of input and prints what it completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InspectError> {
        self.decoder.feed(bytes, &mut self.printer);
        self.printer.take_error()
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> Result<(), InspectError> {
        self.printer.out.flush().map_err(InspectError::Write)
    }

    /// The input ended: prints what only the end reveals and returns the output.
    pub fn finish(mut self) -> Result<Inspected<W>, InspectError> {
        // A capture file ends where the connection closed.
        self.decoder.finish(true, &mut self.printer);
        self.printer.end();
        self.printer.take_error()?;
        self.printer.out.flush().map_err(InspectError::Write)?;
        Ok(Inspected {
            out: self.printer.out,
            malformed: self.printer.malformed,
        })
    }
}

/// What [`inspect`] produced.
#[derive(Debug)]
pub struct Inspected<W> {
    /// The output.
    pub out: W,
    /// The input was read as an HTTP response (`--http`) and is not a well-formed one.
    pub malformed: bool,
}

/// Reads `input` to its end and writes its JSON lines to `out`, flushing after each read.
pub fn inspect<R: Read, W: Write>(
    mut input: R,
    out: W,
    options: &InspectOptions,
) -> Result<Inspected<W>, InspectError> {
    let mut inspector = Inspector::new(options, out)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InspectError::Read(e)),
        };
        let mut data = &buf[..n];
        match options.feed_size {
            None => inspector.feed(data)?,
            Some(size) => {
                let size = size.get();
                if !pending.is_empty() {
                    let take = (size - pending.len()).min(data.len());
                    pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if pending.len() == size {
                        inspector.feed(&pending)?;
                        pending.clear();
                    }
                }
                while data.len() >= size {
                    inspector.feed(&data[..size])?;
                    data = &data[size..];
                }
                pending.extend_from_slice(data);
            }
        }
        inspector.flush()?;
    }
    if !pending.is_empty() {
        inspector.feed(&pending)?;
    }
    inspector.finish()
}

/// The JSON lines for `input`, fed in pieces of `options.feed_size`.
pub fn inspect_bytes(input: &[u8], options: &InspectOptions) -> Result<Vec<u8>, InspectError> {
    inspect(input, Vec::new(), options).map(|i| i.out)
}

#[derive(Serialize)]
struct HeadLine<'a> {
    status: u16,
    reason: &'a str,
    #[serde(serialize_with = "fields")]
    headers: &'a http1::Fields,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interim: bool,
}

#[derive(Serialize)]
struct EventLine<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_hex: Option<String>,
    id: &'a str,
    retry: Option<u64>,
    offset: u64,
}

#[derive(Serialize)]
struct TrailersLine<'a> {
    #[serde(serialize_with = "fields")]
    trailers: &'a http1::Fields,
}

#[derive(Serialize)]
struct Warning<'a> {
    warning: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_offset: Option<u64>,
}

/// Field lines as `[[name, value], …]`, values with U+FFFD for invalid UTF-8.
fn fields<S: serde::Serializer>(fields: &&http1::Fields, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        fields
            .iter()
            .map(|f| (f.name(), String::from_utf8_lossy(f.value()))),
    )
}

/// Prints what the decoder finds; remembers the first write error.
#[derive(Debug)]
struct Printer<W: Write> {
    out: W,
    error: Option<io::Error>,
    /// Offsets of invalid UTF-8 not printed yet, in stream order from `next_utf8`.
    pending_utf8: Vec<u64>,
    next_utf8: usize,
    sse_error: Option<sse::Error>,
    unterminated: Option<sse::Unterminated>,
    http_error: Option<http1::Error>,
    excess: Option<(u64, u64)>,
    /// Where a chunked body starts, when the head says the body is chunked.
    chunked_from: Option<u64>,
    /// The response was not well-formed HTTP/1.
    malformed: bool,
}

impl<W: Write> Printer<W> {
    fn line<T: Serialize>(&mut self, value: &T) {
        if self.error.is_some() {
            return;
        }
        let result = serde_json::to_writer(&mut self.out, value)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn warn(&mut self, warning: &str, offset: Option<u64>, http_offset: Option<u64>) {
        self.line(&Warning {
            warning,
            offset,
            http_offset,
        });
    }

    fn take_error(&mut self) -> Result<(), InspectError> {
        self.error
            .take()
            .map_or(Ok(()), |e| Err(InspectError::Write(e)))
    }

    /// Prints the UTF-8 warnings for offsets before `before`.
    fn flush_utf8(&mut self, before: u64) {
        while let Some(&at) = self.pending_utf8.get(self.next_utf8) {
            if at >= before {
                break;
            }
            self.next_utf8 += 1;
            self.warn(
                &format!("invalid UTF-8 at byte {at} of the event stream; a browser shows U+FFFD"),
                Some(at),
                None,
            );
        }
        if self.next_utf8 == self.pending_utf8.len() {
            self.pending_utf8.clear();
            self.next_utf8 = 0;
        }
    }

    fn print_head(&mut self, head: &http1::Head, interim: bool) {
        self.line(&HeadLine {
            status: head.status(),
            reason: head.reason(),
            headers: head.headers(),
            interim,
        });
        for field in head.headers().iter() {
            if field.value_str().is_none() {
                self.warn(
                    &format!(
                        "the value of header {} is not UTF-8; shown with U+FFFD",
                        field.name()
                    ),
                    None,
                    Some(field.offset()),
                );
            }
        }
    }

    /// Prints what only the end of the input reveals.
    fn end(&mut self) {
        self.flush_utf8(u64::MAX);
        if let Some(error) = self.sse_error.take() {
            let at = match error {
                sse::Error::LineTooLong { start, .. } | sse::Error::EventTooLarge { start, .. } => {
                    start
                }
            };
            self.warn(&error.to_string(), Some(at), None);
        }
        if let Some(u) = self.unterminated.take() {
            let how = if u.partial_line {
                ", inside a line"
            } else {
                ""
            };
            self.warn(
                &format!(
                    "the stream ended inside an event (bytes {}..{}{how}); it is discarded, as \
                     the spec says: end every event with a blank line",
                    u.start, u.end
                ),
                Some(u.start),
                None,
            );
        }
        if let Some(error) = self.http_error.take() {
            self.malformed = true;
            let message = match (&error, self.chunked_from) {
                // The first chunk-size line is not one: the body is plain event-stream text.
                (http1::Error::InvalidChunkSize { offset, .. }, Some(from))
                    if *offset < from + 18 =>
                {
                    format!(
                        "{error}: the head says Transfer-Encoding: chunked but the body is not \
                         chunked, as in a capture made with `curl -i`, which removes the chunk \
                         framing; capture the bytes as sent with `curl --raw -i`, or parse the \
                         body alone without --http"
                    )
                }
                _ => error.to_string(),
            };
            self.warn(&message, None, Some(error.offset()));
        }
        if let Some((offset, len)) = self.excess.take() {
            self.warn(
                &format!(
                    "{len} bytes after the end of the response, from byte {offset}: the body's \
                     framing ended the message before the connection closed"
                ),
                None,
                Some(offset),
            );
        }
    }
}

impl<W: Write> Sink for Printer<W> {
    fn interim(&mut self, head: http1::Head) {
        self.print_head(&head, true);
    }

    fn head(&mut self, head: http1::Head, framing: http1::Framing) {
        if framing == http1::Framing::Chunked {
            self.chunked_from = Some(head.end());
        }
        self.print_head(&head, false);
        if head.status() != 200 {
            self.warn(
                &format!(
                    "status {}: a browser's EventSource accepts only 200",
                    head.status()
                ),
                None,
                Some(head.offset()),
            );
        }
        let content_type = head.headers().get("content-type");
        let essence = content_type.map(|f| http1::media_type(f.value()));
        if !essence.is_some_and(|e| e.eq_ignore_ascii_case(b"text/event-stream")) {
            let what = match content_type {
                Some(f) => format!("Content-Type is {:?}", String::from_utf8_lossy(f.value())),
                None => "no Content-Type header".to_owned(),
            };
            self.warn(
                &format!("{what}, not text/event-stream: a browser's EventSource fails"),
                None,
                Some(content_type.map_or(head.offset(), |f| f.offset())),
            );
        }
    }

    fn body(&mut self, _body: u64, _wire: u64, _len: usize) {}

    fn invalid_utf8(&mut self, body: u64) {
        self.pending_utf8.push(body);
    }

    fn event(&mut self, event: sse::Event) {
        self.flush_utf8(event.end);
        let data_hex = event.invalid_utf8.map(|_| crate::hex::encode(&event.data));
        self.line(&EventLine {
            event_type: &event.event_type,
            data: event.data_str(),
            data_hex,
            id: &event.id,
            retry: event.retry,
            offset: event.start,
        });
    }

    fn comment(&mut self) {}

    fn sse_error(&mut self, error: sse::Error) {
        self.sse_error = Some(error);
    }

    fn unterminated(&mut self, unterminated: sse::Unterminated) {
        self.unterminated = Some(unterminated);
    }

    fn message_end(&mut self, end: http1::End) {
        // Every invalid sequence but one cut by the end of the body is known now.
        self.flush_utf8(u64::MAX);
        if !end.trailers.is_empty() {
            self.line(&TrailersLine {
                trailers: &end.trailers,
            });
        }
    }

    fn excess(&mut self, data: http1::Data<'_>) {
        let (_, len) = self.excess.get_or_insert((data.offset, 0));
        *len += data.bytes.len() as u64;
    }

    fn http_error(&mut self, error: http1::Error) {
        self.http_error = Some(error);
    }

    fn http_finish(&mut self, _finish: http1::Finish) {}
}
