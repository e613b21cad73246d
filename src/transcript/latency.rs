//! Relay latency: when the client received each content byte, against when the upstream (the
//! mock) wrote it. What is measured is on [`RelayLatency`].

use serde::Serialize;

use super::Transcript;
use super::interpret::Interpreter;
use crate::sse;

/// The upstream's progress after one write; see [`RelayLatency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UpstreamMark {
    /// When the write was handed to the connection ([`crate::clock::monotonic_ns`]).
    pub ts_ns: u64,
    /// Content bytes in upstream events complete once this write was out.
    pub content_bytes: u64,
}

/// The upstream's content and its marks, from [`upstream_marks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamContent {
    /// The content the upstream sent, by the same rules as the client's.
    #[serde(serialize_with = "super::ser::bytes")]
    pub content: Vec<u8>,
    /// One mark per write, in the order given.
    pub marks: Vec<UpstreamMark>,
}

/// The upstream's content and marks from its SSE body (`body`, the bytes after HTTP framing,
/// as the mock's plan lists them) and its writes as `(ts_ns, end)`: the write's timestamp and
/// the body offset just past its last byte (the mock's `WriteRecord { ts_ns, end, .. }`).
///
/// An upstream event counts as sent by the write that holds the byte completing it.
pub fn upstream_marks(
    body: &[u8],
    writes: impl IntoIterator<Item = (u64, u64)>,
) -> UpstreamContent {
    let mut parser = sse::Parser::new();
    let mut events: Vec<sse::Event> = Vec::new();
    // A limit error leaves the events before it, which is all that can be relayed anyway.
    let _ = parser.feed(body, &mut events);
    let mut interpreter = Interpreter::new();
    for (i, event) in events.iter().enumerate() {
        interpreter.push(i, &event.event_type, &event.data);
    }
    let interpretation = interpreter.finish();
    // Content bytes complete at each event end, in event order.
    let mut complete: Vec<(u64, u64)> = Vec::with_capacity(interpretation.pieces.len());
    for piece in &interpretation.pieces {
        if let Some(event) = events.get(piece.event) {
            complete.push((event.end, piece.end as u64));
        }
    }
    let marks = writes
        .into_iter()
        .map(|(ts_ns, end)| {
            let i = complete.partition_point(|&(event_end, _)| event_end <= end);
            UpstreamMark {
                ts_ns,
                content_bytes: i.checked_sub(1).map_or(0, |i| complete[i].1),
            }
        })
        .collect();
    UpstreamContent {
        content: interpretation.content,
        marks,
    }
}

/// One relay-latency sample: the content bytes a client event and an upstream write share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RelaySample {
    /// Index of the client event.
    pub event: usize,
    /// Index of the upstream write (its mark).
    pub write: usize,
    /// First content byte of the sample.
    pub start: u64,
    /// One past its last content byte.
    pub end: u64,
    /// When the upstream wrote them.
    pub written_ns: u64,
    /// When the client received them.
    pub received_ns: u64,
    /// `received_ns - written_ns`. Negative only when the client had the bytes before the
    /// upstream wrote them, i.e. the contents differ and the join is meaningless.
    pub latency_ns: i64,
}

/// The relay-latency join of a transcript with the upstream's marks.
///
/// # What is measured
///
/// The upstream side is a list of [`UpstreamMark`]s, one per upstream body write in write
/// order: `(ts_ns, content_bytes)` says that once the write made at `ts_ns` was handed over,
/// the upstream had sent the first `content_bytes` bytes of its content (counting only events
/// complete by then, since a relay cannot forward a piece before its event ends).
/// [`upstream_marks`] computes them from the upstream's SSE bytes and the mock's write log.
///
/// Content byte `k` of the client's content is taken to be content byte `k` of the upstream's
/// (compare the contents first: past a difference, the join pairs unrelated bytes). Byte `k` was
/// **written** by the first upstream write whose `content_bytes` exceeds `k`, and **received**
/// with the client event whose content piece holds it, at that event's `received_ns` (the
/// timestamp of the read that completed the event). Its relay latency is received minus written.
///
/// Bytes with the same event and the same write have the same latency, so the join reports one
/// [`RelaySample`] per (client event, upstream write) pair that share bytes: one per event for a
/// daemon that relays each upstream chunk as one event, several per event for a daemon that
/// coalesces (each write's bytes waited a different time), several per write for one that
/// splits. Every content byte both sides have is in exactly one sample.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RelayLatency {
    /// Every sample, in content order.
    pub samples: Vec<RelaySample>,
    /// Client content bytes beyond everything the upstream sent (the daemon added content).
    pub unmatched_bytes: u64,
    /// Upstream content bytes the client never received.
    pub undelivered_bytes: u64,
}

impl RelayLatency {
    /// The latencies, in content order.
    pub fn latencies_ns(&self) -> impl Iterator<Item = i64> + '_ {
        self.samples.iter().map(|s| s.latency_ns)
    }

    /// The largest latency of the bytes of client event `event` (its oldest bytes).
    pub fn event_latency_ns(&self, event: usize) -> Option<i64> {
        // Samples are in content order, hence in event order.
        let from = self.samples.partition_point(|s| s.event < event);
        self.samples[from..]
            .iter()
            .take_while(|s| s.event == event)
            .map(|s| s.latency_ns)
            .max()
    }
}

pub(super) fn join(transcript: &Transcript, upstream: &[UpstreamMark]) -> RelayLatency {
    // Each write's content range; counts that go backwards are read as no progress.
    let mut writes = Vec::with_capacity(upstream.len());
    let mut sent = 0u64;
    for (i, mark) in upstream.iter().enumerate() {
        let from = sent;
        sent = sent.max(mark.content_bytes);
        if sent > from {
            writes.push((i, from, sent, mark.ts_ns));
        }
    }
    let mut out = RelayLatency::default();
    let mut w = 0;
    for piece in &transcript.interpretation.pieces {
        let Some(event) = transcript.events.get(piece.event) else {
            continue;
        };
        let (mut at, end) = (piece.start as u64, piece.end as u64);
        while at < end {
            // Skip writes wholly before `at`.
            while writes.get(w).is_some_and(|&(_, _, to, _)| to <= at) {
                w += 1;
            }
            let Some(&(write, _, to, written_ns)) = writes.get(w) else {
                out.unmatched_bytes += end - at;
                break;
            };
            let upto = to.min(end);
            let latency = i128::from(event.received_ns) - i128::from(written_ns);
            out.samples.push(RelaySample {
                event: piece.event,
                write,
                start: at,
                end: upto,
                written_ns,
                received_ns: event.received_ns,
                latency_ns: i64::try_from(latency).unwrap_or(if latency < 0 {
                    i64::MIN
                } else {
                    i64::MAX
                }),
            });
            at = upto;
        }
    }
    out.undelivered_bytes = sent.saturating_sub(transcript.interpretation.content.len() as u64);
    out
}
