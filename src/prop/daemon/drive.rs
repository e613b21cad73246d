//! Running one case: register its script, hand off with a fresh nonce, play the client while
//! the stream runs, and read what the mock saw.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::monotonic_ns;
use crate::handoff::{HandoffError, HandoffFate, PairKind, SocketType};
use crate::mock::RequestRecord;
use crate::pattern::{nonce_directive, pattern_directive};
use crate::ring::{ClientBehaviour, EndReason, HandoffSpec, RingHandle, StreamEvent};
use crate::scenario::Mock;
use crate::transcript::{
    Budget, EndKind, EventKind, HandoffTimes, ReadLimits, RecordingEnd, Transcript,
    TranscriptBuilder,
};

use super::PropError;
use super::build::Built;
use super::case::Client;

/// Receive buffer of a pausing client: small, so the daemon's writes back up.
const PAUSE_RECV_BUFFER: u32 = 4096;
/// How long the mock's log is waited on for a request to end when the client stayed.
const LOG_WAIT: Duration = Duration::from_secs(2);
/// Slack on top of the cancel limit when waiting for the mock's log after a client abort.
const LOG_MARGIN: Duration = Duration::from_millis(250);
/// Received bytes kept for the failure report.
const RAW_KEPT: usize = 1 << 20;

/// Time limits of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole stream's deadline, from the handoff.
    pub timeout: Duration,
    /// How long a daemon may keep the connection open after `data: [DONE]`.
    pub done_grace: Duration,
    /// How long after a client abort the upstream request may stay open.
    pub cancel_within: Duration,
}

impl Default for Limits {
    /// 10 s deadline, 1 s after `[DONE]`, 1 s to cancel the upstream.
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            done_grace: Duration::from_secs(1),
            cancel_within: Duration::from_secs(1),
        }
    }
}

/// Everything a case run needs that outlives it.
pub(crate) struct Env<'a> {
    pub ring: RingHandle,
    pub mock: &'a Mock,
    pub socket: Arc<Path>,
    pub socket_type: SocketType,
    pub pair: PairKind,
    pub limits: Limits,
    pub read: ReadLimits,
}

/// What one case run showed.
#[derive(Debug)]
pub struct Observed {
    /// What the received bytes mean.
    pub transcript: Transcript,
    /// The received bytes (the first MiB).
    pub raw: Vec<u8>,
    /// When the client left by its behaviour (abort after bytes or events).
    pub client_closed_ns: Option<u64>,
    /// The daemon sent `[DONE]` and did not close within the grace; the client closed.
    pub kept_open_after_done: bool,
    /// The mock's records of requests carrying the case's nonce.
    pub requests: Vec<RequestRecord>,
    /// For a stream that got no byte: whether the daemon accepted the connection and read the
    /// handoff.
    pub fate: Option<HandoffFate>,
}

/// The handoff data: the script's pattern as `test_pattern` and in the prompt, with the nonce.
pub(crate) fn handoff_data(pattern: &str, nonce: &str) -> Vec<u8> {
    let prompt = format!(
        "streamcheck prop case. {} {}",
        pattern_directive(pattern),
        nonce_directive(nonce)
    );
    serde_json::json!({"prompt": prompt, "user_id": 1, "test_pattern": pattern})
        .to_string()
        .into_bytes()
}

fn behaviour(client: Client) -> ClientBehaviour {
    match client {
        Client::AbortAfterBytes { bytes } => ClientBehaviour::close_after_bytes(u64::from(bytes)),
        Client::Pause { after_bytes, ms } => ClientBehaviour::slow_reader(
            u64::from(after_bytes),
            Duration::from_millis(u64::from(ms)),
            PAUSE_RECV_BUFFER,
        ),
        Client::Read | Client::AbortAfterEvents { .. } => ClientBehaviour::normal(),
    }
}

/// Runs `built` with `client` under `nonce`. `Err` for what stops the whole run: the mock
/// cannot be scripted or read, or the handoff itself failed.
pub(crate) fn run(
    env: &Env<'_>,
    built: &Built,
    client: Client,
    nonce: &str,
) -> Result<Observed, PropError> {
    let pattern = env
        .mock
        .register_script(&built.plan)
        .map_err(PropError::Mock)?;
    let spec = HandoffSpec::new(env.socket.clone(), handoff_data(&pattern, nonce))
        .socket_type(env.socket_type)
        .pair(env.pair)
        .behaviour(behaviour(client))
        .deadline(env.limits.timeout);
    let mut handle = env.ring.start(spec);
    let body = built.plan.body();
    // Every upstream event has a data line: their number bounds the pieces a daemon relays.
    let pieces = body.windows(5).filter(|w| w == b"data:").count() as u64;
    let upstream = body.len() as u64;
    let options = env.read.options(Budget::for_answer(upstream, pieces));
    let mut settled = false;
    let mut handoff: Option<HandoffTimes> = None;
    let mut builder: Option<TranscriptBuilder> = None;
    let mut raw = Vec::new();
    let (mut client_closed_ns, mut kept_open_after_done) = (None, false);
    let (mut content_events, mut scanned) = (0usize, 0usize);
    let mut close_by: Option<Instant> = None;
    let mut fate = None;
    let (end_ns, reason) = loop {
        let wait = close_by.map_or(Duration::from_secs(3600), |by| {
            by.saturating_duration_since(Instant::now())
        });
        match handle.recv_timeout(wait) {
            Ok(StreamEvent::HandedOff(t)) => {
                handoff = Some(HandoffTimes {
                    connect_start_ns: t.connect_start_ns,
                    connected_ns: t.connected_ns,
                    sent_ns: t.sent_ns,
                });
            }
            Ok(StreamEvent::Data(chunk)) => {
                let b = builder.get_or_insert_with(|| {
                    TranscriptBuilder::with_options(handoff.unwrap_or_default(), &options)
                });
                b.push(chunk.ts_ns, &chunk.bytes);
                if b.settled().is_some() && !settled {
                    // More bytes cannot change the verdict: stop reading them.
                    settled = true;
                    handle.close();
                }
                let room = RAW_KEPT.saturating_sub(raw.len());
                raw.extend_from_slice(&chunk.bytes[..chunk.bytes.len().min(room)]);
                let mut done = false;
                for e in &b.events()[scanned..] {
                    content_events += usize::from(e.kind == EventKind::Content);
                    done |= e.kind == EventKind::Done;
                }
                scanned = b.events().len();
                if let Client::AbortAfterEvents { events } = client
                    && client_closed_ns.is_none()
                    && content_events >= usize::from(events.max(1))
                {
                    handle.close();
                    client_closed_ns = Some(monotonic_ns());
                }
                if done && close_by.is_none() && client_closed_ns.is_none() {
                    close_by = Some(Instant::now() + env.limits.done_grace);
                }
            }
            Ok(StreamEvent::End {
                ts_ns,
                reason,
                fate: f,
            }) => {
                fate = f;
                break (ts_ns, reason);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if close_by.is_some_and(|by| Instant::now() >= by) {
                    kept_open_after_done = true;
                    handle.close();
                    close_by = None;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break (monotonic_ns(), EndReason::Error(HandoffError::RingStopped));
            }
        }
    };
    let kind = match reason {
        EndReason::Error(e) if handoff.is_none() => return Err(PropError::Handoff(e)),
        EndReason::PeerClosed => EndKind::PeerClosed,
        EndReason::ClosedByClient => {
            if client_closed_ns.is_none() && !kept_open_after_done && !settled {
                client_closed_ns = Some(end_ns); // the ring closed after N bytes
            }
            EndKind::ClosedByClient
        }
        EndReason::Timeout => EndKind::Timeout,
        EndReason::Error(e) => EndKind::Error(e.to_string()),
    };
    let builder = builder
        .unwrap_or_else(|| TranscriptBuilder::with_options(handoff.unwrap_or_default(), &options));
    let transcript = builder.finish(RecordingEnd {
        at_ns: end_ns,
        kind,
    });
    let wait = match client_closed_ns {
        // Enough to see whether the request ended within the limit after the client left.
        Some(at) => {
            let until = at
                .saturating_add(duration_ns(env.limits.cancel_within))
                .saturating_add(duration_ns(LOG_MARGIN));
            Duration::from_nanos(until.saturating_sub(monotonic_ns()))
        }
        None => LOG_WAIT,
    };
    let requests = env
        .mock
        .wait_for_end(nonce, wait)
        .map_err(PropError::Mock)?;
    Ok(Observed {
        transcript,
        raw,
        client_closed_ns,
        kept_open_after_done,
        requests,
        fate,
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
