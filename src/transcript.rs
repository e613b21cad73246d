//! What one recorded stream contains and what it means: the HTTP head, the SSE events with their
//! arrival times, the content, `[DONE]`, `finish_reason`, error events, and timings.
//!
//! The client records a stream as a [`Recording`]: the handoff times, every received read as a
//! [`Chunk`] with its CLOCK_MONOTONIC timestamp, and how the stream ended. [`Transcript`] is
//! what that recording means, computed in one pass over the bytes:
//!
//! - **HTTP** ([`HttpResponse`]): the response head (status, reason, headers, raw bytes), the
//!   body framing, any [`crate::http1::Error`] with its offset, whether the body ended cleanly
//!   ([`BodyEnd`]), and bytes sent after the end of the message.
//! - **SSE** ([`ReceivedEvent`], [`SseStatus`]): every dispatched event with its stream offsets and
//!   the time it arrived: the timestamp of the chunk that held the byte completing it (the CR or
//!   LF of its blank line), found through the HTTP body framing, so a chunked body maps exactly.
//!   Invalid UTF-8 anywhere in the event stream (with its offset), an event left without its blank
//!   line, and a parser limit crossed.
//! - **Meaning** ([`Interpretation`]): the content as bytes and per event, from the simplified
//!   `{"content":"…"}` shape and from OpenAI chunks (`choices[0].delta.content`); error events
//!   (`{"error":"…"}`, `{"error":{…}}`, or an `event: error`); the first `[DONE]` and what came
//!   after it; `finish_reason`; data events of neither shape, kept with the reason.
//! - **Timings** ([`Timings`]): handoff, time to head, to first event, inter-event gaps, total;
//!   and, joined with the mock's write log, the relay latency of every content byte
//!   ([`Transcript::relay_latency`]).
//!
//! The same decoding serves `streamcheck parse` ([`inspect`]), which prints events as JSON lines.
//!
//! # Guarantees
//!
//! Nothing here panics on any input: the bytes come from the daemon under test, which may be
//! hostile. Time and memory are linear in the bytes received. Everything except arrival times
//! (event chunks and timestamps, the head's chunk, [`Timings`]) is the same for every way the
//! same bytes were split into reads: a property test checks exactly that.
//!
//! ```
//! use streamcheck::transcript::{Chunk, EndKind, HandoffTimes, Recording, RecordingEnd, Transcript};
//!
//! let recording = Recording {
//!     handoff: HandoffTimes { connect_start_ns: 1_000, connected_ns: 1_500, sent_ns: 2_000 },
//!     chunks: vec![
//!         Chunk::new(10_000, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"),
//!         Chunk::new(20_000, b"data: {\"content\":\"Hel\"}\n\ndata: {\"content\":\"lo\"}\n"),
//!         Chunk::new(30_000, b"\ndata: [DONE]\n\n"),
//!     ],
//!     end: RecordingEnd { at_ns: 40_000, kind: EndKind::PeerClosed },
//! };
//! let t = Transcript::from_recording(&recording);
//! assert_eq!(t.status(), Some(200));
//! assert_eq!(t.content_str(), "Hello");
//! assert!(t.done() && t.events_after_done().is_empty());
//! assert_eq!(t.events[1].received_ns, 30_000); // its blank line came in the third chunk
//! assert_eq!(t.timings.first_event_ns, Some(18_000)); // from sendmsg done
//! assert!(t.body_ended_cleanly());
//! ```

#![deny(missing_docs)]

use std::borrow::Cow;

use serde::Serialize;

use crate::sse;

mod budget;
mod build;
mod decode;
pub mod inspect;
mod interpret;
mod latency;
mod response;
mod ser;
mod utf8;

pub use budget::{Budget, ReadLimits, SettledCause};
pub use build::{TranscriptBuilder, TranscriptOptions};
pub use interpret::{
    Anomaly, ContentPiece, ErrorEvent, EventKind, FinishReason, Interpretation, Interpreter,
    OtherEvent, OtherReason, Shape,
};
pub use latency::{RelayLatency, RelaySample, UpstreamContent, UpstreamMark, upstream_marks};
pub use response::{BodyEnd, BodyFraming, Excess, HttpResponse, ResponseHead};

/// When the handoff happened, in [`crate::clock::monotonic_ns`] nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HandoffTimes {
    /// Just before `connect()` to the daemon's socket.
    pub connect_start_ns: u64,
    /// When the connect completed.
    pub connected_ns: u64,
    /// When the `sendmsg()` carrying the data and the fd completed: the origin of every
    /// duration in [`Timings`] except the handoff itself.
    pub sent_ns: u64,
}

/// One read from the client socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// When the read completed ([`crate::clock::monotonic_ns`]).
    pub ts_ns: u64,
    /// The bytes it returned. In JSON, a hex string.
    #[serde(serialize_with = "ser::hex")]
    pub bytes: Vec<u8>,
}

impl Chunk {
    /// A chunk of `bytes` received at `ts_ns`.
    pub fn new(ts_ns: u64, bytes: impl Into<Vec<u8>>) -> Chunk {
        Chunk {
            ts_ns,
            bytes: bytes.into(),
        }
    }
}

/// How and when the recording of a stream stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingEnd {
    /// When it stopped ([`crate::clock::monotonic_ns`]).
    pub at_ns: u64,
    /// Why. In JSON, flattened: `{"at_ns": …, "kind": "timeout"}`, with `"message"` for an error.
    #[serde(flatten)]
    pub kind: EndKind,
}

/// Why the recording of a stream stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum EndKind {
    /// The daemon closed the connection (a read returned 0): the only end that completes an
    /// until-close body.
    PeerClosed,
    /// The client closed it (a client behaviour such as "close after N bytes").
    ClosedByClient,
    /// The client's deadline passed with the connection still open.
    Timeout,
    /// A read failed (e.g. ECONNRESET), with the error in words.
    Error(String),
}

/// Everything the client recorded of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// The handoff times.
    pub handoff: HandoffTimes,
    /// Every read, in order.
    pub chunks: Vec<Chunk>,
    /// How the recording stopped.
    pub end: RecordingEnd,
}

/// One dispatched SSE event, where it sat in the stream and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedEvent {
    /// The event type (`message` unless an `event` field said otherwise).
    pub event_type: String,
    /// The data, raw: the block's `data` values joined by LF. In JSON, a string when it is
    /// valid UTF-8, else `{"hex": …, "text": …}`.
    #[serde(serialize_with = "ser::bytes")]
    pub data: Vec<u8>,
    /// The last event ID at dispatch.
    pub id: String,
    /// The reconnection time set in this event's block, if any.
    pub retry: Option<u64>,
    /// Offset of the block's first line in the event stream (the body after HTTP decoding).
    pub start: u64,
    /// Offset just past the CR or LF that ended its blank line, in the event stream.
    pub end: u64,
    /// Offset of the block's first byte in the received bytes (HTTP head included).
    pub wire_start: u64,
    /// Offset just past the byte that completed the event, in the received bytes.
    pub wire_end: u64,
    /// Index of the chunk holding the byte that completed the event.
    pub chunk: usize,
    /// That chunk's timestamp: when the event could first be seen by a client.
    pub received_ns: u64,
    /// Index in `data` of the first byte that is not valid UTF-8, if any.
    pub invalid_utf8: Option<usize>,
    /// What the event means ([`Interpretation`] has the details).
    pub kind: EventKind,
}

impl ReceivedEvent {
    /// The data as text, invalid UTF-8 shown as U+FFFD (what a browser's EventSource sees).
    pub fn data_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// What the SSE parser reported besides events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SseStatus {
    /// A limit was crossed: the stream was not parsed past it.
    #[serde(serialize_with = "ser::opt_display")]
    pub error: Option<sse::Error>,
    /// The stream ended inside an event block, which the spec discards.
    pub unterminated: Option<UnterminatedEvent>,
    /// Comment lines (keep-alives such as `: ping`).
    pub comments: u64,
    /// Invalid UTF-8 sequences anywhere in the event stream (text/event-stream is always
    /// UTF-8; a browser shows each as U+FFFD).
    pub invalid_utf8_count: u64,
    /// Event-stream offsets of the first [`SseStatus::MAX_OFFSETS`] of them.
    pub invalid_utf8: Vec<u64>,
}

impl SseStatus {
    /// How many invalid UTF-8 offsets are kept.
    pub const MAX_OFFSETS: usize = 64;
}

/// An event block the stream ended in, discarded (see [`sse::Unterminated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnterminatedEvent {
    /// Event-stream offset of the block's first line.
    pub start: u64,
    /// Event-stream offset of the end of the stream.
    pub end: u64,
    /// Whether the stream ended inside a line.
    pub partial_line: bool,
}

impl From<sse::Unterminated> for UnterminatedEvent {
    fn from(u: sse::Unterminated) -> Self {
        UnterminatedEvent {
            start: u.start,
            end: u.end,
            partial_line: u.partial_line,
        }
    }
}

/// When things happened, in ns. Durations run from [`HandoffTimes::sent_ns`] unless stated;
/// `None` when the thing never happened. Timestamps that go backwards give 0, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Timings {
    /// Connect start → `sendmsg` done.
    pub handoff_ns: u64,
    /// Connect start → connect done.
    pub connect_ns: u64,
    /// → the first byte of the response.
    pub first_byte_ns: Option<u64>,
    /// → the chunk that completed the final response head.
    pub head_ns: Option<u64>,
    /// → the first dispatched event.
    pub first_event_ns: Option<u64>,
    /// → the first event carrying a non-empty content piece.
    pub first_content_ns: Option<u64>,
    /// → the first `[DONE]`.
    pub done_ns: Option<u64>,
    /// Between consecutive events' arrivals (`events.len() - 1` values; 0 for events that came
    /// in the same chunk).
    pub gaps_ns: Vec<u64>,
    /// → the end of the recording.
    pub total_ns: u64,
}

impl Timings {
    /// The longest gap between two events, if there were two.
    pub fn max_gap_ns(&self) -> Option<u64> {
        self.gaps_ns.iter().copied().max()
    }
}

/// What one recorded stream means. Built by [`Transcript::from_recording`] or, chunk by chunk,
/// by [`TranscriptBuilder`]. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// The handoff times.
    pub handoff: HandoffTimes,
    /// How the recording stopped.
    pub end: RecordingEnd,
    /// Bytes received in all.
    pub received_bytes: u64,
    /// Reads received.
    pub chunks: usize,
    /// The HTTP response.
    pub http: HttpResponse,
    /// Every dispatched event, in order.
    pub events: Vec<ReceivedEvent>,
    /// SSE problems.
    pub sse: SseStatus,
    /// What the events mean.
    pub interpretation: Interpretation,
    /// When things happened.
    pub timings: Timings,
    /// Why the stream's outcome was settled before it ended, if it was ([`Budget`]): a client
    /// stops reading then.
    pub settled: Option<SettledCause>,
}

impl Transcript {
    /// The transcript of `recording`, with the default parser limits.
    pub fn from_recording(recording: &Recording) -> Transcript {
        Transcript::from_recording_with(recording, &TranscriptOptions::default())
    }

    /// The transcript of `recording`, with the given parser limits.
    pub fn from_recording_with(recording: &Recording, options: &TranscriptOptions) -> Transcript {
        let mut builder = TranscriptBuilder::with_options(recording.handoff, options);
        for chunk in &recording.chunks {
            builder.push(chunk.ts_ns, &chunk.bytes);
        }
        builder.finish(recording.end.clone())
    }

    /// The final response head, if one arrived.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.http.head.as_ref()
    }

    /// The final response's status code.
    pub fn status(&self) -> Option<u16> {
        self.head().map(|h| h.status)
    }

    /// The first value of header `name` (ASCII case-insensitive), invalid UTF-8 as U+FFFD.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.head()?.header_str(name)
    }

    /// Whether the body ended the way its framing says it ends ([`BodyEnd::is_clean`]).
    pub fn body_ended_cleanly(&self) -> bool {
        self.http.body.is_clean()
    }

    /// The content: every content piece, concatenated, bytes exactly as the JSON strings
    /// decode (see [`Interpretation::content`]).
    pub fn content_bytes(&self) -> &[u8] {
        &self.interpretation.content
    }

    /// The content as text, invalid UTF-8 as U+FFFD.
    pub fn content_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.interpretation.content)
    }

    /// The content as a browser shows it: each piece decoded on its own, so a character split
    /// across two events becomes U+FFFD even though [`content_bytes`](Self::content_bytes)
    /// joins it back together.
    pub fn browser_content(&self) -> String {
        self.content_pieces()
            .map(|(_, bytes)| String::from_utf8_lossy(bytes))
            .collect()
    }

    /// Each content piece with the event that carried it, in order.
    pub fn content_pieces(&self) -> impl Iterator<Item = (&ReceivedEvent, &[u8])> + '_ {
        self.interpretation.pieces.iter().filter_map(|p| {
            let event = self.events.get(p.event)?;
            let bytes = self.interpretation.content.get(p.start..p.end)?;
            Some((event, bytes))
        })
    }

    /// Whether a `data: [DONE]` event arrived.
    pub fn done(&self) -> bool {
        self.interpretation.done.is_some()
    }

    /// Index in [`Transcript::events`] of the first `[DONE]`.
    pub fn done_index(&self) -> Option<usize> {
        self.interpretation.done
    }

    /// The events after the first `[DONE]` (a correct daemon sends none).
    pub fn events_after_done(&self) -> &[ReceivedEvent] {
        match self.interpretation.done {
            Some(i) => self.events.get(i + 1..).unwrap_or_default(),
            None => &[],
        }
    }

    /// The error events.
    pub fn error_events(&self) -> &[ErrorEvent] {
        &self.interpretation.errors
    }

    /// The first `finish_reason` the stream carried.
    pub fn finish_reason(&self) -> Option<&str> {
        self.interpretation
            .finish_reasons
            .first()
            .map(|f| f.reason.as_str())
    }

    /// Data events that are neither content, control, error nor `[DONE]`.
    pub fn other_events(&self) -> &[OtherEvent] {
        &self.interpretation.other
    }

    /// Whether every byte of the event stream is valid UTF-8.
    pub fn is_valid_utf8(&self) -> bool {
        self.sse.invalid_utf8_count == 0
    }

    /// Whether the content is valid UTF-8.
    pub fn content_is_valid_utf8(&self) -> bool {
        std::str::from_utf8(&self.interpretation.content).is_ok()
    }

    /// The relay latency of every content byte, joined with the upstream's writes; see
    /// [`RelayLatency`] for exactly what is measured.
    pub fn relay_latency(&self, upstream: &[UpstreamMark]) -> RelayLatency {
        latency::join(self, upstream)
    }

    /// The timings in the form scenario results carry, with the relay latency spread when a
    /// join was made (negative latencies count as 0 there; [`RelaySample`] keeps the sign).
    pub fn verdict_timings(&self, relay: Option<&RelayLatency>) -> crate::verdict::Timings {
        use crate::verdict::Spread;
        let t = &self.timings;
        crate::verdict::Timings {
            handoff_ns: Some(t.handoff_ns),
            head_ns: t.head_ns,
            first_event_ns: t.first_event_ns,
            total_ns: Some(t.total_ns),
            gaps: Spread::of(&t.gaps_ns),
            relay_latency: relay.and_then(|r| {
                let samples: Vec<u64> = r
                    .samples
                    .iter()
                    .map(|s| u64::try_from(s.latency_ns).unwrap_or(0))
                    .collect();
                Spread::of(&samples)
            }),
        }
    }
}
