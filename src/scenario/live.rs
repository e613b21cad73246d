//! Driving one stream on the shared ring: start the handoff, push every read into a
//! [`TranscriptBuilder`] and a [`WireRecorder`] as it arrives, and play the client's part (close
//! after N content events; close a connection the daemon keeps open after `[DONE]`; close a
//! stream whose outcome is settled, so a daemon that sends without end costs nothing more).

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::Client;
use super::observe::{ClientClose, Observation};
use crate::clock::monotonic_ns;
use crate::handoff::{HandoffError, HandoffFate};
use crate::ring::{EndReason, HandoffSpec, HandoffTimings, RingHandle, StreamEvent, StreamHandle};
use crate::transcript::{
    EndKind, EventKind, HandoffTimes, RecordingEnd, TranscriptBuilder, TranscriptOptions,
};
use crate::verdict::{WireLimits, WireRecorder};

/// How a stream is read: the transcript's limits and budget, and the window of the wire kept
/// for the report.
#[derive(Debug, Clone)]
pub(super) struct Reading {
    pub options: TranscriptOptions,
    pub wire: WireLimits,
}

/// A stream that has been started and is being watched.
pub(super) struct Live {
    handle: StreamHandle,
    sent: Vec<u8>,
    handoff: Option<HandoffTimings>,
    options: TranscriptOptions,
    builder: TranscriptBuilder,
    wire: WireRecorder,
    client: Client,
    client_close: Option<ClientClose>,
    grace: Duration,
    /// Events looked at so far, and how many of them carried content.
    seen: usize,
    content_events: usize,
    /// When a daemon that sent `[DONE]` must have closed by.
    close_by: Option<Instant>,
    end: Option<(u64, EndReason)>,
    fate: Option<HandoffFate>,
}

fn times(t: &HandoffTimings) -> HandoffTimes {
    HandoffTimes {
        connect_start_ns: t.connect_start_ns,
        connected_ns: t.connected_ns,
        sent_ns: t.sent_ns,
    }
}

impl Live {
    /// Starts `spec` on `ring`. `grace` is how long the daemon gets to close after `[DONE]`.
    pub fn start(
        ring: &RingHandle,
        spec: HandoffSpec,
        client: Client,
        grace: Duration,
        reading: &Reading,
    ) -> Live {
        let sent = spec.data.clone();
        Live {
            handle: ring.start(spec),
            sent,
            handoff: None,
            builder: TranscriptBuilder::with_options(HandoffTimes::default(), &reading.options),
            options: reading.options.clone(),
            wire: WireRecorder::new(reading.wire),
            client,
            client_close: None,
            grace,
            seen: 0,
            content_events: 0,
            close_by: None,
            end: None,
            fate: None,
        }
    }

    /// Resumes reading now (ends a pause the client behaviour began).
    pub fn resume(&self) {
        self.handle.resume();
    }

    /// Bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.builder.received_bytes()
    }

    /// The handoff error, if the stream ended before the daemon had the socket.
    pub fn handoff_failure(&self) -> Option<&HandoffError> {
        match (&self.handoff, &self.end) {
            (None, Some((_, EndReason::Error(e)))) => Some(e),
            _ => None,
        }
    }

    /// Handles the next event, waiting at most `wait`. Returns false once the stream has ended.
    pub fn step(&mut self, wait: Duration) -> bool {
        if self.end.is_some() {
            return false;
        }
        let wait = match self.close_by {
            Some(by) => wait.min(by.saturating_duration_since(Instant::now())),
            None => wait,
        };
        match self.handle.recv_timeout(wait) {
            Ok(StreamEvent::HandedOff(t)) => {
                // Nothing has been received before the handoff completes.
                self.builder = TranscriptBuilder::with_options(times(&t), &self.options);
                self.handoff = Some(t);
            }
            Ok(StreamEvent::Data(chunk)) => {
                self.builder.push(chunk.ts_ns, &chunk.bytes);
                self.wire.push(chunk.ts_ns, &chunk.bytes);
                self.after_data();
            }
            Ok(StreamEvent::End {
                ts_ns,
                reason,
                fate,
            }) => {
                self.end = Some((ts_ns, reason));
                self.fate = fate;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                self.end = Some((monotonic_ns(), EndReason::Error(HandoffError::RingStopped)));
            }
        }
        if self.close_by.is_some_and(|by| Instant::now() >= by) {
            self.client_close = Some(ClientClose::NotClosedAfterDone);
            self.handle.close();
            self.close_by = None;
        }
        self.end.is_none()
    }

    fn after_data(&mut self) {
        let mut done = false;
        for event in &self.builder.events()[self.seen..] {
            match event.kind {
                EventKind::Content => self.content_events += 1,
                EventKind::Done => done = true,
                _ => {}
            }
        }
        self.seen = self.builder.events().len();
        if self.client_close.is_some() {
            return;
        }
        if self.builder.settled().is_some() {
            self.client_close = Some(ClientClose::Settled);
            self.handle.close();
            return;
        }
        if let Client::CloseAfterEvents(n) = self.client
            && self.content_events >= n
        {
            self.client_close = Some(ClientClose::AfterEvents {
                at_ns: monotonic_ns(),
            });
            self.handle.close();
            return;
        }
        if done && self.close_by.is_none() {
            self.close_by = Some(Instant::now() + self.grace);
        }
    }

    /// Runs the stream to its end (the spec's deadline bounds it) and returns what it showed.
    pub fn finish(mut self) -> Observation {
        while self.step(Duration::from_secs(3600)) {}
        let (end_ns, end) = self
            .end
            .take()
            .unwrap_or((monotonic_ns(), EndReason::Error(HandoffError::RingStopped)));
        let kind = match (&end, self.client_close) {
            (_, Some(_)) | (EndReason::ClosedByClient, None) => EndKind::ClosedByClient,
            (EndReason::PeerClosed, None) => EndKind::PeerClosed,
            (EndReason::Timeout, None) => EndKind::Timeout,
            (EndReason::Error(e), None) => EndKind::Error(e.to_string()),
        };
        let t = self.builder.finish(RecordingEnd {
            at_ns: end_ns,
            kind,
        });
        Observation {
            sent: self.sent,
            handoff: self.handoff,
            wire: self.wire,
            end,
            end_ns,
            fate: self.fate,
            client_close: self.client_close,
            t,
        }
    }
}

/// Starts one stream and runs it to its end. `Err` when the handoff itself failed: nothing
/// reached the daemon.
pub(super) fn run(
    ring: &RingHandle,
    spec: HandoffSpec,
    client: Client,
    grace: Duration,
    reading: &Reading,
) -> Result<Observation, HandoffError> {
    let obs = Live::start(ring, spec, client, grace, reading).finish();
    handoff_failure(&obs).map_or(Ok(obs), Err)
}

/// The error of a stream whose handoff failed (it ended with an error before the daemon had
/// the socket).
pub(super) fn handoff_failure(obs: &Observation) -> Option<HandoffError> {
    match (obs.handoff, obs.end_error()) {
        (None, Some(e)) => Some(e.clone()),
        _ => None,
    }
}
