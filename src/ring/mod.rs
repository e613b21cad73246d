//! The io_uring driver: one thread, many handoffs, nanosecond timestamps, deadlines.
//!
//! A stream starts from a [`HandoffSpec`]. The ring makes the client pair ([`crate::handoff`]),
//! connects to the daemon's Unix socket, sends the data and the handed end in one `sendmsg`
//! carrying `SCM_RIGHTS`, closes its copy of the handed end, and reads the response from the
//! kept end with a multishot receive drawing on one shared provided-buffer ring. Every
//! completion is stamped with [`crate::clock::monotonic_ns`].
//!
//! The connect and the send are tried at once with non-blocking system calls, since on a Unix
//! socket they almost always finish there (a connect never waits: it succeeds or fails with
//! `EAGAIN` when the backlog is full): no submission, no linked timeout, no completion, and the
//! handoff is done when [`Ring::start`] returns. Only what would wait goes to the ring: the rest
//! of a message the socket's buffer did not take (`IORING_OP_SEND[MSG]` with a linked timeout,
//! Apache's send timeout), and a connect that reports `EINPROGRESS` (`IORING_OP_CONNECT` with a
//! linked timeout).
//!
//! The daemon connection is closed too, unless the spec asks for the handoff's diagnosis
//! ([`HandoffSpec::diagnose_handoff`], on by default): then its write side is shut (the daemon
//! reads the end of the message at once, as when Apache closes it) and the socket is kept until
//! the first response byte. A stream that ends without a byte says in its
//! [`RingEvent::End`] whether the daemon accepted the connection and read the message
//! ([`crate::handoff::HandoffFate`]).
//!
//! Nothing on the loop blocks: socket creation, the loopback `connect`/`accept4`, the daemon
//! connect, the first `sendmsg` and `close` are non-blocking system calls; everything that
//! waits is an io_uring operation. Each stream has an
//! absolute deadline (a standalone `IORING_OP_TIMEOUT`), so a daemon that never answers or never
//! closes ends as [`EndReason::Timeout`] with everything received so far, never a hang.
//!
//! Apache's connect behaviour is the default ([`crate::handoff::ConnectPolicy::APACHE`]): connect
//! timeout 100 ms, retry only after `ENOENT`/`ECONNREFUSED`, twice, 10 ms then 20 ms later;
//! send timeout 200 ms. A failed handoff ends the stream with [`EndReason::Error`].
//!
//! Two ways in:
//! - [`Ring`], driven directly on one thread ([`Ring::start`], [`Ring::run_once`]): events go to
//!   a callback, data by reference into the receive buffer, no allocation or channel per event.
//!   This is what `stress` uses for 10,000+ streams.
//! - [`RingThread::spawn`] runs a `Ring` on its own thread behind a [`RingHandle`] that any thread
//!   can use: [`RingHandle::start`] returns a [`StreamHandle`] with a channel of owned events and
//!   commands ([`StreamHandle::close`], [`StreamHandle::pause`], [`StreamHandle::half_close`]), and
//!   [`RingHandle::run_to_end`] returns the whole [`RawStream`].
//!
//! Costs, measured with `examples/ring_load.rs` on a 2-core VM against a daemon in another
//! process: 10,000 streams of 18 events 50 ms apart took 0.7–0.9 CPU-seconds and 12.7 MiB peak
//! RSS in the client, every stream's bytes checked. State is about 0.6 KiB per open stream plus
//! the shared receive buffers (4 MiB by default). Most of the CPU is the kernel's TCP work: making
//! and closing a loopback pair alone costs about 16 µs, which is why pairs are made with plain
//! non-blocking syscalls (io_uring would save only the syscall entries, about 1% of it).
//!
//! Memory the kernel uses — socket addresses, the msghdr and its control message, timespecs —
//! lives in a per-slot box that is reused only after every operation referring to it has
//! completed; receive buffers return to the shared ring only after their completion was
//! delivered. Dropping a `Ring` cancels everything and waits for the cancellations; if the kernel
//! does not confirm them in time, that memory is leaked rather than freed under the kernel.

#![deny(missing_docs)]

mod bufring;
mod conn;
mod driver;
mod handlers;
mod setup;
mod spec;
mod sq;
mod thread;

use std::fmt;
use std::time::Duration;

pub use driver::{Ring, Waker};
pub use spec::{ClientBehaviour, HandoffSpec, Pause};
pub use thread::{Chunk, RawStream, RingHandle, RingThread, StreamEvent, StreamHandle};

use crate::handoff::{HandoffError, HandoffFate, PairSpread};

/// A connection on one [`Ring`]. Its [`ConnId::slot`] is not reused before the connection's
/// [`RingEvent::End`] has been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) slot: u32,
    pub(crate) gen_: u32,
}

impl ConnId {
    /// A small dense index, unique among connections not yet ended: callers can keep
    /// per-connection state in a `Vec` indexed by it.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.gen_)
    }
}

/// When the handoff's steps happened, in [`crate::clock::monotonic_ns`] nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandoffTimings {
    /// When the stream was started (client pair created).
    pub start_ns: u64,
    /// When the first connect to the daemon was submitted.
    pub connect_start_ns: u64,
    /// When the successful connect completed.
    pub connected_ns: u64,
    /// When the `sendmsg` (data and fd) completed: the daemon owns the client from here.
    pub sent_ns: u64,
    /// Connect attempts (1 without retries).
    pub attempts: u8,
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The daemon closed the connection (EOF on the kept end).
    PeerClosed,
    /// The client closed it: a command, or [`ClientBehaviour::close_after_bytes`].
    ClosedByClient,
    /// The stream's deadline passed; the data delivered before is all there is.
    Timeout,
    /// The handoff failed, or reading failed (e.g. the daemon reset the connection).
    Error(HandoffError),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::PeerClosed => f.write_str("closed by the daemon"),
            EndReason::ClosedByClient => f.write_str("closed by the client"),
            EndReason::Timeout => f.write_str("deadline passed"),
            EndReason::Error(e) => write!(f, "{e}"),
        }
    }
}

/// What [`Ring::run_once`] reports. Each connection gets at most one `HandedOff`, then `Data`
/// in byte order with non-decreasing timestamps, then exactly one `End`.
#[derive(Debug)]
pub enum RingEvent<'a> {
    /// The daemon has the client socket.
    HandedOff {
        /// The connection.
        conn: ConnId,
        /// When each step of the handoff happened.
        timings: HandoffTimings,
    },
    /// Bytes read from the kept end; `bytes` is valid only during the callback.
    Data {
        /// The connection.
        conn: ConnId,
        /// When the read completed ([`crate::clock::monotonic_ns`]).
        ts: u64,
        /// The bytes read.
        bytes: &'a [u8],
    },
    /// The stream is over; nothing more comes for `conn`.
    End {
        /// The connection.
        conn: ConnId,
        /// When the end was seen ([`crate::clock::monotonic_ns`]).
        ts: u64,
        /// Why the stream ended.
        reason: EndReason,
        /// For a stream that ended without a byte, with [`HandoffSpec::diagnose_handoff`]:
        /// whether the daemon accepted the connection and read the message.
        fate: Option<HandoffFate>,
    },
}

/// How the kept end is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecvMode {
    /// One multishot receive per connection, re-armed only when the kernel ends it.
    #[default]
    Multishot,
    /// One single-shot receive per read (for comparison; costs a submission per read).
    Single,
}

/// Sizes of one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Submission queue entries; more wait in a backlog.
    pub sq_entries: u32,
    /// Completion queue entries (the kernel buffers overflow beyond them).
    pub cq_entries: u32,
    /// Receive buffers shared by all connections (a power of two, at most 32768).
    pub buffers: u16,
    /// Size of each receive buffer.
    pub buffer_size: u32,
    /// Multishot or single-shot receives.
    pub recv: RecvMode,
    /// Over how many loopback source addresses TCP pairs are spread: one by default; more to
    /// hold more pairs at once than one address's port range allows.
    pub pairs: PairSpread,
    /// Zero (the default): [`Ring::run_once`] wakes for each completion, so every event is
    /// stamped the moment it can be. Above zero: it sleeps until 64 completions are ready or
    /// this long has passed since it went to sleep, whichever comes first, trading up to this
    /// much lateness in the timestamps of events that arrive while the loop sleeps for far
    /// fewer wake-ups (needs Linux 6.12; ignored before). A `run_once` whose timeout is shorter
    /// than the window does not batch.
    pub batch_window: Duration,
}

impl Default for RingConfig {
    /// 1024 SQ entries, 8192 CQ entries, 1024 × 4 KiB receive buffers (4 MiB), multishot,
    /// pairs from one source address, no batch window.
    fn default() -> Self {
        RingConfig {
            sq_entries: 1024,
            cq_entries: 8192,
            buffers: 1024,
            buffer_size: 4096,
            recv: RecvMode::Multishot,
            pairs: PairSpread::ONE_ADDRESS,
            batch_window: Duration::ZERO,
        }
    }
}

/// Counters for measuring the ring itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStats {
    /// Streams started.
    pub started: u64,
    /// Streams handed off.
    pub handed_off: u64,
    /// Completions processed.
    pub completions: u64,
    /// Receive submissions (first arm and re-arms).
    pub recv_submissions: u64,
    /// Receives ended by an empty buffer ring (`ENOBUFS`), then re-armed.
    pub enobufs: u64,
    /// Submissions that waited in the backlog because the SQ was full.
    pub sq_backlogged: u64,
    /// Loopback pairs whose accept had to wait for the listener.
    pub deferred_accepts: u64,
    /// Connections to the loopback listener that were not ours (closed).
    pub foreign_accepts: u64,
}

/// Commands issued from inside the [`Ring::run_once`] callback; applied right after it returns.
#[derive(Debug, Default)]
pub struct Commands {
    queue: Vec<Command>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Command {
    Close(ConnId),
    Pause(ConnId, Duration),
    Resume(ConnId),
    HalfClose(ConnId),
    Throttle(ConnId, bool),
}

impl Commands {
    /// Closes `conn` (ends it as [`EndReason::ClosedByClient`]).
    pub fn close(&mut self, conn: ConnId) {
        self.queue.push(Command::Close(conn));
    }

    /// Stops reading `conn` for `duration`.
    pub fn pause(&mut self, conn: ConnId, duration: Duration) {
        self.queue.push(Command::Pause(conn, duration));
    }

    /// Resumes reading `conn` now.
    pub fn resume(&mut self, conn: ConnId) {
        self.queue.push(Command::Resume(conn));
    }

    /// Shuts down the write side of `conn`'s kept end.
    pub fn half_close(&mut self, conn: ConnId) {
        self.queue.push(Command::HalfClose(conn));
    }

    /// Stops (`true`) or restarts (`false`) reading `conn` while its reader is behind.
    pub fn throttle(&mut self, conn: ConnId, on: bool) {
        self.queue.push(Command::Throttle(conn, on));
    }
}

#[cfg(test)]
mod tests;
