//! The one decoding path from received bytes to events: HTTP/1 framing (or none), a UTF-8 scan
//! of the event stream, and the SSE parser. [`super::TranscriptBuilder`] and
//! [`super::inspect`] both drive it and differ only in what they do with what it finds.

use crate::{http1, sse};

use super::utf8::Utf8Scan;

/// Receives what the decoder finds, in stream order.
pub(crate) trait Sink {
    /// A 1xx head before the final one.
    fn interim(&mut self, head: http1::Head);
    /// The final response head and its body framing.
    fn head(&mut self, head: http1::Head, framing: http1::Framing);
    /// Body bytes at event-stream offset `body` and received-bytes offset `wire`; the n-th call
    /// is the SSE parser's feed `n`, so an event's `feed_index` names the call that held its last
    /// byte. Called before the UTF-8 findings and events in those bytes.
    fn body(&mut self, body: u64, wire: u64, len: usize);
    /// An invalid UTF-8 sequence starts at this event-stream offset.
    fn invalid_utf8(&mut self, body: u64);
    /// A dispatched event.
    fn event(&mut self, event: sse::Event);
    /// A comment line.
    fn comment(&mut self);
    /// The SSE parser stopped at a limit.
    fn sse_error(&mut self, error: sse::Error);
    /// The stream ended inside an event block.
    fn unterminated(&mut self, unterminated: sse::Unterminated);
    /// The framing ended the message (with trailers, for chunked).
    fn message_end(&mut self, end: http1::End);
    /// Bytes after the end of the message.
    fn excess(&mut self, data: http1::Data<'_>);
    /// The response is malformed, or (at finish) incomplete.
    fn http_error(&mut self, error: http1::Error);
    /// The daemon closed the connection and the response was complete.
    fn http_finish(&mut self, finish: http1::Finish);
}

/// Forwards the SSE parser's findings to a [`Sink`].
struct Forward<'s, S: Sink>(&'s mut S);

impl<S: Sink> sse::Visitor for Forward<'_, S> {
    fn event(&mut self, event: sse::EventRef<'_>) {
        self.0.event(event.into_event());
    }

    fn comment(&mut self, _text: &[u8], _start: u64) {
        self.0.comment();
    }
}

/// The event-stream side: everything after HTTP decoding.
#[derive(Debug)]
struct Body {
    sse: sse::Parser,
    sse_failed: bool,
    utf8: Utf8Scan,
    offset: u64,
}

impl Body {
    fn feed<S: Sink>(&mut self, wire: u64, bytes: &[u8], sink: &mut S) {
        let offset = self.offset;
        self.offset += bytes.len() as u64;
        sink.body(offset, wire, bytes.len());
        // The scan covers the whole body, also past an SSE limit, so what it finds never depends
        // on where the parser stopped.
        self.utf8.feed(offset, bytes, |at| sink.invalid_utf8(at));
        if !self.sse_failed
            && let Err(error) = self.sse.feed(bytes, &mut Forward(sink))
        {
            self.sse_failed = true;
            sink.sse_error(error);
        }
    }
}

/// Decodes one received stream. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Decoder {
    /// `None` when the input is a bare event stream.
    http: Option<http1::Parser>,
    http_failed: bool,
    body: Body,
    wire: u64,
}

impl Decoder {
    /// A decoder for an HTTP response (`http`) or a bare event stream, whose SSE parser starts
    /// as `sse` (limits, last event ID).
    pub(crate) fn new(http: Option<http1::Config>, sse: sse::Parser) -> Decoder {
        Decoder {
            http: http.map(http1::Parser::with_config),
            http_failed: false,
            body: Body {
                sse,
                sse_failed: false,
                utf8: Utf8Scan::default(),
                offset: 0,
            },
            wire: 0,
        }
    }

    /// Bytes received so far.
    pub(crate) fn wire_offset(&self) -> u64 {
        self.wire
    }

    /// Decodes the next received bytes.
    pub(crate) fn feed<S: Sink>(&mut self, bytes: &[u8], sink: &mut S) {
        let wire = self.wire;
        self.wire += bytes.len() as u64;
        let Some(http) = &mut self.http else {
            self.body.feed(wire, bytes, sink);
            return;
        };
        if self.http_failed {
            return;
        }
        for event in http.feed(bytes) {
            match event {
                Ok(http1::Event::Interim(head)) => sink.interim(head),
                Ok(http1::Event::Head { head, framing }) => sink.head(head, framing),
                Ok(http1::Event::Body(data)) => self.body.feed(data.offset, data.bytes, sink),
                Ok(http1::Event::End(end)) => sink.message_end(end),
                Ok(http1::Event::Excess(data)) => sink.excess(data),
                Err(error) => {
                    self.http_failed = true;
                    sink.http_error(error);
                }
            }
        }
    }

    /// The stream ended: `closed_by_peer` when the daemon closed the connection (the only end
    /// that completes an until-close body, or shows a framed body truncated).
    pub(crate) fn finish<S: Sink>(self, closed_by_peer: bool, sink: &mut S) {
        let Decoder {
            http,
            http_failed,
            mut body,
            ..
        } = self;
        body.utf8.finish(|at| sink.invalid_utf8(at));
        if !body.sse_failed
            && let Some(unterminated) = body.sse.finish()
        {
            sink.unterminated(unterminated);
        }
        if let Some(http) = http
            && !http_failed
            && closed_by_peer
        {
            match http.finish() {
                Ok(finish) => sink.http_finish(finish),
                Err(error) => sink.http_error(error),
            }
        }
    }
}
