//! What one stream showed: the [`Transcript`] of its reads, plus what the scenario needs
//! beside it (the data sent, the reads themselves for the wire dump, how the ring ended the
//! stream, and whether the client closed it on purpose).

use crate::handoff::{HandoffError, HandoffFate};
use crate::mock::WriteRecord;
use crate::pattern::UpstreamPlan;
use crate::ring::{EndReason, HandoffTimings};
use crate::transcript::EventKind;
use crate::transcript::{OtherReason, RelayLatency, ResponseHead, Transcript, upstream_marks};
use crate::verdict::timeline::{Link, Mark, MarkKind, Timeline, Window};
use crate::verdict::{Timings, WireDump, WireLimits, WireRecorder};

/// Why the client closed the connection itself, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientClose {
    /// After the scenario's number of content events (a browser navigating away).
    AfterEvents {
        /// When the close was issued.
        at_ns: u64,
    },
    /// The daemon sent `[DONE]` but did not close within the grace period.
    NotClosedAfterDone,
    /// More bytes could not change the outcome ([`Transcript::settled`] says why).
    Settled,
}

/// A finished stream.
#[derive(Debug)]
pub(super) struct Observation {
    /// The handoff data sent.
    pub sent: Vec<u8>,
    /// The handoff's timings, if the handoff completed.
    pub handoff: Option<HandoffTimings>,
    /// The reads kept for the wire dump (a window of each end).
    pub wire: WireRecorder,
    /// How the ring ended the stream.
    pub end: EndReason,
    /// When.
    pub end_ns: u64,
    /// For a stream that got no byte: whether the daemon accepted the connection and read the
    /// handoff.
    pub fate: Option<HandoffFate>,
    /// Whether and why the client closed.
    pub client_close: Option<ClientClose>,
    /// What the reads mean.
    pub t: Transcript,
}

impl Observation {
    /// What the daemon did with a handoff it never took (never accepted, or never read).
    pub fn not_taken(&self) -> Option<HandoffFate> {
        self.fate.filter(|f| f.not_taken())
    }

    /// The response status, when a head arrived.
    pub fn status(&self) -> Option<u16> {
        self.t.status()
    }

    /// The final response head.
    pub fn head(&self) -> Option<&ResponseHead> {
        self.t.head()
    }

    /// The response headers as text pairs (invalid UTF-8 as U+FFFD).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.head().map_or_else(Vec::new, |h| {
            h.headers
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect()
        })
    }

    /// When the final head was complete.
    pub fn head_ns(&self) -> Option<u64> {
        self.head().map(|h| h.received_ns)
    }

    /// Why the bytes are not a well-formed HTTP/1.x response, if they are not.
    pub fn http_error(&self) -> Option<String> {
        if let Some(e) = &self.t.http.error {
            return Some(e.to_string());
        }
        self.t.http.excess.as_ref().map(|x| {
            format!(
                "{} bytes arrived after the end of the message (at byte {}), which no client reads",
                x.len, x.offset
            )
        })
    }

    /// Why the body is not a valid event stream, if it is not.
    pub fn sse_error(&self) -> Option<String> {
        if let Some(e) = &self.t.sse.error {
            return Some(e.to_string());
        }
        (self.t.sse.invalid_utf8_count > 0).then(|| {
            format!(
                "{} invalid UTF-8 sequences, the first at byte {} of the event stream (a \
                 browser shows each as U+FFFD)",
                self.t.sse.invalid_utf8_count,
                self.t.sse.invalid_utf8.first().copied().unwrap_or(0)
            )
        })
    }

    /// Events dispatched.
    pub fn event_count(&self) -> usize {
        self.t.events.len()
    }

    /// The decoded content.
    pub fn content(&self) -> &[u8] {
        self.t.content_bytes()
    }

    /// Arrival times of the events that carried content.
    pub fn content_times(&self) -> Vec<u64> {
        self.t
            .content_pieces()
            .filter(|(_, bytes)| !bytes.is_empty())
            .map(|(e, _)| e.received_ns)
            .collect()
    }

    /// Index of the first `[DONE]`.
    pub fn done_at(&self) -> Option<usize> {
        self.t.done_index()
    }

    /// Arrival time of the first `[DONE]`.
    pub fn done_ns(&self) -> Option<u64> {
        self.done_at()
            .and_then(|i| self.t.events.get(i))
            .map(|e| e.received_ns)
    }

    /// The first finish_reason.
    pub fn finish_reason(&self) -> Option<&str> {
        self.t.finish_reason()
    }

    /// The message of the first error event.
    pub fn error_event(&self) -> Option<&str> {
        self.t.error_events().first().map(|e| e.message.as_str())
    }

    /// Events a browser client cannot read: `(index, why)`.
    pub fn undecodable(&self) -> Vec<(usize, String)> {
        self.t
            .other_events()
            .iter()
            .map(|o| {
                let why = match &o.reason {
                    OtherReason::NotJson { message } => format!("not JSON ({message})"),
                    OtherReason::UnknownShape => "JSON with neither \"content\", \"choices\" \
                                                  nor \"error\""
                        .to_owned(),
                };
                (o.event, why)
            })
            .collect()
    }

    /// Bytes received in all.
    pub fn received_bytes(&self) -> u64 {
        self.t.received_bytes
    }

    /// When the daemon had the client socket.
    pub fn sent_ns(&self) -> Option<u64> {
        self.handoff.map(|h| h.sent_ns)
    }

    /// The error the stream ended with, when it ended with one.
    pub fn end_error(&self) -> Option<&HandoffError> {
        match &self.end {
            EndReason::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The relay latency of the content, joined with the mock's writes of `plan`.
    pub fn relay_latency(&self, plan: &UpstreamPlan, writes: &[WriteRecord]) -> RelayLatency {
        let marks = upstream_marks(&plan.body(), writes.iter().map(|w| (w.ts_ns, w.end)));
        self.t.relay_latency(&marks.marks)
    }

    /// The stream's timings for a report, with the relay latency when it was joined.
    pub fn timings(&self, relay: Option<&RelayLatency>) -> Timings {
        if self.handoff.is_none() {
            return Timings::default();
        }
        self.t.verdict_timings(relay)
    }

    /// How the stream ended, in words.
    fn end_text(&self) -> String {
        match self.client_close {
            Some(ClientClose::AfterEvents { .. }) => {
                "closed by the client after its events, as the scenario asks".to_owned()
            }
            Some(ClientClose::NotClosedAfterDone) => {
                "closed by the client: the daemon kept the connection open after [DONE]".to_owned()
            }
            Some(ClientClose::Settled) => match &self.t.settled {
                Some(cause) => format!(
                    "closed by streamcheck after {} bytes: {cause}",
                    self.t.received_bytes
                ),
                None => "closed by streamcheck".to_owned(),
            },
            None => match self.not_taken() {
                Some(fate) => format!("{}: {}", self.end, fate.describe()),
                None => self.end.to_string(),
            },
        }
    }

    /// The stream on one time axis (see [`Timeline`]): the upstream's `writes` (the mock's log
    /// of this stream's request), the client's events and the pairs `relay` matched; `None`
    /// when the handoff did not complete.
    pub fn timeline(
        &self,
        writes: &[WriteRecord],
        relay: Option<&RelayLatency>,
    ) -> Option<Timeline> {
        let origin = self.handoff?.connect_start_ns;
        let since = |ns: u64| ns.saturating_sub(origin);
        let writes = writes
            .iter()
            .map(|w| Mark {
                at_ns: since(w.ts_ns),
                kind: MarkKind::Write,
                bytes: w.end.saturating_sub(w.start),
            })
            .collect();
        let receipts = self
            .t
            .events
            .iter()
            .map(|e| Mark {
                at_ns: since(e.received_ns),
                kind: match e.kind {
                    EventKind::Content => MarkKind::Content,
                    EventKind::Control => MarkKind::Control,
                    EventKind::Error => MarkKind::Error,
                    EventKind::Done => MarkKind::Done,
                    EventKind::Other => MarkKind::Other,
                },
                bytes: e.data.len() as u64,
            })
            .collect();
        let links = relay.map_or_else(Vec::new, |r| {
            r.samples
                .iter()
                .map(|s| Link {
                    written_ns: since(s.written_ns),
                    received_ns: since(s.received_ns),
                })
                .collect()
        });
        Some(Timeline {
            handoff_ns: self.sent_ns().map(since),
            head_ns: self.head_ns().map(since),
            writes: Window::of(writes, Timeline::KEEP),
            receipts: Window::of(receipts, Timeline::KEEP),
            links: Window::of(links, Timeline::KEEP),
            done_ns: self.done_ns().map(since),
            end_ns: since(self.end_ns),
            end: self.end_text(),
        })
    }

    /// The bytes on the wire, for a report.
    pub fn wire(&self) -> WireDump {
        let mut dump = self.wire.dump();
        let origin = self.handoff.map_or_else(
            || dump.chunks.first().map_or(0, |c| c.at_ns),
            |h| h.connect_start_ns,
        );
        for chunk in &mut dump.chunks {
            chunk.at_ns = chunk.at_ns.saturating_sub(origin);
        }
        let mut dump = dump.with_sent(0, &self.sent, WireLimits::default());
        if let Some(head) = self.head() {
            dump = dump.with_head_len(usize::try_from(head.end).unwrap_or(usize::MAX));
        }
        dump.with_end(self.end_text())
    }
}

/// The largest relay latency, negative ones counting as 0.
pub(super) fn max_latency(relay: &RelayLatency) -> Option<u64> {
    relay
        .samples
        .iter()
        .map(|s| u64::try_from(s.latency_ns).unwrap_or(0))
        .max()
}
