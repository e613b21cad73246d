//! Driving one stream on the shared ring: start the handoff, feed every read into an
//! [`Observation`] as it arrives, and play the client's part (close after N content events;
//! close a connection the daemon keeps open after `[DONE]`).

use std::time::{Duration, Instant};

use super::Client;
use super::observe::{ClientClose, Observation};
use crate::clock::monotonic_ns;
use crate::handoff::HandoffError;
use crate::ring::{EndReason, HandoffSpec, RingHandle, StreamEvent, StreamHandle};

/// A stream that has been started and is being watched.
pub(super) struct Live {
    handle: StreamHandle,
    obs: Observation,
    client: Client,
    grace: Duration,
    /// When a daemon that sent `[DONE]` must have closed by.
    close_by: Option<Instant>,
}

impl Live {
    /// Starts `spec` on `ring`. `grace` is how long the daemon gets to close after `[DONE]`.
    pub fn start(ring: &RingHandle, spec: HandoffSpec, client: Client, grace: Duration) -> Live {
        let obs = Observation::new(spec.data.clone());
        Live {
            handle: ring.start(spec),
            obs,
            client,
            grace,
            close_by: None,
        }
    }

    /// The observation so far.
    pub fn observation(&self) -> &Observation {
        &self.obs
    }

    /// Whether the stream has ended.
    pub fn ended(&self) -> bool {
        self.obs.end.is_some()
    }

    /// Handles the next event, waiting at most `wait`. Returns false once the stream has ended.
    pub fn step(&mut self, wait: Duration) -> bool {
        if self.ended() {
            return false;
        }
        let wait = match self.close_by {
            Some(by) => wait.min(by.saturating_duration_since(Instant::now())),
            None => wait,
        };
        match self.handle.recv_timeout(wait) {
            Ok(StreamEvent::HandedOff(t)) => self.obs.handoff = Some(t),
            Ok(StreamEvent::Data(chunk)) => {
                self.obs.feed(chunk.ts_ns, chunk.bytes);
                self.after_data();
            }
            Ok(StreamEvent::End { ts_ns, reason }) => self.obs.end(ts_ns, reason),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                self.obs
                    .end(monotonic_ns(), EndReason::Error(HandoffError::RingStopped));
            }
        }
        if self.close_by.is_some_and(|by| Instant::now() >= by) && self.obs.client_close.is_none() {
            self.obs.client_close = Some(ClientClose::NotClosedAfterDone {
                at_ns: monotonic_ns(),
            });
            self.handle.close();
            self.close_by = None;
        }
        !self.ended()
    }

    fn after_data(&mut self) {
        if let Client::CloseAfterEvents(n) = self.client {
            if self.obs.client_close.is_none() && self.obs.content_event_count() >= n {
                self.obs.client_close = Some(ClientClose::AfterEvents {
                    at_ns: monotonic_ns(),
                });
                self.handle.close();
            }
        }
        if self.close_by.is_none() && self.obs.done_at.is_some() && self.obs.client_close.is_none()
        {
            self.close_by = Some(Instant::now() + self.grace);
        }
    }

    /// Runs the stream to its end (the spec's deadline bounds it).
    pub fn finish(mut self) -> Observation {
        while self.step(Duration::from_secs(3600)) {}
        self.obs
    }
}

/// Starts one stream and runs it to its end. `Err` when the handoff itself failed: nothing
/// reached the daemon.
pub(super) fn run(
    ring: &RingHandle,
    spec: HandoffSpec,
    client: Client,
    grace: Duration,
) -> Result<Observation, HandoffError> {
    let obs = Live::start(ring, spec, client, grace).finish();
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
