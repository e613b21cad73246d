//! Building a [`Transcript`] chunk by chunk.

use std::collections::VecDeque;

use crate::{http1, sse};

use super::budget::{Budget, SettledCause};
use super::decode::{Decoder, Sink};
use super::interpret::Interpreter;
use super::response::{BodyEnd, Excess, HttpResponse, ResponseHead};
use super::{
    EndKind, HandoffTimes, ReceivedEvent, RecordingEnd, SseStatus, Timings, Transcript,
    UnterminatedEvent,
};

/// Parser limits for building a transcript.
#[derive(Debug, Clone, Default)]
pub struct TranscriptOptions {
    /// Limits of the SSE parser.
    pub sse_limits: sse::Limits,
    /// Limits and relaxations of the HTTP/1 parser.
    pub http: http1::Config,
    /// How much of the stream is decoded at most.
    pub budget: Budget,
}

/// Builds a [`Transcript`] from chunks as they arrive, so a client need not keep them:
/// [`push`](Self::push) each read, then [`finish`](Self::finish). Memory grows with the events,
/// not with the bytes between events or the number of reads, and the [`Budget`] bounds both:
/// bytes past it are only counted, events past it are not kept.
#[derive(Debug)]
pub struct TranscriptBuilder {
    decoder: Decoder,
    state: State,
    /// Bytes received past the budget, counted and not decoded.
    ignored: u64,
}

/// A run of body bytes that came in one chunk.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Event-stream offset of its first byte.
    body: u64,
    /// Received-bytes offset of its first byte.
    wire: u64,
    len: u64,
    chunk: usize,
    ts_ns: u64,
}

#[derive(Debug)]
struct State {
    handoff: HandoffTimes,
    /// Chunks pushed so far; the current one is `chunks - 1`.
    chunks: usize,
    ts_ns: u64,
    first_byte_ns: Option<u64>,
    http: HttpResponse,
    message_ended: bool,
    http_finished: bool,
    /// The segments that later events can still start or end in.
    segments: VecDeque<Segment>,
    events: Vec<ReceivedEvent>,
    budget: Budget,
    /// An event arrived past the budget (and was not kept).
    over_events: bool,
    /// Bytes arrived past the budget (and were not decoded).
    over_bytes: bool,
    sse: SseStatus,
    interpreter: Interpreter,
}

impl TranscriptBuilder {
    /// A builder with the default limits.
    pub fn new(handoff: HandoffTimes) -> TranscriptBuilder {
        TranscriptBuilder::with_options(handoff, &TranscriptOptions::default())
    }

    /// A builder with the given limits.
    pub fn with_options(handoff: HandoffTimes, options: &TranscriptOptions) -> TranscriptBuilder {
        TranscriptBuilder {
            decoder: Decoder::new(
                Some(options.http.clone()),
                sse::Parser::with_limits(options.sse_limits),
            ),
            state: State {
                handoff,
                chunks: 0,
                ts_ns: 0,
                first_byte_ns: None,
                http: HttpResponse::default(),
                message_ended: false,
                http_finished: false,
                segments: VecDeque::new(),
                events: Vec::new(),
                budget: options.budget,
                over_events: false,
                over_bytes: false,
                sse: SseStatus::default(),
                interpreter: Interpreter::new(),
            },
            ignored: 0,
        }
    }

    /// Adds the next read, received at `ts_ns`.
    pub fn push(&mut self, ts_ns: u64, bytes: &[u8]) {
        let state = &mut self.state;
        state.chunks += 1;
        state.ts_ns = ts_ns;
        if !bytes.is_empty() {
            state.first_byte_ns.get_or_insert(ts_ns);
        }
        let room = state
            .budget
            .max_bytes
            .saturating_sub(self.decoder.wire_offset());
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.decoder.feed(&bytes[..take], state);
        self.ignored += (bytes.len() - take) as u64;
        state.over_bytes |= take < bytes.len();
    }

    /// Bytes pushed so far.
    pub fn received_bytes(&self) -> u64 {
        self.decoder.wire_offset() + self.ignored
    }

    /// Why the stream's outcome is settled, once it is: more bytes cannot change it, so the
    /// client should close the connection.
    pub fn settled(&self) -> Option<SettledCause> {
        self.state.settled()
    }

    /// Events dispatched so far.
    pub fn events(&self) -> &[ReceivedEvent] {
        &self.state.events
    }

    /// The recording stopped: computes the transcript.
    pub fn finish(self, end: RecordingEnd) -> Transcript {
        let received_bytes = self.received_bytes();
        let mut state = self.state;
        self.decoder
            .finish(matches!(end.kind, EndKind::PeerClosed), &mut state);
        state.http.body = body_end(&state);
        let settled = state.settled();
        let interpretation = state.interpreter.finish();
        let sent = state.handoff.sent_ns;
        let since = |t: u64| t.saturating_sub(sent);
        let received = |i: usize| state.events.get(i).map(|e| since(e.received_ns));
        let timings = Timings {
            handoff_ns: sent.saturating_sub(state.handoff.connect_start_ns),
            connect_ns: state
                .handoff
                .connected_ns
                .saturating_sub(state.handoff.connect_start_ns),
            first_byte_ns: state.first_byte_ns.map(since),
            head_ns: state.http.head.as_ref().map(|h| since(h.received_ns)),
            first_event_ns: received(0),
            first_content_ns: interpretation
                .pieces
                .iter()
                .find(|p| !p.is_empty())
                .and_then(|p| received(p.event)),
            done_ns: interpretation.done.and_then(received),
            gaps_ns: state
                .events
                .windows(2)
                .map(|w| w[1].received_ns.saturating_sub(w[0].received_ns))
                .collect(),
            total_ns: since(end.at_ns),
        };
        Transcript {
            handoff: state.handoff,
            end,
            received_bytes,
            chunks: state.chunks,
            http: state.http,
            events: state.events,
            sse: state.sse,
            interpretation,
            timings,
            settled,
        }
    }
}

/// How the body ended, once the decoder has finished.
fn body_end(state: &State) -> BodyEnd {
    let has_head = state.http.head.is_some();
    match &state.http.error {
        Some(http1::Error::Truncated { .. }) if has_head => BodyEnd::Truncated,
        Some(http1::Error::Truncated { .. }) => BodyEnd::NoHead,
        Some(_) => BodyEnd::Malformed,
        None if !has_head => BodyEnd::NoHead,
        None if state.message_ended => BodyEnd::Complete,
        // `finish` succeeded without the framing ending the message: an until-close body.
        None if state.http_finished => BodyEnd::Closed,
        None => BodyEnd::Unfinished,
    }
}

impl State {
    /// The segment holding event-stream offset `body`.
    fn segment(&self, body: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.body + s.len <= body);
        self.segments.get(i).filter(|s| s.body <= body)
    }

    /// Why more bytes cannot change the stream's outcome, if they cannot: the first of a
    /// malformed response, an SSE limit, the event budget and the byte budget.
    fn settled(&self) -> Option<SettledCause> {
        match (&self.http.error, &self.sse.error) {
            // A truncated message is known only at the end: it settles nothing early.
            (Some(e), _) if !matches!(e, http1::Error::Truncated { .. }) => {
                Some(SettledCause::Http(e.clone()))
            }
            (_, Some(e)) => Some(SettledCause::Sse(e.clone())),
            _ if self.over_events => Some(SettledCause::TooManyEvents {
                limit: self.budget.max_events,
            }),
            _ if self.over_bytes => Some(SettledCause::TooManyBytes {
                limit: self.budget.max_bytes,
            }),
            _ => None,
        }
    }
}

impl Sink for State {
    fn interim(&mut self, head: http1::Head) {
        let chunk = self.chunks.saturating_sub(1);
        self.http
            .interim
            .push(ResponseHead::new(&head, chunk, self.ts_ns));
    }

    fn head(&mut self, head: http1::Head, framing: http1::Framing) {
        let chunk = self.chunks.saturating_sub(1);
        self.http.head = Some(ResponseHead::new(&head, chunk, self.ts_ns));
        self.http.framing = Some(framing.into());
    }

    fn body(&mut self, body: u64, wire: u64, len: usize) {
        self.http.body_bytes += len as u64;
        // No event can start or end here any more once the parser stopped or events are not
        // kept: no segment is needed.
        if len > 0 && self.sse.error.is_none() && !self.over_events {
            self.segments.push_back(Segment {
                body,
                wire,
                len: len as u64,
                chunk: self.chunks.saturating_sub(1),
                ts_ns: self.ts_ns,
            });
        }
    }

    fn invalid_utf8(&mut self, body: u64) {
        self.sse.invalid_utf8_count += 1;
        if self.sse.invalid_utf8.len() < SseStatus::MAX_OFFSETS {
            self.sse.invalid_utf8.push(body);
        }
    }

    fn event(&mut self, event: sse::Event) {
        if self.over_events || self.events.len() as u64 >= self.budget.max_events {
            self.over_events = true;
            self.segments.clear();
            return;
        }
        let index = self.events.len();
        let kind = self.interpreter.push(index, &event.event_type, &event.data);
        // An event ends past the CR or LF of its blank line, so `end - 1` is a byte of it.
        let last = self.segment(event.end.saturating_sub(1)).copied();
        let first = self.segment(event.start).copied();
        let wire_of = |s: Option<Segment>, body: u64| s.map_or(0, |s| s.wire + (body - s.body));
        self.events.push(ReceivedEvent {
            event_type: event.event_type,
            id: event.id,
            retry: event.retry,
            start: event.start,
            end: event.end,
            wire_start: wire_of(first, event.start),
            wire_end: wire_of(last, event.end.saturating_sub(1)) + 1,
            chunk: last.map_or(self.chunks.saturating_sub(1), |s| s.chunk),
            received_ns: last.map_or(self.ts_ns, |s| s.ts_ns),
            invalid_utf8: event.invalid_utf8,
            data: event.data,
            kind,
        });
        // Later events start at or after this one's end: the segments before it are done with.
        let done_before = event.end.saturating_sub(1);
        while self
            .segments
            .front()
            .is_some_and(|s| s.body + s.len <= done_before)
        {
            self.segments.pop_front();
        }
    }

    fn comment(&mut self) {
        self.sse.comments += 1;
    }

    fn sse_error(&mut self, error: sse::Error) {
        self.sse.error = Some(error);
    }

    fn unterminated(&mut self, unterminated: sse::Unterminated) {
        self.sse.unterminated = Some(UnterminatedEvent::from(unterminated));
    }

    fn message_end(&mut self, end: http1::End) {
        self.message_ended = true;
        self.http.trailers = end
            .trailers
            .iter()
            .map(|f| (f.name().to_owned(), f.value().to_vec()))
            .collect();
    }

    fn excess(&mut self, data: http1::Data<'_>) {
        let excess = self.http.excess.get_or_insert_with(|| Excess {
            offset: data.offset,
            len: 0,
            first: Vec::new(),
        });
        excess.len += data.bytes.len() as u64;
        let room = Excess::KEPT.saturating_sub(excess.first.len());
        excess
            .first
            .extend_from_slice(&data.bytes[..room.min(data.bytes.len())]);
    }

    fn http_error(&mut self, error: http1::Error) {
        self.http.error = Some(error);
    }

    fn http_finish(&mut self, _finish: http1::Finish) {
        self.http_finished = true;
    }
}
