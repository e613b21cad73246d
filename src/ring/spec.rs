//! What one stream is: where to hand off, what to send, how the client behaves, and how long it
//! may take.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::handoff::{ConnectPolicy, PairKind, SocketType};

/// One handoff and the stream that follows it.
#[derive(Debug, Clone)]
pub struct HandoffSpec {
    /// The daemon's Unix socket.
    pub socket: Arc<Path>,
    /// `SOCK_SEQPACKET` (Apache's) or `SOCK_STREAM`.
    pub socket_type: SocketType,
    /// Loopback TCP pair (Apache's) or AF_UNIX socketpair.
    pub pair: PairKind,
    /// The handoff data, sent exactly (a single NUL byte when empty).
    pub data: Vec<u8>,
    /// What the client does while reading.
    pub behaviour: ClientBehaviour,
    /// Apache's connect/send timing.
    pub policy: ConnectPolicy,
    /// The whole stream (handoff included) ends as [`crate::ring::EndReason::Timeout`] this long
    /// after it started, keeping what was received.
    pub deadline: Duration,
    /// Keep our end of the daemon connection (write side shut) until the first response byte
    /// or the end, so a stream that gets nothing can say whether the daemon accepted the
    /// connection and read the message ([`crate::handoff::HandoffFate`]). Costs one fd per
    /// waiting stream; on by default.
    pub diagnose_handoff: bool,
}

impl HandoffSpec {
    /// The default deadline: long enough for any stream a test expects to finish.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

    /// No deadline on the ring: the caller enforces its own (and closes the stream when it
    /// passes). Each ring deadline is a kernel timeout whose removal walks the ring's list of
    /// pending timeouts, so a caller running 10,000 streams with deadlines in start order does
    /// better with a queue of its own.
    pub const NO_DEADLINE: Duration = Duration::MAX;

    /// A spec with Apache's defaults: SEQPACKET, TCP pair, [`ConnectPolicy::APACHE`], a client
    /// that reads everything, and a 30 s deadline.
    pub fn new(socket: impl Into<Arc<Path>>, data: impl Into<Vec<u8>>) -> HandoffSpec {
        HandoffSpec {
            socket: socket.into(),
            socket_type: SocketType::default(),
            pair: PairKind::default(),
            data: data.into(),
            behaviour: ClientBehaviour::default(),
            policy: ConnectPolicy::APACHE,
            deadline: HandoffSpec::DEFAULT_DEADLINE,
            diagnose_handoff: true,
        }
    }

    /// Sets the socket type.
    pub fn socket_type(mut self, socket_type: SocketType) -> HandoffSpec {
        self.socket_type = socket_type;
        self
    }

    /// Sets the pair kind.
    pub fn pair(mut self, pair: PairKind) -> HandoffSpec {
        self.pair = pair;
        self
    }

    /// Sets the client behaviour.
    pub fn behaviour(mut self, behaviour: ClientBehaviour) -> HandoffSpec {
        self.behaviour = behaviour;
        self
    }

    /// Sets the connect policy.
    pub fn policy(mut self, policy: ConnectPolicy) -> HandoffSpec {
        self.policy = policy;
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> HandoffSpec {
        self.deadline = deadline;
        self
    }

    /// Keeps (or not) the daemon connection for the handoff's diagnosis.
    pub fn diagnose_handoff(mut self, on: bool) -> HandoffSpec {
        self.diagnose_handoff = on;
        self
    }
}

/// Client faults the driver plays without the caller's help. Everything off by default: the
/// client reads every byte until the daemon closes. (Closing after N SSE events is the
/// caller's job: the ring never parses SSE; it issues a close command.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientBehaviour {
    /// Close the connection once this many response bytes have been read (a browser that
    /// navigates away). Exactly this many bytes are delivered.
    pub close_after_bytes: Option<u64>,
    /// Stop reading for a while once some bytes have been read (a slow reader).
    pub pause: Option<Pause>,
    /// `SO_RCVBUF` for the kept end, set before connecting so the TCP window follows it; a
    /// small value makes a paused reader push back on the daemon quickly.
    pub recv_buffer: Option<u32>,
    /// `shutdown(SHUT_WR)` on the kept end right after the handoff (the daemon then reads EOF
    /// from its client while it can still write).
    pub half_close: bool,
}

/// A pause in reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Pause once this many bytes have been read (0: before reading anything).
    pub after_bytes: u64,
    /// How long to stop reading.
    pub duration: Duration,
}

impl ClientBehaviour {
    /// Reads everything.
    pub fn normal() -> ClientBehaviour {
        ClientBehaviour::default()
    }

    /// Closes after `n` bytes.
    pub fn close_after_bytes(n: u64) -> ClientBehaviour {
        ClientBehaviour {
            close_after_bytes: Some(n),
            ..ClientBehaviour::default()
        }
    }

    /// A slow reader: after `after_bytes` bytes, stops reading for `duration`, with a small
    /// receive buffer (`recv_buffer` bytes) so the daemon feels it.
    pub fn slow_reader(after_bytes: u64, duration: Duration, recv_buffer: u32) -> ClientBehaviour {
        ClientBehaviour {
            pause: Some(Pause {
                after_bytes,
                duration,
            }),
            recv_buffer: Some(recv_buffer),
            ..ClientBehaviour::default()
        }
    }

    /// Half-closes right after the handoff.
    pub fn half_close() -> ClientBehaviour {
        ClientBehaviour {
            half_close: true,
            ..ClientBehaviour::default()
        }
    }
}
