//! [`Ring`]: set-up, starting streams, commands, the event loop, and a safe teardown.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use rustix::io::Errno;

use super::bufring::BufRing;
use super::conn::{Conn, Phase, Slab};
use super::setup;
use super::spec::HandoffSpec;
use super::sq::{self, Op, Sq};
use super::{
    Command, Commands, ConnId, EndReason, HandoffTimings, RingConfig, RingEvent, RingStats,
};
use crate::clock::monotonic_ns;
use crate::handoff::{self, ClientPair, HandoffError, HandoffFate, PairKind, TcpPairFactory};

/// How long [`Ring`]'s drop waits for the kernel to confirm its cancellations.
const DROP_GRACE: Duration = Duration::from_secs(5);

/// Completions copied out of the CQ per batch.
const BATCH: usize = 256;

/// Completions that end a [`RingConfig::batch_window`] wait early.
const BATCH_WAKE: usize = 64;

/// An event decided outside a completion's callback, waiting for the next delivery.
pub(super) enum Queued {
    HandedOff(ConnId, HandoffTimings),
    End(ConnId, u64, EndReason, Option<HandoffFate>),
}

/// Wakes a [`Ring`] blocked in [`Ring::run_once`] from any thread.
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Makes the ring's `run_once` return soon.
    pub fn wake(&self) {
        // An eventfd write only fails when the counter would overflow, and then a wake is
        // pending anyway.
        let _ = rustix::io::write(&*self.fd, &1u64.to_ne_bytes());
    }
}

/// One io_uring loop driving many streams. Not `Send`: the ring is set up for a single issuer,
/// so create it on the thread that drives it.
pub struct Ring {
    pub(super) uring: IoUring,
    pub(super) sq: Sq,
    pub(super) slab: Slab,
    pub(super) bufs: BufRing,
    pub(super) config: RingConfig,
    pub(super) stats: RingStats,
    /// Tracked operations in flight (connection operations, wake read, listener poll).
    pub(super) ops: usize,
    /// Streams started whose handoff has not completed or failed yet.
    pub(super) handing_off: usize,
    pub(super) pairs: Option<TcpPairFactory>,
    /// Kept ends awaiting their accepted end, by local address (ports repeat across source
    /// addresses).
    pub(super) pending_accept: HashMap<SocketAddrV4, ConnId>,
    pub(super) listener_polling: bool,
    pub(super) wake_fd: Option<Arc<OwnedFd>>,
    pub(super) wake_buf: Box<[u8; 8]>,
    pub(super) wake_reading: bool,
    pub(super) skip_success: bool,
    /// [`RingConfig::batch_window`] in µs, when set and the kernel supports it.
    batch_window_us: Option<u32>,
    /// Events decided outside a completion's callback (a handoff done at once, an end), in
    /// order, delivered before the next completion.
    pub(super) queued: VecDeque<Queued>,
    pub(super) commands: Commands,
    cqes: Vec<cqueue::Entry>,
    lost_seen: u32,
    #[cfg(test)]
    pub(super) defer_accepts: bool,
    _single_thread: PhantomData<*const ()>,
}

impl Ring {
    /// Sets up a ring. Fails with [`HandoffError::RingUnavailable`] when io_uring is disabled
    /// or blocked, and [`HandoffError::RingUnsupported`] on kernels older than 6.0.
    pub fn new(config: RingConfig) -> Result<Ring, HandoffError> {
        let uring = setup::build_uring(&config)?;
        setup::check_support(&uring)?;
        let bufs = BufRing::new(config.buffers, config.buffer_size)?;
        bufs.register(&uring.submitter())?;
        let skip_success = uring.params().is_feature_skip_cqe_on_success();
        let batch_window_us = Some(config.batch_window.as_micros())
            .filter(|&us| us > 0 && uring.params().is_feature_min_timeout())
            .map(|us| u32::try_from(us).unwrap_or(u32::MAX));
        Ok(Ring {
            uring,
            sq: Sq::default(),
            slab: Slab::default(),
            bufs,
            config,
            stats: RingStats::default(),
            ops: 0,
            handing_off: 0,
            pairs: None,
            pending_accept: HashMap::new(),
            listener_polling: false,
            wake_fd: None,
            wake_buf: Box::new([0; 8]),
            wake_reading: false,
            skip_success,
            batch_window_us,
            queued: VecDeque::new(),
            commands: Commands::default(),
            cqes: Vec::with_capacity(BATCH),
            lost_seen: 0,
            #[cfg(test)]
            defer_accepts: false,
            _single_thread: PhantomData,
        })
    }

    /// Starts a stream. Fails at once only when the client side cannot be set up (fds, ports,
    /// socket path); everything later arrives as events, ending with exactly one
    /// [`RingEvent::End`].
    ///
    /// The handoff is usually complete when this returns (its `HandedOff` event comes with the
    /// next [`Ring::run_once`]); one the daemon's socket cannot take at once holds three fds
    /// until it completes, and one afterwards: a caller starting thousands of streams should
    /// interleave `run_once` calls, or watch [`Ring::handoffs_in_progress`].
    pub fn start(&mut self, spec: HandoffSpec) -> Result<ConnId, HandoffError> {
        let now = monotonic_ns();
        let (addr, addr_len) = handoff::unix_sockaddr(&spec.socket)?;
        let rcvbuf = spec.behaviour.recv_buffer;
        let (kept, handed, pending_addr) = match spec.pair {
            PairKind::Unix => {
                let pair = ClientPair::unix(rcvbuf)?;
                (pair.kept, Some(pair.handed), None)
            }
            PairKind::Tcp => {
                let factory = match &mut self.pairs {
                    Some(f) => f,
                    pairs @ None => pairs.insert(TcpPairFactory::with_spread(self.config.pairs)?),
                };
                let pending = factory.connect(rcvbuf)?;
                (pending.kept, None, Some(pending.local))
            }
        };
        let conn = Conn {
            path: spec.socket,
            socket_type: spec.socket_type,
            policy: spec.policy,
            behaviour: spec.behaviour,
            data: spec.data,
            kept: Some(kept),
            handed,
            daemon: None,
            diagnose: spec.diagnose_handoff,
            pending_addr,
            phase: if pending_addr.is_some() {
                Phase::Pairing
            } else {
                Phase::Connecting
            },
            ended: false,
            end_delivered: false,
            inflight: 0,
            attempts: 0,
            want_connect: pending_addr.is_none(),
            sent: 0,
            want_send: false,
            received: 0,
            paused: false,
            throttled: false,
            pause_done: false,
            resume_at: 0,
            timings: HandoffTimings {
                start_ns: now,
                ..HandoffTimings::default()
            },
        };
        let deadline_ns = now.saturating_add(handoff::duration_ns(spec.deadline));
        let (id, io) = self.slab.insert(conn);
        self.stats.started += 1;
        self.handing_off += 1;
        io.addr = addr;
        io.addr_len = addr_len;
        if spec.deadline != HandoffSpec::NO_DEADLINE {
            io.ts_deadline = abs_timespec(deadline_ns);
            let entry = opcode::Timeout::new(&io.ts_deadline)
                .flags(types::TimeoutFlags::ABS)
                .build()
                .user_data(sq::user_data(Op::Deadline, id.slot, id.gen_));
            // SAFETY: the timespec lives in the slot's boxed ConnIo until the Deadline
            // completion.
            unsafe { self.begin(id, &[Op::Deadline], &[entry]) };
        }
        if let Some(addr) = pending_addr {
            self.pending_accept.insert(addr, id);
            #[cfg(test)]
            let defer = self.defer_accepts;
            #[cfg(not(test))]
            let defer = false;
            if defer {
                self.arm_listener();
            } else {
                self.drain_accepts();
            }
        } else {
            self.advance(id);
        }
        Ok(id)
    }

    /// Closes `conn` now (ends it as [`EndReason::ClosedByClient`]). False if it already ended.
    pub fn close(&mut self, conn: ConnId) -> bool {
        self.command(Command::Close(conn))
    }

    /// Stops reading `conn` for `duration` (a later pause replaces an earlier one).
    pub fn pause(&mut self, conn: ConnId, duration: Duration) -> bool {
        self.command(Command::Pause(conn, duration))
    }

    /// Resumes reading `conn` now.
    pub fn resume(&mut self, conn: ConnId) -> bool {
        self.command(Command::Resume(conn))
    }

    /// Shuts down the write side of `conn`'s kept end (the daemon reads EOF).
    pub fn half_close(&mut self, conn: ConnId) -> bool {
        self.command(Command::HalfClose(conn))
    }

    /// Stops (`true`) or restarts (`false`) reading `conn` because its reader is behind: apart
    /// from a client behaviour's pause, so neither ends the other.
    pub fn throttle(&mut self, conn: ConnId, on: bool) -> bool {
        self.command(Command::Throttle(conn, on))
    }

    /// Streams started and not yet ended.
    pub fn active(&self) -> usize {
        self.slab.active
    }

    /// Streams whose handoff is still under way (each holding three fds).
    pub fn handoffs_in_progress(&self) -> usize {
        self.handing_off
    }

    /// The loopback listener that makes TCP pairs, once the first TCP stream has started. Every
    /// handed end has it as its local address, which tells a daemon's client sockets apart
    /// from its other sockets (e.g. in `/proc/PID/net/tcp`).
    pub fn pair_listener_addr(&self) -> Option<SocketAddrV4> {
        self.pairs.as_ref().map(TcpPairFactory::local_addr)
    }

    /// Counters for measurement.
    pub fn stats(&self) -> RingStats {
        RingStats {
            sq_backlogged: self.sq.full,
            ..self.stats
        }
    }

    /// A [`Waker`] that makes a blocked [`Ring::run_once`] return (for commands from other
    /// threads). Creates the eventfd on first use.
    pub fn waker(&mut self) -> Result<Waker, HandoffError> {
        if let Some(fd) = &self.wake_fd {
            return Ok(Waker { fd: fd.clone() });
        }
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC,
        )
        .map_err(|e| HandoffError::os("creating an eventfd", e))?;
        let fd = Arc::new(fd);
        self.wake_fd = Some(fd.clone());
        self.arm_wake();
        Ok(Waker { fd })
    }

    /// Submits what is queued, waits until something completes (at most `timeout`, or forever
    /// with `None`; not at all when an event is already waiting or nothing is in flight), and
    /// delivers every completed event to `f`. Commands `f` queues are applied before the next
    /// event. Returns the number of events delivered.
    pub fn run_once<F>(
        &mut self,
        timeout: Option<Duration>,
        mut f: F,
    ) -> Result<usize, HandoffError>
    where
        F: FnMut(RingEvent<'_>, &mut Commands),
    {
        let mut delivered = self.deliver_queued(&mut f);
        self.sq.flush(&mut self.uring);
        if self.ops == 0 && !self.sq.has_backlog() {
            return Ok(delivered);
        }
        let wait = if delivered > 0 {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        self.enter(wait)?;
        loop {
            self.cqes.clear();
            {
                let mut cq = self.uring.completion();
                let lost = cq.overflow();
                if lost != self.lost_seen {
                    let n = lost.wrapping_sub(self.lost_seen);
                    self.lost_seen = lost;
                    return Err(HandoffError::CompletionsLost { lost: n });
                }
                self.cqes.extend(cq.by_ref().take(BATCH));
            }
            let n = self.cqes.len();
            for i in 0..n {
                let cqe = self.cqes[i].clone();
                delivered += self.dispatch(&cqe, &mut f);
                delivered += self.deliver_queued(&mut f);
            }
            self.sq.flush(&mut self.uring);
            if n < BATCH {
                break;
            }
        }
        Ok(delivered)
    }

    /// Submits, then waits for at least one completion (`None`: no limit).
    fn enter(&mut self, wait: Option<Duration>) -> Result<(), HandoffError> {
        let result = match wait {
            None => self.uring.submit_and_wait(1),
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                match self.batch_window_us {
                    // Sleep until a batch is ready or the window has passed (then any one
                    // completion will do): one wake-up for many completions. Not when the
                    // caller wants to be back sooner: the kernel would keep it the whole window.
                    Some(us) if d >= Duration::from_micros(u64::from(us)) => {
                        let args = args.min_wait_usec(us);
                        self.uring.submitter().submit_with_args(BATCH_WAKE, &args)
                    }
                    _ => self.uring.submitter().submit_with_args(1, &args),
                }
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => match Errno::from_io_error(&e) {
                // Timed out, interrupted, or completions must be reaped before more submissions:
                // all fine, the caller reaps next.
                Some(Errno::TIME | Errno::INTR | Errno::BUSY | Errno::AGAIN) => Ok(()),
                Some(errno) => Err(HandoffError::Os {
                    what: "io_uring_enter",
                    errno,
                }),
                None => Err(HandoffError::Os {
                    what: "io_uring_enter",
                    errno: Errno::IO,
                }),
            },
        }
    }

    fn deliver_queued<F>(&mut self, f: &mut F) -> usize
    where
        F: FnMut(RingEvent<'_>, &mut Commands),
    {
        let mut n = 0;
        while let Some(event) = self.queued.pop_front() {
            match event {
                Queued::HandedOff(conn, timings) => {
                    f(RingEvent::HandedOff { conn, timings }, &mut self.commands);
                }
                Queued::End(conn, ts, reason, fate) => {
                    f(
                        RingEvent::End {
                            conn,
                            ts,
                            reason,
                            fate,
                        },
                        &mut self.commands,
                    );
                    if let Some((c, _)) = self.slab.get_mut(conn) {
                        c.end_delivered = true;
                    }
                    self.slab.release_if_done(conn);
                }
            }
            self.apply_commands();
            n += 1;
        }
        n
    }

    pub(super) fn apply_commands(&mut self) {
        if self.commands.queue.is_empty() {
            return;
        }
        let mut queue = std::mem::take(&mut self.commands.queue);
        for cmd in queue.drain(..) {
            self.command(cmd);
        }
        // Keep the allocation for the next callback.
        if self.commands.queue.is_empty() {
            self.commands.queue = queue;
        }
    }

    fn command(&mut self, cmd: Command) -> bool {
        let id = match cmd {
            Command::Close(id)
            | Command::Pause(id, _)
            | Command::Resume(id)
            | Command::Throttle(id, _)
            | Command::HalfClose(id) => id,
        };
        match self.slab.get_mut(id) {
            Some((conn, _)) if !conn.ended => {}
            _ => return false,
        }
        match cmd {
            Command::Close(_) => self.finish(id, EndReason::ClosedByClient),
            Command::Pause(_, d) => self.pause_for(id, d),
            Command::Resume(_) => self.resume_now(id),
            Command::HalfClose(_) => self.shutdown_write(id),
            Command::Throttle(_, on) => self.throttle_now(id, on),
        }
        true
    }

    /// Queues `chain` for connection `id`, marking `ops` (one per entry) in flight.
    ///
    /// # Safety
    /// Every pointer in `chain` must point into `id`'s boxed ConnIo, its data, the shared buffer
    /// ring, or static memory, so that it stays valid until the operation completes (the slot
    /// is not reused while a bit is set).
    pub(super) unsafe fn begin(&mut self, id: ConnId, ops: &[Op], chain: &[squeue::Entry]) {
        if let Some((conn, _)) = self.slab.get_mut(id) {
            for op in ops {
                conn.set(*op);
            }
            self.ops += ops.len();
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.sq.push(&mut self.uring, chain) };
    }

    /// Queues a cancellation or timer update whose completion nobody waits for.
    pub(super) fn aux(&mut self, entry: squeue::Entry) {
        let mut entry = entry.user_data(sq::user_data(Op::Aux, 0, 0));
        if self.skip_success {
            entry = entry.flags(squeue::Flags::SKIP_SUCCESS);
        }
        // SAFETY: cancellations and removals carry no pointer; timer updates point at a
        // timespec in a slot's ConnIo, which lives as long as the ring.
        unsafe { self.sq.push(&mut self.uring, &[entry]) };
    }

    fn arm_wake(&mut self) {
        let Some(fd) = &self.wake_fd else { return };
        if self.wake_reading {
            return;
        }
        let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(sq::user_data(Op::Wake, 0, 0));
        self.wake_reading = true;
        self.ops += 1;
        // SAFETY: wake_buf is boxed and lives until the ring is dropped, whose Drop waits for
        // this read to complete (or leaks the box).
        unsafe { self.sq.push(&mut self.uring, &[entry]) };
    }

    pub(super) fn on_wake(&mut self) {
        self.wake_reading = false;
        self.ops -= 1;
        self.arm_wake();
    }

    pub(super) fn arm_listener(&mut self) {
        let Some(pairs) = &self.pairs else { return };
        if self.listener_polling || self.pending_accept.is_empty() {
            return;
        }
        let entry =
            opcode::PollAdd::new(types::Fd(pairs.listener().as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(sq::user_data(Op::Listener, 0, 0));
        self.listener_polling = true;
        self.ops += 1;
        // SAFETY: a poll carries no pointer; the listener lives as long as the ring.
        unsafe { self.sq.push(&mut self.uring, &[entry]) };
    }

    /// Accepts every completed loopback connection and gives each to the stream waiting for
    /// it; waits on the listener for the rest.
    pub(super) fn drain_accepts(&mut self) {
        loop {
            let Some(pairs) = &self.pairs else { return };
            if self.pending_accept.is_empty() {
                // Nothing waits: a further accept would only find the queue empty.
                return;
            }
            match pairs.accept() {
                Ok(Some(accepted)) => match self.pending_accept.remove(&accepted.peer) {
                    Some(id) => {
                        if let Some((conn, _)) = self.slab.get_mut(id) {
                            conn.handed = Some(accepted.handed);
                            conn.pending_addr = None;
                            conn.phase = Phase::Connecting;
                            conn.want_connect = true;
                        }
                        self.advance(id);
                    }
                    None => self.stats.foreign_accepts += 1,
                },
                Ok(None) => break,
                Err(e) => {
                    // Without an fd for the accepted end no waiting stream can go on.
                    let waiting: Vec<ConnId> =
                        self.pending_accept.drain().map(|(_, id)| id).collect();
                    for id in waiting {
                        self.finish(id, EndReason::Error(e.clone()));
                    }
                    return;
                }
            }
        }
        if !self.pending_accept.is_empty() {
            self.stats.deferred_accepts += 1;
            self.arm_listener();
        }
    }

    pub(super) fn on_listener(&mut self) {
        self.listener_polling = false;
        self.ops -= 1;
        self.drain_accepts();
    }

    /// Cancels everything and waits (bounded) until the kernel has let go of all memory.
    fn shutdown(&mut self) -> bool {
        let ids: Vec<ConnId> = self
            .slab
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| ConnId {
                slot: i as u32,
                gen_: s.gen_,
            })
            .collect();
        for id in ids {
            self.finish(id, EndReason::ClosedByClient);
        }
        self.queued.clear();
        if self.wake_reading {
            self.wake_fd = None;
            self.aux(opcode::AsyncCancel::new(sq::user_data(Op::Wake, 0, 0)).build());
        }
        if self.listener_polling {
            self.pending_accept.clear();
            self.aux(opcode::AsyncCancel::new(sq::user_data(Op::Listener, 0, 0)).build());
        }
        let give_up = monotonic_ns().saturating_add(handoff::duration_ns(DROP_GRACE));
        while self.ops > 0 || self.sq.has_backlog() {
            if monotonic_ns() >= give_up {
                return false;
            }
            let step = self.run_once(Some(Duration::from_millis(50)), |_, _| {});
            if step.is_err() && self.ops > 0 {
                return false;
            }
            self.queued.clear();
        }
        true
    }
}

pub(super) fn abs_timespec(ns: u64) -> types::Timespec {
    types::Timespec::new()
        .sec(ns / 1_000_000_000)
        .nsec((ns % 1_000_000_000) as u32)
}

impl Drop for Ring {
    fn drop(&mut self) {
        if !self.shutdown() {
            // The kernel may still write into these: keep them alive for the process's life.
            self.bufs.leak();
            std::mem::forget(std::mem::take(&mut self.slab.slots));
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new([0; 8])));
        }
    }
}
